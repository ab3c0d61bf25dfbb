"""How far each test pose lies from the training poses (an absolute pose regressor mostly interpolates).

Sattler et al. (CVPR 2019) showed that absolute pose regressors behave much like retrieval of the
nearest training image; the training pose nearest to each test pose tells how much of a test set
asks for extrapolation, and its errors are the *coverage ceiling*: the best that any method
returning a training pose could do, even one that knew the true pose.

"Nearest" is measured jointly in position and angle, ``d = t_m + m_per_deg * r_deg`` (translation
distance in metres plus the geodesic angle in degrees, weighted). The default weight, 1 m per
degree, is the exchange rate of TOPO's CrossLoc accuracy thresholds ((3 m, 3 deg), (5 m, 5 deg),
(10 m, 10 deg)...): a pose 1 m further away or 1 deg further turned counts the same. Position
alone (``m_per_deg=0``) ignores where the camera looks: an aerial flight covers every heading, and
the nearest training position is then often a view of another part of the scene (77-127 deg off on
the Comballaz LHS poses).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from topoloc.metrics import check_same_frame
from topoloc.rotations import geodesic_angle_deg

__all__ = ["Coverage", "coverage", "DEFAULT_M_PER_DEG"]

#: Distance matrix entries computed at once (bounds memory: 4M float64 = 32 MB per matrix and chunk).
CHUNK_ELEMENTS = 4_000_000
#: Default weight of the angle in the joint measure ``d = t_m + m_per_deg * r_deg`` (metres per degree).
DEFAULT_M_PER_DEG = 1.0


def _c2w(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected camera-to-world poses of shape (N, 4, 4) or (N, 3, 4), got {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name}: expected at least one pose, got none")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    return a


def _check_weight(m_per_deg) -> float:
    if isinstance(m_per_deg, bool) or not isinstance(m_per_deg, numbers.Real) or not np.isfinite(float(m_per_deg)) \
            or m_per_deg < 0:
        raise ValueError(f"m_per_deg: expected a finite non-negative weight (metres per degree), got {m_per_deg!r}")
    return float(m_per_deg)


@dataclass
class Coverage:
    """Per test pose: the nearest training pose under ``d = t_m + m_per_deg * r_deg``, and its errors.

    Attributes:
        distance_m: Euclidean distance from the test position to that nearest training pose's, metres. Shape (N,).
        angle_deg: geodesic angle between the test rotation and that training pose's rotation, degrees. Shape (N,).
        nearest: index of that training pose. Shape (N,).
        m_per_deg: the weight of the angle in the joint measure (metres per degree; 0: position only).
        position_m: distance to the nearest training POSITION whatever its rotation, metres (N,), or None.
    """

    distance_m: np.ndarray
    angle_deg: np.ndarray
    nearest: np.ndarray
    m_per_deg: float = DEFAULT_M_PER_DEG
    position_m: np.ndarray | None = None

    @property
    def joint(self) -> np.ndarray:
        """The joint measure ``distance_m + m_per_deg * angle_deg`` of each test pose (N,)."""
        return self.distance_m + self.m_per_deg * self.angle_deg

    def summary(self) -> dict[str, float]:
        """Median, mean, p90 and max of the distances and angles (of the same nearest poses), the
        median and p90 distance to the nearest position, the weight and the number of test poses."""
        d, a = self.distance_m, self.angle_deg
        out = {
            "count": int(d.size),
            "m_per_deg": self.m_per_deg,
            "median_m": float(np.median(d)),
            "mean_m": float(np.mean(d)),
            "p90_m": float(np.percentile(d, 90)),
            "max_m": float(np.max(d)),
            "median_deg": float(np.median(a)),
            "mean_deg": float(np.mean(a)),
            "p90_deg": float(np.percentile(a, 90)),
            "max_deg": float(np.max(a)),
        }
        if self.position_m is not None:
            out["median_position_m"] = float(np.median(self.position_m))
            out["p90_position_m"] = float(np.percentile(self.position_m, 90))
        return out

    def table(self, title: str | None = None) -> str:
        """A markdown table of :meth:`summary` for the evaluation report."""
        s = self.summary()
        head = f"**{title}** " if title else ""
        pos = self.position_m is not None
        p = self.position_m if self.position_m is not None else np.zeros(1)
        pos_stats = {"median": np.median(p), "mean": np.mean(p), "p90": np.percentile(p, 90), "max": np.max(p)}
        return "\n".join(
            [
                f"{head}(nearest training pose by distance + {self.m_per_deg:g} m/deg x angle, "
                f"{s['count']} test poses)",
                "",
                "| statistic | distance (m) | angle (deg) |" + (" nearest position (m) |" if pos else ""),
                "| --- | ---: | ---: |" + (" ---: |" if pos else ""),
                *(f"| {k} | {s[k + '_m']:.2f} | {s[k + '_deg']:.2f} |"
                  + (f" {pos_stats[k]:.2f} |" if pos else "")
                  for k in ("median", "mean", "p90", "max")),
            ]
        )

    def __str__(self) -> str:
        return self.table()


def coverage(train_c2w: npt.ArrayLike | torch.Tensor, test_c2w: npt.ArrayLike | torch.Tensor,
             m_per_deg: float = DEFAULT_M_PER_DEG) -> Coverage:
    """For each test pose, the nearest training pose under ``d = t_m + m_per_deg * r_deg``, its
    distance (m) and rotation angle (deg), and the distance to the nearest training position.

    Exact nearest neighbours, vectorised over chunks of test poses: the translation distances and
    the rotation angles (from ``trace(R_test^T R_train)``) of every pair in a chunk are two matrix
    products. Both sets must be in the same metric frame (ENU or ECEF).

    Args:
        train_c2w: training camera-to-world poses (numpy or torch).
        test_c2w: test camera-to-world poses.
        m_per_deg: weight of the angle, metres per degree (see the module docstring for the
            default); 0 picks the nearest position, whatever the rotation.

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
    w = _check_weight(m_per_deg)
    train, test = _c2w(train_c2w, "train_c2w"), _c2w(test_c2w, "test_c2w")
    check_same_frame(train[:, :3, 3], "train_c2w", test[:, :3, 3], "test_c2w")
    # Centre on the training mean: keeps |a|^2 + |b|^2 - 2ab accurate for ECEF-sized coordinates.
    centre = train[:, :3, 3].mean(axis=0)
    tr, te = train[:, :3, 3] - centre, test[:, :3, 3] - centre
    tr_sq = np.einsum("ij,ij->i", tr, tr)
    tr_rot = train[:, :3, :3].reshape(len(train), 9)
    te_rot = test[:, :3, :3].reshape(len(test), 9)
    nearest = np.empty(len(te), dtype=np.int64)
    nearest_pos = np.empty(len(te), dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // len(tr))
    for s in range(0, len(te), step):
        chunk = te[s:s + step]
        d2 = tr_sq[None, :] - 2.0 * chunk @ tr.T  # |te - tr|^2 - |te|^2: same argmin
        nearest_pos[s:s + step] = np.argmin(d2, axis=1)
        if w == 0.0:
            nearest[s:s + step] = nearest_pos[s:s + step]
            continue
        dist = np.sqrt(np.maximum(d2 + np.einsum("ij,ij->i", chunk, chunk)[:, None], 0.0))
        cos = np.clip((te_rot[s:s + step] @ tr_rot.T - 1.0) / 2.0, -1.0, 1.0)  # trace(Ra^T Rb) = sum(Ra * Rb)
        nearest[s:s + step] = np.argmin(dist + w * np.degrees(np.arccos(cos)), axis=1)
    distance = np.linalg.norm(te - tr[nearest], axis=1)
    angle = np.asarray(geodesic_angle_deg(test[:, :3, :3], train[nearest, :3, :3]), dtype=np.float64)
    position = np.linalg.norm(te - tr[nearest_pos], axis=1)
    return Coverage(distance_m=distance, angle_deg=angle, nearest=nearest, m_per_deg=w, position_m=position)
