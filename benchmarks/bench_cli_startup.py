"""Start-up time of the ``topoloc`` command and of ``import topoloc``: lazy (as shipped) vs eager.

``import topoloc`` loads each public name the first time it is used (``lazy_loader``, the names listed
in ``topoloc/__init__.pyi``), and the subcommands import the library when they run, so
``topoloc --help`` needs neither torch nor timm. The baseline is what ``import topoloc`` did before:
every public name imported at once (``getattr`` of each name of ``topoloc.__all__`` right after the
import, then the case itself: the same code, the same interpreter; only the loading differs). Not
``EAGER_IMPORT=1``, which huggingface_hub (imported by timm) honours too: that baseline also loaded
about 140 of its modules that ``import topoloc`` never did.

Each case runs ``--repeats`` times in a new interpreter, each side after one untimed run that warms
the disk cache; the figure is the median wall time. Run it on a quiet machine, from the repository root after
``pip install -e .``:

    python benchmarks/bench_cli_startup.py
    python benchmarks/bench_cli_startup.py --repeats 2     # a quick check that it runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time

from topoloc._device import cpu_name
from topoloc.cli._common import positive_int

#: (label, argv after the interpreter).
CASES = [
    ("topoloc --help", ["-m", "topoloc.cli", "--help"]),
    ("topoloc poses corridor --help", ["-m", "topoloc.cli", "poses", "corridor", "--help"]),
    ("import topoloc", ["-c", "import topoloc"]),
]


#: Imports every public name of ``topoloc``, as ``import topoloc`` did before it loaded them lazily.
EAGER = "import topoloc; [getattr(topoloc, name) for name in topoloc.__all__]"


def _eager(argv: list[str]) -> list[str]:
    """``argv`` run after `EAGER`: a module with its arguments (``-m``), or code (``-c``)."""
    if argv[0] == "-m":
        return ["-c", f"{EAGER}; import runpy, sys; sys.argv = {[argv[1], *argv[2:]]!r}; "
                      f"runpy.run_module({argv[1]!r}, run_name='__main__', alter_sys=True)"]
    return ["-c", f"{EAGER}; {argv[1]}"]


def _seconds(argv: list[str], eager: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "EAGER_IMPORT"}
    start = time.perf_counter()
    subprocess.run([sys.executable, *(_eager(argv) if eager else argv)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs per case (default: 5)")
    args = parser.parse_args()
    print(f"# {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}; "
          f"median of {args.repeats} runs in a new interpreter")
    print("| case | lazy (shipped) | eager (every public name imported, as before) | eager / lazy |")
    print("| --- | ---: | ---: | ---: |")
    for label, argv in CASES:
        _seconds(argv, eager=False)  # warm the disk cache, for each side
        _seconds(argv, eager=True)
        lazy = statistics.median(_seconds(argv, eager=False) for _ in range(args.repeats))
        eager = statistics.median(_seconds(argv, eager=True) for _ in range(args.repeats))
        print(f"| `{label}` | {lazy:.2f} s | {eager:.2f} s | {eager / lazy:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
