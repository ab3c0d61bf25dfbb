"""Mini-Comballaz ray casting and appearance: geometry against hand-worked references, semantics."""

import math

import numpy as np
import pytest
import torch

from topoloc.data.preset import load_preset
from topoloc.geodesy import LocalFrame
from topoloc.procedural import RenderConfig, appearance_for_flight, bake, cast_rays, intrinsics, render
from topoloc.data.semantics import CLOUD, REAL_ONLY, RIDGELINE, SKY, SNOW

W, H = 96, 64
F_PX = 480.0 * W / 720.0


def _rays_np(c2w_44: np.ndarray) -> np.ndarray:
    """Ray directions d = R K^-1 [u, v, 1] (z_cam = 1) at pixel centres, written independently in numpy."""
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    cam = np.stack([(u - W / 2) / F_PX, (v - H / 2) / F_PX, np.ones_like(u)], -1)
    return cam @ c2w_44[:3, :3].T


def test_intrinsics_scale_topo_focal():
    K = intrinsics(360, 240)
    assert K[0, 0].item() == 240.0 and K[1, 1].item() == 240.0
    assert (K[0, 2].item(), K[1, 2].item()) == (180.0, 120.0)
    assert intrinsics(720, 480)[0, 0].item() == 480.0


@pytest.mark.parametrize("pitch", [-90.0, -45.0, -20.0])
def test_depth_over_a_flat_plane_matches_the_analytic_intersection(flat_world, c2w_from, pitch):
    world = make = flat_world(height_m=0.0)
    h = 120.0
    c2w = c2w_from(0.0, 0.0, h, 30.0, pitch)
    geom = cast_rays(world, c2w, W, H)
    d = _rays_np(c2w[0].double().numpy())
    s = h / -d[..., 2]  # plane z = 0: depth along the optical axis, since d has z_cam = 1
    pts = d * s[..., None]
    inside = (d[..., 2] < 0) & (np.abs(pts[..., :2]).max(-1) < 2900)
    depth = geom.depth[0].double().numpy()
    assert inside.mean() > 0.5
    np.testing.assert_allclose(depth[inside], s[inside], rtol=2e-3, atol=0.05)
    assert np.isinf(depth[d[..., 2] >= 0]).all()
    if pitch == -90.0:
        np.testing.assert_allclose(depth, h, atol=0.05)
    del make


