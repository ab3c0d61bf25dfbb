"""Mini-Comballaz terrain, land cover and world against independent references (hand-worked values on tiny
grids, numpy, documented facts of the world): gaps found by mutation testing."""

import math

import numpy as np
import pytest
import torch

from topoloc.data.semantics import BUILDING, FOREST_DECIDUOUS, FOREST_EVERGREEN, MEADOW, ROAD, ROCK, WATER
from topoloc.procedural.landcover import LAKE, _offset_polyline, _rasterize_buildings
from topoloc.procedural.terrain import RIVER_ENU, Grid, _control_points, camera_ceiling, polyline_distance, sample_grid

# --- Grid ----------------------------------------------------------------------------------------------------------

def test_grid_extent_and_coords_on_a_non_square_grid():
    grid = Grid(e_min=10.0, n_min=-5.0, cell=2.0, rows=3, cols=4)
    assert (grid.e_max, grid.n_max) == (16.0, -1.0)  # 10 + 3 * 2, -5 + 2 * 2
    ee, nn = grid.coords()
    assert ee.shape == nn.shape == (3, 4)  # (rows = north, cols = east)
    assert ee[0].tolist() == [10.0, 12.0, 14.0, 16.0] and (ee == ee[0]).all()
    assert nn[:, 0].tolist() == [-5.0, -3.0, -1.0] and (nn == nn[:, :1]).all()


def test_coarsen_keeps_the_extent():
    grid = Grid(e_min=-100.0, n_min=50.0, cell=2.0, rows=51, cols=101)  # 100 m north by 200 m east
    coarse = grid.coarsen(25)  # 50 m cells
    assert (coarse.cell, coarse.rows, coarse.cols) == (50.0, 3, 5)
    assert (coarse.e_min, coarse.e_max, coarse.n_min, coarse.n_max) == (-100.0, 100.0, 50.0, 150.0)


def test_sample_grid_clamps_to_the_border_outside_the_grid():
    grid = Grid(e_min=10.0, n_min=-5.0, cell=2.0, rows=3, cols=4)
    field = torch.arange(12, dtype=torch.float32).reshape(3, 4)  # value = 4 * row + col
    # 100 m east of the grid at row 1 -> the last column's value 4 + 3; far south-west -> the corner's 0
    out = sample_grid(field, grid, torch.tensor([116.0, -90.0]), torch.tensor([-3.0, -90.0]))
    assert out.tolist() == [7.0, 0.0]


# --- polyline_distance -----------------------------------------------------------------------------------------------

def test_polyline_distance_on_a_grid_not_at_the_origin():
    # nodes east = 100 + j, north = -20 + i: a segment along north = -15 from east 102 to 106
    grid = Grid(e_min=100.0, n_min=-20.0, cell=1.0, rows=12, cols=12)
    d = polyline_distance(grid, np.array([[102.0, -15.0], [106.0, -15.0]]), max_dist=4.0)
    assert d[5, 4].item() == 0.0  # (104, -15) on the segment
    assert d[8, 3].item() == pytest.approx(3.0)  # (103, -12): 3 m north of it
    assert d[3, 8].item() == pytest.approx(math.hypot(2.0, 2.0))  # (108, -17): 2.83 m from the end (106, -15)
    assert math.isinf(d[2, 9].item())  # (109, -18): 4.24 m from the end, beyond max_dist
    assert d[9, 4].item() == pytest.approx(4.0)  # (104, -11): exactly max_dist away, kept
    assert math.isinf(d[11, 4].item())  # (104, -9): 6 m away
    # and the other way round, north of the grid's origin larger than east's: nodes east = -20 + j, north = 100 + i
    grid = Grid(e_min=-20.0, n_min=100.0, cell=1.0, rows=12, cols=12)
    d = polyline_distance(grid, np.array([[-18.0, 105.0], [-14.0, 105.0]]), max_dist=4.0)
    assert d[5, 4].item() == 0.0  # (-16, 105)
    assert d[8, 3].item() == pytest.approx(3.0)  # (-17, 108)


def test_polyline_distance_reaches_max_dist_past_the_last_node_of_a_segment():
    grid = Grid(0.0, 0.0, 1.0, 11, 11)
    d = polyline_distance(grid, np.array([[0.5, 5.0], [4.5, 5.0]]), max_dist=4.0)
    assert d[5, 8].item() == pytest.approx(3.5)  # (8, 5): 3.5 m east of the end (4.5, 5)
    assert math.isinf(d[5, 9].item())  # (9, 5): 4.5 m


