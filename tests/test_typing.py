"""The `augment` package, which ships ``py.typed``, type-checks: mypy with the settings in pyproject.toml
([tool.mypy])."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mypy", reason="mypy comes with the dev extra: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A fresh mypy cache for this file's runs: nothing written into the working copy, nothing stale read."""
    return tmp_path_factory.mktemp("mypy_cache")


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(cache), *args], capture_output=True, text=True, cwd=ROOT)


def test_augment_type_checks(cache):
    run = _mypy("augment", cache=cache)
    assert run.returncode == 0, ("mypy found problems in augment (see pyproject.toml [tool.mypy]):\n"
                                 f"{run.stdout}{run.stderr}")
    # every module of the package was read: the count is the files on disk, not mypy's own
    files = len(list((ROOT / "augment").rglob("*.py")))
    assert re.search(rf"no issues found in {files} source files", run.stdout), run.stdout


def test_a_type_error_is_reported(tmp_path, cache):
    # the settings applied find a wrong argument type to an augment op and name the file and line
    bad = tmp_path / "bad.py"
    bad.write_text("import augment\n\naugment.RandomHaze(p='often')\n")
    run = _mypy(str(bad), cache=cache)
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"bad\.py:3: error: .*\"p\".*\[arg-type\]", run.stdout), run.stdout
