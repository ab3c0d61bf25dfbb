"""Pose normalisation for regression targets: AtLoc's translation mean / std and the log-quaternion.

AtLoc (``pose_stats``) centres and scales every translation by the per-axis mean and (population)
standard deviation of the training translations and represents the rotation by its log-quaternion.
:class:`PoseNormalizer` holds those statistics, turns camera-to-world poses into the model's
6-vector target and back, and is stored in every checkpoint through :meth:`PoseNormalizer.state_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from topoloc.rotations import matrix_to_quaternion, qexp, qlog, quaternion_to_matrix

__all__ = ["PoseNormalizer"]

#: A per-axis standard deviation below this (metres) is replaced by 1: the axis is only centred.
MIN_STD_M = 1e-6


def _as_c2w(x, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.ndim < 2 or tuple(t.shape[-2:]) not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected camera-to-world poses of shape (..., 4, 4) or (..., 3, 4), got {tuple(t.shape)}")
    return t


@dataclass(frozen=True)
class PoseNormalizer:
    """Translation mean / std of the training poses (AtLoc's ``pose_stats``) and the 6-d pose code.

    The code of a camera-to-world pose ``[R | t]`` is ``((t - mean_m) / std_m, qlog(R0^T R))``: three
    normalised translation coordinates, then AtLoc's log-quaternion (radians, w >= 0 hemisphere) of
    the rotation relative to a reference ``R0``.

    Why the reference: in a local ENU frame with OpenCV camera axes, a camera looking straight down
    is a 180 deg rotation (yaw 0: ``diag(1, -1, -1)``, quaternion ``(0, 1, 0, 0)``), exactly on the
    w = 0 boundary where the log-quaternion flips sign. Aerial datasets are full of such views, so the
    raw log-quaternion target jumps between opposite values for nearly identical images. :meth:`fit`
    takes ``R0`` as the chordal mean of the training rotations, which moves that boundary as far from
    the training views as it can go (for nadir views with any yaw, to a yaw of 180 deg from ``R0``).

    Args:
        mean_m: per-axis mean translation of the training poses, metres, in the dataset's frame.
        std_m: per-axis population standard deviation (ddof = 0), metres; must be positive.
        reference_rotation: ``R0`` as 9 numbers (row-major 3 x 3 rotation matrix, camera-to-world);
            ``None`` is the identity (AtLoc's original code).

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

    def __post_init__(self) -> None:
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
                raise ValueError(f"PoseNormalizer {name}: expected 3 finite numbers (metres), got {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(float(a) for a in v))
        if min(self.std_m) <= 0:
            raise ValueError(f"PoseNormalizer std_m: expected positive standard deviations, got {self.std_m}")

    @classmethod
    def fit(cls, c2w_n44, rotation_reference: str = "mean") -> "PoseNormalizer":
        """Statistics of the training poses (numpy or torch, camera-to-world, metres).

        An axis along which every training pose has the same coordinate gets std 1 (only centred).

        Args:
            c2w_n44: the training poses.
            rotation_reference: ``"mean"`` (the chordal mean of the training rotations: the sum of
                the matrices projected onto SO(3) by SVD) or ``"identity"`` (AtLoc's original code).

        Shape:
            c2w_n44: (N, 4, 4) or (N, 3, 4), N >= 1
        """
        c2w = _as_c2w(c2w_n44, "c2w_n44").detach().to("cpu", torch.float64).numpy()
        if c2w.ndim != 3 or len(c2w) == 0:
            raise ValueError(f"c2w_n44: expected a non-empty batch of shape (N, 4, 4), got {c2w.shape}")
        t = c2w[:, :3, 3]
        if not np.all(np.isfinite(t)):
            raise ValueError("c2w_n44: expected finite translations, got NaN or inf")
        std = t.std(axis=0)
        std = np.where(std < MIN_STD_M, 1.0, std)
        if rotation_reference not in ("mean", "identity"):
            raise ValueError(f"rotation_reference: expected 'mean' or 'identity', got {rotation_reference!r}")
        reference = None
        if rotation_reference == "mean":
            u, _, vt = np.linalg.svd(c2w[:, :3, :3].sum(axis=0))
            reference = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
            reference = tuple(reference.reshape(-1))
        return cls(tuple(t.mean(axis=0)), tuple(std), reference)

    def _reference(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.reference_rotation is None:
            return None
        return torch.tensor(self.reference_rotation, dtype=torch.float64, device=like.device).view(3, 3)

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kw = dict(dtype=torch.float64, device=like.device)
        return torch.tensor(self.mean_m, **kw), torch.tensor(self.std_m, **kw)

    def encode(self, c2w_b44, dtype: torch.dtype = torch.float32):
        """Camera-to-world poses to the model's target code.

        Args:
            c2w_b44: poses (torch tensor on any device, or numpy), metres.
            dtype: dtype of a torch result (computed in float64, then cast).

        Returns:
            ``(t_normalised (3), log_quaternion (3))`` per pose; a torch tensor on the input's
            device, or a float64 numpy array for numpy input.

        Shape:
            c2w_b44: (..., 4, 4) or (..., 3, 4) -> (..., 6)
        """
        was_numpy = not isinstance(c2w_b44, torch.Tensor)
        c2w = _as_c2w(c2w_b44, "c2w_b44").to(torch.float64)
        mean, std = self._stats(c2w)
        t = (c2w[..., :3, 3] - mean) / std
        rot = c2w[..., :3, :3]
        reference = self._reference(c2w)
        if reference is not None:
            rot = reference.T @ rot
        logq = qlog(matrix_to_quaternion(rot))
        out = torch.cat([t, logq], dim=-1)
        return out.cpu().numpy() if was_numpy else out.to(dtype)

    def decode(self, pred_b6):
        """The model's code back to camera-to-world poses (float64).

        The log-quaternion is exponentiated and normalised to a unit quaternion first, so any
        6-vector gives a proper rotation.

        Shape:
            pred_b6: (..., 6) -> (..., 4, 4)
        """
        was_numpy = not isinstance(pred_b6, torch.Tensor)
        p = pred_b6 if not was_numpy else torch.as_tensor(np.asarray(pred_b6, dtype=np.float64))
        if p.ndim < 1 or p.shape[-1] != 6:
            raise ValueError(f"pred_b6: expected shape (..., 6) (translation code, log-quaternion), got {tuple(p.shape)}")
        p = p.to(torch.float64)
        mean, std = self._stats(p)
        q = qexp(p[..., 3:])
        q = q / q.norm(dim=-1, keepdim=True)
        out = torch.zeros(*p.shape[:-1], 4, 4, dtype=torch.float64, device=p.device)
        rot = quaternion_to_matrix(q)
        reference = self._reference(p)
        out[..., :3, :3] = rot if reference is None else reference @ rot
        out[..., :3, 3] = p[..., :3] * std + mean
        out[..., 3, 3] = 1.0
        return out.cpu().numpy() if was_numpy else out

    def state_dict(self) -> dict[str, list[float] | None]:
        """Plain lists of floats (JSON / YAML friendly) for checkpoints."""
        ref = None if self.reference_rotation is None else list(self.reference_rotation)
        return {"mean_m": list(self.mean_m), "std_m": list(self.std_m), "reference_rotation": ref}

    @classmethod
    def from_state_dict(cls, state: dict) -> "PoseNormalizer":
        """Inverse of :meth:`state_dict`."""
        missing = {"mean_m", "std_m"} - set(state)
        if missing:
            raise ValueError(f"PoseNormalizer state: missing keys {sorted(missing)}; expected 'mean_m' and 'std_m'")
        ref = state.get("reference_rotation")  # absent in states written before it existed: identity
        return cls(tuple(state["mean_m"]), tuple(state["std_m"]), None if ref is None else tuple(ref))
