"""The base class of every augment kornia augmentation: validation and parameter drawing."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from kornia.augmentation._2d.intensity.base import IntensityAugmentationBase2D
from kornia.augmentation.utils import _adapted_uniform
from torch import Tensor

from augment._checks import check_image, check_param_bounds, check_pixel_range, check_probability, check_range

__all__ = ["SimToRealAugmentationBase", "poison_non_finite"]

#: Seeds are drawn as integers in [0, 2**24): exact in float32, so they survive kornia's dtype casts.
SEED_RANGE = float(2**24)


def poison_non_finite(input: Tensor, output: Tensor) -> Tensor:
    """``output`` with every image whose ``input`` holds a NaN or an infinity set to all NaN.

    Shape:
        - input: (B, 3, H, W) or (3, H, W)
        - output: (B, 3, H', W') or (3, H', W'), same batch as ``input``
        - returns: the shape of ``output``

    Example:
        >>> x = torch.zeros(2, 3, 2, 2); x[1, 0, 0, 0] = float("nan")
        >>> poison_non_finite(x, x.clamp(0, 1)).isnan().flatten(1).all(1).tolist()
        [False, True]
    """
    x = input if input.dim() == 4 else input.unsqueeze(0)
    y = output if output.dim() == 4 else output.unsqueeze(0)
    bad = ~torch.isfinite(x).flatten(1).all(dim=1)
    y = torch.where(bad.view(-1, 1, 1, 1), torch.full_like(y, float("nan")), y)
    return y if output.dim() == 4 else y.squeeze(0)


class SimToRealAugmentationBase(IntensityAugmentationBase2D):
    """An intensity augmentation whose parameters are independent uniform draws per image.

    Subclasses register their ranges with :meth:`_add_range` in ``__init__`` (validated there,
    errors name the argument) and implement ``apply_transform`` with a function of
    :mod:`augment.functional`. Every draw goes through kornia's ``_adapted_uniform``, so
    ``same_on_batch`` shares one draw across the batch and ``torch.manual_seed`` makes a call
    reproducible. Masks, boxes and keypoints pass through unchanged.

    Corrupt input is never made to look valid: an image holding any NaN or infinite value comes
    out as all NaN (whether or not the op was applied to it), so that a loss downstream turns
    NaN and stops the training instead of learning from a plausible-looking image. No host
    synchronisation is involved, but for one: the first batch an op is given is checked to hold
    values in [0, 1] (`augment._checks.check_pixel_range`: 0-255 floats are refused).

    Move the augmentation to the images' device (``aug.to("cuda")``, as for any module): kornia
    then draws the parameters there, where a CPU draw would be copied to the GPU every batch.

    Args:
        p: probability of applying the augmentation to each image.
        same_on_batch: apply the same parameters to every image of the batch.
        keepdim: keep the input's shape (``(3, H, W)`` stays unbatched) instead of ``(B, 3, H, W)``.
        needs_seed: draw an integer ``seed`` per image for the op's noise fields.

    Attributes:
        sized_by_range: parameters whose range maximum sizes a buffer of the op (a noise lattice, a blur
            kernel); a replayed value above it is refused by `check_params` (it would be computed wrongly).
    """

    sized_by_range: Tuple[str, ...] = ()

    def __init__(self, p: float, same_on_batch: bool, keepdim: bool, needs_seed: bool = False) -> None:
        p = check_probability(p, "p")
        if not isinstance(same_on_batch, bool):
            raise TypeError(f"same_on_batch must be a bool, got {same_on_batch!r}.")
        if not isinstance(keepdim, bool):
            raise TypeError(f"keepdim must be a bool, got {keepdim!r}.")
        super().__init__(p=p, same_on_batch=same_on_batch, p_batch=1.0, keepdim=keepdim)
        self._ranges: Dict[str, Tuple[float, float]] = {}
        self._domains: Dict[str, Tuple[float, float]] = {}  # the values each parameter may take at all
        self._shown: Dict[str, Tuple[float, float]] = {}
        self._needs_seed = needs_seed
        self._user_call = False  # set by forward: the keywords of a user's call are checked
        self._drawn: Optional[Dict[str, Tensor]] = None  # the parameters just drawn, until the call that uses them
        self._range_checked = False  # the first batch's values are checked to lie in [0, 1]

    def _add_range(
        self,
        name: str,
        value: float | Sequence[float],
        low: float = -math.inf,
        high: float = math.inf,
        internal: bool = False,
    ) -> Tuple[float, float]:
        """Validate ``value`` as a ``(min, max)`` range within ``[low, high]`` and draw it per image.

        ``internal`` draws (a shadow direction, a bank index) are left out of ``repr``.
        """
        bounds = check_range(value, name, low, high)
        self._ranges[name] = bounds
        self._domains[name] = (low, high)
        if not internal:
            self._shown[name] = bounds
        return bounds

    def __repr__(self) -> str:
        shown = [f"{name}=({low:.6g}, {high:.6g})" for name, (low, high) in self._shown.items()]
        shown += [f"{name}={value}" for name, value in self._repr_extras().items()]
        return f"{type(self).__name__}({', '.join(shown)}, p={self.p}, same_on_batch={self.same_on_batch})"

    def _repr_extras(self) -> Dict[str, Any]:
        """Arguments other than ranges, for the repr (a subclass adds its own)."""
        return {}

    def _uniform(self, batch: int, low: float, high: float, dtype: Optional[torch.dtype] = None) -> Tensor:
        # float32 (float64 for a float64 op) whatever the op was cast to: in bf16 a bound such as 8.999 rounds up
        dtype = (torch.float64 if self.dtype == torch.float64 else torch.float32) if dtype is None else dtype
        # torch.full, not torch.tensor: no host-to-device copy (which would synchronise a CUDA stream).
        low_t = torch.full((), low, device=self.device, dtype=dtype)
        high_t = torch.full((), high, device=self.device, dtype=dtype)
        if low == high:
            return low_t.expand(batch).clone()
        return _adapted_uniform((batch,), low_t, high_t, self.same_on_batch)

    def generate_parameters(self, batch_shape: Tuple[int, ...]) -> Dict[str, Tensor]:
        batch = batch_shape[0]
        params = {name: self._uniform(batch, low, high) for name, (low, high) in self._ranges.items()}
        if self._needs_seed:
            seed_dtype = torch.float64 if self.dtype == torch.float64 else torch.float32
            params["seed"] = torch.floor(self._uniform(batch, 0.0, SEED_RANGE, seed_dtype))
        return params

    def forward(self, input: Tensor, params: Optional[Dict[str, Tensor]] = None, **kwargs: Any) -> Tensor:
        # before kornia, which reads a numpy array as (H, W, C) or a list not at all
        check_image(input, f"{type(self).__name__}: input")
        # once: 0-255 floats come out clamped white, without an error; not while torch.compile traces (a check of the
        # values is data-dependent: fullgraph=True refused a fresh op's first call), the next eager call checks
        if not self._range_checked and not torch.compiler.is_compiling():
            check_pixel_range(input, f"{type(self).__name__}: input")
            self._range_checked = input.numel() > 0  # an empty batch says nothing of the next
        if input.dim() == 4 and input.shape[0] == 0:  # an empty batch: nothing to do
            self._params = super().forward_parameters(input.shape)  # none, as kornia's ops record (not the last call's)
            return input.clone()
        batch = input.shape[0] if input.dim() == 4 else 1
        for name in [*self._domains, "seed"] if "data_keys" not in kwargs else ():
            if name in kwargs and not isinstance(kwargs[name], Tensor):  # kornia called .to() on it
                raise TypeError(f"{type(self).__name__}: {name}= overrides the drawn parameter of that name and takes "
                                f"a tensor with one value per image, shape ({batch},), got "
                                f"{type(kwargs[name]).__name__} {kwargs[name]!r}.")
        self._user_call = "data_keys" not in kwargs  # kornia's containers always pass data_keys
        overrides = {name: value for name, value in kwargs.items() if isinstance(value, Tensor)}
        # A container draws through forward_parameters and then calls forward with those parameters; any
        # other parameters a container passes are replayed (seq(x, params=seq._params)) and checked.
        replayed = params is not None and (self._user_call or params is not self._drawn)
        if replayed or (overrides and self._user_call):  # op(x, params=...), op(x, opacity=...)
            self.check_params({**(params or {}), **overrides}, batch=batch)
        try:
            return super().forward(input, params=params, **kwargs)
        finally:
            self._user_call = False
            self._drawn = None

    def forward_parameters(self, batch_shape: Tuple[int, ...]) -> Dict[str, Tensor]:
        self._drawn = super().forward_parameters(batch_shape)
        return self._drawn

    def check_params(self, params: Dict[str, Tensor], batch: Optional[int] = None) -> None:
        """Check replayed ``params`` (``aug(x, params=...)`` or a keyword ``aug(x, opacity=...)``) against the
        values this op accepts, and, given ``batch``, their length against the batch's.

        Drawn parameters lie in the ranges checked when the op was built; parameters written or edited by
        hand are checked here against the same bounds (one reduction and one device synchronisation per
        parameter, on replayed calls only).

        Raises:
            TypeError: naming the op and a parameter that is not a tensor (a number written in by hand).
            ValueError: naming the op, the parameter, its bounds and the first value outside them, or the
                parameter's length and the batch's.
        """
        for name in [*self._domains, "seed"]:
            value = params.get(name)
            if value is not None and not isinstance(value, Tensor):  # kornia would call .to() on it
                raise TypeError(f"{type(self).__name__}: params[{name!r}] must be a tensor with one value per image, "
                                f"got {type(value).__name__} {value!r}.")
        for name in [*self._domains, "seed"] if batch is not None else ():
            value = params.get(name)
            if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] != batch:
                raise ValueError(f"{type(self).__name__}: params[{name!r}] holds {value.shape[0]} values (one per "
                                 f"image of the call they come from), for a batch of {batch} images; replay the "
                                 "parameters of a call on as many images.")
        for name, (low, high) in self._domains.items():
            value = params.get(name)
            if not isinstance(value, Tensor):
                continue  # a missing entry is named where it is read (`_param`)
            check_param_bounds(type(self).__name__, name, value, low, high)  # integers and bools read as numbers
        for name in self.sized_by_range:
            value, top = params.get(name), self._ranges[name][1]
            largest = float(value.detach().max()) if isinstance(value, Tensor) and value.numel() else -math.inf
            if largest > top:
                raise ValueError(f"{type(self).__name__}: params[{name!r}] holds {largest:g}, above this op's {name} "
                                 f"range, up to {top:g}, which sizes its buffers; build the op with a range that "
                                 f"holds the values to replay (e.g. {name}=(..., {largest:g})).")

    def _process_kwargs_to_params_and_flags(
        self, params: Optional[Dict[str, Tensor]] = None, flags: Optional[Dict[str, Any]] = None, **kwargs: Any
    ) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
        # kornia takes any keyword of forward() as an override of a parameter or flag of that name and
        # drops the others without a word: `aug(x, generator=g)` or a misspelt parameter did nothing. Checked
        # on a user's call only: kornia's containers pass keywords of their own (data_keys, resample, ...).
        if not (kwargs and self._user_call):  # the common call: nothing to check
            return super()._process_kwargs_to_params_and_flags(params, flags, **kwargs)
        known = set(self._params if params is None else params) | set(self.flags if flags is None else flags)
        unknown = sorted(set(kwargs) - known - {"save_kwargs"})
        if unknown:
            shown = sorted(known - {"batch_prob", "forward_input_shape"})  # kornia's own entries
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {unknown}; a keyword of the call "
                            f"overrides a drawn parameter or a flag of that name ({shown}). Seed the draws "
                            "with torch.manual_seed")
        return super()._process_kwargs_to_params_and_flags(params, flags, **kwargs)

    def transform_tensor(
        self, input: Tensor, *, shape: Optional[Tensor] = None, match_channel: bool = True
    ) -> Tensor:
        if shape is None:
            check_image(input, f"{type(self).__name__}: input")
        return super().transform_tensor(input, shape=shape, match_channel=match_channel)

    def transform_inputs(
        self,
        input: Tensor,
        params: Dict[str, Tensor],
        flags: Dict[str, Any],
        transform: Optional[Tensor] = None,
        **kwargs: Any,
    ) -> Tensor:
        output = super().transform_inputs(input, params, flags, transform=transform, **kwargs)
        return poison_non_finite(input, output)

    def _param(self, params: Dict[str, Tensor], name: str, like: Tensor) -> Tensor:
        """``params[name]`` on the image's device (float32, or float64 for float64 images); a missing entry (the
        parameters of another op) is refused naming this op."""
        dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
        if name not in params:
            raise ValueError(f"{type(self).__name__}: params: expected the parameters of a call of this op (its "
                             f"`_params` after the call), got none named {name!r} among {sorted(params)}")
        return params[name].to(device=like.device, dtype=dtype)

    def apply_transform(
        self, input: Tensor, params: Dict[str, Tensor], flags: Dict[str, Any], transform: Optional[Tensor] = None
    ) -> Tensor:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError
