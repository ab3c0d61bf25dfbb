"""`topoloc train | evaluate | saliency | demo`: --help on every flag, argument errors, and a run."""

import argparse
import importlib.metadata
import subprocess
import sys

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
    ("localise", ["--checkpoint", "c.pt", "x.jpg", "--out", "a.csv", "{folder}"],
     "expected a file name, '{folder}' is a folder"),
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
