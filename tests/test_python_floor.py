"""The lowest Python that pyproject.toml claims can install the floors of its dependencies.

``requires-python`` said ">=3.10" while the kornia floor (0.8.3) needs Python 3.11: on 3.10 pip finds
no kornia it may install and topoloc does not install at all (found by trying, under 3.10.13). The
facts below come from the packages' PyPI metadata; the second test reads the metadata of whatever is
installed at its floor (``scripts/test_oldest.sh`` installs the floors).
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: Requires-Python of a floor release, from its PyPI metadata (pip under Python 3.10.13, 2026-12-03: "Ignored the
#: following versions that require a different python version: 0.8.3 Requires-Python >=3.11").
KNOWN = {("kornia", "0.8.3"): ">=3.11"}


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def _lowest_python() -> Version:
    claim = _project()["requires-python"]
    found = re.fullmatch(r"\s*>=\s*(\d+\.\d+)\s*", claim)
    assert found, f"requires-python: expected '>=X.Y', got {claim!r}"
    return Version(found.group(1))


def _floors() -> dict[str, str]:
    out = {}
    for dep in _project()["dependencies"]:
        req = Requirement(dep)
        low = [s.version for s in req.specifier if s.operator == ">="]
        if low:
            out[req.name.lower()] = low[0]
    return out


def test_the_claimed_python_installs_the_kornia_floor():
    lowest, floors = _lowest_python(), _floors()
    needs = KNOWN[("kornia", floors["kornia"])]
    assert lowest in SpecifierSet(needs), f"requires-python allows {lowest}, kornia {floors['kornia']} needs {needs}"
    assert Version("3.10") not in SpecifierSet(KNOWN[("kornia", "0.8.3")])  # the fact this test rests on


def test_every_dependency_installed_at_its_floor_admits_the_claimed_python():
    lowest, checked = _lowest_python(), []
    for name, floor in _floors().items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != Version(floor):
            continue
        needs = dist.metadata.get("Requires-Python") or ""
        assert lowest in SpecifierSet(needs), f"{name} {floor} needs Python {needs}; requires-python allows {lowest}"
        checked.append(name)
    if not checked:
        pytest.skip("no dependency is installed at its floor here (scripts/test_oldest.sh installs them)")


def _interpreter(path: Path, body: str) -> Path:
    """A stand-in interpreter: a shell script answering as ``body`` says."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("script", ["test.sh", "demo.sh"])
def test_the_readme_scripts_stop_on_an_older_python_naming_it(tmp_path, script):
    """The two README commands make .venv/ with `python3` (or $PYTHON): one older than 3.11 is named, before pip
    fails on kornia with a resolver error. A stand-in interpreter answers as Python 3.10.13 would."""
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "scripts", tmp_path / "scripts")  # a checkout without .venv/

    def run(python: Path) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", str(tmp_path / "scripts" / script)], env={"PATH": "/usr/bin:/bin",
                              "PYTHON": str(python)}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and not (tmp_path / ".venv").exists()
        return done

    fake = _interpreter(tmp_path / "python3.10", "if [ \"$1\" = --version ]; then echo 'Python 3.10.13'; exit 0; fi\n"
                                                 "echo '3 10'  # the version check's answer under 3.10\n")
    assert run(fake).stderr.strip() == (f"{script}: topoloc needs Python >= 3.11 (its kornia floor does); '{fake}' is "
                                        "Python 3.10.13: set PYTHON=/path/to/python3.11 or newer (and remove .venv/ "
                                        "if it holds the older one)")
    missing = run(tmp_path / "nowhere")
    assert f"no '{tmp_path / 'nowhere'}' here; topoloc needs Python >= 3.11" in missing.stderr
    # An interpreter that does not run (a .venv/ whose base Python was removed) is said to be broken, not old
    broken = _interpreter(tmp_path / "python3.12", "echo 'error while loading shared libraries: libpython3.12.so.1.0' "
                                                   ">&2\nexit 127\n")
    assert run(broken).stderr.strip() == (f"{script}: '{broken}' does not run as Python (error while loading shared "
                                          "libraries: libpython3.12.so.1.0): set PYTHON=/path/to/python3.11 or newer "
                                          "(and remove .venv/ if it holds a broken one)")


def test_demo_sh_says_its_help_and_a_missing_out_folder_before_any_install(tmp_path):
    # `demo.sh --out` (no folder) said "$2: unbound variable" after the installs; `--help` ran both pip installs
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "scripts", tmp_path / "scripts")  # a checkout without .venv/

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(tmp_path / "scripts" / "demo.sh"), *args], env={"PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)

    missing = run("--smoke", "--out")
    assert (missing.returncode, missing.stderr.strip()) == (2, "scripts/demo.sh: --out needs a folder, e.g. --out "
                                                               "/tmp/demo")
    shown = run("--help")
    assert shown.returncode == 0 and shown.stdout.startswith("The main job in one command")
    assert "--out DIR" in shown.stdout
    assert not (tmp_path / ".venv").exists()


def test_a_python_that_is_not_the_existing_venvs_is_said_to_be_unused(tmp_path):
    # PYTHON=python3.13 bash scripts/test.sh with a .venv/ of 3.12 went on with 3.12 without a word
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "scripts", tmp_path / "scripts")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    answers = ("case \"$2\" in *'%d %d'*) echo '{pair}';; *version_info*) echo '{tuple}';; esac\n"
               "if [ \"$1\" = --version ]; then echo 'Python {full}'; fi\n"
               "if [ \"$1\" = -m ]; then exit 3; fi  # pip: stop the script here\n")
    _interpreter(tmp_path / ".venv" / "bin" / "python", answers.format(pair="3 12", tuple="(3, 12)", full="3.12.1"))
    newer = _interpreter(tmp_path / "python3.13", answers.format(pair="3 13", tuple="(3, 13)", full="3.13.0"))
    same = _interpreter(tmp_path / "python3.12", answers.format(pair="3 12", tuple="(3, 12)", full="3.12.1"))

    def stderr(python: Path) -> str:
        done = subprocess.run(["bash", str(tmp_path / "scripts" / "test.sh")], env={"PATH": "/usr/bin:/bin",
                              "PYTHON": str(python)}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 3  # stopped at the stand-in's pip, after the check
        return done.stderr

    assert stderr(newer).strip() == (f"test.sh: warning: PYTHON={newer} is not the Python of the existing .venv/ "
                                     "(Python 3.12.1), which is used; remove .venv/ to make it anew with PYTHON")
    assert "warning" not in stderr(same)
