"""`ImageCache`: a dataset decoded once into a uint8 tensor, in host or GPU memory.

Decoding PNGs / JPEGs is the slow part of training an absolute pose regressor: the original
AtLoc decodes every image with PIL in every epoch. Here the images are decoded (and resized,
antialiased) once, by a DataLoader with workers (`topoloc.data.decode`), into one ``(N, 3, H, W)``
uint8 tensor; a batch is then a single ``index_select`` on the training device.
"""

from __future__ import annotations

import hashlib
import logging
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from topoloc._messages import load_reason, plain_text
from topoloc._paths import check_output
from topoloc._tempfiles import remove_stale_writes, write_atomically
from topoloc.data._fingerprint import source_key
from topoloc.data.decode import decode_samples, resize_uint8, warn_mixed_sizes, warn_transposed, warn_upscaled
from topoloc.data.posed import sample_index
from topoloc.image_size import parse_image_size

__all__ = ["ImageCache", "UnreadableCacheError", "as_cache", "check_dataset", "resize_uint8"]

_FORMAT = "topoloc.ImageCache/1"
#: How images are decoded, in every cache key: a change of it rebuilds the caches made before (2026-12-07: large
#: JPEGs drafted to twice the target, then resized bilinearly).
_DECODER = "draft-2x"

log = logging.getLogger("topoloc.data")


class UnreadableCacheError(ValueError):
    """A cache file that torch cannot read (truncated, corrupt); `ImageCache.from_dataset` decodes again."""


