"""TopoFlight: pairing by the row index in file names, real photos through pic names, every bad input."""

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from pyproj import Transformer
from torch.utils.data import DataLoader

from topoloc.data.preset import load_preset
from topoloc.data.topo import TopoFlight, read_pose_file
from topoloc.geodesy import LocalFrame

LHS_ROWS = [0, 1, 2, 3, 5, 8, 13, 21, 22, 23, 24, 25, 26, 27, 28, 29, 34, 39]
PLANNED = "comballaz-2020-11-06-planned"


class TestPairing:
    def test_lhs_rows_from_names(self, topo_root, row_of_image, image_domain):
        ds = TopoFlight(topo_root, "comballaz-LHS")
        assert ds.rows.tolist() == LHS_ROWS
        poses = load_preset("comballaz-LHS")
        for i in range(len(ds)):
            s = ds[i]
            assert row_of_image(s["image"]) == s["index"] == ds.rows[i]
            np.testing.assert_array_equal(s["cesium"].numpy(), poses[s["index"]])
            assert s["name"] == f"comballaz-LHS_{s['index']:05d}_img"
            assert image_domain(s["image"]) == "synthetic"

    def test_an_upper_case_png_render_is_read_and_hidden_files_are_left_alone(self, tmp_path, make_topo_flight,
                                                                               row_of_image):
        # a render saved as _img.PNG was left out without a word; macOS's ._ files beside each render and photo
        # (a copy to an exFAT or network drive) were bad files, and a flight with them was refused
        folder = make_topo_flight(tmp_path, PLANNED, n_rows=5)
        upper = next(folder.glob(f"{PLANNED}_00002_*_img.png"))
        upper.rename(upper.with_name(upper.name[: -len("png")] + "PNG"))
        for render in folder.glob("*_img.*"):
            (folder / f"._{render.name}").write_bytes(b"\0\5\26\7")
        (folder / ".DS_Store").write_bytes(b"\0")
        for photo in (tmp_path / f"{PLANNED}-real").glob("*.JPG"):
            photo.with_name(f"._{photo.name}").write_bytes(b"\0\5\26\7")
        for domain in ("synthetic", "real", "paired"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # nothing skipped, nothing left out
                ds = TopoFlight(tmp_path, PLANNED, domain=domain)
            assert ds.rows.tolist() == [0, 1, 2, 3, 4], domain
            assert [row_of_image(ds[i]["image"]) for i in range(5)] == [0, 1, 2, 3, 4]

    def test_sample_types_and_frame(self, topo_root):
        ds = TopoFlight(topo_root, "comballaz-LHS")
        s = ds[3]
        assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 16, 24)
        assert s["c2w"].dtype == torch.float64 and s["c2w"].shape == (4, 4)
        assert s["ecef"].shape == (3,) and s["cesium"].shape == (6,)
        assert (s["domain"], s["flight"]) == ("synthetic", "comballaz-LHS")
        # alpha dropped, not composited: the transparent pixel keeps its colour
        assert s["image"][:, 0, 0].tolist() == s["image"][:, 5, 5].tolist()
        assert ds.frame == LocalFrame(46.3705, 7.065, 1410.0)
        # independent reference: ENU position from PROJ's topocentric conversion of the ECEF row
        topo = Transformer.from_pipeline(
            "+proj=topocentric +ellps=WGS84 +lat_0=46.3705 +lon_0=7.065 +h_0=1410"
        )
        e = topo.transform(*s["ecef"].tolist())
        np.testing.assert_allclose(s["c2w"][:3, 3].numpy(), e, atol=1e-6)
        np.testing.assert_allclose(ds.poses()[3], s["c2w"].numpy())
        assert ds.poses().shape == (len(ds), 4, 4) and ds.cesium().shape == (len(ds), 6)

    def test_real_photos_by_pic_name(self, topo_root, row_of_image, image_domain):
        ds = TopoFlight(topo_root, PLANNED, domain="real")
        names = (topo_root / PLANNED / f"{PLANNED}_pic_names.csv").read_text().split(",")
        assert ds.rows.tolist() == [0, 1, 2, 4, 5, 7, 8, 9, 10, 11]
        for i in range(len(ds)):
            s = ds[i]
            assert row_of_image(s["image"]) == s["index"]
            assert s["name"] == names[s["index"]] and image_domain(s["image"]) == "real"
            assert s["image"].shape == (3, 18, 24)

    def test_paired(self, topo_root, row_of_image, image_domain):
        ds = TopoFlight(topo_root, PLANNED, domain="paired", image_size=(8, 12))
        s = ds[4]
        assert s["image"].shape == s["image_synthetic"].shape == (3, 8, 12)
        assert row_of_image(s["image"]) == row_of_image(s["image_synthetic"]) == s["index"]
        assert image_domain(s["image"]) == "real" and image_domain(s["image_synthetic"]) == "synthetic"

    def test_image_size_and_frame_override(self, topo_root):
        # 41 km away: limit lifted
        ds = TopoFlight(topo_root, "comballaz-LHS", image_size=8, frame="epfl", max_distance_m=None)
        assert ds[0]["image"].shape == (3, 8, 12)
        assert ds.frame == LocalFrame.named("epfl")

    def test_semantics_and_collation(self, tmp_path, make_topo_flight, row_of_image):
        make_topo_flight(tmp_path, "comballaz-LHS", n_rows=6, rows=[5, 1, 3], semantics=True)
        ds = TopoFlight(tmp_path, "comballaz-LHS", load_semantics=True, image_size=(8, 12))
        batch = next(iter(DataLoader(ds, batch_size=3)))
        assert batch["image"].shape == (3, 3, 8, 12) and batch["c2w"].dtype == torch.float64
        assert batch["semantics"].shape == (3, 8, 12) and batch["semantics"].dtype == torch.uint8
        assert batch["index"].tolist() == [1, 3, 5] and batch["semantics"][:, 0, 0].tolist() == [1, 3, 5]
        assert [row_of_image(im) for im in batch["image"]] == [1, 3, 5]

    def test_transform(self, topo_root):
        ds = TopoFlight(topo_root, "comballaz-LHS", transform=lambda s: {**s, "image": s["image"].float() / 255})
        assert ds[0]["image"].dtype == torch.float32


