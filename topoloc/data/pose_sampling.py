"""Training poses that cover a flight: a jittered corridor, Latin hypercubes, TOPO-DataGen pose files.

An absolute pose regressor interpolates between its training views (Sattler et al., CVPR 2019),
so the views it is trained on must surround the poses it will be asked about. These samplers work
on raw TOPO pose rows and write pose files that TOPO-DataGen (and ``topoloc render --poses``)
renders.

Pose rows are ``(x, y, z, yaw, pitch, roll)``: ECEF metres (EPSG:4978), then Cesium / DJI degrees
(yaw clockwise from north, pitch -90 looks straight down, roll about the viewing axis). Every
sampler returns yaw in [-180, 180), pitch in [-90, 0] and roll in [-180, 180). (TOPO-DataGen's own
``*-LHS`` presets store yaw in [0, 360) and its real flights in (-180, 180]: the same headings.)

The module is pure geometry (numpy and :mod:`topoloc.geodesy`); whether a camera is above the
terrain is checked where a terrain exists (:func:`topoloc.procedural.check_clearance`).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from topoloc._paths import file_above
from topoloc._tempfiles import write_atomically
from topoloc.data.topo import read_pose_file
from topoloc._flags import check_flag
from topoloc.geodesy import TOPO_ORIGINS, LocalFrame, as_frame, ecef_to_wgs84, enu_in_ecef

__all__ = [
    "corridor",
    "lhs_envelope",
    "lhs_area",
    "latin_hypercube",
    "LhsArea",
    "LHS_AREAS",
    "save_pose_file",
    "pose_file_path",
    "load_pose_file",
    "wrap_deg",
    "fold_pitch_deg",
    "pose_summary",
]

#: Horizontal displacement (m) between a row's neighbours below which the drone is taken as hovering.
HOVER_M = 0.5


# ----------------------------------------------------------------------------------- validation
def _check_rows(rows, name: str = "flight_rows") -> np.ndarray:
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
    _, _, h = ecef_to_wgs84(a[:, 0], a[:, 1], a[:, 2])
    far = np.flatnonzero((h < -1_000.0) | (h > 100_000.0))
    if far.size:
        raise ValueError(
            f"{name}: rows {far[:5].tolist()} lie {h[far[0]]:.0f} m from the WGS84 ellipsoid; expected ECEF metres "
            "near the Earth's surface (lat/lon swapped, or local coordinates?)"
        )
    return a


def _check_number(v, name: str, what: str) -> float:
    """A finite real number >= 0 (not a bool, not a string)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(float(v)) or v < 0:
        raise ValueError(f"{name}: expected {what} (a finite number >= 0), got {v!r}")
    return float(v)


def _check_ground(ground_m) -> None:
    if ground_m is not None and not callable(ground_m):
        raise ValueError(f"ground_m: expected None or a function of (east_m, north_m) returning heights, got "
                         f"{type(ground_m).__name__} {ground_m!r}")


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {n!r}")
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


# ------------------------------------------------------------------------------------- angles
def wrap_deg(angle_deg) -> np.ndarray:
    """Angles (deg) wrapped to [-180, 180).

    Example:
        >>> wrap_deg([180.0, -190.0, 359.0]).tolist()
        [-180.0, 170.0, -1.0]
    """
    return np.mod(np.asarray(angle_deg, dtype=np.float64) + 180.0, 360.0) - 180.0


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


