"""Command-line parsers of ``topoloc train | evaluate | saliency | demo`` (used by `topoloc.cli`).

Each ``add_*`` function adds one subcommand to an ``argparse`` subparsers object and sets its
``func`` default to a function of the parsed arguments; the work is done by the library.
"""

from __future__ import annotations

import argparse

__all__ = ["add_engine_commands"]


def _device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to run: auto (CUDA when available), cpu or cuda (default: auto)")


def _run_train(args: argparse.Namespace) -> int:
    from topoloc.experiments.recipe import load_recipe, run_recipe

    extra = {"resume": True} if args.resume else {}
    if args.allow_config_change:
        extra["resume_changes"] = "allow"
    if args.overwrite:
        extra["overwrite"] = True
    if args.device:
        extra["device"] = args.device
    recipe = load_recipe(args.config, args.override, **extra)
    out = run_recipe(recipe)
    print(f"checkpoint: {out['checkpoint']}\nreport: {out['report']}")
    return 0


def add_train(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model from a recipe YAML, then evaluate it and write its report",
                       description="Train, evaluate and report one recipe (see recipes/*.yaml): the data section "
                                   "names the flights, the train section any TrainConfig field.")
    p.add_argument("--config", required=True, metavar="YAML",
                   help="recipe file with data / train / evaluate sections, e.g. recipes/synthetic_augmented.yaml")
    p.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                   help="dotted overrides parsed as YAML, e.g. train.epochs=5 data.root=/data/topo")
    p.add_argument("--resume", action="store_true",
                   help="continue from <train.out_dir>/last.pt when it exists (a killed run goes on where it stopped)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: go on although lr, augment, batch size or other training settings differ "
                        "from the checkpoint's (refused otherwise); the change is logged in config_changes.log")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in a train.out_dir that holds another run, removing its config.yaml, "
                        "last.pt, best.pt, log.csv and config_changes.log (refused otherwise)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="override train.device: auto (CUDA when available), cpu or cuda")
    p.set_defaults(func=_run_train)
    return p


def _run_evaluate(args: argparse.Namespace) -> int:
    from topoloc.experiments.recipe import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint, args.data, args.flights, args.out,
                                 train_flights=args.train_flights or (), frame=args.frame, device=args.device,
                                 batch_size=args.batch_size,
                                 retrieval=False if args.no_retrieval else (tuple(args.retrieval) or True),
                                 val_flights=args.val_flights or ())
    print(f"report: {report}")
    return 0


def add_evaluate(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="evaluate a checkpoint on TOPO flights and write report.md",
                       description="Per-image errors, summaries per domain and flight, coverage, the retrieval "
                                   "baseline, predictions CSV (ECEF, WGS84, yaw/pitch/roll), plots and report.md.")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="last.pt or best.pt written by topoloc train")
    p.add_argument("--data", required=True, metavar="ROOT", help="folder holding the flight folders")
    p.add_argument("--flights", nargs="+", required=True, metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help="test flights, e.g. comballaz-2020-11-06-planned:real comballaz-2020-11-06-planned:synthetic "
                        "(domain: synthetic or real, default synthetic; split: all, train, val, test, default all)")
    p.add_argument("--train-flights", nargs="*", default=[], metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help="the training flights: their poses give the coverage, the constant pose and the coverage "
                        "ceiling, their images the retrieval baseline and the training fit (e.g. "
                        "comballaz-LHS:synthetic:train); default: those of the recipe.yaml that topoloc train "
                        "wrote beside the checkpoint, if any")
    p.add_argument("--val-flights", nargs="*", default=[], metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help="validation flights, reported as the 'validation' row (e.g. comballaz-LHS:synthetic:val); "
                        "default: those of the checkpoint's recipe.yaml, if any")
    p.add_argument("--retrieval", nargs="+", default=[], choices=("thumbnail", "thumbnail_colour", "model"),
                   metavar="FEATURES",
                   help="feature sources of the retrieval baseline, one row each: thumbnail (model-free 16x24 "
                        "grey tiny image), thumbnail_colour, model (the checkpoint's own backbone) "
                        "(default: thumbnail model)")
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (report.md, plots/, predictions/)")
    p.add_argument("--frame", default=None, metavar="ORIGIN",
                   help="local ENU origin: comballaz or epfl (default: from the flight names)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--no-retrieval", action="store_true", help="skip the nearest-neighbour retrieval baselines")
    _device_arg(p)
    p.set_defaults(func=_run_evaluate)
    return p


def _run_saliency(args: argparse.Namespace) -> int:
    from topoloc.experiments.recipe import explain_checkpoint

    path = explain_checkpoint(args.checkpoint, args.data, args.flights, args.out, figure_images=args.num_images,
                              share_images=args.share_images, frame=args.frame, device=args.device)
    print(f"saliency: {path}")
    return 0


def add_saliency(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("saliency", help="saliency figures of a checkpoint: image | before | after | difference",
                       description="SmoothGrad saliency maps of the trained model and of the untrained model of "
                                   "the same seed, their difference, the randomisation check (rank correlation "
                                   "with the same network with random weights) and (where the images have "
                                   "semantics) the share of saliency per class, stable vs unstable.")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="last.pt or best.pt written by topoloc train")
    p.add_argument("--data", required=True, metavar="ROOT", help="folder holding the flight folders")
    p.add_argument("--flights", nargs="+", required=True, metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help="flights whose images are explained, e.g. comballaz-2020-11-06-planned:real")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of saliency.md and plots/")
    p.add_argument("--num-images", type=int, default=3, help="images (rows) per figure and domain (default: 3)")
    p.add_argument("--share-images", type=int, default=16,
                   help="images per domain for the per-class saliency shares (default: 16)")
    p.add_argument("--frame", default=None, metavar="ORIGIN",
                   help="local ENU origin: comballaz or epfl (default: from the flight names)")
    _device_arg(p)
    p.set_defaults(func=_run_saliency)
    return p


def _run_demo(args: argparse.Namespace) -> int:
    from topoloc.experiments.demo import run_demo

    report = run_demo(args.out, smoke=args.smoke, device=args.device, seed=args.seed)
    print(f"report: {report}")
    return 0


def add_demo(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="the whole system in one command: render, train, evaluate, explain, report",
                       description="Renders synthetic training views around a planned TOPO flight (a corridor "
                                   "and a Latin hypercube in its envelope) and the test flights' own poses "
                                   "(synthetic and \"real\"), trains AtLoc with and without the sim-to-real "
                                   "augmentations, evaluates both beside the constant pose, retrieval and the "
                                   "coverage ceiling, draws saliency figures and writes DIR/report.md. Under 15 "
                                   "minutes on a 2-core CPU; larger with a GPU. A re-run into the same DIR "
                                   "continues where an interrupted one stopped.")
    p.add_argument("--out", required=True, metavar="DIR", help="demo folder (data/, runs/, plots/, report.md)")
    p.add_argument("--smoke", action="store_true", help="toy size, about a minute on a CPU (for tests)")
    p.add_argument("--seed", type=int, default=0, help="seed of the render and of both trainings (default: 0)")
    _device_arg(p)
    p.set_defaults(func=_run_demo)
    return p


def add_engine_commands(sub) -> None:
    """Adds ``train``, ``evaluate``, ``saliency`` and ``demo`` to an argparse subparsers object."""
    add_train(sub)
    add_evaluate(sub)
    add_saliency(sub)
    add_demo(sub)
