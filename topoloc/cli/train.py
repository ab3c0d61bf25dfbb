"""``topoloc train``: train, evaluate and report one recipe (`topoloc.experiments.recipe.run_recipe`)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from topoloc._paths import not_a_checkpoint_file
from topoloc.cli._common import torch_device

__all__ = ["add"]


def _run(args: argparse.Namespace) -> int:
    from topoloc.engine.resume import run_checkpoint
    from topoloc.experiments import recipe

    if args.init_from and not Path(args.init_from).is_file():  # at the edge: training decodes its images first
        raise FileNotFoundError(f"--init-from {args.init_from!r}: {not_a_checkpoint_file(args.init_from)} (another "
                                "run's checkpoint: its last.pt or best.pt)")
    extra: dict[str, Any] = {"resume": True} if args.resume else {}
    if args.allow_config_change:
        extra["resume_changes"] = "allow"
    if args.overwrite:
        extra["overwrite"] = True
    if args.device:
        extra["device"] = args.device
    if args.init_from:
        extra["init_from"] = args.init_from
    loaded = recipe.load_recipe(args.config, args.override, **extra)
    if args.allow_config_change and loaded.train.resume is False:  # a flag that would be ignored is refused
        raise ValueError("--allow-config-change: expected with --resume (or train.resume in the recipe); a new run "
                         "has no checkpoint whose settings could differ")
    if args.resume and run_checkpoint(Path(loaded.train.out_dir)) is None:  # the library says so in its log only
        warnings.warn(f"--resume: no checkpoint (last.pt or best.pt) in {loaded.train.out_dir!r}: a new run starts "
                      "there (is train.out_dir the run's folder?)", stacklevel=1)
    out = recipe.run_recipe(loaded)
    print(f"checkpoint: {out['checkpoint']}\nreport: {out['report']}")
    return 0


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model from a recipe YAML, then evaluate it and write its report",
                       description="Train, evaluate and report one recipe (see recipes/*.yaml in the source "
                                   "repository): the data section names the flights, the train section any "
                                   "TrainConfig field.")
    p.add_argument("--config", required=True, metavar="YAML",
                   help="recipe file with data / train / evaluate sections, e.g. the source repository's "
                        "recipes/synthetic_augmented.yaml")
    p.add_argument("--override", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="dotted overrides parsed as YAML, e.g. train.epochs=5 data.root=/data/topo")
    p.add_argument("--resume", action="store_true",
                   help="continue from <train.out_dir>/last.pt when it exists, else from its best.pt (a killed run "
                        "goes on where it stopped)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: go on although lr, augment, batch size or other training settings differ "
                        "from the checkpoint's (refused otherwise); the change is logged in config_changes.log")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in a train.out_dir that holds another run, removing its config.yaml, "
                        "last.pt, best.pt, log.csv and config_changes.log (refused otherwise)")
    p.add_argument("--init-from", metavar="CHECKPOINT", default=None,
                   help="start from another run's weights (its last.pt or best.pt; the same model): a fine-tune "
                        "(train.init_from)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, type=torch_device,
                   help="override train.device: auto (CUDA when available), cpu or cuda")
    p.set_defaults(func=_run)
    return p
