"""Speed of the data layer: building a TopoFlight index, decoding samples, and the coverage table.

Prints the machine, what was compared and the ratios:

1. TopoFlight construction over a full-size LHS index (30,000 rows, tiny 2x2 renders): scan,
   name parsing, pose validation and camera-to-ENU poses, seconds.
2. Sample decoding: a 720x480 RGBA render at native size and resized to a 256 short side; a
   4000x3000 JPEG (DJI photo size) resized to 256 with JPEG draft decoding vs full decoding.
3. coverage(): 30,000 training x 5,000 test poses, chunked matrix vs a per-test-pose numpy loop
   (the loop timed on a subset and scaled).

    python benchmarks/bench_data.py            # about a minute on 2 CPU cores
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from topoloc._device import cpu_name
from topoloc.cli._common import positive_int
from topoloc.data import TopoFlight, coverage, load_preset
from topoloc.data._images import read_rgb


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_index(tmp: Path, n_rows: int) -> None:
    folder = tmp / "comballaz-LHS"
    folder.mkdir()
    np.save(folder / "comballaz-LHS_poses.npy", load_preset("comballaz-LHS")[:n_rows])
    png = folder / "comballaz-LHS_00000_img.png"
    Image.fromarray(np.zeros((2, 2, 4), np.uint8), "RGBA").save(png)
    data = png.read_bytes()
    for r in range(1, n_rows):
        (folder / f"comballaz-LHS_{r:05d}_img.png").write_bytes(data)
    t = _best(lambda: TopoFlight(tmp, "comballaz-LHS", split="train"), 3)
    print(f"TopoFlight index, {n_rows} rows (scan + parse + validate + c2w): {t:.2f} s ({1e6 * t / n_rows:.1f} us/row)")


def bench_decode(tmp: Path, repeat: int) -> None:
    rng = np.random.default_rng(0)
    render = tmp / "render.png"
    Image.fromarray(rng.integers(0, 255, (480, 720, 4), dtype=np.uint8), "RGBA").save(render)
    t_native = _best(lambda: read_rgb(render), repeat)
    t_256 = _best(lambda: read_rgb(render, 256), repeat)
    print(f"720x480 RGBA PNG render: native {1e3 * t_native:.1f} ms, resized to 256 {1e3 * t_256:.1f} ms")
    # A smooth 4000x3000 photo-like image (noise would make JPEG decoding unrepresentatively slow).
    y, x = np.mgrid[0:3000, 0:4000]
    photo = np.stack([(x / 16) % 256, (y / 12) % 256, ((x + y) / 28) % 256], -1).astype(np.uint8)
    jpg = tmp / "photo.JPG"
    Image.fromarray(photo).save(jpg, quality=90)

    def full_decode():
        with Image.open(jpg) as img:
            img.convert("RGB").resize((341, 256), Image.BILINEAR)

    t_full = _best(full_decode, repeat)
    t_draft = _best(lambda: read_rgb(jpg, 256), repeat)
    print(f"4000x3000 JPEG -> 256 short side: full decode {1e3 * t_full:.0f} ms, read_rgb (draft) "
          f"{1e3 * t_draft:.0f} ms, ratio {t_full / t_draft:.1f}x")


def bench_coverage(n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)

    def poses(n):
        q = rng.normal(size=(n, 4))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        w, x, y, z = q.T
        c2w = np.tile(np.eye(4), (n, 1, 1))
        c2w[:, :3, :3] = np.stack([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]).transpose(2, 0, 1)
        c2w[:, :3, 3] = rng.uniform(-2000, 2000, (n, 3))
        return c2w

    train, test = poses(n_train), poses(n_test)
    t_chunked = _best(lambda: coverage(train, test), 3)
    sub = min(200, n_test)
    tr = train[:, :3, 3]

    def loop():
        for p in test[:sub, :3, 3]:
            np.argmin(np.linalg.norm(tr - p, axis=1))

    t_loop = _best(loop, 2) * n_test / sub
    print(f"coverage {n_train} train x {n_test} test: chunked {t_chunked:.2f} s, per-pose loop "
          f"(nearest only, scaled from {sub}) {t_loop:.2f} s, ratio {t_loop / t_chunked:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=30000, help="pose rows of the LHS index benchmark")
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="repetitions per decode timing (best is kept; the index and coverage timings keep "
                        "the best of 3, the per-pose loop of 2: they are the slow ones)")
    parser.add_argument("--train", type=positive_int, default=30000, help="training poses for coverage")
    parser.add_argument("--test", type=positive_int, default=5000, help="test poses for coverage")
    args = parser.parse_args()
    rows = len(load_preset("comballaz-LHS"))
    if args.rows > rows:
        parser.error(f"argument --rows: expected at most the {rows} poses of comballaz-LHS, got {args.rows}")
    print(f"device: CPU, {cpu_name()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "idx").mkdir()
        bench_index(tmp / "idx", args.rows)
        bench_decode(tmp, args.repeat)
    bench_coverage(args.train, args.test)


if __name__ == "__main__":
    main()
