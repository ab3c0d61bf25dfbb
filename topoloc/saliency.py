"""Where the network looks: gradient saliency, spatial-attention maps, overlays, differences.

AtLoc's "saliency maps" (Wang et al. 2020, Fig. 1) are gradient x input maps: the absolute
product of the input image with the gradient of the pose output with respect to it, maximised
over the RGB channels (`gradient_saliency`). AtLoc's attention acts on a pooled vector and has no
image positions; the spatial attention block of `topoloc.models.SpatialAttention` does, and
`attention_saliency` turns its weights into a map. Every map is (B, H, W) at the input's size.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SaliencyDifference",
    "attention_saliency",
    "gradient_saliency",
    "overlay",
    "saliency_difference",
]

_TARGETS = ("pose", "translation", "rotation")


def _check_images(fn: str, images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{fn}: `images` must be a (B, 3, H, W) tensor, got {shape}")
    if not images.is_floating_point():
        raise TypeError(f"{fn}: `images` must be floating point (normalised, or in [0, 1] with "
                        f"normalize=True), got {images.dtype}")


def _objective(poses: Tensor, target: str | Callable[[Tensor], Tensor]) -> Tensor:
    """Per-image scalar (B,) whose gradient the saliency follows."""
    if callable(target):
        value = target(poses)
    elif target == "pose":
        value = poses.sum(dim=1)
    elif target == "translation":
        value = poses[:, :3].norm(dim=1)
    else:  # rotation
        value = poses[:, 3:].norm(dim=1)
    if value.shape != poses.shape[:1]:
        raise ValueError(f"gradient_saliency: `target` must give one number per image ({poses.shape[0]},), "
                         f"got {tuple(value.shape)}")
    return value


class _EvalMode:
    """Put a module in eval mode for a block and restore its previous mode."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.was_training = module.training

    def __enter__(self) -> nn.Module:
        return self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)


def gradient_saliency(
    model: nn.Module,
    images: Tensor,
    target: str | Callable[[Tensor], Tensor] = "pose",
    normalize: bool = False,
) -> Tensor:
    """AtLoc's saliency: ``max_c |d objective / d input * input|``.

    The model runs in eval mode (dropout off, BatchNorm running statistics), so each image's map
    depends on that image only; the model's mode and its parameters' ``.grad`` are left as they
    were.

    Args:
        model: a pose regressor, e.g. `topoloc.AtLoc`, giving (B, 6) or (B, 7).
        images: the model's input. With ``normalize=False`` (default) already normalised, and the
            product is taken with the normalised tensor (as in AtLoc); with ``normalize=True``
            images in [0, 1], normalised inside by ``model.normalize``, and the product is taken
            with the [0, 1] image.
        target: the per-image output whose gradient is followed: ``"pose"`` (default, the sum of
            all pose outputs, the gradient of ``backward(ones)``), ``"translation"`` (norm of the
            predicted translation), ``"rotation"`` (norm of the predicted rotation vector) or a
            callable mapping the (B, D) poses to (B,) numbers.
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
    _check_images("gradient_saliency", images)
    if not callable(target) and target not in _TARGETS:
        raise ValueError(f"gradient_saliency: `target` must be one of {_TARGETS} or a callable, got {target!r}")
    if normalize and not hasattr(model, "normalize"):
        raise ValueError("gradient_saliency: normalize=True needs a model with a `normalize` method")
    x = images.detach().clone().requires_grad_(True)
    with _EvalMode(model), torch.enable_grad():
        poses = model(model.normalize(x) if normalize else x)
        objective = _objective(poses, target).sum()
        (grad,) = torch.autograd.grad(objective, x)
    return (grad * x.detach()).abs().amax(dim=1)


@torch.no_grad()
def attention_saliency(model: nn.Module, images: Tensor, normalize: bool = False) -> Tensor:
    """Map of the attention each image position receives in the spatial attention block.

    The (B, N, N) weights of `SpatialAttention` (rows: queries, each summing to one) are averaged
    over the queries, giving the share of attention each of the ``N = h * w`` feature positions
    receives; it is multiplied by ``N`` (1 = uniform attention) and resized bilinearly from the
    feature grid to the image.

    Args:
        model: an `AtLoc` built with ``attention="spatial"`` (anything with
            ``forward_with_attention(images) -> (poses, weights, (h, w))``).
        images: normalised images, or in [0, 1] with ``normalize=True``.
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
    _check_images("attention_saliency", images)
    if not hasattr(model, "forward_with_attention"):
        raise ValueError("attention_saliency: `model` must be an AtLoc with attention='spatial' "
                         f"(a `forward_with_attention` method), got {type(model).__name__}")
    with _EvalMode(model):
        _, weights, (h, w) = model.forward_with_attention(model.normalize(images) if normalize else images)
    received = weights.float().mean(dim=1) * (h * w)  # (B, N), mean 1
    grid = received.reshape(-1, 1, h, w)
    return F.interpolate(grid, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


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
    **kwargs: object,
) -> SaliencyDifference:
    """What training changed in where the network looks.

    Both maps are computed with the same ``method`` and each is divided by its own mean over the
    image (gradient magnitudes of two models are not on the same scale), so the difference
    compares *where* the models look: positive where the second model looks relatively more.

    Args:
        model_before: e.g. the model at initialisation or trained on synthetic images.
        model_after: e.g. the same architecture after (further) training.
        images: as for `gradient_saliency` / `attention_saliency`.
        method: ``"gradient"`` or ``"attention"``.
        **kwargs: passed to the saliency function (``target``, ``normalize``).

    Shape:
        - images: (B, 3, H, W)
        - output: three (B, H, W) tensors; ``before`` and ``after`` non-negative with mean 1 per
          image, ``difference`` signed.
    """
    functions = {"gradient": gradient_saliency, "attention": attention_saliency}
    if method not in functions:
        raise ValueError(f"saliency_difference: `method` must be one of {sorted(functions)}, got {method!r}")
    fn = functions[method]
    before = _unit_mean(fn(model_before, images, **kwargs))
    after = _unit_mean(fn(model_after, images, **kwargs))
    return SaliencyDifference(before, after, after - before)


