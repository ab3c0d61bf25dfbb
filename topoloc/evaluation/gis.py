"""Predicted camera poses as files that GIS tools open: CSV, GeoJSON (QGIS) and KML (Google Earth).

The writers take a `topoloc.evaluation.localisation.Localisation` (anything with its attributes) and choose
the format from the file's suffix (`write_localisation`):

- ``.csv``: one row per photo, the columns of `LOCALISATION_COLUMNS` (owned here, with the file
  formats; ECEF, WGS84 with both heights and the geoid offset used, yaw / pitch / roll, local ENU, viewing
  direction, the frame's origin).
- ``.geojson`` / ``.json``: an RFC 7946 FeatureCollection. Positions are ``[longitude, latitude,
  height]`` in that order, the height ellipsoidal (WGS84) as RFC 7946 section 4 specifies. Per
  photo a ``Point`` feature with the pose as properties and a ``LineString`` feature from the
  camera along its viewing direction (``view_length_m`` long), told apart by the ``feature``
  property (``"camera"`` / ``"view"``). No ``crs`` member (RFC 7946 removed it).
- ``.kml``: a Placemark per photo with a ``Point`` and a ``Camera`` view, openable in Google Earth.
  KML altitudes in ``absolute`` mode are above sea level, so the heights written there are
  ``h_amsl_m`` (ellipsoidal height minus the stated geoid offset). Camera ``heading`` is the
  yaw (clockwise from north, in [0, 360)) and ``tilt`` is ``90 + pitch``: KML's 0 looks straight
  down and 90 at the horizon, where DJI / Cesium pitch is -90 and 0. KML's ``roll`` is left at 0
  (DJI gimbals hold roll near 0, and KML does not pin down its sign against DJI's); the
  predicted roll is in the description.
"""

from __future__ import annotations

import csv
import json
import numbers
import re
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np

from topoloc._paths import check_output
from topoloc._tempfiles import write_atomically, write_text_atomically

if TYPE_CHECKING:  # the writers only read attributes of a Localisation
    from topoloc.evaluation.localisation import Localisation

__all__ = ["LOCALISATION_COLUMNS", "GIS_FORMATS", "gis_format", "write_localisation", "write_csv", "to_geojson",
           "write_geojson", "to_kml", "write_kml"]

#: Columns of `topoloc.evaluation.localisation.Localisation.rows` and of the CSV file, in order.
LOCALISATION_COLUMNS: tuple[str, ...] = (
    "name", "source",
    "ecef_x_m", "ecef_y_m", "ecef_z_m",
    "lat_deg", "lon_deg", "h_m", "h_amsl_m", "geoid_offset_m",
    "yaw_deg", "pitch_deg", "roll_deg",
    "east_m", "north_m", "up_m",
    "view_east", "view_north", "view_up",
    "frame_lat_deg", "frame_lon_deg", "frame_h_m",
)

#: File suffixes and the format each one writes.
GIS_FORMATS: dict[str, str] = {".csv": "csv", ".geojson": "geojson", ".json": "geojson", ".kml": "kml"}


def gis_format(path: str | PathLike) -> str:
    """The format (``"csv"``, ``"geojson"``, ``"kml"``) of an output path, from its suffix.

    Raises:
        ValueError: the suffix is none of `GIS_FORMATS` (the message names the path).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in GIS_FORMATS:
        raise ValueError(f"output {str(path)!r}: unknown suffix {suffix!r}; expected one of {sorted(GIS_FORMATS)}")
    return GIS_FORMATS[suffix]


def write_localisation(loc: "Localisation", path: str | PathLike, view_length_m: float = 50.0) -> Path:
    """Write ``loc`` as CSV, GeoJSON or KML, by the suffix of ``path``; returns the path.

    Args:
        loc: the predicted poses.
        path: ``*.csv``, ``*.geojson`` / ``*.json`` or ``*.kml``.
        view_length_m: length of the GeoJSON viewing-direction lines, metres.
    """
    kind = gis_format(path)
    check_output(path, "output")
    if kind == "csv":
        return write_csv(loc, path)
    if kind == "geojson":
        return write_geojson(loc, path, view_length_m=view_length_m)
    return write_kml(loc, path)


def _open(path: str | PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_csv(loc: "Localisation", path: str | PathLike) -> Path:
    """One row per photo with the columns of `LOCALISATION_COLUMNS` (metres to 0.1 mm, degrees to 1e-9)."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(LOCALISATION_COLUMNS))
            writer.writeheader()
            for row in loc.rows():
                writer.writerow({k: (_fmt(k, v) if isinstance(v, float) else v) for k, v in row.items()})

    return write_atomically(_open(path), write)


def _fmt(key: str, v: float) -> str:
    if key.endswith("_m"):
        return f"{v:.4f}"
    if key.endswith("_deg"):
        return f"{v:.9f}"
    return f"{v:.9g}"


