"""Makes docs/contact_sheet.png: Mini-Comballaz, synthetic vs real, at TOPO's pose presets.

Rows: poses of several flights and seasons (nadir, oblique, level; the first row from `comballaz-LHS`,
TOPO's Latin-hypercube sample, the others from real flights; heights "up" in metres in the Comballaz
frame); columns: the synthetic
render (TOPO's Cesium look) and the real-photo appearance of the same pose (written as JPEG,
as `topoloc render` does).

    python docs/make_contact_sheet.py [--out docs/contact_sheet.png] [--size 360x240]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

# (flight, wanted pitch in degrees, which of the matching poses: a fraction of the flight)
ROWS = [
    ("comballaz-LHS", -88.0, 0.30),
    ("comballaz-2020-11-06-planned", -60.0, 0.55),
    ("comballaz-2020-11-06-piloted", -5.0, 0.50),
    ("comballaz-2021-03-27-winter", -40.0, 0.45),
    ("comballaz-2021-03-27-winter", 0.0, 0.70),
    ("comballaz-2021-10-13-piloted", -30.0, 0.60),
    ("sepey-2021-10-13-outofplace", -20.0, 0.50),
]


def pick(rows: np.ndarray, pitch: float, where: float) -> int:
    """Among the poses within 5 deg of ``pitch``, the one at ``where`` (0-1) through the flight."""
    close = np.flatnonzero(np.abs(rows[:, 4] - pitch) <= 5.0)
    if close.size == 0:
        close = np.argsort(np.abs(rows[:, 4] - pitch))[:1]
    return int(close[min(len(close) - 1, int(where * len(close)))])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).with_name("contact_sheet.png")), help="output PNG")
    p.add_argument("--size", default="360x240", help="tile size WxH (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    args = p.parse_args(argv)

    from topoloc._paths import unwritable
    from topoloc.data.preset import load_preset
    from topoloc.geodesy import LocalFrame
    from topoloc.procedural import appearance_for_flight, bake, build_world, parse_size, render
    from topoloc.procedural._noise import image_key

    try:
        w, h = parse_size(args.size)
    except ValueError as err:
        p.error(f"--size: {str(err).partition(': ')[2]}")
    why = unwritable(args.out)
    if why or Path(args.out).is_dir():
        p.error(f"--out {args.out!r}: {why or 'a folder, expected a .png file'}")
    world = build_world(args.seed)
    frame = LocalFrame.named("comballaz")
    label_h = 16
    sheet = Image.new("RGB", (2 * w + 6, len(ROWS) * (h + label_h) + 20), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), "synthetic (TOPO / Cesium look)", fill=(0, 0, 0))
    draw.text((w + 10, 4), "real (season, sun, clouds, camera, JPEG)", fill=(0, 0, 0))
    y = 20
    for flight, pitch, where in ROWS:
        rows = load_preset(flight)
        i = pick(rows, pitch, where)
        c2w = torch.as_tensor(frame.cesium_to_c2w(rows[i : i + 1]), dtype=torch.float32)
        bakes = {d: bake(world, appearance_for_flight(flight, d)) for d in ("synthetic", "real")}
        keys = {d: torch.tensor([image_key(args.seed, flight, i, d)]) for d in bakes}
        out = render(world, bakes, c2w, keys, w, h)
        syn = Image.fromarray(out["synthetic"][0][0].permute(1, 2, 0).numpy())
        buf = io.BytesIO()
        Image.fromarray(out["real"][0][0].permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=85)
        real = Image.open(buf)
        app = appearance_for_flight(flight, "real")
        enu = frame.cesium_to_c2w(rows[i : i + 1])[0, :3, 3]
        draw.text((4, y + 2), f"{flight} #{i}  pitch {rows[i, 4]:.0f} deg  up {enu[2]:.0f} m  | real: {app.season}, "
                  f"sun {app.sun_elevation_deg:.0f} deg", fill=(0, 0, 0))
        sheet.paste(syn, (0, y + label_h))
        sheet.paste(real, (w + 6, y + label_h))
        y += h + label_h
    # a 256-colour palette (dithered) keeps the PNG under 1 MB for the repository
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                   dither=Image.Dither.FLOYDSTEINBERG).save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.size[0]}x{sheet.size[1]})")


if __name__ == "__main__":
    main()