def test_polyline_distance_of_a_bent_line_is_the_nearest_segment_s():
    # an L: (0, 0) -> (10, 0) -> (10, 10); node (9, 1) is 1 m from both legs, node (8, 5) is 2 m from the second
    grid = Grid(0.0, 0.0, 1.0, 11, 11)
    d = polyline_distance(grid, np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]), max_dist=6.0)
    assert d[1, 9].item() == pytest.approx(1.0)
    assert d[5, 8].item() == pytest.approx(2.0)
    assert d[2, 3].item() == pytest.approx(2.0)  # (3, 2): 2 m from the first leg, 7 m from the second
    assert d[1, 5].item() == pytest.approx(1.0)  # (5, 1): 1 m from the first leg, 5 m from the second
    assert d[10, 10].item() == 0.0  # the last point


def test_polyline_distance_offset_is_subtracted_and_out_is_min_ed():
    # a road 6 m wide along north = 5: distance to its edge is the distance to its axis minus 3 m
    grid = Grid(0.0, 0.0, 1.0, 11, 11)
    out = torch.full((11, 11), math.inf)
    polyline_distance(grid, np.array([[0.0, 5.0], [10.0, 5.0]]), max_dist=7.0, out=out, offset=3.0)
    assert out[5, 2].item() == -3.0 and out[9, 2].item() == pytest.approx(1.0)
    # a second road along east = 1, 2 m wide, only lowers the map where it is nearer
    polyline_distance(grid, np.array([[1.0, 0.0], [1.0, 10.0]]), max_dist=5.0, out=out, offset=1.0)
    assert out[9, 1].item() == -1.0  # on the second road's axis (4 m from the first road's axis: 1 m)
    assert out[5, 2].item() == -3.0  # still the first road's axis


# --- control points and the camera ceiling ---------------------------------------------------------------------------

def test_control_points_by_hand():
    cameras = {
        # LHS poses fly 100..200 m above ground: a 100 m bin with cameras at 300 and 400 m puts its ground at
        # ((300 - 100) + (400 - 200)) / 2 = 200 m, minus the world's 35 m offset = 165 m, at the bin's centre
        "comballaz-LHS": np.array([[10.0, 10.0, 300.0], [20.0, 30.0, 400.0], [150.0, -10.0, 500.0]]),
        # a real flight's lowest pass sits 30 m above ground: a 150 m bin whose lowest camera is at 80 m -> 50 m
        "sepey-2021-10-13-outofplace": np.array([[10.0, 10.0, 100.0], [100.0, 100.0, 80.0]]),
    }
    pts, vals = _control_points(cameras)
    got = sorted(zip(map(tuple, pts.tolist()), vals.tolist()))
    expected = sorted([((50.0, 50.0), 165.0), ((150.0, -50.0), 0.5 * (400.0 + 300.0) - 35.0), ((75.0, 75.0), 50.0)])
    assert [p for p, _ in got] == [p for p, _ in expected]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in expected])


def _ceiling(cameras, bump_m=50.0):
    """camera_ceiling on a flat 0 m ground 200 m square (2 m cells) with one ``bump_m`` node in a far corner."""
    grid = Grid(-200.0, -200.0, 2.0, 201, 201)
    ground = torch.zeros(201, 201)
    ground[-1, -1] = bump_m
    return grid, camera_ceiling(grid, np.array(cameras, dtype=np.float64), clearance=10.0, ground=ground)


def test_camera_ceiling_is_a_cone_under_a_low_camera():
    # a camera 15 m up: its cone starts 10 + 1 m under it (4 m) and rises 0.35 m per metre; it reaches as far
    # as the highest ground (50 m) needs, (50 - 4) / 0.35 = 131 m
    grid, ceil = _ceiling([[0.0, 0.0, 15.0]])

    def node(e, n):
        return ceil[int((n - grid.n_min) / grid.cell), int((e - grid.e_min) / grid.cell)].item()

    assert node(0.0, 0.0) == pytest.approx(4.0)
    assert node(20.0, 0.0) == pytest.approx(4.0 + 0.35 * 20.0)
    assert node(0.0, -60.0) == pytest.approx(4.0 + 0.35 * 60.0)
    assert node(30.0, 40.0) == pytest.approx(4.0 + 0.35 * 50.0, rel=1e-6)
    assert node(120.0, 0.0) == pytest.approx(4.0 + 0.35 * 120.0)
    assert math.isinf(node(-150.0, -150.0))  # 212 m away: beyond the cone's reach


