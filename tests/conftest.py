"""Shared pytest configuration: the `slow` and `gpu` markers, and the threads of a parallel run's workers."""

import os

import pytest
import torch


def pytest_configure(config):
    # A worker of pytest-xdist (`scripts/test.sh` runs one per core, up to 4) takes its share of the cores: every
    # worker at torch's default (all cores) would oversubscribe them. Set before any test runs, and in the
    # environment too, so that the processes a test starts take the same share.
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        share = max(1, cores // int(workers))
        os.environ.setdefault("OMP_NUM_THREADS", str(share))
        torch.set_num_threads(share)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--runslow")
    has_cuda = torch.cuda.is_available()
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run it")
    skip_gpu = pytest.mark.skip(reason="gpu: no CUDA device here")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def presets_dir():
    """The vendored real TOPO flight poses."""
    from topoloc.data.preset import PRESETS_DIR

    return PRESETS_DIR
