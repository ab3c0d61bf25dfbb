"""The demo pipeline end to end (tiny data, stand-in renders), the CLI on its output, a recipe run,
and (slow) `topoloc demo --smoke` with the real Mini-Comballaz renderer."""

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import topoloc.experiments.demo as demo
import topoloc.experiments.demo_report as demo_report
from topoloc.cli import main
from topoloc.data.pose_sampling import corridor
from topoloc.data.preset import list_presets, load_preset, load_preset_pic_names
from topoloc.data.splits import split_assignment
from topoloc.data.topo import TopoFlight
from topoloc.engine import TrainConfig
from topoloc.engine.train import initial_model
from topoloc.experiments.demo import DemoConfig, run_demo
from topoloc.procedural import FORMAT_VERSION, render_flights
from topoloc.reporting.landcover import LANDCOVER_COLUMNS

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _write_flight(root: Path, flight: str, count: int, size_wh, seed: int, poses=None, depth: bool = False) -> None:
    """A stand-in for Mini-Comballaz: random renders, semantics and (real flights) photos in TOPO's layout;
    with ``depth``, random depth maps (40-60 m) beside the renders."""
    rng = np.random.default_rng(seed)
    poses = load_preset(flight) if poses is None else poses
    names = load_preset_pic_names(flight) if flight in list_presets() else []
    folder = root / flight
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{flight}_poses.npy", poses)
    if names:
        (folder / f"{flight}_pic_names.csv").write_text(",".join(names))
        (root / f"{flight}-real").mkdir(exist_ok=True)
    w, h = size_wh
    for i in np.linspace(0, len(poses) - 1, count).round().astype(int):
        stem = f"{flight}_{i:05d}" + (f"_{names[i]}" if names else "")
        rgba = np.concatenate([rng.integers(0, 256, (h, w, 3)), np.full((h, w, 1), 255)], axis=2).astype(np.uint8)
        Image.fromarray(rgba, "RGBA").save(folder / f"{stem}_img.png")
        np.save(folder / f"{stem}_semantics.npy", rng.integers(0, 12, (h, w)).astype(np.uint8))
        if depth:
            np.save(folder / f"{stem}_depth.npy", rng.uniform(40.0, 60.0, (h, w)).astype(np.float32))
        if names:
            Image.fromarray(rgba[..., :3]).save(root / f"{flight}-real" / f"{names[i]}.JPG")


def _fake_render(cfg, data_dir):
    """What `demo._render` writes, small and fast; the number of images written (as it returns)."""
    train_rows = corridor(load_preset(demo.PLANNED_FLIGHT), cfg.corridor_images, seed=cfg.seed)
    _write_flight(data_dir, demo.TRAIN_FLIGHT, cfg.corridor_images, cfg.render_size, cfg.seed, poses=train_rows,
                  depth=cfg.relight > 0)
    for k, f in enumerate(cfg.test_flights):
        _write_flight(data_dir, f, cfg.test_images, cfg.render_size, cfg.seed + 1 + k)
    return cfg.corridor_images + len(cfg.test_flights) * cfg.test_images


TINY = DemoConfig("tiny", corridor_images=60, lhs_images=0, test_images=3, planned_test_images=3,
                  render_size=(48, 32), image_size=(32, 48), model="atloc_resnet18", model_kwargs={"feat_dim": 16},
                  epochs=1, finetune_epochs=1, batch_size=6, lr=1e-3, saliency_images=2, saliency_share_images=4,
                  device="cpu")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setattr(demo, "_render", _fake_render)
    try:
        run_demo(out, config=TINY)
    finally:
        mp.undo()
    return out


def test_demo_writes_the_report_and_everything_it_links(demo_dir):
    text = (demo_dir / "report.md").read_text()
    for link in re.findall(r"\]\(([^)]+)\)", text) + re.findall(r"- `([^`]+)`", text):
        assert (demo_dir / link).is_file(), link
    for method in ("augmented (SimToReal)", "no augmentation", "constant pose", "coverage ceiling",
                   "retrieval (features: 16x24 grey thumbnail)", "retrieval (features: augmented (SimToReal) model)"):
        assert f"| {method} | real | 9 |" in text and f"| {method} | synthetic | 9 |" in text
    assert "| training fit (no augmentation) | synthetic | 50 |" in text  # 60 views, 6 blocks of 10: 5 train, 1 val
    assert "| validation (no augmentation) | synthetic | 10 |" in text
    assert "**Aims**" in text and "| comballaz-2021-03-27-winter | real |" in text
    # 3 of each flight's poses: said (it gave the count alone, beside "the poses of real TOPO flights")
    assert "comballaz-2020-11-06-planned synthetic (3 of 447 poses, evenly spaced)" in text
    # the predictions' frame and height datum: Comballaz's origin as CrossLoc gives it (46.3705 N, 7.065 E, 1410 m)
    assert "(46.370500 deg N, 7.065000 deg E, 1410.0 m ellipsoidal height)" in text
    assert "Split not computed for real (augmented (SimToReal)): 3 image(s), fewer than the 4 parts need" in text
    assert (demo_dir / "landcover.csv").read_text().strip() == ",".join(LANDCOVER_COLUMNS)  # a header, no part
    assert "## Saliency" in text and "stable (road, building, rock, ridgeline)" in text
    assert (demo_dir / "plots" / "saliency_real.png").is_file()
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert set(summary) == {"augmented (SimToReal)", "no augmentation", "augmented (SimToReal) + AdaBN",
                            "no augmentation + AdaBN"}
    for method in ("augmented (SimToReal) + AdaBN", "no augmentation + AdaBN"):
        assert f"| {method} | real | 9 |" in text and f"| validation ({method}) | synthetic | 10 |" in text
    assert "both runs with AdaBN" in text
    # the AdaBN evaluations lend the runs' own brackets: only their training fit is missing
    assert ("- augmented (SimToReal) + AdaBN: not computed in this evaluation: training fit (its other brackets "
            "are those of augmented (SimToReal): the same training set and test images).") in text
    info = json.loads((demo_dir / "demo.json").read_text())
    assert info["aims"]["checked"] and info["aims_adabn"]["checked"]
    assert info["config"]["preset"] == "tiny" and set(info["timings_s"]) >= {"render", "evaluate", "saliency"}
    for run in ("augmented", "no_augmentation"):
        assert (demo_dir / "runs" / run / "last.pt").is_file()
        assert (demo_dir / "runs" / run / "config.yaml").is_file()
    # the augmented run is a fine-tune of the unaugmented one (finetune_epochs), and the report says so
    augmented = TrainConfig.from_yaml(demo_dir / "runs" / "augmented" / "config.yaml")
    assert augmented.init_from == str((demo_dir / "runs" / "no_augmentation" / "last.pt").resolve())
    assert TrainConfig.from_yaml(demo_dir / "runs" / "no_augmentation" / "config.yaml").init_from is None
    assert "the augmented one, which starts from that run's final weights (`TrainConfig.init_from`)" in text
    # its saliency "before training" is the initial weights of both runs, not the weights its fine-tune started from
    assert ("`augmented (SimToReal)` is a fine-tune of `no augmentation`: its \"before training\" maps are those of "
            "the initial weights both began from") in text