def test_camera_ceiling_ignores_high_cameras_and_keeps_the_lowest_of_a_hover():
    # 200 m up is more than clearance + headroom (10 + 40 m) above the ground: it never binds
    _, ceil = _ceiling([[0.0, 0.0, 200.0]])
    assert torch.isinf(ceil).all()
    # a take-off: two cameras on the same spot, 15 m and 40 m up; the lower one sets the cone
    grid, ceil = _ceiling([[0.0, 0.0, 40.0], [0.5, 0.5, 15.0]])
    i, j = int(-grid.n_min / grid.cell), int(-grid.e_min / grid.cell)
    assert ceil.min().item() == pytest.approx(4.0 + 0.35 * math.hypot(0.5, 0.5), rel=1e-5)
    assert ceil[i, j].item() == pytest.approx(4.0 + 0.35 * math.hypot(0.5, 0.5), rel=1e-5)


# --- the world (seed 0) ----------------------------------------------------------------------------------------------

def test_world_normals_are_the_numpy_gradient_of_the_surface(world):
    """n = (-dh/de, -dh/dn, 1) / |.|, with h(row = north, col = east) on 2 m cells (numpy's central differences)."""
    sub = slice(1500, 1700)
    surf = world.surface[sub, sub].double().numpy()
    dh_dn, dh_de = np.gradient(surf, world.grid.cell)
    n = np.stack([-dh_de, -dh_dn, np.ones_like(surf)])
    n /= np.linalg.norm(n, axis=0)
    got = world.normal[:, sub, sub].double().numpy()
    np.testing.assert_allclose(got[:, 1:-1, 1:-1], n[:, 1:-1, 1:-1], atol=1e-4)


def test_world_surface_extremes_are_the_surface_s(world):
    assert world.surface_max == float(world.surface.max())
    assert world.surface_min == float(world.surface.min())


def test_world_ridge_sine_is_the_sine_of_the_elevation_in_degrees(world):
    np.testing.assert_allclose(world.ridge_sin.double().numpy(), np.sin(np.radians(world.ridge_deg.double().numpy())),
                               atol=1e-6)
    assert 0.0 < float(world.ridge_deg.median()) < 30.0  # distant mountains a few degrees above the horizon


def test_world_cars_stand_on_roads(world):
    cars = world.cars > 0
    assert cars.sum() > 100
    assert (world.classes[cars] == ROAD).float().mean() > 0.9  # (a few on bridges or under a verge's edge)


def test_world_power_line_has_two_cables_on_30_m_pylons_sagging_14_m(world):
    """Each cable is 4 chords per span; a span's ends are the pylon tops, its middle sags 14 m (4 * 14 * t (1 - t))."""
    segs = world.wires.double().numpy()
    per_cable = len(segs) // 2
    spans = per_cable // 4
    assert per_cable == 4 * spans and spans >= 3
    left, right = segs[:per_cable], segs[per_cable:]
    for k in range(spans + 1):  # pylon k: the two cables' attachment points
        a = left[4 * k, 0] if k < spans else left[-1, 1]
        b = right[4 * k, 0] if k < spans else right[-1, 1]
        assert np.linalg.norm(a - b) == pytest.approx(7.0, abs=1e-3)  # 3.5 m either side of the pylon
        mid = torch.tensor([(a[0] + b[0]) / 2]), torch.tensor([(a[1] + b[1]) / 2])
        assert a[2] == b[2] == pytest.approx(float(world.height(*mid)) + 30.0, abs=1e-3)
    line = left[-1, 1, :2] - left[0, 0, :2]
    across = left[0, 0, :2] - right[0, 0, :2]
    assert abs(np.dot(line, across)) < 1e-3 * np.linalg.norm(line) * 7.0  # the cables run side by side
    for k in range(spans):
        top_a, top_b, middle = left[4 * k, 0, 2], left[4 * k + 3, 1, 2], left[4 * k + 2, 0, 2]
        assert middle == pytest.approx((top_a + top_b) / 2 - 14.0, abs=1e-3)


