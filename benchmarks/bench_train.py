"""End-to-end training speed: topoloc's data path vs the original AtLoc data path vs the model alone.

Three training rates for the same model (default ``atloc_resnet34`` at 256 x 256), in one run:

1. original AtLoc path: PIL decodes every PNG in every epoch inside DataLoader workers, then
   torchvision Resize(256) + RandomCrop(256) + ColorJitter(0.7, 0.7, 0.7, 0.5) + ToTensor +
   Normalize, batches copied to the device; timed twice on CUDA: with the model as AtLoc trains it
   (fp32, NCHW) and with topoloc's precision and layout (bf16 autocast, channels_last), which the
   like-for-like ratio uses, so that it measures the data path alone. The loader decodes up to
   ``2 x workers`` batches ahead, so its timed steps are at least ten times that (``--original-steps``)
   and come from one epoch, with no epoch boundary in the timing;
2. topoloc: ``topoloc.train`` on a decoded uint8 `ImageCache` (decoded once, timed apart),
   batches gathered on the device, augmentations on the device, bf16 autocast and channels_last
   on CUDA (optionally ``torch.compile``); once with the original path's ColorJitter (the
   like-for-like ratio) and once with SimToReal (what topoloc's own recipes train with), by default;
3. model only: the same model, loss and optimiser step on a random tensor already on the device
   (same precision settings as 2): the ceiling of any data path.

Then inference latency at batch 1 and throughput at the training batch size. The PNGs are
720 x 480 RGBA renders of Mini-Comballaz (a few distinct renders copied to N files, so decoding
costs what a real TOPO render costs), or, with ``--random-pngs``, smooth random images.

Usage:
    PYTHONPATH=. python benchmarks/bench_train.py --device cuda --batch 64 --steps 30
    PYTHONPATH=. python benchmarks/bench_train.py --device cpu --batch 8 --steps 3   # small, on a CPU
    PYTHONPATH=. python benchmarks/bench_train.py --device cpu --model atloc_resnet18 --size 96 --batch 32 \
        --cpu-amp   # also bf16 autocast on a CPU with native bf16
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from topoloc._device import cpu_name, usable_cpus
from topoloc.cli._common import non_negative_int, out_file, positive_int

FLIGHT = "comballaz-LHS"
AUGMENTS = ("colorjitter", "simtoreal", "none")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train")
    p.add_argument("--model", default="atloc_resnet34", help="topoloc model name")
    p.add_argument("--size", type=positive_int, default=256, help="training image side in pixels (square)")
    p.add_argument("--batch", type=positive_int, default=64, help="batch size")
    p.add_argument("--steps", type=positive_int, default=30, help="timed optimiser steps per method")
    p.add_argument("--warmup", type=non_negative_int, default=3,
                   help="untimed steps before timing (compile, cudnn autotune)")
    p.add_argument("--workers", type=non_negative_int, default=min(8, usable_cpus()),
                   help="DataLoader workers (original path, and the one-time decode of the cache)")
    p.add_argument("--augment", default="colorjitter,simtoreal", type=augment_list,
                   help="on-device augmentations of the topoloc path, comma separated, each timed on its own "
                        "(colorjitter: the original path's, like for like; simtoreal; none)")
    p.add_argument("--strength", type=float, default=0.5, help="SimToReal strength, in [0, 1]")
    p.add_argument("--original-steps", type=non_negative_int, default=0,
                   help="timed steps of the original path (0: the larger of --steps and 10 x the 2 x --workers "
                        "batches its DataLoader decodes ahead, which would otherwise be timed as if free)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (topoloc path and model-only)")
    p.add_argument("--cpu-amp", action="store_true",
                   help="on the CPU, also time the topoloc path under bf16 autocast (TrainConfig.cpu_amp)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--no-channels-last", action="store_true", help="no channels_last on CUDA")
    p.add_argument("--distinct", type=positive_int, default=8, help="distinct renders (copied to fill the image set)")
    p.add_argument("--random-pngs", action="store_true", help="smooth random PNGs instead of Mini-Comballaz renders")
    p.add_argument("--png-dir", default=os.path.join(tempfile.gettempdir(), "topoloc_bench_train"),
                   help="where the PNGs are written (renders are reused across runs)")
    p.add_argument("--infer-iters", type=positive_int, default=20, help="timed inference calls per setting")
    p.add_argument("--skip-original", action="store_true", help="skip the original AtLoc data path")
    p.add_argument("--json", type=out_file, default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    check_args(p, args)
    return args


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, by flag, what would otherwise fail after minutes of timing."""
    from topoloc.data.preset import load_preset
    from topoloc.models import list_models

    if args.model not in list_models():
        p.error(f"argument --model: expected one of {', '.join(list_models())}, got {args.model!r}")
    if not 0.0 <= args.strength <= 1.0:  # NaN fails both
        p.error(f"argument --strength: expected a number in [0, 1], got {args.strength}")
    rows = len(load_preset(FLIGHT))
    if args.batch * (args.steps + args.warmup) > rows:
        p.error(f"arguments --batch, --steps, --warmup: {args.batch} x ({args.steps} + {args.warmup}) images is more "
                f"than the {rows} poses of {FLIGHT}; time fewer steps or a smaller batch")


