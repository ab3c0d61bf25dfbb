"""`Localisation` on poses worked by hand: the frame's columns, no photos, a NaN pose, a bool geoid offset."""

import warnings

import numpy as np
import pytest

from topoloc.evaluation.localisation import Localisation
from topoloc.geodesy import LocalFrame

# An origin of round numbers, not one of TOPO's scenes: each column must carry its own value.
FRAME = LocalFrame(lat_deg=46.5, lon_deg=6.625, h_m=400.0)


def _above_origin(up_m):
    """A nadir camera ``up_m`` metres straight above the frame's origin (ENU)."""
    c2w = np.eye(4)
    c2w[:3, :3] = np.diag([1.0, -1.0, -1.0])
    c2w[2, 3] = up_m
    return c2w


def test_a_camera_above_the_origin_and_the_frame_columns():
    # Up in ENU is the ellipsoid's normal at the origin: 100 m up keeps latitude and longitude and adds 100 m of
    # ellipsoidal height (400 + 100); above sea level, 500 - 49.5 (the default geoid offset).
    loc = Localisation(["a"], _above_origin(100.0)[None], FRAME)
    row = loc.rows()[0]
    assert row["lat_deg"] == pytest.approx(46.5, abs=1e-10)
    assert row["lon_deg"] == pytest.approx(6.625, abs=1e-10)
    assert row["h_m"] == pytest.approx(500.0, abs=1e-6)
    assert row["h_amsl_m"] == pytest.approx(450.5, abs=1e-6)
    assert (row["frame_lat_deg"], row["frame_lon_deg"], row["frame_h_m"]) == (46.5, 6.625, 400.0)
    assert (row["east_m"], row["north_m"], row["up_m"]) == (0.0, 0.0, 100.0)
    assert (row["view_east"], row["view_north"], row["view_up"]) == (0.0, 0.0, -1.0)
    assert row["pitch_deg"] == pytest.approx(-90.0, abs=1e-6)


def test_no_photos_give_empty_columns():
    loc = Localisation([], np.zeros((0, 4, 4)), FRAME)
    assert len(loc) == 0 and loc.rows() == []
    for name in ("lat_deg", "lon_deg", "h_m", "h_amsl_m"):
        assert getattr(loc, name).shape == (0,), name
    for name in ("ecef_m", "ypr_deg", "enu_m", "view_enu", "view_ecef"):
        assert getattr(loc, name).shape == (0, 3), name


def test_a_nan_pose_names_its_photo_not_the_first():
    c2w = np.stack([_above_origin(100.0)] * 3)
    c2w[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"the model predicted NaN or inf poses \(photos \['b'\]\)$"):
        Localisation(["a", "b", "c"], c2w, FRAME)


@pytest.mark.parametrize("offset", [True, False])
def test_a_bool_geoid_offset_is_refused(offset):
    # True is a numbers.Real (== 1): without its own check it was read as a geoid offset of 1 m.
    with pytest.raises(ValueError, match=r"^geoid_offset_m: expected a geoid undulation in metres"):
        Localisation(["a"], _above_origin(100.0)[None], FRAME, geoid_offset_m=offset)


def test_a_nan_pose_and_too_few_names_are_refused_by_the_names_count():
    # The NaN message names photos, so the names are checked first: with two names for three poses and the
    # third one NaN, this was an IndexError; with the names as a generator, "'generator' object is not
    # subscriptable".
    c2w = np.stack([_above_origin(100.0)] * 3)
    c2w[2, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"^Localisation names: expected 3 names \(one per pose\), got 2$"):
        Localisation(["a", "b"], c2w, FRAME)
    with pytest.raises(ValueError, match=r"the model predicted NaN or inf poses \(photos \['c'\]\)$"):
        Localisation((name for name in "abc"), c2w, FRAME)


def test_a_height_refusal_names_three_photos_then_an_ellipsis():
    # 200 km straight up from the origin (400 m): 200,400 m, above PLAUSIBLE_HEIGHT_M's 100 km.
    ok, high = _above_origin(100.0), _above_origin(200_000.0)
    with pytest.raises(ValueError, match=r"placed 4 of 5 photos .*\('p0': 200,400 m, 'p1': 200,400 m, "
                                         r"'p2': 200,400 m, \.\.\.\)"):
        Localisation([f"p{i}" for i in range(5)], np.stack([high, high, high, ok, high]), FRAME)
    with pytest.raises(ValueError, match=r"placed 3 of 4 photos .*\('p1': 200,400 m, 'p2': 200,400 m, "
                                         r"'p3': 200,400 m\): "):
        Localisation([f"p{i}" for i in range(4)], np.stack([ok, high, high, high]), FRAME)


def test_a_geoid_offset_beyond_minus_120_m_is_refused():
    # The geoid lies within about -106 and +85 m of the ellipsoid everywhere; the bound is +-120 m.
    with pytest.raises(ValueError, match=r"^geoid_offset_m: expected a geoid undulation in metres within \+-120"):
        Localisation(["a"], _above_origin(100.0)[None], FRAME, geoid_offset_m=-121.0)
    loc = Localisation(["a"], _above_origin(100.0)[None], FRAME, geoid_offset_m=-120.0)
    assert loc.h_amsl_m[0] == pytest.approx(620.0, abs=1e-6)  # 500 - (-120)


@pytest.mark.parametrize("field", ["names", "sources"])
def test_one_string_for_the_names_or_sources_is_refused(field):
    # "ab" is a sequence of two names, 'a' and 'b': a single photo's name given without its list would be split
    # into one name per character and matched to as many poses
    c2w = np.stack([_above_origin(100.0)] * 2)
    kwargs = {"names": ["a", "b"], "sources": None, field: "ab"}
    with pytest.raises(TypeError, match=rf"^Localisation {field}: expected one entry per pose \(a list\), got the "
                                        r"string 'ab'$"):
        Localisation(kwargs["names"], c2w, FRAME, sources=kwargs["sources"])


@pytest.mark.parametrize("lat, lon, warned", [
    (-33.86, 151.21, True),  # Sydney, where the geoid lies about 22 m above the ellipsoid
    (45.76, 4.84, True),  # Lyon: 116 km south and 260 km west of Switzerland's centre, 285 km, past the 250 km
    (45.46, 9.19, False),  # Milan: 149 km south and 74 km east, 166 km
    (46.3705, 7.065, False),  # Comballaz
])
def test_the_default_geoid_undulation_far_from_switzerland_is_warned_of(lat, lon, warned):
    # it was applied to any frame without a word: h_amsl_m and the KML altitudes off by tens of metres
    c2w = np.eye(4)[None]
    c2w[0, 2, 3] = 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Localisation(["x.jpg"], c2w, LocalFrame(lat, lon, 50.0))
        Localisation(["x.jpg"], c2w, LocalFrame(lat, lon, 50.0), geoid_offset_m=22.0)  # given: never warned
    said = [str(w.message) for w in caught if "geoid_offset_m" in str(w.message)]
    assert len(said) == (1 if warned else 0), said
    if warned:
        assert "the default 49.5 m is the geoid undulation of Switzerland" in said[0] and "--geoid-offset" in said[0]