def test_world_river_carves_the_valley_floor(world):
    """The carve is c(r) = 14 exp(-(r / 110)^2) + 4 exp(-(r / 18)^2) m at r m from the axis, so the ground r m to
    either side stands c(0) - c(r) = 18 - c(r) m above the axis, in the median over the river (the rest of the
    terrain is as high, to first order, on both sides)."""
    axis, across = [], []
    for a, b in zip(RIVER_ENU[:-1], RIVER_ENU[1:]):
        t = np.linspace(0.0, 1.0, 40, endpoint=False)[:, None]
        axis.append(a + t * (b - a))
        u = (b - a) / np.linalg.norm(b - a)
        across.append(np.repeat([[-u[1], u[0]]], 40, 0))
    axis, across = np.concatenate(axis), np.concatenate(across)

    def ground(p):
        return sample_grid(world.ground, world.grid, torch.tensor(p[:, 0]).float(), torch.tensor(p[:, 1]).float())

    for r in (30.0, 60.0, 100.0):
        rise = (ground(axis + r * across) + ground(axis - r * across)) / 2 - ground(axis)
        expected = 18.0 - 14.0 * math.exp(-((r / 110.0) ** 2)) - 4.0 * math.exp(-((r / 18.0) ** 2))  # 4.8, 7.6, 11.9
        assert float(rise.median()) == pytest.approx(expected, abs=1.5), r


def test_world_evergreen_forest_grows_higher_than_deciduous(world):
    ground = world.ground
    evergreen = ground[world.classes == FOREST_EVERGREEN].median()
    deciduous = ground[world.classes == FOREST_DECIDUOUS].median()
    assert evergreen > deciduous + 100.0  # spruce higher up, beech and maple lower down


def test_world_texture_tiles_wrap_without_a_seam(world):
    """The texture sampler wraps with a period of T - 1 texels (texel u and u + T - 1 are one), so a tile's last
    row and column must repeat its first; across the wrap the noise steps no more than between neighbours."""
    for tile in (*world.detail, world.clouds):
        np.testing.assert_allclose(tile[-1].numpy(), tile[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(tile[:, -1].numpy(), tile[:, 0].numpy(), atol=1e-6)
        step = (tile[1:] - tile[:-1]).abs().mean()
        assert (tile[-2] - tile[0]).abs().mean() < 2 * step
        assert tile.std() > 0.3  # still a textured noise


# --- land cover ------------------------------------------------------------------------------------------------------

def test_offset_polyline_shifts_to_the_left_of_travel():
    # travelling north on points 10 m apart, left is west: +5 m moves every point to east = -5
    north = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 20.0]])
    np.testing.assert_allclose(_offset_polyline(north, 5.0), [[-5.0, 0.0], [-5.0, 10.0], [-5.0, 20.0]], atol=1e-12)
    # travelling east, left is north
    east = np.array([[0.0, 0.0], [30.0, 0.0]])
    np.testing.assert_allclose(_offset_polyline(east, 2.0), [[0.0, 2.0], [30.0, 2.0]], atol=1e-12)


@pytest.mark.parametrize("heading_deg", [0.0, 90.0])
def test_a_chalet_is_a_gabled_block_along_its_heading(heading_deg):
    """A chalet 20 m long and 10 m wide, eave 5 m, roof rising 3 m to a ridge along its length, on flat ground at
    0 m; heading 0 is north (its length runs north-south), 90 deg is east. Its roof stands 5 + 3 (1 - c / 5) m up at
    c m from the ridge."""
    grid = Grid(-20.0, -20.0, 1.0, 41, 41)  # nodes east = -20 + j, north = -20 + i
    classes = torch.full((41, 41), MEADOW, dtype=torch.uint8)
    objects, roof_tone = torch.zeros(41, 41), torch.zeros(41, 41)
    chalet = (0.0, 0.0, math.radians(heading_deg), 20.0, 10.0, 5.0, 3.0)
    _rasterize_buildings(grid, torch.zeros(41, 41), [chalet], classes, objects, roof_tone, np.random.default_rng(0))
    ee, nn = grid.coords()
    along, across = (nn, ee) if heading_deg == 0.0 else (ee, nn)
    inside = (along.abs() <= 10.0) & (across.abs() <= 5.0)
    assert torch.equal(classes == BUILDING, inside)
    np.testing.assert_allclose(objects[inside].numpy(), (5.0 + 3.0 * (1 - across.abs() / 5.0))[inside].numpy(),
                               rtol=1e-6)
    assert (objects[~inside] == 0).all()