def corridor(
    flight_rows,
    n: int,
    sigma_m=(15.0, 15.0, 8.0),
    sigma_deg=(15.0, 5.0, 3.0),
    seed: int = 0,
    pick: str = "even",
    return_base: bool = False,
):
    """Views jittered around a planned flight's poses: a corridor of training poses.

    Each new view starts from a row of the flight (``pick="even"``: rows ``floor(k * N / n)`` for
    ``k = 0..n-1``, so every row is used ``n / N`` times, or ``n`` rows spread evenly when
    ``n < N``; ``pick="random"``: rows drawn uniformly with the seed). Its position moves by
    Gaussian noise along the local across-track, along-track and up axes of the flight at that
    row (along: horizontal direction of travel between the row's neighbours, or the heading when
    the drone hovers, i.e. moves less than 0.5 m; across: 90 deg to its right; up: the ellipsoid
    normal). Yaw, pitch and roll get independent Gaussian noise; yaw and roll are wrapped to
    [-180, 180), pitch is reflected into [-90, 0] (:func:`fold_pitch_deg`).

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
    n = _check_count(n)
    s_m = _check_triple(sigma_m, "sigma_m", "across, along, up in m")
    s_deg = _check_triple(sigma_deg, "sigma_deg", "yaw, pitch, roll in deg")
    if pick not in ("even", "random"):
        raise ValueError(f"pick: expected 'even' or 'random', got {pick!r}")
    return_base = check_flag(return_base, "return_base")
    rng = _rng(seed)
    count = len(rows)
    base = (np.arange(n) * count) // n if pick == "even" else rng.integers(0, count, n)
    axes = _track_axes(rows)[base]  # (n, 3, 3) across, along, up
    offset = rng.standard_normal((n, 3)) * s_m
    angles = rows[base, 3:] + rng.standard_normal((n, 3)) * s_deg
    out = np.empty((n, 6))
    out[:, :3] = rows[base, :3] + np.einsum("nkj,nj->nk", axes, offset)
    out[:, 3] = wrap_deg(angles[:, 0])
    out[:, 4] = fold_pitch_deg(angles[:, 1])
    out[:, 5] = wrap_deg(angles[:, 2])
    return (out, base.astype(np.int64)) if return_base else out


# ---------------------------------------------------------------------------------------- LHS
def latin_hypercube(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A Latin hypercube in the unit cube: in every dimension, exactly one sample per stratum ``[k/n, (k+1)/n)``.

    Each column is ``(permutation(n) + uniform) / n`` with an independent permutation per
    dimension (McKay, Beckman and Conover, 1979).

    Shape:
        -> (n, d) float64 in [0, 1)

    Example:
        >>> u = latin_hypercube(4, 2, seed=0)
        >>> sorted(np.floor(u[:, 0] * 4).astype(int).tolist())
        [0, 1, 2, 3]
    """
    n = _check_count(n)
    d = _check_count(d, "d")
    rng = _rng(seed)
    strata = np.stack([rng.permutation(n) for _ in range(d)], axis=1)
    return (strata + rng.random((n, d))) / n


def _yaw_arc(yaw_deg: np.ndarray, gap_deg: float) -> tuple[float, float]:
    """The smallest arc (start, width) in deg holding every heading; all headings when no gap
    between consecutive headings exceeds ``gap_deg``."""
    y = np.sort(np.mod(yaw_deg, 360.0))
    gaps = np.diff(np.r_[y, y[0] + 360.0])
    k = int(np.argmax(gaps))
    if gaps[k] <= gap_deg:
        return -180.0, 360.0
    start = y[(k + 1) % len(y)]
    return float(wrap_deg(start)), float(360.0 - gaps[k])


