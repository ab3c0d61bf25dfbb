"""Unsupervised test-time adaptation: batch-norm statistics re-estimated on the test images (AdaBN).

A network trained on renders normalises every layer with the renders' feature statistics. Photos of
another season, light or camera shift those statistics; AdaBN (Li et al., "Revisiting Batch
Normalization For Practical Domain Adaptation", 2016) replaces each batch-norm layer's running
mean and variance by those of the target images, with no labels and no gradient step. For a
flight's photos localised after the flight, the target is the flight's own photos (one set of
statistics per flight and domain); the weights stay those of training.

The statistics are those of the whole set, layer by layer: each batch-norm layer's running mean and
(unbiased) variance become the mean and variance of its input over every target image, with the model
in ``eval()`` mode and the layers before it already adapted, i.e. the inputs it sees at test time. A
set whose pass fits in `ONE_PASS_BYTES` (a flight of a few hundred images at the demo's size) goes
through once, as one batch, each layer taking its statistics just before it normalises with them;
a larger one layer by layer, one pass over the images per layer, each stopped at that layer (about half
a network's forward cost per layer), combined in float64. Either way the result does not depend on the
batch size or the images' order (beyond float rounding), and dropout or stochastic depth play no
part. (Until 2026-12-07 this was ``torch.optim.swa_utils.update_bn``: the average of per-batch
statistics taken in train mode, whose variance leaves out the spread of the batch means; at the
default batch of 64 it moved the demo's AdaBN positions by about 1 m at the median, at 16 by 9 m.)
"""

from __future__ import annotations

import contextlib
import copy
import numbers
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from topoloc._device import module_device, resolve_device
from topoloc.data.cache import as_cache
from topoloc.models.contract import check_model, prepare, resolve_input_size, unwrap_model

__all__ = ["ADAPTATIONS", "ADABN_LABEL", "adapt_batchnorm", "has_batchnorm"]

#: Test-time adaptations `topoloc.engine.evaluate` knows, by name.
ADAPTATIONS = ("adabn",)
#: What reports append to a run's name for its AdaBN evaluation.
ADABN_LABEL = "AdaBN"
#: Target sets that take at most this much memory (estimated) go through in one pass; larger ones layer by layer.
ONE_PASS_BYTES = 1 << 30


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

    The copy's weights are the model's; every batch-norm layer's running mean and unbiased variance
    become those of its input over all of ``data``'s images, layer by layer in ``eval()`` mode (the
    module docstring). ``batch_size`` only sets how many images go through at once. The copy is
    returned in ``eval()`` mode; ``model`` itself is unchanged.

    Args:
        model: a trained `AtLoc` (anything with ``prepare`` or ``normalize``; a DDP or compiled
            wrapper is unwrapped).
        data: the target images: an `ImageCache` or a dataset of sample dicts (e.g. the photos of
            one flight, no poses needed for the statistics).
        batch_size: images per forward pass, at least 2 (kept from the batch-statistics version; the
            statistics do not depend on it).
        device: where to run; ``None``: the model's device.
        image_size: (H, W) in pixels; ``None``: the size the model records (as `predict`).
        seed: a non-negative int; no effect on the statistics since they are the whole set's (kept
            for the callers that pass it).

    Returns:
        The adapted copy, in ``eval()`` mode, on ``device``.

    Raises:
        ValueError: ``model`` has no batch-norm layer with running statistics (nothing to adapt),
            ``data`` has no image, a layer sees fewer than 2 values per channel over all of them, or
            ``batch_size`` is not an int >= 2.
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
    adapted = copy.deepcopy(raw).to(device).eval()

    def prepared(rows: Tensor) -> Tensor:
        images, _ = cache.batch(rows, device)
        return prepare(adapted, images, channels_last=True)  # faster on both CPU and GPU

    def batches() -> Iterator[Tensor]:
        for chunk in torch.arange(len(cache)).split(batch_size):
            yield prepared(chunk)

    with torch.no_grad():
        layers, per_image = _in_call_order(adapted, prepared(torch.arange(min(2, len(cache)))))
        if len(cache) * per_image <= ONE_PASS_BYTES:  # the whole set in one eval-mode pass, statistics set by hooks
            _one_pass(adapted, layers, torch.cat(list(batches())))
            return adapted
        for layer in layers:
            _set_statistics(layer, *_input_statistics(adapted, layer, batches))
    return adapted


