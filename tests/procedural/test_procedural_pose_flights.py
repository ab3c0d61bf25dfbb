"""Rendering pose files (`render_flights` with `pose_flight`, `topoloc render --poses`): layout, read-back, refusals."""

import inspect
import json
import warnings

import numpy as np
import pytest

from topoloc.cli import main
from topoloc.data import TopoFlight, save_pose_file
from topoloc.data.preset import load_preset
from topoloc.geodesy import LocalFrame, ecef_to_wgs84, wgs84_to_ecef
from topoloc.procedural import (FORMAT_VERSION, area_of_positions, check_clearance, clearance_m, pose_flight,
                                render_flights)

FRAME = LocalFrame.named("comballaz")


def _rows_at(enu, ypr=(30.0, -60.0, 0.0)):
    enu = np.asarray(enu, dtype=np.float64)
    return np.concatenate([FRAME.enu_to_ecef(enu), np.tile(ypr, (len(enu), 1))], axis=1)


def _planned_rows(k):
    """The first k rows of the planned flight raised by 0.5 m: not a preset, safely above the terrain."""
    rows = load_preset("comballaz-2020-11-06-planned")[:k].copy()
    lat, lon, h = ecef_to_wgs84(*rows[:, :3].T)
    rows[:, :3] = np.stack(wgs84_to_ecef(lat, lon, h + 0.5), axis=1)
    return rows


def test_cli_corridor_then_render_poses_then_topoflight_reads_them(tmp_path, world, capsys):
    path = tmp_path / "plan.npy"
    assert main(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "4", "--out", str(path),
                 "--seed", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: 4 poses; ENU extent") and "pitch" in line and "\n" not in line
    rows = np.load(path)
    out = tmp_path / "out"
    code = main(["render", "--poses", str(path), "--name", "comballaz-plan", "--out", str(out), "--size", "48x32",
                 "--no-progress", "--device", "cpu"])
    assert code == 0
    assert "comballaz-plan: 4 image(s) rendered" in capsys.readouterr().out
    folder = out / "comballaz-plan"
    assert sorted(p.name for p in folder.glob("*_img.png")) == [f"comballaz-plan_{i:05d}_img.png" for i in range(4)]
    assert not (out / "comballaz-LHS").exists()  # only the pose file: no preset rendered by default
    ds = TopoFlight(out, "comballaz-plan")
    assert len(ds) == 4 and tuple(ds[0]["image"].shape) == (3, 32, 48)
    np.testing.assert_array_equal(ds.cesium(), rows)
    # the camera centres in ENU are the pose rows' positions, converted independently with pyproj
    from pyproj import Transformer

    topocentric = Transformer.from_pipeline("+proj=topocentric +ellps=WGS84 +lat_0=46.3705 +lon_0=7.065 +h_0=1410")
    enu = np.stack(topocentric.transform(rows[:, 0], rows[:, 1], rows[:, 2]), axis=1)
    np.testing.assert_allclose(ds.poses()[:, :3, 3], enu, atol=1e-6)
    # resumable: nothing left to do
    assert render_flights(out, [pose_flight("comballaz-plan", path)], size=(48, 32),
                          progress=False) == {"comballaz-plan": 0}


def test_rows_under_the_terrain_are_refused_by_row_number(tmp_path, world):
    ok = _rows_at([[600.0, 300.0, 700.0]] * 10)
    east_north = ok.copy()
    enu = FRAME.ecef_to_enu(ok[:, :3])
    ground = float(clearance_m(ok[:1], world)[0])  # height of row 0 above the surface
    below = [2, 7, 8]
    enu[below, 2] -= ground + 5.0  # 5 m under the surface
    enu[4, 2] -= ground - 1.0  # 1 m above it: inside the 2 m margin
    east_north[:, :3] = FRAME.enu_to_ecef(enu)
    path = save_pose_file(tmp_path / "low.npy", east_north)
    with pytest.raises(ValueError, match=r"low\.npy: 4 camera\(s\).*rows 2, 4, 7, 8"):
        check_clearance(east_north, world, source=str(path))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "--poses", str(path), "--name", "comballaz-low", "--out", str(out), "--size", "48x32",
              "--no-progress"])
    assert exit_info.value.code == 2
    assert not out.exists()  # refused before anything was written