@dataclass(frozen=True)
class LhsArea:
    """The ranges of a Latin-hypercube pose set over an area, in the local ENU frame of its origin.

    Args:
        origin: a TOPO origin name (``"comballaz"``, ``"epfl"``) for :meth:`LocalFrame.named`.
        east_m, north_m: horizontal box (m, ENU of the origin).
        up_m: camera height band (m): ENU up of the origin, or above the terrain when a ground
            function is given to :func:`lhs_area`.
        above_ground_m: the height band above the terrain used when a ground function is given (>= 0).
        yaw_deg: the heading arc (start, end) in deg, at most 360 wide; it may cross +-180, e.g. (170, 190).
        pitch_deg, roll_deg: angle bands (deg) within [-90, 0] and [-180, 180].

    Every band is (min, max) of finite numbers, min <= max; a bad field is refused at construction
    (ValueError naming it).
    """

    origin: str
    east_m: tuple[float, float]
    north_m: tuple[float, float]
    up_m: tuple[float, float]
    above_ground_m: tuple[float, float]
    yaw_deg: tuple[float, float] = (-180.0, 180.0)
    pitch_deg: tuple[float, float] = (-90.0, -45.0)
    roll_deg: tuple[float, float] = (-15.0, 15.0)

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or self.origin.lower() not in TOPO_ORIGINS:
            raise ValueError(f"LhsArea origin: expected one of {sorted(TOPO_ORIGINS)}, got {self.origin!r}")
        bounds = {"east_m": (-np.inf, np.inf), "north_m": (-np.inf, np.inf), "up_m": (-np.inf, np.inf),
                  "above_ground_m": (0.0, np.inf), "yaw_deg": (-np.inf, np.inf), "pitch_deg": (-90.0, 0.0),
                  "roll_deg": (-180.0, 180.0)}
        for name, (lo, hi) in bounds.items():
            object.__setattr__(self, name, _check_band(getattr(self, name), f"LhsArea {name}", lo, hi))
        if self.yaw_deg[1] - self.yaw_deg[0] > 360.0:  # an arc: (170, 190) crosses the wrap
            raise ValueError(f"LhsArea yaw_deg: expected an arc (start, end) at most 360 deg wide, got {self.yaw_deg}")


#: TOPO-DataGen's LHS areas, read off the vendored ``comballaz-LHS`` preset (30,000 rows): latitude
#: 46.3705-46.3825 deg and longitude 7.065-7.077 deg, i.e. east 0-923.5 m and north 0-1334.3 m of
#: the Comballaz origin; ENU up 105.9-627.7 m (100-200 m above the terrain: heights spread by only
#: 100-160 m within any 100 m cell); pitch -90..-45 deg, roll -15..15 deg, every heading; each
#: marginal uniform (equal counts in equal bins).
LHS_AREAS: dict[str, LhsArea] = {
    "comballaz": LhsArea("comballaz", (0.0, 923.5), (0.0, 1334.3), (105.9, 627.7), (100.0, 200.0)),
}


def _rows_from_enu(frame: LocalFrame, enu_n3: np.ndarray, ypr_n3: np.ndarray) -> np.ndarray:
    return np.concatenate([frame.enu_to_ecef(enu_n3), ypr_n3], axis=1)


def _heights(u: np.ndarray, band: tuple[float, float], floor_m: np.ndarray | None) -> np.ndarray:
    lo, hi = band
    if floor_m is None:
        return lo + u * (hi - lo)
    low = np.maximum(lo, floor_m)
    return low + u * np.maximum(hi - low, 0.0)


def _sample_lhs(n, seed, frame, east, north, up, yaw, pitch, roll, ground_m=None, clearance_m=0.0,
                up_above_ground=False):
    """LHS rows: east, north, up, pitch, roll bands are (min, max); yaw is (start, width) of an arc (deg)."""
    u = latin_hypercube(n, 6, seed)
    e = east[0] + u[:, 0] * (east[1] - east[0])
    nn = north[0] + u[:, 1] * (north[1] - north[0])
    if ground_m is None:
        h = _heights(u[:, 2], up, None)
    else:
        g = np.asarray(ground_m(e, nn), dtype=np.float64).reshape(-1)
        if g.shape != e.shape or not np.all(np.isfinite(g)):
            raise ValueError(f"ground_m: expected a function of (east_m, north_m) returning {e.shape} finite heights")
        h = g + _heights(u[:, 2], up, None) if up_above_ground else _heights(u[:, 2], up, g + clearance_m)
    ypr = np.stack([
        wrap_deg(yaw[0] + u[:, 3] * yaw[1]),
        pitch[0] + u[:, 4] * (pitch[1] - pitch[0]),
        roll[0] + u[:, 5] * (roll[1] - roll[0]),
    ], axis=1)
    return _rows_from_enu(frame, np.stack([e, nn, h], axis=1), ypr)


