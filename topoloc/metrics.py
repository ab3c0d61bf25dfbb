"""Per-image pose errors and their summaries (median, mean, p90, CrossLoc accuracy thresholds)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from topoloc.rotations import geodesic_angle_deg

__all__ = ["CROSSLOC_THRESHOLDS", "pose_errors", "summarize", "PoseErrorSummary"]

#: (metres, degrees) accuracy thresholds of TOPO's CrossLoc benchmark.
CROSSLOC_THRESHOLDS: tuple[tuple[float, float], ...] = (
    (3.0, 3.0),
    (5.0, 5.0),
    (10.0, 7.0),
    (10.0, 10.0),
    (20.0, 10.0),
    (30.0, 10.0),
)


#: Largest entry of ``|R^T R - I|`` `pose_errors` accepts: float32 rotations decoded by a model are orthonormal
#: to about 1e-6; a scaled or sheared matrix, whose geodesic angle means nothing, is refused.
ROTATION_TOL = 1e-4


def _poses(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected camera-to-world poses of shape (N, 4, 4) or (N, 3, 4), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    r = a[:, :3, :3]
    gram = np.abs(r.transpose(0, 2, 1) @ r - np.eye(3)).max(axis=(1, 2))
    bad = np.flatnonzero((gram > ROTATION_TOL) | (np.linalg.det(r) < 0))
    if len(bad):
        raise ValueError(f"{name}[{bad[0]}]: expected a rotation in the upper-left 3 x 3 (orthonormal, determinant "
                         f"+1, to {ROTATION_TOL:g}), got one with |R^T R - I| = {gram[bad[0]]:.3g} and determinant "
                         f"{np.linalg.det(r[bad[0]]):.3g} ({len(bad)} of {len(a)} poses)")
    return a


#: Distances from the Earth's centre (m) of ECEF points at a drone's heights (PLAUSIBLE_HEIGHT_M of
#: `topoloc.geodesy` on the ellipsoid's 6,357-6,378 km), and the largest a local frame's points reach.
ECEF_RADIUS_M = (6.35e6, 6.48e6)
LOCAL_RADIUS_M = 1.0e6


def check_same_frame(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    """Refuse two sets of positions (N, 3) of which one is in ECEF and the other in a local frame.

    Classified by the median distance from the origin: ECEF points lie about 6,371 km from the Earth's
    centre (`ECEF_RADIUS_M`), a local frame's within `LOCAL_RADIUS_M` of its origin; anything else (a
    diverged model's predictions) is left to the caller's errors.
    """
    def frame(points: np.ndarray) -> str | None:
        if not len(points):
            return None
        radius = float(np.median(np.linalg.norm(points, axis=-1)))
        if ECEF_RADIUS_M[0] <= radius <= ECEF_RADIUS_M[1]:
            return "ECEF"
        return "a local frame" if radius <= LOCAL_RADIUS_M else None

    fa, fb = frame(a), frame(b)
    if fa and fb and fa != fb:
        ra, rb = (float(np.median(np.linalg.norm(p, axis=-1))) for p in (a, b))
        raise ValueError(f"{a_name} is in {fa} and {b_name} in {fb} (their positions lie at a median {ra:,.0f} m "
                         f"and {rb:,.0f} m from the origin); expected both in the same frame: "
                         "LocalFrame.c2w_ecef_to_enu or c2w_enu_to_ecef converts one")


def pose_errors(pred_c2w: npt.ArrayLike | torch.Tensor,
                gt_c2w: npt.ArrayLike | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Translation error (Euclidean, metres) and rotation error (geodesic angle, degrees) per image.

    Both poses must be in the same metric frame (ECEF or a local ENU frame: distances agree).

    Args:
        pred_c2w: predicted camera-to-world poses (numpy or torch).
        gt_c2w: ground-truth camera-to-world poses.

    Returns:
        ``(translation_m, rotation_deg)``, each float64 (N,).

    Raises:
        ValueError: not (N, 4, 4) or (N, 3, 4), not finite, different counts, or a rotation part that is not a
            rotation (orthonormal to `ROTATION_TOL`, determinant +1); the message names the argument and row.

    Shape:
        pred_c2w, gt_c2w: (N, 4, 4) or (N, 3, 4) -> (N,), (N,)
    """
    pred, gt = _poses(pred_c2w, "pred_c2w"), _poses(gt_c2w, "gt_c2w")
    if len(pred) != len(gt):
        raise ValueError(f"pred_c2w has {len(pred)} poses but gt_c2w has {len(gt)}; expected the same number")
    check_same_frame(pred[:, :3, 3], "pred_c2w", gt[:, :3, 3], "gt_c2w")
    translation_m = np.linalg.norm(pred[:, :3, 3] - gt[:, :3, 3], axis=-1)
    rotation_deg = geodesic_angle_deg(pred[:, :3, :3], gt[:, :3, :3])
    return translation_m, np.asarray(rotation_deg, dtype=np.float64)


