"""The CLI's refusals: one line ``topoloc <command>: error: ...`` and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import topoloc.experiments.recipe as recipe_module
from topoloc.cli import main
from topoloc.engine import train

RECIPE = """data:
  root: {root}
  train: [{{flight: comballaz-LHS}}]
  test: [{{flight: comballaz-LHS}}]
train:
  model: atloc_resnet18
  out_dir: {out}
"""


def _exit(argv, capsys) -> str:
    """Run the CLI expecting exit status 2; returns stderr, checked to be one error line after any warnings."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    command = " ".join(argv[:2]) if argv[0] == "poses" else argv[0]  # as argparse names it: "poses corridor"
    assert len(lines) == 1 and lines[0].startswith(f"topoloc {command}: error: "), err
    return err


def _recipe(tmp_path, text=None):
    path = tmp_path / "recipe.yaml"
    path.write_text(text if text is not None else RECIPE.format(root=tmp_path / "data", out=tmp_path / "run"))
    return str(path)


@pytest.fixture
def captured(monkeypatch):
    """Replaces `run_recipe` (what `topoloc train` calls after parsing) by a recorder."""
    seen = []

    def fake(recipe, evaluate_only=False):
        seen.append(recipe)
        return {"checkpoint": "c.pt", "report": "r.md"}

    monkeypatch.setattr(recipe_module, "run_recipe", fake)
    return seen


def test_override_numbers_and_run_flags_reach_the_config(tmp_path, captured, capsys):
    assert main(["train", "--config", _recipe(tmp_path), "--override", "train.lr=5e-5", "train.weight_decay=1e-4"]) == 0
    cfg = captured[-1].train
    assert cfg.lr == 5e-5 and cfg.weight_decay == 1e-4
    assert (cfg.overwrite, cfg.resume_changes) == (False, "refuse")
    main(["train", "--config", _recipe(tmp_path), "--resume", "--allow-config-change"])
    cfg = captured[-1].train
    assert (cfg.resume, cfg.resume_changes, cfg.overwrite) == (True, "allow", False)
    main(["train", "--config", _recipe(tmp_path), "--overwrite"])
    assert captured[-1].train.overwrite
    err = _exit(["train", "--config", _recipe(tmp_path), "--resume", "--overwrite"], capsys)  # they exclude each other
    assert "`resume=True`" in err and "`overwrite=True`" in err and "recipe.yaml" in err


def test_invalid_yaml_is_one_line(tmp_path, capsys):
    err = _exit(["train", "--config", _recipe(tmp_path, "train:\n  lr: [1, 2\n  epochs: 3\n")], capsys)
    assert "not valid YAML" in err and "recipe.yaml" in err
    err = _exit(["train", "--config", _recipe(tmp_path), "--override", "train.lr=[5"], capsys)
    assert "train.lr=[5" in err


def test_type_error_in_a_recipe_is_one_line(tmp_path, capsys):
    err = _exit(["train", "--config", _recipe(tmp_path), "--override", "train.lr=fast"], capsys)
    assert "recipe.yaml': train.lr must be a number, got 'fast'" in err  # named as --override names it


def test_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    err = _argparse_exit(["render", "--out", str(blocker / "sub"), "--flights", "comballaz-LHS:1", "--size", "32x16"],
                         capsys)  # refused by argparse, before the world is built
    assert f"argument --out: '{blocker / 'sub'}': '{blocker}' is a file, not a folder" in err


def test_nan_stop_is_one_line(tmp_path, capsys, monkeypatch):
    def stopped(recipe, evaluate_only=False):
        raise FloatingPointError("training stopped: loss nan at step 5 (epoch 1); the last good checkpoint is 'x'")

    monkeypatch.setattr(recipe_module, "run_recipe", stopped)
    err = _exit(["train", "--config", _recipe(tmp_path)], capsys)
    assert "loss nan at step 5" in err


