#!/usr/bin/env python
"""Render-and-compare verification on a finished demo: the regressor's pose and the k retrieved
training poses of each photo are rendered, compared with the photo (the network's layer-2 feature
maps), and the most similar kept (and, as a second reading, the weighted mean of the few best);
medians beside the constant pose, retrieval, the coverage ceiling and the best hypothesis.

    bash scripts/demo.sh                                      # writes demo/
    python recipes/verify_demo.py --demo demo                 # planned flight, augmented run, k = 32

The logic lives in topoloc.experiments.verification (the verifier itself in topoloc.evaluation.verify).
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from topoloc._messages import renamed  # noqa: E402
from topoloc._paths import check_output  # noqa: E402
from topoloc._tempfiles import write_text_atomically  # noqa: E402
from topoloc.cli._common import positive_int  # noqa: E402
from topoloc.experiments.demo_settings import TEST_FLIGHTS  # noqa: E402
from topoloc.experiments.verification import RUN_FOLDERS, verification_table, verify_demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="a finished demo's folder (holds data/ and runs/)")
    parser.add_argument("--run", choices=sorted(RUN_FOLDERS), default="augmented", help="which of the demo's runs")
    parser.add_argument("--k", type=positive_int, default=32,
                        help="retrieved hypotheses per photo, beside the prediction (default: 32)")
    parser.add_argument("--top", type=int, default=None,
                        help="also report the weighted mean of the best-scoring hypotheses, this many (1: not; "
                             "default: 5, or all k + 1 when fewer)")
    parser.add_argument("--temperature", type=float, default=0.05,
                        help="the mean's softmax temperature (score units; default: 0.05)")
    parser.add_argument("--flights", default=TEST_FLIGHTS[0],
                        help=f"comma-separated test flights, or 'all' ({', '.join(TEST_FLIGHTS)})")
    parser.add_argument("--smoke", action="store_true", default=None,
                        help="the demo was run with --smoke (only for a demo without demo.json, which records it)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the demo's seed (only for a demo without demo.json, which records it; else 0)")
    parser.add_argument("--device", default=None,
                        help="cpu or cuda: where to run (default: the demo's own device; the preset is the demo's)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    flights = TEST_FLIGHTS if args.flights == "all" else tuple(f for f in args.flights.split(",") if f)
    try:
        if args.json:
            check_output(args.json, "--json")  # before minutes of work, not after
            _check_json(args.json, args.demo)
        rows = verify_demo(args.demo, smoke=args.smoke, seed=args.seed, run=args.run, k=args.k, flights=flights,
                           device=args.device, top=args.top, temperature=args.temperature)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"verify_demo.py: error: {renamed(str(err), FLAG_NAMES)}\n")
    except KeyboardInterrupt:
        parser.exit(130, "verify_demo.py: interrupted; nothing was written\n")
    print(verification_table(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # a new folder, as check_output allows
        write_text_atomically(args.json, json.dumps(rows, indent=1) + "\n")


def _check_json(path: str, demo: str) -> None:
    """Refuse a ``--json`` that is not a .json file name, or a file the demo wrote (its report, demo.json)."""
    target = Path(path).resolve()
    if target.suffix != ".json":
        raise ValueError(f"--json {path!r}: expected a file name ending in .json")
    if target.exists() and Path(demo).resolve() in target.parents:
        raise ValueError(f"--json {path!r}: a file of the demo in --demo {demo!r}, which the rows would replace; "
                         "give a new file")


#: The library's argument names, as this script's flags.
FLAG_NAMES = {"k": "--k", "top": "--top", "temperature": "--temperature", "flights": "--flights", "smoke": "--smoke",
              "seed": "--seed", "run": "--run", "device": "--device"}


if __name__ == "__main__":
    main()
