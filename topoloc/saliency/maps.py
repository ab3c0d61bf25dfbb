"""Saliency maps of a pose regressor: AtLoc's gradient x input, SmoothGrad, integrated
gradients and the spatial attention, each (B, H, W) at the input's size, one map per image.

All gradient methods run the model in eval mode (dropout off, BatchNorm running statistics), so
an image's map depends on that image only, and leave the model's mode and its parameters'
``.grad`` as they were. Random draws come from an explicit `torch.Generator` (seeded 0 when none
is given), so maps are reproducible.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topoloc._flags import check_flag
from topoloc._modes import eval_mode
from topoloc.models.contract import check_unit_range, prepare, to_unit_float

__all__ = [
    "METHODS",
    "attention_saliency",
    "gradient_saliency",
    "integrated_gradients",
    "saliency",
    "smoothgrad",
]

#: Values of ``saliency(method=...)``.
METHODS = ("gradient", "smoothgrad", "integrated_gradients", "attention")
_TARGETS = ("pose", "translation", "rotation")
Target = str | Callable[[Tensor], Tensor]


def _check_images(fn: str, images: Tensor, normalize: bool) -> Tensor:
    """``images`` checked, and uint8 ones as float in [0, 1] with ``normalize=True`` (as ``model.prepare`` takes)."""
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{fn}: `images` must be a (B, 3, H, W) tensor, got {shape}")
    if normalize and images.dtype == torch.uint8:
        return to_unit_float(images)
    if not images.is_floating_point():
        raise TypeError(f"{fn}: `images` must be floating point (normalised), or uint8 or in [0, 1] with "
                        f"normalize=True, got {images.dtype}")
    return images


def _check_common(fn: str, model: nn.Module, images: Tensor, target: Target, normalize: bool) -> Tensor:
    """The checks every gradient method makes; returns the images as `_check_images` does."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: `model` must be a torch module (an AtLoc), got {type(model).__name__}")
    check_flag(normalize, f"{fn}: normalize")
    images = _check_images(fn, images, normalize)
    if not callable(target) and target not in _TARGETS:
        raise ValueError(f"{fn}: `target` must be one of {_TARGETS} or a callable, got {target!r}")
    if normalize and not hasattr(model, "normalize"):
        raise ValueError(f"{fn}: normalize=True needs a model with a `normalize` method")
    if normalize:  # the model's own check is off below: SmoothGrad's noisy copies leave [0, 1]
        check_unit_range(images, fn)
    return images


