"""The Mini-Comballaz writer against its documented layout and contract (values worked by hand, PIL's own
reading of the files, the docstrings' ranges): gaps found by mutation testing."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

import topoloc.procedural.writer as writer
from topoloc.data.preset import load_preset, load_preset_pic_names
from topoloc.procedural import (FORMAT_VERSION, RenderJob, appearance_for_flight, parse_flights, parse_size,
                                pose_flight, render_flights)
from topoloc.procedural.jobs import _first
from topoloc.procedural.writer import OtherPosesError

SIZE = (32, 16)
FLIGHT = "comballaz-2020-11-06-planned"  # 447 rows: :3 is rows 0, 223, 446; :2 is rows 0, 446
ALL_DOMAINS = ("synthetic", "real", "real_alt")


@pytest.fixture
def no_render(monkeypatch):
    """`render_flights` with its renders replaced by a recorder of the torch threads they would run with."""
    seen = []

    def record(jobs, done, *args):
        seen.append(torch.get_num_threads())
        return done

    monkeypatch.setattr(writer, "_render_jobs", record)
    return seen


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Rows 0, 223 and 446 of a real flight in all three domains."""
    root = tmp_path_factory.mktemp("photos")
    render_flights(root, f"{FLIGHT}:3", size=SIZE, progress=False, domains=ALL_DOMAINS)
    return root


# --- manifest --------------------------------------------------------------------------------------------------------

def test_manifest_focal_scales_with_the_width_not_the_height(tmp_path, no_render):
    # TOPO: 720 px wide, focal 480 px. A square 48x48 render: 480 * 48 / 720 = 32 px (by the height: 48 px).
    render_flights(tmp_path, "comballaz-LHS:1", size=(48, 48), progress=False)
    meta = json.loads((tmp_path / "mini_comballaz.json").read_text())
    assert (meta["width"], meta["height"], meta["focal_px"]) == (48, 48, 32.0)


def test_a_folder_of_other_ray_casting_settings_is_refused(tmp_path, no_render):
    # the ray-casting settings were not recorded: a resumed render mixed settings in one folder
    from topoloc.procedural import RenderConfig

    render_flights(tmp_path, "comballaz-LHS:1", size=SIZE, progress=False, config=RenderConfig(far_m=5000.0))
    meta = json.loads((tmp_path / "mini_comballaz.json").read_text())
    assert meta["render_config"] == {"far_m": 5000.0}
    with pytest.raises(ValueError, match=r"holds a Mini-Comballaz render with far_m 5000.0, asked for 8000.0 "):
        render_flights(tmp_path, "comballaz-LHS:2", size=SIZE, progress=False)
    render_flights(tmp_path, "comballaz-LHS:1", size=SIZE, progress=False, config=RenderConfig(far_m=5000.0))
    # a manifest written before the settings were recorded holds the defaults (8 km)
    older = tmp_path / "older"
    older.mkdir()
    (older / "mini_comballaz.json").write_text(json.dumps({"seed": 0, "width": SIZE[0], "height": SIZE[1],
                                                           "version": FORMAT_VERSION}))
    render_flights(older, "comballaz-LHS:1", size=SIZE, progress=False)
    with pytest.raises(ValueError, match=r"with far_m 8000.0, asked for 5000.0 "):
        render_flights(older, "comballaz-LHS:1", size=SIZE, progress=False, config=RenderConfig(far_m=5000.0))
    with pytest.raises(TypeError, match=r"^config: expected a RenderConfig or None, got dict$"):
        render_flights(older, "comballaz-LHS:1", size=SIZE, progress=False, config={"far_m": 5000.0})


def test_a_folder_of_another_format_version_is_refused(tmp_path, no_render):
    older = str(int(FORMAT_VERSION) - 1)
    (tmp_path / "mini_comballaz.json").write_text(json.dumps({"seed": 0, "width": 32, "height": 16, "version": older}))
    with pytest.raises(ValueError, match=rf"of format version '{older}', asked for '{FORMAT_VERSION}'"):
        render_flights(tmp_path, "comballaz-LHS:1", size=SIZE, progress=False)
    assert not (tmp_path / "comballaz-LHS").exists()


# --- arguments -------------------------------------------------------------------------------------------------------

def test_threads_apply_while_rendering_and_are_restored_afterwards(tmp_path, no_render):
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        render_flights(tmp_path, "comballaz-LHS:1", size=SIZE, progress=False, threads=1)
        assert no_render == [1]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_a_clearance_of_zero_metres_is_allowed(tmp_path, no_render):
    # "minimum height (m) ... above ground": 0 m is a valid, if unwise, minimum; negative ones are refused
    render_flights(tmp_path, "comballaz-LHS:1", size=SIZE, progress=False, min_clearance_m=0.0)
    assert len(no_render) == 1  # rendered
    with pytest.raises(ValueError, match="min_clearance_m"):
        render_flights(tmp_path, "comballaz-LHS:1", size=SIZE, progress=False, min_clearance_m=-0.5)


def test_each_flight_gets_the_bake_of_its_own_appearance(monkeypatch):
    """Two real flights of other dates (November: autumn, October: early autumn) in one run: the bake cache
    must not hand the second the first one's colours."""

    class FakeBake:
        def __init__(self, world, app):
            self.appearance = app

        def to(self, device):
            return self

    class FakeWorld:
        seed = 0

    monkeypatch.setattr(writer, "bake", FakeBake)
    monkeypatch.setattr(writer, "_BAKES", {})
    nov = appearance_for_flight(FLIGHT, "real")
    octo = appearance_for_flight("comballaz-2021-10-13-piloted", "real")
    assert (nov.season, octo.season) == ("autumn", "early_autumn")
    device = torch.device("cpu")
    assert writer._bake(FakeWorld(), nov, device).appearance == nov
    assert writer._bake(FakeWorld(), octo, device).appearance == octo


