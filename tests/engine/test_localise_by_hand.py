"""`topoloc.localise` against a pipeline built by hand: the normaliser and the input size asked for,
the frame asked for beside the recorded one, folder suffixes, names and warnings."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import topoloc
from topoloc.data import PoseNormalizer
from topoloc.data.preset import load_preset
from topoloc.engine import TrainConfig, load_model
from topoloc.engine.checkpoint import save_checkpoint
from topoloc.engine.localise import resolve_frame
from topoloc.geodesy import LocalFrame
from topoloc.models import create_model

KWARGS = {"backbone": "test_resnet", "feat_dim": 32}
SIZE = (32, 48)  # (H, W) the tiny model records
COMBALLAZ = LocalFrame.named("comballaz")


def _checkpoint(path: Path, frame: str | None = None) -> Path:
    """A checkpoint of an untrained tiny AtLoc, its normaliser fitted on Comballaz LHS poses."""
    torch.manual_seed(0)
    model = create_model("atloc_resnet18", **KWARGS).eval()
    normalizer = PoseNormalizer.fit(COMBALLAZ.cesium_to_c2w(load_preset("comballaz-LHS")[:60]))
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs=KWARGS, image_size=SIZE, device="cpu")
    state = {"model_name": "atloc_resnet18", "model_kwargs": KWARGS, "model_state": model.state_dict(),
             "normalizer": normalizer.state_dict(), "config": cfg.to_dict()}
    if frame is not None:
        state["frame"] = {"name": frame, **LocalFrame.named(frame).to_dict()}
    return save_checkpoint(state, path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "last.pt")


def _photos(n: int = 2, size_hw=(64, 96), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, *size_hw), dtype=torch.uint8, generator=g)


def _by_hand(model, normalizer, images: torch.Tensor, size_hw) -> np.ndarray:
    """Antialiased bilinear resize rounded to uint8, [0, 1], the backbone's mean / std, the model, decode."""
    x = F.interpolate(images.float(), size=size_hw, mode="bilinear", align_corners=False, antialias=True)
    x = x.round().clamp(0, 255) / 255.0
    with torch.no_grad():
        return normalizer.decode(model((x - model.image_mean) / model.image_std)).numpy()


def test_the_normalizer_given_decodes_instead_of_the_checkpoints(ckpt):
    # Another normaliser: fitted on Comballaz poses moved 500 m east (its translation mean differs).
    model, own, cfg = load_model(ckpt)
    moved = COMBALLAZ.cesium_to_c2w(load_preset("comballaz-LHS")[:60])
    moved[:, 0, 3] += 500.0
    other = PoseNormalizer.fit(moved)
    photos = _photos()
    expected = _by_hand(model, other, photos, SIZE)
    assert np.abs(expected - _by_hand(model, own, photos, SIZE)).max() > 100  # the two decode apart
    for source in (ckpt, (model, own, cfg)):
        got = topoloc.localise(source, photos, normalizer=other, frame="comballaz")
        np.testing.assert_allclose(got.c2w_enu, expected, rtol=0, atol=1e-4)


def test_an_image_size_asked_for_is_the_size_the_model_runs_at(ckpt):
    # The model records 32x48; asked for 16x24, the photos are resized once, to 16x24 (as
    # `predict(image_size=...)` and `evaluate(image_size=...)` run it), not resized again to 32x48.
    model, normalizer, cfg = load_model(ckpt)
    photos = _photos()
    expected = _by_hand(model, normalizer, photos, (16, 24))
    assert np.abs(expected - _by_hand(model, normalizer, photos, SIZE)).max() > 1e-2
    for source in (ckpt, (model, normalizer, cfg)):
        got = topoloc.localise(source, photos, image_size=(16, 24), frame="comballaz")
        np.testing.assert_allclose(got.c2w_enu, expected, rtol=0, atol=1e-4)


