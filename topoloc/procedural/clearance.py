"""Where arbitrary pose rows can be rendered: the area their positions fall in, and their height above the surface.

The vendored presets are safe by construction (the world is shaped so that every preset camera
keeps :data:`~topoloc.procedural.terrain.CLEARANCE_M` of air). Pose files from anywhere else
(a corridor, a Latin hypercube, a user's plan) are checked here before anything is rendered.
"""

from __future__ import annotations

import numpy as np
import torch

from topoloc.geodesy import TOPO_ORIGINS, LocalFrame, check_ecef_near_surface
from topoloc.procedural.world import SUPPORTED_AREAS, WORLD_GRID, World, build_world

__all__ = ["area_of_positions", "clearance_m", "check_clearance", "MIN_CLEARANCE_M", "terrain_function"]

#: Default minimum height (m) of a camera above the rendered surface (ground, trees, buildings).
MIN_CLEARANCE_M = 2.0

#: Grid of each modelled area, in the ENU frame of the TOPO origin of the same name.
_AREA_GRIDS = {"comballaz": WORLD_GRID}

#: Distance (km) from a TOPO origin within which a position belongs to that origin's region.
_REGION_KM = 30.0


def _rows_list(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def area_of_positions(ecef_n3, source: str = "poses") -> str:
    """The Mini-Comballaz area that every position lies in; a clear error otherwise.

    Positions near the EPFL origin (EPFL, St-Sulpice) give the same error as those flights'
    names (that area is not modelled); positions in no known area give an error naming
    ``source`` and the rows outside.

    Args:
        ecef_n3: camera positions, ECEF metres.
        source: what the positions came from (a file name), for the error message.

    Shape:
        ecef_n3: (N, 3)
    """
    p = np.asarray(ecef_n3, dtype=np.float64).reshape(-1, 3)
    check_ecef_near_surface(p, source)
    for area, grid in _AREA_GRIDS.items():
        enu = LocalFrame.named(area).ecef_to_enu(p)
        inside = ((enu[:, 0] >= grid.e_min) & (enu[:, 0] <= grid.e_max)
                  & (enu[:, 1] >= grid.n_min) & (enu[:, 1] <= grid.n_max))
        if inside.all():
            return area
        if inside.any():
            raise ValueError(
                f"{source}: {int((~inside).sum())} position(s) outside the {area} area that the other rows are in "
                f"({_rows_list(np.flatnonzero(~inside))}; Mini-Comballaz models "
                f"east {grid.e_min:.0f}..{grid.e_max:.0f} m, north {grid.n_min:.0f}..{grid.n_max:.0f} m "
                f"of the {area} origin {TOPO_ORIGINS[area]}); expected every row in one area"
            )
    near = {name: float(np.linalg.norm(p.mean(0) - LocalFrame.named(name).origin_ecef)) / 1000.0
            for name in TOPO_ORIGINS}
    for name, km in near.items():
        if name not in SUPPORTED_AREAS and km < _REGION_KM:
            raise ValueError(
                f"{source}: the positions are {km:.1f} km from the {name} origin; Mini-Comballaz renders only the "
                "area around the Comballaz origin; the EPFL and St-Sulpice flights are in another area that is not "
                "modelled"
            )
    closest = min(near, key=near.__getitem__)
    raise ValueError(
        f"{source}: the positions lie in no area Mini-Comballaz renders (their mean is {near[closest]:.1f} km from "
        f"the {closest} origin {TOPO_ORIGINS[closest]}); expected ECEF positions within the modelled areas "
        f"{sorted(_AREA_GRIDS)}"
    )


def terrain_function(world: World):
    """The world's surface height as a numpy function ``(east_m, north_m) -> up_m`` (ENU of its area),
    e.g. for the ``ground_m`` argument of :func:`topoloc.data.pose_lhs.lhs_area`."""
    cpu = world.to("cpu")

    def ground_m(east_m, north_m):
        e = torch.as_tensor(np.asarray(east_m, dtype=np.float64).reshape(-1), dtype=torch.float32)
        n = torch.as_tensor(np.asarray(north_m, dtype=np.float64).reshape(-1), dtype=torch.float32)
        return cpu.height(e, n).double().numpy()

    return ground_m


def clearance_m(rows_n6, world: World | None = None, seed: int = 0) -> np.ndarray:
    """Height (m) of each camera above the rendered surface (ground, trees, buildings) below it.

    The surface is sampled bilinearly as the renderer sees it (:meth:`World.height`).

    Args:
        rows_n6: pose rows, ECEF m + Cesium deg (only the positions are used).
        world: the world to check against (default: ``build_world(seed)``, the Comballaz area).
        seed: world seed when ``world`` is None.

    Shape:
        rows_n6: (N, 6) -> (N,)
    """
    rows = np.asarray(rows_n6, dtype=np.float64)
    world = build_world(seed) if world is None else world
    enu = LocalFrame.named("comballaz").ecef_to_enu(rows[:, :3])
    surface = terrain_function(world)(enu[:, 0], enu[:, 1])
    return enu[:, 2] - surface


def check_clearance(rows_n6, world: World | None = None, seed: int = 0, min_clearance_m: float = MIN_CLEARANCE_M,
                    source: str = "poses") -> None:
    """Raises ValueError naming the rows whose camera is less than ``min_clearance_m`` above the surface.

    Args:
        rows_n6: pose rows, ECEF m + Cesium deg.
        world: the world (default: ``build_world(seed)``).
        seed: world seed when ``world`` is None.
        min_clearance_m: minimum height (m) above ground, trees and buildings.
        source: what the rows came from (a file name), for the error message.

    Shape:
        rows_n6: (N, 6)
    """
    h = clearance_m(rows_n6, world, seed)
    bad = np.flatnonzero(h < min_clearance_m)
    if bad.size:
        raise ValueError(
            f"{source}: {bad.size} camera(s) under the Mini-Comballaz surface or less than {min_clearance_m:g} m "
            f"above it (ground, trees, buildings): {_rows_list(bad)} (lowest {h[bad].min():.1f} m); expected every "
            "camera above the terrain. Drop those rows, or raise them (`topoloc poses corridor --min-clearance M` "
            "drops the views less than M m above the Mini-Comballaz surface as it samples)."
        )
