"""The ray caster's depth maps follow TOPO's pinhole model, as `topoloc.data.geometry` reads them."""

from __future__ import annotations

import numpy as np
import torch

from topoloc.data.geometry import depth_to_points
from topoloc.geodesy import LocalFrame
from topoloc.procedural.renderer import cast_rays


def test_depth_of_the_ray_caster_matches_the_pinhole_model(flat_world):
    frame = LocalFrame.named("comballaz")
    world = flat_world(height_m=-50.0)
    ecef = frame.enu_to_ecef(np.array([[30.0, 10.0, 200.0]]))
    c2w = frame.cesium_to_c2w(np.concatenate([ecef, [[80.0, -55.0, 0.0]]], 1))[0]
    geom = cast_rays(world, torch.as_tensor(c2w[None], dtype=torch.float32), 48, 32)
    pts = depth_to_points(geom.depth[0].numpy(), c2w)
    hit = geom.hit[0]
    assert hit.float().mean() > 0.9
    # every hit lies on the plane (within the ray marcher's refinement), and east / north agree with
    # the ray caster's own hit points
    assert torch.allclose(pts[2][hit], torch.full_like(pts[2][hit], -50.0), atol=0.5)
    assert torch.allclose(pts[:2].permute(1, 2, 0)[hit], geom.points[0][hit][:, :2].float(), atol=0.5)
