"""The sim-to-real study: which augmentations help a synthetic-trained regressor on real images?

One training flight (synthetic renders of views around the test flight), the same training
settings for every config: no augmentation, ``augment.SimToReal`` at several strengths, and each op
that SimToReal composes alone (at its SimToReal-1.0 ranges and its SimToReal probability, i.e.
SimToReal(1.0) with the other ops removed), each over several seeds. Every run is evaluated on the
test flights' synthetic renders, their "real" photos and their second "real" appearance
(``real_alt``, which the augmentations were not designed against), and on its own training images
(the training fit), beside two brackets that need no training: the constant pose (training mean
translation, chordal-mean rotation) and the coverage ceiling (the training pose nearest to the
truth under ``t_m + 1 m/deg * r_deg``).

Resumable: each (config, seed) run trains in its own folder (``runs/<config>/seed<k>/``; a killed
training resumes from its ``last.pt``) and is finished once its ``result.json`` is written; a re-run
skips finished runs. The table goes to a markdown file (``docs/RESULTS.md``) in a section per preset.

Fourier domain adaptation is left out: it needs a bank of real images, and the only ones here are
the test photos.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import augment
from topoloc._device import resolve_device
from topoloc.data import TopoFlight, corridor, flight_normals, load_preset
from topoloc.data.cache import as_cache
from topoloc.data.preset import list_presets
from topoloc.engine.checkpoint import load_checkpoint, load_model
from topoloc.engine.config import TrainConfig
from topoloc.engine.evaluate import evaluate
from topoloc.engine.side_by_side import train_side_by_side
from topoloc.engine.train import train
from topoloc.image_size import parse_image_size
from topoloc.evaluation.baselines import constant_pose, coverage_ceiling
from topoloc.experiments.study_table import aggregate, results_markdown, write_section
from topoloc.metrics import pose_errors, summarize
from topoloc.procedural import MIN_CLEARANCE_M, build_world, clearance_m, pose_flight, render_flights
from topoloc.procedural.writer import OtherPosesError

__all__ = ["StudyConfig", "study_config", "study_runs", "prepare_data", "corridor_poses", "run_study", "PRESETS", "OPS",
           "STUDY_DOMAINS"]

log = logging.getLogger(__name__)

PRESETS = ("smoke", "cpu", "gpu")
#: The ops SimToReal composes (without a bank of real images), by short name.
OPS = ("season", "snow", "illumination", "clouds", "haze", "edges", "camera")
#: The test domains of every run, in table order.
STUDY_DOMAINS = ("synthetic", "real", "real_alt")
#: Label of the model's errors on (up to TRAIN_FIT_IMAGES evenly spaced of) its own training images.
TRAIN_FIT = "training fit"
TRAIN_FIT_IMAGES = 256
#: The flight whose poses the default test set and training corridor follow.
PLANNED = "comballaz-2020-11-06-planned"
_OP_CLASSES = {"season": "RandomSeasonShift", "snow": "RandomSnowCover", "illumination": "RandomIllumination",
               "clouds": "RandomClouds", "haze": "RandomHaze", "edges": "RandomEdgeAbstraction",
               "camera": "RandomCameraEffects"}
#: Fields of StudyConfig that change what a run computes: a folder of runs is tied to them.
_RUN_FIELDS = ("root", "train_flight", "test_flights", "train_images", "test_images", "render_size", "image_size",
               "model", "model_kwargs", "epochs", "batch_size", "lr", "sq", "augment_fraction", "render_seed")


@dataclass
class StudyConfig:
    """Sizes and settings of the study (see `study_config` for the presets).

    Args:
        preset: label of the preset; names the section of the results file.
        root: data root holding (or receiving) the rendered flights.
        out_dir: folder of the runs (``runs/<config>/seed<k>/``) and ``study.json``.
        train_flight: the training flight under ``root``: a vendored preset (``train_images`` of its
            poses rendered), or a corridor of ``train_images`` views around ``corridor_of``
            (`corridor_poses`) rendered under this name; a folder of that name holding other poses
            is taken as it is.
        corridor_of: the flight whose corridor is rendered as ``train_flight`` when needed.
        test_flights: real flights tested at their own poses (synthetic, real and real_alt images).
        train_images: renders of the training flight (when rendered here).
        test_images: poses per test flight (when rendered here), evenly spread over it.
        render: render what ``root`` lacks (Mini-Comballaz); False takes ``root`` as it is.
        render_size: (W, H) of the renders, pixels.
        image_size: (H, W) the model trains at.
        model, model_kwargs, epochs, batch_size, lr, sq: the training settings of every run
            (Adam, cosine learning-rate schedule, learned loss weights starting at sx = 0, sq).
        augment_fraction: share of each batch that an augmented run augments (the rest stays
            clean; `TrainConfig.augment_fraction`): half, as in the demo's GPU preset (its CPU
            preset augments every image since 2026-12-02; the study's table was made with half).
        strengths: SimToReal strengths.
        relight: probability of `augment.RandomSunRelight` in the two relighting configs (relighting
            alone, and before SimToReal at strength 0.5); 0 leaves those configs out. The training
            flight is then rendered with depth maps.
        local_contrast: sigma in pixels (at ``image_size``) of `AtLoc(local_contrast=...)` in the two
            local-contrast configs (without augmentation, and with the demo's augmentation: relighting
            when ``relight`` > 0, then SimToReal 0.5); 0 leaves those configs out. About an eighth of
            the image width in the presets.
        ops: the single ops to run (names of `OPS`).
        seeds: training seeds of every config.
        device: ``"cpu"`` or ``"cuda"`` (training, evaluation and rendering).
        render_seed: the Mini-Comballaz world seed (and the corridor's seed).
        side_by_side: CPU runs trained at a time, each in its own process with its share of the torch
            threads (`topoloc.engine.train_side_by_side`; evaluated one by one after). Two at a time
            made 1.3x the steps per second of one at a time on both threads for the demo's float32
            trainings on a 2-core Zen 3 (BENCHMARKS.md; not measured at the study's sizes); the cpu
            preset trains two at a time where it has two threads.
        keep_checkpoints: keep each finished run's ``last.pt`` (a ResNet18 one weighs about 130 MB
            with its optimiser state: 6 GB for 45 runs); by default it is deleted once the run's
            ``result.json`` is written (``config.yaml`` and ``log.csv`` stay).
    """

    preset: str
    root: str
    out_dir: str
    train_flight: str = "comballaz-corridor-planned"
    corridor_of: str = PLANNED
    test_flights: tuple[str, ...] = (PLANNED,)
    train_images: int = 800
    test_images: int = 120
    render: bool = True
    render_size: tuple[int, int] = (72, 48)
    image_size: tuple[int, int] = (48, 72)
    model: str = "atloc_resnet18"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3
    sq: float = 0.0
    augment_fraction: float = 0.5
    strengths: tuple[float, ...] = (0.25, 0.5, 1.0)
    relight: float = 0.8
    local_contrast: float = 0.0
    ops: tuple[str, ...] = OPS
    seeds: tuple[int, ...] = (0, 1, 2)
    device: str = "cpu"
    render_seed: int = 0
    side_by_side: int = 1
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        for name in ("root", "out_dir", "train_flight", "corridor_of"):
            value = getattr(self, name)
            if isinstance(value, PathLike):
                value = str(value)
                setattr(self, name, value)
            if not isinstance(value, str) or not value:
                raise ValueError(f"StudyConfig: `{name}` must be a non-empty string, got {value!r}")
        self.test_flights = tuple(self.test_flights)
        if not self.test_flights:
            raise ValueError("StudyConfig: `test_flights` must name at least one flight")
        for name in ("train_images", "test_images", "epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"StudyConfig: `{name}` must be a positive int, got {v!r}")
        self.strengths = tuple(float(s) for s in self.strengths)
        if any(not 0.0 < s <= 1.0 for s in self.strengths):
            raise ValueError(f"StudyConfig: `strengths` must lie in (0, 1], got {self.strengths}")
        self.ops = tuple(self.ops)
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise ValueError(f"StudyConfig: unknown op(s) {unknown} in `ops`; expected names of {OPS}")
        self.seeds = tuple(self.seeds)
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"StudyConfig: `seeds` must be non-negative ints, at least one, got {self.seeds}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"StudyConfig: `seeds` must be distinct, got {self.seeds}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"StudyConfig: `device` must be 'cpu' or 'cuda', got {self.device!r}")
        if isinstance(self.side_by_side, bool) or not isinstance(self.side_by_side, int) or self.side_by_side < 1:
            raise ValueError(f"StudyConfig: `side_by_side` must be a positive int, got {self.side_by_side!r}")
        if self.side_by_side > 1 and self.device != "cpu":
            raise ValueError(f"StudyConfig: `side_by_side` > 1 shares a CPU between runs; on {self.device!r} "
                             "train one run at a time (side_by_side=1)")
        if isinstance(self.local_contrast, bool) or not isinstance(self.local_contrast, (int, float)) \
                or not self.local_contrast >= 0:
            raise ValueError(f"StudyConfig: `local_contrast` must be a sigma in pixels >= 0 (0: off), "
                             f"got {self.local_contrast!r}")
        self.render_size = tuple(int(v) for v in self.render_size)
        self.image_size = parse_image_size(self.image_size, name="StudyConfig: `image_size`", short_side=False)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def run_key(self) -> dict[str, Any]:
        """The fields that a folder of runs is tied to (see `run_study`)."""
        d = self.to_dict()
        return {k: d[k] for k in _RUN_FIELDS}


def study_config(preset: str, root, out_dir, device: str = "auto", **overrides: Any) -> StudyConfig:
    """The study's sizes: ``smoke`` (seconds per run; for tests), ``cpu`` (the whole study in about
    50 minutes on a quiet 2-core CPU, 45 runs) or ``gpu`` (thousands of images at 256 px, ResNet34).

    Args:
        preset: one of `PRESETS`.
        root: data root; out_dir: runs folder.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        **overrides: any other `StudyConfig` field.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    dev = resolve_device(device).type  # also refuses 'cuda' without CUDA
    if preset == "smoke":
        sizes = dict(train_images=24, test_images=4, render_size=(48, 32), image_size=(32, 48),
                     model_kwargs=dict(feat_dim=16), epochs=1, batch_size=12, lr=1e-3, local_contrast=4.0)
    elif preset == "cpu":
        # 45 runs of ResNet18 at 48x72 px, 800 images x 8 epochs each (about 60 s per run on a quiet
        # 2-core CPU, evaluation included; the renders add a few minutes the first time)
        sizes = dict(train_images=800, test_images=120, render_size=(72, 48), image_size=(48, 72),
                     model_kwargs=dict(feat_dim=128, dropout=0.2), epochs=8, batch_size=16, lr=1e-3,
                     local_contrast=9.0, side_by_side=2 if dev == "cpu" and torch.get_num_threads() >= 2 else 1)
    else:
        sizes = dict(train_images=3000, test_images=200, render_size=(384, 256), image_size=(256, 384),
                     model="atloc_resnet34", epochs=30, batch_size=64, lr=2e-4, local_contrast=48.0)
    return StudyConfig(preset=preset, root=str(root), out_dir=str(out_dir), device=dev, **{**sizes, **overrides})


