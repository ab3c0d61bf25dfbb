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

The second pass is not conservative: a surface nearer than the bracket of a pixel's coarse
neighbours (an occluder that only pixels between the coarse rays see, mostly the side of a tree
or a building in an oblique view) is missed, and the ray's first crossing after the bracket's start
is returned. At 96x64 px that is 1.2 % of the pixels of TOPO's planned Comballaz flight (pitch
about -60 deg) and 8-10 % of its level flights' (pitch about -12 deg), against dense sampling of
the same surface (README, "Mini-Comballaz"). A max-mipmap of the surface would bound the march.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from topoloc.data.geometry import TOPO_FOCAL_PX, TOPO_SIZE  # TOPO-DataGen's camera (one owner)
from topoloc.data.semantics import RIDGELINE, SKY
from topoloc.procedural.appearance import shade
from topoloc.procedural.real_camera import camera_effects

__all__ = ["RenderConfig", "Geometry", "intrinsics", "camera_rays", "cast_rays", "TOPO_SIZE", "TOPO_FOCAL_PX",
           "RIDGE_DISTANCE_M"]

#: Terrain hit further than this (m, horizontal) is labelled "ridgeline": the distant mountains.
RIDGE_DISTANCE_M = 2500.0


@dataclass(frozen=True)
class RenderConfig:
    """Ray-casting settings (the defaults balance speed and accuracy at 360x240).

    Args:
        coarse_factor: pixel stride of the coarse pass.
        coarse_steps: depth samples per coarse ray (geometric spacing).
        fine_steps: depth samples per full-resolution ray within its bracket.
        bisect_steps: refinement steps (false position / bisection) after each pass.
        far_m: farthest depth considered (m).
    """

    coarse_factor: int = 8
    coarse_steps: int = 96
    fine_steps: int = 4
    bisect_steps: int = 3
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
    # element-wise (not a matmul) so that every image's rays are bit-identical whatever the batch
    R = c2w_b44[:, None, None, :3, :3]
    dirs = R[..., 0] * d_cam[..., 0:1] + R[..., 1] * d_cam[..., 1:2] + R[..., 2] * d_cam[..., 2:3]
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
        """Per ray: normalised xy = a + s * b and height z = oz + s * dz.

        Shapes (B, N, 1, 2), (B, N, 1, 2), (B, N, 1) x 2.
        """
        g = self.grid
        a = torch.stack([(o_b3[:, 0] - g.e_min) * self.scale_e - 1.0, (o_b3[:, 1] - g.n_min) * self.scale_n - 1.0], -1)
        b = torch.stack([d_bn3[..., 0] * self.scale_e, d_bn3[..., 1] * self.scale_n], -1)
        n = d_bn3.shape[1]
        return (a[:, None, None, :].expand(-1, n, 1, 2), b[:, :, None, :], o_b3[:, None, 2:3].expand(-1, n, 1),
                d_bn3[..., 2:3])

    def gap(self, terms, s):
        """Height (m) of the rays above the surface at depths s. Shapes: s (B, N, K) -> (B, N, K).

        Rays are kept inside the grid by their depth range, so no bounds check is made here.
        """
        a, b, oz, dz = terms
        xy = torch.addcmul(a, s[..., None], b)  # (B, N, K, 2)
        B = s.shape[0]
        h = F.grid_sample(self.h.expand(B, -1, -1, -1), xy, mode="bilinear", padding_mode="border",
                          align_corners=True)[:, 0]
        return torch.addcmul(oz, s, dz).sub_(h)


def _depth_range(field: _Field, world, o_b3, d_bn3, far_m: float):
    """Per ray (B, N): nearest and farthest depth (m) where a hit is possible, and rays that never hit."""
    g = field.grid
    dz = d_bn3[..., 2]
    oz = o_b3[:, 2:3]
    s_exit = torch.full_like(dz, far_m)
    for axis, lo, hi in ((0, g.e_min, g.e_max), (1, g.n_min, g.n_max)):
        dd = d_bn3[..., axis]
        oo = o_b3[:, axis : axis + 1]
        bound = torch.where(dd > 0, hi, lo) - oo  # distance to the wall the ray travels towards
        t = bound / torch.where(dd.abs() < 1e-9, 1e-9, dd)
        s_exit = torch.minimum(s_exit, torch.where(dd.abs() < 1e-9, far_m, t))
    s_exit = s_exit * 0.999
    down = dz < 0
    inv = 1.0 / torch.where(down, -dz, 1.0)
    s_low = torch.where(down, (oz - world.surface_min + 1.0) * inv, far_m)  # 1 m of slack either way
    s_far = torch.minimum(s_exit, s_low).clamp_min(1.0)
    s_near = torch.where(down, (oz - world.surface_max - 1.0) * inv, 0.0).clamp_min(0.5)
    never = ~down & (oz > world.surface_max)
    return torch.minimum(s_near, s_far), s_far, never


