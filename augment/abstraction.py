"""RandomEdgeAbstraction: flat colour regions plus dark edges (the seed's "dummified" images)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch  # noqa: F401  (used by the doctests)
from torch import Tensor

from augment._base import SimToRealAugmentationBase
from augment.functional.abstraction import _edge_abstraction

__all__ = ["RandomEdgeAbstraction"]


class RandomEdgeAbstraction(SimToRealAugmentationBase):
    r"""Reduce images to their main shapes: smoothed, posterised colours and darkened edges.

    See :func:`augment.functional.edge_abstraction`. Not differentiable through the
    quantisation (its gradient is zero there).

    Args:
        levels: range of the number of levels per channel, whole numbers within ``[2, 256]``; every
            integer in the range is equally likely.
        smoothing: range of the Gaussian smoothing in pixels, within ``[0, 10]``.
        edge_strength: range of the edge darkening, within ``[0, 1]``.
        edge_threshold: range of the gradient magnitude where edges start, within ``[0.001, 1]``.
        same_on_batch: apply the same parameters to every image of the batch.
        p: probability of applying the augmentation to each image.
        keepdim: keep the input's shape instead of returning ``(B, 3, H, W)``.

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - Output: :math:`(B, 3, H, W)`, or the input's shape with ``keepdim=True``

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> out = RandomEdgeAbstraction(levels=4, edge_strength=0.0, p=1.0)(torch.rand(1, 3, 16, 16))
        >>> set((out * 8).flatten().tolist()) <= {1.0, 3.0, 5.0, 7.0}  # four flat levels per channel
        True
    """

    sized_by_range = ("smoothing",)  # the op's own maximum sizes its buffers

    def __init__(
        self,
        levels: Tuple[float, float] | float = (3.0, 8.0),
        smoothing: Tuple[float, float] | float = (0.5, 2.0),
        edge_strength: Tuple[float, float] | float = (0.5, 1.0),
        edge_threshold: Tuple[float, float] | float = (0.02, 0.08),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        low, high = self._add_range("levels", levels, 2.0, 256.0)
        if not (low.is_integer() and high.is_integer()):
            raise ValueError(f"levels must be whole numbers (a number of levels per channel, or a range (min, max) "
                             f"of them), got {levels!r}.")
        # Drawn uniformly in [low, high + 1) and floored: every integer from low to high is equally likely.
        self._ranges["levels"] = (low, high + 0.999)
        self._domains["levels"] = (2.0, 256.999)  # a replayed draw of 256 levels is up to 256.999, floored to 256
        self.max_smoothing = self._add_range("smoothing", smoothing, 0.0, 10.0)[1]
        self._add_range("edge_strength", edge_strength, 0.0, 1.0)
        self._add_range("edge_threshold", edge_threshold, 0.001, 1.0)

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:
        return _edge_abstraction(
            input,
            levels=self._param(params, "levels", input),
            smoothing=self._param(params, "smoothing", input),
            edge_strength=self._param(params, "edge_strength", input),
            edge_threshold=self._param(params, "edge_threshold", input),
            max_smoothing=self.max_smoothing,
        )
