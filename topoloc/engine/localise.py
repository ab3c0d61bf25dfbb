"""`localise`: where was each photo taken? A trained model on new photos, no ground truth needed.

Photos are read the way training read its images (`topoloc.data.TopoFlight`): decoded by PIL to
RGB at their stored size, then resized to the model's input size with `resize_uint8` (bilinear,
antialiased, no crop: the aspect ratio is not kept), then ``model.normalize``, the model, and
``normalizer.decode``. That is `topoloc.engine.predict.predict` batch by batch, so the poses are
the ones `topoloc.engine.evaluate` gives for the same images.

EXIF orientation: pixels are used as the camera stored them, and an EXIF ``Orientation`` tag is
ignored (with a warning when it asks for a rotation or a flip). PIL does not apply the tag unless
asked (``ImageOps.exif_transpose``), the training images were read the same way, and a pose refers
to the sensor's frame: the roll of a DJI gimbal pose is the roll of the stored image. Rotating
the pixels to the display orientation would show the model a view rolled by 90 or 180 degrees
(and a transposed focal geometry) that it never learned. DJI drone cameras store photos upright
(Orientation 1), so their photos are unaffected.
"""

from __future__ import annotations

import numbers
import os
from collections import Counter
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from topoloc._device import module_device, resolve_device
from topoloc._flags import check_flag
from topoloc._paths import hidden
from topoloc._progress import maybe_bar
from topoloc.data._images import EXIF_ORIENTATION, image_header, pil_rgb, read_rgb
from topoloc.data.cache import ImageCache, resize_uint8
from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine.adapt import adapt_batchnorm
from topoloc.engine.checkpoint import frame_record, load_model
from topoloc.engine.predict import predict
from topoloc.evaluation.localisation import Localisation
from topoloc.geodesy import TOPO_ORIGINS, LocalFrame, as_frame
from topoloc.models.contract import input_size, resolve_input_size

__all__ = ["localise", "collect_photos", "read_photo", "resolve_frame", "resolve_model", "IMAGE_SUFFIXES",
           "DEFAULT_FRAME"]

#: File suffixes taken from a folder (case-insensitive); files named explicitly are read whatever their suffix.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
#: The frame assumed (with a warning) when a checkpoint does not record its training frame.
DEFAULT_FRAME = "comballaz"
#: |N| above which a geoid undulation is refused: Earth's lies between about -106 m and +86 m (EGM2008:
#: -106.2 to +85.8 m).
GEOID_LIMIT_M = 120.0
#: Relative aspect-ratio difference above which resizing warns that photos are stretched.
ASPECT_TOLERANCE = 0.01


@dataclass
class _Photo:
    """One input: a label, where it came from, and how to get its uint8 (3, H, W) pixels."""

    name: str
    source: str
    load: Callable[[], tuple[Tensor, int]]


def read_photo(path: str | PathLike) -> tuple[Tensor, int]:
    """A photo's pixels as stored (EXIF orientation not applied) and its EXIF orientation (1 if none).

    Returns:
        ``(image, orientation)``: uint8 RGB (3, H, W) at the stored size, and the EXIF
        ``Orientation`` value (1 = upright; 3, 6, 8 = rotated; 2, 4, 5, 7 = mirrored).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable image (the message names the file).
    """
    image = read_rgb(Path(path))
    try:
        orientation = image_header(Path(path))[1]
    except Exception:  # noqa: BLE001 - unreadable EXIF: the pixels were read, treat as upright
        orientation = 1
    return image, orientation


