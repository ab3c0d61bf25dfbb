"""Evaluation: per-image errors, summaries per domain and flight, coverage and the brackets.

`evaluate` runs a trained model on test datasets and measures it beside its brackets: the constant
pose and the coverage ceiling (`topoloc.engine.baselines`), the retrieval baseline with one or
several feature sources (`topoloc.engine.retrieval`), the model's fit of its own training images
and its error on a validation set. `PoseEvaluation` holds one method's predictions beside the
ground truth, in the dataset's local ENU frame, and converts them to ECEF, WGS84 and Cesium yaw /
pitch / roll for the predictions CSV; `EvaluationResult` gathers them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from topoloc.data.pose_coverage import DEFAULT_M_PER_DEG, Coverage, coverage
from topoloc.engine.baselines import constant_pose, coverage_ceiling
from topoloc.engine.retrieval import (FEATURE_SOURCES, extract_features, retrieval_label, retrieve_poses,
                                      thumbnail_features)
from topoloc.geodesy import LocalFrame, ecef_to_wgs84
from topoloc.geodesy import c2w_to_cesium as _c2w_to_cesium
from topoloc.metrics import PoseErrorSummary, pose_errors, summarize

__all__ = [
    "PoseEvaluation",
    "EvaluationResult",
    "evaluate",
    "evaluate_poses",
    "PREDICTION_COLUMNS",
    "DEFAULT_RETRIEVAL",
    "TRAIN_FIT_IMAGES",
    "CONSTANT",
    "CEILING",
    "TRAINING_FIT",
    "VALIDATION",
]

#: Method labels of the brackets.
CONSTANT, CEILING, TRAINING_FIT, VALIDATION = "constant pose", "coverage ceiling", "training fit", "validation"
#: Feature sources of the retrieval baseline computed by default (see `topoloc.engine.retrieval`).
DEFAULT_RETRIEVAL: tuple[str, ...] = ("thumbnail", "model")
#: Training images the model is also evaluated on by default (evenly spaced over the training set).
TRAIN_FIT_IMAGES = 512

#: Columns of the predictions CSV, in order.
PREDICTION_COLUMNS: tuple[str, ...] = (
    "method", "name", "flight", "domain", "translation_error_m", "rotation_error_deg",
    "pred_ecef_x_m", "pred_ecef_y_m", "pred_ecef_z_m", "pred_lat_deg", "pred_lon_deg", "pred_h_m",
    "pred_yaw_deg", "pred_pitch_deg", "pred_roll_deg",
    "true_ecef_x_m", "true_ecef_y_m", "true_ecef_z_m", "true_lat_deg", "true_lon_deg", "true_h_m",
    "true_yaw_deg", "true_pitch_deg", "true_roll_deg",
    "pred_east_m", "pred_north_m", "pred_up_m", "true_east_m", "true_north_m", "true_up_m",
    "nearest_train_m", "nearest_train_deg",
)


def _c2w_array(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] != (4, 4):
        raise ValueError(f"{name}: expected camera-to-world poses of shape (N, 4, 4), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite poses, got NaN or inf")
    return a


def _labels(values, n: int, name: str) -> list[str]:
    if isinstance(values, str) or values is None:
        return [str(values or "")] * n
    out = [str(v) for v in values]
    if len(out) != n:
        raise ValueError(f"{name}: expected {n} labels (one per image), got {len(out)}")
    return out


@dataclass
class PoseEvaluation:
    """One method's camera-to-world predictions on test images, beside the ground truth.

    Poses are camera-to-ENU in ``frame`` (metres; OpenCV camera axes). Errors are computed on
    construction: ``translation_m`` (Euclidean, m) and ``rotation_deg`` (geodesic angle, deg).

    Args:
        method: label of the method (``"model"``, ``"retrieval"``, a run name...).
        names, flights, domains: one label per image (a single string applies to all).
        pred_c2w: predicted poses (N, 4, 4), camera-to-ENU.
        gt_c2w: true poses (N, 4, 4), camera-to-ENU.
        frame: the local ENU frame of the poses.
        nearest_train_m, nearest_train_deg: optional (N,) distance (m) and angle (deg) from each
            true pose to the nearest training pose under the joint measure of
            `topoloc.data.coverage` (the coverage; the errors of the coverage ceiling).
    """

    method: str
    names: Sequence[str]
    flights: Sequence[str] | str
    domains: Sequence[str] | str
    pred_c2w: np.ndarray
    gt_c2w: np.ndarray
    frame: LocalFrame
    nearest_train_m: np.ndarray | None = None
    nearest_train_deg: np.ndarray | None = None
    translation_m: np.ndarray = field(init=False, repr=False)
    rotation_deg: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pred_c2w = _c2w_array(self.pred_c2w, "pred_c2w")
        self.gt_c2w = _c2w_array(self.gt_c2w, "gt_c2w")
        n = len(self.gt_c2w)
        if len(self.pred_c2w) != n:
            raise ValueError(f"pred_c2w has {len(self.pred_c2w)} poses but gt_c2w has {n}; expected the same")
        if n == 0:
            raise ValueError("gt_c2w: expected at least one test image, got none")
        if not isinstance(self.frame, LocalFrame):
            raise TypeError(f"frame: expected a topoloc.geodesy.LocalFrame, got {type(self.frame).__name__}")
        self.names = _labels(self.names, n, "names")
        self.flights = _labels(self.flights, n, "flights")
        self.domains = _labels(self.domains, n, "domains")
        for attr in ("nearest_train_m", "nearest_train_deg"):
            v = getattr(self, attr)
            if v is not None:
                v = np.asarray(v, dtype=np.float64).ravel()
                if len(v) != n:
                    raise ValueError(f"{attr}: expected {n} values (one per image), got {len(v)}")
                setattr(self, attr, v)
        self.translation_m, self.rotation_deg = pose_errors(self.pred_c2w, self.gt_c2w)

    def __len__(self) -> int:
        return len(self.gt_c2w)

    # ------------------------------------------------------------------ summaries
    def mask(self, domain: str | None = None, flight: str | None = None) -> np.ndarray:
        """Boolean (N,) selecting the images of a domain and / or a flight."""
        m = np.ones(len(self), dtype=bool)
        if domain is not None:
            m &= np.asarray(self.domains) == domain
        if flight is not None:
            m &= np.asarray(self.flights) == flight
        return m

    def summary(self, domain: str | None = None, flight: str | None = None) -> PoseErrorSummary:
        """Median, mean, p90 and CrossLoc thresholds over the selected images."""
        m = self.mask(domain, flight)
        if not m.any():
            raise ValueError(f"summary: no image with domain={domain!r}, flight={flight!r}; "
                             f"domains are {sorted(set(self.domains))}, flights {sorted(set(self.flights))}")
        return summarize(self.translation_m[m], self.rotation_deg[m])

    def groups(self) -> list[tuple[str, str]]:
        """The (domain, flight) pairs present, sorted."""
        return sorted(set(zip(self.domains, self.flights)))

    def summaries(self) -> dict[str, Any]:
        """Summaries overall, per domain and per (domain, flight), as JSON-able dicts."""
        return {
            "method": self.method,
            "all": self.summary().to_dict(),
            "by_domain": {d: self.summary(domain=d).to_dict() for d in sorted(set(self.domains))},
            "by_flight": {f"{d}/{f}": self.summary(domain=d, flight=f).to_dict() for d, f in self.groups()},
        }

    # ------------------------------------------------------------------ per-image rows
    def rows(self) -> list[dict[str, Any]]:
        """One dict per image with the columns of `PREDICTION_COLUMNS`.

        Predicted and true poses are given in ECEF (m), WGS84 (lat / lon deg, ellipsoidal h m),
        Cesium yaw / pitch / roll (deg) and local ENU (m).
        """
        pred_ecef = self.frame.c2w_enu_to_ecef(self.pred_c2w)
        true_ecef = self.frame.c2w_enu_to_ecef(self.gt_c2w)
        cols: dict[str, np.ndarray] = {}
        for prefix, c2w_ecef, c2w_enu in (("pred", pred_ecef, self.pred_c2w), ("true", true_ecef, self.gt_c2w)):
            ces = _c2w_to_cesium(c2w_ecef)
            lat, lon, h = ecef_to_wgs84(ces[:, 0], ces[:, 1], ces[:, 2])
            for i, axis in enumerate("xyz"):
                cols[f"{prefix}_ecef_{axis}_m"] = ces[:, i]
            cols[f"{prefix}_lat_deg"], cols[f"{prefix}_lon_deg"], cols[f"{prefix}_h_m"] = lat, lon, h
            for i, angle in enumerate(("yaw", "pitch", "roll")):
                cols[f"{prefix}_{angle}_deg"] = ces[:, 3 + i]
            for i, axis in enumerate(("east", "north", "up")):
                cols[f"{prefix}_{axis}_m"] = c2w_enu[:, i, 3]
        nan = np.full(len(self), np.nan)
        cols["nearest_train_m"] = self.nearest_train_m if self.nearest_train_m is not None else nan
        cols["nearest_train_deg"] = self.nearest_train_deg if self.nearest_train_deg is not None else nan
        cols["translation_error_m"], cols["rotation_error_deg"] = self.translation_m, self.rotation_deg
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {"method": self.method, "name": self.names[i], "flight": self.flights[i],
                                   "domain": self.domains[i]}
            for c in PREDICTION_COLUMNS[4:]:
                row[c] = float(cols[c][i])
            rows.append(row)
        return rows

    def to_csv(self, path: str | PathLike) -> Path:
        """Writes `rows` to a CSV file (header `PREDICTION_COLUMNS`); returns the path."""
        return write_rows_csv(self.rows(), path)


def write_rows_csv(rows: list[dict[str, Any]], path: str | PathLike) -> Path:
    """Writes prediction rows (dicts with `PREDICTION_COLUMNS`) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(PREDICTION_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def evaluate_poses(
    pred_c2w,
    gt_c2w,
    frame: LocalFrame,
    names: Sequence[str] | None = None,
    flights: Sequence[str] | str = "",
    domains: Sequence[str] | str = "",
    method: str = "model",
    train_c2w=None,
    m_per_deg: float = DEFAULT_M_PER_DEG,
) -> PoseEvaluation:
    """Errors and coverage of given predictions (camera-to-ENU in ``frame``).

    Args:
        pred_c2w: predicted poses; gt_c2w: true poses.
        frame: the local ENU frame of both.
        names, flights, domains: per-image labels (default names: ``"0"``, ``"1"``...).
        method: label of the method.
        train_c2w: the training poses; when given, each test image's distance and angle to the
            nearest training pose (``d = t_m + m_per_deg * r_deg``, see `topoloc.data.coverage`)
            are attached.
        m_per_deg: weight of the angle in that measure, metres per degree.

    Shape:
        pred_c2w, gt_c2w: (N, 4, 4); train_c2w: (M, 4, 4)
    """
    gt = _c2w_array(gt_c2w, "gt_c2w")
    if names is None:
        names = [str(i) for i in range(len(gt))]
    near_m = near_deg = None
    if train_c2w is not None:
        near_m, near_deg = nearest_pose(_c2w_array(train_c2w, "train_c2w"), gt, m_per_deg)
    return PoseEvaluation(method, names, flights, domains, pred_c2w, gt, frame, near_m, near_deg)


def nearest_pose(train_c2w: np.ndarray, test_c2w: np.ndarray,
                 m_per_deg: float = DEFAULT_M_PER_DEG) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) and rotation angle (deg) from each test pose to its nearest training pose under
    ``d = t_m + m_per_deg * r_deg`` (`topoloc.data.coverage`).

    Shape:
        train_c2w: (M, 4, 4), test_c2w: (N, 4, 4) -> (N,), (N,)
    """
    cov = coverage(train_c2w, test_c2w, m_per_deg=m_per_deg)
    return np.asarray(cov.distance_m, dtype=np.float64), np.asarray(cov.angle_deg, dtype=np.float64)


def _stats(x: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(x)), "mean": float(np.mean(x)), "p90": float(np.percentile(x, 90)),
            "max": float(np.max(x))}


@dataclass
class EvaluationResult:
    """The evaluation of one trained model on a test set, with its brackets.

    Every bracket but the training fit and the validation is on the same test images as ``model``.

    Attributes:
        model: the model's `PoseEvaluation` on the test images.
        retrieval: the first retrieval baseline (kept for compatibility; every one is in ``retrievals``).
        train_c2w: (M, 4, 4) training poses in the same frame (for coverage and maps), or None.
        extra: free-form metadata written to the summary JSON (checkpoint, config...).
        constant: the constant-pose baseline (training mean translation, chordal-mean rotation).
        retrievals: feature source (``"thumbnail"``, ``"model"``...) -> that retrieval baseline; its
            ``method`` label names the features.
        ceiling: the coverage ceiling (the nearest training pose to each TRUE pose).
        training_fit: the model on (a subset of) its own training images.
        validation: the model on the validation images.
        m_per_deg: weight of the angle in the coverage measure ``d = t_m + m_per_deg * r_deg``.
        coverage: the test poses' `Coverage` (with the distance to the nearest training position), or None.
        notes: sentences for the report on what could not be computed and why.
    """

    model: PoseEvaluation
    retrieval: PoseEvaluation | None = None
    train_c2w: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    constant: PoseEvaluation | None = None
    retrievals: dict[str, PoseEvaluation] = field(default_factory=dict)
    ceiling: PoseEvaluation | None = None
    training_fit: PoseEvaluation | None = None
    validation: PoseEvaluation | None = None
    m_per_deg: float = DEFAULT_M_PER_DEG
    coverage: Coverage | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.retrievals = dict(self.retrievals)
        if self.retrieval is not None and not any(r is self.retrieval for r in self.retrievals.values()):
            key = "model" if "model" not in self.retrievals else f"retrieval {len(self.retrievals)}"
            self.retrievals = {key: self.retrieval, **self.retrievals}
        if self.retrieval is None and self.retrievals:
            self.retrieval = next(iter(self.retrievals.values()))

    @property
    def frame(self) -> LocalFrame:
        return self.model.frame

    def baselines(self) -> list[PoseEvaluation]:
        """The brackets on the test images: constant pose, every retrieval, coverage ceiling."""
        return [m for m in (self.constant, *self.retrievals.values(), self.ceiling) if m is not None]

    def methods(self) -> list[PoseEvaluation]:
        """The model and its baselines, all on the test images."""
        return [self.model, *self.baselines()]

    def all_methods(self) -> list[PoseEvaluation]:
        """`methods`, then the training fit and the validation (on other images)."""
        return self.methods() + [m for m in (self.training_fit, self.validation) if m is not None]

    def coverage_summary(self) -> dict[str, dict[str, float]]:
        """Per test set (``"all"``, then ``"domain/flight"``, then ``"validation"``): median, p90 and max
        distance (m) and angle (deg) of the nearest training pose under the joint measure (metres AND
        degrees of the same pose), and the median distance to the nearest training position."""
        m = self.model
        if m.nearest_train_m is None:
            return {}
        pos = self.coverage.position_m if self.coverage is not None and self.coverage.position_m is not None \
            and len(self.coverage.position_m) == len(m) else None
        groups = [("all", m, np.ones(len(m), bool))] + [(f"{d}/{f}", m, m.mask(d, f)) for d, f in m.groups()]
        if self.validation is not None and self.validation.nearest_train_m is not None:
            groups.append((VALIDATION, self.validation, np.ones(len(self.validation), bool)))
        out = {}
        for key, ev, sel in groups:
            d, a = _stats(ev.nearest_train_m[sel]), _stats(ev.nearest_train_deg[sel])
            out[key] = {"count": int(sel.sum()), "m_per_deg": self.m_per_deg,
                        "median_m": d["median"], "p90_m": d["p90"], "max_m": d["max"],
                        "median_deg": a["median"], "p90_deg": a["p90"], "max_deg": a["max"]}
            if pos is not None and ev is m:
                out[key]["median_position_m"] = float(np.median(pos[sel]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame.to_dict(),
            "methods": {m.method: m.summaries() for m in self.all_methods()},
            "m_per_deg": self.m_per_deg,
            "coverage": self.coverage_summary(),
            **({"notes": list(self.notes)} if self.notes else {}),
            **({"extra": self.extra} if self.extra else {}),
        }

    def write(self, out_dir: str | PathLike, prefix: str = "") -> dict[str, Path]:
        """Writes ``<prefix>predictions.csv`` (every method and bracket, one row per image and method,
        labelled in the ``method`` column) and ``<prefix>summary.json``; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = [r for m in self.all_methods() for r in m.rows()]
        csv_path = write_rows_csv(rows, out / f"{prefix}predictions.csv")
        json_path = out / f"{prefix}summary.json"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return {"predictions": csv_path, "summary": json_path}