def lhs_envelope(
    flight_rows,
    n: int,
    seed: int = 0,
    margin_m: float = 50.0,
    yaw_gap_deg: float = 90.0,
    frame: LocalFrame | None = None,
    ground_m: Callable | None = None,
    clearance_m: float = 10.0,
) -> np.ndarray:
    """A Latin hypercube of poses inside the envelope of a flight.

    The envelope, in the local ENU frame ``frame`` (default: a frame at the flight's mean
    geodetic position): the horizontal bounding box of the positions grown by ``margin_m`` on
    every side; the flight's height band (min to max ENU up); its pitch band (clipped to
    [-90, 0]); its roll band; its headings: the smallest arc holding every yaw, or all headings
    when no gap between the flight's headings is wider than ``yaw_gap_deg``. Every dimension
    (east, north, up, yaw, pitch, roll) has exactly one sample in each of ``n`` equal strata.

    Args:
        flight_rows: the flight's pose rows, ECEF m + Cesium deg.
        n: number of poses.
        seed: the same seed gives the same rows.
        margin_m: horizontal margin (m) around the positions' bounding box.
        yaw_gap_deg: widest gap (deg) between headings that still counts as "all headings".
        frame: local ENU frame of the box.
        ground_m: optional terrain, a function ``(east_m, north_m) -> up_m`` (arrays, in ``frame``):
            heights are then drawn in ``[max(band_min, ground + clearance_m), band_max]`` (at
            ``ground + clearance_m`` where the terrain leaves no room in the band).
        clearance_m: minimum height above ``ground_m`` (m).

    Shape:
        flight_rows: (N, 6) -> (n, 6) float64
    """
    rows = _check_rows(flight_rows)
    n = _check_count(n)
    margin_m = _check_number(margin_m, "margin_m", "a margin in metres")
    if _check_number(yaw_gap_deg, "yaw_gap_deg", "degrees in [0, 360]") > 360.0:
        raise ValueError(f"yaw_gap_deg: expected degrees in [0, 360], got {yaw_gap_deg!r}")
    clearance_m = _check_number(clearance_m, "clearance_m", "a height above the terrain in metres")
    _check_ground(ground_m)
    if frame is None:
        lat, lon, h = ecef_to_wgs84(*rows[:, :3].mean(0))
        frame = LocalFrame(float(lat), float(lon), float(h))
    else:
        frame = as_frame(frame)
    enu = frame.ecef_to_enu(rows[:, :3])
    east = (enu[:, 0].min() - margin_m, enu[:, 0].max() + margin_m)
    north = (enu[:, 1].min() - margin_m, enu[:, 1].max() + margin_m)
    up = (enu[:, 2].min(), enu[:, 2].max())
    pitch = tuple(np.clip([rows[:, 4].min(), rows[:, 4].max()], -90.0, 0.0))
    roll = (rows[:, 5].min(), rows[:, 5].max())
    yaw = _yaw_arc(rows[:, 3], yaw_gap_deg)
    return _sample_lhs(n, seed, frame, east, north, up, yaw, pitch, roll, ground_m, clearance_m)


def lhs_area(area="comballaz", n: int = 1000, seed: int = 0, ground_m: Callable | None = None) -> np.ndarray:
    """A Latin hypercube of poses over a whole area, as TOPO-DataGen's ``*-LHS`` pose sets.

    For ``"comballaz"`` (:data:`LHS_AREAS`): east 0-923.5 m, north 0-1334.3 m of the Comballaz
    origin (lat 46.3705, lon 7.065, h 1410 m), every heading, pitch -90..-45 deg, roll -15..15 deg,
    and heights ENU up 105.9-627.7 m; with ``ground_m`` (terrain, ``(east_m, north_m) -> up_m``
    in the area's frame) heights are 100-200 m above it instead, as TOPO-DataGen draws them. Without
    a terrain, some cameras of the absolute band lie under high ground (about 9 % in
    Mini-Comballaz).

    Args:
        area: a name in :data:`LHS_AREAS` or an :class:`LhsArea`.
        n: number of poses.
        seed: the same seed gives the same rows.
        ground_m: optional terrain function (see above).

    Shape:
        -> (n, 6) float64
    """
    if isinstance(area, str):
        if area not in LHS_AREAS:
            raise ValueError(f"area: expected one of {sorted(LHS_AREAS)} or an LhsArea, got {area!r}")
        area = LHS_AREAS[area]
    elif not isinstance(area, LhsArea):
        raise ValueError(f"area: expected an area name or an LhsArea, got {type(area).__name__}")
    n = _check_count(n)
    _check_ground(ground_m)
    frame = LocalFrame.named(area.origin)
    yaw = (area.yaw_deg[0], area.yaw_deg[1] - area.yaw_deg[0])
    band = area.up_m if ground_m is None else area.above_ground_m
    return _sample_lhs(n, seed, frame, area.east_m, area.north_m, band, yaw, area.pitch_deg, area.roll_deg,
                       ground_m, 0.0, up_above_ground=ground_m is not None)


