"""The camera of the ``real_alt`` appearance: another lens, sensor and tone curve than ``real``'s.

It is meant to differ from both the "real" camera (:func:`topoloc.procedural.real_camera.camera_effects`)
and from what the ``augment`` ops imitate (white balance, vignetting, Gaussian noise, Gaussian
blur, exposure and gamma), so that a sim-to-real result measured on it is out of distribution:

- **barrel distortion** (Brown's radial model, ``k1 > 0`` mapping the distorted image to the ideal
  one), with a zoom ``s`` so that the image corners sample the rendered corners: the image centre
  is magnified by ``1 / s = 1 + k1 r_c^2`` (about 2.8 % at 3:2, whose corner radius r_c^2 is
  0.75^2 + 0.5^2 = 0.8125 in focal lengths) and the edges bend outwards;
- **lateral chromatic aberration**: red and blue are sampled at slightly larger / smaller radii than
  green (colour fringes growing towards the corners);
- a **filmic tone curve**: crushed blacks (a black point), a smooth S and compressed highlights,
  slightly desaturated;
- **sensor row banding** (a per-row offset) and a little fixed-amplitude read noise.

The geometry moves pixels, so the semantics are warped with the same map (nearest neighbour, the
green channel's): a class map stays aligned with its image. Everything is element-wise per image
(per-image keys, no batch statistics), so an image has the same bits whatever batch it is in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from topoloc.procedural._noise import hash_normal, hash_uniform
from topoloc.procedural.real_camera import _NOISE_TILE_SIZE, _noise_tile  # the shared Gaussian tile
from topoloc.procedural.renderer import TOPO_FOCAL_PX, TOPO_SIZE

__all__ = ["alt_camera_effects", "distortion_grid", "ALT_K1", "ALT_CHROMATIC", "ALT_BLACK_POINT"]

#: Brown radial coefficient: an ideal (rendered) point at normalised radius r_u is imaged at r_d
#: with r_u = s * r_d * (1 + k1 * r_d^2) (normalised by the focal length; s: see `distortion_grid`).
ALT_K1 = 0.035
#: Relative radius offset of the red (+) and blue (-) channels' samples (lateral chromatic aberration).
ALT_CHROMATIC = 0.0025
#: Black point of the tone curve: linear values below it become 0.
ALT_BLACK_POINT = 0.04


def distortion_grid(width: int, height: int, k1: float = ALT_K1, chromatic: float = ALT_CHROMATIC,
                    device=None) -> torch.Tensor:
    """Sampling grids of the distorted image in the ideal (rendered) one, one per colour channel.

    For the output pixel centre ``(u, v)`` with ``x_d = (u + 0.5 - W / 2) / f`` and
    ``y_d = (v + 0.5 - H / 2) / f`` (``f = 480 * W / 720`` px, TOPO's focal), the ideal point is
    ``x_u = s * c * x_d * (1 + k1 * r_d^2)`` (same for y), with ``s = 1 / (1 + k1 * r_c^2)`` where
    ``r_c`` is the normalised corner radius (so the corner maps to the corner) and ``c`` the
    channel's chromatic scale: ``1 + chromatic`` (red), 1 (green), ``1 - chromatic`` (blue).

    Returns:
        ``grid_sample`` grids (``align_corners=False``), normalised to [-1, 1].

    Shape:
        output: (3, H, W, 2), channels R, G, B.
    """
    f = TOPO_FOCAL_PX * width / TOPO_SIZE[0]
    u = torch.arange(width, dtype=torch.float32, device=device) + 0.5 - width / 2.0
    v = torch.arange(height, dtype=torch.float32, device=device) + 0.5 - height / 2.0
    xd = (u / f)[None, :].expand(height, width)
    yd = (v / f)[:, None].expand(height, width)
    r2 = xd * xd + yd * yd
    corner2 = ((width / 2.0) ** 2 + (height / 2.0) ** 2) / (f * f)
    scale = (1.0 + k1 * r2) / (1.0 + k1 * corner2)
    grids = []
    for c in (1.0 + chromatic, 1.0, 1.0 - chromatic):
        xu = xd * scale * c * f + width / 2.0  # ideal pixel coordinate (pixel i spans [i, i + 1])
        yu = yd * scale * c * f + height / 2.0
        grids.append(torch.stack([xu / width * 2.0 - 1.0, yu / height * 2.0 - 1.0], -1))
    return torch.stack(grids)


def alt_camera_effects(rgb: torch.Tensor, semantics: torch.Tensor,
                       keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The real_alt camera: exposure, lens (barrel distortion, lateral CA), tone curve, banding, noise.

    Args:
        rgb: rendered colours in [0, 1] (linear-ish, as `shade` returns them).
        semantics: class ids of the same pixels.
        keys: per-image integer keys (per-image exposure, banding and noise).

    Returns:
        ``(rgb, semantics)``: the photo in [0, 1] and its class ids, warped by the same lens.

    Shape:
        rgb: (B, 3, H, W), semantics: (B, H, W) uint8, keys: (B,) int64 -> (B, 3, H, W), (B, H, W)
    """
    B, _, H, W = rgb.shape
    dev = rgb.device
    k = keys.to(dev)
    # exposure: an evening scene, metered a little bright
    gain = torch.exp(0.35 + 0.08 * hash_normal(k, 30))
    x = rgb * gain[:, None, None, None]
    # lens: each channel sampled through its own grid (one grid_sample call over B * 3 planes)
    grid = distortion_grid(W, H, device=dev)  # (3, H, W, 2)
    planes = x.reshape(B * 3, 1, H, W)
    grids = grid[None].expand(B, -1, -1, -1, -1).reshape(B * 3, H, W, 2)
    x = F.grid_sample(planes, grids, mode="bilinear", padding_mode="border", align_corners=False).reshape(B, 3, H, W)
    sem = F.grid_sample(semantics[:, None].float(), grid[1:2].expand(B, -1, -1, -1), mode="nearest",
                        padding_mode="border", align_corners=False)[:, 0].round().to(torch.uint8)
    # filmic tone curve: black point, a smooth S (smoothstep blend) that rolls the highlights off
    x = ((x - ALT_BLACK_POINT) / (1.0 - ALT_BLACK_POINT)).clamp(0, 1) ** 0.9
    x = torch.lerp(x, x * x * (3.0 - 2.0 * x), 0.7)
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = torch.lerp(grey, x, 0.9)
    # sensor: a per-row offset (banding) and a little read noise, from per-image keys
    rows = torch.arange(H, device=dev)
    band = 0.008 * hash_normal(k[:, None], 1000 + rows[None, :])  # (B, H)
    x = x + band[:, None, :, None]
    T = _NOISE_TILE_SIZE
    oy = (hash_uniform(k, 31) * T).long()
    ox = (hash_uniform(k, 32) * T).long()
    r = (oy[:, None] + rows[None]) % T
    c = (ox[:, None] + torch.arange(W, device=dev)[None]) % T
    flat = (r[:, :, None] * T + c[:, None, :]).reshape(-1)
    n = _noise_tile(dev).reshape(3, -1)[:, flat].reshape(3, B, H, W).transpose(0, 1)
    x = x + 0.006 * n
    return x.clamp(0, 1), sem