def test_demo_rerun_reuses_finished_training(demo_dir, monkeypatch, capsys):
    ckpt = demo_dir / "runs" / "augmented" / "last.pt"
    before = ckpt.stat().st_mtime_ns
    monkeypatch.setattr(demo, "_render", lambda cfg, data_dir: 0)  # every image there: nothing rendered now
    capsys.readouterr()
    run_demo(demo_dir, config=TINY)
    assert ckpt.stat().st_mtime_ns == before
    # it says so (it printed "train no_augmentation: 0.2 s" as if it had trained)
    out = capsys.readouterr().out
    for run in ("no_augmentation", "augmented"):
        assert f"[demo] train {run}: trained in an earlier run, reused" in out, out
    assert "[demo] render: rendered in an earlier run, reused" in out, out  # it said "render: 0.2 s"
    # and the report's times do not claim 0 s of training
    time_line = next(line for line in (demo_dir / "report.md").read_text().splitlines() if line.startswith("- Time:"))
    assert ("render reused from an earlier run, train no_augmentation reused from an earlier run, train augmented "
            "reused from an earlier run" in time_line)
    assert json.loads((demo_dir / "demo.json").read_text())["reused"] == ["render", "train augmented",
                                                                          "train no_augmentation"]


@pytest.mark.parametrize("side_by_side", [False, True])
def test_demo_rerun_with_other_settings_says_what_to_do(demo_dir, monkeypatch, side_by_side):
    # e.g. a demo folder of an earlier version: its runs are not resumed with the new settings
    monkeypatch.setattr(demo, "_render", _fake_render)
    with pytest.raises(ValueError, match=r"augment_strength: 0\.75 -> 0\.5.*new --out") as err:
        run_demo(demo_dir, config=dataclasses.replace(TINY, augment_strength=0.5, side_by_side=side_by_side,
                                                      finetune_epochs=0 if side_by_side else TINY.finetune_epochs))
    # both runs hold the strength: one after the other, the unaugmented run trains first (the augmented run
    # fine-tunes its weights); side by side, the first refusal to arrive is the one reported
    named = ["'no augmentation' run"] + (["'augmented (SimToReal)' run"] if side_by_side else [])
    assert any(n in str(err.value) for n in named) and str(demo_dir / "runs") in str(err.value)


@pytest.mark.slow  # 40 s; no preset trains side by side since 2026-12-01 (train_side_by_side: tests/engine)
def test_demo_side_by_side(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "_render", _fake_render)
    run_demo(tmp_path, config=dataclasses.replace(TINY, side_by_side=True, finetune_epochs=0))
    out = capsys.readouterr().out
    assert re.search(r"\[demo\] training augmented \(SimToReal\) and no augmentation side by side \(\d+ torch "
                     r"threads? each\)", out)
    info = json.loads((tmp_path / "demo.json").read_text())
    assert "train augmented + no_augmentation (side by side)" in info["timings_s"]
    text = (tmp_path / "report.md").read_text()
    assert "| augmented (SimToReal) | real | 9 |" in text and "| no augmentation | real | 9 |" in text
    assert "the two trainings side by side" in text


def test_demo_stopped_in_its_saliency_stage_leaves_its_report(tmp_path, monkeypatch):
    # the GPU preset was once killed (at its time limit) in the saliency stage and lost every figure
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_render", _fake_render)
    monkeypatch.setattr(demo, "_saliency_section", killed)
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path, config=TINY)
    text = (tmp_path / "report.md").read_text()
    assert "| constant pose | real | 9 |" in text and "**Aims**" in text
    assert "stopped before its saliency stage" in text
    info = json.loads((tmp_path / "demo.json").read_text())
    assert "evaluate" in info["timings_s"] and "saliency" not in info["timings_s"]


