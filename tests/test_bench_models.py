"""`benchmarks/bench_models.py` runs end to end on a tiny input (the speed is measured by the script, not here)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_models.py"


def test_bench_models_trains_a_step_of_the_default_rotation_code():
    run = subprocess.run([sys.executable, str(SCRIPT), "--models", "atloc_resnet18", "--batch", "2", "--size", "32",
                          "--iters", "1", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    row = next(line for line in run.stdout.splitlines() if line.startswith("atloc_resnet18"))
    assert len(row.split()) == 5 and all(float(v) > 0 for v in row.split()[1:5])  # images / CPU-s and the ratios
    # The baseline of the ratios is timed though --models left it out (the ratios used to be dropped silently).
    assert "atloc_resnet34 added: the ratios are relative to it" in run.stdout
    rows = [line.split() for line in run.stdout.splitlines() if "added" not in line]
    base = " ".join(next(row for row in rows if row[:1] == ["atloc_resnet34"]))
    assert base.split()[3:5] == ["1.00", "1.00"]
