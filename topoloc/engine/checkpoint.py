"""Training checkpoints: atomic writes, RNG states, and `load_model` for inference.

A checkpoint is a ``torch.save`` dict readable with ``weights_only=True`` (tensors and plain
Python values only):

- ``format``: ``"topoloc.checkpoint/1"``
- ``model_name``, ``model_kwargs``, ``model_config``: how to rebuild the model
  (``create_model(model_name, **model_kwargs)``; ``model_config`` is ``AtLoc.config``, with the
  input contract of `topoloc.models.contract`: ``image_size`` (H, W) trained at, ``mean``,
  ``std``; checkpoints written before it lack ``mean`` / ``std``, and ``load_model`` then takes the
  size from ``config["image_size"]`` and the normalisation from the backbone)
- ``model_state``, ``optimizer_state``, ``loss_state`` (``sax``, ``saq``)
- ``normalizer``: ``PoseNormalizer.state_dict()``
- ``config``: ``TrainConfig.to_dict()``
- ``epoch``, ``step`` (the next epoch and the next step within it), ``global_step``,
  ``epoch_stats`` (running sums of the unfinished epoch), ``best`` (best validation metrics),
  ``history`` (one dict per finished epoch), ``world_size``
- ``rng``: one entry per rank with the torch CPU / CUDA, numpy and Python RNG states
- ``frame``: the training poses' local frame, ``{"name", "lat_deg", "lon_deg", "h_m"}`` (name
  ``None`` for an origin that is not one of TOPO's), or ``None`` when the training data did not
  say (an `ImageCache`); absent from checkpoints written before it was recorded
- ``training_data``: which images the run trains on, ``{"images": N, "sha256": ..., "poses_sha256": ...}``
  (`data_record`: the training poses and each image's pixel sum, and the poses alone); absent from
  checkpoints written before 2026-12-03, ``poses_sha256`` from those written before 2026-12-07
- ``scene_head``: the auxiliary scene-coordinate head of ``TrainConfig.scene_coords``, ``{"state":
  its state dict, "stages": the backbone modules it reads, "centre_m": [e, n, u], "scale_m", "image_means_m":
  (N, 3) float64, each training image's mean target point, which a resume compares}``, or ``None`` (off); absent
  from checkpoints written before 2026-12-06, ``image_means_m`` from those before 2026-12-07. Only resuming reads it.

This module owns the schema: `training_checkpoint` writes it, `TrainingState` and `load_model`
read it; nothing else indexes a checkpoint dict by key.
"""

from __future__ import annotations

import hashlib
import random
import warnings
import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from topoloc._device import resolve_device
from topoloc._messages import load_reason, plain_text
from topoloc._paths import not_a_checkpoint_file
from topoloc._tempfiles import remove_stale_writes, write_atomically
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine.config import TrainConfig
from topoloc.geodesy import TOPO_ORIGINS, LocalFrame
from topoloc.models import AtLoc, create_model
from topoloc.models.contract import record_input_size

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "load_model", "training_checkpoint",
           "TrainingState", "recorded_frame", "capture_rng_state", "restore_rng_state", "frame_record",
           "check_frame", "frames_differ", "remove_stale_temporaries", "data_record", "poses_digest"]

CHECKPOINT_FORMAT = "topoloc.checkpoint/1"


def save_checkpoint(state: dict[str, Any], path: str | PathLike) -> Path:
    """Write ``state`` atomically: to a temporary file in the same folder, then ``os.replace``.

    A run killed while writing, or a power cut, leaves the previous checkpoint intact: the new file is
    synced to disk before it replaces it (`topoloc._tempfiles.write_atomically`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)

    return write_atomically(path, write)  # synced to disk before it replaces the previous checkpoint


def remove_stale_temporaries(folder: str | PathLike) -> list[Path]:
    """Delete the ``.<name>.<pid>.tmp`` files `save_checkpoint` left when process ``pid`` was killed.

    A file whose process is still alive (another run writing into the folder) is kept.

    Returns:
        The files removed.
    """
    return remove_stale_writes(folder)


@overload
def frame_record(frame: None) -> None: ...
@overload
def frame_record(frame: LocalFrame) -> dict[str, Any]: ...
def frame_record(frame: LocalFrame | None) -> dict[str, Any] | None:
    """A `LocalFrame` as the checkpoint's plain ``frame`` dict (None for None).

    Example:
        >>> from topoloc.geodesy import LocalFrame
        >>> frame_record(LocalFrame.named("epfl"))
        {'name': 'epfl', 'lat_deg': 46.5191, 'lon_deg': 6.5668, 'h_m': 390.0}
    """
    if frame is None:
        return None
    origin = (float(frame.lat_deg), float(frame.lon_deg), float(frame.h_m))
    name = next((n for n, o in TOPO_ORIGINS.items() if tuple(map(float, o)) == origin), None)
    return {"name": name, "lat_deg": origin[0], "lon_deg": origin[1], "h_m": origin[2]}


def frames_differ(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two `frame_record` dicts have different origins (beyond 1e-9 deg / m)."""
    return any(abs(a[k] - b[k]) > 1e-9 for k in ("lat_deg", "lon_deg", "h_m"))


