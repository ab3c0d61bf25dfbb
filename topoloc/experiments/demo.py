"""The one-command demo: render the views a TOPO user can render before a flight, train with and
without the sim-to-real augmentations, evaluate on the flights' own poses (synthetic renders and
"real" photos) beside every bracket, explain with saliency maps, and write ``report.md``.

The protocol is the one a user can follow on a real site. Before the flight, only its plan is
known: the training views are a corridor jittered around the planned flight's poses
(`topoloc.data.corridor`) plus a Latin hypercube inside its envelope (`topoloc.data.lhs_envelope`),
rendered synthetically; never the test poses themselves. The test images are the renders and the
real photos at the poses that were flown: the planned flight, the piloted flight of the same day
(it strays from the plan) and the winter flight (another season, and poses outside the corridor:
out of distribution, as its coverage shows).

Every stage reuses what an interrupted run already finished: the renderer skips images on disk,
training resumes from ``last.pt`` (a finished run returns at once), and the decoded training
images are cached in a file.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from topoloc._device import resolve_device
from topoloc.data.cache import ImageCache, as_cache
from topoloc.data.pose_sampling import corridor, lhs_envelope
from topoloc.data.preset import load_preset
from topoloc.data.semantics import SEMANTIC_CLASSES, SKY
from topoloc.data.topo import TopoFlight
from topoloc.engine.adapt import ADABN_LABEL
from topoloc.engine.checkpoint import load_model
from topoloc.engine.config import TrainConfig
from topoloc.engine.evaluate import evaluate
from topoloc.engine.side_by_side import train_side_by_side
from topoloc.engine.train import ResumeSettingsError, initial_model, train, training_autocast
from topoloc.experiments.recipe import (LANDCOVER_CSV, RECIPE_FILE, DataSpec, FlightSpec, Recipe, build_flights,
                                        write_recipe)
from topoloc.geodesy import LocalFrame
from topoloc.procedural import MIN_CLEARANCE_M, build_world, clearance_m, terrain_function
from topoloc.procedural.writer import OtherPosesError, pose_flight, render_flights
from topoloc.reporting.landcover import landcover_section
from topoloc.reporting.report import write_report
from topoloc.reporting.saliency_figures import saliency_report

__all__ = ["DemoConfig", "demo_config", "run_demo", "check_aims"]

log = logging.getLogger(__name__)

#: The flight whose plan gives the training views, and the aims' test flight.
PLANNED_FLIGHT = "comballaz-2020-11-06-planned"
#: Real TOPO flights whose poses give the test sets (their renders: synthetic; their "-real" photos: real).
TEST_FLIGHTS = (PLANNED_FLIGHT, "comballaz-2020-11-06-piloted", "comballaz-2021-03-27-winter")
#: The rendered training flight (corridor + envelope LHS around the planned flight).
TRAIN_FLIGHT = "comballaz-demo-train"
#: The CPU preset's ResNet18 stage widths (timm's ``channels``): half of ResNet18's 64, 128, 256, 512.
HALF_WIDTH = [32, 64, 128, 256]
#: The two runs: label -> (folder, augment).
RUNS = {"augmented (SimToReal)": ("augmented", "simtoreal"), "no augmentation": ("no_augmentation", None)}
#: The run without augmentation: its brackets are the report's, and the fine-tune starts from it.
PLAIN_RUN = "no augmentation"


@dataclass
class DemoConfig:
    """Sizes of the demo (see `demo_config` for the presets).

    Args:
        preset: label of the preset (``"smoke"``, ``"cpu"``, ``"gpu"``).
        corridor_images: training views jittered around the planned flight (`topoloc.data.corridor`
            with ``corridor_sigma_m`` across / along / up and ``corridor_sigma_deg`` yaw / pitch / roll).
        lhs_images: training views by Latin hypercube inside the planned flight's envelope.
        test_images: poses per test flight, evenly spread (``None``: every pose of the flight); the
            planned flight always uses ``planned_test_images``.
        planned_test_images: poses of the planned flight (``None``: all 447).
        render_size: (W, H) of the rendered images, pixels.
        image_size: (H, W) the model trains at.
        model: `topoloc.models` name; model_kwargs: its arguments.
        epochs, batch_size, lr: training (Adam, cosine decay to 1 %).
        finetune_epochs: 0: the augmented run trains from new weights for ``epochs``, as the
            unaugmented run does. N > 0: the unaugmented run trains first, and the augmented run
            starts from its final weights (`TrainConfig.init_from`) and trains N epochs with
            augmentation (the strength ramped over those N, the learning rate from ``lr`` again):
            the network has learnt the renders' geometry before it learns to ignore their
            appearance. The CPU preset fine-tunes 13 epochs, half the training of the augmented run;
            over three seeds that localises the real photos about 5 m and 1.5 deg worse as trained
            than 26 epochs from new weights, level in metres with AdaBN (docs/RESULTS.md).
        augment_strength: strength of ``augment.SimToReal`` in the augmented run (its last epochs'
            with ``augment_ramp``).
        augment_ramp: ramp the strength up linearly over the run (`TrainConfig.augment_ramp_epochs` =
            ``epochs``): ``augment_strength / epochs`` in the first epoch, ``augment_strength`` in the last.
        augment_fraction: share of each batch that the augmented run augments (the rest stays clean).
            The CPU preset augments every image (1.0): with the strength ramp the first epochs are
            nearly clean anyway; the GPU preset keeps half (measured there only with half).
        relight: in the augmented run, probability that an augmented image is first relit by a sun
            from a random direction on its surface normals (`augment.RandomSunRelight`; the
            training flight is then rendered with depth maps). 0 turns it off.
        sq: initial log-weight of the rotation term of `AtLocLoss` (learned). The paper's -3 weighs
            rotation 20x; from random weights in a few thousand steps that left the translation nearly
            unlearned (measured on the CPU preset), so the demo starts at 0.
        adabn: also evaluate both runs with their batch-norm statistics re-estimated on each test
            flight's own images (AdaBN, `topoloc.engine.adapt`: unsupervised test-time adaptation, no
            labels), reported beside the runs as ``"<run> + AdaBN"`` with the aims checked again.
        saliency_images: images per domain in the saliency figure.
        saliency_share_images: images per domain for the per-class saliency shares.
        cpu_amp: train under bf16 autocast on a CPU with native bf16 (`TrainConfig.cpu_amp`; float32,
            more slowly, on other CPUs).
        cpu_channels_last: train in channels_last memory format on the CPU
            (`TrainConfig.cpu_channels_last`).
        decode_workers: processes decoding the training renders into the cache (0: in the main
            process; the 2-core CPU preset gains nothing from more).
        side_by_side: train the two runs at the same time, each in its own process with half the
            torch threads (`topoloc.engine.train_side_by_side`), instead of one after the other with
            all of them. 1.3x the steps per second for the full-width ResNet18's float32 steps on a
            2-core Zen 3; no gain at the CPU preset's half width, which trains one after the other
            (BENCHMARKS.md).
        device: ``"cpu"`` or ``"cuda"``.
        seed: seeds the poses, the render and both trainings.
    """

    preset: str
    corridor_images: int
    lhs_images: int
    test_images: int | None
    render_size: tuple[int, int]
    image_size: tuple[int, int]
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    planned_test_images: int | None = None
    corridor_sigma_m: tuple[float, float, float] = (15.0, 15.0, 8.0)
    corridor_sigma_deg: tuple[float, float, float] = (15.0, 5.0, 3.0)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    finetune_epochs: int = 0
    augment_strength: float = 0.75
    augment_ramp: bool = True
    augment_fraction: float = 0.5
    relight: float = 0.8
    sq: float = 0.0
    adabn: bool = True
    saliency_images: int = 3
    saliency_share_images: int = 16
    cpu_amp: bool = False
    cpu_channels_last: bool = False
    decode_workers: int = 0
    side_by_side: bool = False
    device: str = "cpu"
    seed: int = 0
    test_flights: tuple[str, ...] = TEST_FLIGHTS

    def __post_init__(self) -> None:
        n = self.finetune_epochs
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"DemoConfig: `finetune_epochs` must be a non-negative int, got {self.finetune_epochs!r}")
        if self.finetune_epochs and self.side_by_side:
            raise ValueError("DemoConfig: `finetune_epochs` starts the augmented run from the unaugmented run's "
                             "weights, so the two cannot train side by side: set `side_by_side=False` or "
                             "`finetune_epochs=0`")

    def train_config(self, out_dir: Path, augment: str | None, cache_file: Path,
                     init_from: Path | None = None) -> TrainConfig:
        """The `TrainConfig` of one run; ``init_from``: the augmented run's first weights (``finetune_epochs``)."""
        epochs = self.finetune_epochs if augment is not None and self.finetune_epochs else self.epochs
        return TrainConfig(
            model=self.model, model_kwargs=dict(self.model_kwargs), epochs=epochs, batch_size=self.batch_size,
            lr=self.lr, lr_schedule="cosine", sq=self.sq, image_size=self.image_size, augment=augment,
            augment_strength=self.augment_strength, augment_fraction=self.augment_fraction,
            init_from=str(Path(init_from).resolve()) if init_from is not None else None,
            augment_ramp_epochs=epochs if self.augment_ramp and augment is not None else 0,
            relight=self.relight if augment is not None else 0.0,
            device=self.device, cpu_amp=self.cpu_amp, cpu_channels_last=self.cpu_channels_last,
            val_every=0, seed=self.seed, out_dir=str(out_dir),
            cache_file=str(cache_file.resolve()), resume=True, tensorboard=False, progress=self.preset != "smoke",
            cache_device="auto", num_workers=self.decode_workers,
        )