def _round(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def to_geojson(loc: "Localisation", view_length_m: float = 50.0) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection: a camera ``Point`` and a viewing-direction ``LineString`` per photo.

    Positions are ``[lon_deg, lat_deg, h_m]`` (ellipsoidal height); longitudes and latitudes
    keep 9 decimals (0.1 mm), heights 4.

    Args:
        loc: the predicted poses.
        view_length_m: length of the viewing-direction lines, metres (0: no lines).
    """
    is_number = isinstance(view_length_m, numbers.Real) and not isinstance(view_length_m, bool)
    if not is_number or not np.isfinite(view_length_m) or view_length_m < 0:
        raise ValueError(f"view_length_m: expected a non-negative length in metres, got {view_length_m}")
    features: list[dict[str, Any]] = []
    rows = loc.rows()
    if view_length_m > 0 and len(loc):
        end_lat, end_lon, end_h = loc.view_point_wgs84(view_length_m)
    for i, row in enumerate(rows):
        camera = [round(float(loc.lon_deg[i]), 9), round(float(loc.lat_deg[i]), 9), round(float(loc.h_m[i]), 4)]
        props = {"feature": "camera", **row}
        features.append({"type": "Feature", "id": f"{row['name']}", "properties": props,
                         "geometry": {"type": "Point", "coordinates": camera}})
        if view_length_m > 0:
            end = [round(float(end_lon[i]), 9), round(float(end_lat[i]), 9), round(float(end_h[i]), 4)]
            features.append({"type": "Feature", "id": f"{row['name']}/view",
                             "properties": {"feature": "view", "name": row["name"], "length_m": float(view_length_m)},
                             "geometry": {"type": "LineString", "coordinates": [camera, end]}})
    return {"type": "FeatureCollection", "features": features}


def write_geojson(loc: "Localisation", path: str | PathLike, view_length_m: float = 50.0) -> Path:
    """`to_geojson` written to ``path`` (UTF-8 JSON)."""
    text = json.dumps(to_geojson(loc, view_length_m), indent=1, allow_nan=False)
    return write_text_atomically(_open(path), text, encoding="utf-8")


#: What XML 1.0 cannot hold: control characters other than tab, newline and carriage return, lone surrogates.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """``text`` escaped for an XML element, characters XML 1.0 forbids replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", text))


def to_kml(loc: "Localisation", name: str = "topoloc localisation") -> str:
    """A KML 2.2 document: one Placemark per photo with a ``Point`` and a ``Camera`` at the predicted pose.

    Heights are above sea level (``altitudeMode`` absolute); heading = yaw in [0, 360), tilt =
    90 + pitch (0 looks down), roll 0 (see the module doc).
    """
    marks = []
    for i, row in enumerate(loc.rows()):
        lon, lat, alt = float(loc.lon_deg[i]), float(loc.lat_deg[i]), float(loc.h_amsl_m[i])
        heading = round(float(loc.ypr_deg[i, 0]), 4) % 360.0  # rounded first: -0.00001 wrote 360.0000
        tilt = float(np.clip(90.0 + loc.ypr_deg[i, 1], 0.0, 180.0))
        desc = (f"yaw {row['yaw_deg']:.2f} deg, pitch {row['pitch_deg']:.2f} deg, roll {row['roll_deg']:.2f} deg; "
                f"ellipsoidal height {row['h_m']:.2f} m, above sea level {row['h_amsl_m']:.2f} m "
                f"(geoid offset {row['geoid_offset_m']:.2f} m); ECEF {row['ecef_x_m']:.3f}, {row['ecef_y_m']:.3f}, "
                f"{row['ecef_z_m']:.3f} m")
        if row["source"]:
            desc += f"; photo {row['source']}"
        marks.append(
            "  <Placemark>\n"
            f"    <name>{_xml_text(row['name'])}</name>\n"
            f"    <description>{_xml_text(desc)}</description>\n"
            "    <Camera>\n"
            f"      <longitude>{lon:.9f}</longitude><latitude>{lat:.9f}</latitude><altitude>{alt:.3f}</altitude>\n"
            f"      <heading>{heading:.4f}</heading><tilt>{tilt:.4f}</tilt><roll>0</roll>\n"
            "      <altitudeMode>absolute</altitudeMode>\n"
            "    </Camera>\n"
            "    <Point><altitudeMode>absolute</altitudeMode>"
            f"<coordinates>{lon:.9f},{lat:.9f},{alt:.3f}</coordinates></Point>\n"
            "  </Placemark>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n<Document>\n'
            f"  <name>{_xml_text(name)}</name>\n" + "\n".join(marks) + "\n</Document>\n</kml>\n")


def write_kml(loc: "Localisation", path: str | PathLike) -> Path:
    """`to_kml` written to ``path`` (UTF-8)."""
    path = _open(path)
    text = to_kml(loc, name=f"topoloc: {path.stem}")
    return write_text_atomically(path, text, encoding="utf-8")
