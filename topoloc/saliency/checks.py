"""Sanity checks for saliency maps (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS
2018), to run on your own model and method.

- `randomisation_check`: the maps of a model and of the same architecture with every weight
  drawn afresh must differ (Spearman rank correlation well below 1). A map that survives the
  randomisation shows the architecture or the input, not what the model learned.
- `planted_cue_check`: a model trained on images where one region alone sets the target must put
  most of its saliency there; the same model trained where that region is noise, the target
  independent of it, must not.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from topoloc.saliency.maps import METHODS, saliency

__all__ = [
    "PlantedCueCheck",
    "RandomisationCheck",
    "planted_cue_data",
    "planted_cue_check",
    "randomisation_check",
    "randomize_weights",
    "rank",
    "region_share",
    "spearman",
]


def rank(values: Tensor) -> Tensor:
    """Ranks (1..N) along the last dimension, ties given their average rank (as scipy's ``rankdata``).

    Shape:
        - values: (..., N)
        - output: (..., N), float64

    Examples:
        >>> rank(torch.tensor([10.0, 30.0, 20.0, 20.0]))
        tensor([1.0000, 4.0000, 2.5000, 2.5000], dtype=torch.float64)
    """
    shape = values.shape
    x = values.reshape(-1, shape[-1])
    rows, n = x.shape
    sorted_x, order = x.sort(dim=1, stable=True)
    new_group = torch.ones_like(sorted_x, dtype=torch.bool)
    new_group[:, 1:] = sorted_x[:, 1:] != sorted_x[:, :-1]
    group = new_group.long().cumsum(1) - 1 + torch.arange(rows, device=x.device).view(-1, 1) * n  # (rows, N)
    position = torch.arange(1, n + 1, device=x.device, dtype=torch.float64).expand(rows, n)
    sums = torch.zeros(rows * n, dtype=torch.float64, device=x.device).index_add_(
        0, group.flatten(), position.flatten())
    counts = torch.zeros(rows * n, dtype=torch.float64, device=x.device).index_add_(
        0, group.flatten(), torch.ones(rows * n, dtype=torch.float64, device=x.device))
    mean_rank = (sums / counts.clamp_min(1))[group]  # (rows, N) in sorted order
    ranks = torch.empty_like(mean_rank).scatter_(1, order, mean_rank)
    return ranks.reshape(shape)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of each pair of maps (the Pearson correlation of their ranks).

    Shape:
        - a, b: (B, ...) with the same shape; everything after the first dimension is flattened
        - output: (B,), float64, in [-1, 1] (NaN where a map is constant)

    Examples:
        >>> round(spearman(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 40.0, 90.0]])).item(), 6)
        1.0
    """
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"spearman: expected two (B, ...) tensors of the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    ra, rb = rank(a.detach().flatten(1)), rank(b.detach().flatten(1))
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


def _check_seed(fn: str, seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{fn}: `seed` must be a non-negative int, got {seed!r}")


def _own_random_state():
    """`torch.random.fork_rng` over the CPU's and every CUDA device's generators: ``torch.manual_seed`` inside
    seeds them all, and each gets its state back after (``devices=[]`` had left the CUDA ones reseeded)."""
    return torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else [])


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every weight drawn afresh (Adebayo et al.'s full randomisation).

    Modules with ``reset_parameters`` (convolutions, linear layers, norms) are re-initialised by it
    (BatchNorm running statistics too); any other parameter is drawn from a normal distribution
    with the original tensor's standard deviation. The global random state is left untouched.

    Args:
        model: any module; it is not modified.
        seed: seeds the new weights.
    """
    _check_seed("randomize_weights", seed)
    clone = copy.deepcopy(model)
    covered: set[int] = set()
    with _own_random_state():
        torch.manual_seed(seed)
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                covered.update(id(p) for p in module.parameters(recurse=False))
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in clone.parameters():
                if id(p) not in covered:
                    std = float(p.std()) if p.numel() > 1 else 1.0
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * (std or 1.0))
    return clone


@dataclass
class RandomisationCheck:
    """Result of `randomisation_check`.

    Attributes:
        rank_correlation: (B,) Spearman correlation per image between the model's map and the
            randomised model's map.
        threshold: the largest mean correlation that passes.
    """

    rank_correlation: Tensor
    threshold: float

    @property
    def mean(self) -> float:
        return float(self.rank_correlation.mean())

    @property
    def passed(self) -> bool:
        return self.mean < self.threshold


def randomisation_check(
    model: nn.Module,
    images: Tensor,
    method: str = "smoothgrad",
    seed: int = 0,
    threshold: float = 0.5,
    **kwargs: Any,
) -> RandomisationCheck:
    """Model randomisation test: the maps must change when the weights are drawn afresh.

    Args:
        model: the (trained) model.
        images: as for `topoloc.saliency.saliency` (pass ``normalize=True`` for [0, 1] images).
        method: one of `METHODS`.
        seed: seeds the randomised weights.
        threshold: the check passes when the mean rank correlation is below it.
        **kwargs: passed to `topoloc.saliency.saliency` for both models (the same noise for
            both when ``generator`` is given or defaulted).

    Shape:
        - images: (B, 3, H, W) -> ``rank_correlation`` (B,)
    """
    if method not in METHODS:
        raise ValueError(f"randomisation_check: `method` must be one of {METHODS}, got {method!r}")
    _check_seed("randomisation_check", seed)
    random_model = randomize_weights(model, seed)
    if method != "smoothgrad":
        trained = saliency(model, images, method, **kwargs)
        randomised = saliency(random_model, images, method, **kwargs)
    else:  # the same noise and offsets for both models
        generator = kwargs.pop("generator", None) or torch.Generator().manual_seed(0)
        state = generator.get_state()
        trained = saliency(model, images, method, generator=generator, **kwargs)
        generator.set_state(state)
        randomised = saliency(random_model, images, method, generator=generator, **kwargs)
    return RandomisationCheck(spearman(trained, randomised), threshold)


# ----------------------------------------------------------------------------- planted cue
def region_share(maps: Tensor, region: tuple[int, int, int, int]) -> Tensor:
    """Share of each map's mass inside ``region`` = (top, bottom, left, right) pixels (end exclusive).

    Shape:
        - maps: (B, H, W), non-negative -> (B,)
    """
    top, bottom, left, right = region
    inside = maps[:, top:bottom, left:right].sum(dim=(1, 2))
    return inside / maps.sum(dim=(1, 2)).clamp_min(torch.finfo(maps.dtype).tiny)


def planted_cue_data(
    n: int,
    size: tuple[int, int],
    region: tuple[int, int, int, int],
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Images of uniform pixel noise with a flat patch of random colour in ``region``; the target
    is that colour.

    Args:
        n: images.
        size: (H, W) pixels.
        region: (top, bottom, left, right) pixels (end exclusive) of the patch.
        generator: source of the images.

    Shape:
        - output: images (n, 3, H, W) in [0, 1]; targets (n, 3): the patch's RGB, standardised
          (zero mean, unit variance)
    """
    images = torch.rand(n, 3, *size, generator=generator)
    colour = torch.rand(n, 3, generator=generator)
    top, bottom, left, right = region
    images[:, :, top:bottom, left:right] = colour[:, :, None, None]
    return images, (colour - 0.5) * 12.0 ** 0.5


def _first_three(outputs: Tensor) -> Tensor:
    return outputs[:, :3].sum(dim=1)


@dataclass
class PlantedCueCheck:
    """Result of `planted_cue_check` (shares of the saliency mass inside the cue region).

    Attributes:
        cue_share: of the model trained on the colour of a patch in the region.
        control_share: of the model trained on a patch elsewhere (the region holds noise).
        area_share: the region's share of the pixels (what a uniform map gives).
        cue_loss, control_loss: final training losses (targets have unit variance).
        cue_model, control_model: the two trained models (in eval mode).

    The mass of a gradient map over ``N`` irrelevant pixels shrinks only as the square root of
    the loss times ``N`` (each weight on noise costs its square in the loss, but counts with its
    absolute value in the mass), so the models must fit well: about 1e-3 for half the mass on a
    quarter of a 32 x 32 image.
    """

    cue_share: float
    control_share: float
    area_share: float
    cue_loss: float
    control_loss: float
    cue_model: nn.Module | None = None
    control_model: nn.Module | None = None

    @property
    def passed(self) -> bool:
        """Most mass on the cue when it sets the target, less than its area share when not."""
        return self.cue_share > 0.5 and self.control_share < self.area_share


def planted_cue_check(
    model_fn: Callable[[], nn.Module],
    size: tuple[int, int] = (32, 32),
    region: tuple[int, int, int, int] | None = None,
    control_region: tuple[int, int, int, int] | None = None,
    method: str = "gradient",
    train_steps: int = 800,
    batch_size: int = 32,
    lr: float = 1e-2,
    eval_images: int = 32,
    seed: int = 0,
    **kwargs: Any,
) -> PlantedCueCheck:
    """Train two copies of a model on planted cues and measure where their saliency goes.

    Both copies start from the same weights (``model_fn()`` under ``torch.manual_seed(seed)``).
    The first learns the colour of a patch planted in ``region`` (`planted_cue_data`); the second
    the colour of a patch planted in ``control_region``, while ``region`` holds pixel noise,
    independent of its target. Adam on the squared error, fresh images every step; the model's
    first 3 outputs are trained and the saliency follows their sum. Both shares are measured in
    ``region``, on held-out images of each model's own kind.

    Args:
        model_fn: builds the model (any module mapping (B, 3, H, W) images in [0, 1] to (B, >= 3)).
        size: (H, W) of the images.
        region: (top, bottom, left, right) of the cue (default: the top-left quarter of the image).
        control_region: the region the control model learns (default: the bottom-right quarter).
        method: the saliency method checked (one of `METHODS`).
        train_steps, batch_size, lr: training of each copy (Adam, the rate decayed linearly to 0).
        eval_images: held-out images on which the shares are measured.
        seed: seeds the weights, the images and the noise of the maps.
        **kwargs: passed to `topoloc.saliency.saliency` (not ``target`` or ``generator``: the check sets them).
    """
    if method not in METHODS:
        raise ValueError(f"planted_cue_check: `method` must be one of {METHODS}, got {method!r}")
    _check_seed("planted_cue_check", seed)
    for name in ("target", "generator"):  # set below: saliency() got them twice, a bare TypeError
        if name in kwargs:
            raise ValueError(f"planted_cue_check: `{name}` is set by the check (the saliency follows the sum of "
                             f"the first 3 outputs, its noise is seeded by `seed`); leave it out")
    h, w = size
    region = region or (0, h // 2, 0, w // 2)
    control_region = control_region or (h - h // 2, h, w - w // 2, w)
    results = []
    for target_region in (region, control_region):
        with _own_random_state():
            torch.manual_seed(seed)
            model = model_fn()
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        # Adam's steps keep a weight that should be 0 at about +-lr: decay the rate to 0, else the
        # weights on the noise pixels never settle and spread saliency over them.
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / train_steps)
        model.train()
        loss = torch.tensor(float("nan"))
        for _ in range(train_steps):
            x, y = planted_cue_data(batch_size, size, target_region, gen)
            loss = ((model(x)[:, :3] - y) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
        x, _ = planted_cue_data(eval_images, size, target_region, torch.Generator().manual_seed(seed + 1))
        extra: dict[str, Any] = {} if method == "attention" else {"target": _first_three}
        if method == "smoothgrad":
            extra["generator"] = torch.Generator().manual_seed(seed)
        maps = saliency(model, x, method, **extra, **kwargs)
        results.append((float(region_share(maps, region).mean()), float(loss.detach()), model.eval()))
    top, bottom, left, right = region
    return PlantedCueCheck(cue_share=results[0][0], control_share=results[1][0],
                           area_share=(bottom - top) * (right - left) / (h * w),
                           cue_loss=results[0][1], control_loss=results[1][1],
                           cue_model=results[0][2], control_model=results[1][2])
