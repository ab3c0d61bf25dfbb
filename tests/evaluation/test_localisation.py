"""`Localisation` and the GIS writers: values against pyproj and hand-worked poses, files against
their specifications (RFC 7946 GeoJSON, KML 2.2, CSV)."""

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from pyproj import Transformer

from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M
from topoloc.data.preset import load_preset
from topoloc.geodesy import LocalFrame, cesium_to_c2w
from topoloc.evaluation.gis import gis_format, to_geojson, to_kml
from topoloc.evaluation.localisation import LOCALISATION_COLUMNS, Localisation

KML = "{http://www.opengis.net/kml/2.2}"
FRAME = LocalFrame.named("comballaz")
TO_ECEF = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
TO_GEO = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)


def _pose(lat, lon, h, yaw, pitch, roll):
    """Camera-to-ENU pose (comballaz frame) of a Cesium pose given in WGS84; ECEF by pyproj."""
    x, y, z = TO_ECEF.transform(lon, lat, h)
    return FRAME.c2w_ecef_to_enu(cesium_to_c2w([[x, y, z, yaw, pitch, roll]]))[0]


@pytest.fixture(scope="module")
def flight():
    rows = load_preset("comballaz-2020-11-06-planned")[::40]
    c2w = FRAME.cesium_to_c2w(rows)
    return rows, Localisation([f"p{i}" for i in range(len(rows))], c2w, FRAME)


