"""parse_dji_metadata: DMS worked by hand, ECEF from the closed-form WGS84 formula, datums, bad input."""

import math

import numpy as np
import pytest

from topoloc.data import DEFAULT_GEOID_OFFSET_M, parse_dji_metadata, parse_dms

A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)


def ecef_by_hand(lat, lon, h):
    """X = (N + h) cos(lat) cos(lon), ..., Z = (N (1 - e^2) + h) sin(lat), N = a / sqrt(1 - e^2 sin^2 lat)."""
    p, lam = math.radians(lat), math.radians(lon)
    n = A / math.sqrt(1 - E2 * math.sin(p) ** 2)
    return [(n + h) * math.cos(p) * math.cos(lam), (n + h) * math.cos(p) * math.sin(lam),
            (n * (1 - E2) + h) * math.sin(p)]


HEADER = "SourceFile,GPSPosition,AbsoluteAltitude,RelativeAltitude,GimbalYawDegree,GimbalPitchDegree,GimbalRollDegree\n"
ROWS = (
    "images/DJI_0001.JPG,\"46 deg 22' 13.40\"\" N, 7 deg 4' 1.20\"\" E\",+1523.45,+113.45,-25.3,-60.0,0.0\n"
    "images/DJI_0002.JPG,\"46 deg 22' 0.00\"\" N, 7 deg 3' 30.00\"\" E\",+1500.00,+90.00,170.0,-90.0,0.0\n"
)


@pytest.fixture
def meta_csv(tmp_path):
    p = tmp_path / "img_meta.csv"
    p.write_text(HEADER + ROWS)
    return p


class TestParseDms:
    def test_hand_values_and_hemispheres(self):
        lat, lon = parse_dms("46 deg 22' 13.40\" N, 7 deg 4' 1.20\" E")
        assert lat == pytest.approx(46 + 22 / 60 + 13.40 / 3600, abs=1e-12)
        assert lon == pytest.approx(7 + 4 / 60 + 1.20 / 3600, abs=1e-12)
        assert parse_dms("33 deg 51' 54.00\" S, 151 deg 12' 36.00\" E") == pytest.approx((-33.865, 151.21))
        assert parse_dms("7 deg 30' 0.00\" W, 40 deg 0' 0.00\" N") == pytest.approx((40.0, -7.5))
        assert parse_dms("46.3705 7.065") == (46.3705, 7.065)

    def test_decimal_degrees_with_hemispheres_as_exiftool_c_writes_them(self):
        # exiftool -c "%.6f" writes "46.370389 N, 7.067000 E" (and "%.6f degrees" "... degrees N"): it was refused
        assert parse_dms("46.370389 N, 7.067000 E") == (46.370389, 7.067)
        assert parse_dms("54.989667 degrees N, 1.910167 degrees W") == (54.989667, -1.910167)  # exiftool's example
        dms = parse_dms("33 deg 51' 54.00\" S, 151 deg 12' 36.00\" E")
        assert parse_dms("33.865 S, 151.21 E") == pytest.approx(dms)
        # no other reading of numbers: degrees minutes seconds without their marks, a sign and a hemisphere
        for text in ("54 59 22.80000000 N, 1 54 36.60000000 W", "-46.37 S, 7.06 E", "46.37 N, 7.06 E, 1.0 E"):
            with pytest.raises(ValueError, match="expected a position"):
                parse_dms(text)

    def test_bad(self):
        for text in ["46 deg 22' 13.40\" N", "hello", "1 2 3"]:
            with pytest.raises(ValueError, match="expected a position"):
                parse_dms(text)


