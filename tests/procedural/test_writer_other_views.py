"""A flight folder holds one set of views: a render of other poses into it is refused before anything is written.

The rows a ``:N`` spread asks for are worked out here by hand (round(linspace(0, rows - 1, N)), numpy's
round-half-even), not through the writer's own selection.
"""

import numpy as np
import pytest

from topoloc.cli import main
from topoloc.data.preset import load_preset, load_preset_pic_names
from topoloc.procedural import render_flights
from topoloc.procedural.writer import OtherPosesError

SIZE = (32, 16)
LHS = "comballaz-LHS"  # 30000 rows: :4 is rows 0, 10000, 19999, 29999
PLANNED = "comballaz-2020-11-06-planned"  # 447 rows: :3 is rows 0, 223, 446; :2 is rows 0, 446


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rendered_rows(folder, flight):
    return sorted(int(p.name[len(flight) + 1:][:5]) for p in folder.glob(f"{flight}_*_img.png"))


def test_another_spread_of_a_rendered_flight_is_refused_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "r"
    assert render_flights(out, f"{LHS}:4", size=SIZE, progress=False) == {LHS: 4}
    assert _rendered_rows(out / LHS, LHS) == [0, 10000, 19999, 29999]
    before = _files(out)
    # :6 is rows 0, 6000, 12000, 17999, 23999, 29999: rows 10000 and 19999 of :4 are not among them
    with pytest.raises(OtherPosesError, match=r"holds 4 view\(s\), 2 of them at other poses \(rows \[10000, 19999\]\) "
                                              r"than the 6 of 'comballaz-LHS:6' asked for") as info:
        render_flights(out, f"{LHS}:6", size=SIZE, progress=False)
    assert info.value.path == out / LHS
    assert f"render into another output folder, or delete {out / LHS} first" in str(info.value)
    assert _files(out) == before
    with pytest.raises(SystemExit) as exc:
        main(["render", "--out", str(out), "--flights", f"{LHS}:6", "--size", "32x16", "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"topoloc render: error: {out / LHS}: holds 4 view(s)") and err.count("\n") == 1, err
    assert _files(out) == before
    # the same command resumes (nothing to do), and completes the render with depth maps
    assert render_flights(out, f"{LHS}:4", size=SIZE, progress=False) == {LHS: 0}
    assert render_flights(out, f"{LHS}:4", size=SIZE, progress=False, depth=True) == {LHS: 4}
    assert len(list((out / LHS).glob("*_depth.npy"))) == 4


def test_a_spread_holding_every_rendered_view_completes_the_folder(tmp_path):
    # :7 is rows 0, 5000, 10000, 15000, 19999, 24999, 29999: every row of :4 and three more
    assert render_flights(tmp_path, f"{LHS}:4", size=SIZE, progress=False) == {LHS: 4}
    assert render_flights(tmp_path, f"{LHS}:7", size=SIZE, progress=False) == {LHS: 3}
    assert _rendered_rows(tmp_path / LHS, LHS) == [0, 5000, 10000, 15000, 19999, 24999, 29999]
    with pytest.raises(OtherPosesError, match=r"3 of them at other poses \(rows \[5000, 15000, 24999\]\)"):
        render_flights(tmp_path, f"{LHS}:4", size=SIZE, progress=False)


def test_photos_left_of_other_views_are_refused_naming_every_folder(tmp_path):
    domains = ("synthetic", "real", "real_alt")
    assert render_flights(tmp_path, f"{PLANNED}:3", size=SIZE, progress=False, domains=domains) == {PLANNED: 3}
    pic = load_preset_pic_names(PLANNED)[223]
    for path in (tmp_path / PLANNED).iterdir():  # the synthetic folder deleted, the photo folders kept
        path.unlink()
    (tmp_path / PLANNED).rmdir()
    (tmp_path / f"{PLANNED}-real-alt" / f"{pic}.JPG").unlink()  # its semantics still hold row 223 there
    with pytest.raises(OtherPosesError, match=r"-real: holds 3 view\(s\), 1 of them at other poses \(rows \[223\]\)") \
            as info:
        render_flights(tmp_path, f"{PLANNED}:2", size=SIZE, progress=False)
    assert info.value.path == tmp_path / f"{PLANNED}-real"
    assert f"or delete {tmp_path / PLANNED}-real and {tmp_path / PLANNED}-real-alt first" in str(info.value)
    assert not (tmp_path / PLANNED).exists()


def test_a_preset_folder_holding_another_pose_file_is_refused(tmp_path):
    render_flights(tmp_path, f"{LHS}:1", size=SIZE, progress=False)
    poses = tmp_path / LHS / f"{LHS}_poses.npy"
    other = load_preset(LHS).copy()
    other[:, 3] += 1.0  # e.g. a real TOPO-DataGen folder, or another version's poses
    np.save(poses, other)
    with pytest.raises(OtherPosesError, match="holds a render of other poses under the name 'comballaz-LHS'; use "
                                              "another output folder, or delete"):
        render_flights(tmp_path, f"{LHS}:1", size=SIZE, progress=False)
    np.testing.assert_array_equal(np.load(poses), other)  # not overwritten
