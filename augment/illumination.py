"""RandomIllumination: sun shading from image gradients, exposure and gamma."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import torch  # noqa: F401  (used by the doctests)
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.appearance import _illumination

__all__ = ["RandomIllumination"]


class RandomIllumination(SimToRealAugmentationBase):
    r"""Relight aerial images: a sun from a random direction, exposure and gamma.

    See :func:`augment.functional.illumination` for the shading model.

    Args:
        sun_azimuth: range of the sun azimuth in degrees, clockwise from image up, within ``[-360, 360]``.
        sun_elevation: range of the sun elevation in degrees, within ``[1, 90]``.
        relief: range of the height-field gain, within ``[0, 100]``.
        gamma: range of the gamma exponent, within ``[0.1, 10]``.
        exposure: range of the exposure change in stops (EV), within ``[-5, 5]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> img = torch.full((1, 3, 4, 4), 0.25)
        >>> out = RandomIllumination(relief=0.0, gamma=1.0, exposure=1.0, p=1.0)(img)
        >>> out[0, 0, 0, 0]  # one stop brighter
        tensor(0.5000)
    """

    def __init__(
        self,
        sun_azimuth: Tuple[float, float] | float = (0.0, 360.0),
        sun_elevation: Tuple[float, float] | float = (25.0, 70.0),
        relief: Tuple[float, float] | float = (0.0, 8.0),
        gamma: Tuple[float, float] | float = (0.75, 1.35),
        exposure: Tuple[float, float] | float = (-0.6, 0.6),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        self._add_range("sun_azimuth", sun_azimuth, -360.0, 360.0)
        self._add_range("sun_elevation", sun_elevation, 1.0, 90.0)
        self._add_range("relief", relief, 0.0, 100.0)
        self._add_range("gamma", gamma, 0.1, 10.0)
        self._add_range("exposure", exposure, -5.0, 5.0)

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        return _illumination(
            input,
            sun_azimuth=self._param(params, "sun_azimuth", input) * (math.pi / 180.0),
            sun_elevation=self._param(params, "sun_elevation", input) * (math.pi / 180.0),
            relief=self._param(params, "relief", input),
            gamma=self._param(params, "gamma", input),
            exposure=self._param(params, "exposure", input),
        )
