"""One TOPO-DataGen flight folder as a dataset: renders and real photos paired with their pose rows.

Layout (TOPO-DataGen; Mini-Comballaz writes the same)::

    root/<flight>/<flight>_poses.npy                       float (N, 6) Cesium rows
    root/<flight>/<flight>_pic_names.csv                   one line: the photo name of each row (real flights)
    root/<flight>/<flight>_<idx:05d>[_<picname>]_img.png   RGBA render of pose row idx
    root/<flight>/<stem>_semantics.npy                     optional uint8 (H, W) class ids
    root/<flight>-real/<picname>.JPG                       real photo of the row named picname
    root/<flight>-real-alt/<picname>.JPG                   Mini-Comballaz's second "real" appearance (optional)

Pairing is by the row index written in each render's name (never by directory order); a real
photo is paired through the pic-names file, and the picname written in the render's name must
agree with it. Every mismatch is an error that names the file.
"""

from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from topoloc._flags import check_flag
from topoloc._paths import hidden
from topoloc.geodesy import LocalFrame, area_frame, implausible_heights
from topoloc.data._arrays import load_npy
from topoloc.data._images import check_image, image_header, parse_image_size, read_rgb, read_semantics
from topoloc.data.pose_sampling import radians_warning
from topoloc.data.posed import PosedImages, check_flight_name, check_root, check_transform, flights_like
from topoloc.data.splits import DEFAULT_FRACTIONS, check_split, split_rows

__all__ = ["TopoFlight", "DOMAINS", "area_frame", "read_pose_file", "read_pic_names"]

DOMAINS = ("synthetic", "real", "paired", "real_alt")
#: Folder suffix of each photo domain's images (``root/<flight><suffix>/<picname>.JPG``).
PHOTO_FOLDERS = {"real": "-real", "paired": "-real", "real_alt": "-real-alt"}
ON_ERROR = ("raise", "skip")
REAL_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Default of ``TopoFlight(max_distance_m=...)``: TOPO's flights lie within 2 km of their scene
#: origin, and the Comballaz and EPFL origins are 40 km apart.
MAX_DISTANCE_M = 20_000.0
#: Consecutive pose rows kept together by the splits of real (sequential) flights.
REAL_FLIGHT_SPLIT_BLOCK = 25


def default_split_block(flight: str) -> int:
    """`TopoFlight`'s ``split_block`` when none is given: 1 for ``*-LHS`` flights (independent poses),
    `REAL_FLIGHT_SPLIT_BLOCK` for the others (sequences of neighbouring frames)."""
    return 1 if flight.endswith("-LHS") else REAL_FLIGHT_SPLIT_BLOCK


def read_pose_file(path: Path) -> np.ndarray:
    """A ``<flight>_poses.npy`` file as float64 (N, 6); raises naming the file on a wrong shape."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder, expected a pose file (a (N, 6) .npy array of Cesium pose rows)")
    if not path.is_file():
        npy = path.with_name(path.name + ".npy")  # `topoloc poses --out FILE` wrote FILE.npy, as numpy does
        hint = f" (there is {npy.name} beside it: give the name with '.npy')" if npy.is_file() else ""
        raise FileNotFoundError(f"{path}: pose file not found{hint}; expected a (N, 6) .npy array of Cesium pose rows")
    poses = load_npy(path, "pose file", "a (N, 6) .npy array of Cesium pose rows")
    if poses.ndim != 2 or poses.shape[1] != 6 or poses.dtype.kind not in "iuf":  # complex: not a pose
        raise ValueError(
            f"{path}: expected a numeric array of shape (N, 6) (ECEF x, y, z m, yaw, pitch, roll deg), got "
            f"shape {poses.shape} dtype {poses.dtype}"
        )
    if poses.dtype.kind in "iu" or (poses.dtype.kind == "f" and poses.itemsize < 8):
        # ECEF coordinates are about 6.4e6 m: float32 keeps them to 0.5 m, float16 not at all
        how = {"i": "whole metres and degrees", "u": "whole metres and degrees",
               "f": "about 0.5 m" if poses.itemsize == 4 else "nothing useful (float16 overflows)"}[poses.dtype.kind]
        warnings.warn(f"{path}: the pose rows are stored as {poses.dtype}, not float64: they hold the positions "
                      f"to {how} (TOPO-DataGen writes float64)", stacklevel=2)
    return poses.astype(np.float64)


def read_pic_names(path: Path) -> list[str]:
    """A ``<flight>_pic_names.csv`` file: comma-separated photo names (one line; newlines tolerated).

    UTF-8, with or without a byte-order mark (as Windows tools write it); a name in double quotes (as Excel or
    pandas write a re-saved file) is read without them.

    Raises:
        ValueError: the file is not UTF-8 text, naming it.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); expected comma-separated photo names without their "
                         "suffix, e.g. DJI_0001,DJI_0002 (the photos DJI_0001.JPG, DJI_0002.JPG)") from err
    names = (n.strip() for n in re.split(r"[,\n]", text))
    return [n[1:-1].strip() if len(n) >= 2 and n[0] == n[-1] == '"' else n for n in names if n]


