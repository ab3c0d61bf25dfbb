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
])
def test_a_count_of_zero_is_refused_by_its_flag(script, args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), *args])
    monkeypatch.setattr(sys, "path", list(sys.path))  # a script may put the repository first
    with pytest.raises(SystemExit) as exc:  # any other exception is the traceback the test refuses
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f"{script}: error: {expected}"), err[-500:]
