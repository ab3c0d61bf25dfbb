"""Where saliency falls, per semantic class: shares of the saliency mass against shares of the
pixels, per image, with bootstrap intervals for changes and the sentence that states them.

A class's *share* is the fraction of a map's mass on its pixels; its *enrichment* is that share
over the class's share of the pixels (1: what a uniform map gives). Shares are computed per image
(each image weighs the same) and pooled by the mean over images, so a change between two models
on the same images has a paired, per-image bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from topoloc.data.semantics import SEMANTIC_CLASSES, STABLE_CLASSES, UNSTABLE_CLASSES

__all__ = [
    "MIN_IMAGES_FOR_DIRECTION",
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
    "ClassShares",
    "bootstrap_mean",
    "class_saliency_shares",
    "per_image_shares",
    "shares_table",
    "stable_change_text",
]


@dataclass
class ClassShares:
    """Per-image shares (0..1) of the saliency mass and of the pixels on each semantic class.

    Attributes:
        names: class name of each column.
        saliency_per_image: (N, K) share of each image's saliency mass on each class.
        area_per_image: (N, K) share of each image's pixels on each class.
        saliency: class name -> mean share of the saliency over the images.
        area: class name -> mean share of the pixels.
    """

    names: list[str]
    saliency_per_image: np.ndarray
    area_per_image: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.saliency_per_image.shape[0])

    @property
    def saliency(self) -> dict[str, float]:
        return dict(zip(self.names, self.saliency_per_image.mean(0).tolist()))

    @property
    def area(self) -> dict[str, float]:
        return dict(zip(self.names, self.area_per_image.mean(0).tolist()))

    def _columns(self, classes: Sequence[str]) -> list[int]:
        return [i for i, n in enumerate(self.names) if n in classes]

    def group_per_image(self, classes: Sequence[str], of: str = "saliency") -> np.ndarray:
        """(N,) share of each image on a group of classes (absent classes count 0)."""
        table = self.saliency_per_image if of == "saliency" else self.area_per_image
        return table[:, self._columns(classes)].sum(1)

    def group(self, classes: Sequence[str], of: str = "saliency") -> float:
        """Mean share of a group of classes (absent classes count 0)."""
        return float(self.group_per_image(classes, of).mean()) if self.n_images else 0.0

    def enrichment(self, classes: Sequence[str]) -> float:
        """Saliency share over pixel share of a group (NaN when the group has no pixels)."""
        area = self.group(classes, "area")
        return self.group(classes) / area if area > 0 else float("nan")

    def enrichment_interval(self, classes: Sequence[str], resamples: int = 2000, level: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
        """Percentile bootstrap interval over the images of `enrichment`: the images are resampled with
        their saliency and pixel shares together, and a resample whose images hold no pixel of the group
        is left out. ``(nan, nan)`` when the group has no pixels; the enrichment twice for a single image.

        Example:
            >>> s = ClassShares(["road"], np.array([[0.25], [0.5]]), np.array([[0.125], [0.125]]))
            >>> s.enrichment(["road"]), s.enrichment_interval(["road"])
            (3.0, (2.0, 4.0))
        """
        sal, area = self.group_per_image(classes), self.group_per_image(classes, "area")
        if sal.size == 0 or area.sum() == 0:
            return float("nan"), float("nan")
        if sal.size == 1:
            return float(sal[0] / area[0]), float(sal[0] / area[0])
        pick = _resamples(sal.size, resamples, seed)
        s, a = sal[pick].mean(1), area[pick].mean(1)
        return _percentile_interval(s[a > 0] / a[a > 0], level)

    @property
    def stable(self) -> float:
        return self.group(STABLE_CLASSES)

    @property
    def unstable(self) -> float:
        return self.group(UNSTABLE_CLASSES)


def per_image_shares(
    maps: Tensor,
    semantics: Tensor,
    classes: Mapping[int, str] | None = None,
) -> ClassShares:
    """Share of each image's saliency mass, and of its pixels, on each semantic class.

    Semantics of another size than the maps are resized with nearest-neighbour sampling; ids not
    in the class table count as ``"unknown"``; classes without a pixel in any image are left out.

    Args:
        maps: non-negative saliency maps.
        semantics: integer class ids per pixel.
        classes: id -> name (default: `topoloc.data.semantics.SEMANTIC_CLASSES`).

    Shape:
        maps: (B, H, W), semantics: (B, h, w) -> (B, K) shares

    Example:
        >>> maps = torch.tensor([[[3.0, 1.0], [0.0, 0.0]]])
        >>> sem = torch.tensor([[[6, 0], [0, 0]]], dtype=torch.uint8)
        >>> s = per_image_shares(maps, sem, {0: "sky", 6: "road"})
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
    classes = dict(classes if classes is not None else SEMANTIC_CLASSES)
    sem = semantics.long().cpu()
    if sem.shape[-2:] != maps.shape[-2:]:
        # nearest at pixel centres, as `topoloc.data.read_semantics` ("nearest" takes each cell's top-left pixel)
        sem = F.interpolate(sem[:, None].float(), size=maps.shape[-2:], mode="nearest-exact")[:, 0].long()
    if (sem < 0).any():
        raise ValueError("semantics: expected non-negative class ids")
    b = maps.shape[0]
    k = int(max(int(sem.max()), max(classes) if classes else 0)) + 1
    m = maps.detach().double().cpu().flatten(1)
    m = m / m.sum(1, keepdim=True).clamp_min(1e-300)
    index = sem.flatten(1) + k * torch.arange(b).view(b, 1)
    mass = torch.zeros(b * k, dtype=torch.float64).index_add_(0, index.flatten(), m.flatten()).view(b, k)
    area = torch.bincount(index.flatten(), minlength=b * k).double().view(b, k) / m.shape[1]
    names: list[str] = []
    columns: dict[str, list[int]] = {}
    for cid in range(k):
        if area[:, cid].sum() == 0:
            continue
        name = classes.get(cid, "unknown")
        if name not in columns:
            names.append(name)
            columns[name] = []
        columns[name].append(cid)
    sal = torch.stack([mass[:, columns[n]].sum(1) for n in names], 1) if names else torch.zeros(b, 0)
    pix = torch.stack([area[:, columns[n]].sum(1) for n in names], 1) if names else torch.zeros(b, 0)
    return ClassShares(names, sal.numpy(), pix.numpy())


