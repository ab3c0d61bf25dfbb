"""The demo report's own text: its introduction, the per-flight table, the aims and the land-cover section.

`topoloc.experiments.demo.run_demo` puts these above the sections that `topoloc.reporting.report.write_report`
writes for every run and bracket; `check_aims` says whether the CPU preset's aims are met on the planned
flight (`_aims` gives the same checks as figures, for ``demo.json``). Every name here is also importable
from `topoloc.experiments.demo`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, cast

import torch

from topoloc.data.semantics import SEMANTIC_CLASSES, SKY
from topoloc.data.topo import TopoFlight
from topoloc.engine.adapt import ADABN_LABEL
from topoloc.engine.train import training_autocast
from topoloc.experiments.demo_settings import (PLAIN_RUN, PLANNED_FLIGHT, RUNS, TRAIN_FLIGHT, DemoConfig,
                                               _side_by_side_threads)
from topoloc.geodesy import LocalFrame
from topoloc.reporting.landcover import landcover_section

__all__ = ["check_aims"]


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
    # the brackets and retrievals evaluate the model's test images: they have medians wherever the model has
    Pair = tuple[float, float]
    c_syn = cast(Pair, _medians(const, "synthetic", flight))
    ceil_syn = cast(Pair, _medians(ceiling, "synthetic", flight))
    best_retrieval = min(cast(Pair, _medians(r, "synthetic", flight))[0] for r in retrievals) if retrievals \
        else float("inf")
    p_syn, p_real, a_syn, a_real = (cast(Pair, m) for m in (med["plain"]["synthetic"], med["plain"]["real"],
                                                           med["aug"]["synthetic"], med["aug"]["real"]))  # not None
    checks = {
        "a1 unaugmented synthetic <= constant / 6 (m)": (p_syn[0], c_syn[0] / 6, p_syn[0] <= c_syn[0] / 6),
        "a2 unaugmented synthetic < best retrieval (m)": (p_syn[0], best_retrieval, p_syn[0] < best_retrieval),
        "a3 unaugmented synthetic rotation <= 3x coverage ceiling (deg)": (p_syn[1], 3 * ceil_syn[1],
                                                                           p_syn[1] <= 3 * ceil_syn[1]),
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
                      "`recipes/in_domain_ceiling.yaml` of the source repository measures (Mini-Comballaz only; "
                      "its docs/RESULTS.md).")
    return "\n\n".join(blocks)


def _per_flight(evaluations: dict[str, Any]) -> str:
    """Per test flight and domain: each run, the constant pose, the best retrieval and the coverage
    ceiling (medians), and whether the flight lies inside the training views' coverage."""
    first = next(iter(evaluations.values()))
    const, ceiling = first.constant, first.ceiling
    lines = ["**Per test flight** (median m / deg; a flight is out of distribution when the nearest "
             "training view is, at the median, more than 20 m or 10 deg away):", "",
             "| flight | domain | " + " | ".join(evaluations) + " | constant pose | best retrieval "
             "| coverage ceiling | coverage |",
             "|---|---|" + "---|" * (len(evaluations) + 4)]
    flights = list(dict.fromkeys(first.model.flights))
    for flight in flights:
        for domain in ("synthetic", "real"):
            if not first.model.mask(domain=domain, flight=flight).any():
                continue
            cells = [_fmt(_medians(ev.model, domain, flight)) for ev in evaluations.values()]
            retr = [b for ev in evaluations.values() for b in ev.retrievals.values()]
            best = min((m for b in retr if (m := _medians(b, domain, flight)) is not None), default=None,
                       key=lambda m: m[0])
            ceil = _medians(ceiling, domain, flight) if ceiling is not None else None
            ood = ceil is not None and (ceil[0] > 20.0 or ceil[1] > 10.0)
            cov = "out of distribution" if ood else "covered"
            lines.append(f"| {flight} | {domain} | " + " | ".join(cells)
                         + f" | {_fmt(_medians(const, domain, flight) if const else None)} | {_fmt(best)} "
                           f"| {_fmt(ceil)} | {cov} |")
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


def _runs_line(cfg: DemoConfig) -> str:
    """How the two runs differ, for the report's introduction."""
    epochs = cfg.finetune_epochs or cfg.epochs
    augmentation = (
        (f"`augment.SimToReal` on {cfg.augment_fraction:.0%} of each batch, its strength ramped linearly from "
         f"{cfg.augment_strength / epochs:.2g} in the first epoch to {cfg.augment_strength:g} in the last"
         if cfg.augment_ramp else
         f"`augment.SimToReal(strength={cfg.augment_strength:g})` on {cfg.augment_fraction:.0%} of each batch")
        + (f" (each of those images first relit by a random sun on its depth map's normals with probability "
           f"{cfg.relight:g}, `augment.RandomSunRelight`)" if cfg.relight > 0 else ""))
    if cfg.finetune_epochs:
        return (f"; two runs with the same settings and seed: one without augmentation, and the augmented one, "
                f"which starts from that run's final weights (`TrainConfig.init_from`) and trains "
                f"{cfg.finetune_epochs} more epochs (the learning rate from {cfg.lr:g} again) with {augmentation}")
    return f"; two runs with identical settings and seed, with {augmentation}, and without augmentation"


def _of_poses(test_set) -> str:
    """``"447"``, or ``"6 of 447 poses, evenly spaced"`` for a test set of some of its flight's poses."""
    from topoloc.data.preset import list_presets, load_preset  # noqa: PLC0415 - a leaf, on use

    total = len(load_preset(test_set.flight)) if test_set.flight in list_presets() else len(test_set)
    return f"{len(test_set)}" if len(test_set) >= total else f"{len(test_set)} of {total} poses, evenly spaced"


def _intro(cfg: DemoConfig, train_set, val_set, test_sets, timings: dict[str, float], total: float, cpu: float,
           reused: Collection[str] = ()) -> str:
    tests = ", ".join(f"{ds.flight} {ds.domain} ({_of_poses(ds)})" for ds in test_sets)
    model_desc = f"`{cfg.model}`" + (f" ({', '.join(f'{k}={v}' for k, v in cfg.model_kwargs.items())})"
                                     if cfg.model_kwargs else "")
    times = ", ".join(f"{k} reused from an earlier run" if k in reused else f"{k} {v:.0f} s"
                      for k, v in timings.items())
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
