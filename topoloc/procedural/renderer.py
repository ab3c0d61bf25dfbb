"""Batched ray casting of the Mini-Comballaz heightfield with TOPO's pinhole camera, in torch.

Every pixel's ray ``p(s) = o + s * d`` uses ``d = R_c2w @ K^-1 [u, v, 1]``, so ``s`` is the depth
along the optical axis (m). The first crossing of the surface is found in two passes:

1. a coarse pass on every ``coarse_factor``-th pixel samples the ray at geometrically spaced depths
   (all samples in one ``grid_sample`` call) and bisects the first sign change;
2. the full-resolution pass brackets each pixel between the smallest "still above" and the
   largest "hit" depth of its 3x3 coarse neighbourhood, samples that bracket and bisects again.
   Rays with no crossing in their bracket march on to the far limit.

Rays that leave the grid without a hit see the far mountains (a ridge profile over azimuth) or
the sky; terrain hit further than :data:`RIDGE_DISTANCE_M` is labelled ridgeline too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from topoloc.procedural.landcover import RIDGELINE, SKY

__all__ = ["RenderConfig", "Geometry", "intrinsics", "camera_rays", "cast_rays", "TOPO_SIZE", "TOPO_FOCAL_PX", "RIDGE_DISTANCE_M"]

#: TOPO's native image size (width, height) and focal length (px).
TOPO_SIZE = (720, 480)
TOPO_FOCAL_PX = 480.0
#: Terrain hit further than this (m, horizontal) is labelled "ridgeline": the distant mountains.
RIDGE_DISTANCE_M = 2500.0


@dataclass(frozen=True)
class RenderConfig:
    """Ray-casting settings (the defaults balance speed and accuracy at 360x240).

    Args:
        coarse_factor: pixel stride of the coarse pass.
        coarse_steps: depth samples per coarse ray (geometric spacing).
        fine_steps: depth samples per full-resolution ray within its bracket.
        bisect_steps: bisection steps after each pass.
        far_m: farthest depth considered (m).
    """

    coarse_factor: int = 8
    coarse_steps: int = 96
    fine_steps: int = 6
    bisect_steps: int = 5
    far_m: float = 8000.0

    def __post_init__(self) -> None:
        for name in ("coarse_factor", "coarse_steps", "fine_steps", "bisect_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"RenderConfig {name}: expected a positive int, got {v!r}")
        if not self.far_m > 100.0:
            raise ValueError(f"RenderConfig far_m: expected > 100 m, got {self.far_m}")


@dataclass
class Geometry:
    """What the rays hit.

    Attributes:
        depth: (B, H, W) depth along the optical axis (m), ``inf`` where nothing is hit.
        points: (B, H, W, 3) ENU hit points (m); meaningless where ``depth`` is inf.
        dirs: (B, H, W, 3) unit ray directions in ENU.
        hit: (B, H, W) bool, the ray hit the terrain grid.
        far_class: (B, H, W) uint8: SKY or RIDGELINE where not hit (or hit beyond RIDGE_DISTANCE_M), else 255.
        ray_dist: (B, H, W) distance along the ray (m), a large value (1e5) where nothing is hit.
    """

    depth: torch.Tensor
    points: torch.Tensor
    dirs: torch.Tensor
    hit: torch.Tensor
    far_class: torch.Tensor
    ray_dist: torch.Tensor


def intrinsics(width: int, height: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """TOPO's pinhole intrinsics scaled to ``width``: f = 480 * width / 720 px, centred principal point.

    Shape:
        output: (3, 3)
    """
    f = TOPO_FOCAL_PX * width / TOPO_SIZE[0]
    return torch.tensor([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def camera_rays(c2w_b44: torch.Tensor, width: int, height: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and directions in the world frame for pixel centres, ``d = R K^-1 [u, v, 1]``.

    Args:
        c2w_b44: camera-to-world poses (OpenCV camera axes).
        width, height: full image size (px); the focal length follows ``width``.
        stride: take every ``stride``-th pixel (centres of ``stride`` x ``stride`` blocks).

    Shape:
        c2w_b44: (B, 4, 4) -> origins (B, 3), dirs (B, H // stride, W // stride, 3) (unnormalised: z_cam = 1)
    """
    K = intrinsics(width, height, c2w_b44.dtype, c2w_b44.device)
    u = (torch.arange(width // stride, device=c2w_b44.device, dtype=c2w_b44.dtype) + 0.5) * stride
    v = (torch.arange(height // stride, device=c2w_b44.device, dtype=c2w_b44.dtype) + 0.5) * stride
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    d_cam = torch.stack(torch.broadcast_tensors(x[None, :], y[:, None], torch.ones_like(y)[:, None]), -1)
    dirs = torch.einsum("bij,hwj->bhwi", c2w_b44[:, :3, :3], d_cam)
    return c2w_b44[:, :3, 3], dirs


class _Field:
    """The surface heightfield as a grid_sample input, with ray -> sample-coordinate helpers."""

    def __init__(self, world):
        g = world.grid
        self.h = world.surface[None, None]
        self.scale_e = 2.0 / (g.e_max - g.e_min)
        self.scale_n = 2.0 / (g.n_max - g.n_min)
        self.grid = g

    def ray_terms(self, o_b3: torch.Tensor, d_bn3: torch.Tensor):
        """Per ray: normalised xy = a + s * b, and height z = oz + s * dz. Shapes (B, N, 2) and (B, N)."""
        g = self.grid
        a = torch.stack([(o_b3[:, 0] - g.e_min) * self.scale_e - 1.0, (o_b3[:, 1] - g.n_min) * self.scale_n - 1.0], -1)
        b = torch.stack([d_bn3[..., 0] * self.scale_e, d_bn3[..., 1] * self.scale_n], -1)
        return a[:, None, :].expand_as(b), b, o_b3[:, 2:3].expand(d_bn3.shape[:2]), d_bn3[..., 2]

    def gap(self, a, b, oz, dz, s):
        """Height of the ray above the surface at depths s. Shapes: rays (B, N, ...), s (B, N, K) -> (B, N, K)."""
        xy = a[:, :, None, :] + s[..., None] * b[:, :, None, :]
        B, N, K = s.shape
        h = F.grid_sample(self.h.expand(B, -1, -1, -1), xy, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
        z = oz[:, :, None] + s * dz[:, :, None]
        outside = (xy.abs() > 1.0).any(-1)
        return (z - h).masked_fill_(outside, 1.0e4)


def _depth_range(field: _Field, world, o_b3, d_bn3, far_m: float):
    """Per ray (B, N): nearest and farthest depth where a hit is possible."""
    g = field.grid
    dz = d_bn3[..., 2]
    oz = o_b3[:, 2:3]
    # leave the grid box
    big = torch.full_like(dz, far_m)
    s_exit = big
    for axis, lo, hi in ((0, g.e_min, g.e_max), (1, g.n_min, g.n_max)):
        dd = d_bn3[..., axis]
        oo = o_b3[:, axis : axis + 1]
        t = torch.where(dd > 0, (hi - oo) / dd.clamp_min(1e-9), torch.where(dd < 0, (lo - oo) / dd.clamp_max(-1e-9), big))
        s_exit = torch.minimum(s_exit, t)
    # go below the lowest surface point, or stay above the highest
    s_low = torch.where(dz < 0, (oz - world.surface_min) / (-dz).clamp_min(1e-9), big)
    s_far = torch.minimum(s_exit, s_low).clamp_min(1.0)
    s_near = torch.where(dz < 0, (oz - world.surface_max) / (-dz).clamp_min(1e-9), torch.zeros_like(dz)).clamp_min(0.5)
    never = (dz >= 0) & (oz > world.surface_max)
    s_near = torch.minimum(s_near, s_far)
    return s_near, s_far, never


def _march(field: _Field, terms, s_lo, s_hi, steps: int, bisect: int):
    """First crossing of each ray within [s_lo, s_hi] (geometric samples, then bisection).

    Returns (s_hit, s_above, found): the refined hit depth, the last depth sampled above the
    surface, and whether a crossing was found. Shapes: (B, N).
    """
    a, b, oz, dz = terms
    k = torch.linspace(0.0, 1.0, steps + 1, device=s_lo.device, dtype=s_lo.dtype)
    ratio = (s_hi / s_lo).clamp_min(1.0)
    s = s_lo[..., None] * ratio[..., None] ** k  # (B, N, K) geometric
    g = field.gap(a, b, oz, dz, s)
    below = g <= 0
    found = below.any(-1)
    first = below.to(torch.uint8).argmax(-1, keepdim=True)
    prev = (first - 1).clamp_min(0)
    hi = s.gather(-1, first)[..., 0]
    lo = s.gather(-1, prev)[..., 0]
    g_hi = g.gather(-1, first)[..., 0]
    g_lo = g.gather(-1, prev)[..., 0]
    for _ in range(bisect):
        mid = 0.5 * (lo + hi)
        gm = field.gap(a, b, oz, dz, mid[..., None])[..., 0]
        up = gm > 0
        lo = torch.where(up, mid, lo)
        g_lo = torch.where(up, gm, g_lo)
        hi = torch.where(up, hi, mid)
        g_hi = torch.where(up, g_hi, gm)
    # secant between the bracket ends
    w = (g_lo / (g_lo - g_hi).clamp_min(1e-6)).clamp(0, 1)
    s_hit = lo + w * (hi - lo)
    return s_hit, lo, found


def cast_rays(world, c2w_b44: torch.Tensor, width: int, height: int, config: RenderConfig = RenderConfig()) -> Geometry:
    """Casts one ray per pixel into ``world`` for a batch of cameras.

    Args:
        world: a :class:`topoloc.procedural.world.World` on the device of ``c2w_b44``.
        c2w_b44: camera-to-ENU poses (OpenCV axes), float32.
        width, height: image size (px), both divisible by ``config.coarse_factor`` for best use.
        config: ray-casting settings.

    Shape:
        c2w_b44: (B, 4, 4) -> Geometry of (B, H, W) fields
    """
    B = c2w_b44.shape[0]
    field = _Field(world)
    cf = max(1, min(config.coarse_factor, width // 4, height // 4))
    # coarse pass
    o, dc = camera_rays(c2w_b44, width, height, stride=cf)
    Hc, Wc = dc.shape[1:3]
    dcf = dc.reshape(B, -1, 3)
    near, far, never = _depth_range(field, world, o, dcf, config.far_m)
    s_hit_c, s_above_c, found_c = _march(field, field.ray_terms(o, dcf), near, far, config.coarse_steps, config.bisect_steps)
    found_c &= ~never
    # brackets for the full-resolution rays from the 3x3 coarse neighbourhood
    lo_c = torch.where(found_c, s_above_c, far).reshape(B, 1, Hc, Wc)
    hi_c = torch.where(found_c, s_hit_c, torch.full_like(far, 1e9)).reshape(B, 1, Hc, Wc)
    lo_c = -F.max_pool2d(-lo_c, 3, 1, 1)
    hi_c = F.max_pool2d(hi_c, 3, 1, 1)
    o, d = camera_rays(c2w_b44, width, height)
    lo_f = F.interpolate(lo_c, size=(height, width), mode="nearest").reshape(B, -1)
    hi_f = F.interpolate(hi_c, size=(height, width), mode="nearest").reshape(B, -1)
    df = d.reshape(B, -1, 3)
    near, far, never = _depth_range(field, world, o, df, config.far_m)
    lo_f = torch.maximum(torch.minimum(lo_f * 0.98, far), near)
    hi_f = torch.minimum(hi_f * 1.02, far)
    terms = field.ray_terms(o, df)
    s_hit, _, found = _march(field, terms, lo_f, torch.maximum(hi_f, lo_f), config.fine_steps, config.bisect_steps)
    # rays without a crossing in their bracket march on to the far limit (few: near silhouettes)
    rest = ~found & ~never & (hi_f < far)
    if bool(rest.any()):
        bi, ni = rest.nonzero(as_tuple=True)
        sub = [t[bi, ni][None] for t in terms]
        s2, _, f2 = _march(field, sub, hi_f[bi, ni][None], far[bi, ni][None], config.coarse_steps // 2, config.bisect_steps)
        s_hit[bi, ni] = s2[0]
        found[bi, ni] = f2[0]
    found &= ~never
    s_hit = s_hit.reshape(B, height, width)
    found = found.reshape(B, height, width)
    norm = d.norm(dim=-1)
    dirs = d / norm[..., None]
    points = o[:, None, None, :] + s_hit[..., None] * d
    horiz = (points[..., :2] - o[:, None, None, :2]).norm(dim=-1)
    # far mountains: ridge profile over azimuth, measured clockwise from north
    az = torch.atan2(dirs[..., 0], dirs[..., 1]) % (2 * math.pi)
    elev = torch.rad2deg(torch.asin(dirs[..., 2].clamp(-1, 1)))
    R = world.ridge_deg.shape[0]
    pos = az / (2 * math.pi) * R
    i0 = pos.floor().long() % R
    frac = pos - pos.floor()
    ridge = world.ridge_deg[i0] * (1 - frac) + world.ridge_deg[(i0 + 1) % R] * frac
    far_class = torch.where(elev < ridge, torch.full_like(i0, RIDGELINE), torch.full_like(i0, SKY)).to(torch.uint8)
    far_class = torch.where(found & (horiz < RIDGE_DISTANCE_M), torch.full_like(far_class, 255), far_class)
    far_class = torch.where(found & (horiz >= RIDGE_DISTANCE_M), torch.full_like(far_class, RIDGELINE), far_class)
    depth = torch.where(found, s_hit, torch.full_like(s_hit, math.inf))
    ray_dist = torch.where(found, s_hit * norm, torch.full_like(s_hit, 1e5))
    return Geometry(depth=depth, points=points, dirs=dirs, hit=found, far_class=far_class, ray_dist=ray_dist)


def render(world, bakes, c2w_b44: torch.Tensor, keys: dict, width: int, height: int, config: RenderConfig = RenderConfig(),
           real_camera: bool = True) -> dict:
    """Renders a batch of cameras under one or more appearances (shared geometry).

    Args:
        world: the world, on the device of ``c2w_b44``.
        bakes: ``{domain: Bake}`` on the same device.
        c2w_b44: camera-to-ENU poses (OpenCV axes).
        keys: ``{domain: (B,) int64}`` per-image keys for per-image randomness.
        width, height: image size (px).
        config: ray-casting settings.
        real_camera: apply the camera model (exposure, noise, ...) to the "real" domain.

    Returns:
        ``{"depth": (B, H, W) float32 (inf where nothing is hit), domain: (rgb uint8 (B, 3, H, W),
        semantics uint8 (B, H, W))}``.

    Shape:
        c2w_b44: (B, 4, 4)
    """
    from topoloc.procedural.appearance import camera_effects, shade

    c2w = c2w_b44.to(torch.float32)
    geom = cast_rays(world, c2w, width, height, config)
    out = {"depth": geom.depth}
    for domain, bake_ in bakes.items():
        rgb, sem = shade(world, bake_, geom, keys[domain], width, height, c2w[:, :3, 3])
        if domain == "real" and real_camera:
            rgb = camera_effects(rgb, keys[domain])
        out[domain] = ((rgb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8), sem)
    return out