# ------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class RunConfig:
    """One config of the study: a name, how its augmentation is built, and a description."""

    name: str
    description: str
    augment: Callable[[], Any] | None
    strength: float = 1.0
    simtoreal: bool = False
    relight: float = 0.0
    local_contrast: float = 0.0


def _op_alone(op: str) -> Any:
    """The op of ``augment.SimToReal(strength=1.0)`` named ``op``: its ranges and probability there."""
    cls = getattr(augment, _OP_CLASSES[op])
    found = [m for m in augment.SimToReal(strength=1.0).children() if isinstance(m, cls)]
    if len(found) != 1:
        raise RuntimeError(f"augment.SimToReal(1.0) holds {len(found)} {cls.__name__} ops; expected one")
    return copy.deepcopy(found[0])


def study_runs(cfg: StudyConfig) -> list[RunConfig]:
    """The configs of the study, in table order: none, SimToReal per strength, relighting, local
    contrast, each op alone."""
    runs = [RunConfig("none", "no augmentation", None)]
    for s in cfg.strengths:
        runs.append(RunConfig(f"simtoreal-{s:g}", f"augment.SimToReal(strength={s:g}) (p = 0.5 x each op's weight)",
                              None, s, simtoreal=True))
    if cfg.relight > 0:
        runs.append(RunConfig("relight-only", f"augment.RandomSunRelight(p={cfg.relight:g}) on the renders' normals",
                              None, relight=cfg.relight))
        runs.append(RunConfig("simtoreal-0.5+relight", f"augment.RandomSunRelight(p={cfg.relight:g}), then "
                              "augment.SimToReal(strength=0.5)", None, 0.5, simtoreal=True, relight=cfg.relight))
    if cfg.local_contrast > 0:
        lc = f"local-contrast-{cfg.local_contrast:g}"
        model = f"`AtLoc(local_contrast={cfg.local_contrast:g})` (sigma in px at the training size)"
        runs.append(RunConfig(lc, f"no augmentation; {model}", None, local_contrast=cfg.local_contrast))
        if cfg.relight > 0:
            runs.append(RunConfig(f"simtoreal-0.5+relight+{lc}", f"augment.RandomSunRelight(p={cfg.relight:g}), then "
                                  f"augment.SimToReal(strength=0.5); {model}", None, 0.5, simtoreal=True,
                                  relight=cfg.relight, local_contrast=cfg.local_contrast))
        else:
            runs.append(RunConfig(f"simtoreal-0.5+{lc}", f"augment.SimToReal(strength=0.5); {model}", None, 0.5,
                                  simtoreal=True, local_contrast=cfg.local_contrast))
    for op in cfg.ops:
        runs.append(RunConfig(f"{op}-only", f"augment.{_OP_CLASSES[op]} alone, as in SimToReal(1.0): its "
                              "strength-1 ranges and probability", lambda op=op: _op_alone(op)))
    return runs


