"""Training poses that cover a flight: views jittered along it (its corridor), and the rules all samplers share.

An absolute pose regressor interpolates between its training views (Sattler et al., CVPR 2019),
so the views it is trained on must surround the poses it will be asked about. These samplers work
on raw TOPO pose rows and write pose files that TOPO-DataGen (and ``topoloc render --poses``)
renders.

Pose rows are ``(x, y, z, yaw, pitch, roll)``: ECEF metres (EPSG:4978), then Cesium / DJI degrees
(yaw clockwise from north, pitch -90 looks straight down, roll about the viewing axis). Every
sampler returns yaw in [-180, 180), pitch in [-90, 0] and roll in [-180, 180). (TOPO-DataGen's own
``*-LHS`` presets store yaw in [0, 360) and its real flights in (-180, 180]: the same headings.)

This module holds the corridor sampler and the checks and angle conventions every sampler shares;
the Latin hypercubes are in :mod:`topoloc.data.pose_lhs`, the pose files in
:mod:`topoloc.data.pose_files`. All of them are pure geometry (numpy and :mod:`topoloc.geodesy`);
whether a camera is above the terrain is checked where a terrain exists
(:func:`topoloc.procedural.check_clearance`).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from topoloc._flags import check_flag
from topoloc.geodesy import (PLAUSIBLE_HEIGHT_M, LocalFrame, as_frame, ecef_to_wgs84, enu_in_ecef, height_text,
                             implausible_heights)

__all__ = ["corridor", "wrap_deg", "fold_pitch_deg"]

#: Horizontal displacement (m) between a row's neighbours below which the drone is taken as hovering.
HOVER_M = 0.5
#: Median distance (m) between consecutive rows above which `corridor` doubts that they are a flight path.
PATH_STEP_M = 100.0


# ----------------------------------------------------------------------------------- validation
def _check_rows(rows, name: str = "flight_rows") -> np.ndarray:
    if isinstance(rows, str):  # a flight's name, as the CLI's --flight takes it
        raise ValueError(f"{name}: expected pose rows of shape (N, 6) (ECEF x, y, z m, yaw, pitch, roll deg), got "
                         f"the str {rows[:60]!r}; a vendored flight's rows are topoloc.load_preset({rows[:60]!r}), "
                         "a pose file's topoloc.data.read_pose_file(path)")
    try:
        a = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected pose rows of shape (N, 6) (ECEF x, y, z m, yaw, pitch, roll deg), got "
                         f"{type(rows).__name__} {str(rows)[:60]!r}") from err
    if a.ndim != 2 or a.shape[1] != 6:
        raise ValueError(f"{name}: expected pose rows of shape (N, 6) (ECEF x, y, z m, yaw, pitch, roll deg), "
                         f"got {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name}: expected at least one pose row, got none")
    if not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.all(np.isfinite(a), axis=1))
        raise ValueError(f"{name}: expected finite numbers, rows {bad[:5].tolist()} hold NaN or inf")
    far, h = implausible_heights(a[:, :3])
    if far.size:
        raise ValueError(f"{name}: rows {far[:5].tolist()} lie {height_text(h[far[0]])}; expected ECEF metres "
                         "near the Earth's surface (lat/lon swapped, or local coordinates?)")
    return a


def radians_warning(rows: np.ndarray, name: str) -> str | None:
    """The warning for pose rows whose angles look like radians, or None: every yaw, pitch and roll within
    +-2 pi, every pitch within [-pi / 2, 0], and not all of them 0 (in degrees: a camera within 6.3 deg of
    north, level and within 1.6 deg of the horizon, in every row).

    Example:
        >>> rows = np.array([[4.3e6, 5.0e5, 4.6e6, 1.2, -0.9, 0.02], [4.3e6, 5.0e5, 4.6e6, -2.8, -1.1, 0.0]])
        >>> radians_warning(rows, "poses.npy").split(":")[0]
        'poses.npy'
        >>> radians_warning(rows * [1, 1, 1, 57.3, 57.3, 57.3], "poses.npy") is None
        True
    """
    angles = np.asarray(rows, dtype=np.float64)[:, 3:6]
    if not (np.all(np.abs(angles) <= 2 * np.pi) and np.all((angles[:, 1] >= -np.pi / 2) & (angles[:, 1] <= 0.0))
            and np.any(np.abs(angles) > 1e-6)):
        return None
    return (f"{name}: every yaw, pitch and roll lies within +-2 pi and every pitch within [-pi/2, 0]: angles in "
            "radians? Pose rows take Cesium yaw, pitch, roll in degrees (np.degrees converts); used as given")


def _check_number(v, name: str, what: str) -> float:
    """A finite real number >= 0 (not a bool, not a string)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(float(v)) or v < 0:
        raise ValueError(f"{name}: expected {what} (a finite number >= 0), got {v!r}")
    return float(v)


def _check_ground(ground_m) -> None:
    if ground_m is not None and not callable(ground_m):
        raise ValueError(f"ground_m: expected None or a function of (east_m, north_m) returning heights, got "
                         f"{type(ground_m).__name__} {ground_m!r}")


