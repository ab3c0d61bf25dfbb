"""Start-up time of the ``topoloc`` command and of ``import topoloc``: lazy (as shipped) vs eager.

``import topoloc`` loads each public name the first time it is used (``lazy_loader``, the names listed
in ``topoloc/__init__.pyi``), and the subcommands import the library when they run, so
``topoloc --help`` needs neither torch nor timm. The baseline is what ``import topoloc`` did before:
every name imported at once, which ``lazy_loader`` does when the environment sets ``EAGER_IMPORT=1``
(the same code, the same interpreter; only the loading differs).

Each case runs ``--repeats`` times in a new interpreter (after one untimed run that warms the disk
cache); the figure is the median wall time. Run it on a quiet machine, from the repository root after
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

#: (label, argv after the interpreter).
CASES = [
    ("topoloc --help", ["-m", "topoloc.cli", "--help"]),
    ("topoloc poses corridor --help", ["-m", "topoloc.cli", "poses", "corridor", "--help"]),
    ("import topoloc", ["-c", "import topoloc"]),
]


def _seconds(argv: list[str], eager: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "EAGER_IMPORT"}
    if eager:
        env["EAGER_IMPORT"] = "1"
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (default: 5)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats: expected an integer >= 1, got {args.repeats}")
    print(f"# {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}; "
          f"median of {args.repeats} runs in a new interpreter")
    print("| case | lazy (shipped) | eager (EAGER_IMPORT=1, as before) | eager / lazy |")
    print("| --- | ---: | ---: | ---: |")
    for label, argv in CASES:
        _seconds(argv, eager=False)  # warm the disk cache
        lazy = statistics.median(_seconds(argv, eager=False) for _ in range(args.repeats))
        eager = statistics.median(_seconds(argv, eager=True) for _ in range(args.repeats))
        print(f"| `{label}` | {lazy:.2f} s | {eager:.2f} s | {eager / lazy:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
