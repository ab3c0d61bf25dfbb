"""`PosedImages`: the base of the datasets of posed images, and the sample dict they share.

`TopoFlight` (TOPO-DataGen flight folders) and `CrossLocScene` (the CrossLoc benchmark) differ in
how they find their files and poses; what they give is the same, and lives here: the sample dict,
``len``, `poses`, `cesium` and `load_image`.
"""

from __future__ import annotations

import difflib
import operator
import os
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from topoloc.data._images import read_rgb

__all__ = ["PosedImages", "SAMPLE_KEYS", "check_flight_name", "check_root", "check_transform", "sample_index"]

#: The keys of every sample dict (subclasses may add their own, e.g. ``focal_px``, ``semantics``).
SAMPLE_KEYS = ("image", "c2w", "ecef", "cesium", "domain", "name", "flight", "index")


def sample_index(i: Any, n: int) -> int:
    """``i`` as a sample index in ``range(n)`` (negative counts from the end), refused unless a whole number.

    Example:
        >>> sample_index(-1, 5), sample_index(np.int64(2), 5)
        (4, 2)
    """
    if isinstance(i, bool):  # operator.index(True) is 1
        raise TypeError(f"a sample index must be a whole number, got {i!r}")
    try:
        k = operator.index(i)
    except TypeError:
        raise TypeError(f"a sample index must be a whole number, got {i!r}") from None
    if not -n <= k < n:
        raise IndexError(f"index {k} out of range for {n} samples")
    return k % n


def check_root(root: Any, what: str = "the flight folders") -> Path:
    """``root`` as a `Path`, refused naming ``root`` unless a str or `os.PathLike` (None from an unset setting,
    bytes, a list of folders).

    Raises:
        TypeError: naming ``root`` and saying what it should hold.
    """
    if isinstance(root, str) or (isinstance(root, PathLike) and isinstance(os.fspath(root), str)):
        return Path(root)
    raise TypeError(f"root: expected the folder holding {what} (a str or pathlib.Path), got "
                    f"{type(root).__name__} {root!r}")


def flights_like(root: Path, flight: str) -> str:
    """What to say of a flight folder missing under ``root``: the flights there nearest in spelling, else the
    flights there (a few), else nothing; a root that is not a folder is said as such (a mistyped ``--data``).
    ``"; flights in <root> nearest to that name: ..."`` or ``""``."""
    if not root.is_dir():
        return f"; the root {str(root)!r} itself is {'not a folder' if root.exists() else 'not found'}"
    held = sorted(d.name for d in root.iterdir() if d.is_dir() and (d / f"{d.name}_poses.npy").is_file())
    near = difflib.get_close_matches(flight, held, n=3, cutoff=0.8)
    if near:
        return f"; flights in {root} nearest to that name: {', '.join(near)}"
    if held:
        return f"; flights in {root}: {', '.join(held[:8])}" + (f" and {len(held) - 8} more" if len(held) > 8 else "")
    return ""


def check_flight_name(flight: Any, where: str = "flight",
                      what: str = "a flight name such as 'comballaz-2020-11-06-planned'") -> str:
    """``flight`` as given, refused naming ``where`` unless a non-empty str (None, a list of flights).

    Raises:
        TypeError: naming ``where`` and ``what`` it should be; a list is pointed to the datasets of several flights.
    """
    if isinstance(flight, str) and flight:
        return flight
    several = (" (several flights: ComballazAir / EPFLPhantom(root, flights=[...]) or "
               "topoloc.data.FlightCollection)") if isinstance(flight, (list, tuple)) else ""
    raise TypeError(f"{where}: expected {what} (a non-empty str), got {type(flight).__name__} {flight!r}{several}")


def check_transform(transform: Any) -> Callable[[dict], dict] | None:
    """``transform`` if it is None or callable; anything else (a name such as ``"flip"``) is refused.

    Raises:
        TypeError: naming ``transform`` and saying what it should be.
    """
    if transform is not None and not callable(transform):
        raise TypeError(f"transform: expected a callable (sample dict -> sample dict), got {type(transform).__name__}")
    return transform


class PosedImages(Dataset):
    """Images with their camera poses, as sample dicts.

    A subclass sets, in its constructor: ``names`` (one per sample), ``image_paths`` (or overrides the
    property), ``domain``,
    ``frame`` (the `LocalFrame` of ``c2w``), ``image_size`` (None, an int short side or (H, W),
    see `topoloc.image_size`), ``transform`` (a callable on the sample dict, or None), ``_c2w``
    (N, 4, 4) camera-to-ENU and ``_cesium`` (N, 6) pose rows; it overrides `_flight` and
    `_index` where they differ from the defaults, and `_extend` to add keys.

    Sample (``ds[i]``), torch values:
        ``image`` uint8 (3, H, W) RGB; ``c2w`` float64 (4, 4) camera-to-local-ENU, metres, OpenCV
        camera axes; ``ecef`` float64 (3,) camera centre, ECEF metres; ``cesium`` float64 (6,) the
        pose row (ECEF m, yaw / pitch / roll deg); ``domain``, ``name``, ``flight`` str; ``index`` int.
    """

    names: list[str]
    _image_paths: list[Path]
    domain: str
    image_size: Any
    transform: Callable[[dict], dict] | None
    _c2w: np.ndarray
    _cesium: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @property
    def image_paths(self) -> list[Path]:
        """The file each sample's ``image`` is read from."""
        return self._image_paths

    @image_paths.setter
    def image_paths(self, paths: list[Path]) -> None:  # a subclass's constructor sets them, as it always did
        self._image_paths = paths

    def poses(self) -> np.ndarray:
        """Camera-to-local-ENU poses of every sample, no image read. Shape: (N, 4, 4), metres."""
        return self._c2w.copy()

    def cesium(self) -> np.ndarray:
        """Pose rows of every sample (ECEF m, yaw / pitch / roll deg), no image read. Shape: (N, 6)."""
        return self._cesium.copy()

    def load_image(self, i: int) -> torch.Tensor:
        """The ``image`` of sample ``i`` (uint8 (3, H, W)) without building the whole sample."""
        return read_rgb(self.image_paths[sample_index(i, len(self))], self.image_size)

    def _flight(self, i: int) -> str:
        """The sample's ``flight`` (the flight or split folder it comes from)."""
        raise NotImplementedError

    def _index(self, i: int) -> int:
        """The sample's ``index`` (default: its position)."""
        return i

    def _extend(self, i: int, sample: dict[str, Any]) -> None:
        """Add the subclass's own keys to ``sample`` (default: none)."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = sample_index(i, len(self))
        sample = {
            "image": self.load_image(i),
            "c2w": torch.from_numpy(self._c2w[i].copy()),
            "ecef": torch.from_numpy(self._cesium[i, :3].copy()),
            "cesium": torch.from_numpy(self._cesium[i].copy()),
            "domain": self.domain,
            "name": self.names[i],
            "flight": self._flight(i),
            "index": self._index(i),
        }
        self._extend(i, sample)
        if self.transform is None:
            return sample
        out = self.transform(sample)
        if not isinstance(out, dict):
            raise TypeError(f"transform must return the sample dict, got {type(out).__name__}")
        return out