def _unit_mean(maps: Tensor) -> Tensor:
    mean = maps.mean(dim=(-2, -1), keepdim=True)
    return maps / mean.clamp_min(torch.finfo(maps.dtype).tiny)


def _colormap_lut(name: str, device: torch.device) -> Tensor:
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError as err:
        raise ValueError(f"overlay: `cmap` {name!r} is not a matplotlib colormap") from err
    lut = cmap(torch.linspace(0, 1, 256).numpy())[:, :3]
    return torch.as_tensor(lut, dtype=torch.float32, device=device)  # (256, 3)


def overlay(
    image: Tensor,
    saliency: Tensor,
    alpha: float = 0.5,
    cmap: str | None = None,
    clip_quantile: float = 0.99,
) -> Tensor:
    """Blend a saliency map, coloured by a matplotlib colormap, over an RGB image.

    Non-negative maps are scaled per image to [0, 1] by their ``clip_quantile`` quantile (gradient
    maps are spiky) and coloured with ``"jet"``; signed maps (e.g. a `saliency_difference`) are
    scaled symmetrically about 0 by the quantile of their absolute value and coloured with the
    diverging ``"RdBu_r"`` (red: more, blue: less). The result is
    ``(1 - alpha) * image + alpha * colour``.

    Args:
        image: RGB image(s), float in [0, 1] or uint8.
        saliency: map(s) at the image size.
        alpha: weight of the colour, in [0, 1].
        cmap: matplotlib colormap name (default as above).
        clip_quantile: quantile mapped to the top of the colormap, in (0, 1].

    Shape:
        - image: (3, H, W) or (B, 3, H, W)
        - saliency: (H, W) or (B, H, W)
        - output: like ``image``, float in [0, 1] (to save:
          ``(out.permute(1, 2, 0) * 255).round().byte().cpu().numpy()`` for a PIL image)

    Examples:
        >>> out = overlay(torch.zeros(3, 4, 4), torch.arange(16.0).view(4, 4), alpha=1.0)
        >>> out.shape, float(out.min()) >= 0.0, float(out.max()) <= 1.0
        (torch.Size([3, 4, 4]), True, True)
    """
    single = image.ndim == 3
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"overlay: `image` must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    if saliency.ndim != image.ndim - 1 or saliency.shape[-2:] != image.shape[-2:] or (
            not single and saliency.shape[0] != image.shape[0]):
        raise ValueError(f"overlay: `saliency` must be {'(H, W)' if single else '(B, H, W)'} at the image "
                         f"size, got {tuple(saliency.shape)} for an image of {tuple(image.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: `alpha` must be in [0, 1], got {alpha}")
    if not 0.0 < clip_quantile <= 1.0:
        raise ValueError(f"overlay: `clip_quantile` must be in (0, 1], got {clip_quantile}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    images = image.float().unsqueeze(0) if single else image.float()
    maps = saliency.detach().float().unsqueeze(0) if single else saliency.detach().float()
    if not torch.isfinite(maps).all():
        raise ValueError("overlay: `saliency` has non-finite values")
    flat = maps.flatten(1)
    signed = bool((flat < 0).any())
    eps = torch.finfo(torch.float32).tiny
    if signed:
        scale = torch.quantile(flat.abs(), clip_quantile, dim=1).clamp_min(eps).view(-1, 1, 1)
        unit = (maps / scale).clamp(-1.0, 1.0) * 0.5 + 0.5
    else:
        low = flat.amin(dim=1).view(-1, 1, 1)
        high = torch.quantile(flat, clip_quantile, dim=1).view(-1, 1, 1)
        unit = ((maps - low) / (high - low).clamp_min(eps)).clamp(0.0, 1.0)
    lut = _colormap_lut(cmap or ("RdBu_r" if signed else "jet"), images.device)
    colour = lut[(unit * 255).round().long()].permute(0, 3, 1, 2)  # (B, 3, H, W)
    out = ((1.0 - alpha) * images + alpha * colour).clamp(0.0, 1.0)
    return out[0] if single else out
