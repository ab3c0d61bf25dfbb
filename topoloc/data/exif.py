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
import warnings
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
_UNSIGNED = r"\d+(?:\.\d*)?"
_DMS = re.compile(rf"({_UNSIGNED})\s*(?:deg|°)\s*(?:({_UNSIGNED})\s*')?\s*(?:({_UNSIGNED})\s*\")?\s*([NSEW])",
                  re.IGNORECASE)
#: One coordinate in decimal degrees with its hemisphere, as exiftool writes it with ``-c "%.6f"``
#: (``46.370389 N``) or ``-c "%.6f degrees"`` (``46.370389 degrees N``).
_DECIMAL_HEMISPHERE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(?:degrees|deg|°)?\s*([NSEW])\s*", re.IGNORECASE)
#: Signed decimal degrees, as exiftool ``-n`` writes them: ``46.3704 7.067`` or ``46.3704, 7.067``.
_SIGNED_PAIR = re.compile(rf"\s*({_NUMBER})\s*(?:,\s*|\s+)({_NUMBER})\s*")
#: An altitude as exiftool writes it: ``1234.5``, ``+12.30``, ``1234.5 m``, ``12 m Above Sea Level``, ``3 m Below
#: Sea Level``.
_ALTITUDE = re.compile(rf"\s*({_NUMBER})\s*(?:m\s*)?(above sea level|below sea level)?\s*", re.IGNORECASE)
_LIMIT_DEG = {"lat": 90.0, "lon": 180.0}


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
    if not isinstance(text, str):
        raise TypeError(f"expected a position as text, got {type(text).__name__}")
    parts = _DMS.findall(text)
    if parts and re.search(r"[-+]\s*\d", text):
        raise ValueError(f"a signed value with a hemisphere letter in {text!r}; expected one or the other")
    if not parts:  # decimal degrees with hemispheres: each comma-separated part whole, or no reading at all
        pieces = [_DECIMAL_HEMISPHERE.fullmatch(piece) for piece in text.split(",")]
        matches = [m for m in pieces if m is not None]
        if len(matches) == len(pieces):
            parts = [(m.group(1), "", "", m.group(2)) for m in matches]
    if parts:
        values = {}
        for deg, minutes, seconds, hemi in parts:
            for what, part in (("minutes", minutes), ("seconds", seconds)):
                if part and float(part) >= 60.0:
                    raise ValueError(f"{what} {part} >= 60 in {text!r}; expected a position in degrees, minutes "
                                     f"and seconds")
            v = float(deg) + float(minutes or 0) / 60.0 + float(seconds or 0) / 3600.0
            hemi = hemi.upper()
            values["lat" if hemi in "NS" else "lon"] = -v if hemi in "SW" else v
        if set(values) == {"lat", "lon"} and len(parts) == 2:
            return _in_range(values["lat"], values["lon"], text)
    else:
        pair = _SIGNED_PAIR.fullmatch(text)
        if pair is not None:
            return _in_range(float(pair.group(1)), float(pair.group(2)), text)
    raise ValueError(f"expected a position like 46 deg 22' 13.40\" N, 7 deg 4' 1.20\" E (or 46.370389 N, 7.067 E; "
                     f"or 'lat lon' in signed degrees), got {text!r}")


def _in_range(lat: float, lon: float, text: str) -> tuple[float, float]:
    for axis, value in (("lat", lat), ("lon", lon)):
        if not abs(value) <= _LIMIT_DEG[axis]:
            raise ValueError(f"{'latitude' if axis == 'lat' else 'longitude'} {value:g} deg out of range "
                             f"(+-{_LIMIT_DEG[axis]:g}) in {text!r}")
    return lat, lon


def _with_ref(value: float, text: str, ref: str, axis: str) -> float:
    """A coordinate signed by its ``GPSLatitudeRef`` / ``GPSLongitudeRef`` cell (``North``, ``S``, ``West``, ...),
    as exiftool writes an EXIF group's unsigned values; refused where the value's own sign or letter disagrees."""
    column = "GPSLatitudeRef" if axis == "lat" else "GPSLongitudeRef"
    letters = "NS" if axis == "lat" else "EW"
    letter = ref.strip()[:1].upper()
    if letter not in letters:
        raise ValueError(f"{column}: expected {letters[0]} or {letters[1]} (or the words), got {ref!r}")
    negative = letter == letters[1]
    signed = value < 0 or re.search(r"[NSEW]\s*$", text.strip(), re.IGNORECASE)  # the value says its side too
    if signed and (value < 0) != negative:
        raise ValueError(f"{column} {ref!r} contradicts the {'latitude' if axis == 'lat' else 'longitude'} {text!r}")
    return -abs(value) if negative else value