def demo_config(smoke: bool = False, device: str = "auto", seed: int = 0) -> DemoConfig:
    """The demo's sizes: ``smoke`` (about a minute on a 2-core CPU), ``cpu`` (8-12 minutes on
    a 2-core AVX2-only CPU without native bf16, about 4 on a 2-core CPU with AMX-BF16) or ``gpu``
    (a larger configuration, chosen when CUDA is available).

    Args:
        smoke: the toy-size run (for tests).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        seed: seeds the poses, the render and the trainings.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    dev = resolve_device(device).type  # also refuses 'cuda' without CUDA
    if smoke:
        return DemoConfig("smoke", corridor_images=24, lhs_images=8, test_images=4, planned_test_images=6,
                          render_size=(72, 48), image_size=(48, 72), model="atloc_resnet18",
                          model_kwargs=dict(feat_dim=64), epochs=2, finetune_epochs=2, batch_size=8, saliency_images=2,
                          saliency_share_images=4, device=dev, seed=seed)
    if dev == "cuda":
        # Sized for about 5 minutes on one H100 / H200. Measured on an H200 (BENCHMARKS.md, 2026-11-30):
        # 359 s in all (render 21 s, training 174 s with augmentation and 76 s without, evaluation with
        # AdaBN 44 s, report 7 s, saliency 28 s).
        return DemoConfig("gpu", corridor_images=4500, lhs_images=500, test_images=None, render_size=(384, 256),
                          image_size=(256, 384), model="atloc_resnet34", model_kwargs=dict(feat_dim=512, dropout=0.2),
                          epochs=30, batch_size=64, lr=1e-3, saliency_images=4, saliency_share_images=64,
                          decode_workers=min(8, os.cpu_count() or 1), device=dev, seed=seed)
    # 2-core CPU: ResNet18 at half width (timm's `channels` 32-256 instead of 64-512) at 64x96 px (sizes
    # chosen by measurement: see the README's demo section). Half width since 2026-12-01: a float32 step of
    # batch 32 takes 278 ms against 776 ms on two threads of a 2-core Zen 3 (`benchmarks/bench_width.py`),
    # and the three seeds of the augmented run localise as the full width's do (docs/RESULTS.md).
    # SimToReal 0.5 on half of each batch (the default until the ramp below): measured on this preset (planned flight, synthetic / real medians),
    # strength 0.5 gave 43 m / 8.0 deg and 140 m / 54 deg; strength 1.0 gave 61 m / 13 deg and 153 m / 58 deg;
    # strength 1.0 with every op on (p = 1) 70 m / 19 deg and 195 m / 88 deg. On the whole batch, strength
    # 0.5 barely trained in 8 epochs at 48x72 px (training loss 0.74 vs 0.43 unaugmented).
    # 20 epochs, not 14: with relighting, seed 0, the augmented run gave 46.7 m / 9.2 deg synthetic and 110 m /
    # 36 deg real at 14 epochs, 34 m / 5.2 deg and 79 m / 18.5 deg at 20 (real rendered without JPEG); the
    # demo then takes about 12.5 minutes on a quiet 2-core CPU.
    # SimToReal ramped from 0.0375 to 0.75 over the 20 epochs (the default since 2026-12-01), against 0.5 flat,
    # seeds 0, 1, 2 (scratch runs, docs/RESULTS.md): synthetic 26.4 m / 4.5 deg against 34.3 m / 6.4 deg,
    # real 85.4 m / 18.9 deg against 94.5 m / 26.6 deg (AdaBN 73.0 m / 13.8 deg against 87.0 m / 20.4 deg).
    # 26 epochs under bf16 autocast (since 2026-12-01; `TrainConfig.cpu_amp`) in the time 20 took in float32
    # on the 2-core Zen 4; seeds 0, 1, 2 (scratch runs, docs/RESULTS.md): synthetic 25.0 m / 3.8 deg against
    # 26.4 m / 4.5 deg, real 73.9 m / 15.7 deg against 85.4 m / 18.9 deg. On CPUs without native bf16 the same
    # 26 epochs run in float32: 1.3x slower on that Zen 4, 3.1x on a 2-core Zen 3 (AVX2 only; BENCHMARKS.md).
    # The two runs one after the other on all threads: at half width the two runs side by side
    # (`DemoConfig.side_by_side`), one thread each, took as long (5 epochs each on a 2-core Zen 3: 188 s
    # side by side, 187-191 s one after the other; BENCHMARKS.md).
    # At the full width they made 1.3x the steps per second, and the preset used them on CPUs without bf16.
    # channels_last on the CPU (`cpu_channels_last`, since 2026-12-01): the half width's float32 step 1.16x
    # faster on 2 threads of the Zen 3 (`benchmarks/bench_width.py`; the stem's max pooling is 9x faster in
    # channels_last), and the demo's trainings for 3 epochs 1.14-1.16x (BENCHMARKS.md).
    # Every image of the batch augmented (`augment_fraction` 1.0, since 2026-12-02), against half of it, seeds
    # 0, 1, 2 (scratch runs, docs/RESULTS.md): real 64.8 m / 12.0 deg against 77.1 m / 16.0 deg (AdaBN 63.6 m /
    # 10.4 deg against 67.0 m / 12.4 deg), synthetic 32.8 m / 4.6 deg against 23.2 m / 3.4 deg; the augmented
    # run's training takes 1.07-1.12x as long (the augmentation of 32 images a step instead of 16).
    # The augmented run fine-tunes the unaugmented run's weights for 13 epochs (`finetune_epochs`, since
    # 2026-12-02) instead of training 26 from random weights: half its training, about 4 minutes of the demo
    # on the 2-core Zen 3, which brings the demo under 15 minutes there. Seeds 0, 1, 2 (scratch runs,
    # docs/RESULTS.md): real 70.1 m / 13.5 deg against 64.8 m / 12.0 deg (AdaBN 64.8 m / 11.5 deg against
    # 63.6 m / 10.4 deg), synthetic 35.9 m / 4.3 deg against 32.8 m / 4.6 deg.
    return DemoConfig("cpu", corridor_images=1800, lhs_images=200, test_images=150, render_size=(96, 64),
                      image_size=(64, 96), model="atloc_resnet18",
                      model_kwargs=dict(feat_dim=256, dropout=0.2, backbone_kwargs=dict(channels=HALF_WIDTH)),
                      epochs=26, finetune_epochs=13, batch_size=32, augment_fraction=1.0, cpu_amp=True,
                      cpu_channels_last=True,
                      saliency_images=3, saliency_share_images=16, device=dev, seed=seed)


class TrainingEstimate:
    """A training callback that says, once, how long the demo's training will take on this machine.

    It times ``measure`` steps after ``warmup`` (the first steps allocate and tune), then prints the
    time left for this run and, for ``later_runs`` more runs (of ``later_epochs`` together, or each as long
    as this one), for those, at this run's speed: "at least" that when ``later_augmented`` (they augment
    their images and this run does not, so their steps are slower; the demo's fine-tune took 4 minutes
    where this said 3). The
    demo's CPU preset takes about 12 minutes on a 2-core AVX2-only CPU and 4 on a 2-core one with AMX
    (README): CPUs differ by several times, and the user should know at the start, not at the end.
    """

    def __init__(self, label: str, later_runs: int = 0, warmup: int = 5, measure: int = 20,
                 clock: Any = time.perf_counter, write: Any = tqdm.write, later_epochs: int | None = None,
                 later_augmented: bool = False) -> None:
        self.label, self.later_runs, self.warmup, self.measure, self.clock = label, later_runs, warmup, measure, clock
        self.later_epochs = later_epochs  # of the later runs together (None: each as long as this one)
        self.later_augmented = later_augmented
        self.write = write  # above the training's progress bar, not through it
        self.seen = 0
        self.start: float | None = None
        self.message: str | None = None

    def __call__(self, state: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen == self.warmup:
            self.start = self.clock()
        elif self.seen == self.warmup + self.measure and self.start is not None:
            per_step = (self.clock() - self.start) / self.measure
            trainer = state["trainer"]
            total = trainer.config.epochs * trainer.steps_per_epoch
            left = (total - state["global_step"]) * per_step
            self.message = (f"[demo] training {self.label}: {1 / per_step:.2f} steps/s on this machine, about "
                            f"{_minutes(left)} left for this run")
            if self.later_runs:
                later = (self.later_runs * trainer.config.epochs if self.later_epochs is None else self.later_epochs)
                self.message += (f" and {'at least ' if self.later_augmented else ''}"
                                 f"{_minutes(later * trainer.steps_per_epoch * per_step)} for the "
                                 f"{'next run' if self.later_runs == 1 else f'{self.later_runs} next runs'}")
            self.write(self.message)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


# ---------------------------------------------------------------------------------- stages
def training_poses(cfg: DemoConfig) -> np.ndarray:
    """The training views: a corridor around the planned flight and a Latin hypercube inside its
    envelope, as TOPO-DataGen pose rows (N, 6); views less than 2 m above the Mini-Comballaz surface
    are dropped (the renderer would refuse them)."""
    plan = load_preset(PLANNED_FLIGHT)
    world = build_world(cfg.seed)
    rows = [corridor(plan, cfg.corridor_images, sigma_m=cfg.corridor_sigma_m, sigma_deg=cfg.corridor_sigma_deg,
                     seed=cfg.seed)]
    if cfg.lhs_images:
        rows.append(lhs_envelope(plan, cfg.lhs_images, seed=cfg.seed, frame=LocalFrame.named("comballaz"),
                                 ground_m=terrain_function(world), clearance_m=10.0))
    rows = np.concatenate(rows)
    keep = clearance_m(rows, world) >= MIN_CLEARANCE_M
    if not keep.all():
        log.info("demo: dropped %d of %d training views under the surface", int((~keep).sum()), len(rows))
    return rows[keep]


def _render(cfg: DemoConfig, data_dir: Path) -> None:
    counts = {f: (cfg.planned_test_images if f == PLANNED_FLIGHT else cfg.test_images) for f in cfg.test_flights}
    tests = [f if counts[f] is None else f"{f}:{counts[f]}" for f in cfg.test_flights]
    # All of torch's threads, as the trainings use: the cpu preset's render took 35-40 s on both cores of a
    # quiet 2-core Zen 3 against 49 s on one (BENCHMARKS.md); one thread is faster only on a busy machine.
    common = dict(size=cfg.render_size, seed=cfg.seed, device=cfg.device, progress=cfg.preset != "smoke",
                  batch_size=16 if cfg.device == "cpu" else 64)
    # the training renders' depth maps give the surface normals that relighting needs
    try:
        render_flights(data_dir, [pose_flight(TRAIN_FLIGHT, training_poses(cfg))], depth=cfg.relight > 0, **common)
        render_flights(data_dir, tests, **common)
    except OtherPosesError as err:  # the renderer's "use another name" is not the demo user's choice
        raise ValueError(f"{data_dir.parent}: holds a demo of another seed or preset ({str(err.path)!r} holds "
                         "other views than this run's); use another --out folder, or remove that one") from err


#: The training flight's split: 90 / 10 by blocks of 10 consecutive rows (the corridor's rows follow
#: the flight, so a block is a stretch of it: validation views are not near-copies of training views).
TRAIN_SPLIT = {"split_fractions": (0.9, 0.1, 0.0), "split_block": 10}


def _data_spec(cfg: DemoConfig, data_dir: Path) -> DataSpec:
    """The demo's data as a recipe's: training and validation rows of the training flight, the test flights."""
    return DataSpec(root=str(data_dir), frame="comballaz",
                    train=[FlightSpec(TRAIN_FLIGHT, "synthetic", "train", **TRAIN_SPLIT)],
                    val=[FlightSpec(TRAIN_FLIGHT, "synthetic", "val", **TRAIN_SPLIT)],
                    test=[FlightSpec(f, domain) for f in cfg.test_flights for domain in ("synthetic", "real")])


def _datasets(cfg: DemoConfig, data_dir: Path):
    spec = _data_spec(cfg, data_dir)
    (train,), (val,) = build_flights(spec, "train"), build_flights(spec, "val")
    return train, val, build_flights(spec, "test")


def _saliency_section(cfg: DemoConfig, out: Path, runs: dict[str, tuple[Path, TrainConfig]], test_sets) -> str:
    """Saliency figures, randomisation check and per-class shares of every run, before and after
    training, each run compared with the last one (no augmentation); see `saliency_report`."""
    pairs = {}
    initial: dict[tuple, torch.nn.Module] = {}
    for label, (ckpt, tcfg) in runs.items():
        after, _, _ = load_model(ckpt, device=cfg.device)
        key = (tcfg.seed, tcfg.model, repr(sorted(tcfg.model_kwargs.items())))
        if key not in initial:  # the untrained model: the run's initial weights (same seed), shared by equal runs
            initial[key] = initial_model(tcfg, cfg.device).eval()
        pairs[label] = (initial[key], after)
    return saliency_report(pairs, test_sets, out, figure_images=cfg.saliency_images,
                           share_images=cfg.saliency_share_images, device=cfg.device, baseline=list(runs)[-1])


def run_demo(
    out: str | PathLike,
    smoke: bool = False,
    device: str = "auto",
    seed: int = 0,
    config: DemoConfig | None = None,
) -> Path:
    """Runs the whole demo into ``out`` and returns the path of ``out/report.md``.

    Layout: ``out/data`` (the Mini-Comballaz render: the training flight and the test flights),
    ``out/runs/augmented`` and ``out/runs/no_augmentation`` (checkpoints, config.yaml, log.csv, and
    recipe.yaml: the run's data, where `topoloc evaluate` finds its training and validation rows),
    ``out/cache`` (decoded training images), ``out/plots``, ``out/predictions``,
    ``out/summary.json``, ``out/demo.json``, ``out/report.md``.

    Args:
        out: the demo folder (created; an earlier, interrupted run in it is continued).
        smoke: toy size (about a minute on a CPU), for tests.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: seeds the poses, the render and the trainings.
        config: explicit sizes instead of the preset of `demo_config`.
    """
    cfg = config if config is not None else demo_config(smoke, device, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()

    def lap(stage: str) -> None:
        timings[stage] = time.perf_counter() - sum(timings.values()) - t0
        log.info("demo: %s done in %.1f s", stage, timings[stage])
        print(f"[demo] {stage}: {timings[stage]:.1f} s", flush=True)

    data_dir = out / "data"
    _render(cfg, data_dir)
    lap("render")

    train_set, val_set, test_sets = _datasets(cfg, data_dir)
    frame = LocalFrame.named("comballaz")
    cache_file = out / "cache" / f"train_{cfg.image_size[0]}x{cfg.image_size[1]}.pt"
    plain_checkpoint = out / "runs" / RUNS[PLAIN_RUN][0] / "last.pt"  # the fine-tune's start (finetune_epochs)
    configs = {label: cfg.train_config(out / "runs" / folder, augment, cache_file,
                                       init_from=plain_checkpoint if augment and cfg.finetune_epochs else None)
               for label, (folder, augment) in RUNS.items()}
    checkpoints = (_train_side_by_side(cfg, configs, train_set, out, cache_file) if cfg.side_by_side else
                   _train_one_after_another(cfg, configs, train_set, out, lap))
    runs: dict[str, tuple[Path, TrainConfig]] = {}
    for label, tcfg in configs.items():
        runs[label] = (checkpoints[label], tcfg)
        # what `topoloc evaluate` reads to find the run's training and validation rows (its brackets)
        write_recipe(Recipe(_data_spec(cfg, data_dir), tcfg, str(out), source="topoloc demo"),
                     Path(tcfg.out_dir) / RECIPE_FILE)
    if cfg.side_by_side:
        lap("train " + " + ".join(folder for folder, _ in RUNS.values()) + " (side by side)")

    train_cache = ImageCache.from_dataset(train_set, cfg.image_size, path=cache_file)  # the file training wrote
    val_caches = [as_cache(val_set, cfg.image_size)] if len(val_set) else []
    test_caches = [as_cache(ds, cfg.image_size) for ds in test_sets]
    evaluations, adapted = {}, {}
    for label, (ckpt, tcfg) in runs.items():
        model, normalizer, _ = load_model(ckpt, device=cfg.device)
        evaluations[label] = evaluate(model, normalizer, test_caches, frame=frame, train_set=train_cache,
                                      val_sets=val_caches, device=cfg.device,
                                      method=label, retrieval=("thumbnail", "model"))
        if cfg.adabn:  # the same model, its statistics from each test flight (brackets: the run's own)
            adapted[f"{label} + {ADABN_LABEL}"] = evaluate(
                model, normalizer, test_caches, frame=frame, train_set=train_cache, val_sets=val_caches,
                device=cfg.device, method=f"{label} + {ADABN_LABEL}", retrieval=False, baselines=False, train_fit=0,
                adapt="adabn")
            adapted[f"{label} + {ADABN_LABEL}"].brackets_of = label
    evaluations.update(adapted)  # after the runs: the report's columns and headline keep their order
    landcover_md = _landcover_section(data_dir, frame, evaluations, csv_path=out / LANDCOVER_CSV)
    lap("evaluate")

    def write(saliency_md: str) -> Path:
        headline = next(iter(evaluations))
        intro = "\n\n".join([
            _intro(cfg, train_set, val_set, test_sets, timings, time.perf_counter() - t0, _cpu_seconds() - cpu0),
            _per_flight(evaluations),
            check_aims(evaluations, cfg.preset),
            landcover_md,
        ])
        report = write_report(out, evaluations, title="topoloc demo: Mini-Comballaz, synthetic training around the "
                              "planned flight, real test", intro=intro, retrieval_run=headline,
                              extra_sections={"Saliency": saliency_md})
        (out / "demo.json").write_text(json.dumps({"config": asdict(cfg), "timings_s": timings,
                                                   "total_s": time.perf_counter() - t0,
                                                   "cpu_s": _cpu_seconds() - cpu0,
                                                   "torch_threads": torch.get_num_threads(),
                                                   "aims": _aims(evaluations),
                                                   **({"aims_adabn": _aims(evaluations, suffix=f" + {ADABN_LABEL}")}
                                                      if cfg.adabn else {})},
                                                  indent=2, default=str))
        return report

    # the figures are kept before the saliency stage: a demo stopped there still leaves its report
    report = write("Not computed yet: the demo stopped before its saliency stage (run it again to finish).")
    lap("report")
    saliency_md = _saliency_section(cfg, out, runs, test_sets)
    lap("saliency")
    report = write(saliency_md)
    print(f"[demo] report: {report} ({time.perf_counter() - t0:.1f} s in all)", flush=True)
    return report


def _resume_refused(out: Path, label: str, err: ResumeSettingsError) -> ValueError:
    return ValueError(f"topoloc demo: {str(out)!r} holds a {label!r} run trained with other settings "
                      f"({ResumeSettingsError.describe(err.changes)}: another --seed, or an earlier version of the "
                      f"demo). Run the demo into a new --out, or delete {str(out / 'runs')!r} to train again there.")


def _train_one_after_another(cfg: DemoConfig, configs: dict[str, TrainConfig], train_set, out: Path,
                             lap: Any) -> dict[str, Path]:
    checkpoints = {}
    # A run that starts from another's weights (`TrainConfig.init_from`) trains after the others.
    order = sorted(configs, key=lambda label: configs[label].init_from is not None)
    for i, label in enumerate(order):
        tcfg = configs[label]
        start = f" from {Path(tcfg.init_from).parent.name}'s weights" if tcfg.init_from else ""
        print(f"[demo] training {label}{start}: {tcfg.epochs} epochs of {len(train_set)} images", flush=True)
        later = sum(configs[k].epochs for k in order[i + 1:])
        slower = not _augments(tcfg) and any(_augments(configs[k]) for k in order[i + 1:])
        estimate = TrainingEstimate(label, len(order) - 1 - i, later_epochs=later, later_augmented=slower)
        try:
            result = train(tcfg, train_set, callbacks=[estimate])
        except ResumeSettingsError as err:
            raise _resume_refused(out, label, err) from err
        checkpoints[label] = Path(result.final_checkpoint)
        lap(f"train {Path(tcfg.out_dir).name}")
    return checkpoints


def _augments(cfg: TrainConfig) -> bool:
    """Whether a run changes its images on the way in (its steps are then slower than a plain run's)."""
    return cfg.augment is not None or cfg.relight > 0


def _estimate(label: str, write: Any) -> list[TrainingEstimate]:
    """Each side-by-side run's estimate, made in its process (`train_side_by_side`'s callback factory)."""
    return [TrainingEstimate(label, write=write)]


def _side_by_side_threads() -> int:
    """Torch threads of each run side by side: this process's, shared out."""
    return max(1, torch.get_num_threads() // len(RUNS))


def _train_side_by_side(cfg: DemoConfig, configs: dict[str, TrainConfig], train_set, out: Path,
                        cache_file: Path) -> dict[str, Path]:
    threads = _side_by_side_threads()
    print(f"[demo] training {' and '.join(configs)} side by side ({threads} torch thread"
          f"{'s' if threads > 1 else ''} each): {cfg.epochs} epochs of {len(train_set)} images", flush=True)
    # decoded once, here: the runs load the file instead of each writing it
    ImageCache.from_dataset(train_set, cfg.image_size, path=cache_file, num_workers=cfg.decode_workers,
                            progress=cfg.preset != "smoke")
    try:
        return train_side_by_side(configs, train_set, threads=threads, progress=cfg.preset != "smoke",
                                  callback_factory=_estimate)
    except ResumeSettingsError as err:
        raise _resume_refused(out, err.run, err) from err


def _medians(ev, domain: str, flight: str | None = None) -> tuple[float, float] | None:
    """(median m, median deg) of one method on a domain (and flight), or None without images."""
    if not ev.mask(domain=domain, flight=flight).any():
        return None
    s = ev.summary(domain=domain, flight=flight)
    return float(s.median_m), float(s.median_deg)


def _aims(evaluations: dict[str, Any], flight: str = PLANNED_FLIGHT, suffix: str = "") -> dict[str, Any]:
    """The CPU preset's aims on the planned flight, each with its figures and whether it is met.

    (a) the unaugmented run's synthetic median is at least 6x better than the constant pose and better
    than every retrieval baseline, and its rotation median at most 3x the coverage ceiling's; (b) the
    augmented run's real median is at least 3x better than the unaugmented run's (b1), and at most 1.5x
    its own synthetic median (b2 in metres, b3 in degrees); "in metres and in degrees" holds for both, so
    b1 is checked in both units. ``suffix`` picks the runs' other evaluations
    (``" + AdaBN"``); the brackets are always those of the runs themselves.
    """
    if any(k + suffix not in evaluations for k in RUNS):
        return {"checked": False, "why": f"the runs{suffix} were not evaluated"}
    aug, plain = (evaluations[k + suffix] for k in RUNS)
    brackets = evaluations[PLAIN_RUN]
    med = {"aug": {d: _medians(aug.model, d, flight) for d in ("synthetic", "real")},
           "plain": {d: _medians(plain.model, d, flight) for d in ("synthetic", "real")}}
    const, ceiling = brackets.constant, brackets.ceiling
    retrievals = [r for k in RUNS for r in evaluations[k].retrievals.values()]
    if const is None or ceiling is None or None in (*med["aug"].values(), *med["plain"].values()):
        return {"checked": False, "why": "a bracket or a domain of the planned flight is missing"}
    c_syn = _medians(const, "synthetic", flight)
    ceil_syn = _medians(ceiling, "synthetic", flight)
    best_retrieval = min(_medians(r, "synthetic", flight)[0] for r in retrievals) if retrievals else float("inf")
    p_syn, p_real, a_syn, a_real = med["plain"]["synthetic"], med["plain"]["real"], med["aug"]["synthetic"], med["aug"]["real"]
    checks = {
        "a1 unaugmented synthetic <= constant / 6 (m)": (p_syn[0], c_syn[0] / 6, p_syn[0] <= c_syn[0] / 6),
        "a2 unaugmented synthetic < best retrieval (m)": (p_syn[0], best_retrieval, p_syn[0] < best_retrieval),
        "a3 unaugmented synthetic rotation <= 3x coverage ceiling (deg)": (p_syn[1], 3 * ceil_syn[1], p_syn[1] <= 3 * ceil_syn[1]),
        "b1 augmented real <= unaugmented real / 3 (m)": (a_real[0], p_real[0] / 3, a_real[0] <= p_real[0] / 3),
        "b1 augmented real <= unaugmented real / 3 (deg)": (a_real[1], p_real[1] / 3, a_real[1] <= p_real[1] / 3),
        "b2 augmented real <= 1.5x augmented synthetic (m)": (a_real[0], 1.5 * a_syn[0], a_real[0] <= 1.5 * a_syn[0]),
        "b3 augmented real <= 1.5x augmented synthetic (deg)": (a_real[1], 1.5 * a_syn[1], a_real[1] <= 1.5 * a_syn[1]),
    }
    return {"checked": True, "flight": flight,
            "checks": {k: {"value": v, "limit": lim, "met": bool(ok)} for k, (v, lim, ok) in checks.items()}}


def check_aims(evaluations: dict[str, Any], preset: str) -> str:
    """Markdown: the aims of the CPU preset on the planned flight, met or not, with the figures; again
    with AdaBN when the runs were also evaluated with it."""
    blocks = []
    as_trained: dict[str, Any] = {}
    for suffix, what in (("", "the runs as trained"),
                         (f" + {ADABN_LABEL}", "both runs with AdaBN (batch-norm statistics of each test flight's own "
                                               "images, no labels; same brackets)")):
        aims = _aims(evaluations, suffix=suffix)
        if not suffix:
            as_trained = aims.get("checks", {})
        if not aims["checked"]:
            if not suffix:
                blocks.append(f"**Aims**: not checked ({aims['why']}).")
            continue
        met = sum(c["met"] for c in aims["checks"].values())
        lines = [f"**Aims** (set for the `cpu` preset; this run: `{preset}`), on `{aims['flight']}`, {what}: "
                 f"{met} of {len(aims['checks'])} met.", ""]
        for name, c in aims["checks"].items():
            lines.append(f"- {'met' if c['met'] else 'NOT met'}: {name}: {c['value']:.1f} vs limit {c['limit']:.1f}")
        blocks.append("\n".join(lines))
    if any(not c["met"] for name, c in as_trained.items() if name.startswith(("b2", "b3"))):
        blocks.append("b2 and b3 ask the render-trained run to localise the photos almost as well as the renders: "
                      "about what a model trained on the photos' own appearance does, which "
                      "`recipes/in_domain_ceiling.yaml` measures (Mini-Comballaz only; docs/RESULTS.md).")
    return "\n\n".join(blocks)


def _per_flight(evaluations: dict[str, Any]) -> str:
    """Per test flight and domain: each run, the constant pose, the best retrieval and the coverage
    ceiling (medians), and whether the flight lies inside the training views' coverage."""
    first = next(iter(evaluations.values()))
    const, ceiling = first.constant, first.ceiling
    lines = ["**Per test flight** (median m / deg; a flight is out of distribution when the nearest "
             "training view is, at the median, more than 20 m or 10 deg away):", "",
             "| flight | domain | " + " | ".join(evaluations) + " | constant pose | best retrieval | coverage ceiling | coverage |",
             "|---|---|" + "---|" * (len(evaluations) + 4)]
    flights = list(dict.fromkeys(first.model.flights))
    for flight in flights:
        for domain in ("synthetic", "real"):
            if not first.model.mask(domain=domain, flight=flight).any():
                continue
            cells = [_fmt(_medians(ev.model, domain, flight)) for ev in evaluations.values()]
            retr = [b for ev in evaluations.values() for b in ev.retrievals.values()]
            best = min((_medians(b, domain, flight) for b in retr), default=None, key=lambda m: m[0])
            ceil = _medians(ceiling, domain, flight) if ceiling is not None else None
            ood = ceil is not None and (ceil[0] > 20.0 or ceil[1] > 10.0)
            cov = "out of distribution" if ood else "covered"
            lines.append(f"| {flight} | {domain} | " + " | ".join(cells)
                         + f" | {_fmt(_medians(const, domain, flight) if const else None)} | {_fmt(best)} | {_fmt(ceil)} | {cov} |")
    return "\n".join(lines)


def _landcover_section(data_dir: Path, frame: LocalFrame, evaluations: dict[str, Any],
                       csv_path: Path | None = None) -> str:
    """The headline run's errors on the planned flight (as trained and with AdaBN), its images cut into
    quarters by the share of each common land-cover class in view (`topoloc.reporting.landcover`)."""
    twin = TopoFlight(data_dir, PLANNED_FLIGHT, domain="synthetic", frame=frame, load_semantics=True)
    headline = next(iter(evaluations))
    runs = {k: evaluations[k] for k in (headline, f"{headline} + {ADABN_LABEL}") if k in evaluations}
    return landcover_section(runs, [twin], {c: n for c, n in SEMANTIC_CLASSES.items() if c != SKY},
                             domains=("real", "synthetic"), csv_path=csv_path)


def _fmt(m: tuple[float, float] | None) -> str:
    return "-" if m is None else f"{m[0]:.1f} m / {m[1]:.1f} deg"


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (s)."""
    import resource  # noqa: PLC0415 - deferred: a Unix-only module, needed only for the timings

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _runs_line(cfg: DemoConfig) -> str:
    """How the two runs differ, for the report's introduction."""
    epochs = cfg.finetune_epochs or cfg.epochs
    augmentation = (
        (f"`augment.SimToReal` on {cfg.augment_fraction:.0%} of each batch, its strength ramped from "
         f"{cfg.augment_strength / epochs:g} in the first epoch to {cfg.augment_strength:g} in the last"
         if cfg.augment_ramp else
         f"`augment.SimToReal(strength={cfg.augment_strength:g})` on {cfg.augment_fraction:.0%} of each batch")
        + (f" (each of those images first relit by a random sun on its depth map's normals with probability "
           f"{cfg.relight:g}, `augment.RandomSunRelight`)" if cfg.relight > 0 else ""))
    if cfg.finetune_epochs:
        return (f"; two runs with the same settings and seed: one without augmentation, and the augmented one, "
                f"which starts from that run's final weights (`TrainConfig.init_from`) and trains "
                f"{cfg.finetune_epochs} more epochs (the learning rate from {cfg.lr:g} again) with {augmentation}")
    return f"; two runs with identical settings and seed, with {augmentation}, and without augmentation"


def _intro(cfg: DemoConfig, train_set, val_set, test_sets, timings: dict[str, float], total: float, cpu: float) -> str:
    tests = ", ".join(f"{ds.flight} {ds.domain} ({len(ds)})" for ds in test_sets)
    model_desc = f"`{cfg.model}`" + (f" ({', '.join(f'{k}={v}' for k, v in cfg.model_kwargs.items())})"
                                     if cfg.model_kwargs else "")
    times = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    sm, sd = cfg.corridor_sigma_m, cfg.corridor_sigma_deg
    return (
        f"Preset `{cfg.preset}` on `{cfg.device}`, seed {cfg.seed}. Mini-Comballaz (a procedural stand-in for "
        f"the Comballaz scene) rendered at {cfg.render_size[0]}x{cfg.render_size[1]} px.\n\n"
        f"- Training views (what a user can render before the flight): {cfg.corridor_images} views jittered around "
        f"the poses of `{PLANNED_FLIGHT}` (sigma {sm[0]:g} m across, {sm[1]:g} m along, {sm[2]:g} m up; "
        f"{sd[0]:g} deg yaw, {sd[1]:g} deg pitch, {sd[2]:g} deg roll) and {cfg.lhs_images} Latin-hypercube views "
        f"inside its envelope, rendered synthetically as `{TRAIN_FLIGHT}`; never the test poses themselves. "
        f"{len(train_set)} train, {len(val_set)} validation views (deterministic split by pose row).\n"
        f"- Model: {model_desc} from random weights at {cfg.image_size[1]}x{cfg.image_size[0]} px, 6D rotation "
        f"target, {cfg.epochs} epochs, batch {cfg.batch_size}, Adam lr {cfg.lr:g} with cosine decay to 1 %, learned "
        f"loss weights starting at sx = 0, sq = {cfg.sq:g}"
        + (("; the training steps under bf16 autocast (`TrainConfig.cpu_amp`; evaluation in float32)"
            if training_autocast("cpu", True, cfg.cpu_amp) else "; float32 steps (this CPU has no native bf16)")
           if cfg.device == "cpu" and cfg.cpu_amp else "")
        + _runs_line(cfg) + ".\n"
        f"- Test: {tests}: the poses of real TOPO flights; their \"real\" images are Mini-Comballaz's real "
        "appearance (the flight's season and sun, clouds, haze, cars, power lines, camera, JPEG), their synthetic "
        "images the render of the same pose.\n"
        f"- Time: {times} ({total:.0f} s wall before the report, {cpu:.0f} s of CPU time, "
        f"{torch.get_num_threads()} torch threads"
        + (f"; the two trainings side by side, {_side_by_side_threads()} each" if cfg.side_by_side else "") + ")."
    )
