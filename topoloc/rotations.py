"""Rotation representations: unit quaternions, AtLoc's log-quaternion, the 6D code, matrices, geodesic angles.

Quaternions are (w, x, y, z) with w >= 0 (the hemisphere AtLoc trains on). Every function is batched
over leading dimensions and accepts a numpy array or a torch tensor, returning the same kind; torch
inputs keep their device, dtype and autograd graph (integer and bool tensors become float64, as numpy
arrays do). Quaternion <-> matrix conversions use
``kornia.geometry.conversions``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from kornia.geometry import conversions

__all__ = [
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "qlog",
    "qexp",
    "canonical_quaternion",
    "geodesic_angle_deg",
    "quaternion_angle_deg",
    "rotation_zyx",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "chordal_mean_rotation",
    "nearest_rotation",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _to_torch(x) -> tuple[torch.Tensor, bool]:
    """Returns ``x`` as a tensor (float64 for numpy input, and for an integer or bool tensor) and whether it came
    from numpy."""
    if isinstance(x, torch.Tensor):
        return (x if x.is_floating_point() else x.to(torch.float64)), False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def _back(x: torch.Tensor, was_numpy: bool):
    return x.detach().cpu().numpy() if was_numpy else x


def _check_last_dims(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(x.shape[x.ndim - len(shape):]) != shape or x.ndim < len(shape):
        raise ValueError(f"{name}: expected shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


def _check_broadcast(a: torch.Tensor, b: torch.Tensor, trailing: int, names: str) -> None:
    """Refuse two batches whose leading shapes (all but the last ``trailing`` dims) do not broadcast."""
    try:
        torch.broadcast_shapes(a.shape[:a.ndim - trailing], b.shape[:b.ndim - trailing])
    except RuntimeError as err:
        raise ValueError(f"{names}: the batch shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from err


def canonical_quaternion(q: Array) -> Array:
    """Normalises quaternions and flips their sign so that w >= 0.

    Args:
        q: quaternions (w, x, y, z), not necessarily unit.

    Shape:
        q: (..., 4) -> (..., 4)
    """
    t, was_np = _to_torch(q)
    _check_last_dims(t, (4,), "q")
    t = t / t.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(t.dtype).tiny)
    sign = torch.where(t[..., :1] < 0, -1.0, 1.0).to(t.dtype)
    return _back(t * sign, was_np)


def quaternion_to_matrix(q: Array) -> Array:
    """Rotation matrices of unit quaternions (w, x, y, z).

    Shape:
        q: (..., 4) -> (..., 3, 3)
    """
    t, was_np = _to_torch(q)
    _check_last_dims(t, (4,), "q")
    lead = t.shape[:-1]
    r = conversions.quaternion_to_rotation_matrix(t.reshape(-1, 4))
    return _back(r.reshape(*lead, 3, 3), was_np)


def matrix_to_quaternion(r: Array) -> Array:
    """Unit quaternions (w, x, y, z), w >= 0, of rotation matrices.

    Shape:
        r: (..., 3, 3) -> (..., 4)
    """
    t, was_np = _to_torch(r)
    _check_last_dims(t, (3, 3), "r")
    lead = t.shape[:-2]
    eps = 1e-12 if t.dtype == torch.float64 else 1e-7
    q = conversions.rotation_matrix_to_quaternion(t.reshape(-1, 3, 3), eps=eps)
    return canonical_quaternion(_back(q.reshape(*lead, 4), was_np))


def qlog(q: Array) -> Array:
    """AtLoc's log-quaternion: ``arccos(w) * v / |v|`` of a unit quaternion ``(w, v)``.

    The quaternion is first brought to the hemisphere w >= 0, so the result has norm in
    [0, pi/2] (half the rotation angle, in radians).

    Shape:
        q: (..., 4) -> (..., 3)
    """
    t, was_np = _to_torch(q)
    _check_last_dims(t, (4,), "q")
    t = canonical_quaternion(t)
    w, v = t[..., :1], t[..., 1:]
    vnorm = v.norm(dim=-1, keepdim=True)
    # atan2 is exact where arccos(w) loses precision (w close to 1).
    angle = torch.atan2(vnorm, w)
    scale = torch.where(vnorm > 0, angle / vnorm.clamp_min(torch.finfo(t.dtype).tiny), torch.ones_like(vnorm))
    return _back(v * scale, was_np)


def qexp(logq: Array) -> Array:
    """Inverse of :func:`qlog`: ``(cos|u|, sin|u| * u / |u|)``.

    Shape:
        logq: (..., 3) -> (..., 4)
    """
    t, was_np = _to_torch(logq)
    _check_last_dims(t, (3,), "logq")
    n = t.norm(dim=-1, keepdim=True)
    sinc = torch.where(n > 1e-8, torch.sin(n) / n.clamp_min(1e-8), 1.0 - n * n / 6.0)
    q = torch.cat([torch.cos(n), t * sinc], dim=-1)
    return _back(q, was_np)


def geodesic_angle_deg(r1: Array, r2: Array) -> Array:
    """Angle of the rotation taking ``r1`` to ``r2`` (the geodesic distance on SO(3)), in degrees.

    Computed as ``atan2(|sin|, cos)`` of the relative rotation, accurate near 0 and 180 deg.

    Shape:
        r1, r2: (..., 3, 3), broadcastable -> (...)
    """
    a, np1 = _to_torch(r1)
    b, np2 = _to_torch(r2)
    _check_last_dims(a, (3, 3), "r1")
    _check_last_dims(b, (3, 3), "r2")
    _check_broadcast(a, b, 2, "geodesic_angle_deg: r1, r2")
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    m = a.transpose(-1, -2) @ b
    cos = (m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2] - 1.0) / 2.0
    axis = torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], dim=-1
    )
    sin = axis.norm(dim=-1) / 2.0
    return _back(torch.rad2deg(torch.atan2(sin, cos)), np1 and np2)


def quaternion_angle_deg(q1: Array, q2: Array) -> Array:
    """Rotation angle between unit quaternions, ``2 * atan2(|q1* q2|_v, |<q1, q2>|)``, in degrees.

    Shape:
        q1, q2: (..., 4), broadcastable -> (...)
    """
    a, np1 = _to_torch(q1)
    b, np2 = _to_torch(q2)
    _check_last_dims(a, (4,), "q1")
    _check_last_dims(b, (4,), "q2")
    _check_broadcast(a, b, 1, "quaternion_angle_deg: q1, q2")
    dtype = torch.promote_types(a.dtype, b.dtype)
    a = a.to(dtype) / a.norm(dim=-1, keepdim=True).to(dtype)
    b = b.to(dtype) / b.norm(dim=-1, keepdim=True).to(dtype)
    a, b = torch.broadcast_tensors(a, b)
    # Relative rotation conj(a) * b = (w1 w2 + v1.v2, w1 v2 - w2 v1 - v1 x v2): atan2 of its parts
    # stays accurate for tiny angles, where arccos of the dot product does not.
    dot = (a * b).sum(-1).abs()
    vec = a[..., :1] * b[..., 1:] - b[..., :1] * a[..., 1:] - torch.linalg.cross(a[..., 1:], b[..., 1:], dim=-1)
    sin_half = vec.norm(dim=-1)
    return _back(torch.rad2deg(2.0 * torch.atan2(sin_half, dot)), np1 and np2)


def rotation_zyx(yaw_deg, pitch_deg, roll_deg) -> np.ndarray:
    """``Rz(yaw) @ Ry(pitch) @ Rx(roll)``: intrinsic z-y'-x'' Tait-Bryan angles, in degrees.

    With the body frame x forward, y right, z down expressed in NED, this is the attitude
    convention of Cesium and DJI (yaw clockwise from north seen from above, pitch up positive).

    Shape:
        yaw_deg, pitch_deg, roll_deg: (N,) or scalars -> (N, 3, 3)
    """
    y, p, r = (np.deg2rad(np.atleast_1d(np.asarray(a, dtype=np.float64))) for a in (yaw_deg, pitch_deg, roll_deg))
    y, p, r = np.broadcast_arrays(y, p, r)
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    out = np.empty(y.shape + (3, 3))
    out[..., 0, 0] = cy * cp
    out[..., 0, 1] = cy * sp * sr - sy * cr
    out[..., 0, 2] = cy * sp * cr + sy * sr
    out[..., 1, 0] = sy * cp
    out[..., 1, 1] = sy * sp * sr + cy * cr
    out[..., 1, 2] = sy * sp * cr - cy * sr
    out[..., 2, 0] = -sp
    out[..., 2, 1] = cp * sr
    out[..., 2, 2] = cp * cr
    return out


def matrix_to_rot6d(r: Array) -> Array:
    """The continuous 6D code of rotation matrices (Zhou et al., CVPR 2019): their first two columns.

    The code is ``(r00, r10, r20, r01, r11, r21)``: column 0, then column 1. Unlike any 3- or
    4-number representation it has no jump: rotations a small angle apart have codes a small
    distance apart everywhere on SO(3) (``|code1 - code2| <= sqrt(2) * |R1 - R2|_F``).

    Shape:
        r: (..., 3, 3) -> (..., 6)
    """
    t, was_np = _to_torch(r)
    _check_last_dims(t, (3, 3), "r")
    return _back(torch.cat([t[..., :, 0], t[..., :, 1]], dim=-1), was_np)


def _unit_or_nan(v: torch.Tensor) -> torch.Tensor:
    """``v / |v|`` along the last axis; NaN where ``|v| = 0`` (no direction: no rotation to give)."""
    n = v.norm(dim=-1, keepdim=True)
    return torch.where(n > 0, v / torch.where(n > 0, n, torch.ones_like(n)), torch.full_like(v, float("nan")))


def rot6d_to_matrix(code: Array) -> Array:
    """Rotation matrices from 6D codes by Gram-Schmidt (the inverse of :func:`matrix_to_rot6d`).

    ``b1 = a1 / |a1|``, ``b2 = (a2 - (b1 . a2) b1) / |...|``, ``b3 = b1 x b2``; any code whose two
    halves are non-zero and not parallel gives a proper rotation, so a network's raw output can
    be decoded as it is. A degenerate code (a zero half, or exactly parallel halves) has no rotation:
    NaN, as `topoloc.pose_decoder` gives it.

    Shape:
        code: (..., 6) -> (..., 3, 3)

    Examples:
        >>> import numpy as np
        >>> r = rot6d_to_matrix(np.array([2.0, 0.0, 0.0, 1.0, 3.0, 0.0]))
        >>> r.round(6).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    t, was_np = _to_torch(code)
    _check_last_dims(t, (6,), "code")
    a1, a2 = t[..., :3], t[..., 3:]
    b1 = _unit_or_nan(a1)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = _unit_or_nan(a2)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    r = torch.stack([b1, b2, b3], dim=-1)
    r = torch.where(torch.isnan(r).flatten(-2).any(-1)[..., None, None], torch.full_like(r, float("nan")), r)
    return _back(r, was_np)


