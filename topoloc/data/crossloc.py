"""CrossLoc benchmark scenes in the DSAC* layout.

A split folder (e.g. ``naturescape/test_real``) holds, per image stem::

    rgb/<stem>.png            the image
    poses/<stem>.txt          4x4 camera-to-world: rotation in ECEF axes, translation = ECEF - scene origin (m)
    calibration/<stem>.txt    the focal length in pixels (one number; a 3x3 K is accepted too)

Camera axes are OpenCV (x right, y down, z forward), the same as :func:`topoloc.geodesy.cesium_to_c2w`.
Samples carry ``c2w`` in the local ENU frame of the scene origin, like the TOPO flight datasets.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from topoloc._paths import hidden
from topoloc.data._images import parse_image_size
from topoloc.data.posed import PosedImages, check_flight_name, check_root, check_transform
from topoloc.geodesy import AREA_ORIGINS, LocalFrame, area_frame, as_frame, c2w_to_cesium, check_ecef_near_surface

__all__ = ["CrossLocScene"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: What a scene's images are (a CrossLoc split folder holds one kind).
CROSSLOC_DOMAINS = ("synthetic", "real")
def _scene_frame(root: Path, split_folder: str, frame) -> LocalFrame:
    """``frame`` if given, else the area whose word (`topoloc.geodesy.AREA_ORIGINS`: naturescape,
    urbanscape, comballaz, epfl...) the scene folder's name holds, as given or behind a link, or
    else the split folder's. Folders above the scene are not read: a scene kept under a lab's
    ``epfl/`` folder is not told to be at EPFL."""
    if frame is not None:
        return as_frame(frame)
    for name in (root.name, root.resolve().name, split_folder):
        if any(word in name.lower() for word, _ in AREA_ORIGINS):
            return area_frame(name, anywhere=True)
    raise ValueError(
        f"{root / split_folder}: cannot tell the scene origin from the scene folder's name {root.resolve().name!r} "
        f"(expected one of {[w for w, _ in AREA_ORIGINS]} in it); pass frame=LocalFrame(lat_deg, lon_deg, h_m) or "
        "an origin name"
    )


def _by_stem(folder: Path, suffixes, problems: list[str]) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes`` (any case), by stem. A stem held by two files
    (``a.png`` and ``a.jpg``) and a link to nothing (CrossLoc's ``rgb/`` is links to the raw data) are
    added to ``problems`` instead: which file was meant cannot be told, and the link would fail later."""
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in suffixes or hidden(p):
            continue
        if p.is_symlink() and not p.exists():
            problems.append(f"{p}: a link to {os.readlink(p)!r}, which does not exist")
            continue
        found.setdefault(p.stem, []).append(p)
    for stem, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            problems.append(f"{folder}: stem {stem!r} is held by {len(paths)} files ({names}); keep one")
    return {stem: paths[0] for stem, paths in found.items() if len(paths) == 1}


def _read_pose(path: Path) -> np.ndarray:
    try:
        m = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: could not parse the pose ({err}); expected a 4x4 matrix of numbers") from err
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise ValueError(f"{path}: expected a finite 4x4 camera-to-world matrix, got shape {m.shape}")
    r = m[:3, :3]
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6) or not np.allclose(r.T @ r, np.eye(3), atol=1e-4) \
            or np.linalg.det(r) < 0:
        raise ValueError(f"{path}: expected a rigid camera-to-world pose (orthonormal rotation, last row 0 0 0 1)")
    return m


def _read_focal(path: Path) -> float:
    try:
        v = np.loadtxt(path, dtype=np.float64, ndmin=1).ravel()
    except ValueError as err:
        raise ValueError(f"{path}: could not parse the calibration ({err}); expected the focal length in px") from err
    if v.size == 9:
        v = v[:1]
    if v.size != 1 or not np.isfinite(v[0]) or v[0] <= 0:
        raise ValueError(f"{path}: expected one positive focal length in pixels (or a 3x3 K), got {v.tolist()}")
    return float(v[0])


