"""Throughput of the registered pose regressors: inference and training steps, images per second.

Prints the device, the settings, one line per model and each model's ratio to the paper's
``atloc_resnet34`` (timed even when ``--models`` leaves it out). On a GPU the figures are images per
wall-clock second; on the CPU, images per CPU-second of the process (robust to other jobs on a shared
machine; use ``--threads 1`` there, as OpenMP threads that spin while waiting for a busy core count as
CPU time). Run from the repository root after ``pip install -e .`` (or with ``PYTHONPATH=.``).
Example (CPU, small):

    python benchmarks/bench_models.py --batch 4 --size 160 --iters 5 --threads 1
    python benchmarks/bench_models.py --device cuda --batch 64 --size 256 --amp --channels-last
"""

from __future__ import annotations

import argparse
import time

import torch

from topoloc._device import cpu_name
from topoloc import AtLocLoss, create_model, list_models
from topoloc.cli._common import non_negative_int, positive_int, torch_device

#: The AtLoc paper's network: every ratio is relative to it, so it is always timed.
BASELINE = "atloc_resnet34"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, iters: int, device: torch.device) -> float:
    """Seconds per call: wall time on a GPU; on the CPU, the process's CPU time, which a machine
    shared with other jobs inflates much less than the wall time (divide by the thread count for
    an idle machine's wall time)."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    fn()  # warm-up (cuDNN autotune, allocator, lazy init)
    _sync(device)
    start = clock()
    for _ in range(iters):
        fn()
    _sync(device)
    return (clock() - start) / iters


def bench(name: str, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    torch.manual_seed(0)
    model = create_model(name).to(device)
    loss_fn = AtLocLoss().to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    images = torch.rand(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=memory_format)
    images = model.normalize(images)
    target = torch.randn(args.batch, model.out_dim, device=device)  # the model's rotation code: 9 for 6D
    optimiser = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=5e-5)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

    def infer():
        with torch.no_grad(), amp:
            model(images)

    def train_step():
        optimiser.zero_grad(set_to_none=True)
        with amp:
            loss = loss_fn(model(images), target)
        loss.backward()
        optimiser.step()

    model.eval()
    t_infer = _time(infer, args.iters, device)
    model.train()
    t_train = _time(train_step, args.iters, device)
    return args.batch / t_infer, args.batch / t_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=torch_device, default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--models", nargs="+", default=["atloc_resnet34", "posenet_resnet34",
                        "atloc_spatial_resnet34", "atloc_resnet18", "atloc_efficientnet_b0",
                        "atloc_convnext_tiny", "atloc_vit_small"],
                        help=f"registered models to time (available: {', '.join(list_models())})")
    parser.add_argument("--batch", type=positive_int, default=8, help="images per batch")
    parser.add_argument("--size", type=positive_int, default=224, help="square input size in pixels (multiple of 16)")
    parser.add_argument("--iters", type=positive_int, default=5, help="timed iterations after one warm-up")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--threads", type=non_negative_int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    unknown = [m for m in args.models if m not in list_models()]
    if unknown:
        parser.error(f"--models: unknown {unknown}; available: {', '.join(list_models())}")
    if args.size % 16:  # the ViTs' patches: their assertion came after the baseline had been timed
        parser.error(f"argument --size: expected a multiple of 16 (the ViTs' patch size), got {args.size}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU {cpu_name()}, {torch.get_num_threads()} threads")
    print(f"device: {name}; torch {torch.__version__}")
    print(f"batch {args.batch} x 3 x {args.size} x {args.size}, amp={args.amp}, "
          f"channels_last={args.channels_last}, {args.iters} timed iterations; "
          "train step = forward + AtLocLoss + backward + Adam")
    models = list(dict.fromkeys(args.models))
    if BASELINE not in models:  # the ratios need it: timed first, and said so
        print(f"{BASELINE} added: the ratios are relative to it")
        models.insert(0, BASELINE)
    results = {m: bench(m, args, device) for m in models}
    base = results[BASELINE]
    unit = "img/s" if device.type == "cuda" else "img/cpu-s"
    print(f"{'model':<26}{'infer ' + unit:>16}{'train ' + unit:>16}{'infer ratio':>13}{'train ratio':>13}")
    for model_name, (inf, tr) in results.items():
        print(f"{model_name:<26}{inf:>16.2f}{tr:>16.2f}{inf / base[0]:>13.2f}{tr / base[1]:>13.2f}")
    print(f"ratios: {unit} relative to {BASELINE} (the AtLoc paper's network); "
          + ("wall clock" if device.type == "cuda" else "CPU time of this process (all threads)"))


if __name__ == "__main__":
    main()
