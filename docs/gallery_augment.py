"""Draw every augment op on drone-like images: rows of images x columns of ops, one PNG.

    python docs/gallery_augment.py --images /path/to/renders   # any folder of PNG/JPG images
    python docs/gallery_augment.py                             # synthetic aerial-like tiles

The committed docs/augment_gallery.png was made from Mini-Comballaz renders:

    topoloc render --out /tmp/mc --flights comballaz-LHS:4,comballaz-2020-11-06-planned:4 --device cpu
    python docs/gallery_augment.py --images /tmp/mc/comballaz-2020-11-06-planned \
        --bank /tmp/mc/comballaz-2020-11-06-planned-real

With no --images folder it makes its own aerial-like tiles from augment's noise fields
(terrain shaded by a sun, lakes, meadows, forest, rock, a road). Mini-Comballaz renders
(`topoloc render --out DIR ...`) are the intended input once they are at hand.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import augment  # noqa: E402
from augment.functional.noise import fractal_noise  # noqa: E402

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def load_folder(folder: Path, count: int, size: int) -> torch.Tensor:
    """The first ``count`` images of ``folder`` (sorted), centre-cropped square and resized: (N, 3, size, size)."""
    from PIL import Image

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"{folder}: no .png/.jpg images found.")
    step = max(1, len(paths) // count)
    images = []
    for path in paths[::step][:count]:
        img = Image.open(path).convert("RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0)
    return torch.stack(images)


def synthetic_aerial(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """Aerial-like tiles: fBm terrain, land cover by height and a second field, hillshade, a road."""
    seeds = torch.arange(count, dtype=torch.float32) * 101 + seed
    zeros = torch.zeros(count, 2)
    height = fractal_noise(seeds, zeros, torch.full((count,), 2.5), (size, size), octaves=6)
    cover = fractal_noise(seeds + 7, zeros, torch.full((count,), 5.0), (size, size), octaves=5)
    detail = fractal_noise(seeds + 13, zeros, torch.full((count,), 40.0), (size, size), octaves=3)
    colours = {
        "water": (0.16, 0.27, 0.36),
        "meadow": (0.38, 0.55, 0.22),
        "forest": (0.12, 0.27, 0.12),
        "rock": (0.55, 0.53, 0.5),
        "field": (0.62, 0.6, 0.35),
    }
    c = {k: torch.tensor(v).view(1, 3, 1, 1) for k, v in colours.items()}
    img = torch.where(cover > 0.55, c["forest"], c["meadow"])
    img = torch.where((cover < 0.38) & (height < 0.55), c["field"], img)
    img = torch.where(height > 0.68, c["rock"], img)
    img = torch.where(height < 0.3, c["water"], img)
    img = img * (0.85 + 0.3 * detail)
    # Hillshade from the terrain gradient, sun from the north-west.
    gy, gx = torch.gradient(height[:, 0] * 40.0, dim=(1, 2))
    az, el = math.radians(315), math.radians(45)
    shade = ((math.sin(el) - gx * math.cos(el) * math.sin(az) + gy * math.cos(el) * math.cos(az))
             / torch.sqrt(1 + gx**2 + gy**2))
    img = img * (0.55 + 0.6 * shade.clamp(0, 1).unsqueeze(1))
    # A winding road.
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for i in range(count):
        centre = size * (0.3 + 0.4 * i / max(1, count - 1)) + 0.12 * size * torch.sin(ys / size * 6.0 + i)
        road = ((xs - centre).abs() < 1.5 + size / 256) & (height[i, 0] >= 0.3)
        img[i, :, road] = 0.72
    return img.clamp(0, 1)


def columns(bank: torch.Tensor) -> list[tuple[str, torch.nn.Module]]:
    return [
        ("RandomClouds", augment.RandomClouds(coverage=(0.35, 0.5), opacity=(0.8, 0.9), p=1.0)),
        ("RandomSnowCover", augment.RandomSnowCover(amount=(0.45, 0.6), p=1.0)),
        ("RandomSeasonShift", augment.RandomSeasonShift(autumn=(0.8, 1.0), winter=(0.0, 0.2), p=1.0)),
        ("RandomHaze", augment.RandomHaze(density=(0.3, 0.4), horizon=(0.0, 0.15), p=1.0)),
        ("RandomIllumination", augment.RandomIllumination(relief=(6.0, 10.0), p=1.0)),
        ("RandomCameraEffects", augment.RandomCameraEffects(vignetting=(0.4, 0.6), noise_std=(0.02, 0.03), p=1.0)),
        ("RandomEdgeAbstraction", augment.RandomEdgeAbstraction(levels=(4, 5), p=1.0)),
        ("FourierDomainAdaptation", augment.FourierDomainAdaptation(bank, beta=(0.02, 0.04), p=1.0)),
        ("SimToReal(0.7)", augment.SimToReal(strength=0.7, p=0.6)),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of input images (default: synthetic aerial tiles)")
    parser.add_argument("--bank", type=Path, default=None,
                        help="folder of real images for FDA (default: a warm, hazy recolouring of the inputs)")
    parser.add_argument("--rows", type=int, default=3, help="number of input images (rows)")
    parser.add_argument("--size", type=int, default=256, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the drawn parameters")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("augment_gallery.png"), help="output PNG")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows: expected a whole number >= 1, got {args.rows}")
    if args.size < 16:
        parser.error(f"--size: expected a tile size of 16 px or more, got {args.size}")
    for flag, folder in (("--images", args.images), ("--bank", args.bank)):
        if folder is not None and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*")):
            parser.error(f"{flag} {str(folder)!r}: no .png/.jpg images found (is it a folder of images?)")
    from topoloc._paths import unwritable

    why = unwritable(args.out)
    if why or args.out.is_dir():
        parser.error(f"--out {str(args.out)!r}: {why or 'a folder, expected a .png file'}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.images is not None:
        images, source = load_folder(args.images, args.rows, args.size), f"{args.images.name} images"
    else:
        images, source = synthetic_aerial(args.rows, args.size, args.seed), "synthetic aerial-like tiles"
    if args.bank is not None:
        bank = load_folder(args.bank, 8, args.size)
    else:
        # Stand-in for real photos: the inputs seen through warm, low-contrast, hazy "real" optics.
        warm = torch.tensor([1.08, 1.0, 0.85]).view(1, 3, 1, 1)
        bank = (0.55 * images.flip(0) * warm + 0.3).clamp(0, 1)
    torch.manual_seed(args.seed)
    cols = columns(bank)
    fig, axes = plt.subplots(len(images), len(cols) + 1, figsize=(2.0 * (len(cols) + 1), 2.0 * len(images) + 0.4))
    axes = np.atleast_2d(axes)
    for r in range(len(images)):
        panels = [("input", images[r : r + 1])] + [(name, op(images[r : r + 1])) for name, op in cols]
        for c, (name, out) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(out[0].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
    fig.suptitle(f"augment: every op on {source} (seed {args.seed})", fontsize=9)
    fig.tight_layout()
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, dpi=110)
    except OSError as err:
        parser.error(f"--out {str(args.out)!r}: cannot write it ({err.strerror or err})")
    print(f"wrote {args.out} ({len(images)} rows x {len(cols) + 1} columns, {source})")


if __name__ == "__main__":
    main()
