"""`topoloc train | evaluate | saliency | demo`: --help on every flag, argument errors, and a run."""

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from topoloc.cli import build_parser, main

COMMANDS = ("train", "evaluate", "saliency", "demo")


def _subparser(name):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_for_every_subcommand_and_flag(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: topoloc {name}" in capsys.readouterr().out
    for action in _subparser(name)._actions:
        assert action.help, f"topoloc {name}: {action.option_strings} has no help text"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"topoloc {importlib.metadata.version('topoloc')}"


@pytest.mark.parametrize("module", ["topoloc", "topoloc.cli"])
def test_python_dash_m_runs_the_console_script(module):
    # `python -m topoloc` is what a user tries first; it failed with "No module named topoloc.__main__"
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"topoloc {importlib.metadata.version('topoloc')}"
    usage = subprocess.run([sys.executable, "-m", module, "poses", "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: topoloc poses")


def test_parsed_arguments():
    args = build_parser().parse_args(["evaluate", "--checkpoint", "c.pt", "--data", "d", "--flights", "a:real", "b",
                                      "--train-flights", "lhs:synthetic:train", "--out", "o", "--no-retrieval"])
    assert args.flights == ["a:real", "b"] and args.train_flights == ["lhs:synthetic:train"]
    assert args.no_retrieval and args.device == "auto" and args.batch_size == 64
    args = build_parser().parse_args(["train", "--config", "r.yaml", "--override", "train.epochs=1", "data.root=x",
                                      "--resume"])
    assert args.override == ["train.epochs=1", "data.root=x"] and args.resume
    args = build_parser().parse_args(["demo", "--out", "d", "--smoke", "--device", "cpu", "--seed", "3"])
    assert (args.out, args.smoke, args.device, args.seed) == ("d", True, "cpu", 3)


def test_a_repeated_list_flag_adds_to_the_first():
    # argparse's default action kept the last occurrence alone: `--override data.root=X --override train.epochs=2`
    # dropped data.root without a word, and `--flights A --flights B` evaluated B alone
    args = build_parser().parse_args(["train", "--config", "r.yaml", "--override", "data.root=x",
                                      "--override", "train.epochs=2", "train.lr=1e-3"])
    assert args.override == ["data.root=x", "train.epochs=2", "train.lr=1e-3"]
    assert build_parser().parse_args(["train", "--config", "r.yaml"]).override == []
    args = build_parser().parse_args(["evaluate", "--checkpoint", "c.pt", "--data", "d", "--flights", "a:real",
                                      "--flights", "a:synthetic", "--train-flights", "t1", "--train-flights", "t2",
                                      "--val-flights", "v1", "--val-flights", "v2", "--retrieval", "model",
                                      "--retrieval", "thumbnail", "--out", "o"])
    assert args.flights == ["a:real", "a:synthetic"] and args.train_flights == ["t1", "t2"]
    assert args.val_flights == ["v1", "v2"] and args.retrieval == ["model", "thumbnail"]
    args = build_parser().parse_args(["localise", "--checkpoint", "c.pt", "p.jpg", "--out", "t1.csv", "--no-progress",
                                      "--out", "t2.kml"])
    assert args.out == ["t1.csv", "t2.kml"] and args.photos == ["p.jpg"]


def test_frame_takes_a_name_or_an_origin_in_degrees_and_metres(capsys):
    # the CLI took names only, while its refusal listed "{lat_deg, lon_deg, h_m} or (lat, lon, h)" as accepted
    from topoloc.geodesy import as_frame

    for command in (["evaluate", "--checkpoint", "c.pt", "--data", "d", "--flights", "a", "--out", "o"],
                    ["localise", "--checkpoint", "c.pt", "p.jpg", "--out", "o.csv"],
                    ["export", "--checkpoint", "c.pt", "--out", "m.onnx"],
                    ["saliency", "--checkpoint", "c.pt", "--data", "d", "--flights", "a", "--out", "o"]):
        assert build_parser().parse_args([*command, "--frame", "epfl"]).frame == "epfl"
        frame = build_parser().parse_args([*command, "--frame", "46.3705,7.065,1410"]).frame
        assert frame == (46.3705, 7.065, 1410.0)
        assert as_frame(frame) == as_frame("comballaz")  # TOPO's Comballaz origin, given by its numbers
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--frame", "46.3,7.06"])
        assert "argument --frame: expected a frame name (comballaz, epfl) or LAT,LON,H" in capsys.readouterr().err


def test_required_flags_and_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--checkpoint", "x.pt"])
    assert exc.value.code == 2
    assert "--data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(tmp_path),
              "--flights", "comballaz-LHS", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "missing.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2
    assert "nope.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", "c.pt", "--data", "d", "--flights", "a:winter", "--out", "o"])
    assert "domain" in capsys.readouterr().err