# ------------------------------------------------------------------------------ data
def prepare_data(cfg: StudyConfig, progress: bool = False) -> None:
    """Renders what ``cfg.root`` lacks: the test flights (synthetic, real and real_alt images) and
    the training flight (a preset by name, or a corridor around ``cfg.corridor_of``)."""
    root = Path(cfg.root)
    if not cfg.render:
        return
    common = dict(size=cfg.render_size, seed=cfg.render_seed, device=cfg.device, progress=progress)
    try:
        render_flights(root, [(f, cfg.test_images) for f in cfg.test_flights], domains=STUDY_DOMAINS, **common)
    except OtherPosesError as err:  # the renderer's advice is about folders; the study user chose counts
        raise ValueError(f"{root}: holds the test flights of a study with other image counts ({err}); give this "
                         "study another --root, or the same counts as that one") from err
    depth = cfg.relight > 0  # relighting needs the training renders' normals
    if cfg.train_flight in list_presets():
        render_flights(root, [(cfg.train_flight, cfg.train_images)], depth=depth, **common)
        return
    rows = corridor_poses(cfg)
    existing = root / cfg.train_flight / f"{cfg.train_flight}_poses.npy"
    if existing.is_file() and not np.array_equal(np.load(existing), rows):
        log.info("study: %s holds other poses than the corridor; the flight is taken as it is", existing)
        return
    render_flights(root, [pose_flight(cfg.train_flight, rows)], depth=depth, **common)  # resumes a partial render


