"""Appearance: season palettes, illumination (sun shading, exposure, gamma) and camera effects.

Pure batched functions: no randomness, one parameter value per image, everything on the
image's device. Inputs are float ``(B, 3, H, W)`` images in ``[0, 1]``; outputs are clamped to
``[0, 1]`` and have the input's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from augment._checks import check_batch, check_values
from augment.functional._utils import (
    excess_green,
    gaussian_blur,
    image_blur_radius,
    luminance,
    per_image,
    rgb_constant,
    sobel_xy,
    work_dtype,
)
from augment.functional.noise import hash_bits

__all__ = ["season_shift", "illumination", "camera_effects", "AUTUMN_YELLOW", "AUTUMN_RED", "WINTER_STRAW"]

#: Autumn foliage and dormant-grass colours (linear blend targets, RGB in [0, 1]).
AUTUMN_YELLOW = (0.80, 0.62, 0.12)
AUTUMN_RED = (0.72, 0.28, 0.08)
WINTER_STRAW = (0.52, 0.47, 0.38)


def _luma_matched(palette: Tensor, luma: Tensor) -> Tensor:
    """Scale a ``(B, 3, 1, 1)`` palette colour to the luma of each pixel."""
    return palette * (luma / luminance(palette).clamp_min(1e-6))


def season_shift(image: Tensor, autumn: Tensor, winter: Tensor, tint: Tensor) -> Tensor:
    """Recolour green vegetation towards autumn foliage and then towards winter straw.

    Vegetation is weighted by a smoothstep of the normalised excess-green index from 0.02 (grey,
    rock, soil: untouched) to 0.2 (clearly green: fully recoloured). Its colour moves
    by ``autumn`` towards a palette colour between yellow (``tint = 0``) and red-orange
    (``tint = 1``), then by ``winter`` towards a grey-brown straw. Both targets keep each pixel's
    Rec. 601 luma, so the relief and texture survive. ``autumn = winter = 0`` is the identity.

    Args:
        image: RGB images in ``[0, 1]``.
        autumn: amount of autumn colouring in ``[0, 1]``.
        winter: amount of winter (dormant) colouring in ``[0, 1]``.
        tint: autumn hue from yellow (0) to red-orange (1).

    Returns:
        The recoloured images, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; autumn, winter, tint: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> grey = torch.full((1, 3, 2, 2), 0.4)  # excess green 0: not vegetation
        >>> torch.equal(season_shift(grey, torch.ones(1), torch.ones(1), torch.zeros(1)), grey)
        True
    """
    check_batch(image, autumn=autumn, winter=winter, tint=tint)
    for name, value in (("autumn", autumn), ("winter", winter), ("tint", tint)):
        check_values(value, name, at_least=0.0, at_most=1.0)
    return _season_shift(image, autumn, winter, tint)


def _season_shift(image: Tensor, autumn: Tensor, winter: Tensor, tint: Tensor) -> Tensor:
    """:func:`season_shift` without its checks (the kornia op passes values drawn from its checked ranges)."""
    work = work_dtype(image.dtype)
    x = image.to(work)
    vegetation = ((excess_green(x) - 0.02) / 0.18).clamp(0.0, 1.0)
    vegetation = vegetation * vegetation * (3.0 - 2.0 * vegetation)
    luma = luminance(x)
    yellow = rgb_constant(AUTUMN_YELLOW, x)
    red = rgb_constant(AUTUMN_RED, x)
    straw = rgb_constant(WINTER_STRAW, x)
    palette = torch.lerp(yellow, red, per_image(tint, x))
    out = x + vegetation * per_image(autumn, x) * (_luma_matched(palette, luma) - x)
    out = out + vegetation * per_image(winter, x) * (_luma_matched(straw, luma) - out)
    return out.clamp(0.0, 1.0).to(image.dtype)


def illumination(
    image: Tensor,
    sun_azimuth: Tensor,
    sun_elevation: Tensor,
    relief: Tensor,
    gamma: Tensor,
    exposure: Tensor,
) -> Tensor:
    """Relight the scene: Lambertian shading from a sun direction, then exposure and gamma.

    The luma is read as a height field: surface normals are ``(-relief * dL/dx, -relief * dL/dy, 1)``
    (Sobel, per pixel) and each pixel is scaled by ``max(n . s, 0) / s_z`` for the unit sun vector
    ``s``, so flat ground keeps its brightness and slopes facing the sun brighten. Then
    ``out = (shaded * 2**exposure) ** gamma``. ``relief = 0, exposure = 0, gamma = 1`` is the identity.

    Args:
        image: RGB images in ``[0, 1]``.
        sun_azimuth: sun azimuth in radians, clockwise from the image's up direction.
        sun_elevation: sun elevation above the ground in radians, in ``(0, pi/2]``.
        relief: height-field gain applied to the luma gradient, >= 0.
        gamma: gamma exponent, > 0.
        exposure: exposure change in stops (EV).

    Returns:
        The relit images, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; the other arguments: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> flat = torch.full((1, 3, 4, 4), 0.2)
        >>> out = illumination(flat, torch.zeros(1), torch.tensor([0.5]), torch.ones(1), torch.ones(1), torch.ones(1))
        >>> out.unique()  # flat ground keeps its brightness (n = up); one stop of exposure doubles it
        tensor([0.4000])
    """
    check_batch(image, sun_azimuth=sun_azimuth, sun_elevation=sun_elevation, relief=relief, gamma=gamma,
                exposure=exposure)
    check_values(gamma, "gamma", above=0.0)  # gamma <= 0 turns dark pixels white or brighter than 1
    check_values(relief, "relief", at_least=0.0, below=math.inf)  # NaN gave a finite, all-black image
    check_values(exposure, "exposure (stops)", above=-math.inf, below=math.inf)
    check_values(sun_azimuth, "sun_azimuth (radians)", above=-math.inf, below=math.inf)
    # degrees given by mistake (60) put the sun under the ground; pi / 2 in float32 lies just above pi / 2
    check_values(sun_elevation, "sun_elevation (radians)", above=0.0, below=math.pi / 2 + 1e-6)
    return _illumination(image, sun_azimuth, sun_elevation, relief, gamma, exposure)


def _illumination(image: Tensor, sun_azimuth: Tensor, sun_elevation: Tensor, relief: Tensor, gamma: Tensor,
                  exposure: Tensor) -> Tensor:
    """`illumination` on parameters known to be valid (`RandomIllumination`'s): no device synchronisation."""
    check_batch(image, sun_azimuth=sun_azimuth, sun_elevation=sun_elevation, relief=relief, gamma=gamma,
                exposure=exposure)
    work = work_dtype(image.dtype)
    x = image.to(work)
    dx, dy = sobel_xy(luminance(x))
    relief_b = per_image(relief, x)
    nx, ny = -relief_b * dx, -relief_b * dy
    azimuth, elevation = per_image(sun_azimuth, x), per_image(sun_elevation, x)
    # Image frame: x right, y down, z towards the viewer (up from the ground in a nadir view).
    sx = torch.cos(elevation) * torch.sin(azimuth)
    sy = -torch.cos(elevation) * torch.cos(azimuth)
    sz = torch.sin(elevation).clamp_min(1e-3)
    shade = (nx * sx + ny * sy + sz) / (torch.sqrt(nx * nx + ny * ny + 1.0) * sz)
    out = x * shade.clamp_min(0.0) * torch.exp2(per_image(exposure, x))
    out = out.clamp(0.0, 1.0)
    positive = out > 0
    out = torch.where(positive, out.clamp_min(1e-12) ** per_image(gamma, x), torch.zeros_like(out))
    return out.to(image.dtype)


def camera_effects(
    image: Tensor,
    seed: Tensor,
    white_balance: Tensor,
    vignetting: Tensor,
    noise_std: Tensor,
    blur_sigma: Tensor,
    max_blur_sigma: float | None = None,
) -> Tensor:
    """Simulate a camera: lens blur, vignetting, white balance and sensor noise, in that order.

    Blur is a Gaussian with a per-image standard deviation (pixels). Vignetting follows the
    cos^4 law of a pinhole camera: a pixel at normalised radius ``r`` (1 at the corners) is
    scaled by ``cos(theta)**4 = 1 / (1 + k r^2)^2`` with ``k = vignetting = tan^2`` of the
    half-diagonal field of view. White balance multiplies each channel by its gain. The noise is
    Gaussian (Box-Muller on hashed uniforms, so deterministic given ``seed``).

    Args:
        image: RGB images in ``[0, 1]``.
        seed: integer-valued noise seed per image.
        white_balance: per-channel gains (R, G, B), > 0.
        vignetting: ``k >= 0`` (0: none).
        noise_std: standard deviation of the additive noise, >= 0.
        blur_sigma: Gaussian blur standard deviation in pixels, >= 0 (the kernel is cut at three sigmas or at
            the image's larger side, whichever is shorter).
        max_blur_sigma: an upper bound on ``blur_sigma`` known in advance (avoids a device sync).

    Returns:
        The images as the camera saw them, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; white_balance: :math:`(B, 3)`
        - seed, vignetting, noise_std, blur_sigma: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> grey = torch.full((1, 3, 2, 2), 0.25)
        >>> out = camera_effects(grey, torch.zeros(1), torch.tensor([[1.0, 0.5, 2.0]]), torch.zeros(1), torch.zeros(1),
        ...                      torch.zeros(1))
        >>> out[0, :, 0, 0]  # white balance alone: each channel times its gain
        tensor([0.2500, 0.1250, 0.5000])
    """
    check_batch(image, seed=seed, white_balance=white_balance, vignetting=vignetting, noise_std=noise_std,
                blur_sigma=blur_sigma, shapes={"white_balance": (3,)})
    check_values(white_balance, "white_balance", above=0.0, below=math.inf)  # <= 0: a black or inverted channel
    check_values(vignetting, "vignetting", at_least=0.0, below=math.inf)
    check_values(noise_std, "noise_std", at_least=0.0, below=math.inf)
    check_values(seed, "seed", above=-math.inf, below=math.inf)
    if isinstance(max_blur_sigma, (int, float)) and not isinstance(max_blur_sigma, bool):
        check_values(blur_sigma, "blur_sigma", at_most=float(max_blur_sigma))  # a kernel sized for less cut it short
    return _camera_effects(image, seed, white_balance, vignetting, noise_std, blur_sigma, max_blur_sigma)


def _edge_to_edge(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Pixel centres from -1 (the first) to 1 (the last); a single pixel is the centre, 0 (``linspace`` puts it
    at -1, an edge)."""
    if n == 1:
        return torch.zeros(1, device=device, dtype=dtype)
    return torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)


def _camera_effects(image: Tensor, seed: Tensor, white_balance: Tensor, vignetting: Tensor, noise_std: Tensor,
                    blur_sigma: Tensor, max_blur_sigma: float | None = None) -> Tensor:
    """`camera_effects` without its checks of the values (the kornia op draws them within checked ranges)."""
    check_batch(image, seed=seed, white_balance=white_balance, vignetting=vignetting, noise_std=noise_std,
                blur_sigma=blur_sigma, shapes={"white_balance": (3,)})
    batch, channels, height, width = image.shape
    work = work_dtype(image.dtype)
    x = image.to(work)
    radius = image_blur_radius(blur_sigma, max_blur_sigma, "blur_sigma", image.shape[-2:])
    x = gaussian_blur(x, blur_sigma.to(x.device), radius)
    ys = _edge_to_edge(height, x.device, work).view(1, 1, -1, 1)
    xs = _edge_to_edge(width, x.device, work).view(1, 1, 1, -1)
    r2 = (xs * xs * width * width + ys * ys * height * height) / (width * width + height * height)
    x = x / (1.0 + per_image(vignetting, x) * r2) ** 2
    x = x * per_image(white_balance, x, 3)
    # One 32-bit hash per pixel and channel split into two 16-bit uniforms, then Box-Muller
    # (u1 in (0, 1]: the tails reach 4.7 standard deviations).
    iy = torch.arange(channels * height, device=x.device, dtype=torch.int32).view(1, channels, height, 1)
    ix = torch.arange(width, device=x.device, dtype=torch.int32).view(1, 1, 1, width)
    bits = hash_bits(ix, iy, seed.to(x.device).to(torch.int64).view(-1, 1, 1, 1))
    u1 = ((bits >> 16) & 0xFFFF).to(work).add_(1.0).mul_(1.0 / 65536.0)
    u2 = (bits & 0xFFFF).to(work).mul_(2.0 * math.pi / 65536.0)
    gauss = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(u2)
    x = x + per_image(noise_std, x) * gauss
    return x.clamp(0.0, 1.0).to(image.dtype)
