"""The Mini-Comballaz world: terrain, land cover, real-only objects and far ridgelines for a seed."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topoloc._tempfiles import remove_stale_writes, write_atomically
from topoloc.procedural._noise import fbm1d_periodic, fbm2d
from topoloc.procedural.landcover import build_landcover
from topoloc.procedural.terrain import (
    CLEARANCE_M,
    Grid,
    camera_ceiling,
    comballaz_cameras_enu,
    comballaz_ground,
    max_mipmap,
    sample_grid,
    smooth_min,
)

__all__ = ["World", "build_world", "SUPPORTED_AREAS", "area_of_flight", "WORLD_GRID"]

#: The Comballaz world grid: 2 m cells over [-3200, 3600] m east and north of the Comballaz origin.
WORLD_GRID = Grid(e_min=-3200.0, n_min=-3200.0, cell=2.0, rows=3401, cols=3401)

#: Areas Mini-Comballaz can render, and the flight name prefixes that belong to them.
SUPPORTED_AREAS = {"comballaz": ("comballaz-", "sepey-")}


def area_of_flight(flight: str) -> str:
    """The world area a flight preset belongs to; a clear error for the ones not rendered."""
    for area, prefixes in SUPPORTED_AREAS.items():
        if flight.startswith(prefixes):
            return area
    raise ValueError(
        f"flight {flight!r}: Mini-Comballaz renders only the flights around the Comballaz origin "
        f"(names starting with {[p for v in SUPPORTED_AREAS.values() for p in v]}); the EPFL and St-Sulpice "
        "flights are in another area that is not modelled"
    )


@dataclass
class World:
    """A rendered area: everything the renderer samples, as tensors on one device.

    Attributes:
        seed: world seed.
        grid: the terrain grid (ENU metres of the area's local frame).
        ground: terrain heights (rows, cols), m ENU up.
        surface: ground + objects (buildings, trees): what rays hit, (rows, cols) m.
        classes: land-cover class ids (rows, cols) uint8 (see SEMANTIC_CLASSES).
        tone: [0, 1] colour variation (rows, cols); roof_tone: [0, 1] for buildings.
        normal: unit surface normals (3, rows, cols) in ENU.
        cars: real-only car colour index + 1 per cell (0 = none), (rows, cols) uint8.
        wires: power line segments (S, 2, 3) ENU metres (real only).
        ridge_deg: elevation (deg) of the far mountains over azimuth (R,), azimuth 0 = north, clockwise.
        detail: (2, T, T) tileable fine texture noise in [-1, 1] (both layers read at 0.25 m texels by
            `topoloc.procedural.appearance.shade`: a repeat of about 64 m on the ground).
        clouds: (T, T) tileable cloud density noise in [-1, 1].
        surface_max: max of surface (m), surface_min: min.
    """

    seed: int
    grid: Grid
    ground: torch.Tensor
    surface: torch.Tensor
    classes: torch.Tensor
    tone: torch.Tensor
    roof_tone: torch.Tensor
    normal: torch.Tensor
    cars: torch.Tensor
    wires: torch.Tensor
    ridge_deg: torch.Tensor
    detail: torch.Tensor
    clouds: torch.Tensor
    ridge_sin: torch.Tensor
    surface_max: float = 0.0
    surface_min: float = 0.0
    _on: dict = field(default_factory=dict, repr=False)
    _mip: tuple = field(default=(), repr=False)

    @property
    def device(self) -> torch.device:
        return self.surface.device

    def to(self, device) -> "World":
        """This world on ``device`` (cached: repeated calls return the same object)."""
        device = torch.device(device)
        if device == self.device:
            return self
        key = str(device)
        if key not in self._on:
            moved: dict[str, Any] = {k: v.to(device) for k, v in self.__dict__.items() if isinstance(v, torch.Tensor)}
            self._on[key] = replace(self, **moved, _on={}, _mip=())
        return self._on[key]

    def max_mipmap(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The surface's maximum mipmap (`topoloc.procedural.terrain.max_mipmap`), built once per world and device,
        and again when ``surface`` is replaced or changed in place."""
        key = (id(self.surface), self.surface._version)  # a surface replaced or changed in place is built anew
        if not self._mip or self._mip[0] != key:
            self._mip = (key, max_mipmap(self.surface))
        return self._mip[1]

    def height(self, east: torch.Tensor, north: torch.Tensor) -> torch.Tensor:
        """Surface height (m) at ENU points, bilinear as the renderer sees it. Shape: (N,) -> (N,)."""
        return sample_grid(self.surface, self.grid, east, north)


def _tile(generator: torch.Generator, size: int, cells: float, octaves: int) -> torch.Tensor:
    """A tileable noise tile: fBm on a larger canvas, cross-faded at the wrap.

    The texture sampler wraps with a period of ``size - 1`` texels (its last row and column are its first), so
    each texel blends the canvas at (x, y) and its copies one period on in x, in y and in both, with weights that
    ramp from 0 to 1 across the tile: the first and last rows (and columns) get the same values.
    """
    big = fbm2d((size * 2, size * 2), cells, octaves, generator)
    p = size - 1

    def at(y: int, x: int) -> torch.Tensor:
        return big[y : y + size, x : x + size]

    w = torch.linspace(0, 1, size)
    wy, wx = w[:, None], w[None, :]
    tile = wy * wx * at(0, 0) + wy * (1 - wx) * at(0, p) + (1 - wy) * wx * at(p, 0) + (1 - wy) * (1 - wx) * at(p, p)
    # blending independent noise lowers its contrast towards the middle: keep it as the canvas's
    tile = tile / torch.sqrt((wx**2 + (1 - wx) ** 2) * (wy**2 + (1 - wy) ** 2))
    return tile.clamp(-1, 1)


def _power_line(rng: np.random.Generator, grid: Grid, surface: torch.Tensor) -> torch.Tensor:
    """Two sagging cables on pylons 30 m high across the valley: segments (S, 2, 3) ENU."""
    start = np.array([rng.uniform(-300, 100), rng.uniform(900, 1300)])
    end = np.array([rng.uniform(900, 1200), rng.uniform(-150, 250)])
    n_span = int(np.ceil(np.linalg.norm(end - start) / 260.0))
    towers = start + np.linspace(0, 1, n_span + 1)[:, None] * (end - start)
    e = torch.as_tensor(towers[:, 0], dtype=torch.float32)
    n = torch.as_tensor(towers[:, 1], dtype=torch.float32)
    tops = (sample_grid(surface, grid, e, n) + 30.0).numpy()
    direction = (end - start) / np.linalg.norm(end - start)
    side = np.array([-direction[1], direction[0]])
    segs = []
    for off in (-3.5, 3.5):
        pts = []
        for k in range(n_span):
            a = np.r_[towers[k] + off * side, tops[k]]
            b = np.r_[towers[k + 1] + off * side, tops[k + 1]]
            for t in np.linspace(0, 1, 5)[:-1]:  # a parabola through 4 chords per span
                p = a + t * (b - a)
                p[2] -= 14.0 * 4 * t * (1 - t)
                pts.append(p)
        pts.append(np.r_[towers[-1] + off * side, tops[-1]])
        segs += [(pts[i], pts[i + 1]) for i in range(len(pts) - 1)]
    return torch.as_tensor(np.array(segs), dtype=torch.float32)


#: Bumped whenever the world built for a seed changes (invalidates the disk cache).
WORLD_VERSION = "7"

_SAVED = ("ground", "surface", "classes", "tone", "roof_tone", "normal", "cars", "wires", "ridge_deg", "ridge_sin",
          "detail", "clouds")


def _cache_path(seed: int, area: str) -> Path | None:
    if os.environ.get("TOPOLOC_NO_CACHE"):
        return None
    root = Path(os.environ.get("TOPOLOC_CACHE_DIR", Path.home() / ".cache" / "topoloc"))
    # keyed by the torch release too: another release's interpolation and least squares round differently (terrain
    # heights a few mm apart, a few land-cover cells moved), and a world it built must not stand in for this one's
    release = torch.__version__.split("+")[0]
    return root / "mini_comballaz" / f"world-{area}-v{WORLD_VERSION}-seed{seed}-torch{release}.pt"


@lru_cache(maxsize=2)
def build_world(seed: int = 0, area: str = "comballaz") -> World:
    """Builds the world of ``area`` for ``seed`` on the CPU (cached per process and on disk).

    Building takes 10-20 s on two CPU cores; the result is kept in ``$TOPOLOC_CACHE_DIR``
    (default ``~/.cache/topoloc``) unless ``TOPOLOC_NO_CACHE`` is set, and loaded from there next time.

    Every camera of the Comballaz presets keeps at least ``CLEARANCE_M`` of air above the surface
    (ground, trees and buildings) below it.

    Args:
        seed: world seed; the same seed gives the same world, bit for bit under one torch release (other
            releases round a few millimetres of terrain differently; the random draws are alike on all).
        area: ``"comballaz"`` (the only area modelled).
    """
    if area not in SUPPORTED_AREAS:
        raise ValueError(f"area: expected one of {sorted(SUPPORTED_AREAS)}, got {area!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    path = _cache_path(seed, area)
    if path is not None and path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            return World(seed=seed, grid=WORLD_GRID, surface_max=float(state["surface"].max()),
                         surface_min=float(state["surface"].min()), **{k: state[k] for k in _SAVED})
        except Exception:  # a damaged cache file: rebuild it
            pass
    world = _build(seed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a writer killed half-way left its partial file (up to 348 MB) under a name nothing removed
            remove_stale_writes(path.parent, path.name)
            write_atomically(path, lambda tmp: torch.save({k: getattr(world, k) for k in _SAVED}, tmp))
        except OSError:  # a full disk or a read-only cache: the world is used uncached (its file removed)
            pass
    return world


def _build(seed: int) -> World:
    generator = torch.Generator().manual_seed(seed)
    grid = WORLD_GRID
    cameras = comballaz_cameras_enu()
    ground, river, mountain = comballaz_ground(grid, generator, cameras)
    cover = build_landcover(grid, ground, river, mountain, generator)

    # every preset camera keeps CLEARANCE_M of air: lower the ground, then drop objects that poke up
    all_cams = np.concatenate(list(cameras.values()))
    ceiling = camera_ceiling(grid, all_cams, CLEARANCE_M, ground)
    ground = smooth_min(ground, ceiling, 6.0)
    objects = cover["objects"]
    objects = torch.where(ground + objects > ceiling, (ceiling - ground).clamp_min(0.0), objects)
    classes = cover["classes"]
    surface = ground + objects

    gy, gx = torch.gradient(surface, spacing=grid.cell)
    normal = torch.stack([-gx, -gy, torch.ones_like(gx)])
    normal = normal * torch.rsqrt((normal * normal).sum(0, keepdim=True))

    rng = np.random.default_rng(seed + 7919)
    cars = torch.zeros(grid.rows, grid.cols, dtype=torch.uint8)
    for e, n, heading, colour in cover["cars"]:
        j, i = int(round((e - grid.e_min) / grid.cell)), int(round((n - grid.n_min) / grid.cell))
        dj, di = (0, 1) if abs(math.cos(heading)) > 0.7 else ((1, 0) if abs(math.sin(heading)) > 0.7 else (1, 1))
        if 0 < i < grid.rows - 2 and 0 < j < grid.cols - 2:
            cars[i, j] = cars[i + di, j + dj] = colour + 1
    wires = _power_line(rng, grid, surface)

    broad = fbm1d_periodic(2048, 6, generator, base_cycles=4)
    peaks = fbm1d_periodic(2048, 5, generator, base_cycles=24)
    ridge_deg = 6.5 + 4.5 * broad + 4.0 * (1.0 - peaks.abs() * 2.5).clamp_min(0) ** 2 + 1.5 * peaks
    detail = torch.stack([_tile(generator, 256, 6.0, 4), _tile(generator, 256, 24.0, 4)])
    clouds = _tile(generator, 512, 96.0, 6)
    world = World(
        seed=seed, grid=grid, ground=ground.contiguous(), surface=surface.contiguous(), classes=classes,
        tone=cover["tone"], roof_tone=cover["roof_tone"], normal=normal.contiguous(), cars=cars, wires=wires,
        ridge_deg=ridge_deg, ridge_sin=torch.sin(torch.deg2rad(ridge_deg)), detail=detail, clouds=clouds,
        surface_max=float(surface.max()), surface_min=float(surface.min()),
    )
    return world
