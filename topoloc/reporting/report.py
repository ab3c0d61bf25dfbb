"""The evaluation report: the brackets, error CDF plots, a top-down map and a markdown ``report.md``.

Every model figure stands beside its brackets (`topoloc.evaluation.EvaluationResult`): the
constant pose, the retrieval baseline (labelled with whose features), the coverage ceiling, the
training fit and the validation; `brackets_headline` states them in one line per domain. The plots
are drawn by `topoloc.reporting.plots`. Everything is written from `EvaluationResult` objects, one
per trained run.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence


from topoloc._paths import check_output
from topoloc._tempfiles import remove_stale_writes, write_text_atomically
from topoloc.evaluation.results import CEILING, CONSTANT, TRAINING_FIT, VALIDATION, EvaluationResult, PoseEvaluation
from topoloc.evaluation.retrieval import retrieval_label
from topoloc.metrics import CROSSLOC_THRESHOLDS
from topoloc.reporting.plots import plot_error_cdf, plot_topdown_map

__all__ = ["comparison_table", "brackets_headline", "report_methods", "write_report"]

#: Threshold columns shown in the report's tables (labels of `topoloc.metrics.summarize`): CrossLoc's.
REPORT_THRESHOLDS = tuple(f"{m:g}m_{d:g}deg" for m, d in CROSSLOC_THRESHOLDS)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


_SAFE_NAMES = "file names replace every character but letters, digits, '-', '_' and '.' with '_'"


def _cdf_plot(domain: str) -> str:
    """The error CDF plot of ``domain``, under the report's folder."""
    return f"plots/cdf_{_safe(domain)}.png"


def _map_plot(run: str, domain: str) -> str:
    """The top-down map of ``run`` on ``domain``, under the report's folder."""
    return f"plots/map_{_safe(run)}_{_safe(domain)}.png"


def _flights_of(evaluations: Sequence[PoseEvaluation], domain: str) -> list[str] | None:
    """The flights of ``domain``'s images in ``evaluations``, sorted, or None when there is only one (a plot
    then pools them: one row or panel, as before there were flights)."""
    flights = sorted({f for ev in evaluations for f, d in zip(ev.flights, ev.domains) if d == domain})
    return flights if len(flights) > 1 else None


def _check_file_names(runs: Mapping[str, EvaluationResult], domains: Sequence[str]) -> None:
    """Refuses runs or domains whose files would have the same names (`_safe` makes them the same)."""
    seen: dict[str, str] = {}
    for name in runs:
        prefix = _safe(name)
        if prefix in seen:
            raise ValueError(f"runs: {seen[prefix]!r} and {name!r} would write the same files (prefix {prefix!r}: "
                             f"predictions/{prefix}_predictions.csv, predictions/{prefix}_summary.json, "
                             f"plots/map_{prefix}_*.png); {_SAFE_NAMES}: rename one of the runs")
        seen[prefix] = name
    cdfs: dict[str, str] = {}
    for d in domains:
        plot = _cdf_plot(d)
        if plot in cdfs:
            raise ValueError(f"domains: {cdfs[plot]!r} and {d!r} would write the same plot {plot}; {_SAFE_NAMES}: "
                             "rename one of the domains")
        cdfs[plot] = d
    maps: dict[str, tuple[str, str]] = {}
    for name, r in runs.items():
        for d in domains:
            plot = _map_plot(name, d)
            if not r.model.mask(domain=d).any():
                continue
            if plot in maps:  # run "x" on "real_alt" and run "x_real" on "alt"
                raise ValueError(f"runs: {maps[plot][0]!r} on domain {maps[plot][1]!r} and {name!r} on domain {d!r} "
                                 f"would write the same map {plot}: rename one of the runs")
            maps[plot] = (name, d)


