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

This module holds the stages and the training; the settings and presets (`DemoConfig`,
`demo_config`, the flights and runs) are in `topoloc.experiments.demo_settings`, the report's own
text (introduction, per-flight table, aims, land cover) in `topoloc.experiments.demo_report`. Their
names stay importable from here.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from topoloc._lock import FolderLock
from topoloc._tempfiles import write_text_atomically
from topoloc.data.cache import ImageCache, as_cache
from topoloc.data.pose_lhs import lhs_envelope
from topoloc.data.pose_sampling import corridor
from topoloc.data.preset import load_preset
from topoloc.engine.adapt import ADABN_LABEL
from topoloc.engine.checkpoint import load_model
from topoloc.engine.config import TrainConfig
from topoloc.engine.evaluate import evaluate
from topoloc.engine.side_by_side import train_side_by_side
from topoloc.engine.train import ResumeSettingsError, initial_model, train
from topoloc.experiments.demo_report import _aims, _intro, _landcover_section, _per_flight, check_aims
from topoloc.experiments.demo_settings import (PLAIN_RUN, PLANNED_FLIGHT, RUNS, TRAIN_FLIGHT, TRAIN_SPLIT, DemoConfig,
                                               _side_by_side_threads, demo_config)
from topoloc.experiments.recipe import (LANDCOVER_CSV, RECIPE_FILE, DataSpec, FlightSpec, Recipe, build_flights,
                                        write_recipe)
from topoloc.geodesy import LocalFrame
from topoloc.procedural import MIN_CLEARANCE_M, build_world, clearance_m, terrain_function
from topoloc.procedural.writer import OtherPosesError, RenderFolderError, pose_flight, render_flights
from topoloc.reporting.report import write_report
from topoloc.reporting.saliency_figures import saliency_report

# Public constants kept importable from this module, where they lived before the split (benchmarks name them here).
from topoloc.experiments.demo_settings import HALF_WIDTH, TEST_FLIGHTS  # noqa: F401

__all__ = ["DemoConfig", "demo_config", "run_demo", "check_aims"]

log = logging.getLogger(__name__)


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
    views = np.concatenate(rows)
    keep = clearance_m(views, world) >= MIN_CLEARANCE_M
    if not keep.all():
        log.info("demo: dropped %d of %d training views under the surface", int((~keep).sum()), len(views))
    return views[keep]


def _render(cfg: DemoConfig, data_dir: Path) -> int:
    """Render what ``data_dir`` lacks of the training flight and the test flights; the number of images rendered
    now (0: all were there)."""
    counts = {f: (cfg.planned_test_images if f == PLANNED_FLIGHT else cfg.test_images) for f in cfg.test_flights}
    tests = [f if counts[f] is None else f"{f}:{counts[f]}" for f in cfg.test_flights]
    # All of torch's threads, as the trainings use: the cpu preset's render took 35-40 s on both cores of a
    # quiet 2-core Zen 3 against 49 s on one (BENCHMARKS.md); one thread is faster only on a busy machine.
    common: dict[str, Any] = dict(size=cfg.render_size, seed=cfg.seed, device=cfg.device,
                                  progress=cfg.preset != "smoke",
                                  batch_size=16 if cfg.device == "cpu" else 64)
    # the training renders' depth maps give the surface normals that relighting needs
    try:
        done = render_flights(data_dir, [pose_flight(TRAIN_FLIGHT, training_poses(cfg))], depth=cfg.relight > 0,
                              **common)
        done.update(render_flights(data_dir, tests, **common))
    except OtherPosesError as err:  # the renderer's "use another name" is not the demo user's choice
        raise ValueError(f"{data_dir.parent}: holds a demo of another seed or preset ({str(err.path)!r} holds "
                         "other views than this run's); use another --out folder, or remove that one") from err
    except RenderFolderError as err:  # e.g. a demo folder rendered before an update that changed the renders
        raise ValueError(f"{data_dir.parent}: holds a demo rendered with other settings or by another version of "
                         f"topoloc ({err}); use another --out folder, or remove that one") from err
    return sum(done.values())


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
    section = saliency_report(pairs, test_sets, out, figure_images=cfg.saliency_images,
                              share_images=cfg.saliency_share_images, device=cfg.device, baseline=list(runs)[-1])
    by_checkpoint = {Path(ckpt).resolve(): label for label, (ckpt, _) in runs.items()}
    for label, (_, tcfg) in runs.items():  # its "before" is where its training began, not its fine-tune's start
        if tcfg.init_from:
            source = by_checkpoint.get(Path(tcfg.init_from).resolve(), Path(tcfg.init_from).parent.name)
            intro, _, rest = section.partition("\n\n")  # after the paragraph that says what the maps are
            section = (f"{intro}\n\n`{label}` is a fine-tune of `{source}`: its \"before training\" maps are those of "
                       f"the initial weights both began from, not of the weights the fine-tune started from.\n\n{rest}")
    return section


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
    with FolderLock(out, "the demo folder"):  # one demo at a time in the folder: a second would mix their files
        return _run_demo(cfg, out)