def test_cli_evaluate_and_saliency_on_the_demo_output(demo_dir, capsys):
    ckpt = str(demo_dir / "runs" / "augmented" / "last.pt")
    data = str(demo_dir / "data")
    out = demo_dir / "cli_eval"
    assert main(["evaluate", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2020-11-06-planned:real",
                 "--train-flights", "comballaz-demo-train", "--out", str(out), "--device", "cpu"]) == 0
    text = (out / "report.md").read_text()
    for method in ("augmented", "constant pose", "retrieval (features: 16x24 grey thumbnail)",
                   "retrieval (features: trained model)", "coverage ceiling"):
        assert f"| {method} | real | 3 |" in text
    assert "| training fit | synthetic | 60 |" in text and "- **real** brackets (median): augmented" in text
    # all 60 views of the flight, of which the run trained on 50 (its recipe.yaml's split): said
    other = "are not the checkpoint's training images (60 images now, against the 50 it trained on)"
    assert other in capsys.readouterr().err and other in text
    assert main(["evaluate", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2020-11-06-planned:real",
                 "--train-flights", "comballaz-demo-train", "--out", str(demo_dir / "cli_eval_adabn"), "--adabn",
                 "--no-retrieval", "--device", "cpu"]) == 0
    capsys.readouterr()
    text = (demo_dir / "cli_eval_adabn" / "report.md").read_text()
    assert "| augmented + AdaBN | real | 3 |" in text and "| augmented | real | 3 |" in text
    assert "augmented + AdaBN: not computed" not in text  # its brackets are the run's; it has its training fit
    # Without --train-flights the demo's recipe.yaml beside the checkpoint names the training and
    # validation rows: 60 views in 6 blocks of 10, 5 blocks train, 1 validation (as in the demo's report)
    assert main(["evaluate", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2020-11-06-planned:real",
                 "--out", str(demo_dir / "cli_eval_recipe"), "--device", "cpu"]) == 0
    text = (demo_dir / "cli_eval_recipe" / "report.md").read_text()
    assert "| training fit | synthetic | 50 |" in text and "| validation | synthetic | 10 |" in text
    assert "not the checkpoint's training images" not in capsys.readouterr().err + text
    demo_report = (demo_dir / "report.md").read_text()
    ceiling = re.search(r"\| coverage ceiling \| real \| 9 \| ([\d.]+) \| ([\d.]+) \|", demo_report)
    flight_rows = re.findall(r"\| coverage ceiling \| comballaz-2020-11-06-planned \(real\) \| 3 \| "
                             r"([\d.]+) \| ([\d.]+) \|", demo_report)
    assert ceiling and flight_rows  # the same training rows: the same coverage ceiling on the planned flight
    assert re.search(r"\| coverage ceiling \| real \| 3 \| %s \| %s \|" % tuple(map(re.escape, flight_rows[0])), text)
    # The same rows from the command line: the training flight's split given with --split-* (the default
    # split, 0.8 / 0.1 / 0.1 in blocks of 25, would give other rows)
    split = ["--train-flights", "comballaz-demo-train:synthetic:train",
             "--val-flights", "comballaz-demo-train:synthetic:val"]
    assert main(["evaluate", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2020-11-06-planned:real",
                 *split, "--split-fractions", "0.9,0.1,0", "--split-block", "10", "--no-retrieval",
                 "--out", str(demo_dir / "cli_eval_split"), "--device", "cpu"]) == 0
    text = (demo_dir / "cli_eval_split" / "report.md").read_text()
    assert "| training fit | synthetic | 50 |" in text and "| validation | synthetic | 10 |" in text
    assert "not the checkpoint's training images" not in capsys.readouterr().err + text
    assert re.search(r"\| coverage ceiling \| real \| 3 \| %s \| %s \|" % tuple(map(re.escape, flight_rows[0])), text)
    for bad, named in ((["--split-fractions", "0.9,0.1"], "argument --split-fractions: expected three shares"),
                       (["--split-fractions", "a,b,c"], "argument --split-fractions: expected three shares"),
                       (["--split-block", "0"], "argument --split-block: expected a whole number >= 1")):
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2020-11-06-planned:real",
                  *split, *bad, "--out", str(demo_dir / "cli_eval_bad"), "--device", "cpu"])
        lines = capsys.readouterr().err.strip().splitlines()  # one line; argparse's own refusals after the usage
        assert exc.value.code == 2 and named in lines[-1] and (len(lines) == 1 or lines[0].startswith("usage:"))
    # A flight given here that selects no image (no row falls in the test split of 0.9 / 0.1 / 0) is refused,
    # named by its flag, before any evaluation
    for flag in ("--train-flights", "--val-flights"):
        given = [flag, "comballaz-demo-train:synthetic:test"]
        other = split[:2] if flag == "--val-flights" else split[2:]
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2020-11-06-planned:real",
                  *other, *given, "--split-fractions", "0.9,0.1,0", "--out", str(demo_dir / "cli_eval_empty"),
                  "--device", "cpu"])
        assert exc.value.code == 2
        assert capsys.readouterr().err == (f"topoloc evaluate: error: {flag}: comballaz-demo-train (synthetic, split "
                                           f"'test') selects no image in {data!r}: its rows all fall in other splits\n")
    assert not (demo_dir / "cli_eval_empty" / "report.md").exists()
    # A checkpoint with neither (copied away from its recipe.yaml): the report says so.
    bare = demo_dir / "bare_ckpt" / "last.pt"
    bare.parent.mkdir()
    bare.write_bytes(Path(ckpt).read_bytes())
    assert main(["evaluate", "--checkpoint", str(bare), "--data", data,
                 "--flights", "comballaz-2020-11-06-planned:real",
                 "--out", str(demo_dir / "cli_eval_bare"), "--device", "cpu"]) == 0
    text = (demo_dir / "cli_eval_bare" / "report.md").read_text()
    assert "The checkpoint's training data is unknown" in text and "(no brackets computed)" in text
    out = demo_dir / "cli_saliency"
    assert main(["saliency", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2021-03-27-winter:real",
                 "--out", str(out), "--num-images", "1", "--share-images", "2", "--device", "cpu"]) == 0
    assert (out / "plots" / "saliency_real.png").is_file()
    text = (out / "saliency.md").read_text()
    assert "Randomisation check" in text and "stable classes' share of the saliency" in text
    # the columns were titled by the checkpoint's whole path ("/tmp/.../last.pt: after - before"), cut off in the figure
    assert text.startswith(f"# Saliency: {ckpt}\n") and "| model |" in text and f"{ckpt}: after" not in text
    with pytest.raises(SystemExit) as exc:  # another frame: said as evaluate says it, before the flights are read
        main(["saliency", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2021-03-27-winter:real",
              "--out", str(demo_dir / "cli_saliency_epfl"), "--frame", "epfl", "--device", "cpu"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"frame: {ckpt} was trained in the comballaz frame, not in epfl" in err, err
    # a rerun on fewer domains removes the figure of the domain it no longer shows (it stayed, unlinked)
    (out / "plots" / "saliency_synthetic.png").write_bytes(b"an earlier run's figure")
    assert main(["saliency", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2021-03-27-winter:real",
                 "--out", str(out), "--num-images", "1", "--share-images", "2", "--device", "cpu"]) == 0
    assert sorted(p.name for p in (out / "plots").glob("saliency_*.png")) == ["saliency_real.png",
                                                                              "saliency_shares.png"]
    # a mistyped --data: named as the root, not as each flight's missing folder under it
    for command in ("evaluate", "saliency"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--checkpoint", ckpt, "--data", data + "-nope", "--flights",
                  "comballaz-2021-03-27-winter:real", "--out", str(demo_dir / "cli_nope"), "--device", "cpu"])
        assert exc.value.code == 2 and capsys.readouterr().err == (
            f"topoloc {command}: error: --data '{data}-nope': not found; expected the folder holding the flight "
            "folders\n")
    # the demo's own folder: refused, as evaluate refuses it (its two-run figures would be replaced)
    figure = (demo_dir / "plots" / "saliency_real.png").read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(["saliency", "--checkpoint", ckpt, "--data", data, "--flights", "comballaz-2021-03-27-winter:real",
              "--out", str(demo_dir), "--device", "cpu"])
    assert exc.value.code == 2 and "--out " in capsys.readouterr().err
    assert (demo_dir / "plots" / "saliency_real.png").read_bytes() == figure


def test_evaluate_splits_a_training_flight_as_training_did_and_says_what_it_saw(demo_dir, capsys):
    # The demo trains on comballaz-demo-train split 0.9 / 0.1 / 0.0 in blocks of 10 (its recipe.yaml says so). Its
    # "test" split was taken with the default 0.8 / 0.1 / 0.1, so all of it was training images, scored silently.
    ckpt = str(demo_dir / "runs" / "augmented" / "last.pt")
    data = str(demo_dir / "data")
    common = ["evaluate", "--checkpoint", ckpt, "--data", data, "--no-retrieval", "--device", "cpu"]
    with pytest.raises(SystemExit) as exc:
        main([*common, "--flights", "comballaz-demo-train:synthetic:test", "--out", str(demo_dir / "ev_leak")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "selects no image" in err, err
    assert "split_fractions (0.9, 0.1, 0.0), split_block 10" in err, err
    # the whole flight: 60 renders, of which those of its training split (independent of evaluate: TopoFlight)
    train_rows = TopoFlight(data, "comballaz-demo-train", split="train", split_fractions=(0.9, 0.1, 0.0),
                            split_block=10, frame="comballaz").rows
    assert main([*common, "--flights", "comballaz-demo-train:synthetic", "--out", str(demo_dir / "ev_leak")]) == 0
    note = f"{len(train_rows)} of the 60 test images of comballaz-demo-train synthetic all are at poses of the training"
    assert note in capsys.readouterr().err and note in (demo_dir / "ev_leak" / "report.md").read_text()
    # its validation split is held out of training: no note
    assert main([*common, "--flights", "comballaz-demo-train:synthetic:val", "--out", str(demo_dir / "ev_val")]) == 0
    assert "at poses of the training" not in capsys.readouterr().err


def test_evaluate_says_when_a_training_flight_grew_since_the_training(demo_dir, tmp_path, capsys):
    # 30 pose rows appended to the training flight: split 0.9 / 0.1 / 0.0 in blocks of 10 over 90 rows, its
    # validation rows 20-29 of the training became training rows (split_assignment, worked out independently
    # below), and the brackets were computed on images the model never trained on, without a word.
    data = tmp_path / "data"
    shutil.copytree(demo_dir / "data", data)
    folder = data / demo.TRAIN_FLIGHT
    poses = np.load(folder / f"{demo.TRAIN_FLIGHT}_poses.npy")
    grown = np.concatenate([poses, poses[:30] + np.array([0.0, 0.0, 5.0, 0.0, 0.0, 0.0])])
    np.save(folder / f"{demo.TRAIN_FLIGHT}_poses.npy", grown)
    stem = folder / demo.TRAIN_FLIGHT
    for i in range(60, 90):
        shutil.copy(f"{stem}_{i - 60:05d}_img.png", f"{stem}_{i:05d}_img.png")
    then, now = (split_assignment(n, (0.9, 0.1, 0.0), block=10) for n in (60, 90))
    assert set(np.flatnonzero((then == 1) & (now[:60] == 0))) == set(range(20, 30))
    common = ["evaluate", "--checkpoint", str(demo_dir / "runs" / "no_augmentation" / "last.pt"), "--no-retrieval",
              "--device", "cpu", "--flights", "comballaz-2020-11-06-planned:synthetic"]
    said = (f"are not the checkpoint's training images ({(now == 0).sum()} images now, against the {(then == 0).sum()} "
            "it trained on)")
    assert main([*common, "--data", str(data), "--out", str(tmp_path / "grown")]) == 0
    assert said in capsys.readouterr().err and said in (tmp_path / "grown" / "report.md").read_text()
    # the data it trained on: nothing said
    assert main([*common, "--data", str(demo_dir / "data"), "--out", str(tmp_path / "same")]) == 0
    assert "not the checkpoint's training images" not in capsys.readouterr().err


def test_evaluate_refuses_to_write_over_a_demo(demo_dir, capsys):
    # `--out demo` replaced the demo's report and deleted its predictions and plots without a word
    before = sorted(p.relative_to(demo_dir) for p in demo_dir.rglob("*") if p.is_file())
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--checkpoint", str(demo_dir / "runs" / "augmented" / "last.pt"), "--data",
              str(demo_dir / "data"), "--flights", "comballaz-2020-11-06-planned:synthetic", "--out", str(demo_dir),
              "--no-retrieval", "--device", "cpu"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"--out {str(demo_dir)!r}: holds a demo's output (demo.json)" in err, err
    assert sorted(p.relative_to(demo_dir) for p in demo_dir.rglob("*") if p.is_file()) == before


def test_cli_evaluate_splits_the_errors_by_land_cover(demo_dir, capsys):
    from topoloc.data.topo import TopoFlight

    ckpt = str(demo_dir / "runs" / "augmented" / "last.pt")
    data = demo_dir / "data"
    args = ["evaluate", "--checkpoint", ckpt, "--data", str(data), "--flights", f"{demo.TRAIN_FLIGHT}:synthetic:val",
            f"{demo.PLANNED_FLIGHT}:real", "--split-fractions", "0.9,0.1,0", "--split-block", "10", "--no-retrieval",
            "--device", "cpu"]
    # the stand-in renders write no class table: refused before the model runs, the expected file named
    with pytest.raises(SystemExit) as exc:
        main([*args, "--landcover", "--out", str(demo_dir / "cli_eval_lc_refused")])
    err = capsys.readouterr().err
    assert exc.value.code != 0 and f"{data / demo.TRAIN_FLIGHT / 'semantic_classes.json'}: no class table" in err
    assert not (demo_dir / "cli_eval_lc_refused" / "report.md").exists()
    table = demo_dir / "lc_classes.json"
    table.write_text('{"1": "meadow", "3": "forest_deciduous"}')
    out = demo_dir / "cli_eval_lc"
    assert main([*args, "--classes", str(table), "--out", str(out)]) == 0  # --classes implies --landcover
    text = (out / "report.md").read_text()
    # the maps' other classes are named in a warning (a table of another tool's ids would mislabel them)
    maps = sorted((data / demo.TRAIN_FLIGHT).glob("*_semantics.npy"))
    ids = np.concatenate([np.load(p).ravel() for p in maps])
    others = sorted(set(np.unique(ids).tolist()) - {1, 3})
    share = 100 * np.isin(ids, others).mean()
    assert (f"warning: landcover: the semantic maps of '{demo.TRAIN_FLIGHT}' hold class id(s) "
            f"{', '.join(map(str, others))} ({share:.0f} % of their pixels) that '{table}' does not name"
            in capsys.readouterr().err)
    assert "## Where the error is" in text
    assert f"**`{demo.TRAIN_FLIGHT}`** (" in text and "**Where the error is**" not in text  # not said twice
    # the bounds of the four quarters of the 10 validation views, from their semantic maps by hand
    val = TopoFlight(data, demo.TRAIN_FLIGHT, domain="synthetic", split="val", split_fractions=(0.9, 0.1, 0),
                     split_block=10, load_semantics=True)
    assert len(val) == 10
    meadow = np.sort([(np.load(p) == 1).mean() for p in val.semantics_paths])
    bounds = " | ".join(f"{100 * q[0]:.0f}-{100 * q[-1]:.0f} %" for q in np.array_split(meadow, 4))
    assert f"| meadow | share in view | {bounds} |\n| | synthetic |" in text
    assert "Split not computed for real (augmented): 3 image(s), fewer than the 4 parts need." in text
    rows = (out / "landcover.csv").read_text().splitlines()  # 2 classes x 4 quarters of the one split reading
    assert rows[0] == "flight,domain,run,class,part,share_low,share_high,images,median_m,median_deg"
    assert len(rows) == 9 and all(r.startswith(f"{demo.TRAIN_FLIGHT},synthetic,augmented,") for r in rows[1:])
    # a built-in table by name: Mini-Comballaz's own names every id of its maps, so no warning
    out = demo_dir / "cli_eval_lc_builtin"
    assert main([*args, "--classes", "mini-comballaz", "--out", str(out)]) == 0
    assert "warning: landcover" not in capsys.readouterr().err
    assert "| meadow | share in view |" in (out / "report.md").read_text()
    # evaluated again into the same folder without the split: the report has no section, and the folder no
    # landcover.csv of the earlier evaluation beside it
    assert (out / "landcover.csv").is_file()
    assert main([*args, "--out", str(out)]) == 0
    assert "## Where the error is" not in (out / "report.md").read_text() and not (out / "landcover.csv").exists()


def test_cli_train_refuses_a_test_entry_that_selects_no_image_before_training(demo_dir, capsys):
    # it trained, wrote its checkpoints, then failed in the evaluation: "datasets[0]: the dataset ... is empty"
    out = demo_dir / "recipe_empty_test"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(RECIPES / "synthetic_only.yaml"), "--device", "cpu", "--override",
              f"data.root={demo_dir / 'data'}", "train.epochs=1", f"train.out_dir={out}",
              "data.test=[{flight: comballaz-2020-11-06-planned, domain: real}, {flight: comballaz-demo-train, "
              "domain: synthetic, split: test, split_fractions: [0.9, 0.1, 0.0], split_block: 10}]"])
    assert exc.value.code == 2
    assert ("data.test[1] selects no image: comballaz-demo-train (synthetic, split 'test') is empty in"
            in capsys.readouterr().err)
    assert not (out / "last.pt").exists()


def test_a_recipe_tested_on_its_training_images_says_so_in_its_report(demo_dir):
    # its retrieval and coverage ceiling read 0.0 m without a word (`topoloc evaluate` said it; the recipe's report not)
    out = demo_dir / "recipe_tests_on_train"
    assert main(["train", "--config", str(RECIPES / "synthetic_only.yaml"), "--device", "cpu", "--override",
                 f"data.root={demo_dir / 'data'}", "train.epochs=1", "train.image_size=[32, 48]",
                 "train.model_kwargs={feat_dim: 16}", "train.progress=false", f"train.out_dir={out}",
                 "data.test=[{flight: comballaz-demo-train, domain: synthetic, split: train, "
                 "split_fractions: [0.9, 0.1, 0.0], split_block: 10}]"]) == 0
    text = (out / "eval" / "report.md").read_text()
    assert "test images of comballaz-demo-train synthetic train are at poses of the training images" in text


def test_a_recipe_run_killed_after_its_first_step_has_its_recipe_yaml(demo_dir, monkeypatch):
    # recipe.yaml was written when the training ended: a run stopped or killed before had none, and `topoloc
    # evaluate` could not find its training flights (its brackets)
    import topoloc.experiments.recipe as recipe_module
    from support.killed_runs import Killed, kill_at

    real_train = recipe_module.train
    monkeypatch.setattr(recipe_module, "train", lambda cfg, *args, callbacks=(), **kwargs: real_train(
        cfg, *args, callbacks=[*callbacks, kill_at(1)], **kwargs))
    out = demo_dir / "recipe_killed"
    with pytest.raises(Killed):
        main(["train", "--config", str(RECIPES / "synthetic_only.yaml"), "--device", "cpu", "--override",
              f"data.root={demo_dir / 'data'}", "train.epochs=1", "train.batch_size=4", "train.image_size=[32, 48]",
              "train.model_kwargs={feat_dim: 16}", "train.progress=false", f"train.out_dir={out}",
              "data.test=[{flight: comballaz-2020-11-06-planned, domain: real}]"])
    assert (out / "recipe.yaml").is_file() and not (out / "last.pt").exists()
    assert "comballaz-demo-train" in (out / "recipe.yaml").read_text()


def test_cli_evaluate_with_a_recipe_whose_validation_split_is_empty(demo_dir):
    # `topoloc demo --smoke` renders 32 views: 4 blocks of 10 rows, none of them validation at 90 / 10, and
    # its recipe.yaml still names the (empty) validation split. The same here: the whole flight to training.
    import yaml

    run = demo_dir / "empty_val_run"
    run.mkdir()
    (run / "last.pt").write_bytes((demo_dir / "runs" / "augmented" / "last.pt").read_bytes())
    recipe = yaml.safe_load((demo_dir / "runs" / "augmented" / "recipe.yaml").read_text())
    for spec in recipe["data"]["train"] + recipe["data"]["val"]:
        spec["split_fractions"] = [1.0, 0.0, 0.0]
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = demo_dir / "cli_eval_empty_val"
    assert main(["evaluate", "--checkpoint", str(run / "last.pt"), "--data", str(demo_dir / "data"),
                 "--flights", "comballaz-2020-11-06-planned:real", "--no-retrieval", "--out", str(out),
                 "--device", "cpu"]) == 0
    text = (out / "report.md").read_text()
    assert "| training fit | synthetic | 60 |" in text and "| validation |" not in text
    assert "comballaz-demo-train synthetic val, has no images (its split leaves none)" in text

def test_cli_train_runs_a_recipe(demo_dir, capsys):
    out = demo_dir / "recipe_run"
    data = demo_dir / "data"
    table = demo_dir / "recipe_classes.json"
    table.write_text('{"1": "meadow"}')
    assert main(["train", "--config", str(RECIPES / "synthetic_augmented.yaml"), "--device", "cpu", "--override",
                 "evaluate.landcover=true", f"evaluate.classes={table}",
                 f"data.root={data}", "train.epochs=1", "train.augment_ramp_epochs=1", "train.batch_size=4",
                 "train.image_size=[32, 48]",
                 "train.model=atloc_resnet18", "train.model_kwargs={feat_dim: 16}", "train.progress=false",
                 "data.val=[{flight: comballaz-2020-11-06-planned, domain: synthetic}]",
                 "data.test=[{flight: comballaz-2020-11-06-planned, domain: real}]",
                 f"train.out_dir={out}", f"evaluate.out_dir={out / 'eval'}",
                 "--init-from", str(demo_dir / "runs" / "no_augmentation" / "last.pt")]) == 0  # a fine-tune
    assert (out / "last.pt").is_file() and (out / "recipe.yaml").is_file()
    start = demo_dir / "runs" / "no_augmentation" / "last.pt"
    assert TrainConfig.from_yaml(out / "config.yaml").init_from == str(start)
    text = (out / "eval" / "report.md").read_text()
    for method in ("synthetic_augmented", "constant pose", "retrieval (features: 16x24 grey thumbnail)",
                   "retrieval (features: trained model)", "coverage ceiling"):
        assert f"| {method} | real | 3 |" in text
    # the training flight's val split
    assert "| training fit | synthetic |" in text and "| validation | synthetic | 3 |" in text
    assert "## Where the error is" in text  # evaluate.landcover: the split is asked for; 3 images are too few
    assert "Split not computed for real (synthetic_augmented): 3 image(s), fewer than the 4 parts need." in text
    # `topoloc evaluate` finds the training and validation flights in the recipe.yaml beside the checkpoint.
    assert main(["evaluate", "--checkpoint", str(out / "last.pt"), "--data", str(data), "--flights",
                 "comballaz-2021-03-27-winter:real", "--out", str(out / "eval2"), "--device", "cpu",
                 "--retrieval", "thumbnail"]) == 0
    text = (out / "eval2" / "report.md").read_text()
    assert f"(from `{out / 'recipe.yaml'}`): comballaz-demo-train synthetic train" in text
    assert "| coverage ceiling | real | 3 |" in text and "| validation | synthetic | 3 |" in text
    assert "retrieval (features: trained model)" not in text
    # Other data, without the recipe's training flight: named with where it came from, or not read.
    other = demo_dir / "data_without_training_flight"
    other.mkdir(exist_ok=True)
    for name in ("comballaz-2021-03-27-winter", "comballaz-2021-03-27-winter-real"):
        if not (other / name).exists():
            (other / name).symlink_to(data / name)
    args = ["evaluate", "--checkpoint", str(out / "last.pt"), "--data", str(other), "--flights",
            "comballaz-2021-03-27-winter:real", "--device", "cpu", "--no-retrieval"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(out / "eval3")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "comballaz-demo-train" in err
    assert f"a training or validation flight of `{out / 'recipe.yaml'}`" in err and "--ignore-recipe" in err
    assert main([*args, "--out", str(out / "eval4"), "--ignore-recipe"]) == 0
    text = (out / "eval4" / "report.md").read_text()
    assert "its recipe was not read (use_recipe=False, `--ignore-recipe`)" in text
    assert "| constant pose |" not in text


def test_a_recipe_asking_for_land_cover_without_a_class_table_stops_before_training(demo_dir, capsys):
    out = demo_dir / "recipe_no_table"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(RECIPES / "synthetic_augmented.yaml"), "--device", "cpu", "--override",
              f"data.root={demo_dir / 'data'}", "data.test=[{flight: comballaz-2020-11-06-planned, domain: real}]",
              "evaluate.landcover=true", f"train.out_dir={out}"])
    err = capsys.readouterr().err
    assert exc.value.code != 0 and "comballaz-2020-11-06-planned/semantic_classes.json: no class table" in err
    assert not (out / "last.pt").exists()
    with pytest.raises(SystemExit):
        main(["train", "--config", str(RECIPES / "synthetic_augmented.yaml"),
              "--override", "evaluate.landcover=yes please"])
    assert "evaluate.landcover: expected true or false" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_smoke_with_the_real_renderer(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--smoke", "--device", "cpu"]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "| retrieval (features: 16x24 grey thumbnail) | real |" in text and "| constant pose | real |" in text
    assert "| validation (no augmentation) | synthetic | 10 |" in text
    assert (tmp_path / "data" / "comballaz-demo-train").is_dir()


def test_the_smoke_demo_keeps_a_validation_split():
    # 24 + 8 views were 4 blocks of 10 rows, of which round(0.4) = 0 validation blocks: the smoke report had
    # no validation row, and the run warned that the split was empty. 60 views: 6 blocks, round(5.4) = 5
    # train and round(0.6) = 1 validation.
    cfg = demo.demo_config(smoke=True, device="cpu")
    rows = split_assignment(cfg.corridor_images + cfg.lhs_images, demo.TRAIN_SPLIT["split_fractions"],
                            block=demo.TRAIN_SPLIT["split_block"])
    assert np.bincount(rows, minlength=3).tolist() == [50, 10, 0]


def _resnet18_backbone_parameters(channels, stem=64):
    """ResNet18's convolution and batch-norm parameters counted by hand: a 7x7 stem, then per stage two
    basic blocks (two 3x3 convolutions, each with a batch norm), the first with a 1x1 projection
    shortcut where the stride or the width changes."""
    count, c_in = 3 * stem * 7 * 7 + 2 * stem, stem
    for stage, c in enumerate(channels):
        count += c_in * c * 9 + 2 * c + c * c * 9 + 2 * c
        if stage > 0 or c_in != c:
            count += c_in * c + 2 * c
        count += 2 * (c * c * 9 + 2 * c)
        c_in = c
    return count


def test_the_cpu_presets_resnet18_is_half_width(tmp_path):
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them its 512 -> 1000 classifier: the count
    # above is right for the full width
    assert _resnet18_backbone_parameters([64, 128, 256, 512]) == 11_689_512 - 513_000
    preset = demo.demo_config(device="cpu")
    model = initial_model(preset.train_config(tmp_path, None, tmp_path / "cache.pt"))
    assert model.backbone.num_features == 256
    assert sum(p.numel() for p in model.backbone.parameters()) == _resnet18_backbone_parameters([32, 64, 128, 256])


def test_training_estimate_by_hand():
    # 26 epochs of 57 steps (the CPU preset): 1,482 steps. Timed over steps 5..25 (20 steps) on a clock
    # that reads 10.0 s then 24.5 s: 0.725 s a step, 1.38 steps/s; after step 25, 1,457 steps left:
    # 1,056 s = 18 min; one more run of 1,482 steps: 1,074 s = 18 min.
    from types import SimpleNamespace

    readings = iter([10.0, 24.5])
    estimate = demo.TrainingEstimate("augmented", later_runs=1, clock=lambda: next(readings))
    trainer = SimpleNamespace(config=SimpleNamespace(epochs=26), steps_per_epoch=57)
    for step in range(1, 40):
        estimate({"global_step": step, "trainer": trainer})
    assert estimate.message == ("[demo] training augmented: 1.38 steps/s on this machine, about 18 min left for "
                                "this run and 18 min for the next run")
    short = demo.TrainingEstimate("short", clock=lambda: 0.0)  # fewer steps than warm-up + measure: silent
    for step in range(1, 20):
        short({"global_step": step, "trainer": trainer})
    assert short.message is None


def test_training_estimate_of_shorter_later_runs_by_hand():
    # The CPU preset's unaugmented run (26 epochs of 57 steps) trains first, then the 13 epochs of the
    # fine-tune: at 0.725 s a step (as above), 13 x 57 = 741 steps take 537 s = 9 min.
    from types import SimpleNamespace

    readings = iter([10.0, 24.5])
    estimate = demo.TrainingEstimate("no augmentation", later_runs=1, later_epochs=13, clock=lambda: next(readings))
    trainer = SimpleNamespace(config=SimpleNamespace(epochs=26), steps_per_epoch=57)
    for step in range(1, 40):
        estimate({"global_step": step, "trainer": trainer})
    assert estimate.message.endswith("about 18 min left for this run and 9 min for the next run")
    # when the next run augments and this one does not, its steps are slower: the figure is a lower bound
    readings = iter([10.0, 24.5])
    estimate = demo.TrainingEstimate("no augmentation", later_runs=1, later_epochs=13, later_augmented=True,
                                     clock=lambda: next(readings))
    for step in range(1, 40):
        estimate({"global_step": step, "trainer": trainer})
    assert estimate.message.endswith("about 18 min left for this run and at least 9 min for the next run")


def test_an_augmented_or_relit_run_counts_as_slower(tmp_path):
    cfg = demo.demo_config(device="cpu")
    plain = cfg.train_config(tmp_path / "a", None, tmp_path / "cache.pt")
    augmented = cfg.train_config(tmp_path / "b", "simtoreal", tmp_path / "cache.pt")
    assert not demo._augments(plain) and demo._augments(augmented)
    assert demo._augments(dataclasses.replace(plain, relight=0.8))  # relighting alone changes the images too


def test_the_report_says_how_the_augmented_run_was_trained():
    # the ramp starts at strength / (the augmented run's epochs): 0.75 / 26 from random weights, 0.75 / 13 as
    # the CPU preset's fine-tune; said to two figures (it said 0.0576923)
    scratch = demo_report._runs_line(dataclasses.replace(TINY, epochs=26, finetune_epochs=0))
    assert ("two runs with identical settings and seed" in scratch
            and "ramped linearly from 0.029 in the first" in scratch)
    finetune = demo_report._runs_line(dataclasses.replace(TINY, epochs=26, finetune_epochs=13))
    assert "starts from that run's final weights (`TrainConfig.init_from`) and trains 13 more epochs" in finetune
    assert "ramped linearly from 0.058 in the first" in finetune


@pytest.mark.parametrize("changes, match", [({"finetune_epochs": -1}, "finetune_epochs"),
                                            ({"finetune_epochs": 2.0}, "finetune_epochs"),
                                            ({"finetune_epochs": 2, "side_by_side": True}, "side_by_side=False")])
def test_demo_config_refusals(changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **changes)


def test_demo_into_the_folder_of_another_seed_says_to_use_another_out(tmp_path):
    cfg = demo.demo_config(smoke=True, device="cpu")
    data = tmp_path / "demo" / "data"
    flight = data / demo.TRAIN_FLIGHT
    flight.mkdir(parents=True)
    poses = flight / f"{demo.TRAIN_FLIGHT}_poses.npy"
    np.save(poses, demo.training_poses(dataclasses.replace(cfg, seed=1)))  # `topoloc demo --seed 1` was here
    with pytest.raises(ValueError, match=r"demo: holds a demo of another seed or preset.*use another --out"):
        demo._render(cfg, data)
    assert [p.name for p in flight.iterdir()] == [poses.name]  # refused before rendering anything


def test_demo_into_a_folder_rendered_by_another_version_says_to_use_another_out(tmp_path):
    # an update that changes the renders bumps the format version: the writer's "use another folder" named
    # demo/data, which the demo's user does not choose
    cfg = demo.demo_config(smoke=True, device="cpu")
    data = tmp_path / "demo" / "data"
    data.mkdir(parents=True)
    older = str(int(FORMAT_VERSION) - 1)
    old = {"seed": cfg.seed, "width": cfg.render_size[0], "height": cfg.render_size[1], "version": older}
    (data / "mini_comballaz.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"demo: holds a demo rendered with other settings or by another version of "
                                         r"topoloc \(out_dir .*data: holds a Mini-Comballaz render of format version "
                                         rf"'{older}', asked for '{FORMAT_VERSION}'.*\); use another --out folder, or "
                                         r"remove that one$"):
        demo._render(cfg, data)
    assert [p.name for p in data.iterdir()] == ["mini_comballaz.json"]


def test_demo_into_the_folder_of_other_test_counts_says_to_use_another_out(tmp_path):
    cfg = demo.demo_config(smoke=True, device="cpu")
    data = tmp_path / "demo" / "data"
    flight = data / demo.PLANNED_FLIGHT  # 3 of its 447 rows: 0, 223, 446; the smoke demo asks for 6, not 223
    render_flights(data, f"{demo.PLANNED_FLIGHT}:3", size=cfg.render_size, seed=cfg.seed, progress=False)
    before = sorted(p.name for p in flight.iterdir())
    with pytest.raises(ValueError, match=rf"demo: holds a demo of another seed or preset \('{flight}' holds other "
                                         r"views than this run's\); use another --out"):
        demo._render(cfg, data)
    assert sorted(p.name for p in flight.iterdir()) == before


def test_the_report_splits_the_planned_flights_errors_by_land_cover(tmp_path):
    from types import SimpleNamespace

    from topoloc.data.topo import TopoFlight
    from topoloc.evaluation import PoseEvaluation
    from topoloc.geodesy import LocalFrame

    _write_flight(tmp_path, demo.PLANNED_FLIGHT, 8, (10, 10), seed=0)
    frame = LocalFrame.named("comballaz")
    twin = TopoFlight(tmp_path, demo.PLANNED_FLIGHT, domain="synthetic", frame=frame, load_semantics=True)
    deciduous = [50, 0, 25, 100, 75, 10, 40, 60]  # pixels of 100 per view; the rest meadow
    for path, n in zip(twin.semantics_paths, deciduous):
        sem = np.full(100, 1, dtype=np.uint8)  # meadow
        sem[:n] = 3  # forest_deciduous
        np.save(path, sem.reshape(10, 10))
    gt = twin.poses()
    yaw = np.deg2rad(np.arange(1.0, 9.0))  # image k: k + 1 deg about the camera's axis, 10 (k + 1) m east
    turn = np.tile(np.eye(4), (8, 1, 1))
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1] = np.cos(yaw), -np.sin(yaw), np.sin(yaw), np.cos(yaw)
    real = gt @ turn
    real[:, 0, 3] += 10.0 * np.arange(1, 9)
    synthetic = gt.copy()
    synthetic[:, 1, 3] += 5.0
    order = [3, 0, 6, 1, 7, 2, 5, 4]  # the evaluation's rows need not be in the pose file's order
    ev = PoseEvaluation("augmented (SimToReal)", names=[f"img{i}" for i in order * 2], flights=demo.PLANNED_FLIGHT,
                        domains=["real"] * 8 + ["synthetic"] * 8,
                        pred_c2w=np.concatenate([real[order], synthetic[order]]),
                        gt_c2w=np.concatenate([gt[order], gt[order]]), frame=frame)
    text = demo._landcover_section(tmp_path, frame, {"augmented (SimToReal)": SimpleNamespace(model=ev)})
    # sorted by deciduous share: images 1, 5 | 2, 6 | 0, 7 | 4, 3 (errors 10 (k + 1) m, k + 1 deg)
    assert "| forest_deciduous | share in view | 0-10 % | 25-40 % | 50-60 % | 75-100 % |" in text
    assert "| | real | 40 m / 4.0 deg | 50 m / 5.0 deg | 45 m / 4.5 deg | 45 m / 4.5 deg |" in text
    assert "| | synthetic | 5 m / 0.0 deg | 5 m / 0.0 deg | 5 m / 0.0 deg | 5 m / 0.0 deg |" in text
    # meadow is the rest of each view: the same quarters, the other way round
    assert "| meadow | share in view | 0-25 % | 40-50 % | 60-75 % | 90-100 % |" in text
    assert "| | real | 45 m / 4.5 deg | 45 m / 4.5 deg | 50 m / 5.0 deg | 40 m / 4.0 deg |" in text
    assert "forest_evergreen" not in text and "building" not in text  # under 5 % of the views
    # fewer than four test images: said, not computed
    few = PoseEvaluation("augmented (SimToReal)", names=["a", "b", "c"], flights=demo.PLANNED_FLIGHT, domains="real",
                         pred_c2w=real[:3], gt_c2w=gt[:3], frame=frame)
    assert "not computed" in demo._landcover_section(tmp_path, frame, {"x": SimpleNamespace(model=few)})