def test_adabn_runs_at_the_image_size_asked_for(ckpt):
    # AdaBN's statistics and predictions at 16x24 are those of `evaluate(adapt="adabn")` at 16x24 on the
    # same photos (cached at 16x24, so both see the same pixels).
    from topoloc.data.cache import ImageCache, resize_uint8
    from topoloc.engine import evaluate

    model, normalizer, cfg = load_model(ckpt)
    photos = _photos(n=4)
    small = resize_uint8(photos, (16, 24))
    cache = ImageCache(small, torch.eye(4, dtype=torch.float64).repeat(4, 1, 1), flights=["f"] * 4,
                       domains=["real"] * 4)
    expected = evaluate(model, normalizer, cache, frame="comballaz", retrieval=False, adapt="adabn", batch_size=4,
                        image_size=(16, 24)).model.pred_c2w
    with pytest.warns(UserWarning, match="adabn"):
        got = topoloc.localise((model, normalizer, cfg), photos, image_size=(16, 24), frame="comballaz", adabn=True,
                               batch_size=4)
    np.testing.assert_allclose(got.c2w_enu[:, :3, 3], expected[:, :3, 3], rtol=0, atol=1e-3)


def test_a_frame_asked_for_a_metre_from_the_recorded_one_is_refused(tmp_path):
    epfl = LocalFrame.named("epfl")
    recorded = {"name": "epfl", **epfl.to_dict()}
    assert resolve_frame("epfl", recorded) == epfl
    assert resolve_frame(LocalFrame(epfl.lat_deg, epfl.lon_deg, epfl.h_m), recorded) == epfl
    # 1e-4 deg of latitude is 11 m on the ground (a degree is about 111 km); 1e-4 deg of longitude
    # is 7.7 m at 46.5 deg north; 1 m of height is 1 m: each would move every position as much.
    for near in (LocalFrame(epfl.lat_deg + 1e-4, epfl.lon_deg, epfl.h_m),
                 LocalFrame(epfl.lat_deg, epfl.lon_deg + 1e-4, epfl.h_m),
                 LocalFrame(epfl.lat_deg, epfl.lon_deg, epfl.h_m + 1.0)):
        with pytest.raises(ValueError, match="was asked for but the model was trained in 'epfl'"):
            resolve_frame(near, recorded)
    # Through localise: a checkpoint that records its frame takes that frame by name, without a warning.
    checkpoint = _checkpoint(tmp_path / "epfl.pt", frame="epfl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert topoloc.localise(checkpoint, _photos(n=1, size_hw=(32, 48)), frame="epfl").frame == epfl


def test_a_batch_size_below_one_is_refused_by_name(ckpt):
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        topoloc.localise(ckpt, _photos(n=1), frame="comballaz", batch_size=0)


def test_a_folder_gives_its_images_of_any_suffix_case_sorted_by_name(ckpt, tmp_path):
    # DJI cameras write DJI_0001.JPG: upper-case suffixes count as image suffixes; other files do not.
    folder = tmp_path / "flight"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = ["DJI_0003.JPG", "b.Png", "DJI_0001.JPG", "a.jpeg", "c.tif"]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(folder / name)
    (folder / "DJI_0002.MOV").write_bytes(b"not a photo")
    (folder / "._DJI_0001.JPG").write_bytes(b"\0\5\26\7")  # macOS's AppleDouble file: skipped as unreadable
    loc = topoloc.localise(ckpt, folder, frame="comballaz")
    assert loc.skipped == []
    assert loc.names == ["DJI_0001", "DJI_0003", "a", "b", "c"]  # sorted by file name: upper case first
    assert [Path(s).name for s in loc.sources] == ["DJI_0001.JPG", "DJI_0003.JPG", "a.jpeg", "b.Png", "c.tif"]


def test_names_count_on_across_a_list_of_tensors_and_take_a_pil_files_stem(ckpt, tmp_path):
    path = tmp_path / "DJI_0042.JPG"
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(path)
    with Image.open(path) as from_file, pytest.warns(UserWarning, match=r"^2 of 5 photo\(s\) are greyscale"):  # black
        loc = topoloc.localise(ckpt, [_photos(n=2, size_hw=(32, 48)), _photos(n=1, size_hw=(32, 48))[0], from_file,
                                      Image.new("RGB", (48, 32))], frame="comballaz")
    # Each tensor image and each PIL image without a file is named by its place among the photos.
    assert loc.names == ["0", "1", "2", "DJI_0042", "4"]


def test_adabn_warns_below_16_photos_and_takes_a_batch_size_of_one(ckpt):
    photos = _photos(n=16, size_hw=(32, 48))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 16 photos are enough: no warning
        topoloc.localise(ckpt, photos, frame="comballaz", adabn=True, batch_size=16)
    with pytest.warns(UserWarning, match=r"adabn: batch-norm statistics of 15 photo\(s\) only are noisy"):
        topoloc.localise(ckpt, photos[:15], frame="comballaz", adabn=True)
    # Photos read one at a time still adapt: a batch-norm statistic needs two images per batch.
    one = topoloc.localise(ckpt, photos, frame="comballaz", adabn=True, batch_size=1)
    assert len(one.names) == 16 and np.isfinite(one.c2w_enu).all()


def test_the_aspect_warning_takes_a_relative_difference_of_1_percent(ckpt):
    # The model takes 48x32 (aspect 1.5). 100x64 is aspect 1.5625, 4.2 % wider: stretched, with a warning.
    with pytest.warns(UserWarning, match=r"100x64 \(aspect 1.562.*stretched to the model's 48x32"):
        topoloc.localise(ckpt, _photos(n=1, size_hw=(64, 100)), frame="comballaz")
    # 378x250 is aspect 1.512: 0.8 % wider (0.012 in absolute terms), within the 1 % tolerance.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        topoloc.localise(ckpt, _photos(n=1, size_hw=(250, 378)), frame="comballaz")


def test_photos_under_half_the_input_in_both_directions_are_said_to_be_upscaled(ckpt):
    # a 3x2 px photo was localised without a word. The model takes 48x32: 21x14 (its aspect) is upscaled 2.29x
    # (warned), 24x16 exactly 2x and 23x40 (W x H) more than 2x across only (neither warned)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        topoloc.localise(ckpt, _photos(n=1, size_hw=(14, 21)), frame="comballaz")
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and re.match(r"photos of 21x14 \(e.g. .*\) are upscaled more than 2x to the model's "
                                       r"48x32 px input", said[0]), said
    for size_hw in ((16, 24), (40, 23)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            topoloc.localise(ckpt, _photos(n=1, size_hw=size_hw), frame="comballaz")
        assert not [w for w in caught if "upscaled" in str(w.message)], size_hw


def test_a_mirroring_exif_orientation_warns_for_a_file_and_a_pil_image(ckpt, tmp_path):
    # EXIF Orientation 2 is "mirrored left-right", 8 "rotate 90 deg counter-clockwise": a flip and a
    # rotation are both left unapplied, with a warning.
    arr = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    for value in (2, 8):
        exif = Image.Exif()
        exif[0x0112] = value
        Image.fromarray(arr).save(tmp_path / f"o{value}.jpg", quality=95, exif=exif)
    with pytest.warns(UserWarning, match=r"1 photo\(s\) carry an EXIF Orientation other than 1 \(first: .*o2.jpg: 2\)"):
        topoloc.localise(ckpt, tmp_path / "o2.jpg", frame="comballaz")
    with Image.open(tmp_path / "o8.jpg") as img, pytest.warns(UserWarning, match=r"o8.jpg: 8\)"):
        topoloc.localise(ckpt, img, frame="comballaz")


def test_a_triple_whose_model_records_no_size_runs_at_its_configs(ckpt):
    # A model that lost its recorded size (`model.config` without image_size) beside the config of
    # its run: the config's 32x48 is the size it runs at.
    model, normalizer, cfg = load_model(ckpt)
    del model.config["image_size"]
    photos = _photos()
    got = topoloc.localise((model, normalizer, cfg), photos, frame="comballaz")
    np.testing.assert_allclose(got.c2w_enu, _by_hand(model, normalizer, photos, SIZE), rtol=0, atol=1e-4)


def test_a_hand_made_triple_without_config_or_normaliser_is_refused_by_name():
    # (model, normalizer, None) ended in AttributeError: 'NoneType' object has no attribute 'image_size'
    model = create_model("atloc_resnet18", **KWARGS).eval()
    normalizer = PoseNormalizer.fit(COMBALLAZ.cesium_to_c2w(load_preset("comballaz-LHS")[:60]))
    with pytest.raises(ValueError, match=r"^localise: `image_size` is needed: the model records no training input"):
        topoloc.localise((model, normalizer, None), _photos(n=1), frame="comballaz")
    loc = topoloc.localise((model, normalizer, None), _photos(n=1), frame="comballaz", image_size=SIZE)
    assert len(loc) == 1
    with pytest.raises(ValueError, match=r"^localise: the \(model, normalizer, config\) triple holds no normalizer"):
        topoloc.localise((model, None, None), _photos(n=1), frame="comballaz", image_size=SIZE)
