"""parse_dms / parse_dji_metadata on the files an audit found read wrong: minutes or seconds of 60 or more,
signs beside hemisphere letters, altitudes with other units or thousands separators, GPS*Ref columns,
duplicated columns, semicolon-delimited files, line numbers after blank lines, one photo name twice."""

import csv
import math

import numpy as np
import pytest

from topoloc.data import parse_dji_metadata, parse_dms

COLUMNS = ["SourceFile", "GPSLatitude", "GPSLongitude", "AbsoluteAltitude", "GimbalYawDegree", "GimbalPitchDegree",
           "GimbalRollDegree"]
ROW = {"SourceFile": "images/DJI_0001.JPG", "GPSLatitude": "46.3704", "GPSLongitude": "7.067",
       "AbsoluteAltitude": "+1523.45", "GimbalYawDegree": "-25.3", "GimbalPitchDegree": "-60.0",
       "GimbalRollDegree": "0.0"}


def write(path, rows, columns=COLUMNS, **kw):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, **kw)
        w.writerow(columns)
        for row in rows:
            w.writerow([row.get(c, "") for c in columns])
    return path


def read(path, **kw):
    return parse_dji_metadata(path, vertical_datum="ellipsoidal", **kw)


@pytest.mark.parametrize("text, why", [
    ("46 deg 22' 75.00\" N, 7 deg 4' 1.20\" E", r"seconds 75\.00 >= 60"),  # read 46.3875: 2 km north
    ("46 deg 75' 1\" N, 7 deg 4' 1.20\" E", r"minutes 75 >= 60"),  # read 47.25: 100 km north
    ("-46 deg 22' 13.40\" S, 7 deg 4' 1.20\" E", "a signed value with a hemisphere letter"),  # read +45.6296
    ("95 deg 0' 0\" N, 7 deg 4' 1.20\" E", r"latitude 95 deg out of range \(\+-90\)"),
    ("46.37 200.5", r"longitude 200\.5 deg out of range \(\+-180\)"),
    ("7.067 E 46.37 E", "expected a position"),  # was (7.067, 46.37): the letter E read as an exponent
])
def test_parse_dms_refuses_what_it_read_wrong(text, why):
    with pytest.raises(ValueError, match=why):
        parse_dms(text)


def test_parse_dms_still_reads_its_formats():
    # 46 + 22/60 + 13.4/3600 = 46.370388889, worked by hand
    assert parse_dms("46 deg 22' 13.40\" S, 7 deg 4' 1.20\" W") == pytest.approx((-46.370388889, -7.067), abs=1e-9)
    assert parse_dms("46.3704, -7.067") == (46.3704, -7.067)
    assert parse_dms("46.3704 7.067") == (46.3704, 7.067)
    assert parse_dms("1e1 2e1") == (10.0, 20.0)
    assert parse_dms("46 deg 22' 59.99\" N, 7 deg 59' 0\" E")[1] == pytest.approx(7 + 59 / 60)


@pytest.mark.parametrize("text, metres", [("+1523.45", 1523.45), ("1523.45 m", 1523.45),
                                          ("1523.45 m Above Sea Level", 1523.45), ("3 m Below Sea Level", -3.0),
                                          ("-12.5", -12.5)])
def test_altitudes_exiftool_writes(tmp_path, metres, text):
    path = write(tmp_path / "m.csv", [{**ROW, "AbsoluteAltitude": text}])
    lat = math.radians(46.3704)
    a, e2 = 6378137.0, (1 / 298.257223563) * (2 - 1 / 298.257223563)
    n = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)  # z = (N (1 - e^2) + h) sin(lat), by hand
    assert read(path).poses[0, 2] == pytest.approx((n * (1 - e2) + metres) * math.sin(lat), abs=1e-6)


@pytest.mark.parametrize("text", ["1,500.5", "4922 ft", "about 12 or 13"])  # read 1 m, 4922 m and 12 m
def test_altitudes_in_other_forms_are_refused_by_line(tmp_path, text):
    path = write(tmp_path / "m.csv", [{**ROW, "AbsoluteAltitude": text}])
    with pytest.raises(ValueError, match=rf"m\.csv, line 2: expected an altitude in metres .*got {text!r}"):
        read(path)


