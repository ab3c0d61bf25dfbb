"""The model's input contract: what a batch of images must become before the model sees it.

As a timm model carries its ``pretrained_cfg`` (input size, mean, std), a topoloc model carries
in its ``config`` dict:

- ``"image_size"``: the (H, W) in pixels it was trained at (``None`` before training); the
  trainer records it, the checkpoint keeps it (``model_config``) and `load_model` restores it.
  `topoloc.engine.predict.predict` and `topoloc.engine.evaluate.evaluate` run at this size
  unless told otherwise.
- ``"mean"``, ``"std"``: the per-channel normalisation of its backbone (from timm's
  ``pretrained_cfg``), also restored from the checkpoint.

`prepare` is the one place where an image batch becomes the model's input: uint8 [0, 255] or
float [0, 1] in, float normalised out, in the memory format asked for. `to_unit_float` is the
one place where uint8 becomes float [0, 1] (the augmentations and the saliency maps work there).
"""

from __future__ import annotations

import math
from os import PathLike
from typing import Any, Callable, Sequence, cast

import torch
from torch import Tensor, nn

# the augment ops' line between a resize's overshoot and a mean / std normalisation: one rule for both
from augment._checks import OVERSHOOT, OVERSHOOT_SHARE, overshoot_share

__all__ = ["CONTRACT_KEYS", "check_model", "check_unit_range", "to_unit_float", "unwrap_model", "input_size",
           "record_input_size", "resolve_input_size", "prepare"]

#: Keys of ``model.config`` that describe the input, not the architecture (not constructor arguments).
CONTRACT_KEYS = ("image_size", "mean", "std", "frame")


def check_unit_range(images: Tensor, where: str = "normalize", name: str = "images") -> None:
    """Refuse float images that cannot be in [0, 1]: NaN or infinite pixels, a maximum above 2 (images in
    [0, 255] passed as float), a minimum below -1 (already normalised ones), or more than a third of the values
    more than 0.25 outside [0, 1] (normalised into [-1, 1]; the augment ops' rule). uint8 images pass.

    Raises:
        ValueError: the message starts with ``where`` and names the argument (``name``).
    """
    if not images.is_floating_point() or not images.numel() or torch.jit.is_tracing():
        return
    low, high = (float(v) for v in torch.aminmax(images.detach()))  # NaN when any pixel is
    hold = "hold" if name.endswith("s") else "holds"
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"{where}: float `{name}` {hold} NaN pixels: a corrupt image would give a NaN pose")
    if math.isinf(low) or math.isinf(high):
        raise ValueError(f"{where}: float `{name}` {hold} infinite pixels; expected values in [0, 1]")
    normalised = low < -1.0 and high <= 3.0  # ImageNet's mean and std give about [-2.1, 2.6]; [0, 255] goes higher
    if high > 2.0 and not normalised:
        raise ValueError(f"{where}: float `{name}` must be in [0, 1], got a maximum of {high:g}: "
                         "divide images in [0, 255] by 255, or pass them as uint8")
    if low < -1.0:
        raise ValueError(f"{where}: float `{name}` must be in [0, 1], got a minimum of {low:g} (maximum {high:g}): "
                         "images already normalised by the backbone's mean and std are normalised again; pass them "
                         "in [0, 1]")
    if low < -OVERSHOOT or high > 1 + OVERSHOOT:  # (x - 0.5) / 0.5 stays within [-1, 1]: told by its share
        share = overshoot_share(images.detach())
        if share > OVERSHOOT_SHARE:
            raise ValueError(f"{where}: float `{name}` must be in [0, 1], got {low:.4g} to {high:.4g} with "
                             f"{100 * share:.1f} % of the values more than {OVERSHOOT:g} outside (a resize's "
                             "overshoot puts at most a third there): images normalised into [-1, 1] are normalised "
                             "again; pass them in [0, 1]")


def to_unit_float(images: Tensor) -> Tensor:
    """uint8 images in [0, 255] to float32 in [0, 1]; floating-point images are returned as they are.

    Shape:
        - images: (..., H, W), uint8 or floating point
        - output: same shape, float32 for uint8 input, else the input's dtype

    Example:
        >>> to_unit_float(torch.tensor([0, 51, 255], dtype=torch.uint8))
        tensor([0.0000, 0.2000, 1.0000])
    """
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    if not images.is_floating_point():
        raise TypeError(f"images: expected uint8 in [0, 255] or float in [0, 1], got {images.dtype}")
    return images


