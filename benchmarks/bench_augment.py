"""Throughput of the augment ops (images/s) against albumentations' closest transforms on one CPU core.

Each augment op runs batched (float32, p=1, so every image is transformed) on --device; each
albumentations transform runs image by image on uint8 HWC with one CPU thread (torch and
OpenCV), p=1, in the same run. SimToReal(0.5, p=0.5) applies each of its ops to a share of the
images (p times the op's weight); its reference composes the closest albumentations transform of
each of its ops with the same probability. On the CPU the augment ops get one torch thread too,
unless --threads says otherwise. Prints the device, the table and the ratios; --markdown writes
the table to a file.

    python benchmarks/bench_augment.py --device cuda --batch 256 --size 256
    python benchmarks/bench_augment.py --device cpu --batch 32 --iters 3 --markdown /tmp/augment_cpu.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import augment  # noqa: E402
from topoloc._device import cpu_name  # noqa: E402
from topoloc.cli._common import non_negative_int, out_file, positive_int, torch_device  # noqa: E402

# Our op -> the albumentations transform closest in purpose (the reference for its ratio).
CLOSEST = {
    "RandomClouds": "RandomFog",
    "RandomSnowCover": "RandomSnow",
    "RandomSeasonShift": "HueSaturationValue",
    "RandomHaze": "RandomFog",
    "RandomIllumination": "RandomSunFlare",
    "RandomCameraEffects": "ISONoise",
    "RandomEdgeAbstraction": "Posterize",
    "FourierDomainAdaptation": "FDA",
    "SimToReal(0.5, p=0.5)": "Compose(closest of its 8 ops, same p)",
}
SIMTOREAL = "SimToReal(0.5, p=0.5)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_ops(size: int, device: torch.device) -> dict[str, torch.nn.Module]:
    bank = torch.rand(16, 3, size, size, generator=torch.Generator().manual_seed(0))
    ops = {
        "RandomClouds": augment.RandomClouds(p=1.0),
        "RandomSnowCover": augment.RandomSnowCover(p=1.0),
        "RandomSeasonShift": augment.RandomSeasonShift(p=1.0),
        "RandomHaze": augment.RandomHaze(p=1.0),
        "RandomIllumination": augment.RandomIllumination(p=1.0),
        "RandomCameraEffects": augment.RandomCameraEffects(p=1.0),
        "RandomEdgeAbstraction": augment.RandomEdgeAbstraction(p=1.0),
        "FourierDomainAdaptation": augment.FourierDomainAdaptation(bank, p=1.0),
        "SimToReal(0.5, p=0.5)": augment.SimToReal(strength=0.5, p=0.5, bank=bank),
    }
    return {name: op.to(device) for name, op in ops.items()}


def time_torch(op: torch.nn.Module, batch: torch.Tensor, iters: int, warmup: int) -> float:
    """Images per second of ``op`` on ``batch`` (median of ``iters`` timed calls)."""
    with torch.no_grad():
        for _ in range(warmup):
            op(batch)
        _sync(batch.device)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            op(batch)
            _sync(batch.device)
            times.append(time.perf_counter() - start)
    return batch.shape[0] / float(np.median(times))


def simtoreal_reference(simtoreal: torch.nn.Module) -> list[tuple[str, float]]:
    """(closest albumentations transform, probability) of each op of ``simtoreal``, in its order."""
    return [(CLOSEST[type(op).__name__], float(op.p)) for op in simtoreal.children()]


def build_albumentations(size: int, simtoreal: list[tuple[str, float]]) -> dict[str, tuple[object, dict]]:
    """name -> (transform, extra keyword data passed with each image); ``simtoreal``: `simtoreal_reference`."""
    import albumentations as A

    rng = np.random.default_rng(0)
    references = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
    plain = {
        "RandomFog": A.RandomFog(p=1.0),
        "RandomSnow": A.RandomSnow(p=1.0),
        "RandomSunFlare": A.RandomSunFlare(p=1.0),
        "HueSaturationValue": A.HueSaturationValue(p=1.0),
        "ISONoise": A.ISONoise(p=1.0),
        "Posterize": A.Posterize(p=1.0),
    }
    out: dict[str, tuple[object, dict]] = {name: (t, {}) for name, t in plain.items()}
    # albumentations 2.x takes FDA's reference images with each call, under its metadata key.
    out["FDA"] = (A.FDA(p=1.0), {"fda_metadata": references})
    chain = [type(out[name][0])(p=p) for name, p in simtoreal]
    out[CLOSEST[SIMTOREAL]] = (A.Compose(chain, seed=0), {"fda_metadata": references})
    return out


def time_albumentations(transform: object, extra: dict, images: list[np.ndarray], min_seconds: float) -> float:
    """Images per second of an albumentations transform applied to one image at a time."""
    transform(image=images[0], **extra)  # warm-up
    count, start = 0, time.perf_counter()
    while True:
        for image in images:
            transform(image=image, **extra)
            count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return count / elapsed


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0 (NaN or infinity would time forever)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds above 0, got {text!r}")
    return value


def ratio_text(ratio: float) -> str:
    """``12.3x``, and two significant figures below 1 (``0.046x``, not ``0.0x``)."""
    return f"{ratio:.1f}x" if ratio >= 1.0 else f"{ratio:.2g}x"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"CPU {cpu_name()}, "
            f"{torch.get_num_threads()} torch thread{'s' if torch.get_num_threads() != 1 else ''}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=torch_device, default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device for the augment ops (cpu, cuda, cuda:1)")
    parser.add_argument("--batch", type=positive_int, default=256, help="images per batch for the augment ops")
    parser.add_argument("--size", type=positive_int, default=256, help="image height and width in pixels")
    parser.add_argument("--iters", type=positive_int, default=10,
                        help="timed batches per augment op (the median is reported)")
    parser.add_argument("--warmup", type=non_negative_int, default=2, help="untimed batches per augment op first")
    parser.add_argument("--threads", type=non_negative_int, default=0,
                        help="torch CPU threads for the augment ops (0: one on the CPU, as albumentations gets; "
                             "torch's default for the host side of a GPU run)")
    parser.add_argument("--albu-images", type=positive_int, default=16,
                        help="distinct images cycled through for albumentations")
    parser.add_argument("--albu-seconds", type=positive_seconds, default=2.0,
                        help="minimum timing per albumentations transform")
    parser.add_argument("--compile", action="store_true", help="time torch.compile(op) (inductor) instead of eager")
    parser.add_argument("--skip-albumentations", action="store_true", help="time only the augment ops")
    parser.add_argument("--markdown", type=out_file, default=None, help="also write the table as markdown to this file")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    torch.manual_seed(0)
    batch = torch.rand(args.batch, 3, args.size, args.size, device=device)
    ops = ops_eager = build_ops(args.size, device)
    if args.compile:
        ops = {name: torch.compile(op) for name, op in ops.items()}
    ours = {name: time_torch(op, batch, args.iters, args.warmup) for name, op in ops.items()}
    ours_device = device_name(device)

    theirs: dict[str, float] = {}
    if not args.skip_albumentations:
        import cv2

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for _ in range(args.albu_images)]
        theirs = {
            name: time_albumentations(t, extra, images, args.albu_seconds)
            for name, (t, extra) in build_albumentations(args.size, simtoreal_reference(ops_eager[SIMTOREAL])).items()
        }
        torch.set_num_threads(threads)

    if args.skip_albumentations:
        theirs_line = "albumentations not timed (--skip-albumentations)"
    else:
        import albumentations

        theirs_line = f"albumentations {albumentations.__version__} on 1 CPU core, uint8 HWC, one image at a time, p=1"
    lines = [
        f"augment {args.size}x{args.size}, batch {args.batch}, float32, p=1 (SimToReal: as its row says), "
        f"on {ours_device} ({device.type}); "
        f"{theirs_line}; "
        f"torch {torch.__version__}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"host cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
        + (", torch.compile" if args.compile else ""),
        "",
        "| augment op | images/s | closest albumentations | images/s (1 core) | ratio |",
        "|---|---:|---|---:|---:|",
    ]
    for name, rate in ours.items():
        ref = CLOSEST[name]
        ref_rate = theirs.get(ref)
        ratio = ratio_text(rate / ref_rate) if ref_rate else "n/a"
        ref_text = f"{ref_rate:,.0f}" if ref_rate else "not measured"
        lines.append(f"| {name} | {rate:,.0f} | {ref} | {ref_text} | {ratio} |")
    others = [n for n in theirs if n not in CLOSEST.values()]
    if others:
        lines += ["", "Other albumentations references (1 core): "
                  + ", ".join(f"{n} {theirs[n]:,.0f} images/s" for n in others)]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
