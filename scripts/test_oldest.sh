#!/usr/bin/env bash
# Run the tests against the OLDEST releases pyproject.toml allows (`name>=X`) of the libraries below: each
# is installed without dependencies into a temporary folder put in front of the environment's packages,
# so .venv itself is left as it is. Run it after changing a floor, or code that leans on one of these
# libraries. torch and torchvision are left out (a wheel is GBs). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "test_oldest.sh: no .venv here; run 'bash scripts/test.sh' first" >&2; exit 2; }
floors=$(.venv/bin/python - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = project["dependencies"] + project["optional-dependencies"]["dev"]
for name in ("kornia", "timm", "numpy", "pyproj", "pillow", "matplotlib", "pyyaml", "tqdm", "lazy_loader", "scipy"):
    found = [m.group(1) for d in deps if (m := re.fullmatch(rf"{name}\s*>=\s*([\w.]+)", d.split("#")[0].strip()))]
    if len(found) != 1:
        raise SystemExit(f"pyproject.toml: expected one '{name}>=VERSION' in the dependencies, got {found}")
    print(f"{name}=={found[0]}")
PY
)
# Companions, not floors: the newest contourpy (matplotlib's dependency) needs numpy >= 1.25.
companions="contourpy==1.1.1"
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
echo "test_oldest.sh: installing $(echo $floors) $companions into $target"
# shellcheck disable=SC2086 - one argument per pin
.venv/bin/python -m pip install --quiet --no-deps --only-binary=:all: --target "$target" $floors $companions
PYTHONPATH="$target" .venv/bin/python -c "
import kornia, lazy_loader, matplotlib, numpy, PIL, pyproj, scipy, timm, tqdm, yaml
mods = (kornia, timm, numpy, pyproj, PIL, matplotlib, yaml, tqdm, lazy_loader, scipy)
print(', '.join(f'{m.__name__} {m.__version__}' for m in mods))"
PYTHONPATH="$target" exec .venv/bin/python -m pytest -p no:cacheprovider \
    tests/augment augment tests/models topoloc/models \
    tests/test_geodesy.py tests/test_metrics.py tests/test_rotations.py tests/test_saliency.py tests/data topoloc/data \
    tests/evaluation tests/reporting tests/procedural tests/engine/test_augment_ramp.py tests/engine/test_config.py \
    tests/engine/test_cli_refusals.py tests/test_recipes.py tests/test_lazy_import.py "$@"
