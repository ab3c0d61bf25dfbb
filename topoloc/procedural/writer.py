"""Writes Mini-Comballaz flights in the exact TOPO-DataGen folder layout, resumably.

For each flight (a vendored preset, or a name with explicit pose rows such as a pose file written by
``topoloc poses``; optionally a subset of ``N`` poses spread over it)::

    out/<flight>/<flight>_poses.npy                      all rows of the preset or pose file (row index = idx)
    out/<flight>/<flight>_pic_names.csv                  real flights only
    out/<flight>/<flight>_<idx:05d>[_<picname>]_img.png  RGBA synthetic render
    out/<flight>/<stem>_semantics.npy                    uint8 class ids (SEMANTIC_CLASSES)
    out/<flight>/<stem>_depth.npy                        float32 depth (m), optional
    out/<flight>/semantic_classes.json
    out/<flight>-real/<picname>.JPG                      the "real" appearance (real flights only)
    out/<flight>-real/<picname>_semantics.npy            its semantics (clouds, snow, real-only objects)
    out/<flight>-real-alt/<picname>.JPG                  the second "real" appearance (only when asked:
    out/<flight>-real-alt/<picname>_semantics.npy        ``domains`` with "real_alt"), semantics warped by its lens
    out/mini_comballaz.json                              seed, size, version, ray-casting settings

A flight of explicit pose rows rendered with ``photos_like`` (:func:`pose_flight`) is written like a
real flight, its photo names ``PHOTO_<idx:05d>``, with ``out/<flight>/photos_like.txt`` naming the
flight whose photo appearance it has.

Every file is written to a temporary name and moved into place, so an interrupted render never
leaves a truncated file, and a new run skips the images already complete. A flight folder holds one
set of views: a run that asks for other pose rows than those it holds (another ``N``, other poses
under the name) is refused before anything is written; asking for more of the same (another photo
domain of a real flight, depth maps, all rows after ``N`` of them) completes it; a pose flight's photos
(``photos_like``) are asked for on its first render.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from topoloc._device import resolve_device, usable_cpus
from topoloc._paths import check_output, hidden
from topoloc._progress import maybe_bar
from topoloc._tempfiles import OPEN_MODE, remove_stale
from topoloc.data.preset import load_preset, load_preset_pic_names
from topoloc.geodesy import LocalFrame
from topoloc.procedural._noise import hash_uniform, image_key
from topoloc.procedural.appearance import appearance_for_flight, bake
from topoloc.procedural.clearance import MIN_CLEARANCE_M, check_clearance
from topoloc.procedural.jobs import (PHOTO_FOLDER_SUFFIX, RenderJob, _first, _photo_names, _select, parse_flights,
                                     parse_size, pose_flight)
from topoloc.data.semantics import CLASS_TABLE_FILE, SEMANTIC_CLASSES
from topoloc.procedural.manifest import MANIFEST_FILE, OtherPosesError, RenderFolderError, check_manifest
from topoloc.procedural.renderer import RenderConfig, render
from topoloc.procedural.world import build_world

__all__ = ["RenderJob", "OtherPosesError", "RenderFolderError", "pose_flight", "parse_flights", "parse_size",
           "render_flights", "FORMAT_VERSION", "RENDER_DOMAINS", "PHOTO_FOLDER_SUFFIX"]


#: Version of the Mini-Comballaz world and writer; bumped whenever the same seed would give other bytes.
FORMAT_VERSION = "8"
#: Domains `render_flights` can write ("synthetic" always; the photo domains for real flights only).
RENDER_DOMAINS = ("synthetic", "real", "real_alt")
#: In ``out/<flight>/`` of a pose flight rendered with ``photos_like``: the flight whose look its photos have.
_PHOTOS_LIKE_FILE = "photos_like.txt"


def _photos_phrase(photos_like: str | None) -> str:
    return f"with photos like {photos_like!r}" if photos_like else "without photos"


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, OPEN_MODE)  # mkstemp's 0o600 would keep a shared dataset's files from its other users
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _remove_stale_tmp(folder: Path) -> None:
    """Remove the ``.tmp-<pid>-*`` files of `_atomic` left by a killed render (and older ``.tmp-*`` ones)."""
    remove_stale(folder, r"\.tmp-(?:(?P<pid>\d+)-)?[a-z0-9_]+(?:\.[A-Za-z0-9]+)?", glob=".tmp-*")


def _check_manifest(out: Path, meta: dict) -> None:
    """`check_manifest`, and ``meta`` recorded in a folder without a manifest."""
    if not check_manifest(out, meta):
        _atomic(out / MANIFEST_FILE, lambda p: Path(p).write_text(json.dumps(meta, indent=2)))


def _refuse_foreign_folders(out: Path, specs: Sequence[RenderJob], photo_domains: Sequence[str]) -> None:
    """Refuse a folder without a Mini-Comballaz manifest whose flight or photo folders of ``specs`` already hold
    files: not a render of this writer (a TOPO-DataGen data root, real photos), whose files it would replace."""
    for spec in specs:
        folders = [out / spec.name, *(out / f"{spec.name}{PHOTO_FOLDER_SUFFIX[d]}" for d in ("real", *photo_domains))]
        for folder in folders:
            held = [p.name for p in folder.iterdir() if not hidden(p)] if folder.is_dir() else []
            if held:
                raise RenderFolderError(f"out_dir {out}: {folder.name}/ holds {len(held)} file(s) (e.g. {held[0]}) "
                                        f"but {out} has no {MANIFEST_FILE}: not a Mini-Comballaz render (a "
                                        "TOPO-DataGen data root, real photos?), whose files a render would replace; "
                                        "render into another folder", folder)


def _rows_and_names(spec: RenderJob) -> tuple[np.ndarray, list[str]]:
    """A job's pose rows (N, 6) and its photo names (row ``i``: ``names[i]``; none for a synthetic-only flight)."""
    if spec.rows is None:
        return load_preset(spec.name), load_preset_pic_names(spec.name)
    return spec.rows, _photo_names(len(spec.rows)) if spec.photos_like is not None else []


