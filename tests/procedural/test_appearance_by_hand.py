"""Mini-Comballaz appearance against independent references (the sun's position from another formula,
shading and projections worked by hand on flat worlds): gaps found by mutation testing."""

import datetime
import math

import numpy as np
import pytest
import torch

import topoloc.procedural.appearance as appearance
from topoloc.data.semantics import BUILDING, CLOUD, MEADOW, REAL_ONLY, ROAD, SKY, SNOW, WATER
from topoloc.procedural import Appearance, appearance_for_flight, bake, render, sun_position
from topoloc.procedural._noise import hash_uniform
from topoloc.procedural import real_camera
from topoloc.procedural.appearance import ALT_DATE_TIME
from topoloc.procedural.real_camera import camera_effects


def _sun_by_vectors(month: int, day: int, solar_hour: float, lat_deg: float = 46.37) -> tuple[float, float]:
    """Sun azimuth (clockwise from north) and elevation (deg) as the local east, north, up components of the
    sun's direction: hour angle H (15 deg an hour, positive after noon) and Cooper's declination."""
    doy = datetime.date(2021, month, day).timetuple().tm_yday
    dec = math.radians(-23.44 * math.cos(2 * math.pi / 365 * (doy + 10)))
    lat, h = math.radians(lat_deg), math.radians(15.0 * (solar_hour - 12.0))
    east = -math.cos(dec) * math.sin(h)  # the sun moves westwards: east < 0 in the afternoon
    north = math.cos(lat) * math.sin(dec) - math.sin(lat) * math.cos(dec) * math.cos(h)
    up = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(h)
    return math.degrees(math.atan2(east, north)) % 360.0, math.degrees(math.asin(up))


# --- the sun ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("month, day, hour",
                         [(8, 28, 17.5), (3, 27, 11.0), (11, 6, 11.0), (12, 21, 9.0), (1, 10, 14.0)])
def test_sun_position_matches_the_sun_vector_in_east_north_up(month, day, hour):
    az, el = sun_position(month, day, hour)
    ref_az, ref_el = _sun_by_vectors(month, day, hour)
    assert (az, el) == (pytest.approx(ref_az, abs=1e-6), pytest.approx(ref_el, abs=1e-6))


def test_real_alt_sun_is_low_in_the_west():
    # 17:30 solar time on 28 August: azimuth about 263 deg (west), elevation about 12 deg (module docstring)
    app = appearance_for_flight("comballaz-2021-03-27-winter", "real_alt")
    assert ((app.sun_azimuth_deg, app.sun_elevation_deg)
            == tuple(pytest.approx(v, abs=1e-6) for v in _sun_by_vectors(*ALT_DATE_TIME)))
    assert 240.0 < app.sun_azimuth_deg < 290.0 and 8.0 < app.sun_elevation_deg < 16.0


def test_a_flight_without_a_date_gets_a_sunny_mid_july_day():
    app = appearance_for_flight("comballaz-LHS", "real")
    assert (app.season, app.snow) == ("summer", 0.0)
    ref_az, ref_el = _sun_by_vectors(7, 15, 11.0)
    assert ((app.sun_azimuth_deg, app.sun_elevation_deg)
            == (pytest.approx(ref_az, abs=1e-6), pytest.approx(ref_el, abs=1e-6)))


def test_a_sun_on_the_horizon_is_refused():
    with pytest.raises(ValueError, match="sun_elevation_deg"):
        Appearance("real", "summer", 180.0, 0.0)
    assert Appearance("real", "summer", 180.0, 90.0).sun_elevation_deg == 90.0


# --- bake: colours and classes ---------------------------------------------------------------------------------------

def _world_of(flat_world, cls: int, half_extent_m: float = 200.0, cell_m: float = 10.0):
    world = flat_world(0.0, half_extent_m, cell_m)
    world.classes = torch.full_like(world.classes, cls)
    return world


def test_synthetic_colours_are_summer_s_whatever_the_season(flat_world):
    world = _world_of(flat_world, MEADOW)
    world.tone = torch.rand(world.tone.shape, generator=torch.Generator().manual_seed(0))
    summer = bake(world, Appearance("synthetic", "summer")).rgbs
    for season in ("autumn", "winter"):
        assert torch.equal(bake(world, Appearance("synthetic", season)).rgbs, summer), season


