"""RandomSeasonShift: summer vegetation recoloured to autumn and winter palettes."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch  # noqa: F401  (used by the doctests)
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.appearance import _season_shift

__all__ = ["RandomSeasonShift"]


class RandomSeasonShift(SimToRealAugmentationBase):
    r"""Shift green vegetation towards autumn foliage (yellow to red-orange) and winter straw.

    Luma is preserved, so relief and texture survive; see :func:`augment.functional.season_shift`.

    Args:
        autumn: range of the autumn amount, within ``[0, 1]``.
        winter: range of the winter amount, within ``[0, 1]``.
        tint: range of the autumn hue from yellow (0) to red-orange (1), within ``[0, 1]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> forest = torch.tensor([0.1, 0.4, 0.1]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
        >>> out = RandomSeasonShift(autumn=1.0, winter=0.0, p=1.0)(forest)
        >>> bool((out[:, 0] > out[:, 1]).all())  # red above green: autumn
        True
    """

    def __init__(
        self,
        autumn: Tuple[float, float] | float = (0.0, 1.0),
        winter: Tuple[float, float] | float = (0.0, 0.6),
        tint: Tuple[float, float] | float = (0.0, 1.0),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        self._add_range("autumn", autumn, 0.0, 1.0)
        self._add_range("winter", winter, 0.0, 1.0)
        self._add_range("tint", tint, 0.0, 1.0)

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        return _season_shift(
            input,
            autumn=self._param(params, "autumn", input),
            winter=self._param(params, "winter", input),
            tint=self._param(params, "tint", input),
        )
