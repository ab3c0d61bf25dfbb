"""Image sizes: the one parser of ``image_size`` arguments, and what an int means.

Everywhere in topoloc a size pair is **(H, W)** in pixels, height first as in a tensor's shape.
Text is the exception: ``"360x240"`` (on the command line, in ``--size``) is written width
first, as screen resolutions are, and means H = 240, W = 360. The renderer's own ``size`` /
``render_size`` pairs (`topoloc.procedural.render_flights`, the demo and study configs) are still
(width, height) like its text; `topoloc.procedural.parse_size` reads them through this parser.

An int is **the short side** in pixels, the aspect ratio kept (``240`` makes a 480 x 720 image
240 x 360). It is accepted only where the images' own size is known (the datasets); where it is
not (``TrainConfig.image_size``, `ImageCache`, `predict`), an int is refused: write ``(n, n)``
for a square.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np

__all__ = ["parse_image_size", "output_size"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# short_side=False never gives an int, allow_none=False never None: the overloads say so to the type checker
@overload
def parse_image_size(value: Any, *, name: str = ..., short_side: Literal[False], minimum: int = ...,
                     maximum: int | None = ..., allow_none: Literal[False] = ...) -> tuple[int, int]: ...
@overload
def parse_image_size(value: Any, *, name: str = ..., short_side: Literal[False], minimum: int = ...,
                     maximum: int | None = ..., allow_none: bool) -> tuple[int, int] | None: ...
@overload
def parse_image_size(value: Any, *, name: str = ..., short_side: bool = ..., minimum: int = ...,
                     maximum: int | None = ..., allow_none: Literal[False] = ...) -> tuple[int, int] | int: ...
@overload
def parse_image_size(value: Any, *, name: str = ..., short_side: bool = ..., minimum: int = ...,
                     maximum: int | None = ..., allow_none: bool = ...) -> tuple[int, int] | int | None: ...
def parse_image_size(value: Any, *, name: str = "image_size", short_side: bool = True, minimum: int = 1,
                     maximum: int | None = None, allow_none: bool = False) -> tuple[int, int] | int | None:
    """Validate a size argument: ``(H, W)``, an int (the short side) or ``"WxH"`` text.

    Args:
        value: ``(H, W)`` (tuple or list of two ints), an int (the short side, aspect ratio
            kept), ``"WxH"`` text such as ``"360x240"`` (width first), or None.
        name: the argument, named in the error (e.g. ``"TrainConfig: `image_size`"``).
        short_side: accept an int (returned as it is, see `output_size`); otherwise an int is
            refused and the result is always ``(H, W)``.
        minimum, maximum: bounds of each side, pixels.
        allow_none: accept None (returned as None: the images' own size).

    Returns:
        ``(H, W)``, an int (the short side) or None.

    Raises:
        ValueError: anything else, naming ``name`` and saying what was expected.

    Example:
        >>> parse_image_size((240, 360)), parse_image_size("360x240"), parse_image_size(240)
        ((240, 360), (240, 360), 240)
    """
    bounds = f"{minimum}" + (f"..{maximum}" if maximum is not None else " or more")
    expected = ("None, " if allow_none else "") + f"(H, W) (two ints, {bounds} px)" + (
        ", an int (the short side)" if short_side else "") + " or 'WxH' text such as '360x240'"
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name}: expected {expected}, got None")
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if len(parts) != 2 or not all(p.isdecimal() for p in parts):
            raise ValueError(f"{name}: expected {expected}, got {value!r}")
        value = (int(parts[1]), int(parts[0]))  # text is width first
    if _is_int(value):
        if not short_side:
            raise ValueError(f"{name}: expected {expected}, got the int {value!r}; an int means the short side "
                             f"and needs the images' aspect ratio: write ({value}, {value}) for a square")
        sides: tuple[int, ...] = (int(value),)
    else:
        try:
            h, w = value
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected {expected}, got {value!r}") from None
        if not (_is_int(h) and _is_int(w)):
            raise ValueError(f"{name}: expected {expected}, got {value!r}")
        sides = (int(h), int(w))
    if any(s < minimum or (maximum is not None and s > maximum) for s in sides):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def output_size(native_hw: tuple[int, int], image_size: tuple[int, int] | int | None) -> tuple[int, int]:
    """(H, W) an image of native size ``native_hw`` is resized to, for a parsed ``image_size``.

    An int sets the short side and keeps the aspect ratio (rounded to whole pixels).

    Example:
        >>> output_size((480, 720), 240), output_size((480, 720), (100, 50)), output_size((480, 720), None)
        ((240, 360), (100, 50), (480, 720))
    """
    h, w = native_hw
    if image_size is None:
        return h, w
    if isinstance(image_size, int):
        s = image_size / min(h, w)
        return max(1, round(h * s)), max(1, round(w * s))
    return image_size
