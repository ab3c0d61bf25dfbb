"""RandomCameraEffects: white balance, vignetting, sensor noise and lens blur."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.appearance import _camera_effects

__all__ = ["RandomCameraEffects"]


class RandomCameraEffects(SimToRealAugmentationBase):
    r"""Give synthetic renders a real camera's imperfections.

    White balance is drawn as a colour temperature shift (red gain ``1 + t``, blue gain
    ``1 - t``) and a green tint; see :func:`augment.functional.camera_effects` for the rest.

    Args:
        temperature: range of the warm (+) / cool (-) shift, within ``[-0.5, 0.5]``.
        tint: range of the green (+) / magenta (-) shift, within ``[-0.5, 0.5]``.
        vignetting: range of the cos^4 vignetting constant ``k``, within ``[0, 5]``.
        noise_std: range of the sensor noise standard deviation, within ``[0, 0.5]``.
        blur_sigma: range of the lens blur standard deviation in pixels, within ``[0, 10]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> aug = RandomCameraEffects(p=1.0)
        >>> aug(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """

    sized_by_range = ("blur_sigma",)  # the op's own maximum sizes its buffers

    def __init__(
        self,
        temperature: Tuple[float, float] | float = (-0.12, 0.12),
        tint: Tuple[float, float] | float = (-0.04, 0.04),
        vignetting: Tuple[float, float] | float = (0.0, 0.4),
        noise_std: Tuple[float, float] | float = (0.0, 0.03),
        blur_sigma: Tuple[float, float] | float = (0.0, 1.2),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, needs_seed=True)
        self._add_range("temperature", temperature, -0.5, 0.5)
        self._add_range("tint", tint, -0.5, 0.5)
        self._add_range("vignetting", vignetting, 0.0, 5.0)
        self._add_range("noise_std", noise_std, 0.0, 0.5)
        self.max_blur_sigma = self._add_range("blur_sigma", blur_sigma, 0.0, 10.0)[1]

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        temperature = self._param(params, "temperature", input)
        tint = self._param(params, "tint", input)
        gains = torch.stack((1.0 + temperature, 1.0 + tint, 1.0 - temperature), dim=-1)
        return _camera_effects(
            input,
            seed=self._param(params, "seed", input),
            white_balance=gains,
            vignetting=self._param(params, "vignetting", input),
            noise_std=self._param(params, "noise_std", input),
            blur_sigma=self._param(params, "blur_sigma", input),
            max_blur_sigma=self.max_blur_sigma,
        )
