"""Saliency figures as in AtLoc (image | before training | after training | difference) and the
share of saliency on stable vs unstable semantic classes.

The maps come from `topoloc.saliency` (``gradient_saliency``: AtLoc's max-over-RGB
|gradient x input|); each map is scaled to mean 1 per image before it is compared, so the
shares and the differences say *where* a model looks, not how strongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.figure import Figure  # no pyplot: no global backend, no open figures
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topoloc.saliency import SaliencyDifference, overlay, saliency_difference

__all__ = [
    "DEFAULT_SEMANTIC_CLASSES",
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
    "ClassShares",
    "class_saliency_shares",
    "compute_saliency",
    "plot_saliency_figure",
    "saliency_report",
    "shares_table",
]

#: Mini-Comballaz / INTERFACES.md class table (used when topoloc.procedural is not importable).
DEFAULT_SEMANTIC_CLASSES: dict[int, str] = {
    0: "sky", 1: "meadow", 2: "forest_evergreen", 3: "forest_deciduous", 4: "rock", 5: "water",
    6: "road", 7: "building", 8: "snow", 9: "cloud", 10: "real_only", 11: "ridgeline",
}
#: Classes that look the same in renders and photos, across seasons and weather.
STABLE_CLASSES: tuple[str, ...] = ("road", "building", "rock", "ridgeline")
#: Classes that change between renders and photos, seasons or hours (or exist in photos only).
UNSTABLE_CLASSES: tuple[str, ...] = ("sky", "cloud", "forest_deciduous", "snow", "real_only")


def _semantic_classes() -> dict[int, str]:
    try:
        from topoloc.procedural import SEMANTIC_CLASSES  # noqa: PLC0415
    except ImportError:
        return dict(DEFAULT_SEMANTIC_CLASSES)
    return dict(SEMANTIC_CLASSES)


def compute_saliency(
    model_before: nn.Module,
    model_after: nn.Module,
    images: Tensor,
    device: str | torch.device | None = None,
) -> SaliencyDifference:
    """Gradient saliency of two models on uint8 images (each map scaled to mean 1), and the difference.

    Args:
        model_before: e.g. the untrained model (same seed as the trained one).
        model_after: the trained model.
        images: uint8 RGB images.
        device: where to run (default: ``model_after``'s device).

    Shape:
        images: (B, 3, H, W) uint8 -> three (B, H, W) float maps on the CPU.
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images: expected a uint8 tensor of shape (B, 3, H, W), got {shape}")
    device = torch.device(device) if device is not None else next(model_after.parameters()).device
    x = images.to(device).float() / 255.0
    diff = saliency_difference(model_before.to(device), model_after.to(device), x, method="gradient",
                               normalize=True)
    return SaliencyDifference(*(m.detach().float().cpu() for m in diff))


@dataclass
class ClassShares:
    """Share (0..1) of the saliency mass, and of the pixels, on each semantic class.

    Attributes:
        saliency: class name -> share of the summed (mean-1 per image) saliency.
        area: class name -> share of the pixels (what a uniform map would give).
    """

    saliency: dict[str, float]
    area: dict[str, float]

    def group(self, classes: Sequence[str], of: str = "saliency") -> float:
        """Total share of a group of classes (absent classes count 0)."""
        d = self.saliency if of == "saliency" else self.area
        return float(sum(d.get(c, 0.0) for c in classes))

    @property
    def stable(self) -> float:
        return self.group(STABLE_CLASSES)

    @property
    def unstable(self) -> float:
        return self.group(UNSTABLE_CLASSES)


def class_saliency_shares(
    maps: Tensor,
    semantics: Tensor,
    classes: Mapping[int, str] | None = None,
) -> ClassShares:
    """Share of saliency mass on each semantic class, over a batch of images.

    Each map is first divided by its mean (so every image weighs the same); the class masses are
    one ``scatter_add`` over all pixels of the batch. Semantics of another size than the maps are
    resized with nearest-neighbour sampling.

    Args:
        maps: non-negative saliency maps.
        semantics: integer class ids per pixel.
        classes: id -> name (default: `topoloc.procedural.SEMANTIC_CLASSES`); ids not in the table
            are counted as ``"unknown"``.

    Shape:
        maps: (B, H, W), semantics: (B, h, w) -> shares per class name

    Example:
        >>> maps = torch.tensor([[[3.0, 1.0], [0.0, 0.0]]])
        >>> sem = torch.tensor([[[6, 0], [0, 0]]], dtype=torch.uint8)
        >>> s = class_saliency_shares(maps, sem, {0: "sky", 6: "road"})
        >>> s.saliency["road"], s.area["road"]
        (0.75, 0.25)
    """
    if not isinstance(maps, Tensor) or maps.ndim != 3:
        raise ValueError(f"maps: expected saliency maps of shape (B, H, W), got "
                         f"{tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__}")
    if not isinstance(semantics, Tensor) or semantics.ndim != 3 or semantics.shape[0] != maps.shape[0]:
        raise ValueError(f"semantics: expected class ids of shape ({maps.shape[0]}, h, w), got "
                         f"{tuple(semantics.shape) if isinstance(semantics, Tensor) else type(semantics).__name__}")
    if semantics.is_floating_point():
        raise TypeError(f"semantics: expected integer class ids, got {semantics.dtype}")
    if (maps < 0).any() or not torch.isfinite(maps).all():
        raise ValueError("maps: expected finite, non-negative saliency")
    classes = dict(classes) if classes is not None else _semantic_classes()
    sem = semantics.long()
    if sem.shape[-2:] != maps.shape[-2:]:
        sem = F.interpolate(sem[:, None].float(), size=maps.shape[-2:], mode="nearest")[:, 0].long()
    if (sem < 0).any():
        raise ValueError("semantics: expected non-negative class ids")
    maps = maps.double()
    maps = maps / maps.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-30)
    k = int(max(sem.max().item(), max(classes) if classes else 0)) + 1
    mass = torch.zeros(k, dtype=torch.float64).scatter_add_(0, sem.flatten(), maps.flatten())
    area = torch.bincount(sem.flatten(), minlength=k).double()
    total_mass, total_area = mass.sum().clamp_min(1e-30), area.sum()
    sal_share: dict[str, float] = {}
    area_share: dict[str, float] = {}
    for cid in range(k):
        if area[cid] == 0:
            continue
        name = classes.get(cid, "unknown")
        sal_share[name] = sal_share.get(name, 0.0) + float(mass[cid] / total_mass)
        area_share[name] = area_share.get(name, 0.0) + float(area[cid] / total_area)
    return ClassShares(sal_share, area_share)