class ImageCache:
    """Decoded uint8 images and their camera-to-world poses, indexable on any device.

    Build it with `from_dataset` (any dataset whose samples are dicts with ``image`` (uint8
    (3, h, w)), ``c2w`` (4, 4) and optionally ``name``, ``domain``, ``flight``), or `load` a
    saved one. It is itself a dataset returning that sample dict (without re-decoding).

    Attributes:
        images: uint8 (N, 3, H, W), RGB.
        c2w: float64 (N, 4, 4) camera-to-world poses (the dataset's frame, metres).
        names, domains, flights: per-image strings (where the dataset has none: the index as the name, and
            empty strings).
        source_key: a hash of the image files it was decoded from (None when unknown).

    Examples:
        >>> cache = ImageCache(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.eye(4).repeat(2, 1, 1))
        >>> len(cache), cache.image_size, cache.nbytes
        (2, (8, 8), 384)
    """

    def __init__(self, images: Tensor, c2w: Tensor, names: Sequence[str] | None = None,
                 domains: Sequence[str] | None = None, flights: Sequence[str] | None = None) -> None:
        if isinstance(images, np.ndarray):
            raise ValueError("ImageCache: `images` must be a uint8 tensor (N, 3, H, W), got a numpy.ndarray; "
                             "pass torch.as_tensor(images)")
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ImageCache: `images` must be a uint8 tensor (N, 3, H, W), got "
                             f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}")
        n = images.shape[0]
        if isinstance(c2w, np.ndarray):
            raise ValueError(f"ImageCache: `c2w` must be a tensor ({n}, 4, 4), got a numpy.ndarray; "
                             "pass torch.as_tensor(c2w)")
        if not isinstance(c2w, Tensor) or c2w.shape != (n, 4, 4):
            raise ValueError(f"ImageCache: `c2w` must be a tensor ({n}, 4, 4), got {tuple(getattr(c2w, 'shape', ()))}")
        self.images = images
        self.c2w = c2w.to(torch.float64)
        self.names = self._strings(names, n, "names", default=[str(i) for i in range(n)])
        self.domains = self._strings(domains, n, "domains")
        self.flights = self._strings(flights, n, "flights")
        self.source_key: str | None = None  # what it was decoded from (see `from_dataset`)

    @staticmethod
    def _strings(values: Sequence[str] | None, n: int, name: str, default: list[str] | None = None) -> list[str]:
        if values is None:
            return default if default is not None else [""] * n
        values = [str(v) for v in values]
        if len(values) != n:
            raise ValueError(f"ImageCache: `{name}` must have {n} entries, got {len(values)}")
        return values

    # ----------------------------------------------------------------- building
    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        image_size: Sequence[int],
        device: str | torch.device = "cpu",
        num_workers: int = 0,
        batch_size: int = 16,
        progress: bool = False,
        path: str | PathLike | None = None,
    ) -> "ImageCache":
        """Decode every sample of ``dataset`` once, resized to ``image_size`` (antialiased).

        Args:
            dataset: a map-style dataset of sample dicts (e.g. `topoloc.data.TopoFlight`).
            image_size: (H, W) of the cached images.
            device: ``"cpu"`` (pinned when CUDA is available), ``"cuda"`` or ``"auto"``
                (GPU memory when the cache takes less than half of the free memory).
            num_workers: DataLoader workers decoding in parallel.
            batch_size: samples per worker task.
            progress: show a tqdm bar.
            path: a cache file: loaded when it was built from the same images, else decoded
                again (with a log line) and rewritten. "The same" compares the image size, the
                count, the poses (when the dataset has ``poses()``) and, when the dataset lists its
                files (``image_paths``, as `TopoFlight` and `FlightCollection` do), each file's
                path, size, modification and change times, the decoder, the dataset's domain, read size
                and transform.
                A dataset without ``image_paths`` (a torch ``Subset``) cannot be checked for edited
                images: its first, middle and last samples are read and their names and poses compared
                (without ``poses()``), and the log warns when its cache is reused. A torch file that
                cannot be read (truncated, corrupt) or an empty file is decoded again with a log line;
                any other file that is not an `ImageCache` (not a torch file at all, or a torch file of
                Python objects such as a pickled model) is refused (ValueError), not overwritten.

        Warns:
            UserWarning: images of one flight and domain have different sizes (all are resized
                to ``image_size``, which stretches other aspect ratios); the warning gives the
                count of each size and a file of each.
            UserWarning: ``image_size`` has the images' aspect ratio turned on its side (``(W, H)``
                given for ``(H, W)``: the renderer's order), which stretches them to the other
                orientation; the warning gives their count, a file and the size meant.

        Raises:
            ValueError: a sample could not be read (an unreadable or missing file, a bad sample);
                the message holds the dataset's own error (which names the file) and the sample index.
            RuntimeError: the same for any other error the dataset raised (a bug, not the data).
        """
        size = _check_size(image_size)
        key = source_key(dataset, size, f"{_FORMAT}|{_DECODER}")
        cached = None
        if path is not None:  # this file's writes killed before they ended (the whole cache, each), nothing else
            remove_stale_writes(Path(path).parent, Path(path).name)
        if path is not None and Path(path).is_file():
            try:
                cached = cls.load(path)
            except UnreadableCacheError as err:  # truncated or corrupt: decode again, and overwrite it below
                log.warning("%s; decoding again", err)
        if cached is not None:
            why = _why_stale(cached, dataset, size, key)
            if why is None:
                if key is None:
                    log.warning("ImageCache: reusing %s; %s lists no image files, so edited images are not "
                                "detected", path, type(dataset).__name__)
                return cached.to(_resolve_cache_device(device, cached.nbytes))
            log.warning("ImageCache: %s was built from other images (%s); decoding again", path, why)
        if len(dataset) == 0:
            raise ValueError(f"ImageCache.from_dataset: the dataset {type(dataset).__name__} is empty")
        if path is not None:  # before the decode, which an unwritable file would otherwise throw away
            check_output(path, "ImageCache.from_dataset: path")
        images, c2w, names, domains, flights, native = decode_samples(dataset, size, num_workers, batch_size,
                                                                      progress)
        warn_mixed_sizes(dataset, native, names, domains, flights, size)
        warn_transposed(dataset, native, names, size)
        warn_upscaled(dataset, native, names, size)
        cache = cls(images, c2w, names, domains, flights)
        cache.source_key = key
        if path is not None:
            cache.save(path)
        return cache.to(_resolve_cache_device(device, cache.nbytes))

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Sample ``i`` (negative counts from the end, as for the datasets); ``"index"`` is its position here."""
        i = sample_index(i, len(self))
        return {"image": self.images[i].cpu(), "c2w": self.c2w[i].cpu(), "name": self.names[i],
                "domain": self.domains[i], "flight": self.flights[i], "index": i}

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the cached images."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def nbytes(self) -> int:
        """Bytes taken by the images."""
        return self.images.numel() * self.images.element_size()

    def poses(self) -> np.ndarray:
        """(N, 4, 4) float64 camera-to-world poses, as ``TopoFlight.poses()``."""
        return self.c2w.cpu().numpy()

    def batch(self, indices: Tensor, device: str | torch.device) -> tuple[Tensor, Tensor]:
        """Images and poses of ``indices`` on ``device`` (one gather, no Python loop).

        Shape:
            - indices: (B,) int64 (any device)
            - output: uint8 (B, 3, H, W) and float64 (B, 4, 4) on ``device``
        """
        device = torch.device(device)
        idx = indices.to(self.images.device)
        if self.images.device.type == "cpu" and device.type == "cuda":
            # Gather straight into pinned memory (one host copy), then an asynchronous upload.
            images = torch.empty((idx.numel(), *self.images.shape[1:]), dtype=torch.uint8, pin_memory=True)
            torch.index_select(self.images, 0, idx, out=images)
        else:
            images = self.images.index_select(0, idx)
        c2w = self.c2w.index_select(0, idx.to(self.c2w.device))
        upload = device.type == "cuda"  # asynchronous only to a GPU: a copy to the host must be complete when read
        return images.to(device, non_blocking=upload), c2w.to(device, non_blocking=upload)

    def to(self, device: str | torch.device) -> "ImageCache":
        """The cache with its tensors on ``device`` (pinned host memory for ``"cpu"`` when CUDA exists)."""
        device = torch.device(device)
        images = self.images.to(device)
        if device.type == "cpu" and torch.cuda.is_available() and not images.is_pinned():
            images = images.pin_memory()
        out = ImageCache.__new__(ImageCache)
        out.images, out.c2w = images, self.c2w.to(device)
        out.names, out.domains, out.flights = self.names, self.domains, self.flights
        out.source_key = getattr(self, "source_key", None)
        return out

    # ----------------------------------------------------------------- files
    def save(self, path: str | PathLike) -> Path:
        """Write the cache (atomically) to a ``torch.save`` file."""
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{path}: the image cache file is a folder; expected a file name (e.g. cache.pt)")
        images, c2w = self.images.cpu(), self.c2w.cpu()
        state = {"format": _FORMAT, "images": images, "c2w": c2w, "names": self.names, "domains": self.domains,
                 "flights": self.flights, "source_key": getattr(self, "source_key", None),
                 "digest": _digest(images, c2w)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a temporary name per process: two runs sharing a cache file and saving it at once both succeed
            write_atomically(path, lambda tmp: torch.save(state, tmp))
        except (OSError, RuntimeError) as err:  # torch reports an unwritable file as a RuntimeError
            why = str(err).splitlines()[0]
            if "strerror: " in why:  # torch's "[enforce fail at inline_container.cc:747] . open file failed ..."
                why = why.rsplit("strerror: ", 1)[1]
            raise OSError(f"{path}: could not write the image cache ({why})") from err
        return path

    @classmethod
    def load(cls, path: str | PathLike, device: str | torch.device = "cpu") -> "ImageCache":
        """Read a file written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ImageCache.load: no such file {str(path)!r}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - truncated, corrupt or not a torch file: torch raises many types
            with open(path, "rb") as f:
                head = f.read(4)
            if head and head != b"PK\x03\x04":  # `save` writes a zip archive: this file was never one of its files
                raise ValueError(f"ImageCache.load: {str(path)!r} is not an ImageCache file ({_FORMAT}): not a torch "
                                 f"file at all (it starts with {head!r}; torch.save writes a zip archive, b'PK\\x03"
                                 "\\x04')") from err
            text = plain_text(err)  # torch's weights-only advice is in colour
            if "Unsupported global" in text:  # a readable torch file of Python objects (a model, numpy scalars)
                raise ValueError(f"ImageCache.load: {str(path)!r} is not an ImageCache file ({_FORMAT}): it holds "
                                 "Python objects beyond tensors and plain data, which are not loaded (unpickling "
                                 "them can run code)") from err
            first = load_reason(text)
            raise UnreadableCacheError(f"ImageCache.load: {str(path)!r} could not be read "
                                       f"({type(err).__name__}: {first})") from err
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"ImageCache.load: {str(path)!r} is not an ImageCache file ({_FORMAT})")
        digest = data.get("digest")  # torch's zip reader checks no CRC: bytes changed in place load silently
        if digest is not None and digest != _digest(data["images"], data["c2w"]):
            raise UnreadableCacheError(f"ImageCache.load: {str(path)!r} could not be read (its images or poses "
                                       "differ from the digest written with them: the file was changed or damaged)")
        cache = cls(data["images"], data["c2w"], data["names"], data["domains"], data["flights"]).to(device)
        cache.source_key = data.get("source_key")
        return cache