def test_positions_and_angles_match_the_pose_rows(flight):
    rows, loc = flight
    np.testing.assert_allclose(loc.ecef_m, rows[:, :3], rtol=0, atol=1e-6)
    lon, lat, h = TO_GEO.transform(rows[:, 0], rows[:, 1], rows[:, 2])
    np.testing.assert_allclose(loc.lat_deg, lat, rtol=0, atol=1e-10)
    np.testing.assert_allclose(loc.lon_deg, lon, rtol=0, atol=1e-10)
    np.testing.assert_allclose(loc.h_m, h, rtol=0, atol=1e-6)
    np.testing.assert_allclose(loc.h_amsl_m, h - 49.5, rtol=0, atol=1e-6)  # the stated geoid offset
    assert DEFAULT_GEOID_OFFSET_M == 49.5
    yaw_err = (loc.ypr_deg[:, 0] - rows[:, 3] + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(yaw_err, 0.0, atol=1e-6)
    np.testing.assert_allclose(loc.ypr_deg[:, 1:], rows[:, 4:], atol=1e-6)
    # Distances are the same in ENU and ECEF.
    d_enu = np.linalg.norm(loc.enu_m[1:] - loc.enu_m[:-1], axis=1)
    d_ecef = np.linalg.norm(rows[1:, :3] - rows[:-1, :3], axis=1)
    np.testing.assert_allclose(d_enu, d_ecef, atol=1e-6)


def test_viewing_direction_worked_by_hand():
    # Yaw 90 (east), pitch -30: the camera looks east and 30 deg down.
    loc = Localisation(["a"], _pose(46.37, 7.06, 1800.0, 90.0, -30.0, 0.0)[None], FRAME)
    view_local = np.array([np.cos(np.radians(30)), 0.0, -np.sin(np.radians(30))])  # east, north, up at the camera
    east, north, up = (np.array(v) for v in ([1, 0, 0], [0, 1, 0], [0, 0, 1]))
    # The frame's axes differ from the camera site's by ~0.005 deg (0.4 km away): compare loosely.
    np.testing.assert_allclose(loc.view_enu[0], view_local[0] * east + view_local[2] * up, atol=1e-3)
    lat2, lon2, h2 = loc.view_point_wgs84(50.0)
    assert h2[0] - loc.h_m[0] == pytest.approx(-25.0, abs=1e-3)
    assert lon2[0] > loc.lon_deg[0] and lat2[0] == pytest.approx(loc.lat_deg[0], abs=1e-6)
    p1 = np.array(TO_ECEF.transform(lon2[0], lat2[0], h2[0]))
    assert np.linalg.norm(p1 - loc.ecef_m[0]) == pytest.approx(50.0, abs=1e-6)
    assert north @ loc.view_enu[0] == pytest.approx(0.0, abs=1e-3)


def test_geojson_follows_rfc7946(flight, tmp_path):
    rows, loc = flight
    path = loc.write(tmp_path / "out.geojson")
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    cams = [f for f in doc["features"] if f["properties"]["feature"] == "camera"]
    views = [f for f in doc["features"] if f["properties"]["feature"] == "view"]
    assert len(cams) == len(views) == len(loc)
    lon, lat, h = TO_GEO.transform(rows[:, 0], rows[:, 1], rows[:, 2])
    for i, f in enumerate(cams):
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        x, y, z = f["geometry"]["coordinates"]  # RFC 7946: longitude, latitude, ellipsoidal height
        assert (x, y, z) == pytest.approx((lon[i], lat[i], h[i]), abs=1e-4)
        assert 7.0 < x < 7.15 and 46.3 < y < 46.45  # Comballaz: longitude first
        assert f["properties"]["name"] == f"p{i}" and set(LOCALISATION_COLUMNS) <= set(f["properties"])
    for f in views:
        line = f["geometry"]["coordinates"]
        assert f["geometry"]["type"] == "LineString" and len(line) == 2 and all(len(p) == 3 for p in line)
        a, b = (np.array(TO_ECEF.transform(*p)) for p in line)
        assert np.linalg.norm(b - a) == pytest.approx(50.0, abs=1e-2)


def test_kml_camera_heading_tilt_and_altitude(tmp_path):
    poses = np.stack([_pose(46.37, 7.06, 1800.0, 90.0, -30.0, 0.0), _pose(46.38, 7.07, 1700.0, -45.0, -90.0, 0.0),
                      _pose(46.36, 7.05, 1600.0, 180.0, 0.0, 0.0)])
    loc = Localisation(["east & down", "nadir", "south, horizon"], poses, FRAME)
    path = loc.write(tmp_path / "out.kml")
    root = ET.parse(path).getroot()
    marks = root.findall(f"{KML}Document/{KML}Placemark")
    assert [m.find(f"{KML}name").text for m in marks] == loc.names
    # Google Earth: heading clockwise from north in [0, 360); tilt 0 = straight down, 90 = horizon.
    expected = [(90.0, 60.0, 1800.0), (315.0, 0.0, 1700.0), (180.0, 90.0, 1600.0)]
    for mark, (heading, tilt, h) in zip(marks, expected):
        cam = mark.find(f"{KML}Camera")
        assert float(cam.find(f"{KML}tilt").text) == pytest.approx(tilt, abs=1e-3)
        if tilt > 0:  # a nadir view puts its whole heading into yaw
            assert float(cam.find(f"{KML}heading").text) == pytest.approx(heading, abs=1e-3)
        assert float(cam.find(f"{KML}altitude").text) == pytest.approx(h - 49.5, abs=1e-3)  # above sea level
        assert cam.find(f"{KML}altitudeMode").text == "absolute"
        lon, lat, alt = (float(v) for v in mark.find(f"{KML}Point/{KML}coordinates").text.split(","))
        assert alt == pytest.approx(h - 49.5, abs=1e-3) and 7.0 < lon < 7.1 and 46.3 < lat < 46.4
    assert "&amp;" in path.read_text()  # names are escaped


def test_kml_heading_just_west_of_north_is_written_as_0_not_360(tmp_path):
    # np.mod(-0.00001, 360) = 359.99999, which :.4f wrote as 360.0000, outside the documented [0, 360)
    loc = Localisation(["north"], _pose(46.37, 7.06, 1800.0, -0.00001, -30.0, 0.0)[None], FRAME)
    root = ET.parse(loc.write(tmp_path / "north.kml")).getroot()
    assert root.find(f"{KML}Document/{KML}Placemark/{KML}Camera/{KML}heading").text == "0.0000"


def test_csv_columns_and_values(flight, tmp_path):
    rows, loc = flight
    path = loc.write(tmp_path / "out.csv")
    with path.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(LOCALISATION_COLUMNS) and len(table) == len(loc)
    got = np.array([[float(r[c]) for c in ("ecef_x_m", "ecef_y_m", "ecef_z_m")] for r in table])
    np.testing.assert_allclose(got, rows[:, :3], rtol=0, atol=1e-4)
    assert {float(r["frame_lat_deg"]) for r in table} == {46.3705}


def test_suffix_errors_and_validation(flight, tmp_path):
    _, loc = flight
    assert [gis_format(p) for p in ("a.CSV", "b.geojson", "c.json", "d.kml")] == ["csv", "geojson", "geojson", "kml"]
    with pytest.raises(ValueError, match=r"out\.shp.*\.kml"):
        loc.write(tmp_path / "out.shp")
    bad = loc.c2w_enu.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN.*p0"):
        Localisation(loc.names, bad, FRAME)
    with pytest.raises(ValueError, match="names"):
        Localisation(["x"], loc.c2w_enu, FRAME)
    with pytest.raises(ValueError, match="view_length_m"):
        to_geojson(loc, view_length_m=-1)
    empty = Localisation([], np.zeros((0, 4, 4)), FRAME)
    assert to_geojson(empty) == {"type": "FeatureCollection", "features": []} and "Placemark" not in to_kml(empty)


def test_an_output_that_cannot_be_a_file_is_named_before_anything_is_written(flight, tmp_path):
    # were OSErrors naming a temporary file: "[Errno 21] Is a directory: '.out.csv.<pid>.tmp' -> 'out.csv'",
    # "[Errno 17] File exists: 'notes.txt'"
    rows, loc = flight
    (tmp_path / "out.csv").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    for path, why in ((tmp_path / "out.csv", "a folder, expected a file name"),
                      (tmp_path / "notes.txt" / "out.kml", rf"'{tmp_path / 'notes.txt'}' is a file, not a folder")):
        with pytest.raises(ValueError, match=rf"^output '{path}': {why}$"):
            loc.write(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out.csv"]
    assert not any((tmp_path / "out.csv").iterdir())
    # a new folder is made: the GeoJSON's camera points are the pose rows' positions, by pyproj
    written = json.loads(loc.write(tmp_path / "new" / "out.geojson").read_text())
    cameras = [f["geometry"]["coordinates"] for f in written["features"] if f["properties"]["feature"] == "camera"]
    lon, lat, h = TO_GEO.transform(rows[:, 0], rows[:, 1], rows[:, 2])
    np.testing.assert_allclose(cameras, np.stack([lon, lat, h], 1), rtol=0, atol=1e-6)


def test_a_pose_far_off_the_earth_names_the_photo_and_the_likely_causes(flight):
    _, loc = flight
    far = loc.c2w_enu.copy()
    far[1, 2, 3] = -111_000.0  # 111 km under the frame's origin: what a one-step model predicted for a photo
    # it said "c2w_n44 translation: row 1 ... is -110... m from the WGS84 ellipsoid ... Swapped lat/lon,
    # radians for degrees, or local coordinates?", an argument the user never passed and causes they did not have
    with pytest.raises(ValueError, match=r"Localisation: the model placed 1 of \d+ photos at heights outside "
                                         r"\[-1000, 100000\] m.*'p1': -1\d\d,\d\d\d m.*not trained.*normaliser"):
        Localisation(loc.names, far, FRAME)


def test_a_given_geoid_offset_sets_heights_above_sea_level_and_the_csv(flight, tmp_path):
    rows, _ = flight
    loc = Localisation([f"p{i}" for i in range(len(rows))], FRAME.cesium_to_c2w(rows), FRAME, geoid_offset_m=47.0)
    h = np.asarray(TO_GEO.transform(rows[:, 0], rows[:, 1], rows[:, 2])[2])
    np.testing.assert_allclose(loc.h_amsl_m, h - 47.0, rtol=0, atol=1e-6)  # N = 47 m, not the default 49.5
    with loc.write(tmp_path / "out.csv").open() as f:
        table = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["h_amsl_m"]) for r in table], h - 47.0, rtol=0, atol=1e-3)
    assert {float(r["geoid_offset_m"]) for r in table} == {47.0}


