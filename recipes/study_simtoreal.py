#!/usr/bin/env python
"""The sim-to-real study: no augmentation, SimToReal at several strengths, relighting, local contrast
and each op alone, over several seeds, tested on synthetic, real and real_alt images; the table goes to docs/RESULTS.md.

    python recipes/study_simtoreal.py --preset cpu --root data/study-cpu --out runs/study-cpu

A killed study continues where it stopped when run again with the same arguments (finished runs
are skipped). The logic lives in topoloc.experiments.study.
"""

import argparse
import logging
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from topoloc._messages import renamed  # noqa: E402
from topoloc.experiments.study import OPS, PRESETS, run_study, study_config  # noqa: E402


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.25,0.5,1.0; got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, e.g. 0,1,2; got {text!r}") from None


#: The flag of each StudyConfig field the command line sets, for its errors.
FLAGS = {"train_flight": "--train-flight", "corridor_of": "--corridor-of", "test_flights": "--test-flights",
         "train_images": "--train-images", "test_images": "--test-images", "strengths": "--strengths", "ops": "--ops",
         "seeds": "--seeds", "epochs": "--epochs", "local_contrast": "--local-contrast", "render": "--no-render",
         "keep_checkpoints": "--keep-checkpoints", "side_by_side": "--side-by-side", "device": "--device"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="cpu",
                        help="sizes: smoke (seconds per run, for tests), cpu (about 70 min on a quiet 2-core CPU), "
                             "gpu (thousands of images at 256 px, ResNet34)")
    parser.add_argument("--root", required=True, help="data root: holds or receives the rendered flights")
    parser.add_argument("--out", required=True, help="folder of the runs (runs/<config>/seed<k>/) and study.json")
    parser.add_argument("--results", default=None,
                        help="markdown file receiving the table (section study-<preset>; default: this repository's "
                             "docs/RESULTS.md, and none for the smoke preset or a preset whose settings are overridden "
                             "(any flag but --no-render, --keep-checkpoints, --side-by-side and --device), tries that "
                             "would replace its table with other figures); 'none' to skip")
    parser.add_argument("--train-flight", default=None,
                        help="training flight under --root (default: comballaz-corridor-planned, rendered as a "
                             "corridor around --corridor-of when absent; a preset name is rendered as such)")
    parser.add_argument("--corridor-of", default=None, help="flight whose corridor is rendered as the training flight")
    parser.add_argument("--test-flights", default=None,
                        help="comma-separated real flights tested at their own poses (default: the planned flight)")
    parser.add_argument("--train-images", type=int, default=None, help="renders of the training flight")
    parser.add_argument("--test-images", type=int, default=None, help="poses per test flight")
    parser.add_argument("--no-render", action="store_true", help="take --root as it is: render nothing")
    parser.add_argument("--strengths", type=_floats, default=None, help="SimToReal strengths, e.g. 0.25,0.5,1.0")
    parser.add_argument("--ops", default=None, help=f"comma-separated single ops among {','.join(OPS)} ('' for none)")
    parser.add_argument("--local-contrast", type=float, default=None, metavar="SIGMA",
                        help="sigma in px of AtLoc(local_contrast=...) in the two local-contrast configs (default: the "
                             "preset's: an eighth of the image width in cpu and gpu; 0 leaves them out)")
    parser.add_argument("--seeds", type=_ints, default=None, help="training seeds, e.g. 0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of every run")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to render, train and evaluate")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep every finished run's last.pt (deleted by default: about 130 MB each on the cpu "
                             "preset)")
    parser.add_argument("--side-by-side", type=int, default=None, metavar="N",
                        help="CPU runs trained at a time, each in its own process (default: 2 with the cpu preset "
                             "on a CPU with two or more threads, else 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-run log lines")
    args = parser.parse_args()
    overrides = {
        "train_flight": args.train_flight, "corridor_of": args.corridor_of,
        "test_flights": tuple(args.test_flights.split(",")) if args.test_flights else None,
        "train_images": args.train_images, "test_images": args.test_images, "strengths": args.strengths,
        "ops": tuple(o for o in args.ops.split(",") if o) if args.ops is not None else None,
        "seeds": args.seeds, "epochs": args.epochs, "local_contrast": args.local_contrast,
        "render": False if args.no_render else None,
        "keep_checkpoints": True if args.keep_checkpoints else None, "side_by_side": args.side_by_side,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        cfg = study_config(args.preset, args.root, args.out, device=args.device, **given)
    except (ValueError, TypeError) as err:  # a setting out of range: one line naming it (its flag), status 2
        message = renamed(str(err).removeprefix("StudyConfig: ").replace("render=False", "--no-render"),
                          {"device": "--device"})  # "device: 'cuda' asked for but ..." from resolve_device
        for field, flag in FLAGS.items():
            message = message.replace(f"`{field}`", flag)
        parser.error(message)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    sized = sorted(FLAGS[k] for k in given if k not in ("keep_checkpoints", "side_by_side", "render"))
    if args.results is None and args.preset != "smoke" and sized:
        print(f"{parser.prog}: {', '.join(sized)} change(s) the {args.preset} preset: the table goes to "
              f"{Path(args.out) / 'results.md'} only (--results FILE to write it there too)")
    if args.results is None:
        args.results = "none" if args.preset == "smoke" or sized else str(REPO / "docs" / "RESULTS.md")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    try:
        out = run_study(cfg, None if args.results == "none" else args.results, command=command,
                        progress=not args.quiet)
    except (ValueError, OSError) as err:  # a folder of other runs, a missing flight, an unwritable path
        # the library's names of --results, --root and --out
        message = renamed(str(err), {"results_path": "--results", "root": "--root", "out_dir": "--out"})
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    except KeyboardInterrupt:  # one line, as `topoloc train` and `topoloc demo` say it
        parser.exit(130, f"{parser.prog}: interrupted; the same command goes on where it stopped (finished runs "
                         "are kept)\n")
    print(f"{len(out['ran'])} runs trained now, {len(out['skipped'])} finished before; table: {args.results}")


if __name__ == "__main__":
    main()
