"""Mini-Comballaz terrain: a heightfield h(east, north) in the Comballaz local ENU frame (metres).

The ground follows what the real TOPO poses tell about it: the synthetic ``comballaz-LHS`` poses
fly 100-200 m above ground, so binned LHS heights give the valley's shape (it rises towards the
north-west and falls towards the south-east and, down the valley, towards Le Sepey in the
south-west). Around that, mountain walls rise to form the ridgelines seen in oblique views, fBm
adds relief at every scale, and a river carves the valley floor. Finally a cone-shaped ceiling
built from every Comballaz preset camera lowers the ground locally so that each camera has at
least :data:`CLEARANCE_M` of air below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from topoloc.data.preset import load_preset
from topoloc.geodesy import LocalFrame
from topoloc.procedural._noise import fbm2d

__all__ = [
    "Grid",
    "MIP_LEVELS",
    "max_mipmap",
    "CLEARANCE_M",
    "COMBALLAZ_FLIGHTS",
    "RIVER_ENU",
    "comballaz_cameras_enu",
    "comballaz_ground",
    "camera_ceiling",
    "smooth_min",
    "polyline_distance",
    "sample_grid",
]

#: Minimum height (m) of every Comballaz preset camera above the rendered surface.
CLEARANCE_M = 10.0

#: Flights rendered in the Comballaz world (all share the Comballaz origin).
COMBALLAZ_FLIGHTS = (
    "comballaz-LHS",
    "comballaz-2020-11-06-piloted",
    "comballaz-2020-11-06-planned",
    "comballaz-2021-03-27-winter",
    "comballaz-2021-10-13-piloted",
    "sepey-2021-10-13-outofplace",
)

#: Ground below the LHS poses' mid height (m): LHS = ground + 100..200 m, and the real flights sit
#: up to ~50 m lower (EXIF altitudes above sea level), so the world's ground is set a little lower.
GROUND_OFFSET_M = 35.0

#: The valley's river, ENU metres (east, north), from the pass down towards Le Sepey.
RIVER_ENU = np.array(
    [
        [1500.0, 3600.0],
        [1150.0, 1700.0],
        [980.0, 900.0],
        [900.0, 320.0],
        [620.0, -180.0],
        [60.0, -560.0],
        [-650.0, -950.0],
        [-1500.0, -1550.0],
        [-2600.0, -2300.0],
        [-3400.0, -2900.0],
    ]
)


@dataclass(frozen=True)
class Grid:
    """A regular grid over local ENU: node (i, j) sits at east = e_min + j * cell, north = n_min + i * cell.

    Args:
        e_min: east of column 0 (m).
        n_min: north of row 0 (m).
        cell: node spacing (m).
        rows: number of rows (north direction).
        cols: number of columns (east direction).
    """

    e_min: float
    n_min: float
    cell: float
    rows: int
    cols: int

    @property
    def e_max(self) -> float:
        return self.e_min + (self.cols - 1) * self.cell

    @property
    def n_max(self) -> float:
        return self.n_min + (self.rows - 1) * self.cell

    def coords(self) -> tuple[torch.Tensor, torch.Tensor]:
        """East and north of every node, each (rows, cols) float32."""
        e = self.e_min + torch.arange(self.cols, dtype=torch.float64) * self.cell
        n = self.n_min + torch.arange(self.rows, dtype=torch.float64) * self.cell
        nn, ee = torch.meshgrid(n, e, indexing="ij")
        return ee.float(), nn.float()

    def coarsen(self, factor: int) -> "Grid":
        """A grid over the same extent with ``factor`` times the spacing (extent must divide)."""
        return Grid(self.e_min, self.n_min, self.cell * factor, (self.rows - 1) // factor + 1,
                    (self.cols - 1) // factor + 1)

    def to_normalized(self, east: torch.Tensor, north: torch.Tensor) -> torch.Tensor:
        """ENU (east, north) to grid_sample coordinates in [-1, 1] (align_corners=True), shape (..., 2)."""
        x = (east - self.e_min) * (2.0 / (self.e_max - self.e_min)) - 1.0
        y = (north - self.n_min) * (2.0 / (self.n_max - self.n_min)) - 1.0
        return torch.stack([x, y], dim=-1)


def sample_grid(field: torch.Tensor, grid: Grid, east: torch.Tensor, north: torch.Tensor,
                mode: str = "bilinear") -> torch.Tensor:
    """Samples a (C, rows, cols) or (rows, cols) field at ENU points (bilinear, border clamp).

    Shape:
        east, north: (N,) -> (N,) for a 2D field, (C, N) for a 3D one.
    """
    f = field if field.dim() == 3 else field[None]
    g = grid.to_normalized(east.reshape(-1).to(f), north.reshape(-1).to(f))
    out = F.grid_sample(f[None], g[None, :, None], mode=mode, padding_mode="border", align_corners=True)[0, :, :, 0]
    return out if field.dim() == 3 else out[0]


#: Maximum-mipmap levels above the cells: the top level's blocks are 2^8 cells (512 m on the Comballaz grid).
MIP_LEVELS = 8


def max_mipmap(surface: torch.Tensor, levels: int = MIP_LEVELS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The maximum mipmap of a height grid, flattened: level 0 holds each cell's highest corner, level k the
    maximum over blocks of 2^k x 2^k cells (blocks at the edges cover what is left).

    Returns:
        (flat heights, int64 offset of each level in them, int64 (rows, cols) of each level).

    Shape:
        surface: (rows, cols) -> (sum of the levels' sizes,), (levels + 1,), (levels + 1, 2)
    """
    corners = (surface[:-1, :-1], surface[1:, :-1], surface[:-1, 1:], surface[1:, 1:])
    m = torch.maximum(torch.maximum(corners[0], corners[1]), torch.maximum(corners[2], corners[3]))
    maps = [m]
    for _ in range(levels):
        m = F.max_pool2d(m[None, None], 2, 2, ceil_mode=True)[0, 0]
        maps.append(m)
    shapes = torch.tensor([mp.shape for mp in maps], dtype=torch.int64, device=surface.device)
    offsets = torch.zeros(len(maps), dtype=torch.int64, device=surface.device)
    offsets[1:] = torch.cumsum(shapes[:, 0] * shapes[:, 1], 0)[:-1]
    return torch.cat([mp.reshape(-1) for mp in maps]), offsets, shapes


def smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """A smooth minimum, never above ``min(a, b)`` (log-sum-exp with softness ``k``, same units)."""
    m = torch.minimum(a, b)
    return m - k * torch.log1p(torch.exp(-(a - b).abs() / k))


def polyline_distance(grid: Grid, points_en: np.ndarray, max_dist: float, out: torch.Tensor | None = None,
                      offset: float = 0.0) -> torch.Tensor:
    """Distance (m) from every grid node to a polyline, minus ``offset``; ``inf`` beyond ``max_dist``.

    Each segment only touches the nodes of its bounding box grown by ``max_dist``. With ``out``,
    the result is min-ed into ``out`` in place (several polylines in one map).

    Shape:
        points_en: (P, 2) ENU (east, north) -> (rows, cols)
    """
    dist = torch.full((grid.rows, grid.cols), math.inf) if out is None else out
    for (ax, ay), (bx, by) in zip(points_en[:-1], points_en[1:]):
        j0 = max(0, int((min(ax, bx) - max_dist - grid.e_min) / grid.cell))
        j1 = min(grid.cols, int((max(ax, bx) + max_dist - grid.e_min) / grid.cell) + 2)
        i0 = max(0, int((min(ay, by) - max_dist - grid.n_min) / grid.cell))
        i1 = min(grid.rows, int((max(ay, by) + max_dist - grid.n_min) / grid.cell) + 2)
        if j0 >= j1 or i0 >= i1:
            continue
        e = grid.e_min + torch.arange(j0, j1, dtype=torch.float32) * grid.cell
        n = grid.n_min + torch.arange(i0, i1, dtype=torch.float32) * grid.cell
        px, py = e[None, :] - ax, n[:, None] - ay
        vx, vy = bx - ax, by - ay
        t = ((px * vx + py * vy) / max(vx * vx + vy * vy, 1e-9)).clamp(0.0, 1.0)
        d = torch.sqrt((px - t * vx) ** 2 + (py - t * vy) ** 2)
        d = torch.where(d > max_dist, math.inf, d - offset)
        window = dist[i0:i1, j0:j1]
        torch.minimum(window, d, out=window)
    return dist


def comballaz_cameras_enu() -> dict[str, np.ndarray]:
    """Camera positions (N, 3) in Comballaz ENU metres of every flight rendered in the Comballaz world."""
    frame = LocalFrame.named("comballaz")
    return {f: frame.cesium_to_c2w(load_preset(f))[:, :3, 3] for f in COMBALLAZ_FLIGHTS}


