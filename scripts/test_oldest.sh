#!/usr/bin/env bash
# Run the tests against the OLDEST releases pyproject.toml allows (`name>=X`). Run it after changing a floor,
# or code that leans on one of these libraries. Extra arguments go to pytest.
#
#   bash scripts/test_oldest.sh            kornia, timm, numpy, ... (below) at their floors, installed without
#                                          dependencies into a temporary folder in front of .venv's packages
#                                          (.venv itself is left as it is); the tests that use them.
#   OLDEST_TORCH=1 bash scripts/test_oldest.sh
#                                          torch and torchvision at their floors as well, in a venv of their
#                                          own (.venv-oldest/, about 5 GB: PyPI's torch is a CUDA build, which
#                                          runs on the CPU too; a few minutes to set up); the whole default suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "test_oldest.sh: no .venv here; run 'bash scripts/test.sh' first" >&2; exit 2; }
names="kornia timm numpy pyproj pillow matplotlib pyyaml tqdm lazy_loader scipy"
[ "${OLDEST_TORCH:-0}" = 1 ] && names="torch torchvision $names"
floors=$(NAMES="$names" .venv/bin/python - <<'PY'
import os, re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = project["dependencies"] + project["optional-dependencies"]["dev"]
for name in os.environ["NAMES"].split():
    found = [m.group(1) for d in deps if (m := re.fullmatch(rf"{name}\s*>=\s*([\w.]+)", d.split("#")[0].strip()))]
    if len(found) != 1:
        raise SystemExit(f"pyproject.toml: expected one '{name}>=VERSION' in the dependencies, got {found}")
    print(f"{name}=={found[0]}")
PY
)
# Companions, not floors: the newest contourpy (matplotlib's dependency) needs numpy >= 1.25, and the newest
# pyparsing warns of deprecations inside matplotlib 3.7 (which the CLI tests, under pytest, see).
companions="contourpy==1.1.1 pyparsing==3.0.9"
versions="import importlib.metadata as m; print(', '.join(f'{n} {m.version(n)}' for n in '$names'.split()))"

if [ "${OLDEST_TORCH:-0}" = 1 ]; then
    [ -x .venv-oldest/bin/python ] || python3 -m venv .venv-oldest
    echo "test_oldest.sh: installing $(echo $floors) $companions into .venv-oldest"
    # shellcheck disable=SC2086 - one argument per pin
    .venv-oldest/bin/python -m pip install --quiet --only-binary=:all: $floors $companions \
        pytest hypothesis pytest-timeout
    .venv-oldest/bin/python -m pip install --quiet --no-deps -e .
    .venv-oldest/bin/python -c "$versions"
    exec .venv-oldest/bin/python -m pytest -p no:cacheprovider "$@"
fi

target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
echo "test_oldest.sh: installing $(echo $floors) $companions into $target"
# shellcheck disable=SC2086 - one argument per pin
.venv/bin/python -m pip install --quiet --no-deps --only-binary=:all: --target "$target" $floors $companions
PYTHONPATH="$target" .venv/bin/python -c "$versions"
PYTHONPATH="$target" exec .venv/bin/python -m pytest -p no:cacheprovider \
    tests/augment augment tests/models topoloc/models \
    tests/test_geodesy.py tests/test_metrics.py tests/test_rotations.py tests/test_saliency.py tests/data topoloc/data \
    tests/evaluation tests/reporting tests/procedural tests/engine/test_augment_ramp.py tests/engine/test_config.py \
    tests/engine/test_cli_refusals.py tests/test_recipes.py tests/test_lazy_import.py tests/test_python_floor.py "$@"
