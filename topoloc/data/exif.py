"""DJI photo metadata (exiftool's ``img_meta.csv``) to TOPO pose rows, with an explicit vertical datum.

DJI drones write the position as GPS latitude / longitude, the altitude either above sea level
(``AbsoluteAltitude``, the geoid as zero) or above the take-off point (``RelativeAltitude``), and
the camera attitude as gimbal angles (``GimbalYawDegree`` / ``GimbalPitchDegree`` /
``GimbalRollDegree``, DJI's yaw clockwise from north, pitch -90 = straight down: the Cesium
convention of TOPO pose rows). TOPO's renders use WGS84 ellipsoidal heights, so an altitude
above sea level needs the geoid undulation N added: ``h = H + N``.

Default geoid undulation, :data:`DEFAULT_GEOID_OFFSET_M` = 49.5 m: the geoid lies 45-55 m above
the WGS84 / ETRS89 ellipsoid across Switzerland (swisstopo's CHGeo2004 as shown in Inside GNSS,
"How do GNSS-derived heights differ from other height systems?", figure 2), about 49-51 m in
western Switzerland (Lausanne, the Vaud Alps); the real TOPO flights sit about 50 m below the
heights implied by their synthetic twins, the same figure. The value is good to about +-1.5 m
over western Switzerland; pass ``geoid_offset_m`` from a geoid model (EGM2008, CHGeo2004) where
metres matter.
"""

from __future__ import annotations

import csv
import numbers
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from topoloc.geodesy import wgs84_to_ecef

__all__ = ["DEFAULT_GEOID_OFFSET_M", "DjiMetadata", "parse_dms", "parse_dji_metadata"]

#: Geoid undulation (m, geoid above the WGS84 ellipsoid) for western Switzerland; see the module doc.
DEFAULT_GEOID_OFFSET_M = 49.5
VERTICAL_DATUMS = ("amsl", "ellipsoidal")
ANGLE_COLUMNS = {
    "gimbal": ("GimbalYawDegree", "GimbalPitchDegree", "GimbalRollDegree"),
    "camera": ("CameraYaw", "CameraPitch", "CameraRoll"),
}

_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_DMS = re.compile(rf"({_NUMBER})\s*(?:deg|°)\s*(?:({_NUMBER})\s*')?\s*(?:({_NUMBER})\s*\")?\s*([NSEW])", re.IGNORECASE)
#: One coordinate in decimal degrees with its hemisphere, as exiftool writes it with ``-c "%.6f"``
#: (``46.370389 N``) or ``-c "%.6f degrees"`` (``46.370389 degrees N``).
_DECIMAL_HEMISPHERE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(?:degrees|deg|°)?\s*([NSEW])\s*", re.IGNORECASE)


class DjiMetadata(NamedTuple):
    """Pose rows read from DJI metadata.

    Attributes:
        poses: float64 (N, 6): ECEF x, y, z (m), yaw, pitch, roll (deg), TOPO's pose-row layout.
        names: photo name of each row (the file stem of ``SourceFile``), as in a pic-names file.
    """

    poses: np.ndarray
    names: list[str]


def parse_dms(text: str) -> tuple[float, float]:
    """A position ``46 deg 22' 13.40" N, 7 deg 4' 1.20" E`` (exiftool's default), decimal degrees with their
    hemispheres ``46.370389 N, 7.067 E`` (exiftool ``-c "%.6f"``), or signed decimal ``46.3704 7.067``
    (exiftool ``-n``) to (lat, lon) degrees.

    Hemisphere letters S and W give negative values; the N/S part is the latitude whatever the order.

    Example:
        >>> lat, lon = parse_dms("46 deg 22' 13.40\\" N, 7 deg 4' 1.20\\" W")
        >>> round(lat, 9), round(lon, 9)
        (46.370388889, -7.067)
    """
    parts = _DMS.findall(text)
    if not parts:  # decimal degrees with hemispheres: each comma-separated part whole, or no reading at all
        pieces = [_DECIMAL_HEMISPHERE.fullmatch(piece) for piece in text.split(",")]
        matches = [m for m in pieces if m is not None]
        if len(matches) == len(pieces):
            parts = [(m.group(1), "", "", m.group(2)) for m in matches]
    if parts:
        values = {}
        for deg, minutes, seconds, hemi in parts:
            v = float(deg) + float(minutes or 0) / 60.0 + float(seconds or 0) / 3600.0
            hemi = hemi.upper()
            values["lat" if hemi in "NS" else "lon"] = -v if hemi in "SW" else v
        if set(values) == {"lat", "lon"} and len(parts) == 2:
            return values["lat"], values["lon"]
    else:
        numbers = re.findall(_NUMBER, text)
        if len(numbers) == 2 and not re.search(r"[A-DF-Za-df-z]", text):
            return float(numbers[0]), float(numbers[1])
    raise ValueError(f"expected a position like 46 deg 22' 13.40\" N, 7 deg 4' 1.20\" E (or 46.370389 N, 7.067 E; "
                     f"or 'lat lon' in signed degrees), got {text!r}")


def _parse_altitude(text: str) -> float:
    m = re.search(_NUMBER, text)
    if m is None:
        raise ValueError(f"expected an altitude in metres, got {text!r}")
    v = float(m.group(0))
    return -abs(v) if "below" in text.lower() else v