def class_saliency_shares(maps: Tensor, semantics: Tensor, classes: Mapping[int, str] | None = None) -> ClassShares:
    """Shares of saliency and pixels per class over a batch (see `per_image_shares`; each image
    weighs the same)."""
    return per_image_shares(maps, semantics, classes)


def bootstrap_mean(values: np.ndarray, resamples: int = 2000, level: float = 0.95, seed: int = 0
                   ) -> tuple[float, float, float]:
    """Mean of per-image values and its percentile bootstrap interval over the images.

    Args:
        values: (N,) one number per image (e.g. the change of an image's stable share).
        resamples: bootstrap resamples.
        level: coverage of the interval.
        seed: seeds the resampling (numpy ``default_rng``).

    Returns:
        ``(mean, low, high)``; the interval is ``(mean, mean)`` for a single image.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values: expected a non-empty (N,) array, got shape {values.shape}")
    mean = float(values.mean())
    if values.size == 1:
        return mean, mean, mean
    return (mean, *_percentile_interval(values[_resamples(values.size, resamples, seed)].mean(1), level))


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) image indices drawn with replacement (numpy ``default_rng(seed)``): the bootstrap's."""
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of a bootstrap's ``samples``."""
    tail = (1.0 - level) / 2.0
    return float(np.quantile(samples, tail)), float(np.quantile(samples, 1.0 - tail))