def _argparse_exit(argv, capsys) -> str:
    """Run the CLI expecting argparse's own refusal: exit status 2, the usage, then one error line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith(f"usage: topoloc {argv[0]}") and lines[-1].startswith(f"topoloc {argv[0]}: error:")
    return lines[-1]


@pytest.mark.parametrize("flag,value", [("--num-images", "0"), ("--num-images", "-3"), ("--share-images", "0")])
def test_bad_saliency_counts_are_refused(tmp_path, capsys, flag, value):
    err = _argparse_exit(["saliency", "--checkpoint", str(tmp_path / "c.pt"), "--data", str(tmp_path),
                          "--flights", "comballaz-LHS", "--out", str(tmp_path / "o"), flag, value], capsys)
    assert f"argument {flag}: expected a whole number >= 1, got '{value}'" in err


@pytest.mark.parametrize("command", ["evaluate", "saliency"])
def test_a_data_root_that_is_a_file_is_refused_by_the_flag(tmp_path, capsys, command):
    # it was "FILE/comballaz-LHS: folder not found", naming neither --data nor what it should be
    (tmp_path / "c.pt").write_bytes(b"")
    (tmp_path / "notes.csv").write_text("x\n")
    data = tmp_path / "notes.csv"
    err = _argparse_exit([command, "--checkpoint", str(tmp_path / "c.pt"), "--data", str(data), "--flights",
                          "comballaz-LHS", "--out", str(tmp_path / "o")], capsys)
    assert f"argument --data: expected the folder that holds the flight folders, '{data}' is a file" in err


def test_bad_evaluate_batch_size_is_refused(tmp_path, capsys):
    (tmp_path / "c.pt").write_bytes(b"")
    err = _argparse_exit(["evaluate", "--checkpoint", str(tmp_path / "c.pt"), "--data", str(tmp_path),
                          "--flights", "comballaz-LHS", "--out", str(tmp_path / "o"), "--batch-size", "0"], capsys)
    assert "argument --batch-size: expected a whole number >= 1, got '0'" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
@pytest.mark.parametrize("argv", [
    ["evaluate", "--checkpoint", "c.pt", "--data", ".", "--flights", "comballaz-LHS", "--out", "/proc/topoloc/eval"],
    ["saliency", "--checkpoint", "c.pt", "--data", ".", "--flights", "comballaz-LHS", "--out", "/proc/topoloc"],
    ["localise", "--checkpoint", "c.pt", "p.jpg", "--out", "/proc/topoloc.csv"],
    ["export", "--checkpoint", "c.pt", "--out", "/proc/topoloc.onnx"],
    ["render", "--flights", "comballaz-LHS:2", "--out", "/proc/topoloc"],
    ["demo", "--out", "/proc/topoloc"],
])
def test_an_unwritable_out_is_refused_before_the_work(capsys, argv):
    """/proc takes no new file, for root too: the refusal comes from argparse, before any checkpoint is read."""
    err = _argparse_exit(argv, capsys)
    assert f"argument --out: '{argv[-1]}': cannot write in '/proc'" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
def test_an_unwritable_pose_file_is_refused_before_sampling(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "5", "--out", "/proc/p.npy"])
    assert exc.value.code == 2
    assert "topoloc poses corridor: error: --out: '/proc/p.npy': cannot write in '/proc'" in capsys.readouterr().err

@pytest.mark.parametrize("flags, expected", [
    (["--retrieval", "model", "--no-retrieval"], "argument --no-retrieval: not allowed with argument --retrieval"),
    (["--split-seed", "-1"], "argument --split-seed: expected a whole number >= 0, got '-1'"),
    # named by the flag, as typed: these were refused as the recipe key, "`split_fractions` must be ...(0.5, 0.5)"
    (["--split-fractions", "0.5,0.5"], "argument --split-fractions: expected three shares >= 0 summing to 1, "
                                       "TRAIN,VAL,TEST (e.g. 0.9,0.1,0), got '0.5,0.5'"),
    (["--split-fractions", "0.5,0.6,0.1"], "got '0.5,0.6,0.1'"),  # 1.2 in all
    (["--split-fractions", "1.2,-0.2,0"], "got '1.2,-0.2,0'"),  # sums to 1, one share negative
    (["--split-fractions", "0.9;0.1;0"], "got '0.9;0.1;0'"),
])
def test_contradicting_or_negative_evaluate_flags_are_refused(tmp_path, capsys, flags, expected):
    err = _argparse_exit(["evaluate", "--checkpoint", str(tmp_path / "c.pt"), "--data", str(tmp_path),
                          "--flights", "comballaz-LHS", "--out", str(tmp_path / "o"), *flags], capsys)
    assert expected in err


@pytest.mark.parametrize("flags, expected", [
    # each exited 0 without a word: the split options only split flights of split train / val / test, and
    # retrieval needs the training flights, which --ignore-recipe without --train-flights leaves unknown
    (["--split-fractions", "0.9,0.1,0", "--split-seed", "4"],
     "error: --split-fractions: expected with a flight that takes a split, e.g. comballaz-2020-11-06-planned:real"),
    (["--split-block", "7"], "error: --split-block: expected with a flight that takes a split"),
    (["--retrieval", "model", "thumbnail", "--ignore-recipe"], "error: --retrieval: the retrieval baseline retrieves "
                                                               "from the checkpoint's training flights"),
])
def test_evaluate_flags_that_would_be_ignored_are_refused(tmp_path, capsys, flags, expected):
    err = _exit(["evaluate", "--checkpoint", str(tmp_path / "c.pt"), "--data", str(tmp_path),
                 "--flights", "comballaz-LHS", "--out", str(tmp_path / "o"), *flags], capsys)
    assert expected in err


def test_evaluate_and_saliency_in_another_frame_are_refused_by_the_flag(tiny_config, tmp_path, lhs_flight, capsys):
    from topoloc.data import TopoFlight

    lhs_flight(tmp_path / "data", n=6)
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), TopoFlight(tmp_path / "data", "comballaz-LHS"))
    common = ["--checkpoint", str(result.final_checkpoint), "--data", str(tmp_path / "data"), "--flights",
              "comballaz-LHS", "--frame", "epfl", "--device", "cpu"]
    expected = f"error: --frame: {result.final_checkpoint} was trained in the comballaz frame, not in epfl"
    assert expected in _exit(["evaluate", *common, "--out", str(tmp_path / "eval"), "--no-retrieval"], capsys)
    assert expected in _exit(["saliency", *common, "--out", str(tmp_path / "sal")], capsys)
    assert not (tmp_path / "eval").exists() and not (tmp_path / "sal").exists()


def test_new_run_over_a_finished_one_is_refused_from_the_cli(tiny_config, pose_images, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    train(tiny_config(out_dir=str(run), epochs=1), pose_images(n=8))

    def run_recipe(recipe, evaluate_only=False):  # the real training call, on the in-memory images
        return {"checkpoint": train(recipe.train, pose_images(n=8)).final_checkpoint, "report": "-"}

    monkeypatch.setattr(recipe_module, "run_recipe", run_recipe)
    recipe = _recipe(tmp_path, RECIPE.format(root=tmp_path / "data", out=run)
                     + "  model_kwargs: {backbone: test_resnet, feat_dim: 32}\n  epochs: 1\n  batch_size: 8\n"
                       "  image_size: [32, 32]\n  device: cpu\n  cache_device: cpu\n  progress: false\n"
                       "  tensorboard: false\n")
    err = _exit(["train", "--config", recipe], capsys)
    assert "holds another run" in err and "--overwrite" in err
    # each way on, by its flag
    assert "resume=True (CLI: --resume)" in err and "(CLI: --override train.out_dir=DIR)" in err
    err = _exit(["train", "--config", recipe, "--resume", "--override", "train.epochs=2", "train.lr=1e-3"], capsys)
    assert "lr: 5e-05 -> 0.001" in err and "--allow-config-change" in err
    assert main(["train", "--config", recipe, "--resume", "--allow-config-change", "--override", "train.epochs=2",
                 "train.lr=1e-3"]) == 0
    assert "lr: 5e-05 -> 0.001" in (run / "config_changes.log").read_text()


def test_swapped_lat_lon_poses_are_refused_by_evaluate(tiny_config, tmp_path, lhs_flight, capsys):
    import numpy as np
    from pyproj import Transformer

    from topoloc.data import TopoFlight

    folder = lhs_flight(tmp_path / "data", n=6)
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), TopoFlight(tmp_path / "data", "comballaz-LHS"))
    poses = np.load(folder / "comballaz-LHS_poses.npy")
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    poses[4, :3] = to_ecef.transform(46.3705, 7.065, 1500.0)  # (lat, lon) where (lon, lat) is expected
    np.save(folder / "comballaz-LHS_poses.npy", poses)
    err = _exit(["evaluate", "--checkpoint", str(result.final_checkpoint), "--data", str(tmp_path / "data"),
                 "--flights", "comballaz-LHS", "--out", str(tmp_path / "eval"), "--device", "cpu", "--no-retrieval"],
                capsys)
    assert ("comballaz-LHS_00004_img.png: row 4 of comballaz-LHS_poses.npy: position" in err
            and "km from the origin" in err)


def test_a_test_flight_that_selects_no_image_is_named_by_evaluate_and_saliency(tiny_config, tmp_path, lhs_flight,
                                                                                capsys):
    from topoloc.data import TopoFlight

    lhs_flight(tmp_path / "data", n=6)  # one block of 10 rows: all in the train split of 0.9 / 0.1 / 0
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), TopoFlight(tmp_path / "data", "comballaz-LHS"))
    common = ["--checkpoint", str(result.final_checkpoint), "--data", str(tmp_path / "data"), "--flights",
              "comballaz-LHS:synthetic:test", "--split-fractions", "0.9,0.1,0", "--split-block", "10"]
    expected = (f"error: --flights: comballaz-LHS (synthetic, split 'test') selects no image in "
                f"'{tmp_path / 'data'}': its rows all fall in other splits")
    err = _exit(["evaluate", *common, "--out", str(tmp_path / "eval"), "--device", "cpu", "--no-retrieval"], capsys)
    assert expected in err and "warning" not in err  # said once, as the error
    # saliency takes no split options: 6 LHS rows split 0.8 / 0.1 / 0.1 in blocks of 1 leave the test split empty too
    assert expected in _exit(["saliency", *common[:6], "--out", str(tmp_path / "sal"), "--device", "cpu"], capsys)
    assert not (tmp_path / "eval" / "report.md").exists() and not (tmp_path / "sal" / "saliency.md").exists()

@pytest.mark.parametrize("which, split", [("train", "test"), ("val", "val")])
def test_a_recipe_section_that_selects_no_image_is_named(tmp_path, capsys, lhs_flight, which, split):
    lhs_flight(tmp_path / "data", n=6)  # one block of 10 rows: all in the train split of 0.9 / 0.1 / 0
    spec = f"{{flight: comballaz-LHS, split: {split}, split_fractions: [0.9, 0.1, 0.0], split_block: 10}}"
    text = RECIPE.format(root=tmp_path / "data", out=tmp_path / "run")
    if which == "train":
        text = text.replace("  train: [{flight: comballaz-LHS}]", f"  train: [{spec}]")
    else:
        text = text.replace("  test:", f"  val: [{spec}]\n  test:")
    err = _exit(["train", "--config", _recipe(tmp_path, text)], capsys)
    assert f"data.{which} selects no image: comballaz-LHS (synthetic, split '{split}') is empty in " in err
    assert ("leave data.val out" in err) == (which == "val")
    assert f"warning: TopoFlight comballaz-LHS (synthetic, split '{split}') is empty\n" in err  # one line each
    assert "UserWarning" not in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_folder_given_where_a_file_is_expected_is_called_a_folder(tmp_path, capsys):
    err = _exit(["train", "--config", str(tmp_path)], capsys)
    assert f"recipe '{tmp_path}': a folder, expected a file" in err
    err = _exit(["evaluate", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--flights", "comballaz-LHS",
                 "--out", str(tmp_path / "o")], capsys)
    assert f"error: --checkpoint '{tmp_path}': a folder, expected a file" in err
    # the checkpoint subcommands name --checkpoint, not the library's argument or function
    nope = tmp_path / "nope.pt"
    Image.new("RGB", (24, 16)).save(tmp_path / "photo.png")
    for argv in (["saliency", "--data", str(tmp_path), "--flights", "comballaz-LHS", "--out", str(tmp_path / "o")],
                 ["localise", str(tmp_path / "photo.png"), "--out", str(tmp_path / "o.csv")],
                 ["export", "--out", str(tmp_path / "o.onnx")]):
        # one wording in every subcommand: localise and export said "--checkpoint: '...': ..."
        err = _exit([*argv, "--checkpoint", str(nope)], capsys)
        assert err.startswith(f"topoloc {argv[0]}: error: --checkpoint '{nope}': no such file"), err
        err = _exit([*argv, "--checkpoint", str(tmp_path)], capsys)
        assert err.startswith(f"topoloc {argv[0]}: error: --checkpoint '{tmp_path}': a folder, expected a file"), err
    err = _exit(["train", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert "nope.yaml': no such file" in err
    # a training run's folder names the checkpoints in it
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    for argv in (["evaluate", "--data", str(tmp_path), "--flights", "comballaz-LHS", "--out", str(tmp_path / "o")],
                 ["saliency", "--data", str(tmp_path), "--flights", "comballaz-LHS", "--out", str(tmp_path / "o")],
                 ["localise", str(tmp_path / "photo.png"), "--out", str(tmp_path / "o.csv")]):
        err = _exit([*argv, "--checkpoint", str(run)], capsys)
        expected = f"--checkpoint '{run}': a training run's folder, expected its checkpoint: '{run / 'last.pt'}'"
        assert expected in err, err


def test_an_init_from_that_is_no_checkpoint_file_is_refused_before_the_work(tmp_path, captured, capsys):
    # a run's folder given for its checkpoint was "no such checkpoint", and only after the images were decoded
    (tmp_path / "run").mkdir()
    err = _exit(["train", "--config", _recipe(tmp_path), "--init-from", str(tmp_path / "run")], capsys)
    assert f"error: --init-from '{tmp_path / 'run'}': a folder, expected a file" in err and "last.pt" in err
    err = _exit(["train", "--config", _recipe(tmp_path), "--init-from", str(tmp_path / "nope.pt")], capsys)
    assert f"error: --init-from '{tmp_path / 'nope.pt'}': no such file" in err
    assert captured == []  # refused before run_recipe: nothing decoded, nothing trained


def test_allow_config_change_without_a_resume_is_refused(tmp_path, captured, capsys):
    # it was ignored without a word: a new run has no checkpoint whose settings could differ
    err = _exit(["train", "--config", _recipe(tmp_path), "--allow-config-change"], capsys)
    assert "error: --allow-config-change: expected with --resume" in err and captured == []
    assert main(["train", "--config", _recipe(tmp_path), "--allow-config-change",
                 "--override", "train.resume=true"]) == 0
    assert captured[-1].train.resume_changes == "allow"


def test_a_resume_with_no_checkpoint_to_resume_says_a_new_run_starts(tmp_path, captured, capsys):
    # the library said so in its log only, which the command does not show: a mistyped train.out_dir trained a
    # new run from scratch under --resume without a word
    def resume_warnings() -> list[str]:  # the recipe's test rows are its training rows: warned of too
        return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: --resume")]

    assert main(["train", "--config", _recipe(tmp_path), "--resume"]) == 0
    assert resume_warnings() == [f"warning: --resume: no checkpoint (last.pt or best.pt) in '{tmp_path / 'run'}': a "
                                 "new run starts there (is train.out_dir the run's folder?)"]
    assert captured[-1].train.resume is True
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pt").write_bytes(b"")  # the checkpoint resume=True falls back on
    assert main(["train", "--config", _recipe(tmp_path), "--resume"]) == 0
    assert resume_warnings() == []
    (tmp_path / "run" / "best.pt").unlink()
    assert main(["train", "--config", _recipe(tmp_path)]) == 0  # a new run, asked for as such
    assert resume_warnings() == []


def test_a_leading_tilde_is_the_home_folder_in_flags_and_recipes(tmp_path, monkeypatch):
    # `--out=~/runs` is not expanded by the shell: it made a folder named '~' in the working folder
    from topoloc.cli.app import _home_expanded
    from topoloc.engine import TrainConfig
    from topoloc.experiments.recipe import load_recipe

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = str(tmp_path / "home")
    assert _home_expanded(["render", "--out=~/rt", "~/x", "--flights", "a~b", "--override", "data.root=~/d"]) == [
        "render", f"--out={home}/rt", f"{home}/x", "--flights", "a~b", "--override", "data.root=~/d"]
    cfg = TrainConfig(out_dir="~/runs/a", cache_file="~/c.pt", init_from="~/b/last.pt")
    assert (cfg.out_dir, cfg.cache_file, cfg.init_from) == (f"{home}/runs/a", f"{home}/c.pt", f"{home}/b/last.pt")
    # a recipe's `train.resume: ~/runs/a/last.pt` was looked for in a folder named '~': "no such checkpoint"
    assert TrainConfig(resume="~/runs/a/last.pt").resume == f"{home}/runs/a/last.pt"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {root: ~/data, train: ['x:synthetic:train'], test: ['x:synthetic:test']}\n"
                      "train: {out_dir: ~/runs}\nevaluate: {out_dir: ~/ev}\n")
    loaded = load_recipe(recipe, ["data.root=~/other"])
    assert (loaded.data.root, loaded.train.out_dir) == (f"{home}/other", f"{home}/runs")
    assert loaded.eval_out_dir == f"{home}/ev"


def test_a_lone_tilde_is_the_home_folder_too(tmp_path, monkeypatch):
    from topoloc.cli.app import _home_expanded

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _home_expanded(["~", "--out=~"]) == [str(tmp_path / "home"), f"--out={tmp_path / 'home'}"]


def _interrupted_by_ctrl_c_while_saving():
    """What a Ctrl-C inside torch.save gives: the zip writer's own error, raised while handling the interrupt."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6475072 vs 6474968")


