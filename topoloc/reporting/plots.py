"""The reports' plots: error CDFs per method, a top-down map of true and predicted positions, and the
saliency shares per semantic class.

Drawn on `matplotlib.figure.Figure` objects (no pyplot, no display, the global backend left alone) and
saved whole or not at all (`save_figure`), as PNG.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure  # no pyplot: no global backend, no open figures
import numpy as np

from topoloc._tempfiles import write_atomically
from topoloc.data.semantics import STABLE_CLASSES, UNSTABLE_CLASSES
from topoloc.evaluation.results import PoseEvaluation
from topoloc.reporting.saliency_shares import ClassShares

__all__ = ["plot_error_cdf", "plot_shares", "plot_topdown_map", "save_figure"]


#: Colours of the trained runs, given in the order of their sorted names (so every figure of a report agrees);
#: grey and black are left to the baselines and to "before training".
RUN_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_BASELINES = ("constant pose", "retrieval", "coverage ceiling", "training fit", "validation", "before training")


def method_styles(labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib line styles by method label, the same in every figure that shows the same runs: a trained run
    solid in its colour, ``"<run> + AdaBN"`` dashed in its run's colour, baselines grey or black and dotted."""
    runs = sorted({label.split(" + ")[0] for label in labels if not label.startswith(_BASELINES)})
    colour = {run: RUN_COLOURS[i % len(RUN_COLOURS)] for i, run in enumerate(runs)}
    styles: dict[str, dict[str, Any]] = {}
    greys = iter(("0.45", "0.6", "0.3", "0.7", "0.2"))
    for label in labels:
        if label.startswith("constant pose"):
            styles[label] = {"color": "black", "linestyle": ":"}
        elif label.startswith("coverage ceiling"):
            styles[label] = {"color": "black", "linestyle": "--"}
        elif label.startswith(_BASELINES):
            styles[label] = {"color": next(greys, "0.5"), "linestyle": "-."}
        else:
            run = label.split(" + ")[0]
            styles[label] = {"color": colour[run], "linestyle": "--" if " + " in label else "-"}
    return styles


def plot_error_cdf(
    evaluations: Sequence[PoseEvaluation],
    path: str | PathLike,
    domain: str | None = None,
    title: str | None = None,
    flights: Sequence[str] | None = None,
) -> Path:
    """Cumulative distribution of translation (m, log axis) and rotation (deg) errors, one line per
    method; one row of the two panels per flight with ``flights``.

    Args:
        evaluations: the methods to compare (their ``method`` labels the lines).
        path: the PNG to write.
        domain: only the images of this domain (``"synthetic"``, ``"real"``); all when None.
        title: figure title.
        flights: one row per flight, in this order, each with its own legend and medians; None: every
            flight pooled in one row.

    Returns:
        The path written.
    """
    if not evaluations:
        raise ValueError("evaluations: expected at least one PoseEvaluation to plot, got none")
    rows: list[str | None] = [None] if flights is None else list(flights)
    if not rows:
        raise ValueError("flights: expected at least one flight name, or None to pool the flights")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10 if flights is None else 14, 5.2 if flights is None else 3.6 * len(rows) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    styles = method_styles([ev.method for ev in evaluations])
    for (ax_t, ax_r), flight in zip(axes, rows):
        for ev in evaluations:
            m = ev.mask(domain=domain, flight=flight)
            if not m.any():
                continue
            medians = []
            for ax, err in ((ax_t, ev.translation_m[m]), (ax_r, ev.rotation_deg[m])):
                x = np.sort(err)
                y = np.arange(1, len(x) + 1) / len(x)
                line, = ax.step(np.maximum(x, 1e-3), y, where="post", **styles[ev.method])
                medians.append(float(np.median(err)))
            line.set_label(f"{ev.method} (median {medians[0]:.1f} m / {medians[1]:.1f} deg)")
        ax_t.set_xscale("log")
        ax_t.set_xlabel("translation error (m, log scale)")
        ax_r.set_xlabel("rotation error (deg)")
        for ax in (ax_t, ax_r):
            ax.set_ylabel("share of images")
            ax.set_ylim(0, 1)
            ax.grid(True, alpha=0.3)
        if flight is not None:  # beside its row: each flight has its own medians
            ax_t.set_title(flight, loc="left", fontsize=10)
            ax_r.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    if flights is None:
        fig.legend(loc="outside lower center", ncols=2, fontsize=8)  # below the panels: it hid the medians
    fig.suptitle(title or f"Error CDF ({domain or 'all'} test images)")
    save_figure(fig, path, dpi=110)
    return path


