# Sourced by scripts/demo.sh and scripts/test.sh, in the repository root: makes .venv/ (when there is none)
# with a Python >= 3.11, or stops with a message saying which Python was found. PYTHON=/path/to/python3.12
# picks the interpreter of a new .venv/.
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && python=.venv/bin/python
if ! command -v "$python" >/dev/null 2>&1; then
    echo "$(basename "$0"): no '$python' here; topoloc needs Python >= 3.11: set PYTHON=/path/to/python3.11 or newer" >&2
    exit 2
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "$(basename "$0"): topoloc needs Python >= 3.11 (its kornia floor does); '$python' is" \
         "$("$python" --version 2>&1): set PYTHON=/path/to/python3.11 or newer (and remove .venv/ if it holds" \
         "the older one)" >&2
    exit 2
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
