"""CrossLocScene: DSAC*-layout folders paired by stem, poses as ECEF-axes matrices minus the scene origin."""

import warnings

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer

from topoloc.data import CrossLocScene
from topoloc.data.preset import load_preset
from topoloc.geodesy import LocalFrame, cesium_to_c2w


def write_scene(root, encode_row, split="test_real", n=5, origin="comballaz", stems=None, subtract_origin=True):
    folder = root / split
    for sub in ("rgb", "poses", "calibration"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rows = load_preset("comballaz-2020-11-06-planned")[:n]
    c2w = cesium_to_c2w(rows)
    if subtract_origin:
        c2w[:, :3, 3] -= LocalFrame.named(origin).origin_ecef
    stems = stems or [f"frame_{k:03d}" for k in (4, 0, 3, 1, 2)][:n]  # names sort differently from rows
    for r, stem in enumerate(stems):
        Image.fromarray(encode_row(r, 12, 18, 200, alpha=False)).save(folder / "rgb" / f"{stem}.png")
        np.savetxt(folder / "poses" / f"{stem}.txt", c2w[r])
        (folder / "calibration" / f"{stem}.txt").write_text("480.0\n")
    return folder, rows, stems


class TestCrossLocScene:
    def test_pairs_by_stem(self, tmp_path, row_of_image, row_image):
        root = tmp_path / "naturescape"
        _, rows, stems = write_scene(root, row_image)
        ds = CrossLocScene(root, "test_real")
        assert ds.frame == LocalFrame.named("comballaz") and len(ds) == 5 and ds.names == sorted(stems)
        topo = Transformer.from_pipeline("+proj=topocentric +ellps=WGS84 +lat_0=46.3705 +lon_0=7.065 +h_0=1410")
        for i in range(len(ds)):
            s = ds[i]
            r = stems.index(s["name"])
            assert row_of_image(s["image"]) == r and s["domain"] == "real" and float(s["focal_px"]) == 480.0
            np.testing.assert_allclose(s["ecef"].numpy(), rows[r, :3], atol=1e-6)
            np.testing.assert_allclose(s["cesium"].numpy()[3:], rows[r, 3:], atol=1e-6)
            np.testing.assert_allclose(s["c2w"][:3, 3].numpy(), topo.transform(*rows[r, :3]), atol=1e-5)
            np.testing.assert_allclose(s["c2w"].numpy(), LocalFrame.named("comballaz").cesium_to_c2w(rows[r:r + 1])[0],
                                       atol=1e-6)

    def test_frame_needed_for_unknown_scene(self, tmp_path, row_image):
        write_scene(tmp_path / "scene", row_image)
        with pytest.raises(ValueError, match="frame="):
            CrossLocScene(tmp_path / "scene", "test_real")
        ds = CrossLocScene(tmp_path / "scene", "test_real", frame="comballaz", image_size=(6, 9), domain="synthetic")
        assert ds[0]["image"].shape == (3, 6, 9) and ds[0]["domain"] == "synthetic"

    def test_the_origin_is_told_from_the_scene_folder_not_from_folders_above_it(self, tmp_path, row_image):
        # a scene kept under a lab's "epfl" folder is not an EPFL scene: 20 km off, the poses would still pass
        # the near-the-surface check, so the frame is asked for instead of guessed from an ancestor
        write_scene(tmp_path / "epfl-lab" / "scene", row_image)
        with pytest.raises(ValueError, match=r"scene.*cannot tell the scene origin.*frame="):
            CrossLocScene(tmp_path / "epfl-lab" / "scene", "test_real")
        # the other way round: a scene folder named by its area wins over an ancestor that names the other area
        write_scene(tmp_path / "epfl-lab" / "naturescape", row_image)
        assert CrossLocScene(tmp_path / "epfl-lab" / "naturescape", "test_real").frame == LocalFrame.named("comballaz")

    def test_the_origin_is_told_from_a_linked_scene_folders_own_name(self, tmp_path, row_image):
        write_scene(tmp_path / "store" / "x1", row_image)
        (tmp_path / "naturescape").symlink_to(tmp_path / "store" / "x1", target_is_directory=True)
        assert CrossLocScene(tmp_path / "naturescape", "test_real").frame == LocalFrame.named("comballaz")

    def test_a_transform_that_is_not_callable_is_refused(self, tmp_path, row_image):
        root = tmp_path / "naturescape"
        write_scene(root, row_image)
        with pytest.raises(TypeError,
                           match=r"^transform: expected a callable \(sample dict -> sample dict\), got str$"):
            CrossLocScene(root, "test_real", transform="flip")

    def test_wrong_origin_is_caught(self, tmp_path, row_image):
        # full ECEF translations (origin not subtracted): adding the origin lands far from the Earth
        write_scene(tmp_path / "naturescape", row_image, subtract_origin=False)
        with pytest.raises(ValueError, match="is frame= the scene's origin"):
            CrossLocScene(tmp_path / "naturescape", "test_real")

    def test_missing_and_bad_files(self, tmp_path, row_image):
        root = tmp_path / "naturescape"
        folder, _, stems = write_scene(root, row_image)
        (folder / "calibration" / f"{stems[0]}.txt").unlink()
        with pytest.raises(ValueError, match=rf"{stems[0]}.png: no matching file in calibration/"):
            CrossLocScene(root, "test_real")
        with pytest.warns(UserWarning, match="skipped 1"):
            assert len(CrossLocScene(root, "test_real", on_error="skip")) == 4
        np.savetxt(folder / "poses" / f"{stems[1]}.txt", np.eye(3))
        with pytest.raises(ValueError, match=rf"{stems[1]}.txt: expected a finite 4x4"):
            CrossLocScene(root, "test_real")
        m = np.eye(4)
        m[0, 0] = 2.0
        np.savetxt(folder / "poses" / f"{stems[1]}.txt", m)
        with pytest.raises(ValueError, match="rigid"):
            CrossLocScene(root, "test_real")
        with pytest.raises(FileNotFoundError, match="train_sim: folder not found; expected a DSAC"):
            CrossLocScene(root, "train_sim")
        (folder.parent / "train_sim").mkdir()
        with pytest.raises(FileNotFoundError, match="not a DSAC"):
            CrossLocScene(root, "train_sim")

    def test_two_files_of_one_stem_a_dangling_link_and_an_upper_case_suffix(self, tmp_path, row_image):
        # a.png beside a.jpg kept whichever iterdir listed last, silently; a link to nothing failed only at ds[i];
        # poses/x.TXT was "no matching file in poses/"
        root = tmp_path / "naturescape"
        folder, _, stems = write_scene(root, row_image)
        (folder / "poses" / f"{stems[2]}.txt").rename(folder / "poses" / f"{stems[2]}.TXT")
        assert len(CrossLocScene(root, "test_real")) == 5
        (folder / "rgb" / f"{stems[0]}.jpg").write_bytes((folder / "rgb" / f"{stems[0]}.png").read_bytes())
        two = rf"stem '{stems[0]}' is held by 2 files \({stems[0]}.jpg, {stems[0]}.png\)"
        with pytest.raises(ValueError, match=two):
            CrossLocScene(root, "test_real")
        (folder / "rgb" / f"{stems[0]}.jpg").unlink()
        (folder / "rgb" / f"{stems[1]}.png").unlink()
        (folder / "rgb" / f"{stems[1]}.png").symlink_to(tmp_path / "raw" / "gone.png")
        with pytest.raises(ValueError, match=rf"{stems[1]}.png: a link to .*gone.png', which does not exist"):
            CrossLocScene(root, "test_real")
        with pytest.warns(UserWarning, match="skipped"):
            assert len(CrossLocScene(root, "test_real", on_error="skip")) == 4


    def test_hidden_files_beside_the_images_and_poses_are_left_alone(self, tmp_path, row_image):
        # macOS's ._<name> files (a copy to an exFAT or network drive) were stems without a pose, or a second file
        root = tmp_path / "naturescape"
        folder, _, stems = write_scene(root, row_image)
        for sub in ("rgb", "poses", "calibration"):
            for f in list((folder / sub).iterdir()):
                f.with_name(f"._{f.name}").write_bytes(b"\0\5\26\7")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(CrossLocScene(root, "test_real")) == 5

    def test_a_scene_name_with_words_of_two_areas_is_refused(self, tmp_path, row_image):
        # "epfl_naturescape" was read as Comballaz (naturescape comes first in AREA_ORIGINS), silently
        root = tmp_path / "epfl_naturescape"
        write_scene(root, row_image)
        with pytest.raises(ValueError, match=r"'epfl_naturescape': the name holds words of two areas "
                                             r"\(epfl -> epfl, naturescape -> comballaz\); pass the frame"):
            CrossLocScene(root, "test_real")
        assert CrossLocScene(root, "test_real", frame="comballaz").frame == LocalFrame.named("comballaz")


    def test_a_missing_root_or_another_domain_is_named(self, tmp_path):
        # the frame is told from the path: a missing folder is said before that (here it could not be told)
        with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope' / 'test_real'}: folder not found"):
            CrossLocScene(tmp_path / "nope", "test_real")
        with pytest.raises(ValueError, match=r"domain: expected one of \['synthetic', 'real'\]"):
            CrossLocScene(tmp_path / "nope", "test_real", domain="photo")
