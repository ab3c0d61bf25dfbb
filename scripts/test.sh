#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the test suite. Extra arguments go to pytest.
# The files run in parallel, one pytest-xdist worker per core usable here, up to 4 (TEST_WORKERS=N sets the number;
# TEST_WORKERS=0 runs them in this one process, as `-n 0` among the arguments does too).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${TEST_WORKERS:-}" ] && ! [[ "$TEST_WORKERS" =~ ^[0-9]+$ ]]; then
    echo "test.sh: TEST_WORKERS must be a whole number of pytest-xdist workers (0: none), got '$TEST_WORKERS'" >&2
    exit 2
fi
source scripts/_venv.sh  # .venv/ with Python >= 3.11 (PYTHON=... picks the interpreter)
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,albumentations,export]"
cores=$(.venv/bin/python -c "import os; print(len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)")
workers="${TEST_WORKERS:-$((cores < 2 ? 0 : cores < 4 ? cores : 4))}"  # one core: no workers, the tests in this process
# --dist loadfile: a file's tests stay in one worker, so that a file's shared fixtures (a render, a trained
# run) are made once
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