def _march(field: _Field, terms, s_lo, s_hi, steps: int, refine: int):
    """First crossing of each ray within [s_lo, s_hi]: geometric samples, then false position.

    Returns (s_hit, found, started_below): ``started_below`` marks rays already under the surface
    at ``s_lo`` (their crossing lies before the bracket). Shapes: (B, N).
    """
    k = torch.linspace(0.0, 1.0, steps + 1, device=s_lo.device, dtype=s_lo.dtype)
    ratio = (s_hi / s_lo).clamp_min(1.0)
    s = s_lo[..., None] * ratio[..., None] ** k  # (B, N, K) geometric
    g = field.gap(terms, s)
    below = g <= 0
    found = below.any(-1)
    first = below.to(torch.uint8).argmax(-1, keepdim=True)
    prev = (first - 1).clamp_min(0)
    hi, lo = s.gather(-1, first), s.gather(-1, prev)
    g_hi, g_lo = g.gather(-1, first), g.gather(-1, prev)
    for it in range(refine):
        # false position (Illinois variant is unnecessary for a few steps on a smooth bracket),
        # alternating with bisection so that a bracket across an edge still shrinks
        if it % 2 == 0:
            w = (g_lo / (g_lo - g_hi).clamp_min(1e-6)).clamp(0.02, 0.98)
            mid = torch.lerp(lo, hi, w)
        else:
            mid = 0.5 * (lo + hi)
        gm = field.gap(terms, mid)
        up = gm > 0
        lo = torch.where(up, mid, lo)
        g_lo = torch.where(up, gm, g_lo)
        hi = torch.where(up, hi, mid)
        g_hi = torch.where(up, g_hi, gm)
    w = (g_lo / (g_lo - g_hi).clamp_min(1e-6)).clamp(0, 1)
    return torch.lerp(lo, hi, w)[..., 0], found, below[..., 0], lo[..., 0], hi[..., 0]


