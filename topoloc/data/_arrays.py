"""`load_npy`: one ``.npy`` array from a file, with errors that name the file and what it should hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_npy"]


def load_npy(path: Path, noun: str, what: str) -> np.ndarray:
    """The array of a ``.npy`` file, never unpickled.

    Args:
        path: the file.
        noun: what the file is, named in the errors (e.g. ``"pose file"``).
        what: what it should hold, named in the errors (e.g. ``"a (N, 6) .npy array"``).

    Raises:
        ValueError: unreadable, empty, or not one array (an ``.npz`` archive holds several; NumPy returns it as
            a lazy archive, which failed later as an AttributeError).
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:  # EOFError: an empty file
        raise ValueError(f"{path}: could not read the {noun} ({_why(path, err)}); expected {what}") from err
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(f"{path}: the {noun} is an .npz archive of arrays {sorted(arr.files)}; expected {what}, one "
                         "array as np.save writes it")
    return arr


def _why(path: Path, err: Exception) -> str:
    """Why NumPy could not read ``path``, without its advice to unpickle: NumPy takes any file that is neither a
    ``.npy`` nor an ``.npz`` for a pickle, and with ``allow_pickle=False`` says it holds "pickled (object) data"
    that could be loaded "unsafely", even for a text file."""
    if not (isinstance(err, ValueError) and "allow_pickle" in str(err)):
        return str(err)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return str(err)
    if head != b"\x93NUMPY":
        return "not a .npy file: it does not start with NumPy's .npy header"
    return "it holds Python objects (an object array), which are not loaded: unpickling them can run code"