def test_clearance_matches_the_world_surface(world):
    import torch

    rows = _rows_at([[100.0, 200.0, 900.0], [-500.0, 1000.0, 1200.0]])
    expect = (np.array([900.0, 1200.0])
              - world.height(torch.tensor([100.0, -500.0]), torch.tensor([200.0, 1000.0])).double().numpy())
    np.testing.assert_allclose(clearance_m(rows, world), expect, atol=0.02)


def test_areas_of_positions():
    assert area_of_positions(_rows_at([[0.0, 0.0, 500.0], [3000.0, -3000.0, 500.0]])[:, :3]) == "comballaz"
    epfl = LocalFrame.named("epfl")
    with pytest.raises(ValueError, match="EPFL and St-Sulpice"):
        area_of_positions(epfl.enu_to_ecef(np.array([[0.0, 0.0, 100.0]])), "epfl.npy")
    x, y, z = wgs84_to_ecef(48.85, 2.35, 500.0)  # Paris
    with pytest.raises(ValueError, match=r"paris\.npy: the positions lie in no area"):
        area_of_positions(np.array([[x, y, z]]), "paris.npy")
    with pytest.raises(ValueError, match=r"mixed\.npy: 1 position\(s\) outside the comballaz area .*row 1;"):
        area_of_positions(_rows_at([[0.0, 0.0, 500.0], [9000.0, 0.0, 500.0]])[:, :3], "mixed.npy")
    # a row at the Earth's centre was "points_n3: row 1 is 0 m from the Earth's centre", naming no file
    zero = _rows_at([[0.0, 0.0, 500.0], [0.0, 0.0, 500.0]])[:, :3]
    zero[1] = 0.0
    with pytest.raises(ValueError, match=r"^zero\.npy: row 1 \[0\.0, 0\.0, 0\.0\] is -6\d{6} m from the WGS84 "):
        area_of_positions(zero, "zero.npy")


def test_pose_flight_names_are_checked(tmp_path):
    rows = _planned_rows(2)
    with pytest.raises(ValueError, match="name: 'comballaz-2020-11-06-planned' is a vendored preset"):
        pose_flight("comballaz-2020-11-06-planned", rows)
    with pytest.raises(ValueError, match="name: expected a name starting with one of"):
        pose_flight("corridor", rows)
    with pytest.raises(ValueError, match="name: expected a flight name"):
        pose_flight("comballaz/../x", rows)
    # <flight>-real/ holds a flight's photos: a pose flight of that name put its renders among a preset's photos
    for name, suffix in (("comballaz-2020-11-06-planned-real", "-real"), ("comballaz-x-real-alt", "-real-alt")):
        flight = name.removesuffix(suffix)
        with pytest.raises(ValueError, match=rf"^name: '{name}' ends in '{suffix}', the folder name of the photos of "
                                             rf"flight '{flight}'; choose another name \(e.g. {flight}-poses\)$"):
            pose_flight(name, rows)
    pose_flight("comballaz-x-realistic", rows)  # a name that only contains "-real"
    with pytest.raises(FileNotFoundError, match=r"missing\.npy: pose file not found"):
        pose_flight("comballaz-x", tmp_path / "missing.npy")
    (tmp_path / "poses").mkdir()  # a folder was "pose file not found" too
    with pytest.raises(FileNotFoundError, match=r"poses: a folder, expected a pose file \(a \(N, 6\) \.npy"):
        pose_flight("comballaz-x", tmp_path / "poses")


def test_another_pose_file_under_a_rendered_name_is_refused(tmp_path, world):
    rows = _planned_rows(2)
    render_flights(tmp_path, [pose_flight("comballaz-p", rows)], size=(32, 16), progress=False)
    other = rows.copy()
    other[:, 3] += 10.0
    with pytest.raises(ValueError, match="holds a render of other poses"):
        render_flights(tmp_path, [pose_flight("comballaz-p", other)], size=(32, 16), progress=False)