def shares_table(shares: Mapping[str, ClassShares]) -> str:
    """Markdown table of shares on the same images: one row per class (most pixels first) and one
    per group (stable, unstable); the share of the pixels, then for each column of ``shares`` the
    share of the saliency and, in brackets, its enrichment (saliency share / pixel share).

    Args:
        shares: column heading (e.g. ``"before training"``, ``"<run>: after"``) -> `ClassShares`.
    """
    if not shares:
        raise ValueError("shares: expected at least one column")
    first = next(iter(shares.values()))
    heads = list(shares)
    lines = ["| class | pixels | " + " | ".join(heads) + " |", "| --- | ---: |" + " ---: |" * len(heads)]

    def cell(s: ClassShares, classes: Sequence[str]) -> str:
        share, area = s.group(classes), s.group(classes, "area")
        return f"{100 * share:.1f}% ({share / area:.2f}x)" if area > 0 else "-"

    area = first.area
    for name in sorted(first.names, key=lambda n: -area[n]):
        lines.append(f"| {name} | {100 * area[name]:.1f}% | " + " | ".join(cell(s, [name]) for s in shares.values())
                     + " |")
    for group, classes in (("stable", STABLE_CLASSES), ("unstable", UNSTABLE_CLASSES)):
        lines.append(f"| {group} ({', '.join(classes)}) | {100 * first.group(classes, 'area'):.1f}% | "
                     + " | ".join(cell(s, classes) for s in shares.values()) + " |")
    return "\n".join(lines)


#: Fewest images for which `stable_change_text` states a direction from the bootstrap interval.
MIN_IMAGES_FOR_DIRECTION = 8


def _pp(value: float) -> str:
    """Percentage points with their sign, ``+0.0`` for what rounds to zero (never ``-0.0``)."""
    return f"{round(100 * value, 1) + 0.0:+.1f} pp"


def stable_change_text(
    label: str,
    runs: Mapping[str, tuple[ClassShares, ClassShares]],
    baseline: str | None = None,
    seed: int = 0,
) -> str:
    """The change of the stable classes' saliency share that training made, from the numbers.

    For each run: the mean share before and after training and the mean per-image change with its
    95 % bootstrap interval over the images; for each run against ``baseline``: the difference of
    the two changes (paired over the images) and its direction, "towards" / "away from" the
    stable classes only when the interval excludes 0 and there are at least
    `MIN_IMAGES_FOR_DIRECTION` images. The intervals cover the images, not the training seed.

    Args:
        label: the image set, e.g. ``"real (16 images)"``.
        runs: run label -> (shares before training, shares after), all on the same images.
        baseline: the run the others are compared with (None: no comparison).
        seed: seeds the bootstrap.
    """
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline: expected one of {list(runs)}, got {baseline!r}")
    changes = {run: a.group_per_image(STABLE_CLASSES) - b.group_per_image(STABLE_CLASSES)
               for run, (b, a) in runs.items()}
    parts = []
    for run, (b, a) in runs.items():
        m, lo, hi = bootstrap_mean(changes[run], seed=seed)
        parts.append(f"with `{run}` from {100 * b.stable:.1f}% to {100 * a.stable:.1f}% ({_pp(m)}; 95% interval "
                     f"{_pp(lo)} to {_pp(hi)})")
    first = next(iter(runs.values()))[0]
    text = [f"{label}: training moved the stable classes' share of the saliency " + "; ".join(parts)
            + f"; these classes cover {100 * first.group(STABLE_CLASSES, 'area'):.1f}% of the pixels (intervals: "
            "bootstrap over the images, one training seed)."]
    if baseline is not None:
        for run in runs:
            if run == baseline:
                continue
            m, lo, hi = bootstrap_mean(changes[run] - changes[baseline], seed=seed)
            if first.n_images < MIN_IMAGES_FOR_DIRECTION:
                text.append(f"Training with `{run}` rather than `{baseline}` changed the stable share by {_pp(m)}; "
                            f"{first.n_images} images are too few to tell a direction (at least "
                            f"{MIN_IMAGES_FOR_DIRECTION} needed).")
            elif lo > 0 or hi < 0:
                text.append(f"Training with `{run}` rather than `{baseline}` moved attention "
                            f"{'towards' if lo > 0 else 'away from'} the stable classes by {abs(100 * m):.1f} pp "
                            f"(95% interval {_pp(lo)} to {_pp(hi)}).")
            else:
                text.append(f"Training with `{run}` rather than `{baseline}` changed the stable share by {_pp(m)}, "
                            f"with a 95% interval ({_pp(lo)} to {_pp(hi)}) that contains 0: on these "
                            f"{first.n_images} images no shift towards or away from the stable classes is "
                            "distinguishable from chance.")
    return " ".join(text)