class TestParseDjiMetadata:
    def test_amsl_with_default_geoid(self, meta_csv):
        meta = parse_dji_metadata(meta_csv, vertical_datum="amsl")
        assert meta.names == ["DJI_0001", "DJI_0002"] and meta.poses.shape == (2, 6)
        lat, lon = 46 + 22 / 60 + 13.40 / 3600, 7 + 4 / 60 + 1.20 / 3600
        np.testing.assert_allclose(meta.poses[0, :3], ecef_by_hand(lat, lon, 1523.45 + 49.5), atol=1e-4)
        np.testing.assert_allclose(meta.poses[:, 3:], [[-25.3, -60.0, 0.0], [170.0, -90.0, 0.0]])
        assert DEFAULT_GEOID_OFFSET_M == 49.5

    def test_datums_differ_by_the_geoid_offset(self, meta_csv):
        ell = parse_dji_metadata(meta_csv, vertical_datum="ellipsoidal").poses
        amsl = parse_dji_metadata(meta_csv, vertical_datum="amsl", geoid_offset_m=50.0).poses
        np.testing.assert_allclose(np.linalg.norm(amsl[:, :3] - ell[:, :3], axis=1), 50.0, atol=1e-6)

    def test_relative_altitude(self, meta_csv):
        rel = parse_dji_metadata(meta_csv, vertical_datum="ellipsoidal", take_off_height_m=1410.0).poses
        lat, lon = 46 + 22 / 60, 7 + 3.5 / 60
        np.testing.assert_allclose(rel[1, :3], ecef_by_hand(lat, lon, 1410.0 + 90.0), atol=1e-4)

    def test_decimal_positions_with_hemispheres(self, tmp_path):
        p = tmp_path / "meta.csv"
        p.write_text("SourceFile,GPSPosition,GPSLatitude,GPSLongitude,AbsoluteAltitude,GimbalYawDegree,"
                     "GimbalPitchDegree,GimbalRollDegree\n"
                     "DJI_1.JPG,\"46.370389 N, 7.067000 W\",,,1500,10,-45,1\n")
        meta = parse_dji_metadata(p, vertical_datum="ellipsoidal")
        np.testing.assert_allclose(meta.poses[0], [*ecef_by_hand(46.370389, -7.067, 1500.0), 10, -45, 1], atol=1e-4)
        p.write_text("SourceFile,GPSLatitude,GPSLongitude,AbsoluteAltitude,GimbalYawDegree,GimbalPitchDegree,"
                     "GimbalRollDegree\nDJI_1.JPG,46.370389 S,7.067000 E,1500,10,-45,1\n")
        meta = parse_dji_metadata(p, vertical_datum="ellipsoidal")
        np.testing.assert_allclose(meta.poses[0, :3], ecef_by_hand(-46.370389, 7.067, 1500.0), atol=1e-4)

    def test_camera_angles_and_separate_lat_lon(self, tmp_path):
        p = tmp_path / "meta.csv"
        p.write_text(
            "SourceFile,GPSLatitude,GPSLongitude,GPSAltitude,CameraYaw,CameraPitch,CameraRoll\n"
            "a/IMG_1.jpg,\"46 deg 30' 0.00\"\" N\",\"6 deg 30' 0.00\"\" E\",400.0 m Above Sea Level,10,-45,1\n"
        )
        meta = parse_dji_metadata(p, vertical_datum="ellipsoidal")
        np.testing.assert_allclose(meta.poses[0], [*ecef_by_hand(46.5, 6.5, 400.0), 10, -45, 1], atol=1e-4)

    def test_bad_input(self, meta_csv, tmp_path):
        with pytest.raises(TypeError):
            parse_dji_metadata(meta_csv)  # the vertical datum must be chosen
        with pytest.raises(ValueError, match="vertical_datum"):
            parse_dji_metadata(meta_csv, vertical_datum="msl")
        with pytest.raises(FileNotFoundError, match="nope.csv"):
            parse_dji_metadata(tmp_path / "nope.csv", vertical_datum="amsl")
        bad = tmp_path / "bad.csv"
        bad.write_text(HEADER.replace("GimbalRollDegree", "Roll") + ROWS)
        with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['GimbalRollDegree'\]"):
            parse_dji_metadata(bad, vertical_datum="amsl")
        bad.write_text(HEADER + ROWS.replace("+1500.00", ""))
        with pytest.raises(ValueError, match="bad.csv, line 3: empty AbsoluteAltitude"):
            parse_dji_metadata(bad, vertical_datum="amsl")
        bad.write_text(HEADER + ROWS.replace("7 deg 4' 1.20\"\" E", "xx"))
        with pytest.raises(ValueError, match="bad.csv, line 2: expected a position"):
            parse_dji_metadata(bad, vertical_datum="amsl")


def test_metres_given_as_text_and_files_that_are_not_text_are_named(meta_csv, tmp_path):
    # each was numpy's "ufunc 'isfinite' not supported for the input types"
    with pytest.raises(ValueError, match=r"^geoid_offset_m: expected a number of metres, got '49.5'$"):
        parse_dji_metadata(meta_csv, vertical_datum="amsl", geoid_offset_m="49.5")
    with pytest.raises(ValueError, match=r"^take_off_height_m: expected a number of metres, got '1400'$"):
        parse_dji_metadata(meta_csv, vertical_datum="amsl", take_off_height_m="1400")
    with pytest.raises(ValueError, match=r"^geoid_offset_m: expected a number of metres, got True$"):
        parse_dji_metadata(meta_csv, vertical_datum="amsl", geoid_offset_m=True)
    # numpy numbers are numbers: the same rows as the Python float
    np.testing.assert_array_equal(
        parse_dji_metadata(meta_csv, vertical_datum="amsl", geoid_offset_m=np.float32(49.5),
                           take_off_height_m=np.int64(1400)).poses,
        parse_dji_metadata(meta_csv, vertical_datum="amsl", geoid_offset_m=49.5, take_off_height_m=1400.0).poses)
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")  # was a UnicodeDecodeError
    with pytest.raises(ValueError, match=r"photo.png: not a UTF-8 text file \(a DJI metadata CSV\)"):
        parse_dji_metadata(photo, vertical_datum="amsl")
