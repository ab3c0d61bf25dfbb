#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev,albumentations,export]"
exec .venv/bin/python -m pytest "$@"
