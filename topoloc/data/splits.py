"""Deterministic train / val / test splits of a flight's pose rows.

A split is a property of the pose ROW (the ``<idx>`` in an image name), never of the position of a
file in a directory listing. Rows are grouped into blocks of ``block`` consecutive rows; the blocks
are ordered by a fixed 64-bit hash (splitmix64) of ``(seed, block id)`` and the first
``round(f_train * n_blocks)`` blocks in that order go to train, the next ``round(f_val * n_blocks)``
to val, the rest to test. Hence:

- the assignment depends only on the number of rows of ``<flight>_poses.npy``, the fractions,
  the seed and the block size: a TOPO-DataGen folder and a Mini-Comballaz render of the same pose
  file (or any subset of its rows) give every row the same split;
- the fractions are exact over blocks, and the hash is version-independent (no RNG stream);
- ``block=1`` is an independent random split (right for Latin-hypercube poses); ``block > 1``
  keeps runs of consecutive frames of a real flight together, so that fewer near-duplicate
  neighbouring frames leak between train and test: only the frames on either side of a boundary
  between blocks of two splits do (rows 49 and 50 of ``comballaz-2020-11-06-piloted`` are 0.75 m and
  0.6 deg apart), and a flight that passes the same place twice (the planned flight's lines) puts
  views of it in both. For a test set no training view is near, test on another flight.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["SPLITS", "DEFAULT_FRACTIONS", "split_assignment", "split_rows", "check_fractions", "check_split"]

SPLITS = ("train", "val", "test", "all")
#: Default (train, val, test) fractions.
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele et al. 2014), vectorised over uint64."""
    z = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def check_fractions(fractions) -> tuple[float, float, float]:
    """Validates ``split_fractions``: three non-negative numbers summing to 1."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or not np.all(np.isfinite(f)) or np.any(f < 0) or abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"split_fractions: expected three non-negative (train, val, test) fractions summing to 1, got {fractions!r}"
        )
    return float(f[0]), float(f[1]), float(f[2])


def split_assignment(n_rows: int, fractions=DEFAULT_FRACTIONS, seed: int = 0, block: int = 1) -> np.ndarray:
    """Split of every pose row: 0 train, 1 val, 2 test.

    The shares are exact (``round(f * n_blocks)`` blocks each, in a hash order of the blocks), so the split of a
    row depends on the number of rows: rows appended to a flight move some existing rows to another split
    (e.g. 568 -> 668 rows in blocks of 25: 125 of the first 568 rows change, 50 of them from val / test into
    train). Compare models on one pose file; after a flight grows, train and validate again (`topoloc evaluate`
    warns when the training rows it reads are not the images a checkpoint trained on).

    Args:
        n_rows: rows of the flight's pose file.
        fractions: (train, val, test) shares of the blocks.
        seed: any non-negative integer; changes the order of the blocks.
        block: consecutive rows per block (>= 1).

    Returns:
        int8 array of shape (n_rows,).

    Example:
        >>> a = split_assignment(1000, (0.8, 0.1, 0.1), seed=0, block=1)
        >>> [int((a == k).sum()) for k in range(3)]
        [800, 100, 100]
        >>> b = split_assignment(100, block=10)  # whole runs of 10 rows share a split
        >>> bool(all(len(set(b[i:i + 10])) == 1 for i in range(0, 100, 10)))
        True
    """
    f = _check_settings(fractions, seed, block)
    block, seed = int(block), int(seed)
    n_blocks = -(-int(n_rows) // block)
    ids = np.arange(n_blocks, dtype=np.uint64)
    with np.errstate(over="ignore"):
        keys = _splitmix64(ids ^ _splitmix64(np.array([seed], dtype=np.uint64)))
    order = np.argsort(keys, kind="stable")
    n_train = int(round(f[0] * n_blocks))
    n_val = min(int(round(f[1] * n_blocks)), n_blocks - n_train)
    block_split = np.full(n_blocks, 2, dtype=np.int8)
    block_split[order[:n_train]] = 0
    block_split[order[n_train:n_train + n_val]] = 1
    return block_split[np.arange(int(n_rows)) // block]


def _check_settings(fractions, seed, block) -> tuple[float, float, float]:
    """The split's fractions (checked), after ``seed`` and ``block`` are checked; errors name each."""
    f = check_fractions(fractions)
    if isinstance(block, bool) or not isinstance(block, numbers.Integral) or block < 1:
        raise ValueError(f"split_block: expected a positive integer, got {block!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"split_seed: expected a non-negative integer, got {seed!r}")
    return f


def split_rows(
    rows: np.ndarray,
    n_rows: int,
    split: str | Sequence[int],
    fractions=DEFAULT_FRACTIONS,
    seed: int = 0,
    block: int = 1,
) -> np.ndarray:
    """Boolean mask of the ``rows`` that belong to ``split``.

    Args:
        rows: pose-row indices of the available images.
        n_rows: rows of the flight's pose file.
        split: ``"train"``, ``"val"``, ``"test"``, ``"all"``, or an explicit sequence of row indices.
        fractions, seed, block: see :func:`split_assignment`.

    Shape:
        rows: (M,) -> (M,) bool
    """
    rows = np.asarray(rows, dtype=np.int64)
    check_split(split)
    _check_settings(fractions, seed, block)  # unused by "all" and row lists, but a typo should not wait
    if isinstance(split, str):
        if split == "all":
            return np.ones(len(rows), dtype=bool)
        return split_assignment(n_rows, fractions, seed, block)[rows] == SPLITS.index(split)
    return np.isin(rows, np.asarray(list(split)))


def check_split(split) -> None:
    """Refuse a ``split`` that is neither one of `SPLITS` nor a 1-d sequence of integer row indices.

    Raises:
        ValueError: naming ``split`` and what it is.
    """
    if isinstance(split, str):
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS} or a sequence of row indices, got {split!r}")
        return
    try:
        wanted = np.asarray(list(split))
    except TypeError:
        wanted = None
    if wanted is None or wanted.ndim != 1 or (wanted.size and not np.issubdtype(wanted.dtype, np.integer)):
        raise ValueError(f"split: expected one of {SPLITS} or a 1-d sequence of integer row indices, got {split!r}")
