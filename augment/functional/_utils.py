"""Small batched helpers shared by the functional ops (not public API)."""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Rec. 601 luma weights, as in kornia.color.rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the arithmetic runs in: float64 stays float64, everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def per_image(value: Tensor, like: Tensor, trailing: int = 0) -> Tensor:
    """View a ``(B,)`` or ``(B, C)`` parameter so it broadcasts against ``(B, C, H, W)``."""
    value = value.to(device=like.device, dtype=like.dtype)
    if trailing:
        return value.view(value.shape[0], trailing, 1, 1)
    return value.view(-1, 1, 1, 1)


def rgb_constant(values: tuple[float, float, float], like: Tensor) -> Tensor:
    """A ``(1, 3, 1, 1)`` colour on ``like``'s device and dtype, made without a host-to-device copy.

    ``torch.tensor(values, device="cuda")`` copies from pageable host memory, which synchronises
    the stream; three fills do not.
    """
    channels = [torch.full((), float(v), device=like.device, dtype=like.dtype) for v in values]
    return torch.stack(channels).view(1, 3, 1, 1)


def luminance(image: Tensor) -> Tensor:
    """Rec. 601 luma of ``(B, 3, H, W)`` as ``(B, 1, H, W)``."""
    r, g, b = image.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def excess_green(image: Tensor, eps: float = 1e-3) -> Tensor:
    """Normalised excess-green index ``(2g - r - b) / (r + g + b)`` (Woebbecke et al. 1995), ``(B, 1, H, W)``."""
    r, g, b = image.unbind(1)
    return ((2.0 * g - r - b) / (r + g + b + eps)).unsqueeze(1)


def gaussian_blur(image: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Separable Gaussian blur with one standard deviation (px) per image and a static radius.

    A ``sigma`` of zero leaves the image unchanged. Borders replicate the edge pixels.

    Shape:
        - image: :math:`(B, C, H, W)`, sigma: :math:`(B,)`
        - output: :math:`(B, C, H, W)`
    """
    if radius <= 0:
        return image
    batch, channels, height, width = image.shape
    taps = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    sigma = sigma.to(device=image.device, dtype=image.dtype).clamp_min(1e-3).view(-1, 1)
    kernel = torch.exp(-0.5 * (taps.view(1, -1) / sigma) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(channels, dim=0)  # (B*C, K)
    x = image.reshape(1, batch * channels, height, width)
    with no_autocast(image):  # in the image's dtype inside a training step's autocast region too
        x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
        x = F.conv2d(x, kernel.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
        x = F.pad(x, (0, 0, radius, radius), mode="replicate")
        x = F.conv2d(x, kernel.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return x.view(batch, channels, height, width)


def no_autocast(like: Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on ``like``'s device (CPU or CUDA), where torch would run a convolution in bf16 / fp16."""
    if like.device.type in ("cpu", "cuda"):
        return torch.autocast(like.device.type, enabled=False)
    return contextlib.nullcontext()


def blur_radius(max_sigma: float) -> int:
    """Radius that holds a Gaussian of standard deviation ``max_sigma`` to three sigmas."""
    return int(math.ceil(3.0 * max_sigma))


def image_blur_radius(sigma: Tensor, max_sigma: float | None, name: str, size: Sequence[int]) -> int:
    """The static radius of `gaussian_blur` for per-image ``sigma`` on images of ``size`` (H, W).

    Three sigmas of ``max_sigma`` (when None, the largest ``sigma``: one device synchronisation, and
    ``sigma`` is checked), but at most the image's larger side: the padded copy stays within three
    times the image (a sigma of 1e9 px asked for terabytes). The taps left out all read the replicated
    border, for every pixel, so the cut only lowers the border's weight.

    Raises:
        ValueError: ``sigma`` NaN, infinite or negative, or ``max_sigma`` not a finite number >= 0, naming
            ``name`` (``max_<name>``).
    """
    if max_sigma is None:
        low, high = (float(v) for v in torch.aminmax(sigma.detach()))
        if not (low >= 0.0 and math.isfinite(high)):
            raise ValueError(f"{name} must be finite and >= 0 (pixels), got values from {low:g} to {high:g}.")
        max_sigma = high
    elif isinstance(max_sigma, bool) or not isinstance(max_sigma, numbers.Real) or not 0.0 <= max_sigma < math.inf:
        raise ValueError(f"max_{name} must be a finite number >= 0 (pixels), got {max_sigma!r}.")
    return min(blur_radius(float(max_sigma)), max(size))


def sobel_xy(gray: Tensor) -> tuple[Tensor, Tensor]:
    """Sobel derivatives of ``(B, 1, H, W)`` per pixel (kernel divided by 8), replicate borders.

    Written with shifted slices (a central difference, then a [1, 2, 1] smoothing across it),
    which is several times faster than a 3x3 convolution on a CPU. On a linear ramp ``a * x``
    the x-derivative is exactly ``a`` away from the borders.
    """
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    dx = padded[..., :, 2:] - padded[..., :, :-2]
    dx = (dx[..., :-2, :] + 2.0 * dx[..., 1:-1, :] + dx[..., 2:, :]) * 0.125
    dy = padded[..., 2:, :] - padded[..., :-2, :]
    dy = (dy[..., :, :-2] + 2.0 * dy[..., :, 1:-1] + dy[..., :, 2:]) * 0.125
    return dx, dy
