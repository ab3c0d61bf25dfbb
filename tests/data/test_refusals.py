"""Odd files a first user meets: each is read correctly or refused by name, never silently misread."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer

from topoloc.data import TopoFlight
from topoloc.data._images import check_image, read_rgb
from topoloc.data.topo import read_pic_names


def test_16_bit_greyscale_png_reads_at_its_level(tmp_path):
    # 32896 = 128 * 257 is mid-grey in 16 bits; PIL's convert("RGB") used to clip it to 255 (white).
    levels = np.array([[0, 257 * 10, 32896], [257 * 200, 65535, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(levels).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    image = read_rgb(path)
    expected = np.array([[0, 10, 128], [200, 255, 255]], dtype=np.uint8)
    assert image.shape == (3, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[c].numpy(), expected)
    assert check_image(path) is None


def test_16_bit_render_in_a_flight_is_not_white(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
    render = folder / "comballaz-LHS_00001_img.png"
    Image.fromarray(np.full((16, 24), 32896, dtype=np.uint16)).save(render)
    ds = TopoFlight(tmp_path, "comballaz-LHS", check_images=True)
    assert int(ds[1]["image"].max()) == 128


def test_float_image_is_refused_by_name(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(path)
    with pytest.raises(ValueError, match="float.tif"):
        read_rgb(path)
    assert "8- or 16-bit" in check_image(path)


def test_a_32_bit_integer_tiff_is_refused_even_with_small_values(tmp_path):
    # its values fit 16 bits, so it was read as a 16-bit image: 200 became 200 / 257 = 1
    path = tmp_path / "int32.tif"
    Image.fromarray(np.full((5, 5), 200, dtype=np.int32)).save(path)
    with pytest.raises(ValueError, match=r"int32.tif: a mode I \(int32\) image of 32 bits per sample; expected an 8- "
                                         r"or 16-bit"):
        read_rgb(path)
    assert "32 bits per sample" in check_image(path)
    sixteen = tmp_path / "uint16.tif"  # a 16-bit TIFF of the same values is read: 200 / 257 rounds to 1
    Image.fromarray(np.full((5, 5), 200, dtype=np.uint16)).save(sixteen)
    assert int(read_rgb(sixteen)[0, 0, 0]) == 1


def _swapped_lat_lon_rows(n: int) -> np.ndarray:
    """Comballaz positions converted to ECEF with latitude and longitude swapped (pyproj, independent)."""
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    lat, lon, h = 46.3705 + 0.001 * np.arange(n), np.full(n, 7.065), np.full(n, 1500.0)
    x, y, z = to_ecef.transform(lat, lon, h)  # always_xy expects (lon, lat): this is the swap
    return np.column_stack([x, y, z, np.zeros(n), np.full(n, -90.0), np.zeros(n)])


def test_positions_with_lat_lon_swapped_are_an_error_naming_file_and_row(tmp_path, make_topo_flight):
    poses = np.load(make_topo_flight(tmp_path / "ok", "comballaz-LHS", n_rows=4) / "comballaz-LHS_poses.npy")
    poses[2] = _swapped_lat_lon_rows(1)[0]
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4, poses=poses)
    with pytest.raises(ValueError,
                       match=r"row 2 of comballaz-LHS_poses.npy: position \d+\.\d km from the origin") as info:
        TopoFlight(tmp_path, "comballaz-LHS")
    km = float(str(info.value).split("position ")[1].split(" km")[0])
    assert 5_000 < km < 6_000  # thousands of km, on the Earth's surface
    assert "comballaz-LHS_00002_img.png" in str(info.value)
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        skipped = TopoFlight(tmp_path, "comballaz-LHS", on_error="skip")
    assert skipped.rows.tolist() == [0, 1, 3]
    assert len(TopoFlight(tmp_path, "comballaz-LHS", max_distance_m=None)) == 4
    with pytest.raises(ValueError, match="max_distance_m"):
        TopoFlight(tmp_path, "comballaz-LHS", max_distance_m=-1)


def test_max_distance_m_takes_numpy_numbers(tmp_path, make_topo_flight):
    # np.float32(45_000) and np.int64(30_000) were refused as "expected a positive number of metres"
    make_topo_flight(tmp_path, "EPFL-2020-09-24-planned", n_rows=4)
    # independent reference: the EPFL origin lies 41.5 km from the Comballaz origin (pyproj), and TOPO's flights
    # lie within 2 km of their own origin, so every row is 39.5 to 43.5 km from the Comballaz origin
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978")
    epfl, comballaz = (np.array(to_ecef.transform(*lat_lon_h)) for lat_lon_h in ((46.5191, 6.5668, 390.0),
                                                                                  (46.3705, 7.065, 1410.0)))
    assert 41_000 < np.linalg.norm(epfl - comballaz) < 42_000
    flight = dict(root=tmp_path, flight="EPFL-2020-09-24-planned", frame="comballaz")
    for far_enough in (np.float32(45_000), np.float64(45_000), np.int64(45_000)):
        ds = TopoFlight(**flight, max_distance_m=far_enough)
        assert len(ds) == 4 and ds.max_distance_m == 45_000.0 and type(ds.max_distance_m) is float
    with pytest.raises(ValueError, match=r"^frame: 'comballaz' .* does not fit flight EPFL-2020-09-24-planned: its "
                                         r"nearest position is 4\d\.\d km from that origin \(more than "
                                         r"max_distance_m=30000 m\)"):
        TopoFlight(**flight, max_distance_m=np.int64(30_000))
    for bad in (0, 0.0, -1, np.float32(-5.0), float("nan"), True, np.bool_(True), "45000", [45_000]):
        with pytest.raises(ValueError, match="max_distance_m: expected a positive number of metres or None"):
            TopoFlight(**flight, max_distance_m=bad)


def test_pic_names_with_a_utf8_bom_are_read(tmp_path, make_topo_flight, row_of_image):
    folder = make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4)
    pic_file = folder / "comballaz-2020-11-06-planned_pic_names.csv"
    names = pic_file.read_text().split(",")
    pic_file.write_bytes(b"\xef\xbb\xbf" + ",".join(names).encode("utf-8"))
    assert read_pic_names(pic_file) == names
    ds = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="real")
    assert len(ds) == 4 and [row_of_image(ds[i]["image"]) for i in range(4)] == [0, 1, 2, 3]


def test_missing_real_photos_are_counted(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=6, real_rows=[0, 2, 3, 5])
    with pytest.warns(UserWarning, match="2 of 6 rendered pose rows have no real photo"):
        ds = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="real")
    assert ds.rows.tolist() == [0, 2, 3, 5]


def test_mixed_image_sizes_are_reported_by_check_images(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=5)
    Image.fromarray(np.zeros((30, 20, 4), dtype=np.uint8), "RGBA").save(folder / "comballaz-LHS_00003_img.png")
    with pytest.warns(UserWarning, match=r"images of 2 sizes: 4 of 24x16 \(e\.g\. .*comballaz-LHS_00000_img\.png\), "
                                         r"1 of 20x30 \(e\.g\. .*comballaz-LHS_00003_img\.png\)"):
        TopoFlight(tmp_path, "comballaz-LHS", check_images=True)


def test_flags_and_seeds_of_another_type_are_refused(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4)
    # "no" is a truthy string: it asked for the semantic maps; True passed as seed 1.
    with pytest.raises(TypeError, match="load_semantics: expected True or False, got str 'no'"):
        TopoFlight(tmp_path, "comballaz-2020-11-06-planned", load_semantics="no")
    with pytest.raises(TypeError, match="check_images: expected True or False, got int 1"):
        TopoFlight(tmp_path, "comballaz-2020-11-06-planned", check_images=1)
    with pytest.raises(ValueError, match="split_seed: expected a non-negative integer, got True"):
        TopoFlight(tmp_path, "comballaz-2020-11-06-planned", split="train", split_seed=True)
    with pytest.raises(ValueError, match="split_block: expected a positive integer, got 2.5"):
        TopoFlight(tmp_path, "comballaz-2020-11-06-planned", split="train", split_block=2.5)
    assert len(TopoFlight(tmp_path, "comballaz-2020-11-06-planned", split="train", split_seed=np.int64(3),
                          load_semantics=np.bool_(False))) > 0


def test_an_npz_archive_is_refused_naming_the_file(tmp_path):
    from topoloc.data import load_pose_file

    path = tmp_path / "poses.npz"
    np.savez(path, rows=np.zeros((2, 6)))
    # NumPy returns an archive for it, which failed later as "'NpzFile' object has no attribute 'ndim'".
    with pytest.raises(ValueError, match=r"poses.npz: the pose file is an .npz archive of arrays \['rows'\]"):
        load_pose_file(path)


@pytest.mark.parametrize("split", ["all", [0, 1]])
@pytest.mark.parametrize("kwargs, expected", [({"split_seed": -1}, "split_seed: expected a non-negative integer"),
                                              ({"split_block": 0}, "split_block: expected a positive integer")])
def test_bad_split_settings_are_refused_whatever_the_split(make_topo_flight, tmp_path, split, kwargs, expected):
    # they were checked only where a split drawn from them was asked for: split="all" took them silently
    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
    with pytest.raises(ValueError, match=expected):
        TopoFlight(tmp_path, "comballaz-LHS", split=split, **kwargs)


def test_a_split_of_another_type_is_refused_before_the_folder_is_read(tmp_path):
    # split=3 first said the folder was missing, then (with the folder there) "'int' object is not iterable".
    for bad in (3, None, [[1, 2]], [0.5]):
        with pytest.raises(ValueError, match=r"split: expected one of \('train', 'val', 'test', 'all'\)"):
            TopoFlight(tmp_path, "comballaz-LHS", split=bad)


def test_a_transform_that_is_not_a_sample_function_is_refused(tmp_path, make_topo_flight, row_of_image):
    from topoloc.data import ComballazSynthetic
    from topoloc.data.cache import as_cache

    make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
    # "flip" was accepted, and failed at the first sample as "'str' object is not callable"
    with pytest.raises(TypeError, match=r"^transform: expected a callable \(sample dict -> sample dict\), got str$"):
        ComballazSynthetic(tmp_path, transform="flip")
    # a transform returning None failed in the cache as "'NoneType' object is not subscriptable"
    ds = ComballazSynthetic(tmp_path, transform=lambda s: None)
    with pytest.raises(TypeError, match="^transform must return the sample dict, got NoneType$"):
        ds[0]
    with pytest.raises(RuntimeError, match="could not read sample 0 of ComballazSynthetic: TypeError: transform must "
                                           "return the sample dict, got NoneType$"):
        as_cache(ds, (8, 8))
    marked = ComballazSynthetic(tmp_path, transform=lambda s: {**s, "mark": s["index"] + 10})
    sample = marked[1]
    assert sample["mark"] == sample["index"] + 10 and row_of_image(sample["image"]) == sample["index"]


def test_a_root_or_flight_name_of_another_type_is_refused_by_name(tmp_path, make_topo_flight, row_of_image):
    from topoloc.data import ComballazAir, ComballazSynthetic, CrossLocScene

    make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4)
    # a root from an unset setting (os.environ.get) was "expected str, bytes or os.PathLike object, not NoneType",
    # naming no argument; a list of flights given to TopoFlight was read as the flight "['comballaz-...']"
    root = r"^root: expected the folder holding the flight folders \(a str or pathlib.Path\), got "
    for make in (lambda: TopoFlight(None, "comballaz-2020-11-06-planned"), lambda: ComballazAir(None),
                 lambda: ComballazSynthetic(None)):
        with pytest.raises(TypeError, match=root + "NoneType None$"):
            make()
    with pytest.raises(TypeError, match=root + "bytes b'data'$"):
        TopoFlight(b"data", "comballaz-2020-11-06-planned")
    with pytest.raises(TypeError, match=r"^root: expected the folder holding the split folders"):
        CrossLocScene(None, "test_real")
    with pytest.raises(TypeError, match=r"^split_folder: expected a split folder's name such as 'test_real'"):
        CrossLocScene(tmp_path, None)
    with pytest.raises(TypeError, match=r"^flight: expected a flight name such as 'comballaz-2020-11-06-planned' \(a "
                                        r"non-empty str\), got list \['comballaz-2020-11-06-planned'\] \(several "
                                        r"flights: ComballazAir / EPFLPhantom\(root, flights=\[\.\.\.\]\)"):
        TopoFlight(tmp_path, ["comballaz-2020-11-06-planned"], frame="comballaz")
    with pytest.raises(TypeError, match=r"^flights\[1\]: expected a flight name .* got NoneType None$"):
        ComballazAir(tmp_path, domain="synthetic", flights=["comballaz-2020-11-06-planned", None])
    # a str and a pathlib.Path name the same folder: the same images, in pose-row order
    by_str = TopoFlight(str(tmp_path), "comballaz-2020-11-06-planned")
    by_path = TopoFlight(tmp_path, "comballaz-2020-11-06-planned")
    assert [row_of_image(by_str[i]["image"]) for i in range(len(by_str))] == by_path.rows.tolist() == [0, 1, 2, 3]
