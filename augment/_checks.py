"""Argument checks shared by the functional API, the kornia classes and the adapters.

Every check raises an error that names the argument and says what was expected.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch
from torch import Tensor

__all__ = ["check_image", "check_pixel_range", "overshoot_share", "check_batch", "check_range", "check_probability",
           "check_per_image", "check_values", "check_param_bounds"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_image(image: Tensor, name: str = "image") -> None:
    """Check that ``image`` is a float ``(B, 3, H, W)`` (or ``(3, H, W)``) tensor.

    Raises:
        TypeError: if ``image`` is not a floating-point tensor.
        ValueError: if it is not 3- or 4-dimensional or has not 3 channels.
    """
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}.")
    if image.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor in [0, 1] (float16, bfloat16, float32 or float64), "
            f"got {image.dtype}; convert uint8 images with image.float() / 255."
        )
    if image.dim() not in (3, 4):
        raise ValueError(f"{name} must have shape (B, 3, H, W) or (3, H, W), got {tuple(image.shape)}.")
    if image.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels in dimension -3, got shape {tuple(image.shape)}.")
    if image.shape[-2] == 0 or image.shape[-1] == 0:
        raise ValueError(f"{name} must be at least 1 x 1 pixels, got shape {tuple(image.shape)}.")


#: How far outside [0, 1] an image's values may lie and still be taken, by `check_pixel_range` and by the
#: albumentations adapters (which then clamp float32 images to [0, 1]): cubic and Lanczos resizes do not clip float
#: images, and their kernels' negative lobes take an image in [0, 1] to at most about [-0.45, 1.45] (cubic) and
#: [-0.97, 1.97] (Lanczos4) beside sharp edges. Images in [0, 255] or after a mean / std normalisation go beyond
#: [-1, 2]; topoloc's model.prepare draws the same line.
PIXEL_SLACK = 1.0
#: A mean / std normalised image can also lie within [-1, 2] (``(x - 0.5) / 0.5``, or a dim photo after ImageNet's
#: statistics): it is told from a resize's overshoot by how many of its values lie more than `OVERSHOOT` outside
#: [0, 1]. Measured with OpenCV's cubic and Lanczos4 resizes (0.3x to 8x): photos and noise put at most 0.07 % of
#: their values there, checkerboards of 0 and 1 up to 22.5 % (2-pixel squares, Lanczos4 at 2x: every pixel beside an
#: edge). Photos normalised put 41-67 % there (a render sheet in [-1, 1]: 49 %); a bright photo in [-1, 1]
#: (3 %) is not told apart.
OVERSHOOT = 0.25
#: The largest share of values more than `OVERSHOOT` outside [0, 1] that an image in [0, 1] may have.
OVERSHOOT_SHARE = 1 / 3


def overshoot_share(values: Any) -> float:
    """The share of ``values`` (a tensor or a numpy array; NaN counts as inside) more than `OVERSHOOT` outside
    [0, 1]."""
    outside = (values < -OVERSHOOT) | (values > 1 + OVERSHOOT)
    return float(outside.sum()) / max(math.prod(values.shape), 1)


def check_pixel_range(image: Tensor, name: str = "image") -> None:
    """Check that the finite values of ``image`` lie in [0, 1], give or take `PIXEL_SLACK`: 0-255 pixels as floats,
    or images normalised by a mean and std, would otherwise come out clamped white or black, without an error.
    NaN and infinities pass (the ops return such images as all NaN). One reduction and one device
    synchronisation: the kornia ops check the first batch each is given.

    Raises:
        ValueError: naming ``image``, the values found and what to do.

    Example:
        >>> check_pixel_range(torch.full((1, 3, 2, 2), 200.0), "input")
        Traceback (most recent call last):
        ...
        ValueError: input must hold values in [0, 1], got 200 to 200; 8-bit pixels as floats: divide them by 255.
    """
    if image.numel() == 0:
        return
    finite = torch.nan_to_num(image.detach(), nan=0.5, posinf=0.5, neginf=0.5)
    low, high = (float(v) for v in torch.aminmax(finite))
    if low >= -PIXEL_SLACK and high <= 1 + PIXEL_SLACK:
        share = overshoot_share(finite)
        if share <= OVERSHOOT_SHARE:
            return
        raise ValueError(f"{name} must hold values in [0, 1], got {low:.4g} to {high:.4g} with {100 * share:.1f} % "
                         f"of them more than {OVERSHOOT:g} outside (a resize's overshoot puts at most a third "
                         "there); undo any mean / std normalisation first (the ops work on [0, 1] colours).")
    hint = ("8-bit pixels as floats: divide them by 255" if low >= -PIXEL_SLACK and high <= 255 + PIXEL_SLACK
            else "undo any mean / std normalisation first (the ops work on [0, 1] colours)")
    raise ValueError(f"{name} must hold values in [0, 1], got {low:.4g} to {high:.4g}; {hint}.")


def check_range(
    value: float | Sequence[float],
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
) -> tuple[float, float]:
    """Validate a ``(min, max)`` sampling range, or a single number meaning ``(value, value)``.

    Args:
        value: a number or a pair ``(min, max)``: a tuple, list or other sequence, or a 1-d tensor or
            array of two numbers (a 0-d one is a number).
        name: the argument name used in error messages.
        low: the smallest allowed value.
        high: the largest allowed value.

    Returns:
        The range as a pair of floats.

    Raises:
        ValueError: if the pair is reversed, not finite, or outside ``[low, high]``.
        TypeError: if ``value`` is neither a number nor a pair of numbers.
    """
    expected = f"{name} must be a number or a pair of numbers (min, max), got {value!r}."
    given = value
    if isinstance(value, Tensor) or (hasattr(value, "tolist") and hasattr(value, "ndim")):  # numpy arrays too
        given = value.tolist() if value.ndim <= 1 else value  # a 0-d one is a number, a 1-d one a sequence
    if isinstance(given, numbers.Real) and not isinstance(given, bool):  # numpy scalars too
        pair = (float(given), float(given))
    elif (isinstance(given, Sequence) and not isinstance(given, (str, bytes)) and len(given) == 2
          and not any(isinstance(v, (bool, str, bytes)) for v in given)):  # tuples, lists, a config's list
        try:
            pair = (float(given[0]), float(given[1]))
        except (TypeError, ValueError) as err:
            raise TypeError(expected) from err
    else:
        raise TypeError(expected)
    if not all(math.isfinite(v) for v in pair):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if pair[0] > pair[1]:
        raise ValueError(f"{name} must be a range (min, max) with min <= max, got {value!r}.")
    if pair[0] < low or pair[1] > high:
        raise ValueError(f"{name} must lie within [{low}, {high}], got {value!r}.")
    return pair


def check_probability(value: float, name: str = "p") -> float:
    """Check that ``value`` is a probability in ``[0, 1]``.

    Raises:
        TypeError: ``value`` is not a real number (a string, None, a bool).
        ValueError: it lies outside ``[0, 1]`` or is NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__} {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    return float(value)


def check_per_image(value: Tensor, name: str, batch: int, trailing: tuple[int, ...] = ()) -> None:
    """Check that a functional parameter is a tensor of shape ``(B, *trailing)``.

    Raises:
        TypeError: if ``value`` is not a tensor.
        ValueError: if its shape is not ``(batch, *trailing)``.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a tensor with one value per image, got {type(value).__name__}.")
    if tuple(value.shape) != (batch, *trailing):
        raise ValueError(f"{name} must have shape {(batch, *trailing)}, got {tuple(value.shape)}.")


def check_batch(image: Tensor, name: str = "image", shapes: dict[str, tuple] | None = None,
                **params: Tensor | None) -> int:
    """Check a functional call: ``image`` a float ``(B, 3, H, W)`` batch, each parameter a tensor with one
    value (or one row, one map) per image: shape ``(B,)``, or ``(B, *shapes[key])`` where ``shapes`` gives
    its trailing dimensions (``"H"`` and ``"W"`` stand for the image's); ``None`` is skipped.

    Returns:
        ``B``.

    Raises:
        TypeError: ``image`` is not a float tensor, or a parameter is not a tensor.
        ValueError: ``image`` is not a batch of RGB images, or a parameter has another shape (a wrong
            one would broadcast against the batch and change its size).
    """
    check_image(image, name)
    if image.dim() != 4:
        raise ValueError(f"{name} must be a batch (B, 3, H, W), got {tuple(image.shape)}; add the batch dimension "
                         f"with {name}[None].")
    batch, _, height, width = image.shape
    sizes = {"H": height, "W": width}
    for key, value in params.items():
        if value is None:
            continue
        dims = (shapes or {}).get(key, ())
        trailing = tuple(sizes.get(d, d) for d in dims)
        expected = (batch, *trailing)
        each = "map" if "H" in dims or "W" in dims else "row" if dims else "value"
        if not isinstance(value, Tensor):
            raise TypeError(f"{key} must be a tensor with one {each} per image, shape {expected}, got "
                            f"{type(value).__name__} {value!r}.")
        if tuple(value.shape) != expected:
            raise ValueError(f"{key} must have one {each} per image, shape {expected}, got {tuple(value.shape)}.")
    return batch


def check_values(value: Tensor, name: str, above: float | None = None, below: float | None = None,
                 at_least: float | None = None, at_most: float | None = None) -> None:
    """Check that every value of a functional parameter lies strictly between ``above`` and ``below``, and at
    least ``at_least`` and at most ``at_most`` (``None``: unbounded), and is not NaN. One reduction and one
    device synchronisation: the functional API's public entry points check with it, the kornia classes (whose
    ranges are checked when built) skip it.

    Raises:
        ValueError: naming the parameter, the bounds and the first value outside them.
    """
    bad = torch.isnan(value)
    if above is not None:
        bad |= value <= above
    if below is not None:
        bad |= value >= below
    if at_least is not None:
        bad |= value < at_least
    if at_most is not None:
        bad |= value > at_most
    if bool(bad.any()):
        first = float(value[bad][0])
        bounds = " and ".join(b for b in ((f"> {above:g}" if above is not None else ""),
                                          (f">= {at_least:g}" if at_least is not None else ""),
                                          (f"<= {at_most:g}" if at_most is not None else ""),
                                          (f"< {below:g}" if below is not None else "")) if b)
        raise ValueError(f"{name} must be {bounds}, got {first:g}.")


def check_param_bounds(op: str, name: str, value: Tensor, low: float, high: float, unit: str = "") -> None:
    """Refuse a replayed parameter holding NaN or a value outside ``[low, high]`` (integers read as numbers),
    naming the op, the parameter, its bounds and the first value outside them (one device synchronisation)."""
    value = value if value.is_floating_point() else value.float()
    bad = torch.isnan(value) | (value < low) | (value > high)
    if bool(bad.any()):
        raise ValueError(f"{op}: params[{name!r}] must lie in [{low:g}, {high:g}], the values the op accepts for "
                         f"{name}{unit}, got {float(value[bad][0]):g}.")
