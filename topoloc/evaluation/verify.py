"""Render-and-compare pose verification: of several candidate poses for a photo, keep the one whose
rendered view looks most like the photo.

A pose regressor's answer and the retrieval baseline's answers are hypotheses. Where the site can be
rendered (TOPO-DataGen renders any pose of its Cesium model; Mini-Comballaz renders any pose of its
world, `topoloc.procedural.ViewRenderer`), each hypothesis can be checked: render the view it
predicts and compare it with the photo. This is InLoc's dense pose verification (Taira et al.,
"InLoc: Indoor Visual Localization with Dense Matching and View Synthesis", CVPR 2018), which
compares a synthesised view with the query by dense descriptors; here the descriptors are a
network's intermediate feature map (`dense_features`), or, without a network, the grey image
itself (`grey_features`: the score is then the normalised cross-correlation of the two images).

- `candidate_poses`: the hypotheses: the regressor's pose and the poses of the ``k`` training
  images most similar to the photo in a descriptor space (`topoloc.evaluation.extract_features`).
- `verify_poses`: renders every hypothesis, scores it against the photo (`view_similarity`) and
  keeps the best; the photos are processed a chunk at a time, so memory does not grow with them.
- `average_hypotheses`: instead of the best alone, a weighted mean of the few best-scoring
  hypotheses (position and chordal-mean rotation): a pose between the hypotheses.

The renders must be of the appearance the network was trained on (the synthetic one), and the
hypotheses and the renderer must share one world frame. `verify_poses` cannot do better than the
best hypothesis; it is a choice, not a refinement (`average_hypotheses` can land between them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topoloc._modes import eval_mode
from topoloc._device import module_device
from topoloc.evaluation.retrieval import _homogeneous
from topoloc.models.contract import prepare, unwrap_model
from topoloc.rotations import nearest_rotation

__all__ = [
    "Verification",
    "average_hypotheses",
    "candidate_poses",
    "dense_features",
    "grey_features",
    "verify_poses",
    "view_similarity",
]

#: A renderer: camera-to-world poses (M, 4, 4), OpenCV axes, in the hypotheses' frame -> uint8 RGB
#: images (M, 3, H, W) at the photos' size.
Renderer = Callable[[np.ndarray], Tensor]


@dataclass(frozen=True)
class Verification:
    """The outcome of `verify_poses` for N photos and K hypotheses each.

    Attributes:
        c2w: (N, 4, 4) the chosen pose of each photo.
        index: (N,) int64, which hypothesis was chosen (0 is the first, e.g. the regressor's).
        scores: (N, K) float32, the similarity of each hypothesis's view to the photo, in [-1, 1].
    """

    c2w: np.ndarray
    index: np.ndarray
    scores: np.ndarray


def _check_images(images, name: str) -> Tensor:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        what = (f"a {images.dtype} tensor of shape {tuple(images.shape)}" if isinstance(images, Tensor)
                else type(images).__name__)
        raise ValueError(f"{name}: expected uint8 RGB images (N, 3, H, W), got {what}")
    if images.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got none")
    return images


def grey_features(images: Tensor) -> Tensor:
    """Each image as its grey level, zero-mean and of unit root-mean-square.

    The mean over pixels of the product of two such maps is their Pearson correlation (the
    normalised cross-correlation of the images), which `view_similarity` computes. A uniform image
    gives a zero map (it correlates with nothing).

    Shape:
        images: (N, 3, H, W) uint8 -> (N, 1, H, W) float32

    Example:
        >>> img = torch.randint(0, 256, (1, 3, 4, 6), dtype=torch.uint8)
        >>> g = grey_features(img)
        >>> round(float((g * g).mean()), 4)  # an image correlates perfectly with itself
        1.0
    """
    _check_images(images, "images")
    g = images.float().mean(1, keepdim=True)
    g = g - g.mean((2, 3), keepdim=True)
    rms = g.pow(2).mean((2, 3), keepdim=True).sqrt()
    return torch.where(rms > 1e-6, g / rms.clamp_min(1e-6), torch.zeros_like(g))


def _intermediate_index(net: nn.Module, reduction: int) -> int:
    info = getattr(net, "feature_info", None)
    reductions = [f["reduction"] for f in info] if info is not None else []
    if reduction not in reductions or not hasattr(net, "forward_intermediates"):
        raise ValueError(f"reduction: {reduction} is not a feature map of this backbone "
                         f"({type(net).__name__}); it has the reductions {reductions or 'none known'}")
    return reductions.index(reduction)


@torch.no_grad()
def dense_features(model: nn.Module, images: Tensor, reduction: int = 8, batch_size: int = 64) -> Tensor:
    """A network's intermediate feature map of each image, a unit vector at every location.

    The map is the backbone's at ``reduction`` (8: a ResNet's ``layer2``, one vector per 8 x 8
    pixels), taken with timm's ``forward_intermediates``; the model's ``input_filter`` (when it has
    one) is applied first, as in training. The model is put in ``eval()`` for the call and restored.

    Args:
        model: an `AtLoc` (its ``backbone``) or a `topoloc.models.Backbone`.
        images: uint8 RGB.
        reduction: the stride of the map, pixels per feature (one of the backbone's reductions).
        batch_size: images per forward pass.

    Returns:
        float32 features on the CPU; the mean over locations of the dot product of two maps is
        their mean cosine similarity (`view_similarity`).

    Shape:
        images: (N, 3, H, W) -> (N, C, H / reduction, W / reduction)
    """
    _check_images(images, "images")
    raw = unwrap_model(model)
    backbone = getattr(raw, "backbone", raw)
    net = getattr(backbone, "model", None)
    if net is None:
        raise ValueError(f"model: expected an AtLoc or a Backbone wrapping a timm model, got {type(raw).__name__}")
    index = _intermediate_index(net, reduction)
    input_filter = getattr(raw, "input_filter", None) if backbone is not raw else None
    device = module_device(raw)
    out = []
    with eval_mode(raw):
        for batch in images.split(batch_size):
            x = prepare(backbone, batch.to(device))
            if input_filter is not None:
                x = input_filter(x)
            (fmap,) = net.forward_intermediates(x, indices=[index], intermediates_only=True)
            out.append(F.normalize(fmap.float(), dim=1).cpu())
    return torch.cat(out)


def view_similarity(query: Tensor, views: Tensor) -> Tensor:
    """The similarity of each photo to each of its views: the mean over locations of the dot
    product of their feature maps (`grey_features`: normalised cross-correlation; `dense_features`:
    mean cosine similarity).

    Shape:
        query: (N, C, h, w), views: (N, K, C, h, w) -> (N, K)

    Example:
        >>> q = torch.tensor([[[[1.0, -1.0]]]])  # one photo, one channel, 1 x 2
        >>> v = torch.stack([q, -q, torch.zeros_like(q)], 1)
        >>> view_similarity(q, v).tolist()
        [[1.0, -1.0, 0.0]]
    """
    if query.ndim != 4 or views.ndim != 5 or views.shape[0] != query.shape[0] or views.shape[2:] != query.shape[1:]:
        raise ValueError(f"views: expected (N, K) + the query maps' shape {tuple(query.shape[1:])} with "
                         f"N = {query.shape[0]}, got {tuple(views.shape)}")
    return (query[:, None] * views).sum(2).mean((-1, -2))


def _as_c2w44(c2w, name: str) -> np.ndarray:
    a = np.asarray(c2w, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] not in ((3, 4), (4, 4)):
        raise ValueError(f"{name}: expected camera-to-world poses (..., 3, 4) or (..., 4, 4), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: poses must be finite")
    return _homogeneous(a)


def candidate_poses(predicted_c2w, query_descriptors, database_descriptors, database_c2w, k: int) -> np.ndarray:
    """The hypotheses of each photo: the predicted pose, then the poses of the ``k`` database images
    with the most similar descriptors (cosine similarity, most similar first).

    Args:
        predicted_c2w: (N, 3 or 4, 4) the regressor's poses.
        query_descriptors: (N, D) the photos' descriptors (e.g. `extract_features`).
        database_descriptors: (M, D) the training images' descriptors, same width.
        database_c2w: (M, 3 or 4, 4) the training images' poses.
        k: retrieved hypotheses per photo (0 keeps the prediction alone), at most M.

    Returns:
        (N, 1 + k, 4, 4) float64.

    Example:
        >>> eye = np.eye(4)[None]
        >>> db = np.stack([np.eye(4) + np.pad([[0, 0, 0, x]], ((0, 3), (0, 0))) for x in (1.0, 2.0)])
        >>> h = candidate_poses(eye, torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.1, 1.0]]), db, k=1)
        >>> h.shape, float(h[0, 1, 0, 3])  # the second database image is the nearer
        ((1, 2, 4, 4), 2.0)
    """
    pred = _as_c2w44(predicted_c2w, "predicted_c2w")
    db = _as_c2w44(database_c2w, "database_c2w")
    q = torch.as_tensor(query_descriptors, dtype=torch.float32)
    d = torch.as_tensor(database_descriptors, dtype=torch.float32)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"query_descriptors {tuple(q.shape)} and database_descriptors {tuple(d.shape)}: "
                         "expected (N, D) and (M, D) of the same width D")
    if pred.ndim != 3 or len(pred) != len(q):
        raise ValueError(f"predicted_c2w: expected one pose per query descriptor ({len(q)}), got {pred.shape}")
    if db.ndim != 3 or len(db) != len(d):
        raise ValueError(f"database_c2w: expected one pose per database descriptor ({len(d)}), got {db.shape}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(d):
        raise ValueError(f"k: expected an integer from 0 to the database size {len(d)}, got {k!r}")
    top = (F.normalize(q, dim=1) @ F.normalize(d, dim=1).T).topk(k, dim=1).indices.numpy()
    return np.concatenate([pred[:, None], db[top]], axis=1)


def verify_poses(query_images: Tensor, hypotheses, render: Renderer, model: nn.Module | None = None,
                 view_model: nn.Module | None = None, reduction: int = 8, chunk: int = 32) -> Verification:
    """For each photo, the hypothesis whose rendered view is the most similar to it.

    Args:
        query_images: (N, 3, H, W) uint8 photos.
        hypotheses: (N, K, 3 or 4, 4) candidate camera-to-world poses per photo (`candidate_poses`),
            in the renderer's frame.
        render: poses (M, 4, 4) -> uint8 views (M, 3, H, W) at the photos' size.
        model: the network whose `dense_features` describe the photos; None compares grey images
            (`grey_features`, normalised cross-correlation).
        view_model: the network for the rendered views (default: ``model``). The photos may go
            through a copy adapted to them (`topoloc.engine.adapt_batchnorm`) and the renders
            through the model as trained.
        reduction: the feature map's stride (`dense_features`).
        chunk: photos per round of rendering (N x K views are never held at once).

    Returns:
        a `Verification`; ties go to the earlier hypothesis.
    """
    _check_images(query_images, "query_images")
    hyp = _as_c2w44(hypotheses, "hypotheses")
    n, (h, w) = query_images.shape[0], query_images.shape[2:]
    if hyp.ndim != 4 or hyp.shape[0] != n or hyp.shape[1] == 0:
        raise ValueError(f"hypotheses: expected (N, K, 4, 4) with N = {n} photos and K >= 1, got {hyp.shape}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
    view_model = model if view_model is None else view_model

    def describe(net, images):
        return grey_features(images) if net is None else dense_features(net, images, reduction)

    k = hyp.shape[1]
    scores = []
    for s in range(0, n, chunk):
        poses = hyp[s:s + chunk]
        views = render(poses.reshape(-1, 4, 4))
        want = (len(poses) * k, 3, h, w)
        if not isinstance(views, Tensor) or views.dtype != torch.uint8 or tuple(views.shape) != want:
            got = f"{views.dtype} {tuple(views.shape)}" if isinstance(views, Tensor) else type(views).__name__
            raise ValueError(f"render: expected uint8 views of shape {want} (the photos' size), got {got}")
        q = describe(model, query_images[s:s + chunk])
        v = describe(view_model, views)
        scores.append(view_similarity(q, v.reshape(len(poses), k, *v.shape[1:])))
    score = torch.cat(scores).float().numpy()
    index = score.argmax(1)
    return Verification(c2w=hyp[np.arange(n), index], index=index.astype(np.int64), scores=score)


def check_averaging(top, temperature, most: int, most_label: str) -> None:
    """Refuse an `average_hypotheses` ``top`` outside 1 to ``most`` (named ``most_label`` in the message) or a
    ``temperature`` that is not a positive finite number; a caller checks before its minutes of rendering."""
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= most:
        raise ValueError(f"top: expected an integer from 1 to {most_label}, got {top!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < np.inf:
        raise ValueError(f"temperature: expected a positive finite number, got {temperature!r}")


def average_hypotheses(hypotheses, scores, top: int = 5, temperature: float = 0.05) -> np.ndarray:
    """Per photo, the weighted mean of its ``top`` best-scoring hypotheses.

    The weights are a softmax of the scores over ``temperature`` (a hypothesis scoring ``temperature``
    less than the best weighs 1 / e as much); the position is the weighted mean, the rotation the
    weighted chordal mean (the rotation nearest, in the Frobenius norm, to the weighted mean of the
    matrices). ``top=1`` is the best hypothesis itself, as `verify_poses` chooses it.

    Args:
        hypotheses: (N, K, 3 or 4, 4) the camera-to-world poses `verify_poses` scored.
        scores: (N, K) their scores (`Verification.scores`).
        top: how many of the best-scoring hypotheses to average, 1 to K.
        temperature: the softmax's temperature, in units of the score (> 0).

    Returns:
        (N, 4, 4) float64 poses.

    Example:
        >>> import math
        >>> def yaw(deg):
        ...     c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        ...     pose = np.eye(4); pose[:2, :2] = [[c, -s], [s, c]]; return pose
        >>> a, b = yaw(0.0), yaw(20.0)
        >>> b[0, 3] = 10.0  # 10 m east of the first, turned 20 deg
        >>> mean = average_hypotheses(np.stack([a, b])[None], np.array([[0.5, 0.5]]), top=2)
        >>> float(mean[0, 0, 3]), round(math.degrees(math.atan2(mean[0, 1, 0], mean[0, 0, 0])), 9)
        (5.0, 10.0)
    """
    hyp = _as_c2w44(hypotheses, "hypotheses")
    if hyp.ndim != 4 or hyp.shape[1] == 0:
        raise ValueError(f"hypotheses: expected (N, K, 4, 4) with K >= 1, got {hyp.shape}")
    score = np.asarray(scores, dtype=np.float64)
    if score.shape != hyp.shape[:2]:
        raise ValueError(f"scores: expected one per hypothesis, shape {hyp.shape[:2]}, got {score.shape}")
    if not np.isfinite(score).all():
        raise ValueError("scores: expected finite values, got NaN or infinity")
    check_averaging(top, temperature, hyp.shape[1], f"the {hyp.shape[1]} hypotheses per photo")
    order = np.argsort(-score, axis=1, kind="stable")[:, :top]  # ties: the earlier hypothesis first
    best = np.take_along_axis(hyp, order[:, :, None, None], axis=1)
    weight = np.exp((np.take_along_axis(score, order, axis=1) - score.max(1, keepdims=True)) / temperature)
    weight /= weight.sum(1, keepdims=True)
    out = np.tile(np.eye(4), (len(hyp), 1, 1))
    out[:, :3, 3] = np.einsum("nk,nki->ni", weight, best[:, :, :3, 3])
    out[:, :3, :3] = nearest_rotation(np.einsum("nk,nkij->nij", weight, best[:, :, :3, :3]))  # chordal mean
    return out