@pytest.mark.parametrize("flags, hint", [((), "; the same command with --resume goes on from the last checkpoint"),
                                         (("--resume",), "; the same command goes on from the last checkpoint")])
@pytest.mark.parametrize("where", ["in a step", "while saving"])
def test_ctrl_c_is_one_line_saying_how_to_go_on(tmp_path, capsys, monkeypatch, flags, hint, where):
    # a Ctrl-C printed about 90 lines of traceback, or, inside a checkpoint write, torch's misleading
    # "RuntimeError: [enforce fail at inline_container.cc:672]"
    def interrupted(recipe, evaluate_only=False):
        if where == "in a step":
            raise KeyboardInterrupt
        _interrupted_by_ctrl_c_while_saving()

    monkeypatch.setattr(recipe_module, "run_recipe", interrupted)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", _recipe(tmp_path), *flags])
    assert exc.value.code == 130  # 128 + SIGINT, as a shell reports it
    assert capsys.readouterr().err.splitlines()[-1] == f"topoloc train: interrupted{hint}"  # after any warning


@pytest.mark.parametrize("argv, hint", [
    (["demo", "--out", "{tmp}/demo"], "; the same command goes on where it stopped"),
    (["render", "--out", "{tmp}/data", "--flights", "comballaz-LHS:2"],
     "; the same command renders the images still missing"),
])
def test_ctrl_c_in_demo_or_render_says_that_the_same_command_goes_on(tmp_path, capsys, monkeypatch, argv, hint):
    import topoloc.experiments.demo as demo_module
    import topoloc.procedural as procedural

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_module, "run_demo", interrupted)
    monkeypatch.setattr(procedural, "render_flights", interrupted)
    with pytest.raises(SystemExit) as exc:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exc.value.code == 130
    assert capsys.readouterr().err.splitlines()[-1] == f"topoloc {argv[0]}: interrupted{hint}"


