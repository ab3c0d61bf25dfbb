"""What training changed in where a network looks: the maps of two models on the same images, each
scaled to mean 1, and their difference (`saliency_difference`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from topoloc.saliency.maps import METHODS, _generator, saliency

__all__ = ["SaliencyDifference", "saliency_difference"]


class SaliencyDifference(NamedTuple):
    """Maps of two models on the same images, each scaled to mean 1, and ``after - before``."""

    before: Tensor
    after: Tensor
    difference: Tensor


def saliency_difference(
    model_before: nn.Module,
    model_after: nn.Module,
    images: Tensor,
    method: str = "gradient",
    **kwargs: Any,
) -> SaliencyDifference:
    """What training changed in where the network looks.

    Both maps are computed with the same ``method`` (and, for SmoothGrad, the same noise: a
    ``generator`` is copied for the second model) and each is divided by its own mean over the
    image (gradient magnitudes of two models are not on the same scale), so the difference
    compares *where* the models look: positive where the second model looks relatively more.

    Args:
        model_before: e.g. the model at initialisation or trained on synthetic images.
        model_after: e.g. the same architecture after (further) training.
        images: as for `saliency`.
        method: one of `METHODS` (see `saliency`).
        **kwargs: passed to `saliency` (``target``, ``normalize``, the method's arguments).

    Shape:
        - images: (B, 3, H, W)
        - output: three (B, H, W) tensors; ``before`` and ``after`` non-negative with mean 1 per
          image, ``difference`` signed.
    """
    if method not in METHODS:
        raise ValueError(f"saliency_difference: `method` must be one of {METHODS}, got {method!r}")
    gen = kwargs.pop("generator", None)
    extra: dict[str, Any] = {}
    state = None
    if method == "smoothgrad":
        gen = _generator(gen)
        state = gen.get_state()
        extra["generator"] = gen
    before = _unit_mean(saliency(model_before, images, method, **kwargs, **extra))
    if state is not None:
        gen.set_state(state)  # the same noise and offsets for both models
    after = _unit_mean(saliency(model_after, images, method, **kwargs, **extra))
    return SaliencyDifference(before, after, after - before)


def _unit_mean(maps: Tensor) -> Tensor:
    mean = maps.mean(dim=(-2, -1), keepdim=True)
    return maps / mean.clamp_min(torch.finfo(maps.dtype).tiny)