def check_model(model: Any, where: str, name: str = "model") -> nn.Module:
    """``model`` if it is a torch module; refused naming ``where`` and the argument ``name`` otherwise, saying how
    to get one from what a user most often passes instead (a checkpoint path, the triple of `load_model`).

    Raises:
        TypeError: the message starts with ``where``.
    """
    if isinstance(model, nn.Module):
        return model
    if isinstance(model, (str, PathLike)):
        hint = ": a checkpoint path is read by model, normalizer, config = topoloc.load_model(path)"
    elif isinstance(model, tuple) and len(model) == 3 and isinstance(model[0], nn.Module):
        hint = ": load_model returns (model, normalizer, config); pass its model and its normalizer"
    else:
        hint = ""
    raise TypeError(f"{where}: `{name}` must be a torch module (a trained AtLoc), got {type(model).__name__}{hint}")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a `DistributedDataParallel` (``.module``) and / or `torch.compile` (``._orig_mod``) wrapper."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def input_size(model: nn.Module) -> tuple[int, int] | None:
    """The (H, W) in pixels the model records as its training input size, or None."""
    config = getattr(unwrap_model(model), "config", None)
    recorded = config.get("image_size") if isinstance(config, dict) else None
    return None if recorded is None else (int(recorded[0]), int(recorded[1]))


def record_input_size(model: nn.Module, image_size: Sequence[int]) -> None:
    """Record ``image_size`` (H, W) as the model's training input size (a model without a
    ``config`` dict records nothing)."""
    config = getattr(unwrap_model(model), "config", None)
    if isinstance(config, dict):
        config["image_size"] = [int(image_size[0]), int(image_size[1])]


def resolve_input_size(model: nn.Module, image_size: Sequence[int] | None, data: Any = None,
                       where: str = "predict") -> tuple[int, int]:
    """The (H, W) a model runs at: ``image_size`` if given, else the size the model records.

    A model that records none runs at the size of an `ImageCache` (whose size was chosen when it
    was built); for anything else ``image_size`` is required.

    Raises:
        ValueError: ``image_size`` is not (H, W), two positive ints; or it is needed and missing.
    """
    if image_size is not None:
        from topoloc.image_size import parse_image_size  # noqa: PLC0415 - a leaf module, kept off the models' import

        return parse_image_size(image_size, name=f"{where}: `image_size`", short_side=False)
    recorded = input_size(model)
    if recorded is not None:
        return recorded
    cached = getattr(data, "image_size", None)
    if cached is not None and hasattr(data, "images"):  # an ImageCache
        return tuple(cached)
    raise ValueError(f"{where}: `image_size` is needed: the model records no training input size (a model not "
                     "trained by topoloc, or a checkpoint read without load_model); pass image_size=(H, W), the "
                     "size it was trained at (TrainConfig.image_size)")


def prepare(model: nn.Module, images: Tensor, channels_last: bool = False, check_range: bool = True) -> Tensor:
    """A batch of images as ``model``'s input: float, normalised, in the memory format asked for.

    Uses ``model.prepare`` (`topoloc.models.Backbone.prepare`, which `AtLoc` forwards) when the model has
    one; a model with only a ``normalize`` method gets ``normalize(to_unit_float(images))``.

    Args:
        model: an `AtLoc`, a `Backbone`, a wrapper of either, or any module with ``normalize``.
        images: uint8 [0, 255] or float [0, 1] RGB.
        channels_last: return a channels_last tensor (what cuDNN prefers under autocast).
        check_range: refuse float images brighter than 2 (see `topoloc.models.Backbone.normalize`);
            passed to ``model.prepare`` only when off, so a model's own ``prepare`` need not take it.

    Shape:
        - images: (B, 3, H, W)
        - output: (B, 3, H, W) float
    """
    raw = unwrap_model(model)
    fn = getattr(raw, "prepare", None)
    if fn is not None:
        return fn(images, channels_last=channels_last, **({} if check_range else {"check_range": False}))
    normalize = cast(Callable[[Tensor], Tensor], raw.normalize)  # a module's method, not a submodule
    x = normalize(to_unit_float(images))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