def comparison_table(evaluations: Sequence[PoseEvaluation], by: str = "domain") -> str:
    """A markdown table comparing methods per domain (``by="domain"``) or per flight (``"flight"``).

    Rows are grouped by domain (or flight), the methods in the order given within each group.
    Columns: images, median / mean / p90 translation (m) and rotation (deg), and the share within
    each (m, deg) threshold of `REPORT_THRESHOLDS` (CrossLoc's).
    """
    if by not in ("domain", "flight"):
        raise ValueError(f"by: expected 'domain' or 'flight', got {by!r}")
    head = ("| method | " + by + " | images | median m | median deg | mean m | mean deg | p90 m | p90 deg | "
            + " | ".join(t.replace("_", " / ") for t in REPORT_THRESHOLDS) + " |")
    lines = [head, "|" + " --- |" * 2 + " ---: |" * (7 + len(REPORT_THRESHOLDS))]
    keys = sorted({k for ev in evaluations for k in (set(ev.domains) if by == "domain" else ev.groups())})
    for key in keys:
        for ev in evaluations:
            if by == "domain":
                if key not in ev.domains:
                    continue
                s, label = ev.summary(domain=str(key)), str(key)  # a domain name
            else:
                if key not in ev.groups():
                    continue
                s, label = ev.summary(domain=key[0], flight=key[1]), f"{key[1]} ({key[0]})"
            within = " | ".join(f"{100 * s.within.get(t, float('nan')):.0f}%" for t in REPORT_THRESHOLDS)
            lines.append(f"| {ev.method} | {label} | {s.count} | {s.median_m:.1f} | {s.median_deg:.1f} | "
                         f"{s.mean_m:.1f} | {s.mean_deg:.1f} | {s.p90_m:.1f} | {s.p90_deg:.1f} | {within} |")
    return "\n".join(lines)


def _renamed(ev: PoseEvaluation, method: str) -> PoseEvaluation:
    return PoseEvaluation(method, ev.names, ev.flights, ev.domains, ev.pred_c2w, ev.gt_c2w, ev.frame,
                          ev.nearest_train_m, ev.nearest_train_deg)


def _as_runs(results) -> dict[str, EvaluationResult]:
    if isinstance(results, EvaluationResult):
        return {results.model.method or "model": results}
    if not isinstance(results, Mapping) or not results:
        raise ValueError("runs: expected an EvaluationResult or a non-empty mapping of run name -> EvaluationResult")
    for name, r in results.items():
        if not isinstance(r, EvaluationResult):
            raise TypeError(f"runs[{name!r}]: expected an EvaluationResult, got {type(r).__name__}")
    return dict(results)


def _reference(runs: Mapping[str, EvaluationResult], reference_run: str | None) -> EvaluationResult:
    if reference_run is not None:
        if reference_run not in runs:
            raise ValueError(f"retrieval_run: {reference_run!r} is not one of the runs {list(runs)}")
        return runs[reference_run]
    return next((r for r in runs.values() if r.baselines()), next(iter(runs.values())))


def report_methods(results, reference_run: str | None = None) -> tuple[list[PoseEvaluation], list[PoseEvaluation]]:
    """The rows of the report: ``(test-set methods, other-image methods)``.

    Test-set methods: every run's model (labelled with the run's name), then the brackets that do not
    depend on the model (constant pose, model-free retrievals, coverage ceiling) once, from
    ``reference_run`` (default: the first run that has brackets), then each run's retrieval on its
    own model's features. Other images: each run's training fit and validation. With several runs,
    the run-dependent brackets carry the run's name (``"training fit (augmented)"``).

    Args:
        results: one `EvaluationResult` or a mapping run name -> `EvaluationResult`.
        reference_run: the run whose model-free brackets are shown.
    """
    runs = _as_runs(results)
    ref = _reference(runs, reference_run)
    several = len(runs) > 1
    tests = [_renamed(r.model, name) for name, r in runs.items()]
    others = []
    if ref.constant is not None:
        tests.append(ref.constant)
    tests += [ev for key, ev in ref.retrievals.items() if key != "model"]
    for name, r in runs.items():
        if "model" in r.retrievals:
            ev = r.retrievals["model"]
            tests.append(_renamed(ev, retrieval_label("model", f"{name} model")) if several else ev)
        for extra, label in ((r.training_fit, TRAINING_FIT), (r.validation, VALIDATION)):
            if extra is not None:
                others.append(_renamed(extra, f"{label} ({name})" if several else label))
    if ref.ceiling is not None:
        tests.append(ref.ceiling)
    return tests, others


