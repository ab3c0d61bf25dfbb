"""`topoloc localise` on odd files and names: a decompression bomb, a 32-bit image made in memory,
file names that are not UTF-8 or hold control characters, two files with one stem, broken links,
photos only in subfolders; and `export_onnx` refusing its two side files before any work."""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import topoloc
from topoloc.cli import main
from topoloc.engine.localise import collect_photos

from support.tiny_localiser import write_checkpoint, write_photos


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.pt")


def test_a_decompression_bomb_is_skipped_by_name(ckpt, tmp_path, monkeypatch, capsys):
    # PIL raises DecompressionBombError (not an OSError) over twice MAX_IMAGE_PIXELS: it was a traceback
    # naming no file, and the good photos after it were lost.
    good = write_photos(tmp_path, n=1)[0]
    big = tmp_path / "big.png"
    Image.new("L", (300, 200), 128).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 200 // 4)  # 60,000 px > 2 x 15,000: an error
    rc = main(["localise", "--checkpoint", str(ckpt), str(big), str(good), "--no-progress",
               "--frame", "comballaz", "--out", str(tmp_path / "o.csv")])
    lines = capsys.readouterr().err.splitlines()
    assert rc == 0 and lines[0].startswith(f"warning: skipped {big}: could not read the image ("), lines
    assert "decompression bomb" in lines[0], lines
    assert [r["name"] for r in csv.DictReader((tmp_path / "o.csv").open(encoding="utf-8"))] == ["photo_0"]
    with pytest.raises(ValueError, match=f"^{big}: could not read the image"):
        topoloc.localise(ckpt, [big], frame="comballaz")


def test_a_32_bit_image_made_in_memory_is_refused_and_one_from_a_file_is_16_bit(tmp_path):
    # Image.fromarray(uint8 array as int32) is mode I: it was read as 16-bit (v / 257), an almost black photo.
    arr = np.arange(6, dtype=np.int32).reshape(2, 3) * 50
    with pytest.raises(ValueError, match=r"^images: a 32-bit integer \(mode I\) image made in memory; expected"):
        collect_photos(Image.fromarray(arr))[0].load()
    # A 16-bit PNG that a Pillow opens as mode I (older releases do) is a file: scaled by 1 / 257 as before.
    Image.fromarray((arr * 257).astype(np.uint16)).save(tmp_path / "g.png")
    opened = Image.open(tmp_path / "g.png").convert("I")
    opened.format = "PNG"  # what Image.open of such a file reports
    np.testing.assert_array_equal(collect_photos(opened)[0].load()[0][0].numpy(), arr.astype(np.uint8))


@pytest.mark.skipif(os.name == "nt", reason="a file name that is not UTF-8 needs a POSIX file system")
def test_a_file_name_that_is_not_utf8_is_written_with_its_byte_escaped(ckpt, tmp_path, capsys):
    # "lat\xe9.jpg" in Latin-1: the CSV and KML writers raised "'utf-8' codec can't encode character '\udce9'".
    folder = tmp_path / "photos"
    write_photos(folder, n=1)
    arr = np.asarray(Image.open(folder / "photo_0.png"))
    Image.fromarray(arr).save(os.fsdecode(os.fsencode(folder) + b"/lat\xe9.png"))
    outs = [tmp_path / "o.csv", tmp_path / "o.kml", tmp_path / "o.geojson"]
    rc = main(["localise", "--checkpoint", str(ckpt), str(folder), "--no-progress", "--frame", "comballaz",
               "--out", *map(str, outs)])
    assert rc == 0, capsys.readouterr().err
    rows = list(csv.DictReader(outs[0].open(encoding="utf-8")))
    assert [r["name"] for r in rows] == ["lat\\xe9", "photo_0"]
    assert rows[0]["source"] == str(folder / "lat\\xe9.png")
    kml = ET.parse(outs[1]).getroot()
    assert [e.text for e in kml.iter("{http://www.opengis.net/kml/2.2}name")][1:] == ["lat\\xe9", "photo_0"]
    assert [f["properties"]["name"] for f in json.loads(outs[2].read_text(encoding="utf-8"))["features"]
            if f["geometry"]["type"] == "Point"] == ["lat\\xe9", "photo_0"]


def test_control_characters_in_a_name_leave_the_kml_well_formed(ckpt, tmp_path):
    # XML 1.0 forbids U+0001; escape() let it through and ElementTree refused the file ("not well-formed").
    folder = tmp_path / "photos"
    write_photos(folder, n=1)
    (folder / "photo_0.png").rename(folder / "ctl\x01.png")
    loc = topoloc.localise(ckpt, folder, frame="comballaz")
    loc.write(tmp_path / "o.kml")
    names = [e.text for e in ET.parse(tmp_path / "o.kml").getroot().iter("{http://www.opengis.net/kml/2.2}name")]
    assert names[1:] == ["ctl\ufffd"]


def test_two_files_with_one_stem_keep_their_suffixes_as_names(ckpt, tmp_path):
    folder = tmp_path / "photos"
    write_photos(folder, n=2)
    (folder / "photo_1.png").rename(folder / "photo_0.jpg")
    loc = topoloc.localise(ckpt, folder, frame="comballaz")
    assert loc.names == ["photo_0.jpg", "photo_0.png"]


def test_one_file_name_in_two_folders_is_named_by_its_path(ckpt, tmp_path):
    # dup/a/p.JPG and dup/b/p.JPG were both named "photo_0.png": one GeoJSON id, one CSV name for two photos
    for sub in ("a", "b"):
        write_photos(tmp_path / "dup" / sub, n=1)
    loc = topoloc.localise(ckpt, [tmp_path / "dup" / "a", tmp_path / "dup" / "b"], frame="comballaz")
    assert loc.names == ["a/photo_0.png", "b/photo_0.png"]


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_broken_link_in_a_folder_is_reported_not_dropped(ckpt, tmp_path):
    folder = tmp_path / "photos"
    write_photos(folder, n=1)
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable photo"):
        loc = topoloc.localise(ckpt, folder, frame="comballaz", on_error="skip")
    assert loc.names == ["photo_0"] and [Path(s).name for s, _ in loc.skipped] == ["gone.jpg"]
    assert "image file not found" in loc.skipped[0][1]


def test_a_folder_of_subfolders_says_they_are_not_searched(tmp_path):
    write_photos(tmp_path / "flight" / "day1", n=1)
    with pytest.raises(ValueError, match=r"holds no image file \(expected .*\) \(its subfolders are not searched"):
        collect_photos(tmp_path / "flight")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no image file \(expected [^)]*\)$"):
        collect_photos(tmp_path / "empty")


@pytest.mark.parametrize("blocked", ["model.json", "topoloc_pose_decoder.py"])
def test_export_refuses_a_blocked_side_file_before_the_model_is_traced(ckpt, tmp_path, monkeypatch, blocked):
    # was: the ONNX written, then "[Errno 21] Is a directory: '.model.json.<pid>.tmp' -> 'model.json'"
    pytest.importorskip("onnx")
    import topoloc.engine.export as export

    (tmp_path / blocked).mkdir()

    def not_traced(*args, **kwargs):
        raise AssertionError("the model was traced before the outputs were checked")

    monkeypatch.setattr(export, "OnnxPoseNet", not_traced)
    with pytest.raises(ValueError, match=rf"^output's (metadata|decoder) file '{tmp_path / blocked}': a folder"):
        export.export_onnx(ckpt, tmp_path / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == [blocked]
