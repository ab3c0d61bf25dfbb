"""Mini-Comballaz appearance against independent references (the sun's position from another formula,
shading and projections worked by hand on flat worlds): gaps found by mutation testing."""

import math

import numpy as np
import torch

from topoloc.data.semantics import REAL_ONLY
from topoloc.procedural import Appearance, bake, render


# --- shade: power lines ----------------------------------------------------------------------------------------------

def _pinhole(c2w_44: np.ndarray, point_3: np.ndarray, width: int, height: int) -> tuple[int, int, float]:
    """Pixel (column, row) and depth of an ENU point: OpenCV camera axes, TOPO's focal 480 px at 720 px wide."""
    f = 480.0 * width / 720.0
    x, y, z = c2w_44[:3, :3].T @ (point_3 - c2w_44[:3, 3])
    return math.floor(f * x / z + width / 2), math.floor(f * y / z + height / 2), z


def test_a_power_line_is_drawn_where_the_pinhole_camera_sees_it(flat_world, c2w_from):
    """A 10 cm length of cable 30 m above a flat world, seen from an oblique camera in a 48x40 image (not TOPO's
    3:2): the pixels labelled REAL_ONLY are exactly the ones its ends project to."""
    W, H = 48, 40
    world = flat_world(0.0, 600.0, 10.0)
    c2w = c2w_from(0.0, 0.0, 100.0, 30.0, -60.0)
    centre = np.array([30.0, 15.0, 30.0])
    ends = np.stack([centre - [0.05, 0.0, 0.0], centre + [0.05, 0.0, 0.0]])
    pixels = {_pinhole(c2w[0].double().numpy(), p, W, H)[:2] for p in ends}
    assert pixels == {(31, 24)}  # x / z * f + W / 2 = 31.93, y / z * f + H / 2 = 24.61 (f = 32 px, z = 74.6 m)
    (u, v), = pixels
    world.wires = torch.tensor(ends, dtype=torch.float32)[None]
    bakes = {"real": bake(world, Appearance("real", "summer", 180.0, 30.0))}
    keys = {"real": torch.tensor([0])}
    sem = render(world, bakes, c2w, keys, W, H, real_camera=False)["real"][1][0]
    assert torch.nonzero(sem == REAL_ONLY).tolist() == [[v, u]]
    world.wires = world.wires - torch.tensor([0.0, 0.0, 40.0])  # 10 m under the ground: hidden
    sem = render(world, bakes, c2w, keys, W, H, real_camera=False)["real"][1][0]
    assert not (sem == REAL_ONLY).any()
