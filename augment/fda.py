"""FourierDomainAdaptation: swap low-frequency amplitudes with real images from a bank."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment._checks import check_image
from augment.functional.abstraction import _fourier_domain_adaptation

__all__ = ["FourierDomainAdaptation"]


class FourierDomainAdaptation(SimToRealAugmentationBase):
    r"""Fourier domain adaptation (Yang & Soatto, CVPR 2020) against a bank of real images.

    Each image takes the low-frequency amplitude spectrum of one bank image drawn at random
    (its global colour, illumination and haze) and keeps its own phase (its layout). Bank
    images of another size are resized (bilinear, antialiased) to the input's size. The bank
    is a buffer: it moves with ``.to(device)``. See
    :func:`augment.functional.fourier_domain_adaptation`.

    Args:
        bank: real images, float in ``[0, 1]``.
        beta: range of the low-frequency window as a fraction of the shorter side, within
            ``[0, 0.5]``; the paper uses 0.01 to 0.09. The window is ``floor(beta * min(H, W))`` pixels, so
            small images are often left as they are: with beta 0.01-0.05 about half of 32x48 px images.
        same_on_batch: apply the same parameters (and bank image) to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - bank: :math:`(N, 3, H_b, W_b)`
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> bank = torch.rand(4, 3, 32, 32)
        >>> FourierDomainAdaptation(bank, p=1.0)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    bank: Tensor  # a buffer (moves with .to(device)), not a parameter

    def __init__(
        self,
        bank: Tensor,
        beta: Tuple[float, float] | float = (0.01, 0.05),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        check_image(bank, "bank")
        if bank.dim() != 4 or bank.shape[0] < 1:
            raise ValueError(f"bank must have shape (N, 3, H, W) with N >= 1, got {tuple(bank.shape)}.")
        low, high = float(bank.min()), float(bank.max())
        if not (0.0 <= low and high <= 1.0):  # a NaN makes both NaN, which compares False: refused too
            nan = int(bank.isnan().sum())
            raise ValueError("bank must hold images in [0, 1], got "
                             + (f"{nan} NaN value(s)." if nan else f"values in [{low:.4g}, {high:.4g}]."))
        self.register_buffer("bank", bank.detach().clone(), persistent=False)
        self._add_range("beta", beta, 0.0, 0.5)
        # a replayed index is held to the bank: index 7 of a bank of 3 was taken as its last image, silently
        self._add_range("index", (0.0, float(bank.shape[0])), 0.0, float(bank.shape[0]), internal=True)

    def _repr_extras(self) -> Dict[str, Any]:
        return {"bank": f"<Tensor {tuple(self.bank.shape)}>"}

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        count = self.bank.shape[0]
        index = self._param(params, "index", self.bank).floor().long().clamp(0, count - 1)  # float32: exact to 2**24
        work = torch.float64 if input.dtype == torch.float64 else torch.float32
        target = self.bank[index].to(device=input.device, dtype=work)
        if target.shape[-2:] != input.shape[-2:]:
            target = F.interpolate(target, size=input.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
            target = target.clamp(0.0, 1.0)
        return _fourier_domain_adaptation(input, target, self._param(params, "beta", input))