def corridor_poses(cfg: StudyConfig) -> np.ndarray:
    """The training views: `topoloc.data.corridor` of ``cfg.train_images`` views around
    ``cfg.corridor_of`` (its default sigmas, seed ``cfg.render_seed``), less those under 2 m above the
    Mini-Comballaz surface (the renderer refuses them).

    Shape:
        output: (N, 6) TOPO-DataGen pose rows (ECEF m, Cesium yaw, pitch, roll deg), N <= train_images
    """
    rows = corridor(load_preset(cfg.corridor_of), cfg.train_images, seed=cfg.render_seed)
    keep = clearance_m(rows, build_world(cfg.render_seed)) >= MIN_CLEARANCE_M
    if not keep.all():
        log.info("study: dropped %d of %d corridor views under the surface", int((~keep).sum()), len(rows))
    return rows[keep]


def _datasets(cfg: StudyConfig):
    train = TopoFlight(cfg.root, cfg.train_flight, domain="synthetic")
    train_cache = as_cache(train, cfg.image_size, device=cfg.device)  # on a GPU: decoded once into its memory
    # the relighting configs' surface normals
    normals = flight_normals(train, cfg.image_size, device=cfg.device) if cfg.relight > 0 else None
    tests = {d: [as_cache(TopoFlight(cfg.root, f, domain=d), cfg.image_size) for f in cfg.test_flights]
             for d in STUDY_DOMAINS}
    return train.frame, train_cache, normals, tests


# ------------------------------------------------------------------------------ brackets
def _brackets(train_c2w: np.ndarray, tests: dict) -> dict[str, dict[str, dict]]:
    """Per test domain, the summaries of the two brackets that need no training: the constant pose
    (`topoloc.evaluation.constant_pose`) and the coverage ceiling (`topoloc.evaluation.coverage_ceiling`,
    ``t_m + 1 m/deg * r_deg``)."""
    out: dict[str, dict[str, dict]] = {"constant pose": {}, "coverage ceiling": {}}
    const = constant_pose(train_c2w)
    for domain, caches in tests.items():
        gt = np.concatenate([c.poses() for c in caches])
        out["constant pose"][domain] = summarize(*pose_errors(np.repeat(const[None], len(gt), axis=0), gt)).to_dict()
        out["coverage ceiling"][domain] = summarize(*pose_errors(coverage_ceiling(train_c2w, gt, m_per_deg=1.0)[0],
                                                                 gt)).to_dict()
    return out