def _digest(images: Tensor, c2w: Tensor) -> str:
    """BLAKE2b of the cached images' and poses' bytes (about 1 GB/s on one core)."""
    h = hashlib.blake2b(digest_size=16)
    for t in (images, c2w):
        h.update(str((t.dtype, tuple(t.shape))).encode())
        flat = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8) if t.numel() else t.new_zeros(0)
        for chunk in flat.split(1 << 26):  # 64 MB copies at a time (a GPU preset's cache holds about 1.5 GB)
            h.update(chunk.numpy().tobytes())
    return h.hexdigest()


def check_dataset(data: Any, name: str = "data") -> None:
    """Refuse, naming ``name``, what is not an `ImageCache` or a map-style dataset of sample dicts.

    Images without poses (a tensor or numpy array, a list of them) and text are refused with what to use
    instead: they have ``len`` and indexing, and were otherwise read as datasets until their first sample failed.

    Raises:
        TypeError: the message starts with ``name``.
    """
    if isinstance(data, ImageCache):
        return
    if isinstance(data, (Tensor, np.ndarray)):
        kind = "a tensor" if isinstance(data, Tensor) else "a numpy array (as a tensor: torch.from_numpy(images))"
        raise TypeError(f"{name}: expected an ImageCache or a map-style dataset of sample dicts, got {kind}: images "
                        "without poses go in ImageCache(images, c2w) with any c2w (e.g. torch.eye(4).repeat(n, 1, 1)), "
                        "or through topoloc.localise for photos")
    if isinstance(data, (list, tuple)) and any(isinstance(x, (Tensor, np.ndarray)) for x in data):
        kind = "tensors" if any(isinstance(x, Tensor) for x in data) else "arrays"
        raise TypeError(f"{name}: a list of image {kind} is not a dataset; use ImageCache(images, c2w), or "
                        "topoloc.localise for photos without poses")
    if isinstance(data, (str, bytes, PathLike)):
        raise TypeError(f"{name}: expected an ImageCache or a map-style dataset of sample dicts, got "
                        f"{type(data).__name__} {data!r}: open a folder as a dataset first (e.g. "
                        "topoloc.TopoFlight(root, flight))")
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise TypeError(f"{name}: expected an ImageCache or a map-style dataset of sample dicts, got "
                        f"{type(data).__name__}")