# --- JPEG photos -----------------------------------------------------------------------------------------------------

def test_real_photos_are_4_2_0_and_real_alt_photos_4_2_2(photos):
    # PIL's get_sampling: 2 is 4:2:0 (its default), 1 is 4:2:2 (documented for real_alt)
    names = load_preset_pic_names(FLIGHT)
    for suffix, sampling in (("-real", 2), ("-real-alt", 1)):
        for i in (0, 223, 446):
            with Image.open(photos / f"{FLIGHT}{suffix}" / f"{names[i]}.JPG") as im:
                assert JpegImagePlugin.get_sampling(im) == sampling, (suffix, i)


@pytest.mark.parametrize("domain, lo, hi", [("real", 75, 95), ("real_alt", 52, 64)])
def test_jpeg_qualities_span_exactly_the_documented_range(domain, lo, hi):
    qualities = writer._jpeg_quality(torch.arange(2000), domain)
    assert min(qualities) == lo and max(qualities) == hi


# --- resume and other views ------------------------------------------------------------------------------------------

def test_a_photo_missing_only_its_semantics_is_rendered_again(photos, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(photos, root)
    pic = load_preset_pic_names(FLIGHT)[223]
    (root / f"{FLIGHT}-real" / f"{pic}_semantics.npy").unlink()
    done = render_flights(root, f"{FLIGHT}:3", size=SIZE, progress=False, domains=ALL_DOMAINS)
    assert done == {FLIGHT: 1}
    assert (root / f"{FLIGHT}-real" / f"{pic}_semantics.npy").is_file()


def _keep_only(root, keep: str) -> None:
    """Deletes every flight folder but ``keep``."""
    for suffix in ("", "-real", "-real-alt"):
        folder = root / f"{FLIGHT}{suffix}"
        if folder.name != keep:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


@pytest.mark.parametrize("suffix, kept", [("-real", ".JPG"), ("-real-alt", "_semantics.npy")])
def test_a_photo_folder_alone_still_holds_its_views(photos, tmp_path, suffix, kept):
    """Row 223 left only as a photo (its JPEG, or only its semantics) in one photo folder: :2 (rows 0, 446) is
    refused."""
    root = tmp_path / "r"
    shutil.copytree(photos, root)
    _keep_only(root, f"{FLIGHT}{suffix}")
    names = load_preset_pic_names(FLIGHT)
    for path in (root / f"{FLIGHT}{suffix}").iterdir():
        if not path.name.endswith(kept):
            path.unlink()
    assert sorted(p.name for p in (root / f"{FLIGHT}{suffix}").iterdir()) == sorted(
        names[i] + kept for i in (0, 223, 446))
    with pytest.raises(OtherPosesError, match=r"holds 3 view\(s\), 1 of them at other poses \(rows \[223\]\)") as info:
        render_flights(root, f"{FLIGHT}:2", size=SIZE, progress=False)
    assert info.value.path == root / f"{FLIGHT}{suffix}"


# --- jobs: what to render --------------------------------------------------------------------------------------------

def test_sizes_of_16_to_4096_px_a_side_are_taken_and_others_refused():
    assert parse_size((16, 16)) == (16, 16)
    assert parse_size("4096x16") == (4096, 16)
    assert parse_size((16, 4096)) == (16, 4096)
    for bad in ((15, 240), (240, 15), "4097x16", (16, 4097)):
        with pytest.raises(ValueError, match="two ints of 16..4096 px"):
            parse_size(bad)


def test_flight_counts_below_one_are_refused():
    for bad in ("comballaz-LHS:0", "comballaz-LHS:-3", [("comballaz-LHS", 0)]):
        with pytest.raises(ValueError, match=r"expected N >= 1"):
            parse_flights(bad)
    rows = load_preset(FLIGHT)[:3]
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=r"^count: expected an int >= 1 or None"):
            pose_flight("comballaz-mine", rows, count=bad)


def test_flight_lists_with_spaces_after_the_commas_are_read():
    jobs = parse_flights(f"comballaz-LHS:2, {FLIGHT}:3 ")
    assert [(j.name, j.count) for j in jobs] == [("comballaz-LHS", 2), (FLIGHT, 3)]


def test_a_render_job_of_an_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown flight 'comballaz-nope'"):
        parse_flights(RenderJob("comballaz-nope"))


def test_two_pose_flights_of_one_name_are_refused():
    rows = load_preset(FLIGHT)[:3]
    with pytest.raises(ValueError, match="expected each flight once, got .comballaz-mine. 2 times"):
        parse_flights([pose_flight("comballaz-mine", rows), pose_flight("comballaz-mine", rows[:2])])


def test_pose_rows_with_nan_angles_or_of_another_shape_are_refused():
    rows = load_preset(FLIGHT)[:3].copy()
    rows[1, 4] = np.nan  # a pitch
    with pytest.raises(ValueError, match=r"^poses: rows \[1\] hold NaN or inf"):
        pose_flight("comballaz-mine", rows)
    for bad in (rows[0], rows[:, :5], rows[None]):
        with pytest.raises(ValueError, match=r"^poses: expected pose rows of shape \(N, 6\)"):
            pose_flight("comballaz-mine", bad)


def test_row_lists_name_every_row_up_to_ten():
    # 10 rows: all of them, no " and 0 more"; 11: the first ten and 1 more
    assert _first(np.arange(10)) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
    assert _first(np.arange(11)) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and 1 more"
