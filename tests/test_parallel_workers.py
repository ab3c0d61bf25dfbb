"""A worker of a parallel run (`scripts/test.sh`, pytest-xdist) takes its share of the cores, not all of them."""

import os

import pytest
import torch


def test_a_worker_runs_on_its_share_of_the_cores():
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        pytest.skip("not a pytest-xdist worker (run through scripts/test.sh, or with -n 2)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # e.g. 2 workers on the 2-core CI machine: one thread each; 4 workers on 16 cores: 4 each
    assert torch.get_num_threads() == max(1, cores // int(workers))
