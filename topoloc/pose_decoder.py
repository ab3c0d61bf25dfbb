"""Decode the pose code of an exported topoloc model with numpy alone (no torch): for the drone.

`topoloc export` writes ``model.onnx`` (images in, pose code out), ``model.json`` (the statistics
this module needs; the same JSON is in the ONNX metadata under ``topoloc``) and a copy of this
file, ``topoloc_pose_decoder.py``. This module imports only numpy and the standard library, so
it can be copied alone onto the drone's computer::

    import json, numpy as np, onnxruntime as ort
    from topoloc_pose_decoder import decode_pose, c2w_enu_to_ecef, ecef_to_wgs84

    stats = json.load(open("model.json"))
    session = ort.InferenceSession("model.onnx")
    code = session.run(None, {"images": images_uint8_b3hw})[0]    # (B, 3 + k)
    c2w_enu = decode_pose(code, stats)                           # (B, 4, 4) in the training frame
    c2w_ecef = c2w_enu_to_ecef(c2w_enu, stats["frame"])
    lat, lon, h = ecef_to_wgs84(*c2w_ecef[:, :3, 3].T)            # h: ellipsoidal, metres

The code is ``3 + k`` numbers: the translation normalised by the training statistics
(``(t - mean_m) / std_m``, metres, ENU) and the rotation relative to the reference ``R0``
(``reference_rotation``, row-major; identity when absent) as

- ``"log_quat"`` (k = 3): AtLoc's log-quaternion ``u``: ``q = (cos|u|, sin|u| u / |u|)``;
- ``"quat"`` (k = 4): a quaternion ``(w, x, y, z)``, normalised here;
- ``"6d"`` (k = 6): the first two columns of ``R0^T R`` (Zhou et al., CVPR 2019), column 0 then
  column 1, made orthonormal by Gram-Schmidt, the third column their cross product.

The absolute rotation is ``R = R0 @ R_rel`` (camera-to-world, OpenCV camera axes: x right, y down,
z forward). A statistics dict without ``rotation`` is ``"log_quat"`` (checkpoints written before
the rotation code was chosen).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ROTATION_SIZES", "decode_pose", "normalizer_stats", "c2w_enu_to_ecef", "ecef_to_wgs84"]

#: Numbers of the rotation part of the code, per rotation code type.
ROTATION_SIZES = {"log_quat": 3, "quat": 4, "6d": 6}

# WGS84 ellipsoid (EPSG:4326 / 4979).
_WGS84_A = 6378137.0
_WGS84_F = 1.0 / 298.257223563
_WGS84_E2 = _WGS84_F * (2.0 - _WGS84_F)


def normalizer_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The normaliser's statistics from an export JSON (its ``normalizer`` entry) or a
    ``PoseNormalizer.state_dict()`` itself, with ``rotation`` filled in (``"log_quat"`` if absent).

    Raises:
        ValueError: ``mean_m`` / ``std_m`` missing or not 3 finite numbers each, ``std_m`` not positive,
            ``reference_rotation`` not a rotation matrix of 9 finite numbers, or an unknown rotation code type.
    """
    if not isinstance(stats, dict):
        raise ValueError(f"stats: expected a dict (the export JSON or a normaliser state), got {type(stats).__name__}")
    norm = stats.get("normalizer", stats)
    if not isinstance(norm, dict) or not {"mean_m", "std_m"} <= set(norm):
        raise ValueError("stats: expected 'mean_m' and 'std_m' (a PoseNormalizer state) or a 'normalizer' entry "
                         f"holding them, got keys {sorted(norm) if isinstance(norm, dict) else norm!r}")
    rotation = norm.get("rotation") or stats.get("rotation") or "log_quat"
    if not isinstance(rotation, str) or rotation not in ROTATION_SIZES:
        raise ValueError(f"stats: unknown rotation code {rotation!r}; expected one of {sorted(ROTATION_SIZES)}")
    for key, size in (("mean_m", 3), ("std_m", 3), ("reference_rotation", 9)):
        value = norm.get(key)
        if value is None and key == "reference_rotation":
            continue
        try:
            array = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            array = None
        if array is None or array.size != size or not np.isfinite(array).all():
            raise ValueError(f"stats: {key!r}: expected {size} finite numbers, got {value!r}")
        # as PoseNormalizer refuses them: a damaged model.json decoded to wrong poses without a word
        if key == "std_m" and not (array > 0).all():
            raise ValueError(f"stats: 'std_m': expected positive standard deviations, got {value!r}")
        if key == "reference_rotation":
            m = array.reshape(3, 3)
            if not (np.allclose(m @ m.T, np.eye(3), atol=1e-6) and abs(np.linalg.det(m) - 1.0) < 1e-6):
                raise ValueError(f"stats: 'reference_rotation': expected a rotation matrix (row-major), got {value!r}")
    return {**norm, "rotation": rotation}


