"""Every benchmark refuses a count it cannot time in one line naming the flag, before any work.

Before, `bench_augment --batch 0` printed figures for empty batches, and the others ended in a traceback
(`min() arg is an empty sequence`, `set_num_threads expects a positive integer`, `UnboundLocalError`, ...).

Each script runs in this process (`runpy`, as ``python script.py``): a subprocess per case spent about 6 s
importing torch, a minute of the suite.
"""

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script, args, expected", [
    ("bench_augment.py", ("--batch", "0"), "argument --batch: expected a whole number >= 1, got '0'"),
    ("bench_data.py", ("--repeat", "0"), "argument --repeat: expected a whole number >= 1, got '0'"),
    ("bench_inference.py", ("--iters", "0"), "argument --iters: expected a whole number >= 1, got '0'"),
    ("bench_inference.py", ("--cases", "9"), "argument --cases: invalid choice: 9"),
    ("bench_models.py", ("--batch", "0"), "argument --batch: expected a whole number >= 1, got '0'"),
    ("bench_models.py", ("--models", "nope"), "--models: unknown ['nope']; available: "),
    ("bench_predict.py", ("--threads", "0"), "argument --threads: expected a whole number >= 1, got '0'"),
    ("bench_render.py", ("--images", "0"), "argument --images: expected a whole number >= 1, got '0'"),
    ("bench_render.py", ("--baseline-images", "-1"), "argument --baseline-images: expected a whole number >= 0, "
                                                    "got '-1'"),
    ("bench_train.py", ("--steps", "0"), "argument --steps: expected a whole number >= 1, got '0'"),
    ("bench_width.py", ("--threads", "0"), "argument --threads: expected a whole number >= 1, got '0'"),
    ("bench_scene_head.py", ("--steps", "0"), "argument --steps: expected a whole number >= 1, got '0'"),
    ("bench_scene_head.py", ("--weight", "0"), "argument --weight: expected a number > 0, got '0'"),
    ("bench_side_by_side.py", ("--steps", "0"), "argument --steps: expected a whole number >= 1, got '0'"),
    ("bench_side_by_side.py", ("--width-factor", "0.7"), "argument --width-factor: invalid choice: 0.7"),
    # a bad device was torch's traceback ("Found no NVIDIA driver", "Invalid device string"), a bad size the
    # parser's ValueError traceback, and an output that is a folder an IsADirectoryError after the whole run
    ("bench_augment.py", ("--device", "gpu"), "argument --device: expected 'auto', 'cpu', 'cuda' or a torch.device, "
                                              "got 'gpu'"),
    ("bench_render.py", ("--device", "gpu"), "argument --device: expected 'auto', 'cpu', 'cuda'"),
    ("bench_models.py", ("--device", "gpu"), "argument --device: expected 'auto', 'cpu', 'cuda'"),
    ("bench_render.py", ("--size", "96"), "argument --size: size: expected 'WxH' text such as '360x240'"),
    ("bench_augment.py", ("--markdown", "."), "argument --markdown: expected a file name, '.' is a folder"),
    ("bench_train.py", ("--json", "."), "argument --json: expected a file name, '.' is a folder"),
    # NaN or infinity timed forever; a model name, a strength or more images than the pose file holds failed in a
    # traceback after the original path had been timed, a size the ViTs cannot patch after the baseline
    ("bench_augment.py", ("--albu-seconds", "nan"), "argument --albu-seconds: expected a finite number of seconds "
                                                    "above 0, got 'nan'"),
    ("bench_augment.py", ("--albu-seconds", "-1"), "argument --albu-seconds: expected a finite number of seconds"),
    ("bench_train.py", ("--model", "nope"), "argument --model: expected one of atloc_convnext_tiny, "),
    ("bench_train.py", ("--strength", "2"), "argument --strength: expected a number in [0, 1], got 2.0"),
    ("bench_train.py", ("--strength", "nan"), "argument --strength: expected a number in [0, 1], got nan"),
    ("bench_train.py", ("--batch", "3000"), "arguments --batch, --steps, --warmup: 3000 x (30 + 3) images is more "
                                            "than the 30000 poses of comballaz-LHS"),
    ("bench_models.py", ("--size", "40"), "argument --size: expected a multiple of 16 (the ViTs' patch size), got 40"),
    ("bench_data.py", ("--rows", "30005"), "argument --rows: expected at most the 30000 poses of comballaz-LHS"),
])
def test_a_bad_argument_is_refused_by_its_flag(script, args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), *args])
    monkeypatch.setattr(sys, "path", list(sys.path))  # a script may put the repository first
    with pytest.raises(SystemExit) as exc:  # any other exception is the traceback the test refuses
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f"{script}: error: {expected}"), err[-500:]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is here: --device cuda is valid")
@pytest.mark.parametrize("script", ["bench_augment.py", "bench_render.py", "bench_models.py"])
def test_cuda_where_there_is_none_is_refused_by_the_flag(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), "--device", "cuda"])
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.strip().splitlines()[-1] == (f"{script}: error: argument --device: 'cuda' asked for but no CUDA "
                                            "device is available"), err[-500:]