def test_geojson_view_lines_take_the_asked_length_and_zero_draws_none(tmp_path):
    loc = Localisation(["a", "b"], np.stack([_pose(46.37, 7.06, 1800.0, 90.0, -30.0, 0.0),
                                             _pose(46.38, 7.07, 1700.0, 0.0, -60.0, 0.0)]), FRAME)
    doc = json.loads(loc.write(tmp_path / "out.geojson", view_length_m=10.0).read_text())
    views = [f for f in doc["features"] if f["properties"]["feature"] == "view"]
    assert [f["properties"]["length_m"] for f in views] == [10.0, 10.0]
    for f in views:
        a, b = (np.array(TO_ECEF.transform(*p)) for p in f["geometry"]["coordinates"])
        assert np.linalg.norm(b - a) == pytest.approx(10.0, abs=1e-3)  # 10 m, not the default 50
    ids = [f["id"] for f in doc["features"]]
    assert len(set(ids)) == len(ids) == 4  # a camera and its line are two features: two ids
    # 0 m: "no lines", the cameras only
    assert [f["properties"]["feature"] for f in to_geojson(loc, view_length_m=0)["features"]] == ["camera", "camera"]
    for bad in (float("nan"), float("inf"), "50", True, None):
        with pytest.raises(ValueError, match="view_length_m: expected a non-negative length in metres"):
            to_geojson(loc, view_length_m=bad)


