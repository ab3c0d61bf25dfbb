"""Mini-Comballaz ray caster against independent references (pinhole rays, ray-plane intersections and a
brute-force march written here): gaps found by mutation testing."""

import math

import numpy as np
import pytest
import torch

import topoloc.procedural.renderer as renderer_module
from topoloc.data.semantics import MEADOW, RIDGELINE, SKY
from topoloc.procedural.renderer import RIDGE_DISTANCE_M, camera_rays, cast_rays, render
from topoloc.procedural.terrain import Grid
from topoloc.procedural.world import World


def _plane_world(grid: Grid, h0: float, slope_e: float, slope_n: float) -> World:
    """The plane h = h0 + slope_e * east + slope_n * north (m) on ``grid`` (bilinear sampling is exact on it)."""
    ee, nn = grid.coords()
    surface = h0 + slope_e * ee + slope_n * nn
    normal = torch.stack([torch.full_like(ee, -slope_e), torch.full_like(ee, -slope_n), torch.ones_like(ee)])
    normal = normal / normal.norm(dim=0, keepdim=True)
    shape = (grid.rows, grid.cols)
    ridge = torch.full((64,), -90.0)
    return World(
        seed=0, grid=grid, ground=surface.clone(), surface=surface,
        classes=torch.full(shape, MEADOW, dtype=torch.uint8), tone=torch.full(shape, 0.5), roof_tone=torch.zeros(shape),
        normal=normal, cars=torch.zeros(shape, dtype=torch.uint8),
        wires=torch.zeros(0, 2, 3), ridge_deg=ridge, ridge_sin=torch.sin(torch.deg2rad(ridge)),
        detail=torch.zeros(2, 16, 16), clouds=torch.zeros(16, 16),
        surface_max=float(surface.max()), surface_min=float(surface.min()),
    )


def _rays(c2w_44: np.ndarray, width: int, height: int) -> np.ndarray:
    """d = R K^-1 [u, v, 1] at pixel centres, f = 480 px at TOPO's 720 px width, principal point at the centre."""
    f = 480.0 * width / 720.0
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    cam = np.stack([(u - width / 2) / f, (v - height / 2) / f, np.ones_like(u)], -1)
    return cam @ c2w_44[:3, :3].T


