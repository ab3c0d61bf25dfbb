"""Batched, deterministic noise fields: hashed value noise, Perlin gradient noise and their fBm sums.

Nothing here draws random numbers. A field is a pure function of per-image tensors: an integer
``seed`` (which lattice), an ``offset`` (where in the infinite noise plane the image sits, in
lattice cells of the base octave) and a ``scale`` (lattice cells across the longest image side).
The same arguments give the same field on every call and every device, and shifting ``offset``
translates the whole fractal field rigidly, which is how cloud shadows are cast.

Lattice values come from an integer hash of ``(ix, iy, seed)`` computed on the input's device.
Value noise samples a small per-image lattice with bicubic ``grid_sample`` (cheap on a GPU: the
lattice has at most a few thousand nodes per octave); Perlin noise evaluates the four hashed
gradients at every pixel (Perlin, "Improving noise", SIGGRAPH 2002, quintic fade).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from augment._checks import check_per_image, check_values

__all__ = ["hash_bits", "hash_uniform", "value_noise", "perlin_noise", "fractal_noise"]

# Odd 31-bit multipliers of a murmur-style finaliser; int32 products wrap (two's complement).
_PX, _PY, _PS = 668265261, 374761393, 1540483477
_M1, _M2 = 739982445, 695872825
_OCTAVE_SEED_STEP = 1013904223


# Kept out of torch.compile graphs: inductor folds the wrapping int32 products into its index arithmetic,
# which Triton refuses ("Scalar 95938916608 is out of range for type int32": RandomClouds failed to compile on
# an H200, torch 2.11, 2026-12-04). Eager, the hash is a few element-wise kernels.
@torch.compiler.disable
def hash_bits(ix: Tensor, iy: Tensor, seed: Tensor) -> Tensor:
    """Hash integer lattice coordinates and a seed to 32 well-mixed bits (as int32).

    Args:
        ix: integer x coordinates, any shape broadcastable with ``iy`` and ``seed``.
        iy: integer y coordinates.
        seed: integer seeds.

    Returns:
        int32 hashes with the broadcast shape.
    """
    h = ix.to(torch.int32) * _PX
    h = h ^ (iy.to(torch.int32) * _PY)
    h = h ^ (seed.to(torch.int32) * _PS)
    h = (h ^ _shr(h, 15)) * _M1
    h = (h ^ _shr(h, 12)) * _M2
    return h ^ _shr(h, 15)


def _shr(h: Tensor, k: int) -> Tensor:
    """Logical right shift of int32 (torch's ``>>`` is arithmetic: mask the copied sign bits)."""
    return (h >> k) & ((1 << (32 - k)) - 1)


def hash_uniform(ix: Tensor, iy: Tensor, seed: Tensor) -> Tensor:
    """Hash integer lattice coordinates to uniform floats in ``[0, 1)``.

    Args:
        ix: integer x coordinates, any shape broadcastable with ``iy`` and ``seed``.
        iy: integer y coordinates.
        seed: integer seeds.

    Returns:
        float32 values in ``[0, 1)`` with the broadcast shape, 24 bits of the hash each.
    """
    return (hash_bits(ix, iy, seed) & 0xFFFFFF).to(torch.float32) * (1.0 / 16777216.0)


def _check_field(seed: Tensor, offset: Tensor, scale: Tensor, size: tuple[int, int],
                 max_scale: float | None = None, values: bool = False) -> None:
    """Check a noise field's arguments: ``offset`` (B, 2), ``seed`` and ``scale`` (B,), ``size`` two ints >= 1, a
    given ``max_scale`` a number > 0; with ``values`` (where the call synchronises anyway, ``max_scale`` not
    given), every ``scale`` > 0 and finite. Each error names the argument."""
    if not isinstance(offset, Tensor) or offset.dim() != 2 or offset.shape[1] != 2:
        got = tuple(offset.shape) if isinstance(offset, Tensor) else type(offset).__name__
        raise ValueError(f"offset must be a tensor of shape (B, 2), one (x, y) per image, got {got}.")
    batch = offset.shape[0]
    check_per_image(seed, "seed", batch)
    check_per_image(scale, "scale", batch)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in size)):
        raise ValueError(f"size must be (H, W), two ints >= 1, got {size!r}.")
    if max_scale is not None and not (isinstance(max_scale, (int, float)) and 0 < max_scale < math.inf):
        raise ValueError(f"max_scale must be a number > 0 (an upper bound on scale), got {max_scale!r}.")
    if values and batch:
        check_values(scale, "scale", above=0.0, below=math.inf)


