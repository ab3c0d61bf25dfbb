"""The sim-to-real study's settings: `StudyConfig`, the presets of `study_config` and its configs (`study_runs`).

`StudyConfig` holds the sizes and training settings that every run of a study shares; `study_config`
picks the ``smoke``, ``cpu`` or ``gpu`` preset; `study_runs` lists the configs (no augmentation,
SimToReal per strength, relighting, local contrast, each op alone) as `RunConfig`.
`topoloc.experiments.study` renders the data, trains and evaluates the runs and writes the table;
every name here is also importable from there.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Callable

import torch

import augment
from topoloc._device import resolve_device
from topoloc.data.preset import list_presets
from topoloc.image_size import parse_image_size

__all__ = ["StudyConfig", "study_config", "RunConfig", "study_runs", "PRESETS", "OPS", "STUDY_DOMAINS", "PLANNED",
           "CORRIDOR"]

PRESETS = ("smoke", "cpu", "gpu")
#: The ops SimToReal composes (without a bank of real images), by short name.
OPS = ("season", "snow", "illumination", "clouds", "haze", "edges", "camera")
#: The test domains of every run, in table order.
STUDY_DOMAINS = ("synthetic", "real", "real_alt")
#: The flight whose poses the default test set and training corridor follow.
PLANNED = "comballaz-2020-11-06-planned"
#: The default training flight: the corridor the study renders around ``corridor_of``.
CORRIDOR = "comballaz-corridor-planned"
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
            when ``relight`` > 0, then SimToReal 0.5); 0 leaves those configs out. An eighth of the
            image width in the cpu and gpu presets (9 px at 72, 48 at 384; the smoke preset 4 px at 48).
        ops: the single ops to run (names of `OPS`).
        seeds: training seeds of every config.
        device: ``"cpu"`` or ``"cuda"`` (training, evaluation and rendering).
        render_seed: the Mini-Comballaz world seed (and the corridor's seed).
        side_by_side: CPU runs trained at a time, each in its own process with its share of the torch
            threads (`topoloc.engine.train_side_by_side`; evaluated one by one after). Two at a time
            made 1.3x the steps per second of one at a time on both threads for the full-width
            ResNet18's float32 steps on a 2-core Zen 3 and nothing at half width; on a 2-core Zen 4, 1.04x
            and 0.97x (`benchmarks/bench_side_by_side.py`, BENCHMARKS.md; not measured at the study's
            sizes); the cpu preset trains two at a time where it has two threads.
        keep_checkpoints: keep each finished run's ``last.pt`` (a ResNet18 one weighs about 130 MB
            with its optimiser state: 6 GB for 45 runs); by default it is deleted once the run's
            ``result.json`` is written (``config.yaml`` and ``log.csv`` stay).
    """

    preset: str
    root: str
    out_dir: str
    train_flight: str = CORRIDOR
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
        presets = list_presets()
        if self.corridor_of not in presets:
            raise ValueError(f"StudyConfig: `corridor_of` must be a vendored flight preset, one of {presets}, "
                             f"got {self.corridor_of!r}")
        renders_only = [f for f in self.test_flights if f.endswith("-LHS")]
        if renders_only:
            raise ValueError(f"StudyConfig: `test_flights` must be real flights, tested on their photos; "
                             f"{renders_only} hold(s) Latin-hypercube renders and no photo")
        unknown = [f for f in self.test_flights if f not in presets]
        if unknown and self.render is not False:  # rendered at their own poses: vendored flights only
            raise ValueError(f"StudyConfig: unknown flight(s) {unknown} in `test_flights`; expected vendored real "
                             f"flights, one of {[f for f in presets if not f.endswith('-LHS')]} (or render=False "
                             "for flights already under `root`)")
        for name in ("train_images", "test_images", "epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"StudyConfig: `{name}` must be a positive int, got {v!r}")
        self.strengths = tuple(float(s) for s in self.strengths)
        if any(not 0.0 < s <= 1.0 for s in self.strengths):
            raise ValueError(f"StudyConfig: `strengths` must lie in (0, 1], got {self.strengths}")
        # a run is named by its strength (:g) or op: a second one trained over the first, as a second seed
        if len({f"{s:g}" for s in self.strengths}) != len(self.strengths):
            raise ValueError(f"StudyConfig: `strengths` must be distinct, got {self.strengths}")
        self.ops = tuple(self.ops)
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise ValueError(f"StudyConfig: unknown op(s) {unknown} in `ops`; expected names of {OPS}")
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"StudyConfig: `ops` must be distinct, got {self.ops}")
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
        size = tuple(int(v) for v in self.render_size)
        if len(size) != 2:
            raise ValueError(f"StudyConfig: `render_size` must be (W, H) in pixels, got {self.render_size!r}")
        self.render_size = (size[0], size[1])
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
    70 minutes on a quiet 2-core CPU, 45 runs) or ``gpu`` (thousands of images at 256 px, ResNet34).

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
                              "strength-1 ranges and probability", functools.partial(_op_alone, op)))
    return runs