#: A flight folder's files of one view: ``<flight>_<idx:05d>[_<picname>]_{img.png,semantics.npy,depth.npy}``.
_VIEW_FILE = r"_(\d{5,})(?:_.+)?_(?:img\.png|semantics\.npy|depth\.npy)"


def _rows_on_disk(folder: Path, photo_folders: list[Path], names: list[str]) -> np.ndarray:
    """Pose rows with a file of theirs on disk: a render, semantics or depth map in ``folder`` (the flight's),
    a photo or its semantics in any of ``photo_folders`` (their names are ``names``, row ``i``: ``names[i]``)."""
    view = re.compile(re.escape(folder.name) + _VIEW_FILE)
    found = {int(m.group(1)) for m in map(view.fullmatch, os.listdir(folder)) if m} if folder.is_dir() else set()
    row_of = {pic: i for i, pic in enumerate(names)}
    for photo_folder in filter(Path.is_dir, photo_folders):
        for file in os.listdir(photo_folder):
            pic = file.removesuffix(".JPG").removesuffix("_semantics.npy")
            if pic != file and pic in row_of:
                found.add(row_of[pic])
    return np.array(sorted(found), dtype=np.int64)


def _check_count(spec: RenderJob, n_rows: int) -> None:
    """Refuse a count of views above the flight's number of poses (it was silently cut to all of them)."""
    if spec.count is not None and spec.count > n_rows:
        if spec.rows is not None:  # pose_flight(name, poses, count)
            raise ValueError(f"count: {spec.count} views of {spec.name!r} asked for, but {spec.source!r} holds "
                             f"{n_rows} pose rows; ask for at most {n_rows}, or count=None for all of them")
        raise ValueError(f"flights: {spec.name}:{spec.count} asks for {spec.count} views, but the flight has "
                         f"{n_rows} poses; ask for at most {n_rows}, or for {spec.name!r} alone (all of them)")


