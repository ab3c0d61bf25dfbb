"""Saliency figures and the saliency section of a report: for one or more training runs, maps
before and after training on test images (image | before | after | difference), the share of the
saliency on each semantic class against its share of the pixels, the change that training made,
with bootstrap intervals over the images, and the sentence that states it.

The maps come from `topoloc.saliency` (default: SmoothGrad of the input gradient's magnitude,
with random sub-stride shifts); each map is scaled to mean 1 per image before it is compared, so the
shares and the differences say *where* a model looks, not how strongly.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure  # no pyplot: no global backend, no open figures
import numpy as np
import torch
from torch import Tensor, nn

from topoloc._device import module_device
from topoloc._modes import eval_mode
from topoloc.data import TopoFlight
from topoloc.data._images import read_semantics
from topoloc.data.cache import resize_uint8
from topoloc.data.semantics import STABLE_CLASSES, UNSTABLE_CLASSES
from topoloc.procedural.appearance import PHOTO_DOMAINS
from topoloc.models.contract import input_size, to_unit_float
from topoloc.reporting.plots import plot_shares, save_figure
from topoloc.reporting.saliency_shares import ClassShares, class_saliency_shares, shares_table, stable_change_text
from topoloc.saliency import SaliencyDifference, overlay, randomize_weights, saliency, spearman

__all__ = [
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
    "ClassShares",
    "class_saliency_shares",
    "compute_saliency",
    "feature_grid",
    "plot_saliency_figure",
    "plot_shares",
    "saliency_report",
    "shares_table",
    "stable_change_text",
]


def feature_grid(model: nn.Module, image_size: tuple[int, int]) -> tuple[int, int] | None:
    """(h, w) cells of the backbone's last feature map for an input of ``image_size`` (H, W) px,
    or None for a model without ``backbone.forward_map`` or whose backbone has no spatial map (LeViT)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(backbone, "forward_map"):
        return None
    x = torch.zeros(1, 3, *image_size, device=module_device(model))
    try:
        with torch.no_grad(), eval_mode(model):
            fmap = backbone.forward_map(x)
    except ValueError:  # tokens without a grid: no cells to mark
        return None
    return int(fmap.shape[-2]), int(fmap.shape[-1])


