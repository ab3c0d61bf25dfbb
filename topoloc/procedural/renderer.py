"""Batched ray casting of the Mini-Comballaz heightfield with TOPO's pinhole camera, in torch.

Every pixel's ray ``p(s) = o + s * d`` uses ``d = R_c2w @ K^-1 [u, v, 1]``, so ``s`` is the depth
along the optical axis (m). The surface is the bilinear interpolation of the world's height grid, and
each ray's first crossing of it is found exactly, by a maximum-mipmap traversal (Tevs, Ihrke and
Seidel, "Maximum Mipmaps for Fast, Accurate, and Scalable Dynamic Height Field Rendering", I3D 2008):

1. level 0 of the mipmap holds each grid cell's highest corner (a bilinear patch never rises above
   it), level k the maximum over blocks of 2^k x 2^k cells;
2. a ray steps through the blocks of its current level: where its lowest point inside the block is
   above the block's maximum it skips to the block's exit and goes up a level, else it goes down a level;
3. in a level-0 cell under which the ray dips, the gap between the ray and the bilinear patch is a
   quadratic in ``s``, whose first root in the cell is the crossing; without a root the ray moves on.

Rays do not start at the camera: each 16 x 16 block of pixels first marches the box that holds its rays
against the same mipmap, and its rays start where that box may first touch the surface (`_cone_start`).

No part of the surface is skipped, so thin occluders (the side of a tree or a building seen by a few
pixels of an oblique view) are hit as a dense march would hit them. Rays that leave the grid without a
hit see the far mountains (a ridge profile over azimuth) or the sky; terrain hit further than
:data:`RIDGE_DISTANCE_M` is labelled ridgeline too.
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
    """Ray-casting settings.

    Args:
        far_m: farthest depth considered (m).
    """

    far_m: float = 8000.0

    def __post_init__(self) -> None:
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


#: The nearest depth (m) a ray is cast from: a camera this close above the surface still sees it.
NEAR_M = 1e-3
#: Rays traversed together, per device type: whole images up to this many rays (at least one image) go through
#: the mipmap at once, so a batch's memory does not grow with its size (about 200 B per ray in flight); a GPU
#: takes more at once, where each step's kernel launches cost more than its memory.
RAYS_AT_ONCE = {"cpu": 2**21, "cuda": 2**24}


def _depth_range(world, o_b3, d_bn3, far_m: float):
    """Per ray (B, N): the depths (m) between which a hit is possible (inside the grid's box, between the
    surface's highest and lowest points, nearer than ``far_m``), and the rays that can hit nothing."""
    g = world.grid
    dz = d_bn3[..., 2]
    oz = o_b3[:, 2:3]
    s_in = torch.full_like(dz, NEAR_M)
    s_out = torch.full_like(dz, far_m)
    for axis, lo, hi in ((0, g.e_min, g.e_max), (1, g.n_min, g.n_max)):  # the grid's box, slab by slab
        dd = d_bn3[..., axis]
        oo = o_b3[:, axis : axis + 1]
        flat = dd.abs() < 1e-12
        inv = 1.0 / torch.where(flat, 1.0, dd)
        t_lo, t_hi = (lo - oo) * inv, (hi - oo) * inv
        within = (oo >= lo) & (oo <= hi)  # a ray along the slab: always inside it, or never
        enter = torch.where(flat, torch.where(within, -math.inf, math.inf), torch.minimum(t_lo, t_hi))
        leave = torch.where(flat, torch.where(within, math.inf, -math.inf), torch.maximum(t_lo, t_hi))
        s_in, s_out = torch.maximum(s_in, enter), torch.minimum(s_out, leave)
    down = dz < 0
    inv = 1.0 / torch.where(down, -dz, 1.0)
    s_low = torch.where(down, (oz - world.surface_min + 1.0) * inv, far_m)  # 1 m of slack either way
    s_top = torch.where(down, (oz - world.surface_max - 1.0) * inv, 0.0)
    s_far = torch.minimum(s_out, s_low)
    s_near = torch.maximum(s_in, s_top)
    never = (~down & (oz > world.surface_max)) | (s_far <= s_near)
    return torch.minimum(s_near, s_far), s_far, never


def _first_root(c0, c1, c2, span):
    """Smallest t in [0, span] where c0 + c1 t + c2 t^2 <= 0 (0 where c0 <= 0), else inf. All float64, (N,)."""
    disc = c1 * c1 - 4.0 * c2 * c0
    sq = torch.sqrt(disc.clamp_min(0.0))
    q = -0.5 * (c1 + torch.where(c1 >= 0, sq, -sq))  # the stable pair of roots: q / c2 and c0 / q
    quad = c2.abs() > 1e-12
    r1 = torch.where(quad, q / torch.where(quad, c2, 1.0), math.inf)
    r2 = torch.where(q != 0, c0 / torch.where(q != 0, q, 1.0), math.inf)
    ok = disc >= 0
    r1 = torch.where(ok & (r1 >= 0) & (r1 <= span), r1, math.inf)
    r2 = torch.where(ok & (r2 >= 0) & (r2 <= span), r2, math.inf)
    return torch.where(c0 <= 0, 0.0, torch.minimum(r1, r2))


def _cone_start(world, mip, o_b3, d_bhw3, near, far, tile: int = 16, steps: int = 96):
    """A depth before which no ray of a ``tile`` x ``tile`` block of pixels can meet the surface, per pixel.

    The block's rays at depths [s_a, s_b] lie in the box spanned by their direction components' extremes, so
    where the box's lowest point is above the mipmap's maximum over the box (at the level whose blocks are at
    least the box's size: 2 x 2 of them cover it) none of them is hit. The box is marched over ``steps``
    geometric intervals from the block's nearest to its farthest depth; the start of the first interval that
    may touch the surface is the block's start (its farthest depth when none does).

    Shapes: o_b3 (B, 3), d_bhw3 (B, H, W, 3), near, far (B, H, W) -> (B, H, W)
    """
    flat, offsets, shapes = mip
    top = len(offsets) - 1
    g = world.grid
    height, width = near.shape[1:]

    def pool(x, sign=1.0):  # each block's maximum (sign 1) or minimum (sign -1)
        return sign * F.max_pool2d(sign * x[:, None], tile, tile, ceil_mode=True)[:, 0, ..., None]

    lo_x, hi_x = pool(d_bhw3[..., 0], -1.0) / g.cell, pool(d_bhw3[..., 0]) / g.cell
    lo_y, hi_y = pool(d_bhw3[..., 1], -1.0) / g.cell, pool(d_bhw3[..., 1]) / g.cell
    lo_z = pool(d_bhw3[..., 2], -1.0)
    near_t, far_t = pool(near, -1.0), pool(far)
    # geometric steps as exp(k log r), not pow: see the ray-direction note in camera_rays (batch-independent values)
    k = torch.arange(steps + 1, dtype=near.dtype, device=near.device)
    from_m = near_t.clamp_min(0.5)  # the steps' scale; the first interval starts at the block's near limit
    s = from_m * torch.exp(torch.log((far_t / from_m).clamp_min(1.0)) / steps * k)  # (B, Ht, Wt, steps + 1)
    s = torch.cat([torch.minimum(near_t, s[..., :1]), s[..., 1:]], -1)
    s_a, s_b = s[..., :-1], s[..., 1:]
    o = o_b3[:, None, None, None, :]
    x0 = (o[..., 0] - g.e_min) / g.cell + torch.minimum(s_a * lo_x, s_b * lo_x)
    x1 = (o[..., 0] - g.e_min) / g.cell + torch.maximum(s_a * hi_x, s_b * hi_x)
    y0 = (o[..., 1] - g.n_min) / g.cell + torch.minimum(s_a * lo_y, s_b * lo_y)
    y1 = (o[..., 1] - g.n_min) / g.cell + torch.maximum(s_a * hi_y, s_b * hi_y)
    z_low = o[..., 2] + torch.minimum(s_a * lo_z, s_b * lo_z)
    level = torch.ceil(torch.log2(torch.maximum(x1 - x0, y1 - y0).clamp_min(1.0))).long()
    wider = level > top  # a box wider than the top level's blocks: compared with the highest point of all
    level = level.clamp_max(top)
    size = torch.exp2(level.to(near.dtype))
    n_cols, n_rows = shapes[level, 1], shapes[level, 0]
    cx = [torch.minimum(torch.floor(x / size).long().clamp_min(0), n_cols - 1) for x in (x0, x1)]
    cy = [torch.minimum(torch.floor(y / size).long().clamp_min(0), n_rows - 1) for y in (y0, y1)]
    base = offsets[level]
    peak = torch.stack([flat[base + j * n_cols + i] for j in cy for i in cx]).amax(0)
    touch = z_low <= torch.where(wider, world.surface_max, peak)
    first = touch.to(torch.uint8).argmax(-1, keepdim=True)
    start = torch.where(touch.any(-1), s_a.gather(-1, first)[..., 0], far_t[..., 0])
    start = start.repeat_interleave(tile, 1).repeat_interleave(tile, 2)[:, :height, :width]
    return torch.maximum(start, near)


def _mask(op, a, b) -> torch.Tensor:
    """``op(a, b)`` as 1.0 / 0.0 in ``a``'s dtype: float masks, since on the CPU torch's bool kernels (``where``
    above all) cost several times as much per element as float arithmetic."""
    return op(a, b, out=torch.empty_like(a))


def _traverse(world, mip, o_n3: torch.Tensor, d_n3: torch.Tensor, s_start: torch.Tensor, s_end: torch.Tensor,
              level: int = 3):
    """Each ray's first crossing of the bilinear surface in [s_start, s_end], by a maximum-mipmap traversal that
    starts at mipmap ``level``.

    The per-ray state is float: flags are 1.0 / 0.0 and levels, block indices and flat indices whole numbers
    (exact below 2^24; the flat indices in float64 for larger mipmaps), selections are products and extremes.

    Returns ``s`` (N,), ``inf`` where the ray does not cross. Shapes: o_n3, d_n3 (N, 3), s_start, s_end (N,).
    """
    flat, offsets, shapes = mip
    top = len(offsets) - 1
    g = world.grid
    surf = world.surface.reshape(-1)
    cols = world.surface.shape[1]
    n, dt, dev = o_n3.shape[0], o_n3.dtype, o_n3.device
    s_hit = torch.full((n,), math.inf, dtype=dt, device=dev)
    # per ray, in cell units (u east, v north); a zero component counts as a tiny positive one
    du, dv = d_n3[:, 0] / g.cell, d_n3[:, 1] / g.cell
    du, dv = torch.where(du == 0, 1e-20, du), torch.where(dv == 0, 1e-20, dv)
    u0, v0 = (o_n3[:, 0] - g.e_min) / g.cell, (o_n3[:, 1] - g.n_min) / g.cell
    sign_u, sign_v = du.sign(), dv.sign()
    rays = {
        "idx": torch.arange(n, device=dev), "u0": u0, "v0": v0,
        # a thousandth of a cell along the ray: the least step past a block, where rounding leaves s at its edge
        "ds": 1e-3 / torch.sqrt(du * du + dv * dv + (d_n3[:, 2] / g.cell) ** 2),
        "du": du, "dv": dv, "iu": 1.0 / du, "iv": 1.0 / dv, "sign_u": sign_u, "sign_v": sign_v,
        "east": sign_u.clamp_min(0.0), "north": sign_v.clamp_min(0.0), "west": (-sign_u).clamp_min(0.0),
        "south": (-sign_v).clamp_min(0.0), "oz": o_n3[:, 2], "dz": d_n3[:, 2], "s": s_start.clone(), "end": s_end,
        "level": torch.full((n,), float(min(level, top)), dtype=dt, device=dev),
    }
    # the flat indices are whole numbers that float32 holds exactly below 2^24
    tdt = dt if flat.numel() < 2**24 else torch.float64
    level_offset = offsets.to(tdt)
    rows0, cols0 = (float(x) for x in shapes[0])  # level k has ceil(rows0 / 2^k) x ceil(cols0 / 2^k) blocks
    live = torch.ones(n, dtype=dt, device=dev)
    live.mul_(_mask(torch.lt, rays["s"], rays["end"]))
    steps_left = 4 * (world.surface.shape[0] + world.surface.shape[1]) + 8 * top  # far more than a ray takes
    while True:
        count = int(live.sum())
        if count == 0:
            return s_hit
        steps_left -= 1
        if steps_left < 0:
            raise RuntimeError(f"cast_rays: {count} rays still unresolved after "
                               f"{4 * sum(world.surface.shape) + 8 * top} traversal steps; this is a bug, please "
                               "report it with the camera poses")
        if count < 0.8 * live.numel():  # drop the finished rays now and then, not at every step
            keep = live.nonzero()[:, 0]
            rays = {k: v.index_select(0, keep) for k, v in rays.items()}
            live = torch.ones(keep.shape[0], dtype=dt, device=dev)
        r = rays
        level_now, s = r["level"], r["s"]
        inv_size, size = torch.exp2(-level_now), torch.exp2(level_now)
        level_cols, level_rows = (cols0 * inv_size).ceil_().to(tdt), (rows0 * inv_size).ceil_()
        # the block the ray is in, a point on an edge in the one it enters: floor going east or north, ceil - 1
        # going west or south, as sign * floor(sign * x) - (1 if west)
        at_u, at_v = (r["u0"] + s * r["du"]).mul_(inv_size), (r["v0"] + s * r["dv"]).mul_(inv_size)
        bi = at_u.mul_(r["sign_u"]).floor_().mul_(r["sign_u"]).sub_(r["west"]).clamp_min_(0)
        bj = at_v.mul_(r["sign_v"]).floor_().mul_(r["sign_v"]).sub_(r["south"]).clamp_min_(0)
        bi, bj = torch.minimum(bi, level_cols - 1), torch.minimum(bj, level_rows - 1)
        s_out = torch.minimum((bi + r["east"]).mul_(size).sub_(r["u0"]).mul_(r["iu"]),  # the far edges' depths
                              (bj + r["north"]).mul_(size).sub_(r["v0"]).mul_(r["iv"]))
        s_out = torch.minimum(s_out, r["end"], out=s_out)  # where the ray leaves its block
        z_low = torch.minimum(s * r["dz"], s_out * r["dz"]).add_(r["oz"])  # its lowest point in the block
        offset = level_offset.index_select(0, level_now.int())
        peak = flat.index_select(0, (bj * level_cols).add_(offset).add_(bi).int())
        clear = torch.maximum(_mask(torch.gt, z_low, peak), 1.0 - live)
        cell = _mask(torch.eq, level_now, 0.0).mul_(1.0 - clear)
        if float(cell.max()) > 0:  # in a cell it dips under: the gap to the bilinear patch is a quadratic in s
            c = cell.nonzero()[:, 0]
            picked = (s, bi, bj, r["u0"], r["v0"], r["du"], r["dv"], r["dz"], r["oz"], s_out)
            s0, i0, j0, u0c, v0c, du_c, dv_c, dz_c, oz_c, s1 = (x.index_select(0, c).double() for x in picked)
            fu, fv = u0c + s0 * du_c - i0, v0c + s0 * dv_c - j0  # in-cell coordinates at s0
            base = (j0 * cols + i0).long()
            corners = surf.index_select(0, torch.cat([base, base + 1, base + cols, base + cols + 1]))
            h00, h10, h01, h11 = corners.double().view(4, -1).unbind(0)
            a, b, cc = h10 - h00, h01 - h00, h00 - h10 - h01 + h11  # h = h00 + a fu + b fv + cc fu fv
            t = _first_root(oz_c + dz_c * s0 - (h00 + a * fu + b * fv + cc * fu * fv),
                            dz_c - (a + cc * fv) * du_c - (b + cc * fu) * dv_c, -cc * du_c * dv_c, s1 - s0)
            got = torch.isfinite(t)
            c_hit = c[got]
            s_hit[r["idx"].index_select(0, c_hit)] = (s0 + t)[got].to(dt)
            live[c_hit] = 0.0
        # past the block (or the cell without a crossing); at least a step, where rounding put s_out at s. The
        # product keeps s where the ray stays (s > 0, so the maximum is s), and is exact where it moves.
        moved = clear + cell
        r["s"] = torch.maximum(s, torch.maximum(s_out, s + r["ds"]).mul_(moved))
        # clear: a level up (at most the top); a cell: stays; else a level down
        r["level"] = level_now + clear * _mask(torch.lt, level_now, float(top)) - (1.0 - moved)
        live.mul_(_mask(torch.lt, r["s"], r["end"]))


def cast_rays(world, c2w_b44: torch.Tensor, width: int, height: int, config: RenderConfig = RenderConfig()) -> Geometry:
    """Casts one ray per pixel into ``world`` for a batch of cameras.

    Args:
        world: a :class:`topoloc.procedural.world.World` on the device of ``c2w_b44``.
        c2w_b44: camera-to-ENU poses (OpenCV axes); computed in float32.
        width, height: image size (px).
        config: ray-casting settings.

    Shape:
        c2w_b44: (B, 4, 4) -> Geometry of (B, H, W) fields
    """
    c2w_b44 = c2w_b44.to(torch.float32)  # the world's dtype
    B = c2w_b44.shape[0]
    o, d = camera_rays(c2w_b44, width, height)
    df = d.reshape(B, -1, 3)
    near, far, never = _depth_range(world, o, df, config.far_m)
    near, end = torch.where(never, 0.0, near), torch.where(never, 0.0, far)  # finite, for the blocks' extremes
    mip = world.max_mipmap()
    per = max(1, RAYS_AT_ONCE.get(o.device.type, RAYS_AT_ONCE["cuda"]) // (height * width))  # images at once
    near, end = near.reshape(B, height, width), end.reshape(B, height, width)
    parts = [slice(k, k + per) for k in range(0, B, per)]
    start = torch.cat([_cone_start(world, mip, o[p], d[p], near[p], end[p]) for p in parts])
    s_hit = torch.cat([_traverse(world, mip, o[p, None, :].expand(-1, height * width, -1).reshape(-1, 3),
                                 df[p].reshape(-1, 3), start[p].reshape(-1), end[p].reshape(-1)) for p in parts])
    found = torch.isfinite(s_hit)
    s_hit = torch.where(found, s_hit, far.clamp(1.0, config.far_m).reshape(-1)).reshape(B, height, width)
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
