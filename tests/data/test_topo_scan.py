"""TopoFlight's reading of a flight folder, where mutation testing showed it unpinned: pose files, pic names,
render names, real photos, semantics, problem lists. References are the files the tests write, pyproj and
facts of the TOPO-DataGen layout (tests/data/conftest.py writes it)."""

from __future__ import annotations

import re
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer

from topoloc.data.preset import load_preset
from topoloc.data.topo import TopoFlight, read_pic_names, read_pose_file

PLANNED = "comballaz-2020-11-06-planned"


# ------------------------------------------------------------------------------------ pose files
def test_read_pose_file_refuses_a_folder_and_arrays_that_are_no_rows(tmp_path):
    (tmp_path / "f_poses.npy").mkdir()
    with pytest.raises(FileNotFoundError, match=r"f_poses.npy: a folder, expected a pose file"):
        read_pose_file(tmp_path / "f_poses.npy")
    rows = load_preset("comballaz-LHS")[:2]
    for name, arr in [("one_row.npy", rows[0]), ("three_d.npy", rows[:, :, None]), ("text.npy", rows.astype("U12")),
                      ("complex.npy", rows.astype(np.complex128))]:  # was taken, the imaginary part dropped
        np.save(tmp_path / name, arr)
        with pytest.raises(ValueError, match=rf"{name}: expected a numeric array of shape \(N, 6\) .*got shape "
                                             rf"{re.escape(str(arr.shape))} dtype {arr.dtype}"):
            read_pose_file(tmp_path / name)


def test_read_pose_file_gives_float64_rows(tmp_path):
    rows32 = load_preset("comballaz-LHS")[:3].astype(np.float32)
    np.save(tmp_path / "p.npy", rows32)
    with pytest.warns(UserWarning, match="float32"):
        rows = read_pose_file(tmp_path / "p.npy")
    assert rows.dtype == np.float64 and rows.shape == (3, 6)
    np.testing.assert_array_equal(rows, rows32)  # every float32 is exactly a float64


@pytest.mark.parametrize("dtype, how", [(np.int32, "whole metres and degrees"), (np.uint32, "whole metres and degrees"),
                                        (np.float16, r"nothing useful \(float16 overflows\)")])
def test_pose_files_of_integers_and_float16_are_warned_about(tmp_path, dtype, how):
    # ECEF coordinates of Comballaz are about 4.4e6 m: whole metres in integers, beyond float16's largest 65504
    assert np.finfo(np.float16).max == 65504
    with np.errstate(over="ignore"):
        np.save(tmp_path / "p.npy", np.abs(load_preset("comballaz-LHS")[:2]).astype(dtype))
    with pytest.warns(UserWarning, match=rf"p.npy: the pose rows are stored as {np.dtype(dtype)}, not float64: they "
                                         rf"hold the positions to {how}"):
        read_pose_file(tmp_path / "p.npy")


def test_a_row_far_above_the_earth_is_a_bad_row(tmp_path, make_topo_flight):
    rows = load_preset("comballaz-LHS")[:3].copy()
    rows[1, :3] *= 2  # twice as far from the Earth's centre: about 6,370 km up (pyproj below)
    h = Transformer.from_crs("EPSG:4978", "EPSG:4979").transform(*rows[1, :3])[2]
    assert 6.0e6 < h < 6.7e6
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3, poses=rows)
    with pytest.raises(ValueError, match=r"_00001_img.png: row 1 of comballaz-LHS_poses.npy: position far from the "
                                         r"Earth's surface"):
        TopoFlight(tmp_path, "comballaz-LHS", max_distance_m=None)


# ------------------------------------------------------------------------------------ pic names
def test_pic_names_are_split_on_commas_and_newlines_without_empty_names(tmp_path):
    path = tmp_path / "f_pic_names.csv"
    path.write_bytes(b"DJI_0001,DJI_0002\nDJI_0003\r\n\nDJI_0004,\n")
    assert read_pic_names(path) == ["DJI_0001", "DJI_0002", "DJI_0003", "DJI_0004"]
    latin1 = tmp_path / "latin1_pic_names.csv"
    latin1.write_bytes("DJI_0001,\xe9t\xe9.JPG\n".encode("latin-1"))  # a lone 0xe9 byte is no UTF-8
    with pytest.raises(ValueError, match=r"latin1_pic_names.csv: not UTF-8 text .*expected comma-separated photo "):
        read_pic_names(latin1)  # was a bare "'utf-8' codec can't decode byte" without the file