def _cell(world, east, north):
    g = world.grid
    return int(round((north - g.n_min) / g.cell)), int(round((east - g.e_min) / g.cell))


def test_world_lake_is_a_flat_ellipse_30_degrees_off_east(world):
    """LAKE: centre (430, 140) m, semi-axes 150 m and 80 m, its long axis turned 30 deg from east."""
    (ce, cn), (ra, rb), rot = LAKE
    assert (ra, rb, rot) == (150.0, 80.0, 30.0)
    c, s = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
    along = [world.classes[_cell(world, ce + 130.0 * c, cn + sign * 130.0 * s)].item() for sign in (-1, 1)]
    assert along.count(WATER) == 1  # 130 m out along the long axis (one of the two 30 deg turns) is water
    assert world.classes[_cell(world, ce, cn + 100.0)].item() != WATER  # 100 m north: past the 80 m semi-axis
    assert world.classes[_cell(world, ce, cn - 100.0)].item() != WATER
    # the water lies flat: every cell within 60 m of the centre at one height (to the centimetre)
    ee, nn = world.grid.coords()
    near = (ee - ce) ** 2 + (nn - cn) ** 2 < 60.0**2
    assert near.sum() > 2000
    assert float(world.ground[near].max() - world.ground[near].min()) < 0.05


def test_world_water_and_roads_carry_no_objects(world):
    objects = world.surface - world.ground
    for cls in (WATER, ROAD):  # no trees or roofs stand on water or on a road (bridges are flat)
        on = world.classes == cls
        assert on.sum() > 1000
        assert float(objects[on].abs().max()) == 0.0


def test_world_rock_is_on_steep_slopes_and_not_on_gentle_low_ground(world):
    """Rock where the slope exceeds 0.85 + 0.25 n (n: a noise of about [-1, 1]) or high on the mountains (above
    620 - 120 m): under 450 m, ground steeper than 1.2 is rock and ground gentler than 0.5 is not."""
    ground = world.ground.double().numpy()
    dh_dn, dh_de = np.gradient(ground, world.grid.cell)
    slope = np.hypot(dh_de, dh_dn)
    classes = world.classes.numpy()
    low = ground < 450.0
    steep, gentle = low & (slope > 1.2), low & (slope < 0.5)
    assert steep.sum() > 10_000 and gentle.sum() > 10_000
    assert (classes[steep] == ROCK).mean() > 0.98  # (roads and chalets cut a few)
    assert (classes[gentle] == ROCK).mean() < 0.001


def test_world_forest_stays_under_the_tree_line(world):
    """Trees grow below 560 + 60 n m (n: a noise of about [-1, 1]); the mountains rise far above it."""
    ground = world.ground
    trees = (world.classes == FOREST_EVERGREEN) | (world.classes == FOREST_DECIDUOUS)
    assert float(ground[trees].max()) < 700.0
    assert float(ground.max()) > 900.0


def test_world_valley_road_is_7_m_wide(world):
    """The valley road runs 95 m left of the river, 7 m wide: ROAD across it, sampled every 25 cm on transects."""
    road = _offset_polyline(RIVER_ENU, 95.0)
    g = world.grid
    widths = []
    for a, b in zip(road[:-1], road[1:]):
        u = (b - a) / np.linalg.norm(b - a)
        normal = np.array([-u[1], u[0]])
        for t in np.linspace(0.1, 0.9, 15):
            q = a + t * (b - a) + np.arange(-12.0, 12.01, 0.25)[:, None] * normal
            j, i = (np.round((q[:, 0] - g.e_min) / g.cell).astype(int),
                    np.round((q[:, 1] - g.n_min) / g.cell).astype(int))
            if (j >= 0).all() and (i >= 0).all() and (j < g.cols).all() and (i < g.rows).all():
                widths.append((world.classes.numpy()[i, j] == ROAD).sum() * 0.25)
    assert len(widths) > 100
    assert 5.5 <= np.median(widths) <= 8.5  # 2 m cells: a 7 m road is 3 or 4 cells across


