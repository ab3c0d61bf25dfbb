"""Image and label-map reading shared by the datasets: RGB uint8 tensors, resizing, errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from topoloc.data._arrays import load_npy
from topoloc.image_size import output_size, parse_image_size

__all__ = ["EXIF_ORIENTATION", "parse_image_size", "output_size", "read_rgb", "read_semantics", "check_image",
           "image_header"]

#: What an unreadable image file was expected to be (PIL reads these; `topoloc localise` collects them all).
READABLE = "a readable image file (PNG, JPEG, TIFF, BMP or WebP)"


def read_rgb(path: Path, image_size=None) -> torch.Tensor:
    """An image file as an RGB uint8 tensor; an alpha channel is dropped (not composited).

    Resizing uses PIL's antialiased bilinear filter; large JPEGs are first decoded at a reduced
    scale (``draft``) no smaller than twice the target (as Pillow's ``thumbnail`` does: drafting to the
    target itself left the reduction to the decoder's box filter and shifted a picture whose height does
    not halve evenly: 2 grey levels from the bilinear filter on average on a smooth picture, 5 on a
    detailed photo, up to 107).

    Shape:
        -> (3, H, W)

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with Image.open(path) as src:
            box = None  # the part of a drafted image that holds the picture (its last block may be padding)
            if image_size is not None:
                h, w = output_size((src.height, src.width), image_size)
                if src.format == "JPEG":
                    drafted = src.draft("RGB", (2 * w, 2 * h))
                    box = drafted[1] if drafted is not None else None
            else:
                h, w = src.height, src.width
            img = _to_8bit(src, path)
            img = img.convert("RGB")
            if (img.height, img.width) != (h, w):
                img = img.resize((w, h), Image.Resampling.BILINEAR, box=box)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: could not read the image ({err}); expected {READABLE}") from err
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


#: PIL modes of 16- and 32-bit single-channel images (16-bit greyscale PNGs open as ``I;16`` or ``I``).
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def pil_rgb(img: Image.Image, where: str) -> torch.Tensor:
    """A PIL image as an RGB uint8 tensor, read as `read_rgb` reads a file: 16-bit greyscale scaled to 8 bits,
    an alpha channel dropped.

    Shape:
        -> (3, H, W)

    Raises:
        ValueError: a 32-bit integer or float image (the message starts with ``where``). A mode ``I`` image
            opened from a file is a 16-bit one (older Pillows open 16-bit PNGs so); made in memory, it is refused.
    """
    if img.mode == "I" and img.format is None:
        raise ValueError(f"{where}: a 32-bit integer (mode I) image made in memory; expected an 8- or 16-bit image "
                         f"(Image.fromarray of a uint8 or uint16 array)")
    img = _to_8bit(img, where, "expected an 8- or 16-bit image")
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _to_8bit(img: Image.Image, path: Path | str, expected: str = "expected an 8- or 16-bit PNG or JPEG file"
             ) -> Image.Image:
    """A 16-bit greyscale image scaled to 8 bits (``v / 257``); PIL's ``convert("RGB")`` clips it to 255.

    Raises:
        ValueError: a 32-bit integer or float image, whose value range is unknown.
    """
    if img.mode not in _WIDE_MODES:
        return img
    arr = np.asarray(img)
    bits = getattr(img, "tag_v2", {}).get(258, ()) if img.format == "TIFF" else ()  # BitsPerSample
    if (img.mode == "F" or (img.mode == "I" and arr.size and (arr.min() < 0 or arr.max() > 65535))
            or any(b > 16 for b in bits)):  # a 32-bit TIFF of small values was read as a 16-bit one
        raise ValueError(f"{path}: a mode {img.mode} ({arr.dtype}) image"
                         + (f" of {max(bits)} bits per sample" if bits else "") + f"; {expected}")
    grey = np.rint(arr.astype(np.float64) / 257.0).astype(np.uint8)
    return Image.fromarray(grey, "L")


#: The EXIF tag of the image's display orientation (1 upright; 3, 6, 8 rotated; 2, 4, 5, 7 mirrored).
EXIF_ORIENTATION = 0x0112


def image_header(path: Path) -> tuple[tuple[int, int], int]:
    """``((H, W), orientation)`` of an image file from its header (no decode): its size in pixels as stored and
    its EXIF ``Orientation`` (1 when it has none)."""
    with Image.open(path) as img:
        try:
            orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
        except (ValueError, TypeError, OSError):  # a malformed EXIF block: the pixels as stored
            orientation = 1
        return (img.height, img.width), orientation


def check_image(path: Path) -> str | None:
    """Why an image file cannot be decoded (None if it can): PIL's integrity check, then a full decode."""
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            img.load()
            if img.mode in _WIDE_MODES:
                _to_8bit(img, path)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        return f"could not read the image ({err}); expected {READABLE}"
    except ValueError as err:
        return str(err).removeprefix(f"{path}: ")
    return None


def read_semantics(path: Path, out_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """A ``<stem>_semantics.npy`` class-id map as uint8, resized with nearest neighbour to ``out_hw``.

    Shape:
        -> (H, W)
    """
    path = Path(path)
    sem = load_npy(path, "semantics array", "a (H, W) .npy array of class ids")
    if sem.ndim != 2:
        raise ValueError(f"{path}: expected a (H, W) array of class ids, got shape {sem.shape}")
    if np.issubdtype(sem.dtype, np.floating) or sem.min(initial=0) < 0 or sem.max(initial=0) > 255:
        raise ValueError(f"{path}: expected integer class ids in [0, 255], got dtype {sem.dtype}")
    sem = sem.astype(np.uint8)
    if out_hw is not None and sem.shape != tuple(out_hw):
        h, w = out_hw
        # Nearest neighbour at pixel centres: keeps class ids intact.
        rows = np.minimum(((np.arange(h) + 0.5) * sem.shape[0] / h).astype(np.int64), sem.shape[0] - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * sem.shape[1] / w).astype(np.int64), sem.shape[1] - 1)
        sem = sem[rows[:, None], cols[None, :]]
    return torch.from_numpy(np.ascontiguousarray(sem))