def check_frame(model: Any, frame: Any, checkpoint: str | PathLike = "the checkpoint") -> None:
    """Refuse to evaluate ``model`` in another local frame than the one it was trained in.

    Args:
        model: a model from `load_model` (its ``config["frame"]`` holds the training frame).
        frame: the `LocalFrame` the evaluation uses.
        checkpoint: named in the messages.

    Raises:
        ValueError: the frames differ (the predictions would be placed about another origin,
            tens of km away).

    Warns:
        UserWarning: the checkpoint does not record its frame (written before topoloc recorded
            it, or trained from an `ImageCache`).
    """
    config = getattr(model, "config", None)
    trained = config.get("frame") if isinstance(config, dict) else None
    if trained is None:
        warnings.warn(f"{checkpoint}: the checkpoint does not record the local frame it was trained in; "
                      f"evaluating in {frame} on trust", stacklevel=2)
        return
    if frame is None:
        return
    mine = frame_record(frame)
    if frames_differ(trained, mine):
        label = lambda r: r["name"] or f"lat {r['lat_deg']}, lon {r['lon_deg']}, h {r['h_m']} m"  # noqa: E731
        raise ValueError(f"frame: {checkpoint} was trained in the {label(trained)} frame, not in "
                         f"{label(mine)}; its predictions are positions about the {label(trained)} origin. "
                         f"Evaluate with frame={trained['name'] or 'LocalFrame(...)'!r} (CLI: --frame)")


def _load_error(err: Exception, path: Path) -> str:
    """What `torch.load` said about ``path``, as one plain line: torch's weights-only refusal (many lines of
    advice to load the file unsafely, with terminal colour codes) becomes what it means here. Weights-only
    loading refuses a file that is no pickle at all (a YAML, an image, a .npy) with the same advice as a pickle
    of Python objects; the refusal's reason and the file's first bytes tell them apart."""
    text = plain_text(err)
    if "Unsupported global" in text or "Unsupported class" in text:  # a readable pickle of Python objects
        return ("it holds Python objects beyond tensors and plain data, which topoloc's checkpoints never do; it "
                "is not loaded (unpickling such objects can run code)")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = b""
    if head and head != b"PK\x03\x04" and not head.startswith(b"\x80"):  # neither a zip archive nor a pickle
        return (f"not a file written by torch.save (it starts with {head!r}; torch.save writes a zip archive, "
                "b'PK\\x03\\x04')")
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):  # a zip archive without its end: cut short
        return ("a zip archive that is cut short or damaged, as a torch.save that did not finish or a copy that "
                "stopped part way leaves it; it cannot be read")
    first = load_reason(text)
    return f"not a file written by torch.save ({type(err).__name__}: {first})" if first else \
        f"not a file written by torch.save ({type(err).__name__})"


