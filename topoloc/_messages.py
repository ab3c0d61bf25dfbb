"""`renamed`: an error message that leads with one argument's name, reworded for where the caller set it;
`shape_of`: what an error message says a wrong argument was; `plain_text`: an error's message without
terminal colour codes.

The library's errors lead with the name of the argument they refuse (``"size: expected WxH ..."``,
``"out_dir runs/x: holds ..."``, ``"val_flights[0]: ..."``). A command line sets that argument with a
flag, and a study with a field of its config: `renamed` rewrites the leading name for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["renamed", "shape_of", "plain_text", "load_reason"]

#: A leading argument name, an optional index (``[2]``), then ``:`` or a space.
_HEAD = re.compile(r"(?P<name>[A-Za-z_]\w*)(?P<index>\[\d+\])?(?=[: ])")


def renamed(message: str, names: Mapping[str, str]) -> str:
    """``message`` with its leading argument name replaced by ``names[name]``, its index kept.

    A message that already names the flag after the argument (``"flights (--flights): ..."``) keeps it
    once. A message that leads with no name in ``names`` is returned as it is.

    Example:
        >>> renamed("size: expected WxH, got '0x0'", {"size": "--size"})
        "--size: expected WxH, got '0x0'"
        >>> renamed("val_flights[1] (--val-flights): no image", {"val_flights": "--val-flights"})
        '--val-flights[1]: no image'
    """
    head = _HEAD.match(message)
    if head is None or head["name"] not in names:
        return message
    new = names[head["name"]]
    rest = message[head.end():]
    if rest.startswith(f" ({new})"):
        rest = rest[len(f" ({new})"):]
    return new + (head["index"] or "") + rest


def shape_of(x: object) -> object:
    """``x``'s shape as a tuple when it has one (a tensor, an array), else its type's name: what an error
    message says a wrong argument was.

    Example:
        >>> import numpy as np
        >>> shape_of(np.zeros((2, 3))), shape_of([1, 2])
        ((2, 3), 'list')
    """
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else type(x).__name__


def plain_text(err: BaseException) -> str:
    """``str(err)`` without terminal colour codes, stripped (torch's weights-only refusal is in colour).

    Example:
        >>> plain_text(ValueError("\\x1b[1mWeights only load failed\\x1b[0m "))
        'Weights only load failed'
    """
    return re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()


def load_reason(text: str) -> str:
    """The one line of a `torch.load` failure's `plain_text` that says why: for a weights-only refusal the
    line below torch's advice to load the file unsafely, otherwise the first line ("" for no text).

    Example:
        >>> load_reason("Weights only load failed. ... unsafe ...\\nWeightsUnpickler error: Unsupported operand 103")
        'Unsupported operand 103'
    """
    reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    return reason[1].strip() if reason else text.splitlines()[0] if text else ""