def _check_metres(value, name: str) -> float:
    """``value`` as a float if it is a real number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number of metres, got {value!r}")
    return float(value)


def parse_dji_metadata(
    csv_path: str | Path,
    *,
    vertical_datum: str,
    geoid_offset_m: float = DEFAULT_GEOID_OFFSET_M,
    take_off_height_m: float | None = None,
    angles: str = "auto",
) -> DjiMetadata:
    """Reads a DJI ``img_meta.csv`` (exiftool columns) into TOPO pose rows.

    Columns used: ``SourceFile``; ``GPSPosition`` (or ``GPSLatitude`` + ``GPSLongitude``);
    ``AbsoluteAltitude`` (or ``GPSAltitude``), or ``RelativeAltitude`` when ``take_off_height_m``
    is given; the three angle columns.

    Args:
        csv_path: the csv file.
        vertical_datum: what the altitudes (and ``take_off_height_m``) are measured from:
            ``"amsl"`` (above sea level, the geoid: ``geoid_offset_m`` is added) or
            ``"ellipsoidal"`` (WGS84 ellipsoid, used as is). No default: DJI's ``AbsoluteAltitude``
            is normally above sea level, but RTK or post-processed files may be ellipsoidal.
        geoid_offset_m: geoid undulation N (m) added to above-sea-level altitudes; the default
            suits western Switzerland (see the module doc).
        take_off_height_m: height of the take-off point in ``vertical_datum``; when given, the
            altitude is ``take_off_height_m + RelativeAltitude``.
        angles: ``"gimbal"`` (Gimbal{Yaw,Pitch,Roll}Degree), ``"camera"`` (Camera{Yaw,Pitch,Roll})
            or ``"auto"`` (gimbal if present, else camera).

    Returns:
        DjiMetadata(poses (N, 6), names).

    Shape:
        poses: (N, 6) ECEF metres, then yaw, pitch, roll degrees.
    """
    path = Path(csv_path)
    if vertical_datum not in VERTICAL_DATUMS:
        raise ValueError(f"vertical_datum: expected one of {VERTICAL_DATUMS}, got {vertical_datum!r}")
    if angles not in ("auto", *ANGLE_COLUMNS):
        raise ValueError(f"angles: expected 'auto', 'gimbal' or 'camera', got {angles!r}")
    geoid_offset_m = _check_metres(geoid_offset_m, "geoid_offset_m")
    if take_off_height_m is not None:
        take_off_height_m = _check_metres(take_off_height_m, "take_off_height_m")
    if not np.isfinite(geoid_offset_m) or abs(geoid_offset_m) > 120:
        raise ValueError(f"geoid_offset_m: expected a geoid undulation in metres within +-120, got {geoid_offset_m}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DJI metadata csv not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except UnicodeDecodeError as err:  # a photo or another binary file given for the csv
        raise ValueError(f"{path}: not a UTF-8 text file (a DJI metadata CSV); "
                         f"{err.reason} at byte {err.start}") from err
    if not rows:
        raise ValueError(f"{path}: no data rows; expected an exiftool csv with a header line and one row per photo")
    columns = set(rows[0])

    def need(*names: str) -> None:
        missing = [n for n in names if n not in columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {sorted(columns)}")

    if angles == "auto":
        angles = next((k for k, cols in ANGLE_COLUMNS.items() if set(cols) <= columns), "gimbal")
    need("SourceFile", *ANGLE_COLUMNS[angles])
    if "GPSPosition" not in columns:
        need("GPSLatitude", "GPSLongitude")
    if take_off_height_m is not None:
        if not np.isfinite(take_off_height_m):
            raise ValueError(f"take_off_height_m: expected a finite height in metres, got {take_off_height_m}")
        need("RelativeAltitude")
        alt_column = "RelativeAltitude"
    else:
        alt_column = "AbsoluteAltitude" if "AbsoluteAltitude" in columns else "GPSAltitude"
        need(alt_column)

    lat, lon, alt, att, names = [], [], [], [], []
    for line, row in enumerate(rows, start=2):
        def cell(name: str) -> str:
            v = (row.get(name) or "").strip()
            if not v:
                raise ValueError(f"{path}, line {line}: empty {name}")
            return v

        try:
            if "GPSPosition" in columns:
                la, lo = parse_dms(cell("GPSPosition"))
            else:
                la, lo = parse_dms(f"{cell('GPSLatitude')}, {cell('GPSLongitude')}")
            alt.append(_parse_altitude(cell(alt_column)))
            att.append([float(cell(c)) for c in ANGLE_COLUMNS[angles]])
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: {err}") from err
        lat.append(la)
        lon.append(lo)
        names.append(Path(cell("SourceFile").replace("\\", "/")).stem)

    h = np.asarray(alt, dtype=np.float64)
    if take_off_height_m is not None:
        h = h + float(take_off_height_m)
    if vertical_datum == "amsl":
        h = h + float(geoid_offset_m)
    try:
        x, y, z = wgs84_to_ecef(np.asarray(lat), np.asarray(lon), h)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    att_deg = np.asarray(att, dtype=np.float64)
    if not np.all(np.isfinite(att_deg)):
        raise ValueError(f"{path}: expected finite {angles} angles, got NaN or inf")
    poses = np.column_stack([x, y, z, att_deg])
    return DjiMetadata(poses=poses, names=names)