def _set_statistics(layer: Any, mean: Tensor, var: Tensor) -> None:
    """A batch-norm layer's running statistics set to ``mean`` and ``var`` (in the layer's dtype and device)."""
    layer.running_mean.copy_(mean.to(layer.running_mean))
    layer.running_var.copy_(var.to(layer.running_var))
    layer.num_batches_tracked.zero_()


@contextlib.contextmanager
def _pre_hooks(layers: Sequence[nn.Module], hook: Callable[..., None]) -> Iterator[None]:
    """``hook`` as a forward pre-hook of every layer of ``layers`` while the block runs."""
    handles = [layer.register_forward_pre_hook(hook) for layer in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _one_pass(model: nn.Module, layers: list[nn.Module], images: Tensor) -> None:
    """Every layer of ``layers`` takes the statistics of its input over ``images`` (the whole set) in one
    forward pass in eval mode: a hook sets each layer's running mean and unbiased variance from its input
    just before the layer normalises that input with them (at its first call)."""
    done: set[nn.Module] = set()

    def adapt(module: Any, inputs: Any) -> None:
        if module in done:
            return
        x = inputs[0]
        _check_count(module, x.numel() // x.shape[1])
        var, mean = torch.var_mean(_wide(x), dim=[d for d in range(x.dim()) if d != 1], correction=1)
        _set_statistics(module, mean, var)
        done.add(module)

    with _pre_hooks(layers, adapt):
        model(images)


class _Reached(Exception):
    """Raised by a hook to end a forward pass at the layer whose input it has taken."""


def _in_call_order(model: nn.Module, probe: Tensor) -> tuple[list[nn.Module], int]:
    """The batch-norm layers with running statistics of ``model``, in the order a forward pass calls them, and
    an estimate of the memory one image takes in a pass (bytes): its input and four times the largest
    batch-norm input (the layer's input and output, and the convolution around them)."""
    called: list[nn.Module] = []
    largest = 0

    def note(module: nn.Module, inputs: Any) -> None:
        nonlocal largest
        largest = max(largest, inputs[0].numel() * inputs[0].element_size() // len(inputs[0]))
        if module not in called:
            called.append(module)

    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    with _pre_hooks(layers, note):
        model(probe)
    return called, probe[0].numel() * probe.element_size() + 4 * largest


def _input_statistics(model: nn.Module, layer: nn.Module, batches: Callable[[], Iterator[Tensor]]
                      ) -> tuple[Tensor, Tensor]:
    """Mean and unbiased variance per channel of ``layer``'s input over every image of ``batches()``; each
    forward pass ends at the layer (its first call, when a layer is called twice). Each batch's mean and
    sum of squared deviations are combined in float64 (Chan et al.'s pairwise update), which is stable
    where the mean is large against the spread."""
    n = mean = m2 = None

    def take(_module: nn.Module, inputs: Any) -> None:
        nonlocal n, mean, m2
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]  # every axis but the channels'
        count = x.numel() // x.shape[1]
        var_b, mean_b = torch.var_mean(_wide(x), dim=dims, correction=0)
        mean_b, m2_b = mean_b.double(), var_b.double() * count
        if n is None:
            n, mean, m2 = count, mean_b, m2_b
        else:
            delta, total = mean_b - mean, n + count
            mean = mean + delta * (count / total)
            m2 = m2 + m2_b + delta * delta * (n * count / total)
            n = total
        raise _Reached

    with _pre_hooks([layer], take):
        for images in batches():
            try:
                model(images)
            except _Reached:
                pass
    assert n is not None and mean is not None and m2 is not None  # at least one batch reached the layer
    _check_count(layer, n)
    return mean, m2 / (n - 1)


def _wide(x: Tensor) -> Tensor:
    """``x`` in float32 for the statistics, or float64 where the model computes in it (its precision kept)."""
    return x.double() if x.dtype == torch.float64 else x.float()


def _check_count(layer: nn.Module, count: int) -> None:
    """Refuse a layer that sees fewer than 2 values per channel over all the images: no variance (one pass gave
    NaN, the layer-by-layer path 0, which divides by sqrt(eps))."""
    if count < 2:
        raise ValueError(f"data: AdaBN needs at least 2 values per channel at every batch-norm layer; {layer} sees "
                         f"{count} over all the images (one image with a 1 x 1 feature map or a vector): pass "
                         "more images")
