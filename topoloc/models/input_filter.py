"""LocalContrastNorm: each pixel relative to its neighbourhood, a fixed filter in front of a backbone."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LocalContrastNorm"]


class LocalContrastNorm(nn.Module):
    r"""Local contrast normalisation: subtract a local mean, divide by the local standard deviation.

    For each channel, with :math:`G_\sigma` a Gaussian blur of standard deviation ``sigma`` pixels,

    .. math::
        d = x - G_\sigma * x, \qquad y = d \,/\, \big(\sqrt{G_\sigma * d^2} + \text{floor}\big).

    What varies slowly across an image (the light's brightness and colour, haze, a palette's
    overall shift, the vignetting of a camera) is divided out; edges and texture stay. A fixed,
    parameter-free filter (no weights to learn or to load), applied by `AtLoc(local_contrast=...)`
    to the normalised input, at training and at test time alike. The blur is separable, with
    ``reflect`` padding at the borders.

    Args:
        sigma: standard deviation of the Gaussian in pixels of the input, > 0. The kernel is cut at
            3 sigma, so inputs must be larger than ``ceil(3 * sigma)`` pixels on each side.
        floor: added to the local standard deviation, > 0: keeps flat regions (sky, water) from
            being amplified into noise. In the units of the input (the normalised image: about 0.1
            of a typical image's spread).

    Shape:
        - input: :math:`(B, C, H, W)`, float
        - output: :math:`(B, C, H, W)`

    Example:
        >>> _ = torch.manual_seed(0)
        >>> lcn = LocalContrastNorm(sigma=2.0)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> torch.allclose(lcn(x), lcn(x + 5.0), atol=1e-5)  # an offset is removed
        True
        >>> lcn(x).shape
        torch.Size([1, 3, 16, 16])
    """

    kernel: Tensor  # the normalised 1-D Gaussian, a buffer

    def __init__(self, sigma: float, floor: float = 0.1) -> None:
        super().__init__()
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"LocalContrastNorm: `sigma` must be a positive number of pixels, got {sigma!r}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor) or floor <= 0:
            raise ValueError(f"LocalContrastNorm: `floor` must be a positive number, got {floor!r}")
        self.sigma = float(sigma)
        self.floor = float(floor)
        self.radius = math.ceil(3.0 * self.sigma)
        t = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        kernel = torch.exp(-t.square() / (2.0 * self.sigma**2))
        # not persistent: the kernel follows from `sigma` (in the model's config), not from weights
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, floor={self.floor:g}"

    def blur(self, x: Tensor) -> Tensor:
        """The Gaussian blur of each channel (reflect padding). Shape (B, C, H, W) -> (B, C, H, W)."""
        if x.dim() != 4:
            raise ValueError(f"LocalContrastNorm: expected a (B, C, H, W) batch, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        r = self.radius
        if h <= r or w <= r:
            raise ValueError(f"LocalContrastNorm(sigma={self.sigma:g}): images must be larger than {r} px on each "
                             f"side (the blur's radius), got {h}x{w} (HxW)")
        # Not augment's private per-image `gaussian_blur`: a model must not depend on the augmentation
        # package's internals, and ONNX export needs this one fixed kernel (that one builds a kernel
        # per image and channel at run time, with replicate borders).
        k = self.kernel.to(dtype=x.dtype)
        # channels folded into the batch: one single-channel kernel of fixed shape (ONNX needs that)
        y = F.pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode="reflect")
        y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
        return y.reshape(b, c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        d = x - self.blur(x)
        # clamped before the root: flat regions get a zero gradient, not an infinite one (saliency)
        return d / (self.blur(d * d).clamp_min(1e-12).sqrt() + self.floor)
