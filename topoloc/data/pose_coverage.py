"""How far each test pose lies from the training poses (an absolute pose regressor mostly interpolates).

Sattler et al. (CVPR 2019) showed that absolute pose regressors behave much like retrieval of the
nearest training image; the distance from each test pose to the nearest training pose tells how
much of a test set asks for extrapolation. Every evaluation report carries this table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from topoloc.rotations import geodesic_angle_deg

__all__ = ["Coverage", "coverage"]

#: Distance matrix entries computed at once (bounds memory: 4M float64 = 32 MB per chunk).
CHUNK_ELEMENTS = 4_000_000


def _c2w(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected camera-to-world poses of shape (N, 4, 4) or (N, 3, 4), got {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name}: expected at least one pose, got none")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    return a


@dataclass
class Coverage:
    """Per test pose: the nearest training pose by position, its distance and the rotation angle to it.

    Attributes:
        distance_m: Euclidean distance to the nearest training position, metres. Shape (N,).
        angle_deg: geodesic angle between the test rotation and that nearest training pose's
            rotation, degrees. Shape (N,).
        nearest: index of that training pose. Shape (N,).
    """

    distance_m: np.ndarray
    angle_deg: np.ndarray
    nearest: np.ndarray

    def summary(self) -> dict[str, float]:
        """Median, mean, p90 and max of the distances and angles, and the number of test poses."""
        d, a = self.distance_m, self.angle_deg
        return {
            "count": int(d.size),
            "median_m": float(np.median(d)),
            "mean_m": float(np.mean(d)),
            "p90_m": float(np.percentile(d, 90)),
            "max_m": float(np.max(d)),
            "median_deg": float(np.median(a)),
            "mean_deg": float(np.mean(a)),
            "p90_deg": float(np.percentile(a, 90)),
            "max_deg": float(np.max(a)),
        }

    def table(self, title: str | None = None) -> str:
        """A markdown table of :meth:`summary` for the evaluation report."""
        s = self.summary()
        head = f"**{title}** " if title else ""
        return "\n".join(
            [
                f"{head}(nearest training pose by position, {s['count']} test poses)",
                "",
                "| statistic | distance (m) | angle (deg) |",
                "| --- | ---: | ---: |",
                *(f"| {k} | {s[k + '_m']:.2f} | {s[k + '_deg']:.2f} |" for k in ("median", "mean", "p90", "max")),
            ]
        )

    def __str__(self) -> str:
        return self.table()


def coverage(train_c2w, test_c2w) -> Coverage:
    """For each test pose, the distance and rotation angle to the nearest training pose (by position).

    Exact nearest neighbours, vectorised in chunks of test poses (30,000 x 5,000 pairs take well
    under a second on a CPU). Both sets must be in the same metric frame (ENU or ECEF).

    Args:
        train_c2w: training camera-to-world poses (numpy or torch).
        test_c2w: test camera-to-world poses.

    Shape:
        train_c2w: (M, 4, 4), test_c2w: (N, 4, 4) -> Coverage of (N,) arrays

    Example:
        >>> import numpy as np
        >>> train = np.tile(np.eye(4), (2, 1, 1)); train[1, :3, 3] = [10.0, 0.0, 0.0]
        >>> test = np.eye(4)[None].copy(); test[0, :3, 3] = [7.0, 4.0, 0.0]
        >>> c = coverage(train, test)
        >>> float(c.distance_m[0]), int(c.nearest[0]), float(c.angle_deg[0])
        (5.0, 1, 0.0)
    """
    train, test = _c2w(train_c2w, "train_c2w"), _c2w(test_c2w, "test_c2w")
    # Centre on the training mean: keeps |a|^2 + |b|^2 - 2ab accurate for ECEF-sized coordinates.
    centre = train[:, :3, 3].mean(axis=0)
    tr, te = train[:, :3, 3] - centre, test[:, :3, 3] - centre
    tr_sq = np.einsum("ij,ij->i", tr, tr)
    nearest = np.empty(len(te), dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // len(tr))
    for s in range(0, len(te), step):
        chunk = te[s:s + step]
        d2 = tr_sq[None, :] - 2.0 * chunk @ tr.T
        nearest[s:s + step] = np.argmin(d2, axis=1)
    distance = np.linalg.norm(te - tr[nearest], axis=1)
    angle = np.asarray(geodesic_angle_deg(test[:, :3, :3], train[nearest, :3, :3]), dtype=np.float64)
    return Coverage(distance_m=distance, angle_deg=angle, nearest=nearest)
