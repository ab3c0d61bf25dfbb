# Sourced by scripts/demo.sh and scripts/test.sh, in the repository root: makes .venv/ (when there is none)
# with a Python >= 3.11, or stops with a message saying which Python was found. PYTHON=/path/to/python3.12
# picks the interpreter of a new .venv/.
python="${PYTHON:-python3}"
if [ -x .venv/bin/python ]; then
    # PYTHON picks a new .venv/'s interpreter only: say so when it asks for another than the one .venv/ has
    if [ -n "${PYTHON:-}" ] && [ "$(.venv/bin/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != \
         "$("$PYTHON" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" ]; then
        echo "$(basename "$0"): warning: PYTHON=$PYTHON is not the Python of the existing .venv/" \
             "($(.venv/bin/python --version 2>&1)), which is used; remove .venv/ to make it anew with PYTHON" >&2
    fi
    python=.venv/bin/python
fi
if ! command -v "$python" >/dev/null 2>&1; then
    echo "$(basename "$0"): no '$python' here; topoloc needs Python >= 3.11: set PYTHON=/path/to/python3.11 or newer" >&2
    exit 2
fi
# an interpreter that does not run (e.g. a .venv/ whose base Python is gone) is named as broken, not as old
status=0
version=$("$python" -c 'import sys; print("%d %d" % sys.version_info[:2])' 2>&1) || status=$?  # under set -e
read -r major minor <<< "$(echo "$version" | tail -n 1)"  # the last line: after any warning on stderr
if [ "$status" -ne 0 ] || ! [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]]; then
    why=$(echo "$version" | head -n 1)
    echo "$(basename "$0"): '$python' does not run as Python (${why:-no answer, exit status $status}): set" \
         "PYTHON=/path/to/python3.11 or newer (and remove .venv/ if it holds a broken one)" >&2
    exit 2
fi
if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 11 ]; }; then
    echo "$(basename "$0"): topoloc needs Python >= 3.11 (its kornia floor does); '$python' is" \
         "$("$python" --version 2>&1): set PYTHON=/path/to/python3.11 or newer (and remove .venv/ if it holds" \
         "the older one)" >&2
    exit 2
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
