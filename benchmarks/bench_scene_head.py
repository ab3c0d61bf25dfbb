"""Training step with and without the auxiliary scene-coordinate head (`TrainConfig.scene_coords`).

The baseline is what a user trains without the head: the same `topoloc.train` run, model, batch and
images with ``scene_coords=0``. Both go through the real trainer (cache gather, loss, backward, Adam;
with the head also its targets' gather, its forward and backward and its share of Adam), on an
`ImageCache` of random images and random world points, at the demo's CPU settings by default: the
half-width `atloc_resnet18` (feat_dim 256, dropout 0.2), batches of 32 at 64x96 px, channels_last,
float32 (``--amp``: bf16 autocast, on CPUs with native bf16). A step's time is the wall-clock time
between two optimiser steps (the trainer's callbacks); each setting runs ``--repeats`` times, alternating
with the other, and the figure is the median over all their timed steps. Run it alone on the machine.

    python benchmarks/bench_scene_head.py --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time
from pathlib import Path

import torch

from topoloc._device import cpu_name
from topoloc.engine import TrainConfig, train
from topoloc.cli._common import non_negative_int, positive_int
from topoloc.data import ImageCache
from topoloc.experiments.demo import HALF_WIDTH


class _Enough(Exception):
    """Raised by the timing callback once it has every step it times."""


def positive_float(value: str) -> float:
    """A number > 0 (the head's weight; 0 is the run without the head)."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value!r}")
    return number


def step_times(weight: float, cache: ImageCache, points: torch.Tensor, args: argparse.Namespace, out: Path
               ) -> list[float]:
    """Seconds between consecutive optimiser steps of one run (all in its first epoch: no checkpoint is
    written between them), after ``args.warmup`` steps."""
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs=dict(feat_dim=256, dropout=0.2,
                                                                backbone_kwargs=dict(channels=HALF_WIDTH)),
                      image_size=(args.height, args.width), batch_size=args.batch, epochs=1, lr=1e-3,
                      device="cpu", cache_device="cpu", cpu_channels_last=True, cpu_amp=args.amp, val_every=0,
                      progress=False, tensorboard=False, scene_coords=weight, out_dir=str(out), overwrite=True,
                      checkpoint_every_steps=0)
    stamps: list[float] = []
    last = args.warmup + args.steps + 1

    def stamp(event: dict) -> None:
        stamps.append(time.perf_counter())
        if len(stamps) == last:
            raise _Enough  # the rest of the run is not timed

    try:
        train(cfg, cache, callbacks=[stamp], scene_points=points if weight > 0 else None)
    except _Enough:
        pass
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return gaps[args.warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads")
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--height", type=positive_int, default=64)
    parser.add_argument("--width", type=positive_int, default=96)
    parser.add_argument("--warmup", type=non_negative_int, default=3)
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps per run")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each setting, alternating")
    parser.add_argument("--weight", type=positive_float, default=3.0, help="the head's scene_coords weight")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CPUs with native bf16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = (args.warmup + args.steps + 2) * args.batch  # one epoch holds every timed step
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, args.height, args.width), generator=g, dtype=torch.uint8)
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    c2w[:, :3, 3] = torch.rand(n, 3, generator=g, dtype=torch.float64) * 500.0
    cache = ImageCache(images, c2w)
    points = torch.rand(n, 3, args.height, args.width, generator=g) * 1000.0
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"{now:%Y-%m-%d %H:%M} UTC, {cpu_name()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), the demo's half-width ResNet18, batch {args.batch} at "
          f"{args.height}x{args.width}, "
          f"{'bf16 autocast' if args.amp else 'float32'}, channels_last; median of {args.repeats} x {args.steps} "
          f"steps after {args.warmup} each", flush=True)
    times: dict[str, list[float]] = {"without the head": [], f"scene_coords={args.weight:g}": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, weight in zip(times, (0.0, args.weight)):
                times[name] += step_times(weight, cache, points, args, Path(tmp) / f"run{r}-{weight:g}")
    base = statistics.median(times["without the head"])
    for name, gaps in times.items():
        ms = 1000 * statistics.median(gaps)
        print(f"{name:22s} {ms:6.1f} ms/step {1000 * args.batch / ms:6.1f} img/s  {ms / (1000 * base):4.2f}x as long "
              "as the step without the head", flush=True)


if __name__ == "__main__":
    main()
