"""Two CPU trainings side by side (`topoloc.engine.train_side_by_side`) against one after the other.

The baseline is what a user does without it: the two `topoloc.train` runs one after the other, each on all
``--threads`` torch threads. Side by side, each run gets its share of the threads in its own process. Both
ways train the same two runs (seeds 0 and 1; the second with SimToReal on half of each batch, as the
demo's augmented run) for ``--steps`` steps each on an `ImageCache` of random images, and the figure is
the wall time of the pair, start-up included: the time a user waits for both. The model is the demo's CPU
one (`--width-factor 0.5`: the half-width ResNet18; 1: the full width), batches of 32 at 64x96 px, float32
(``--amp``: bf16 autocast, on CPUs with native bf16). Each way runs ``--repeats`` times, alternating, and
the medians are compared. Run it alone on the machine.

    python benchmarks/bench_side_by_side.py --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from topoloc._device import cpu_name
from topoloc.cli._common import positive_int
from topoloc.data import ImageCache
from topoloc.engine import TrainConfig, train, train_side_by_side
from topoloc.experiments.demo import HALF_WIDTH


def configs(args: argparse.Namespace, out: Path) -> dict[str, TrainConfig]:
    """The pair: an unaugmented run and an augmented one, one epoch of ``args.steps`` steps each."""
    kwargs: dict = dict(feat_dim=256, dropout=0.2)
    if args.width_factor == 0.5:
        kwargs["backbone_kwargs"] = dict(channels=HALF_WIDTH)
    common = dict(model="atloc_resnet18", model_kwargs=kwargs, image_size=(args.height, args.width),
                  batch_size=args.batch, epochs=1, lr=1e-3, device="cpu", cache_device="cpu", cpu_amp=args.amp,
                  val_every=0, progress=False, tensorboard=False, overwrite=True, drop_last=True)
    return {"unaugmented": TrainConfig(seed=0, out_dir=str(out / "a"), **common),
            "augmented": TrainConfig(seed=1, out_dir=str(out / "b"), augment="simtoreal", augment_strength=0.5,
                                     augment_fraction=0.5, **common)}


def one_after_the_other(cache: ImageCache, args: argparse.Namespace, out: Path) -> float:
    tic = time.perf_counter()
    for cfg in configs(args, out).values():
        train(cfg, cache)
    return time.perf_counter() - tic


def side_by_side(cache: ImageCache, args: argparse.Namespace, out: Path) -> float:
    tic = time.perf_counter()
    train_side_by_side(configs(args, out), cache, threads=max(1, args.threads // 2), progress=False)
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads of the machine's share")
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--height", type=positive_int, default=64)
    parser.add_argument("--width", type=positive_int, default=96)
    parser.add_argument("--steps", type=positive_int, default=60, help="steps of each run")
    parser.add_argument("--repeats", type=positive_int, default=2, help="runs of each way, alternating")
    parser.add_argument("--width-factor", type=float, choices=(0.5, 1.0), default=0.5,
                        help="ResNet18's width: 0.5 (the demo's CPU preset) or 1")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CPUs with native bf16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = args.steps * args.batch
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, args.height, args.width), generator=g, dtype=torch.uint8)
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    c2w[:, :3, 3] = torch.rand(n, 3, generator=g, dtype=torch.float64) * 500.0
    cache = ImageCache(images, c2w)
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"{now:%Y-%m-%d %H:%M} UTC, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s), ResNet18 at width {args.width_factor:g}, batch {args.batch} at "
          f"{args.height}x{args.width}, {'bf16 autocast' if args.amp else 'float32'}, 2 runs x {args.steps} steps; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    walls: dict[str, list[float]] = {"one after the other": [], "side by side": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            walls["one after the other"].append(one_after_the_other(cache, args, Path(tmp) / f"seq{r}"))
            walls["side by side"].append(side_by_side(cache, args, Path(tmp) / f"par{r}"))
    base = statistics.median(walls["one after the other"])
    for name, times in walls.items():
        wall = statistics.median(times)
        print(f"{name:20s} {wall:7.1f} s for both runs ({', '.join(f'{t:.1f}' for t in times)})  "
              f"{2 * args.steps / wall:5.2f} steps/s  {base / wall:4.2f}x the pace of one after the other",
              flush=True)


if __name__ == "__main__":
    main()