def test_cli_lhs_area_keeps_cameras_100_to_200_m_above_the_terrain(tmp_path, world, capsys):
    import torch

    path = tmp_path / "area.npy"
    assert main(["poses", "lhs", "--area", "comballaz", "--count", "64", "--out", str(path)]) == 0
    rows = np.load(path)
    enu = FRAME.ecef_to_enu(rows[:, :3])
    above = enu[:, 2] - world.height(torch.tensor(enu[:, 0]), torch.tensor(enu[:, 1])).double().numpy()
    assert np.all((above > 100.0 - 0.01) & (above < 200.0 + 0.01))
    check_clearance(rows, world)  # renderable as it is
    flight = tmp_path / "env.npy"
    assert main(["poses", "lhs", "--flight", "comballaz-2021-03-27-winter", "--count", "64", "--out", str(flight)]) == 0
    assert np.all(clearance_m(np.load(flight), world) >= 10.0 - 0.01)  # the winter flight starts near the ground


def test_cli_poses_flags_have_help_and_bad_arguments_exit_2_naming_them(tmp_path, capsys):
    from topoloc.cli import build_parser

    parser = build_parser()
    poses = next(a for a in parser._subparsers._group_actions[0].choices["poses"]._actions if a.dest == "kind")
    for kind in poses.choices.values():
        for action in kind._actions:
            assert action.help, (kind.prog, action.dest)
    out = str(tmp_path / "x.npy")
    planned = "comballaz-2020-11-06-planned"
    for argv, flag in [
        (["corridor", "--flight", planned, "--count", "0", "--out", out], "--count"),
        (["corridor", "--flight", planned, "--count", "3", "--out", out, "--sigma-m", "1,-2,3"], "--sigma-m"),
        (["corridor", "--flight", planned, "--count", "3", "--out", out, "--sigma-deg", "a,b,c"], "--sigma-deg"),
        (["corridor", "--flight", "nowhere", "--count", "3", "--out", out], "--flight"),
        (["corridor", "--flight", planned, "--count", "3", "--out", out, "--seed", "-1"], "--seed"),
        (["corridor", "--flight", planned, "--count", "3", "--out", out, "--world-seed", "-1", "--min-clearance", "2"],
         "--world-seed: expected a non-negative integer"),
        (["corridor", "--flight", planned, "--count", "3", "--out", out, "--world-seed", "2"],
         "--world-seed: chooses the Mini-Comballaz world of --min-clearance; without --min-clearance"),
        (["corridor", "--flight", planned, "--count", "3", "--out", out, "--min-clearance", "inf"], "--min-clearance"),
        (["lhs", "--flight", planned, "--count", "3", "--out", out, "--world-seed", "-1"], "--world-seed"),
        (["lhs", "--flight", planned, "--count", "3", "--out", out, "--world-seed", "1", "--no-terrain"],
         "--world-seed: chooses the Mini-Comballaz world whose terrain is used; --no-terrain uses none"),
        (["lhs", "--count", "3", "--out", out], "--flight / --area"),
        (["lhs", "--flight", planned, "--count", "3", "--out", out, "--margin", "-5"], "--margin"),
        (["lhs", "--flight", planned, "--count", "3", "--out", out, "--margin", "nan"],
         "--margin: expected a non-negative number of metres, got nan"),
        (["lhs", "--area", "comballaz", "--count", "3", "--out", out, "--margin", "20"],
         "--margin: widens a flight's envelope (--flight); --area samples the whole area"),
        (["lhs", "--flight", planned, "--area", "comballaz", "--count", "3", "--out", out], "--flight / --area"),
        (["lhs", "--flight", planned, "--count", "3", "--out", out, "--margin", "inf"], "--margin"),
        (["corridor", "--flight", str(tmp_path / "missing.npy"), "--count", "3", "--out", out],
         f"--flight: {tmp_path / 'missing.npy'}: pose file not found"),
    ]:
        with pytest.raises(SystemExit) as info:
            main(["poses", *argv])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"topoloc poses {argv[0]}: error: {flag}"), err
    assert not (tmp_path / "x.npy").exists()
    from topoloc.cli.poses import DEFAULT_MARGIN_M
    from topoloc.data.pose_lhs import lhs_envelope

    assert inspect.signature(lhs_envelope).parameters["margin_m"].default == DEFAULT_MARGIN_M  # the help's default
    with pytest.raises(SystemExit) as info:
        main(["render", "--poses", out, "--out", str(tmp_path / "o")])
    assert info.value.code == 2 and "--poses and --name" in capsys.readouterr().err


