"""`check_flag`: a bool argument checked as one, since any string (``"no"``, ``"false"``) is truthy."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_flag"]


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool if it is one (a Python or numpy bool).

    Raises:
        TypeError: anything else, naming ``name``: ``"no"`` or ``1`` would otherwise pass as a truth value.

    Example:
        >>> check_flag(True, "amp")
        True
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
