"""Nearest-neighbour retrieval baseline: the pose of the most similar training image.

An absolute pose regressor mostly interpolates between its training poses (Sattler et al.,
"Understanding the limitations of CNN-based absolute camera pose regression", CVPR 2019), so every
evaluation reports this baseline beside the model: each test image takes the pose of the training
image whose descriptor is the most similar (cosine similarity). Whose descriptor matters, and every
result says it (`retrieval_label`):

- ``"model"``: the pooled backbone features of the trained regressor itself (`extract_features`);
  it rises and falls with the regressor.
- ``"thumbnail"`` / ``"thumbnail_colour"``: a model-free tiny-image descriptor (`thumbnail_features`):
  the image shrunk to 16 x 24 px, grey (or RGB), zero mean and unit norm, so that the cosine
  similarity is the normalised cross-correlation of the thumbnails: the classic "tiny images"
  place-recognition baseline (Torralba, Fergus and Freeman, PAMI 2008), which needs no training.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from topoloc._modes import eval_mode
from topoloc._device import module_device, resolve_device
from topoloc.models.contract import prepare, to_unit_float

__all__ = [
    "FEATURE_SOURCES",
    "THUMBNAIL_SIZE_HW",
    "extract_features",
    "nearest_neighbours",
    "retrieval_label",
    "retrieve_poses",
    "thumbnail_features",
]

#: (H, W) of the tiny-image descriptor, pixels: 3:2 like TOPO's 720 x 480 frames.
THUMBNAIL_SIZE_HW: tuple[int, int] = (16, 24)

#: Feature sources of the retrieval baseline -> the words of its label.
FEATURE_SOURCES: dict[str, str] = {
    "thumbnail": f"{THUMBNAIL_SIZE_HW[0]}x{THUMBNAIL_SIZE_HW[1]} grey thumbnail",
    "thumbnail_colour": f"{THUMBNAIL_SIZE_HW[0]}x{THUMBNAIL_SIZE_HW[1]} colour thumbnail",
    "model": "trained model",
}


def retrieval_label(source: str, detail: str | None = None) -> str:
    """The method label of a retrieval baseline, e.g. ``"retrieval (features: 16x24 grey thumbnail)"``.

    Args:
        source: a key of `FEATURE_SOURCES`.
        detail: replaces the source's words (e.g. ``"augmented model"``).
    """
    if source not in FEATURE_SOURCES:
        raise ValueError(f"retrieval: unknown feature source {source!r}; expected one of {sorted(FEATURE_SOURCES)}")
    return f"retrieval (features: {detail or FEATURE_SOURCES[source]})"


def _as_feature_matrix(x, name: str) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty feature matrix of shape (N, D), got {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: expected finite features, got NaN or inf")
    return t


@torch.no_grad()
def nearest_neighbours(query_qd, database_nd, chunk_size: int = 4096) -> tuple[Tensor, Tensor]:
    """Index and cosine similarity of the most similar database row for every query row.

    The similarities are one matrix product per chunk of queries (no loop over images); ties go
    to the lowest database index.

    Args:
        query_qd: query features (numpy or torch).
        database_nd: database features of the same width ``D``, on the same device as the queries.
        chunk_size: queries per matrix product (bounds the (chunk, N) similarity matrix in memory).

    Returns:
        ``(index (Q,) int64, similarity (Q,) float)``, on the queries' device.

    Shape:
        query_qd: (Q, D), database_nd: (N, D) -> (Q,), (Q,)

    Example:
        >>> idx, sim = nearest_neighbours([[1.0, 0.1], [0.0, -2.0]], [[0.0, 1.0], [3.0, 0.0], [0.0, -1.0]])
        >>> idx.tolist()
        [1, 2]
    """
    q = _as_feature_matrix(query_qd, "query_qd")
    d = _as_feature_matrix(database_nd, "database_nd").to(device=q.device)
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"query_qd has {q.shape[1]} features per row but database_nd has {d.shape[1]}; "
                         "expected the same width")
    _check_positive_int(chunk_size, "chunk_size")
    dtype = torch.promote_types(q.dtype, d.dtype)
    q = torch.nn.functional.normalize(q.to(dtype), dim=1)
    d = torch.nn.functional.normalize(d.to(dtype), dim=1)
    indices, sims = [], []
    for start in range(0, q.shape[0], chunk_size):
        s = q[start:start + chunk_size] @ d.T
        best, idx = s.max(dim=1)
        indices.append(idx)
        sims.append(best)
    return torch.cat(indices), torch.cat(sims)


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: Tensor | Iterable[Tensor],
    device: str | torch.device | None = None,
    batch_size: int = 64,
) -> Tensor:
    """Pooled backbone features (the retrieval descriptor) of uint8 images.

    Uses ``model.backbone`` (a `topoloc.models.Backbone`) when the model has one, after the model's
    ``input_filter`` (`AtLoc(local_contrast=...)`) when it has one, otherwise
    ``model`` itself must map normalised images to (B, D) or to ``(feature_map, pooled)``. The
    model is put in ``eval()`` mode for the extraction and restored afterwards.

    Args:
        model: an `AtLoc` (or a `Backbone`).
        images: a uint8 tensor (N, 3, H, W) (batched here), or an iterable of uint8 batches.
        device: where to run; defaults to the model's device.
        batch_size: images per forward pass when ``images`` is one tensor.

    Returns:
        float32 features on the CPU.

    Shape:
        images: (N, 3, H, W) uint8 -> (N, D)
    """
    _check_positive_int(batch_size, "batch_size")
    device = module_device(model) if device is None else resolve_device(device)
    backbone = getattr(model, "backbone", model)
    owner = model if hasattr(model, "prepare") or hasattr(model, "normalize") else backbone
    input_filter = getattr(model, "input_filter", None) if backbone is not model else None
    if isinstance(images, Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected a (N, 3, H, W) uint8 tensor, got {tuple(images.shape)}")
        if images.shape[0] == 0:
            raise ValueError("images: expected at least one image, got none")
        batches: Iterable[Tensor] = images.split(batch_size)
    else:
        batches = images
    out = []
    with eval_mode(model):
        for batch in batches:
            batch = batch.to(device, non_blocking=device.type == "cuda")  # asynchronous only to a GPU
            x = prepare(owner, batch, channels_last=True)  # faster on both CPU and GPU
            if input_filter is not None:
                x = input_filter(x)
            feats = backbone(x)
            if isinstance(feats, tuple):
                feats = feats[1]
            out.append(feats.float().flatten(1).cpu())
    if not out:
        raise ValueError("images: expected at least one batch, got none")
    return torch.cat(out)


#: Centred thumbnails with a smaller root-mean-square value (on the [0, 1] scale) count as uniform: zero
#: descriptors. Float rounding of a uniform image leaves under 1e-6; one 8-bit grey level is 3.9e-3.
_FLAT_RMS = 1e-5


@torch.no_grad()
def thumbnail_features(
    images: Tensor,
    size_hw: tuple[int, int] = THUMBNAIL_SIZE_HW,
    colour: bool = False,
    batch_size: int = 1024,
) -> Tensor:
    """The model-free tiny-image descriptor: a zero-mean, unit-norm thumbnail.

    Each image is shrunk (bilinear, antialiased) to ``size_hw``, turned grey with the ITU-R BT.601
    luma weights (0.299 R + 0.587 G + 0.114 B) unless ``colour``, flattened, centred on its own
    mean and scaled to unit L2 norm. The dot product of two descriptors is then the normalised
    cross-correlation of the thumbnails: unchanged by a gain and an offset of the brightness. A
    uniform image gives the zero vector.

    Args:
        images: uint8 (or float in [0, 1]) RGB images, on any device.
        size_hw: (H, W) of the thumbnail, pixels.
        colour: keep the three channels (descriptor ``3 * H * W`` long) instead of grey.
        batch_size: images shrunk at once.

    Returns:
        float32 descriptors on the CPU.

    Shape:
        images: (N, 3, H, W) -> (N, h * w) grey, (N, 3 * h * w) colour, with ``(h, w) = size_hw``

    Example:
        >>> img = torch.randint(0, 256, (2, 3, 48, 72), dtype=torch.uint8)
        >>> f = thumbnail_features(img)
        >>> tuple(f.shape), bool(torch.allclose(f.norm(dim=1), torch.ones(2))), abs(float(f.mean(1).sum())) < 1e-6
        ((2, 384), True, True)
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3 or images.shape[0] == 0:
        raise ValueError(f"images: expected a non-empty (N, 3, H, W) image tensor, got "
                         f"{tuple(getattr(images, 'shape', ()))}")
    _check_positive_int(batch_size, "batch_size")
    try:
        size = tuple(int(s) for s in size_hw)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size_hw: expected (H, W) of positive integers, got {size_hw!r}")
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32)
    out = []
    for batch in images.split(batch_size):
        x = to_unit_float(batch).float()
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                            antialias=True).cpu()
        if not colour:
            x = (x * luma.view(1, 3, 1, 1)).sum(dim=1)
        x = x.flatten(1)
        x = x - x.mean(dim=1, keepdim=True)
        # A uniform image leaves only float rounding after centring; normalised it would be noise of unit norm.
        flat = x.norm(dim=1, keepdim=True) < _FLAT_RMS * x.shape[1] ** 0.5
        out.append(torch.nn.functional.normalize(x, dim=1).masked_fill(flat, 0.0))
    return torch.cat(out)


