"""The data layer against independent references (hand-worked values, file formats as documented): splits,
caches, CrossLoc, DJI EXIF, TOPO semantics, class tables, image decoding, output sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.data import splits
from topoloc.data import _images
from topoloc.data import crossloc
from topoloc.data import exif
from topoloc.data import semantics
from topoloc.data.cache import ImageCache
from topoloc.image_size import output_size


# --- splits ---------------------------------------------------------------------------------------

def test_split_partial_last_block_covers_every_row():
    # 30 rows in blocks of 25: ceil(30 / 25) = 2 blocks, so every one of the 30 rows has a split.
    a = splits.split_assignment(30, block=25)
    assert a.shape == (30,)
    assert len(set(a[:25].tolist())) == 1 and len(set(a[25:].tolist())) == 1


def test_split_counts_round_to_nearest_hand_worked():
    assert splits.DEFAULT_FRACTIONS == (0.8, 0.1, 0.1)
    # 7 blocks: train round(5.6) = 6, val round(0.7) = 1, test 7 - 6 - 1 = 0.
    a = splits.split_assignment(7)
    assert [int((a == k).sum()) for k in range(3)] == [6, 1, 0]


def test_split_seed_changes_assignment():
    a0 = splits.split_assignment(200, seed=0)
    a1 = splits.split_assignment(200, seed=1)
    assert [int((a0 == k).sum()) for k in range(3)] == [160, 20, 20]
    assert not np.array_equal(a0, a1)


# --- image_size -----------------------------------------------------------------------------------

def test_output_size_rounds_to_nearest():
    # short side 481 -> 240: scale 240/481; long side 721 * 240 / 481 = 359.75 -> 360 (rounded, not truncated).
    assert output_size((481, 721), 240) == (240, 360)


# --- cache ----------------------------------------------------------------------------------------

def test_cache_image_size_is_height_width():
    c = ImageCache(torch.zeros(1, 3, 8, 12, dtype=torch.uint8), torch.eye(4)[None])
    assert c.image_size == (8, 12)


# --- crossloc -------------------------------------------------------------------------------------

def test_crossloc_focal_from_3x3_k(tmp_path):
    p = tmp_path / "k.txt"
    p.write_text("480 0 360\n0 480 240\n0 0 1\n")
    assert crossloc._read_focal(p) == 480.0


def test_crossloc_pose_reflection_refused(tmp_path):
    p = tmp_path / "pose.txt"
    p.write_text("1 0 0 0\n0 1 0 0\n0 0 -1 0\n0 0 0 1\n")
    with pytest.raises(ValueError, match="rigid"):
        crossloc._read_pose(p)


# --- semantics ------------------------------------------------------------------------------------

def test_class_table_accepts_id_255(tmp_path):
    p = tmp_path / "classes.json"
    p.write_text(json.dumps({"0": "sky", "255": "void"}))
    assert semantics.read_class_table(p) == {0: "sky", 255: "void"}


# --- exif -----------------------------------------------------------------------------------------

def test_altitude_below_sea_level_is_negative():
    assert exif._parse_altitude("12.3 m Below Sea Level") == pytest.approx(-12.3)
    assert exif._parse_altitude("12.3 m Above Sea Level") == pytest.approx(12.3)


# --- images ---------------------------------------------------------------------------------------

def test_16bit_white_maps_to_255(tmp_path):
    arr = np.array([[0, 65535], [257, 32896]], dtype=np.int32)
    img = Image.fromarray(arr, "I")
    out = np.asarray(_images._to_8bit(img, tmp_path / "x.png"))
    # v / 257, rounded: 0, 255, 1, 128.
    assert out.tolist() == [[0, 255], [1, 128]]


def test_semantics_nearest_resize_uses_pixel_centres(tmp_path):
    sem = (np.arange(4)[:, None] * 10 + np.arange(4)[None, :]).astype(np.uint8)
    p = tmp_path / "s_semantics.npy"
    np.save(p, sem)
    out = _images.read_semantics(p, (2, 2)).numpy()
    # Output pixel centres 0.5, 1.5 scale by 2 to source 1.0, 3.0: rows / cols {1, 3}.
    assert out.tolist() == [[11, 13], [31, 33]]


def _dji_csv(tmp_path, columns: dict[str, str]):
    p = tmp_path / "img_meta.csv"
    p.write_text(",".join(columns) + "\n" + ",".join(columns.values()) + "\n")
    return p


_A_WGS84 = 6378137.0  # WGS84 semi-major axis: at lat 0, lon 0, ECEF x = a + h, y = z = 0.


def test_dji_take_off_plus_relative_plus_geoid_hand_worked(tmp_path):
    p = _dji_csv(tmp_path, {"SourceFile": "DJI_0001.JPG", "GPSPosition": "0 0", "RelativeAltitude": "+30.0",
                            "AbsoluteAltitude": "999", "GimbalYawDegree": "10", "GimbalPitchDegree": "-90",
                            "GimbalRollDegree": "0"})
    m = exif.parse_dji_metadata(p, vertical_datum="amsl", geoid_offset_m=49.5, take_off_height_m=500.0)
    # h = 500 (take-off, AMSL) + 30 (relative) + 49.5 (geoid) = 579.5
    np.testing.assert_allclose(m.poses[0, :3], [_A_WGS84 + 579.5, 0.0, 0.0], atol=1e-6)


def test_dji_auto_angles_prefer_gimbal_and_absolute_altitude(tmp_path):
    p = _dji_csv(tmp_path, {"SourceFile": "DJI_0001.JPG", "GPSPosition": "0 0", "AbsoluteAltitude": "100",
                            "GPSAltitude": "200", "GimbalYawDegree": "10", "GimbalPitchDegree": "-80",
                            "GimbalRollDegree": "1", "CameraYaw": "20", "CameraPitch": "-70", "CameraRoll": "2"})
    m = exif.parse_dji_metadata(p, vertical_datum="ellipsoidal")
    np.testing.assert_allclose(m.poses[0], [_A_WGS84 + 100.0, 0.0, 0.0, 10.0, -80.0, 1.0], atol=1e-6)


def _tiny_dataset(h, w, n=2):
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g),
             "c2w": torch.eye(4, dtype=torch.float64), "name": f"{i:05d}", "domain": "real", "flight": "f"}
            for i in range(n)]


def test_as_cache_without_size_keeps_dataset_hw():
    from topoloc.data.cache import as_cache

    c = as_cache(_tiny_dataset(8, 12))
    assert c.image_size == (8, 12)
    assert tuple(c.images.shape) == (2, 3, 8, 12)


def test_saved_cache_of_other_size_is_not_reused(tmp_path):
    data = _tiny_dataset(16, 16)
    path = tmp_path / "c.pt"
    small = ImageCache.from_dataset(data, (8, 8))
    small.save(path)
    big = ImageCache.from_dataset(data, (16, 16), path=path)
    assert big.image_size == (16, 16)
    assert tuple(big.images.shape) == (2, 3, 16, 16)


def test_real_domain_reads_the_render_semantics(tmp_path, make_topo_flight):
    from topoloc.data import TopoFlight

    flight = "comballaz-2020-11-06-planned"
    make_topo_flight(tmp_path, flight, n_rows=4, semantics=True)
    real = tmp_path / f"{flight}-real"
    for photo in real.glob("*.JPG"):  # decoys beside the photos: only real_alt reads these
        np.save(real / f"{photo.stem}_semantics.npy", np.full((18, 24), 200, dtype=np.uint8))
    ds = TopoFlight(tmp_path, flight, domain="real", load_semantics=True)
    assert len(ds) == 4
    for i in range(len(ds)):
        s = ds[i]
        # the render's <stem>_semantics.npy of row r is filled with r % 12 (tests/data/conftest.py)
        assert set(s["semantics"].unique().tolist()) == {int(s["index"]) % 12}


def test_portrait_jpeg_read_at_size_matches_full_decode(tmp_path):
    # A portrait (H 640 > W 320) JPEG with stripes of period 128 px; reading at (200, 100) may use JPEG draft
    # decoding (at most 1/3 down: 1/2), which must still match a full decode followed by the same
    # antialiased resize to within 2 grey levels.
    yy, xx = np.mgrid[0:640, 0:320]
    wave = 128 + 100 * np.sin(2 * np.pi * yy / 128) * np.cos(2 * np.pi * xx / 128)
    arr = np.stack([wave, 255 - wave, np.full_like(wave, 90)], -1).round().astype(np.uint8)
    p = tmp_path / "portrait.jpg"
    Image.fromarray(arr, "RGB").save(p, quality=95)
    with Image.open(p) as img:
        ref = np.asarray(img.convert("RGB").resize((100, 200), Image.BILINEAR), dtype=np.int16)
    got = _images.read_rgb(p, (200, 100)).permute(1, 2, 0).numpy().astype(np.int16)
    assert got.shape == (200, 100, 3)
    assert np.abs(got - ref).max() <= 2


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_a_large_jpeg_read_small_is_the_full_decode_resized_bilinearly(tmp_path, scale):
    # read_rgb drafted a JPEG straight to the target: the decoder's box filter did the reduction and its padded
    # last block shifted the picture (a 477-row photo: up to 0.75 px), 2 grey levels off on average and 10 at
    # most on this smooth picture. The reference: PIL's full decode, resized with its antialiased bilinear filter.
    y, x = np.mgrid[0:477, 0:720]
    grey = (128 + 100 * np.sin(x / 40.0) * np.cos(y / 30.0)).clip(0, 255).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.stack([grey, grey[::-1], 255 - grey], -1)).save(path, quality=95)
    h, w = 477 // scale, 720 // scale
    got = _images.read_rgb(path, (h, w)).permute(1, 2, 0).numpy().astype(int)
    with Image.open(path) as full:
        expected = np.asarray(full.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(got - expected).max() <= 1