def _m_deg(ev: PoseEvaluation, domain: str) -> str:
    s = ev.summary(domain=domain)
    return f"{s.median_m:.1f} m / {s.median_deg:.1f} deg"


def brackets_headline(results, reference_run: str | None = None) -> str:
    """The "brackets" headline: one markdown line per test domain with the median errors of the
    model(s) against the constant pose, each retrieval (with its features) and the coverage ceiling.

    E.g. ``- **real** brackets: model 36.1 m / 10.9 deg vs constant pose 225.0 m / 57.0 deg,
    retrieval (features: 16x24 grey thumbnail) 80.2 m / 20.1 deg, coverage ceiling 23.0 m / 3.2 deg.``

    Args:
        results: one `EvaluationResult` (its model labelled ``model``) or a mapping run name ->
            `EvaluationResult` (each run's model under its name).
        reference_run: the run whose model-free brackets are shown (default: the first with brackets).

    Returns:
        Markdown lines joined by newlines (medians: translation m / rotation deg).
    """
    single = isinstance(results, EvaluationResult)
    runs = _as_runs(results)
    tests, _ = report_methods(runs, reference_run)
    n_models = len(runs)
    models = [_renamed(tests[0], "model")] if single else tests[:n_models]
    brackets = tests[n_models:]
    lines = []
    for domain in sorted(set(tests[0].domains)):
        head = ", ".join(f"{m.method} {_m_deg(m, domain)}" for m in models if domain in m.domains)
        rest = ", ".join(f"{b.method} {_m_deg(b, domain)}" for b in brackets if domain in b.domains)
        lines.append(f"- **{domain}** brackets (median): {head}"
                     + (f" vs {rest}." if rest else " (no brackets computed)."))
    return "\n".join(lines)


def _coverage_table(result: EvaluationResult) -> str:
    cov = result.coverage_summary()
    if not cov:
        return "_No training poses were given: coverage not computed._"
    lines = ["| test set | poses | median m | median deg | p90 m | p90 deg | max m | max deg | "
             "median m to nearest position |",
             "| --- |" + " ---: |" * 8]
    for key, c in cov.items():
        pos = f"{c['median_position_m']:.1f}" if "median_position_m" in c else "-"
        lines.append(f"| {key} | {c['count']} | {c['median_m']:.1f} | {c['median_deg']:.1f} | {c['p90_m']:.1f} | "
                     f"{c['p90_deg']:.1f} | {c['max_m']:.1f} | {c['max_deg']:.1f} | {pos} |")
    return "\n".join(lines)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _missing(runs: Mapping[str, EvaluationResult]) -> list[str]:
    """Sentences saying which brackets a run lacks, so that none is left out silently."""
    lines = []
    several = len(runs) > 1
    for name, r in runs.items():
        who = f"{name}: " if several else ""
        lines += [f"- {who}{note}" for note in r.notes]
        if r.train_c2w is None:
            continue
        shared = r.brackets_of is not None and r.brackets_of in runs
        missing = [label for label, ev in ((CONSTANT, r.constant), (CEILING, r.ceiling), ("retrieval", r.retrieval),
                                           (TRAINING_FIT, r.training_fit))
                   if ev is None and not (shared and label != TRAINING_FIT)]
        if missing:
            lines.append(f"- {who}not computed in this evaluation: {', '.join(missing)}"
                         + (f" (its other brackets are those of {r.brackets_of}: the same training set and test "
                            "images)." if shared else "."))
        if r.validation is None and not any("no validation row" in note for note in r.notes):  # said once
            # e.g. AdaBN: the same validation set as its run
            base = runs[r.brackets_of] if shared and r.brackets_of is not None else None
            if base is not None and base.validation is None and any("no validation row" in n for n in base.notes):
                lines.append(f"- {who}no validation row either, for the reason given for {r.brackets_of}.")
            else:
                lines.append(f"- {who}no validation set was given: no validation row.")
    return list(dict.fromkeys(lines))