class CrossLocScene(PosedImages):
    """One split folder of the CrossLoc benchmark (DSAC* layout), paired by file stem.

    Args:
        root: the scene folder (e.g. ``.../naturescape``) holding the split folders.
        split_folder: e.g. ``"train_sim"``, ``"val_sim"``, ``"test_real"``.
        frame: local frame of the scene origin: a LocalFrame, ``"comballaz"`` / ``"epfl"``, or None
            to take it from the scene folder's name (naturescape / comballaz -> Comballaz, urbanscape /
            EPFL -> EPFL); folders above it are not read.
        image_size: None (native), ``(H, W)`` or the short side in pixels.
        transform: optional callable on the sample dict.
        domain: sample ``domain``; None: ``"real"`` if the split folder's name contains "real",
            else ``"synthetic"``.
        on_error: ``"raise"`` on a stem missing one of its three files or a bad file, or ``"skip"``
            it with one warning giving the count.

    Sample: as :class:`topoloc.data.TopoFlight` (``image``, ``c2w`` camera-to-ENU, ``ecef``,
    ``cesium``, ``domain``, ``name``, ``flight`` = split folder, ``index``) plus ``focal_px``
    (float64 scalar tensor, at the native size: scale it with the image when resizing).
    """

    def __init__(
        self,
        root: str | Path,
        split_folder: str,
        frame: LocalFrame | str | None = None,
        image_size: tuple[int, int] | int | None = None,
        transform: Callable[[dict], dict] | None = None,
        domain: str | None = None,
        on_error: str = "raise",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        self.root = check_root(root, "the split folders")
        self.split_folder = check_flight_name(split_folder, "split_folder",
                                              "a split folder's name such as 'test_real'")
        self.folder = self.root / self.split_folder
        self.image_size, self.transform = parse_image_size(image_size, allow_none=True), check_transform(transform)
        if domain is not None and domain not in CROSSLOC_DOMAINS:
            raise ValueError(f"domain: expected one of {list(CROSSLOC_DOMAINS)} or None (from the folder name), "
                             f"got {domain!r}")
        self.domain = domain or ("real" if "real" in self.split_folder.lower() else "synthetic")
        if not self.folder.is_dir():  # before the frame, which is told from the path
            raise FileNotFoundError(f"{self.folder}: folder not found; expected a DSAC*-layout split folder with "
                                    "rgb/, poses/, calibration/")
        self.frame = _scene_frame(self.root, self.split_folder, frame)
        sub = {k: self.folder / k for k in ("rgb", "poses", "calibration")}
        missing = [str(p) for p in sub.values() if not p.is_dir()]
        if missing:
            raise FileNotFoundError(f"{self.folder}: not a DSAC*-layout split folder, missing {missing}; "
                                    "expected rgb/, poses/, calibration/")
        problems: list[str] = []
        images = _by_stem(sub["rgb"], IMAGE_SUFFIXES, problems)
        poses = _by_stem(sub["poses"], (".txt",), problems)
        calib = _by_stem(sub["calibration"], (".txt",), problems)
        for stem in sorted(set(images) | set(poses) | set(calib)):
            lacks = [k for k, d in (("rgb", images), ("poses", poses), ("calibration", calib)) if stem not in d]
            if lacks:
                have = (images.get(stem) or poses.get(stem) or calib.get(stem))
                problems.append(f"{have}: no matching file in {', '.join(lacks)}/ for stem {stem!r}")
        stems, c2w_ecef, focal = [], [], []
        for stem in sorted(set(images) & set(poses) & set(calib)):
            try:
                m, f = _read_pose(poses[stem]), _read_focal(calib[stem])
            except ValueError as err:
                problems.append(str(err))
                continue
            m = m.copy()
            m[:3, 3] += self.frame.origin_ecef
            stems.append(stem)
            c2w_ecef.append(m)
            focal.append(f)
        if problems:
            if on_error == "raise":
                raise ValueError(f"CrossLocScene {self.folder}: {len(problems)} problem(s):\n"
                                 + "\n".join(problems[:5]))
            warnings.warn(f"CrossLocScene {self.folder}: skipped {len(problems)} image(s), first: {problems[0]}",
                          stacklevel=2)
        self.skipped = problems
        if not stems:
            raise FileNotFoundError(f"{self.folder}: no complete samples (rgb/<stem>.png + poses/<stem>.txt + "
                                    "calibration/<stem>.txt)")
        c2w_ecef_n44 = np.stack(c2w_ecef)
        try:
            check_ecef_near_surface(c2w_ecef_n44[:, :3, 3], "pose translation + scene origin")
        except ValueError as err:
            raise ValueError(f"{sub['poses']}: {err}; is frame= the scene's origin?") from err
        self.names = stems
        self._image_paths = [images[s] for s in stems]
        self.focal_px = np.asarray(focal)
        self._cesium = c2w_to_cesium(c2w_ecef_n44)
        self._c2w = self.frame.c2w_ecef_to_enu(c2w_ecef_n44)

    def _flight(self, i: int) -> str:
        return self.split_folder

    def _extend(self, i: int, sample: dict) -> None:
        sample["focal_px"] = torch.tensor(self.focal_px[i], dtype=torch.float64)

    def __repr__(self) -> str:
        return f"CrossLocScene(folder={str(self.folder)!r}, n={len(self)}, domain={self.domain!r})"