def _positive_int(fn: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: `{name}` must be a positive int, got {value!r}")
    return value


def _objective(poses: Tensor, target: Target) -> Tensor:
    """Per-image scalar (B,) whose gradient the saliency follows."""
    if callable(target):
        value = target(poses)
    elif target == "pose":
        value = poses.sum(dim=1)
    elif target == "translation":
        value = poses[:, :3].norm(dim=1)
    else:  # rotation: whatever follows the translation (3 + k numbers)
        value = poses[:, 3:].norm(dim=1)
    if value.shape != poses.shape[:1]:
        raise ValueError(f"saliency: `target` must give one number per image ({poses.shape[0]},), "
                         f"got {tuple(value.shape)}")
    return value


def _input_gradient(model: nn.Module, x: Tensor, target: Target, normalize: bool) -> Tensor:
    """d objective / d x (B, 3, H, W) of images ``x``."""
    x = x.detach().requires_grad_(True)
    poses = model(prepare(model, x, check_range=False) if normalize else x)  # x may be a noisy copy
    (grad,) = torch.autograd.grad(_objective(poses, target).sum(), x)
    return grad


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def gradient_saliency(
    model: nn.Module,
    images: Tensor,
    target: Target = "pose",
    normalize: bool = False,
) -> Tensor:
    """AtLoc's saliency: ``max_c |d objective / d input * input|``.

    Args:
        model: a pose regressor, e.g. `topoloc.AtLoc`, giving (B, 3 + k) numbers.
        images: the model's input. With ``normalize=False`` (default) already normalised, and the
            product is taken with the normalised tensor (as in AtLoc); with ``normalize=True``
            images in [0, 1], normalised inside by ``model.normalize``, and the product is taken
            with the [0, 1] image.
        target: the per-image output whose gradient is followed: ``"pose"`` (default, the sum of
            all pose outputs, the gradient of ``backward(ones)``), ``"translation"`` (norm of the
            predicted translation), ``"rotation"`` (norm of the rotation code) or a callable
            mapping the (B, D) outputs to (B,) numbers.
        normalize: see ``images``.

    Shape:
        - images: (B, 3, H, W)
        - output: (B, H, W), non-negative, on the images' device

    Examples:
        >>> from topoloc import AtLoc
        >>> model = AtLoc("resnet18", feat_dim=32)
        >>> gradient_saliency(model, torch.rand(2, 3, 64, 64), normalize=True).shape
        torch.Size([2, 64, 64])
    """
    images = _check_common("gradient_saliency", model, images, target, normalize)
    with eval_mode(model), torch.enable_grad():
        grad = _input_gradient(model, images, target, normalize)
    return (grad * images.detach()).abs().amax(dim=1)


def _gather_shifted(x: Tensor, dy: Tensor, dx: Tensor, pad: int, mode: str) -> Tensor:
    """``out[b, :, i, j] = x[b, :, i - dy[b], j - dx[b]]``, outside pixels from ``F.pad(mode)``."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    ys = torch.arange(h, device=x.device) + pad - dy.view(b, 1)  # (B, H)
    xs = torch.arange(w, device=x.device) + pad - dx.view(b, 1)  # (B, W)
    bi = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded[bi, :, ys[:, :, None], xs[:, None, :]].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


def _shifted_gradient(model: nn.Module, x: Tensor, dy: Tensor, dx: Tensor, pad: int, target: Target,
                      normalize: bool) -> Tensor:
    """Gradient of the model on each image moved by (dy, dx) px (content down / right, edges
    replicated), taken back to the image's own pixels; 0 for a pixel moved out of the frame.

    The replicated border copies count as constants: their gradient would otherwise pile up on the
    edge pixels. Averaged over offsets this is the gradient of the shift-averaged objective, so
    pixels within ``pad`` of the border, in the frame less often, weigh less.

    Shape:
        - x: (B, 3, H, W) -> (B, 3, H, W)
    """
    seen_grad = _input_gradient(model, _gather_shifted(x, dy, dx, pad, "replicate"), target, normalize)
    return _gather_shifted(seen_grad, -dy, -dx, pad, "constant")


def smoothgrad(
    model: nn.Module,
    images: Tensor,
    target: Target = "pose",
    normalize: bool = False,
    samples: int = 16,
    noise: float = 0.15,
    max_shift: int = 0,
    times_input: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SmoothGrad (Smilkov et al. 2017): the input gradient averaged over noisy copies of each image.

    ``g = mean_n d objective / d x (x + e_n)``, ``e_n ~ N(0, sigma^2)`` with ``sigma = noise *
    (max - min)`` of each image (Smilkov et al. recommend 10-20 %); the map is AtLoc's
    ``max_c |g * x|`` with the clean image ``x`` (``times_input=True``) or ``max_c |g|``.
    With ``max_shift > 0`` each noisy copy is also moved by a random whole-pixel offset in
    ``[-max_shift, max_shift]`` (edges replicated, the copies held constant) and the gradient
    taken back to the image's own pixels: this averages out sensitivity locked to the backbone's
    stride grid (a pattern fixed in pixel coordinates whatever the content) rather than to the
    content. Pixels within ``max_shift`` of the border are in the frame less often and weigh less.

    Args:
        model, images, target, normalize: as for `gradient_saliency` (``noise`` is relative to the
            range of ``images`` as given).
        samples: noisy copies per image (one batched forward / backward pass each).
        noise: noise standard deviation as a share of each image's value range, >= 0.
        max_shift: largest random offset, pixels (0: none; under the image's smaller side).
        times_input: multiply by the input as AtLoc does (its maps then also follow brightness).
        generator: source of the noise and offsets (default: a CPU generator seeded 0).

    Shape:
        - images: (B, 3, H, W)
        - output: (B, H, W), non-negative

    Examples:
        >>> from topoloc import AtLoc
        >>> model = AtLoc("resnet18", feat_dim=32)
        >>> g = torch.Generator().manual_seed(0)
        >>> smoothgrad(model, torch.rand(2, 3, 64, 96), normalize=True, samples=4, generator=g).shape
        torch.Size([2, 64, 96])
    """
    images = _check_common("smoothgrad", model, images, target, normalize)
    check_flag(times_input, "smoothgrad: times_input")
    _positive_int("smoothgrad", "samples", samples)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"smoothgrad: `max_shift` must be a non-negative int (pixels), got {max_shift!r}")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0.0 <= noise < math.inf:
        raise ValueError(f"smoothgrad: `noise` must be a finite number >= 0 (a share of each image's range), got "
                         f"{noise!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"smoothgrad: `generator` must be a torch.Generator or None, got {type(generator).__name__} "
                        "(torch.Generator().manual_seed(seed) for a seed)")
    if max_shift >= min(images.shape[-2:]):
        raise ValueError(f"smoothgrad: `max_shift` must be under the image's smaller side "
                         f"({min(images.shape[-2:])} px), got {max_shift}: such offsets move whole copies "
                         f"out of the frame")
    gen = _generator(generator)
    x = images.detach()
    b = x.shape[0]
    flat = x.flatten(1)
    sigma = (noise * (flat.amax(1) - flat.amin(1))).view(b, 1, 1, 1)
    total = torch.zeros_like(x)
    with eval_mode(model), torch.enable_grad():
        for _ in range(samples):
            eps = torch.randn(x.shape, generator=gen, device=gen.device, dtype=x.dtype).to(x.device)
            if max_shift:
                dy, dx = torch.randint(-max_shift, max_shift + 1, (2, b), generator=gen,
                                       device=gen.device).to(x.device)
                total += _shifted_gradient(model, x + sigma * eps, dy, dx, max_shift, target, normalize)
            else:
                total += _input_gradient(model, x + sigma * eps, target, normalize)
    mean_grad = total / samples
    return (mean_grad * x if times_input else mean_grad).abs().amax(dim=1)