def _quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) to rotation matrices. Shape: (..., 4) -> (..., 3, 3)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _normalise(v: np.ndarray) -> np.ndarray:
    """``v / |v|`` along the last axis; NaN where ``|v| = 0``: a degenerate code has no rotation (as
    `topoloc.data.PoseNormalizer.decode`)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, v / np.where(n > 0, n, 1.0), np.nan)


def _rotation(code: np.ndarray, rotation: str) -> np.ndarray:
    if rotation == "log_quat":
        n = np.linalg.norm(code, axis=-1, keepdims=True)
        sinc = np.where(n > 1e-8, np.sin(n) / np.maximum(n, 1e-8), 1.0 - n * n / 6.0)
        q = np.concatenate([np.cos(n), code * sinc], axis=-1)
        return _quaternion_to_matrix(_normalise(q))
    if rotation == "quat":
        return _quaternion_to_matrix(_normalise(code))
    b1 = _normalise(code[..., 0:3])
    a2 = code[..., 3:6]
    b2 = _normalise(a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1)
    b3 = np.cross(b1, b2)
    r = np.stack([b1, b2, b3], axis=-1)
    return np.where(np.isnan(r).any(axis=(-2, -1))[..., None, None], np.nan, r)


def decode_pose(code, stats: dict[str, Any]) -> np.ndarray:
    """The model's pose code to camera-to-world poses in the training frame (ENU metres), float64.

    Args:
        code: the ONNX model's output, translation code then rotation code.
        stats: the export JSON (``model.json``) or a ``PoseNormalizer.state_dict()``.

    Returns:
        (..., 4, 4) camera-to-world poses: rotation ``R0 @ R_rel``, position ``code[:3] * std_m + mean_m``.

    Shape:
        code: (..., 3 + k), k = 3 (``log_quat``), 4 (``quat``) or 6 (``6d``) -> (..., 4, 4)

    Example:
        >>> stats = {"mean_m": [10.0, 0.0, 0.0], "std_m": [2.0, 1.0, 1.0], "rotation": "6d"}
        >>> c2w = decode_pose([1.0, 0.0, 0.0, 1, 0, 0, 0, 1, 0], stats)
        >>> c2w[:3, 3].tolist(), bool(np.allclose(c2w[:3, :3], np.eye(3)))
        ([12.0, 0.0, 0.0], True)
    """
    norm = normalizer_stats(stats)
    rotation = norm["rotation"]
    c = np.asarray(code, dtype=np.float64)
    k = ROTATION_SIZES[rotation]
    if c.ndim < 1 or c.shape[-1] != 3 + k:
        raise ValueError(f"code: expected shape (..., {3 + k}) (translation, {rotation!r} rotation), got {c.shape}")
    mean = np.asarray(norm["mean_m"], dtype=np.float64)
    std = np.asarray(norm["std_m"], dtype=np.float64)
    rot = _rotation(c[..., 3:], rotation)
    ref = norm.get("reference_rotation")
    if ref is not None:
        rot = np.asarray(ref, dtype=np.float64).reshape(3, 3) @ rot
    out = np.zeros((*c.shape[:-1], 4, 4))
    out[..., :3, :3] = rot
    out[..., :3, 3] = c[..., :3] * std + mean
    out[..., 3, 3] = 1.0
    return out


def _enu_basis(lat_deg: float, lon_deg: float) -> np.ndarray:
    """Columns east, north, up of the local frame in ECEF. Shape: (3, 3)."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sl, cl, so, co = math.sin(lat), math.cos(lat), math.sin(lon), math.cos(lon)
    return np.array([[-so, -sl * co, cl * co],
                     [co, -sl * so, cl * so],
                     [0.0, cl, sl]])


