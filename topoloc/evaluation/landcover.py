"""Errors by land cover in view: which views carry a domain's error.

A model trained on renders can localise photos of open meadows about as well as renders and fail on
views of leafless forest (docs/RESULTS.md). Splitting the test images by the share of one land-cover
class in view, taken from the synthetic render's semantic map at the same pose, shows that. The
images are sorted by that share and cut into parts of (nearly) equal size; views with the same share
stay in one part (many views with none of a class make one larger part), so a part's error never
depends on where its images happened to sit in the flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from topoloc.data.pose_coverage import coverage

__all__ = ["SharePart", "class_shares", "errors_by_share", "rows_of_poses"]


@dataclass(frozen=True)
class SharePart:
    """One part of the images split by a class's share in view.

    Attributes:
        low, high: the smallest and largest share (0-1) of the class among the part's images.
        count: the number of images.
        median_m, median_deg: the part's median translation (m) and rotation (deg) error.
    """

    low: float
    high: float
    count: int
    median_m: float
    median_deg: float


def class_shares(semantics: np.ndarray, classes: Mapping[int, str]) -> dict[str, np.ndarray]:
    """The share of each class's pixels in each view.

    Args:
        semantics: (N, H, W) integer class ids, one map per image.
        classes: class id -> name, the classes to count.

    Returns:
        name -> (N,) float shares in [0, 1].

    Example:
        >>> sem = np.array([[[1, 1], [2, 3]], [[3, 3], [3, 3]]])
        >>> {k: v.tolist() for k, v in class_shares(sem, {1: "meadow", 3: "forest"}).items()}
        {'meadow': [0.5, 0.0], 'forest': [0.25, 1.0]}
    """
    sem = np.asarray(semantics)
    if sem.ndim != 3 or not np.issubdtype(sem.dtype, np.integer):
        raise ValueError(f"class_shares: `semantics` must be (N, H, W) integer class ids, got {sem.dtype} "
                         f"{sem.shape}")
    pixels = sem.shape[1] * sem.shape[2]
    if pixels == 0:
        raise ValueError(f"class_shares: `semantics` has maps of no pixels {sem.shape}; expected H, W >= 1")
    return {name: (sem == cid).reshape(len(sem), -1).sum(axis=1) / pixels for cid, name in classes.items()}


def errors_by_share(translation_m: np.ndarray, rotation_deg: np.ndarray, share: np.ndarray,
                    parts: int = 4) -> list[SharePart]:
    """Median errors of the images cut into ``parts`` groups of nearly equal size by ``share``.

    The images are sorted by share and cut in turn: each group takes its share of the images still left
    (rounded up, so without ties the sizes are `numpy.array_split`'s), and then every further image with
    the same share as its last one. Tied shares so never straddle two groups (the images of a tie would
    otherwise be split by their order in the flight); a group that nothing is left for is empty
    (``count`` 0, NaN bounds and medians), which only happens when ties take the last images.

    Args:
        translation_m, rotation_deg: (N,) errors of each image.
        share: (N,) a class's share in each image's view.
        parts: the number of groups (4: quarters), at most N.

    Returns:
        One `SharePart` per group, from the least to the most of the class in view.

    Example:
        >>> t = np.array([10.0, 20.0, 30.0, 40.0]); r = np.array([1.0, 2.0, 3.0, 4.0])
        >>> [(p.count, p.median_m) for p in errors_by_share(t, r, np.array([0.9, 0.1, 0.5, 0.2]), parts=2)]
        [(2, 30.0), (2, 20.0)]
    """
    t = np.asarray(translation_m, dtype=np.float64).ravel()
    r = np.asarray(rotation_deg, dtype=np.float64).ravel()
    s = np.asarray(share, dtype=np.float64).ravel()
    if not len(t) == len(r) == len(s):
        raise ValueError(f"errors_by_share: `translation_m`, `rotation_deg` and `share` must have one value per image, "
                         f"got {len(t)}, {len(r)} and {len(s)}")
    if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)) or not 1 <= parts <= len(s):
        raise ValueError(f"errors_by_share: `parts` must be an integer from 1 to the number of images ({len(s)}), "
                         f"got {parts!r}")
    order = np.argsort(s, kind="stable")
    ranked = s[order]
    out, start = [], 0
    for k in range(parts):
        end = min(len(s), start + -(-(len(s) - start) // (parts - k)))
        if 0 < end < len(s) and ranked[end - 1] == ranked[end]:  # a tie: all of it in this group
            end = int(np.searchsorted(ranked, ranked[end - 1], side="right"))
        idx = order[start:end]
        out.append(SharePart(float(s[idx].min()), float(s[idx].max()), len(idx), float(np.median(t[idx])),
                             float(np.median(r[idx]))) if len(idx) else
                   SharePart(float("nan"), float("nan"), 0, float("nan"), float("nan")))
        start = end
    return out


def rows_of_poses(c2w: np.ndarray, pose_file_c2w: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """The row of a pose file that holds each pose (the same camera centre and rotation).

    Test images of one pose file come in any order and any domain; their ground-truth poses say
    which row (and so which render's semantic map) each one is. The nearest row is the coverage's
    (`topoloc.data.pose_coverage.coverage`: position and angle weighted jointly), so a hover that
    turns on the spot finds the row of its own heading.

    Args:
        c2w: (N, 4, 4) camera-to-world poses to look up.
        pose_file_c2w: (M, 4, 4) the pose file's rows, in the same frame.
        tol: the largest mismatch accepted: metres between the camera centres plus the angle
            between the rotations in radians.

    Returns:
        (N,) row indices into ``pose_file_c2w``.

    Raises:
        ValueError: a pose is in no row (the message gives its index and its nearest mismatch).

    Example:
        >>> rows = np.tile(np.eye(4), (3, 1, 1)); rows[:, 0, 3] = [0.0, 5.0, 9.0]
        >>> rows_of_poses(rows[[2, 0]], rows).tolist()
        [2, 0]
    """
    a = np.asarray(c2w, dtype=np.float64)
    b = np.asarray(pose_file_c2w, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] != (4, 4) or b.ndim != 3 or b.shape[1:] != (4, 4) or not len(b):
        raise ValueError(f"rows_of_poses: expected (N, 4, 4) poses and a non-empty (M, 4, 4) pose file, got "
                         f"{a.shape} and {b.shape}")
    nearest = coverage(b, a)
    mismatch = nearest.distance_m + np.radians(nearest.angle_deg)
    bad = np.flatnonzero(mismatch > tol)
    if len(bad):
        raise ValueError(f"rows_of_poses: {len(bad)} pose(s) are in no row of the pose file (first: pose {bad[0]}, "
                         f"nearest row {nearest.nearest[bad[0]]} differs by {mismatch[bad[0]]:.3g}, more than {tol})")
    return np.asarray(nearest.nearest, dtype=np.int64)
