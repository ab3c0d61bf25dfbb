"""Training step of the demo's CPU model at ResNet18's full width and narrower, on 1 and 2 threads.

The demo's CPU preset trains `atloc_resnet18` (feat_dim 256, dropout 0.2) on batches of 32 images at
64x96 px. This times one training step (forward, `AtLocLoss`, backward, Adam) at ResNet18's stage
widths (64, 128, 256, 512: the baseline, what the preset used until 2026-12-01) and at narrower ones
(timm's ``channels``; the preset's half width also with a 32-channel stem, ``stem_width``, instead of
timm's 64), in the same run, and prints each width's ratio to the full width; each width in NCHW
(PyTorch's default layout, the baseline) and in channels_last (`TrainConfig.cpu_channels_last`), with
the ratio of the two. Figures are wall-clock milliseconds per step, the median of the timed
steps after the warm-up ones: run it alone on the machine (wall time is what the thread count
changes, and what a user waits for). Float32 unless ``--amp`` (bf16 autocast, as the demo uses on
CPUs with native bf16). Example:

    python benchmarks/bench_width.py --threads 1 2
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

import torch

from topoloc._device import cpu_name
from topoloc import AtLocLoss, create_model
from topoloc.cli._common import non_negative_int, positive_int
from topoloc.experiments.demo import HALF_WIDTH

#: name -> (stage widths, stem width); timm's 7x7 stem has 64 channels unless told otherwise.
WIDTHS = {"full (64-512)": ([64, 128, 256, 512], 64), "3/4 (48-384)": ([48, 96, 192, 384], 64),
          "half (32-256)": (HALF_WIDTH, 64), "half, 32 stem": (HALF_WIDTH, 32)}


def step_ms(channels: list[int], stem: int, args: argparse.Namespace, channels_last: bool = False) -> float:
    """Median wall-clock milliseconds of one training step at these stage and stem widths."""
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model("atloc_resnet18", feat_dim=256, dropout=0.2,
                         backbone_kwargs=dict(channels=channels, stem_width=stem))
    model = model.to(memory_format=layout)
    loss_fn = AtLocLoss()
    optimiser = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=1e-3)
    images = model.normalize(torch.rand(args.batch, 3, args.height, args.width)).contiguous(memory_format=layout)
    target = torch.randn(args.batch, model.out_dim)  # the pose code: 3 + the rotation code
    times = []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp):
            pred = model(images)
        loss_fn(pred.float(), target).backward()
        optimiser.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2], help="torch thread counts to time")
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--height", type=positive_int, default=64)
    parser.add_argument("--width", type=positive_int, default=96)
    parser.add_argument("--warmup", type=non_negative_int, default=3)
    parser.add_argument("--iters", type=positive_int, default=10)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CPUs with native bf16)")
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"{now:%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
          f"torch {torch.__version__}, batch {args.batch} at {args.height}x{args.width}, "
          f"{'bf16 autocast' if args.amp else 'float32'}, median of {args.iters} steps after {args.warmup}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        base = None
        for k, (name, (channels, stem)) in enumerate(WIDTHS.items()):
            # NCHW and channels_last in alternating order, so that a drift of the machine falls on both sides
            if k % 2:
                cl_ms, ms = step_ms(channels, stem, args, channels_last=True), step_ms(channels, stem, args)
            else:
                ms, cl_ms = step_ms(channels, stem, args), step_ms(channels, stem, args, channels_last=True)
            base = base or ms
            print(f"{threads} thread{'s' if threads > 1 else ' '}  {name:14s} NCHW {ms:6.0f} ms/step "
                  f"{1000 * args.batch / ms:6.1f} img/s  {base / ms:4.2f}x as fast as the full width | "
                  f"channels_last {cl_ms:6.0f} ms/step {1000 * args.batch / cl_ms:6.1f} img/s  "
                  f"{ms / cl_ms:4.2f}x as fast as NCHW", flush=True)


if __name__ == "__main__":
    main()