def chordal_mean_rotation(rotations_n33) -> np.ndarray:
    """The chordal L2 mean of rotations: the rotation minimising the sum of squared Frobenius
    (chordal) distances to them, i.e. their summed matrix projected onto SO(3) by SVD
    (Hartley, Trumpf, Dai and Li, "Rotation averaging", IJCV 2013).

    With ``U S V^T = sum_i R_i``, the mean is ``U diag(1, 1, det(U V^T)) V^T``.

    Args:
        rotations_n33: rotation matrices (numpy or torch).

    Shape:
        rotations_n33: (N, 3, 3), N >= 1 -> (3, 3) float64

    Example:
        >>> import numpy as np
        >>> def yaw(d):
        ...     a = np.radians(d)
        ...     return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        >>> np.allclose(chordal_mean_rotation(np.stack([yaw(30), yaw(-30)])), np.eye(3))
        True
    """
    r = rotations_n33.detach().cpu().double().numpy() if isinstance(rotations_n33, torch.Tensor) \
        else np.asarray(rotations_n33, dtype=np.float64)
    if r.ndim != 3 or r.shape[1:] != (3, 3) or len(r) == 0:
        raise ValueError(f"rotations_n33: expected a non-empty batch of (3, 3) rotations, got {r.shape}")
    return nearest_rotation(r.sum(axis=0))


def nearest_rotation(matrices_33) -> np.ndarray:
    """The rotation nearest each 3x3 matrix in the Frobenius norm: with ``U S V^T = M``,
    ``U diag(1, 1, det(U V^T)) V^T`` (a rotation, not a reflection). The chordal mean of rotations
    is the nearest rotation to their (weighted) sum.

    Shape:
        matrices_33: (..., 3, 3) -> (..., 3, 3) float64

    Example:
        >>> import numpy as np
        >>> nearest_rotation(2.0 * np.eye(3)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    u, _, vt = np.linalg.svd(np.asarray(matrices_33, dtype=np.float64))
    u = u.copy()
    u[..., :, 2] *= np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)[..., None]
    return u @ vt
