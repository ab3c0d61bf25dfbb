#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh  # .venv/ with Python >= 3.11 (PYTHON=... picks the interpreter)
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,albumentations,export]"
exec .venv/bin/python -m pytest "$@"
