"""The training augmentations by name: ``TrainConfig(augment="simtoreal")`` looks them up here.

A registry entry is a factory ``strength -> module`` whose module maps float (B, 3, H, W) images
in [0, 1] to the same; `register_augment` adds one, `build_augment` builds the one a config names.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["AUGMENTATIONS", "AUGMENT_NAMES", "register_augment", "build_augment"]

Factory = Callable[[float], Callable[[Tensor], Tensor]]

#: Name -> factory(strength); ``"none"`` (no augmentation) is not an entry.
AUGMENTATIONS: dict[str, Factory] = {}


def register_augment(name: str, factory: Factory | None = None):
    """Add ``factory`` (``strength -> module``) under ``name`` (lower case); usable as a decorator.

    Raises:
        ValueError: ``name`` is ``"none"``, not lower case, or already registered.
    """
    if not isinstance(name, str) or not name or name != name.lower() or name == "none":
        raise ValueError(f"register_augment: `name` must be a lower-case name other than 'none', got {name!r}")

    def add(fn: Factory) -> Factory:
        if name in AUGMENTATIONS:
            raise ValueError(f"register_augment: an augmentation named {name!r} is already registered")
        AUGMENTATIONS[name] = fn
        return fn

    return add if factory is None else add(factory)


@register_augment("simtoreal")
def _simtoreal(strength: float) -> nn.Module:
    """`augment.SimToReal` at ``strength``."""
    import augment  # noqa: PLC0415 - the standalone package, loaded when a run asks for it

    return augment.SimToReal(strength=strength)


@register_augment("colorjitter")
def _colorjitter(strength: float) -> nn.Module:
    """AtLoc's torchvision ``ColorJitter(0.7, 0.7, 0.7, 0.5)``, on the device (``strength`` unused)."""
    from kornia.augmentation import ColorJitter  # noqa: PLC0415 - loaded when a run asks for it

    return ColorJitter(0.7, 0.7, 0.7, 0.5, p=1.0)


#: The names built in (besides ``"none"``); `AUGMENTATIONS` holds these and any registered since.
AUGMENT_NAMES = ("none", *AUGMENTATIONS)


def build_augment(spec: str | Callable | None, strength: float = 0.5,
                  device: str | torch.device = "cpu") -> Callable[[Tensor], Tensor] | None:
    """The on-device augmentation of ``TrainConfig.augment`` (float (B, 3, H, W) in [0, 1] -> same).

    Args:
        spec: ``None`` / ``"none"``, a registered name (`AUGMENTATIONS`) or a callable (used as it is;
            a module is moved to ``device``).
        strength: passed to the registered factory.
        device: where the augmentation runs.
    """
    if spec is None or spec == "none":
        return None
    if callable(spec):
        return spec.to(device) if isinstance(spec, nn.Module) else spec
    if spec not in AUGMENTATIONS:
        raise ValueError(f"build_augment: unknown augment {spec!r}; expected None, a callable or one of "
                         f"{['none', *AUGMENTATIONS]}")
    out = AUGMENTATIONS[spec](strength)
    return out.to(device) if isinstance(out, nn.Module) else out
