"""The code base passes the project's linter: ruff with the configuration in pyproject.toml ([tool.ruff])."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The project's Python: the two packages, their tests, recipes, benchmarks, scripts and docs' figure scripts
# (not whatever else a working copy holds: a user's scratch files, .venv/, demo/).
LINTED = ["topoloc", "augment", "tests", "recipes", "benchmarks", "scripts", "docs", "conftest.py"]

pytest.importorskip("ruff", reason="ruff comes with the dev extra: pip install -e '.[dev]'")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_ruff_finds_nothing():
    run = _ruff(*LINTED)
    assert run.returncode == 0, ("ruff check found problems (fix them, or see pyproject.toml [tool.ruff]):\n"
                                 f"{run.stdout}{run.stderr}")


def test_the_project_configuration_is_the_one_applied(tmp_path):
    # A line of 121 columns and an undefined name, checked with the project's settings: both reported.
    bad = tmp_path / "bad.py"
    bad.write_text("x = " + repr("a" * 115) + "\n" + "print(undefined_name)\n")
    assert len(bad.read_text().splitlines()[0]) == 121
    run = _ruff("--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path)
    assert run.returncode == 1
    assert "E501" in run.stdout and "F821" in run.stdout, run.stdout
    # ... and a line of exactly 120 columns is accepted
    bad.write_text("x = " + repr("a" * 114) + "\n")
    assert _ruff("--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path).returncode == 0
