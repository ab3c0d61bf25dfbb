"""WGS84 <-> ECEF <-> local ENU, and Cesium yaw / pitch / roll <-> camera-to-world poses.

Frames and units:
    - WGS84 geodetic coordinates: latitude and longitude in degrees, ellipsoidal height in metres
      (EPSG:4979). Real DJI EXIF altitudes are above sea level and must be converted first
      (see :mod:`topoloc.data.exif`).
    - ECEF: Earth-centred, Earth-fixed cartesian metres (EPSG:4978).
    - ENU: a local east-north-up frame in metres about an origin (:class:`LocalFrame`).
    - Camera axes follow OpenCV: x right, y down, z forward (the viewing direction).
    - A Cesium pose row is ``(x, y, z, yaw, pitch, roll)``: ECEF metres, then degrees; yaw clockwise
      from north, pitch -90 looks straight down, roll about the viewing axis (TOPO / DJI).

The camera-to-ECEF rotation follows TOPO's CrossLoc convention:
``R = R_ned_in_ecef(lon, lat) @ Rz(yaw) Ry(pitch) Rx(roll)``, then columns reordered ``[1, 2, 0]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from topoloc.rotations import nearest_rotation, rotation_zyx

__all__ = [
    "TOPO_ORIGINS",
    "AREA_ORIGINS",
    "LocalFrame",
    "as_frame",
    "area_frame",
    "wgs84_to_ecef",
    "ecef_to_wgs84",
    "ned_in_ecef",
    "enu_in_ecef",
    "cesium_to_c2w",
    "c2w_to_cesium",
    "check_ecef_near_surface",
    "implausible_heights",
    "height_text",
]

#: Scene origins used by TOPO-DataGen and CrossLoc: (lat deg, lon deg, ellipsoidal h m).
TOPO_ORIGINS: dict[str, tuple[float, float, float]] = {
    "comballaz": (46.3705, 7.065, 1410.0),
    "epfl": (46.5191, 6.5668, 390.0),
}

#: Words that name an area (the start of a TOPO flight name, a CrossLoc scene folder) and the
#: `TOPO_ORIGINS` entry of that area.
AREA_ORIGINS: tuple[tuple[str, str], ...] = (
    ("comballaz", "comballaz"), ("sepey", "comballaz"), ("naturescape", "comballaz"),
    ("epfl", "epfl"), ("stsulpice", "epfl"), ("urbanscape", "epfl"),
)

#: Ellipsoidal heights outside this range (m) are taken as a broken pose: swapped lat / lon,
#: radians passed for degrees, or a local frame mistaken for ECEF.
PLAUSIBLE_HEIGHT_M = (-1_000.0, 100_000.0)


@lru_cache(maxsize=None)
def _transformers() -> tuple[Transformer, Transformer]:
    """(geodetic -> ECEF, ECEF -> geodetic), built once; axis order fixed to (lon, lat, h)."""
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    to_geo = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    return to_ecef, to_geo


def _as_float_arrays(names: tuple[str, ...], values: tuple) -> list[np.ndarray]:
    arrays = []
    for name, v in zip(names, values):
        a = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
        arrays.append(a)
    try:
        return list(np.broadcast_arrays(*arrays))
    except ValueError as err:
        shapes = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays))
        raise ValueError(f"expected arrays of one (broadcastable) shape, got {shapes}") from err


def wgs84_to_ecef(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike,
                  h_m: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 geodetic coordinates (EPSG:4979) to ECEF metres (EPSG:4978).

    Args:
        lat_deg: latitude in degrees, in [-90, 90].
        lon_deg: longitude in degrees (any value: 360 degrees apart is the same meridian).
        h_m: ellipsoidal height in metres.

    Returns:
        ``(x, y, z)`` in ECEF metres, each of the broadcast input shape.

    Shape:
        lat_deg, lon_deg, h_m: (...) broadcast together -> 3 x (...) float64

    Example:
        >>> x, y, z = wgs84_to_ecef(0.0, 0.0, 0.0)
        >>> round(float(x), 3), round(float(y), 3), round(float(z), 3)
        (6378137.0, 0.0, 0.0)
    """
    lat, lon, h = _as_float_arrays(("lat_deg", "lon_deg", "h_m"), (lat_deg, lon_deg, h_m))
    if np.any(np.abs(lat) > 90.0):
        bad = lat[np.abs(lat) > 90.0].ravel()[0]
        raise ValueError(
            f"lat_deg: expected latitudes in [-90, 90] degrees, got {bad} "
            "(are latitude and longitude swapped, or radians given?)"
        )
    # Longitude is periodic; PROJ gives inf beyond about 540 degrees, so wrap what lies outside [-180, 180]
    # (values inside are passed untouched, bit for bit).
    lon = np.where(np.abs(lon) > 180.0, np.remainder(lon + 180.0, 360.0) - 180.0, lon)
    x, y, z = _transformers()[0].transform(lon, lat, h)
    return np.asarray(x), np.asarray(y), np.asarray(z)


