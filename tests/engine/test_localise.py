"""`topoloc.localise` and `topoloc localise`: inputs, EXIF orientation, resizing, unreadable photos,
frames, and the end-to-end check that positions match `topoloc evaluate`'s predictions to 1 mm."""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

import topoloc
from topoloc.cli import main
from topoloc.data.preset import load_preset, load_preset_pic_names
from topoloc.engine import load_model
from topoloc.engine.localise import read_photo, resolve_frame
from topoloc.geodesy import LocalFrame

from support.tiny_localiser import KWARGS, SIZE, write_checkpoint, write_photos  # noqa: F401


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.pt")


def _reference_poses(ckpt_path: Path, paths: list[Path]) -> np.ndarray:
    """By hand: PIL decode, antialiased bilinear resize rounded to uint8, mean / std, model, decode."""
    model, normalizer, cfg = load_model(ckpt_path)
    images = []
    for p in paths:
        with Image.open(p) as img:
            x = torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=cfg.image_size, mode="bilinear", align_corners=False, antialias=True)
        images.append(x.round().clamp(0, 255) / 255.0)
    x = (torch.cat(images) - model.image_mean) / model.image_std
    with torch.no_grad():
        return normalizer.decode(model(x)).numpy()


def test_inputs_agree_with_a_pipeline_built_by_hand(ckpt, tmp_path):
    paths = write_photos(tmp_path / "photos", n=3, size_wh=(96, 64))
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")  # a folder's other files are left alone
    expected = _reference_poses(ckpt, paths)
    with pytest.warns(UserWarning, match="does not record its training frame"):
        by_folder = topoloc.localise(ckpt, tmp_path / "photos", device="cpu")
    assert by_folder.names == ["photo_0", "photo_1", "photo_2"] and by_folder.frame == LocalFrame.named("comballaz")
    np.testing.assert_allclose(by_folder.c2w_enu, expected, rtol=0, atol=1e-4)
    triple = load_model(ckpt)
    pil = [Image.open(p) for p in paths]
    tensor = torch.stack([read_photo(p)[0] for p in paths])
    # Other batch sizes change float32 rounding inside the network: the same poses to 0.1 mm.
    for images in ([str(p) for p in paths], pil, tensor):
        got = topoloc.localise(triple, images, frame="comballaz", batch_size=2)
        np.testing.assert_allclose(got.c2w_enu, by_folder.c2w_enu, rtol=0, atol=1e-4)
    for img in pil:
        img.close()
    model, normalizer, _ = triple
    one = topoloc.localise(model, tensor[1], normalizer=normalizer, image_size=SIZE, frame="comballaz")
    np.testing.assert_allclose(one.c2w_enu, by_folder.c2w_enu[1:2], rtol=0, atol=1e-4)


