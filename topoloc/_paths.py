"""Paths that cannot be what they should be: the words of every "no such file" refusal, and the file that
blocks an output path."""

from __future__ import annotations

import os
import tempfile
from os import PathLike
from pathlib import Path

__all__ = ["hidden", "file_above", "not_a_file", "not_a_checkpoint_file", "cannot_write", "unwritable",
           "unwritable_file", "unwritable_folder", "check_output"]


def hidden(path: str | PathLike) -> bool:
    """Whether a folder entry is a hidden file that no data set means: a name starting with ``.`` (macOS's ``._*``
    AppleDouble files, left beside every file copied to an exFAT or network drive, and ``.DS_Store``)."""
    return Path(path).name.startswith(".")


def not_a_file(path: str | PathLike) -> str:
    """``"no such file"``, or ``"a folder, expected a file"`` when ``path`` is a folder.

    Example:
        >>> not_a_file("/")
        'a folder, expected a file'
    """
    return "a folder, expected a file" if Path(path).is_dir() else "no such file"


def not_a_checkpoint_file(path: str | PathLike) -> str:
    """`not_a_file`, naming the checkpoints inside when ``path`` is a training run's folder.

    Example:
        >>> not_a_checkpoint_file("/no/such/last.pt")
        'no such file'
    """
    found = [Path(path) / name for name in ("best.pt", "last.pt") if (Path(path) / name).is_file()]
    if not found:
        return not_a_file(path)
    return f"a training run's folder, expected its checkpoint: {' or '.join(repr(str(f)) for f in found)}"


def file_above(path: str | PathLike) -> Path | None:
    """The nearest existing path above ``path`` when it is a file (nothing can be written under it), else None.

    Example:
        >>> file_above(__file__ + "/sub/out.npy") == Path(__file__), file_above("/no/such/folder/out.npy")
        (True, None)
    """
    above = next((parent for parent in Path(path).parents if parent.exists()), None)
    return above if above is not None and not above.is_dir() else None


def cannot_write(path: str | PathLike) -> str | None:
    """Why nothing can be written at ``path`` (a file to write, or a folder to fill), or None when it can.

    The nearest existing folder at or above ``path`` is tried by creating and removing an empty
    file there: file modes, read-only mounts and pseudo file systems (``/proc``) all answer, for
    root too.

    Example:
        >>> cannot_write("/proc/out.csv")[:23], cannot_write(tempfile.gettempdir() + "/new/out.csv")
        ("cannot write in '/proc'", None)
    """
    folder = Path(path)
    while not folder.is_dir():
        if folder.exists() or folder.parent == folder:
            return None  # a file in the way: file_above and the callers' own checks say so
        folder = folder.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".topoloc-write-check-", dir=folder)
    except OSError as err:
        return f"cannot write in {str(folder)!r} ({err.strerror or type(err).__name__})"
    os.close(fd)
    os.unlink(probe)
    return None


def unwritable(path: str | PathLike) -> str | None:
    """Why nothing can be written at ``path``: a file above it (`file_above`) or a folder that cannot be
    written (`cannot_write`); None when it can.

    Example:
        >>> unwritable(__file__ + "/out.csv") == f"{__file__!r} is a file, not a folder"
        True
    """
    above = file_above(path)
    return f"{str(above)!r} is a file, not a folder" if above is not None else cannot_write(path)


def unwritable_file(path: str | PathLike) -> str | None:
    """Why no file can be written at ``path``: a folder there (or a path ending in a separator), a file above it or
    a folder that cannot be written (`unwritable`); None when it can.

    Example:
        >>> unwritable_file(tempfile.gettempdir()), unwritable_file(tempfile.gettempdir() + "/new/out.csv")
        ('a folder, expected a file name', None)
    """
    raw = os.fspath(path)
    if raw.endswith(("/", os.sep)) or Path(raw).is_dir():
        return "a folder, expected a file name"
    return unwritable(raw)


def unwritable_folder(path: str | PathLike) -> str | None:
    """Why ``path`` cannot be a folder to write in: a file there, a file above it or a folder that cannot be
    written (`unwritable`); None when it can.

    Example:
        >>> unwritable_folder(__file__), unwritable_folder(tempfile.gettempdir() + "/new/report")
        ('a file, expected a folder', None)
    """
    if Path(path).exists() and not Path(path).is_dir():
        return "a file, expected a folder"
    return unwritable(path)


def check_output(path: str | PathLike, name: str, folder: bool = False) -> None:
    """Refuse an output ``path`` that cannot be written as a file (`unwritable_file`), or as a folder to fill
    (`unwritable_folder`), before any work: ``ValueError("<name> '<path>': <why>")``. Later, an OSError would
    name a temporary file, or come after the work."""
    why = unwritable_folder(path) if folder else unwritable_file(path)
    if why is not None:
        raise ValueError(f"{name} {str(path)!r}: {why}")
