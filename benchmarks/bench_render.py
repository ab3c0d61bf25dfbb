"""Mini-Comballaz rendering speed: images/s, render only and render + write, per domain.

Renders poses of the Comballaz flights (LHS for synthetic-only batches, the November planned
flight for synthetic + real) at a given size on a device, after a warm-up batch, and prints
images/s. World building and baking (once per process) are reported apart.

Baseline, in the same run: the same renderer called one pose at a time (``--baseline-images``
of the poses), as a per-image renderer is driven; the batched / one-at-a-time ratio is printed.

    python benchmarks/bench_render.py --device cpu --size 360x240 --images 64
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time

import torch

from topoloc._device import cpu_name
from topoloc.cli._common import non_negative_int, positive_int, torch_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=torch_device, default="auto", help="cpu, cuda or auto (default: %(default)s)")
    p.add_argument("--size", default="360x240", help="WxH (default: %(default)s)")
    p.add_argument("--images", type=positive_int, default=64, help="images per measurement (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per batch (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--baseline-images", type=non_negative_int, default=16,
                   help="poses rendered one at a time for the baseline, 0 to skip it (default: %(default)s)")
    p.add_argument("--skip-write", action="store_true", help="only measure render-only throughput")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from topoloc.data.preset import load_preset
    from topoloc.geodesy import LocalFrame
    from topoloc.procedural import build_world, parse_size, render_flights
    from topoloc.procedural._noise import image_key
    from topoloc.procedural.renderer import RenderConfig, render
    from topoloc.procedural.writer import _bake
    from topoloc.procedural.appearance import appearance_for_flight

    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    try:
        width, height = parse_size(args.size)
    except ValueError as err:
        p.error(f"argument --size: {err}")
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{cpu_name()}, {torch.get_num_threads()} threads")
    load = f" | load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC | device {device} ({name}) | "
          f"torch {torch.__version__} | size {width}x{height} | batch {args.batch_size}{load}")

    t0 = time.perf_counter()
    cpu_world = build_world(0)  # bakes are made on the CPU
    world = cpu_world.to(device)
    _sync(device)
    print(f"world build (once per process): {time.perf_counter() - t0:.1f} s")
    frame = LocalFrame.named("comballaz")
    config = RenderConfig()
    for flight, domains in (("comballaz-LHS", ("synthetic",)), ("comballaz-2020-11-06-planned", ("synthetic", "real"))):
        t0 = time.perf_counter()
        bakes = {d: _bake(cpu_world, appearance_for_flight(flight, d), device) for d in domains}
        _sync(device)
        print(f"bake {flight} {'+'.join(domains)} (once per flight): {time.perf_counter() - t0:.1f} s")
        rows = load_preset(flight)
        idx = torch.linspace(0, len(rows) - 1, args.images).round().long().numpy()
        c2w_all = torch.as_tensor(frame.cesium_to_c2w(rows[idx]), dtype=torch.float32, device=device)
        keys_all = {d: torch.tensor([image_key(0, flight, int(i), d) for i in idx], device=device) for d in domains}

        def render_rows(rows: slice):
            """The poses ``rows`` of this flight, in one call of the renderer."""
            return render(world, bakes, c2w_all[rows], {d: k[rows] for d, k in keys_all.items()}, width, height,
                          config)

        def run():
            for b0 in range(0, args.images, args.batch_size):
                out = render_rows(slice(b0, b0 + args.batch_size))
            _sync(device)
            return out

        render_rows(slice(0, args.batch_size))  # warm-up: one batch (all the images when they fit in one)
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = args.images * len(domains)
        print(f"render only   {flight:30s} {'+'.join(domains):16s} wall {n / dt:7.1f} images/s "
              f"({args.images / dt:.1f} poses/s)"
              + (f" | {n / cpu:.1f} images per CPU-second" if device.type == "cpu" else ""))
        m = min(args.baseline_images, args.images)
        if m:
            render_rows(slice(0, 1))  # warm-up
            _sync(device)
            t0 = time.perf_counter()
            for i in range(m):
                render_rows(slice(i, i + 1))
            _sync(device)
            one = m * len(domains) / (time.perf_counter() - t0)
            print(f"  baseline, one pose at a time ({m} poses): wall {one:7.1f} images/s | batched / baseline "
                  f"{n / dt / one:.2f}x")
    if not args.skip_write:
        with tempfile.TemporaryDirectory() as tmp:
            spec = f"comballaz-LHS:{args.images}"
            # warm-up, the bake included
            render_flights(tmp, spec, size=(width, height), device=device, batch_size=args.batch_size, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            render_flights(tmp, spec, size=(width, height), device=device, batch_size=args.batch_size, progress=False)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"render + write {spec:29s} {'synthetic':16s} wall {args.images / dt:7.1f} images/s (PNG + semantics)"
                  + (f" | {args.images / cpu:.1f} images per CPU-second" if device.type == "cpu" else ""))


if __name__ == "__main__":
    main()
