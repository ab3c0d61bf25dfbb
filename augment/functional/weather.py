"""Weather: a cloud layer with its shadows, snow cover, and haze (aerial perspective).

Pure batched functions: no randomness, one parameter value per image, everything on the
image's device. Inputs are float ``(B, 3, H, W)`` images in ``[0, 1]``; outputs are clamped to
``[0, 1]`` and have the input's dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from augment._checks import check_batch, check_values
from augment.functional._utils import excess_green, luminance, per_image, rgb_constant, sobel_xy, work_dtype
from augment.functional.noise import fractal_noise

__all__ = ["cloud_layer", "snow_cover", "haze"]


def cloud_layer(
    image: Tensor,
    seed: Tensor,
    opacity: Tensor,
    coverage: Tensor,
    softness: Tensor,
    color: Tensor,
    scale: Tensor,
    shadow_strength: Tensor,
    shadow_shift: Tensor,
    octaves: int = 5,
    max_scale: float | None = None,
    noise_resolution: int | None = 128,
) -> Tensor:
    """Lay a fractal cloud layer over the image and cast its shadows on the ground.

    The cloud density is an fBm field standardised per image and passed through a logistic
    step at the Gaussian quantile of ``coverage``, so ``coverage`` is about the share of the
    image under cloud. The shadow is the same density field translated by ``shadow_shift``
    (pixels; the sun's direction), darkening the ground before the clouds are composited:
    ``out = ground * (1 - opacity * d) + color * (0.8 + 0.2 * d) * opacity * d``: thin cloud is up to 20 %
    darker than its dense core (it is lit through less of itself).

    Args:
        image: RGB images in ``[0, 1]``.
        seed: integer-valued noise seed per image.
        opacity: cloud opacity in ``[0, 1]`` (0 leaves the image unchanged apart from shadows).
        coverage: share of the sky covered, in ``[0, 1]``.
        softness: width of the cloud edge in standard deviations of the field, > 0 (below 1e-3 it acts as
            1e-3, a hard edge).
        color: cloud colour, RGB in ``[0, 1]``.
        scale: base-octave noise cells across the longest side (larger = smaller clouds), > 0.
        shadow_strength: how much a fully shadowed pixel darkens, in ``[0, 1]``.
        shadow_shift: shadow displacement ``(dx, dy)`` in pixels.
        octaves: fBm octaves (static).
        max_scale: an upper bound on ``scale`` known in advance (avoids a device sync).
        noise_resolution: longest side of the grid the fBm fields are evaluated on before a
            bilinear upsampling to the image size (clouds are soft; ``None``: full resolution).

    Returns:
        The clouded images, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; color: :math:`(B, 3)`; shadow_shift: :math:`(B, 2)`
        - seed, opacity, coverage, softness, scale, shadow_strength: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> ground = torch.full((1, 3, 8, 8), 0.3)
        >>> overcast = cloud_layer(ground, torch.tensor([3.0]), torch.ones(1), torch.ones(1), torch.tensor([0.01]),
        ...                        torch.ones(1, 3), torch.tensor([2.0]), torch.zeros(1), torch.zeros(1, 2))
        >>> overcast.unique()  # full cover, opaque white: d = 1, so 0.3 * 0 + 1 * (0.8 + 0.2) * 1
        tensor([1.])
    """
    check_batch(image, seed=seed, opacity=opacity, coverage=coverage, softness=softness, color=color, scale=scale,
                shadow_strength=shadow_strength, shadow_shift=shadow_shift,
                shapes={"color": (3,), "shadow_shift": (2,)})
    for name, value in (("opacity", opacity), ("coverage", coverage), ("color", color),
                        ("shadow_strength", shadow_strength)):
        check_values(value, name, at_least=0.0, at_most=1.0)
    check_values(softness, "softness", above=0.0, below=math.inf)
    for name, value in (("seed", seed), ("shadow_shift", shadow_shift)):
        check_values(value, name, above=-math.inf, below=math.inf)
    if noise_resolution is not None and (isinstance(noise_resolution, bool) or not isinstance(noise_resolution, int)
                                         or noise_resolution < 1):
        raise ValueError(f"noise_resolution must be a positive int or None, got {noise_resolution!r}.")
    if max_scale is not None and isinstance(max_scale, (int, float)):
        check_values(scale, "scale", above=0.0, at_most=float(max_scale))  # a lattice sized for less reads its edge
    return _cloud_layer(image, seed, opacity, coverage, softness, color, scale, shadow_strength, shadow_shift, octaves,
                        max_scale, noise_resolution)


def _cloud_layer(image: Tensor, seed: Tensor, opacity: Tensor, coverage: Tensor, softness: Tensor, color: Tensor,
                 scale: Tensor, shadow_strength: Tensor, shadow_shift: Tensor, octaves: int = 5,
                 max_scale: float | None = None, noise_resolution: int | None = 128) -> Tensor:
    """:func:`cloud_layer` without its checks (the kornia op passes values drawn from its checked ranges)."""
    if max_scale is None:  # the noise synchronises for the bound anyway (the kornia op passes its own)
        check_values(scale, "scale", above=0.0, below=math.inf)  # 0 divided by zero in the noise lattice
    batch, _, height, width = image.shape
    work = work_dtype(image.dtype)
    x = image.to(work)
    side = float(max(height, width))
    scale_w = scale.to(device=x.device, dtype=work)
    # Both fields in one batched call: the cloud field and the same field shifted by the shadow.
    shift = shadow_shift.to(device=x.device, dtype=work) * (scale_w / side).view(-1, 1)
    offsets = torch.cat((torch.zeros_like(shift), -shift))
    seeds = seed.to(x.device).repeat(2)
    grid = (height, width)
    if noise_resolution is not None and side > noise_resolution:
        grid = (max(1, math.ceil(height * noise_resolution / side)), max(1, math.ceil(width * noise_resolution / side)))
    fields = fractal_noise(seeds, offsets, scale_w.repeat(2), grid, octaves, 0.5, 2.0, "value", max_scale, work)
    if grid != (height, width):
        fields = F.interpolate(fields, size=(height, width), mode="bilinear", align_corners=False)
    cloud_field, shadow_field = fields[:batch], fields[batch:]
    mean = cloud_field.mean(dim=(1, 2, 3), keepdim=True)
    # One pixel has no spread: the population std (0, clamped) keeps it finite where the sample std is NaN.
    std = cloud_field.std(dim=(1, 2, 3), keepdim=True, correction=1 if height * width > 1 else 0).clamp_min(1e-6)
    cov = per_image(coverage, x).clamp(1e-6, 1.0 - 1e-6)
    threshold = math.sqrt(2.0) * torch.erfinv(1.0 - 2.0 * cov)
    soft = per_image(softness, x).clamp_min(1e-3)
    density = torch.sigmoid(((cloud_field - mean) / std - threshold) / soft)
    shadow = torch.sigmoid(((shadow_field - mean) / std - threshold) / soft)
    ground = x * (1.0 - per_image(shadow_strength, x) * shadow)
    alpha = per_image(opacity, x) * density
    cloud_rgb = per_image(color, x, 3) * (0.8 + 0.2 * density)
    out = ground * (1.0 - alpha) + cloud_rgb * alpha
    return out.clamp(0.0, 1.0).to(image.dtype)


def snow_cover(
    image: Tensor,
    amount: Tensor,
    softness: Tensor,
    brightness: Tensor,
    mask: Tensor | None = None,
) -> Tensor:
    """Whiten vegetation and flat areas to imitate snow cover.

    Each pixel gets a snow affinity in ``[0, 1]`` from its colour and its surroundings:
    ``(0.5 * grass + 0.3 * flatness + 0.2 * luma) * (1 - water)``. Grass is green (a logistic
    of the normalised excess-green index) and bright (a smoothstep of the luma from 0.15 to
    0.4), so meadows and fields whiten first while dark forest canopies stay dark longest;
    flatness is ``exp(-|grad luma| / 0.05)`` (Sobel), so textured rock faces stay bare; water
    (blue above the mean of red and green by 0.02 to 0.1) takes no snow. A pixel is covered
    where its affinity exceeds ``1 - amount``, with a smoothstep of width ``softness``; snow
    keeps a little of the ground's shading. ``amount = 0`` is the identity.

    Args:
        image: RGB images in ``[0, 1]``.
        amount: snow amount in ``[0, 1]`` (0: none, 1: nearly everything).
        softness: width of the snow line in affinity units, > 0 (below 1e-3 it acts as 1e-3, a hard line).
        brightness: brightness of the snow in ``[0, 1]``.
        mask: optional ``[0, 1]`` map of where snow may lie (e.g. from semantics).

    Returns:
        The snowy images, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; mask: :math:`(B, 1, H, W)`
        - amount, softness, brightness: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(snow_cover(image, torch.zeros(1), torch.tensor([0.1]), torch.ones(1)), image)  # no snow
        True
    """
    check_batch(image, amount=amount, softness=softness, brightness=brightness, mask=mask,
                shapes={"mask": (1, "H", "W")})
    for name, value in (("amount", amount), ("brightness", brightness)):
        check_values(value, name, at_least=0.0, at_most=1.0)
    check_values(softness, "softness", above=0.0, below=math.inf)
    if mask is not None:
        check_values(mask, "mask", at_least=0.0, at_most=1.0)
    return _snow_cover(image, amount, softness, brightness, mask)


def _snow_cover(image: Tensor, amount: Tensor, softness: Tensor, brightness: Tensor,
                mask: Tensor | None = None) -> Tensor:
    """:func:`snow_cover` without its checks (the kornia op passes values drawn from its checked ranges)."""
    work = work_dtype(image.dtype)
    x = image.to(work)
    luma = luminance(x)
    bright = ((luma - 0.15) / 0.25).clamp(0.0, 1.0)
    grass = torch.sigmoid((excess_green(x) - 0.05) / 0.05) * bright * bright * (3.0 - 2.0 * bright)
    gx, gy = sobel_xy(luma)
    flatness = torch.exp(-torch.sqrt(gx * gx + gy * gy + 1e-12) / 0.05)
    r, g, b = x.unbind(1)
    water = ((b - 0.5 * (r + g) - 0.02) / 0.08).clamp(0.0, 1.0).unsqueeze(1)
    affinity = (0.5 * grass + 0.3 * flatness + 0.2 * luma) * (1.0 - water)
    cover = ((affinity + per_image(amount, x) - 1.0) / per_image(softness, x).clamp_min(1e-3)).clamp(0.0, 1.0)
    cover = cover * cover * (3.0 - 2.0 * cover)
    if mask is not None:
        if mask.shape != luma.shape:
            raise ValueError(f"mask must have shape {tuple(luma.shape)}, got {tuple(mask.shape)}.")
        cover = cover * mask.to(work)
    snow_rgb = rgb_constant((0.94, 0.96, 1.0), x)
    snow = snow_rgb * per_image(brightness, x) * (0.85 + 0.15 * luma)
    out = x + cover * (snow - x)
    return out.clamp(0.0, 1.0).to(image.dtype)


def haze(
    image: Tensor,
    density: Tensor,
    horizon: Tensor,
    airlight: Tensor,
    depth: Tensor | None = None,
    max_distance: float = 20.0,
) -> Tensor:
    """Aerial perspective (Koschmieder's law): ``out = image * t + airlight * (1 - t)``, ``t = exp(-density * d)``.

    Without a depth map the relative distance ``d`` follows a flat ground seen by a level
    camera: ``d = (1 - horizon) / (v - horizon)`` for the normalised row ``v`` (0 at the top,
    1 at the bottom), so ``d = 1`` at the bottom edge and grows towards the horizon row, capped
    at ``max_distance`` (rows at or above the horizon are sky). A horizon far above the image
    (e.g. ``-1``) gives the near-uniform haze of a nadir view.

    Args:
        image: RGB images in ``[0, 1]``.
        density: extinction per unit distance, >= 0 (0 is the identity).
        horizon: horizon row as a fraction of the height, < 1 (negative: above the image).
        airlight: colour of the scattered light, RGB in ``[0, 1]``.
        depth: optional relative distance per pixel (replaces the horizon model; used as given, not
            capped by ``max_distance``).
        max_distance: the cap on the horizon model's ``d``.

    Returns:
        The hazy images, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; airlight: :math:`(B, 3)`; depth: :math:`(B, 1, H, W)`
        - density, horizon: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> grey = torch.full((1, 3, 1, 1), 0.2)
        >>> out = haze(grey, torch.tensor([math.log(2.0)]), torch.tensor([-1.0]), torch.ones(1, 3),
        ...            depth=torch.ones(1, 1, 1, 1))
        >>> out.flatten()  # t = exp(-ln 2 * 1) = 0.5: 0.2 * 0.5 + 1 * 0.5
        tensor([0.6000, 0.6000, 0.6000])
    """
    check_batch(image, density=density, horizon=horizon, airlight=airlight, depth=depth,
                shapes={"airlight": (3,), "depth": (1, "H", "W")})
    if depth is None:
        check_values(horizon, "horizon", below=1.0)  # at or below the bottom edge: every distance 0 / 0
    check_values(density, "density", at_least=0.0, below=math.inf)  # below 0 brightened past the image, clamped
    check_values(airlight, "airlight", at_least=0.0, at_most=1.0)
    if isinstance(max_distance, bool) or not isinstance(max_distance, (int, float)) or not 0 < max_distance < math.inf:
        raise ValueError(f"max_distance must be a finite number > 0 (the cap on the horizon model's distance), got "
                         f"{max_distance!r}.")
    if depth is not None:
        check_values(depth, "depth", at_least=0.0, below=math.inf)  # a negative distance brightened past the image
    return _haze(image, density, horizon, airlight, depth, max_distance)


def _haze(image: Tensor, density: Tensor, horizon: Tensor, airlight: Tensor, depth: Tensor | None = None,
          max_distance: float = 20.0) -> Tensor:
    """`haze` on parameters known to be valid (`RandomHaze`'s): no device synchronisation."""
    check_batch(image, density=density, horizon=horizon, airlight=airlight, depth=depth,
                shapes={"airlight": (3,), "depth": (1, "H", "W")})
    _, _, height, _ = image.shape
    work = work_dtype(image.dtype)
    x = image.to(work)
    if depth is None:
        rows = (torch.arange(height, device=x.device, dtype=work) + 0.5) / height
        h = per_image(horizon, x)
        distance = (1.0 - h) / (rows.view(1, 1, -1, 1) - h).clamp_min((1.0 - h) / max_distance)
    else:
        distance = depth.to(work)
    transmission = torch.exp(-per_image(density, x) * distance)
    out = x * transmission + per_image(airlight, x, 3) * (1.0 - transmission)
    return out.clamp(0.0, 1.0).to(image.dtype)
