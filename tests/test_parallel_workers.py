"""A worker of a parallel run (`scripts/test.sh`, pytest-xdist) takes its share of the cores, not all of them;
`TEST_WORKERS` is checked before anything is installed."""

import os
import subprocess
from pathlib import Path

import pytest
import torch


def test_a_worker_runs_on_its_share_of_the_cores():
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        pytest.skip("not a pytest-xdist worker (run through scripts/test.sh, or with -n 2)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # e.g. 2 workers on the 2-core CI machine: one thread each; 4 workers on 16 cores: 4 each
    assert torch.get_num_threads() == max(1, cores // int(workers))


def test_test_sh_refuses_a_worker_count_that_is_not_a_number():
    script = Path(__file__).resolve().parents[1] / "scripts" / "test.sh"
    done = subprocess.run(["bash", str(script)], env={**os.environ, "TEST_WORKERS": "two"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "TEST_WORKERS must be a whole number" in done.stderr and "'two'" in done.stderr