def cast_rays(world, c2w_b44: torch.Tensor, width: int, height: int, config: RenderConfig = RenderConfig()) -> Geometry:
    """Casts one ray per pixel into ``world`` for a batch of cameras.

    Args:
        world: a :class:`topoloc.procedural.world.World` on the device of ``c2w_b44``.
        c2w_b44: camera-to-ENU poses (OpenCV axes), float32.
        width, height: image size (px).
        config: ray-casting settings.

    Shape:
        c2w_b44: (B, 4, 4) -> Geometry of (B, H, W) fields
    """
    B = c2w_b44.shape[0]
    field = _Field(world)
    cf = max(1, min(config.coarse_factor, width // 4, height // 4))
    # coarse pass on every cf-th pixel
    o, dc = camera_rays(c2w_b44, width, height, stride=cf)
    Hc, Wc = dc.shape[1:3]
    dcf = dc.reshape(B, -1, 3)
    near, far, never = _depth_range(field, world, o, dcf, config.far_m)
    s_hit_c, found_c, *_ = _march(field, field.ray_terms(o, dcf), near, far, config.coarse_steps, config.bisect_steps)
    found_c &= ~never
    # brackets of the full-resolution rays: the 3x3 coarse neighbourhood's nearest and farthest hits
    # one coarse step, as a ratio; exp(log(.)) rather than pow, whose last (B * N) % vector-width elements take
    # a scalar path that rounds otherwise, so a ray's bracket (and depth) would depend on its place in the batch
    step = torch.exp(torch.log((far / near).clamp_min(1.0)) / config.coarse_steps)
    lo_c = torch.where(found_c, s_hit_c / step, far).reshape(B, 1, Hc, Wc)
    hi_c = torch.where(found_c, s_hit_c * step, 1e9).reshape(B, 1, Hc, Wc)
    far_c = far.reshape(B, 1, Hc, Wc)
    any_c = found_c.reshape(B, 1, Hc, Wc).to(torch.float32)
    lo_c = -F.max_pool2d(-lo_c, 3, 1, 1)
    far_c = -F.max_pool2d(-far_c, 3, 1, 1)
    hi_c = F.max_pool2d(hi_c, 3, 1, 1)
    any_c = F.max_pool2d(any_c, 3, 1, 1)
    o, d = camera_rays(c2w_b44, width, height)
    size = (Hc * cf, Wc * cf)
    fields = F.interpolate(torch.cat([lo_c, hi_c, far_c, any_c], 1), size=size, mode="nearest")
    if size != (height, width):  # image sizes that cf does not divide: extend the last block
        fields = F.pad(fields, (0, width - size[1], 0, height - size[0]), mode="replicate")
    lo_f, hi_f, far_f, any_f = fields.reshape(B, 4, -1).unbind(1)
    any_f = any_f > 0.5
    hi_f = torch.minimum(hi_f, far_f)  # open brackets (a neighbour saw no ground) end at the far limit
    lo_f = torch.minimum(lo_f, hi_f).clamp_min(0.5)
    hi_f = torch.maximum(hi_f, lo_f)
    df = d.reshape(B, -1, 3)
    terms = field.ray_terms(o, df)
    s_hit, found, early, br_lo, br_hi = _march(field, terms, lo_f, hi_f, config.fine_steps, config.bisect_steps)
    found &= any_f
    rest = any_f & (~found | early)
    if bool(rest.any()):  # rays with no crossing in their bracket march on to their own far limit (few)
        bi, ni = rest.nonzero(as_tuple=True)
        sub_d = df[bi, ni][:, None]
        sub_o = o[bi]
        near2, far2, never2 = _depth_range(field, world, sub_o, sub_d, config.far_m)
        sub_terms = field.ray_terms(sub_o, sub_d)
        # from the bracket's start if the ray was still above ground there, else from its near limit
        start = torch.where(early[bi, ni, None], near2, torch.maximum(lo_f[bi, ni, None], near2))
        start = torch.minimum(start, far2)
        s2, f2, _, l2, h2 = _march(field, sub_terms, start, far2, config.coarse_steps // 2, config.bisect_steps + 2)
        s_hit[bi, ni] = s2[:, 0]
        found[bi, ni] = f2[:, 0] & ~never2[:, 0]
        br_lo[bi, ni], br_hi[bi, ni] = l2[:, 0], h2[:, 0]
    # rays whose estimate is still off the surface (silhouettes, grazing rays) get more refinement (few)
    resid = field.gap(terms, s_hit[..., None])[..., 0].abs()
    wide = found & (resid > 0.2 + 0.0005 * s_hit)
    if bool(wide.any()):
        bi, ni = wide.nonzero(as_tuple=True)
        sub_d = df[bi, ni][:, None]
        sub_terms = field.ray_terms(o[bi], sub_d)
        s3, f3, *_ = _march(field, sub_terms, br_lo[bi, ni, None], br_hi[bi, ni, None], 1, 10)
        s_hit[bi, ni] = s3[:, 0]
    s_hit = s_hit.reshape(B, height, width)
    found = found.reshape(B, height, width)
    norm = torch.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2])
    dirs = d / norm[..., None]
    points = torch.addcmul(o[:, None, None, :], s_hit[..., None], d)
    off = points[..., :2] - o[:, None, None, :2]
    horiz2 = off[..., 0] * off[..., 0] + off[..., 1] * off[..., 1]
    # far mountains: ridge profile over azimuth, measured clockwise from north
    az = torch.atan2(dirs[..., 0], dirs[..., 1]) % (2 * math.pi)
    R = world.ridge_deg.shape[0]
    pos = az * (R / (2 * math.pi))
    i0 = pos.long()
    frac = pos - i0
    ridge = torch.lerp(world.ridge_sin[i0 % R], world.ridge_sin[(i0 + 1) % R], frac)
    near_hit = found & (horiz2 < RIDGE_DISTANCE_M**2)
    far_class = torch.where(dirs[..., 2] < ridge, RIDGELINE, SKY).to(torch.uint8)
    far_class = torch.where(found, RIDGELINE, far_class)
    far_class = torch.where(near_hit, 255, far_class).to(torch.uint8)
    depth = torch.where(found, s_hit, math.inf)
    ray_dist = torch.where(found, s_hit * norm, 1e5)
    return Geometry(depth=depth, points=points, dirs=dirs, hit=found, far_class=far_class, ray_dist=ray_dist)


def render(world, bakes, c2w_b44: torch.Tensor, keys: dict, width: int, height: int,
           config: RenderConfig = RenderConfig(), real_camera: bool = True) -> dict:
    """Renders a batch of cameras under one or more appearances (shared geometry).

    Args:
        world: the world, on the device of ``c2w_b44``.
        bakes: ``{domain: Bake}`` on the same device.
        c2w_b44: camera-to-ENU poses (OpenCV axes).
        keys: ``{domain: (B,) int64}`` per-image keys for per-image randomness.
        width, height: image size (px).
        config: ray-casting settings.
        real_camera: apply the camera models (exposure, noise, ...) to the "real" and "real_alt"
            domains (real_alt's lens also warps its semantics).

    Returns:
        ``{"depth": (B, H, W) float32 (inf where nothing is hit), domain: (rgb uint8 (B, 3, H, W),
        semantics uint8 (B, H, W))}``.

    Shape:
        c2w_b44: (B, 4, 4)
    """
    c2w = c2w_b44.to(torch.float32)
    geom = cast_rays(world, c2w, width, height, config)
    out: dict[str, Any] = {"depth": geom.depth}  # the depth, and per domain (rgb, semantics)
    for domain, bake_ in bakes.items():
        rgb, sem = shade(world, bake_, geom, keys[domain], width, height, c2w[:, :3, 3], c2w)
        if domain == "real" and real_camera:
            rgb = camera_effects(rgb, keys[domain])
        elif domain == "real_alt" and real_camera:
            # deferred: alt_camera imports this module (TOPO_FOCAL_PX, TOPO_SIZE), a loop at import time
            from topoloc.procedural.alt_camera import alt_camera_effects  # noqa: PLC0415

            rgb, sem = alt_camera_effects(rgb, sem, keys[domain])
        out[domain] = ((rgb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8), sem)
    return out
