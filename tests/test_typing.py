"""The `augment` and `topoloc` packages, which ship ``py.typed``, type-check: mypy with the settings in
pyproject.toml ([tool.mypy])."""
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


PACKAGES = ("augment", "topoloc")


def _source_files(package: str) -> int:
    """The modules mypy reads of ``package``: its .py files, where a .pyi stub beside one stands in for it (mypy
    reads ``topoloc/__init__.pyi``, the lazy loader's list of public names, instead of ``topoloc/__init__.py``)."""
    files = {p.with_suffix("") for p in (ROOT / package).rglob("*.py")}
    return len(files | {p.with_suffix("") for p in (ROOT / package).rglob("*.pyi")})


def test_packages_type_check(cache):
    run = _mypy(*PACKAGES, cache=cache)
    assert run.returncode == 0, (f"mypy found problems in {' / '.join(PACKAGES)} (see pyproject.toml [tool.mypy]):\n"
                                 f"{run.stdout}{run.stderr}")
    # every module of both packages was read: the count is the files on disk, not mypy's own
    files = sum(_source_files(p) for p in PACKAGES)
    assert re.search(rf"no issues found in {files} source files", run.stdout), run.stdout


def test_the_file_count_sees_the_stub():
    # topoloc/__init__.py and its stub topoloc/__init__.pyi are one module to mypy, counted once
    assert (ROOT / "topoloc" / "__init__.pyi").is_file()
    assert _source_files("topoloc") == len(list((ROOT / "topoloc").rglob("*.py")))


def test_a_type_error_is_reported(tmp_path, cache):
    # the settings applied find a wrong argument type to an augment op and name the file and line
    bad = tmp_path / "bad.py"
    bad.write_text("import augment\n\naugment.RandomHaze(p='often')\n")
    run = _mypy(str(bad), cache=cache)
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"bad\.py:3: error: .*\"p\".*\[arg-type\]", run.stdout), run.stdout


def test_a_users_code_reads_the_top_level_names(tmp_path, cache):
    # the stub had no __all__ and imported without `as`, which keeps a stub's names private: mypy refused every
    # `from topoloc import X` and `topoloc.X` ("does not explicitly export attribute") in a user's code
    user = tmp_path / "user.py"
    user.write_text("import topoloc\nfrom topoloc import AtLoc, TopoFlight, TrainConfig, __version__, data, train\n\n"
                    "summary: topoloc.PoseErrorSummary | None = None\n"
                    "print(AtLoc, TopoFlight, TrainConfig, __version__, data.TopoFlight, train, topoloc.corridor)\n")
    run = _mypy(str(user), cache=cache)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_stub_exports_what_the_package_exports():
    import ast

    import topoloc

    stub = ast.parse((ROOT / "topoloc" / "__init__.pyi").read_text())
    exported = next(ast.literal_eval(node.value) for node in stub.body
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__")
    floors = [name for name in exported if name not in topoloc.__all__]
    assert exported[:len(topoloc.__all__)] == topoloc.__all__
    assert all(isinstance(getattr(topoloc, name), type(topoloc)) for name in floors), floors  # the rest: modules
    assert set(dir(topoloc)) >= set(exported)  # tab completion lists them, __version__ too


def test_what_load_model_returns_is_typed(tmp_path, cache):
    # load_model had no return annotation: a typo in the config's field name passed a type check
    user = tmp_path / "user.py"
    user.write_text("from topoloc import load_model\n\nmodel, normalizer, cfg = load_model('run/last.pt')\n"
                    "print(cfg.image_sizee, normalizer.decode, model.prepare)\n")
    run = _mypy(str(user), cache=cache)
    assert run.returncode == 1 and re.search(r'user\.py:4: error: "TrainConfig" has no attribute "image_sizee"',
                                             run.stdout), run.stdout + run.stderr


def test_the_pose_functions_say_what_they_return(tmp_path, cache):
    # corridor, PoseNormalizer.encode / decode and the engine's normalizer arguments were unannotated: a type
    # checker read their results as Any and let a state dict pass for a normalizer
    user = tmp_path / "user.py"
    user.write_text(
        "import numpy as np\nimport torch\nfrom topoloc import PoseNormalizer, corridor, predict\n\n"
        "rows = np.zeros((4, 6))\n"
        "reveal_type(corridor(rows, 5))\n"
        "reveal_type(corridor(rows, 5, return_base=True))\n"
        "normalizer = PoseNormalizer.fit(np.tile(np.eye(4), (3, 1, 1)))\n"
        "reveal_type(normalizer.decode(torch.zeros(2, 9)))\n"
        "reveal_type(normalizer.encode(np.zeros((2, 4, 4))))\n"
        "predict(torch.nn.Linear(2, 2), None, normalizer={'rotation': '6d'})\n")
    run = _mypy(str(user), cache=cache)
    revealed = dict(re.findall(r'user\.py:(\d+): note: Revealed type is "(.*)"', run.stdout))
    assert revealed["6"].startswith("numpy.ndarray"), run.stdout
    assert revealed["7"].startswith("tuple[numpy.ndarray") and revealed["7"].count("numpy.ndarray") == 2, run.stdout
    assert revealed["9"] == "torch._tensor.Tensor", run.stdout
    assert revealed["10"].startswith("numpy.ndarray"), run.stdout
    assert re.search(r'user\.py:11: error: No overload variant of "predict"', run.stdout), run.stdout
    assert run.stdout.count(": error:") == 1, run.stdout
