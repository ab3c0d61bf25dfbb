"""The test suite runs without the optional extras (`pip install -e ".[dev]"` alone).

`--doctest-modules` imports `augment/albumentations.py`, which refuses to import without albumentations:
before the root `conftest.py` left it out, that one collection error stopped the whole run. The check runs
pytest in a new interpreter in which albumentations cannot be imported (`sys.modules[name] = None`).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_collection_without_albumentations_has_no_error():
    code = ("import sys, pytest\n"
            "sys.modules['albumentations'] = None\n"
            "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'augment', "
            "'tests/augment/test_augment_albumentations.py']))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "augment/albumentations.py" not in run.stdout
    assert "could not import 'albumentations'" in run.stdout  # the adapters' tests skip themselves