@pytest.mark.parametrize("command, args, want", [
    ("demo", ["--out", "{file}"], "expected a folder, '{file}' is a file"),
    ("render", ["--flights", "comballaz-LHS:2", "--out", "{file}"], "expected a folder, '{file}' is a file"),
    ("evaluate", ["--checkpoint", "c.pt", "--data", "d", "--flights", "f", "--out", "{file}"],
     "expected a folder, '{file}' is a file"),
    ("saliency", ["--checkpoint", "c.pt", "--data", "d", "--flights", "f", "--out", "{file}/sub"],
     "'{file}/sub': '{file}' is a file, not a folder"),
    ("export", ["--checkpoint", "c.pt", "--out", "{file}/m.onnx"], "'{file}/m.onnx': '{file}' is a file, not a folder"),
    ("export", ["--checkpoint", "c.pt", "--out", "{folder}"], "expected a file name, '{folder}' is a folder"),
    ("export", ["--checkpoint", "c.pt", "--out", "{folder}/new/"], "expected a file name, '{folder}/new/' is a folder"),
    # a folder after --out is most often photos given after it: said so (it was "expected a file name")
    ("localise", ["--checkpoint", "c.pt", "x.jpg", "--out", "a.csv", "{folder}"],
     "'{folder}' is a folder, not an output file (.csv, .geojson, .kml); photos and photo folders go before --out"),
    ("localise", ["--checkpoint", "c.pt", "--out", "a.csv", "{folder}"],
     "'{folder}' is a folder, not an output file (.csv, .geojson, .kml); photos and photo folders go before --out"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, command, args, want):
    (tmp_path / "taken.npy").write_bytes(b"")
    names = {"file": str(tmp_path / "taken.npy"), "folder": str(tmp_path)}
    with pytest.raises(SystemExit) as exc:
        main([command, *(a.format(**names) for a in args)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --out: {want.format(**names)}" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, flag", [
    (["saliency", "--checkpoint", "c.pt", "--data", "d", "--flights", "f", "--out", "o", "--num-images", "0"],
     "--num-images"),
    (["evaluate", "--checkpoint", "c.pt", "--data", "d", "--flights", "f", "--out", "o", "--batch-size", "-4"],
     "--batch-size"),
    (["localise", "--checkpoint", "c.pt", "x.jpg", "--out", "a.csv", "--batch-size", "two"], "--batch-size"),
])
def test_a_count_below_one_is_refused_by_its_flag(capsys, argv, flag):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert f"argument {flag}: expected a whole number >= 1, got '{argv[-1]}'" in capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch):
    """The library calls of demo, render and saliency fail the test: a flag that should be refused is not (a
    real demo or render would run for minutes)."""
    import topoloc.experiments.demo as demo_module
    import topoloc.experiments.recipe as recipe_module
    import topoloc.procedural as procedural

    def started(*args, **kwargs):
        raise AssertionError("the work started: the arguments were not refused")

    monkeypatch.setattr(demo_module, "run_demo", started)
    monkeypatch.setattr(procedural, "render_flights", started)
    monkeypatch.setattr(recipe_module, "explain_checkpoint", started)


@pytest.mark.parametrize("argv", [["demo", "--out", "{tmp}", "--seed", "-1"], ["demo", "--out", "{tmp}", "--seed", "x"],
                                  ["render", "--out", "{tmp}", "--seed", "1.5"]])
def test_a_seed_below_0_or_not_whole_is_refused_by_its_flag(tmp_path, capsys, no_work, argv):
    with pytest.raises(SystemExit) as exc:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exc.value.code == 2
    assert f"argument --seed: expected a whole number >= 0, got '{argv[-1]}'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    ([], "the following arguments are required: COMMAND"),
    (["demo"], "the following arguments are required: --out"),
    (["saliency", "--data", "{tmp}", "--flights", "f", "--out", "{tmp}/o"],
     "the following arguments are required: --checkpoint"),
    (["saliency", "--checkpoint", "c.pt", "--data", "{tmp}", "--flights", "--out", "{tmp}/o"],
     "argument --flights: expected at least one argument"),
])
def test_a_missing_subcommand_flag_or_flight_is_refused_before_any_work(tmp_path, capsys, no_work, argv, said):
    with pytest.raises(SystemExit) as exc:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