def _control_points(cameras: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ground control points (east, north) -> height, from binned camera heights."""
    pts, vals = [], []
    lhs = cameras["comballaz-LHS"]
    for cell, source, rule in ((100.0, lhs, "lhs"), (150.0, cameras["sepey-2021-10-13-outofplace"], "low")):
        keys = np.floor(source[:, :2] / cell).astype(np.int64)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        up = source[:, 2]
        lo = np.full(len(uniq), np.inf)
        hi = np.full(len(uniq), -np.inf)
        np.minimum.at(lo, inv, up)
        np.maximum.at(hi, inv, up)
        if rule == "lhs":  # LHS = ground + 100..200 m
            v = 0.5 * ((lo - 100.0) + (hi - 200.0)) - GROUND_OFFSET_M
        else:  # a real flight: take-off and low passes sit a few tens of metres above ground
            v = lo - 30.0
        pts.append((uniq + 0.5) * cell)
        vals.append(v)
    return np.concatenate(pts), np.concatenate(vals)


def camera_ceiling(grid: Grid, cameras_n3: np.ndarray, clearance: float, ground: torch.Tensor, headroom: float = 40.0,
                   slope: float = 0.35, margin: float = 1.0) -> torch.Tensor:
    """Highest allowed surface: a cone of ``slope`` under every camera whose clearance is at risk.

    At a camera's foot the ceiling is ``clearance + margin`` below it and it rises by ``slope`` m
    per metre away from it. Only cameras less than ``clearance + headroom`` above ``ground`` can
    bind (headroom covers trees and buildings); each touches the nodes its cone can lower.

    Shape:
        cameras_n3: (N, 3) ENU, ground: (rows, cols) -> (rows, cols), ``inf`` where unconstrained
    """
    e = torch.as_tensor(cameras_n3[:, 0], dtype=torch.float32)
    n = torch.as_tensor(cameras_n3[:, 1], dtype=torch.float32)
    limit = cameras_n3[:, 2] - clearance - margin
    under = sample_grid(ground, grid, e, n).numpy()
    ceil = torch.full((grid.rows, grid.cols), math.inf)
    local_max = float(ground.max())
    binding = np.flatnonzero(under + headroom > limit)
    # cameras hovering at one spot (take-off, landing) bind once: keep the lowest per 4 m cell
    order = binding[np.argsort(limit[binding])]
    _, first = np.unique(np.round(cameras_n3[order, :2] / 4.0).astype(np.int64), axis=0, return_index=True)
    for k in order[np.sort(first)]:
        cx, cy, lim = float(cameras_n3[k, 0]), float(cameras_n3[k, 1]), float(limit[k])
        radius = max(grid.cell * 2, (min(under[k] + headroom + 60.0, local_max) - lim) / slope)
        j0 = max(0, int((cx - radius - grid.e_min) / grid.cell))
        j1 = min(grid.cols, int((cx + radius - grid.e_min) / grid.cell) + 2)
        i0 = max(0, int((cy - radius - grid.n_min) / grid.cell))
        i1 = min(grid.rows, int((cy + radius - grid.n_min) / grid.cell) + 2)
        ee = grid.e_min + torch.arange(j0, j1, dtype=torch.float32) * grid.cell - cx
        nn = grid.n_min + torch.arange(i0, i1, dtype=torch.float32) * grid.cell - cy
        cone = lim + slope * torch.sqrt(ee[None, :] ** 2 + nn[:, None] ** 2)
        window = ceil[i0:i1, j0:j1]
        torch.minimum(window, cone, out=window)
    return ceil


def comballaz_ground(grid: Grid, generator: torch.Generator,
                     cameras: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Comballaz ground heightfield (m, ENU up), its river distance field and its mountain mask.

    Returns:
        ``(ground, river_dist, mountain)``: ground heights, distance to the river axis (m, inf far
        away), and a [0, 1] weight that is 1 on the surrounding mountains.

    Shape:
        each (rows, cols) float32.
    """
    coarse = grid.coarsen(25)  # 50 m for a 2 m grid
    ce, cn = coarse.coords()
    pts, vals = _control_points(cameras)
    p = torch.as_tensor(pts, dtype=torch.float32)
    v = torch.as_tensor(vals, dtype=torch.float32)
    d2 = (ce.reshape(-1, 1) - p[:, 0]) ** 2 + (cn.reshape(-1, 1) - p[:, 1]) ** 2
    sigma = 180.0
    w = torch.exp(-d2 / (2 * sigma**2))
    design = torch.stack([torch.ones_like(v), p[:, 0] / 1000, p[:, 1] / 1000], 1)
    coef = torch.linalg.lstsq(design, v[:, None]).solution[:, 0]
    trend = coef[0] + coef[1] * ce.reshape(-1) / 1000 + coef[2] * cn.reshape(-1) / 1000
    w0 = 0.05
    base = ((w * v).sum(1) + w0 * trend) / (w.sum(1) + w0)
    r = torch.sqrt(d2.min(1).values)
    mountain = ((r - 500.0) / 2200.0).clamp(0, 1)
    mountain = mountain * mountain * (3 - 2 * mountain)
    base = base + 900.0 * mountain

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t.reshape(1, 1, coarse.rows, coarse.cols), size=(grid.rows, grid.cols), mode="bicubic",
                             align_corners=True)[0, 0]

    ground = up(base)
    mountain = up(mountain).clamp(0, 1)

    shape = (grid.rows, grid.cols)
    relief = fbm2d(shape, 500.0 / grid.cell, 7, generator)
    ridged = 1.0 - fbm2d(shape, 900.0 / grid.cell, 6, generator).abs()
    ground = ground + 22.0 * relief + mountain * (380.0 * ridged + 60.0 * relief)

    river = polyline_distance(grid, RIVER_ENU, 260.0)
    carve = torch.exp(-(river / 110.0) ** 2) * 14.0 + torch.exp(-(river / 18.0) ** 2) * 4.0
    ground = ground - torch.nan_to_num(carve, nan=0.0)
    return ground, river, mountain
