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

This module renders the data, trains and evaluates the runs and writes the table; the settings
(`StudyConfig`, the presets of `study_config`, the configs of `study_runs`) are in
`topoloc.experiments.study_settings`, and their names stay importable from here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from topoloc._device import cpu_name
from topoloc._lock import FolderLock
from topoloc._messages import renamed
from topoloc._paths import check_output, unwritable
from topoloc._tempfiles import write_text_atomically
from topoloc.data import TopoFlight, corridor, flight_normals, load_preset
from topoloc.data.cache import as_cache
from topoloc.data.preset import list_presets
from topoloc.engine.checkpoint import load_checkpoint, load_model
from topoloc.engine.config import TrainConfig
from topoloc.engine.evaluate import evaluate
from topoloc.engine.side_by_side import train_side_by_side
from topoloc.engine.train import train
from topoloc.evaluation.baselines import constant_pose, coverage_ceiling
from topoloc.evaluation.results import PoseEvaluation
from topoloc.experiments.study_settings import (CORRIDOR, OPS, PRESETS, STUDY_DOMAINS, RunConfig, StudyConfig,
                                                study_config, study_runs)
from topoloc.experiments.study_table import aggregate, results_markdown, write_section
from topoloc.metrics import pose_errors, summarize
from topoloc.procedural import MIN_CLEARANCE_M, build_world, clearance_m, pose_flight, render_flights
from topoloc.procedural.writer import OtherPosesError

__all__ = ["StudyConfig", "study_config", "study_runs", "prepare_data", "corridor_poses", "run_study", "PRESETS", "OPS",
           "STUDY_DOMAINS"]

log = logging.getLogger(__name__)

#: Label of the model's errors on (up to TRAIN_FIT_IMAGES evenly spaced of) its own training images.
TRAIN_FIT = "training fit"
TRAIN_FIT_IMAGES = 256


# ------------------------------------------------------------------------------ data
def prepare_data(cfg: StudyConfig, progress: bool = False) -> None:
    """Renders what ``cfg.root`` lacks: the test flights (synthetic, real and real_alt images) and
    the training flight (a preset by name, or a corridor around ``cfg.corridor_of``)."""
    root = Path(cfg.root)
    check_output(root, "root", folder=True)  # as the study's root, not as the renderer's out_dir
    if not cfg.render:
        return
    common: dict[str, Any] = dict(size=cfg.render_size, seed=cfg.render_seed, device=cfg.device, progress=progress)
    # the training flight is built first: a wrong name is said before the test flights are rendered
    train: Any = (cfg.train_flight, cfg.train_images) if cfg.train_flight in list_presets() else _corridor_flight(cfg)
    try:
        render_flights(root, [(f, cfg.test_images) for f in cfg.test_flights], domains=STUDY_DOMAINS, **common)
    except OtherPosesError as err:  # the renderer's advice is about folders; the study user chose counts
        raise ValueError(f"{root}: holds the test flights of a study with other image counts ({err}); give this "
                         "study another --root, or the same counts as that one") from err
    if train is not None:
        depth = cfg.relight > 0  # relighting needs the training renders' normals
        render_flights(root, [train], depth=depth, **common)  # resumes a partial render


def _corridor_flight(cfg: StudyConfig):
    """The corridor flight to render as ``cfg.train_flight``, or None when its folder holds other poses (taken
    as it is)."""
    rows = corridor_poses(cfg)
    existing = Path(cfg.root) / cfg.train_flight / f"{cfg.train_flight}_poses.npy"
    held = np.load(existing) if existing.is_file() else None
    if held is not None and not np.array_equal(held, rows):
        if cfg.train_flight == CORRIDOR:  # the study's own corridor, of another --train-images or seed
            raise ValueError(f"{cfg.root}: holds the training corridor of a study with other image counts or seed "
                             f"({len(held)} views in {existing}, {len(rows)} asked); give this study "
                             "another --root, or the same counts as that one")
        log.warning("study: %s holds other poses than the corridor of %d views; the flight is taken as it is (%d "
                    "views)", existing, len(rows), len(held))
        return None
    try:
        return pose_flight(cfg.train_flight, rows)
    except ValueError as err:  # "name: expected a name starting with 'comballaz-' ...": the name is train_flight
        message = renamed(str(err), {"name": "StudyConfig: `train_flight`"})
        if message == str(err):
            raise
        raise ValueError(message) from err


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


