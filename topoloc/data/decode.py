"""Decoding a dataset of sample dicts into uint8 tensors at one size, in parallel, for `ImageCache`.

Each sample's image is read by the dataset (in DataLoader workers), checked, resized with
antialiasing (`resize_uint8`) and copied into one ``(N, 3, H, W)`` uint8 tensor; a sample that
cannot be read is carried out of its worker with its message and refused by index.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from topoloc._progress import maybe_bar

__all__ = ["resize_uint8", "decode_samples", "warn_mixed_sizes", "warn_transposed"]


def resize_uint8(image: Tensor, size: Sequence[int]) -> Tensor:
    """Resize a uint8 image with antialiasing (bilinear), rounding back to uint8.

    Shape:
        - image: (3, h, w) or (B, 3, h, w) uint8
        - output: (3, H, W) or (B, 3, H, W) uint8 with ``(H, W) = size``
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    batched = image.ndim == 4
    x = image if batched else image[None]
    x = F.interpolate(x.float(), size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    x = x.round_().clamp_(0, 255).to(torch.uint8)
    return x if batched else x[0]


@dataclass
class _Failure:
    """A sample that could not be read, carried out of a worker without losing its message."""

    index: int
    message: str
    bad_input: bool  # the dataset refused the file (OSError, ValueError), not a bug in the code


class _Decode(Dataset):
    """Wraps a dataset: each sample becomes (index, image resized to ``size``, c2w, name, domain, flight)."""

    def __init__(self, dataset: Any, size: tuple[int, int]) -> None:
        self.dataset = dataset
        self.size = size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            sample = self.dataset[i]
            if not isinstance(sample, Mapping) or "image" not in sample or "c2w" not in sample:
                got = f"keys {sorted(map(str, sample))}" if isinstance(sample, Mapping) else type(sample).__name__
                raise ValueError(f"a sample must be a dict with 'image' (uint8 (3, H, W)) and 'c2w' (4, 4), as "
                                 f"topoloc's datasets give, got {got}")
            image = sample["image"]
            if not isinstance(image, Tensor) or image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
                raise ValueError(f"sample['image'] must be a uint8 tensor (3, H, W), got "
                                 f"{getattr(image, 'dtype', type(image).__name__)} "
                                 f"{tuple(getattr(image, 'shape', ()))}")
            c2w = torch.as_tensor(sample["c2w"], dtype=torch.float64)
            if c2w.shape != (4, 4):
                raise ValueError(f"sample['c2w'] must be (4, 4), got {tuple(c2w.shape)}")
            return (i, resize_uint8(image, self.size), c2w, str(sample.get("name", i)),
                    str(sample.get("domain", "")), str(sample.get("flight", "")), tuple(image.shape[-2:]))
        except Exception as err:  # noqa: BLE001 - re-raised, with the message, in the main process
            return _Failure(i, f"{type(err).__name__}: {err}", isinstance(err, (OSError, ValueError)))


def _collate(items: list) -> list:
    return items


#: images, c2w, names, domains, flights, native sizes: what `decode_samples` returns.
Decoded = tuple[Tensor, Tensor, list[str], list[str], list[str], list[tuple[int, int]]]


def decode_samples(dataset: Any, size: tuple[int, int], num_workers: int = 0, batch_size: int = 16,
                   progress: bool = False) -> Decoded:
    """Every sample of ``dataset`` (non-empty), its image resized to ``size`` (H, W).

    Returns:
        ``(images, c2w, names, domains, flights, native)``: uint8 (N, 3, H, W) (pinned when CUDA is
        available), float64 (N, 4, 4), three lists of strings (a sample without a name: its index;
        without a domain or flight: ""), and each image's (h, w) as read.

    Raises:
        ValueError: a sample could not be read (an unreadable or missing file, a bad sample);
            the message holds the dataset's own error (which names the file) and the sample index.
        RuntimeError: the same for any other error the dataset raised (a bug, not the data).
    """
    n = len(dataset)
    images = torch.empty((n, 3, *size), dtype=torch.uint8, pin_memory=torch.cuda.is_available())
    c2w = torch.empty((n, 4, 4), dtype=torch.float64)
    names, domains, flights = [""] * n, [""] * n, [""] * n
    native: list[tuple[int, int]] = [(0, 0)] * n
    loader = DataLoader(_Decode(dataset, size), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=_collate)
    bar = maybe_bar(progress, total=n, desc="decode", unit="img", leave=False)
    try:
        for items in loader:
            for item in items:
                if isinstance(item, _Failure):
                    error = ValueError if item.bad_input else RuntimeError
                    raise error(f"ImageCache: could not read sample {item.index} of "
                                f"{type(dataset).__name__}: {item.message}")
                i, image, pose, name, domain, flight, native[i] = item
                images[i] = image
                c2w[i] = pose
                names[i], domains[i], flights[i] = name, domain, flight
            bar.update(len(items))
    finally:
        bar.close()
    return images, c2w, names, domains, flights, native


def warn_mixed_sizes(dataset: Any, native: list[tuple[int, int]], names: list[str], domains: list[str],
                      flights: list[str], size: tuple[int, int]) -> None:
    """One warning when the images of one (flight, domain) have several native sizes."""
    paths = getattr(dataset, "image_paths", None)
    groups: dict[tuple[str, str], dict[tuple[int, int], list[int]]] = {}
    for i, hw in enumerate(native):
        groups.setdefault((flights[i], domains[i]), {}).setdefault(hw, []).append(i)
    lines = []
    for (flight, domain), by_size in groups.items():
        if len(by_size) > 1:
            each = ", ".join(f"{len(idx)} of {w}x{h} (e.g. {paths[idx[0]] if paths is not None else names[idx[0]]})"
                             for (h, w), idx in sorted(by_size.items(), key=lambda kv: -len(kv[1])))
            lines.append(f"{flight or type(dataset).__name__} {domain}".rstrip() + f": {each}")
    if lines:
        warnings.warn(f"ImageCache: images of different sizes in one flight, all resized to {size[1]}x{size[0]} "
                      f"(other aspect ratios are stretched): " + "; ".join(lines), stacklevel=3)


def warn_transposed(dataset: Any, native: list[tuple[int, int]], names: list[str], size: tuple[int, int]) -> None:
    """One warning when ``size`` (H, W) has the images' aspect ratio turned on its side: (W, H) given for (H, W),
    as the renderer's sizes are written."""
    height, width = size
    if height == width or not all(abs(w / h * width / height - 1.0) <= 0.01 for h, w in native):
        return
    paths = getattr(dataset, "image_paths", None)
    example = paths[0] if paths is not None else names[0]
    (h, w) = native[0]
    warnings.warn(f"ImageCache: image_size {size} is (H, W): the {len(native)} image(s) of {w}x{h} px (W x H, e.g. "
                  f"{example}) are stretched to {width}x{height}, their aspect ratio turned on its side; for their "
                  f"aspect ratio give image_size=({width}, {height})", stacklevel=3)


def warn_upscaled(dataset: Any, native: list[tuple[int, int]], names: list[str], size: tuple[int, int]) -> None:
    """One warning when every image is upscaled more than 2x in both directions to ``size`` (H, W): a recipe's
    256x384 on a 96x64 render trained about 16x as long per image on nothing the images hold (68 s per step on
    a 2-core CPU), without a word."""
    height, width = size
    if not native or not all(2 * h < height and 2 * w < width for h, w in native):
        return
    paths = getattr(dataset, "image_paths", None)
    h, w = max(native)
    factor = min(height / h, width / w)
    warnings.warn(f"ImageCache: the {len(native)} images (the largest {w}x{h} px, W x H, e.g. "
                  f"{paths[0] if paths is not None else names[0]}) are upscaled {factor:.3g}x to image_size "
                  f"{size} (H, W): training takes about {factor * factor:.3g}x as long per image for no detail the "
                  f"images hold; give image_size=({h}, {w}) (a recipe: --override train.image_size=[{h},{w}])",
                  stacklevel=3)