def test_cli_corridor_min_clearance_drops_the_low_views(tmp_path, world, capsys):
    from topoloc.data import corridor

    flight = "comballaz-2020-11-06-piloted"  # takes off from the ground: some jittered views go under it
    every = corridor(load_preset(flight), 2000, seed=0)
    low = clearance_m(every, world) < 2.0
    assert low.any()
    path = tmp_path / "c.npy"
    assert main(["poses", "corridor", "--flight", flight, "--count", "2000", "--out", str(path),
                 "--min-clearance", "2"]) == 0
    assert f"dropped {int(low.sum())} of 2000 views" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(path), every[~low])


def test_cli_corridor_min_clearance_bounds(tmp_path, world, capsys):
    planned = "comballaz-2020-11-06-planned"
    path = tmp_path / "c.npy"
    # 0 m is a clearance like any other: only views under the surface go (the planned flight has none)
    assert main(["poses", "corridor", "--flight", planned, "--count", "50", "--out", str(path),
                 "--min-clearance", "0"]) == 0
    assert len(np.load(path)) == 50 and "dropped 0 of 50 views" in capsys.readouterr().out
    # a clearance no view has leaves nothing to write: refused, not an empty pose file
    with pytest.raises(SystemExit) as info:
        main(["poses", "corridor", "--flight", planned, "--count", "5", "--out", str(tmp_path / "none.npy"),
              "--min-clearance", "5000"])
    assert info.value.code == 2
    assert "--min-clearance: every one of the 5 views is less than 5000 m above" in capsys.readouterr().err
    assert not (tmp_path / "none.npy").exists()


def test_cli_corridor_pick_random_draws_the_base_rows(tmp_path, capsys):
    from topoloc.data import corridor

    planned = "comballaz-2020-11-06-planned"
    path = tmp_path / "r.npy"
    assert main(["poses", "corridor", "--flight", planned, "--count", "20", "--out", str(path), "--pick", "random",
                 "--seed", "3"]) == 0
    np.testing.assert_array_equal(np.load(path), corridor(load_preset(planned), 20, seed=3, pick="random"))
    assert not np.array_equal(np.load(path), corridor(load_preset(planned), 20, seed=3, pick="even"))


def test_cli_lhs_heights_follow_the_comballaz_terrain_or_its_absolute_band(tmp_path, world, capsys):
    from topoloc.data.pose_lhs import lhs_envelope
    from topoloc.procedural import terrain_function

    # --flight: the terrain is read in the Comballaz frame, where terrain_function gives it
    planned = "comballaz-2020-11-06-planned"
    path = tmp_path / "env.npy"
    assert main(["poses", "lhs", "--flight", planned, "--count", "64", "--out", str(path)]) == 0
    expected = lhs_envelope(load_preset(planned), 64, seed=0, frame=FRAME, ground_m=terrain_function(world),
                            clearance_m=10.0)
    np.testing.assert_array_equal(np.load(path), expected)
    # --area --no-terrain: TOPO's absolute band, ENU up 105.9-627.7 m, some cameras less than 100 m above the
    # terrain (or under high ground), which the terrain-following band (100-200 m above it) never gives
    assert main(["poses", "lhs", "--area", "comballaz", "--count", "64", "--out", str(path), "--no-terrain"]) == 0
    enu = FRAME.ecef_to_enu(np.load(path)[:, :3])
    assert np.all((enu[:, 2] >= 105.9 - 0.01) & (enu[:, 2] <= 627.7 + 0.01))
    above = enu[:, 2] - terrain_function(world)(enu[:, 0], enu[:, 1])
    assert (above < 100.0).any()