_EXPLAIN = (
    "Translation errors are Euclidean distances in metres, rotation errors geodesic angles in degrees; the "
    "threshold columns are the share of images within both limits (metres and degrees: CrossLoc's thresholds). "
    "Each model stands beside its brackets, on the same test images:\n\n"
    "- **constant pose**: every image gets the training set's mean translation and the chordal mean of its "
    "rotations; a model that does not beat it has learnt nothing about the image;\n"
    "- **retrieval (features: ...)**: every image gets the pose of the training image with the most similar "
    "descriptor (cosine similarity); the label says whose descriptor: a model-free zero-mean, unit-norm "
    "thumbnail (the \"tiny images\" baseline) or the pooled backbone features of a trained model;\n"
    "- **coverage ceiling**: every image gets the training pose nearest to its TRUE pose under "
    "d = metres + {w:g} m/deg x degrees: the best any method that returns a training pose could do;\n"
    "- **training fit** and **validation**: the model on (evenly spaced) training images and on the "
    "validation images: other images than the test set, shown in their own domain."
)


def write_report(
    out_dir: str | PathLike,
    runs: Mapping[str, EvaluationResult],
    title: str = "topoloc evaluation",
    intro: str = "",
    retrieval_run: str | None = None,
    extra_sections: Mapping[str, str] | None = None,
) -> Path:
    """Writes ``report.md`` with the brackets headline, tables, error CDF plots and top-down maps, plus
    every run's predictions CSV and summary JSON (every bracket included, labelled in the ``method``
    column / key).

    The tables show, per domain and per flight, every run's model beside the constant pose, each
    retrieval baseline (labelled with its features), the coverage ceiling, and each run's training
    fit and validation (see `report_methods`); a run that lacks one says so.

    Args:
        out_dir: the report folder; files go to ``out_dir`` (report.md, summary.json),
            ``out_dir/plots`` and ``out_dir/predictions``. The predictions, summaries, CDFs and maps that an
            earlier report left there for runs or domains not in this one are removed: the folder holds
            this report's figures (other files are left alone).
        runs: run name -> its `EvaluationResult` (e.g. ``{"augmented": ..., "no augmentation": ...}``);
            the first run is the headline. A run's files are named after it, with every character but
            letters, digits, ``-``, ``_`` and ``.`` replaced by ``_`` (``no_augmentation_predictions.csv``);
            two runs whose names would give the same files are refused, before anything is written.
        title: the report's title.
        intro: markdown paragraph(s) under the title (what was trained, on what, how long).
        retrieval_run: the run whose model-free brackets (constant pose, thumbnail retrieval,
            coverage ceiling, coverage table) are shown (default: the first run that has them).
        extra_sections: heading -> markdown, appended (e.g. the saliency section).

    Returns:
        The path of ``report.md``.
    """
    if not runs:
        raise ValueError("runs: expected at least one EvaluationResult, got none")
    runs = _as_runs(runs)
    domains = sorted({str(d) for r in runs.values() for d in r.model.domains})  # a later run's own domains too
    _check_file_names(runs, domains)
    ref = _reference(runs, retrieval_run)
    out = Path(out_dir)
    check_output(out, "out_dir", folder=True)  # before plots/ and any file
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for folder in (out, *(out / name for name in _REPORT_FILES)):  # what a report killed mid-write left
        remove_stale_writes(folder)
    tests, others = report_methods(runs, retrieval_run)

    files = []
    for name, r in runs.items():
        written = r.write(out / "predictions", prefix=f"{_safe(name)}_")
        files += list(written.values())
    cdfs = [plot_error_cdf(tests, out / _cdf_plot(d), domain=d, flights=_flights_of(tests, d)) for d in domains]
    maps = []
    for name, r in runs.items():
        for d in domains:
            if r.model.mask(domain=d).any():
                maps.append((name, d, plot_topdown_map(
                    r.model, out / _map_plot(name, d), r.train_c2w, domain=d,
                    title=f"{name}: {d} test images", flights=_flights_of([r.model], d))))
    summary = {name: r.to_dict() for name, r in runs.items()}
    write_text_atomically(out / "summary.json", json.dumps(summary, indent=2, default=str))
    _remove_stale(out, kept=set(files) | set(cdfs) | {p for _, _, p in maps})

    md = [f"# {title}", ""]
    if intro:
        md += [intro.strip(), ""]
    md += ["## Brackets", "", brackets_headline(runs, retrieval_run), ""]
    missing = _missing(runs)
    if missing:
        md += ["Not available:", ""] + missing + [""]
    md += ["## Results per domain", "", _EXPLAIN.format(w=ref.m_per_deg), "",
           comparison_table(tests + others, by="domain"), "",
           "## Results per flight", "", comparison_table(tests + others, by="flight"), "",
           "## Coverage of the test poses", "",
           f"For each test pose, the training pose nearest to it under d = metres + {ref.m_per_deg:g} m/deg x "
           "degrees (1 m/deg is the exchange rate of CrossLoc's thresholds: 3 m / 3 deg, 5 m / 5 deg, "
           "10 m / 10 deg): its distance (m) and angle (deg), which are the coverage ceiling's errors, and "
           "the distance to the nearest training position whatever its rotation. An absolute pose regressor "
           "mostly interpolates between training poses (Sattler et al., CVPR 2019): test poses far from every "
           "training pose are hard.", "",
           _coverage_table(ref), "",
           "## Error distributions", "",
           "Share of the test images with an error below each value, per domain, a row per test flight where a "
           "domain has several (a flight the training views do not cover would hide the others' curves in a "
           "pool); translation on a log scale. Trained runs solid (with AdaBN dashed, in the run's colour); the "
           "constant pose dotted and the coverage ceiling dashed, in black; retrievals grey, dash-dotted.", ""]
    md += [f"![error CDF, {d}]({_rel(p, out)})" for d, p in zip(domains, cdfs)] + [""]
    md += ["## Top-down maps", "",
           "East / north in metres about the scene origin: true positions (black), predictions (magenta), "
           "a red line between them, training poses in grey; a panel per test flight where a domain has several.",
           ""]
    md += [f"![{name}, {d}]({_rel(p, out)})" for name, d, p in maps] + [""]
    for heading, body in (extra_sections or {}).items():
        md += [f"## {heading}", "", body.strip(), ""]
    md += ["## Files", ""] + [f"- `{_rel(p, out)}`" for p in [out / "summary.json", *files]] + [""]
    frame = next(iter(runs.values())).model.frame
    md += ["The predictions' positions are ECEF metres (EPSG:4978) and WGS84 latitude, longitude and *ellipsoidal* "
           "height (EPSG:4979: not above sea level; in Switzerland about 50 m above it), the angles Cesium yaw / "
           "pitch / roll in degrees, and east / north / up metres about the local frame's origin "
           f"({frame.lat_deg:.6f} deg N, {frame.lon_deg:.6f} deg E, {frame.h_m:.1f} m ellipsoidal height).", ""]
    report = out / "report.md"
    write_text_atomically(report, "\n".join(md))
    return report


#: The files `write_report` writes into its subfolders, by their names' patterns.
_REPORT_FILES = {"predictions": ("*_predictions.csv", "*_summary.json"), "plots": ("cdf_*.png", "map_*.png")}


def _remove_stale(out: Path, kept: set[Path]) -> None:
    """Removes the report files under ``out`` (by `_REPORT_FILES`' patterns) that are not in ``kept``."""
    kept = {Path(p).resolve() for p in kept}
    for folder, patterns in _REPORT_FILES.items():
        for pattern in patterns:
            for path in (out / folder).glob(pattern):
                if path.resolve() not in kept:
                    path.unlink(missing_ok=True)
