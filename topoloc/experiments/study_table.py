"""The sim-to-real study's table: per-run summaries aggregated over seeds, written as markdown.

Pure functions (no training, no files read): `aggregate` turns the per-run results of
`topoloc.experiments.study` into mean +- std over seeds per (config, domain); `results_markdown`
renders them beside the brackets; `write_section` puts the text into ``docs/RESULTS.md`` between
markers, so that the results of several presets (CPU, GPU) live in one file.
"""

from __future__ import annotations

import math
import re
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from topoloc._tempfiles import write_text_atomically

__all__ = ["mean_std", "format_pm", "aggregate", "results_markdown", "write_section"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; NaN for a single value) of ``values``.

    Example:
        >>> # std = sqrt(((1 - 7/3)^2 + (2 - 7/3)^2 + (4 - 7/3)^2) / 2)
        >>> [round(v, 6) for v in mean_std([1.0, 2.0, 4.0])]
        [2.333333, 1.527525]
    """
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        raise ValueError("values: expected at least one value, got none")
    return float(a.mean()), (float(a.std(ddof=1)) if a.size > 1 else math.nan)


def format_pm(mean: float, std: float, digits: int = 1) -> str:
    """``"12.3 ± 0.4"``, or ``"12.3"`` when ``std`` is NaN (a single seed)."""
    if math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def aggregate(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Mean and std over seeds of each config's per-domain summaries.

    Args:
        results: one dict per finished run: ``{"config": str, "seed": int, "domains": {domain:
            PoseErrorSummary.to_dict()}}`` (``median_m``, ``median_deg``, ``within`` shares 0..1).

    Returns:
        ``{config: {domain: {"seeds": [..], "median_m": (mean, std), "median_deg": (mean, std),
        "within": {label: (mean, std)}}}}``, configs and domains in their order of first appearance.
    """
    grouped: dict[str, dict[str, list[tuple[int, dict]]]] = {}
    for r in results:
        for domain, summary in r["domains"].items():
            grouped.setdefault(r["config"], {}).setdefault(domain, []).append((int(r["seed"]), summary))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for config, domains in grouped.items():
        out[config] = {}
        for domain, runs in domains.items():
            runs = sorted(runs, key=lambda x: x[0])
            labels = list(runs[0][1].get("within", {}))
            out[config][domain] = {
                "seeds": [s for s, _ in runs],
                "median_m": mean_std([r["median_m"] for _, r in runs]),
                "median_deg": mean_std([r["median_deg"] for _, r in runs]),
                "within": {lab: mean_std([r["within"][lab] for _, r in runs]) for lab in labels},
            }
    return out


def _threshold_header(label: str) -> str:
    m = re.fullmatch(r"([\d.]+)m_([\d.]+)deg", label)
    return f"{m.group(1)} m, {m.group(2)}°" if m else label


def results_markdown(agg: dict, brackets: dict[str, dict[str, dict]], configs: Sequence[str], domains: Sequence[str],
                     meta: dict[str, Any], descriptions: dict[str, str] | None = None) -> str:
    """The study's markdown: a header of how it was run, medians per domain, threshold shares.

    Args:
        agg: `aggregate` output.
        brackets: ``{bracket name: {domain: PoseErrorSummary dict}}`` (one value, no seeds).
        configs: row order; configs absent from ``agg`` are listed as "not run".
        domains: column order.
        meta: ``{"title", "lines": [str, ...]}``: the heading and the lines under it (device,
            date, command, load, wall time, sizes).
        descriptions: optional one-line description per config, listed under the tables.
    """
    lines = [f"## {meta['title']}", ""] + [f"- {line}" for line in meta.get("lines", [])] + [""]
    # medians
    head = "| config | seeds | " + " | ".join(f"{d} median m | {d} median °" for d in domains) + " |"
    lines += ["Median errors, mean ± sample std over seeds (m, degrees):", "", head,
              "| --- | ---: |" + " ---: | ---: |" * len(domains)]
    for c in configs:
        if c not in agg:
            lines.append(f"| {c} | 0 |" + " not run | not run |" * len(domains))
            continue
        seeds = max(len(agg[c][d]["seeds"]) for d in agg[c])
        cells = []
        for d in domains:
            s = agg[c].get(d)
            cells += [format_pm(*s["median_m"]), format_pm(*s["median_deg"])] if s else ["–", "–"]
        lines.append(f"| {c} | {seeds} | " + " | ".join(cells) + " |")
    for name, per_domain in brackets.items():
        cells = []
        for d in domains:
            s = per_domain.get(d)
            cells += [f"{s['median_m']:.1f}", f"{s['median_deg']:.1f}"] if s else ["–", "–"]
        lines.append(f"| *{name}* | – | " + " | ".join(cells) + " |")
    # threshold shares, one table per domain
    labels = _labels(agg, brackets)
    for d in domains:
        lines += ["", f"Share of {d} test images within CrossLoc's thresholds (%, mean ± std over seeds):", "",
                  "| config | " + " | ".join(_threshold_header(lab) for lab in labels) + " |",
                  "| --- |" + " ---: |" * len(labels)]
        for c in configs:
            s = agg.get(c, {}).get(d)
            if s is None:
                lines.append(f"| {c} |" + " – |" * len(labels))
                continue
            lines.append(f"| {c} | " + " | ".join(format_pm(100 * s["within"][lab][0], 100 * s["within"][lab][1])
                                                   for lab in labels) + " |")
        for name, per_domain in brackets.items():
            s = per_domain.get(d)
            cells = [f"{100 * s['within'][lab]:.1f}" if s else "–" for lab in labels]
            lines.append(f"| *{name}* | " + " | ".join(cells) + " |")
    if descriptions:
        lines += ["", "Configs:", ""] + [f"- `{c}`: {descriptions[c]}" for c in configs if c in descriptions]
    return "\n".join(lines) + "\n"


def _labels(agg: dict, brackets: dict) -> list[str]:
    for per_domain in list(agg.values()) + list(brackets.values()):
        for s in per_domain.values():
            return list(s["within"])
    return []


def write_section(path: str | PathLike, key: str, text: str, title: str = "# Results") -> Path:
    """Puts ``text`` between ``<!-- key:start -->`` and ``<!-- key:end -->`` in ``path``: replaces
    that section when present, appends it otherwise (creating the file with ``title``)."""
    path = Path(path)
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    old = path.read_text(encoding="utf-8") if path.is_file() else f"{title}\n\n"
    if start in old and end in old:
        i, j = old.index(start), old.index(end) + len(end)
        new = old[:i] + block.rstrip("\n") + old[j:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, new, encoding="utf-8")
