"""Evaluation results: one method's per-image errors (`PoseEvaluation`) and a model's evaluation
with its brackets (`EvaluationResult`), their summaries, predictions CSV and summary JSON.

`PoseEvaluation` holds one method's predictions beside the ground truth, in the dataset's local ENU
frame, and converts them to ECEF, WGS84 and Cesium yaw / pitch / roll for the predictions CSV.
`EvaluationResult` gathers the model's with its brackets: the constant pose, the retrieval
baselines, the coverage ceiling (`topoloc.evaluation.baselines`, `topoloc.evaluation.retrieval`), the
training fit and the validation. `topoloc.engine.evaluate` computes them from a trained model.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import Tensor

from topoloc._paths import check_output
from topoloc._tempfiles import write_atomically, write_text_atomically
from topoloc.data.pose_coverage import DEFAULT_M_PER_DEG, Coverage, coverage
from topoloc.geodesy import LocalFrame, ecef_to_wgs84
from topoloc.geodesy import c2w_to_cesium as _c2w_to_cesium
from topoloc.metrics import PoseErrorSummary, pose_errors, summarize

__all__ = [
    "PoseEvaluation",
    "EvaluationResult",
    "evaluate_poses",
    "nearest_pose",
    "write_rows_csv",
    "PREDICTION_COLUMNS",
    "CONSTANT",
    "CEILING",
    "TRAINING_FIT",
    "VALIDATION",
]

#: Method labels of the brackets.
CONSTANT, CEILING, TRAINING_FIT, VALIDATION = "constant pose", "coverage ceiling", "training fit", "validation"

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


#: Floats smaller than this in magnitude are written as 0 (1e-9 deg is 0.02 mm at 1 km; 1e-9 m is a nanometre).
CSV_ZERO = 1e-9


def _csv_float(value: float) -> str:
    return "0" if abs(value) < CSV_ZERO else f"{value:.10g}"


def write_rows_csv(rows: list[dict[str, Any]], path: str | PathLike,
                   columns: Sequence[str] = PREDICTION_COLUMNS) -> Path:
    """Writes rows (dicts with ``columns``, by default the prediction rows' `PREDICTION_COLUMNS`) to
    ``path``; floats with 10 significant digits, and as 0 under `CSV_ZERO` in magnitude (the frame
    conversions' rounding noise: a true roll of 0 read back from ECEF is about 1e-14 deg)."""
    path = Path(path)
    check_output(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (_csv_float(v) if isinstance(v, float) else v) for k, v in row.items()})

    return write_atomically(path, write)


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
        brackets_of: for a second evaluation of a run on the same training set and test images (e.g. the
            same model with AdaBN), that run's name: its constant pose, coverage ceiling and retrieval
            baselines are those of that run, and the report does not list them as missing here.
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
    brackets_of: str | None = None

    def __post_init__(self) -> None:
        self.retrievals = dict(self.retrievals)
        if self.retrieval is not None and not any(r is self.retrieval for r in self.retrievals.values()):
            key = "model" if "model" not in self.retrievals else f"retrieval {len(self.retrievals)}"
            self.retrievals = {key: self.retrieval, **self.retrievals}
        if self.retrieval is None and self.retrievals:
            self.retrieval = next(iter(self.retrievals.values()))

    @property
    def frame(self) -> LocalFrame:
        """The local ENU frame the poses were evaluated in (the model's)."""
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
        degrees of the same pose), and the median distance to the nearest training position. ``"all"`` counts
        each test pose once: a pose tested in two domains (a photo and its render) is one pose to cover."""
        m = self.model
        if m.nearest_train_m is None:
            return {}
        pos = self.coverage.position_m if self.coverage is not None and self.coverage.position_m is not None \
            and len(self.coverage.position_m) == len(m) else None
        once = np.zeros(len(m), bool)  # the first image of each pose (to the millimetre and 1e-3 of the axes)
        once[np.unique(np.round(m.gt_c2w[:, :3, :].reshape(len(m), -1), 3), axis=0, return_index=True)[1]] = True
        groups = [("all", m, once)] + [(f"{d}/{f}", m, m.mask(d, f)) for d, f in m.groups()]
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
        """The frame, each method's summaries, the metres-per-degree weight, the coverage and the notes, as
        plain data (a report's ``summary.json``)."""
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
        check_output(out, "out_dir", folder=True)
        out.mkdir(parents=True, exist_ok=True)
        rows = [r for m in self.all_methods() for r in m.rows()]
        csv_path = write_rows_csv(rows, out / f"{prefix}predictions.csv")
        json_path = out / f"{prefix}summary.json"
        write_text_atomically(json_path, json.dumps(self.to_dict(), indent=2, default=str))
        return {"predictions": csv_path, "summary": json_path}
