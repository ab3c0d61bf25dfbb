"""RandomHaze: aerial perspective, stronger towards the horizon and the top of the image."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.weather import _haze

__all__ = ["RandomHaze"]


class RandomHaze(SimToRealAugmentationBase):
    r"""Add haze following Koschmieder's law with a flat-ground distance model.

    The haze thickens towards a horizon row drawn per image (negative: above the image, as in
    a steep or nadir view); the airlight is a light grey with a slight blue cast. See
    :func:`augment.functional.haze`.

    Args:
        density: range of the extinction per unit distance, within ``[0, 5]``.
        horizon: range of the horizon row as a fraction of the height, within ``[-5, 0.9]``.
        airlight: range of the airlight grey level, within ``[0, 1]``.
        blue: range of the airlight's blue cast (red reduced by it, green by half), within ``[0, 0.5]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> out = RandomHaze(horizon=0.0, p=1.0)(torch.zeros(1, 3, 16, 16))
        >>> bool(out[..., 0, :].mean() > out[..., -1, :].mean())  # hazier at the top
        True
    """

    def __init__(
        self,
        density: Tuple[float, float] | float = (0.05, 0.4),
        horizon: Tuple[float, float] | float = (-1.0, 0.3),
        airlight: Tuple[float, float] | float = (0.7, 0.95),
        blue: Tuple[float, float] | float = (0.0, 0.1),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        self._add_range("density", density, 0.0, 5.0)
        self._add_range("horizon", horizon, -5.0, 0.9)
        self._add_range("airlight", airlight, 0.0, 1.0)
        self._add_range("blue", blue, 0.0, 0.5)

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        grey = self._param(params, "airlight", input)
        blue = self._param(params, "blue", input)
        airlight = torch.stack((grey * (1.0 - blue), grey * (1.0 - 0.5 * blue), grey), dim=-1)
        return _haze(
            input,
            density=self._param(params, "density", input),
            horizon=self._param(params, "horizon", input),
            airlight=airlight,
        )