# ------------------------------------------------------------------------------ runs
def _train_config(cfg: StudyConfig, run: RunConfig, seed: int, out_dir: Path):
    augment: Any = "simtoreal" if run.simtoreal else (run.augment() if run.augment is not None else None)
    model_kwargs = dict(cfg.model_kwargs)
    if run.local_contrast > 0:
        model_kwargs["local_contrast"] = run.local_contrast
    return TrainConfig(
        model=cfg.model, model_kwargs=model_kwargs, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, lr_schedule="cosine", sq=cfg.sq, image_size=cfg.image_size, augment=augment,
        augment_strength=run.strength, augment_fraction=cfg.augment_fraction, relight=run.relight,
        device=cfg.device, val_every=0,
        seed=seed, out_dir=str(out_dir),
        resume=True, tensorboard=False, progress=False, cache_device="auto")


def _run_dir(cfg: StudyConfig, run: RunConfig, seed: int) -> Path:
    return Path(cfg.out_dir) / "runs" / run.name / f"seed{seed}"


def _train_group(cfg: StudyConfig, group: list[tuple[RunConfig, int]], train_cache, normals) -> dict[tuple, Path]:
    """Train ``group``'s runs (one in this process; more side by side); their final checkpoints."""
    if len(group) == 1:
        run, seed = group[0]
        result = train(_train_config(cfg, run, seed, _run_dir(cfg, run, seed)), train_cache,
                       normals=normals if run.relight > 0 else None)
        return {(run.name, seed): Path(result.final_checkpoint)}
    configs = {f"{run.name} seed {seed}": _train_config(cfg, run, seed, _run_dir(cfg, run, seed))
               for run, seed in group}
    done = train_side_by_side(configs, train_cache, normals=normals, progress=False)
    return {(run.name, seed): done[f"{run.name} seed {seed}"] for run, seed in group}


def _evaluate_run(cfg: StudyConfig, run: RunConfig, seed: int, checkpoint: Path, train_s: float, frame, train_cache,
                  tests) -> dict[str, Any]:
    tic = time.perf_counter()
    model, normalizer, _ = load_model(checkpoint, device=cfg.device)
    history = load_checkpoint(checkpoint)["history"]
    caches = [c for d in STUDY_DOMAINS for c in tests[d]]
    ev = evaluate(model, normalizer, caches, frame=frame, train_set=train_cache, retrieval=False, baselines=False,
                  train_fit=TRAIN_FIT_IMAGES, device=cfg.device)
    domains = {d: ev.model.summary(domain=d).to_dict() for d in STUDY_DOMAINS}
    domains[TRAIN_FIT] = ev.training_fit.summary().to_dict()
    return {
        "config": run.name, "seed": seed, "description": run.description, "domains": domains,
        "train_loss": history[-1]["loss"] if history else None,
        "train_s": train_s, "total_s": train_s + time.perf_counter() - tic,
    }


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"CUDA {torch.cuda.get_device_name()}"
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _check_folder(cfg: StudyConfig) -> None:
    path = Path(cfg.out_dir) / "study.json"
    key = cfg.run_key()
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in key if old.get(k) != key[k])
        if diff:
            raise ValueError(f"out_dir {cfg.out_dir}: holds study runs with other {diff} "
                             f"({[old.get(k) for k in diff]} there, {[key[k] for k in diff]} asked); "
                             "use another out_dir")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(key, indent=2))