def _homogeneous(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world poses (..., 3, 4) with their bottom row [0, 0, 0, 1] added; (..., 4, 4) as they are."""
    if c2w.shape[-2] == 4:
        return c2w
    return np.concatenate([c2w, np.broadcast_to([0.0, 0.0, 0.0, 1.0], c2w.shape[:-2] + (1, 4))], axis=-2)


def retrieve_poses(query_qd, database_nd, database_c2w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The retrieval baseline: each query takes the pose of its most similar database image.

    Args:
        query_qd: test-image features.
        database_nd: training-image features.
        database_c2w: the training images' camera-to-world poses (any metric frame), (N, 4, 4) or
            (N, 3, 4) (the bottom row then [0, 0, 0, 1]).

    Returns:
        ``(pred_c2w (Q, 4, 4) float64, index (Q,) int64, similarity (Q,) float64)``.

    Shape:
        query_qd: (Q, D), database_nd: (N, D), database_c2w: (N, 4, 4) -> (Q, 4, 4), (Q,), (Q,)
    """
    poses = np.asarray(database_c2w.detach().cpu() if isinstance(database_c2w, Tensor) else database_c2w,
                       dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(f"database_c2w: expected camera-to-world poses of shape (N, 4, 4) or (N, 3, 4), "
                         f"got {poses.shape}")
    poses = _homogeneous(poses)
    if not np.isfinite(poses).all():  # they would be returned as the predictions
        raise ValueError("database_c2w: expected finite numbers, got NaN or inf")
    n = database_nd.shape[0] if hasattr(database_nd, "shape") else len(database_nd)
    if len(poses) != n:
        raise ValueError(f"database_c2w has {len(poses)} poses but database_nd has {n} feature rows; "
                         "expected one pose per database image")
    idx, sim = nearest_neighbours(query_qd, database_nd)
    idx_np = idx.cpu().numpy().astype(np.int64)
    return poses[idx_np], idx_np, sim.double().cpu().numpy()