def _render_pattern(flight: str) -> re.Pattern:
    """A render's name: ``<flight>_<idx>[_<picname>]_img.png``, the suffix in any case (``_img.PNG`` after a copy
    through Windows)."""
    return re.compile(rf"^{re.escape(flight)}_(\d+)(?:_(.+))?_img\.png$", re.IGNORECASE)


class TopoFlight(PosedImages):
    """One TOPO-DataGen flight: renders (``domain="synthetic"``), real photos (``"real"``) or both (``"paired"``).

    The dataset holds exactly the pose rows that have an image (and, for real / paired, a real
    photo too), in increasing row order.

    Args:
        root: folder holding ``<flight>/`` (and ``<flight>-real/`` for real photos).
        flight: flight name, e.g. ``"comballaz-2020-11-06-planned"`` or ``"comballaz-LHS"``.
        domain: ``"synthetic"`` (the renders), ``"real"`` (the photos), ``"paired"`` (the photo
            as ``image`` and the render at the same pose as ``image_synthetic``) or ``"real_alt"``
            (Mini-Comballaz's second "real" appearance, read like the photos from ``<flight>-real-alt/``).
        split: ``"train"``, ``"val"``, ``"test"``, ``"all"``, or a sequence of pose-row indices (the rows it
            names, held in increasing row order like every split: its order and repeats do not count).
            See :mod:`topoloc.data.splits`: the split of a row depends only on the pose file's
            row count, ``split_fractions``, ``split_seed`` and ``split_block``.
        image_size: None for the native size, ``(H, W)`` in pixels, or an int for the short side
            (aspect kept).
        frame: local frame of ``c2w``: a LocalFrame, an origin name (``"comballaz"`` / ``"epfl"``),
            or None for the flight's area (:func:`area_frame`).
        transform: optional callable applied to each sample dict, returning a sample dict.
        load_semantics: add ``semantics`` (uint8 (H, W), nearest-resized to the image) from
            ``<stem>_semantics.npy`` of the render (for ``"real_alt"``: ``<picname>_semantics.npy``
            beside the photo, warped by its lens); every sample must have one.
        on_error: ``"raise"`` (default) on any bad file, or ``"skip"`` bad images with one warning
            that gives the count (kept in ``.skipped`` as ``(file, reason)``). A pose file of the
            wrong shape, duplicate row indices or a folder that is not a flight always raise.
            Unreadable images are found when read (an error naming the file), or at construction
            with ``check_images``.
        check_images: open and verify every image file at construction (slower: reads each file
            once), so that unreadable ones raise or are skipped here rather than in ``ds[i]``, and
            warn when the images have several sizes (they would be stretched to one training
            size, or fail to batch at their native size), with the count of each and a file of each,
            and when photos carry an EXIF Orientation other than 1 (read as stored, not rotated).
        split_fractions: (train, val, test) shares.
        split_seed: seed of the split order.
        split_block: consecutive rows kept in one split; None: 1 for ``*-LHS`` flights (independent
            poses), 25 for real flights (sequences of neighbouring frames).
        max_distance_m: a pose row farther than this from the frame's origin (metres) is a bad
            row, reported with its file like a NaN row (ECEF computed with latitude and longitude
            swapped is a valid point on the Earth, thousands of km away); None: no limit.

    Sample (``ds[i]``): the `PosedImages` sample (``index`` is the pose row, ``name`` the image
        file stem), plus ``image_synthetic`` (paired only) and ``semantics`` (with ``load_semantics``).
    """

    def __init__(
        self,
        root: str | PathLike,
        flight: str,
        domain: str = "synthetic",
        split: str | Sequence[int] = "all",
        image_size: tuple[int, int] | int | None = None,
        frame: LocalFrame | str | None = None,
        transform: Callable[[dict], dict] | None = None,
        load_semantics: bool = False,
        on_error: str = "raise",
        check_images: bool = False,
        split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
        split_seed: int = 0,
        split_block: int | None = None,
        max_distance_m: float | None = MAX_DISTANCE_M,
    ) -> None:
        if domain not in DOMAINS:
            raise ValueError(f"domain: expected one of {DOMAINS}, got {domain!r}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error: expected one of {ON_ERROR}, got {on_error!r}")
        if max_distance_m is not None and (isinstance(max_distance_m, bool)
                                           or not isinstance(max_distance_m, numbers.Real) or not max_distance_m > 0):
            raise ValueError(f"max_distance_m: expected a positive number of metres or None, got {max_distance_m!r}")
        self.max_distance_m = None if max_distance_m is None else float(max_distance_m)
        self.root, self.flight, self.domain = check_root(root), check_flight_name(flight), domain
        self.image_size = parse_image_size(image_size, allow_none=True)
        self.transform, self.on_error = check_transform(transform), on_error
        self.load_semantics = check_flag(load_semantics, "load_semantics")
        check_flag(check_images, "check_images")
        check_split(split)  # before the folder: a wrong type is the first thing to say
        self.folder = self.root / self.flight
        self.skipped: list[tuple[str, str]] = []
        problems: list[tuple[Path, str]] = []

        layout = (f"expected a TOPO flight folder holding {self.flight}_poses.npy and "
                  f"{self.flight}_<idx:05d>[_<picname>]_img.png")
        if not self.folder.is_dir():  # before the frame: a misspelt name is said as one, not as an unknown area
            if (self.root / f"{self.flight}_poses.npy").is_file():  # the flight's own folder given as the root
                parent = self.root.parent if self.root.name not in ("", "..") else self.root.resolve().parent
                layout += (f"; {self.root} is that flight folder itself: give the folder that holds it, {parent}, "
                           f"as the root (CLI: --data; a recipe's data.root)")
            else:
                layout += flights_like(self.root, self.flight)
            raise FileNotFoundError(f"{self.folder}: folder not found; {layout}")
        self.frame = area_frame(self.flight, frame)
        self.pose_file = self.folder / f"{self.flight}_poses.npy"
        if not self.pose_file.exists():  # a folder in its place: read_pose_file says so
            raise FileNotFoundError(f"{self.folder}: not a TOPO flight, {self.pose_file.name} is missing; {layout}")
        poses = read_pose_file(self.pose_file)
        finite = poses[np.isfinite(poses).all(axis=1)]
        if len(finite) and (said := radians_warning(finite, str(self.pose_file))) is not None:
            warnings.warn(said, stacklevel=2)
        n_rows = len(poses)
        self._check_frame_fits(poses, frame)
        bad_rows = self._bad_rows(poses)

        pic_file = self.folder / f"{self.flight}_pic_names.csv"
        pic_names = read_pic_names(pic_file) if pic_file.is_file() else None
        if pic_names is not None and len(pic_names) != n_rows:
            raise ValueError(
                f"{pic_file}: {len(pic_names)} photo names but {self.pose_file.name} has {n_rows} rows; "
                "expected one name per row"
            )

        renders = self._scan_renders(n_rows, pic_names, bad_rows, problems)
        if domain == "synthetic":
            rows = np.array(sorted(renders), dtype=np.int64)
            real = {}
        else:
            real = self._scan_real(pic_file, pic_names, renders, problems)
            rows = np.array(sorted(real), dtype=np.int64)

        # the files a sample reads: a photo's render only in "paired" (elsewhere it only pairs it with its row)
        read = {"synthetic": (renders,), "paired": (renders, real)}.get(domain, (real,))
        if check_images:
            for store in read:
                for row in [r for r in rows.tolist() if r in store]:
                    why = check_image(store[row])
                    if why:
                        problems.append((store[row], why))
                        rows = rows[rows != row]
        self._report(problems)
        if check_images:
            for store in read:
                self._warn_headers([store[r] for r in rows.tolist()])
        block = default_split_block(self.flight) if split_block is None else split_block
        keep = split_rows(rows, n_rows, split, split_fractions, split_seed, block)
        if not isinstance(split, str):
            missing = sorted(set(int(r) for r in split) - set(rows.tolist()))
            bad = [r for r in missing if r in bad_rows]  # skipped (on_error="skip"): their pose row, not an image
            if bad:
                raise ValueError(f"split: rows {bad[:10]} of {self.flight} were skipped, their pose rows in "
                                 f"{self.pose_file.name} are not poses (row {bad[0]}: {bad_rows[bad[0]]})")
            if missing:
                raise ValueError(f"split: rows {missing[:10]} of {self.flight} have no image in {self.folder}")
        self.split, self.rows = split, rows[keep]
        self.render_paths = [renders[r] for r in self.rows]
        self.real_paths = [real[r] for r in self.rows] if real else []
        self.semantics_paths = self._semantics_paths() if self.load_semantics else []
        if len(self.rows) == 0:
            warnings.warn(f"TopoFlight {self.flight} ({domain}, split {split!r}) is empty", stacklevel=2)

        self._cesium = poses[self.rows]
        self._c2w = self.frame.cesium_to_c2w(self._cesium) if len(self.rows) else np.zeros((0, 4, 4))
        self.names = [p.stem for p in (self.real_paths or self.render_paths)]

    # ----------------------------------------------------------------------------------- scanning
    def _check_frame_fits(self, poses: np.ndarray, frame: object) -> None:
        """Refuse a ``frame`` given for a flight none of whose positions lie within ``max_distance_m`` of its origin
        (each row was reported as a bad file, and skipping them left an empty dataset)."""
        finite = poses[np.all(np.isfinite(poses), axis=1)]
        if frame is None or self.max_distance_m is None or not len(finite):
            return
        dist_m = np.linalg.norm(finite[:, :3] - self.frame.origin_ecef, axis=1)
        if dist_m.min() > self.max_distance_m:
            try:
                own = f"; its name gives {area_frame(self.flight)} (frame=None)"
            except ValueError:  # a name that tells no area: the frame must be given, another one
                own = ""
            given = f"{frame!r} ({self.frame})" if isinstance(frame, str) else str(self.frame)
            raise ValueError(f"frame: {given} does not fit flight {self.flight}: its nearest position is "
                             f"{dist_m.min() / 1000:.1f} km from that origin (more than max_distance_m="
                             f"{self.max_distance_m:g} m){own}")

    def _bad_rows(self, poses: np.ndarray) -> dict[int, str]:
        """Rows that are not a pose: NaN / inf, or a position far from the Earth's surface."""
        bad = {int(i): "NaN or inf in the pose row" for i in np.flatnonzero(~np.all(np.isfinite(poses), axis=1))}
        finite = np.flatnonzero(np.all(np.isfinite(poses), axis=1))
        if finite.size:
            for i in finite[implausible_heights(poses[finite, :3])[0]]:
                bad[int(i)] = "position far from the Earth's surface (expected ECEF metres; lat/lon swapped?)"
            if self.max_distance_m is not None:
                dist_m = np.linalg.norm(poses[finite, :3] - self.frame.origin_ecef, axis=1)
                for i, d in zip(finite[dist_m > self.max_distance_m], dist_m[dist_m > self.max_distance_m]):
                    bad.setdefault(int(i), f"position {d / 1000:.1f} km from the origin of the local frame "
                                           f"{self.frame} (more than max_distance_m={self.max_distance_m:g} m; "
                                           "lat/lon swapped, or another area's flight?)")
        return bad

    def _scan_renders(self, n_rows, pic_names, bad_rows, problems) -> dict[int, Path]:
        pattern = _render_pattern(self.flight)
        renders: dict[int, Path] = {}
        self._rejected_rows: set[int] = set()  # rows whose render is reported as a problem
        for path in sorted(self.folder.iterdir()):
            if not path.name.lower().endswith("_img.png") or hidden(path):
                continue
            m = pattern.match(path.name)
            if m is None:
                problems.append((path, f"name does not follow {self.flight}_<idx:05d>[_<picname>]_img.png"))
                continue
            row, picname = int(m.group(1)), m.group(2)
            if row in renders:
                raise ValueError(f"{path}: pose row {row} already has the image {renders[row].name}; "
                                 "expected one image per row")
            if row >= n_rows or row in bad_rows or (picname is not None and pic_names is not None
                                                    and pic_names[row] != picname):
                self._rejected_rows.add(row)
            if row >= n_rows:
                problems.append((path, f"row {row} but {self.pose_file.name} has only {n_rows} rows "
                                       "(pose file too short)"))
            elif row in bad_rows:
                problems.append((path, f"row {row} of {self.pose_file.name}: {bad_rows[row]}"))
            elif picname is not None and pic_names is not None and pic_names[row] != picname:
                problems.append(
                    (path, f"picname {picname!r} but row {row} of {self.flight}_pic_names.csv is {pic_names[row]!r}")
                )
            else:
                renders[row] = path
        if not renders and not problems:
            paired = ("" if self.domain == "synthetic" else
                      f"; domain={self.domain!r} takes each photo's pose row from the render of that row: render the "
                      "flight's poses first (TOPO-DataGen; for Mini-Comballaz, topoloc render)")
            raise FileNotFoundError(
                f"{self.folder}: no render images found; expected files named "
                f"{self.flight}_<idx:05d>[_<picname>]_img.png{paired}"
            )
        return renders

    def _scan_real(self, pic_file, pic_names, renders, problems) -> dict[int, Path]:
        real_folder = self.root / f"{self.flight}{PHOTO_FOLDERS[self.domain]}"
        if not real_folder.is_dir():
            raise FileNotFoundError(f"{real_folder}: folder of real photos not found; "
                                    "expected <picname>.JPG files there")
        if pic_names is None:
            raise FileNotFoundError(f"{pic_file}: pic-names file not found; "
                                    "it is needed to pair real photos with pose rows")
        row_of: dict[str, int] = {}
        duplicated = set()
        for i, n in enumerate(pic_names):
            if n in row_of:
                duplicated.add(n)
            row_of.setdefault(n, i)
        real: dict[int, Path] = {}
        for path in sorted(real_folder.iterdir()):
            if path.suffix.lower() not in REAL_SUFFIXES or not path.is_file() or hidden(path):
                continue
            name = path.stem
            if name in duplicated:
                problems.append((path, f"the name appears more than once in {pic_file.name}; "
                                       "the pose row is ambiguous"))
            elif name not in row_of:
                problems.append((path, f"no photo of that name in {pic_file.name}"))
            elif row_of[name] in self._rejected_rows:
                continue  # its render is already reported
            elif row_of[name] not in renders:
                problems.append((path, f"real photo with no render: no {self.flight}_{row_of[name]:05d}_*_img.png "
                                       f"for row {row_of[name]}"))
            elif row_of[name] in real:
                raise ValueError(f"{path}: row {row_of[name]} already has the photo {real[row_of[name]].name}")
            else:
                real[row_of[name]] = path
        if not real and not problems:
            raise FileNotFoundError(f"{real_folder}: no real photos found; expected <picname>.JPG files")
        missing = sorted(set(renders) - set(real))
        if missing:
            warnings.warn(f"TopoFlight {self.flight} ({self.domain}): {len(missing)} of {len(renders)} rendered pose "
                          f"rows have no real photo in {real_folder} and are left out (first: row {missing[0]}, "
                          f"{pic_names[missing[0]]!r})", stacklevel=3)
        return real

    def _warn_headers(self, paths: list[Path]) -> None:
        """Warn of images of several sizes, and of photos whose EXIF Orientation asks for a rotation or a flip
        (read as stored, as `topoloc.localise` reads them, which warns of them too)."""
        sizes: dict[tuple[int, int], list[Path]] = {}
        turned: list[tuple[Path, int]] = []
        for path in paths:
            hw, orientation = image_header(path)
            sizes.setdefault(hw, []).append(path)
            if orientation != 1:
                turned.append((path, orientation))
        if turned:
            warnings.warn(f"TopoFlight {self.flight} ({self.domain}): {len(turned)} image(s) carry an EXIF Orientation "
                          f"other than 1 (first: {turned[0][0]}: {turned[0][1]}); their pixels are used as stored, "
                          "not rotated, as topoloc localise reads photos", stacklevel=3)
        if len(sizes) > 1:
            each = ", ".join(f"{len(ps)} of {w}x{h} (e.g. {ps[0]})"
                             for (h, w), ps in sorted(sizes.items(), key=lambda kv: -len(kv[1])))
            warnings.warn(f"TopoFlight {self.flight} ({self.domain}): images of {len(sizes)} sizes: {each}; they are "
                          "stretched to one training size, and do not batch at their native size", stacklevel=3)

    def _semantics_paths(self) -> list[Path]:
        paths, keep = [], []
        for k, render in enumerate(self.render_paths):
            p = render.with_name(render.name[: -len("_img.png")] + "_semantics.npy")
            if self.domain == "real_alt":  # its lens moves pixels: its own semantics, beside the photo
                p = self.real_paths[k].with_name(self.real_paths[k].stem + "_semantics.npy")
            if p.is_file():
                paths.append(p)
                keep.append(k)
            elif self.on_error == "raise":
                raise FileNotFoundError(f"{p}: semantics file not found (load_semantics=True needs one per image)")
            else:
                self.skipped.append((str(p), "semantics file not found"))
        if len(keep) < len(self.render_paths):
            warnings.warn(f"TopoFlight {self.flight}: skipped {len(self.render_paths) - len(keep)} images "
                          "without semantics", stacklevel=3)
            self.rows = self.rows[keep]
            self.render_paths = [self.render_paths[k] for k in keep]
            self.real_paths = [self.real_paths[k] for k in keep] if self.real_paths else []
        return paths

    def _report(self, problems: list[tuple[Path, str]]) -> None:
        if not problems:
            return
        lines = [f"{p}: {why}" for p, why in problems]
        if self.on_error == "raise":
            more = f"\n... and {len(lines) - 5} more" if len(lines) > 5 else ""
            raise ValueError(
                f"TopoFlight {self.flight}: {len(lines)} bad file(s) (repair or remove them; from Python, "
                "TopoFlight(..., on_error='skip') skips them):\n"
                + "\n".join(lines[:5]) + more
            )
        self.skipped += [(str(p), why) for p, why in problems]
        warnings.warn(f"TopoFlight {self.flight}: skipped {len(lines)} bad file(s), first: {lines[0]}", stacklevel=3)

    # ------------------------------------------------------------------------------------ access
    @property
    def image_paths(self) -> list[Path]:
        """The file each sample's ``image`` is read from."""
        return self.real_paths if self.domain != "synthetic" else self.render_paths

    @image_paths.setter
    def image_paths(self, paths: list[Path]) -> None:
        raise AttributeError("TopoFlight.image_paths follows the domain (real_paths or render_paths); "
                             "pass domain= to choose them")

    def _flight(self, i: int) -> str:
        return self.flight

    def _index(self, i: int) -> int:
        return int(self.rows[i])  # the pose row

    def _extend(self, i: int, sample: dict) -> None:
        if self.domain == "paired":
            sample["image_synthetic"] = read_rgb(self.render_paths[i], self.image_size)
        if self.load_semantics:
            sample["semantics"] = read_semantics(self.semantics_paths[i], tuple(sample["image"].shape[-2:]))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(flight={self.flight!r}, domain={self.domain!r}, split={self.split!r}, "
            f"n={len(self)}, root={str(self.root)!r})"
        )