def _evaluate_run(cfg: StudyConfig, run: RunConfig, seed: int, checkpoint: Path, group_s: float, frame, train_cache,
                  tests) -> dict[str, Any]:
    tic = time.perf_counter()
    model, normalizer, _ = load_model(checkpoint, device=cfg.device)
    history = load_checkpoint(checkpoint)["history"]
    # the run's own epochs, a killed run's first part included; the group's wall time where they say none
    epoch_s = [row.get("time_s") for row in history]
    train_s = float(sum(epoch_s)) if epoch_s and all(isinstance(t, (int, float)) for t in epoch_s) else group_s
    caches = [c for d in STUDY_DOMAINS for c in tests[d]]
    ev = evaluate(model, normalizer, caches, frame=frame, train_set=train_cache, retrieval=False, baselines=False,
                  train_fit=TRAIN_FIT_IMAGES, device=cfg.device)
    domains = {d: ev.model.summary(domain=d).to_dict() for d in STUDY_DOMAINS}
    domains[TRAIN_FIT] = cast(PoseEvaluation, ev.training_fit).summary().to_dict()  # train_fit was asked for
    return {
        "config": run.name, "seed": seed, "description": run.description, "domains": domains,
        "train_loss": history[-1]["loss"] if history else None,
        "train_s": train_s, "total_s": train_s + time.perf_counter() - tic,
        # where and when: the table's header summarises its runs', not the last invocation's
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": _device_name(cfg.device),
        "side_by_side": cfg.side_by_side, "study": cfg.run_key(),
    }


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"CUDA {torch.cuda.get_device_name()}"
    return (f"CPU {cpu_name()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads")


def _check_folder(cfg: StudyConfig, claim: bool = False) -> None:
    """Refuses an ``out_dir`` that is a file or holds runs of other settings; with ``claim``, ties a
    new ``out_dir`` to these settings (study.json), which is done only once the data is known good."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {cfg.out_dir}: is a file; expected a folder (or a path to create)")
    path = out / "study.json"
    key = cfg.run_key()
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"out_dir {cfg.out_dir}: {str(path)!r} is not the JSON a study writes ({err}); "
                             f"{_FRESH}") from err
        if not isinstance(old, dict):
            raise ValueError(f"out_dir {cfg.out_dir}: {str(path)!r} is not the JSON a study writes (a "
                             f"{type(old).__name__}, expected an object); {_FRESH}")
        diff = sorted(k for k in key if old.get(k) != key[k])
        if diff:
            raise ValueError(f"out_dir {cfg.out_dir}: holds study runs with other {diff} "
                             f"({[old.get(k) for k in diff]} there, {[key[k] for k in diff]} asked); "
                             "use another out_dir")
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"out_dir {cfg.out_dir}: holds files but no study.json (not a study's folder: its "
                         "results.md would be replaced); use an empty or new folder")
    elif claim:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(key, indent=2))  # a half-written study.json would refuse the re-run


#: What an out_dir holding runs of other settings needs: only removing the whole folder ties it to a study again.
_FRESH = "remove the folder (its runs may be of other settings), or use another out_dir"
_RESULT_KEYS = ("config", "seed", "domains", "train_s", "total_s")


def _finished_run(cfg: StudyConfig, run: RunConfig, seed: int, path: Path) -> dict[str, Any]:
    """A finished run's ``result.json``, refused by name unless it is this run's, of this study's settings."""
    try:
        res = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"out_dir {cfg.out_dir}: {str(path)!r} is not the JSON a study run writes ({err}); remove "
                         "it to train the run again") from err
    missing = [k for k in _RESULT_KEYS if k not in res] if isinstance(res, dict) else list(_RESULT_KEYS)
    if missing or (res["config"], res["seed"]) != (run.name, seed):
        said = f"lacks {missing}" if missing else f"is the result of {res['config']} seed {res['seed']}"
        raise ValueError(f"out_dir {cfg.out_dir}: {str(path)!r} {said}, not a result of {run.name} seed {seed}; "
                         "remove it to train the run again")
    if "study" in res and res["study"] != cfg.run_key():  # written since 2026-12-07 with the settings
        diff = sorted(k for k in cfg.run_key() if res["study"].get(k) != cfg.run_key()[k])
        raise ValueError(f"out_dir {cfg.out_dir}: {str(path)!r} was trained with other {diff}; {_FRESH}")
    return res


def _runs_line(results: list[dict[str, Any]]) -> str:
    """When and where the table's runs were finished, from their result.json files."""
    dates = sorted(r["finished"] for r in results if "finished" in r)
    devices = sorted({r["device"] for r in results if "device" in r})
    side = sorted({r["side_by_side"] for r in results if "side_by_side" in r})
    if not dates:
        return "runs finished: date and device not recorded (runs written before 2026-12-07)"
    unrecorded = len(results) - len(dates)
    return (f"runs finished {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "")
            + f" on {'; '.join(devices)}"
            + (f"; {' or '.join(map(str, side))} runs trained side by side, each with its share of the threads"
               if side != [1] else "")
            + (f" ({unrecorded} older runs: not recorded)" if unrecorded else ""))