# ---------------------------------------------------------------------------------- pose files
def pose_file_path(path, name: str = "path") -> Path:
    """The file :func:`save_pose_file` writes for ``path``: ``.npy`` appended when missing, as numpy does.

    Refuses, naming the argument ``name``, a path that is a folder (an existing one, one ending in a
    separator, ``.`` or an empty name), or that lies under a file.

    Examples:
        >>> pose_file_path("poses/corridor").as_posix(), pose_file_path("a.txt").as_posix()
        ('poses/corridor.npy', 'a.txt.npy')
    """
    raw = os.fspath(path)
    given = Path(raw)
    if not raw:
        raise ValueError(f"{name}: expected a .npy file path, got an empty path")
    if raw.endswith(("/", os.sep)) or given.name in ("", ".", "..") or given.is_dir():
        raise ValueError(f"{name}: expected a .npy file path, got {raw!r}, a folder")
    out = given if given.suffix == ".npy" else given.with_name(given.name + ".npy")
    if out.is_dir():
        raise ValueError(f"{name}: expected a .npy file path, {str(out)!r} (from {raw!r}) is a folder")
    above = file_above(out)
    if above is not None:
        raise ValueError(f"{name}: expected a .npy file path in a folder, {str(above)!r} above {raw!r} is a file")
    return out


def save_pose_file(path, rows) -> Path:
    """Writes pose rows as a TOPO-DataGen pose file: a float64 (N, 6) ``.npy`` array.

    TOPO-DataGen reads such a file as its list of camera poses (ECEF m, Cesium yaw, pitch, roll
    deg); ``topoloc render --poses`` renders it.

    Returns:
        The path written (``.npy`` appended when missing, as numpy does: :func:`pose_file_path`).
    """
    a = _check_rows(rows, "rows")
    path = pose_file_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy would append .npy to the temporary's name
            np.save(f, np.ascontiguousarray(a, dtype=np.float64), allow_pickle=False)

    return write_atomically(path, write)  # a killed write leaves the previous file, never half of one


def load_pose_file(path) -> np.ndarray:
    """Reads a TOPO-DataGen pose file (float64 (N, 6)); errors name the file."""
    rows = read_pose_file(Path(path))
    try:
        return _check_rows(rows, str(path))
    except ValueError as err:
        raise ValueError(str(err)) from None


def pose_summary(rows, frame: LocalFrame | str | None = None) -> str:
    """One line: count, ENU extent (m) and height band, pitch band (deg) of pose rows.

    ``frame``: the ENU frame of the extent (any form :func:`topoloc.geodesy.as_frame` reads, e.g.
    ``"comballaz"``); None: a frame at the rows' mean geodetic position.
    """
    a = _check_rows(rows, "rows")
    if frame is None:
        lat, lon, h = ecef_to_wgs84(*a[:, :3].mean(0))
        frame = LocalFrame(float(lat), float(lon), float(h))
    else:
        frame = as_frame(frame)
    enu = frame.ecef_to_enu(a[:, :3])
    ext = np.ptp(enu, axis=0)
    return (f"{len(a)} poses; ENU extent {ext[0]:.0f} m east x {ext[1]:.0f} m north, up {enu[:, 2].min():.0f}.."
            f"{enu[:, 2].max():.0f} m (frame lat {frame.lat_deg:.4f} lon {frame.lon_deg:.4f} h {frame.h_m:.0f} m); "
            f"pitch {a[:, 4].min():.1f}..{a[:, 4].max():.1f} deg")