def _check_flight_folder(out: Path, spec: RenderJob, rows: np.ndarray, names: list[str]) -> None:
    """Refuses a flight folder that holds views other than those ``spec`` asks for (after the run it would hold both).

    Resuming the same job, or completing it (another photo domain, depth maps), passes; so does asking for
    more rows of the same poses (all after ``N``), since the folder then holds exactly what was asked.
    """
    folder = out / spec.name
    old_poses = folder / f"{spec.name}_poses.npy"
    # every photo domain's folder, asked for or not: TopoFlight reads what they hold
    photo_folders = [out / f"{spec.name}{suffix}" for suffix in PHOTO_FOLDER_SUFFIX.values()] if names else []
    on_disk = [f for f in (folder, *photo_folders) if f.is_dir()]
    delete = "delete " + " and ".join(map(str, on_disk))
    if old_poses.is_file() and not np.array_equal(np.load(old_poses), rows):
        advice = "use another name or another output folder" if spec.rows is not None else \
            f"use another output folder, or {delete} first"
        raise OtherPosesError(f"{old_poses}: the folder holds a render of other poses under the name {spec.name!r}; "
                              f"{advice}", old_poses)
    if spec.rows is not None:
        marker = folder / _PHOTOS_LIKE_FILE
        old_like = marker.read_text().strip() if marker.is_file() else None
        if old_poses.is_file() and old_like != spec.photos_like:  # other file names: the folder would hold both
            raise ValueError(
                f"{folder}: the folder holds a render of {spec.name!r} {_photos_phrase(old_like)}, asked "
                f"{_photos_phrase(spec.photos_like)}; use another name or another output folder"
            )
    held = _rows_on_disk(folder, photo_folders, names)
    asked = _select(len(rows), spec.count)
    other = np.setdiff1d(held, asked)
    if other.size:
        what = f"{spec.name}:{spec.count}" if spec.count is not None and spec.count < len(rows) else spec.name
        raise OtherPosesError(
            f"{on_disk[0]}: holds {held.size} view(s), {other.size} of them at other poses (rows {_first(other)}) than "
            f"the {asked.size} of {what!r} asked for; a flight folder holds one set of views: render into another "
            f"output folder, or {delete} first", on_disk[0]
        )


_BAKES: dict = {}


def _bake(world, app, device):
    key = (world.seed, app.key, str(device))
    if key not in _BAKES:
        if len(_BAKES) >= 3:
            _BAKES.pop(next(iter(_BAKES)))
        _BAKES[key] = bake(world, app).to(device)
    return _BAKES[key]


