"""Pose normalisation for regression targets: AtLoc's translation mean / std and a rotation code.

AtLoc (``pose_stats``) centres and scales every translation by the per-axis mean and (population)
standard deviation of the training translations and represents the rotation by its log-quaternion.
:class:`PoseNormalizer` holds those statistics and the rotation code (the continuous 6D code by
default, a unit quaternion, or AtLoc's log-quaternion), turns camera-to-world poses into the
model's target vector and back, and is stored in every checkpoint through
:meth:`PoseNormalizer.state_dict`.
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch

from topoloc.rotations import (
    canonical_quaternion,
    chordal_mean_rotation,
    matrix_to_quaternion,
    matrix_to_rot6d,
    qexp,
    qlog,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

__all__ = ["PoseNormalizer", "ROTATION_CODES"]

#: Rotation codes of `PoseNormalizer` and their sizes (the same names as `topoloc.models.ROTATION_FORMATS`).
ROTATION_CODES = {"6d": 6, "quat": 4, "log_quat": 3}

#: A per-axis standard deviation below this (metres) is replaced by 1: the axis is only centred.
MIN_STD_M = 1e-6
#: A per-axis standard deviation below this share of the largest axis's is raised to it (with a warning): a flight
#: flown at one height (EPFL-2020-11-11-planned: 0.05 m against 71 m) made 1 m of height error weigh as much as
#: 1,400 m of horizontal error in the loss, and put test heights a few metres off in codes of hundreds.
MIN_STD_SHARE = 0.01


def _as_c2w(x, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.ndim < 2 or tuple(t.shape[-2:]) not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected camera-to-world poses of shape (..., 4, 4) or (..., 3, 4), "
                         f"got {tuple(t.shape)}")
    return t


@dataclass(frozen=True)
class PoseNormalizer:
    """Translation mean / std of the training poses (AtLoc's ``pose_stats``) and the pose code.

    The code of a camera-to-world pose ``[R | t]`` is ``(t - mean_m) / std_m`` (three normalised
    translation coordinates) followed by a code of the rotation ``R0^T R`` relative to a reference
    ``R0``:

    - ``"6d"`` (default): its first two columns (Zhou et al., CVPR 2019), 6 numbers. Continuous on
      all of SO(3): nearby rotations always get nearby codes. Decoded by Gram-Schmidt.
    - ``"quat"``: its unit quaternion (w, x, y, z), w >= 0, 4 numbers. ``q`` and ``-q`` are the
      same rotation; `topoloc.models.AtLocLoss` compares quaternions sign-invariantly.
    - ``"log_quat"``: AtLoc's log-quaternion (radians, w >= 0 hemisphere), 3 numbers; for the
      original code and its checkpoints.

    Why the 6D default: in a local ENU frame with OpenCV camera axes, a camera looking straight
    down is a 180 deg rotation (yaw 0: ``diag(1, -1, -1)``, quaternion ``(0, 1, 0, 0)``), exactly
    on the w = 0 boundary where the log-quaternion flips sign. :meth:`fit` takes ``R0`` as the
    chordal mean of the training rotations, which moves that boundary away from the training views
    where their rotations cluster. TOPO flights cover every heading, though, so some views always sit
    near it and near-identical images get log-quaternion codes far apart; and for headings spread
    evenly the mean is ill-defined (for ``comballaz-LHS`` dropping one pose of 30,000 turns it by
    3.4 deg; it is stored with the model, so results stay consistent). The 6D code has no boundary.

    Args:
        mean_m: per-axis mean translation of the training poses, metres, in the dataset's frame.
        std_m: per-axis population standard deviation (ddof = 0), metres; must be positive.
        reference_rotation: ``R0`` as 9 numbers (row-major 3 x 3 rotation matrix, camera-to-world);
            ``None`` is the identity (AtLoc's original code).
        rotation: the rotation code, ``"6d"``, ``"quat"`` or ``"log_quat"``.

    Example:
        >>> import torch
        >>> c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
        >>> c2w[:, 0, 3] = torch.tensor([0.0, 10.0])
        >>> norm = PoseNormalizer.fit(c2w)
        >>> norm.mean_m, norm.std_m
        ((5.0, 0.0, 0.0), (5.0, 1.0, 1.0))
        >>> norm.encode(c2w)[:, :3].tolist()
        [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
        >>> torch.allclose(norm.decode(norm.encode(c2w)), c2w, atol=1e-5)
        True
    """

    mean_m: tuple[float, float, float]
    std_m: tuple[float, float, float]
    reference_rotation: tuple[float, ...] | None = None
    rotation: str = "6d"

    def __post_init__(self) -> None:
        if self.rotation not in ROTATION_CODES:
            raise ValueError(f"PoseNormalizer rotation: expected one of {sorted(ROTATION_CODES)}, "
                             f"got {self.rotation!r}")
        if self.reference_rotation is not None:
            r = np.asarray(self.reference_rotation, dtype=np.float64).reshape(-1)
            if r.shape != (9,) or not np.all(np.isfinite(r)):
                raise ValueError("PoseNormalizer reference_rotation: expected 9 finite numbers (a row-major 3 x 3 "
                                 f"rotation), got {self.reference_rotation!r}")
            m = r.reshape(3, 3)
            if not (np.allclose(m @ m.T, np.eye(3), atol=1e-6) and abs(np.linalg.det(m) - 1.0) < 1e-6):
                raise ValueError(f"PoseNormalizer reference_rotation: expected a rotation matrix, got {m.tolist()}")
            object.__setattr__(self, "reference_rotation", tuple(float(a) for a in r))
        for name in ("mean_m", "std_m"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.shape != (3,) or not np.all(np.isfinite(v)):
                raise ValueError(f"PoseNormalizer {name}: expected 3 finite numbers (metres), "
                                 f"got {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(float(a) for a in v))
        if min(self.std_m) <= 0:
            raise ValueError(f"PoseNormalizer std_m: expected positive standard deviations, got {self.std_m}")

    @property
    def code_dim(self) -> int:
        """Length of the pose code: 3 translation numbers + the rotation code's (9, 7 or 6)."""
        return 3 + ROTATION_CODES[self.rotation]

    @classmethod
    def fit(cls, c2w_n44, rotation_reference: str = "mean", rotation: str = "6d") -> "PoseNormalizer":
        """Statistics of the training poses (numpy or torch, camera-to-world, metres).

        An axis along which every training pose has the same coordinate gets std 1 (only centred); one whose std
        is below 1 % of the largest axis's is raised to that, with a warning (a flight flown at one height).
        Rotations that are not rotations (a reflection, a scaled matrix) are refused, naming the first pose.

        Args:
            c2w_n44: the training poses.
            rotation_reference: ``"mean"`` (the chordal mean of the training rotations: the sum of
                the matrices projected onto SO(3) by SVD) or ``"identity"`` (AtLoc's original code).
            rotation: the rotation code (``"6d"``, ``"quat"``, ``"log_quat"``); it must match the
                model's output (`topoloc.models.AtLoc` ``rotation``).

        Shape:
            c2w_n44: (N, 4, 4) or (N, 3, 4), N >= 1
        """
        c2w = _as_c2w(c2w_n44, "c2w_n44").detach().to("cpu", torch.float64).numpy()
        if c2w.ndim != 3 or len(c2w) == 0:
            raise ValueError(f"c2w_n44: expected a non-empty batch of shape (N, 4, 4), got {c2w.shape}")
        t = c2w[:, :3, 3]
        for what, part in (("translations", t), ("rotations", c2w[:, :3, :3])):
            bad = np.flatnonzero(~np.isfinite(part.reshape(len(part), -1)).all(axis=1))
            if bad.size:  # a NaN rotation was "SVD did not converge" in the chordal mean
                raise ValueError(f"c2w_n44: expected finite {what}, pose {bad[0]} holds NaN or inf")
        rot = c2w[:, :3, :3]
        gram_error = np.abs(np.swapaxes(rot, -1, -2) @ rot - np.eye(3)).max(axis=(1, 2))
        bad = np.flatnonzero((gram_error > 1e-3) | (np.linalg.det(rot) < 0))
        if bad.size:  # a reflection (ENU and NED mixed) or a scaled matrix decoded to other poses
            raise ValueError(f"c2w_n44: expected rotations in the upper-left 3 x 3 blocks (orthonormal, determinant "
                             f"+1); {bad.size} pose(s) are not, the first pose {bad[0]} (determinant "
                             f"{np.linalg.det(rot[bad[0]]):.4g}, |R^T R - I| up to {gram_error[bad[0]]:.3g})")
        std = t.std(axis=0)
        std = np.where(std < MIN_STD_M, 1.0, std)
        floor = MIN_STD_SHARE * float(std.max())
        if (std < floor).any():
            axes = [f"{'xyz'[i]} {std[i]:.3g} m" for i in np.flatnonzero(std < floor)]
            warnings.warn(f"PoseNormalizer.fit: the training positions hardly vary along {', '.join(axes)} (the "
                          f"largest axis: {std.max():.3g} m); raised to {floor:.3g} m ({MIN_STD_SHARE:.0%} of it), "
                          "so that an error along it does not outweigh the others in the loss", stacklevel=2)
            std = np.maximum(std, floor)
        if rotation_reference not in ("mean", "identity"):
            raise ValueError(f"rotation_reference: expected 'mean' or 'identity', got {rotation_reference!r}")
        reference = None
        if rotation_reference == "mean":
            reference = tuple(chordal_mean_rotation(c2w[:, :3, :3]).reshape(-1))
        return cls(tuple(t.mean(axis=0)), tuple(std), reference, rotation)

    def _reference(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.reference_rotation is None:
            return None
        return torch.tensor(self.reference_rotation, dtype=torch.float64, device=like.device).view(3, 3)

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kw: dict[str, Any] = dict(dtype=torch.float64, device=like.device)
        return torch.tensor(self.mean_m, **kw), torch.tensor(self.std_m, **kw)

    # a torch tensor gives a torch tensor, anything else a float64 numpy array
    @overload
    def encode(self, c2w_b44: torch.Tensor, dtype: torch.dtype = ...) -> torch.Tensor: ...
    @overload
    def encode(self, c2w_b44: np.ndarray, dtype: torch.dtype = ...) -> np.ndarray: ...
    def encode(self, c2w_b44: torch.Tensor | np.ndarray,
               dtype: torch.dtype = torch.float32) -> torch.Tensor | np.ndarray:
        """Camera-to-world poses to the model's target code.

        Args:
            c2w_b44: poses (torch tensor on any device, or numpy), metres.
            dtype: floating-point dtype of a torch result (computed in float64, then cast).

        Returns:
            ``(t_normalised (3), rotation code (6, 4 or 3))`` per pose; a torch tensor on the
            input's device, or a float64 numpy array for numpy input.

        Shape:
            c2w_b44: (..., 4, 4) or (..., 3, 4) -> (..., code_dim)
        """
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype: expected a floating-point torch dtype (the codes are fractions), got {dtype!r}")
        was_numpy = not isinstance(c2w_b44, torch.Tensor)
        c2w = _as_c2w(c2w_b44, "c2w_b44").to(torch.float64)
        mean, std = self._stats(c2w)
        t = (c2w[..., :3, 3] - mean) / std
        rot = c2w[..., :3, :3]
        reference = self._reference(c2w)
        if reference is not None:
            rot = reference.T @ rot
        if self.rotation == "6d":
            code = matrix_to_rot6d(rot)
        elif self.rotation == "quat":
            code = canonical_quaternion(matrix_to_quaternion(rot))
        else:
            code = qlog(matrix_to_quaternion(rot))
        out = torch.cat([t, code], dim=-1)
        return out.cpu().numpy() if was_numpy else out.to(dtype)

    @overload
    def decode(self, pred_b6: torch.Tensor) -> torch.Tensor: ...
    @overload
    def decode(self, pred_b6: np.ndarray) -> np.ndarray: ...
    def decode(self, pred_b6: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """The model's code back to camera-to-world poses (float64).

        Any vector gives a proper rotation: a 6D code is orthonormalised by Gram-Schmidt, a
        quaternion normalised, a log-quaternion exponentiated and normalised; except a degenerate
        one, which has no rotation and gives NaN (a zero quaternion; a 6D code with a zero half or
        exactly parallel halves), as the exported `topoloc.pose_decoder` does.

        Shape:
            pred_b6: (..., code_dim) -> (..., 4, 4)
        """
        was_numpy = not isinstance(pred_b6, torch.Tensor)
        p = pred_b6 if isinstance(pred_b6, torch.Tensor) else torch.as_tensor(np.asarray(pred_b6, dtype=np.float64))
        if p.ndim < 1 or p.shape[-1] != self.code_dim:
            raise ValueError(f"pred_b6: expected shape (..., {self.code_dim}) (translation code, {self.rotation!r} "
                             f"rotation code), got {tuple(p.shape)}")
        p = p.to(torch.float64)
        mean, std = self._stats(p)
        if self.rotation == "6d":
            rot = rot6d_to_matrix(p[..., 3:])
        else:
            q = p[..., 3:] if self.rotation == "quat" else qexp(p[..., 3:])
            rot = quaternion_to_matrix(q / q.norm(dim=-1, keepdim=True))
        out = torch.zeros(*p.shape[:-1], 4, 4, dtype=torch.float64, device=p.device)
        reference = self._reference(p)
        out[..., :3, :3] = rot if reference is None else reference @ rot
        out[..., :3, 3] = p[..., :3] * std + mean
        out[..., 3, 3] = 1.0
        return out.cpu().numpy() if was_numpy else out

    def state_dict(self) -> dict[str, list[float] | str | None]:
        """Plain lists of floats and the rotation code's name (JSON / YAML friendly) for checkpoints."""
        ref = None if self.reference_rotation is None else list(self.reference_rotation)
        return {"mean_m": list(self.mean_m), "std_m": list(self.std_m), "reference_rotation": ref,
                "rotation": self.rotation}

    @classmethod
    def from_state_dict(cls, state: dict) -> "PoseNormalizer":
        """Inverse of :meth:`state_dict`."""
        missing = {"mean_m", "std_m"} - set(state)
        if missing:
            raise ValueError(f"PoseNormalizer state: missing keys {sorted(missing)}; expected 'mean_m' and 'std_m'")
        ref = state.get("reference_rotation")  # absent in states written before it existed: identity
        rotation = state.get("rotation", "log_quat")  # absent before the 6D code: AtLoc's log-quaternion
        return cls(tuple(state["mean_m"]), tuple(state["std_m"]), None if ref is None else tuple(ref), rotation)