def ecef_to_wgs84(x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECEF metres (EPSG:4978) to WGS84 ``(lat_deg, lon_deg, h_m)`` (EPSG:4979, ellipsoidal height).

    Args:
        x, y, z: ECEF coordinates in metres (numbers or arrays that broadcast together).

    Returns:
        ``(lat_deg, lon_deg, h_m)``: latitude and longitude in degrees, ellipsoidal height in metres, each of the
        broadcast input shape.

    Shape:
        x, y, z: (...) broadcast together -> 3 x (...) float64

    Example:
        >>> lat, lon, h = ecef_to_wgs84(6378137.0, 0.0, 0.0)
        >>> float(lat), float(lon), round(float(h), 6)
        (0.0, 0.0, 0.0)
    """
    xa, ya, za = _as_float_arrays(("x", "y", "z"), (x, y, z))
    lon, lat, h = _transformers()[1].transform(xa, ya, za)
    return np.asarray(lat), np.asarray(lon), np.asarray(h)


def implausible_heights(points_n3) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the ECEF points whose ellipsoidal height lies outside `PLAUSIBLE_HEIGHT_M`, points so far
    out that WGS84 gives them no height (NaN) included, and every point's height (m).

    Shape:
        points_n3: (N, 3) -> (K,) int64, (N,) float64
    """
    p = np.asarray(points_n3, dtype=np.float64).reshape(-1, 3)
    _, _, h = ecef_to_wgs84(p[:, 0], p[:, 1], p[:, 2])
    lo, hi = PLAUSIBLE_HEIGHT_M
    return np.flatnonzero(~((h >= lo) & (h <= hi))), h


def height_text(h_m: float) -> str:
    """An ellipsoidal height for an error message: ``"-1950 m from the WGS84 ellipsoid"``, or what a NaN one means."""
    return f"{h_m:.0f} m from the WGS84 ellipsoid" if np.isfinite(h_m) else "too far from the Earth for a WGS84 height"


def check_ecef_near_surface(points_n3: np.ndarray, name: str = "points") -> None:
    """Raises ValueError unless every ECEF point lies within the plausible heights of a drone.

    A point thousands of km off the ellipsoid is the classic sign of swapped latitude / longitude,
    radians passed as degrees, or local coordinates passed as ECEF.
    """
    p = np.asarray(points_n3, dtype=np.float64).reshape(-1, 3)
    bad, h = implausible_heights(p)
    lo, hi = PLAUSIBLE_HEIGHT_M
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name}: row {i} {p[i].tolist()} is {height_text(h[i])}; expected ECEF "
            f"metres near the Earth's surface (height in [{lo:.0f}, {hi:.0f}] m). Swapped lat/lon, "
            "radians for degrees, or local coordinates?"
        )


def _check_ecef_sized(points_n3: np.ndarray, name: str) -> None:
    """Refuse points nearer the Earth's centre than 5,000 km: local coordinates passed as ECEF (a check of
    norms only; `check_ecef_near_surface` is the full one)."""
    radius = np.linalg.norm(points_n3, axis=-1)
    bad = np.flatnonzero(radius < 5.0e6)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: row {i} is {radius[i]:,.0f} m from the Earth's centre; expected ECEF metres "
                         "(about 6,371 km from it): coordinates of a local frame are already local")


