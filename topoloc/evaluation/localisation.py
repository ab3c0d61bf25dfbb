"""`Localisation`: predicted camera poses of photos, in every frame a user needs.

A model predicts camera-to-world poses in the local ENU frame of its training data. This module
turns them into ECEF, WGS84 (ellipsoidal height and height above sea level), Cesium / DJI yaw,
pitch and roll, and the camera's viewing direction, and writes them as CSV, GeoJSON or KML
(`topoloc.evaluation.gis`). It knows nothing of models: `topoloc.engine.localise` builds it.

Vertical datums: WGS84 heights ``h_m`` are ellipsoidal (EPSG:4979), as in TOPO's poses and as
GeoJSON (RFC 7946) expects. ``h_amsl_m = h_m - geoid_offset_m`` is the height above sea level
under a constant geoid undulation (`topoloc.data.exif.DEFAULT_GEOID_OFFSET_M`, 49.5 m for western
Switzerland, good to about +-1.5 m there); KML's ``absolute`` altitudes and DJI's
``AbsoluteAltitude`` are above sea level.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pyproj import Geod

from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M
from topoloc.geodesy import PLAUSIBLE_HEIGHT_M, LocalFrame, c2w_to_cesium, ecef_to_wgs84, implausible_heights
from topoloc.evaluation.gis import LOCALISATION_COLUMNS, write_localisation

__all__ = ["Localisation", "LOCALISATION_COLUMNS", "checked_geoid_offset"]

#: Switzerland's geographic centre (Aelggi-Alp, lat, lon deg) and the radius (km) around it in which the default
#: geoid undulation (`DEFAULT_GEOID_OFFSET_M`, 45-55 m across the country) is taken without a warning.
SWISS_CENTRE_DEG = (46.8011, 8.2266)
DEFAULT_GEOID_RADIUS_KM = 250.0


def checked_geoid_offset(value: Any, frame: LocalFrame, stacklevel: int = 2) -> float:
    """A geoid undulation N in metres (``h_amsl = h - N``) as a float, refused unless a finite number within
    +-120 m, and warned of when it is the default (western Switzerland's) for a frame whose origin is more than
    `DEFAULT_GEOID_RADIUS_KM` from Switzerland, where heights above sea level would be off by tens of metres.

    Raises:
        ValueError: naming ``geoid_offset_m``.
    """
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not np.isfinite(value) or abs(value) > 120:
        raise ValueError(f"geoid_offset_m: expected a geoid undulation in metres within +-120, got {value}")
    if value == DEFAULT_GEOID_OFFSET_M:
        lat, lon = SWISS_CENTRE_DEG
        km = Geod(ellps="WGS84").inv(frame.lon_deg, frame.lat_deg, lon, lat)[2] / 1000.0
        if km > DEFAULT_GEOID_RADIUS_KM:
            warnings.warn(f"geoid_offset_m: the default {DEFAULT_GEOID_OFFSET_M:g} m is the geoid undulation of "
                          f"Switzerland; this frame's origin (lat {frame.lat_deg:.4f}, lon {frame.lon_deg:.4f}) is "
                          f"{km:.0f} km from it, where it differs (-106 to +85 m over the Earth): heights above sea "
                          "level (h_amsl_m, KML) take it; give the local undulation (--geoid-offset)",
                          stacklevel=stacklevel)
    return float(value)


@dataclass
class Localisation:
    """Predicted poses of N photos, with every derived coordinate computed on construction.

    Args:
        names: one label per photo (the file stem for files).
        c2w_enu: predicted camera-to-world poses in ``frame`` (OpenCV camera axes: x right, y down,
            z forward), metres.
        frame: the local ENU frame of ``c2w_enu`` (the model's training frame).
        sources: where each photo came from (its path, or ``""``).
        geoid_offset_m: geoid undulation N (m) used for ``h_amsl_m = h_m - N``.
        skipped: ``(name, reason)`` of every input that could not be read.

    Attributes:
        ecef_m: (N, 3) camera positions, ECEF metres (EPSG:4978).
        lat_deg, lon_deg, h_m: (N,) WGS84 latitude, longitude (deg) and ellipsoidal height (m).
        h_amsl_m: (N,) height above sea level, m (``h_m - geoid_offset_m``).
        ypr_deg: (N, 3) Cesium / DJI yaw (clockwise from north), pitch (-90 = straight down) and
            roll, degrees.
        enu_m: (N, 3) positions in ``frame``, metres east, north, up.
        view_enu: (N, 3) unit viewing direction (the camera's z axis) in ``frame``.
        view_ecef: (N, 3) the same in ECEF.

    Shape:
        c2w_enu: (N, 4, 4)
    """

    names: Sequence[str]
    c2w_enu: np.ndarray
    frame: LocalFrame
    sources: Sequence[str] | None = None
    geoid_offset_m: float = DEFAULT_GEOID_OFFSET_M
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ecef_m: np.ndarray = field(init=False, repr=False)
    lat_deg: np.ndarray = field(init=False, repr=False)
    lon_deg: np.ndarray = field(init=False, repr=False)
    h_m: np.ndarray = field(init=False, repr=False)
    h_amsl_m: np.ndarray = field(init=False, repr=False)
    ypr_deg: np.ndarray = field(init=False, repr=False)
    enu_m: np.ndarray = field(init=False, repr=False)
    view_enu: np.ndarray = field(init=False, repr=False)
    view_ecef: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        c2w = np.asarray(self.c2w_enu, dtype=np.float64)
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
            raise ValueError(f"Localisation c2w_enu: expected poses of shape (N, 4, 4), got {c2w.shape}")
        n = len(c2w)
        for what in ("names", "sources"):
            value = getattr(self, what)
            if isinstance(value, (str, bytes)):  # "ab" would be split into the names 'a' and 'b'
                raise TypeError(f"Localisation {what}: expected one entry per pose (a list), got the string {value!r}")
        # The names first: the NaN message below names photos by them.
        self.names = [str(s) for s in self.names]
        if len(self.names) != n:
            raise ValueError(f"Localisation names: expected {n} names (one per pose), got {len(self.names)}")
        if not np.all(np.isfinite(c2w)):
            bad = [str(self.names[i]) for i in np.flatnonzero(~np.isfinite(c2w).all(axis=(1, 2)))[:3]]
            raise ValueError(f"Localisation c2w_enu: the model predicted NaN or inf poses (photos {bad})")
        if not isinstance(self.frame, LocalFrame):
            raise TypeError(f"Localisation frame: expected a topoloc.geodesy.LocalFrame, "
                            f"got {type(self.frame).__name__}")
        self.c2w_enu = c2w
        self.sources = [""] * n if self.sources is None else [str(s) for s in self.sources]
        if len(self.sources) != n:
            raise ValueError(f"Localisation sources: expected {n} entries (one per pose), got {len(self.sources)}")
        self.geoid_offset_m = checked_geoid_offset(self.geoid_offset_m, self.frame, stacklevel=4)
        self.enu_m = c2w[:, :3, 3].copy()
        self.view_enu = c2w[:, :3, 2].copy()
        if n == 0:
            empty = np.zeros((0, 3))
            self.ecef_m, self.ypr_deg, self.view_ecef = empty, empty.copy(), empty.copy()
            self.lat_deg = self.lon_deg = self.h_m = self.h_amsl_m = np.zeros(0)
            return
        c2w_ecef = self.frame.c2w_enu_to_ecef(c2w)
        self._check_heights(c2w_ecef)
        cesium = c2w_to_cesium(c2w_ecef)
        self.ecef_m = cesium[:, :3]
        self.ypr_deg = cesium[:, 3:]
        self.view_ecef = c2w_ecef[:, :3, 2].copy()
        self.lat_deg, self.lon_deg, self.h_m = ecef_to_wgs84(self.ecef_m[:, 0], self.ecef_m[:, 1], self.ecef_m[:, 2])
        self.h_amsl_m = self.h_m - self.geoid_offset_m

    def _check_heights(self, c2w_ecef: np.ndarray) -> None:
        """Refuse poses no drone can have (the model's, not the user's: they say what is wrong with it)."""
        bad, h = implausible_heights(c2w_ecef[:, :3, 3])
        lo, hi = PLAUSIBLE_HEIGHT_M
        if bad.size:
            shown = ", ".join(f"{self.names[i]!r}: {h[i]:,.0f} m" for i in bad[:3]) + (", ..." if bad.size > 3 else "")
            raise ValueError(f"Localisation: the model placed {bad.size} of {len(h)} photos at heights outside "
                             f"[{lo:.0f}, {hi:.0f}] m over the WGS84 ellipsoid ({shown}): a model that has not "
                             "trained or has diverged, or a normaliser or frame other than the model's")

    def __len__(self) -> int:
        return len(self.c2w_enu)

    def view_point_wgs84(self, distance_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """WGS84 ``(lat_deg, lon_deg, h_m)`` of the point ``distance_m`` along each viewing direction.

        Shape:
            -> 3 x (N,)
        """
        p = self.ecef_m + float(distance_m) * self.view_ecef
        return ecef_to_wgs84(p[:, 0], p[:, 1], p[:, 2])

    def rows(self) -> list[dict[str, Any]]:
        """One dict per photo with the columns of `LOCALISATION_COLUMNS` (floats except name, source)."""
        cols: dict[str, np.ndarray] = {
            "lat_deg": self.lat_deg, "lon_deg": self.lon_deg, "h_m": self.h_m, "h_amsl_m": self.h_amsl_m,
            "geoid_offset_m": np.full(len(self), self.geoid_offset_m),
        }
        for i, axis in enumerate("xyz"):
            cols[f"ecef_{axis}_m"] = self.ecef_m[:, i]
        for i, angle in enumerate(("yaw", "pitch", "roll")):
            cols[f"{angle}_deg"] = self.ypr_deg[:, i]
        for i, axis in enumerate(("east", "north", "up")):
            cols[f"{axis}_m"] = self.enu_m[:, i]
            cols[f"view_{axis}"] = self.view_enu[:, i]
        origin = self.frame.to_dict()
        for key in ("lat_deg", "lon_deg", "h_m"):
            cols[f"frame_{key}"] = np.full(len(self), origin[key])
        sources = self.sources if self.sources is not None else [""] * len(self)  # a list after __post_init__
        return [{"name": self.names[i], "source": sources[i],
                 **{c: float(cols[c][i]) for c in LOCALISATION_COLUMNS[2:]}} for i in range(len(self))]

    def write(self, path: str | PathLike, **kwargs: Any) -> Path:
        """Write to ``path`` in the format of its suffix: ``.csv``, ``.geojson`` / ``.json`` or ``.kml``.

        Keyword arguments go to the writer (see `topoloc.evaluation.gis.write_localisation`).
        """
        return write_localisation(self, path, **kwargs)