def integrated_gradients(
    model: nn.Module,
    images: Tensor,
    target: Target = "pose",
    normalize: bool = False,
    steps: int = 32,
    baseline: float | Tensor = 0.0,
    attributions: bool = False,
) -> Tensor:
    """Integrated gradients (Sundararajan et al. 2017) from a baseline image to each image.

    ``a = (x - x0) * integral_0^1 d objective / d x (x0 + t (x - x0)) dt``, by the midpoint rule
    with ``steps`` points; the attributions add up to ``objective(x) - objective(x0)``
    (completeness) up to the quadrature error. The map is ``max_c |a|``.

    Args:
        model, images, target, normalize: as for `gradient_saliency`.
        steps: quadrature points (one batched forward / backward pass each).
        baseline: the reference image ``x0`` in the space of ``images``: a number or a tensor
            broadcastable to them (default 0: black with ``normalize=True``, the normalisation
            mean with normalised images).
        attributions: return the signed per-channel attributions instead of the map.

    Shape:
        - images: (B, 3, H, W)
        - output: (B, H, W) non-negative; (B, 3, H, W) signed with ``attributions=True``
    """
    images = _check_common("integrated_gradients", model, images, target, normalize)
    check_flag(attributions, "integrated_gradients: attributions")
    _positive_int("integrated_gradients", "steps", steps)
    x = images.detach()
    try:
        x0 = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"integrated_gradients: `baseline` must be a number or a tensor that broadcasts to the "
                         f"images {tuple(x.shape)}, got {type(baseline).__name__} {str(baseline)[:60]!r}") from err
    total = torch.zeros_like(x)
    with eval_mode(model), torch.enable_grad():
        for k in range(steps):
            t = (k + 0.5) / steps
            total += _input_gradient(model, x0 + t * (x - x0), target, normalize)
    result = (x - x0) * total / steps
    return result if attributions else result.abs().amax(dim=1)