def test_exif_orientation_is_not_applied(ckpt, tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 deg clockwise to display"
    path = tmp_path / "DJI_0001.JPG"
    Image.fromarray(arr).save(path, quality=95, exif=exif)
    image, orientation = read_photo(path)
    stored = np.asarray(Image.open(path).convert("RGB"))
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert orientation == 6 and shown.shape == (48, 32, 3)  # a viewer would turn it
    assert tuple(image.shape) == (3, 32, 48) and np.array_equal(image.permute(1, 2, 0).numpy(), stored)
    with pytest.warns(UserWarning, match="EXIF Orientation.*DJI_0001.JPG: 6"):
        topoloc.localise(ckpt, path, frame="comballaz")


def test_aspect_warning_only_when_the_aspect_differs(ckpt, tmp_path):
    same = write_photos(tmp_path / "same", n=1, size_wh=(150, 100))  # 3:2 like the model's 48x32
    square = write_photos(tmp_path / "square", n=1, size_wh=(40, 40))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        topoloc.localise(ckpt, same, frame="comballaz")
    assert not [w for w in caught if "stretched" in str(w.message)]
    with pytest.warns(UserWarning, match=r"40x40 \(aspect 1.000.*stretched to the model's 48x32"):
        topoloc.localise(ckpt, square, frame="comballaz")


def test_greyscale_photos_are_localised_as_three_equal_channels_with_a_warning(ckpt, tmp_path):
    # were localised without a word: a colour model placed the demo's first photo, turned grey, 132 m from where
    # it placed the colour photo
    rgb = np.random.default_rng(2).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    Image.fromarray(grey).save(tmp_path / "grey.png")
    by_hand = torch.from_numpy(np.repeat(grey[None], 3, axis=0).copy())  # (3, H, W), three equal channels
    with pytest.warns(UserWarning, match=r"^1 of 2 photo\(s\) are greyscale \(first: .*grey\.png\): they are read as "
                                         r"colour images with three equal channels"):
        got = topoloc.localise(ckpt, tmp_path, frame="comballaz")
    assert got.names == ["colour", "grey"]
    with pytest.warns(UserWarning, match=r"^1 of 1 photo\(s\) are greyscale \(first: 0\)"):  # a tensor: by its place
        expected = topoloc.localise(ckpt, by_hand, frame="comballaz")
    np.testing.assert_allclose(got.c2w_enu[1], expected.c2w_enu[0], rtol=0, atol=1e-4)  # batch of 2, of 1: 0.1 mm
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        topoloc.localise(ckpt, tmp_path / "colour.png", frame="comballaz")
    assert not [w for w in caught if "greyscale" in str(w.message)]


def test_unreadable_photos_skip_or_raise(ckpt, tmp_path):
    good = write_photos(tmp_path, n=1)[0]
    text = tmp_path / "readme.JPG"
    text.write_text("hello")
    corrupt = tmp_path / "corrupt.jpg"
    Image.fromarray(np.zeros((48, 72, 3), np.uint8)).save(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    with pytest.warns(UserWarning, match="skipped 2 unreadable photo"):
        out = topoloc.localise(ckpt, [text, good, corrupt], frame="comballaz", on_error="skip")
    assert out.names == ["photo_0"] and [Path(s).name for s, _ in out.skipped] == ["readme.JPG", "corrupt.jpg"]
    assert all("could not read the image" in why for _, why in out.skipped)
    with pytest.raises(ValueError, match="readme.JPG: could not read"):
        topoloc.localise(ckpt, [good, text], frame="comballaz")


def test_input_and_argument_errors(ckpt, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        topoloc.localise(ckpt, tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="holds no image"):
        topoloc.localise(ckpt, tmp_path / "empty")
    with pytest.raises(ValueError, match=r"images: expected a uint8 RGB tensor"):
        topoloc.localise(ckpt, torch.rand(1, 3, 8, 8))
    with pytest.raises(TypeError, match=r"images\[0\]"):
        topoloc.localise(ckpt, [3.0])
    model, _, _ = load_model(ckpt)
    with pytest.raises(ValueError, match="normalizer"):
        topoloc.localise(model, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="on_error"):
        topoloc.localise(ckpt, tmp_path, on_error="ignore")
    for bad in (float("nan"), 1e9, -130.0, "49.5"):  # before the checkpoint is read: it is missing here
        with pytest.raises(ValueError, match=r"geoid_offset_m \(--geoid-offset\): expected the geoid undulation"):
            topoloc.localise(tmp_path / "missing.pt", tmp_path, geoid_offset_m=bad)
    with pytest.raises(TypeError, match="adabn: expected True or False, got str 'no'"):  # "no" adapted
        topoloc.localise(tmp_path / "missing.pt", tmp_path, adabn="no")


def test_cli_refuses_an_output_file_named_twice(ckpt, tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", n=1)
    with pytest.raises(SystemExit) as exc:
        main(["localise", "--checkpoint", str(ckpt), str(photos[0]), "--no-progress", "--out",
              str(tmp_path / "a.csv"), f"{tmp_path}/./a.csv"])
    assert exc.value.code == 2 and f"--out: '{tmp_path}/./a.csv' is given twice" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize("order", ["all after", "some after"])
def test_cli_says_that_photos_go_before_out(ckpt, tmp_path, capsys, order):
    """--out takes every name after it: photos given there are refused with that said, not as unknown suffixes."""
    photos = [str(p) for p in write_photos(tmp_path / "photos", n=2)]
    before, after = ([], photos) if order == "all after" else (photos[:1], photos[1:])
    with pytest.raises(SystemExit) as exc:
        main(["localise", "--checkpoint", str(ckpt), *before, "--no-progress", "--out", str(tmp_path / "a.csv"),
              *after])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"--out: {after[0]!r} is not an output file (.csv, .geojson, .json, .kml); --out takes every name after " \
           "it, so give the photos before --out" in err
    with pytest.raises(SystemExit):
        main(["localise", "--checkpoint", str(ckpt), "--out", str(tmp_path / "a.csv"), str(tmp_path / "b.kml")])
    assert "no PHOTO given: name photo files or folders before --out" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()

def test_frames_recorded_asked_and_contradicting(tmp_path):
    epfl = write_checkpoint(tmp_path / "epfl.pt", frame="epfl")
    photos = write_photos(tmp_path / "p", n=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recorded frame: no warning
        out = topoloc.localise(epfl, photos)
    assert out.frame == LocalFrame.named("epfl")
    assert np.all(np.abs(out.lon_deg - 6.5668) < 0.05) and np.all(np.abs(out.lat_deg - 46.5191) < 0.05)
    with pytest.raises(ValueError, match=f"frame: 'comballaz' was asked for but checkpoint '{epfl}' was trained in "
                                         "'epfl'; pass the training frame"):
        topoloc.localise(epfl, photos, frame="comballaz")
    with pytest.raises(ValueError, match=r"asked for but .* trained in lat 46.0, lon 7.0, h 500.0 m"):
        resolve_frame("epfl", {"lat_deg": 46.0, "lon_deg": 7.0, "h_m": 500.0})
    model, normalizer, cfg = load_model(write_checkpoint(tmp_path / "plain.pt"))
    model.config["frame"] = {"name": "epfl", "lat_deg": 46.5191, "lon_deg": 6.5668, "h_m": 390.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the frame a loaded model carries in its config
        assert topoloc.localise((model, normalizer, cfg), photos).frame == LocalFrame.named("epfl")
    assert resolve_frame({"lat_deg": 46.0, "lon_deg": 7.0, "h_m": 500.0}) == LocalFrame(46.0, 7.0, 500.0)
    with pytest.raises(ValueError, match="unknown frame"):
        resolve_frame("paris")


# ------------------------------------------------------------------------------------- the CLI
def test_cli_writes_every_format(ckpt, tmp_path, capsys):
    write_photos(tmp_path / "photos", n=2)
    outs = [tmp_path / "o.csv", tmp_path / "o.geojson", tmp_path / "o.kml"]
    rc = main(["localise", "--checkpoint", str(ckpt), str(tmp_path / "photos"), "--frame", "comballaz",
               "--no-progress", "--out", *map(str, outs)])
    assert rc == 0 and all(p.is_file() for p in outs)
    assert "o.kml: 2 photo(s)" in capsys.readouterr().out
    assert len(list(csv.DictReader(outs[0].open()))) == 2
    assert len(json.loads(outs[1].read_text())["features"]) == 4  # a point and a view line per photo


@pytest.mark.parametrize("case", ["text", "corrupt", "other_checkpoint", "missing", "strict", "suffix"])
def test_cli_bad_input_exits_2_naming_it(ckpt, tmp_path, capsys, case):
    good = write_photos(tmp_path, n=1, suffix=".JPG")[0]
    text = tmp_path / "notes.txt"
    text.write_text("a text file\n")
    corrupt = tmp_path / "DJI_0002.JPG"
    corrupt.write_bytes(good.read_bytes()[:300])
    other = tmp_path / "epoch_300.pth.tar"
    torch.save({"model_state_dict": {}, "criterion_state_dict": {}}, other)
    checkpoint, photos, out, named = str(ckpt), [str(good)], "o.csv", None
    if case == "text":
        photos, named = [str(text)], "notes.txt"
    elif case == "corrupt":
        photos, named = [str(corrupt)], "DJI_0002.JPG"
    elif case == "other_checkpoint":
        checkpoint, named = str(other), "epoch_300.pth.tar"
    elif case == "missing":
        photos, named = [str(tmp_path / "nope.JPG")], "nope.JPG"
    elif case == "strict":
        photos, named = [str(good), str(corrupt), "--strict"], "DJI_0002.JPG"
    else:
        out, named = "o.shp", "o.shp"
    with pytest.raises(SystemExit) as exc:
        main(["localise", "--checkpoint", checkpoint, *photos, "--no-progress", "--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("topoloc localise: error:")]
    assert exc.value.code == 2 and len(error_lines) == 1 and named in error_lines[0], err


def test_cli_a_text_file_as_the_only_photo_is_one_error_line(ckpt, tmp_path, capsys):
    # it was three lines: the skip, "1 of 1 photo(s) skipped (unreadable)", then the error
    text = tmp_path / "notes.txt"
    text.write_text("text")
    with pytest.raises(SystemExit) as exc:
        main(["localise", "--checkpoint", str(ckpt), str(text), "--no-progress", "--out", str(tmp_path / "o.csv")])
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning: ")]
    assert exc.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"topoloc localise: error: no photo could be read: {text}: could not read the image")
    assert not (tmp_path / "o.csv").exists()


def test_cli_skips_unreadable_photos_with_a_count(ckpt, tmp_path, capsys):
    good = write_photos(tmp_path, n=2)
    text = tmp_path / "x.jpg"
    text.write_text("text")
    rc = main(["localise", "--checkpoint", str(ckpt), str(good[0]), str(text), str(good[1]), "--no-progress",
               "--frame", "comballaz", "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    # the lines lacked the "warning: " of the CLI's other warnings: a script filtering on it missed them
    lines = err.splitlines()
    assert rc == 0 and len(lines) == 2, err
    assert lines[0].startswith(f"warning: skipped {text}: could not read the image"), err
    assert lines[1] == "warning: 1 of 3 photo(s) skipped (unreadable)", err
    assert [r["name"] for r in csv.DictReader((tmp_path / "o.csv").open())] == ["photo_0", "photo_1"]


# ------------------------------------------------------------------------ against `topoloc evaluate`
FLIGHT = "comballaz-2020-11-06-planned"


def _write_real_flight(root: Path, count: int = 5, size_wh=(72, 48)) -> list[Path]:
    """A TOPO-DataGen flight folder with renders and '-real' photos (random pixels) at the flight's poses."""
    rng = np.random.default_rng(3)
    poses, names = load_preset(FLIGHT), load_preset_pic_names(FLIGHT)
    folder, real = root / FLIGHT, root / f"{FLIGHT}-real"
    folder.mkdir(parents=True)
    real.mkdir()
    np.save(folder / f"{FLIGHT}_poses.npy", poses)
    (folder / f"{FLIGHT}_pic_names.csv").write_text(",".join(names))
    photos = []
    for i in np.linspace(0, len(poses) - 1, count).round().astype(int):
        rgb = rng.integers(0, 256, (size_wh[1], size_wh[0], 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"{FLIGHT}_{i:05d}_{names[i]}_img.png")
        Image.fromarray(rgb).save(real / f"{names[i]}.JPG", quality=90)
        photos.append(real / f"{names[i]}.JPG")
    return photos


def _compare_with_evaluate(checkpoint: Path, data: Path, flight: str, photos: list[Path], tmp: Path) -> None:
    """`topoloc localise` positions vs `topoloc evaluate`'s predictions CSV: within 1 mm; GeoJSON valid."""
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--flights", f"{flight}:real",
                 "--out", str(tmp / "eval"), "--no-retrieval", "--device", "cpu"]) == 0
    (pred_csv,) = (tmp / "eval" / "predictions").glob("*_predictions.csv")
    # the model's own rows: with a recipe.yaml beside the checkpoint the file also holds the brackets' rows
    evaluated = {r["name"]: r for r in csv.DictReader(pred_csv.open())
                 if r["domain"] == "real" and r["method"] == checkpoint.parent.name}
    outs = [tmp / "loc.csv", tmp / "loc.geojson", tmp / "loc.kml"]
    assert main(["localise", "--checkpoint", str(checkpoint), *map(str, photos), "--frame", "comballaz",
                 "--device", "cpu", "--no-progress", "--out", *map(str, outs)]) == 0
    localised = {r["name"]: r for r in csv.DictReader(outs[0].open())}
    assert sorted(localised) == sorted(evaluated) and len(localised) == len(photos)
    for name, row in localised.items():
        ref = evaluated[name]
        ecef = np.array([float(row[f"ecef_{a}_m"]) for a in "xyz"])
        ecef_ref = np.array([float(ref[f"pred_ecef_{a}_m"]) for a in "xyz"])  # written to 10 digits: 0.5 mm
        enu = np.array([float(row[f"{a}_m"]) for a in ("east", "north", "up")])
        enu_ref = np.array([float(ref[f"pred_{a}_m"]) for a in ("east", "north", "up")])
        assert np.linalg.norm(ecef - ecef_ref) < 1e-3 and np.linalg.norm(enu - enu_ref) < 1e-3
        assert float(row["lat_deg"]) == pytest.approx(float(ref["pred_lat_deg"]), abs=1e-7)
        assert float(row["lon_deg"]) == pytest.approx(float(ref["pred_lon_deg"]), abs=1e-7)
        assert float(row["yaw_deg"]) == pytest.approx(float(ref["pred_yaw_deg"]), abs=1e-4)
    doc = json.loads(outs[1].read_text())
    assert doc["type"] == "FeatureCollection"
    for f in doc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] in ("Point", "LineString")
        points = [f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Point" else f["geometry"]["coordinates"]
        for lon, lat, _h in points:  # [lon, lat, h]: longitude first, within the Comballaz area
            assert 6.9 < lon < 7.2 and 46.25 < lat < 46.5
        if f["geometry"]["type"] == "Point":
            row = localised[f["properties"]["name"]]
            assert f["geometry"]["coordinates"][:2] == pytest.approx([float(row["lon_deg"]), float(row["lat_deg"])])
    assert outs[2].read_text().count("<Placemark>") == len(photos)


def test_localise_matches_evaluate_to_1mm(ckpt, tmp_path):
    photos = _write_real_flight(tmp_path / "data")
    _compare_with_evaluate(ckpt, tmp_path / "data", FLIGHT, photos, tmp_path)


@pytest.mark.slow
def test_smoke_demo_photos_match_evaluate_to_1mm(tmp_path):
    """After `topoloc demo --smoke`, its real test photos localised as in the README's worked example."""
    demo = tmp_path / "demo"
    assert main(["demo", "--smoke", "--out", str(demo), "--device", "cpu"]) == 0
    checkpoint = demo / "runs" / "augmented" / "last.pt"
    photos = sorted((demo / "data" / f"{FLIGHT}-real").glob("*.JPG"))
    assert photos
    _compare_with_evaluate(checkpoint, demo / "data", FLIGHT, photos, tmp_path)


def test_adabn_localises_as_evaluate_adapts(ckpt, tmp_path, capsys):
    """`localise(adabn=True)` re-estimates the batch-norm statistics on the photos as `evaluate(adapt="adabn")`
    does on the same flight: the same poses; and the adaptation changes them."""
    from topoloc.data import TopoFlight
    from topoloc.engine import evaluate

    photos = _write_real_flight(tmp_path / "data", count=8)
    model, normalizer, _ = load_model(ckpt)
    flight = TopoFlight(tmp_path / "data", FLIGHT, domain="real", frame="comballaz")
    evaluated = evaluate(model, normalizer, flight, retrieval=False, adapt="adabn", batch_size=4).model
    with pytest.warns(UserWarning, match=r"adabn: batch-norm statistics of 8 photo\(s\) only are noisy"):
        adapted = topoloc.localise(ckpt, photos, frame="comballaz", batch_size=4, adabn=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # without AdaBN nothing to warn about
        plain = topoloc.localise(ckpt, photos, frame="comballaz", batch_size=4)
    by_name = dict(zip(evaluated.names, evaluated.pred_c2w))
    assert sorted(by_name) == sorted(adapted.names)
    expected = np.stack([by_name[n] for n in adapted.names])
    np.testing.assert_allclose(adapted.c2w_enu[:, :3, 3], expected[:, :3, 3], rtol=0, atol=1e-3)
    np.testing.assert_allclose(adapted.c2w_enu[:, :3, :3], expected[:, :3, :3], rtol=0, atol=1e-5)
    assert np.abs(plain.c2w_enu[:, :3, 3] - adapted.c2w_enu[:, :3, 3]).max() > 1.0
    out = tmp_path / "adabn.csv"
    assert main(["localise", "--checkpoint", str(ckpt), *map(str, photos), "--frame", "comballaz", "--device", "cpu",
                 "--batch-size", "4", "--no-progress", "--adabn", "--out", str(out)]) == 0
    assert "warning: adabn: batch-norm statistics of 8 photo(s) only are noisy" in capsys.readouterr().err
    rows = {r["name"]: r for r in csv.DictReader(out.open())}
    for name, c2w in zip(adapted.names, adapted.c2w_enu):
        assert float(rows[name]["east_m"]) == pytest.approx(c2w[0, 3], abs=1e-3)


def test_a_16_bit_pil_image_is_scaled_as_its_file_is_read(tmp_path):
    from topoloc.engine.localise import collect_photos

    # 16-bit greyscale (PIL mode I;16): 8-bit value v / 257, worked by hand; convert("RGB") would clip to 255.
    grey = np.array([[0, 257, 32896], [65535, 514, 1000]], dtype=np.uint16)
    img = Image.fromarray(grey)
    assert img.mode == "I;16"
    expected = np.rint(grey / 257.0).astype(np.uint8)  # 0, 1, 128 / 255, 2, 4
    got = collect_photos([img])[0].load()[0]
    assert got.dtype == torch.uint8 and got.shape == (3, 2, 3)
    np.testing.assert_array_equal(got.numpy(), np.broadcast_to(expected, (3, 2, 3)))
    img.save(tmp_path / "g16.png")
    np.testing.assert_array_equal(collect_photos([tmp_path / "g16.png"])[0].load()[0].numpy(), got.numpy())
    # A float image has no known range: refused, naming the argument.
    with pytest.raises(ValueError, match=r"images\[1\]: a mode F \(float32\) image; expected an 8- or 16-bit image"):
        collect_photos([img, Image.fromarray(grey.astype(np.float32))])[1].load()


def test_a_photo_given_twice_is_localised_once_with_a_warning(tmp_path):
    # `topoloc localise good.png good.png` wrote two identical rows named alike; a file named and also in a
    # folder given too is the same photo
    from topoloc.engine.localise import collect_photos

    folder = tmp_path / "flight"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(folder / name)
    with pytest.warns(UserWarning, match=rf"images: 2 photo file\(s\) given more than once \(first: "
                                         rf"{re.escape(str((folder / 'b.png').resolve()))}\): each is localised once"):
        photos = collect_photos([folder / "b.png", folder, folder / "a.png", str(folder / "b.png")])
    assert [(p.name, Path(p.source).name) for p in photos] == [("b", "b.png"), ("a", "a.png")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each once: no warning
        assert [p.name for p in collect_photos([folder])] == ["a", "b"]


def _ellipsoidal_heights(frame: LocalFrame, enu: np.ndarray) -> np.ndarray:
    """WGS84 ellipsoidal heights (m) of local ENU points, by hand: the frame's origin and axes, then pyproj."""
    from pyproj import Transformer

    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    to_geo = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    lat, lon = np.radians(frame.lat_deg), np.radians(frame.lon_deg)
    origin = np.array(to_ecef.transform(frame.lon_deg, frame.lat_deg, frame.h_m))
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    ecef = origin + enu[:, :1] * east + enu[:, 1:2] * north + enu[:, 2:3] * up
    return np.asarray(to_geo.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])[2])


def test_geoid_offset_gives_heights_above_sea_level_of_h_minus_n(ckpt, tmp_path):
    photos = write_photos(tmp_path / "photos", n=2)
    frame = LocalFrame.named("comballaz")
    loc = topoloc.localise(ckpt, photos, frame="comballaz", geoid_offset_m=47.0)
    h = _ellipsoidal_heights(frame, loc.c2w_enu[:, :3, 3])
    np.testing.assert_allclose(loc.h_m, h, rtol=0, atol=1e-3)
    np.testing.assert_allclose(loc.h_amsl_m, h - 47.0, rtol=0, atol=1e-3)
    assert loc.geoid_offset_m == 47.0
    # the CLI's --geoid-offset: the CSV's heights above sea level are h - 47 as well
    out = tmp_path / "o.csv"
    assert main(["localise", "--checkpoint", str(ckpt), *map(str, photos), "--frame", "comballaz",
                 "--geoid-offset", "47", "--no-progress", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    np.testing.assert_allclose([float(r["h_amsl_m"]) for r in rows], h - 47.0, rtol=0, atol=1e-2)
