"""Paths that cannot be what they should be: the words of every "no such file" refusal, and the file that
blocks an output path."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

__all__ = ["file_above", "not_a_file"]


def not_a_file(path: str | PathLike) -> str:
    """``"no such file"``, or ``"a folder, expected a file"`` when ``path`` is a folder.

    Example:
        >>> not_a_file("/")
        'a folder, expected a file'
    """
    return "a folder, expected a file" if Path(path).is_dir() else "no such file"


def file_above(path: str | PathLike) -> Path | None:
    """The nearest existing path above ``path`` when it is a file (nothing can be written under it), else None.

    Example:
        >>> file_above(__file__ + "/sub/out.npy") == Path(__file__), file_above("/no/such/folder/out.npy")
        (True, None)
    """
    above = next((parent for parent in Path(path).parents if parent.exists()), None)
    return above if above is not None and not above.is_dir() else None
