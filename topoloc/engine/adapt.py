"""Unsupervised test-time adaptation: batch-norm statistics re-estimated on the test images (AdaBN).

A network trained on renders normalises every layer with the renders' feature statistics. Photos of
another season, light or camera shift those statistics; AdaBN (Li et al., "Revisiting Batch
Normalization For Practical Domain Adaptation", 2016) replaces each batch-norm layer's running
mean and variance by those of the target images, with no labels and no gradient step. For a
flight's photos localised after the flight, the target is the flight's own photos (one set of
statistics per flight and domain); the weights stay those of training.

The statistics are the average over batches of the per-batch statistics, as
``torch.optim.swa_utils.update_bn`` computes them (it does the re-estimation here).
"""

from __future__ import annotations

import copy
import numbers
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn

from topoloc._device import module_device, resolve_device
from topoloc.data.cache import as_cache
from topoloc.models.contract import check_model, prepare, resolve_input_size, unwrap_model

__all__ = ["ADAPTATIONS", "ADABN_LABEL", "adapt_batchnorm", "has_batchnorm"]

#: Test-time adaptations `topoloc.engine.evaluate` knows, by name.
ADAPTATIONS = ("adabn",)
#: What reports append to a run's name for its AdaBN evaluation.
ADABN_LABEL = "AdaBN"


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch-norm layer that tracks running statistics."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


def adapt_batchnorm(
    model: nn.Module,
    data: Any,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    image_size: tuple[int, int] | None = None,
    seed: int = 0,
) -> nn.Module:
    """A copy of ``model`` whose batch-norm statistics are those of ``data``'s images (AdaBN).

    The copy's weights are the model's; every batch-norm layer's running mean and variance are
    reset and re-estimated from the images of ``data`` (in batches of ``batch_size``, in an order
    shuffled by ``seed``: a flight's consecutive photos are alike, and each batch's statistics should
    be the whole set's). Dropout does not change them (it is off during the pass). The copy is
    returned in ``eval()`` mode; ``model`` itself is unchanged.

    Args:
        model: a trained `AtLoc` (anything with ``prepare`` or ``normalize``; a DDP or compiled
            wrapper is unwrapped).
        data: the target images: an `ImageCache` or a dataset of sample dicts (e.g. the photos of
            one flight, no poses needed for the statistics).
        batch_size: images per forward pass, at least 2 (a batch-norm layer needs two values per
            channel); the images are split into ``len(data) // batch_size`` nearly equal batches
            (one batch when there are fewer), so none is left out and each weighs the same.
        device: where to run; ``None``: the model's device.
        image_size: (H, W) in pixels; ``None``: the size the model records (as `predict`).
        seed: seeds the order of the images.

    Returns:
        The adapted copy, in ``eval()`` mode, on ``device``.

    Raises:
        ValueError: ``model`` has no batch-norm layer with running statistics (nothing to adapt),
            ``data`` has no image, or ``batch_size`` is not an int >= 2.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"adapt_batchnorm: `batch_size` must be an int >= 2, got {batch_size!r}")
    raw = unwrap_model(check_model(model, "adapt_batchnorm"))
    if not has_batchnorm(raw):
        raise ValueError(f"adapt_batchnorm: {type(raw).__name__} has no batch-norm layer with running statistics; "
                         "AdaBN has nothing to re-estimate")
    device = module_device(raw) if device is None else resolve_device(device)
    image_size = resolve_input_size(raw, image_size, data, where="adapt_batchnorm")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"adapt_batchnorm: `seed` must be a non-negative int, got {seed!r}")
    cache = as_cache(data, image_size, name="adapt_batchnorm: data")
    if len(cache) == 0:
        raise ValueError("adapt_batchnorm: `data` has no image to take the statistics of")
    adapted = copy.deepcopy(raw).to(device)
    order = torch.randperm(len(cache), generator=torch.Generator().manual_seed(seed))
    dropouts = [m for m in adapted.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]

    def batches() -> Iterator[Tensor]:
        for dropout in dropouts:  # update_bn puts the model in train(); the statistics without dropout
            dropout.eval()
        for chunk in torch.tensor_split(order, max(1, len(cache) // batch_size)):
            images, _ = cache.batch(chunk, device)
            yield prepare(adapted, images, channels_last=True)  # faster on both CPU and GPU

    with torch.no_grad():
        update_bn(batches(), adapted)
    return adapted.eval()