@pytest.mark.parametrize("name, argv", [
    ("evaluate", ["--checkpoint", "c.pt", "--data", "d", "--flights", "f", "--out", "o"]),
    ("saliency", ["--checkpoint", "c.pt", "--data", "d", "--flights", "f", "--out", "o"]),
    ("demo", ["--out", "o"]),
    ("localise", ["--checkpoint", "c.pt", "p.jpg", "--out", "a.csv"]),
])
def test_device_is_auto_cpu_or_cuda_as_its_help_says(tmp_path, monkeypatch, capsys, name, argv):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # 'cuda' is parsed where there is one
    assert [build_parser().parse_args([name, *argv, *device]).device for device in ([], ["--device", "cpu"],
            ["--device", "cuda"])] == ["auto", "cpu", "cuda"]
    with pytest.raises(SystemExit):
        build_parser().parse_args([name, *argv, "--device", "gpu"])
    assert "argument --device: expected 'auto', 'cpu', 'cuda' or a torch.device, got 'gpu'" in capsys.readouterr().err


def test_demo_flags_reach_run_demo_with_the_defaults_of_its_help(tmp_path, monkeypatch, capsys):
    import topoloc.experiments.demo as demo_module

    calls = []

    def fake(out, **kw):
        calls.append((out, kw))
        return Path(out) / "report.md"

    monkeypatch.setattr(demo_module, "run_demo", fake)
    assert main(["demo", "--out", str(tmp_path / "a")]) == 0
    assert main(["demo", "--out", str(tmp_path / "b"), "--smoke", "--device", "cpu", "--seed", "3"]) == 0
    assert main(["demo", "--out", str(tmp_path / "c"), "--seed", "0"]) == 0  # 0 is a seed, the default one
    assert calls == [(str(tmp_path / "a"), {"smoke": False, "device": "auto", "seed": 0}),
                     (str(tmp_path / "b"), {"smoke": True, "device": "cpu", "seed": 3}),
                     (str(tmp_path / "c"), {"smoke": False, "device": "auto", "seed": 0})]
    assert capsys.readouterr().out.splitlines() == [f"report: {tmp_path / d / 'report.md'}" for d in "abc"]


