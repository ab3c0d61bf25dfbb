"""Fixtures for Mini-Comballaz tests: the seed-0 world (built once, cached on disk) and a flat world."""

import math

import pytest
import torch

from topoloc.data.semantics import MEADOW
from topoloc.procedural.terrain import Grid
from topoloc.procedural.world import World, build_world


@pytest.fixture(scope="session")
def world():
    return build_world(0)


def make_flat_world(height_m: float = 0.0, half_extent_m: float = 3000.0, cell_m: float = 20.0) -> World:
    """A horizontal plane at ``height_m`` over [-half, half]^2 ENU, meadow, no far mountains."""
    n = int(round(2 * half_extent_m / cell_m)) + 1
    grid = Grid(-half_extent_m, -half_extent_m, cell_m, n, n)
    surface = torch.full((n, n), float(height_m))
    normal = torch.zeros(3, n, n)
    normal[2] = 1.0
    ridge = torch.full((64,), -90.0)
    return World(
        seed=0, grid=grid, ground=surface.clone(), surface=surface,
        classes=torch.full((n, n), MEADOW, dtype=torch.uint8), tone=torch.full((n, n), 0.5),
        roof_tone=torch.zeros(n, n), normal=normal, cars=torch.zeros(n, n, dtype=torch.uint8),
        wires=torch.zeros(0, 2, 3), ridge_deg=ridge, ridge_sin=torch.sin(torch.deg2rad(ridge)),
        detail=torch.zeros(2, 16, 16), clouds=torch.zeros(16, 16), surface_max=float(height_m),
        surface_min=float(height_m),
    )


@pytest.fixture
def flat_world():
    return make_flat_world


def c2w_from_angles(east: float, north: float, up: float, yaw: float, pitch: float, roll: float = 0.0):
    """Camera-to-Comballaz-ENU pose (1, 4, 4) float32 through the Cesium convention of topoloc.geodesy."""
    import numpy as np

    from topoloc.geodesy import LocalFrame

    frame = LocalFrame.named("comballaz")
    ecef = frame.enu_to_ecef(np.array([[east, north, up]]))
    row = np.concatenate([ecef, [[yaw, pitch, roll]]], 1)
    return torch.as_tensor(frame.cesium_to_c2w(row), dtype=torch.float32)


@pytest.fixture
def c2w_from():
    return c2w_from_angles


_ = math
