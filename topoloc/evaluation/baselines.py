"""Pose baselines that need no trained model: the constant pose and the coverage ceiling.

Every accuracy figure of an absolute pose regressor needs brackets (Sattler et al., CVPR 2019):

- the constant pose: every test image gets one pose, the training set's mean translation and the
  chordal mean of its rotations. A regressor that does not beat it has learnt nothing about the
  image;
- the coverage ceiling: every test image gets the training pose nearest to its TRUE pose under
  ``d = t_m + m_per_deg * r_deg`` (`topoloc.data.coverage`): the best that any method returning
  a training pose could do, even one that knew the answer.

The retrieval baseline, between the two, is in `topoloc.evaluation.retrieval`.
"""

from __future__ import annotations

import numpy as np
import torch

from topoloc.data.pose_coverage import DEFAULT_M_PER_DEG, Coverage, coverage
from topoloc.rotations import chordal_mean_rotation

__all__ = ["chordal_mean_rotation", "constant_pose", "coverage_ceiling"]


def _c2w(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] not in ((4, 4), (3, 4)) or len(a) == 0:
        raise ValueError(f"{name}: expected a non-empty batch of camera-to-world poses (N, 4, 4), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    return a


def constant_pose(train_c2w) -> np.ndarray:
    """The constant-pose baseline's one pose: mean training translation, chordal-mean rotation.

    Args:
        train_c2w: training camera-to-world poses (numpy or torch), any metric frame (metres).

    Returns:
        A (4, 4) float64 camera-to-world pose in the training poses' frame.

    Shape:
        train_c2w: (M, 4, 4) -> (4, 4)
    """
    train = _c2w(train_c2w, "train_c2w")
    out = np.eye(4)
    out[:3, :3] = chordal_mean_rotation(train[:, :3, :3])
    out[:3, 3] = train[:, :3, 3].mean(axis=0)
    return out


def coverage_ceiling(train_c2w, test_c2w, m_per_deg: float = DEFAULT_M_PER_DEG) -> tuple[np.ndarray, Coverage]:
    """The coverage ceiling's predictions: for each test pose, the training pose nearest to it
    under ``d = t_m + m_per_deg * r_deg`` (chosen knowing the true pose).

    Args:
        train_c2w: training camera-to-world poses; test_c2w: the TRUE test poses (same frame).
        m_per_deg: weight of the angle, metres per degree (see `topoloc.data.pose_coverage`).

    Returns:
        ``(pred_c2w (N, 4, 4) float64, Coverage)``: the chosen training poses and the coverage
        (their distances, angles and indices).

    Shape:
        train_c2w: (M, 4, 4), test_c2w: (N, 4, 4) -> (N, 4, 4)
    """
    train = _c2w(train_c2w, "train_c2w")
    cov = coverage(train, test_c2w, m_per_deg=m_per_deg)
    pred = np.tile(np.eye(4), (len(cov.nearest), 1, 1))
    pred[:, :3, :] = train[cov.nearest, :3, :]
    return pred, cov
