"""Device resolution (the one meaning of ``"auto"``: CUDA when available, else the CPU), whether the CPU
computes bf16 natively, its model's name, and how many CPUs this process may use."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

__all__ = ["cpu_has_bf16", "cpu_name", "module_device", "resolve_device", "usable_cpus"]


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one, else the machine's count.

    A container or a ``taskset`` limited to 2 of a host's 64 cores gets 2, where ``os.cpu_count()`` says 64.
    CPU quotas (cgroup ``cpu.max``) are not counted.
    """
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


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


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter, else of its first buffer, else the CPU.

    A module without parameters (a batch norm with ``affine=False``, a fixed filter) is not an error.

    Example:
        >>> module_device(torch.nn.BatchNorm2d(3, affine=False)), module_device(torch.nn.ReLU())
        (device(type='cpu'), device(type='cpu'))
    """
    tensor: torch.Tensor | None = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


#: CPU feature flags of native bf16 arithmetic: x86 AVX512-BF16 and AMX (``/proc/cpuinfo`` "flags"), Arm's
#: BF16 extension ("Features").
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags as Linux lists them (``flags`` on x86, ``Features`` on Arm); None where
    the file cannot be read (another OS)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model as Linux names it (``model name``: "AMD EPYC 9B14"), else what `platform` says
    ("x86_64", "arm"), for the device lines of benchmarks and studies."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16, AMX or Arm BF16) and oneDNN can use it.

    Only there is bf16 autocast on the CPU faster than float32 (`TrainConfig.cpu_amp`); elsewhere
    oneDNN emulates it, more slowly than float32. oneDNN's own answer is not enough: it also says yes on
    AVX-512 without BF16, where it emulates bf16 (a 2-core Xeon of that kind trained ResNet18 steps 1.5x
    slower under bf16 autocast than in float32). So the CPU's flags decide where Linux lists them.

    Args:
        cpuinfo: the file listing the CPU's flags (a test passes another).
    """
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False
    flags = cpu_flags(cpuinfo)
    if not onednn or flags is None:
        return onednn
    return bool(flags & NATIVE_BF16_FLAGS)
