#!/usr/bin/env bash
# Run the tests that use kornia and timm against the OLDEST releases pyproject.toml allows
# (`kornia>=X`, `timm>=Y`): each is installed without dependencies into a temporary folder put in
# front of the environment's packages, so .venv itself is left as it is. Run it after changing
# either floor, or code that uses either library. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "test_oldest.sh: no .venv here; run 'bash scripts/test.sh' first" >&2; exit 2; }
floors=$(.venv/bin/python - <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for name in ("kornia", "timm"):
    found = [m.group(1) for d in deps if (m := re.fullmatch(rf"{name}\s*>=\s*([\w.]+)", d.strip()))]
    if len(found) != 1:
        raise SystemExit(f"pyproject.toml: expected one '{name}>=VERSION' in [project] dependencies, got {found}")
    print(f"{name}=={found[0]}")
EOF
)
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
echo "test_oldest.sh: installing $(echo $floors) into $target"
# shellcheck disable=SC2086 - one argument per pin
.venv/bin/python -m pip install --quiet --no-deps --target "$target" $floors
PYTHONPATH="$target" .venv/bin/python -c "import kornia, timm; print('kornia', kornia.__version__, 'timm', timm.__version__)"
PYTHONPATH="$target" exec .venv/bin/python -m pytest -p no:cacheprovider tests/augment augment tests/models topoloc/models \
    tests/test_rotations.py tests/test_saliency.py tests/data/test_normalize.py tests/engine/test_augment_ramp.py "$@"