def _run_demo(cfg: DemoConfig, out: Path) -> Path:
    """`run_demo` in its created, locked folder."""
    timings: dict[str, float] = {}
    reused: set[str] = set()  # stages whose work an earlier run did
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()

    def lap(stage: str, note: str = "") -> None:
        timings[stage] = time.perf_counter() - sum(timings.values()) - t0
        if note:
            reused.add(stage)
        log.info("demo: %s done in %.1f s", stage, timings[stage])
        print(f"[demo] {stage}: {note}{timings[stage]:.1f} s", flush=True)

    data_dir = out / "data"
    rendered = _render(cfg, data_dir)
    lap("render", "" if rendered else "rendered in an earlier run, reused, ")

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
        write_recipe(Recipe(_data_spec(cfg, data_dir), tcfg, str(Path(tcfg.out_dir) / "eval"), source="topoloc demo"),
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
            _intro(cfg, train_set, val_set, test_sets, timings, time.perf_counter() - t0, _cpu_seconds() - cpu0,
                   reused),
            _per_flight(evaluations),
            check_aims(evaluations, cfg.preset),
            landcover_md,
        ])
        report = write_report(out, evaluations, title="topoloc demo: Mini-Comballaz, synthetic training around the "
                              "planned flight, real test", intro=intro, retrieval_run=headline,
                              extra_sections={"Saliency": saliency_md})
        record = json.dumps({"config": asdict(cfg), "timings_s": timings, "reused": sorted(reused),
                             "total_s": time.perf_counter() - t0,
                             "cpu_s": _cpu_seconds() - cpu0, "torch_threads": torch.get_num_threads(),
                             "aims": _aims(evaluations),
                             **({"aims_adabn": _aims(evaluations, suffix=f" + {ADABN_LABEL}")} if cfg.adabn else {})},
                            indent=2, default=str)
        write_text_atomically(out / "demo.json", record)
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
        steps: list[dict] = []
        try:
            result = train(tcfg, train_set, callbacks=[estimate, steps.append])
        except ResumeSettingsError as err:
            raise _resume_refused(out, label, err) from err
        checkpoints[label] = Path(result.final_checkpoint)
        lap(f"train {Path(tcfg.out_dir).name}", "" if steps else "trained in an earlier run, reused, ")
    return checkpoints


def _augments(cfg: TrainConfig) -> bool:
    """Whether a run changes its images on the way in (its steps are then slower than a plain run's)."""
    return cfg.augment is not None or cfg.relight > 0


def _estimate(label: str, write: Any) -> list[TrainingEstimate]:
    """Each side-by-side run's estimate, made in its process (`train_side_by_side`'s callback factory)."""
    return [TrainingEstimate(label, write=write)]


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


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (s)."""
    import resource  # noqa: PLC0415 - deferred: a Unix-only module, needed only for the timings

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