class TestSplits:
    def test_disjoint_and_covering(self, tmp_path, make_topo_flight):
        make_topo_flight(tmp_path, "comballaz-LHS", n_rows=200, size_hw=(2, 2))
        parts = {s: set(TopoFlight(tmp_path, "comballaz-LHS", split=s).rows.tolist()) for s in ("train", "val", "test")}
        assert [len(parts[s]) for s in ("train", "val", "test")] == [160, 20, 20]
        assert set.union(*parts.values()) == set(range(200))
        assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]

    def test_split_of_a_row_does_not_depend_on_which_images_exist(self, tmp_path, make_topo_flight):
        make_topo_flight(tmp_path / "a", "comballaz-LHS", n_rows=100, size_hw=(2, 2))
        make_topo_flight(tmp_path / "b", "comballaz-LHS", n_rows=100, rows=range(0, 100, 3), size_hw=(2, 2))
        full = set(TopoFlight(tmp_path / "a", "comballaz-LHS", split="test").rows.tolist())
        sub = set(TopoFlight(tmp_path / "b", "comballaz-LHS", split="test").rows.tolist())
        assert sub == {r for r in full if r % 3 == 0}

    def test_real_flights_split_in_blocks(self, tmp_path, make_topo_flight):
        make_topo_flight(tmp_path, PLANNED, n_rows=250, size_hw=(2, 2), real_rows=[])
        sizes = []
        for s in ("train", "val", "test"):
            rows = TopoFlight(tmp_path, PLANNED, split=s).rows
            sizes.append(len(rows))
            blocks = {r // 25 for r in rows.tolist()}
            assert all(set(range(25 * b, 25 * b + 25)) <= set(rows.tolist()) for b in blocks)
        assert sizes == [200, 25, 25]

    def test_explicit_rows_and_bad_split(self, topo_root):
        assert TopoFlight(topo_root, "comballaz-LHS", split=[39, 0, 8]).rows.tolist() == [0, 8, 39]
        with pytest.raises(ValueError, match="no image"):
            TopoFlight(topo_root, "comballaz-LHS", split=[4])
        with pytest.raises(ValueError, match="split"):
            TopoFlight(topo_root, "comballaz-LHS", split="training")
        with pytest.raises(ValueError, match="split_fractions"):
            TopoFlight(topo_root, "comballaz-LHS", split="train", split_fractions=(0.8, 0.3, 0.1))
        with pytest.raises(ValueError, match="split_fractions"):  # unused by split="all", a typo all the same
            TopoFlight(topo_root, "comballaz-LHS", split="all", split_fractions=(2, 2, 2))


class TestBadInput:
    def test_not_a_flight(self, tmp_path, topo_root):
        with pytest.raises(FileNotFoundError, match="folder not found"):
            TopoFlight(topo_root, "comballaz-nope")
        (tmp_path / "comballaz-x").mkdir()
        with pytest.raises(FileNotFoundError, match="comballaz-x_poses.npy is missing"):
            TopoFlight(tmp_path, "comballaz-x")
        np.save(tmp_path / "comballaz-x" / "comballaz-x_poses.npy", load_preset("comballaz-LHS")[:3])
        with pytest.raises(FileNotFoundError, match="no render images"):
            TopoFlight(tmp_path, "comballaz-x")

    def test_a_misspelt_flight_is_said_as_a_missing_folder_with_the_flights_there(self, topo_root):
        # "plannd" (no area prefix) was refused as an area the name does not tell, with advice to pass a frame
        held = sorted(d.name for d in topo_root.iterdir() if (d / f"{d.name}_poses.npy").is_file())
        assert "comballaz-LHS" in held
        with pytest.raises(FileNotFoundError, match=rf"plannd: folder not found; .*; flights in "
                                                    rf"{re.escape(str(topo_root))}: {re.escape(', '.join(held))}$"):
            TopoFlight(topo_root, "plannd")
        with pytest.raises(FileNotFoundError, match=r"comballaz-LSH: folder not found; .* nearest to that name: "
                                                    r"comballaz-LHS"):
            TopoFlight(topo_root, "comballaz-LSH")

    def test_the_flight_folder_given_as_the_root_names_the_root_meant(self, topo_root, monkeypatch):
        # was only "<flight>/<flight>: folder not found", the name doubled and no word on which folder to give
        folder = topo_root / "comballaz-LHS"
        with pytest.raises(FileNotFoundError, match=rf"; {re.escape(str(folder))} is that flight folder itself: give "
                                                    rf"the folder that holds it, {re.escape(str(topo_root))}, as the "
                                                    r"root \(CLI: --data; a recipe's data.root\)$"):
            TopoFlight(folder, "comballaz-LHS")
        monkeypatch.chdir(folder)
        with pytest.raises(FileNotFoundError, match=rf"; \. is that flight folder itself: give the folder that holds "
                                                    rf"it, {re.escape(str(topo_root.resolve()))}, as the root"):
            TopoFlight(".", "comballaz-LHS")
        with pytest.raises(FileNotFoundError) as other:  # a root that holds no such flight file: no such hint
            TopoFlight(topo_root, "comballaz-nope")
        assert "itself" not in str(other.value)

    def test_unknown_area_needs_frame(self, tmp_path, make_topo_flight):
        make_topo_flight(tmp_path, "matterhorn-LHS", n_rows=3)
        with pytest.raises(ValueError, match="frame="):
            TopoFlight(tmp_path, "matterhorn-LHS")
        assert len(TopoFlight(tmp_path, "matterhorn-LHS", frame="comballaz")) == 3

    def test_an_index_that_is_not_a_whole_number_is_refused(self, tmp_path, make_topo_flight):
        from topoloc.data import FlightCollection

        make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
        ds = TopoFlight(tmp_path, "comballaz-LHS")
        both = FlightCollection([ds, ds])
        for data in (ds, both):  # ds["a"] was a TypeError from a comparison of str and int
            for bad in ("a", 1.0, None):
                with pytest.raises(TypeError, match="a sample index must be a whole number"):
                    data[bad]
            with pytest.raises(IndexError, match=f"index 7 out of range for {len(data)} samples"):
                data[7]
        assert ds[np.int64(2)]["index"] == ds[-1]["index"] == 2 and both[torch.tensor(4)]["index"] == 1

    def test_pose_file_wrong_shape(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
        np.save(folder / "comballaz-LHS_poses.npy", np.zeros((4, 7)))
        with pytest.raises(ValueError, match=r"comballaz-LHS_poses.npy: expected .*\(N, 6\).*\(4, 7\)"):
            TopoFlight(tmp_path, "comballaz-LHS")

    def test_empty_pose_and_semantics_files_are_named(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
        (folder / "comballaz-LHS_poses.npy").write_bytes(b"")  # numpy raised a bare EOFError
        with pytest.raises(ValueError, match=r"comballaz-LHS_poses.npy: could not read the pose file"):
            TopoFlight(tmp_path, "comballaz-LHS")
        from topoloc.data._images import read_semantics

        (tmp_path / "x_semantics.npy").write_bytes(b"")
        with pytest.raises(ValueError, match=r"x_semantics.npy: could not read the semantics array"):
            read_semantics(tmp_path / "x_semantics.npy")

    def test_a_pose_file_that_is_no_npy_array_is_named_without_advice_to_unpickle(self, tmp_path, make_topo_flight):
        # numpy called a text file "pickled (object) data" and advised loading it with allow_pickle
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
        (folder / "comballaz-LHS_poses.npy").write_text("hello\n")
        with pytest.raises(ValueError) as err:
            TopoFlight(tmp_path, "comballaz-LHS")
        assert "comballaz-LHS_poses.npy: could not read the pose file (not a .npy file" in str(err.value)
        assert "pickle" not in str(err.value)
        np.save(folder / "comballaz-LHS_poses.npy", np.array([{"x": 1}] * 4, dtype=object))
        with pytest.raises(ValueError) as err:
            TopoFlight(tmp_path, "comballaz-LHS")
        assert "could not read the pose file (it holds Python objects (an object array), which are not loaded" in (
            str(err.value))
        assert "allow_pickle" not in str(err.value)

    def test_pose_file_of_less_than_float64_is_warned_about(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
        rows = load_preset("comballaz-LHS")[:4]
        np.save(folder / "comballaz-LHS_poses.npy", rows.astype(np.float32))
        with pytest.warns(UserWarning, match=r"comballaz-LHS_poses.npy: the pose rows are stored as float32, not "
                                             r"float64: they hold the positions to about 0.5 m"):
            ds = TopoFlight(tmp_path, "comballaz-LHS")
        # what the warning says: ECEF x, z of about 4.4e6 and 4.6e6 m lie where float32's step is 0.5 m
        with pytest.warns(UserWarning):
            kept = read_pose_file(folder / "comballaz-LHS_poses.npy")
        assert 0 < np.abs(kept[:, :3] - rows[:, :3]).max() <= 0.25 and len(ds) == 4
        np.save(folder / "comballaz-LHS_poses.npy", rows)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # float64: no warning
            TopoFlight(tmp_path, "comballaz-LHS")

    def test_pose_file_in_radians_is_warned_about(self, tmp_path, make_topo_flight):
        # yaw, pitch and roll written with np.radians were read as degrees without a word: every camera then
        # looks north and level, and `topoloc evaluate` reported on those poses
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=4)
        rows = load_preset("comballaz-LHS")[:4]
        np.save(folder / "comballaz-LHS_poses.npy", np.column_stack([rows[:, :3], np.radians(rows[:, 3:])]))
        with pytest.warns(UserWarning, match=r"comballaz-LHS_poses.npy: every yaw, pitch and roll lies within \+-2 pi "
                                             r"and every pitch within \[-pi/2, 0\]: angles in radians\?"):
            TopoFlight(tmp_path, "comballaz-LHS")
        np.save(folder / "comballaz-LHS_poses.npy", rows)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # degrees: no warning
            TopoFlight(tmp_path, "comballaz-LHS")

    def test_pose_file_too_short(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=6)
        np.save(folder / "comballaz-LHS_poses.npy", load_preset("comballaz-LHS")[:4])
        with pytest.raises(ValueError, match=r"comballaz-LHS_00005_img.png: row 5 but .* only 4 rows"):
            TopoFlight(tmp_path, "comballaz-LHS")
        with pytest.warns(UserWarning, match="skipped 2 bad"):
            ds = TopoFlight(tmp_path, "comballaz-LHS", on_error="skip")
        assert ds.rows.tolist() == [0, 1, 2, 3] and len(ds.skipped) == 2

    def test_nan_and_far_rows(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=5)
        poses = load_preset("comballaz-LHS")[:5].copy()
        poses[1, 4] = np.nan
        poses[3, :3] = [46.37, 7.06, 1500.0]  # lat, lon, h given instead of ECEF
        np.save(folder / "comballaz-LHS_poses.npy", poses)
        with pytest.raises(ValueError, match=r"_00001_img.png: row 1 of comballaz-LHS_poses.npy: NaN"):
            TopoFlight(tmp_path, "comballaz-LHS")
        with pytest.warns(UserWarning, match="skipped 2"):
            ds = TopoFlight(tmp_path, "comballaz-LHS", on_error="skip")
        assert ds.rows.tolist() == [0, 2, 4]
        assert any("far from the Earth" in why for _, why in ds.skipped)

    def test_unreadable_and_missing_image(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
        (folder / "comballaz-LHS_00001_img.png").write_bytes(b"not a png")
        ds = TopoFlight(tmp_path, "comballaz-LHS")
        with pytest.raises(ValueError, match="comballaz-LHS_00001_img.png: could not read"):
            ds[1]
        (folder / "comballaz-LHS_00002_img.png").unlink()
        with pytest.raises(FileNotFoundError, match="comballaz-LHS_00002_img.png: image file not found"):
            ds[2]

    def test_duplicate_row_and_bad_name(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
        (folder / "comballaz-LHS_01_img.png").write_bytes((folder / "comballaz-LHS_00001_img.png").read_bytes())
        with pytest.raises(ValueError, match="already has the image"):
            TopoFlight(tmp_path, "comballaz-LHS")
        (folder / "comballaz-LHS_01_img.png").unlink()
        (folder / "comballaz-LHS_x7_img.png").write_bytes(b"")
        with pytest.raises(ValueError, match="comballaz-LHS_x7_img.png: name does not follow"):
            TopoFlight(tmp_path, "comballaz-LHS")

    def test_render_picname_disagrees_with_csv(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, PLANNED, n_rows=4, pic_names=["a", "b", "c", "d"])
        (folder / f"{PLANNED}_00002_c_img.png").rename(folder / f"{PLANNED}_00002_d_img.png")
        with pytest.raises(ValueError, match=r"00002_d_img.png: picname 'd' but row 2 .* is 'c'"):
            TopoFlight(tmp_path, PLANNED)

    def test_pic_names_wrong_length(self, tmp_path, make_topo_flight):
        folder = make_topo_flight(tmp_path, PLANNED, n_rows=4)
        (folder / f"{PLANNED}_pic_names.csv").write_text("a,b,c")
        with pytest.raises(ValueError, match="3 photo names but .* has 4 rows"):
            TopoFlight(tmp_path, PLANNED)

    def test_real_photos_of_a_flight_not_rendered_say_to_render_it(self, tmp_path, make_topo_flight):
        # TOPO-DataGen's presets (poses and pic names) and photos, nothing rendered yet
        folder = make_topo_flight(tmp_path, PLANNED, n_rows=3)
        for render in folder.glob("*_img.png"):
            render.unlink()
        with pytest.raises(FileNotFoundError, match=r"no render images found; .*_img.png; domain='real' takes each "
                                                    r"photo's pose row from the render of that row: render the "
                                                    r"flight's poses first"):
            TopoFlight(tmp_path, PLANNED, domain="real")
        with pytest.raises(FileNotFoundError, match=r"_img.png$"):  # synthetic: no word of photos
            TopoFlight(tmp_path, PLANNED)

    def test_real_photo_without_render(self, tmp_path, make_topo_flight, row_of_image):
        make_topo_flight(tmp_path, PLANNED, n_rows=6, rows=[0, 1, 2, 3], real_rows=[0, 2, 4, 5])
        rows_left_out = "2 of 4 rendered pose rows have no real photo .* left out .*row 1"
        no_render = "real photo with no render"
        with pytest.warns(UserWarning, match=rows_left_out), pytest.raises(ValueError, match=no_render):
            TopoFlight(tmp_path, PLANNED, domain="real")
        with pytest.warns(UserWarning, match=rows_left_out), pytest.warns(UserWarning, match="skipped 2"):
            ds = TopoFlight(tmp_path, PLANNED, domain="real", on_error="skip")
        assert ds.rows.tolist() == [0, 2] and [row_of_image(ds[i]["image"]) for i in range(2)] == [0, 2]

    def test_real_photo_not_in_pic_names_and_missing_real_folder(self, tmp_path, make_topo_flight):
        make_topo_flight(tmp_path, PLANNED, n_rows=3, real_rows=[])
        with pytest.raises(FileNotFoundError, match=f"{PLANNED}-real: folder of real photos not found"):
            TopoFlight(tmp_path, PLANNED, domain="real")
        make_topo_flight(tmp_path, PLANNED, n_rows=3)
        (tmp_path / f"{PLANNED}-real" / "stray.JPG").write_bytes(b"")
        with pytest.raises(ValueError, match="stray.JPG: no photo of that name"):
            TopoFlight(tmp_path, PLANNED, domain="real")

    def test_missing_semantics(self, tmp_path, make_topo_flight):
        make_topo_flight(tmp_path, "comballaz-LHS", n_rows=3)
        with pytest.raises(FileNotFoundError, match="_semantics.npy: semantics file not found"):
            TopoFlight(tmp_path, "comballaz-LHS", load_semantics=True)

    def test_bad_arguments(self, topo_root):
        with pytest.raises(ValueError, match="domain"):
            TopoFlight(topo_root, "comballaz-LHS", domain="sim")
        with pytest.raises(ValueError, match="on_error"):
            TopoFlight(topo_root, "comballaz-LHS", on_error="ignore")
        with pytest.raises(ValueError, match="image_size"):
            TopoFlight(topo_root, "comballaz-LHS", image_size=(0, 3))


def test_check_images_skips_unreadable(tmp_path, make_topo_flight, row_of_image):
    folder = make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4, pic_names=["a", "b", "c", "d"])
    (folder / "comballaz-2020-11-06-planned_00001_b_img.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "comballaz-2020-11-06-planned-real" / "c.JPG").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ValueError, match="00001_b_img.png: could not read"):
        TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="paired", check_images=True)
    with pytest.warns(UserWarning, match="skipped 2 bad"):
        ds = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="paired", check_images=True, on_error="skip")
    assert ds.rows.tolist() == [0, 3] and [row_of_image(ds[i]["image_synthetic"]) for i in range(2)] == [0, 3]


def test_check_images_checks_the_files_a_sample_reads(tmp_path, make_topo_flight, row_of_image):
    # a "real" sample reads only its photo: a broken render dropped its row all the same, and only with
    # check_images (without it the row was read, and is, without error)
    folder = make_topo_flight(tmp_path, PLANNED, n_rows=4, pic_names=["a", "b", "c", "d"])
    (folder / f"{PLANNED}_00001_b_img.png").write_bytes(b"\x89PNG broken")
    (tmp_path / f"{PLANNED}-real" / "c.JPG").write_bytes(b"\xff\xd8 broken")
    with pytest.warns(UserWarning, match=r"skipped 1 bad file\(s\), first: .*c\.JPG: could not read"):
        ds = TopoFlight(tmp_path, PLANNED, domain="real", check_images=True, on_error="skip")
    assert ds.rows.tolist() == [0, 1, 3] and [row_of_image(ds[i]["image"]) for i in range(3)] == [0, 1, 3]
    # "paired" reads the render too: the sizes of its renders are compared as well
    Image.new("RGB", (30, 20)).save(folder / f"{PLANNED}_00001_b_img.png")
    with pytest.warns(UserWarning, match=r"skipped 1 bad file\(s\), first: .*c\.JPG"), \
            pytest.warns(UserWarning, match=rf"\(paired\): images of 2 sizes: 2 of 24x16 \(e\.g\. .*_img\.png\), 1 of "
                                         rf"30x20 \(e\.g\. .*{PLANNED}_00001_b_img\.png\)"):
        TopoFlight(tmp_path, PLANNED, domain="paired", check_images=True, on_error="skip")


def test_real_photo_of_a_bad_row_is_reported_once(tmp_path, make_topo_flight):
    folder = make_topo_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=4)
    poses = np.load(folder / "comballaz-2020-11-06-planned_poses.npy")
    poses[2, 0] = np.nan
    np.save(folder / "comballaz-2020-11-06-planned_poses.npy", poses)
    with pytest.warns(UserWarning, match="skipped 1 bad"):
        ds = TopoFlight(tmp_path, "comballaz-2020-11-06-planned", domain="real", on_error="skip")
    assert ds.rows.tolist() == [0, 1, 3] and "NaN" in ds.skipped[0][1]


# --------------------------------------------------------- what mutation testing showed unpinned
def test_sample_index_bounds_and_iteration_stops(topo_root, row_of_image):
    from topoloc.data.posed import sample_index

    assert [sample_index(i, 5) for i in (-5, -1, 0, 4)] == [0, 4, 0, 4]
    for bad in (5, -6):
        with pytest.raises(IndexError, match=f"index {bad} out of range for 5 samples"):
            sample_index(bad, 5)
    # Python's iteration protocol stops a Dataset at its first IndexError: exactly len(ds) samples
    ds = TopoFlight(topo_root, PLANNED, image_size=(8, 12))
    assert [row_of_image(s["image"]) for s in ds] == [0, 1, 2, 4, 5, 7, 8, 9, 10, 11]


def test_poses_and_cesium_are_copies(topo_root):
    ds = TopoFlight(topo_root, PLANNED)
    want_c2w, want_rows = ds.poses().copy(), ds.cesium().copy()
    ds.poses()[:] = 0.0  # a caller scribbling on the result must not move the dataset's poses
    ds.cesium()[:] = 0.0
    np.testing.assert_array_equal(ds.poses(), want_c2w)
    np.testing.assert_array_equal(ds.cesium(), want_rows)
    np.testing.assert_array_equal(ds[0]["c2w"].numpy(), want_c2w[0])


class TestPresets:
    def test_vendored_names_sorted_and_pic_names(self):
        from topoloc.data.preset import list_presets, load_preset_pic_names

        names = list_presets()
        assert names == sorted(names) and {"comballaz-LHS", PLANNED} <= set(names)
        assert load_preset_pic_names("comballaz-LHS") == []  # synthetic: no photos
        with pytest.raises(ValueError, match="unknown TOPO flight preset 'zermatt-LHS'"):
            load_preset_pic_names("zermatt-LHS")  # an unknown -LHS name is not an empty list

    @pytest.mark.parametrize("flight", [None, 3, ["comballaz-LHS"]])
    def test_a_flight_that_is_no_name_is_refused_as_an_unknown_preset(self, flight):
        from topoloc.data.preset import load_preset, load_preset_pic_names

        for load in (load_preset, load_preset_pic_names):  # pic names: was "'NoneType' has no attribute 'endswith'"
            with pytest.raises(ValueError, match=r"unknown TOPO flight preset .*; expected one of "
                                                 r"\[.*'comballaz-2020-11-06-planned'"):
                load(flight)

    def test_pic_names_are_stripped_and_a_folder_is_not_a_preset(self, tmp_path, monkeypatch):
        import topoloc.data.preset as preset

        monkeypatch.setattr(preset, "PRESETS_DIR", tmp_path)
        for name in ("b-flight", "a-flight"):
            np.save(tmp_path / f"{name}_poses.npy", np.zeros((2, 6)))
        (tmp_path / "a-flight_pic_names.csv").write_text(" DJI_0001, DJI_0002,\n")
        assert preset.list_presets() == ["a-flight", "b-flight"]
        assert preset.load_preset_pic_names("a-flight") == ["DJI_0001", "DJI_0002"]
        (tmp_path / "c-flight_poses.npy").mkdir()
        with pytest.raises(ValueError, match="unknown TOPO flight preset 'c-flight'"):
            preset.load_preset("c-flight")


def test_a_subclass_sets_its_image_paths_and_a_topo_flight_refuses_them(tmp_path, topo_root):
    # PosedImages' contract: a subclass's constructor sets `image_paths` (the files its images are read from)
    from topoloc.data.posed import PosedImages

    class Folder(PosedImages):
        def __init__(self, paths):
            self.names = [p.stem for p in paths]
            self.image_paths = paths

    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    folder = Folder(paths)
    assert folder.image_paths == paths and len(folder) == 2
    flight = TopoFlight(topo_root, "comballaz-2020-11-06-planned", domain="real")
    assert flight.image_paths == flight.real_paths  # it follows the domain ...
    with pytest.raises(AttributeError, match="TopoFlight.image_paths follows the domain"):
        flight.image_paths = paths  # ... and is not set by hand
