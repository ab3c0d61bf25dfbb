"""Appearance models: TOPO's synthetic Cesium look, and what real drone photos add.

``synthetic`` imitates TOPO's Cesium renders of orthophotos: summer colours, even lighting, an
empty pale sky. ``real`` follows each flight's date: season (autumn with leafless deciduous trees
in November, early autumn colours in October, snow in March), the sun of that day with cast
shadows, clouds with their shadows, haze, real-only objects (cars, a power line), and a camera
(exposure, white balance, response curve, vignetting, blur, noise; JPEG when written).

``real_alt`` is a second "real" look that the ``augment`` ops were not designed against, for
testing sim-to-real claims out of distribution: whatever the flight's date, a clear late-summer
evening (dry straw meadows, dark forests), a low warm sun from the west (about 12 deg, 17:30 solar
time on 28 August) with long cast shadows and a cool blue sky fill in them, a warm glowing sky and
haze, no clouds, and another camera (:func:`topoloc.procedural.alt_camera.alt_camera_effects`:
barrel distortion, lateral chromatic aberration, a filmic tone curve with crushed blacks, sensor
row banding; lower JPEG quality with 4:2:2 chroma when written).

Colours are baked once per (world, appearance) on the terrain grid (:func:`bake`); the per-pixel
work of :func:`shade` is a few texture samples and element-wise arithmetic, batched over images.
The cameras are in their own modules: ``real``'s in :mod:`topoloc.procedural.real_camera`,
``real_alt``'s in :mod:`topoloc.procedural.alt_camera`.
Per-image randomness comes from integer keys (:func:`topoloc.procedural._noise.image_key`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from topoloc.data.semantics import (
    BUILDING, CLOUD, FOREST_DECIDUOUS, FOREST_EVERGREEN, MEADOW, REAL_ONLY, RIDGELINE, ROAD, ROCK, SKY, SNOW, WATER,
)
from topoloc.procedural._noise import fbm2d, hash_uniform
from topoloc.procedural.terrain import sample_grid

__all__ = ["Appearance", "appearance_for_flight", "Bake", "bake", "shade", "sun_position", "DOMAINS", "PHOTO_DOMAINS",
           "SEASONS", "ALT_DATE_TIME"]

DOMAINS = ("synthetic", "real", "real_alt")
#: Domains that are photographs (real-only objects, cast shadows, a camera model).
PHOTO_DOMAINS = ("real", "real_alt")
SEASONS = ("summer", "early_autumn", "autumn", "winter", "late_summer")
_LAT_DEG = 46.37

# Albedo per class and season (sRGB, 0-1): two colours per class, mixed by the grid's tone.
_PALETTE = {
    "summer": {
        MEADOW: ((0.36, 0.47, 0.20), (0.55, 0.58, 0.30)),
        FOREST_EVERGREEN: ((0.10, 0.17, 0.10), (0.19, 0.26, 0.15)),
        FOREST_DECIDUOUS: ((0.20, 0.31, 0.12), (0.33, 0.43, 0.19)),
        ROCK: ((0.50, 0.49, 0.46), (0.66, 0.64, 0.60)),
        WATER: ((0.16, 0.26, 0.28), (0.24, 0.34, 0.34)),
        ROAD: ((0.40, 0.40, 0.40), (0.52, 0.51, 0.49)),
        BUILDING: ((0.52, 0.30, 0.22), (0.42, 0.42, 0.44)),
        SNOW: ((0.92, 0.93, 0.95), (0.97, 0.98, 0.99)),
    },
}
_PALETTE["early_autumn"] = dict(_PALETTE["summer"]) | {
    MEADOW: ((0.42, 0.46, 0.22), (0.58, 0.55, 0.32)),
    FOREST_DECIDUOUS: ((0.44, 0.34, 0.16), (0.54, 0.45, 0.21)),
}
_PALETTE["autumn"] = dict(_PALETTE["summer"]) | {
    MEADOW: ((0.44, 0.45, 0.26), (0.58, 0.52, 0.36)),
    FOREST_EVERGREEN: ((0.09, 0.14, 0.09), (0.15, 0.20, 0.13)),
    FOREST_DECIDUOUS: ((0.33, 0.28, 0.23), (0.46, 0.40, 0.33)),  # leafless: bark and litter
}
_PALETTE["late_summer"] = dict(_PALETTE["summer"]) | {  # a dry August: straw meadows, dark foliage
    MEADOW: ((0.58, 0.50, 0.27), (0.74, 0.65, 0.40)),
    FOREST_EVERGREEN: ((0.07, 0.12, 0.07), (0.14, 0.19, 0.11)),
    FOREST_DECIDUOUS: ((0.17, 0.24, 0.09), (0.27, 0.33, 0.13)),
    WATER: ((0.10, 0.20, 0.24), (0.16, 0.26, 0.30)),
}
_PALETTE["winter"] = dict(_PALETTE["autumn"]) | {
    MEADOW: ((0.48, 0.44, 0.33), (0.58, 0.53, 0.40)),  # where the snow has melted
    FOREST_EVERGREEN: ((0.20, 0.25, 0.22), (0.55, 0.58, 0.60)),  # snow on the branches
    FOREST_DECIDUOUS: ((0.50, 0.48, 0.47), (0.70, 0.70, 0.71)),  # snow seen through bare crowns
}

# Texture strength per class (detail tile contrast).
_DETAIL = torch.tensor([0.0, 0.16, 0.45, 0.40, 0.30, 0.06, 0.08, 0.12, 0.05, 0.0, 0.0, 0.2])
# real_alt light (linear-ish RGB gains): a low warm sun and the blue sky's fill in the shadows
_ALT_SUN_RGB = (1.05, 0.70, 0.40)
_ALT_FILL_RGB = (0.26, 0.31, 0.42)
#: real_alt's date and solar time: the sun of a late-August evening at Comballaz.
ALT_DATE_TIME = (8, 28, 17.5)
_CAR_COLOURS = torch.tensor([[0.8, 0.8, 0.82], [0.1, 0.1, 0.12], [0.6, 0.08, 0.06], [0.15, 0.22, 0.5],
                             [0.55, 0.56, 0.58], [0.9, 0.9, 0.9]])


@dataclass(frozen=True)
class Appearance:
    """How one flight looks.

    Args:
        domain: ``"synthetic"`` (TOPO's Cesium renders), ``"real"`` (drone photos) or ``"real_alt"``
            (the second photo look, see the module docstring).
        season: one of SEASONS; the synthetic domain is always rendered in summer colours.
        sun_azimuth_deg: sun azimuth, clockwise from north (deg).
        sun_elevation_deg: sun elevation above the horizon (deg).
        snow: snow cover on open ground (0-1), for the real domain.
    """

    domain: str = "synthetic"
    season: str = "summer"
    sun_azimuth_deg: float = 160.0
    sun_elevation_deg: float = 55.0
    snow: float = 0.0

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"Appearance domain: expected one of {DOMAINS}, got {self.domain!r}")
        if self.season not in SEASONS:
            raise ValueError(f"Appearance season: expected one of {SEASONS}, got {self.season!r}")
        if not 0.0 < self.sun_elevation_deg <= 90.0:
            raise ValueError(f"Appearance sun_elevation_deg: expected (0, 90], got {self.sun_elevation_deg}")
        if not 0.0 <= self.snow <= 1.0:
            raise ValueError(f"Appearance snow: expected [0, 1], got {self.snow}")

    @property
    def key(self) -> tuple:
        return (self.domain, self.season, round(self.sun_azimuth_deg, 3), round(self.sun_elevation_deg, 3), self.snow)


def sun_position(month: int, day: int, solar_hour: float = 11.0, lat_deg: float = _LAT_DEG) -> tuple[float, float]:
    """Approximate sun (azimuth clockwise from north, elevation) in degrees (Cooper's declination)."""
    doy = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][month - 1] + day
    dec = math.radians(-23.44 * math.cos(2 * math.pi / 365 * (doy + 10)))
    lat = math.radians(lat_deg)
    h = math.radians(15.0 * (solar_hour - 12.0))
    elev = math.asin(math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(h))
    az = math.atan2(math.sin(h), math.cos(h) * math.sin(lat) - math.tan(dec) * math.cos(lat)) + math.pi
    return math.degrees(az) % 360.0, math.degrees(elev)


def appearance_for_flight(flight: str, domain: str) -> Appearance:
    """The appearance of a flight's images in a domain, from the date in its name.

    The synthetic domain is TOPO's summer orthophoto look whatever the date. The real domain of a
    flight without a date (``*-LHS``) is a sunny summer day. The real_alt domain is the same
    late-summer evening for every flight (:data:`ALT_DATE_TIME`).

    Example:
        >>> appearance_for_flight("comballaz-2021-03-27-winter", "real").season
        'winter'
        >>> appearance_for_flight("comballaz-2021-03-27-winter", "real_alt").season
        'late_summer'
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain: expected one of {DOMAINS}, got {domain!r}")
    match = re.search(r"(\d{4})-(\d{2})-(\d{2})", flight)
    month, day = (int(match.group(2)), int(match.group(3))) if match else (7, 15)
    if domain == "synthetic":
        return Appearance("synthetic", "summer", 150.0, 60.0, 0.0)
    if domain == "real_alt":
        az, el = sun_position(*ALT_DATE_TIME)
        return Appearance("real_alt", "late_summer", az, el, 0.0)
    season = {11: "autumn", 12: "winter", 1: "winter", 2: "winter", 3: "winter",
              10: "early_autumn"}.get(month, "summer")
    az, el = sun_position(month, day)
    return Appearance("real", season, az, el, 0.85 if season == "winter" else 0.0)


@dataclass
class Bake:
    """Per-appearance textures on the terrain grid: rgb + shade (4, rows, cols), class ids (1, rows, cols)."""

    appearance: Appearance
    rgbs: torch.Tensor
    classes: torch.Tensor

    def to(self, device) -> "Bake":
        return Bake(self.appearance, self.rgbs.to(device), self.classes.to(device))


def _sun_vector(app: Appearance) -> torch.Tensor:
    az, el = math.radians(app.sun_azimuth_deg), math.radians(app.sun_elevation_deg)
    return torch.tensor([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])


def _cast_shadows(world, sun: torch.Tensor, steps: int = 16, chunk_rows: int = 128, factor: int = 2) -> torch.Tensor:
    """1 where a grid node sees the sun over the surface, 0 in a cast shadow (soft at the edge).

    Computed on every ``factor``-th node (marching towards the sun over the full-resolution
    surface) and upsampled bilinearly.
    """
    g = world.grid
    surf = world.surface
    dist = torch.logspace(math.log10(1.5), math.log10(1500.0), steps)
    horiz = max(float(torch.linalg.vector_norm(sun[:2])), 1e-6)
    rise = float(sun[2]) / horiz  # metres up per metre travelled towards the sun
    de, dn = float(sun[0]) / horiz, float(sun[1]) / horiz
    sub = surf[::factor, ::factor]
    rows, cols = sub.shape
    out = torch.empty(rows, cols)
    e_all = g.e_min + torch.arange(cols, dtype=torch.float32) * g.cell * factor
    for r0 in range(0, rows, chunk_rows):
        r1 = min(rows, r0 + chunk_rows)
        n = g.n_min + torch.arange(r0, r1, dtype=torch.float32) * g.cell * factor
        e = (e_all[None, :, None] + dist * de).expand(r1 - r0, -1, -1)
        nn = (n[:, None, None] + dist * dn).expand(-1, cols, -1)
        h = sample_grid(surf, g, e.reshape(-1), nn.reshape(-1)).reshape(e.shape)
        z = sub[r0:r1, :, None] + 0.5 + dist * rise
        margin = ((z - h) / (0.03 * dist + 0.5)).amin(-1)
        out[r0:r1] = margin.clamp(0, 1)
    return F.interpolate(out[None, None], size=(g.rows, g.cols), mode="bilinear", align_corners=True)[0, 0]


def bake(world, app: Appearance) -> Bake:
    """Colours, shading and class ids of ``world`` under ``app``, on the world's grid (CPU: move the
    `Bake` to the render's device afterwards)."""
    if world.device.type != "cpu":
        raise ValueError(f"bake: expected the world on the CPU (build_world(seed)), got it on {world.device}; "
                         "bake there and move the result with Bake.to(device)")
    season = "summer" if app.domain == "synthetic" else app.season
    pal = _PALETTE[season]
    cls = world.classes.long()
    tone = world.tone
    rgb = torch.zeros(3, *cls.shape)
    for c, (c0, c1) in pal.items():
        m = cls == c
        t = world.roof_tone if c == BUILDING else tone
        tm = t[m] if c != WATER else torch.full_like(t[m], 0.5)  # water: one colour (no field parcels)
        col = torch.tensor(c0)[:, None] * (1 - tm) + torch.tensor(c1)[:, None] * tm
        rgb[:, m] = col
    classes = cls.clone()
    if app.domain in PHOTO_DOMAINS and app.snow > 0:
        # snow on open ground, rock and roofs; melted on steep sunny slopes and in random patches
        gen = torch.Generator().manual_seed(world.seed * 31 + 5)
        patches = fbm2d(tuple(cls.shape), 60.0 / world.grid.cell, 4, gen)
        sunny = world.normal[0] * _sun_vector(app)[0] + world.normal[1] * _sun_vector(app)[1]
        cover = patches + 2.0 * (app.snow - 0.5) - 1.2 * sunny.clamp_min(0)
        snowy = (cover > -0.2) & ((cls == MEADOW) | (cls == ROCK) | (cls == BUILDING))
        snowy &= ~((cls == ROCK) & (world.normal[2] < 0.6))
        white = torch.tensor(pal[SNOW][1])[:, None]
        rgb[:, snowy] = white * (0.94 + 0.06 * tone[snowy])
        classes = torch.where(snowy & (cls != BUILDING), SNOW, classes)
    if app.domain in PHOTO_DOMAINS:
        cars = world.cars.long()
        has = cars > 0
        rgb[:, has] = _CAR_COLOURS[cars[has] - 1].T
        classes = torch.where(has, REAL_ONLY, classes)
    sun = _sun_vector(app)
    lambert = (world.normal * sun[:, None, None]).sum(0).clamp_min(0)
    if app.domain == "synthetic":
        shade_ = 0.80 + 0.25 * lambert  # orthophoto: even, faintly modelled
    elif app.domain == "real_alt":
        # coloured light, baked into the colours: warm direct sun (cast shadows) + cool sky fill
        direct = lambert * _cast_shadows(world, sun) / max(math.sin(math.radians(app.sun_elevation_deg)), 0.3) ** 0.5
        rgb = rgb * (torch.tensor(_ALT_FILL_RGB)[:, None, None] + torch.tensor(_ALT_SUN_RGB)[:, None, None] * direct)
        shade_ = torch.ones_like(lambert)
    else:
        shadow = _cast_shadows(world, sun)
        shade_ = 0.42 + 0.85 * lambert * shadow / max(math.sin(math.radians(app.sun_elevation_deg)), 0.3) ** 0.5
    rgbs = torch.cat([rgb, shade_[None]]).contiguous()
    return Bake(app, rgbs, classes.float()[None].contiguous())


def _tile_sample(tile: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Samples a (C, T, T) tileable texture at texel coordinates (u, v) with wrap-around. (B, H, W) -> (B, C, H, W)."""
    T = tile.shape[-1]
    gx = torch.remainder(u, T - 1) * (2.0 / (T - 1)) - 1.0
    gy = torch.remainder(v, T - 1) * (2.0 / (T - 1)) - 1.0
    B = u.shape[0]
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(tile[None].expand(B, -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


def shade(world, bake_: Bake, geom, keys: torch.Tensor, width: int, height: int, origins_b3: torch.Tensor,
          c2w_b44: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours and semantics of rendered geometry under an appearance.

    Args:
        world: the world (on the render device).
        bake_: its bake for the appearance (same device).
        geom: :class:`topoloc.procedural.renderer.Geometry` of the batch.
        keys: per-image integer keys (B,) int64 for per-image randomness.
        width, height: image size (px).
        origins_b3: camera positions (B, 3) ENU.
        c2w_b44: camera-to-ENU poses (B, 4, 4); needed to draw the power line in photo images
            ("real", "real_alt").

    Returns:
        ``(rgb, semantics)``: float (B, 3, H, W), non-negative, and uint8 (B, H, W). The renders stay in
        [0, 1]; the photos' light goes above 1 where the sun is strong (snow, bright meadows: up to about 1.4),
        and their camera (`topoloc.procedural.real_camera`) clips it, as a real sensor saturates.
    """
    app = bake_.appearance
    real = app.domain == "real"
    alt = app.domain == "real_alt"  # clear evening: no clouds, warm sky and haze
    g = world.grid
    B = keys.shape[0]
    dev = geom.points.device
    pts = geom.points
    xy = g.to_normalized(pts[..., 0], pts[..., 1])
    samp = F.grid_sample(bake_.rgbs[None].expand(B, -1, -1, -1), xy, mode="bilinear", padding_mode="border",
                         align_corners=True)
    cls = F.grid_sample(bake_.classes[None].expand(B, -1, -1, -1), xy, mode="nearest", padding_mode="border",
                        align_corners=True)[:, 0]
    cls = cls.to(torch.uint8)
    det = _tile_sample(world.detail, pts[..., 0] / 0.25, pts[..., 1] / 0.25)
    strength = _DETAIL.to(dev)[cls.long()]
    detail = 1.0 + strength[:, None] * (0.75 * det[:, :1] + 0.5 * det[:, 1:2])
    rgb = samp[:, :3] * detail
    light = samp[:, 3:4]
    kf = keys.to(dev)
    if real:
        cover = 0.25 + 0.5 * hash_uniform(kf, 1)
        wind_u = hash_uniform(kf, 2) * 4000.0
        wind_v = hash_uniform(kf, 3) * 4000.0
        # cloud shadows drifting over the ground
        sun = _sun_vector(app).to(dev)
        lift = 1500.0 / max(float(sun[2]), 0.2)
        cu = (pts[..., 0] + sun[0] * lift) / 12.0 + wind_u[:, None, None]
        cv = (pts[..., 1] + sun[1] * lift) / 12.0 + wind_v[:, None, None]
        dens = _tile_sample(world.clouds[None], cu, cv)[:, 0]
        dens = ((dens + cover[:, None, None] - 0.75) / 0.35).clamp(0, 1)
        light = light * (1.0 - 0.4 * dens[:, None])
    rgb = rgb * light

    # far mountains (profile) and sky, computed on those pixels only
    far = geom.far_class
    sky_or_profile = (far == SKY) | ((far == RIDGELINE) & ~geom.hit)
    bi, yi, xi = sky_or_profile.nonzero(as_tuple=True)
    sem = torch.where(far != 255, far, cls)
    if bi.numel():
        d = geom.dirs[bi, yi, xi]  # (M, 3)
        elev = d[:, 2].clamp(-1, 1)
        az = torch.atan2(d[:, 0], d[:, 1])
        rt = _tile_sample(world.detail[1:], (az * 300.0)[None, None], (elev * 300.0)[None, None])[0, 0, 0]
        # distant mountains: dark forested flanks, lighter rock towards the crest, snow on top
        R = world.ridge_sin.shape[0]
        pos = torch.remainder(az, 2 * math.pi) * (R / (2 * math.pi))
        i0 = pos.long()
        crest = torch.lerp(world.ridge_sin[i0 % R], world.ridge_sin[(i0 + 1) % R], pos - i0)
        below = ((crest - d[:, 2]) / 0.09).clamp(0, 1)[:, None]  # 0 at the crest, 1 lower down
        flank = torch.tensor([0.27, 0.33, 0.36], device=dev)
        rock = torch.tensor([0.58, 0.59, 0.62], device=dev)
        col = torch.lerp(rock, flank, below ** 0.6) * (1.0 + 0.22 * rt[:, None])
        snow_line = 0.45 if (real and app.season == "winter") else (0.12 if (real or alt) else 0.06)
        cap = ((snow_line - below) / 0.05 + 0.6 * rt[:, None]).clamp(0, 1)
        col = torch.lerp(col, torch.full_like(col, 0.93), cap)
        is_sky = far[bi, yi, xi] == SKY
        if real:
            zen = torch.tensor([0.30, 0.50, 0.82], device=dev)
            hor = torch.tensor([0.75, 0.82, 0.90], device=dev)
            t = elev.clamp_min(0).sqrt()[:, None]
            sky = hor * (1 - t) + zen * t
            # clouds on a layer 1500 m above the camera
            reach = (1500.0 / d[:, 2].clamp_min(0.02)).clamp_max(30000.0)
            u = (origins_b3[bi, 0] + d[:, 0] * reach) / 12.0 + wind_u[bi]
            v = (origins_b3[bi, 1] + d[:, 1] * reach) / 12.0 + wind_v[bi]
            cd = _tile_sample(world.clouds[None], u[None, None], v[None, None])[0, 0, 0]
            cloud = ((cd + cover[bi] - 0.75) / 0.3).clamp(0, 1) * (d[:, 2] > -0.05)
            ccol = (0.97 - 0.25 * cd.clamp(0, 1))[:, None]
            sky = torch.lerp(sky, ccol.expand_as(sky), cloud[:, None])
            sem[bi, yi, xi] = torch.where(is_sky & (cloud > 0.5), CLOUD, sem[bi, yi, xi]).to(torch.uint8)
        elif alt:
            sun = _sun_vector(app).to(dev)
            toward = (d * sun).sum(-1)  # cosine of the angle to the sun
            t = elev.clamp_min(0).sqrt()[:, None]
            sky = (torch.tensor([0.96, 0.70, 0.48], device=dev) * (1 - t)
                   + torch.tensor([0.25, 0.36, 0.66], device=dev) * t)
            glow = ((toward - 0.55) / 0.45).clamp(0, 1) ** 2
            sky = sky + glow[:, None] * torch.tensor([0.45, 0.30, 0.12], device=dev)
            # far mountains: backlit towards the sun, warm-lit away from it
            col = col * torch.tensor([1.0, 0.86, 0.74], device=dev) * (0.85 - 0.3 * toward.clamp(-1, 1))[:, None]
        else:
            sky = torch.tensor([0.86, 0.89, 0.94], device=dev).expand(len(bi), 3)
        rgb_bhw3 = rgb.permute(0, 2, 3, 1)
        rgb_bhw3[bi, yi, xi] = torch.where(is_sky[:, None], sky, col)

    # haze with distance (sky untouched; the far mountains as if 15 km away)
    if alt:
        vis = 5000.0 + 7000.0 * hash_uniform(kf, 4)
    else:
        vis = (6000.0 + 9000.0 * hash_uniform(kf, 4)) if real else torch.full((B,), 20000.0, device=dev)
    dist = torch.where(far == SKY, 0.0, torch.where(geom.hit, geom.ray_dist.clamp_max(15000.0), 15000.0))
    fog = (1.0 - torch.exp(-dist / vis[:, None, None])) * (0.85 if (real or alt) else 0.6)
    haze = torch.tensor([0.82, 0.66, 0.52] if alt else ([0.72, 0.78, 0.86] if real else [0.80, 0.84, 0.90]), device=dev)
    rgb = torch.lerp(rgb, haze[None, :, None, None].expand_as(rgb), fog[:, None])
    if (real or alt) and c2w_b44 is not None and world.wires.numel():
        _draw_wires(world.wires.to(dev), c2w_b44, geom.depth, rgb, sem, width, height)
    return rgb, sem


def _draw_wires(wires_s23: torch.Tensor, c2w_b44: torch.Tensor, depth: torch.Tensor, rgb: torch.Tensor,
                sem: torch.Tensor, width: int, height: int, samples: int = 768) -> None:
    """Draws power-line cables (real only) into ``rgb`` / ``sem`` in place, occluded by the terrain.

    Points sampled densely along each 3D cable segment are projected with TOPO's camera and
    splatted where they are nearer than the surface: a one-pixel dark line, class REAL_ONLY.

    Shape:
        wires_s23: (S, 2, 3) ENU; c2w_b44: (B, 4, 4); depth: (B, H, W); rgb: (B, 3, H, W); sem: (B, H, W)
    """
    B = c2w_b44.shape[0]
    dev = rgb.device
    f = 480.0 * width / 720.0
    t = torch.linspace(0.0, 1.0, samples, device=dev)
    pts = torch.lerp(wires_s23[:, None, 0], wires_s23[:, None, 1], t[None, :, None]).reshape(-1, 3)  # (P, 3)
    R = c2w_b44[:, :3, :3]
    rel = pts[None] - c2w_b44[:, None, :3, 3]  # (B, P, 3)
    # world to camera: R^T rel (camera axis i is R's column i: cam_i = sum_k R[k, i] rel_k)
    cam = rel[..., 0:1] * R[:, None, 0, :] + rel[..., 1:2] * R[:, None, 1, :] + rel[..., 2:3] * R[:, None, 2, :]
    z = cam[..., 2]
    u = torch.floor(f * cam[..., 0] / z.clamp_min(1e-3) + width / 2).long()
    v = torch.floor(f * cam[..., 1] / z.clamp_min(1e-3) + height / 2).long()
    ok = (z > 1.0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    b = torch.arange(B, device=dev)[:, None].expand_as(u)
    b, u, v, z = b[ok], u[ok], v[ok], z[ok]
    if b.numel() == 0:
        return
    visible = z < depth[b, v, u]
    b, u, v = b[visible], u[visible], v[visible]
    rgb[b, :, v, u] = torch.lerp(rgb[b, :, v, u], torch.full_like(rgb[b, :, v, u], 0.12), 0.85)
    sem[b, v, u] = REAL_ONLY