def test_the_cpu_presets_two_runs_train_as_documented(tmp_path):
    """The README and `DemoConfig`'s docstring: on a CPU the unaugmented run trains 26 epochs from random
    weights; the augmented run starts from its final weights and trains 13 (half), augmenting every image of
    each batch, relit with probability 0.8, SimToReal ramped linearly over those 13 epochs to 0.75."""
    cfg = demo.demo_config(device="cpu")
    assert (cfg.preset, cfg.epochs, cfg.finetune_epochs, cfg.augment_fraction) == ("cpu", 26, 13, 1.0)
    assert (cfg.augment_strength, cfg.augment_ramp, cfg.relight, cfg.batch_size) == (0.75, True, 0.8, 32)
    plain = cfg.train_config(tmp_path / "plain", None, tmp_path / "cache.pt")
    assert (plain.epochs, plain.augment, plain.augment_ramp_epochs, plain.relight) == (26, None, 0, 0.0)
    assert plain.init_from is None
    augmented = cfg.train_config(tmp_path / "aug", "simtoreal", tmp_path / "cache.pt",
                                 init_from=tmp_path / "plain" / "last.pt")
    assert (augmented.epochs, augmented.augment_ramp_epochs) == (13, 13)
    assert (augmented.augment, augmented.augment_strength, augmented.augment_fraction, augmented.relight) == (
        "simtoreal", 0.75, 1.0, 0.8)
    assert augmented.init_from == str((tmp_path / "plain" / "last.pt").resolve())
    # without the fine-tune both runs train the preset's 26 epochs, the ramp over all of them
    scratch = dataclasses.replace(cfg, finetune_epochs=0).train_config(tmp_path / "s", "simtoreal",
                                                                        tmp_path / "cache.pt")
    assert (scratch.epochs, scratch.augment_ramp_epochs) == (26, 26)
    # without the ramp, no ramp epochs
    flat = dataclasses.replace(cfg, augment_ramp=False).train_config(tmp_path / "f", "simtoreal", tmp_path / "c.pt")
    assert flat.augment_ramp_epochs == 0