@pytest.mark.parametrize("raised, said", [
    (ValueError("recipe 'r.yaml' is not valid YAML\n    line 2, column 9\n\n"),
     "recipe 'r.yaml' is not valid YAML; line 2, column 9"),  # its lines joined, the blank ones left out
    (OSError(), "OSError"),  # no message at all: its kind
])
def test_an_error_of_several_lines_or_none_is_still_one_line(tmp_path, capsys, monkeypatch, raised, said):
    def failing(recipe, evaluate_only=False):
        raise raised

    monkeypatch.setattr(recipe_module, "run_recipe", failing)
    err = _exit(["train", "--config", _recipe(tmp_path)], capsys)
    assert err.splitlines()[-1] == f"topoloc train: error: {said}"


def test_a_runtime_error_of_its_own_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(recipe, evaluate_only=False):
        raise RuntimeError("a bug")

    monkeypatch.setattr(recipe_module, "run_recipe", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "--config", _recipe(tmp_path)])


def test_ctrl_c_under_a_progress_bar_is_said_on_a_line_of_its_own(tmp_path, capsys, monkeypatch):
    # the message was glued to the bar ("| 16/40 [00:00<00:01, 20.55img/s]topoloc render: interrupted"), and the
    # bar drawn again below it when it was collected
    import sys

    from tqdm import tqdm

    def interrupted(recipe, evaluate_only=False):
        bar = tqdm(total=40, file=sys.stderr, mininterval=0)
        bar.update(16)
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe_module, "run_recipe", interrupted)
    with pytest.raises(SystemExit):
        main(["train", "--config", _recipe(tmp_path), "--resume"])
    import gc

    gc.collect()  # the bar's own goodbye, had it been left open
    err = capsys.readouterr().err
    assert err.endswith("\ntopoloc train: interrupted; the same command goes on from the last checkpoint\n"), err[-300:]


