"""Batch-1 inference latency of the demo's models: torch eager vs onnxruntime, CPU (1 and 2 threads) and CUDA.

What a drone's computer does per photo: one uint8 RGB image at the model's input size in, the pose
code out. Both runtimes run the same network *with* its input normalisation
(`topoloc.engine.export.OnnxPoseNet`: uint8 -> float / 255 -> mean / std -> model), the ONNX graph
being `topoloc.export_onnx`'s (opset 17). Photo decoding and resizing are not timed.

Models (random weights; latency does not depend on them):

- the demo's CPU model: ``atloc_resnet18`` with the demo's ``model_kwargs`` (`demo_config(device="cpu")`),
  at 64x96 (its training size) and 128x192 px;
- the paper's ``atloc_resnet34`` at 256x256 px.

Each line is the median (and p90) of ``--iters`` timed calls after ``--warmup`` untimed ones,
wall-clock milliseconds; the ratio is torch eager / onnxruntime on the same device and threads.
Latency is wall time, so run it on a quiet machine. Run from the repository root after
``pip install -e ".[export]"``. Examples:

    python benchmarks/bench_inference.py                       # CPU 1 and 2 threads, CUDA if present
    python benchmarks/bench_inference.py --iters 3 --warmup 1  # a quick check that it runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from topoloc._device import cpu_name
from topoloc import PoseNormalizer, create_model, export_onnx
from topoloc.cli._common import non_negative_int, positive_int
from topoloc.experiments.demo import demo_config
from topoloc.engine.export import OnnxPoseNet

#: (label, model name, model kwargs, (H, W)).
CASES = [
    ("demo cpu model 64x96", "atloc_resnet18", None, (64, 96)),
    ("demo cpu model 128x192", "atloc_resnet18", None, (128, 192)),
    ("atloc_resnet34 256x256", "atloc_resnet34", {}, (256, 256)),
]


def _median_ms(fn, iters: int, warmup: int, sync=lambda: None) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 90))


def _torch_eager(net: torch.nn.Module, image: torch.Tensor, device: str, iters: int, warmup: int):
    """Median and p90 ms of one call, the uint8 image on the host in and the pose code on the host out (as
    onnxruntime's ``session.run`` takes and gives them: on CUDA both copies are timed on both sides)."""
    net = net.to(device).eval()

    def run():
        with torch.inference_mode():
            return [out.cpu() for out in _outputs(net(image.to(device)))]

    return _median_ms(run, iters, warmup)


def _outputs(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _largest_difference(net: torch.nn.Module, path: Path, image: torch.Tensor) -> float:
    """Largest absolute difference between torch's and onnxruntime's outputs on ``image`` (CPU, float32)."""
    import onnxruntime as ort  # noqa: PLC0415 - optional extra

    with torch.inference_mode():
        ours = _outputs(net.to("cpu")(image))
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": image.numpy()})
    return max(float(np.abs(a.numpy() - b).max()) for a, b in zip(ours, theirs))


def _onnxruntime(path: Path, image: np.ndarray, providers: list[str], threads: int | None, iters: int, warmup: int):
    import onnxruntime as ort  # noqa: PLC0415 - optional extra

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=providers)
    feed = {"images": image}
    return _median_ms(lambda: session.run(None, feed), iters, warmup)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=positive_int, default=200, help="timed calls per line (default: 200)")
    parser.add_argument("--warmup", type=non_negative_int, default=20, help="untimed calls first (default: 20)")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2],
                        help="CPU thread counts (default: 1 2)")
    parser.add_argument("--no-cuda", action="store_true", help="skip CUDA even when available")
    parser.add_argument("--cases", nargs="+", type=int, choices=range(len(CASES)), default=list(range(len(CASES))),
                        help="indices of the cases to run: " + "; ".join(f"{i}: {c[0]}" for i, c in enumerate(CASES)))
    args = parser.parse_args(argv)

    import onnxruntime as ort  # noqa: PLC0415 - fail early with the extra's name
    cuda = torch.cuda.is_available() and not args.no_cuda
    ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    demo_kwargs = demo_config(smoke=False, device="cpu").model_kwargs
    print(f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"cpu: {cpu_name()} ({torch.get_num_threads()} torch threads available)")
    print(f"gpu: {torch.cuda.get_device_name() if cuda else 'none'}; onnxruntime CUDA provider: "
          f"{'yes' if ort_cuda else 'no'}")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}; batch 1, uint8 input, input "
          f"normalisation included; median (p90) of {args.iters} calls after {args.warmup} warm-up, ms")
    print(f"{'case':<26} {'device':<12} {'torch eager':>20} {'onnxruntime':>20} {'torch / ort':>12}")
    with tempfile.TemporaryDirectory(prefix="topoloc-bench-") as tmp:
        for index in args.cases:
            label, name, kwargs, size = CASES[index]
            torch.manual_seed(0)
            model = create_model(name, **(demo_kwargs if kwargs is None else kwargs)).eval()
            normalizer = PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
            onnx_path = export_onnx(model, Path(tmp) / f"case{index}.onnx", normalizer=normalizer,
                                    image_size=size, frame="comballaz").onnx
            image = torch.randint(0, 256, (1, 3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
            net = OnnxPoseNet(model)
            print(f"{label}: largest |torch - onnxruntime| of the outputs on the CPU: "
                  f"{_largest_difference(net, onnx_path, image):.2e}", flush=True)
            rows = []
            threads_before = torch.get_num_threads()
            for threads in args.threads:
                torch.set_num_threads(threads)
                t = _torch_eager(net, image, "cpu", args.iters, args.warmup)
                o = _onnxruntime(onnx_path, image.numpy(), ["CPUExecutionProvider"], threads, args.iters, args.warmup)
                rows.append((f"cpu {threads} thr", t, o))
            torch.set_num_threads(threads_before)
            if cuda:
                t = _torch_eager(net, image, "cuda", args.iters, args.warmup)
                o = (_onnxruntime(onnx_path, image.numpy(), ["CUDAExecutionProvider"], None, args.iters, args.warmup)
                     if ort_cuda else None)
                rows.append(("cuda", t, o))
                net.to("cpu")
            for device, t, o in rows:
                ort_text = f"{o[0]:8.2f} ({o[1]:8.2f})" if o else f"{'n/a':>19}"
                ratio = f"{t[0] / o[0]:12.2f}" if o else f"{'-':>12}"
                print(f"{label:<26} {device:<12} {t[0]:8.2f} ({t[1]:8.2f}) {ort_text} {ratio}", flush=True)


if __name__ == "__main__":
    main()