def plot_topdown_map(
    evaluation: PoseEvaluation,
    path: str | PathLike,
    train_c2w: np.ndarray | None = None,
    domain: str | None = None,
    title: str | None = None,
    flights: Sequence[str] | None = None,
) -> Path:
    """Top-down map (east / north, metres in the local ENU frame) of true vs predicted positions,
    a line from each true position to its prediction, training positions in light grey; one panel per
    flight with ``flights`` (None: every flight in one panel).

    Returns:
        The path written.
    """
    m = evaluation.mask(domain=domain)
    if not m.any():
        raise ValueError(f"domain: no image of domain {domain!r} in the evaluation "
                         f"(domains: {sorted(set(evaluation.domains))})")
    panels: list[str | None] = [None] if flights is None else list(flights)
    if not panels:
        raise ValueError("flights: expected at least one flight name, or None to pool the flights")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7 * len(panels), 6.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, flight in zip(axes, panels):
        m = evaluation.mask(domain=domain, flight=flight)
        true_en = evaluation.gt_c2w[m, :2, 3]
        pred_en = evaluation.pred_c2w[m, :2, 3]
        if train_c2w is not None and len(train_c2w):
            tr = np.asarray(train_c2w)[:, :2, 3]
            ax.scatter(tr[:, 0], tr[:, 1], s=4, c="0.8", label="training poses", zorder=1)
        segments = np.stack([true_en, pred_en], axis=1)
        ax.add_collection(LineCollection(list(segments), colors="tab:red", linewidths=0.6, alpha=0.6, zorder=2))
        # black and magenta: colours no method has in the other figures
        ax.scatter(true_en[:, 0], true_en[:, 1], s=10, c="black", label="true", zorder=3)
        ax.scatter(pred_en[:, 0], pred_en[:, 1], s=10, c="magenta", marker="x", label="predicted", zorder=4)
        ax.set_xlabel("east (m)")
        ax.set_ylabel("north (m)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
        median = f"median {np.median(evaluation.translation_m[m]):.1f} m" if m.any() else "no image"
        if flight is None:
            ax.set_title(title or f"{evaluation.method}: {domain or 'all'} test images ({median})")
        else:
            ax.set_title(f"{flight} ({median})", fontsize=10)
    if flights is not None:
        fig.suptitle(title or f"{evaluation.method}: {domain or 'all'} test images")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def save_figure(fig: Figure, path: str | PathLike, dpi: int) -> Path:
    """``fig.savefig(path, dpi=dpi)``, whole or not at all (`topoloc._tempfiles.write_atomically`), in the
    format of ``path``'s suffix."""
    path = Path(path)
    return write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix[1:] or "png"))


def plot_shares(shares: Mapping[str, Mapping[str, ClassShares]], path: str | PathLike) -> Path:
    """Bar chart of the enrichment (saliency share / pixel share; 1 = uniform) per class
    and group, one panel per image set, one bar per column (e.g. before training, each run after), with
    its 95 % bootstrap interval over the images (`ClassShares.enrichment_interval`) as a whisker.

    Args:
        shares: image-set label -> column heading -> `ClassShares` (same images within a set).
        path: the PNG to write.
    """
    if not shares:
        raise ValueError("shares: expected at least one image set")
    fig = Figure(figsize=(10, 3.4 * len(shares)))
    axes = fig.subplots(len(shares), 1, squeeze=False)[:, 0]
    heads = [head for columns in shares.values() for head in columns]
    styles = method_styles([head.split(": ")[0] if ": " in head else head for head in heads])
    for ax, (label, columns) in zip(axes, shares.items()):
        first = next(iter(columns.values()))
        area = first.area
        groups = [([n], n) for n in sorted(first.names, key=lambda n: -area[n])]
        groups += [(list(STABLE_CLASSES), "STABLE"), (list(UNSTABLE_CLASSES), "UNSTABLE")]
        groups = [(c, n) for c, n in groups if first.group(c, "area") > 0]
        width = 0.8 / len(columns)
        for j, (head, s) in enumerate(columns.items()):
            values = np.array([s.enrichment(c) for c, _ in groups])
            low, high = np.array([s.enrichment_interval(c) for c, _ in groups]).T
            run = head.split(": ")[0] if ": " in head else head
            colour = "0.7" if head.startswith("before") else styles[run]["color"]
            ax.bar(np.arange(len(groups)) + (j - (len(columns) - 1) / 2) * width, values, width, label=head,
                   color=colour, yerr=np.stack([values - low, high - values]), error_kw={"lw": 0.8, "capsize": 2})
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels([f"{n}\n{100 * first.group(c, 'area'):.1f}% px" for c, n in groups], fontsize=8,
                           rotation=20)
        ax.set_ylabel("saliency share / pixel share\n(whiskers: 95 % interval over the images)", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)
    return path
