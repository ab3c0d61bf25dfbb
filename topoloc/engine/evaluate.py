"""Evaluation: per-image errors, summaries per domain and flight, coverage and the retrieval baseline.

`evaluate` runs a trained model on test datasets; `PoseEvaluation` holds one method's predictions
(the model's or the retrieval baseline's) beside the ground truth, in the dataset's local ENU frame,
and converts them to ECEF, WGS84 and Cesium yaw / pitch / roll for the predictions CSV.
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

from topoloc.engine.retrieval import extract_features, retrieve_poses
from topoloc.geodesy import LocalFrame, ecef_to_wgs84
from topoloc.geodesy import c2w_to_cesium as _c2w_to_cesium
from topoloc.metrics import PoseErrorSummary, pose_errors, summarize

__all__ = ["PoseEvaluation", "EvaluationResult", "evaluate", "evaluate_poses", "PREDICTION_COLUMNS"]

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
        nearest_train_m, nearest_train_deg: optional (N,) distance and angle from each true pose
            to the nearest training pose (the coverage).
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
) -> PoseEvaluation:
    """Errors and coverage of given predictions (camera-to-ENU in ``frame``).

    Args:
        pred_c2w: predicted poses; gt_c2w: true poses.
        frame: the local ENU frame of both.
        names, flights, domains: per-image labels (default names: ``"0"``, ``"1"``...).
        method: label of the method.
        train_c2w: the training poses; when given, each test image's distance and angle to the
            nearest training pose are attached (see `topoloc.data.coverage`).

    Shape:
        pred_c2w, gt_c2w: (N, 4, 4); train_c2w: (M, 4, 4)
    """
    gt = _c2w_array(gt_c2w, "gt_c2w")
    if names is None:
        names = [str(i) for i in range(len(gt))]
    near_m = near_deg = None
    if train_c2w is not None:
        near_m, near_deg = nearest_pose(_c2w_array(train_c2w, "train_c2w"), gt)
    return PoseEvaluation(method, names, flights, domains, pred_c2w, gt, frame, near_m, near_deg)


def nearest_pose(train_c2w: np.ndarray, test_c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) from each test pose to the nearest training position, and the rotation angle
    (deg) to that training pose (`topoloc.data.coverage`).

    Shape:
        train_c2w: (M, 4, 4), test_c2w: (N, 4, 4) -> (N,), (N,)
    """
    from topoloc.data import coverage  # noqa: PLC0415

    cov = coverage(train_c2w, test_c2w)
    return np.asarray(cov.distance_m, dtype=np.float64), np.asarray(cov.angle_deg, dtype=np.float64)


