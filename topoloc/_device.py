"""Device resolution: the one meaning of ``"auto"`` (CUDA when available, else the CPU)."""

from __future__ import annotations

import torch

__all__ = ["cpu_has_bf16", "resolve_device"]


def resolve_device(device: str | torch.device = "auto", name: str = "device") -> torch.device:
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a `torch.device` as a `torch.device`.

    Args:
        device: ``"auto"`` is CUDA when available (the current CUDA device), else the CPU.
        name: the argument, named in the errors.

    Raises:
        ValueError: not a device, or CUDA asked for where none is available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}") from err
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: {str(device)!r} asked for but no CUDA device is available")
    return out


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), as oneDNN reports it.

    Only there is bf16 autocast on the CPU faster than float32 (`TrainConfig.cpu_amp`); elsewhere
    oneDNN emulates it, more slowly than float32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False
