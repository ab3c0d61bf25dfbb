"""Abstraction and domain transfer: edge abstraction ("dummify") and Fourier domain adaptation.

Pure batched functions: no randomness, one parameter value per image, everything on the
image's device. Inputs are float ``(B, 3, H, W)`` images in ``[0, 1]``; outputs are clamped to
``[0, 1]`` and have the input's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from augment._checks import check_batch, check_image, check_pixel_range, check_values
from augment.functional._utils import gaussian_blur, image_blur_radius, luminance, per_image, sobel_xy, work_dtype

__all__ = ["edge_abstraction", "fourier_domain_adaptation"]


def edge_abstraction(
    image: Tensor,
    levels: Tensor,
    smoothing: Tensor,
    edge_strength: Tensor,
    edge_threshold: Tensor,
    max_smoothing: float | None = None,
) -> Tensor:
    """Reduce an image to its main shapes: flat colour regions and dark outlines.

    The image is smoothed with a Gaussian (``smoothing`` px), each channel is quantised to
    ``levels`` flat levels (the centres ``(floor(v * n) + 0.5) / n``), and the Sobel edges of the
    smoothed luma are darkened in: a pixel whose gradient magnitude ``g`` exceeds the threshold
    ``t`` is scaled by ``1 - edge_strength * min((g - t) / t, 1)``. This is the seed project's
    "dummified" image: a synthetic render and a real photo of one place look alike after it.

    The quantisation is piecewise constant, so the output's gradient with respect to the image
    flows only through the edge term.

    Args:
        image: RGB images in ``[0, 1]``.
        levels: number of levels per channel (rounded down to an integer; below 2 counts as 2).
        smoothing: Gaussian standard deviation in pixels, >= 0 (the kernel is cut at three sigmas or at the
            image's larger side, whichever is shorter).
        edge_strength: darkening of the strongest edges, in ``[0, 1]``.
        edge_threshold: gradient magnitude (luma per pixel) where edges start, > 0.
        max_smoothing: an upper bound on ``smoothing`` known in advance (avoids a device sync).

    Returns:
        The abstracted images, same dtype as ``image``.

    Shape:
        - image: :math:`(B, 3, H, W)`; the other arguments: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> half = torch.full((1, 3, 4, 4), 0.5)
        >>> edge_abstraction(half, torch.tensor([4.0]), torch.zeros(1), torch.ones(1), torch.tensor([0.1])).unique()
        tensor([0.6250])

        (4 levels: 0.5 falls in the third, centred at (2 + 0.5) / 4; a flat image has no edges.)
    """
    check_batch(image, levels=levels, smoothing=smoothing, edge_strength=edge_strength,
                edge_threshold=edge_threshold)
    check_values(levels, "levels", above=-math.inf, below=math.inf)  # below 2 is held to 2 (tested by hand)
    check_values(edge_strength, "edge_strength", at_least=0.0, at_most=1.0)
    check_values(edge_threshold, "edge_threshold", above=0.0, below=math.inf)  # 0 gave all-black images
    if isinstance(max_smoothing, (int, float)) and not isinstance(max_smoothing, bool):
        check_values(smoothing, "smoothing", at_most=float(max_smoothing))  # a kernel sized for less cut it short
    return _edge_abstraction(image, levels, smoothing, edge_strength, edge_threshold, max_smoothing)


def _edge_abstraction(image: Tensor, levels: Tensor, smoothing: Tensor, edge_strength: Tensor,
                      edge_threshold: Tensor, max_smoothing: float | None = None) -> Tensor:
    """`edge_abstraction` without its checks of the values (the kornia op draws them within checked ranges)."""
    check_batch(image, levels=levels, smoothing=smoothing, edge_strength=edge_strength,
                edge_threshold=edge_threshold)
    work = work_dtype(image.dtype)
    x = image.to(work)
    radius = image_blur_radius(smoothing, max_smoothing, "smoothing", image.shape[-2:])
    smooth = gaussian_blur(x, smoothing.to(x.device), radius)
    n = torch.floor(per_image(levels, x)).clamp_min(2.0)
    flat = (torch.floor(smooth.clamp(0.0, 1.0) * n).clamp(max=n - 1.0) + 0.5) / n
    gx, gy = sobel_xy(luminance(smooth))
    magnitude = torch.sqrt(gx * gx + gy * gy + 1e-12)
    threshold = per_image(edge_threshold, x).clamp_min(1e-6)
    edges = ((magnitude - threshold) / threshold).clamp(0.0, 1.0)
    out = flat * (1.0 - per_image(edge_strength, x) * edges)
    return out.clamp(0.0, 1.0).to(image.dtype)


def fourier_domain_adaptation(image: Tensor, target: Tensor, beta: Tensor) -> Tensor:
    """Fourier domain adaptation (Yang & Soatto, CVPR 2020): take the target's low-frequency amplitude.

    The amplitude spectrum of each image inside a centred square of integer frequencies
    ``|k_y| < b, |k_x| < b`` with ``b = floor(beta * min(H, W))`` is replaced by the target's;
    the phase (the scene's layout) is kept. ``beta`` small enough that ``b = 0`` is the
    identity up to the round trip through the FFT (a few 1e-7 in float32); ``b = 1`` swaps only the mean colour.

    Args:
        image: RGB source images in ``[0, 1]`` (e.g. synthetic renders).
        target: RGB images of the target domain in ``[0, 1]`` (e.g. real photos), same size.
        beta: size of the low-frequency window as a fraction of the shorter side, in ``[0, 1]``.

    Returns:
        The adapted images, same dtype as ``image``.

    Shape:
        - image, target: :math:`(B, 3, H, W)`; beta: :math:`(B,)`
        - output: :math:`(B, 3, H, W)`

    Example:
        >>> render, photo = torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), 0.6)
        >>> fourier_domain_adaptation(render, photo, torch.tensor([0.25])).unique()  # b = 1: the mean colour
        tensor([0.6000])
    """
    check_batch(image, beta=beta, target=target, shapes={"target": (3, "H", "W")})
    check_image(target, "target")
    check_values(beta, "beta", at_least=0.0, at_most=1.0)
    check_pixel_range(target, "target")  # 0-255 photos gave all-white images
    return _fourier_domain_adaptation(image, target, beta)


def _fourier_domain_adaptation(image: Tensor, target: Tensor, beta: Tensor) -> Tensor:
    """`fourier_domain_adaptation` without its checks of the values (the kornia op checks its bank once)."""
    check_batch(image, beta=beta, target=target, shapes={"target": (3, "H", "W")})
    _, _, height, width = image.shape
    work = work_dtype(image.dtype)
    x = image.to(work)
    spectrum = torch.fft.rfft2(x, norm="backward")
    target_amplitude = torch.fft.rfft2(target.to(device=x.device, dtype=work), norm="backward").abs()
    ky = torch.fft.fftfreq(height, d=1.0 / height, device=x.device, dtype=work).abs().view(1, 1, -1, 1)
    kx = torch.fft.rfftfreq(width, d=1.0 / width, device=x.device, dtype=work).view(1, 1, 1, -1)
    b = torch.floor(per_image(beta, x) * min(height, width))
    window = (ky < b) & (kx < b)
    amplitude = spectrum.abs()
    # Keep the phase: rescale each coefficient's modulus to the target's (a zero keeps phase 0).
    ratio = target_amplitude / amplitude.clamp_min(1e-12)
    zero = amplitude <= 1e-12
    swapped = torch.where(zero, target_amplitude.to(spectrum.dtype), spectrum * ratio)
    spectrum = torch.where(window, swapped, spectrum)
    out = torch.fft.irfft2(spectrum, s=(height, width), norm="backward")
    return out.clamp(0.0, 1.0).to(image.dtype)