def run_study(cfg: StudyConfig, results_path: str | PathLike | None = "docs/RESULTS.md", command: str = "",
              progress: bool = True) -> dict[str, Any]:
    """Runs (or continues) the study and writes its table.

    Args:
        cfg: the study's settings (`study_config`).
        results_path: markdown file receiving the table, in the section ``study-<preset>``; None
            writes only ``<out_dir>/results.md``.
        command: the command line that started the study, quoted in the table.
        progress: log a line per run and show render progress.

    Returns:
        ``{"results": [per-run dicts], "brackets": {...}, "markdown": str, "ran": [(config, seed)
        trained now], "skipped": [(config, seed) already finished]}``.
    """
    started = datetime.now(timezone.utc)
    tic = time.perf_counter()
    load_start = os.getloadavg()
    _check_folder(cfg)
    prepare_data(cfg, progress=progress)
    frame, train_cache, normals, tests = _datasets(cfg)
    brackets = _brackets(train_cache.poses(), tests)
    runs = study_runs(cfg)
    results, ran, skipped, pending = {}, [], [], []
    for run in runs:
        for seed in cfg.seeds:
            path = _run_dir(cfg, run, seed) / "result.json"
            if path.is_file():
                results[run.name, seed] = json.loads(path.read_text())
                skipped.append((run.name, seed))
            else:
                pending.append((run, seed))
    for start in range(0, len(pending), cfg.side_by_side):
        group = pending[start:start + cfg.side_by_side]
        t_group = time.perf_counter()
        checkpoints = _train_group(cfg, group, train_cache, normals)
        train_s = time.perf_counter() - t_group  # side by side: the group's wall time, each run's own
        for run, seed in group:
            res = _evaluate_run(cfg, run, seed, checkpoints[run.name, seed], train_s, frame, train_cache, tests)
            path = _run_dir(cfg, run, seed) / "result.json"
            tmp = path.with_name("result.json.tmp")
            tmp.write_text(json.dumps(res, indent=2))
            tmp.replace(path)
            if not cfg.keep_checkpoints:
                (path.parent / "last.pt").unlink(missing_ok=True)
            results[run.name, seed] = res
            ran.append((run.name, seed))
            if progress:
                log.info("study %s seed %d: %s (%.0f s)", run.name, seed,
                         {d: round(s["median_m"], 1) for d, s in res["domains"].items()}, res["total_s"])
    results = [results[run.name, seed] for run in runs for seed in cfg.seeds]  # the table's order
    wall = time.perf_counter() - tic
    load_end = os.getloadavg()
    n_test = {d: sum(len(c) for c in tests[d]) for d in STUDY_DOMAINS}
    meta = {
        "title": f"Sim-to-real study, {cfg.preset} preset",
        "lines": [
            f"date: {started.strftime('%Y-%m-%d %H:%M UTC')}; device: {_device_name(cfg.device)}"
            + (f"; {cfg.side_by_side} runs trained side by side, each with its share of the threads"
               if cfg.side_by_side > 1 else ""),
            f"command: `{command}`" if command else "command: (called from Python)",
            f"wall time of this invocation: {wall / 60:.1f} min ({len(ran)} runs trained, {len(skipped)} finished "
            f"before); sum over all runs of train + evaluate: {sum(r['total_s'] for r in results) / 60:.1f} min",
            f"load average (1, 5, 15 min) at start: {', '.join(f'{v:.2f}' for v in load_start)}; at end: "
            f"{', '.join(f'{v:.2f}' for v in load_end)}",
            f"training: {len(train_cache)} synthetic renders of `{cfg.train_flight}` at {cfg.render_size[0]}x"
            f"{cfg.render_size[1]} px, trained at {cfg.image_size[1]}x{cfg.image_size[0]} px; {cfg.model} "
            f"{cfg.model_kwargs or ''} from random weights, {cfg.epochs} epochs, batch {cfg.batch_size}, Adam lr "
            f"{cfg.lr:g} cosine, sq0 = {cfg.sq:g}; augmented runs augment {cfg.augment_fraction:.0%} of each batch; "
            f"seeds {list(cfg.seeds)}",
            f"test: {', '.join(f'`{f}`' for f in cfg.test_flights)} at their own poses: "
            + ", ".join(f"{n_test[d]} {d}" for d in STUDY_DOMAINS) + " images (real_alt: the second \"real\" "
            "appearance, which the augmentations were not designed against)",
            "brackets (no training, same for every config): constant pose = training mean translation and "
            "chordal-mean rotation; coverage ceiling = the training pose nearest to the truth under "
            "t_m + 1 m/deg x r_deg (chosen knowing the truth)",
            f"training fit: each run's model on {min(TRAIN_FIT_IMAGES, len(train_cache))} evenly spaced images of "
            "its training set (unaugmented)",
        ],
    }
    descriptions = {r.name: r.description for r in runs}
    markdown = results_markdown(aggregate(results), brackets, [r.name for r in runs], STUDY_DOMAINS + (TRAIN_FIT,),
                                meta, descriptions)
    (Path(cfg.out_dir) / "results.md").write_text(markdown)
    if results_path is not None:
        write_section(results_path, f"study-{cfg.preset}", markdown)
    return {"results": results, "brackets": brackets, "markdown": markdown, "ran": ran, "skipped": skipped}
