"""Geodesy against independent references: the closed-form WGS84 formulas, PROJ's topocentric
conversion, and facts about camera attitude that hold by definition of the Cesium angles."""

import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from topoloc.geodesy import (
    TOPO_ORIGINS,
    LocalFrame,
    c2w_to_cesium,
    cesium_to_c2w,
    check_ecef_near_surface,
    ecef_to_wgs84,
    implausible_heights,
    wgs84_to_ecef,
)
from topoloc.rotations import geodesic_angle_deg

A = 6378137.0
F = 1.0 / 298.257223563
E2 = F * (2.0 - F)


def closed_form_ecef(lat_deg, lon_deg, h):
    lat, lon = np.deg2rad(lat_deg), np.deg2rad(lon_deg)
    n = A / np.sqrt(1.0 - E2 * np.sin(lat) ** 2)
    return np.stack(
        [(n + h) * np.cos(lat) * np.cos(lon), (n + h) * np.cos(lat) * np.sin(lon), (n * (1 - E2) + h) * np.sin(lat)],
        axis=-1,
    )


def comballaz_row(yaw, pitch, roll, h=1600.0):
    x, y, z = wgs84_to_ecef(46.3705, 7.065, h)
    return np.array([[float(x), float(y), float(z), yaw, pitch, roll]])


class TestWgs84Ecef:
    def test_matches_closed_form(self):
        rng = np.random.default_rng(0)
        lat = rng.uniform(-89.9, 89.9, 500)
        lon = rng.uniform(-180, 180, 500)
        h = rng.uniform(-500, 9000, 500)
        got = np.stack(wgs84_to_ecef(lat, lon, h), axis=-1)
        np.testing.assert_allclose(got, closed_form_ecef(lat, lon, h), atol=1e-6, rtol=0)

    def test_any_longitude_is_its_meridian(self):
        # 360 degrees apart is the same meridian: the closed form (cos, sin) of the raw angle is the reference.
        # PROJ alone gives inf from about 540 degrees on.
        lon = np.array([-36000.25, -720.0, -541.0, 359.0, 540.0, 720.0, 726.5668, 36001.5])
        got = np.stack(wgs84_to_ecef(46.37, lon, 1000.0), axis=-1)
        np.testing.assert_allclose(got, closed_form_ecef(np.full(8, 46.37), lon, np.full(8, 1000.0)), atol=1e-6, rtol=0)
        frame = LocalFrame(46.5191, 6.5668 + 720.0, 390.0)
        np.testing.assert_allclose(frame.origin_ecef, LocalFrame.named("epfl").origin_ecef, atol=1e-6, rtol=0)

    def test_known_points(self):
        # Equator / prime meridian lies on the semi-major axis; the pole on the semi-minor axis b = a (1 - f).
        np.testing.assert_allclose(np.stack(wgs84_to_ecef(0.0, 0.0, 0.0)), [A, 0, 0], atol=1e-6)
        np.testing.assert_allclose(np.stack(wgs84_to_ecef(90.0, 0.0, 0.0)), [0, 0, 6356752.314245], atol=1e-5)
        np.testing.assert_allclose(np.stack(wgs84_to_ecef(0.0, 90.0, 100.0)), [0, A + 100, 0], atol=1e-6)

    def test_axis_order_at_comballaz(self):
        # Longitude 7 deg east: x >> y > 0. Swapping lat / lon would give y > x.
        x, y, z = wgs84_to_ecef(46.3705, 7.065, 1410.0)
        assert x > 4.3e6 and 5.0e5 < y < 6.0e5 and z > 4.5e6

    def test_round_trip(self):
        rng = np.random.default_rng(1)
        lat, lon, h = rng.uniform(-89, 89, 300), rng.uniform(-179, 179, 300), rng.uniform(0, 5000, 300)
        x, y, z = wgs84_to_ecef(lat, lon, h)
        lat2, lon2, h2 = ecef_to_wgs84(x, y, z)
        assert np.max(np.abs(lat2 - lat)) < 1e-9 and np.max(np.abs(lon2 - lon)) < 1e-9
        assert np.max(np.abs(h2 - h)) < 1e-3
        x2, y2, z2 = wgs84_to_ecef(lat2, lon2, h2)
        assert np.max(np.abs(np.stack([x2 - x, y2 - y, z2 - z]))) < 1e-3

    @pytest.mark.parametrize("bad", [[91.0], [-90.5]])
    def test_latitude_out_of_range(self, bad):
        with pytest.raises(ValueError, match="lat_deg"):
            wgs84_to_ecef(bad, [7.0], [0.0])

    def test_nan(self):
        with pytest.raises(ValueError, match="h_m"):
            wgs84_to_ecef([46.0], [7.0], [np.nan])
        with pytest.raises(ValueError, match="NaN"):
            ecef_to_wgs84([np.nan], [0.0], [0.0])

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="shape"):
            wgs84_to_ecef([1.0, 2.0], [1.0, 2.0, 3.0], [0.0])