def test_verify_demo_takes_the_demos_settings_from_its_record_and_refuses_others(demo_dir):
    # verify_demo built its settings from --smoke, --seed and --device alone: after a GPU demo, the README's
    # `verify_demo.py --demo demo` scored the ResNet34 at the CPU preset's 64x96 px, and a wrong --seed rendered
    # another world; both gave figures without a word
    from topoloc.experiments.verification import demo_settings, verify_demo

    assert demo_settings(demo_dir) == TINY  # what the fixture ran
    assert demo_settings(demo_dir, smoke=False, seed=0, device="cpu") == TINY  # the record's own values pass
    with pytest.raises(ValueError, match=r"^seed: the demo in .* ran with seed 0 \(.*demo.json\), not 1; leave out"):
        demo_settings(demo_dir, seed=1)
    with pytest.raises(ValueError, match=r"^smoke: the demo in .* ran the 'tiny' preset"):
        demo_settings(demo_dir, smoke=True)
    with pytest.raises(ValueError, match=r"trained at 32x48 px \(H x W\), but the demo settings used here give "
                                         r"64x96 px \(the 'tiny' preset\): not this demo's settings"):
        verify_demo(demo_dir, config=dataclasses.replace(TINY, image_size=(64, 96)), k=2, top=3)
    with pytest.raises(ValueError, match=r"^flights: expected at least one test flight of the demo"):
        verify_demo(demo_dir, flights=(), k=2, top=3)
    with pytest.raises(ValueError, match=r"^k: expected a positive number of retrieved hypotheses per photo, got 0"):
        verify_demo(demo_dir, k=0, top=1)


