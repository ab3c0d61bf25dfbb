"""TOPO-DataGen pose files: float64 (N, 6) ``.npy`` arrays of pose rows, written, read and summarised.

Rows as in :mod:`topoloc.data.pose_sampling`: ECEF metres (EPSG:4978), then Cesium / DJI yaw, pitch,
roll in degrees. TOPO-DataGen renders such a file for a real site; ``topoloc render --poses`` renders
it in Mini-Comballaz.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from topoloc._paths import file_above
from topoloc._tempfiles import write_atomically
from topoloc.data.pose_sampling import _check_rows, _rows_frame
from topoloc.data.topo import read_pose_file
from topoloc.geodesy import LocalFrame

__all__ = ["pose_file_path", "save_pose_file", "load_pose_file", "pose_summary"]


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


def save_pose_file(path: str | os.PathLike[str], rows: npt.ArrayLike) -> Path:
    """Writes pose rows as a TOPO-DataGen pose file: a float64 (N, 6) ``.npy`` array.

    TOPO-DataGen reads such a file as its list of camera poses (ECEF m, Cesium yaw, pitch, roll
    deg); ``topoloc render --poses`` renders it.

    Args:
        path: the file to write (its folder is created; the previous file stays whole until the new one is).
        rows: pose rows, ECEF m + Cesium yaw, pitch, roll deg.

    Returns:
        The path written (``.npy`` appended when missing, as numpy does: :func:`pose_file_path`).

    Shape:
        rows: (N, 6)
    """
    a = _check_rows(rows, "rows")
    path = pose_file_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy would append .npy to the temporary's name
            np.save(f, np.ascontiguousarray(a, dtype=np.float64), allow_pickle=False)

    return write_atomically(path, write)  # a killed write leaves the previous file, never half of one


def load_pose_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads a TOPO-DataGen pose file; errors name the file.

    Returns:
        The pose rows, ECEF m + Cesium yaw, pitch, roll deg.

    Shape:
        -> (N, 6) float64
    """
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
    frame = _rows_frame(a, frame)
    enu = frame.ecef_to_enu(a[:, :3])
    ext = np.ptp(enu, axis=0)
    return (f"{len(a)} poses; ENU extent {ext[0]:.0f} m east x {ext[1]:.0f} m north, up {enu[:, 2].min():.0f}.."
            f"{enu[:, 2].max():.0f} m (frame lat {frame.lat_deg:.4f} lon {frame.lon_deg:.4f} h {frame.h_m:.0f} m); "
            f"pitch {round(a[:, 4].min(), 1) + 0.0:.1f}..{round(a[:, 4].max(), 1) + 0.0:.1f} deg")  # no "-0.0"
