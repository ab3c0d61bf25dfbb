"""Saliency maps drawn over images: a matplotlib colormap blended with the RGB image."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from topoloc.models.contract import check_unit_range, to_unit_float

__all__ = ["overlay"]


def _colormap_lut(name: str, device: torch.device) -> Tensor:
    import matplotlib  # noqa: PLC0415 - deferred: the maps themselves need no matplotlib

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
    vmax: float | None = None,
    signed: bool | None = None,
) -> Tensor:
    """Blend a saliency map, coloured by a matplotlib colormap, over an RGB image.

    Non-negative maps are stretched per image from their minimum to their ``clip_quantile`` quantile (gradient
    maps are spiky; a map that never reaches 0, such as an attention map, shows its contrast, not its level: pass
    ``vmax`` for a scale from 0) and coloured with ``"jet"``; signed maps (e.g. a `saliency_difference`) are
    scaled symmetrically about 0 by the quantile of their absolute value and coloured with the
    diverging ``"RdBu_r"`` (red: more, blue: less). The result is
    ``(1 - alpha) * image + alpha * colour``.

    Args:
        image: RGB image(s), float in [0, 1] or uint8.
        saliency: map(s) at the image size.
        alpha: weight of the colour, in [0, 1].
        cmap: matplotlib colormap name (default as above).
        clip_quantile: quantile mapped to the top of the colormap, in (0, 1].
        vmax: one scale for every image instead: non-negative maps go from 0 to ``vmax``, signed ones from
            ``-vmax`` to ``vmax`` (to compare maps, as in a figure with a colour bar); ``clip_quantile`` unused.
        signed: colour the maps as signed ones (about 0) or not; None: signed when any value is negative.

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
    for name, value in (("image", image), ("saliency", saliency)):
        if not isinstance(value, Tensor):
            raise TypeError(f"overlay: `{name}` must be a torch tensor, got {type(value).__name__} "
                            "(torch.from_numpy(a) for a numpy array)")
    single = image.ndim == 3
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"overlay: `image` must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    if saliency.ndim != image.ndim - 1 or saliency.shape[-2:] != image.shape[-2:] or (
            not single and saliency.shape[0] != image.shape[0]):
        raise ValueError(f"overlay: `saliency` must be {'(H, W)' if single else '(B, H, W)'} at the image "
                         f"size, got {tuple(saliency.shape)} for an image of {tuple(image.shape)}")
    if image.shape[-2] == 0 or image.shape[-1] == 0 or (not single and image.shape[0] == 0):
        raise ValueError(f"overlay: `image` holds no pixel or no image, got {tuple(image.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: `alpha` must be in [0, 1], got {alpha}")
    if not 0.0 < clip_quantile <= 1.0:
        raise ValueError(f"overlay: `clip_quantile` must be in (0, 1], got {clip_quantile}")
    check_unit_range(image, "overlay", name="image")  # a float image in [0, 255] was clamped to white
    image = to_unit_float(image)
    images = image.float().unsqueeze(0) if single else image.float()
    maps = saliency.detach().float().unsqueeze(0) if single else saliency.detach().float()
    if not torch.isfinite(maps).all():
        raise ValueError("overlay: `saliency` has non-finite values")
    flat = maps.flatten(1)
    signed = bool((flat < 0).any()) if signed is None else bool(signed)
    eps = torch.finfo(torch.float32).tiny
    if vmax is not None:
        if isinstance(vmax, bool) or not isinstance(vmax, (int, float)) or not 0.0 < vmax < math.inf:
            raise ValueError(f"overlay: `vmax` must be a finite number > 0, got {vmax!r}")
        unit = (maps / vmax).clamp(-1.0, 1.0) * 0.5 + 0.5 if signed else (maps / vmax).clamp(0.0, 1.0)
    elif signed:
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