#: The most views a sampler draws at once: tens of GB of memory at about 340 bytes a view, far more than any
#: renderer would be given (TOPO-DataGen's datasets hold thousands).
MAX_VIEWS = 100_000_000


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {n!r}")
    if n > MAX_VIEWS:
        raise ValueError(f"{name}: expected at most {MAX_VIEWS:,} views (about 340 bytes of memory each), got {n:,}")
    return int(n)


def _check_triple(v, name: str, what: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected three numbers ({what}), got {v!r}") from err
    if a.shape != (3,) or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name}: expected three non-negative numbers ({what}), got {v!r}")
    return a


def _check_band(v, name: str, lo: float = -np.inf, hi: float = np.inf) -> tuple[float, float]:
    try:
        if isinstance(v, str):  # "01" would read as (0, 1)
            raise TypeError
        a, b = (float(x) for x in v)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected (min, max), got {v!r}") from err
    if not (np.isfinite(a) and np.isfinite(b)) or a > b or a < lo or b > hi:
        within = f" within [{lo:g}, {hi:g}]" if np.isfinite(lo) or np.isfinite(hi) else ""
        raise ValueError(f"{name}: expected finite (min, max) with min <= max{within}, got {v!r}")
    return a, b


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    return np.random.default_rng(int(seed))


def _rows_frame(rows: np.ndarray, frame) -> LocalFrame:
    """``frame`` (any form :func:`topoloc.geodesy.as_frame` reads), or for None a local ENU frame at the
    rows' mean geodetic position."""
    if frame is not None:
        return as_frame(frame)
    lat, lon, h = ecef_to_wgs84(*rows[:, :3].mean(0))
    return LocalFrame(float(lat), float(lon), float(h))


# ------------------------------------------------------------------------------------- angles
def wrap_deg(angle_deg) -> np.ndarray:
    """Angles (deg) wrapped to [-180, 180).

    Example:
        >>> wrap_deg([180.0, -190.0, 359.0]).tolist()
        [-180.0, 170.0, -1.0]
    """
    wrapped = np.mod(np.asarray(angle_deg, dtype=np.float64) + 180.0, 360.0) - 180.0
    # np.mod rounds a remainder a hair below 360 up to 360 (-180.00000000000003 -> 180.0): wrap that too
    return wrapped - 360.0 * (wrapped >= 180.0)


def fold_pitch_deg(pitch_deg) -> np.ndarray:
    """Pitches (deg) reflected into [-90, 0] at both ends: -95 -> -85, 4 -> -4 (a triangle wave).

    Reflection (rather than clipping) keeps a jittered pitch near a bound spread out instead of
    piling samples exactly on it.

    Example:
        >>> fold_pitch_deg([-95.0, 4.0, -30.0]).tolist()
        [-85.0, -4.0, -30.0]
    """
    return -np.abs(np.mod(np.asarray(pitch_deg, dtype=np.float64) + 90.0, 180.0) - 90.0)


