"""Fixtures that write tiny TOPO-DataGen flight folders in the exact on-disk layout.

Reusable by any test (fixtures are visible under tests/data/; copy the two fixture functions to a
conftest of your own folder, or move them up, to use them elsewhere):

- ``make_topo_flight(root, flight, ...)`` writes ``root/<flight>/`` (RGBA PNG renders, npy poses,
  pic-names csv, optional semantics) and ``root/<flight>-real/`` (JPG photos) and returns the
  flight folder. Every image encodes its pose row in its pixels, so a mismatch is detectable:
  ``row_of_image(image_tensor)`` decodes it (exact for PNG renders, robust to JPEG for photos).
- ``topo_root``: a folder with ``comballaz-LHS`` (gappy rows) and ``comballaz-2020-11-06-planned``
  (renders + real photos with shuffled pic names), ready to use.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from topoloc.data.preset import load_preset

#: Rows are encoded as R = 8 * (row % 32), G = 8 * (row // 32) (uniform colour, survives JPEG); B tags the domain.
SYNTHETIC_BLUE, REAL_BLUE = 40, 200


def encode_row(row: int, h: int, w: int, blue: int, alpha: bool) -> np.ndarray:
    img = np.zeros((h, w, 4 if alpha else 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 8 * (row % 32), 8 * (row // 32), blue
    if alpha:
        img[..., 3] = 255
        img[0, 0, 3] = 0  # a transparent pixel: alpha must be dropped, not composited
    return img


def decode_row(image) -> int:
    """Pose row encoded in an image tensor / array (3, H, W) or (H, W, 3)."""
    a = np.asarray(image, dtype=np.float64)
    if a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    r, g = np.median(a[..., 0]), np.median(a[..., 1])
    return int(round(r / 8)) + 32 * int(round(g / 8))


def domain_of(image) -> str:
    a = np.asarray(image, dtype=np.float64)
    blue = np.median(a[2] if a.shape[0] == 3 else a[..., 2])
    return "synthetic" if abs(blue - SYNTHETIC_BLUE) < 20 else "real" if abs(blue - REAL_BLUE) < 20 else "?"


def write_flight(
    root: Path,
    flight: str = "comballaz-2020-11-06-planned",
    n_rows: int = 12,
    rows=None,
    real_rows=None,
    size_hw: tuple[int, int] = (16, 24),
    real_size_hw: tuple[int, int] = (18, 24),
    semantics: bool = False,
    poses: np.ndarray | None = None,
    pic_names: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """Writes a tiny flight in TOPO's layout and returns ``root/<flight>``.

    Args:
        rows: pose rows that get a render (default: all); LHS flights get ``<flight>_<idx>_img.png``,
            others ``<flight>_<idx>_<picname>_img.png``.
        real_rows: rows that get a real photo ``<flight>-real/<picname>.JPG`` (default: ``rows`` for
            flights not ending in ``-LHS``).
        poses: (n_rows, 6) pose rows; default: the first rows of the vendored preset of that name
            (or of comballaz-LHS).
        pic_names: photo name of each row; default: shuffled ``DJI_<k:04d>`` names.
    """
    root = Path(root)
    lhs = flight.endswith("-LHS")
    folder = root / flight
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    if poses is None:
        try:
            poses = load_preset(flight)[:n_rows]
        except ValueError:
            poses = load_preset("comballaz-LHS")[:n_rows]
    np.save(folder / f"{flight}_poses.npy", np.asarray(poses))
    rows = list(range(n_rows)) if rows is None else list(rows)
    if not lhs:
        if pic_names is None:
            ks = list(range(n_rows))
            rng.shuffle(ks)
            pic_names = [f"DJI_{k:04d}" for k in ks]
        (folder / f"{flight}_pic_names.csv").write_text(",".join(pic_names))
    order = rows[:]
    rng.shuffle(order)  # files are written in shuffled order
    h, w = size_hw
    for r in order:
        stem = f"{flight}_{r:05d}" + ("" if lhs else f"_{pic_names[r]}")
        Image.fromarray(encode_row(r, h, w, SYNTHETIC_BLUE, alpha=True), "RGBA").save(folder / f"{stem}_img.png")
        if semantics:
            np.save(folder / f"{stem}_semantics.npy", np.full((h, w), r % 12, dtype=np.uint8))
    if real_rows is None:
        real_rows = [] if lhs else rows
    if real_rows:
        real = root / f"{flight}-real"
        real.mkdir(exist_ok=True)
        rh, rw = real_size_hw
        for r in real_rows:
            img = Image.fromarray(encode_row(r, rh, rw, REAL_BLUE, alpha=False), "RGB")
            img.save(real / f"{pic_names[r]}.JPG", quality=95)
    return folder


@pytest.fixture
def make_topo_flight():
    """Factory: ``make_topo_flight(root, flight, n_rows=..., rows=..., real_rows=..., ...) -> Path``."""
    return write_flight


@pytest.fixture
def row_of_image():
    """Decoder: ``row_of_image(image) -> int``, the pose row an image written by the fixtures encodes."""
    return decode_row


@pytest.fixture
def row_image():
    """Encoder: ``row_image(row, h, w, blue, alpha) -> uint8 (h, w, 3 or 4)``, decodable by ``row_of_image``."""
    return encode_row


@pytest.fixture
def image_domain():
    """``image_domain(image) -> "synthetic" | "real"``: which kind of file a fixture image came from."""
    return domain_of


@pytest.fixture
def topo_root(tmp_path) -> Path:
    """A TOPO root with ``comballaz-LHS`` (40 rows, renders for a gappy subset) and
    ``comballaz-2020-11-06-planned`` (12 rows, renders and real photos, shuffled pic names)."""
    write_flight(tmp_path, "comballaz-LHS", n_rows=40, rows=[0, 1, 2, 3, 5, 8, 13, 21, 34, 39] + list(range(22, 30)))
    write_flight(tmp_path, "comballaz-2020-11-06-planned", n_rows=12, rows=[0, 1, 2, 4, 5, 7, 8, 9, 10, 11])
    return tmp_path