@torch.no_grad()
def attention_saliency(model: nn.Module, images: Tensor, normalize: bool = False) -> Tensor:
    """Map of the attention each image position receives in the spatial attention block.

    The (B, N, N) weights of `SpatialAttention` (rows: queries, each summing to one) are averaged
    over the queries, giving the share of attention each of the ``N = h * w`` feature positions
    receives; it is multiplied by ``N`` (1 = uniform attention) and resized bilinearly from the
    feature grid to the image. It resolves no more than the feature grid: h x w cells of the
    backbone's stride (32 px for a ResNet). Each cell is drawn over its tile of the image; in a padded CNN such as
    a ResNet the receptive field of cell ``j`` is centred near pixel ``stride * j``, about half a cell above and
    left of its tile's centre (a vision transformer's patch is its tile).

    Args:
        model: an `AtLoc` built with ``attention="spatial"`` (anything with
            ``forward_with_attention(images) -> (poses, weights, (h, w))``).
        images: normalised images, or in [0, 1] (or uint8) with ``normalize=True``.
        normalize: apply ``model.normalize`` first.

    Shape:
        - images: (B, 3, H, W)
        - output: (B, H, W), non-negative

    Examples:
        >>> from topoloc import AtLoc
        >>> model = AtLoc("resnet18", attention="spatial", feat_dim=32)
        >>> attention_saliency(model, torch.rand(1, 3, 64, 96), normalize=True).shape
        torch.Size([1, 64, 96])
    """
    check_flag(normalize, "attention_saliency: normalize")
    images = _check_images("attention_saliency", images, normalize)
    if not hasattr(model, "forward_with_attention") or getattr(model, "spatial_attention", True) is None:
        attention = f" with attention={model.attention_type!r}" if hasattr(model, "attention_type") else ""
        raise ValueError("attention_saliency: `model` must be an AtLoc with attention='spatial' "
                         f"(a `forward_with_attention` method), got {type(model).__name__}{attention}")
    # an AtLoc's method (checked above): poses, attention weights and the feature grid (h, w)
    forward = cast(Callable[[Tensor], tuple[Tensor, Tensor, tuple[int, int]]], model.forward_with_attention)
    with eval_mode(model):
        _, weights, (h, w) = forward(prepare(model, images) if normalize else images)
    received = weights.float().mean(dim=1) * (h * w)  # (B, N), mean 1
    grid = received.reshape(-1, 1, h, w)
    return F.interpolate(grid, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def saliency(
    model: nn.Module,
    images: Tensor,
    method: str = "smoothgrad",
    *,
    target: Target = "pose",
    normalize: bool = False,
    **kwargs: Any,
) -> Tensor:
    """One saliency map per image by name of the method.

    Args:
        model: a pose regressor (``"attention"``: an `AtLoc` with ``attention="spatial"``).
        images: normalised images, or in [0, 1] (or uint8) with ``normalize=True``.
        method: ``"gradient"`` (AtLoc's |gradient x input|, `gradient_saliency`),
            ``"smoothgrad"`` (`smoothgrad`), ``"integrated_gradients"`` (`integrated_gradients`)
            or ``"attention"`` (`attention_saliency`).
        target: the output followed by the gradient methods (see `gradient_saliency`).
        normalize: apply ``model.normalize`` inside.
        **kwargs: the method's own arguments (``samples``, ``noise``, ``max_shift``,
            ``times_input``, ``generator``; ``steps``, ``baseline``).

    Shape:
        - images: (B, 3, H, W)
        - output: (B, H, W), non-negative

    Examples:
        >>> from topoloc import AtLoc
        >>> model = AtLoc("resnet18", feat_dim=32)
        >>> saliency(model, torch.rand(2, 3, 64, 64), "integrated_gradients", normalize=True, steps=4).shape
        torch.Size([2, 64, 64])
    """
    if method == "gradient":
        return gradient_saliency(model, images, target=target, normalize=normalize, **kwargs)
    if method == "smoothgrad":
        return smoothgrad(model, images, target=target, normalize=normalize, **kwargs)
    if method == "integrated_gradients":
        return integrated_gradients(model, images, target=target, normalize=normalize, **kwargs)
    if method == "attention":
        if target != "pose":
            raise ValueError("saliency: method='attention' follows no output; leave `target` at 'pose'")
        return attention_saliency(model, images, normalize=normalize, **kwargs)
    raise ValueError(f"saliency: `method` must be one of {METHODS}, got {method!r}")


def __getattr__(name: str) -> Any:
    """`saliency_difference` and `SaliencyDifference`, which moved to `topoloc.saliency.difference`, are still
    importable from here (imported on first use: that module imports this one)."""
    if name in ("saliency_difference", "SaliencyDifference"):
        from topoloc.saliency import difference

        return getattr(difference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