def test_evaluate_flags_reach_every_flight_and_the_library(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(checkpoint, data, flights, out, **kw):
        calls.append({"flights": flights, **kw})
        return Path(out) / "report.md"

    monkeypatch.setattr(recipe_module, "evaluate_checkpoint", fake)
    assert main(["evaluate", "--checkpoint", "last.pt", "--data", str(tmp_path), "--flights", "comballaz-LHS:real:val",
                 "--train-flights", "comballaz-LHS:synthetic:train", "--val-flights", "comballaz-LHS",
                 "--split-fractions", "0.7,0.2,0.1", "--split-seed", "5", "--split-block", "10", "--out",
                 str(tmp_path / "eval"), "--batch-size", "7", "--retrieval", "thumbnail_colour", "--adabn",
                 "--classes", "mini-comballaz", "--ignore-recipe", "--frame", "epfl"]) == 0
    (kw,) = calls
    for flight in (*kw["flights"], *kw["train_flights"], *kw["val_flights"]):
        assert (flight.split_fractions, flight.split_seed, flight.split_block) == ((0.7, 0.2, 0.1), 5, 10)
    assert [(f.domain, f.split) for f in (*kw["flights"], *kw["train_flights"], *kw["val_flights"])] == [
        ("real", "val"), ("synthetic", "train"), ("synthetic", "all")]
    assert (kw["batch_size"], kw["retrieval"], kw["adabn"], kw["landcover"], kw["classes"], kw["use_recipe"],
            kw["frame"]) == (7, ("thumbnail_colour",), True, True, "mini-comballaz", False, "epfl")


def test_a_list_that_starts_with_a_minus_gets_the_flags_own_message(tmp_path, capsys):
    # argparse took '-1,2,3' for a flag and said "--sigma-m: expected one argument"
    from topoloc.cli.app import _negative_lists_joined

    assert _negative_lists_joined(["poses", "--sigma-m", "-1,2,3", "--seed", "-1", "-h"]) == [
        "poses", "--sigma-m=-1,2,3", "--seed", "-1", "-h"]
    assert _negative_lists_joined(["--sigma-deg", "-0.5,1e-3,2"]) == ["--sigma-deg=-0.5,1e-3,2"]
    assert _negative_lists_joined(["--out=x", "-1,2"]) == ["--out=x", "-1,2"]  # the flag has its value already
    with pytest.raises(SystemExit) as stop:
        main(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "3",
              "--out", str(tmp_path / "p.npy"), "--sigma-m", "-1,2,3"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "expected three non-negative comma-separated numbers" in err
    assert "expected one argument" not in err and not (tmp_path / "p.npy").exists()


# ------------------------------------------------- the pose samplers' audit (2026-12-07)
def test_a_corridor_jittered_off_the_earth_names_its_sigma_and_writes_nothing(tmp_path, capsys):
    # 1e300 m put every camera where WGS84 has no height (NaN), which passed the height check: the file was
    # written, and reading it back failed with "LocalFrame lat_deg: expected a finite number, got nan"
    out = tmp_path / "big.npy"
    for sigma, what in (("1e300,0,0", "too far from the Earth for a WGS84 height"), ("0,0,5000", "m from the WGS84")):
        err = _exit(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "50",
                     "--sigma-m", sigma, "--out", str(out)], capsys)
        assert "error: --sigma-m: (" in err and "views outside -1000 to 100000 m of height" in err and what in err
        assert not out.exists()


def test_a_count_beyond_any_memory_is_refused_naming_it(tmp_path, capsys):
    # "Maximum allowed size exceeded" (numpy's words) or a MemoryError traceback
    for kind in (["corridor", "--flight", "comballaz-2020-11-06-planned"], ["lhs", "--area", "comballaz"]):
        err = _exit(["poses", *kind, "--count", "1000000000", "--out", str(tmp_path / "c.npy")], capsys)
        assert "error: --count: expected at most 100,000,000 views" in err


def test_memory_run_out_is_one_line_saying_so(tmp_path, capsys, monkeypatch):
    import topoloc.data.pose_sampling as sampling

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.45 GiB for an array with shape (1000000000, 6)")

    monkeypatch.setattr(sampling, "corridor", exhausted)  # the CLI imports it when it runs
    err = _exit(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "5",
                 "--out", str(tmp_path / "c.npy")], capsys)
    assert "error: out of memory (Unable to allocate 7.45 GiB" in err and "a smaller batch" in err