def test_kml_heading_of_a_westward_yaw_roll_left_at_zero_and_points_above_sea_level(tmp_path):
    # Yaw -45 deg is north-west: KML's heading, clockwise from north in [0, 360), is 360 - 45 = 315.
    # A roll of 5 deg stays out of the Camera (KML's roll sign is not pinned against DJI's): <roll>0</roll>.
    poses = np.stack([_pose(46.37, 7.06, 1800.0, -45.0, -30.0, 5.0), _pose(46.38, 7.07, 1700.0, 120.0, -60.0, 0.0)])
    loc = Localisation(["nw", "se"], poses, FRAME, sources=["/photos/DJI_0001.JPG", ""])
    root = ET.parse(loc.write(tmp_path / "a & b.kml")).getroot()
    assert root.find(f"{KML}Document/{KML}name").text == "topoloc: a & b"  # escaped in the file, read back whole
    marks = root.findall(f"{KML}Document/{KML}Placemark")
    cams = [m.find(f"{KML}Camera") for m in marks]
    assert [float(c.find(f"{KML}heading").text) for c in cams] == pytest.approx([315.0, 120.0], abs=1e-3)
    assert [float(c.find(f"{KML}tilt").text) for c in cams] == pytest.approx([60.0, 30.0], abs=1e-3)  # 90 + pitch
    assert [c.find(f"{KML}roll").text for c in cams] == ["0", "0"]
    assert [m.find(f"{KML}Point/{KML}altitudeMode").text for m in marks] == ["absolute", "absolute"]
    desc = [m.find(f"{KML}description").text for m in marks]
    assert "roll 5.00 deg" in desc[0] and desc[0].endswith("; photo /photos/DJI_0001.JPG")
    assert "photo" not in desc[1]  # no source, no "photo" clause


def test_csv_angles_to_1e_9_deg_and_the_viewing_direction_a_unit_vector(tmp_path):
    # Yaw 90, pitch -30, roll 5 (deg): each in its own column, not swapped.
    lat, lon = 46.37, 7.06
    loc = Localisation(["a"], _pose(lat, lon, 1800.0, 90.0, -30.0, 5.0)[None], FRAME)
    with loc.write(tmp_path / "out.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert [float(row[c]) for c in ("yaw_deg", "pitch_deg", "roll_deg")] == pytest.approx([90.0, -30.0, 5.0], abs=1e-6)
    # degrees to 1e-9 (the docstring): 46.37 and 7.06 come back to 1e-9 deg, about 0.1 mm
    assert float(row["lat_deg"]) == pytest.approx(lat, abs=2e-9)
    assert float(row["lon_deg"]) == pytest.approx(lon, abs=2e-9)
    # the viewing direction is the camera's z axis: a unit vector (east ~cos 30, up ~-sin 30), to ~1e-9
    view = np.array([float(row[c]) for c in ("view_east", "view_north", "view_up")])
    assert np.linalg.norm(view) == pytest.approx(1.0, abs=1e-8)
    np.testing.assert_allclose(view, [np.cos(np.radians(30)), 0.0, -0.5], atol=1e-3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(geoid_offset_m=121.0), ValueError, r"geoid_offset_m: expected a geoid undulation in metres within \+-120"),
    (dict(geoid_offset_m=float("nan")), ValueError, "geoid_offset_m: expected a geoid undulation"),
    (dict(geoid_offset_m="47.5"), ValueError, "geoid_offset_m: expected a geoid undulation in metres"),
    (dict(geoid_offset_m=None), ValueError, "geoid_offset_m: expected a geoid undulation in metres"),
    (dict(sources=["a.jpg"]), ValueError, "Localisation sources: expected 2 entries"),
    (dict(frame="comballaz"), TypeError, "Localisation frame: expected a topoloc.geodesy.LocalFrame, got str"),
])
def test_localisation_refuses_bad_arguments_by_name(kwargs, error, match):
    poses = np.stack([_pose(46.37, 7.06, 1800.0, 0.0, -30.0, 0.0)] * 2)
    with pytest.raises(error, match=match):
        Localisation(**(dict(names=["a", "b"], c2w_enu=poses, frame=FRAME) | kwargs))
    # the bounds themselves are accepted: the geoid's undulation is within about -106 to +85 m on Earth
    assert Localisation(["a", "b"], poses, FRAME, geoid_offset_m=-120.0).h_amsl_m[0] == pytest.approx(1920.0, abs=1e-6)


def test_a_pose_far_above_the_earth_is_refused_too(flight):
    _, loc = flight
    high = loc.c2w_enu.copy()
    high[0, 2, 3] += 200_000.0  # 200 km up: above the 100 km the check allows
    with pytest.raises(ValueError,
                       match=r"placed 1 of \d+ photos at heights outside \[-1000, 100000\] m.*'p0': 2\d\d,\d\d\d m"):
        Localisation(loc.names, high, FRAME)