def _thresholds(thresholds) -> list[tuple[float, float]]:
    try:
        pairs = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        pairs = None
    if pairs is None or pairs.ndim != 2 or pairs.shape[1] != 2 or not np.all(np.isfinite(pairs)) or np.any(pairs <= 0):
        raise ValueError(f"thresholds: expected (metres, degrees) pairs of positive numbers, e.g. ((5, 5), (10, 7)), "
                         f"got {thresholds!r}")
    return [(float(m), float(d)) for m, d in pairs]


def _label(metres: float, degrees: float) -> str:
    return f"{metres:g}m_{degrees:g}deg"


@dataclass
class PoseErrorSummary:
    """Summary statistics of per-image pose errors.

    ``within`` maps a threshold label such as ``"5m_5deg"`` to the share (0..1) of images whose
    translation error is below the metres AND whose rotation error is below the degrees.
    """

    count: int
    median_m: float
    median_deg: float
    mean_m: float
    mean_deg: float
    p90_m: float
    p90_deg: float
    within: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every field as a plain dict (``within``: threshold label -> share of images)."""
        return asdict(self)

    def to_json(self, **kwargs) -> str:
        """`to_dict` as JSON; ``kwargs`` go to `json.dumps` (e.g. ``indent=2``)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict) -> "PoseErrorSummary":
        return cls(**d)

    def table(self, title: str | None = None) -> str:
        """A markdown table of the summary."""
        lines = [f"**{title}** ({self.count} images)", ""] if title else [f"{self.count} images", ""]
        lines += [
            "| statistic | translation (m) | rotation (deg) |",
            "| --- | ---: | ---: |",
            f"| median | {self.median_m:.2f} | {self.median_deg:.2f} |",
            f"| mean | {self.mean_m:.2f} | {self.mean_deg:.2f} |",
            f"| p90 | {self.p90_m:.2f} | {self.p90_deg:.2f} |",
        ]
        if self.within:
            lines += ["", "| within | " + " | ".join(self.within) + " |",
                      "| --- |" + " ---: |" * len(self.within),
                      "| share | " + " | ".join(f"{100 * v:.1f}%" for v in self.within.values()) + " |"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _one_per_image(values, name: str) -> np.ndarray:
    """``values`` as a flat float64 array: (N,), a column (N, 1) or a number; more than one column is refused."""
    a = np.asarray(values, dtype=np.float64)
    if sum(size != 1 for size in a.shape) > 1:  # (N, 3) per-axis offsets would count as 3N images
        raise ValueError(f"{name}: expected one error per image, shape (N,), got shape {a.shape} (per-axis "
                         "differences? pose_errors gives the errors of two sets of poses)")
    return a.ravel()


def summarize(
    translation_m: npt.ArrayLike | torch.Tensor,
    rotation_deg: npt.ArrayLike | torch.Tensor,
    thresholds: tuple[tuple[float, float], ...] = CROSSLOC_THRESHOLDS,
) -> PoseErrorSummary:
    """Median, mean, 90th percentile and the share within each (metres, degrees) threshold.

    Args:
        translation_m: per-image translation errors in metres.
        rotation_deg: per-image rotation errors in degrees.
        thresholds: (metres, degrees) pairs; an image counts when both errors are strictly below.

    Shape:
        translation_m, rotation_deg: (N,)

    Example:
        >>> s = summarize([1.0, 2.0, 40.0], [1.0, 2.0, 1.0])
        >>> s.median_m, s.within["3m_3deg"]
        (2.0, 0.6666666666666666)
    """
    t = _one_per_image(translation_m, "translation_m")
    r = _one_per_image(rotation_deg, "rotation_deg")
    if t.shape != r.shape:
        raise ValueError(f"translation_m has {t.size} values but rotation_deg has {r.size}; expected the same number")
    if t.size == 0:
        raise ValueError("translation_m: expected at least one error to summarise, got none")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(r))):
        raise ValueError("translation_m / rotation_deg: expected finite errors, got NaN or inf")
    for name, values, what in (("translation_m", t, "distances"), ("rotation_deg", r, "angles")):
        if np.any(values < 0):
            i = int(np.flatnonzero(values < 0)[0])
            raise ValueError(f"{name}: errors are {what}, expected values >= 0, got {values[i]:g} at index {i} "
                             "(signed differences? pose_errors gives the errors of two sets of poses)")
    within = {_label(m, d): float(np.mean((t < m) & (r < d))) for m, d in _thresholds(thresholds)}
    return PoseErrorSummary(
        count=int(t.size),
        median_m=float(np.median(t)),
        median_deg=float(np.median(r)),
        mean_m=float(np.mean(t)),
        mean_deg=float(np.mean(r)),
        p90_m=float(np.percentile(t, 90)),
        p90_deg=float(np.percentile(r, 90)),
        within=within,
    )
