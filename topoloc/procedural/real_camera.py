"""The camera of the ``real`` appearance: a drone camera's exposure, white balance, blur, vignetting,
response curve and sensor noise, applied to rendered colours (JPEG is added when the images are written).

Every effect is element-wise per image, drawn from the image's integer key
(:func:`topoloc.procedural._noise.image_key`): an image has the same bits whatever batch it is in.
The ``real_alt`` appearance has another camera (:mod:`topoloc.procedural.alt_camera`), which
shares this module's Gaussian noise tile.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from topoloc.procedural._noise import hash_normal, hash_uniform

__all__ = ["camera_effects"]

_NOISE_TILE_SIZE = 1024
_NOISE_TILES: dict = {}


def _noise_tile(device) -> torch.Tensor:
    """A fixed (3, 1024, 1024) standard normal tile (seed-independent), cached per device."""
    key = str(device)
    if key not in _NOISE_TILES:
        gen = torch.Generator().manual_seed(20201106)
        _NOISE_TILES[key] = torch.randn(3, _NOISE_TILE_SIZE, _NOISE_TILE_SIZE, generator=gen).to(device)
    return _NOISE_TILES[key]


def camera_effects(rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """A drone camera: exposure, white balance, response curve, vignetting, blur, sensor noise.

    Shape:
        rgb: (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1]
    """
    B, _, H, W = rgb.shape
    dev = rgb.device
    k = keys.to(dev)
    gain = torch.exp(0.18 * hash_normal(k, 10))
    wb = torch.exp(0.06 * hash_normal(k[:, None], 11 + torch.arange(3, device=dev)))
    x = rgb * (gain[:, None] * wb)[:, :, None, None]
    # slight blur (lens + motion), strength per image; a separable [1, 2, 1] / 4 kernel from shifted
    # slices (element-wise: the same bits whatever the batch size)
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h = p[..., :, :-2] + 2.0 * p[..., :, 1:-1] + p[..., :, 2:]
    blurred = (h[..., :-2, :] + 2.0 * h[..., 1:-1, :] + h[..., 2:, :]) * (1.0 / 16.0)
    x = torch.lerp(x, blurred, (0.4 + 0.6 * hash_uniform(k, 14))[:, None, None, None])
    # vignetting
    yy = (torch.arange(H, device=dev) + 0.5 - H / 2) / (W / 2)
    xx = (torch.arange(W, device=dev) + 0.5 - W / 2) / (W / 2)
    r2 = yy[:, None] ** 2 + xx[None, :] ** 2
    x = x * (1.0 - (0.15 + 0.2 * hash_uniform(k, 15))[:, None, None, None] * r2)
    # response: lifted shadows, more contrast and saturation; highlights are not compressed (1 maps to 1.04),
    # so sunlit snow saturates, as in a real camera's photos
    x = x.clamp_min(0)
    x = 1.04 * x**0.85  # a brighter, flatter response than the renders' linear one
    x = x + 0.35 * x * (1 - x).clamp_min(0) * (x - 0.45)  # a gentle S: more contrast around mid grey
    grey = (x[:, 0:1] + x[:, 1:2] + x[:, 2:3]) * (1.0 / 3.0)
    x = torch.lerp(grey, x, 1.15)
    # sensor noise: shot-like (scales with signal) + read noise, from a fixed Gaussian tile read at a
    # per-image offset (one gather per pixel instead of hashing every pixel)
    T = _NOISE_TILE_SIZE
    tile = _noise_tile(dev)
    oy = (hash_uniform(k, 17) * T).long()
    ox = (hash_uniform(k, 18) * T).long()
    rows = (oy[:, None] + torch.arange(H, device=dev)[None]) % T
    cols = (ox[:, None] + torch.arange(W, device=dev)[None]) % T
    flat = (rows[:, :, None] * T + cols[:, None, :]).reshape(-1)
    n = tile.reshape(3, -1)[:, flat].reshape(3, B, H, W).transpose(0, 1)
    sigma = (0.008 + 0.012 * hash_uniform(k, 16))[:, None, None, None]
    x = x + n * sigma * (0.5 + x.clamp(0, 1).sqrt())
    return x.clamp(0, 1)
