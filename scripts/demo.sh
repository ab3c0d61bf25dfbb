#!/usr/bin/env bash
# The main job in one command: set up a virtual environment (if needed), install topoloc, and run
# `topoloc demo` (render Mini-Comballaz, train with and without the sim-to-real augmentations,
# evaluate on synthetic and real test flights, saliency figures, report). Extra arguments go to
# `topoloc demo`, e.g. `scripts/demo.sh --smoke` or `scripts/demo.sh --out /tmp/demo --device cpu`.
# About 4 to 9 minutes on a 2-core CPU depending on its kind, 5 to 11 with the set-up (README, "What it
# gives on a 2-core CPU"); a larger configuration when a GPU is present. Re-running it continues an
# interrupted demo. The report is <out>/report.md (default: demo/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do  # help before minutes of installs
  if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    echo "Options of topoloc demo (once installed: .venv/bin/topoloc demo --help): --out DIR, --smoke, --device, --seed"
    exit 0
  fi
done
out="demo"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) [[ $# -ge 2 ]] || { echo "scripts/demo.sh: --out needs a folder, e.g. --out /tmp/demo" >&2; exit 2; }
           out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
source scripts/_venv.sh  # .venv/ with Python >= 3.11 (PYTHON=... picks the interpreter)
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/topoloc demo --out "$out" "${args[@]+"${args[@]}"}"