def test_pic_names_of_another_count_than_the_pose_rows_are_refused(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, PLANNED, n_rows=4)
    (folder / f"{PLANNED}_pic_names.csv").write_text("a,b,c,d,e")
    with pytest.raises(ValueError, match=rf"{PLANNED}_pic_names.csv: 5 photo names but {PLANNED}_poses.npy has 4 "
                                         "rows; expected one name per row"):
        TopoFlight(tmp_path, PLANNED)


def test_real_photos_without_a_pic_names_file_are_refused_naming_it(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, PLANNED, n_rows=3)
    (folder / f"{PLANNED}_pic_names.csv").unlink()
    assert len(TopoFlight(tmp_path, PLANNED)) == 3  # the renders alone need no pic names
    with pytest.raises(FileNotFoundError, match=rf"{PLANNED}_pic_names.csv: pic-names file not found; it is needed "
                                                "to pair real photos"):
        TopoFlight(tmp_path, PLANNED, domain="real")


def test_a_photo_name_listed_twice_is_ambiguous(tmp_path, make_topo_flight, row_of_image):
    make_topo_flight(tmp_path, PLANNED, n_rows=4, pic_names=["a", "b", "a", "c"])
    left_out = "2 of 4 rendered pose rows have no real photo"
    with pytest.warns(UserWarning, match=left_out), pytest.raises(ValueError, match=rf"a.JPG: the name appears "
                                                                  rf"more than once in {PLANNED}_pic_names.csv"):
        TopoFlight(tmp_path, PLANNED, domain="real")
    with pytest.warns(UserWarning, match=left_out), pytest.warns(UserWarning, match="skipped 1 bad file"):
        ds = TopoFlight(tmp_path, PLANNED, domain="real", on_error="skip")
    assert ds.rows.tolist() == [1, 3] and [row_of_image(s["image"]) for s in ds] == [1, 3]


# ------------------------------------------------------------------------------------ renders and photos
def test_a_flight_name_with_regex_characters_is_matched_literally(tmp_path, make_topo_flight, row_of_image):
    flight = "comballaz-planned (copy)+1"  # a copied folder; "(copy)" and "+" mean something else in a regex
    make_topo_flight(tmp_path, flight, n_rows=3)
    ds = TopoFlight(tmp_path, flight)
    assert ds.rows.tolist() == [0, 1, 2] and [row_of_image(s["image"]) for s in ds] == [0, 1, 2]


def test_bad_files_are_listed_in_name_order_five_and_a_count(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=2)
    letters = "gcaefdb"  # written out of order: the listing must not follow the folder's order
    for c in letters:
        (folder / f"comballaz-LHS_x{c}_img.png").write_bytes(b"")
    with pytest.raises(ValueError) as err:
        TopoFlight(tmp_path, "comballaz-LHS")
    lines = str(err.value).splitlines()
    assert lines[0] == ("TopoFlight comballaz-LHS: 7 bad file(s) (repair or remove them; from Python, "
                        "TopoFlight(..., on_error='skip') skips them):")  # the CLI has no on_error to pass
    assert [line.split("comballaz-LHS_x")[1][0] for line in lines[1:6]] == list("abcde")
    assert lines[6:] == ["... and 2 more"]
    with pytest.warns(UserWarning, match=r"skipped 7 bad file\(s\), first: .*comballaz-LHS_xa_img.png: name does not"):
        ds = TopoFlight(tmp_path, "comballaz-LHS", on_error="skip")
    assert [p.split("comballaz-LHS_x")[1][0] for p, _ in ds.skipped] == sorted(letters) and len(ds) == 2


def test_a_folder_named_like_a_photo_is_not_a_photo(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path, PLANNED, n_rows=3)
    (tmp_path / f"{PLANNED}-real" / "thumbnails.jpg").mkdir()
    assert TopoFlight(tmp_path, PLANNED, domain="real").rows.tolist() == [0, 1, 2]