def _parse_altitude(text: str) -> float:
    m = _ALTITUDE.fullmatch(text)
    if m is None:
        raise ValueError(f"expected an altitude in metres (1234.5, 1234.5 m, 12 m Above Sea Level), got {text!r}")
    v = float(m.group(1))
    return -abs(v) if (m.group(2) or "").lower().startswith("below") else v


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
    if path.is_dir():
        raise ValueError(f"{path}: a folder, expected a DJI metadata csv file (exiftool -csv ... > img_meta.csv)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DJI metadata csv not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]  # the physical line a row ends on
    except UnicodeDecodeError as err:  # a photo or another binary file given for the csv
        raise ValueError(f"{path}: not a UTF-8 text file (a DJI metadata CSV); "
                         f"{err.reason} at byte {err.start}") from err
    if not rows:
        raise ValueError(f"{path}: no data rows; expected an exiftool csv with a header line and one row per photo")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ValueError(f"{path}: column(s) {twice} named twice in the header; expected each once")
    columns = set(header)

    def need(*names: str) -> None:
        missing = [n for n in names if n not in columns]
        if missing:
            other = next((d for d in (";", "\t") if len(header) == 1 and d in header[0]), None)
            hint = f" (delimited by {other!r}? expected commas)" if other else ""
            raise ValueError(f"{path}: missing column(s) {missing}; found {sorted(columns)}{hint}")

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
    elif not columns & {"AbsoluteAltitude", "GPSAltitude"}:
        raise ValueError(f"{path}: missing an altitude column: AbsoluteAltitude or GPSAltitude (or RelativeAltitude "
                         f"with take_off_height_m); found {sorted(columns)}")
    else:
        alt_column = "AbsoluteAltitude" if "AbsoluteAltitude" in columns else "GPSAltitude"

    lat, lon, alt, att, names = [], [], [], [], []
    where: dict[str, int] = {}
    for line, row in rows:
        def cell(name: str) -> str:
            v = (row.get(name) or "").strip()
            if not v:
                raise ValueError(f"empty {name}")
            return v

        def angle(name: str) -> float:
            text = cell(name)
            try:
                v = float(text)
            except ValueError as err:
                raise ValueError(f"{name}: expected a number of degrees, got {row.get(name)!r}") from err
            if not np.isfinite(v):
                raise ValueError(f"{name}: expected a finite number of degrees, got {row.get(name)!r}")
            return v

        try:
            if None in row:  # more cells than the header: DictReader keeps them under None
                raise ValueError(f"{len(header) + len(row[None])} cells under a header of {len(header)}; expected a "
                                 f"comma-delimited csv (exiftool -csv), not one delimited by ';' or tabs")
            if "GPSPosition" in columns:
                la, lo = parse_dms(cell("GPSPosition"))
            else:
                la, lo = parse_dms(f"{cell('GPSLatitude')}, {cell('GPSLongitude')}")
                for axis, column in (("lat", "GPSLatitudeRef"), ("lon", "GPSLongitudeRef")):
                    ref = (row.get(column) or "").strip()
                    if ref:
                        value = _with_ref(la if axis == "lat" else lo, cell(column.removesuffix("Ref")), ref, axis)
                        la, lo = (value, lo) if axis == "lat" else (la, value)
            alt.append(_parse_altitude(cell(alt_column)))
            att.append([angle(c) for c in ANGLE_COLUMNS[angles]])
            name = Path(cell("SourceFile").replace("\\", "/")).stem
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: {err}") from err
        if name in where:
            raise ValueError(f"{path}, line {line}: photo name {name!r} also at line {where[name]} (another "
                             f"folder?); expected one row per photo name, the names of a flight's photos")
        where[name] = line
        lat.append(la)
        lon.append(lo)
        names.append(name)
    steep = [line for (line, _), a in zip(rows, att) if abs(a[1]) > 90.0]
    if steep:
        warnings.warn(f"{path}: {len(steep)} row(s) with a pitch outside [-90, 90] deg (lines {steep[:10]}); a "
                      f"gimbal overshoots -90 by a degree or so, more is likely an error", stacklevel=2)

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
    poses = np.column_stack([x, y, z, att_deg])
    return DjiMetadata(poses=poses, names=names)