def test_saliency_flags_reach_explain_checkpoint_with_the_defaults_of_its_help(tmp_path, monkeypatch, capsys):
    import topoloc.experiments.recipe as recipe_module

    calls = []

    def fake(checkpoint, data, flights, out, **kw):
        calls.append((checkpoint, data, flights, out, kw))
        return Path(out) / "saliency.md"

    monkeypatch.setattr(recipe_module, "explain_checkpoint", fake)
    common = ["saliency", "--checkpoint", "last.pt", "--data", str(tmp_path)]
    assert main([*common, "--flights", "a:real", "--out", str(tmp_path / "s")]) == 0
    assert main([*common, "--flights", "a:real", "b", "--out", str(tmp_path / "t"), "--num-images", "1",
                 "--share-images", "5", "--frame", "epfl", "--device", "cpu"]) == 0
    assert calls == [
        ("last.pt", str(tmp_path), ["a:real"], str(tmp_path / "s"),
         {"figure_images": 3, "share_images": 16, "frame": None, "device": "auto"}),
        ("last.pt", str(tmp_path), ["a:real", "b"], str(tmp_path / "t"),
         {"figure_images": 1, "share_images": 5, "frame": "epfl", "device": "cpu"}),
    ]
    assert capsys.readouterr().out.splitlines() == [f"saliency: {tmp_path / d / 'saliency.md'}" for d in "st"]


def test_one_line_keeps_the_first_line_and_the_kind_of_a_value_or_file_error():
    from topoloc.cli._common import one_line

    long = one_line(ValueError("could not read 'c.pt' as a torch checkpoint\n  File ...\n  UnpicklingError"))
    assert (type(long), str(long)) == (ValueError, "could not read 'c.pt' as a torch checkpoint")
    missing = one_line(FileNotFoundError("checkpoint 'c.pt': no such file\n(see --checkpoint)"))
    assert (type(missing), str(missing)) == (FileNotFoundError, "checkpoint 'c.pt': no such file")
    other = TypeError("a\nb")
    assert one_line(other) is other  # not the CLI's to shorten
    assert str(one_line(ValueError("  \n"))) == "ValueError"


def test_print_warnings_prints_each_on_stderr_but_the_skipped(capsys):
    import warnings

    from topoloc.cli._common import print_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("localise: skipped 'a.jpg': no such file")
        warnings.warn("frame: the checkpoint has none")
    print_warnings(caught, skip_prefix="localise: skipped")
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "warning: frame: the checkpoint has none\n")
    print_warnings(caught)
    assert capsys.readouterr().err.count("warning: ") == 2


@pytest.mark.parametrize("args, flag", [
    # each led with the library's name of the value (device:, TrainConfig.device:, output, recipe, the file)
    (["render", "--out", "{tmp}/r", "--flights", "comballaz-2020-11-06-planned:2", "--device", "cuda"],
     "argument --device: 'cuda' asked for but no CUDA device is available"),
    (["train", "--config", "recipes/synthetic_only.yaml", "--device", "cuda"],
     "argument --device: 'cuda' asked for but no CUDA device is available"),
    (["localise", "--checkpoint", "{tmp}/nope.pt", "{tmp}", "--out", "{tmp}/o.txt"],
     "--out '{tmp}/o.txt': unknown suffix '.txt'"),
    (["poses", "corridor", "--flight", "{tmp}/nope.npy", "--count", "3", "--out", "{tmp}/x.npy"],
     "--flight: {tmp}/nope.npy: pose file not found"),
    (["render", "--poses", "{tmp}/nope.npy", "--name", "comballaz-x", "--out", "{tmp}/r"],
     "--poses: {tmp}/nope.npy: pose file not found"),
])
def test_errors_lead_with_the_flag_given(tmp_path, capsys, monkeypatch, args, flag):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on this CPU machine, on any machine
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    with pytest.raises(SystemExit) as exc:
        main([a.format(tmp=tmp_path) for a in args])
    assert exc.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.split(": error: ", 1)[1].startswith(flag.format(tmp=tmp_path)), line


def test_a_full_disk_under_torch_s_error_is_one_line(monkeypatch, capsys):
    # torch's zip writer turns the OSError of a full disk into "RuntimeError: [enforce fail at
    # inline_container.cc:672] . unexpected pos": the CLI printed its traceback, not a message
    import errno

    import topoloc.cli.demo as demo_cli

    def full_disk(args):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0") from err

    monkeypatch.setattr(demo_cli, "_run", full_disk)
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", "d", "--smoke", "--device", "cpu"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "topoloc demo: error: no space left on device; free some space and run the same command again (a training "
        "goes on from its last checkpoint)")
