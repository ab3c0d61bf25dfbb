"""SimToReal: the sim-to-real augmentations composed in a physical order, with one strength knob."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import torch  # noqa: F401  (used by the doctests)
from kornia.augmentation import ImageSequential
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment._checks import check_image, check_pixel_range, check_probability
from augment.abstraction import RandomEdgeAbstraction
from augment.camera import RandomCameraEffects
from augment.clouds import RandomClouds
from augment.fda import FourierDomainAdaptation
from augment.haze import RandomHaze
from augment.illumination import RandomIllumination
from augment.season import RandomSeasonShift
from augment.snow import RandomSnowCover

if TYPE_CHECKING:
    from kornia.augmentation.container.params import ParamItem

__all__ = ["SimToReal"]


def _scaled(full: Tuple[float, float], strength: float, neutral: float = 0.0) -> Tuple[float, float]:
    """Move both ends of ``full`` towards ``neutral``: ``neutral + strength * (end - neutral)``."""
    return (neutral + strength * (full[0] - neutral), neutral + strength * (full[1] - neutral))


class SimToReal(ImageSequential):
    r"""Every sim-to-real augmentation in one pipeline, scaled by a single ``strength``.

    The ops run in the order light travels: the ground's season and snow, the sun's shading,
    clouds and their shadows, haze, then (with a ``bank`` of real images) Fourier domain
    adaptation, the occasional edge abstraction, and last the camera. ``strength`` scales every
    magnitude (opacity, snow amount, haze density, relief, exposure, noise, blur, ...) linearly
    from its neutral value (``strength = 0``: the identity) to the strong ranges listed in the
    source (``strength = 1``); the shapes of things (cloud size, coverage, horizon, sun
    direction) are drawn from their full ranges at any strength. The edge abstraction is the
    exception: posterising has no neutral level, so at any ``strength > 0`` it is applied whole,
    to its share of the images. (Blending it with the image by ``strength`` instead was measured
    in the demo over three seeds and localised the real photos no better: docs/RESULTS.md.) Each
    op is applied to an image with probability ``p`` times its weight (edge abstraction 0.2, snow
    0.5, season 0.8, the others 1). Being a kornia ``ImageSequential``, it nests inside ``AugmentationSequential``,
    where masks, boxes and keypoints pass through unchanged.

    Args:
        strength: magnitude of every op, in ``[0, 1]``.
        p: base probability of applying each op to an image, in ``[0, 1]``.
        bank: optional real images ``(N, 3, H, W)`` in ``[0, 1]`` for Fourier domain adaptation.
        same_on_batch: apply the same parameters to every image of the batch.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> torch.equal(SimToReal(strength=0.0)(x), x)
        True
        >>> SimToReal(strength=0.5)(x).shape
        torch.Size([2, 3, 32, 32])
    """

    strength: float
    p: float

    def __init__(
        self,
        strength: float = 0.5,
        p: float = 0.5,
        bank: Optional[Tensor] = None,
        same_on_batch: bool = False,
        keepdim: bool = False,
    ) -> None:
        s = check_probability(strength, "strength")
        p = check_probability(p, "p")

        def prob(weight: float) -> float:
            return p * weight if s > 0.0 else 0.0

        common: dict[str, Any] = {"same_on_batch": same_on_batch, "keepdim": keepdim}
        ops = [
            RandomSeasonShift(autumn=_scaled((0.0, 1.0), s), winter=_scaled((0.0, 0.7), s), p=prob(0.8), **common),
            RandomSnowCover(amount=_scaled((0.3, 0.95), s), p=prob(0.5), **common),
            RandomIllumination(
                relief=_scaled((0.0, 12.0), s),
                gamma=_scaled((0.6, 1.5), s, neutral=1.0),
                exposure=_scaled((-0.8, 0.8), s),
                p=prob(1.0),
                **common,
            ),
            RandomClouds(
                opacity=_scaled((0.5, 0.95), s), shadow_strength=_scaled((0.2, 0.7), s), p=prob(1.0), **common
            ),
            RandomHaze(density=_scaled((0.05, 0.6), s), p=prob(1.0), **common),
        ]
        if bank is not None:
            ops.append(FourierDomainAdaptation(bank, beta=_scaled((0.005, 0.06), s), p=prob(1.0), **common))
        ops += [
            RandomEdgeAbstraction(p=prob(0.2), **common),
            RandomCameraEffects(
                temperature=_scaled((-0.15, 0.15), s),
                tint=_scaled((-0.05, 0.05), s),
                vignetting=_scaled((0.0, 0.6), s),
                noise_std=_scaled((0.0, 0.04), s),
                blur_sigma=_scaled((0.0, 1.5), s),
                p=prob(1.0),
                **common,
            ),
        ]
        super().__init__(*ops, same_on_batch=same_on_batch, keepdim=keepdim)
        self.strength = s
        self.p = p
        self._range_checked = False  # the first batch's values are checked to lie in [0, 1]

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        # kornia's containers turn a numpy array (read as (H, W, C)), a PIL image or a path into a tensor first;
        # SimToReal's contract is a float tensor, as for every op of this package.
        if inputs and not isinstance(inputs[0], Tensor):
            check_image(inputs[0], "SimToReal: input")
        return super().__call__(*inputs, **kwargs)

    def forward(self, input: Tensor, params: Optional[List[ParamItem]] = None,
                extra_args: Optional[Dict[str, Any]] = None) -> Tensor:
        check_image(input, "SimToReal: input")  # before kornia, which reads a numpy array as (H, W, C)
        if input.dim() == 4 and input.shape[0] == 0:  # an empty batch: nothing to do
            return input.clone()
        if not self._range_checked:  # once, as each op does: named by SimToReal, not by an op the user never built
            check_pixel_range(input, "SimToReal: input")
            self._range_checked = input.numel() > 0  # an empty batch says nothing of the next
        if params is not None:  # replayed: the ops' parameters are checked as an op's own replay is
            for item in params:
                op = self._modules.get(item.name)
                if isinstance(op, SimToRealAugmentationBase) and isinstance(item.data, dict):
                    op.check_params(item.data)
        return super().forward(input, params=params, extra_args=extra_args)

    def extra_repr(self) -> str:
        return f"strength={self.strength}, p={self.p}"