def test_two_photos_of_one_row_are_refused(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, PLANNED, n_rows=3)
    name = read_pic_names(folder / f"{PLANNED}_pic_names.csv")[1]
    real = tmp_path / f"{PLANNED}-real"
    shutil.copy(real / f"{name}.JPG", real / f"{name}.png")
    with pytest.raises(ValueError, match=rf"{name}.png: row 1 already has the photo {name}.JPG"):
        TopoFlight(tmp_path, PLANNED, domain="real", on_error="skip")  # like a duplicate render: always refused


def test_rows_without_a_photo_are_named_by_the_first_row_and_its_photo_name(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, PLANNED, n_rows=6, real_rows=[0, 2, 3, 5])
    names = (folder / f"{PLANNED}_pic_names.csv").read_text().split(",")
    with pytest.warns(UserWarning, match=rf"2 of 6 rendered pose rows have no real photo .* \(first: row 1, "
                                         rf"'{names[1]}'\)"):
        TopoFlight(tmp_path, PLANNED, domain="real")


def test_check_images_compares_the_sizes_of_the_photos_read(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path, PLANNED, n_rows=4)
    photo = sorted((tmp_path / f"{PLANNED}-real").glob("*.JPG"))[0]
    Image.new("RGB", (30, 20)).save(photo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the renders are all 24x16: nothing to say
        TopoFlight(tmp_path, PLANNED, check_images=True)
    with pytest.warns(UserWarning, match=rf"images of 2 sizes: 3 of 24x18 \(e\.g\. .*\.JPG\), 1 of 30x20 \(e\.g\. "
                                         rf".*{photo.name}\)"):
        TopoFlight(tmp_path, PLANNED, domain="real", check_images=True)


def test_check_images_warns_of_photos_with_an_exif_orientation(tmp_path, make_topo_flight):
    # topoloc localise warned of them; training on the same photos read them as stored without a word
    make_topo_flight(tmp_path, PLANNED, n_rows=4)
    photo = sorted((tmp_path / f"{PLANNED}-real").glob("*.JPG"))[1]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 deg clockwise to display" (EXIF 2.3, tag 274)
    with Image.open(photo) as img:
        img.convert("RGB").save(photo, exif=exif)
    with pytest.warns(UserWarning, match=rf"TopoFlight {PLANNED} \(real\): 1 image\(s\) carry an EXIF Orientation "
                                         rf"other than 1 \(first: .*{photo.name}: 6\); their pixels are used as "
                                         r"stored"):
        TopoFlight(tmp_path, PLANNED, domain="real", check_images=True)


# ------------------------------------------------------------------------------------ samples
def test_a_split_carries_the_pose_rows_of_its_own_images(tmp_path, make_topo_flight, row_of_image):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=40, size_hw=(2, 2))
    rows = np.load(folder / "comballaz-LHS_poses.npy")
    enu = Transformer.from_pipeline("+proj=topocentric +ellps=WGS84 +lat_0=46.3705 +lon_0=7.065 +h_0=1410")
    ds = TopoFlight(tmp_path, "comballaz-LHS", split="test")
    assert 0 < len(ds) < 40
    for s in ds:
        assert row_of_image(s["image"]) == s["index"]
        np.testing.assert_array_equal(s["cesium"].numpy(), rows[s["index"]])
        np.testing.assert_allclose(s["c2w"][:3, 3].numpy(), enu.transform(*rows[s["index"], :3]), atol=1e-6)


def test_images_without_semantics_are_skipped_with_their_rows_and_photos(tmp_path, make_topo_flight, row_of_image):
    folder = make_topo_flight(tmp_path, PLANNED, n_rows=4, semantics=True)
    (missing,) = folder.glob(f"{PLANNED}_00002_*_semantics.npy")
    missing.unlink()
    with pytest.warns(UserWarning, match=f"TopoFlight {PLANNED}: skipped 1 images without semantics"):
        ds = TopoFlight(tmp_path, PLANNED, domain="real", load_semantics=True, on_error="skip")
    assert ds.rows.tolist() == [0, 1, 3] and ds.skipped == [(str(missing), "semantics file not found")]
    names = (folder / f"{PLANNED}_pic_names.csv").read_text().split(",")
    for s in ds:  # the conftest fills the semantics of row r with r % 12
        assert row_of_image(s["image"]) == s["index"] and s["name"] == names[s["index"]]
        assert set(s["semantics"].unique().tolist()) == {s["index"] % 12}