def render_flights(
    out_dir,
    flights,
    size=(360, 240),
    seed: int = 0,
    device="cpu",
    batch_size: int = 16,
    progress: bool = True,
    depth: bool = False,
    config: RenderConfig | None = None,
    threads: int | None = None,
    min_clearance_m: float = MIN_CLEARANCE_M,
    domains=("synthetic", "real"),
) -> dict[str, int]:
    """Renders flights of Mini-Comballaz into ``out_dir`` in TOPO-DataGen's layout (resumable).

    Args:
        out_dir: root folder; one sub-folder per flight (and ``<flight>-real``).
        flights: ``"NAME[:N],..."`` or a list of names / ``(name, N)`` / RenderJob; ``N`` poses
            are taken evenly spread over the flight (all when omitted). A flight of explicit pose
            rows (:func:`pose_flight`, e.g. a pose file) is rendered as a synthetic flight beside
            the presets; its cameras must be at least ``min_clearance_m`` above the surface (checked
            before anything is written: the error lists the offending rows), and a folder already
            holding other poses under that name is an error.
        size: ``(width, height)`` or ``"WxH"`` (px); the focal length is 480 * width / 720 px.
        seed: world and image seed; the same seed gives the same bytes.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        batch_size: images rendered together.
        progress: show a tqdm progress bar.
        depth: also write ``<stem>_depth.npy`` (float32 m, inf where nothing is hit).
        config: ray-casting settings.
        threads: torch CPU threads while rendering (restored afterwards); None leaves torch's
            setting. On a busy machine 1 thread can be several times faster than 2 (OpenMP
            threads spin while waiting for a core).
        min_clearance_m: minimum height (m) of a pose-row camera above ground, trees and buildings.
        domains: what to write: ``"synthetic"`` (always needed) and, for real flights, the photo
            domains ``"real"`` (``<flight>-real/``) and ``"real_alt"`` (``<flight>-real-alt/``, the
            second "real" appearance: see :mod:`topoloc.procedural.appearance`). Asking for
            ``"real_alt"`` on a folder rendered without it renders the missing rows again (the
            synthetic and real files get the same bytes).

    Returns:
        ``{flight: number of images rendered now}`` (0 for a flight already complete).
    """
    specs = parse_flights(flights)
    width, height = parse_size(size)
    if height > width:  # TOPO's camera is 720 x 480: a portrait size is most likely (H, W) given for (W, H)
        warnings.warn(f"size: {width}x{height} renders portrait views, {height} px high and {width} wide, with the "
                      f"focal length of TOPO's 720x480 camera scaled to the width ({480 * width / 720:.1f} px): not "
                      f"TOPO's field of view; the renderer's sizes are width first (did you mean {height}x{width}?)",
                      stacklevel=2)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    seed = int(seed)  # a numpy int goes into the JSON manifest
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: expected a positive int or None, got {threads!r}")
    domains = (domains,) if isinstance(domains, str) else tuple(domains)
    if "synthetic" not in domains or any(d not in RENDER_DOMAINS for d in domains):
        raise ValueError(f"domains: expected 'synthetic' and any of {RENDER_DOMAINS[1:]}, got {domains!r}")
    photo_domains = tuple(d for d in RENDER_DOMAINS[1:] if d in domains)
    device = resolve_device(device)
    config = config or RenderConfig()
    if not isinstance(config, RenderConfig):
        raise TypeError(f"config: expected a RenderConfig or None, got {type(config).__name__}")
    out = Path(out_dir)
    check_output(out, "out_dir", folder=True)
    if (isinstance(min_clearance_m, bool) or not isinstance(min_clearance_m, (int, float))
            or not np.isfinite(min_clearance_m) or min_clearance_m < 0):
        raise ValueError(f"min_clearance_m: expected a non-negative number of metres, got {min_clearance_m!r}")
    manifest = {"seed": seed, "width": width, "height": height, "version": FORMAT_VERSION,
                "generator": "topoloc.procedural (Mini-Comballaz)", "focal_px": 480.0 * width / 720.0,
                "render_config": dataclasses.asdict(config)}
    held = check_manifest(out, manifest)  # a folder of another seed: refused before its world is built
    for spec in specs:  # refuse bad pose rows and folders holding other views before writing anything
        rows, names = _rows_and_names(spec)
        _check_count(spec, len(rows))
        if spec.rows is not None:
            check_clearance(spec.rows, world=build_world(seed), min_clearance_m=min_clearance_m,
                            source=spec.source or spec.name)
        _check_flight_folder(out, spec, rows, names)
    if not held:  # the same poses, but not written here: a TOPO-DataGen data root holds TOPO's own flights
        _refuse_foreign_folders(out, specs, photo_domains)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(out)
    _check_manifest(out, manifest)

    # work out what is missing before building anything
    jobs = []
    for spec in specs:
        rows, names = _rows_and_names(spec)
        is_real = bool(names)
        look = spec.photos_like or spec.name  # whose photo appearance (season, sun) the photos get
        folder = out / spec.name
        photo_folders = {d: out / f"{spec.name}{PHOTO_FOLDER_SUFFIX[d]}" for d in photo_domains} if is_real else {}
        folder.mkdir(exist_ok=True)
        _remove_stale_tmp(folder)
        for photo_folder in photo_folders.values():
            photo_folder.mkdir(exist_ok=True)
            _remove_stale_tmp(photo_folder)
        if spec.photos_like is not None and not (folder / _PHOTOS_LIKE_FILE).is_file():  # before the poses (resume)
            _atomic(folder / _PHOTOS_LIKE_FILE, lambda p, like=spec.photos_like: Path(p).write_text(like + "\n"))
        poses_path = folder / f"{spec.name}_poses.npy"
        if not poses_path.is_file():  # one of other poses was refused above
            _atomic(poses_path, lambda p, rows=rows: np.save(p, rows))
        if is_real:
            csv = folder / f"{spec.name}_pic_names.csv"
            if not csv.is_file():
                _atomic(csv, lambda p, names=names: Path(p).write_text(",".join(names) + "\n"))
        classes_json = folder / CLASS_TABLE_FILE
        if not classes_json.is_file():
            _atomic(classes_json, lambda p: Path(p).write_text(
                json.dumps({str(k): v for k, v in SEMANTIC_CLASSES.items()}, indent=2)))
        todo = []
        for i in _select(len(rows), spec.count):
            stem = f"{spec.name}_{i:05d}_{names[i]}" if is_real else f"{spec.name}_{i:05d}"
            files = [folder / f"{stem}_img.png", folder / f"{stem}_semantics.npy"]
            if depth:
                files.append(folder / f"{stem}_depth.npy")
            for photo_folder in photo_folders.values():
                files += [photo_folder / f"{names[i]}.JPG", photo_folder / f"{names[i]}_semantics.npy"]
            if not all(f.is_file() for f in files):
                todo.append((int(i), stem, names[i] if is_real else None))
        jobs.append((spec.name, look, rows, is_real, folder, photo_folders, todo))

    done = {job[0]: 0 for job in jobs}
    total = sum(len(j[-1]) for j in jobs)
    if total == 0:
        return done
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _render_jobs(jobs, done, total, seed, device, width, height, batch_size, progress, depth, config)
    finally:
        torch.set_num_threads(previous_threads)