# ---------------------------------------------------------------------- running a model
def _caches(datasets, image_size, device) -> list:
    from topoloc.engine.predict import as_cache  # noqa: PLC0415 - keeps evaluate_poses import-light

    return [as_cache(ds, image_size, device=device) for ds in datasets]


def _retrieval_sources(retrieval) -> tuple[str, ...]:
    if retrieval is True:
        return DEFAULT_RETRIEVAL
    if retrieval is False or retrieval is None:
        return ()
    sources = (retrieval,) if isinstance(retrieval, str) else tuple(retrieval)
    for s in sources:
        if s not in FEATURE_SOURCES:
            raise ValueError(f"retrieval: unknown feature source {s!r}; expected True, False or some of "
                             f"{sorted(FEATURE_SOURCES)}")
    if len(set(sources)) != len(sources):
        raise ValueError(f"retrieval: feature source named twice in {sources!r}")
    return sources


def _dataset_list(datasets, name: str) -> list:
    if datasets is None:
        return []
    if not isinstance(datasets, (list, tuple)):
        datasets = [datasets]
    for i, ds in enumerate(datasets):
        if len(ds) == 0:
            raise ValueError(f"{name}[{i}]: the dataset {ds!r} is empty")
    return list(datasets)


def _subset(cache, count: int | None):
    """``count`` evenly spaced images of a cache (all when None or at least its length)."""
    from topoloc.data.cache import ImageCache  # noqa: PLC0415

    if count is None or count >= len(cache):
        return cache
    idx = np.unique(np.linspace(0, len(cache) - 1, count).round().astype(np.int64))
    t = torch.as_tensor(idx)
    return ImageCache(cache.images.index_select(0, t.to(cache.images.device)),
                      cache.c2w.index_select(0, t.to(cache.c2w.device)),
                      [cache.names[i] for i in idx], [cache.domains[i] for i in idx],
                      [cache.flights[i] for i in idx])