def test_a_pose_file_named_without_its_npy_is_pointed_to(tmp_path, capsys):
    main(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "3", "--out",
          str(tmp_path / "c6")])  # writes c6.npy, as numpy does
    capsys.readouterr()
    err = _exit(["render", "--poses", str(tmp_path / "c6"), "--name", "comballaz-c6", "--out", str(tmp_path / "r")],
                capsys)
    assert "c6: pose file not found (there is c6.npy beside it: give the name with '.npy')" in err


@pytest.mark.parametrize("kind", ["text", "image"])
def test_poses_out_replaces_pose_files_only(tmp_path, capsys, kind):
    # a text file named .npy was replaced without a word, an image array with "held other poses"
    out = tmp_path / "mine.npy"
    if kind == "text":
        out.write_text("precious")
        what = "(not a numpy file)"
    else:
        np.save(out, np.zeros((48, 72, 3), np.uint8))
        what = "(a uint8 array of shape (48, 72, 3))"
    before = out.read_bytes()
    err = _exit(["poses", "corridor", "--flight", "comballaz-2020-11-06-planned", "--count", "3", "--out", str(out)],
                capsys)
    assert f"exists and holds no pose rows {what}; it is replaced only when it is a pose file" in err
    assert out.read_bytes() == before


def test_a_warning_about_the_flight_names_the_flag(tmp_path, capsys):
    # it named the library's argument: "warning: flight_rows: every yaw, pitch and roll lies within +-2 pi ..."
    from topoloc.data.preset import load_preset

    rows = load_preset("comballaz-2020-11-06-planned").copy()
    rows[:, 3:] = np.deg2rad(rows[:, 3:])
    np.save(tmp_path / "radians.npy", rows)
    assert main(["poses", "corridor", "--flight", str(tmp_path / "radians.npy"), "--count", "3",
                 "--out", str(tmp_path / "c.npy")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: --flight: every yaw, pitch and roll lies within +-2 pi"), err