def _render_jobs(jobs, done, total, seed, device, width, height, batch_size, progress, depth, config) -> dict[str, int]:
    cpu_world = build_world(seed)  # the bakes are made on the CPU, then moved
    world = cpu_world.to(device)
    frame = LocalFrame.named("comballaz")
    bar = maybe_bar(progress, total=total, desc="Mini-Comballaz", unit="img")
    # On a GPU, files are written by threads while the next batch renders (PNG encoding, not the GPU,
    # then sets the pace); on the CPU the render already uses every core (and OpenMP threads spin), so
    # writing inline is faster.
    writers = min(8, usable_cpus())
    with ThreadPoolExecutor(max_workers=writers) if device.type == "cuda" else _Inline() as pool:
        pending: list[Any] = []  # futures, or _Inline's results: each has result()
        for name, look, rows, is_real, folder, photo_folders, todo in jobs:
            domains = ("synthetic", *photo_folders)
            bakes = {d: _bake(cpu_world, appearance_for_flight(look, d), device) for d in domains}
            for b0 in range(0, len(todo), batch_size):
                batch = todo[b0 : b0 + batch_size]
                idx = np.array([b[0] for b in batch])
                c2w = torch.as_tensor(frame.cesium_to_c2w(rows[idx]), dtype=torch.float32, device=device)
                keys = {d: torch.tensor([image_key(seed, name, int(i), d) for i in idx], dtype=torch.int64,
                                        device=device)
                        for d in domains}
                res = render(world, bakes, c2w, keys, width, height, config)
                syn_rgb = res["synthetic"][0].permute(0, 2, 3, 1).cpu().numpy()
                syn_sem = res["synthetic"][1].cpu().numpy()
                dep = res["depth"].cpu().numpy().astype(np.float32) if depth else None
                photos = {}  # domain: (folder, rgb (B, H, W, 3), semantics (B, H, W), JPEG qualities, save options)
                for d, photo_folder in photo_folders.items():
                    quality = _jpeg_quality(keys[d].cpu(), d)
                    photos[d] = (photo_folder, res[d][0].permute(0, 2, 3, 1).cpu().numpy(), res[d][1].cpu().numpy(),
                                 quality, _JPEG_OPTIONS[d])
                for fut in pending:  # the previous batch's files were written while this one rendered
                    fut.result()
                pending = []
                for k, (i, stem, pic) in enumerate(batch):
                    pending.append(pool.submit(_write_one, folder, stem, pic, syn_rgb[k], syn_sem[k],
                                               None if dep is None else dep[k],
                                               [(f, rgb[k], sem[k], q[k], opts)
                                                for f, rgb, sem, q, opts in photos.values()]))
                done[name] += len(batch)
                bar.update(len(batch))
        for fut in pending:
            fut.result()
    bar.close()
    return done


class _Inline:
    """A stand-in for a thread pool that runs each task at once (same interface as used here)."""

    class _Done:
        def __init__(self, value):
            self._value = value

        def result(self):
            return self._value

    def submit(self, fn, *args):
        return self._Done(fn(*args))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


#: Extra PIL JPEG options per photo domain (real_alt: 4:2:2 chroma instead of PIL's default 4:2:0).
_JPEG_OPTIONS = {"real": {}, "real_alt": {"subsampling": 1}}


def _jpeg_quality(keys, domain: str) -> list[int]:
    """Per-image JPEG quality: 75-95 for "real", 52-64 for "real_alt" (another camera's firmware)."""
    if domain == "real_alt":
        return (52 + 12 * hash_uniform(keys, 99)).round().int().tolist()
    return (75 + 20 * hash_uniform(keys, 99)).round().int().tolist()


def _write_one(folder, stem, pic, rgb, sem, dep, photos) -> None:
    if dep is not None:
        _atomic(folder / f"{stem}_depth.npy", lambda p: np.save(p, dep))
    _atomic(folder / f"{stem}_semantics.npy", lambda p: np.save(p, sem))
    for photo_folder, _, photo_sem, _, _ in photos:
        _atomic(photo_folder / f"{pic}_semantics.npy", lambda p: np.save(p, photo_sem))
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
    # the render after its semantics and depth: its presence marks the synthetic view as written
    _atomic(folder / f"{stem}_img.png", lambda p: Image.fromarray(rgba, "RGBA").save(p, format="PNG", compress_level=1))
    # the photos after the render: a render killed before them is read without its photo (TopoFlight leaves the row
    # out, with a warning, until a rerun writes it), where a photo without its render stopped the whole real flight
    for photo_folder, photo_rgb, _, quality, options in photos:
        _atomic(photo_folder / f"{pic}.JPG",
                lambda p: Image.fromarray(photo_rgb).save(p, format="JPEG", quality=quality, **options))