def _printable(text: str) -> str:
    """A file name as text that encodes to UTF-8: bytes that were not UTF-8 (held by Python as lone surrogates)
    written as ``\\xe9``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _path_photo(path: Path) -> _Photo:
    return _Photo(_printable(path.stem), _printable(str(path)), lambda: read_photo(path))


def _tensor_photo(image: Tensor, name: str) -> _Photo:
    return _Photo(name, "", lambda: (image, 1))


def _pil_photo(img: Image.Image, name: str, where: str) -> _Photo:
    def load() -> tuple[Tensor, int]:
        orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
        return pil_rgb(img, where), orientation

    filename = getattr(img, "filename", "") or ""
    return _Photo(_printable(Path(filename).stem) if filename else name, _printable(str(filename)), load)


def _check_uint8(t: Tensor, where: str) -> Tensor:
    if t.dtype != torch.uint8 or t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(f"{where}: expected a uint8 RGB tensor (B, 3, H, W) or (3, H, W), got "
                         f"{t.dtype} {tuple(t.shape)}")
    return t


def collect_photos(images: Any) -> list[_Photo]:
    """The photos of a folder, a path, a list of them, PIL images or a uint8 tensor batch, in order.

    A folder gives its files with an `IMAGE_SUFFIXES` suffix, sorted by name (not recursive); a broken link
    among them is kept, to be reported when read. Files named explicitly are taken whatever their suffix
    (an unreadable one fails when read). A photo is named by its file's stem, or by its whole file name
    where two files share a stem (``a.jpg`` and ``a.png``), or by its path below the folders' common parent
    where files of one name come from two folders (``a/p.jpg`` and ``b/p.jpg``). A file given more than once
    (twice by name, or by name and in a folder given too) is kept once, where it first comes, with a warning.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a folder holds no image, or nothing was given.
        TypeError: an input of another type.
    """
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    photos: list[_Photo] = []
    for k, item in enumerate(items):
        where = f"images[{k}]" if isinstance(images, (list, tuple)) else "images"
        if isinstance(item, (str, PathLike)):
            path = Path(item)
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if not p.is_dir() and p.suffix.lower() in IMAGE_SUFFIXES
                               and not hidden(p))
                if not files:
                    nested = " (its subfolders are not searched: name them)" if any(
                        p.is_dir() for p in path.iterdir()) else ""
                    raise ValueError(f"{path}: the folder holds no image file (expected "
                                     f"{', '.join(IMAGE_SUFFIXES)}){nested}")
                photos += [_path_photo(p) for p in files]
            elif path.is_file():
                photos.append(_path_photo(path))
            else:
                raise FileNotFoundError(f"{path}: no such photo or folder")
        elif isinstance(item, Image.Image):
            photos.append(_pil_photo(item, str(len(photos)), where))
        elif isinstance(item, Tensor):
            t = _check_uint8(item, where)
            batch = t if t.ndim == 4 else t[None]
            photos += [_tensor_photo(batch[i], str(len(photos) + i)) for i in range(len(batch))]
        else:
            raise TypeError(f"{where}: expected a folder or file path, a PIL image or a uint8 tensor, "
                            f"got {type(item).__name__}")
    if not photos:
        raise ValueError("images: expected at least one photo, got none")
    given = Counter(os.path.realpath(photo.source) for photo in photos if photo.source)
    twice = [path for path, count in given.items() if count > 1]
    if twice:  # one file named twice, or named and in a folder named too: one result each, not two alike
        warnings.warn(f"images: {len(twice)} photo file(s) given more than once (first: {twice[0]}): each is "
                      "localised once", stacklevel=3)
        seen: set[str] = set()
        unique = []
        for photo in photos:
            real = os.path.realpath(photo.source) if photo.source else None
            if real is None or real not in seen:
                unique.append(photo)
            if real is not None:
                seen.add(real)
        photos = unique
    stems = Counter(photo.name for photo in photos if photo.source)
    for photo in photos:
        if photo.source and stems[photo.name] > 1:
            photo.name = Path(photo.source).name
    names = Counter(photo.name for photo in photos if photo.source)
    clashing = [photo for photo in photos if photo.source and names[photo.name] > 1]
    if clashing:  # one file name in several folders: named by the path below the folders' common parent
        parent = os.path.commonpath([os.path.abspath(photo.source) for photo in clashing])
        for photo in clashing:
            photo.name = Path(os.path.relpath(os.path.abspath(photo.source), parent)).as_posix()
    return photos


# ---------------------------------------------------------------------------------- frames
def _same_frame(a: LocalFrame, b: LocalFrame) -> bool:
    return bool(np.allclose([a.lat_deg, a.lon_deg], [b.lat_deg, b.lon_deg], rtol=0, atol=1e-9)
                and abs(a.h_m - b.h_m) < 1e-6)


def _model_frame(model: nn.Module) -> Any:
    """The training frame a loaded model carries in its ``config`` dict (`load_model` puts it there), or None."""
    config = getattr(model, "config", None)
    return config.get("frame") if isinstance(config, dict) else None


def _frame_label(frame: LocalFrame) -> str:
    """``'comballaz'`` for a named origin, else ``lat 46.3, lon 7.0, h 1000 m``."""
    record = frame_record(frame)
    if record["name"]:
        return repr(record["name"])
    return f"lat {record['lat_deg']}, lon {record['lon_deg']}, h {record['h_m']} m"


def resolve_frame(frame: Any, recorded: Any = None, source: str = "the model") -> LocalFrame:
    """The local ENU frame of a model's predictions.

    Args:
        frame: the frame asked for (name, `LocalFrame`, dict or (lat, lon, h)), or None.
        recorded: the frame the checkpoint records, or None.
        source: what ``recorded`` came from, for messages.

    Raises:
        ValueError: ``frame`` and ``recorded`` differ (positions would land kilometres away).
    """
    asked = None if frame is None else as_frame(frame, "frame")
    known = None if recorded is None else as_frame(recorded, f"{source}: recorded frame")
    if asked is not None and known is not None and not _same_frame(asked, known):
        raise ValueError(f"frame: {_frame_label(asked)} was asked for but {source} was trained in "
                         f"{_frame_label(known)}; pass the training frame (or none)")
    if asked is not None:
        return asked
    if known is not None:
        return known
    warnings.warn(f"{source} does not record its training frame: assuming {DEFAULT_FRAME!r} "
                  f"{TOPO_ORIGINS[DEFAULT_FRAME]}; pass frame=... if it was trained elsewhere", stacklevel=3)
    return LocalFrame.named(DEFAULT_FRAME)


def resolve_model(checkpoint_or_model, normalizer, image_size, device, where: str = "localise"
                  ) -> tuple[nn.Module, Any, tuple[int, int], Any, str]:
    """(model, normalizer, image_size, recorded frame, description) from a checkpoint, a
    ``load_model`` triple or a model with its normaliser; the size is ``image_size`` if given,
    else the one the model records (`topoloc.models.contract`). ``where`` starts the errors."""
    if isinstance(checkpoint_or_model, (str, PathLike)):
        path = Path(checkpoint_or_model)
        model, ckpt_normalizer, _ = load_model(path, device=device)
        return (model, normalizer or ckpt_normalizer, resolve_input_size(model, image_size, where=where),
                _model_frame(model), f"checkpoint {str(path)!r}")
    if isinstance(checkpoint_or_model, tuple) and len(checkpoint_or_model) == 3:
        model, ckpt_normalizer, cfg = checkpoint_or_model
        recorded = getattr(cfg, "image_size", None)  # a hand-made (model, normalizer, None) has no config
        size = image_size if image_size is not None or input_size(model) is not None else recorded
        if (normalizer or ckpt_normalizer) is None:
            raise ValueError(f"{where}: the (model, normalizer, config) triple holds no normalizer; pass the model's "
                             "PoseNormalizer (in the triple or as `normalizer`), or a checkpoint path")
        return (model, normalizer or ckpt_normalizer, resolve_input_size(model, size, where=where),
                _model_frame(model), "the model")
    if isinstance(checkpoint_or_model, nn.Module):
        if normalizer is None:
            raise ValueError(f"{where}: a model needs `normalizer` (its PoseNormalizer) and, unless it records it, "
                             "the `image_size` (H, W) it was trained at; or pass a checkpoint path")
        return (checkpoint_or_model, normalizer, resolve_input_size(checkpoint_or_model, image_size, where=where),
                _model_frame(checkpoint_or_model), "the model")
    raise TypeError("checkpoint_or_model: expected a checkpoint path, a (model, normalizer, config) triple from "
                    f"load_model, or a model, got {type(checkpoint_or_model).__name__}")


# ---------------------------------------------------------------------------------- localise
#: `localise(adabn=True)` on fewer photos than this warns: their batch-norm statistics are noisy.
ADABN_FEW_PHOTOS = 16


def localise(
    checkpoint_or_model: Any,
    images: Any,
    *,
    normalizer: PoseNormalizer | None = None,
    image_size: tuple[int, int] | None = None,
    frame: Any = None,
    device: str | torch.device = "auto",
    batch_size: int = 32,
    on_error: str = "raise",
    geoid_offset_m: float = DEFAULT_GEOID_OFFSET_M,
    progress: bool = False,
    adabn: bool = False,
) -> Localisation:
    """Where each photo was taken: position and orientation predicted by a trained model.

    No pose is needed. Each photo is read as stored (EXIF orientation not applied, see the module
    doc), resized to the model's input size as training resized its images (a warning when its
    aspect ratio differs from the model's: the image is stretched, not cropped), normalised,
    run through the model and decoded with ``normalizer.decode``.

    Args:
        checkpoint_or_model: a ``last.pt`` / ``best.pt`` written by `topoloc.engine.train`, the
            ``(model, normalizer, config)`` of `load_model`, or a model (then ``normalizer`` is
            required, and ``image_size`` unless the model records it).
        images: a folder (its image files, sorted), a file path, a PIL image, a uint8 tensor
            (B, 3, H, W) or (3, H, W), or a list of these.
        normalizer: the `PoseNormalizer` of the training poses (default: the checkpoint's).
        image_size: (H, W) the model takes, pixels (default: the size the model records, see
            `topoloc.models.contract`).
        frame: the training frame (``"comballaz"``, ``"epfl"``, a `LocalFrame`, ``{lat_deg,
            lon_deg, h_m}``); default: the checkpoint's, else ``"comballaz"`` with a warning. A
            frame that contradicts the checkpoint's is an error.
        device: where a checkpoint's model runs: ``"auto"`` (CUDA when available), ``"cpu"`` or
            ``"cuda"``; a model passed in runs where it is. On CUDA the model runs under bf16
            autocast, as in `predict` and `evaluate`.
        batch_size: photos decoded and run together.
        on_error: ``"raise"`` (an unreadable photo is an error naming it) or ``"skip"`` (it is
            left out, listed in ``result.skipped`` with the reason, and a warning gives the count).
        geoid_offset_m: geoid undulation N (m) for the heights above sea level ``h - N``
            (default: `topoloc.data.exif.DEFAULT_GEOID_OFFSET_M`, western Switzerland).
        progress: show a tqdm progress bar (on stderr).
        adabn: first re-estimate the model's batch-norm statistics on these photos (AdaBN,
            `topoloc.engine.adapt.adapt_batchnorm`: unsupervised adaptation to their season, light
            and camera, no poses needed), then localise them. Pass the photos of one flight together;
            the decoded photos are held in memory (at the model's input size) until all are read.

    Returns:
        A `Localisation`: per photo ECEF, WGS84 (lat, lon, ellipsoidal and above-sea-level
        heights), yaw / pitch / roll (Cesium / DJI, deg) and the position in the training frame's
        ENU; ``.write("out.csv" | "out.geojson" | "out.kml")``.

    Shape:
        images as a tensor: (B, 3, H, W) or (3, H, W) uint8 RGB, any H, W.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if isinstance(geoid_offset_m, bool) or not isinstance(geoid_offset_m, numbers.Real) \
            or not abs(geoid_offset_m) <= GEOID_LIMIT_M:
        raise ValueError(f"geoid_offset_m (--geoid-offset): expected the geoid undulation N in metres, within "
                         f"+-{GEOID_LIMIT_M:g} (on Earth it lies between about -106 and +86), got {geoid_offset_m!r}")
    check_flag(progress, "progress")
    check_flag(adabn, "adabn")
    device = resolve_device(device)
    photos = collect_photos(images)
    model, normalizer, size, recorded, source = resolve_model(checkpoint_or_model, normalizer, image_size, device)
    frame = resolve_frame(frame, recorded, source)
    model_device = module_device(model)

    bar = maybe_bar(progress, total=len(photos), desc="localise", unit="photo")
    names, sources, poses, skipped, held = [], [], [], [], []
    sizes: dict[tuple[int, int], str] = {}
    turned: list[tuple[str, int]] = []
    grey: list[str] = []
    try:
        for start in range(0, len(photos), batch_size):
            batch = []
            for photo in photos[start:start + batch_size]:
                try:
                    image, orientation = photo.load()
                except (ValueError, OSError) as err:
                    if on_error == "raise":
                        raise ValueError(str(err)) from err
                    label = photo.source or photo.name
                    reason = str(err).removeprefix(f"{label}: ")
                    skipped.append((label, reason))
                    bar.update(1)
                    continue
                if orientation != 1:
                    turned.append((photo.source or photo.name, orientation))
                sizes.setdefault(tuple(int(s) for s in image.shape[-2:]), photo.source or photo.name)
                batch.append(resize_uint8(image, size))
                if torch.equal(batch[-1][0], batch[-1][1]) and torch.equal(batch[-1][1], batch[-1][2]):  # at model size
                    grey.append(photo.source or photo.name)
                names.append(photo.name)
                sources.append(photo.source)
                bar.update(1)
            if batch and adabn:
                held.extend(batch)  # the statistics need every photo before the first prediction
            elif batch:
                poses.append(_predict(model, torch.stack(batch), normalizer, model_device, size))
    finally:
        bar.close()
    if held:
        if len(held) < ADABN_FEW_PHOTOS:
            warnings.warn(f"adabn: batch-norm statistics of {len(held)} photo(s) only are noisy; pass the photos of "
                          f"a whole flight together (topoloc measured AdaBN on 150-447 photos per flight, "
                          "docs/RESULTS.md of the source repository)", stacklevel=2)
        images = torch.stack(held)
        adapted = adapt_batchnorm(model, _cache(images), batch_size=max(2, batch_size), device=model_device,
                                  image_size=size)
        poses.append(_predict(adapted, images, normalizer, model_device, size, batch_size))
    _warn_aspects(sizes, size)
    _warn_small(sizes, size)
    if turned:
        first, value = turned[0]
        warnings.warn(f"{len(turned)} photo(s) carry an EXIF Orientation other than 1 (first: {first}: {value}); "
                      "their pixels are used as stored, not rotated, as in training (see topoloc.engine.localise)",
                      stacklevel=2)
    if grey:
        warnings.warn(f"{len(grey)} of {len(photos)} photo(s) are greyscale (first: {grey[0]}): they are read as "
                      "colour images with three equal channels, but the model learnt colours (renders and colour "
                      "photos), so their positions may be far off", stacklevel=2)
    if skipped:
        warnings.warn(f"localise: skipped {len(skipped)} unreadable photo(s) of {len(photos)}; first: "
                      f"{skipped[0][0]}: {skipped[0][1]}", stacklevel=2)
    c2w = np.concatenate(poses) if poses else np.zeros((0, 4, 4))
    return Localisation(names, c2w, frame, sources, geoid_offset_m=geoid_offset_m, skipped=skipped)


def _cache(images: Tensor) -> ImageCache:
    """Photos without poses as an `ImageCache` (identity poses stand in for the unknown ones)."""
    return ImageCache(images, torch.eye(4, dtype=torch.float64).repeat(len(images), 1, 1))


def _predict(model: nn.Module, images: Tensor, normalizer, device, size: tuple[int, int],
             batch_size: int | None = None) -> np.ndarray:
    """Poses of photos already resized to ``size`` (H, W), run at that size (not at the size the model records)."""
    return predict(model, _cache(images), normalizer, batch_size=batch_size or len(images), device=device,
                   image_size=size).numpy()


def _warn_small(sizes: dict[tuple[int, int], str], size: tuple[int, int]) -> None:
    """One warning listing the stored sizes under half the model's input in both directions (upscaled > 2x)."""
    small = [(hw, src) for hw, src in sizes.items() if 2 * hw[0] < size[0] and 2 * hw[1] < size[1]]
    if small:
        listed = ", ".join(f"{w}x{h} (e.g. {src})" for (h, w), src in small[:3])
        warnings.warn(f"photos of {listed} are upscaled more than 2x to the model's {size[1]}x{size[0]} px input: "
                      "they hold less detail than the images it was trained on, and its predictions on them are "
                      "less reliable", stacklevel=3)


def _warn_aspects(sizes: dict[tuple[int, int], str], size: tuple[int, int]) -> None:
    """One warning listing the stored sizes whose aspect ratio differs from the model's input."""
    target = size[1] / size[0]
    off = [(hw, src) for hw, src in sizes.items() if abs((hw[1] / hw[0]) / target - 1.0) > ASPECT_TOLERANCE]
    if off:
        listed = ", ".join(f"{w}x{h} (aspect {w / h:.3f}, e.g. {src})" for (h, w), src in off[:3])
        warnings.warn(f"photos of {listed} are stretched to the model's {size[1]}x{size[0]} px (aspect {target:.3f}), "
                      "as training resized its images; predictions on a distorted view are less reliable: crop the "
                      "photos to the training aspect ratio first", stacklevel=3)
