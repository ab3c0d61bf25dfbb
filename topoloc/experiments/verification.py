"""Render-and-compare verification on a finished demo: does choosing among the regressor's pose and
the retrieved training poses, by rendering each and comparing it with the photo, localise better?

`verify_demo` loads a demo folder (`topoloc demo` / `scripts/demo.sh`), takes one of its runs, and
for each test flight and domain reports the run's median errors as trained and with AdaBN, the
same after verification (`topoloc.evaluation.verify_poses` over the prediction and the ``k``
training images nearest in the model's pooled features, rendered by
`topoloc.procedural.ViewRenderer`), and the brackets: the constant pose, the retrieval baseline,
the coverage ceiling and the best hypothesis (the verification's own ceiling, chosen knowing the
truth). `recipes/verify_demo.py` is the command.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from topoloc._device import resolve_device
from topoloc.data.cache import ImageCache, as_cache
from topoloc.data.pose_coverage import DEFAULT_M_PER_DEG
from topoloc.engine.adapt import adapt_batchnorm
from topoloc.engine.checkpoint import load_model
from topoloc.engine.evaluate import _rows
from topoloc.engine.predict import predict
from topoloc.evaluation.baselines import constant_pose, coverage_ceiling
from topoloc.evaluation.retrieval import extract_features, retrieve_poses
from topoloc.evaluation.verify import average_hypotheses, candidate_poses, check_averaging, verify_poses
from topoloc.experiments.demo import _datasets
from topoloc.experiments.demo_settings import PLANNED_FLIGHT, DemoConfig, demo_config
from topoloc.metrics import pose_errors
from topoloc.models.contract import input_size
from topoloc.procedural.views import ViewRenderer

__all__ = ["demo_settings", "verify_demo", "verification_table"]

#: The demo's run folders by the name given on the command line.
RUN_FOLDERS = {"augmented": "augmented", "no_augmentation": "no_augmentation"}


def _subset(cache: ImageCache, flight: str, domain: str) -> ImageCache | None:
    rows = [i for i, (f, d) in enumerate(zip(cache.flights, cache.domains)) if f == flight and d == domain]
    return _rows(cache, rows) if rows else None


def _medians(pred, gt) -> tuple[float, float]:
    t, r = pose_errors(np.asarray(pred)[:, :3], np.asarray(gt)[:, :3])
    return float(np.median(t)), float(np.median(r))


def _best_hypothesis(hyp: np.ndarray, gt: np.ndarray, m_per_deg: float = DEFAULT_M_PER_DEG) -> np.ndarray:
    """The hypothesis nearest the truth (position and angle weighted jointly, as the coverage ceiling)."""
    n, k = hyp.shape[:2]
    t, r = pose_errors(hyp[:, :, :3].reshape(-1, 3, 4), np.repeat(np.asarray(gt)[:, None, :3], k, 1).reshape(-1, 3, 4))
    joint = (np.asarray(t) + m_per_deg * np.asarray(r)).reshape(n, k)
    return hyp[np.arange(n), joint.argmin(1)]


def demo_settings(demo_dir: str | PathLike, smoke: bool | None = None, seed: int | None = None,
                  device: str | None = None) -> DemoConfig:
    """The `DemoConfig` a demo folder was made with: the one its ``demo.json`` records, run on ``device``
    (``None``: the demo's own). Without a ``demo.json`` (a demo stopped before its report), the preset of
    ``smoke``, ``seed`` and ``device`` as `demo_config` gives it (``None``: no smoke, seed 0, the CPU).

    Raises:
        ValueError: ``smoke`` or ``seed`` given and not the demo's (its world, test images and their size
            would not be the ones the run was trained and tested on), or a ``demo.json`` that cannot be read.
    """
    record = Path(demo_dir) / "demo.json"
    if not record.is_file():
        return demo_config(bool(smoke), device=device or "cpu", seed=0 if seed is None else seed)
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))["config"]
        cfg = DemoConfig(**{**saved, **{key: tuple(saved[key]) for key in _TUPLES if key in saved}})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{record}: not a demo record that can be read ({type(err).__name__}: {err})") from err
    if smoke is not None and smoke != (cfg.preset == "smoke"):
        raise ValueError(f"smoke: the demo in {demo_dir} ran the {cfg.preset!r} preset ({record}); leave out "
                         f"--smoke, which the record gives")
    if seed is not None and seed != cfg.seed:
        raise ValueError(f"seed: the demo in {demo_dir} ran with seed {cfg.seed} ({record}), not {seed}; leave out "
                         f"--seed, which the record gives")
    return replace(cfg, device=resolve_device(device or cfg.device).type)  # a cuda demo read without CUDA: said


#: DemoConfig fields that JSON gives back as lists.
_TUPLES = ("render_size", "image_size", "corridor_sigma_m", "corridor_sigma_deg", "test_flights")


def verify_demo(demo_dir: str | PathLike, smoke: bool | None = None, seed: int | None = None,
                config: DemoConfig | None = None, run: str = "augmented", k: int = 32,
                flights: tuple[str, ...] = (PLANNED_FLIGHT,), device: str | None = None, top: int | None = None,
                temperature: float = 0.05, log=print) -> list[dict[str, Any]]:
    """Median errors of a demo run with and without render-and-compare verification, with brackets.

    Args:
        demo_dir: a finished demo's folder (holds ``data/``, ``runs/<run>/last.pt`` and ``demo.json``).
        smoke, seed: the demo's ``--smoke`` and seed, only for a demo without ``demo.json``; with one they
            are read from it, and refused where they differ (see `demo_settings`).
        config: the demo's `DemoConfig` itself, in place of its record (a demo run with settings of one's
            own).
        run: ``"augmented"`` or ``"no_augmentation"``.
        k: retrieved hypotheses per photo, beside the prediction.
        flights: test flights to report (the demo's own).
        device: where to run the model and the renderer (``None``: the demo's own device).
        top, temperature: the verified rows' second reading, the weighted mean of the ``top`` best-scoring
            hypotheses (`average_hypotheses`); ``top=1`` leaves it out; None: 5, or all ``k + 1`` when fewer. The
            defaults (5, 0.05) were chosen on the cpu demo's validation split (renders), not on its test flights.
        log: where progress lines go.

    Returns:
        rows ``{"flight", "domain", "method", "t_m", "r_deg"}`` (medians), plus ``"seconds"`` for the
        verified rows.
    """
    demo = Path(demo_dir)
    if run not in RUN_FOLDERS:
        raise ValueError(f"run: expected one of {sorted(RUN_FOLDERS)}, got {run!r}")
    checkpoint = demo / "runs" / RUN_FOLDERS[run] / "last.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no checkpoint of the {run!r} run; run the demo first "
                                f"(bash scripts/demo.sh) or pass the demo's folder as --demo")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive number of retrieved hypotheses per photo, got {k!r}")
    if top is None:  # not asked for: as many as there are, up to the 5 chosen on the validation split
        top = min(5, k + 1)
    check_averaging(top, temperature, k + 1, f"the k + 1 = {k + 1} hypotheses per photo")
    cfg = demo_settings(demo, smoke, seed, device) if config is None else config
    device = cfg.device
    if not flights:
        raise ValueError(f"flights: expected at least one test flight of the demo ({', '.join(cfg.test_flights)})")
    missing = [f for f in flights if f not in cfg.test_flights]
    if missing:
        raise ValueError(f"flights: {missing} are not test flights of the demo; expected some of {cfg.test_flights}")
    model, normalizer, _ = load_model(checkpoint, device=device)
    trained_at = input_size(model)
    if trained_at is not None and trained_at != tuple(cfg.image_size):
        raise ValueError(f"{checkpoint} was trained at {trained_at[0]}x{trained_at[1]} px (H x W), but the demo "
                         f"settings used here give {cfg.image_size[0]}x{cfg.image_size[1]} px (the "
                         f"{cfg.preset!r} preset): not this demo's settings")
    train_set, _, test_sets = _datasets(cfg, demo / "data")
    train = as_cache(train_set, cfg.image_size)
    train_c2w = np.asarray(train.c2w, dtype=np.float64)
    train_features = extract_features(model, train.images, device=device)
    height, width = cfg.image_size
    views = ViewRenderer(width, height, seed=cfg.seed, device=device)
    constant = constant_pose(train_c2w)
    rows: list[dict[str, Any]] = []
    test_caches = [as_cache(ds, cfg.image_size) for ds in test_sets]
    for flight in flights:
        for domain in ("synthetic", "real"):
            cache = next((c for c in (_subset(tc, flight, domain) for tc in test_caches) if c is not None), None)
            if cache is None:
                continue
            gt = np.asarray(cache.c2w, dtype=np.float64)

            def add(method: str, pred, seconds: float | None = None) -> None:
                t, r = _medians(pred, gt)
                rows.append({"flight": flight, "domain": domain, "method": method, "t_m": t, "r_deg": r,
                             **({} if seconds is None else {"seconds": seconds})})
                log(f"{flight} {domain:9s} {method:56s} {t:7.1f} m {r:6.1f} deg")

            add("constant pose", np.repeat(constant[None], len(gt), 0))
            add("coverage ceiling", coverage_ceiling(train_c2w, gt)[0])
            for label, net in (("model", model), ("model + AdaBN", adapt_batchnorm(model, cache, device=device))):
                pred = np.asarray(predict(net, cache, normalizer, device=device), dtype=np.float64)
                add(label, pred)
                query_features = extract_features(net, cache.images, device=device)
                if label == "model":
                    add("retrieval (trained model)", retrieve_poses(query_features, train_features, train_c2w)[0])
                hyp = candidate_poses(pred, query_features, train_features, train_c2w, k)
                add(f"{label}: best of {k + 1} hypotheses", _best_hypothesis(hyp, gt))
                start = time.perf_counter()
                chosen = verify_poses(cache.images, hyp, views, model=net, view_model=model)
                add(f"{label} + verification", chosen.c2w, time.perf_counter() - start)
                if top > 1:
                    add(f"{label} + verification, mean of the best {top}",
                        average_hypotheses(hyp, chosen.scores, top=top, temperature=temperature))
    return rows


def verification_table(rows: list[dict[str, Any]]) -> str:
    """The rows of `verify_demo` as a markdown table, one line per method, one column pair per
    flight and domain."""
    keys = list(dict.fromkeys((r["flight"], r["domain"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["flight"], r["domain"]): r for r in rows}
    head = "| method | " + " | ".join(f"{f} {d}" for f, d in keys) + " |"
    lines = [head, "|" + " --- |" * (len(keys) + 1)]
    for m in methods:
        vals = []
        for f, d in keys:
            r = cell.get((m, f, d))
            vals.append("" if r is None else f"{r['t_m']:.1f} m / {r['r_deg']:.1f} deg")
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines)