def load_checkpoint(path: str | PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (``weights_only``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        # as "--checkpoint '...'" in the CLI
        raise FileNotFoundError(f"load_checkpoint {str(path)!r}: {not_a_checkpoint_file(path)}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - name the file
        raise ValueError(f"load_checkpoint: could not read {str(path)!r} as a torch checkpoint: "
                         f"{_load_error(err, path)}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"load_checkpoint: {str(path)!r} is not a topoloc checkpoint (expected format "
                         f"{CHECKPOINT_FORMAT!r}; original AtLoc checkpoints load with "
                         "AtLoc.from_atloc_checkpoint)")
    return state


def capture_rng_state() -> dict[str, Any]:
    """The torch (CPU and every CUDA device), numpy and Python RNG states, as tensors and ints."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`: dropout and augmentations continue exactly."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # One state per device index the writer saw; a machine with another number of GPUs gets back those of
        # the indices both have (a one-process run uses its current device, usually index 0).
        for index, device_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state.cpu(), index)
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))


def data_record(cache: Any) -> dict[str, Any]:
    """Which images a run trains on, for its checkpoint (``training_data``): their number, a SHA-256 of their
    poses (float64) and of each image's pixel sum, in order, and (``poses_sha256``) one of the poses alone, which
    `topoloc.experiments.leakage.other_training_data` compares without decoding an image. Cheap on any device:
    one sum per image.

    Example:
        >>> from topoloc.data.cache import ImageCache
        >>> cache = ImageCache(torch.zeros(2, 3, 4, 6, dtype=torch.uint8), torch.eye(4).repeat(2, 1, 1).double())
        >>> record = data_record(cache); record["images"], len(record["sha256"])
        (2, 64)
        >>> record["poses_sha256"] == poses_digest(cache.poses())
        True
    """
    sums = cache.images.sum(dim=(1, 2, 3), dtype=torch.int64).cpu().numpy()
    digest = hashlib.sha256(cache.c2w.cpu().to(torch.float64).contiguous().numpy().tobytes())
    poses_only = digest.hexdigest()  # the poses alone (`poses_digest`); the hash goes on with the pixel sums
    digest.update(sums.astype("<i8").tobytes())
    return {"images": len(cache.images), "sha256": digest.hexdigest(), "poses_sha256": poses_only}


def poses_digest(c2w: np.ndarray) -> str:
    """SHA-256 of (N, 4, 4) camera-to-world poses as float64 (C order, native byte order), as `data_record`
    writes it."""
    return hashlib.sha256(np.ascontiguousarray(c2w, dtype=np.float64).tobytes()).hexdigest()


def training_checkpoint(*, config: Any, model: Any, criterion: Any, optimizer: Any, normalizer: Any,
                        rng: list[dict[str, Any]], epoch: int, step: int, global_step: int,
                        epoch_stats: dict[str, float], best: dict[str, Any] | None, history: list[dict[str, Any]],
                        world_size: int, frame: dict[str, Any] | None,
                        training_data: dict[str, Any] | None = None,
                        scene_head: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint dict of a training run (the schema of this module's docstring).

    Args:
        config: the run's `TrainConfig`.
        model: the unwrapped model (its ``config`` dict carries the input contract).
        criterion, optimizer: the `AtLocLoss` and the optimiser.
        normalizer: the `PoseNormalizer` of the training poses.
        rng: one `capture_rng_state` per rank.
        epoch, step: the next epoch, and the next step within it (0 at an epoch's end).
        global_step: optimiser steps done.
        epoch_stats: running sums of the unfinished epoch (empty at an epoch's end).
        best: the best validation metrics so far, or None.
        history: one row per finished epoch.
        world_size: processes of the run.
        frame: `frame_record` of the training poses' frame, or None.
        training_data: `data_record` of the training images, or None.
        scene_head: the auxiliary scene-coordinate head of ``TrainConfig.scene_coords`` (``state``: its
            weights, ``stages``, ``centre_m``, ``scale_m``, ``image_means_m``), or None; not part of the model.
    """
    as_dict = config.to_dict()
    return {
        "model_name": config.model, "model_kwargs": as_dict["model_kwargs"],
        "model_config": dict(getattr(model, "config", {})),
        "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
        "loss_state": criterion.state_dict(), "normalizer": normalizer.state_dict(),
        "config": as_dict, "rng": rng, "epoch": epoch, "step": step,
        "global_step": global_step, "epoch_stats": dict(epoch_stats), "best": best,
        "history": list(history), "world_size": world_size, "frame": frame,
        "training_data": training_data, "scene_head": scene_head,
    }


@dataclass
class TrainingState:
    """A training checkpoint read back for resuming (see `training_checkpoint` for the fields).

    Attributes:
        path: the file it was read from.
        config: the run's `TrainConfig.to_dict`.
        normalizer: the `PoseNormalizer` of the training poses.
        frame: the training poses' frame record, or None when the checkpoint does not say.
        training_data: `data_record` of its training images, or None when the checkpoint predates it.
        scene_head: the auxiliary scene-coordinate head (`training_checkpoint`), or None.
    """

    path: Path
    config: dict[str, Any]
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    loss_state: dict[str, Any]
    normalizer: Any
    rng: list[dict[str, Any]]
    epoch: int
    step: int
    global_step: int
    epoch_stats: dict[str, float]
    best: dict[str, Any] | None
    history: list[dict[str, Any]]
    world_size: int
    frame: dict[str, Any] | None
    training_data: dict[str, Any] | None = None
    scene_head: dict[str, Any] | None = None

    @classmethod
    def read(cls, path: str | PathLike) -> "TrainingState":
        """Read a checkpoint written by `save_checkpoint` (`load_checkpoint`'s errors)."""
        state = load_checkpoint(path)
        return cls(Path(path), state["config"], state["model_state"], state["optimizer_state"], state["loss_state"],
                   PoseNormalizer.from_state_dict(state["normalizer"]), list(state["rng"]), int(state["epoch"]),
                   int(state["step"]), int(state["global_step"]), dict(state["epoch_stats"]), state["best"],
                   list(state["history"]), int(state["world_size"]), recorded_frame(state),
                   state.get("training_data"), state.get("scene_head"))


def recorded_frame(state: dict[str, Any]) -> dict[str, Any] | None:
    """The training frame a checkpoint dict records (``frame`` at the top, or in its ``config``), or None."""
    if state.get("frame") is not None:
        return state["frame"]
    config = state.get("config")
    return config.get("frame") if isinstance(config, dict) else None


#: What `load_model` reads of a checkpoint, besides its format.
MODEL_KEYS = ("normalizer", "model_name", "model_kwargs", "model_state", "config")


def load_model(path: str | PathLike, device: str | torch.device = "cpu") -> tuple[AtLoc, PoseNormalizer, TrainConfig]:
    """Rebuild a trained model from a checkpoint, for inference.

    Args:
        path: a checkpoint written by `topoloc.engine.train` (``last.pt`` / ``best.pt``).
        device: where to put the model (``"auto"``: CUDA when available).

    Returns:
        ``(model, normalizer, config)``: the model in ``eval()`` mode, the `PoseNormalizer`
        of its training poses (``normalizer.decode(model(model.prepare(images)))`` gives
        camera-to-world poses in the training set's frame, metres) and its `TrainConfig`.
        The model carries its input contract (`topoloc.models.contract`): ``config["image_size"]``
        (H, W) it was trained at (used by `predict` and `evaluate`), the normalisation it was
        trained with, ``config["frame"]`` (the training poses' local frame, see
        `check_frame`; None when the checkpoint does not record it) and ``config["training_data"]``
        (the `data_record` of its training images; None when the checkpoint does not record it).

    Raises:
        ValueError: not a topoloc checkpoint, one without the keys of `MODEL_KEYS`, weights that do not fit
            the recorded model or are not finite, or a config this version does not know; each names the file.
    """
    state = load_checkpoint(path)
    missing = [key for key in MODEL_KEYS if key not in state]
    if missing:
        raise ValueError(f"load_model: {str(path)!r} is a topoloc checkpoint without {missing}: damaged, or written "
                         "by another tool; expected what topoloc train writes (last.pt, best.pt)")
    normalizer = PoseNormalizer.from_state_dict(state["normalizer"])
    # Checkpoints written before the 6D default name no rotation: their head is the normaliser's code.
    kwargs = {"rotation": normalizer.rotation, **state["model_kwargs"], "pretrained": False}
    model = create_model(state["model_name"], **kwargs)
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as err:
        raise ValueError(f"load_model: the weights in {str(path)!r} do not fit "
                         f"{state['model_name']}({kwargs}): {err}") from err
    not_finite = next((name for name, value in state["model_state"].items()
                       if torch.is_tensor(value) and value.is_floating_point() and not bool(value.isfinite().all())),
                      None)
    if not_finite is not None:
        raise ValueError(f"load_model: the weights in {str(path)!r} are not finite ({not_finite!r} holds NaN or inf): "
                         "a run that diverged? Its predictions would be NaN; use an earlier checkpoint")
    model = model.to(resolve_device(device)).eval()
    try:
        config = TrainConfig.from_dict(state["config"])
    except ValueError as err:
        raise ValueError(f"load_model: {str(path)!r}: {err} (a checkpoint of a newer topoloc?)") from err
    recorded = state.get("model_config") or {}
    record_input_size(model, recorded.get("image_size") or config.image_size)
    if recorded.get("mean") is not None and hasattr(model, "set_input_contract"):
        model.set_input_contract(mean=recorded["mean"], std=recorded["std"])
    if isinstance(getattr(model, "config", None), dict):
        model.config["frame"] = recorded_frame(state)
        model.config["training_data"] = state.get("training_data")
    return model, normalizer, config