def run_study(cfg: StudyConfig, results_path: str | PathLike | None = "docs/RESULTS.md", command: str = "",
              progress: bool = True) -> dict[str, Any]:
    """Runs (or continues) the study and writes its table.

    Args:
        cfg: the study's settings (`study_config`).
        results_path: markdown file receiving the table, in the section ``study-<preset>`` (left as it is
            when every run had finished before: its header would name an invocation that trained nothing);
            None writes only ``<out_dir>/results.md``, which is always written.
        command: the command line that started the study, quoted in the table.
        progress: log a line per run and show render progress.

    Returns:
        ``{"results": [per-run dicts], "brackets": {...}, "markdown": str, "ran": [(config, seed)
        trained now], "skipped": [(config, seed) already finished]}``.
    """
    lock = FolderLock(cfg.out_dir, "out_dir")  # taken where the folder is claimed, held to the end
    try:
        return _run_study(cfg, results_path, command, progress, lock)
    finally:
        lock.release()


def _run_study(cfg: StudyConfig, results_path: str | PathLike | None, command: str, progress: bool,
               lock: FolderLock) -> dict[str, Any]:
    """`run_study`, which takes ``lock`` once the data is known good: two studies in one folder would resume
    each other's half-written runs and interleave their epochs."""
    if results_path is not None:  # checked before the hours of training that lead to it
        why = "a folder, expected a markdown file" if Path(results_path).is_dir() else unwritable(results_path)
        if why:
            raise ValueError(f"results_path {str(results_path)!r}: {why}")
    started = datetime.now(timezone.utc)
    tic = time.perf_counter()
    load_start = os.getloadavg()
    _check_folder(cfg)
    prepare_data(cfg, progress=progress)
    frame, train_cache, normals, tests = _datasets(cfg)
    lock.acquire()  # makes out_dir: only now, as the claim
    _check_folder(cfg, claim=True)  # only now: a failed start (a wrong test flight, say) leaves out_dir free
    brackets = _brackets(train_cache.poses(), tests)
    runs = study_runs(cfg)
    by_run: dict[tuple[str, int], dict[str, Any]] = {}  # (config, seed) -> its result.json
    ran, skipped, pending = [], [], []
    for run in runs:
        for seed in cfg.seeds:
            path = _run_dir(cfg, run, seed) / "result.json"
            if path.is_file():
                by_run[run.name, seed] = _finished_run(cfg, run, seed, path)
                skipped.append((run.name, seed))
            else:
                pending.append((run, seed))
    for start in range(0, len(pending), cfg.side_by_side):
        group = pending[start:start + cfg.side_by_side]
        t_group = time.perf_counter()
        checkpoints = _train_group(cfg, group, train_cache, normals)
        group_s = time.perf_counter() - t_group
        for run, seed in group:
            res = _evaluate_run(cfg, run, seed, checkpoints[run.name, seed], group_s, frame, train_cache, tests)
            path = _run_dir(cfg, run, seed) / "result.json"
            write_text_atomically(path, json.dumps(res, indent=2))
            if not cfg.keep_checkpoints:
                (path.parent / "last.pt").unlink(missing_ok=True)
            by_run[run.name, seed] = res
            ran.append((run.name, seed))
            if progress:
                log.info("study %s seed %d: %s (%.0f s)", run.name, seed,
                         {d: round(s["median_m"], 1) for d, s in res["domains"].items()}, res["total_s"])
    results = [by_run[run.name, seed] for run in runs for seed in cfg.seeds]  # the table's order
    wall = time.perf_counter() - tic
    load_end = os.getloadavg()
    n_test = {d: sum(len(c) for c in tests[d]) for d in STUDY_DOMAINS}
    meta = {
        "title": f"Sim-to-real study, {cfg.preset} preset",
        "lines": [
            _runs_line(results),
            f"command: `{command}`" if command else "command: (called from Python)",
            f"last invocation: {started.strftime('%Y-%m-%d %H:%M UTC')} on {_device_name(cfg.device)}, "
            f"{wall / 60:.1f} min of wall time ({len(ran)} runs trained, {len(skipped)} finished before); sum over "
            f"all runs of their own train + evaluate times: {sum(r['total_s'] for r in results) / 60:.1f} min"
            + (" (runs side by side overlap: more than their wall time)" if cfg.side_by_side > 1 else ""),
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
    write_text_atomically(Path(cfg.out_dir) / "results.md", markdown)
    if results_path is not None and ran:
        write_section(results_path, f"study-{cfg.preset}", markdown)
    elif results_path is not None:  # its header would name this invocation, which trained nothing
        log.info("study: every run had finished before; %s left as it is (the table is in %s)", results_path,
                 Path(cfg.out_dir) / "results.md")
    return {"results": results, "brackets": brackets, "markdown": markdown, "ran": ran, "skipped": skipped}
