"""Mini-Comballaz writer and `topoloc render`: exact layout, determinism, resume, read-back."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.cli import main
from topoloc.data.preset import load_preset, load_preset_pic_names
from topoloc.geodesy import LocalFrame
from topoloc.data.semantics import CLASS_TABLE_FILE, read_class_table
from topoloc.procedural import SEMANTIC_CLASSES, parse_flights, parse_size, pose_flight, render_flights

SIZE = (72, 48)
FLIGHTS = "comballaz-LHS:3,comballaz-2020-11-06-planned:3"


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    done = render_flights(root, FLIGHTS, size=SIZE, seed=0, batch_size=2, progress=False, depth=True)
    return root, done


def test_layout_is_topo_datagen(rendered):
    root, done = rendered
    assert done == {"comballaz-LHS": 3, "comballaz-2020-11-06-planned": 3}
    lhs = root / "comballaz-LHS"
    np.testing.assert_array_equal(np.load(lhs / "comballaz-LHS_poses.npy"), load_preset("comballaz-LHS"))
    idx = np.round(np.linspace(0, 29999, 3)).astype(int)
    for i in idx:
        img = Image.open(lhs / f"comballaz-LHS_{i:05d}_img.png")
        assert img.mode == "RGBA" and img.size == SIZE
        sem = np.load(lhs / f"comballaz-LHS_{i:05d}_semantics.npy")
        assert sem.dtype == np.uint8 and sem.shape == (SIZE[1], SIZE[0]) and sem.max() < len(SEMANTIC_CLASSES)
        depth = np.load(lhs / f"comballaz-LHS_{i:05d}_depth.npy")
        assert depth.dtype == np.float32 and np.isfinite(depth).all()  # LHS look down: ground everywhere
    flight = "comballaz-2020-11-06-planned"
    names = load_preset_pic_names(flight)
    assert (root / flight / f"{flight}_pic_names.csv").read_text().strip().split(",") == names
    for i in np.round(np.linspace(0, len(names) - 1, 3)).astype(int):
        assert (root / flight / f"{flight}_{i:05d}_{names[i]}_img.png").is_file()
        real = Image.open(root / f"{flight}-real" / f"{names[i]}.JPG")
        assert real.format == "JPEG" and real.size == SIZE
    classes = json.loads((lhs / "semantic_classes.json").read_text())
    assert {int(k): v for k, v in classes.items()} == SEMANTIC_CLASSES
    assert read_class_table(lhs / CLASS_TABLE_FILE) == SEMANTIC_CLASSES  # where `evaluate --landcover` looks
    meta = json.loads((root / "mini_comballaz.json").read_text())
    assert (meta["seed"], meta["width"], meta["height"]) == (0, 72, 48)
    assert not list(root.rglob(".tmp-*"))


def test_same_seed_same_bytes_whatever_the_batch(rendered, tmp_path):
    root, _ = rendered
    render_flights(tmp_path, FLIGHTS, size=SIZE, seed=0, batch_size=3, progress=False, depth=True)
    assert _files(tmp_path) == _files(root)


def test_every_image_alone_and_in_a_batch_alike(tmp_path):
    """20 views, one at a time and 16 at a time: the same bytes, depth maps too. (A pow over the batch's rays
    rounded its last few elements on a scalar path: 2 of these depth maps came out up to 6 mm apart.)"""
    flights = "comballaz-LHS:10,comballaz-2020-11-06-planned:10"
    render_flights(tmp_path / "one", flights, size=SIZE, seed=0, batch_size=1, progress=False, depth=True)
    render_flights(tmp_path / "many", flights, size=SIZE, seed=0, batch_size=16, progress=False, depth=True)
    one, many = _files(tmp_path / "one"), _files(tmp_path / "many")
    assert len(one) > 60 and sorted(k for k in one if one[k] != many.get(k)) == []


def test_resume_renders_only_the_missing_images(rendered, tmp_path):
    root, _ = rendered
    import shutil

    shutil.copytree(root, tmp_path / "r")
    gone = tmp_path / "r" / "comballaz-LHS" / "comballaz-LHS_15000_img.png"
    gone.unlink()
    (tmp_path / "r" / "comballaz-2020-11-06-planned-real" / "100_0416_0001.JPG").unlink()
    done = render_flights(tmp_path / "r", FLIGHTS, size=SIZE, seed=0, progress=False, depth=True)
    assert done == {"comballaz-LHS": 1, "comballaz-2020-11-06-planned": 1}
    assert _files(tmp_path / "r") == _files(root)


def test_read_back_through_topoflight_gives_the_preset_poses(rendered):
    from topoloc.data import TopoFlight

    root, _ = rendered
    frame = LocalFrame.named("comballaz")
    for flight, domain in (("comballaz-LHS", "synthetic"), ("comballaz-2020-11-06-planned", "real")):
        ds = TopoFlight(root, flight, domain=domain, frame=frame)
        rows = load_preset(flight)
        idx = np.round(np.linspace(0, len(rows) - 1, 3)).astype(int)
        assert len(ds) == 3
        np.testing.assert_allclose(ds.poses(), frame.cesium_to_c2w(rows[idx]), atol=1e-9)
        sample = ds[0]
        assert sample["image"].shape == (3, SIZE[1], SIZE[0]) and sample["image"].dtype == torch.uint8
        assert sample["index"] == idx[0]


def test_a_different_seed_in_the_same_folder_is_refused(rendered):
    root, _ = rendered
    with pytest.raises(ValueError, match="seed"):
        render_flights(root, "comballaz-LHS:3", size=SIZE, seed=1, progress=False)


def test_a_folder_of_another_seed_is_refused_before_that_seed_s_world_is_built(rendered, monkeypatch):
    """Pose rows are checked against the terrain of the asked seed; a folder of another seed is refused first
    (building a world takes seconds to minutes)."""
    import topoloc.procedural.writer as writer

    root, _ = rendered

    def no_world(seed):
        raise AssertionError(f"build_world({seed}) called before the folder's seed was checked")

    monkeypatch.setattr(writer, "build_world", no_world)
    rows = load_preset("comballaz-2020-11-06-planned")[:2]
    with pytest.raises(ValueError, match=r"holds a Mini-Comballaz render of seed 0, asked for 1"):
        render_flights(root, [pose_flight("comballaz-mine", rows)], size=SIZE, seed=1, progress=False)
    assert not (root / "comballaz-mine").exists()


def test_a_folder_of_another_size_is_refused_in_the_size_s_own_form(rendered):
    """The size is given as WxH (``--size``), so the refusal names both held and asked sizes that way, not
    one of their fields ("width=96")."""
    root, _ = rendered
    width, height = SIZE
    with pytest.raises(ValueError, match=rf"of size {width}x{height}, asked for {width}x{height + 8};"):
        render_flights(root, [pose_flight("comballaz-mine", load_preset("comballaz-2020-11-06-planned")[:2])],
                       size=(width, height + 8), seed=0, progress=False)
    assert not (root / "comballaz-mine").exists()


def test_flight_and_size_parsing_errors():
    assert parse_flights("comballaz-LHS:5,sepey-2021-10-13-outofplace")[0].count == 5
    assert parse_size("360x240") == (360, 240)
    with pytest.raises(ValueError, match="unknown flight"):
        parse_flights("comballaz-nope")
    with pytest.raises(ValueError, match="EPFL"):
        parse_flights("EPFL-LHS:3")
    with pytest.raises(ValueError, match="integer N"):
        parse_flights("comballaz-LHS:x")
    with pytest.raises(ValueError, match="size"):
        parse_size("360-240")
    # the renderer's size is width first, as its text: the error says so and quotes what was given (it said
    # "expected (H, W) ... got (0, 240)" for (240, 0))
    expected = r"size: expected 'WxH' text such as '360x240' or \(width, height\), two ints of 16\.\.4096 px, got "
    with pytest.raises(ValueError, match=expected + r"\(240, 0\)"):
        parse_size((240, 0))
    with pytest.raises(ValueError, match=expected + "'96'"):
        parse_size("96")
    assert parse_size((240, 360)) == (240, 360)  # portrait: 240 wide


def test_cli_render_writes_and_reports(tmp_path, capsys):
    assert main(["render", "--out", str(tmp_path), "--flights", "comballaz-LHS:2", "--size", "48x32", "--device", "cpu",
                 "--no-progress"]) == 0
    assert "comballaz-LHS: 2 image(s) rendered" in capsys.readouterr().out
    assert len(list((tmp_path / "comballaz-LHS").glob("*_img.png"))) == 2
    with pytest.raises(SystemExit) as err:
        main(["render", "--out", str(tmp_path), "--flights", "EPFL-LHS:2"])
    assert err.value.code == 2
    for empty in ("", " ", ","):  # an unset shell variable: it rendered the whole default set (minutes)
        with pytest.raises(SystemExit) as err:
            main(["render", "--out", str(tmp_path / "empty"), "--flights", empty])
        assert err.value.code == 2 and "--flights: expected NAME[:N],..., got" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()


def test_a_seed_of_another_type_is_refused_by_name_before_anything_is_written(tmp_path):
    # True was torch's "manual_seed expected a long, but got bool" once the world was built
    for bad in (True, 1.5, "0", -1):
        with pytest.raises(ValueError, match=rf"^seed: expected a non-negative int, got {re.escape(repr(bad))}$"):
            render_flights(tmp_path / "out", "comballaz-LHS:1", size=(48, 32), seed=bad)
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_or_under_one_is_refused_by_name(tmp_path):
    (tmp_path / "a-file").write_text("")
    # FileExistsError / NotADirectoryError from mkdir, without the argument's name
    with pytest.raises(ValueError, match=r"^out_dir '.*a-file': a file, expected a folder$"):
        render_flights(tmp_path / "a-file", "comballaz-LHS:1", size=(48, 32), progress=False)
    with pytest.raises(ValueError, match=r"^out_dir '.*sub': '.*a-file' is a file, not a folder$"):
        render_flights(tmp_path / "a-file" / "sub", "comballaz-LHS:1", size=(48, 32), progress=False)
    with pytest.raises(ValueError, match=r"^batch_size: expected a positive int, got True$"):  # was taken as 1
        render_flights(tmp_path / "out", "comballaz-LHS:1", size=(48, 32), batch_size=True, progress=False)


def test_a_corrupt_manifest_is_refused_by_name(tmp_path):
    # was json's bare "Expecting value: line 1 column 10 (char 9)"
    out = tmp_path / "out"
    out.mkdir()
    for text in ('{"seed": }', "[1, 2]"):
        (out / "mini_comballaz.json").write_text(text)
        with pytest.raises(ValueError, match=r"mini_comballaz.json: not a Mini-Comballaz manifest .*render into "
                                             r"another folder$"):
            render_flights(out, "comballaz-LHS:1", size=(24, 16), progress=False)


def test_a_topo_data_root_without_a_manifest_is_not_rendered_over(tmp_path):
    # --out at one's TOPO-DataGen data root replaced its renders and its real photos with Mini-Comballaz ones
    flight = "comballaz-2020-11-06-planned"
    root = tmp_path / "topo"
    (root / flight).mkdir(parents=True)
    (root / f"{flight}-real").mkdir()
    np.save(root / flight / f"{flight}_poses.npy", load_preset(flight))
    photo = root / f"{flight}-real" / f"{load_preset_pic_names(flight)[0]}.JPG"
    photo.write_bytes(b"a real photo")
    with pytest.raises(ValueError, match=rf"^out_dir {re.escape(str(root))}: {flight}/ holds 1 file\(s\) "
                                         rf"\(e\.g\. {flight}_poses\.npy\) but .* has no mini_comballaz\.json: not a "
                                         r"Mini-Comballaz render .*render into another folder$"):
        render_flights(root, f"{flight}:1", size=(24, 16), progress=False)
    (root / flight / f"{flight}_poses.npy").unlink()  # only the photos: refused as well
    with pytest.raises(ValueError, match=rf"{flight}-real/ holds 1 file"):
        render_flights(root, f"{flight}:1", size=(24, 16), progress=False)
    assert photo.read_bytes() == b"a real photo" and not (root / "mini_comballaz.json").exists()


def test_a_portrait_size_is_warned_of_as_height_and_width_swapped(tmp_path):
    # --size 32x48, an (H, W) given for the renderer's (W, H), rendered portrait views without a word
    with pytest.warns(UserWarning, match=r"^size: 32x48 renders portrait views, 48 px high and 32 wide, .* \(21\.3 "
                                         r"px\): not TOPO's field of view; .*did you mean 48x32\?\)$"):
        render_flights(tmp_path / "out", "comballaz-LHS:1", size=(32, 48), progress=False)


def test_a_render_killed_before_its_photo_leaves_the_real_flight_readable(tmp_path, monkeypatch):
    # the photo was written before its render: killed between them, the real flight was refused ("real photo with no
    # render") until a rerun; now the render comes first and the row is left out of the photos, with a warning
    import topoloc.procedural.writer as writer
    from topoloc.data import TopoFlight

    flight = "comballaz-2020-11-06-planned"
    written = writer._atomic

    def killed_at_the_second_photo(path, write):
        if path.suffix == ".JPG" and any(path.parent.glob("*.JPG")):
            raise KeyboardInterrupt("killed")
        written(path, write)

    monkeypatch.setattr(writer, "_atomic", killed_at_the_second_photo)
    with pytest.raises(KeyboardInterrupt):
        render_flights(tmp_path, f"{flight}:2", size=(24, 16), batch_size=1, progress=False)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match=r"1 of 2 rendered pose rows have no real photo"):
        assert len(TopoFlight(tmp_path, flight, domain="real")) == 1
    render_flights(tmp_path, f"{flight}:2", size=(24, 16), progress=False)  # the rerun writes the missing photo
    assert len(TopoFlight(tmp_path, flight, domain="real")) == 2


def test_more_views_than_the_flight_has_poses_are_refused_before_anything_is_written(tmp_path):
    # `winter:5000` rendered the flight's 665 views without a word; `LHS:99999` started on all 30,000
    n_winter = len(load_preset("comballaz-2021-03-27-winter"))  # the vendored TOPO preset's own row count
    assert n_winter == 665
    with pytest.raises(ValueError, match=r"^flights: comballaz-2021-03-27-winter:5000 asks for 5000 views, but the "
                                         r"flight has 665 poses; ask for at most 665"):
        render_flights(tmp_path / "out", "comballaz-2021-03-27-winter:5000", size=(24, 16), progress=False)
    rows = load_preset("comballaz-2020-11-06-planned")[:3]
    with pytest.raises(ValueError, match=r"^count: 4 views of 'comballaz-mine' asked for, but 'poses' holds 3 pose "
                                         r"rows"):
        render_flights(tmp_path / "out", [pose_flight("comballaz-mine", rows, count=4)], size=(24, 16), progress=False)
    assert not (tmp_path / "out").exists()


def test_rendered_files_get_the_mode_open_gives(tmp_path):
    # every render was 0600 (tempfile.mkstemp's mode): the other users of a shared dataset folder could not read it
    import os
    import stat

    render_flights(tmp_path, "comballaz-LHS:1", size=(48, 32), progress=False)
    (tmp_path / "by-open.txt").write_text("")
    expected = stat.S_IMODE(os.stat(tmp_path / "by-open.txt").st_mode)  # open() under this process's umask
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "by-open.txt"]
    assert files and {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: expected for p in files}


def test_a_render_without_a_progress_bar_leaves_no_thread_behind(tmp_path):
    # A disabled tqdm starts tqdm's monitor thread, which outlives the bar: the renderer makes no bar at all
    # without `progress`. In a fresh interpreter, so that no other test's bar has started the monitor already.
    code = textwrap.dedent(f"""
        import threading
        from topoloc.procedural import render_flights
        render_flights({str(tmp_path)!r}, "comballaz-2020-11-06-planned:1", size=(24, 16), seed=0, progress=False)
        print(sorted(t.name for t in threading.enumerate() if t.name != "MainThread"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "tqdm_monitor" not in out, out