class TestLocalFrame:
    @pytest.mark.parametrize("name", sorted(TOPO_ORIGINS))
    def test_matches_proj_topocentric(self, name):
        lat0, lon0, h0 = TOPO_ORIGINS[name]
        frame = LocalFrame.named(name)
        ref = Transformer.from_pipeline(f"+proj=topocentric +ellps=WGS84 +lat_0={lat0} +lon_0={lon0} +h_0={h0}")
        rng = np.random.default_rng(2)
        lat = lat0 + rng.uniform(-0.05, 0.05, 100)
        lon = lon0 + rng.uniform(-0.05, 0.05, 100)
        ecef = np.stack(wgs84_to_ecef(lat, lon, rng.uniform(800, 2500, 100)), axis=-1)
        expected = np.stack(ref.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2]), axis=-1)
        np.testing.assert_allclose(frame.ecef_to_enu(ecef), expected, atol=1e-6)
        np.testing.assert_allclose(frame.enu_to_ecef(frame.ecef_to_enu(ecef)), ecef, atol=1e-6)

    @pytest.mark.parametrize("h_m", [1e9, -1500.0, 100_000.5])
    def test_an_origin_far_from_the_ground_is_refused(self, h_m):
        # LocalFrame(46, 7, 1e9) was accepted: a height in the wrong unit (mm) or a swapped argument
        with pytest.raises(ValueError, match=rf"LocalFrame h_m: expected an ellipsoidal height from -1000 to 100000 "
                                             rf"m \(.*\), got {re.escape(f'{h_m:g}')}$"):
            LocalFrame(46.0, 7.0, h_m)
        assert LocalFrame(46.0, 7.0, 100_000.0).h_m == 100_000.0 and LocalFrame(46.0, 7.0, -1000.0).h_m == -1000.0

    def test_up_is_plus_z(self):
        frame = LocalFrame.named("comballaz")
        above = np.stack(wgs84_to_ecef(46.3705, 7.065, 1510.0), axis=-1)[None]
        np.testing.assert_allclose(frame.ecef_to_enu(above), [[0, 0, 100]], atol=1e-6)

    def test_north_is_plus_y(self):
        # 0.001 deg of latitude is M * 0.001 * pi / 180 metres along the meridian, M the meridional radius.
        frame = LocalFrame.named("epfl")
        lat0 = np.deg2rad(46.5191)
        m = A * (1 - E2) / (1 - E2 * np.sin(lat0) ** 2) ** 1.5 + 390.0
        p = np.stack(wgs84_to_ecef(46.5191 + 0.001, 6.5668, 390.0), axis=-1)[None]
        enu = frame.ecef_to_enu(p)[0]
        assert abs(enu[0]) < 1e-6 and abs(enu[1] - m * np.deg2rad(0.001)) < 0.01 and abs(enu[2]) < 0.01

    def test_pose_round_trip_and_distances(self):
        frame = LocalFrame.named("comballaz")
        rows = comballaz_row(33.0, -60.0, 5.0)
        c2w = cesium_to_c2w(rows)
        back = frame.c2w_enu_to_ecef(frame.c2w_ecef_to_enu(c2w))
        np.testing.assert_allclose(back, c2w, atol=1e-6)
        np.testing.assert_allclose(frame.c2w_to_cesium(frame.cesium_to_c2w(rows)), rows, atol=1e-6)

    def test_bad_origin(self):
        with pytest.raises(ValueError, match="lat_deg"):
            LocalFrame(120.0, 7.0, 0.0)
        with pytest.raises(ValueError, match="unknown origin"):
            LocalFrame.named("zermatt")
        with pytest.raises(TypeError, match="LocalFrame lat_deg: expected a number, got str '46'"):
            LocalFrame("46", 7.0, 0.0)
        with pytest.raises(TypeError, match="LocalFrame h_m: expected a number, got bool"):
            LocalFrame(46.0, 7.0, True)

    def test_bad_points(self):
        frame = LocalFrame.named("epfl")
        with pytest.raises(ValueError, match=r"points_n3.*\(N, 3\)"):
            frame.ecef_to_enu(np.zeros((4, 2)))
        with pytest.raises(ValueError, match="c2w_n44"):
            frame.c2w_ecef_to_enu(np.full((1, 4, 4), np.nan))