def test_roofs_take_their_colour_from_the_roof_tone(flat_world):
    world = _world_of(flat_world, BUILDING)
    world.tone = torch.ones_like(world.tone)
    world.roof_tone = torch.zeros_like(world.roof_tone)  # the first of the two building colours
    rgb = bake(world, Appearance("synthetic")).rgbs[:3]
    first = torch.tensor(appearance._PALETTE["summer"][BUILDING][0])
    assert torch.allclose(rgb, first[:, None, None].expand_as(rgb))


def test_water_is_one_colour_halfway_between_its_two(flat_world):
    world = _world_of(flat_world, WATER)
    world.tone = torch.rand(world.tone.shape, generator=torch.Generator().manual_seed(0))
    c0, c1 = (torch.tensor(c) for c in appearance._PALETTE["summer"][WATER])
    rgb = bake(world, Appearance("synthetic")).rgbs[:3]
    assert torch.allclose(rgb, ((c0 + c1) / 2)[:, None, None].expand_as(rgb))


def test_snowy_roofs_stay_buildings_and_snowy_meadows_become_snow(flat_world):
    winter = Appearance("real", "winter", 180.0, 30.0, 0.85)
    roofs = bake(_world_of(flat_world, BUILDING), winter)
    meadow = bake(_world_of(flat_world, MEADOW), winter)
    snowy_meadow = meadow.classes[0] == SNOW
    assert snowy_meadow.float().mean() > 0.5  # most of a flat meadow is white in March
    assert (roofs.classes[0] == BUILDING).all()
    white = roofs.rgbs[:3].min(0).values > 0.85  # the same cells of roof are white
    assert torch.equal(white, snowy_meadow)


def test_snow_melts_on_slopes_facing_the_sun(flat_world):
    """Sun due south: a slope facing south (normal tilted 45 deg towards the sun) keeps less snow than one facing
    north."""
    winter = Appearance("real", "winter", 180.0, 30.0, 0.85)
    share = {}
    for facing, north in (("south", -1.0), ("north", 1.0)):
        world = _world_of(flat_world, MEADOW)
        world.normal = (torch.tensor([0.0, north * math.sqrt(0.5), math.sqrt(0.5)])[:, None, None]
                        .expand(3, *world.tone.shape).clone())
        share[facing] = (bake(world, winter).classes[0] == SNOW).float().mean().item()
    assert share["south"] < share["north"] - 0.1, share


# --- bake: light and shadow ------------------------------------------------------------------------------------------

def test_synthetic_shading_follows_the_sun_s_compass_azimuth(flat_world):
    """Sun in the east (azimuth 90 deg, elevation 30 deg): an east wall's normal (1, 0, 0) gets Lambert cos 30 deg =
    0.866, a west wall's nothing (clamped at 0): shade 0.80 + 0.25 * 0.866 = 1.0165 and 0.80."""
    world = _world_of(flat_world, MEADOW)
    half = world.tone.shape[1] // 2
    normal = torch.zeros(3, *world.tone.shape)
    normal[0, :, half:] = 1.0  # east half of the grid faces east
    normal[0, :, :half] = -1.0  # west half faces west
    world.normal = normal
    shade = bake(world, Appearance("synthetic", "summer", 90.0, 30.0)).rgbs[3]
    assert torch.allclose(shade[:, half:], torch.tensor(1.0165), atol=1e-4)
    assert torch.allclose(shade[:, :half], torch.tensor(0.80), atol=1e-6)


def test_real_shading_of_a_flat_world_is_fully_sunlit(flat_world):
    """No relief, no cast shadow: shade 0.42 + 0.85 * sin 30 deg / sqrt(sin 30 deg) = 0.42 + 0.85 * sqrt(0.5)
    = 1.0210."""
    shade = bake(_world_of(flat_world, MEADOW), Appearance("real", "summer", 180.0, 30.0)).rgbs[3]
    assert torch.allclose(shade, torch.tensor(0.42 + 0.85 * math.sqrt(0.5)), atol=1e-5)


def test_a_tower_casts_its_shadow_away_from_the_sun(flat_world):
    """A 200 m tower 60 m square at the origin, sun due south 30 deg high: its shadow reaches 200 / tan 30 deg = 346 m
    north. 150 m north of it is shade 0.42 (no direct light); 150 m south, east and west are lit (1.0210)."""
    world = _world_of(flat_world, MEADOW, half_extent_m=600.0)
    g = world.grid
    e = g.e_min + torch.arange(g.cols) * g.cell
    n = g.n_min + torch.arange(g.rows) * g.cell
    tower = (n[:, None].abs() <= 30) & (e[None, :].abs() <= 30)
    world.surface = torch.where(tower, 200.0, world.surface)
    shade = bake(world, Appearance("real", "summer", 180.0, 30.0)).rgbs[3]

    def at(east, north):
        return shade[int((north - g.n_min) / g.cell), int((east - g.e_min) / g.cell)].item()

    lit = 0.42 + 0.85 * math.sqrt(0.5)
    assert at(0, 180) == pytest.approx(0.42, abs=1e-3)
    for east, north in ((0, -180), (180, 0), (-180, 0)):
        assert at(east, north) == pytest.approx(lit, abs=1e-3), (east, north)


