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
        raise ValueError(f"{path}: could not read the {noun} ({err}); expected {what}") from err
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(f"{path}: the {noun} is an .npz archive of arrays {sorted(arr.files)}; expected {what}, one "
                         "array as np.save writes it")
    return arr
