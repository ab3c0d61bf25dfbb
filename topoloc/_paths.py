"""Why a path that should be a file is not one: the words of every "no such file" refusal."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

__all__ = ["not_a_file"]


def not_a_file(path: str | PathLike) -> str:
    """``"no such file"``, or ``"a folder, expected a file"`` when ``path`` is a folder.

    Example:
        >>> not_a_file("/")
        'a folder, expected a file'
    """
    return "a folder, expected a file" if Path(path).is_dir() else "no such file"