def shares_table(shares: Mapping[str, tuple[ClassShares, ClassShares]]) -> str:
    """Markdown table: for each image set, the share of pixels and of saliency (before / after
    training) on the stable and unstable classes.

    Args:
        shares: image-set label -> (shares before training, shares after training).
    """
    lines = ["| images | group | share of pixels | saliency before training | saliency after training |",
             "| --- | --- | ---: | ---: | ---: |"]
    for label, (before, after) in shares.items():
        for group, names in (("stable (" + ", ".join(STABLE_CLASSES) + ")", STABLE_CLASSES),
                             ("unstable (" + ", ".join(UNSTABLE_CLASSES) + ")", UNSTABLE_CLASSES)):
            lines.append(f"| {label} | {group} | {100 * before.group(names, 'area'):.1f}% | "
                         f"{100 * before.group(names):.1f}% | {100 * after.group(names):.1f}% |")
    return "\n".join(lines)


def _hwc(t: Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def plot_saliency_figure(
    images: Tensor,
    maps: SaliencyDifference,
    path: str | PathLike,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One row per image: image | map before training | map after training | difference.

    Args:
        images: uint8 or float [0, 1] RGB images.
        maps: from `compute_saliency` (or `topoloc.saliency.saliency_difference`).
        path: the PNG to write.
        row_labels: a label per row (e.g. image names).
        title: figure title.

    Shape:
        images: (B, 3, H, W); maps: three (B, H, W)
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
    b = images.shape[0]
    if any(m.shape != (b, *images.shape[-2:]) for m in maps):
        raise ValueError(f"maps: expected three ({b}, {images.shape[-2]}, {images.shape[-1]}) maps, got "
                         f"{[tuple(m.shape) for m in maps]}")
    if row_labels is not None and len(row_labels) != b:
        raise ValueError(f"row_labels: expected {b} labels, got {len(row_labels)}")
    imgs = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    imgs = imgs.cpu()
    panels = [imgs, overlay(imgs, maps.before), overlay(imgs, maps.after), overlay(imgs, maps.difference)]
    heads = ["image", "before training", "after training", "difference (red: more)"]
    h, w = images.shape[-2:]
    fig = Figure(figsize=(4 * 2.6, b * 2.6 * h / w + 0.6))
    axes = fig.subplots(b, 4, squeeze=False)
    for i in range(b):
        for j in range(4):
            ax = axes[i, j]
            ax.imshow(_hwc(panels[j][i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(heads[j], fontsize=9)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _semantics_twin(ds):
    """The synthetic `TopoFlight` of the same flight with semantics, or None when there are none."""
    from topoloc.data import TopoFlight  # noqa: PLC0415

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
    return bool(paths) and all(_real_semantics_path(ds, i).is_file() for i in range(len(paths)))


def _pick(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, max(1, min(k, n))).round().astype(int))


def saliency_report(
    model_before: nn.Module,
    model_after: nn.Module,
    datasets: Sequence,
    out_dir: str | PathLike,
    image_size: tuple[int, int] | None = None,
    figure_images: int = 3,
    share_images: int = 16,
    device: str | torch.device | None = None,
    run_label: str = "trained",
) -> str:
    """Saliency figures per domain (image | before | after | difference) and, where the renders
    have semantics, the stable vs unstable saliency shares; returns the markdown section.

    Images are spread evenly over each dataset. Renders take their labels from
    ``<stem>_semantics.npy``; real photos from ``<flight>-real/<picname>_semantics.npy`` where it
    exists (Mini-Comballaz writes it, with the photo's clouds, snow and real-only objects), else the
    labels of the render at the same pose (same geometry, without what only the photo shows).

    Args:
        model_before: e.g. the untrained model (same architecture and seed).
        model_after: the trained model.
        datasets: `TopoFlight` test sets (synthetic and / or real).
        out_dir: figures go to ``out_dir/plots/saliency_<domain>.png``; links are relative to ``out_dir``.
        image_size: (H, W) the model runs at (None: the datasets' size).
        figure_images: rows of each figure.
        share_images: images per domain for the shares.
        device: where the models run.
        run_label: name of the trained run in the text.
    """
    from topoloc.data._images import read_semantics  # noqa: PLC0415
    from topoloc.data.cache import resize_uint8  # noqa: PLC0415

    if not datasets:
        raise ValueError("datasets: expected at least one test dataset, got none")
    out = Path(out_dir)
    lines = [f"Gradient saliency (AtLoc's max-over-RGB |gradient x input|) of the `{run_label}` model before "
             "training (the same architecture and seed, untrained) and after, on test images; each map is "
             "scaled to mean 1, the difference is after minus before (red: looks more there after training).", ""]
    shares: dict[str, tuple[ClassShares, ClassShares]] = {}
    for domain in sorted({ds.domain for ds in datasets}, reverse=True):  # synthetic, then real
        sets = [ds for ds in datasets if ds.domain == domain and len(ds)]
        if not sets:
            continue
        images, names, sems, all_sem = [], [], [], True
        for ds in sets:
            twin = None if domain == "real" and _has_real_semantics(ds) else _semantics_twin(ds)
            row_of = {int(r): j for j, r in enumerate(twin.rows)} if twin is not None else {}
            for i in _pick(len(ds), max(1, share_images // len(sets))):
                sample = ds[int(i)]
                img = sample["image"]
                images.append(resize_uint8(img, tuple(image_size)) if image_size else img)
                names.append(sample["name"])
                row = int(sample.get("index", -1))
                if not all_sem:
                    continue
                if "semantics" in sample:
                    sems.append(sample["semantics"])
                elif twin is None and domain == "real" and _has_real_semantics(ds):
                    sems.append(read_semantics(_real_semantics_path(ds, int(i))))
                elif row in row_of:
                    sems.append(twin[row_of[row]]["semantics"])
                else:
                    all_sem = False
        images_t = torch.stack(images)
        maps = compute_saliency(model_before, model_after, images_t, device=device)
        fig = _pick(len(images_t), figure_images)
        path = plot_saliency_figure(images_t[fig], SaliencyDifference(*(m[fig] for m in maps)),
                                    out / "plots" / f"saliency_{domain}.png", row_labels=[names[i] for i in fig],
                                    title=f"{domain} test images: image | before | after | difference")
        try:
            link = path.relative_to(out).as_posix()
        except ValueError:
            link = path.as_posix()
        lines += [f"![saliency, {domain}]({link})", ""]
        if all_sem and sems:
            sem = torch.stack(sems)
            twin_labels = domain == "real" and not all(_has_real_semantics(ds) for ds in sets)
            label = f"{domain} ({len(images_t)} images{', labels of the synthetic twin' if twin_labels else ''})"
            shares[label] = (class_saliency_shares(maps.before, sem), class_saliency_shares(maps.after, sem))
    if shares:
        lines += ["Share of the saliency mass on stable classes and on unstable ones, before and after training; "
                  "the share of pixels is what a uniform map would give.", "", shares_table(shares), ""]
    else:
        lines += ["_No semantics beside the renders: per-class saliency shares not computed._", ""]
    return "\n".join(lines)
