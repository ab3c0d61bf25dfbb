#!/usr/bin/env python
"""Train, evaluate and report one recipe (the same as `topoloc train`, runnable without installing).

    python recipes/train.py --config recipes/synthetic_augmented.yaml --override train.epochs=5
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topoloc.experiments.recipe import load_recipe, run_recipe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="recipe YAML (data / train / evaluate sections)")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dotted overrides parsed as YAML, e.g. train.epochs=5 data.root=/data/topo")
    parser.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/last.pt if it exists")
    args = parser.parse_args()
    recipe = load_recipe(args.config, args.override, **({"resume": True} if args.resume else {}))
    out = run_recipe(recipe)
    print(f"checkpoint: {out['checkpoint']}\nreport: {out['report']}")


if __name__ == "__main__":
    main()