def test_world_river_axis_is_water_and_the_lake_has_no_chalets_or_roads(world):
    g = world.grid
    window = Grid(g.e_min + 2000.0, g.n_min + 2000.0, g.cell, 1401, 1401)  # rows and columns 1000..2400
    axis = polyline_distance(window, RIVER_ENU, 10.0) < 1.0
    assert axis.sum() > 1000
    assert (world.classes[1000:2401, 1000:2401][axis] == WATER).all()  # roads and their verges cross, not cut it
    (ce, cn), (ra, rb), rot = LAKE
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    ee, nn = g.coords()
    u, v = (ee - ce) * c - (nn - cn) * s, (ee - ce) * s + (nn - cn) * c
    lake = (u / ra) ** 2 + (v / rb) ** 2 < 1.0
    assert not (world.classes[lake] == BUILDING).any()
    # a farm track of seed 0 runs into the lake: it ends at the shore (it ran on over 36 cells of water)
    near_shore = ((u / (ra + 10.0)) ** 2 + (v / (rb + 10.0)) ** 2 < 1.0) & ~lake
    assert (world.classes[near_shore] == ROAD).any()
    assert not (world.classes[lake] == ROAD).any()


def test_world_chalet_eaves_stand_4_m_over_their_highest_ground(world):
    """A chalet's eave is 4..9 m above the highest ground under it, so (but for a few clipped under a camera's
    clearance) every building cell stands at least 4 m over its own ground."""
    objects = (world.surface - world.ground)[world.classes == BUILDING]
    assert objects.numel() > 1000
    assert (objects < 3.9).float().mean() < 0.05


def test_world_tones_are_within_zero_and_one(world):
    for tone in (world.tone, world.roof_tone):
        assert float(tone.min()) >= 0.0 and float(tone.max()) <= 1.0


# --- the world's disk cache and arguments ---------------------------------------------------------------------------

def test_world_cache_path_is_per_seed_and_none_under_topoloc_no_cache(tmp_path, monkeypatch):
    from topoloc.procedural.world import _cache_path

    monkeypatch.setenv("TOPOLOC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TOPOLOC_NO_CACHE", raising=False)
    assert _cache_path(0, "comballaz") != _cache_path(1, "comballaz")
    assert _cache_path(0, "comballaz").parent == tmp_path / "mini_comballaz"
    monkeypatch.setenv("TOPOLOC_NO_CACHE", "1")
    assert _cache_path(0, "comballaz") is None


def test_build_world_refuses_an_unknown_area_and_a_seed_that_is_not_a_non_negative_int():
    from topoloc.procedural.world import build_world

    with pytest.raises(ValueError, match="area"):
        build_world(0, "epfl")
    for seed in (1.5, -1, "0"):
        with pytest.raises(ValueError, match="seed"):
            build_world(seed)


def test_world_cache_file_is_written_as_open_would_and_read_back(tmp_path, monkeypatch, flat_world):
    from topoloc.procedural import world as world_module

    monkeypatch.setenv("TOPOLOC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TOPOLOC_NO_CACHE", raising=False)
    plane = flat_world(12.5, half_extent_m=40.0, cell_m=20.0)  # a 5 x 5 stand-in, not the 20 s build
    plane.surface[1, 1] += 5.0  # a tree: the surface's highest point is not the ground's
    plane.ground[3, 3] -= 4.0  # a chalet in a hollow: ground at 8.5 m, its roof 3 m up at 11.5 m
    plane.surface[3, 3] -= 1.0
    monkeypatch.setattr(world_module, "_build", lambda seed: plane)
    build = world_module.build_world.__wrapped__  # past the per-process cache
    assert build(5) is plane
    written = world_module._cache_path(5, "comballaz")
    (tmp_path / "by_open").write_text("")  # the mode open() gives a new file here (0o666 less the umask)
    assert written.stat().st_mode & 0o777 == (tmp_path / "by_open").stat().st_mode & 0o777

    def no_build(seed):
        raise AssertionError("the cached world should have been loaded")

    monkeypatch.setattr(world_module, "_build", no_build)
    loaded = build(5)
    assert torch.equal(loaded.surface, plane.surface) and torch.equal(loaded.ground, plane.ground)
    assert (loaded.surface_max, loaded.surface_min) == (17.5, 11.5)  # the surface's extremes, not the ground's