# ------------------------------------------------------------------------------------ corridor
def _track_axes(rows: np.ndarray, hover_m: float = HOVER_M) -> np.ndarray:
    """Across-track, along-track and up unit vectors of each row, in ECEF.

    Along is the horizontal direction of travel between the row's neighbours (central
    difference; one-sided at the ends), or the heading (yaw) when the drone hovers. Across is
    along turned 90 deg clockwise seen from above (to the right of travel). Up is the local
    ellipsoid normal.

    Shape:
        rows: (N, 6) -> (N, 3, 3), columns across, along, up.
    """
    xyz = rows[:, :3]
    lat, lon, _ = ecef_to_wgs84(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    enu = enu_in_ecef(lat, lon)  # (N, 3, 3) columns east, north, up
    if len(rows) > 1:
        nxt = np.r_[np.arange(1, len(rows)), len(rows) - 1]
        prv = np.r_[0, np.arange(0, len(rows) - 1)]
        d = xyz[nxt] - xyz[prv]
    else:
        d = np.zeros((1, 3))
    de = np.einsum("nk,nk->n", d, enu[:, :, 0])
    dn = np.einsum("nk,nk->n", d, enu[:, :, 1])
    norm = np.hypot(de, dn)
    yaw = np.deg2rad(rows[:, 3])
    hover = norm < hover_m
    ae = np.where(hover, np.sin(yaw), de / np.where(hover, 1.0, norm))
    an = np.where(hover, np.cos(yaw), dn / np.where(hover, 1.0, norm))
    along = ae[:, None] * enu[:, :, 0] + an[:, None] * enu[:, :, 1]
    across = an[:, None] * enu[:, :, 0] - ae[:, None] * enu[:, :, 1]
    return np.stack([across, along, enu[:, :, 2]], axis=-1)


# without return_base the rows alone: the overloads tell the type checker which of the two comes back
@overload
def corridor(flight_rows: npt.ArrayLike, n: int, sigma_m: npt.ArrayLike = ..., sigma_deg: npt.ArrayLike = ...,
             seed: int = ..., pick: str = ..., return_base: Literal[False] = ...) -> np.ndarray: ...
@overload
def corridor(flight_rows: npt.ArrayLike, n: int, sigma_m: npt.ArrayLike = ..., sigma_deg: npt.ArrayLike = ...,
             seed: int = ..., pick: str = ..., *, return_base: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def corridor(flight_rows: npt.ArrayLike, n: int, sigma_m: npt.ArrayLike = ..., sigma_deg: npt.ArrayLike = ...,
             seed: int = ..., pick: str = ...,
             return_base: bool = ...) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
def corridor(
    flight_rows: npt.ArrayLike,
    n: int,
    sigma_m: npt.ArrayLike = (15.0, 15.0, 8.0),
    sigma_deg: npt.ArrayLike = (15.0, 5.0, 3.0),
    seed: int = 0,
    pick: str = "even",
    return_base: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Views jittered around a planned flight's poses: a corridor of training poses.

    Each new view starts from a row of the flight (``pick="even"``: rows ``floor(k * N / n)`` for
    ``k = 0..n-1``, so every row is used ``n / N`` times, or ``n`` rows spread evenly when
    ``n < N``; ``pick="random"``: rows drawn uniformly with the seed). Its position moves by
    Gaussian noise along the local across-track, along-track and up axes of the flight at that
    row (along: horizontal direction of travel between the row's neighbours, or the heading when
    the drone hovers, i.e. moves less than 0.5 m; across: 90 deg to its right; up: the ellipsoid
    normal). Yaw, pitch and roll get independent Gaussian noise; yaw and roll are wrapped to
    [-180, 180), pitch is reflected into [-90, 0] (:func:`fold_pitch_deg`), a base row's own pitch
    outside it too, noise or not (sepey's -91.1 deg becomes -88.9 deg). Rows that are not a flight
    path (consecutive rows more than 100 m apart at the median, e.g. an LHS set) get a warning when
    the across and along sigmas differ: their axes then point anywhere.

    Args:
        flight_rows: the flight's pose rows, ECEF m + Cesium yaw, pitch, roll deg.
        n: number of views.
        sigma_m: standard deviations (m) across track, along track, up.
        sigma_deg: standard deviations (deg) of yaw, pitch, roll.
        seed: seed of a ``numpy.random.Generator``; the same seed gives the same rows.
        pick: ``"even"`` or ``"random"``: how the base rows are chosen.
        return_base: also return the index of each view's base row.

    Returns:
        New pose rows (and, with ``return_base``, the base row indices (n,) int64).

    Shape:
        flight_rows: (N, 6) -> (n, 6) float64

    Example:
        >>> from topoloc.data.preset import load_preset
        >>> rows = corridor(load_preset("comballaz-2020-11-06-planned"), 2000, seed=0)
        >>> rows.shape, bool((rows[:, 4] <= 0).all() and (rows[:, 4] >= -90).all())
        ((2000, 6), True)
    """
    rows = _check_rows(flight_rows)
    if (said := radians_warning(rows, "flight_rows")) is not None:
        warnings.warn(said, stacklevel=2)
    n = _check_count(n)
    s_m = _check_triple(sigma_m, "sigma_m", "across, along, up in m")
    s_deg = _check_triple(sigma_deg, "sigma_deg", "yaw, pitch, roll in deg")
    if pick not in ("even", "random"):
        raise ValueError(f"pick: expected 'even' or 'random', got {pick!r}")
    return_base = check_flag(return_base, "return_base")
    rng = _rng(seed)
    count = len(rows)
    if count > 2 and s_m[0] != s_m[1]:
        step = float(np.median(np.linalg.norm(np.diff(rows[:, :3], axis=0), axis=1)))
        if step > PATH_STEP_M:  # TOPO's flights: 8-31 m between frames
            warnings.warn(f"flight_rows: consecutive rows are {step:.0f} m apart at the median: not a flight path? "
                          "Across and along track come from consecutive rows, so their sigmas "
                          f"({s_m[0]:g} m, {s_m[1]:g} m) point in arbitrary directions here", stacklevel=2)
    base = (np.arange(n) * count) // n if pick == "even" else rng.integers(0, count, n)
    axes = _track_axes(rows)[base]  # (n, 3, 3) across, along, up
    offset = rng.standard_normal((n, 3)) * s_m
    angles = rows[base, 3:] + rng.standard_normal((n, 3)) * s_deg
    out = np.empty((n, 6))
    out[:, :3] = rows[base, :3] + np.einsum("nkj,nj->nk", axes, offset)
    out[:, 3] = wrap_deg(angles[:, 0])
    out[:, 4] = fold_pitch_deg(angles[:, 1])
    out[:, 5] = wrap_deg(angles[:, 2])
    far, h = implausible_heights(out[:, :3])
    if far.size:
        lo, hi = PLAUSIBLE_HEIGHT_M
        raise ValueError(f"sigma_m: ({s_m[0]:g}, {s_m[1]:g}, {s_m[2]:g}) m put {far.size} of the {n} views outside "
                         f"{lo:g} to {hi:g} m of height (view {far[0]}: {height_text(h[far[0]])}); expected sigmas "
                         "of metres to kilometres")
    return (out, base.astype(np.int64)) if return_base else out