def test_cli_poses_summary_names_the_topo_origin_of_the_area(tmp_path, capsys):
    path = tmp_path / "p.npy"
    assert main(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "4",
                 "--out", str(path)]) == 0
    assert "(frame lat 46.3705 lon 7.0650 h 1410 m)" in capsys.readouterr().out  # TOPO's Comballaz origin


def test_pose_file_with_photos_like_a_flight_gets_that_flights_photos(tmp_path, world, capsys):
    from PIL import Image

    from topoloc.data.semantics import SNOW

    rows = _planned_rows(3)
    path = tmp_path / "plan.npy"
    np.save(path, rows)
    out, plain = tmp_path / "out", tmp_path / "plain"
    for name, like in (("comballaz-march", "comballaz-2021-03-27-winter"),
                       ("comballaz-november", "comballaz-2020-11-06-planned")):
        assert main(["render", "--poses", str(path), "--name", name, "--photos-like", like, "--out", str(out),
                     "--size", "48x32", "--no-progress", "--device", "cpu"]) == 0
        assert (out / name / "photos_like.txt").read_text().strip() == like
    assert "comballaz-november: 3 image(s) rendered" in capsys.readouterr().out
    render_flights(plain, [pose_flight("comballaz-march", rows)], size=(48, 32), progress=False)
    names = [f"PHOTO_{i:05d}" for i in range(3)]
    for i, pic in enumerate(names):  # the renders are those of the rows without photos
        with_photos = np.asarray(Image.open(out / "comballaz-march" / f"comballaz-march_{i:05d}_{pic}_img.png"))
        without = np.asarray(Image.open(plain / "comballaz-march" / f"comballaz-march_{i:05d}_img.png"))
        np.testing.assert_array_equal(with_photos, without)
    photos = TopoFlight(out, "comballaz-march", domain="real")
    assert len(photos) == 3 and tuple(photos[0]["image"].shape) == (3, 32, 48)
    assert [p.name for p in photos.image_paths] == [f"{pic}.JPG" for pic in names]
    np.testing.assert_allclose(photos.poses(), TopoFlight(plain, "comballaz-march").poses(), atol=1e-9)
    # the winter flight's photos (27 March) have snow on open ground; November's have none
    snow = {name: sum(int((np.load(out / f"{name}-real" / f"{pic}_semantics.npy") == SNOW).sum()) for pic in names)
            for name in ("comballaz-march", "comballaz-november")}
    assert snow["comballaz-march"] > 0 and snow["comballaz-november"] == 0, snow
    # resumable; the same name asked without photos (other file names) is refused
    assert render_flights(out, [pose_flight("comballaz-march", rows, photos_like="comballaz-2021-03-27-winter")],
                          size=(48, 32), progress=False) == {"comballaz-march": 0}
    with pytest.raises(ValueError, match="holds a render of 'comballaz-march' with photos like "
                                         "'comballaz-2021-03-27-winter', asked without photos"):
        render_flights(out, [pose_flight("comballaz-march", rows)], size=(48, 32), progress=False)
    with pytest.raises(ValueError, match="without photos, asked with photos like"):
        render_flights(plain, [pose_flight("comballaz-march", rows, photos_like="comballaz-2020-11-06-planned")],
                       size=(48, 32), progress=False)


