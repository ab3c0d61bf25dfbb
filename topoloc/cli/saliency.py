"""``topoloc saliency``: saliency figures of a checkpoint (`topoloc.experiments.recipe.explain_checkpoint`)."""

from __future__ import annotations

import argparse

from topoloc.cli._common import (CHECKPOINT_FLAGS, checkpoint_arg, device_arg, flights_args, frame_arg, out_dir,
                                 positive_int)

__all__ = ["add"]


def _run(args: argparse.Namespace) -> int:
    from topoloc.experiments import recipe

    path = recipe.explain_checkpoint(args.checkpoint, args.data, args.flights, args.out, figure_images=args.num_images,
                              share_images=args.share_images, frame=args.frame, device=args.device)
    print(f"saliency: {path}")
    return 0


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("saliency", help="saliency figures of a checkpoint: image | before | after | difference",
                       description="SmoothGrad saliency maps of the trained model and of the untrained model of "
                                   "the same seed, their difference, the randomisation check (rank correlation "
                                   "with the same network with random weights) and (where the images have "
                                   "semantics) the share of saliency per class, stable vs unstable.")
    checkpoint_arg(p)
    flights_args(p, "flights whose images are explained, e.g. comballaz-2020-11-06-planned:real")
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR", help="folder of saliency.md and plots/")
    p.add_argument("--num-images", type=positive_int, default=3,
                   help="images (rows) per figure and domain (default: 3)")
    p.add_argument("--share-images", type=positive_int, default=16,
                   help="images per domain for the per-class saliency shares, split evenly among its flights "
                        "(so up to this many: 15 of 16 with 3 flights; default: 16)")
    p.add_argument("--frame", default=None, type=frame_arg, metavar="ORIGIN",
                   help="local ENU origin: comballaz, epfl or LAT,LON,H (degrees, degrees, ellipsoidal m) "
                        "(default: from the flight names)")
    device_arg(p)
    p.set_defaults(func=_run, flag_names={**CHECKPOINT_FLAGS, "figure_images": "--num-images",
                                          "share_images": "--share-images"})
    return p
