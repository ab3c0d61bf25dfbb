"""Batched inference (`topoloc.predict`) with channels_last inputs against the contiguous (NCHW) ones.

`predict`, the retrieval features and AdaBN's statistics pass feed the network channels_last inputs on
every device since 2026-12-01; before, only on CUDA. This measures what that changes on the device at
hand: the demo's CPU model (``atloc_resnet18`` with `demo_config(device="cpu")`'s ``model_kwargs``, at
its 64x96 px) and the GPU preset's (``atloc_resnet34`` at 256x384 px), random weights, on a uint8
`ImageCache` of random images, the same model and images for both layouts. Each figure is the median
of ``--repeats`` full `predict` calls after one untimed call, images per second; the ratio is
channels_last / NCHW in the same run. It also prints the largest difference between the two layouts'
positions (metres), which is float rounding. Throughput is wall time: run it on a quiet machine.
Run from the repository root after ``pip install -e .``. Examples:

    python benchmarks/bench_predict.py                         # CPU (and CUDA if present)
    python benchmarks/bench_predict.py --images 128 --repeats 1  # a quick check that it runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import torch

from topoloc._device import cpu_name
from topoloc import PoseNormalizer, create_model, predict
from topoloc.cli._common import positive_int
from topoloc.data.cache import ImageCache
from topoloc.experiments.demo import demo_config

#: (label, model name, model kwargs, (H, W)).
CASES = [
    ("demo cpu model 64x96", "atloc_resnet18", demo_config(smoke=False, device="cpu").model_kwargs, (64, 96)),
    ("gpu preset model 256x384", "atloc_resnet34", {"feat_dim": 512, "dropout": 0.2}, (256, 384)),
]


def _normalizer(n: int) -> PoseNormalizer:
    """A normalizer fitted on ``n`` random poses (the decoding costs the same whatever they are)."""
    g = torch.Generator().manual_seed(1)
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=torch.float64))
    c2w[:, :3, :3] = q * torch.sign(torch.linalg.det(q))[:, None, None]
    c2w[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=torch.float64) * 100.0
    return PoseNormalizer.fit(c2w.numpy())


def _images_per_s(model, cache, normalizer, device, channels_last: bool, repeats: int, batch_size: int):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = predict(model, cache, normalizer, batch_size=batch_size, device=device, channels_last=channels_last)
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        predict(model, cache, normalizer, batch_size=batch_size, device=device, channels_last=channels_last)
        sync()
        times.append(time.perf_counter() - t)
    return len(cache) / float(np.median(times)), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=positive_int, default=1024, help="images per predict call (default 1024)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed predict calls per figure (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="predict's batch size (default 64, as evaluate)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"# {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
          f"CPU {cpu_name()} ({torch.get_num_threads()} threads)"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(f"# {args.images} images per call, batch {args.batch_size}, median of {args.repeats} calls")
    print("| model, input | device | NCHW img/s | channels_last img/s | channels_last / NCHW | max position diff m |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    normalizer = _normalizer(64)
    for label, name, kwargs, (h, w) in CASES:
        torch.manual_seed(0)
        images = torch.randint(0, 256, (args.images, 3, h, w), dtype=torch.uint8)
        cache = ImageCache(images, torch.eye(4).repeat(args.images, 1, 1))
        for device in devices:
            n = min(args.images, 64) if device.type == "cpu" and name == "atloc_resnet34" else args.images
            cache_here = (cache if n == args.images
                          else ImageCache(images[:n], torch.eye(4).repeat(n, 1, 1)))  # CPU: ~9 img/s
            model = create_model(name, **kwargs).to(device).eval()
            nchw, a = _images_per_s(model, cache_here, normalizer, device, False, args.repeats, args.batch_size)
            last, b = _images_per_s(model, cache_here, normalizer, device, True, args.repeats, args.batch_size)
            diff = float((a[:, :3, 3] - b[:, :3, 3]).abs().max())
            print(f"| {label} ({len(cache_here)} images) | {device.type} | {nchw:.0f} | {last:.0f} | {last / nchw:.2f} "
                  f"| {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
