"""`evaluate`: run a trained model on test datasets and measure it beside its brackets.

Beside the model's errors it computes the constant pose and the coverage ceiling
(`topoloc.evaluation.baselines`), the retrieval baseline with one or several feature sources
(`topoloc.evaluation.retrieval`), the model's fit of (a subset of) its own training images and its
error on a validation set, gathered in an `EvaluationResult` (`topoloc.evaluation.results`). This
module is the loop that runs the model; the result types and their files live on the floor below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Sequence, cast

import numpy as np
import torch
from torch import nn

from topoloc.data.cache import ImageCache, as_cache
from topoloc.data.normalize import PoseNormalizer
from topoloc.data.pose_coverage import DEFAULT_M_PER_DEG, coverage
from topoloc._device import module_device, resolve_device
from topoloc._flags import check_flag
from topoloc.engine.adapt import ADAPTATIONS, adapt_batchnorm, has_batchnorm
from topoloc.engine.checkpoint import check_frame, frame_record, frames_differ
from topoloc.engine.predict import predict
from topoloc.evaluation.baselines import constant_pose, coverage_ceiling
from topoloc.evaluation.results import (CEILING, CONSTANT, TRAINING_FIT, VALIDATION, EvaluationResult,
                                        PoseEvaluation, evaluate_poses)
from topoloc.evaluation.retrieval import (FEATURE_SOURCES, extract_features, retrieval_label, retrieve_poses,
                                          thumbnail_features)
from topoloc.geodesy import LocalFrame, as_frame
from topoloc.image_size import parse_image_size
from topoloc.models.contract import check_model, input_size, unwrap_model

__all__ = [
    "evaluate",
    "DEFAULT_RETRIEVAL",
    "TRAIN_FIT_IMAGES",
]

#: Feature sources of the retrieval baseline computed by default (see `topoloc.evaluation.retrieval`).
DEFAULT_RETRIEVAL: tuple[str, ...] = ("thumbnail", "model")
#: Training images the model is also evaluated on by default (evenly spaced over the training set).
TRAIN_FIT_IMAGES = 512


# ---------------------------------------------------------------------- running a model
def _caches(datasets, image_size, device, name: str = "datasets") -> list:
    return [as_cache(ds, image_size, device=device, name=f"{name}[{i}]") for i, ds in enumerate(datasets)]


def _retrieval_sources(retrieval) -> tuple[str, ...]:
    if retrieval is True:
        return DEFAULT_RETRIEVAL
    if retrieval is False or retrieval is None:
        return ()
    if not isinstance(retrieval, (str, list, tuple)):
        raise ValueError(f"retrieval: expected True, False, a feature source or a list of them (some of "
                         f"{sorted(FEATURE_SOURCES)}), got {retrieval!r}")
    sources = (retrieval,) if isinstance(retrieval, str) else tuple(retrieval)
    for s in sources:
        if s not in FEATURE_SOURCES:
            raise ValueError(f"retrieval: unknown feature source {s!r}; expected True, False or some of "
                             f"{sorted(FEATURE_SOURCES)}")
    if len(set(sources)) != len(sources):
        raise ValueError(f"retrieval: feature source named twice in {sources!r}")
    return sources


def _dataset_list(datasets, name: str, single: bool = False) -> list:
    """``datasets`` (one or a list; ``single``: exactly one) as a list of non-empty datasets."""
    if datasets is None:
        return []
    if isinstance(datasets, Mapping):  # a dict of named datasets: its keys would be read as sample indices
        raise TypeError(f"{name}: expected {'one dataset' if single else 'a dataset or a list of them'}, got "
                        f"{type(datasets).__name__}")
    if single and isinstance(datasets, (list, tuple)):
        raise TypeError(f"{name}: expected one dataset (a TopoFlights gathers several flights), got a "
                        f"{type(datasets).__name__}")
    if not isinstance(datasets, (list, tuple)):
        datasets = [datasets]
    for i, ds in enumerate(datasets):
        where = name if single else f"{name}[{i}]"
        if not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")) \
                or isinstance(ds, (str, bytes, torch.Tensor, np.ndarray)):
            raise TypeError(f"{where}: expected a dataset (a TopoFlight, an ImageCache or any map-style dataset of "
                            f"sample dicts){'' if single else ' or a list of them'}, got {type(ds).__name__}")
        if len(ds) == 0:
            raise ValueError(f"{where}: the dataset {ds!r} is empty")
    return list(datasets)


def _check_frames(model, frame, sets: dict[str, list]) -> None:
    """Refuse a ``frame`` other than the one the datasets' poses are in, or the one the model was trained in.

    Datasets without a ``frame`` (an `ImageCache`) are taken on trust, as is a model that records none
    (one built in Python rather than loaded from a checkpoint)."""
    mine = frame_record(frame)
    for name, datasets in sets.items():
        for i, ds in enumerate(datasets):
            theirs = getattr(ds, "frame", None)
            if theirs is not None and frames_differ(frame_record(theirs), mine):
                where = name if name == "train_set" else f"{name}[{i}]"
                raise ValueError(f"frame: {where} ({ds!r}) holds poses in {theirs}, not in {frame}; evaluating "
                                 f"there would place its poses about another origin. Pass frame={theirs!r} or "
                                 "datasets of one frame")
    config = getattr(unwrap_model(model), "config", None)
    if isinstance(config, dict) and config.get("frame") is not None:
        check_frame(unwrap_model(model), frame, "the model")


def _subset(cache, count: int | None):
    """``count`` evenly spaced images of a cache (all when None or at least its length)."""
    if count is None or count >= len(cache):
        return cache
    return _rows(cache, np.unique(np.linspace(0, len(cache) - 1, count).round().astype(np.int64)).tolist())


def _rows(cache, idx) -> ImageCache:
    """The images ``idx`` of a cache, as a cache."""
    t = torch.as_tensor(np.asarray(idx, dtype=np.int64))
    return ImageCache(cache.images.index_select(0, t.to(cache.images.device)),
                      cache.c2w.index_select(0, t.to(cache.c2w.device)),
                      [cache.names[i] for i in idx], [cache.domains[i] for i in idx],
                      [cache.flights[i] for i in idx])


def _groups(cache) -> list[list[int]]:
    """The rows of each (flight, domain) of a cache, in order of first appearance."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(cache.flights, cache.domains)):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _labels_of(caches) -> tuple[list[str], list[str], list[str]]:
    return ([n for c in caches for n in c.names], [f for c in caches for f in c.flights],
            [d for c in caches for d in c.domains])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    normalizer: PoseNormalizer,
    datasets: Any,
    frame: LocalFrame | None = None,
    train_set: Any = None,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    image_size: tuple[int, int] | None = None,
    retrieval: bool | str | Sequence[str] = True,
    retrieval_model: nn.Module | None = None,
    method: str = "model",
    amp: bool = True,
    *,
    baselines: bool = True,
    val_sets: Any = None,
    train_fit: int | None = TRAIN_FIT_IMAGES,
    m_per_deg: float = DEFAULT_M_PER_DEG,
    adapt: str | None = None,
) -> EvaluationResult:
    """Runs ``model`` on test datasets and measures it beside its brackets.

    With ``train_set``: the coverage of the test poses, the constant pose and the coverage ceiling
    (``baselines``), the retrieval baseline for each feature source of ``retrieval``, and the
    training fit (the model on ``train_fit`` evenly spaced training images); with ``val_sets``, the
    validation. Each dataset is decoded once into a uint8 `ImageCache`
    (`topoloc.data.cache.as_cache`); predictions are batched on ``device``
    (`topoloc.engine.predict.predict`) and decoded by ``normalizer.decode``.

    Args:
        model: a trained `AtLoc` (or any module with ``normalize`` whose output ``normalizer.decode``
            reads).
        normalizer: the `PoseNormalizer` the model was trained with (``decode`` -> c2w ENU).
        datasets: one dataset or a sequence of them (e.g. `TopoFlight` synthetic and real test
            flights, or `ImageCache` objects); samples carry ``image``, ``c2w``, ``name``,
            ``flight``, ``domain``.
        frame: the local ENU frame of the poses (a `LocalFrame`, a TOPO area name such as ``"comballaz"``,
            ``(lat_deg, lon_deg, h_m)`` or a dict of them: `topoloc.geodesy.as_frame`);
            defaults to the first dataset's ``frame``. Refused when a dataset holds its poses in another
            frame, or the model (from `load_model`) was trained in another.
        train_set: the training dataset (or cache): its poses give the coverage, the constant pose
            and the ceiling; its images the retrieval database and the training fit.
        device: where the model runs (default: the model's device).
        batch_size: images per forward pass.
        image_size: (H, W) in pixels to run at; None: the size the model records
            (`topoloc.models.contract`; `load_model` and `train` record it), or for a model that
            records none the datasets' own size.
        retrieval: feature sources of the retrieval baseline, each giving one baseline labelled
            ``"retrieval (features: ...)"``: ``"thumbnail"`` (model-free 16x24 grey tiny image),
            ``"thumbnail_colour"``, ``"model"`` (the pooled backbone features of ``retrieval_model``,
            by default of ``model`` itself), e.g. ``("thumbnail", "model")``; ``True``:
            `DEFAULT_RETRIEVAL` when ``train_set`` is given (none without, as the notes say); ``False``:
            none. Named sources need ``train_set``.
        retrieval_model: the model whose backbone gives the ``"model"`` features (default: ``model``).
        method: label of the model's predictions.
        amp: bf16 autocast on CUDA.
        baselines: compute the constant pose and the coverage ceiling (when ``train_set`` is given).
        val_sets: validation dataset(s) (e.g. ``split="val"`` flights), evaluated as ``"validation"``.
        train_fit: training images the model is also evaluated on (evenly spaced), as
            ``"training fit"``; ``None``: all of them; 0: none.
        m_per_deg: weight of the angle in the coverage measure ``d = t_m + m_per_deg * r_deg``
            (metres per degree; see `topoloc.data.pose_coverage` for the default of 1).
        adapt: unsupervised test-time adaptation of the model's predictions: ``None`` (none) or
            ``"adabn"``: the batch-norm statistics re-estimated on the images of each flight and
            domain of every dataset (test, validation, training fit) before predicting them
            (`topoloc.engine.adapt.adapt_batchnorm`; no labels used). The ``"model"`` retrieval
            features stay those of the unadapted model.

    Returns:
        An `EvaluationResult`; its ``notes`` say which brackets could not be computed and why.
    """
    # (H, W) or "WxH" text, as everywhere: it went to the caches as tuple(image_size), so "96x64" became
    # ('9', '6', 'x', '6', '4') and an int "'int' object is not iterable"
    image_size = parse_image_size(image_size, name="evaluate: `image_size`", short_side=False, allow_none=True)
    check_model(model, "evaluate")
    if retrieval_model is not None:
        check_model(retrieval_model, "evaluate", "retrieval_model")
    datasets = _dataset_list(datasets, "datasets")
    if not datasets:
        raise ValueError("datasets: expected at least one test dataset, got none")
    val_sets = _dataset_list(val_sets, "val_sets")
    train_list = _dataset_list(train_set, "train_set", single=True)
    if not isinstance(method, str):
        raise TypeError(f"method: expected the label of the model's predictions (a str), got {method!r}")
    if frame is None:
        frame = getattr(datasets[0], "frame", None)
        if frame is None:
            raise ValueError("frame: the datasets have no `frame`; pass the LocalFrame of their poses")
    else:
        frame = as_frame(frame)
    _check_frames(model, frame, {"datasets": datasets, "val_sets": val_sets, "train_set": train_list})
    check_flag(amp, "amp")
    check_flag(baselines, "baselines")
    if adapt is not None and adapt not in ADAPTATIONS:
        raise ValueError(f"adapt: expected None or one of {ADAPTATIONS}, got {adapt!r}")
    if adapt == "adabn" and not has_batchnorm(unwrap_model(model)):
        raise ValueError(f"adapt='adabn': the model ({type(unwrap_model(model)).__name__}) has no batch-norm layer "
                         "with running statistics to re-estimate")
    sources = _retrieval_sources(retrieval)
    if sources and train_set is None:
        if retrieval is not True:  # named feature sources: asked for explicitly
            raise ValueError("train_set: the retrieval baseline needs the training set (or pass retrieval=False)")
        sources = ()  # the default: the notes say that no training set was given
    if train_fit is not None and (isinstance(train_fit, bool) or not isinstance(train_fit, int) or train_fit < 0):
        raise ValueError(f"train_fit: expected a number of training images (>= 0) or None (all), got {train_fit!r}")
    device = module_device(model) if device is None else resolve_device(device)
    model = model.to(device)
    cache_device = "cpu"

    def run(caches) -> np.ndarray:
        if adapt is None:
            return torch.cat([predict(model, c, normalizer, batch_size=batch_size, device=device, image_size=size,
                                      amp=amp) for c in caches]).numpy()
        out = []
        for c in caches:  # AdaBN: one set of batch-norm statistics per flight and domain, from its own images
            pred = torch.empty(len(c), 4, 4, dtype=torch.float64)
            for rows in _groups(c):
                part = c if len(rows) == len(c) else _rows(c, rows)
                adapted = adapt_batchnorm(model, part, batch_size=batch_size, device=device, image_size=size)
                pred[torch.as_tensor(rows)] = predict(adapted, part, normalizer, batch_size=batch_size,
                                                      device=device, image_size=size, amp=amp)
            out.append(pred)
        return torch.cat(out).numpy()

    size = input_size(model) if image_size is None else image_size
    caches = _caches(datasets, size, cache_device)
    size = tuple(size or caches[0].image_size)
    gt = np.concatenate([c.poses() for c in caches])
    names, flights, domains = _labels_of(caches)
    notes: list[str] = []
    train_cache = train_c2w = None
    if train_set is not None:
        if sources or train_fit != 0:
            train_cache = _caches([train_set], size, cache_device, "train_set")[0]
            train_c2w = train_cache.poses()
        else:
            train_c2w = np.asarray(train_set.poses(), dtype=np.float64)
    else:
        notes.append("No training set was given: the coverage, the constant pose, the retrieval baseline, the "
                     "coverage ceiling and the training fit were not computed.")
    model_eval = evaluate_poses(run(caches), gt, frame, names, flights, domains, method, train_c2w, m_per_deg)
    result = EvaluationResult(model_eval, train_c2w=train_c2w, m_per_deg=m_per_deg, notes=notes)
    if adapt is not None:
        result.extra["adapt"] = adapt
    if train_c2w is None:
        return result
    near = (model_eval.nearest_train_m, model_eval.nearest_train_deg)

    def bracket(label: str, pred) -> PoseEvaluation:
        return PoseEvaluation(label, names, flights, domains, pred, gt, frame, *near)

    if baselines:
        result.constant = bracket(CONSTANT, np.broadcast_to(constant_pose(train_c2w), gt.shape).copy())
        ceiling_pred, result.coverage = coverage_ceiling(train_c2w, gt, m_per_deg)
        result.ceiling = bracket(CEILING, ceiling_pred)
    else:
        result.coverage = coverage(train_c2w, gt, m_per_deg=m_per_deg)
    for source in sources:
        train_images = cast(ImageCache, train_cache).images  # sources need a train_set, cached above
        if source == "model":
            feat_model = (retrieval_model if retrieval_model is not None else model).to(device)
            db = extract_features(feat_model, train_images, device, batch_size)
            query = torch.cat([extract_features(feat_model, c.images, device, batch_size) for c in caches])
            label = retrieval_label(source, None if retrieval_model is None else "the given retrieval_model")
        else:
            colour = source == "thumbnail_colour"
            db = thumbnail_features(train_images, colour=colour)
            query = torch.cat([thumbnail_features(c.images, colour=colour) for c in caches])
            label = retrieval_label(source)
        pred, _, _ = retrieve_poses(query, db, train_c2w)
        result.retrievals[source] = bracket(label, pred)
    result.retrieval = next(iter(result.retrievals.values()), None)
    if train_fit != 0:
        fit = _subset(train_cache, train_fit)
        f_names, f_flights, f_domains = _labels_of([fit])
        result.training_fit = evaluate_poses(run([fit]), fit.poses(), frame, f_names, f_flights, f_domains,
                                             TRAINING_FIT, train_c2w, m_per_deg)
    if val_sets:
        vcaches = _caches(val_sets, size, cache_device, "val_sets")
        v_names, v_flights, v_domains = _labels_of(vcaches)
        result.validation = evaluate_poses(run(vcaches), np.concatenate([c.poses() for c in vcaches]), frame,
                                           v_names, v_flights, v_domains, VALIDATION, train_c2w, m_per_deg)
    return result