def test_verify_demo_refuses_a_json_that_would_replace_a_demo_file(demo_dir, monkeypatch, capsys):
    # `--json demo/report.md` (or demo/demo.json) was accepted, and the rows would have replaced the demo's file
    import runpy
    import sys

    script = str(RECIPES / "verify_demo.py")
    for target, said in ((demo_dir / "report.md", "expected a file name ending in .json"),
                         (demo_dir / "demo.json", "a file of the demo in --demo")):
        before = target.read_bytes()
        monkeypatch.setattr(sys, "argv", [script, "--demo", str(demo_dir), "--json", str(target)])
        monkeypatch.setattr(sys, "path", list(sys.path))
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(script, run_name="__main__")
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"verify_demo.py: error: --json {str(target)!r}: {said}" in err, err
        assert target.read_bytes() == before


def test_verify_demo_reports_the_demos_own_brackets_beside_the_verified_rows(demo_dir):
    """recipes/verify_demo.py's logic on the tiny demo: its model, constant-pose and retrieval rows are the
    figures the demo's own evaluation wrote to summary.json."""
    from topoloc.experiments.verification import verification_table, verify_demo

    rows = verify_demo(demo_dir, config=TINY, k=2, top=3, log=lambda line: None)
    summary = json.loads((demo_dir / "summary.json").read_text())["augmented (SimToReal)"]["methods"]
    got = {(r["domain"], r["method"]): (r["t_m"], r["r_deg"]) for r in rows}
    for domain in ("synthetic", "real"):
        for ours, theirs in (("model", "augmented (SimToReal)"), ("constant pose", "constant pose"),
                             ("retrieval (trained model)", "retrieval (features: trained model)"),
                             ("coverage ceiling", "coverage ceiling")):
            want = summary[theirs]["by_flight"][f"{domain}/{demo.PLANNED_FLIGHT}"]
            want = (want["median_m"], want["median_deg"])
            assert got[(domain, ours)] == pytest.approx(want, rel=1e-6), (domain, ours)
        for label in ("model", "model + AdaBN"):
            assert (domain, f"{label} + verification") in got and (domain, f"{label}: best of 3 hypotheses") in got
            assert (domain, f"{label} + verification, mean of the best 3") in got
    table = verification_table(rows)
    assert table.splitlines()[0] == (f"| method | {demo.PLANNED_FLIGHT} synthetic | {demo.PLANNED_FLIGHT} real |")
    with pytest.raises(ValueError, match="run: expected one of"):
        verify_demo(demo_dir, config=TINY, run="other")
    with pytest.raises(ValueError, match="flights: .* are not test flights of the demo"):
        verify_demo(demo_dir, config=TINY, flights=("comballaz-LHS",))
    with pytest.raises(ValueError, match=r"top: expected an integer from 1 to the k \+ 1 = 3 hypotheses"):
        verify_demo(demo_dir, config=TINY, k=2, top=5)
    # top not given with k = 2: the mean of all 3 hypotheses (the default 5 was refused, as if asked for)
    rows = verify_demo(demo_dir, config=TINY, k=2, log=lambda line: None)
    assert ("real", "model + verification, mean of the best 3") in {(r["domain"], r["method"]) for r in rows}
    with pytest.raises(ValueError, match="temperature: expected a positive finite number"):
        verify_demo(demo_dir, config=TINY, temperature=0)