def _labels_of(caches) -> tuple[list[str], list[str], list[str]]:
    return ([n for c in caches for n in c.names], [f for c in caches for f in c.flights],
            [d for c in caches for d in c.domains])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    normalizer,
    datasets,
    frame: LocalFrame | None = None,
    train_set=None,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    image_size: tuple[int, int] | None = None,
    retrieval: bool | str | Sequence[str] = True,
    retrieval_model: nn.Module | None = None,
    method: str = "model",
    amp: bool = True,
    *,
    baselines: bool = True,
    val_sets=None,
    train_fit: int | None = TRAIN_FIT_IMAGES,
    m_per_deg: float = DEFAULT_M_PER_DEG,
) -> EvaluationResult:
    """Runs ``model`` on test datasets and measures it beside its brackets.

    With ``train_set``: the coverage of the test poses, the constant pose and the coverage ceiling
    (``baselines``), the retrieval baseline for each feature source of ``retrieval``, and the
    training fit (the model on ``train_fit`` evenly spaced training images); with ``val_sets``, the
    validation. Each dataset is decoded once into a uint8 `ImageCache`
    (`topoloc.engine.predict.as_cache`); predictions are batched on ``device``
    (`topoloc.engine.predict.predict`) and decoded by ``normalizer.decode``.

    Args:
        model: a trained `AtLoc` (or any module with ``normalize`` whose output ``normalizer.decode``
            reads).
        normalizer: the `PoseNormalizer` the model was trained with (``decode`` -> c2w ENU).
        datasets: one dataset or a sequence of them (e.g. `TopoFlight` synthetic and real test
            flights, or `ImageCache` objects); samples carry ``image``, ``c2w``, ``name``,
            ``flight``, ``domain``.
        frame: the local ENU frame of the poses; defaults to the first dataset's ``frame``.
        train_set: the training dataset (or cache): its poses give the coverage, the constant pose
            and the ceiling; its images the retrieval database and the training fit.
        device: where the model runs (default: the model's device).
        batch_size: images per forward pass.
        image_size: (H, W) the model was trained at (``TrainConfig.image_size``); None keeps the
            datasets' size.
        retrieval: feature sources of the retrieval baseline, each giving one baseline labelled
            ``"retrieval (features: ...)"``: ``"thumbnail"`` (model-free 16x24 grey tiny image),
            ``"thumbnail_colour"``, ``"model"`` (the pooled backbone features of ``retrieval_model``,
            by default of ``model`` itself), e.g. ``("thumbnail", "model")``; ``True``:
            `DEFAULT_RETRIEVAL`; ``False``: none. Needs ``train_set``.
        retrieval_model: the model whose backbone gives the ``"model"`` features (default: ``model``).
        method: label of the model's predictions.
        amp: bf16 autocast on CUDA.
        baselines: compute the constant pose and the coverage ceiling (when ``train_set`` is given).
        val_sets: validation dataset(s) (e.g. ``split="val"`` flights), evaluated as ``"validation"``.
        train_fit: training images the model is also evaluated on (evenly spaced), as
            ``"training fit"``; ``None``: all of them; 0: none.
        m_per_deg: weight of the angle in the coverage measure ``d = t_m + m_per_deg * r_deg``
            (metres per degree; see `topoloc.data.pose_coverage` for the default of 1).

    Returns:
        An `EvaluationResult`; its ``notes`` say which brackets could not be computed and why.
    """
    from topoloc.engine.predict import predict  # noqa: PLC0415

    datasets = _dataset_list(datasets, "datasets")
    if not datasets:
        raise ValueError("datasets: expected at least one test dataset, got none")
    val_sets = _dataset_list(val_sets, "val_sets")
    if frame is None:
        frame = getattr(datasets[0], "frame", None)
        if frame is None:
            raise ValueError("frame: the datasets have no `frame`; pass the LocalFrame of their poses")
    sources = _retrieval_sources(retrieval)
    if sources and train_set is None:
        raise ValueError("train_set: the retrieval baseline needs the training set (or pass retrieval=False)")
    if train_fit is not None and (isinstance(train_fit, bool) or not isinstance(train_fit, int) or train_fit < 0):
        raise ValueError(f"train_fit: expected a number of training images (>= 0) or None (all), got {train_fit!r}")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model = model.to(device)
    cache_device = "cpu"

    def run(caches) -> np.ndarray:
        return torch.cat([predict(model, c, normalizer, batch_size=batch_size, device=device, amp=amp)
                          for c in caches]).numpy()

    caches = _caches(datasets, image_size, cache_device)
    size = image_size or caches[0].image_size
    gt = np.concatenate([c.poses() for c in caches])
    names, flights, domains = _labels_of(caches)
    notes: list[str] = []
    train_cache = train_c2w = None
    if train_set is not None:
        if sources or train_fit != 0:
            train_cache = _caches([train_set], size, cache_device)[0]
            train_c2w = train_cache.poses()
        else:
            train_c2w = np.asarray(train_set.poses(), dtype=np.float64)
    else:
        notes.append("No training set was given: the coverage, the constant pose, the retrieval baseline, the "
                     "coverage ceiling and the training fit were not computed.")
    model_eval = evaluate_poses(run(caches), gt, frame, names, flights, domains, method, train_c2w, m_per_deg)
    result = EvaluationResult(model_eval, train_c2w=train_c2w, m_per_deg=m_per_deg, notes=notes)
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
        if source == "model":
            feat_model = (retrieval_model if retrieval_model is not None else model).to(device)
            db = extract_features(feat_model, train_cache.images, device, batch_size)
            query = torch.cat([extract_features(feat_model, c.images, device, batch_size) for c in caches])
            label = retrieval_label(source, None if retrieval_model is None else "the given retrieval_model")
        else:
            colour = source == "thumbnail_colour"
            db = thumbnail_features(train_cache.images, colour=colour)
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
        vcaches = _caches(val_sets, size, cache_device)
        v_names, v_flights, v_domains = _labels_of(vcaches)
        result.validation = evaluate_poses(run(vcaches), np.concatenate([c.poses() for c in vcaches]), frame,
                                           v_names, v_flights, v_domains, VALIDATION, train_c2w, m_per_deg)
    return result