def _pixel_coords(size: tuple[int, int], device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates divided by the longest side: ``((W,), (H,))``."""
    height, width = size
    side = float(max(height, width))
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / side
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / side
    return xs, ys


def _as_int_seed(seed: Tensor) -> Tensor:
    return torch.remainder(seed.to(torch.int64), 2**31).to(torch.int32)


def value_noise(
    seed: Tensor,
    offset: Tensor,
    scale: Tensor,
    size: tuple[int, int],
    max_scale: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """One octave of bicubic value noise: hashed lattice values, interpolated.

    The field passes exactly through the hashed value at every lattice node (Keys' bicubic
    convolution is interpolating) and lies within about ``[-0.1, 1.1]``.

    Args:
        seed: integer-valued lattice seed per image.
        offset: position of the image origin in the noise plane, in lattice cells (x, y).
        scale: lattice cells across the longest image side, > 0.
        size: output ``(H, W)``.
        max_scale: an upper bound on ``scale`` known in advance (avoids a device sync).
        dtype: output dtype (float32 or float64).

    Returns:
        The field.

    Shape:
        - seed: :math:`(B,)`, offset: :math:`(B, 2)`, scale: :math:`(B,)`
        - output: :math:`(B, 1, H, W)`
    """
    _check_field(seed, offset, scale, size, max_scale, values=max_scale is None)
    device = offset.device
    batch = offset.shape[0]
    height, width = size
    side = float(max(height, width))
    if max_scale is None:
        max_scale = float(scale.detach().max())
    nx = int(math.ceil(max_scale * width / side)) + 5
    ny = int(math.ceil(max_scale * height / side)) + 5
    work = torch.float64 if dtype == torch.float64 else torch.float32
    offset = offset.to(work)
    base = torch.floor(offset)
    frac = offset - base
    base = base.to(torch.int64)
    # Lattice node (i, j) of image b holds the hash of (base_x + i - 1, base_y + j - 1).
    ix = torch.arange(nx, device=device, dtype=torch.int64).view(1, 1, nx) - 1 + base[:, 0].view(-1, 1, 1)
    iy = torch.arange(ny, device=device, dtype=torch.int64).view(1, ny, 1) - 1 + base[:, 1].view(-1, 1, 1)
    lattice = hash_uniform(ix, iy, _as_int_seed(seed).view(-1, 1, 1)).to(work).unsqueeze(1)
    xs, ys = _pixel_coords(size, device, work)
    scale = scale.to(work).view(-1, 1, 1)
    # Lattice index coordinate of each pixel, then grid_sample's normalised [-1, 1] (align_corners=True).
    px = xs.view(1, 1, width) * scale + frac[:, 0].view(-1, 1, 1) + 1.0
    py = ys.view(1, height, 1) * scale + frac[:, 1].view(-1, 1, 1) + 1.0
    gx = (px * (2.0 / (nx - 1)) - 1.0).expand(batch, height, width)
    gy = (py * (2.0 / (ny - 1)) - 1.0).expand(batch, height, width)
    grid = torch.stack((gx, gy), dim=-1)
    out = F.grid_sample(lattice, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return out.to(dtype)


def perlin_noise(
    seed: Tensor,
    offset: Tensor,
    scale: Tensor,
    size: tuple[int, int],
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """One octave of 2D Perlin gradient noise with unit gradients and the quintic fade.

    The field is zero at every lattice node, its gradient there is the node's hashed unit
    vector, and its values lie within ``[-sqrt(2)/2, sqrt(2)/2]``.

    Args:
        seed: integer-valued lattice seed per image.
        offset: position of the image origin in the noise plane, in lattice cells (x, y).
        scale: lattice cells across the longest image side, > 0.
        size: output ``(H, W)``.
        dtype: output dtype.

    Returns:
        The field.

    Shape:
        - seed: :math:`(B,)`, offset: :math:`(B, 2)`, scale: :math:`(B,)`
        - output: :math:`(B, 1, H, W)`
    """
    _check_field(seed, offset, scale, size)  # shapes only: its scale sizes nothing, and a check would synchronise
    device = offset.device
    work = torch.float64 if dtype == torch.float64 else torch.float32
    xs, ys = _pixel_coords(size, device, work)
    scale = scale.to(work).view(-1, 1, 1)
    offset = offset.to(work)
    u = xs.view(1, 1, -1) * scale + offset[:, 0].view(-1, 1, 1)
    v = ys.view(1, -1, 1) * scale + offset[:, 1].view(-1, 1, 1)
    u0, v0 = torch.floor(u), torch.floor(v)
    fu, fv = u - u0, v - v0
    iu, iv = u0.to(torch.int64), v0.to(torch.int64)
    s = _as_int_seed(seed).view(-1, 1, 1)

    def corner(dx: int, dy: int) -> Tensor:
        angle = hash_uniform(iu + dx, iv + dy, s).to(work) * (2.0 * math.pi)
        return torch.cos(angle) * (fu - dx) + torch.sin(angle) * (fv - dy)

    wu = fu * fu * fu * (fu * (fu * 6.0 - 15.0) + 10.0)
    wv = fv * fv * fv * (fv * (fv * 6.0 - 15.0) + 10.0)
    bottom = torch.lerp(corner(0, 0), corner(1, 0), wu)
    top = torch.lerp(corner(0, 1), corner(1, 1), wu)
    return torch.lerp(bottom, top, wv).unsqueeze(1).to(dtype)


def fractal_noise(
    seed: Tensor,
    offset: Tensor,
    scale: Tensor,
    size: tuple[int, int],
    octaves: int = 5,
    persistence: Tensor | float = 0.5,
    lacunarity: float = 2.0,
    basis: str = "value",
    max_scale: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Fractal Brownian motion: a sum of noise octaves of rising frequency and falling amplitude.

    Octave ``k`` has ``scale * lacunarity**k`` cells across the image, amplitude
    ``persistence**k`` and its own seed; ``offset`` is scaled with the octave, so changing it
    translates the whole field rigidly. The sum is divided by the total amplitude and centred
    on 0.5, so the field lies roughly in ``[0, 1]`` with mean 0.5.

    Args:
        seed: integer-valued seed per image.
        offset: position of the image origin, in base-octave lattice cells (x, y).
        scale: base-octave lattice cells across the longest image side, > 0.
        size: output ``(H, W)``.
        octaves: number of octaves (a static integer >= 1).
        persistence: amplitude ratio between successive octaves, a number or one per image.
        lacunarity: frequency ratio between successive octaves (> 1).
        basis: ``"value"`` (bicubic value noise, fast) or ``"perlin"`` (gradient noise).
        max_scale: an upper bound on ``scale`` known in advance (value basis; avoids a sync).
        dtype: output dtype.

    Returns:
        The field.

    Shape:
        - seed: :math:`(B,)`, offset: :math:`(B, 2)`, scale: :math:`(B,)`, persistence: :math:`(B,)`
        - output: :math:`(B, 1, H, W)`

    Example:
        >>> field = fractal_noise(torch.tensor([3.0]), torch.zeros(1, 2), torch.tensor([4.0]), (8, 8))
        >>> field.shape
        torch.Size([1, 1, 8, 8])
    """
    if octaves < 1:
        raise ValueError(f"octaves must be an integer >= 1, got {octaves}.")
    if lacunarity <= 1.0:
        raise ValueError(f"lacunarity must be > 1, got {lacunarity}.")
    if basis not in ("value", "perlin"):
        raise ValueError(f"basis must be 'value' or 'perlin', got {basis!r}.")
    _check_field(seed, offset, scale, size, max_scale, values=basis == "value" and max_scale is None)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    batch = offset.shape[0]
    if isinstance(persistence, Tensor):
        persistence_b = persistence.to(device=offset.device, dtype=work).expand(batch).reshape(-1, 1, 1, 1)
    else:  # a number: filled on the device, no host-to-device copy
        persistence_b = torch.full((batch, 1, 1, 1), float(persistence), device=offset.device, dtype=work)
    value_max = 0.0  # the value basis's bound on scale
    if basis == "value":
        value_max = float(scale.detach().max()) if max_scale is None else max_scale
    seed_i = seed.to(torch.int64)
    total = torch.zeros((), device=offset.device, dtype=work)
    norm = torch.zeros((), device=offset.device, dtype=work)
    amplitude = torch.ones_like(persistence_b)
    for k in range(octaves):
        factor = lacunarity**k
        seed_k = seed_i + k * _OCTAVE_SEED_STEP
        if basis == "value":
            octave = value_noise(seed_k, offset * factor, scale * factor, size, value_max * factor, work) - 0.5
        else:
            octave = perlin_noise(seed_k, offset * factor, scale * factor, size, work)
        total = total + amplitude * octave
        norm = norm + amplitude
        amplitude = amplitude * persistence_b
    return (total / norm + 0.5).to(dtype)