# --- shade: sky and power lines --------------------------------------------------------------------------------------

def test_synthetic_sky_is_not_hazed(flat_world, c2w_from):
    # a camera looking 30 deg up over a flat world: the upper rows are sky, TOPO's pale (0.86, 0.89, 0.94):
    # round(255 * c) = 219, 227, 240 (the haze of a distant hit would pull it to (0.80, 0.84, 0.90))
    world = flat_world(0.0, 600.0, 10.0)
    bakes = {"synthetic": bake(world, Appearance("synthetic"))}
    out = render(world, bakes, c2w_from(0.0, 0.0, 100.0, 0.0, 30.0), {"synthetic": torch.tensor([0])}, 48, 32)
    rgb, sem = out["synthetic"]
    assert (sem[0, :4] == SKY).all()
    assert rgb[0, :, :4].reshape(3, -1).unique(dim=1).flatten().tolist() == [219, 227, 240]


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


# --- the real camera -------------------------------------------------------------------------------------------------

def test_vignetting_is_round_in_a_wide_image(monkeypatch):
    """With the sensor noise off, a flat grey image's pixels at equal distance from the centre stay equal: in 32x16,
    (row 0, column 15) and (row 7, column 8) are both (7.5, 0.5) px from the centre, in some order."""
    monkeypatch.setattr(real_camera, "_noise_tile", lambda device: torch.zeros(3, 1024, 1024))
    out = camera_effects(torch.full((2, 3, 16, 32), 0.5), torch.tensor([3, 11]))
    assert torch.allclose(out[..., 0, 15], out[..., 7, 8], atol=1e-6)
    assert (out[..., 0, 15] < out[..., 7, 15] - 0.01).all()  # and darker than nearer the centre


def test_a_sky_pixel_is_labelled_cloud_where_the_cloud_covers_more_than_half_of_it(flat_world, c2w_from):
    """An even cloud layer of density c under an image's cover (0.25 + 0.5 * its uniform draw 1): the cloud's share
    of a sky pixel is (c + cover - 0.75) / 0.3. At c = 0.9 - cover +- 0.05 it is 2/3 and 1/3: cloud, then sky."""
    world = flat_world(0.0, 600.0, 10.0)
    bakes = {"real": bake(world, Appearance("real", "summer", 180.0, 30.0))}
    key = torch.tensor([5])
    cover = 0.25 + 0.5 * hash_uniform(key, 1).item()
    looking_up = c2w_from(0.0, 0.0, 100.0, 0.0, 60.0)
    for density, label in ((0.95 - cover, CLOUD), (0.85 - cover, SKY)):
        world.clouds = torch.full((16, 16), density)
        sem = render(world, bakes, looking_up, {"real": key}, 48, 32, real_camera=False)["real"][1]
        assert (sem[0, :8] == label).all(), (density, label)


def test_each_of_the_six_car_colours_is_baked(flat_world):
    world = _world_of(flat_world, MEADOW)
    cars = torch.zeros_like(world.cars)
    cars[10, 10:16] = torch.arange(1, 7, dtype=torch.uint8)  # colour index + 1, one car cell each
    world.cars = cars
    rgb = bake(world, Appearance("real", "summer", 180.0, 30.0)).rgbs[:3, 10, 10:16]
    assert len({tuple(c) for c in rgb.T.tolist()}) == 6


def test_semantics_of_a_boundary_are_one_class_or_the_other(flat_world, c2w_from):
    """Meadow west of the origin, road east of it: no pixel gets a class id between their ids (1 and 6)."""
    world = flat_world(0.0, 600.0, 10.0)
    half = world.classes.shape[1] // 2
    world.classes[:, half:] = ROAD
    bakes = {"synthetic": bake(world, Appearance("synthetic"))}
    sem = render(world, bakes, c2w_from(0.0, 0.0, 100.0, 0.0, -90.0), {"synthetic": torch.tensor([0])},
                 48, 32)["synthetic"][1]
    assert set(sem.unique().tolist()) == {MEADOW, ROAD}
