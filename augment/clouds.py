"""RandomClouds: a fractal cloud layer with cloud shadows on the ground."""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.weather import _cloud_layer

__all__ = ["RandomClouds"]


class RandomClouds(SimToRealAugmentationBase):
    r"""Lay semi-transparent fractal clouds over aerial images and cast their shadows on the ground.

    Each image gets its own fBm cloud field (from a drawn seed), opacity, coverage, edge softness,
    grey level, size and a shadow displaced in a random direction. See
    :func:`augment.functional.cloud_layer` for the model.

    Args:
        opacity: range of the cloud opacity, within ``[0, 1]``.
        coverage: range of the share of the image under cloud, within ``[0, 1]``.
        softness: range of the cloud-edge width (standard deviations of the field), within ``[0.01, 10]``.
        brightness: range of the cloud grey level, within ``[0, 1]``.
        scale: range of the number of base noise cells across the longest side, within ``[0.25, 64]``.
        shadow_strength: range of the shadow darkening, within ``[0, 1]``.
        shadow_shift: range of the shadow displacement as a fraction of the longest side, within ``[0, 1]``.
        octaves: number of fBm octaves, an integer in ``[1, 8]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> aug = RandomClouds(p=1.0)
        >>> out = aug(torch.rand(2, 3, 32, 32))
        >>> out.shape
        torch.Size([2, 3, 32, 32])
        >>> bool((aug(torch.rand(2, 3, 32, 32), params=aug._params) >= 0).all())
        True
    """

    sized_by_range = ("scale",)  # the op's own maximum sizes its buffers

    octaves: int

    def __init__(
        self,
        opacity: Tuple[float, float] = (0.5, 0.9),
        coverage: Tuple[float, float] = (0.15, 0.6),
        softness: Tuple[float, float] = (0.2, 0.8),
        brightness: Tuple[float, float] = (0.8, 1.0),
        scale: Tuple[float, float] = (2.0, 5.0),
        shadow_strength: Tuple[float, float] = (0.2, 0.6),
        shadow_shift: Tuple[float, float] = (0.02, 0.1),
        octaves: int = 5,
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, needs_seed=True)
        self._add_range("opacity", opacity, 0.0, 1.0)
        self._add_range("coverage", coverage, 0.0, 1.0)
        self._add_range("softness", softness, 0.01, 10.0)
        self._add_range("brightness", brightness, 0.0, 1.0)
        self.max_scale = self._add_range("scale", scale, 0.25, 64.0)[1]
        self._add_range("shadow_strength", shadow_strength, 0.0, 1.0)
        self._add_range("shadow_shift", shadow_shift, 0.0, 1.0)
        self._add_range("shadow_angle", (0.0, 2.0 * math.pi), internal=True)
        if isinstance(octaves, bool) or not isinstance(octaves, numbers.Integral) or not 1 <= octaves <= 8:
            raise ValueError(f"octaves must be an integer in [1, 8], got {octaves!r}.")
        self.octaves = int(octaves)

    def _repr_extras(self) -> Dict[str, Any]:
        return {"octaves": self.octaves}

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        side = float(max(input.shape[-2:]))
        angle = self._param(params, "shadow_angle", input)
        shift = self._param(params, "shadow_shift", input) * side
        shadow_shift = torch.stack((shift * torch.cos(angle), shift * torch.sin(angle)), dim=-1)
        grey = self._param(params, "brightness", input)
        return _cloud_layer(
            input,
            seed=self._param(params, "seed", input),
            opacity=self._param(params, "opacity", input),
            coverage=self._param(params, "coverage", input),
            softness=self._param(params, "softness", input),
            color=grey.view(-1, 1).expand(-1, 3),
            scale=self._param(params, "scale", input),
            shadow_strength=self._param(params, "shadow_strength", input),
            shadow_shift=shadow_shift,
            octaves=self.octaves,
            max_scale=self.max_scale,
        )