def test_camera_rays_with_a_stride_pass_through_block_centres():
    W, H, stride = 8, 6, 2
    f = 480.0 * W / 720.0
    _, d = camera_rays(torch.eye(4)[None], W, H, stride=stride)
    assert d.shape == (1, 3, 4, 3)
    # block (row 1, col 2) covers pixels 2..3 down and 4..5 across: its centre is (u, v) = (5, 3)
    np.testing.assert_allclose(d[0, 1, 2].numpy(), [(5.0 - W / 2) / f, (3.0 - H / 2) / f, 1.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d[0, 0, 0].numpy(), [(1.0 - W / 2) / f, (1.0 - H / 2) / f, 1.0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("up, yaw, pitch", [(420.0, 30.0, -60.0), (420.0, 200.0, -35.0), (420.0, 290.0, -80.0),
                                             (220.0, 180.0, 2.0)])  # the last looks up a rising slope
def test_depth_on_a_tilted_plane_over_an_off_centre_oblong_grid(c2w_from, up, yaw, pitch):
    """East and north span different ranges (2000 m by 1200 m, neither centred on 0): a ray must find the
    plane where it is, h0 + a e + b n = oz + s dz, so s = (h0 + a ox + b oy - oz) / (dz - a dx - b dy)."""
    grid = Grid(e_min=500.0, n_min=-1500.0, cell=10.0, rows=121, cols=201)
    h0, a, b = 20.0, 0.06, -0.1
    world = _plane_world(grid, h0, a, b)
    W, H = 48, 32
    c2w = c2w_from(1500.0, -900.0, up, yaw, pitch)  # the plane is 200 m high below the camera, 80..320 m in all
    geom = cast_rays(world, c2w, W, H)
    o = c2w[0, :3, 3].double().numpy()
    d = _rays(c2w[0].double().numpy(), W, H)
    s = (h0 + a * o[0] + b * o[1] - o[2]) / (d[..., 2] - a * d[..., 0] - b * d[..., 1])
    pts = o + s[..., None] * d
    inside = (s > 0) & (pts[..., 0] > grid.e_min + 20) & (pts[..., 0] < grid.e_max - 20) \
        & (pts[..., 1] > grid.n_min + 20) & (pts[..., 1] < grid.n_max - 20)
    assert inside.mean() > 0.3
    depth = geom.depth[0].double().numpy()
    assert geom.hit[0].numpy()[inside].all()
    # the height above the plane is linear along a ray, so the false-position step lands on it (to float32 rounding)
    np.testing.assert_allclose(depth[inside], s[inside], rtol=1e-5)
    np.testing.assert_allclose(geom.points[0].double().numpy()[inside], pts[inside], atol=0.5)


@pytest.mark.parametrize("W, H", [(36, 20), (44, 30)])
def test_every_pixel_sees_the_plane_below_when_the_block_size_does_not_divide_the_image(flat_world, c2w_from, W, H):
    # looking straight down from 150 m: every ray meets the plane at depth 150 m, the last rows and columns
    # (outside the whole 16 px blocks whose cone sets the rays' start) too
    geom = cast_rays(flat_world(0.0), c2w_from(0.0, 0.0, 150.0, 0.0, -90.0), W, H)
    assert geom.hit.all()
    np.testing.assert_allclose(geom.depth[0].numpy(), 150.0, rtol=1e-3)


def _gap(surface: np.ndarray, grid: Grid, o: np.ndarray, d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Height (m) of each ray above the bilinear surface at depths ``s``, inf off the grid (nothing is hit there).

    Shape: d (N, 3), s (N, K) -> (N, K)
    """
    p = o + s[..., None] * d[:, None, :]
    x = np.clip((p[..., 0] - grid.e_min) / grid.cell, 0, grid.cols - 1.000001)
    y = np.clip((p[..., 1] - grid.n_min) / grid.cell, 0, grid.rows - 1.000001)
    j, i = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - j, y - i
    h = (surface[i, j] * (1 - fx) * (1 - fy) + surface[i, j + 1] * fx * (1 - fy)
         + surface[i + 1, j] * (1 - fx) * fy + surface[i + 1, j + 1] * fx * fy)
    outside = ((p[..., 0] < grid.e_min) | (p[..., 0] > grid.e_max)
               | (p[..., 1] < grid.n_min) | (p[..., 1] > grid.n_max))
    return np.where(outside, np.inf, p[..., 2] - h)


def _first_crossing(surface: np.ndarray, grid: Grid, o: np.ndarray, d: np.ndarray, s_max: float,
                    ds: float = 0.2) -> np.ndarray:
    """Brute force: each ray sampled every ``ds`` m of depth against the bilinear surface, then bisected.

    Shape: d (N, 3) -> (N,) depth of the first crossing, inf where none before ``s_max``.
    """
    s = np.arange(0.5, s_max, ds)[None, :].repeat(len(d), 0)
    below = _gap(surface, grid, o, d, s) <= 0
    found = below.any(1)
    k = np.maximum(below.argmax(1), 1)
    lo, hi = s[np.arange(len(d)), k - 1], s[np.arange(len(d)), k]
    for _ in range(30):
        mid = (lo + hi) / 2
        up = _gap(surface, grid, o, d, mid[:, None])[:, 0] > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return np.where(found, (lo + hi) / 2, np.inf)


def _assert_first_crossings(got: np.ndarray, surface: np.ndarray, grid: Grid, o: np.ndarray, d: np.ndarray,
                            s_max: float) -> int:
    """``got`` (N,) is each ray's first crossing: on the surface, and with nothing crossed before it by a brute-force
    march; where the march finds none or a later one, ``got`` must be a graze the march stepped over (a sliver under
    20 cm of ray), so it is checked on the surface. Returns the number of such grazes."""
    expected = _first_crossing(surface, grid, o, d, s_max)
    finite = np.isfinite(got)
    assert (finite | np.isinf(expected)).all(), "a crossing the brute-force march found was missed"
    np.testing.assert_array_less(got[np.isfinite(expected)], expected[np.isfinite(expected)] + 0.05)
    on = np.abs(_gap(surface, grid, o, d[finite], got[finite][:, None])[:, 0])
    np.testing.assert_array_less(on, 0.01 + 1e-4 * got[finite])  # on the surface (float32 depths)
    both = finite & np.isfinite(expected)
    same = np.abs(got[both] - expected[both]) <= np.maximum(0.05, 1e-3 * expected[both])
    return int(finite.sum() - same.sum())


def test_rays_grazing_a_ridge_stop_at_its_first_crossing(c2w_from):
    """A 30 m tent-shaped ridge (north-south, 20 m wide at its foot) on a plane, seen from 100 m before it: rays
    over and under its crest, whose neighbours may see the plane behind it or the ridge, must stop where a
    brute-force march (every 20 cm) first meets the surface."""
    grid = Grid(e_min=-200.0, n_min=-200.0, cell=2.0, rows=201, cols=201)
    ee, _ = grid.coords()
    world = _plane_world(grid, 0.0, 0.0, 0.0)
    world.surface = (30.0 - 3.0 * ee.abs()).clamp_min(0.0)  # crest along east = 0
    world.surface_max, world.surface_min = 30.0, 0.0
    W, H = 32, 24
    c2w = c2w_from(-100.0, 0.0, 45.0, 90.0, -12.0)
    geom = cast_rays(world, c2w, W, H)
    o = c2w[0, :3, 3].double().numpy()
    d = _rays(c2w[0].double().numpy(), W, H).reshape(-1, 3)
    got = geom.depth[0].double().numpy().reshape(-1)
    on_ridge = np.isfinite(got) & (got < 110.0)
    assert 0.2 < on_ridge.mean() < 0.8  # the ridge and the plane beyond it both in view
    # rays within 2 m of the crest (east = 0, 30 m up) cut a sliver of ridge that the two-pass march of before
    # 2026-12-07 stepped over; they are checked too
    crest_z = o[2] + (0.0 - o[0]) / d[:, 0] * d[:, 2]
    assert (np.abs(crest_z - 30.0) < 2.0).sum() >= 10
    assert _assert_first_crossings(got, world.surface.double().numpy(), grid, o, d, s_max=400.0) <= 3


def test_posts_seen_by_a_few_pixels_each_are_hit_as_a_dense_march_hits_them(c2w_from):
    """Thin posts (one grid node raised 25 m: a 4 m wide spike under bilinear interpolation) scattered over a plane,
    seen obliquely from 40 m up: each covers a pixel or two, between the rays a coarse pass would sample, and the
    sides of the taller ones hide the ground behind them. Every pixel must stop where a brute-force march (every
    20 cm) first meets the surface."""
    grid = Grid(e_min=-400.0, n_min=-400.0, cell=2.0, rows=401, cols=401)
    world = _plane_world(grid, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(3)
    surface = torch.zeros(grid.rows, grid.cols)
    i, j = rng.integers(200, 330, 120), rng.integers(60, 340, 120)  # north 0..260 m, east -280..280 m
    surface[torch.as_tensor(i), torch.as_tensor(j)] = torch.as_tensor(rng.uniform(10.0, 25.0, 120), dtype=torch.float32)
    world.surface = surface
    world.surface_max, world.surface_min = float(surface.max()), 0.0
    W, H = 48, 32
    c2w = c2w_from(0.0, -60.0, 40.0, 0.0, -15.0)  # looking north over the posts
    geom = cast_rays(world, c2w, W, H)
    o = c2w[0, :3, 3].double().numpy()
    d = _rays(c2w[0].double().numpy(), W, H).reshape(-1, 3)
    got = geom.depth[0].double().numpy().reshape(-1)
    plane = o[2] / -d[:, 2]  # where the ground plane alone would be met (negative: never)
    on_post = np.isfinite(got) & (got < np.where(plane > 0, plane, np.inf) - 1.0)
    assert 20 <= on_post.sum() < 0.2 * W * H  # posts in view, a few pixels each
    assert _assert_first_crossings(got, surface.double().numpy(), grid, o, d, s_max=700.0) <= 3


def test_posts_past_the_float32_whole_numbers_of_a_large_mipmap_are_hit(c2w_from):
    """A 3601 x 3601 node grid: its maximum mipmap holds 17.3 M values, past 2^24 (16.8 M), from where float32 no
    longer holds every whole number, so the flat indices of the coarse levels' blocks in the grid's north would round
    to a neighbour's. Posts there, seen from 40 m up, must stop each pixel where a brute-force march does."""
    grid = Grid(e_min=0.0, n_min=0.0, cell=2.0, rows=3601, cols=3601)
    world = _plane_world(grid, 0.0, 0.0, 0.0)
    assert world.max_mipmap()[0].numel() > 2**24
    rng = np.random.default_rng(5)
    i, j = rng.integers(3400, 3530, 120), rng.integers(3340, 3600, 120)  # north 6800..7060 m, east 6680..7200 m
    world.surface[torch.as_tensor(i), torch.as_tensor(j)] = torch.as_tensor(rng.uniform(10.0, 25.0, 120),
                                                                              dtype=torch.float32)
    world.surface_max, world.surface_min = float(world.surface.max()), 0.0
    W, H = 48, 32
    c2w = c2w_from(0.0, -60.0, 40.0, 0.0, -15.0)
    c2w[0, :3, 3] = torch.tensor([6940.0, 6740.0, 40.0])  # the same view, over the north-east corner
    geom = cast_rays(world, c2w, W, H)
    o = c2w[0, :3, 3].double().numpy()
    d = _rays(c2w[0].double().numpy(), W, H).reshape(-1, 3)
    got = geom.depth[0].double().numpy().reshape(-1)
    plane = o[2] / -d[:, 2]
    on_post = np.isfinite(got) & (got < np.where(plane > 0, plane, np.inf) - 1.0)
    assert 20 <= on_post.sum() < 0.2 * W * H
    assert _assert_first_crossings(got, world.surface.double().numpy(), grid, o, d, s_max=700.0) <= 3


def _looking_north(east: float, north: float, up: float) -> torch.Tensor:
    """An exact pose (1, 4, 4): camera x east, y down, z north, at (east, north, up) ENU."""
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    c2w[:3, 3] = torch.tensor([east, north, up])
    return c2w[None]


def test_cameras_outside_the_grid_end_and_see_its_edge(c2w_from):
    # a camera west of the grid looking west ran forever (its rays' exit lay behind it); looking east it was
    # given the edge cell's surface extended 20 m out of the grid, at depth 0.5
    grid = Grid(e_min=0.0, n_min=0.0, cell=2.0, rows=51, cols=51)
    world = _plane_world(grid, 0.0, 0.0, 0.0)
    world.surface[:, 0] = 10.0  # the west edge's nodes 10 m up: from 3 m up the ray meets them where it enters
    world.surface_max = 10.0
    away = cast_rays(world, c2w_from(-20.0, 50.0, 3.0, 270.0, 0.0), 17, 5)
    assert not away.hit.any()
    towards = cast_rays(world, c2w_from(-20.0, 50.0, 3.0, 90.0, 0.0), 1, 1)
    assert bool(towards.hit[0, 0, 0])
    assert float(towards.depth[0, 0, 0]) == pytest.approx(20.0, abs=1e-3)  # the grid's west edge, 20 m ahead
    o = c2w_from(-20.0, 50.0, 3.0, 90.0, 0.0)[0, :3, 3].double().numpy()
    d = _rays(c2w_from(-20.0, 50.0, 3.0, 90.0, 0.0)[0].double().numpy(), 33, 9).reshape(-1, 3)
    got = cast_rays(world, c2w_from(-20.0, 50.0, 3.0, 90.0, 0.0), 33, 9).depth[0].double().numpy().reshape(-1)
    expected = _first_crossing(world.surface.double().numpy(), grid, o, d, s_max=200.0)
    assert (np.isinf(got) == np.isinf(expected)).all()
    np.testing.assert_allclose(got[np.isfinite(got)], expected[np.isfinite(got)], atol=0.05)


def test_a_crossing_just_inside_the_grid_edge_is_hit(flat_world, c2w_from):
    # rays were cut at 99.9 % of their way to the grid's edge: this one (the plane at north 199.9 m of 200) was lost
    world = flat_world(0.0, half_extent_m=200.0, cell_m=2.0)
    geom = cast_rays(world, c2w_from(0.0, 0.0, 50.0, 0.0, -math.degrees(math.atan2(50.0, 199.9))), 1, 1)
    assert bool(geom.hit[0, 0, 0])
    assert float(geom.depth[0, 0, 0]) == pytest.approx(math.hypot(50.0, 199.9), rel=1e-6)


def test_a_camera_a_few_decimetres_above_the_ground_sees_it(flat_world, c2w_from):
    # rays started 0.5 m from the camera: from 0.3 m up the ground was "hit" at 0.5 m, 0.2 m under it
    geom = cast_rays(flat_world(0.0, half_extent_m=200.0, cell_m=2.0), c2w_from(0.0, 0.0, 0.3, 0.0, -90.0), 1, 1)
    assert float(geom.depth[0, 0, 0]) == pytest.approx(0.3, abs=1e-5)
    assert float(geom.points[0, 0, 0, 2]) == pytest.approx(0.0, abs=1e-5)


def test_a_ray_along_a_grid_line_takes_the_cells_it_runs_in():
    """A 1000 m tower one node wide (east 98 m) and a camera 1.6 mm west of the next grid line (east 100 m), 0.5 m
    up, looking due north: its centre ray runs inside the cells between the two lines, where the tower's side
    rises 0.8 m, and meets it at north 119.25 m (worked by hand: 0.8 (n - 118) / 2 = 0.5). The cells across the
    line were taken before (every point was moved 1 mm east), where the surface is flat: nothing was hit."""
    grid = Grid(e_min=0.0, n_min=0.0, cell=2.0, rows=101, cols=101)
    world = _plane_world(grid, 0.0, 0.0, 0.0)
    world.surface[60:62, 49] = 1000.0
    world.surface_max = 1000.0
    c2w = _looking_north(100.0 - 0.0016, 10.0, 0.5)
    geom = cast_rays(world, c2w, 33, 33)
    assert float(geom.depth[0, 16, 16]) == pytest.approx(119.25 - 10.0, abs=2e-3)
    o, d = c2w[0, :3, 3].double().numpy(), _rays(c2w[0].double().numpy(), 33, 33).reshape(-1, 3)
    _assert_first_crossings(geom.depth[0].double().numpy().reshape(-1), world.surface.double().numpy(), grid, o, d,
                            s_max=300.0)


def test_a_surface_changed_after_a_render_is_cast_anew(flat_world, c2w_from):
    # the mipmap was built once per world: a wall added after a first render was not seen
    world = flat_world(0.0, half_extent_m=200.0, cell_m=2.0)
    c2w = c2w_from(0.0, 0.0, 20.0, 0.0, -10.0)
    before = cast_rays(world, c2w, 1, 1).depth[0, 0, 0]
    assert float(before) == pytest.approx(20.0 / math.sin(math.radians(10.0)), rel=1e-5)  # the ground, 115 m
    world.surface[:, :] = torch.where(torch.arange(world.surface.shape[0])[:, None] == 125, 60.0, 0.0)  # north 50 m
    world.surface_max = 60.0
    # the wall's south face rises 30 m per metre north from north 48 m; the ray is 20 - n tan(10 deg) m up there:
    # n = (20 + 30 * 48) / (30 + tan(10 deg)), at a depth of n / cos(10 deg)
    t = math.tan(math.radians(10.0))
    n = (20.0 + 30.0 * 48.0) / (30.0 + t)
    after = float(cast_rays(world, c2w, 1, 1).depth[0, 0, 0])
    assert after == pytest.approx(n / math.cos(math.radians(10.0)), abs=1e-3)


def test_float64_poses_are_cast_as_float32(world, c2w_from):
    # they failed in the far-mountain lookup: "expected dtype float for 'weight'"
    c2w = c2w_from(0.0, 0.0, 300.0, 30.0, -20.0)
    assert torch.equal(cast_rays(world, c2w.double(), 24, 16).depth, cast_rays(world, c2w, 24, 16).depth)


@pytest.mark.parametrize("rays_at_once", [500, 800])  # one image (384 rays) at a time; two, then one
def test_a_batch_cast_in_parts_gives_each_image_its_own_depths(world, c2w_from, monkeypatch, rays_at_once):
    # a batch went through the mipmap at once: 105 MiB per 720x480 image, 6.7 GiB for 64
    c2w = torch.cat([c2w_from(100.0 * k, -50.0 * k, 300.0, 40.0 * k, -30.0 - 10 * k) for k in range(3)])
    whole = cast_rays(world, c2w, 24, 16).depth
    monkeypatch.setitem(renderer_module.RAYS_AT_ONCE, "cpu", rays_at_once)
    parts = cast_rays(world, c2w, 24, 16).depth
    assert torch.equal(parts, whole)
    assert torch.isfinite(whole).all()  # every view sees the ground


def test_terrain_hit_beyond_the_ridge_distance_is_labelled_ridgeline(flat_world, c2w_from):
    """A camera 300 m over a plane 4 km in radius, looking 5 deg down: a ray d meets the plane at a horizontal distance
    300 / (-d_z) * |d_xy|; under 2500 m it is near terrain (far_class 255), beyond it the distant mountains."""
    assert RIDGE_DISTANCE_M == 2500.0
    world = flat_world(0.0, half_extent_m=4000.0, cell_m=40.0)
    W, H = 144, 48
    c2w = c2w_from(0.0, 0.0, 300.0, 0.0, -5.0)
    geom = cast_rays(world, c2w, W, H)
    d = _rays(c2w[0].double().numpy(), W, H)
    down = d[..., 2] < 0
    horizontal = np.where(down, 300.0 / np.where(down, -d[..., 2], 1.0) * np.hypot(d[..., 0], d[..., 1]), np.inf)
    seen = geom.hit[0].numpy()
    near, far = seen & (horizontal < 2400.0), seen & (horizontal > 2600.0) & (horizontal < 3800.0)
    assert near.sum() > 50 and far.sum() > 50
    far_class = geom.far_class[0].numpy()
    assert (far_class[near] == 255).all()
    assert (far_class[far] == RIDGELINE).all()


def test_far_ridge_elevation_is_interpolated_between_its_samples(flat_world, c2w_from):
    """Ridge samples k at azimuth k * 360 / 64 deg: 0 deg at k = 16 (east), 20 deg at k = 17 (95.625 deg). Between
    them the ridge's sine goes linearly, so a ray at azimuth 90 + 5.625 t deg is ridgeline below
    (1 - t) sin 0 + t sin 20 deg, sky above."""
    world = flat_world(-5000.0, half_extent_m=200.0, cell_m=20.0)  # ground far below and small: every ray misses it
    ridge = torch.full((64,), -90.0)
    ridge[16], ridge[17] = 0.0, 20.0
    world.ridge_deg, world.ridge_sin = ridge, torch.sin(torch.deg2rad(ridge))
    W, H = 96, 64
    c2w = c2w_from(0.0, 0.0, 100.0, 93.0, 8.0)
    geom = cast_rays(world, c2w, W, H)
    assert not geom.hit.any()
    d = _rays(c2w[0].double().numpy(), W, H)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    az = np.degrees(np.arctan2(d[..., 0], d[..., 1]))  # clockwise from north
    t = (az - 90.0) / 5.625
    between = (t > 0.05) & (t < 0.95)
    ridge_sine = t * math.sin(math.radians(20.0))
    clear = between & (np.abs(d[..., 2] - ridge_sine) > 0.01)
    assert clear.sum() > 300
    expected = np.where(d[..., 2] < ridge_sine, RIDGELINE, SKY)
    np.testing.assert_array_equal(geom.far_class[0].numpy()[clear], expected[clear])
    assert (expected[clear] == RIDGELINE).sum() > 50 and (expected[clear] == SKY).sum() > 50


def test_real_camera_off_leaves_the_real_alt_shade_as_it_is(flat_world, c2w_from, monkeypatch):
    W, H = 48, 32

    def flat_grey(world, bake_, geom, keys, width, height, origins, c2w=None):
        B = keys.shape[0]
        return torch.full((B, 3, height, width), 0.5), torch.full((B, height, width), MEADOW, dtype=torch.uint8)

    monkeypatch.setattr(renderer_module, "shade", flat_grey)
    args = (flat_world(0.0), {"real_alt": None}, c2w_from(0.0, 0.0, 100.0, 0.0, -90.0),
            {"real_alt": torch.tensor([7])}, W, H)
    rgb, sem = render(*args, real_camera=False)["real_alt"]
    assert (rgb == 128).all()  # 0.5 * 255 + 0.5 = 128: the shade itself, no lens, noise or tone curve
    assert (sem == MEADOW).all()
    rgb_cam, _ = render(*args, real_camera=True)["real_alt"]
    assert not torch.equal(rgb_cam, rgb)  # the camera model does change it