def test_ref_columns_sign_unsigned_coordinates(tmp_path):
    # EXIF-group values are unsigned with their hemisphere in GPSLatitudeRef / GPSLongitudeRef: they were ignored
    cols = [*COLUMNS, "GPSLatitudeRef", "GPSLongitudeRef"]
    south_west = write(tmp_path / "sw.csv", [{**ROW, "GPSLatitudeRef": "South", "GPSLongitudeRef": "W"}], cols)
    north_east = write(tmp_path / "ne.csv", [{**ROW, "GPSLatitudeRef": "North", "GPSLongitudeRef": "East"}], cols)
    signed = write(tmp_path / "s.csv", [{**ROW, "GPSLatitude": "-46.3704", "GPSLongitude": "-7.067"}])
    np.testing.assert_array_equal(read(south_west).poses, read(signed).poses)
    np.testing.assert_array_equal(read(north_east).poses, read(write(tmp_path / "p.csv", [ROW])).poses)
    # already signed and agreeing: kept; disagreeing: refused by line
    agree = write(tmp_path / "a.csv", [{**ROW, "GPSLatitude": "-46.3704", "GPSLatitudeRef": "S",
                                        "GPSLongitudeRef": "E"}], cols)
    assert read(agree).poses[0, 2] < 0
    clash = write(tmp_path / "c.csv", [{**ROW, "GPSLatitude": "-46.3704", "GPSLatitudeRef": "N",
                                        "GPSLongitudeRef": "E"}], cols)
    with pytest.raises(ValueError, match=r"c\.csv, line 2: GPSLatitudeRef 'N' contradicts the latitude '-46.3704'"):
        read(clash)
    odd = write(tmp_path / "o.csv", [{**ROW, "GPSLatitudeRef": "X", "GPSLongitudeRef": "E"}], cols)
    with pytest.raises(ValueError, match=r"o\.csv, line 2: GPSLatitudeRef: expected N or S"):
        read(odd)


def test_a_column_named_twice_and_a_semicolon_file_are_refused(tmp_path):
    twice = write(tmp_path / "t.csv", [ROW], [*COLUMNS, "GimbalYawDegree"])
    with pytest.raises(ValueError, match=r"t\.csv: column\(s\) \['GimbalYawDegree'\] named twice in the header"):
        read(twice)
    # was TypeError: '<' not supported between instances of 'NoneType' and 'str'
    semi = tmp_path / "semi.csv"
    semi.write_text(";".join(["SourceFile", "GPSPosition", "AbsoluteAltitude", "GimbalYawDegree", "GimbalPitchDegree",
                              "GimbalRollDegree"]) + "\n"
                    + "a.JPG;46.3704, 7.067;1500;0;-90;0\n")
    with pytest.raises(ValueError, match=r"semi\.csv: missing column.*\(delimited by ';'\? expected commas\)$"):
        read(semi)
    semi_split = tmp_path / "semi2.csv"  # a header that parses, a row with a comma: more cells than the header
    semi_split.write_text(",".join(COLUMNS) + "\n" + "a.JPG,46.3704,7.067,1500,0,-90,0,extra\n")
    with pytest.raises(ValueError, match=r"semi2\.csv, line 2: 8 cells under a header of 7; expected a comma-"):
        read(semi_split)


def test_messages_name_the_physical_line_and_the_column(tmp_path):
    path = tmp_path / "m.csv"
    rows = [ROW, {**ROW, "SourceFile": "b.JPG", "GimbalYawDegree": "abc"}]
    write(path, rows)
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0], text[1], "", "", text[2]]) + "\n")  # the bad row on line 5
    with pytest.raises(ValueError, match=r"m\.csv, line 5: GimbalYawDegree: expected a number of degrees, got 'abc'$"):
        read(path)
    write(path, [{**ROW, "GimbalPitchDegree": "nan"}])
    with pytest.raises(ValueError, match=r"line 2: GimbalPitchDegree: expected a finite number of degrees, got 'nan'$"):
        read(path)
    write(path, [{**ROW, "GimbalPitchDegree": ""}])
    with pytest.raises(ValueError) as err:  # said its prefix twice: "m.csv, line 2: m.csv, line 2: empty ..."
        read(path)
    assert str(err.value) == f"{path}, line 2: empty GimbalPitchDegree"


def test_missing_altitude_names_every_column_that_would_do(tmp_path):
    path = write(tmp_path / "m.csv", [ROW], [c for c in COLUMNS if c != "AbsoluteAltitude"] + ["RelativeAltitude"])
    with pytest.raises(ValueError, match=r"missing an altitude column: AbsoluteAltitude or GPSAltitude \(or "
                                         r"RelativeAltitude with take_off_height_m\)"):
        read(path)


def test_one_photo_name_twice_and_a_folder_for_the_csv_are_refused(tmp_path):
    path = write(tmp_path / "m.csv", [ROW, {**ROW, "SourceFile": "other/DJI_0001.JPG"}])
    with pytest.raises(ValueError, match=r"line 3: photo name 'DJI_0001' also at line 2"):
        read(path)
    with pytest.raises(ValueError, match=r": a folder, expected a DJI metadata csv file"):
        read(tmp_path)


def test_a_pitch_outside_90_is_warned_by_line(tmp_path):
    path = write(tmp_path / "m.csv", [ROW, {**ROW, "SourceFile": "b.JPG", "GimbalPitchDegree": "200"}])
    with pytest.warns(UserWarning, match=r"1 row\(s\) with a pitch outside \[-90, 90\] deg \(lines \[3\]\)"):
        read(path)
