"""The evaluation report: error CDF plots, a top-down map and a markdown ``report.md``.

Plots are drawn on `matplotlib.figure.Figure` objects (no pyplot, no display, the global backend left
alone) and saved as PNG. Everything is written from
`topoloc.engine.evaluate.EvaluationResult` objects, one per trained run.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.figure import Figure  # no pyplot: no global backend, no open figures
import numpy as np

from topoloc.engine.evaluate import EvaluationResult, PoseEvaluation

__all__ = ["plot_error_cdf", "plot_topdown_map", "comparison_table", "write_report"]

#: Threshold columns shown in the report's tables (labels of `topoloc.metrics.summarize`).
REPORT_THRESHOLDS = ("5m_5deg", "10m_10deg", "30m_10deg")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def plot_error_cdf(
    evaluations: Sequence[PoseEvaluation],
    path: str | PathLike,
    domain: str | None = None,
    title: str | None = None,
) -> Path:
    """Cumulative distribution of translation (m, log axis) and rotation (deg) errors, one line per
    method.

    Args:
        evaluations: the methods to compare (their ``method`` labels the lines).
        path: the PNG to write.
        domain: only the images of this domain (``"synthetic"``, ``"real"``); all when None.
        title: figure title.

    Returns:
        The path written.
    """
    if not evaluations:
        raise ValueError("evaluations: expected at least one PoseEvaluation to plot, got none")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 4))
    ax_t, ax_r = fig.subplots(1, 2)
    for ev in evaluations:
        m = ev.mask(domain=domain)
        if not m.any():
            continue
        for ax, err in ((ax_t, ev.translation_m[m]), (ax_r, ev.rotation_deg[m])):
            x = np.sort(err)
            y = np.arange(1, len(x) + 1) / len(x)
            ax.step(np.maximum(x, 1e-3), y, where="post", label=f"{ev.method} (median {np.median(err):.1f})")
    ax_t.set_xscale("log")
    ax_t.set_xlabel("translation error (m)")
    ax_r.set_xlabel("rotation error (deg)")
    for ax in (ax_t, ax_r):
        ax.set_ylabel("share of images")
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or f"Error CDF ({domain or 'all'} test images)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_topdown_map(
    evaluation: PoseEvaluation,
    path: str | PathLike,
    train_c2w: np.ndarray | None = None,
    domain: str | None = None,
    title: str | None = None,
) -> Path:
    """Top-down map (east / north, metres in the local ENU frame) of true vs predicted positions,
    a line from each true position to its prediction, training positions in light grey.

    Returns:
        The path written.
    """
    m = evaluation.mask(domain=domain)
    if not m.any():
        raise ValueError(f"domain: no image of domain {domain!r} in the evaluation "
                         f"(domains: {sorted(set(evaluation.domains))})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    true_en = evaluation.gt_c2w[m, :2, 3]
    pred_en = evaluation.pred_c2w[m, :2, 3]
    fig = Figure(figsize=(7, 6.5))
    ax = fig.subplots()
    if train_c2w is not None and len(train_c2w):
        tr = np.asarray(train_c2w)[:, :2, 3]
        ax.scatter(tr[:, 0], tr[:, 1], s=4, c="0.8", label="training poses", zorder=1)
    segments = np.stack([true_en, pred_en], axis=1)
    from matplotlib.collections import LineCollection  # noqa: PLC0415

    ax.add_collection(LineCollection(segments, colors="tab:red", linewidths=0.6, alpha=0.6, zorder=2))
    ax.scatter(true_en[:, 0], true_en[:, 1], s=10, c="tab:blue", label="true", zorder=3)
    ax.scatter(pred_en[:, 0], pred_en[:, 1], s=10, c="tab:orange", marker="x", label="predicted", zorder=4)
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{evaluation.method}: {domain or 'all'} test images "
                          f"(median {np.median(evaluation.translation_m[m]):.1f} m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def comparison_table(evaluations: Sequence[PoseEvaluation], by: str = "domain") -> str:
    """A markdown table comparing methods per domain (``by="domain"``) or per flight (``"flight"``).

    Columns: images, median / mean / p90 translation (m), median rotation (deg), and the share
    within the (m, deg) thresholds of `REPORT_THRESHOLDS`.
    """
    if by not in ("domain", "flight"):
        raise ValueError(f"by: expected 'domain' or 'flight', got {by!r}")
    head = ("| method | " + by + " | images | median m | mean m | p90 m | median deg | "
            + " | ".join(t.replace("_", " / ") for t in REPORT_THRESHOLDS) + " |")
    lines = [head, "|" + " --- |" * 2 + " ---: |" * (5 + len(REPORT_THRESHOLDS))]
    for ev in evaluations:
        keys = (sorted(set(ev.domains)) if by == "domain" else ev.groups())
        for key in keys:
            s = ev.summary(domain=key) if by == "domain" else ev.summary(domain=key[0], flight=key[1])
            label = key if by == "domain" else f"{key[1]} ({key[0]})"
            within = " | ".join(f"{100 * s.within.get(t, float('nan')):.0f}%" for t in REPORT_THRESHOLDS)
            lines.append(f"| {ev.method} | {label} | {s.count} | {s.median_m:.1f} | {s.mean_m:.1f} | "
                         f"{s.p90_m:.1f} | {s.median_deg:.1f} | {within} |")
    return "\n".join(lines)


def _coverage_table(result: EvaluationResult) -> str:
    cov = result.coverage_summary()
    if not cov:
        return "_No training poses were given: coverage not computed._"
    lines = ["| test set | images | median m | p90 m | max m | median deg | p90 deg |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, c in cov.items():
        lines.append(f"| {key} | {c['count']} | {c['median_m']:.1f} | {c['p90_m']:.1f} | {c['max_m']:.1f} | "
                     f"{c['median_deg']:.1f} | {c['p90_deg']:.1f} |")
    return "\n".join(lines)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def write_report(
    out_dir: str | PathLike,
    runs: Mapping[str, EvaluationResult],
    title: str = "topoloc evaluation",
    intro: str = "",
    retrieval_run: str | None = None,
    extra_sections: Mapping[str, str] | None = None,
) -> Path:
    """Writes ``report.md`` with tables, error CDF plots and top-down maps, plus every run's
    predictions CSV and summary JSON.

    Args:
        out_dir: the report folder; files go to ``out_dir`` (report.md, summary.json),
            ``out_dir/plots`` and ``out_dir/predictions``.
        runs: run name -> its `EvaluationResult` (e.g. ``{"augmented": ..., "no augmentation": ...}``);
            the first run is the headline.
        title: the report's title.
        intro: markdown paragraph(s) under the title (what was trained, on what, how long).
        retrieval_run: the run whose retrieval baseline is shown (default: the first run that has one).
        extra_sections: heading -> markdown, appended (e.g. the saliency section).

    Returns:
        The path of ``report.md``.
    """
    if not runs:
        raise ValueError("runs: expected at least one EvaluationResult, got none")
    for name, r in runs.items():
        if not isinstance(r, EvaluationResult):
            raise TypeError(f"runs[{name!r}]: expected an EvaluationResult, got {type(r).__name__}")
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    if retrieval_run is None:
        retrieval_run = next((k for k, r in runs.items() if r.retrieval is not None), None)
    elif retrieval_run not in runs:
        raise ValueError(f"retrieval_run: {retrieval_run!r} is not one of the runs {list(runs)}")

    # Methods compared: every run's model, then the retrieval baseline.
    methods: list[PoseEvaluation] = []
    for name, r in runs.items():
        ev = r.model
        methods.append(PoseEvaluation(name, ev.names, ev.flights, ev.domains, ev.pred_c2w, ev.gt_c2w, ev.frame,
                                      ev.nearest_train_m, ev.nearest_train_deg))
    if retrieval_run is not None:
        rv = runs[retrieval_run].retrieval
        methods.append(PoseEvaluation("retrieval baseline", rv.names, rv.flights, rv.domains, rv.pred_c2w,
                                      rv.gt_c2w, rv.frame, rv.nearest_train_m, rv.nearest_train_deg))

    files = []
    for name, r in runs.items():
        written = r.write(out / "predictions", prefix=f"{_safe(name)}_")
        files += list(written.values())
    headline = next(iter(runs.values()))
    domains = sorted(set(headline.model.domains))
    cdfs = [plot_error_cdf(methods, out / "plots" / f"cdf_{_safe(d)}.png", domain=d) for d in domains]
    maps = []
    for name, r in runs.items():
        for d in domains:
            if r.model.mask(domain=d).any():
                maps.append((name, d, plot_topdown_map(
                    r.model, out / "plots" / f"map_{_safe(name)}_{_safe(d)}.png", r.train_c2w, domain=d,
                    title=f"{name}: {d} test images")))
    summary = {name: r.to_dict() for name, r in runs.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

    md = [f"# {title}", ""]
    if intro:
        md += [intro.strip(), ""]
    md += ["## Results per domain", "",
           "Translation errors are Euclidean distances in metres, rotation errors geodesic angles in degrees; "
           "the threshold columns are the share of images within both (metres, degrees) limits "
           "(CrossLoc's thresholds). The retrieval baseline gives each test image the pose of the "
           "training image with the most similar backbone feature (cosine similarity)"
           + (f", with the backbone of the `{retrieval_run}` run." if retrieval_run else "."), "",
           comparison_table(methods, by="domain"), "",
           "## Results per flight", "", comparison_table(methods, by="flight"), "",
           "## Coverage of the test poses", "",
           "Distance from each test pose to the nearest training position (m) and the rotation angle to "
           "that training pose (deg). An absolute pose regressor mostly interpolates between training "
           "poses (Sattler et al., CVPR 2019): test poses far from every training pose are hard.", "",
           _coverage_table(headline), "",
           "## Error distributions", ""]
    md += [f"![error CDF, {d}]({_rel(p, out)})" for d, p in zip(domains, cdfs)] + [""]
    md += ["## Top-down maps", "",
           "East / north in metres about the scene origin: true positions (blue), predictions (orange), "
           "a red line between them, training poses in grey.", ""]
    md += [f"![{name}, {d}]({_rel(p, out)})" for name, d, p in maps] + [""]
    for heading, body in (extra_sections or {}).items():
        md += [f"## {heading}", "", body.strip(), ""]
    md += ["## Files", ""] + [f"- `{_rel(p, out)}`" for p in [out / "summary.json", *files]] + [""]
    report = out / "report.md"
    report.write_text("\n".join(md))
    return report