def test_photos_like_must_be_a_real_flight_and_needs_a_pose_file(tmp_path, capsys):
    rows = _planned_rows(2)
    for bad in ("comballaz-LHS", "comballaz-nowhere", "epfl-2020-06-09-planned"):
        with pytest.raises(ValueError, match=r"photos_like: expected a real flight of the comballaz area, one of \[.*"
                                             r"'comballaz-2020-11-06-planned'"):
            pose_flight("comballaz-x", rows, photos_like=bad)
    with pytest.raises(SystemExit) as exit_:
        main(["render", "--out", str(tmp_path), "--photos-like", "comballaz-2020-11-06-planned"])
    assert exit_.value.code == 2
    assert "--photos-like: expected with --poses FILE.npy --name NAME" in capsys.readouterr().err
    # The library's errors name its arguments; from the command line they name the flags that set them.
    for argv, expected in ((["--poses", "p.npy", "--name", "comballaz-x", "--photos-like", "comballaz-LHS"],
                            "--photos-like: expected a real flight of the comballaz area"),
                           (["--flights", "comballaz-LHS:2", "--size", "96"], "--size: expected 'WxH' text"),
                           (["--flights", "nope"], "--flights: unknown flight 'nope'")):
        if argv[0] == "--poses":
            np.save(tmp_path / "p.npy", rows)
            argv[1] = str(tmp_path / "p.npy")
        with pytest.raises(SystemExit) as exit_:
            main(["render", "--out", str(tmp_path / "out"), *argv])
        assert exit_.value.code == 2
        assert f"topoloc render: error: {expected}" in capsys.readouterr().err
    # A folder rendered at another size: the library's out_dir is --out here, the size in --size's form.
    held = tmp_path / "held"
    held.mkdir()
    (held / "mini_comballaz.json").write_text(json.dumps({"seed": 0, "width": 96, "height": 64,
                                                          "version": FORMAT_VERSION}))
    with pytest.raises(SystemExit) as exit_:
        main(["render", "--out", str(held), "--flights", "comballaz-LHS:2", "--size", "48x32"])
    assert exit_.value.code == 2
    assert (f"topoloc render: error: --out {held}: holds a Mini-Comballaz render of size 96x64, asked for 48x32; "
            in capsys.readouterr().err)


PLANNED = "comballaz-2020-11-06-planned"


def test_cli_poses_out_that_is_a_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "poses").mkdir()
    monkeypatch.chdir(tmp_path)
    for kind in (["corridor", "--flight", PLANNED], ["lhs", "--area", "comballaz"]):
        for out in ("poses/", "poses", ".", "new/"):
            with pytest.raises(SystemExit) as info:
                main(["poses", *kind, "--count", "3", "--out", out])
            assert info.value.code == 2
            err = capsys.readouterr().err
            said = f"topoloc poses {kind[0]}: error: --out: expected a .npy file path, got {out!r}, a folder\n"
            assert err == said, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poses"] and not any((tmp_path / "poses").iterdir())
    assert main(["poses", "corridor", "--flight", PLANNED, "--count", "3", "--out", "a.txt"]) == 0
    assert capsys.readouterr().out.startswith("a.txt.npy: 3 poses")  # numpy's convention, named in --help
    assert np.load(tmp_path / "a.txt.npy").shape == (3, 6)


