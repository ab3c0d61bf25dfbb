"""The real TOPO flight poses, vendored from TOPO-DataGen (MIT, see presets/NOTICE.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["PRESETS_DIR", "list_presets", "load_preset", "load_preset_pic_names"]

#: Folder of the vendored ``<flight>_poses.npy`` and ``<flight>_pic_names.csv`` files.
PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def list_presets() -> list[str]:
    """Names of the vendored flights, e.g. ``"comballaz-2020-11-06-planned"``."""
    return sorted(p.name[: -len("_poses.npy")] for p in PRESETS_DIR.glob("*_poses.npy"))


def _path(flight: str, suffix: str) -> Path:
    path = PRESETS_DIR / f"{flight}{suffix}"
    if not isinstance(flight, str) or not path.is_file():
        raise ValueError(f"unknown TOPO flight preset {flight!r}; expected one of {list_presets()}")
    return path


def load_preset(flight: str) -> np.ndarray:
    """Pose rows of a real TOPO flight: float64 (N, 6), ECEF metres then Cesium yaw, pitch, roll (deg).

    Example:
        >>> load_preset("comballaz-2020-11-06-planned").shape
        (447, 6)
    """
    return np.load(_path(flight, "_poses.npy"))


def load_preset_pic_names(flight: str) -> list[str]:
    """The original photo name of each pose row (none for the synthetic ``*-LHS`` flights).

    Example:
        >>> load_preset_pic_names("comballaz-2020-11-06-planned")[0]
        '100_0416_0001'
    """
    _path(flight, "_poses.npy")  # an unknown name (or not a name) refused first
    if flight.endswith("-LHS"):
        return []
    text = _path(flight, "_pic_names.csv").read_text().strip()
    return [name.strip() for name in text.split(",") if name.strip()]