def _check_local_sized(points_n3: np.ndarray, name: str) -> None:
    """Refuse local points farther than 5,000 km from the frame's origin: ECEF coordinates passed as local ones
    (the reverse of `_check_ecef_sized`; a drone's local frame spans kilometres)."""
    distance = np.linalg.norm(points_n3, axis=-1)
    bad = np.flatnonzero(distance > 5.0e6)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: row {i} is {distance[i]:,.0f} m from the frame's origin; expected local ENU metres "
                         "about it: ECEF coordinates (about 6,371 km from the Earth's centre) are already ECEF "
                         "(ecef_to_wgs84 reads them)")


def _check_shape(a: npt.ArrayLike, tail: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != len(tail) + 1 or a.shape[1:] != tail:
        want = ", ".join(["N", *map(str, tail)])
        raise ValueError(f"{name}: expected an array of shape ({want}), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
    return a


def ned_in_ecef(lat_deg, lon_deg) -> np.ndarray:
    """Columns north, east, down of the local NED frame, in ECEF.

    Shape:
        lat_deg, lon_deg: (N,) or scalars, broadcast together -> (N, 3, 3)
    """
    lat, lon = np.broadcast_arrays(np.deg2rad(np.atleast_1d(lat_deg)), np.deg2rad(np.atleast_1d(lon_deg)))
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    north = np.stack([-sl * co, -sl * so, cl], axis=-1)
    east = np.stack([-so, co, np.zeros_like(so)], axis=-1)
    down = np.stack([-cl * co, -cl * so, -sl], axis=-1)
    return np.stack([north, east, down], axis=-1)


def enu_in_ecef(lat_deg, lon_deg) -> np.ndarray:
    """Columns east, north, up of the local ENU frame, in ECEF.

    Shape:
        lat_deg, lon_deg: (N,) or scalars, broadcast together -> (N, 3, 3)
    """
    ned = ned_in_ecef(lat_deg, lon_deg)
    return np.stack([ned[..., 1], ned[..., 0], -ned[..., 2]], axis=-1)


# Camera (OpenCV) axes from body axes (x forward, y right, z down): cam x = body y, cam y = body z,
# cam z = body x, i.e. the CrossLoc column order [1, 2, 0].
_CAM_FROM_BODY_COLUMNS = [1, 2, 0]
_BODY_FROM_CAM_COLUMNS = [2, 0, 1]


def cesium_to_c2w(poses_n6: npt.ArrayLike) -> np.ndarray:
    """Cesium pose rows to camera-to-ECEF matrices with OpenCV camera axes (TOPO's CrossLoc convention).

    Args:
        poses_n6: rows ``(x, y, z, yaw, pitch, roll)``: ECEF metres, degrees.

    Returns:
        Camera-to-ECEF poses; columns 0-2 of the rotation are the camera's x (right), y (down),
        z (forward) axes in ECEF, column 3 its position.

    Shape:
        poses_n6: (N, 6) -> (N, 4, 4)

    Example:
        >>> x, y, z = wgs84_to_ecef(46.3705, 7.065, 1600.0)
        >>> c2w = cesium_to_c2w([[x, y, z, 0.0, -90.0, 0.0]])  # nadir view
        >>> frame = LocalFrame.named("comballaz")
        >>> (frame.c2w_ecef_to_enu(c2w)[0, :3, 2].round(6) + 0.0).tolist()  # forward axis in ENU: down
        [0.0, 0.0, -1.0]
    """
    poses = _check_shape(poses_n6, (6,), "poses_n6")
    check_ecef_near_surface(poses[:, :3], "poses_n6")
    lat, lon, _ = ecef_to_wgs84(poses[:, 0], poses[:, 1], poses[:, 2])
    body = ned_in_ecef(lat, lon) @ rotation_zyx(poses[:, 3], poses[:, 4], poses[:, 5])
    c2w = np.zeros((len(poses), 4, 4))
    c2w[:, :3, :3] = body[:, :, _CAM_FROM_BODY_COLUMNS]
    c2w[:, :3, 3] = poses[:, :3]
    c2w[:, 3, 3] = 1.0
    return c2w


def c2w_to_cesium(c2w_n44: npt.ArrayLike, gimbal_lock_tol: float = 1e-9) -> np.ndarray:
    """Camera-to-ECEF matrices (OpenCV axes) back to Cesium rows ``(x, y, z, yaw, pitch, roll)``.

    Yaw is in (-180, 180], pitch in [-90, 90], roll in (-180, 180]. At pitch = +-90 (nadir or
    zenith) only yaw +- roll is defined: roll is set to 0 and the whole heading goes into yaw, so
    the top edge of a nadir image faces the yaw direction (yaw 0: north up in the image).

    Args:
        c2w_n44: camera-to-ECEF poses (a (N, 3, 4) array is accepted too).
        gimbal_lock_tol: ``cos(pitch)`` below which the pose is treated as exactly nadir / zenith.

    Shape:
        c2w_n44: (N, 4, 4) -> (N, 6)
    """
    c2w = np.asarray(c2w_n44, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"c2w_n44: expected an array of shape (N, 4, 4), got {c2w.shape}")
    if not np.all(np.isfinite(c2w)):
        raise ValueError("c2w_n44: expected finite numbers, got NaN or inf")
    xyz = c2w[:, :3, 3]
    check_ecef_near_surface(xyz, "c2w_n44 translation")
    lat, lon, _ = ecef_to_wgs84(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    # Poses read from files are orthonormal only to their decimals (or to float32). Near nadir the entries
    # that give yaw and roll are about cos(pitch) in size, so rounding noise there made yaw and roll disagree
    # with each other: up to 180 deg off at pitch -90 for a matrix rounded to 6 decimals. Hence the nearest
    # rotation first, and roll from what yaw and pitch leave (entries of full size), so that the angles
    # always describe the rotation given.
    body_ecef = nearest_rotation(c2w[:, :3, :3][:, :, _BODY_FROM_CAM_COLUMNS])
    m = np.swapaxes(ned_in_ecef(lat, lon), -1, -2) @ body_ecef  # body attitude in NED
    cos_pitch = np.hypot(m[:, 0, 0], m[:, 1, 0])
    pitch = np.arctan2(-m[:, 2, 0], cos_pitch)
    locked = cos_pitch < gimbal_lock_tol
    yaw = np.where(locked, np.arctan2(-m[:, 0, 1], m[:, 1, 1]), np.arctan2(m[:, 1, 0], m[:, 0, 0]))
    # m = Rz(yaw) Ry(pitch) Rx(roll): Rx(roll) = Ry(pitch)^T Rz(yaw)^T m, roll from its entries (2, 1), (1, 1)
    rest = np.swapaxes(rotation_zyx(np.rad2deg(yaw), np.rad2deg(pitch), 0.0), -1, -2) @ m
    roll = np.where(locked, 0.0, np.arctan2(rest[:, 2, 1], rest[:, 1, 1]))
    angles = np.rad2deg(np.stack([yaw, pitch, roll], axis=-1))
    for col in (0, 2):  # map -180 to +180 so that the range is (-180, 180]
        angles[:, col] = np.where(angles[:, col] <= -180.0, angles[:, col] + 360.0, angles[:, col])
    return np.concatenate([xyz, angles], axis=-1)


@dataclass(frozen=True)
class LocalFrame:
    """A local east-north-up frame in metres about a WGS84 origin.

    Distances are the same in ECEF and in this frame (a rigid transform). TOPO's scene origins
    are available by name: ``LocalFrame.named("comballaz")`` and ``LocalFrame.named("epfl")``.

    Args:
        lat_deg: origin latitude in degrees.
        lon_deg: origin longitude in degrees.
        h_m: origin ellipsoidal height in metres.

    Example:
        >>> frame = LocalFrame.named("epfl")
        >>> frame.ecef_to_enu(frame.origin_ecef[None]).round(6).tolist()
        [[0.0, 0.0, 0.0]]
    """

    lat_deg: float
    lon_deg: float
    h_m: float

    def __post_init__(self) -> None:
        for name in ("lat_deg", "lon_deg", "h_m"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"LocalFrame {name}: expected a number, got {type(v).__name__} {v!r}")
            if not np.isfinite(v):
                raise ValueError(f"LocalFrame {name}: expected a finite number, got {v}")
        if abs(self.lat_deg) > 90:
            raise ValueError(f"LocalFrame lat_deg: expected a latitude in [-90, 90], got {self.lat_deg}")
        lo, hi = PLAUSIBLE_HEIGHT_M
        if not lo <= self.h_m <= hi:  # an origin a million kilometres up puts every pose's ENU coordinates there
            raise ValueError(f"LocalFrame h_m: expected an ellipsoidal height from {lo:g} to {hi:g} m (the frame's "
                             f"origin is near the ground where the drone flies), got {self.h_m:g}")
        x, y, z = wgs84_to_ecef(self.lat_deg, self.lon_deg, self.h_m)
        object.__setattr__(self, "origin_ecef", np.array([float(x), float(y), float(z)]))
        object.__setattr__(self, "rotation_enu_to_ecef", enu_in_ecef(self.lat_deg, self.lon_deg)[0])

    origin_ecef: np.ndarray = field(init=False, repr=False, compare=False)
    rotation_enu_to_ecef: np.ndarray = field(init=False, repr=False, compare=False)

    @classmethod
    def named(cls, name: str) -> "LocalFrame":
        """One of TOPO's scene origins: ``"comballaz"`` or ``"epfl"``."""
        if not isinstance(name, str):
            raise TypeError(f"LocalFrame.named: `name` must be an origin's name, one of {sorted(TOPO_ORIGINS)}, "
                            f"got {name!r}")
        key = name.lower()
        if key not in TOPO_ORIGINS:
            raise ValueError(f"LocalFrame.named: unknown origin {name!r}; expected one of {sorted(TOPO_ORIGINS)}")
        return cls(*TOPO_ORIGINS[key])

    def to_dict(self) -> dict[str, float]:
        """The origin as ``{"lat_deg", "lon_deg", "h_m"}`` (WGS84 degrees, ellipsoidal metres)."""
        return {"lat_deg": self.lat_deg, "lon_deg": self.lon_deg, "h_m": self.h_m}

    def ecef_to_enu(self, points_n3: npt.ArrayLike) -> np.ndarray:
        """ECEF points to local ENU metres. Shape: (N, 3) -> (N, 3)."""
        p = _check_shape(points_n3, (3,), "points_n3")
        _check_ecef_sized(p, "points_n3")
        return (p - self.origin_ecef) @ self.rotation_enu_to_ecef

    def enu_to_ecef(self, points_n3: npt.ArrayLike) -> np.ndarray:
        """Local ENU points to ECEF metres. Shape: (N, 3) -> (N, 3)."""
        p = _check_shape(points_n3, (3,), "points_n3")
        _check_local_sized(p, "points_n3")
        return p @ self.rotation_enu_to_ecef.T + self.origin_ecef

    def enu_to_wgs84(self, points_n3: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local ENU points to WGS84 ``(lat_deg, lon_deg, h_m)``. Shape: (N, 3) -> 3 x (N,)."""
        e = self.enu_to_ecef(points_n3)
        return ecef_to_wgs84(e[:, 0], e[:, 1], e[:, 2])

    def c2w_ecef_to_enu(self, c2w_n44: npt.ArrayLike) -> np.ndarray:
        """Camera-to-ECEF poses to camera-to-ENU poses. Shape: (N, 4, 4) -> (N, 4, 4)."""
        c2w = _check_shape(c2w_n44, (4, 4), "c2w_n44")
        _check_ecef_sized(c2w[:, :3, 3], "c2w_n44")
        out = np.zeros_like(c2w)
        rt = self.rotation_enu_to_ecef.T
        out[:, :3, :3] = rt @ c2w[:, :3, :3]
        out[:, :3, 3] = (c2w[:, :3, 3] - self.origin_ecef) @ self.rotation_enu_to_ecef
        out[:, 3, 3] = 1.0
        return out

    def c2w_enu_to_ecef(self, c2w_n44: npt.ArrayLike) -> np.ndarray:
        """Camera-to-ENU poses to camera-to-ECEF poses. Shape: (N, 4, 4) -> (N, 4, 4)."""
        c2w = _check_shape(c2w_n44, (4, 4), "c2w_n44")
        _check_local_sized(c2w[:, :3, 3], "c2w_n44")
        out = np.zeros_like(c2w)
        out[:, :3, :3] = self.rotation_enu_to_ecef @ c2w[:, :3, :3]
        out[:, :3, 3] = c2w[:, :3, 3] @ self.rotation_enu_to_ecef.T + self.origin_ecef
        out[:, 3, 3] = 1.0
        return out

    def cesium_to_c2w(self, poses_n6: npt.ArrayLike) -> np.ndarray:
        """Cesium pose rows to camera-to-ENU poses in this frame. Shape: (N, 6) -> (N, 4, 4)."""
        return self.c2w_ecef_to_enu(cesium_to_c2w(poses_n6))

    def c2w_to_cesium(self, c2w_n44: npt.ArrayLike) -> np.ndarray:
        """Camera-to-ENU poses in this frame to Cesium pose rows. Shape: (N, 4, 4) -> (N, 6)."""
        return c2w_to_cesium(self.c2w_enu_to_ecef(c2w_n44))


def as_frame(value: Any, where: str = "frame") -> LocalFrame:
    """The one reading of a frame argument: a `LocalFrame`, an origin name of `TOPO_ORIGINS`
    (``"comballaz"``, ``"epfl"``, any case), ``{lat_deg, lon_deg, h_m}`` (extra keys such as a
    checkpoint's ``name`` are ignored) or ``(lat_deg, lon_deg, h_m)``.

    Args:
        value: the frame as given.
        where: the argument, named in the error.

    Raises:
        ValueError: anything else (an unknown name lists the known ones).

    Example:
        >>> (as_frame("EPFL") == as_frame({"lat_deg": 46.5191, "lon_deg": 6.5668, "h_m": 390.0})
        ...  == LocalFrame.named("epfl"))
        True
    """
    if isinstance(value, LocalFrame):
        return value
    if isinstance(value, str):
        if value.lower() not in TOPO_ORIGINS:
            raise ValueError(f"{where}: unknown frame {value!r}; expected one of {sorted(TOPO_ORIGINS)}, a "
                             "LocalFrame, {lat_deg, lon_deg, h_m} or (lat, lon, h)")
        return LocalFrame.named(value)
    if isinstance(value, dict) and {"lat_deg", "lon_deg", "h_m"} <= set(value):
        return LocalFrame(float(value["lat_deg"]), float(value["lon_deg"]), float(value["h_m"]))
    if isinstance(value, (list, tuple)) and len(value) == 3 and not any(isinstance(v, str) for v in value):
        return LocalFrame(*(float(v) for v in value))
    raise ValueError(f"{where}: expected a frame name ({sorted(TOPO_ORIGINS)}), a LocalFrame, "
                     f"{{lat_deg, lon_deg, h_m}} or (lat, lon, h), got {value!r}")


def area_frame(name: str, frame: Any = None, *, anywhere: bool = False) -> LocalFrame:
    """The local frame of a flight or scene: ``frame`` if given (see `as_frame`), else TOPO's
    origin of the area whose word (`AREA_ORIGINS`) the name starts with (comballaz, sepey,
    naturescape -> Comballaz; EPFL, StSulpice, urbanscape -> EPFL).

    Args:
        name: a flight name (``"sepey-2021-10-13-outofplace"``) or a scene folder's name.
        frame: the frame asked for, or None.
        anywhere: also accept the area word inside the name, not only at its start.

    Raises:
        ValueError: no frame given and no area word in the name.

    Example:
        >>> area_frame("sepey-2021-10-13-outofplace") == LocalFrame.named("comballaz")
        True
    """
    if frame is not None:
        return as_frame(frame)
    key = str(name).lower()
    found = {origin: word for word, origin in reversed(AREA_ORIGINS)
             if key.startswith(word) or (anywhere and word in key)}
    if len(found) > 1:  # e.g. "epfl_naturescape": the first word in the table's order won, silently
        said = ", ".join(f"{word} -> {origin}" for origin, word in found.items())
        raise ValueError(f"{name!r}: the name holds words of two areas ({said}); pass the frame: an origin name "
                         "('comballaz' or 'epfl') or a LocalFrame")
    if found:
        return LocalFrame.named(next(iter(found)))
    where = "to contain" if anywhere else "to start with"
    raise ValueError(f"{name!r}: cannot tell the area from the name (expected it {where} one of "
                     f"{[w for w, _ in AREA_ORIGINS]}); pass the frame: an origin name ('comballaz' or 'epfl'; "
                     "--frame on the command line) or frame=LocalFrame(lat_deg, lon_deg, h_m)")