class TestCesiumAttitude:
    def enu_axes(self, yaw, pitch, roll):
        frame = LocalFrame.named("comballaz")
        c2w = frame.c2w_ecef_to_enu(cesium_to_c2w(comballaz_row(yaw, pitch, roll)))[0]
        return c2w[:3, 0], c2w[:3, 1], c2w[:3, 2]  # right, down, forward

    def test_pitch_minus_90_looks_straight_down(self):
        right, down, forward = self.enu_axes(0.0, -90.0, 0.0)
        np.testing.assert_allclose(forward, [0, 0, -1], atol=1e-9)
        # yaw 0 at nadir: the image's top edge (-y) faces north, its right edge east.
        np.testing.assert_allclose(-down, [0, 1, 0], atol=1e-9)
        np.testing.assert_allclose(right, [1, 0, 0], atol=1e-9)

    def test_yaw_0_looks_north_and_up_is_up(self):
        right, down, forward = self.enu_axes(0.0, 0.0, 0.0)
        np.testing.assert_allclose(forward, [0, 1, 0], atol=1e-9)
        np.testing.assert_allclose(down, [0, 0, -1], atol=1e-9)
        np.testing.assert_allclose(right, [1, 0, 0], atol=1e-9)

    def test_yaw_90_looks_east(self):
        _, _, forward = self.enu_axes(90.0, 0.0, 0.0)
        np.testing.assert_allclose(forward, [1, 0, 0], atol=1e-9)

    def test_pitch_up_and_roll_right_wing_down(self):
        _, _, forward = self.enu_axes(0.0, 30.0, 0.0)
        np.testing.assert_allclose(forward, [0, np.cos(np.pi / 6), 0.5], atol=1e-9)
        right, _, _ = self.enu_axes(0.0, 0.0, 90.0)
        np.testing.assert_allclose(right, [0, 0, -1], atol=1e-9)

    def test_rotation_is_proper(self):
        rng = np.random.default_rng(3)
        rows = np.repeat(comballaz_row(0, 0, 0), 50, axis=0)
        rows[:, 3:] = rng.uniform([-180, -90, -180], [180, 90, 180], (50, 3))
        r = cesium_to_c2w(rows)[:, :3, :3]
        np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)

    @settings(max_examples=300, deadline=None)
    @given(
        yaw=st.floats(-180.0, 180.0, exclude_min=True),
        pitch=st.floats(-90.0, 90.0),
        roll=st.floats(-180.0, 180.0, exclude_min=True),
    )
    @example(yaw=37.0, pitch=-90.0, roll=0.0)
    @example(yaw=37.0, pitch=-90.0, roll=12.0)
    @example(yaw=180.0, pitch=90.0, roll=-45.0)
    @example(yaw=0.0, pitch=-89.9999, roll=15.0)
    def test_round_trip(self, yaw, pitch, roll):
        rows = comballaz_row(yaw, pitch, roll)
        c2w = cesium_to_c2w(rows)
        back = c2w_to_cesium(c2w)
        assert -180.0 < back[0, 3] <= 180.0 and -90.0 <= back[0, 4] <= 90.0 and -180.0 < back[0, 5] <= 180.0
        np.testing.assert_allclose(back[0, :3], rows[0, :3], atol=1e-6)
        # The same rotation, always (also in gimbal lock, where only yaw + roll is defined) ...
        assert geodesic_angle_deg(cesium_to_c2w(back)[:, :3, :3], c2w[:, :3, :3])[0] < 1e-6
        # ... and the same angles wherever they are unique.
        if abs(pitch) < 89.0:
            diff = (back[0, 3:] - rows[0, 3:] + 180.0) % 360.0 - 180.0
            assert np.max(np.abs(diff)) < 1e-6

    def test_a_level_camera_facing_south_has_yaw_plus_180_not_minus_180(self):
        # Worked by hand in ENU, OpenCV axes (columns right, down, forward): looking due south
        # (forward (0, -1, 0)) and level, right is west (-1, 0, 0) and down is (0, 0, -1). Heading
        # south is yaw 180, and the documented yaw range is (-180, 180]: -180 must not come out.
        # Upside down and facing north (right west, down up, forward north) is roll 180 likewise.
        frame = LocalFrame.named("comballaz")
        south = np.eye(4)
        south[:3, :3] = [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]
        south[:3, 3] = [0.0, 0.0, 200.0]
        upside_down = south.copy()
        upside_down[:3, :3] = [[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
        rows = frame.c2w_to_cesium(np.stack([south, upside_down]))
        assert rows[0, 3] == 180.0
        assert rows[1, 5] == 180.0
        np.testing.assert_allclose(rows[:, 3:], [[180.0, 0.0, 0.0], [0.0, 0.0, 180.0]], atol=1e-9)

    def test_nadir_gives_roll_zero(self):
        back = c2w_to_cesium(cesium_to_c2w(comballaz_row(20.0, -90.0, 10.0)))
        np.testing.assert_allclose(back[0, 3:], [30.0, -90.0, 0.0], atol=1e-9)

    @pytest.mark.parametrize("pitch", [-90.0, -89.9999, -89.99, 90.0])
    @pytest.mark.parametrize("written", ["6 decimals", "float32"])
    def test_near_nadir_poses_read_from_files_keep_their_rotation(self, pitch, written):
        # A pose file holds its rotation to its decimals (CrossLoc's text poses) or to float32: orthonormal
        # to about 1e-6. Near nadir the entries that give yaw and roll are about cos(pitch) in size, and yaw
        # and roll came out independently noisy: the angles described a rotation up to 180 deg away from
        # the one written. The reference is the written rows themselves.
        rng = np.random.default_rng(3)
        rows = np.concatenate([comballaz_row(yaw, pitch, roll) for yaw, roll in
                               zip(rng.uniform(-180, 180, 50), rng.uniform(-5, 5, 50))])
        c2w = cesium_to_c2w(rows)
        c2w[:, :3, :3] = np.round(c2w[:, :3, :3], 6) if written == "6 decimals" else \
            c2w[:, :3, :3].astype(np.float32).astype(np.float64)
        back = c2w_to_cesium(c2w)
        assert geodesic_angle_deg(cesium_to_c2w(back)[:, :3, :3], cesium_to_c2w(rows)[:, :3, :3]).max() < 1e-3
        np.testing.assert_allclose(back[:, 4], pitch, atol=1e-3)

    def test_real_presets_round_trip(self, presets_dir):
        rows = np.load(presets_dir / "comballaz-2021-03-27-winter_poses.npy")
        np.testing.assert_allclose(c2w_to_cesium(cesium_to_c2w(rows)), rows, atol=1e-6)


def test_local_bases_take_one_longitude_for_many_latitudes():
    # ned_in_ecef(array, scalar) raised "all input arrays must have the same shape"; rotation_zyx broadcasts.
    # The columns by hand: north (-sin lat cos lon, -sin lat sin lon, cos lat), east (-sin lon, cos lon, 0).
    from topoloc.geodesy import enu_in_ecef, ned_in_ecef

    lat = np.array([0.0, 30.0, 46.0])
    ned = ned_in_ecef(lat, 90.0)
    assert ned.shape == (3, 3, 3)
    s, c = np.sin(np.deg2rad(lat)), np.cos(np.deg2rad(lat))
    np.testing.assert_allclose(ned[:, :, 0], np.stack([np.zeros(3), -s, c], axis=-1), atol=1e-15)  # north
    np.testing.assert_allclose(ned[:, :, 1], np.tile([-1.0, 0.0, 0.0], (3, 1)), atol=1e-15)  # east at lon 90
    np.testing.assert_allclose(enu_in_ecef(46.0, [0.0, 90.0])[:, :, 2], [[c[2], 0.0, s[2]], [0.0, c[2], s[2]]],
                               atol=1e-15)  # up


class TestBadPoses:
    def test_wrong_shape(self):
        with pytest.raises(ValueError, match=r"poses_n6.*\(N, 6\)"):
            cesium_to_c2w(np.zeros((3, 5)))
        with pytest.raises(ValueError, match=r"c2w_n44"):
            c2w_to_cesium(np.zeros((3, 4)))

    def test_nan(self):
        rows = comballaz_row(0.0, -90.0, 0.0)
        rows[0, 4] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            cesium_to_c2w(rows)

    def test_local_coordinates_passed_as_ecef(self):
        with pytest.raises(ValueError, match="ellipsoid"):
            cesium_to_c2w([[250.3, 400.6, 158.9, 10.0, -60.0, 0.0]])

    def test_degrees_on_a_unit_ellipsoid(self):
        # The earlier adaptation's bug: degrees fed to sin / cos on a unit sphere gives points ~1 m from the centre.
        lat, lon = 46.37, 7.065
        wrong = [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]
        with pytest.raises(ValueError, match="far|ellipsoid"):
            cesium_to_c2w([[*wrong, 0.0, -90.0, 0.0]])


def test_as_frame_reads_every_spelling_of_a_frame():
    from topoloc.geodesy import as_frame

    epfl = LocalFrame(46.5191, 6.5668, 390.0)  # TOPO's EPFL origin (DESIGN.md)
    assert as_frame("EPFL") == as_frame(epfl) == epfl
    assert as_frame({"name": "epfl", "lat_deg": 46.5191, "lon_deg": 6.5668, "h_m": 390.0}) == epfl
    assert as_frame((46.5191, 6.5668, 390)) == epfl
    with pytest.raises(ValueError, match="data.frame: unknown frame 'paris'"):
        as_frame("paris", "data.frame")
    with pytest.raises(ValueError, match="my_arg: expected a frame name"):
        as_frame(3.0, "my_arg")


def test_area_frame_from_flight_and_scene_names():
    from topoloc.geodesy import area_frame

    comballaz, epfl = LocalFrame(46.3705, 7.065, 1410.0), LocalFrame(46.5191, 6.5668, 390.0)
    assert area_frame("sepey-2021-10-13-outofplace") == area_frame("comballaz-LHS") == comballaz
    assert area_frame("StSulpice-2021") == area_frame("EPFL-LHS") == epfl
    assert area_frame("crossloc_naturescape", anywhere=True) == comballaz
    assert area_frame("matterhorn-LHS", frame="epfl") == epfl  # an explicit frame wins
    with pytest.raises(ValueError, match=r"'crossloc_naturescape': cannot tell the area from the name \(expected it "
                                         r"to start with one of \['comballaz', .*'epfl'.*\]\); pass the frame: an "
                                         r"origin "
                                         r"name \('comballaz' or 'epfl'; --frame on the command line\)"):
        area_frame("crossloc_naturescape")  # not at the start
    with pytest.raises(ValueError, match=r"expected it to contain one of"):
        area_frame("matterhorn-LHS", anywhere=True)


def test_local_coordinates_given_as_ecef_are_refused():
    from topoloc.data.preset import load_preset
    from topoloc.geodesy import cesium_to_c2w

    frame = LocalFrame.named("comballaz")
    enu = frame.cesium_to_c2w(load_preset("comballaz-2021-03-27-winter")[:2])
    # converted twice, the camera came out 6,368 km under the ground, without a word
    with pytest.raises(ValueError, match=r"c2w_n44: row 0 .* from the Earth's centre; expected ECEF .* already local"):
        frame.c2w_ecef_to_enu(enu)
    with pytest.raises(ValueError, match=r"points_n3: row 0 .* from the Earth's centre; expected ECEF"):
        frame.ecef_to_enu(enu[:, :3, 3])
    back = frame.c2w_ecef_to_enu(frame.c2w_enu_to_ecef(enu))  # the round trip is untouched
    assert np.allclose(back, enu, atol=1e-6)
    assert np.allclose(frame.c2w_ecef_to_enu(cesium_to_c2w(load_preset("comballaz-2021-03-27-winter")[:2])), enu,
                       atol=1e-6)


def test_a_frame_named_by_something_else_than_text_is_refused_by_name():
    with pytest.raises(TypeError,
                       match=r"LocalFrame.named: `name` must be an origin's name, one of .*'comballaz'.*got None"):
        LocalFrame.named(None)


def test_ecef_points_given_as_local_ones_are_refused():
    # converted twice, ECEF points came out 12,700 km from the Earth's centre (enu_to_wgs84: 6,350 km up), silently
    frame = LocalFrame.named("comballaz")
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    ecef = np.array([to_ecef.transform(7.07, 46.38, 1600.0)])  # a drone's position, ECEF by pyproj
    with pytest.raises(ValueError, match=rf"^points_n3: row 0 is {np.linalg.norm(ecef[0]):,.0f} m from the frame's "
                                         r"origin; expected local ENU metres about it: ECEF coordinates .* are already "
                                         r"ECEF"):
        frame.enu_to_wgs84(ecef)
    with pytest.raises(ValueError, match=r"^points_n3: row 0 is "):
        frame.enu_to_ecef(ecef)
    # camera-to-ECEF poses given as camera-to-ENU ones: c2w_enu_to_ecef (and c2w_to_cesium) converted them twice
    c2w = np.eye(4)[None].copy()
    c2w[0, :3, 3] = ecef[0]
    for convert in (frame.c2w_enu_to_ecef, frame.c2w_to_cesium):
        with pytest.raises(ValueError, match=rf"^c2w_n44: row 0 is {np.linalg.norm(ecef[0]):,.0f} m from the frame's "
                                             r"origin; expected local ENU metres"):
            convert(c2w)
    # its local coordinates go back to it, and to (46.38, 7.07, 1600 m)
    np.testing.assert_allclose(frame.enu_to_ecef(frame.ecef_to_enu(ecef)), ecef, rtol=0, atol=1e-6)
    lat, lon, h = frame.enu_to_wgs84(frame.ecef_to_enu(ecef))
    np.testing.assert_allclose([lat[0], lon[0], h[0]], [46.38, 7.07, 1600.0], rtol=0, atol=1e-6)


def test_points_with_no_wgs84_height_are_refused_like_points_far_from_the_surface():
    # ECEF values of 1e299 m have no WGS84 height (pyproj gives NaN), and NaN passed every height band check:
    # the pose samplers wrote such rows, and the datasets, CrossLoc and the geodesy conversions took them
    far = np.full((2, 3), 1e299)
    assert np.isnan(Transformer.from_crs("EPSG:4978", "EPSG:4979").transform(*far[0])[2])
    bad, h = implausible_heights(far)
    assert bad.tolist() == [0, 1] and np.isnan(h).all()
    with pytest.raises(ValueError, match=r"^points: row 0 .* is too far from the Earth for a WGS84 height"):
        check_ecef_near_surface(far)
