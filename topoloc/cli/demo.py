"""``topoloc demo``: render, train, evaluate, explain and report in one command
(`topoloc.experiments.demo.run_demo`)."""

from __future__ import annotations

import argparse

from topoloc.cli._common import device_arg, non_negative_int, out_dir

__all__ = ["add"]


def _run(args: argparse.Namespace) -> int:
    from topoloc.experiments.demo import run_demo

    report = run_demo(args.out, smoke=args.smoke, device=args.device, seed=args.seed)
    print(f"report: {report}")
    return 0


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="the whole system in one command: render, train, evaluate, explain, report",
                       description="Renders synthetic training views around a planned TOPO flight (a corridor "
                                   "and a Latin hypercube in its envelope) and the test flights' own poses "
                                   "(synthetic and \"real\"), trains AtLoc with and without the sim-to-real "
                                   "augmentations, evaluates both beside the constant pose, retrieval and the "
                                   "coverage ceiling, draws saliency figures and writes DIR/report.md. 4-9 "
                                   "minutes on a 2-core CPU, depending on its kind (it prints its estimate); a "
                                   "larger preset on a GPU. A re-run into the same DIR continues where an "
                                   "interrupted one stopped.")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="demo folder (data/, runs/, plots/, report.md)")
    p.add_argument("--smoke", action="store_true", help="toy size, about a minute on a CPU (for tests)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the render and of both trainings (default: 0)")
    device_arg(p)
    p.set_defaults(func=_run)
    return p