def _method_kwargs(method: str, kwargs: Mapping[str, Any] | None, stride: int | None) -> dict[str, Any]:
    """The report's defaults for each method, overridden by ``kwargs``."""
    defaults: dict[str, Any] = {}
    if method == "smoothgrad":
        # Sensitivity, not x input: the question is which pixels, if their look changed (season,
        # weather, domain), would move the pose; x input would also rank classes by brightness.
        defaults = {"samples": 8, "noise": 0.15, "max_shift": (stride // 2) if stride else 0, "times_input": False}
    elif method == "integrated_gradients":
        defaults = {"steps": 16}
    return {**defaults, **dict(kwargs or {})}


def _maps(model: nn.Module, images: Tensor, method: str, device: torch.device, kwargs: Mapping[str, Any]) -> Tensor:
    """Mean-1 maps (B, H, W) on the CPU of float [0, 1] images; SmoothGrad's noise seeded 0 for every
    model, so two models are compared on the same noisy copies."""
    model = model.to(device)
    extra = dict(kwargs)
    if method == "smoothgrad" and "generator" not in extra:
        extra["generator"] = torch.Generator().manual_seed(0)
    maps = saliency(model, images.to(device), method, normalize=hasattr(model, "normalize"), **extra)
    maps = maps.detach().float().cpu()
    return maps / maps.mean(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)


def compute_saliency(
    model_before: nn.Module,
    model_after: nn.Module,
    images: Tensor,
    device: str | torch.device | None = None,
    method: str = "gradient",
    **kwargs: Any,
) -> SaliencyDifference:
    """Saliency of two models on uint8 images (each map scaled to mean 1), and the difference.

    Models with a ``normalize`` method get the images in [0, 1] normalised by it; others get them
    in [0, 1].

    Args:
        model_before: e.g. the untrained model (same seed as the trained one).
        model_after: the trained model.
        images: uint8 RGB images.
        device: where to run (default: ``model_after``'s device).
        method: one of `topoloc.saliency.METHODS` (default AtLoc's ``"gradient"``).
        **kwargs: the method's arguments (see `topoloc.saliency.saliency`).

    Shape:
        images: (B, 3, H, W) uint8 -> three (B, H, W) float maps on the CPU.
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images: expected a uint8 tensor of shape (B, 3, H, W), got {shape}")
    device = torch.device(device) if device is not None else module_device(model_after)
    x = to_unit_float(images)
    before = _maps(model_before, x, method, device, kwargs)
    after = _maps(model_after, x, method, device, kwargs)
    return SaliencyDifference(before, after, after - before)


def _hwc(t: Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def plot_saliency_figure(
    images: Tensor,
    maps: SaliencyDifference | Mapping[str, Tensor],
    path: str | PathLike,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """One row per image: the image, then one overlay per map column.

    Args:
        images: uint8 or float [0, 1] RGB images.
        maps: a `SaliencyDifference` (columns: before training | after training | difference) or
            column heading -> maps (non-negative maps in jet, signed ones in red / blue).
        path: the PNG to write.
        row_labels: a label per row (e.g. image names).
        title: figure title.
        dpi: resolution of the PNG.

    Shape:
        images: (B, 3, H, W); every map (B, H, W)
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
    b = images.shape[0]
    columns = (dict(zip(("before training", "after training", "difference (red: more)"), maps))
               if isinstance(maps, SaliencyDifference) else dict(maps))
    if not columns or any(m.shape != (b, *images.shape[-2:]) for m in columns.values()):
        raise ValueError(f"maps: expected ({b}, {images.shape[-2]}, {images.shape[-1]}) maps, got "
                         f"{[tuple(m.shape) for m in columns.values()]}")
    if row_labels is not None and len(row_labels) != b:
        raise ValueError(f"row_labels: expected {b} labels, got {len(row_labels)}")
    imgs = to_unit_float(images).float().cpu()
    # One colour scale for every map column, one for every difference column (a colour bar each): scaled per
    # panel, a small change looked as saturated as a large one.
    signed = [bool((m < 0).any()) or " - " in head or "difference" in head for head, m in columns.items()]
    scales = {kind: _pooled_scale([m for m, s_ in zip(columns.values(), signed) if s_ == kind])
              for kind in (False, True)}
    grey = imgs.mean(dim=1, keepdim=True).expand_as(imgs) * 0.4 + 0.3  # differences over a faint grey photo
    panels = [imgs] + [overlay(grey, m.cpu(), alpha=0.8, vmax=scales[True], signed=True) if s_ else
                       overlay(imgs, m.cpu(), vmax=scales[False], signed=False)
                       for m, s_ in zip(columns.values(), signed)]
    heads = ["image", *columns]
    h, w = images.shape[-2:]
    ncol = len(panels)
    fig = Figure(figsize=(ncol * 2.4, b * 2.4 * h / w + 1.4), layout="constrained")
    axes = fig.subplots(b, ncol, squeeze=False)
    for i in range(b):
        for j in range(ncol):
            ax = axes[i, j]
            ax.imshow(_hwc(panels[j][i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(heads[j].replace(": ", ":\n", 1), fontsize=9)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    for kind, cmap, label in ((False, "jet", "saliency (one scale for every map)"),
                              (True, "RdBu_r", "difference (red: more, blue: less)")):
        cols = [j + 1 for j, s_ in enumerate(signed) if s_ == kind]
        if cols:
            low = -scales[kind] if kind else 0.0
            bar = ScalarMappable(norm=Normalize(low, scales[kind]), cmap=cmap)
            # each bar under the whole grid, one below the other: under its own columns, two kinds of
            # interleaved columns (two runs' "after" and "difference") put one bar over the other
            fig.colorbar(bar, ax=axes.ravel().tolist(), location="bottom", shrink=0.6, aspect=40,
                         pad=0.01).set_label(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=dpi)
    return path


def _row_label(flight: str, name: str) -> str:
    """A short figure-row label: the flight's last word and the image's name without the flight and ``_img``
    (``planned 00000_100_0416_0001`` for ``comballaz-2020-11-06-planned_00000_100_0416_0001_img``)."""
    short = name.removeprefix(f"{flight}_").removesuffix("_img")
    return f"{flight.rsplit('-', 1)[-1]} {short}".strip() if flight else short


#: Values the colour scale's quantile reads at most (torch.quantile takes up to 16 million).
QUANTILE_VALUES = 1_000_000


def _pooled_scale(maps: Sequence[Tensor]) -> float:
    """The 99th percentile of the magnitudes of ``maps`` pooled (gradient maps are spiky), > 0."""
    if not maps:
        return 1.0
    flat = torch.cat([m.detach().float().abs().flatten().cpu() for m in maps])
    flat = flat[::max(1, -(-flat.numel() // QUANTILE_VALUES))]  # evenly over every map (the first million: one column)
    top = float(torch.quantile(flat, 0.99)) if flat.numel() else 0.0
    return top if top > 0 else 1.0


def _semantics_twin(ds):
    """The synthetic `TopoFlight` of the same flight with semantics, or None when there are none."""
    if getattr(ds, "domain", None) == "synthetic" and getattr(ds, "load_semantics", False):
        return ds
    try:
        return TopoFlight(ds.root, ds.flight, domain="synthetic", frame=ds.frame, load_semantics=True)
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def _real_semantics_path(ds, i: int) -> Path:
    """``<flight>-real/<picname>_semantics.npy`` beside the real photo of sample ``i`` (Mini-Comballaz)."""
    photo = Path(ds.real_paths[i])
    return photo.with_name(photo.stem + "_semantics.npy")


def _has_real_semantics(ds) -> bool:
    paths = getattr(ds, "real_paths", None)
    if not paths:
        return False
    return all(_real_semantics_path(ds, i).is_file() for i in range(len(paths)))


def _pick(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, max(1, min(k, n))).round().astype(int))


def _gather(domain: str, sets: Sequence, share_images: int, image_size: tuple[int, int] | None,
            figure_images: int = 1):
    """Images (uint8), names and semantics (or None) spread evenly over the datasets of a domain: about
    ``share_images`` of them, and at least ``figure_images`` where the datasets hold that many."""
    images, names, sems, all_sem = [], [], [], True
    per_set = max(1, share_images // len(sets), -(-figure_images // len(sets)))
    photos = domain in PHOTO_DOMAINS
    for ds in sets:
        own = photos and _has_real_semantics(ds)  # a photo's own class maps: its clouds, cars, lens (real_alt's moves
        # its pixels, so the render's maps at the same pose do not fit its photos)
        twin = None if own else _semantics_twin(ds)
        row_of = {int(r): j for j, r in enumerate(twin.rows)} if twin is not None else {}
        for i in _pick(len(ds), per_set):
            sample = ds[int(i)]
            img = sample["image"]
            images.append(resize_uint8(img, tuple(image_size)) if image_size else img)
            names.append(_row_label(getattr(ds, "flight", ""), str(sample["name"])))
            row = int(sample.get("index", -1))
            if not all_sem:
                continue
            if "semantics" in sample:
                sems.append(sample["semantics"])
            elif own:
                sems.append(read_semantics(_real_semantics_path(ds, int(i))))
            elif twin is not None and row in row_of:  # row_of is empty without a twin
                sems.append(twin[row_of[row]]["semantics"])
            else:
                all_sem = False
    twin_labels = photos and not all(_has_real_semantics(ds) for ds in sets)
    return torch.stack(images), names, (torch.stack(sems) if all_sem and sems else None), twin_labels


def _check_runs(runs: object) -> dict[str, tuple[nn.Module, nn.Module]]:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty dict {label: (model_before, model_after)}, "
                         f"got {type(runs).__name__}")
    for label, pair in runs.items():
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or not all(isinstance(m, nn.Module) for m in pair)):
            raise ValueError(f"runs[{label!r}]: expected (model_before, model_after), two nn.Modules")
    return {str(k): (v[0], v[1]) for k, v in runs.items()}


_METHOD_TEXT = {
    "gradient": "AtLoc's max-over-RGB |gradient x input|",
    "smoothgrad": "SmoothGrad (Smilkov et al. 2017): the input gradient averaged over noisy, shifted copies",
    "integrated_gradients": "integrated gradients (Sundararajan et al. 2017) from a black image, max over RGB",
    "attention": "the spatial attention each feature cell receives",
}


def saliency_report(
    runs: Mapping[str, tuple[nn.Module, nn.Module]],
    datasets: Sequence,
    out_dir: str | PathLike,
    image_size: tuple[int, int] | None = None,
    figure_images: int = 3,
    share_images: int = 16,
    device: str | torch.device | None = None,
    method: str = "smoothgrad",
    method_kwargs: Mapping[str, Any] | None = None,
    baseline: str | None = None,
    randomisation: bool = True,
) -> str:
    """The saliency section of a report, for one or more training runs; returns its markdown.

    Per domain (synthetic, real): a figure (image | before training | each run after training |
    after - before), the Spearman rank correlation between each trained model's maps and those of
    the same architecture with freshly drawn weights (Adebayo et al. 2018's randomisation check),
    and, where the images have semantics, a table and a plot of the share of saliency per class
    against its share of the pixels, before and after training, and the sentence that states the
    change of the stable classes' share with bootstrap intervals. Renders take their labels from
    ``<stem>_semantics.npy``; real photos from ``<flight>-real/<picname>_semantics.npy`` where it
    exists (Mini-Comballaz writes it, with the photo's clouds, snow and real-only objects), else
    the labels of the render at the same pose.

    Args:
        runs: run label -> (model before training, model after); pass the same before-model object
            for runs that share their initial weights (its maps are computed once).
        datasets: `TopoFlight` test sets (synthetic and / or real).
        out_dir: figures go to ``out_dir/plots/saliency_<domain>.png`` and
            ``out_dir/plots/saliency_shares.png``; links are relative to ``out_dir``.
        image_size: (H, W) the models run at (None: the size the first trained model records,
            `topoloc.models.contract`, or the datasets' size for a model that records none).
        figure_images: rows of each figure.
        share_images: images per domain for the shares (more where ``figure_images`` asks for more).
        device: where the models run (default: the first trained model's device).
        method: one of `topoloc.saliency.METHODS`.
        method_kwargs: the method's arguments (defaults: SmoothGrad of the gradient's magnitude,
            ``times_input=False``, with 8 samples, noise 0.15 and random shifts up to half the
            backbone's stride; 16 steps for integrated gradients).
        baseline: the run the others are compared with (default: the last of several runs).
        randomisation: run the randomisation check.
    """
    runs = _check_runs(runs)
    if not datasets:
        raise ValueError("datasets: expected at least one test dataset, got none")
    if baseline is None and len(runs) > 1:
        baseline = list(runs)[-1]
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline: expected one of {list(runs)}, got {baseline!r}")
    out = Path(out_dir)
    first_after = next(iter(runs.values()))[1]
    image_size = image_size if image_size is not None else input_size(first_after)
    dev = torch.device(device) if device is not None else module_device(first_after)
    shared_before = len({id(b) for b, _ in runs.values()}) == 1
    domains = [d for d in sorted({ds.domain for ds in datasets}, reverse=True)  # synthetic, then real
               if any(ds.domain == d and len(ds) for ds in datasets)]
    lines: list[str] = []
    shares: dict[str, dict[str, ClassShares]] = {}
    texts: list[str] = []
    rand_rows: dict[str, dict[str, float]] = {}
    for domain in domains:
        sets = [ds for ds in datasets if ds.domain == domain and len(ds)]
        images_t, names, sem, twin_labels = _gather(domain, sets, share_images, image_size, figure_images)
        x = to_unit_float(images_t)
        if not lines:
            grid = feature_grid(first_after, tuple(images_t.shape[-2:]))
            # the nominal stride (a power of two): a 48 px input gives a ResNet 2 cells (padding), 24 px apart on
            # average, but its stride-2 layers still lock to 32 px
            stride = int(2 ** round(math.log2(images_t.shape[-2] / grid[0]))) if grid else None
            kwargs = _method_kwargs(method, method_kwargs, stride)
            lines += _intro_lines(method, kwargs, tuple(images_t.shape[-2:]), grid, stride, runs, shared_before)
        cache: dict[int, Tensor] = {}

        def maps_of(model: nn.Module) -> Tensor:
            if id(model) not in cache:
                cache[id(model)] = _maps(model, x, method, dev, kwargs)
            return cache[id(model)]

        columns: dict[str, Tensor] = {}
        for label, (before, after) in runs.items():
            if not shared_before or not columns:
                columns["before training" if shared_before else f"{label}: before"] = maps_of(before)
            columns[f"{label}: after"] = maps_of(after)
            columns[f"{label}: after - initial weights"] = maps_of(after) - maps_of(before)
        rows = _pick(len(images_t), figure_images)
        path = plot_saliency_figure(images_t[rows], {k: v[rows] for k, v in columns.items()},
                                    out / "plots" / f"saliency_{domain}.png", row_labels=[names[i] for i in rows],
                                    title=f"{domain} test images")
        lines += [f"![saliency, {domain}]({_link(path, out)})", ""]
        if randomisation:
            for label, (_, after) in runs.items():
                random_maps = _maps(randomize_weights(after, seed=0), x, method, dev, kwargs)
                rand_rows.setdefault(label, {})[domain] = float(spearman(maps_of(after), random_maps).mean())
        if sem is not None:
            set_label = f"{domain} ({len(images_t)} images{', labels of the synthetic twin' if twin_labels else ''})"
            by_run = {label: (class_saliency_shares(maps_of(b), sem), class_saliency_shares(maps_of(a), sem))
                      for label, (b, a) in runs.items()}
            cols: dict[str, ClassShares] = {}
            for label, (b_sh, a_sh) in by_run.items():
                if not shared_before or not cols:
                    cols["before training" if shared_before else f"{label}: before"] = b_sh
                cols[f"{label}: after"] = a_sh
            shares[set_label] = cols
            texts.append(stable_change_text(f"**{set_label}**", by_run, baseline))
    if rand_rows:
        lines += ["Randomisation check (Adebayo et al. 2018): mean Spearman rank correlation between each trained "
                  "model's maps and those of the same architecture with freshly drawn weights, on the same images "
                  "(1: the map ignores what the model learned).", "",
                  "| run | " + " | ".join(domains) + " |", "| --- |" + " ---: |" * len(domains)]
        lines += [f"| {label} | " + " | ".join(f"{r.get(d, float('nan')):.2f}" for d in domains) + " |"
                  for label, r in rand_rows.items()]
        lines.append("")
    if shares:
        path = plot_shares(shares, out / "plots" / "saliency_shares.png")
        lines += ["Share of the saliency on each semantic class (in brackets: over its share of the pixels; 1x is "
                  "what a uniform map gives). Stable classes look the same in renders and photos, unstable ones "
                  "change with the season, the weather or the domain. Gradient maps weigh the outer pixels of the "
                  "frame less, with random weights too (convolutions see a border pixel from fewer positions), so "
                  "a class along the border (the sky and the ridgeline at the top of oblique views) reads low by "
                  "its position alone: the before-training column carries the same bias, and the change from it "
                  "is what training did. The chart's whiskers are 95 % bootstrap intervals over the images (one "
                  "training seed).", ""]
        for set_label, cols in shares.items():
            lines += [f"*{set_label}*", "", shares_table(cols), ""]
        lines += [f"![saliency share per class]({_link(path, out)})", "", *(t + "\n" for t in texts)]
    else:
        lines += ["_No semantics beside the images: per-class saliency shares not computed._", ""]
    return "\n".join(lines)


def _intro_lines(method: str, kwargs: Mapping[str, Any], size: tuple[int, int], grid: tuple[int, int] | None,
                 stride: int | None, runs: Mapping[str, Any], shared_before: bool) -> list[str]:
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "generator")
    what = _METHOD_TEXT.get(method, method) + (f" ({args})" if args else "")
    if method == "smoothgrad":
        what += (", max over RGB of " + ("|gradient x input| as in AtLoc" if kwargs.get("times_input", True) else
                 "|gradient|: how strongly the pose would move if a pixel's look changed (AtLoc's x input "
                 "would also rank classes by brightness: snow and clouds up, forest down)"))
    before = "the same initial weights for all runs" if shared_before else "each run its own initial weights"
    text = (f"Saliency maps: {what}, of each run's model before any training ({before}) "
            f"and after, on test images; each map is scaled to mean 1, the difference is after minus before "
            f"(red: looks more there after training). Runs: {', '.join(f'`{r}`' for r in runs)}.")
    h, w = size
    if grid is not None and stride:
        res = (f"What the maps can resolve: the models run at {w}x{h} px and the backbone's last feature map has "
               f"{grid[1]}x{grid[0]} cells (stride {stride} px), so the pose is computed from {grid[0] * grid[1]} "
               f"pooled cells; a spatial attention map has that resolution, gradient maps have one value per "
               f"pixel.")
        if method == "smoothgrad" and kwargs.get("max_shift"):
            res += (f" Random shifts of up to {kwargs['max_shift']} px average out the pattern that the "
                    f"stride-2 layers lock to a {stride} px grid.")
        text += "\n\n" + res
    return [text, ""]


def _link(path: Path, out: Path) -> str:
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return path.as_posix()
