"""Latin-hypercube training poses: inside the envelope of a flight, and over a whole area as TOPO-DataGen does.

Rows and angle conventions as in :mod:`topoloc.data.pose_sampling`: ``(x, y, z, yaw, pitch, roll)``,
ECEF metres then Cesium / DJI degrees, yaw in [-180, 180), pitch in [-90, 0], roll in [-180, 180).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import numpy.typing as npt

from topoloc.data.pose_sampling import (_check_band, _check_count, _check_ground, _check_number, _check_rows, _rng,
                                        _rows_frame, radians_warning, wrap_deg)
from topoloc.geodesy import TOPO_ORIGINS, LocalFrame

__all__ = ["latin_hypercube", "LhsArea", "LHS_AREAS", "lhs_envelope", "lhs_area"]


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
    flight_rows: npt.ArrayLike,
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
    (east, north, up, yaw, pitch, roll) has exactly one sample in each of ``n`` equal strata;
    with ``ground_m``, each height is drawn in the part of the band above the terrain there (its
    stratum scaled into that part), so the heights are then no longer stratified over the band
    and lean towards its top where the terrain rises into it.

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
    if (said := radians_warning(rows, "flight_rows")) is not None:
        warnings.warn(said, stacklevel=2)
    n = _check_count(n)
    margin_m = _check_number(margin_m, "margin_m", "a margin in metres")
    if _check_number(yaw_gap_deg, "yaw_gap_deg", "degrees in [0, 360]") > 360.0:
        raise ValueError(f"yaw_gap_deg: expected degrees in [0, 360], got {yaw_gap_deg!r}")
    clearance_m = _check_number(clearance_m, "clearance_m", "a height above the terrain in metres")
    _check_ground(ground_m)
    frame = _rows_frame(rows, frame)
    enu = frame.ecef_to_enu(rows[:, :3])
    east = (enu[:, 0].min() - margin_m, enu[:, 0].max() + margin_m)
    north = (enu[:, 1].min() - margin_m, enu[:, 1].max() + margin_m)
    up = (enu[:, 2].min(), enu[:, 2].max())
    pitch = tuple(np.clip([rows[:, 4].min(), rows[:, 4].max()], -90.0, 0.0))
    roll = (rows[:, 5].min(), rows[:, 5].max())
    yaw = _yaw_arc(rows[:, 3], yaw_gap_deg)
    return _sample_lhs(n, seed, frame, east, north, up, yaw, pitch, roll, ground_m, clearance_m)


def lhs_area(area: str | LhsArea = "comballaz", n: int = 1000, seed: int = 0,
             ground_m: Callable | None = None) -> np.ndarray:
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