def as_cache(data: Any, image_size: Sequence[int] | None = None, device: str | torch.device = "cpu",
             num_workers: int = 0, progress: bool = False, name: str = "data") -> ImageCache:
    """``data`` as an `ImageCache` of ``image_size`` (decoding a dataset once, resizing a cache).

    Args:
        data: an `ImageCache` or a dataset of sample dicts.
        image_size: (H, W); ``None`` keeps the cache's size, or the first sample's for a dataset.
        device: where a newly decoded cache lives (``"cpu"``, ``"cuda"``, ``"auto"``).
        num_workers: decode workers.
        progress: show a progress bar while decoding.
        name: the argument ``data`` was given as, named in the errors.

    Returns:
        ``data`` itself when it is an `ImageCache` of that size, otherwise a new one (uint8
        ``(N, 3, H, W)`` images).
    """
    if isinstance(data, ImageCache):
        if image_size is None or tuple(image_size) == data.image_size:
            return data
        images = torch.cat([resize_uint8(chunk, tuple(image_size)) for chunk in data.images.split(256)])
        return ImageCache(images, data.c2w, data.names, data.domains, data.flights)
    check_dataset(data, name)
    if len(data) == 0:
        raise ValueError(f"{name}: the dataset {type(data).__name__} is empty")
    if image_size is None:
        image_size = tuple(int(s) for s in data[0]["image"].shape[-2:])
    return ImageCache.from_dataset(data, tuple(image_size), device=device, num_workers=num_workers,
                                   progress=progress)