def test_rows_looking_above_the_horizon_get_a_one_line_warning_naming_them(tmp_path, world, capsys):
    rows = _planned_rows(4)
    rows[:, 4] = [-90.0, 45.0, 0.0, 5.0]  # straight down, 45 deg up, the horizon, 5 deg up
    with pytest.warns(UserWarning, match=r"^poses: 2 row\(s\) look above the horizon \(pitch between 0 and 180 deg, "
                                         r"mod 360\): rows \[1, 3\]; rendered as given$"):
        pose_flight("comballaz-up", rows)
    path = tmp_path / "up.npy"
    np.save(path, rows)
    assert main(["render", "--poses", str(path), "--name", "comballaz-up", "--out", str(tmp_path / "o"), "--size",
                 "32x16", "--no-progress", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"warning: {path}: 2 row(s) look above the horizon (pitch between 0 and 180 deg, "
                            "mod 360): rows [1, 3]; rendered as given\n"), captured.err
    assert "comballaz-up: 4 image(s) rendered" in captured.out
    many = np.repeat(_planned_rows(1), 12, axis=0)
    many[:, 4] = 10.0
    with pytest.warns(UserWarning, match=r"rows \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] and 2 more"):
        pose_flight("comballaz-up", many)
    rows[:, 4] = [-90.0, -45.0, 0.0, -0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pose_flight("comballaz-down", rows)  # pitch in [-90, 0]: no warning
    # a pitch of -200 deg looks 20 deg up and back (sin(-200 deg) = +0.34): it was rendered without a word
    rows[:, 4] = [-90.0, -200.0, -91.0, -350.0]  # -91: down, a gimbal's overshoot; -350: 10 deg up
    with pytest.warns(UserWarning) as record:
        pose_flight("comballaz-over", rows)
    said = [str(w.message) for w in record]
    assert said == ["poses: 3 row(s) with a pitch outside Cesium's [-90, 90] deg (from -350 to -91 deg): rows "
                    "[1, 2, 3]; rendered as given (the camera turned over, looking back)",
                    "poses: 2 row(s) look above the horizon (pitch between 0 and 180 deg, mod 360): rows [1, 3]; "
                    "rendered as given"], said


def test_angles_in_radians_are_warned_about_by_the_samplers_and_the_renderer(tmp_path, capsys):
    # the planned flight's rows with their angles in radians (pitch -60 deg -> -1.05): rendered looking almost
    # level before, without a word; in degrees, nothing said
    from topoloc.data.pose_lhs import lhs_envelope
    from topoloc.data.pose_sampling import corridor

    rows = _planned_rows(5)
    radians = rows.copy()
    radians[:, 3:] = np.radians(rows[:, 3:])
    said = r"every yaw, pitch and roll lies within \+-2 pi and every pitch within \[-pi/2, 0\]: angles in radians\?"
    with pytest.warns(UserWarning, match="^flight_rows: " + said):
        corridor(radians, 4, seed=0)
    with pytest.warns(UserWarning, match="^flight_rows: " + said):
        lhs_envelope(radians, 4, seed=0)
    with pytest.warns(UserWarning, match="^poses: " + said):
        pose_flight("comballaz-rad", radians)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        corridor(rows, 4, seed=0)
        pose_flight("comballaz-deg", rows)
    path = tmp_path / "rad.npy"
    np.save(path, radians)
    assert main(["poses", "corridor", "--flight", str(path), "--count", "3", "--out", str(tmp_path / "c.npy")]) == 0
    assert "angles in radians?" in capsys.readouterr().err


def test_lhs_around_a_flight_outside_mini_comballaz_says_it_keeps_no_clearance(tmp_path, capsys):
    # an EPFL flight: no Mini-Comballaz terrain there; the help promises a clearance, so the output says why not
    assert main(["poses", "lhs", "--flight", "EPFL-2020-09-17-planned", "--count", "4",
                 "--out", str(tmp_path / "e.npy")]) == 0
    out = capsys.readouterr().out
    assert ("note: EPFL-2020-09-17-planned's positions are not all within the Mini-Comballaz area, so its terrain "
            "is not used: the cameras keep no clearance above the ground (as with --no-terrain)") in out, out
    assert main(["poses", "lhs", "--flight", "EPFL-2020-09-17-planned", "--count", "4", "--no-terrain",
                 "--out", str(tmp_path / "f.npy")]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_flight_named_twice_in_flights_is_refused_before_anything_is_written(tmp_path, capsys):
    # "comballaz-LHS:3,comballaz-LHS:4" rendered 5 files of two spreads into one folder, then refused its own rerun
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["render", "--out", str(out), "--size", "32x16", "--flights", "comballaz-LHS:3,comballaz-LHS:4",
              "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "flights: expected each flight once, got 'comballaz-LHS' 2 times in" in err, err
    assert not out.exists()
    # an EPFL flight's error said "flight 'EPFL-LHS': ..." where the others say "--flights: ..."
    with pytest.raises(SystemExit) as exc:
        main(["render", "--out", str(out), "--size", "32x16", "--flights", "EPFL-LHS:3", "--device", "cpu"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "error: --flights: flight 'EPFL-LHS': Mini-Comballaz renders only" in err, err


def test_cli_poses_says_when_it_replaces_a_file_of_other_poses(tmp_path, capsys):
    path = tmp_path / "c.npy"
    argv = ["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "3", "--out", str(path)]
    assert main(argv) == 0 and main(argv) == 0  # the same command twice: the same file, no word
    assert "warning" not in capsys.readouterr().err
    assert main([*argv, "--seed", "1"]) == 0
    assert capsys.readouterr().err == (f"warning: {path} held other poses and was replaced; a render of the old file "
                                       "into a folder refuses this one (render it into another folder)\n")