@dataclass
class EvaluationResult:
    """The evaluation of one trained model: its predictions, the retrieval baseline, the coverage.

    Attributes:
        model: the model's `PoseEvaluation`.
        retrieval: the nearest-neighbour baseline's `PoseEvaluation` (None if not computed).
        train_c2w: (M, 4, 4) training poses in the same frame (for coverage and maps), or None.
        extra: free-form metadata written to the summary JSON (checkpoint, config...).
    """

    model: PoseEvaluation
    retrieval: PoseEvaluation | None = None
    train_c2w: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frame(self) -> LocalFrame:
        return self.model.frame

    def methods(self) -> list[PoseEvaluation]:
        return [m for m in (self.model, self.retrieval) if m is not None]

    def coverage_summary(self) -> dict[str, dict[str, float]]:
        """Per domain / flight: median and p90 distance (m) and angle (deg) to the nearest training pose."""
        m = self.model
        if m.nearest_train_m is None:
            return {}
        out = {}
        groups = [("all", np.ones(len(m), bool))] + [(f"{d}/{f}", m.mask(d, f)) for d, f in m.groups()]
        for key, sel in groups:
            d, a = m.nearest_train_m[sel], m.nearest_train_deg[sel]
            out[key] = {"count": int(sel.sum()), "median_m": float(np.median(d)), "p90_m": float(np.percentile(d, 90)),
                        "max_m": float(d.max()), "median_deg": float(np.median(a)),
                        "p90_deg": float(np.percentile(a, 90))}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame.to_dict(),
            "methods": {m.method: m.summaries() for m in self.methods()},
            "coverage": self.coverage_summary(),
            **({"extra": self.extra} if self.extra else {}),
        }

    def write(self, out_dir: str | PathLike, prefix: str = "") -> dict[str, Path]:
        """Writes ``<prefix>predictions.csv`` (every method, one row per image and method) and
        ``<prefix>summary.json``; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = [r for m in self.methods() for r in m.rows()]
        csv_path = write_rows_csv(rows, out / f"{prefix}predictions.csv")
        json_path = out / f"{prefix}summary.json"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return {"predictions": csv_path, "summary": json_path}


# ---------------------------------------------------------------------- running a model
def _caches(datasets, image_size, device) -> list:
    from topoloc.engine.predict import as_cache  # noqa: PLC0415 - keeps evaluate_poses import-light

    return [as_cache(ds, image_size, device=device) for ds in datasets]


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
    retrieval: bool = True,
    retrieval_model: nn.Module | None = None,
    method: str = "model",
    amp: bool = True,
) -> EvaluationResult:
    """Runs ``model`` on test datasets and measures it, with coverage and the retrieval baseline.

    Each dataset is decoded once into a uint8 `ImageCache` (`topoloc.engine.predict.as_cache`);
    predictions are batched on ``device`` (`topoloc.engine.predict.predict`).

    Args:
        model: a trained `AtLoc` (or any module with ``normalize`` and a (B, 6) output).
        normalizer: the `PoseNormalizer` the model was trained with (``decode`` -> c2w ENU).
        datasets: one dataset or a sequence of them (e.g. `TopoFlight` synthetic and real test
            flights, or `ImageCache` objects); samples carry ``image``, ``c2w``, ``name``,
            ``flight``, ``domain``.
        frame: the local ENU frame of the poses; defaults to the first dataset's ``frame``.
        train_set: the training dataset (or cache): its poses give the coverage and, with its
            images, the retrieval database.
        device: where the model runs (default: the model's device).
        batch_size: images per forward pass.
        image_size: (H, W) the model was trained at (``TrainConfig.image_size``); None keeps the
            datasets' size.
        retrieval: compute the nearest-neighbour baseline (needs ``train_set``).
        retrieval_model: the model whose backbone gives the retrieval features (default: ``model``).
        method: label of the model's predictions.
        amp: bf16 autocast on CUDA.

    Returns:
        An `EvaluationResult`.
    """
    from topoloc.engine.predict import predict  # noqa: PLC0415

    if not isinstance(datasets, (list, tuple)):
        datasets = [datasets]
    if len(datasets) == 0:
        raise ValueError("datasets: expected at least one test dataset, got none")
    for i, ds in enumerate(datasets):
        if len(ds) == 0:
            raise ValueError(f"datasets[{i}]: the test dataset {ds!r} is empty")
    if frame is None:
        frame = getattr(datasets[0], "frame", None)
        if frame is None:
            raise ValueError("frame: the datasets have no `frame`; pass the LocalFrame of their poses")
    if retrieval and train_set is None:
        raise ValueError("train_set: the retrieval baseline needs the training set (or pass retrieval=False)")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model = model.to(device)
    cache_device = "cpu"
    caches = _caches(datasets, image_size, cache_device)
    pred = torch.cat([predict(model, c, normalizer, batch_size=batch_size, device=device, amp=amp)
                      for c in caches]).numpy()
    gt = np.concatenate([c.poses() for c in caches])
    names = [n for c in caches for n in c.names]
    flights = [f for c in caches for f in c.flights]
    domains = [d for c in caches for d in c.domains]
    train_cache = None
    if train_set is not None:
        if retrieval:
            train_cache = _caches([train_set], image_size or caches[0].image_size, cache_device)[0]
            train_c2w = train_cache.poses()
        else:
            train_c2w = np.asarray(train_set.poses(), dtype=np.float64)
    else:
        train_c2w = None
    model_eval = evaluate_poses(pred, gt, frame, names, flights, domains, method, train_c2w)
    retrieval_eval = None
    if retrieval:
        feat_model = (retrieval_model if retrieval_model is not None else model).to(device)
        db = extract_features(feat_model, train_cache.images, device, batch_size)
        query = torch.cat([extract_features(feat_model, c.images, device, batch_size) for c in caches])
        ret_pred, _, _ = retrieve_poses(query, db, train_c2w)
        retrieval_eval = PoseEvaluation("retrieval", names, flights, domains, ret_pred, gt, frame,
                                        model_eval.nearest_train_m, model_eval.nearest_train_deg)
    return EvaluationResult(model_eval, retrieval_eval, train_c2w)