def _frame_origin(frame: Any) -> tuple[float, float, float]:
    """``frame``'s (lat_deg, lon_deg, h_m), refused in one line when it is not such a record."""
    keys = ("lat_deg", "lon_deg", "h_m")
    if not isinstance(frame, dict) or any(k not in frame for k in keys):
        raise ValueError(f"frame: expected the origin {{'lat_deg', 'lon_deg', 'h_m'}} (stats['frame'] of the export "
                         f"JSON), got {frame!r}")
    try:
        lat, lon, h = (float(frame[k]) for k in keys)
    except (TypeError, ValueError):
        raise ValueError(f"frame: expected numbers for {keys}, got {frame!r}") from None
    if not (abs(lat) <= 90 and abs(lon) <= 180 and math.isfinite(h)):
        raise ValueError(f"frame: expected latitude in [-90, 90], longitude in [-180, 180] and a finite height, "
                         f"got {frame!r}")
    return lat, lon, h


def c2w_enu_to_ecef(c2w_enu, frame: dict[str, float]) -> np.ndarray:
    """Camera-to-ENU poses to camera-to-ECEF poses (metres, EPSG:4978).

    Args:
        c2w_enu: poses in the local frame.
        frame: its origin ``{lat_deg, lon_deg, h_m}`` (WGS84, ellipsoidal height): ``stats["frame"]``.

    Shape:
        c2w_enu: (..., 4, 4) -> (..., 4, 4)
    """
    lat, lon, h = _frame_origin(frame)
    c2w = np.asarray(c2w_enu, dtype=np.float64)
    if c2w.ndim < 2 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w_enu: expected poses of shape (..., 4, 4), got {c2w.shape}")
    basis = _enu_basis(lat, lon)
    sl, cl = math.sin(math.radians(lat)), math.cos(math.radians(lat))
    n = _WGS84_A / math.sqrt(1.0 - _WGS84_E2 * sl * sl)
    origin = np.array([(n + h) * cl * math.cos(math.radians(lon)), (n + h) * cl * math.sin(math.radians(lon)),
                       (n * (1.0 - _WGS84_E2) + h) * sl])
    out = np.zeros_like(c2w)
    out[..., :3, :3] = basis @ c2w[..., :3, :3]
    out[..., :3, 3] = c2w[..., :3, 3] @ basis.T + origin
    out[..., 3, 3] = 1.0
    return out


def ecef_to_wgs84(x, y, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECEF metres to WGS84 latitude, longitude (deg) and ellipsoidal height (m).

    Fixed-point iteration on the latitude (converges to well under a millimetre in a few steps for
    points near the Earth's surface; not meant for points near the Earth's centre).
    """
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    lat = np.arctan2(z, p * (1.0 - _WGS84_E2))

    def height(lat):  # p cos(lat) + z sin(lat) - a^2 / n: no division by cos(lat), so also on the polar axis
        sin = np.sin(lat)
        n = _WGS84_A / np.sqrt(1.0 - _WGS84_E2 * sin**2)
        return n, p * np.cos(lat) + (z + _WGS84_E2 * n * sin) * sin - n

    for _ in range(6):
        n, h = height(lat)
        lat = np.arctan2(z, p * (1.0 - _WGS84_E2 * n / (n + h)))
    return np.degrees(lat), np.degrees(lon), height(lat)[1]
