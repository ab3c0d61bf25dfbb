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
    assert len(row.split()) >= 3 and all(float(v) > 0 for v in row.split()[1:3])  # images / CPU-s, infer and train