def test_level_view_over_a_plane_has_its_horizon_where_the_plane_ends(flat_world, c2w_from):
    # a level camera 100 m above a plane that ends 3000 m ahead: rays that fall more slowly than
    # 100 / 3000 miss the plane, so the sky/ground boundary is f * 100 / 3000 = 2.1 px below the centre row
    world = flat_world(0.0, half_extent_m=3000.0)
    geom = cast_rays(world, c2w_from(0.0, 0.0, 100.0, 0.0, 0.0), W, H)
    hit = geom.hit[0]
    centre = hit[:, W // 2].numpy()
    boundary = int(np.argmax(centre))  # first ground row from the top
    expected = H / 2 + F_PX * 100.0 / 3000.0
    assert abs(boundary - expected) <= 1.0, (boundary, expected)
    assert not hit[: H // 2].any() and hit[-1].all()


def test_points_lie_on_the_surface_and_semantics_agree(world):
    frame = LocalFrame.named("comballaz")
    rows = load_preset("comballaz-2021-10-13-piloted")[::120]
    c2w = torch.as_tensor(frame.cesium_to_c2w(rows), dtype=torch.float32)
    geom = cast_rays(world, c2w, W, H)
    p = geom.points[geom.hit]
    err = (p[:, 2] - world.height(p[:, 0], p[:, 1])).abs()
    assert (err > 0.5).float().mean() < 0.02  # on the surface to half a metre, but for a few silhouettes
    # the ray crosses the surface there: above it a little before the hit, below it a little after
    u = geom.dirs[geom.hit]
    delta = (0.5 + 0.003 * geom.ray_dist[geom.hit])[:, None]
    before, after = p - delta * u, p + delta * u
    above = before[:, 2] >= world.height(before[:, 0], before[:, 1]) - 0.05
    below = after[:, 2] <= world.height(after[:, 0], after[:, 1]) + 0.05
    assert (above & below).float().mean() > 0.98  # (grazing rays over tree crowns: a few misplaced by a crown)
    bakes = {"synthetic": bake(world, appearance_for_flight("comballaz-LHS", "synthetic"))}
    out = render(world, bakes, c2w, {"synthetic": torch.arange(len(rows))}, W, H)
    sem = out["synthetic"][1]
    assert torch.all((sem == SKY) == ((geom.far_class == SKY)))
    # a sky pixel's ray points above the horizontal or misses the whole world
    assert torch.all(geom.dirs[..., 2][sem == SKY] > -0.2)


def test_pitch_minus_90_sees_no_sky_and_a_level_view_does(world, c2w_from):
    frame = LocalFrame.named("comballaz")
    enu = frame.cesium_to_c2w(load_preset("comballaz-2020-11-06-planned")[::60])[:, :3, 3]
    c2w = torch.cat([c2w_from(*p, yaw=10.0 * k, pitch=-90.0) for k, p in enumerate(enu)])
    geom = cast_rays(world, c2w, W, H)
    assert geom.hit.all()
    assert not (geom.far_class == SKY).any()
    level = torch.cat([c2w_from(*p, yaw=45.0 * k, pitch=0.0) for k, p in enumerate(enu)])
    g2 = cast_rays(world, level, W, H)
    top, bottom = g2.far_class[:, 0], g2.far_class[:, -1]
    assert ((top == SKY) | (top == RIDGELINE)).float().mean() > 0.9  # open sky or distant mountains above
    assert (g2.hit[:, -1]).all()  # ground below
    assert (bottom == 255).all()  # and near ground, within RIDGE_DISTANCE_M: neither sky nor the far mountains
    assert (g2.far_class[:, : H // 2 - 8] == SKY).any()


def test_moving_the_camera_10_m_changes_the_image(world, c2w_from):
    bakes = {"synthetic": bake(world, appearance_for_flight("comballaz-LHS", "synthetic"))}
    a = c2w_from(400.0, 500.0, 250.0, 20.0, -70.0)
    b = c2w_from(410.0, 500.0, 250.0, 20.0, -70.0)
    out = render(world, bakes, torch.cat([a, b]), {"synthetic": torch.tensor([1, 1])}, W, H)
    img = out["synthetic"][0].float()
    assert (img[0] - img[1]).abs().mean() > 3.0


def test_real_and_synthetic_differ_but_share_geometry(world):
    frame = LocalFrame.named("comballaz")
    flight = "comballaz-2021-03-27-winter"
    rows = load_preset(flight)[::130]
    c2w = torch.as_tensor(frame.cesium_to_c2w(rows), dtype=torch.float32)
    bakes = {d: bake(world, appearance_for_flight(flight, d)) for d in ("synthetic", "real")}
    keys = {d: torch.arange(len(rows)) + 7 for d in bakes}
    out = render(world, bakes, c2w, keys, W, H)
    (syn, sem_s), (real, sem_r) = out["synthetic"], out["real"]
    assert (syn.float() - real.float()).abs().mean() > 15.0  # a real gap, not a copy
    changed = sem_s != sem_r
    allowed = (SKY, CLOUD, SNOW, REAL_ONLY)
    assert torch.isin(sem_r[changed], torch.tensor(allowed, dtype=torch.uint8)).all()
    assert (sem_r == SNOW).float().mean() > 0.05  # March: snow on open ground


def test_appearance_follows_the_flight_date():
    assert appearance_for_flight("comballaz-2020-11-06-planned", "real").season == "autumn"
    assert appearance_for_flight("comballaz-2021-10-13-piloted", "real").season == "early_autumn"
    assert appearance_for_flight("comballaz-2021-03-27-winter", "real").snow > 0
    assert appearance_for_flight("comballaz-2021-03-27-winter", "synthetic").season == "summer"
    # the sun is lower in November than in October at the same hour
    nov = appearance_for_flight("comballaz-2020-11-06-planned", "real").sun_elevation_deg
    octo = appearance_for_flight("comballaz-2021-10-13-piloted", "real").sun_elevation_deg
    assert nov < octo < 45.0


def test_sun_position_matches_the_noon_formula():
    from topoloc.procedural import sun_position

    # at solar noon the elevation is 90 - latitude + declination; on the June solstice the
    # declination is +23.44 deg and the sun stands due south
    az, el = sun_position(6, 21, solar_hour=12.0, lat_deg=46.37)
    assert el == pytest.approx(90 - 46.37 + 23.44, abs=0.3)
    assert az == pytest.approx(180.0, abs=1e-6)


def test_render_config_validation():
    with pytest.raises(ValueError, match="far_m"):
        RenderConfig(far_m=10.0)
    _ = math


@pytest.mark.gpu
def test_cuda_render_matches_cpu(world):
    frame = LocalFrame.named("comballaz")
    flight = "comballaz-2020-11-06-planned"
    rows = load_preset(flight)[::90]
    c2w = torch.as_tensor(frame.cesium_to_c2w(rows), dtype=torch.float32)
    keys = {d: torch.arange(len(rows)) for d in ("synthetic", "real", "real_alt")}
    bakes = {d: bake(world, appearance_for_flight(flight, d)) for d in keys}
    cpu = render(world, bakes, c2w, keys, W, H)
    gpu_world = world.to("cuda")
    gpu = render(gpu_world, {d: b.to("cuda") for d, b in bakes.items()}, c2w.cuda(),
                 {d: k.cuda() for d, k in keys.items()}, W, H)
    for d in keys:
        same = (gpu[d][1].cpu() == cpu[d][1]).float().mean()
        assert same > 0.99, (d, same)
        assert (gpu[d][0].cpu().float() - cpu[d][0].float()).abs().mean() < 2.0


def test_power_line_is_drawn_only_in_real_images(world, c2w_from):
    from topoloc.data.semantics import REAL_ONLY

    a, b = world.wires[10].double().numpy()
    mid = (a + b) / 2
    along = (b - a)[:2] / np.linalg.norm((b - a)[:2])
    cam = mid + 90.0 * np.array([-along[1], along[0], 0.0]) + np.array([0.0, 0.0, 15.0])
    view = mid - cam
    yaw = math.degrees(math.atan2(view[0], view[1]))
    pitch = math.degrees(math.atan2(view[2], math.hypot(view[0], view[1])))
    c2w = c2w_from(*cam, yaw, pitch)
    flight = "comballaz-2020-11-06-planned"
    bakes = {d: bake(world, appearance_for_flight(flight, d)) for d in ("synthetic", "real")}
    out = render(world, bakes, c2w, {d: torch.tensor([3]) for d in bakes}, 180, 120)
    wire = out["real"][1] == REAL_ONLY
    assert wire.sum() > 50  # cables crossing the view
    assert not (out["synthetic"][1] == REAL_ONLY).any()
    # cables are dark
    assert out["real"][0][0][:, wire[0]].float().mean() < out["real"][0].float().mean()


def test_bake_refuses_a_world_off_the_cpu(world):
    # the bake is made on the CPU and moved (`Bake.to`); a world already moved to a device is refused
    # by name instead of failing on mixed devices halfway ("meta" stands in for a GPU here)
    with pytest.raises(ValueError, match="expected the world on the CPU"):
        bake(world.to("meta"), appearance_for_flight("comballaz-LHS", "synthetic"))
