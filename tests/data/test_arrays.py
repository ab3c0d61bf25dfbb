"""`load_npy`: one ``.npy`` array, or a ValueError naming the file, what it is, why and what it should hold.

References: NumPy's own reading of the same files, and the .npy format (a file starts with b"\\x93NUMPY")."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from topoloc.data._arrays import _why, load_npy

WHAT = "a (N, 6) .npy array of Cesium pose rows"


def _refusal(path) -> ValueError:
    with pytest.raises(ValueError) as err:
        load_npy(path, "pose file", WHAT)
    return err.value


def test_an_array_is_returned_as_saved(tmp_path):
    rows = np.arange(12, dtype=np.float64).reshape(2, 6)
    np.save(tmp_path / "p.npy", rows)
    got = load_npy(tmp_path / "p.npy", "pose file", WHAT)
    assert type(got) is np.ndarray and got.dtype == np.float64
    np.testing.assert_array_equal(got, rows)


def test_a_truncated_npy_file_keeps_numpys_reason(tmp_path):
    # a .npy header with its data cut short: NumPy's reason is about the data, not about pickles
    path = tmp_path / "p.npy"
    np.save(path, np.zeros((4, 6)))
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(ValueError) as numpy_err:
        np.load(path, allow_pickle=False)
    err = _refusal(path)
    assert str(err) == f"{path}: could not read the pose file ({numpy_err.value}); expected {WHAT}"
    assert "Python objects" not in str(err) and isinstance(err.__cause__, ValueError)


def test_an_empty_file_and_a_folder_are_refused_naming_them(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    err = _refusal(tmp_path / "empty.npy")
    assert str(err).startswith(f"{tmp_path / 'empty.npy'}: could not read the pose file (")
    assert str(err).endswith(f"); expected {WHAT}") and isinstance(err.__cause__, EOFError)
    (tmp_path / "folder.npy").mkdir()
    err = _refusal(tmp_path / "folder.npy")  # was a bare IsADirectoryError
    assert str(err).startswith(f"{tmp_path / 'folder.npy'}: could not read the pose file (")
    assert isinstance(err.__cause__, OSError)


def test_an_npz_archive_names_its_arrays_in_order_and_is_closed(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, rows=np.zeros((2, 6)), names=np.array(["a", "b"]))  # stored as rows, names
    err = _refusal(path)
    assert str(err) == (f"{path}: the pose file is an .npz archive of arrays ['names', 'rows']; expected {WHAT}, "
                        "one array as np.save writes it")
    if sys.platform.startswith("linux"):  # the archive NumPy opened is closed, though the error keeps its frame
        fds = os.listdir("/proc/self/fd")
        opened = [f for f in fds if os.path.realpath(f"/proc/self/fd/{f}") == str(path.resolve())]
        assert opened == []


def test_why_keeps_numpys_reason_when_the_file_cannot_be_opened_again(tmp_path):
    # NumPy's pickle advice, for a file gone before its first bytes are read: its reason is all there is
    err = ValueError("This file contains pickled (object) data. ... using the `allow_pickle=` keyword argument")
    assert _why(tmp_path / "gone.npy", err) == str(err)
    (tmp_path / "text.npy").write_text("x,y\n")
    assert _why(tmp_path / "text.npy", err) == "not a .npy file: it does not start with NumPy's .npy header"