def _prefetch_bound(args: argparse.Namespace) -> str:
    """How far the original path's rate can be overstated by the batches its loader decoded ahead."""
    ahead, steps = 2 * args.workers, original_steps(args)
    if not ahead:
        return ""
    bound = f"at most {steps / (steps - ahead):.2f}x" if steps > ahead else "without bound"
    return f", {ahead} batches decoded ahead: its rate overstated {bound} if decoding is what limits it"


def original_steps(args: argparse.Namespace) -> int:
    """Timed steps of the original path: ``--original-steps``, else at least ten times the batches its
    DataLoader holds decoded ahead (``prefetch_factor`` 2 per worker)."""
    return args.original_steps or max(args.steps, 10 * 2 * args.workers)


def augment_list(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in names if a not in AUGMENTS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected a comma separated list of {AUGMENTS}, got {text!r}")
    return names


# ----------------------------------------------------------------------------- images
def distinct_renders(folder: Path, k: int, random_pngs: bool) -> tuple[list[Path], str]:
    """k different 720 x 480 RGBA PNGs: Mini-Comballaz renders, or smooth random images.

    Returns the files and what they are (``"Mini-Comballaz"`` or ``"random"``).
    """
    kind = "random" if random_pngs else "Mini-Comballaz"
    folder = folder / kind
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("distinct_*.png"))
    if len(existing) >= k:
        return existing[:k], kind
    if not random_pngs:
        try:
            from topoloc.procedural import render_flights

            render_dir = folder / f"render_{k}"  # k rows spread over the flight (another k: other rows)
            render_flights(render_dir, f"{FLIGHT}:{k}", size=(720, 480), progress=False)
            pngs = sorted((render_dir / FLIGHT).glob("*_img.png"))
            if len(pngs) >= k:
                out = []
                for i, png in enumerate(pngs[:k]):
                    shutil.copy(png, folder / f"distinct_{i:03d}.png")
                    out.append(folder / f"distinct_{i:03d}.png")
                return out, kind
        except Exception as err:  # noqa: BLE001 - fall back to random images, and say so
            print(f"[bench] Mini-Comballaz render failed ({err}); writing smooth random PNGs")
        return distinct_renders(folder.parent, k, random_pngs=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(k):
        low = torch.from_numpy(rng.random((1, 3, 30, 45), dtype=np.float32))
        img = torch.nn.functional.interpolate(low, size=(480, 720), mode="bicubic", align_corners=False)[0]
        img = img + 0.05 * torch.from_numpy(rng.standard_normal((3, 480, 720), dtype=np.float32))
        rgb = (img.clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
        rgba = np.concatenate([rgb, np.full((480, 720, 1), 255, np.uint8)], axis=2)
        Image.fromarray(rgba, "RGBA").save(folder / f"distinct_{i:03d}.png")
        out.append(folder / f"distinct_{i:03d}.png")
    return out, kind


def write_flight(root: Path, sources: list[Path], n: int) -> Path:
    """A TOPO-DataGen flight folder of n PNG files (copies of ``sources``) with preset poses."""
    from topoloc.data.preset import load_preset

    folder = root / FLIGHT
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    np.save(folder / f"{FLIGHT}_poses.npy", load_preset(FLIGHT)[:n])
    for i in range(n):
        shutil.copy(sources[i % len(sources)], folder / f"{FLIGHT}_{i:05d}_img.png")
    return folder


# ----------------------------------------------------------------------------- timing helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, loss_fn, optimizer, device, amp: bool):
    def step(x, target):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            pred = model(x)
        loss = loss_fn(pred, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss
    return step


def build(model_name: str, device, channels_last: bool, compile_: bool):
    from topoloc.models import AtLocLoss, create_model

    torch.manual_seed(0)
    model = create_model(model_name).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = AtLocLoss().to(device)
    optimizer = torch.optim.Adam([{"params": model.parameters()}, {"params": loss_fn.parameters()}],
                                 lr=5e-5, weight_decay=5e-4)
    runner = torch.compile(model) if compile_ else model
    return model, runner, loss_fn, optimizer


# ----------------------------------------------------------------------------- 1. original AtLoc path
class PngPoses(torch.utils.data.Dataset):
    """AtLoc's dataset: PIL decode + torchvision transforms in the worker, every epoch. Sample ``i`` is
    file ``i % len(files)``: one epoch as long as the timing needs, without as many files on disk."""

    def __init__(self, files: list[Path], targets: torch.Tensor, transform) -> None:
        self.files, self.targets, self.transform = files, targets, transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        with open(self.files[i % len(self.files)], "rb") as f:
            img = Image.open(f).convert("RGB")
        return self.transform(img), self.targets[i]


def original_rate(args, files, device, amp: bool = False, channels_last: bool = False) -> float:
    """Images/s of the original AtLoc path over `original_steps` steps after ``--warmup``, all in one epoch.

    Args:
        amp, channels_last: the model's precision and layout (AtLoc's own: neither).
    """
    from torchvision import transforms

    steps = original_steps(args)
    model, runner, loss_fn, optimizer = build(args.model, device, channels_last=channels_last, compile_=False)
    mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    tf = transforms.Compose([
        transforms.Resize(args.size), transforms.RandomCrop(args.size),
        transforms.ColorJitter(brightness=0.7, contrast=0.7, saturation=0.7, hue=0.5),
        transforms.ToTensor(), transforms.Normalize(mean, std)])
    targets = torch.randn((args.warmup + steps) * args.batch, model.out_dim)  # the pose code: 3 + rotation code
    loader = torch.utils.data.DataLoader(
        PngPoses(files, targets, tf), batch_size=args.batch, shuffle=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", drop_last=True)
    step = make_step(runner, loss_fn, optimizer, device, amp=amp)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    done = 0
    tic = time.perf_counter()  # with --warmup 0 the first step is timed; otherwise reset after the warm-up
    for x, target in loader:  # one epoch of warm-up + timed steps
        step(x.to(device, non_blocking=True).contiguous(memory_format=layout), target.to(device, non_blocking=True))
        done += 1
        if done == args.warmup:
            sync(device)
            tic = time.perf_counter()
    sync(device)
    return steps * args.batch / (time.perf_counter() - tic)


# ----------------------------------------------------------------------------- 2. topoloc
def topoloc_rate(args, root: Path, device, augment: str, cpu_amp: bool = False) -> tuple[float, float]:
    from topoloc.data import ImageCache, TopoFlight
    from topoloc.engine import TrainConfig, train

    flight = TopoFlight(root, FLIGHT)
    tic = time.perf_counter()
    cache = ImageCache.from_dataset(flight, (args.size, args.size), device="auto" if device.type == "cuda" else "cpu",
                                    num_workers=args.workers)
    decode_s = time.perf_counter() - tic
    # Epoch 1 is the warm-up (autotune, compile); epoch 2 is timed by the trainer itself.
    n_steps = args.steps
    cache = ImageCache(cache.images[: n_steps * args.batch], cache.c2w[: n_steps * args.batch],
                       cache.names[: n_steps * args.batch])
    cfg = TrainConfig(model=args.model, epochs=2, batch_size=args.batch, image_size=(args.size, args.size),
                      augment=None if augment == "none" else augment, augment_strength=args.strength,
                      device=device.type, amp=not args.no_amp, cpu_amp=cpu_amp,
                      channels_last=not args.no_channels_last, compile=args.compile, val_every=0, progress=False,
                      tensorboard=False,
                      log_every=max(args.steps, 1), out_dir=tempfile.mkdtemp(prefix="bench_train_run_"))
    result = train(cfg, cache)
    shutil.rmtree(cfg.out_dir, ignore_errors=True)
    return float(result.history[-1]["images_per_s"]), decode_s


# ----------------------------------------------------------------------------- 3. model only
def model_only_rate(args, device) -> float:
    cuda = device.type == "cuda"
    cl = cuda and not args.no_channels_last
    model, runner, loss_fn, optimizer = build(args.model, device, channels_last=cl, compile_=args.compile)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    target = torch.randn(args.batch, model.out_dim, device=device)
    step = make_step(runner, loss_fn, optimizer, device, amp=cuda and not args.no_amp)
    model.train()
    for _ in range(args.warmup):
        step(x, target)
    sync(device)
    tic = time.perf_counter()
    for _ in range(args.steps):
        step(x, target)
    sync(device)
    return args.steps * args.batch / (time.perf_counter() - tic)


# ----------------------------------------------------------------------------- inference
@torch.no_grad()
def inference(args, device, amp: bool, channels_last: bool) -> tuple[float, float]:
    """Median latency (ms) at batch 1 and throughput (images/s) at the training batch size."""
    from topoloc.models import create_model

    model = create_model(args.model).to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if args.compile else model

    def run(b):
        x = torch.rand(b, 3, args.size, args.size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            return runner(model.normalize(x))

    for _ in range(max(args.warmup, 1)):
        run(1)
        run(args.batch)
    latencies = []
    for _ in range(args.infer_iters):
        sync(device)
        tic = time.perf_counter()
        run(1)
        sync(device)
        latencies.append(time.perf_counter() - tic)
    iters = max(args.infer_iters // 4, 2)
    sync(device)
    tic = time.perf_counter()
    for _ in range(iters):
        run(args.batch)
    sync(device)
    return 1000 * statistics.median(latencies), iters * args.batch / (time.perf_counter() - tic)


def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({cpu_name()}, {os.cpu_count()} cores, "
                 f"{torch.get_num_threads()} threads)")
    cpu_amp = args.cpu_amp and device.type == "cpu"
    if cpu_amp:  # before any timing
        from topoloc import cpu_has_bf16

        if not cpu_has_bf16():
            raise SystemExit("--cpu-amp: this CPU has no native bf16 (AVX512-BF16 or AMX); nothing to time")
    png_dir = Path(args.png_dir)
    sources, kind = distinct_renders(png_dir / "distinct", args.distinct, args.random_pngs)
    n_files = args.batch * (args.steps + args.warmup)
    root = png_dir / "topo"
    write_flight(root, sources, n_files)
    files = sorted((root / FLIGHT).glob("*_img.png"))

    cuda = device.type == "cuda"
    amp, cl = cuda and not args.no_amp, cuda and not args.no_channels_last
    figures: dict[str, float] = {}
    if not args.skip_original:
        figures["original_img_s"] = original_rate(args, files, device)
        if amp or cl:  # the like-for-like ratio: the same model settings, only the data path differs
            figures["original_same_precision_img_s"] = original_rate(args, files, device, amp=amp, channels_last=cl)
    for augment in args.augment:
        figures[f"topoloc_{augment}_img_s"], figures["decode_s"] = topoloc_rate(args, root, device, augment)
    if cpu_amp:
        for augment in args.augment:
            figures[f"topoloc_{augment}_cpu_bf16_img_s"], _ = topoloc_rate(args, root, device, augment, cpu_amp=True)
    figures["model_only_img_s"] = model_only_rate(args, device)
    figures["latency_b1_fp32_ms"], figures["throughput_fp32_img_s"] = inference(args, device, False, False)
    if cuda:
        cl = not args.no_channels_last
        figures["latency_b1_bf16_ms"], figures["throughput_bf16_img_s"] = inference(args, device, True, cl)

    print(f"\nbench_train  {datetime.date.today()}  device: {name}  torch {torch.__version__}  "
          f"load average {os.getloadavg()[0]:.1f} (at the end)")
    print(f"model {args.model}, {args.size}x{args.size}, batch {args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up (original path: {original_steps(args)} timed steps{_prefetch_bound(args)}; "
          f"topoloc: one untimed epoch "
          f"of {args.steps}), {args.workers} workers, "
          f"augment {','.join(args.augment)} (strength {args.strength}), "
          f"amp {cuda and not args.no_amp}, cpu_amp {cpu_amp}, channels_last {cuda and not args.no_channels_last}, "
          f"compile {args.compile}, "
          f"images: {kind} 720x480 PNG ({len(sources)} distinct, "
          f"{len(files)} files)")
    where = "in workers" if args.workers else "in the main process"
    if "original_img_s" in figures:
        label = f"original AtLoc path (PIL + torchvision {where}, fp32)"
        print(f"  {label:<55}: {figures['original_img_s']:9.1f} img/s")
    if "original_same_precision_img_s" in figures:
        label = f"  the same, model in bf16 {amp} / channels_last {cl}"
        print(f"{label:<57}: {figures['original_same_precision_img_s']:9.1f} img/s")
    for augment in args.augment:
        label = f"topoloc, {augment} (uint8 cache, on-device batches)"
        print(f"  {label:<55}: {figures[f'topoloc_{augment}_img_s']:9.1f} img/s")
        if cpu_amp:
            label = f"topoloc, {augment}, bf16 autocast (cpu_amp)"
            print(f"  {label:<55}: {figures[f'topoloc_{augment}_cpu_bf16_img_s']:9.1f} img/s")
    print(f"  (one-time decode of {len(files)} PNGs into the cache: {figures['decode_s']:.1f} s)")
    print(f"  model only (tensors already on the device)             : {figures['model_only_img_s']:9.1f} img/s")
    same = figures.get("original_same_precision_img_s", figures.get("original_img_s"))
    for augment in args.augment:
        rate = figures[f"topoloc_{augment}_img_s"]
        if same is not None:
            like = " (like for like: the data path alone)" if augment == "colorjitter" else ""
            print(f"  topoloc {augment} / original, same model settings{like} = {rate / same:.2f}x")
        if "original_same_precision_img_s" in figures:
            print(f"  topoloc {augment} / original as AtLoc trains (fp32) = {rate / figures['original_img_s']:.2f}x")
        print(f"  topoloc {augment} / model only = {100 * rate / figures['model_only_img_s']:.0f}%")
        if cpu_amp:
            bf16 = figures[f"topoloc_{augment}_cpu_bf16_img_s"]
            print(f"  topoloc {augment}: bf16 autocast / float32 = {bf16 / rate:.2f}x")
            if "original_img_s" in figures:
                print(f"  topoloc {augment}, bf16 autocast / original (fp32) = {bf16 / figures['original_img_s']:.2f}x")
    print(f"  inference fp32: {figures['latency_b1_fp32_ms']:.1f} ms at batch 1, "
          f"{figures['throughput_fp32_img_s']:.1f} img/s at batch {args.batch}")
    if cuda:
        print(f"  inference bf16: {figures['latency_b1_bf16_ms']:.1f} ms at batch 1, "
              f"{figures['throughput_bf16_img_s']:.1f} img/s at batch {args.batch}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": name, "date": str(datetime.date.today()),
                                               "args": vars(args), **figures}, indent=2))


if __name__ == "__main__":
    main()
