"""``topoloc evaluate``: a checkpoint on TOPO flights beside its brackets, and its report
(`topoloc.experiments.recipe.evaluate_checkpoint`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from topoloc.cli._common import (CHECKPOINT_FLAGS, checkpoint_arg, device_arg, flights_args, frame_arg,
                                 non_negative_int, out_dir, positive_int)

if TYPE_CHECKING:  # for an annotation; the functions import it when they run (`topoloc --help` does not pay for it)
    from topoloc.experiments import recipe

__all__ = ["add"]


def split_fractions(value: str) -> tuple[float, float, float]:
    """argparse ``type`` of ``--split-fractions``: ``TRAIN,VAL,TEST``, three shares >= 0 summing to 1."""
    from topoloc.data.splits import check_fractions

    try:
        return check_fractions([float(v) for v in value.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three shares >= 0 summing to 1, TRAIN,VAL,TEST (e.g. 0.9,0.1,0), "
                                         f"got {value!r}") from None


def _split_options(args: argparse.Namespace) -> dict:
    """``--split-fractions / --split-seed / --split-block`` as `FlightSpec` keyword arguments (those given)."""
    return {key: getattr(args, key) for key in ("split_fractions", "split_seed", "split_block")
            if getattr(args, key) is not None}


def _flights(items, opts: dict) -> list[recipe.FlightSpec]:
    """``FLIGHT[:DOMAIN[:SPLIT]]`` strings with the split options of the command line."""
    from topoloc.experiments import recipe

    return [recipe.FlightSpec(**{**vars(recipe.parse_flight(item)), **opts}) for item in items]


def _refuse_ignored_flags(args: argparse.Namespace, flights: list[recipe.FlightSpec]) -> None:
    """Refuse the flags that these arguments would ignore (the split options when none of ``flights``, every flight
    given, takes a split; ``--retrieval`` with no training flights to retrieve from)."""
    split_flags = [flag for flag, key in (("--split-fractions", "split_fractions"), ("--split-seed", "split_seed"),
                                          ("--split-block", "split_block")) if getattr(args, key) is not None]
    if split_flags and all(spec.split == "all" for spec in flights):
        raise ValueError(f"{split_flags[0]}: expected with a flight that takes a split, e.g. "
                         "comballaz-2020-11-06-planned:real:test; every flight given here takes all its rows, so it "
                         "would be ignored")
    if args.retrieval and args.ignore_recipe and not args.train_flights:
        raise ValueError("--retrieval: the retrieval baseline retrieves from the checkpoint's training flights: give "
                         "them with --train-flights (with --ignore-recipe its recipe.yaml is not read)")


def _run(args: argparse.Namespace) -> int:
    from topoloc.experiments import recipe

    opts = _split_options(args)
    given = (args.flights, args.train_flights, args.val_flights)
    tests, trains, vals = (_flights(items or (), opts) for items in given)
    _refuse_ignored_flags(args, [*tests, *trains, *vals])
    report = recipe.evaluate_checkpoint(args.checkpoint, args.data, tests, args.out, train_flights=trains,
                                        frame=args.frame, device=args.device, batch_size=args.batch_size,
                                        retrieval=False if args.no_retrieval else (tuple(args.retrieval) or True),
                                        val_flights=vals, adabn=args.adabn,
                                        landcover=args.landcover or args.classes is not None,
                                        classes=args.classes, use_recipe=not args.ignore_recipe)
    print(f"report: {report}")
    return 0


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on TOPO flights and write report.md",
                       description="Per-image errors, summaries per domain and flight, coverage, the retrieval "
                                   "baseline, predictions CSV (ECEF, WGS84, yaw/pitch/roll), plots and report.md.")
    checkpoint_arg(p)
    flights_args(p, "test flights, e.g. comballaz-2020-11-06-planned:real comballaz-2020-11-06-planned:synthetic "
                    "(domain: synthetic, real or real_alt, default synthetic; split: all, train, val, test, "
                    "default all)")
    p.add_argument("--train-flights", nargs="*", action="extend", default=[], metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help="the training flights: their poses give the coverage, the constant pose and the coverage "
                        "ceiling, their images the retrieval baseline and the training fit (e.g. "
                        "comballaz-LHS:synthetic:train); default: those of the recipe.yaml that topoloc train "
                        "wrote beside the checkpoint, if any")
    p.add_argument("--val-flights", nargs="*", action="extend", default=[], metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help="validation flights, reported as the 'validation' row (e.g. comballaz-LHS:synthetic:val); "
                        "default: those of the checkpoint's recipe.yaml, if any")
    p.add_argument("--ignore-recipe", action="store_true",
                   help="do not read the training and validation flights from the recipe.yaml beside the "
                        "checkpoint (without --train-flights the brackets are then not computed)")
    p.add_argument("--split-fractions", type=split_fractions, default=None, metavar="TRAIN,VAL,TEST",
                   help="how the flights given here split their rows into train / val / test (default: each "
                        "flight's own, 0.8,0.1,0.1); give the training run's, e.g. 0.9,0.1,0 for the demo's")
    p.add_argument("--split-seed", type=non_negative_int, default=None, metavar="N",
                   help="seed of that split (default 0)")
    p.add_argument("--split-block", type=positive_int, default=None, metavar="ROWS",
                   help="consecutive rows kept in one split (default: 1 for *-LHS flights, 25 for the others; "
                        "the demo's: 10)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--retrieval", nargs="+", action="extend", default=[],
                       choices=("thumbnail", "thumbnail_colour", "model"), metavar="FEATURES",
                       help="feature sources of the retrieval baseline, one row each: thumbnail (model-free 16x24 "
                            "grey tiny image), thumbnail_colour, model (the checkpoint's own backbone) "
                            "(default: thumbnail model)")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR",
                   help="report folder (report.md, plots/, predictions/); a report already there is replaced, a "
                        "demo's folder is refused")
    p.add_argument("--frame", default=None, type=frame_arg, metavar="ORIGIN",
                   help="local ENU origin: comballaz, epfl or LAT,LON,H (degrees, degrees, ellipsoidal m) "
                        "(default: from the flight names)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default: 64)")
    which.add_argument("--no-retrieval", action="store_true", help="skip the nearest-neighbour retrieval baselines")
    p.add_argument("--adabn", action="store_true",
                   help="also evaluate with the batch-norm statistics re-estimated on each test flight's own images "
                        "(AdaBN: unsupervised test-time adaptation, no labels), reported beside the plain model")
    p.add_argument("--landcover", action="store_true",
                   help="also split each test flight's errors by the share of each land-cover class in view, from "
                        "the semantic maps of its synthetic renders (<stem>_semantics.npy): which views carry the "
                        "error (report section 'Where the error is')")
    p.add_argument("--classes", default=None, metavar="FILE.json|NAME",
                   help="the class table of those maps: a JSON object of class id -> name, or a built-in table: "
                        "topo-datagen (TOPO-DataGen's maps: the swissSURFACE3D LiDAR classes) or mini-comballaz. "
                        "Any --classes implies --landcover; default: each flight's semantic_classes.json, which "
                        "Mini-Comballaz writes")
    device_arg(p)
    p.set_defaults(func=_run, flag_names={**CHECKPOINT_FLAGS, "train_flights": "--train-flights",
                                          "val_flights": "--val-flights", "classes": "--classes"})
    return p
