"""RandomSnowCover: whiten vegetation and flat ground to imitate snow."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch  # noqa: F401  (used by the doctests)
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.weather import _snow_cover

__all__ = ["RandomSnowCover"]


class RandomSnowCover(SimToRealAugmentationBase):
    r"""Cover vegetation and flat areas with snow, by an amount drawn per image.

    Where snow settles is read from each pixel's colour (excess green), brightness and local
    flatness; see :func:`augment.functional.snow_cover`. Masks passed through an
    ``AugmentationSequential`` are unchanged.

    Args:
        amount: range of the snow amount, within ``[0, 1]`` (0: none, 1: nearly everything).
        softness: range of the snow-line width, within ``[0.01, 1]``.
        brightness: range of the snow brightness, within ``[0, 1]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> meadow = torch.tensor([0.2, 0.6, 0.2]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
        >>> out = RandomSnowCover(amount=1.0, p=1.0)(meadow)
        >>> bool((out > 0.8).all())
        True
    """

    def __init__(
        self,
        amount: Tuple[float, float] | float = (0.3, 0.9),
        softness: Tuple[float, float] | float = (0.05, 0.3),
        brightness: Tuple[float, float] | float = (0.85, 1.0),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        self._add_range("amount", amount, 0.0, 1.0)
        self._add_range("softness", softness, 0.01, 1.0)
        self._add_range("brightness", brightness, 0.0, 1.0)

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        return _snow_cover(
            input,
            amount=self._param(params, "amount", input),
            softness=self._param(params, "softness", input),
            brightness=self._param(params, "brightness", input),
        )
