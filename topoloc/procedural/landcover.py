"""Mini-Comballaz land cover: a class map and object heights on the terrain grid.

Land cover is drawn from the seed on the same grid as the terrain: a river and a lake in the
valley, roads as polylines with a width (a valley road and seeded side roads and tracks),
chalets as gabled blocks along the roads and in the meadows, forest patches of evergreen and
deciduous trees with a bumpy canopy, rock on steep slopes and high on the mountains, meadows
elsewhere (in parcels of different tones). Objects that only exist in reality (cars on the
roads, a power line across the valley) are generated here too, and drawn only in "real" images.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from topoloc.data.semantics import BUILDING, FOREST_DECIDUOUS, FOREST_EVERGREEN, MEADOW, ROAD, ROCK, WATER
from topoloc.procedural._noise import draw_seed, fbm2d
from topoloc.procedural.terrain import RIVER_ENU, Grid, polyline_distance

# The class ids (SKY, MEADOW, ...) and their table are owned by topoloc.data.semantics.
__all__ = ["LAKE", "build_landcover"]

#: The lake: centre (east, north) m, semi-axes (m), rotation (deg).
LAKE = ((430.0, 140.0), (150.0, 80.0), 30.0)


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return x * x * (3 - 2 * x)


def _offset_polyline(points: np.ndarray, offset: float) -> np.ndarray:
    """The polyline shifted sideways by ``offset`` metres (left of the direction of travel)."""
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    return points + offset * normal


def _roads(rng: np.random.Generator, area: tuple[float, float, float, float]) -> list[tuple[np.ndarray, float]]:
    """Road polylines (P, 2) ENU with their widths (m): valley road, side roads, farm tracks."""
    roads = [(_offset_polyline(RIVER_ENU, 95.0), 7.0)]
    e0, e1, n0, n1 = area
    main = roads[0][0]
    for k in range(34):
        seg = rng.integers(0, len(main) - 1)
        start = main[seg] + rng.uniform(0, 1) * (main[seg + 1] - main[seg])
        if k >= 20:  # a track starting somewhere in the inhabited area
            start = np.array([rng.uniform(e0, e1), rng.uniform(n0, n1)])
        heading = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(300, 1300) if k < 20 else rng.uniform(150, 500)
        n_pts = 6
        pts = [start]
        for _ in range(n_pts - 1):
            heading += rng.normal(0, 0.45)
            pts.append(pts[-1] + length / (n_pts - 1) * np.array([math.sin(heading), math.cos(heading)]))
        roads.append((np.array(pts), 5.0 if k < 20 else 3.0))
    return roads


def _buildings(rng: np.random.Generator, roads, area) -> list[tuple[float, float, float, float, float, float, float]]:
    """Chalets: (east, north, heading rad, length, width, eave height, roof rise), m."""
    out = []
    for pts, width in roads[:21]:
        for a, b in zip(pts[:-1], pts[1:]):
            seg = b - a
            length = float(np.linalg.norm(seg))
            heading = math.atan2(seg[0], seg[1])
            normal = np.array([-seg[1], seg[0]]) / max(length, 1e-6)
            for s in np.arange(20.0, length, rng.uniform(35, 70)):
                if rng.uniform() > 0.45:
                    continue
                side = rng.choice([-1.0, 1.0])
                c = a + seg * (s / length) + side * normal * (width / 2 + rng.uniform(9, 16))
                out.append((c[0], c[1], heading + rng.normal(0, 0.08), rng.uniform(11, 24), rng.uniform(8, 14),
                            rng.uniform(5, 9), rng.uniform(2, 4.5)))
    e0, e1, n0, n1 = area
    for _ in range(70):  # isolated chalets and barns in the meadows
        out.append((rng.uniform(e0, e1), rng.uniform(n0, n1), rng.uniform(0, math.pi), rng.uniform(12, 26),
                    rng.uniform(9, 15), rng.uniform(4, 8), rng.uniform(2, 4)))
    return out


def _rasterize_buildings(grid: Grid, ground: torch.Tensor, buildings, classes, objects, roof_tone, rng) -> None:
    for e, n, heading, length, width, eave, rise in buildings:
        r = 0.5 * math.hypot(length, width) + grid.cell
        j0, j1 = int((e - r - grid.e_min) / grid.cell), int((e + r - grid.e_min) / grid.cell) + 2
        i0, i1 = int((n - r - grid.n_min) / grid.cell), int((n + r - grid.n_min) / grid.cell) + 2
        if j0 < 0 or i0 < 0 or j1 > grid.cols or i1 > grid.rows:
            continue
        ee = grid.e_min + torch.arange(j0, j1, dtype=torch.float32)[None, :] * grid.cell - e
        nn = grid.n_min + torch.arange(i0, i1, dtype=torch.float32)[:, None] * grid.cell - n
        along = ee * math.sin(heading) + nn * math.cos(heading)
        across = ee * math.cos(heading) - nn * math.sin(heading)
        inside = (along.abs() <= length / 2) & (across.abs() <= width / 2)
        window_cls = classes[i0:i1, j0:j1]
        inside &= window_cls != WATER
        if not bool(inside.any()):
            continue
        g = ground[i0:i1, j0:j1]
        top = float(g[inside].max()) + eave + rise * (1 - across.abs() / (width / 2)).clamp(0, 1)
        obj = objects[i0:i1, j0:j1]
        obj[inside] = (top - g)[inside]
        window_cls[inside] = BUILDING
        tone = roof_tone[i0:i1, j0:j1]
        # two roof planes lit differently carry the gable's orientation into the texture
        tone[inside] = (rng.uniform(0, 1) + 0.15 * torch.sign(across))[inside].clamp(0, 1)


def build_landcover(grid: Grid, ground: torch.Tensor, river: torch.Tensor, mountain: torch.Tensor,
                    generator: torch.Generator) -> dict:
    """Classes, object heights and texture layers on the terrain grid.

    Args:
        grid: the terrain grid.
        ground: terrain heights (m); the lake basin is flattened in place.
        river: distance to the river axis (m).
        mountain: [0, 1] weight of the surrounding mountains.
        generator: CPU generator (the world seed).

    Returns:
        dict with ``classes`` uint8, ``objects`` object heights above ground (m), ``tone`` [0, 1]
        per-parcel / per-patch colour variation, ``roof_tone`` [0, 1], ``cars`` list of car
        rectangles, ``roads`` list of (polyline, width), all (rows, cols) on ``grid``.
    """
    rng = np.random.default_rng(draw_seed(generator))
    shape = (grid.rows, grid.cols)
    ee, nn = grid.coords()

    # lake: flatten a basin in the valley
    (lc_e, lc_n), (ra, rb), rot = LAKE
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    u, v = (ee - lc_e) * c - (nn - lc_n) * s, (ee - lc_e) * s + (nn - lc_n) * c
    ell = torch.sqrt((u / ra) ** 2 + (v / rb) ** 2)
    lake = ell < 1.0
    level = float(ground[lake].quantile(0.25))
    blend = _smoothstep((ell - 1.0) / 0.6)
    ground.copy_(torch.where(lake, level, level + 0.5 + blend * (ground - level - 0.5)))  # flat water, a low shore

    gy, gx = torch.gradient(ground, spacing=grid.cell)
    slope = torch.sqrt(gx**2 + gy**2)
    height = ground

    classes = torch.full(shape, MEADOW, dtype=torch.uint8)
    objects = torch.zeros(shape)
    # meadow parcels: tone per rotated block of ~45 m, plus smooth variation
    rot_e, rot_n = ee * 0.94 + nn * 0.34, -ee * 0.34 + nn * 0.94
    parcel = (torch.floor(rot_e / 47.0) * 7919 + torch.floor(rot_n / 33.0) * 104729).long()
    parcel_tone = ((parcel * 2654435761) % 1000).float() / 1000.0
    tone = (0.55 * parcel_tone + 0.45 * (0.5 + 0.5 * fbm2d(shape, 80.0 / grid.cell, 4, generator))).clamp(0, 1)

    # rock: steep slopes and high on the mountains
    rock_noise = fbm2d(shape, 120.0 / grid.cell, 4, generator)
    rock = (slope > 0.85 + 0.25 * rock_noise) | ((height > 620 + 120 * rock_noise) & (mountain > 0.3))
    classes[rock] = ROCK

    # forest patches (below the tree line), evergreen higher up, deciduous lower down
    forest_noise = fbm2d(shape, 420.0 / grid.cell, 5, generator) + 0.35 * (slope - 0.3) + 0.25 * mountain
    treeline = height < 560 + 60 * rock_noise
    forest = (forest_noise > 0.30) & treeline & ~rock
    species = fbm2d(shape, 180.0 / grid.cell, 4, generator) + (height - 150.0) / 300.0
    evergreen = species > -0.45  # spruce dominates at 1400 m; beech and maple in patches lower down
    # isolated trees and hedges in the meadows
    crowns = fbm2d(shape, 9.0 / grid.cell, 2, generator, gain=0.35)
    single = (crowns > 0.55) & (fbm2d(shape, 300.0 / grid.cell, 3, generator) > 0.1) & treeline & ~rock
    trees = forest | single
    classes[trees & evergreen] = FOREST_EVERGREEN
    classes[trees & ~evergreen] = FOREST_DECIDUOUS
    # canopy: rounded crowns (a dome over each noise bump) on a forest roof that thins at the edges
    dome = ((crowns - 0.55).clamp_min(0) / 0.45).sqrt()
    canopy = torch.where(forest, 16.0 + 3.0 * crowns, 4.0 + 9.0 * dome)
    edge = _smoothstep((forest_noise - 0.30) / 0.08)
    canopy = torch.where(forest, canopy * (0.5 + 0.5 * edge), canopy)
    objects[trees] = canopy[trees].clamp_min(3.0)

    # water: the river and the lake
    water = (river < 4.0 + 2.0 * _smoothstep(-nn / 2000.0)) | lake
    classes[water] = WATER
    objects[water] = 0.0

    # roads over everything but the lake (bridges over the river are flat, its axis stays water), cleared of trees
    area = (-200.0, 1100.0, -100.0, 1400.0)
    roads = _roads(rng, area)
    road_sd = torch.full(shape, math.inf)  # distance to the nearest road's edge (m)
    for pts, width in roads:
        polyline_distance(grid, pts, width / 2 + 4.0, out=road_sd, offset=width / 2)
    verge = road_sd <= 4.0
    road_mask = (road_sd <= 0.0) & ~lake & (~water | (river > 1.0))
    objects.masked_fill_(verge, 0.0)
    classes.copy_(torch.where(verge & (classes != WATER) & (classes != ROCK), MEADOW, classes))
    classes.copy_(torch.where(road_mask, ROAD, classes))
    roof_tone = torch.zeros(shape)
    buildings = _buildings(rng, roads, area)
    _rasterize_buildings(grid, ground, buildings, classes, objects, roof_tone, rng)

    # cars on the roads (real only): (east, north, heading, colour index)
    cars = []
    for pts, width in roads[:21]:
        for a, b in zip(pts[:-1], pts[1:]):
            seg = b - a
            length = float(np.linalg.norm(seg))
            for _ in range(rng.poisson(length / 120.0)):
                t = rng.uniform(0, 1)
                normal = np.array([-seg[1], seg[0]]) / max(length, 1e-6)
                p = a + t * seg + normal * rng.choice([-1, 1]) * width / 4
                cars.append((p[0], p[1], math.atan2(seg[0], seg[1]), int(rng.integers(0, 6))))
    return {"classes": classes, "objects": objects, "tone": tone, "roof_tone": roof_tone, "cars": cars, "roads": roads,
            "slope": slope}
