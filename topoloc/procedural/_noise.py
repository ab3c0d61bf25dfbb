"""Deterministic noise for Mini-Comballaz: fBm fields from a torch.Generator and counter-based hashes.

Two kinds of randomness are used:
    - world building (once per seed) draws from an explicit CPU ``torch.Generator``;
    - per-image randomness (clouds, exposure, sensor noise) is a pure function of integer keys
      through a 32-bit integer hash, so that any subset of a flight, any batch split, a resumed
      render and either device give the same values for the same image.
"""

from __future__ import annotations

import math
import zlib

import torch
import torch.nn.functional as F

__all__ = ["draw_seed", "fbm2d", "fbm1d_periodic", "hash_u32", "hash_uniform", "hash_normal", "image_key"]

_MASK32 = 0xFFFFFFFF


def draw_seed(generator: torch.Generator) -> int:
    """A seed in ``[0, 2**31 - 1)`` (for a numpy generator) drawn from ``generator``, alike on every torch release.

    ``torch.randint(0, 2**31 - 1)`` is not: torch 2.3 reduces one 32-bit draw of the Mersenne Twister modulo the
    range, torch 2.14 a 64-bit one (two draws), so the value and every later draw of the generator differ between
    them (a whole other Mini-Comballaz world for the same seed). Over the full int64 range every release draws
    64 bits and keeps them (up to one value in 2**64); their remainder is what torch 2.14's
    ``torch.randint(0, 2**31 - 1)`` gives, and the generator is left where that leaves it.
    """
    bits = int(torch.randint(-(2**63), 2**63 - 1, (1,), generator=generator)) + 2**63
    return bits % (2**31 - 1)


def fbm2d(
    shape: tuple[int, int],
    base_cells: float,
    octaves: int,
    generator: torch.Generator,
    gain: float = 0.5,
    lacunarity: float = 2.0,
) -> torch.Tensor:
    """Fractal value noise on a grid, roughly in [-1, 1] (zero mean, unit first-octave amplitude).

    Args:
        shape: output grid ``(rows, cols)``.
        base_cells: wavelength of the first octave, in output cells.
        octaves: number of octaves.
        generator: CPU generator the random lattices are drawn from.
        gain: amplitude ratio between successive octaves.
        lacunarity: frequency ratio between successive octaves.

    Shape:
        output: (rows, cols) float32 on the CPU.
    """
    rows, cols = shape
    # A pyramid: the sum of the coarser octaves is upsampled by ``lacunarity`` before each finer
    # lattice is added, and only the final sum is upsampled to the full grid (one full-size pass).
    wavelength = float(base_cells)
    acc = None
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        lr = max(2, int(math.ceil(rows / wavelength)) + 3)
        lc = max(2, int(math.ceil(cols / wavelength)) + 3)
        lattice = torch.rand(1, 1, lr, lc, generator=generator) * 2.0 - 1.0
        if acc is None:
            acc = amp * lattice
        else:
            acc = F.interpolate(acc, size=(lr, lc), mode="bicubic", align_corners=True) + amp * lattice
        total += amp
        amp *= gain
        wavelength = wavelength / lacunarity
        if wavelength < 1.0:
            break
    if acc is None:
        raise ValueError(f"fbm2d: `octaves` must be at least 1, got {octaves}")
    # lattice spacing of the finest level in output cells; crop the extra margin
    lr, lc = acc.shape[-2:]
    step = (wavelength * lacunarity)
    size = (int(round((lr - 1) * step)) + 1, int(round((lc - 1) * step)) + 1)
    out = F.interpolate(acc, size=size, mode="bicubic", align_corners=True)[..., :rows, :cols]
    if out.shape[-2] < rows or out.shape[-1] < cols:
        out = F.interpolate(acc, size=(rows, cols), mode="bicubic", align_corners=True)
    return (out[0, 0] / total * 1.7).clamp_(-1.5, 1.5)


def fbm1d_periodic(n: int, octaves: int, generator: torch.Generator, base_cycles: int = 3) -> torch.Tensor:
    """Periodic 1D fractal noise over ``n`` samples (e.g. a horizon profile over azimuth), about [-1, 1].

    Shape:
        output: (n,) float32 on the CPU.
    """
    x = torch.arange(n) / n
    out = torch.zeros(n)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cycles = base_cycles * 2**o
        phase = torch.rand(cycles, generator=generator) * 2 * math.pi
        weight = torch.rand(cycles, generator=generator)
        k = torch.arange(1, cycles + 1, dtype=torch.float32)
        # a few random harmonics per octave, all periodic in x
        term = (weight[:, None] * torch.sin(2 * math.pi * k[:, None] * x[None] + phase[:, None])).sum(0)
        out += amp * term / weight.sum().clamp_min(1e-6)
        total += amp
        amp *= 0.5
    return out / total


def hash_u32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32) evaluated in int64; returns values in [0, 2**32)."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    x = x ^ (x >> 16)
    return x


def hash_uniform(key: torch.Tensor, counter: torch.Tensor | int) -> torch.Tensor:
    """Uniform floats in [0, 1) from integer keys and counters (broadcast), device of ``key``."""
    h = hash_u32(hash_u32(key) ^ ((torch.as_tensor(counter, device=key.device) * 0x9E3779B1) & _MASK32))
    return (h >> 8).to(torch.float32) / float(1 << 24)


def hash_normal(key: torch.Tensor, counter: torch.Tensor | int) -> torch.Tensor:
    """Standard normal floats (Box-Muller) from integer keys and counters (broadcast)."""
    u1 = hash_uniform(key, counter * 2).clamp_min(1e-7)
    u2 = hash_uniform(key, counter * 2 + 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)


def image_key(seed: int, flight: str, index: int, domain: str) -> int:
    """A stable 31-bit key for one image: the same for a subset, a resume or another device."""
    return zlib.crc32(f"{seed}|{flight}|{index}|{domain}".encode()) & 0x7FFFFFFF