def _check_size(image_size: Any) -> tuple[int, int]:
    return parse_image_size(image_size, name="ImageCache: `image_size`", short_side=False)


def _why_stale(cached: ImageCache, dataset: Any, size: tuple[int, int], key: str | None) -> str | None:
    """Why a loaded cache does not hold ``dataset`` at ``size`` (None when it does)."""
    if cached.image_size != size:
        return f"size {cached.image_size}, now {size}"
    if len(cached) != len(dataset):
        return f"{len(cached)} images, now {len(dataset)}"
    if not _same_poses(cached, dataset):
        return "other poses"
    if key is None and not callable(getattr(dataset, "poses", None)) and not _same_samples(cached, dataset):
        # a Subset or ConcatDataset: no files listed, no poses()
        return "other samples (names or poses of the first, middle and last)"
    saved = getattr(cached, "source_key", None)
    if key is not None and saved != key:
        return ("other image files, domain, or edited images" if saved is not None
                else "a cache file without the record of its image files")
    return None


def _same_samples(cache: ImageCache, dataset: Any) -> bool:
    """Whether the first, middle and last samples of ``dataset`` have the cache's names and poses (three
    samples read): a dataset that lists no files and has no ``poses()`` (a torch ``Subset`` of a flight) was
    told from another of its length by nothing else."""
    poses = cache.poses()
    for i in sorted({0, len(cache) // 2, len(cache) - 1}):
        try:
            sample = dataset[i]
        except Exception:  # noqa: BLE001 - an unreadable sample: decode again, where its error is named
            return False
        c2w = sample.get("c2w") if isinstance(sample, dict) else None
        if c2w is None or not np.allclose(np.asarray(c2w, dtype=np.float64), poses[i], rtol=0, atol=1e-9):
            return False
        if "name" in sample and str(sample["name"]) != cache.names[i]:
            return False
    return True


def _same_poses(cache: ImageCache, dataset: Any) -> bool:
    poses = getattr(dataset, "poses", None)
    if not callable(poses):
        return True
    try:
        expected = np.asarray(poses(), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a dataset without cheap poses: trust the count
        return True
    return expected.shape == (len(cache), 4, 4) and np.allclose(expected, cache.poses(), rtol=0, atol=1e-9)


def _resolve_cache_device(device: str | torch.device, nbytes: int) -> torch.device:
    """``"auto"``: GPU memory when CUDA is present and the cache fits in half the free memory."""
    if str(device) != "auto":
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("ImageCache: `device` is 'cuda' but CUDA is not available")
        return device
    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        if nbytes < 0.5 * free:
            return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
