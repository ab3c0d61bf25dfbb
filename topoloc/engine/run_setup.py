"""Setting a training run up: the part of `topoloc.engine.train.Trainer` that runs before its first step.

`RunSetup` holds the run's arguments (checked at construction) and the named builders that `_setup` calls in
order; `Trainer` adds the steps, checkpoints, validation and the loop. Also here: `initial_model` (the run's
first weights, which the saliency "before training" maps share), `training_autocast` and `check_val_frame`.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch
from torch import Tensor, nn

from augment import RandomSunRelight
from topoloc._device import cpu_has_bf16, resolve_device
from topoloc._paths import check_output
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine.checkpoint import TrainingState, data_record, frame_record, frames_differ, remove_stale_temporaries
from topoloc.engine.config import TrainConfig, augment_strength_at, build_augment
from topoloc.engine.distributed import DistInfo
from topoloc.engine.inputs import (check_last_batch, check_model_runs, relight_normals, steps_per_epoch,
                                   training_caches)
from topoloc.engine.resume import (accept_changes, announce_resume, config_changes, load_init_weights, read_init_from,
                                   refuse_another_run, refuse_fewer_epochs, remove_previous_run,
                                   restore_training_state, resume_path)
from topoloc.engine.scene_head import SceneHeadTraining, check_scene_source
from topoloc.geodesy import LocalFrame
from topoloc.models import AtLoc, AtLocLoss, create_model
from topoloc.models.contract import record_input_size

__all__ = ["RunSetup", "check_model_builds", "check_val_frame", "initial_model", "training_autocast"]

log = logging.getLogger("topoloc.engine")


def training_autocast(device_type: str, amp: bool, cpu_amp: bool) -> bool:
    """Whether the training steps run under bf16 autocast: ``amp`` on CUDA; ``cpu_amp`` on a CPU
    that computes bf16 natively (`cpu_has_bf16`), never on another (float32 is faster there)."""
    return amp if device_type == "cuda" else cpu_amp and cpu_has_bf16()


def _normalizer_label(normalizer: PoseNormalizer) -> str:
    """``mean (x, y, z) m, std (x, y, z) m, '6d'``: what tells two normalisers apart, for messages."""
    mean = ", ".join(f"{v:.1f}" for v in normalizer.mean_m)
    std = ", ".join(f"{v:.1f}" for v in normalizer.std_m)
    return f"mean ({mean}) m, std ({std}) m, {normalizer.rotation!r}"


def _check_callbacks(callbacks: Any) -> list[Callable[[dict[str, Any]], None]]:
    """``callbacks`` as a list, refused by name unless a list (or other iterable) of callables: they are first
    called after the first step, when the run's folder already holds its ``config.yaml`` and ``log.csv``."""
    if callable(callbacks):
        raise TypeError(f"train: `callbacks` must be a list of callables, got the single callable {callbacks!r}: "
                        "pass [it]")
    if isinstance(callbacks, (str, bytes, dict)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"train: `callbacks` must be a list of callables, got {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"train: `callbacks[{i}]` must be callable (called with a dict after every step), got "
                            f"{type(callback).__name__} {callback!r}")
    return callbacks


def check_val_frame(train_frame: dict[str, Any] | None, val_set: Any) -> None:
    """Refuse a validation set whose poses lie in another local frame than the training set's.

    The model predicts positions about the training frame's origin, and validation compares them with the
    validation poses as given: poses about another origin would give validation errors off by the distance
    between the origins, and pick ``best.pt`` on them. Sets without a ``frame`` (an `ImageCache`) are taken
    on trust.

    Args:
        train_frame: the training set's frame as `frame_record` gives it, or None.
        val_set: the validation set, or None.

    Raises:
        ValueError: naming ``val_set``, both frames and the distance between their origins (m).
    """
    theirs = frame_record(getattr(val_set, "frame", None)) if val_set is not None else None
    if train_frame is None or theirs is None or not frames_differ(train_frame, theirs):
        return

    def origin_ecef(r: dict[str, Any]) -> np.ndarray:
        return LocalFrame(r["lat_deg"], r["lon_deg"], r["h_m"]).origin_ecef

    def label(r: dict[str, Any]) -> str:
        return repr(r["name"]) if r["name"] else f"lat {r['lat_deg']}, lon {r['lon_deg']}, h {r['h_m']} m"

    apart_m = float(np.linalg.norm(origin_ecef(train_frame) - origin_ecef(theirs)))
    raise ValueError(f"val_set: its poses are in the local frame {label(theirs)}, the training set's in "
                     f"{label(train_frame)} (origins {apart_m:,.0f} m apart); validation would measure the model's "
                     "positions, which are about the training origin, against poses about another one. Build both "
                     "sets with the same frame= (e.g. TopoFlight(..., frame=...))")


def initial_model(config: TrainConfig, device: str | torch.device = "cpu") -> AtLoc:
    """The run's initial model: ``create_model(config.model, **config.model_kwargs)`` drawn right
    after ``torch.manual_seed(config.seed)``, with the training input size recorded.

    The trainer starts from it, and the saliency "before training" maps use it: the same seed
    gives the same weights. It reseeds torch's global RNG.

    Args:
        config: the run's `TrainConfig`.
        device: where to put the model.
    """
    torch.manual_seed(config.seed)
    model = create_model(config.model, **config.model_kwargs)
    record_input_size(model, config.image_size)
    return model.to(device)

def check_model_builds(config: TrainConfig) -> None:
    """Build ``config``'s model once, on the CPU, without ImageNet weights and with torch's RNG left as it was,
    and discard it: a bad value in ``model_kwargs`` (a ``dropout`` of 2, a timm argument the backbone does not
    take) is refused before the images are decoded, not after.

    Raises:
        TypeError, ValueError: the model's own error, after ``TrainConfig.model_kwargs``.
    """
    try:
        with torch.random.fork_rng(devices=[]):
            create_model(config.model, **{**config.model_kwargs, "pretrained": False})
    except (TypeError, ValueError) as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"TrainConfig.model_kwargs {config.model_kwargs}: {err}") from err


class RunSetup:
    """A training run before its first step: its arguments, and the builders `_setup` runs (see `Trainer`)."""

    def __init__(self, config: TrainConfig, train_set: Any, val_set: Any = None, *, normalizer: Any = None,
                 callbacks: Sequence[Callable[[dict[str, Any]], None]] = (), normals: Tensor | None = None,
                 scene_points: Tensor | None = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer: `config` must be a TrainConfig, got {type(config).__name__}")
        if train_set is None:
            raise ValueError("Trainer: `train_set` is required")
        if normalizer is not None and not isinstance(normalizer, PoseNormalizer):
            raise TypeError("train: `normalizer` must be a PoseNormalizer (PoseNormalizer.fit(train_set.poses()), or "
                            "the one load_model returns) or None to fit one to the training poses, got "
                            f"{type(normalizer).__name__}")
        self.config = config
        self.train_set, self.val_set = train_set, val_set
        self.normalizer = normalizer
        self.normals = normals
        self.scene_points = scene_points
        self.scene: SceneHeadTraining | None = None
        self.callbacks = _check_callbacks(callbacks)
        self.out_dir = Path(config.out_dir)
        check_output(self.out_dir, "TrainConfig.out_dir", folder=True)  # before the images are decoded
        check_model_builds(config)  # so is the model's
        self.history: list[dict[str, Any]] = []
        self.last_good: Path | None = None
        self.frame = frame_record(getattr(train_set, "frame", None))
        check_val_frame(self.frame, val_set)
        if config.scene_coords > 0:
            check_scene_source(train_set, scene_points)

    # ----------------------------------------------------------------- setup
    def _setup(self, info: DistInfo) -> TrainingState | None:
        """Build everything a run needs; returns the checkpoint it resumes from, or None."""
        self.info = info
        cfg = self.config
        if cfg.augment_ramp_epochs > cfg.epochs and info.is_main:
            log.warning("augment_ramp_epochs (%d) is more than epochs (%d): the last epoch augments at strength %.3g, "
                        "not augment_strength (%g); set both together (e.g. a recipe's "
                        "--override train.epochs=N train.augment_ramp_epochs=N)", cfg.augment_ramp_epochs, cfg.epochs,
                        augment_strength_at(cfg, cfg.epochs - 1), cfg.augment_strength)
        if cfg.augment_ramp_epochs and cfg.augment in (None, "colorjitter") and info.is_main:
            log.warning("augment_ramp_epochs (%d) ramps nothing: augment %r has no strength (set it to 0, or "
                        "augment to 'simtoreal')", cfg.augment_ramp_epochs, cfg.augment)
        resume_from = resume_path(cfg, self.out_dir)
        # First: a wrong init_from is refused before an overwritten run's files are removed and before the
        # images are decoded (at once, and with no cache file left behind).
        self.init_state = self._init_state() if resume_from is None else None
        self._claim_out_dir()
        self._build_device()
        self._build_caches()
        state = self._resume_state(resume_from)
        self._plan_steps()
        self._build_model_and_optimiser()
        check_model_runs(self.model, self.config.model, self.config.model_kwargs, self.config.image_size, self.device)
        check_last_batch(self.model, len(self.train_cache), self.info.world_size, self.local_batch,
                         self.config.drop_last, self.config.image_size, self.device)
        self._restore(state)
        self._wrap()
        if self.info.is_main:  # last: a run refused while it is set up leaves the run it would replace
            remove_previous_run(self.config, self.out_dir, self.replaced)
        return state

    def _claim_out_dir(self) -> None:
        """Refuse a new run into a folder holding another run's files, unless ``overwrite`` (those
        files are removed at the end of `_setup`); remove the temporary files of killed checkpoint writes."""
        self.replaced = self._refuse_another_run()
        if self.info.is_main:
            remove_stale_temporaries(self.out_dir)

    def _refuse_another_run(self) -> list[str]:
        return refuse_another_run(self.config, self.out_dir)

    def _build_device(self) -> None:
        """The device of this process (its own GPU under DDP) and the per-process batch."""
        info = self.info
        device = resolve_device(self.config.device, name="TrainConfig.device")
        if device.type == "cuda":
            device = torch.device("cuda", info.local_rank if info.distributed else torch.cuda.current_device())
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its kernels
        self.device, self.cuda = device, device.type == "cuda"
        self.channels_last = self.config.channels_last if self.cuda else self.config.cpu_channels_last
        self.autocast = training_autocast(device.type, self.config.amp, self.config.cpu_amp)
        if self.config.cpu_amp and not self.cuda and not self.autocast and info.is_main:
            log.warning("TrainConfig.cpu_amp: this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 "
                        "is slower than float32: training in float32")
        if self.config.batch_size % info.world_size:
            raise ValueError(f"TrainConfig.batch_size={self.config.batch_size} must be divisible by the "
                             f"{info.world_size} processes")
        self.local_batch = self.config.batch_size // info.world_size
        augmenting = self.config.augment is not None or self.config.relight > 0
        if augmenting and round(self.config.augment_fraction * self.local_batch) == 0:
            per = " per process" if info.world_size > 1 else ""
            raise ValueError(f"TrainConfig: augment_fraction={self.config.augment_fraction} of batches of "
                             f"{self.local_batch} images{per} augments no image (round({self.config.augment_fraction}"
                             f" x {self.local_batch}) = 0): raise augment_fraction or batch_size")

    def _build_caches(self) -> None:
        """Decode the training (and validation) images once into uint8 caches at the training size."""
        self.train_cache, self.val_cache = training_caches(self.config, self.train_set, self.val_set, self.device,
                                                           self.out_dir, self.info.is_main)
        if self.config.relight > 0:
            self.normals = self._relight_normals()
        self.data = data_record(self.train_cache)

    def _relight_normals(self) -> Tensor:
        """The training images' normals for `TrainConfig.relight`: given, or from the renders' geometry files."""
        return relight_normals(self.config, self.train_set, self.normals, self.train_cache, self.device)

    def _resume_state(self, path: Path | None) -> TrainingState | None:
        """The checkpoint at ``path`` (`resume_path`; None for a new run), its setting changes checked and logged."""
        if path is None:
            return None
        state = TrainingState.read(path)
        changes = self._config_changes(state)
        if changes:
            self._accept_changes(state, changes)
        else:  # epochs fewer than the checkpoint reached: refused under any schedule (`accept_changes` does it too)
            refuse_fewer_epochs(self.config, state)
        given = self.normalizer
        if given is not None and given != state.normalizer:  # the weights' outputs are codes of the checkpoint's
            raise ValueError(f"normalizer: the run resumes from {str(path)!r}, whose weights were trained with its own "
                             f"normaliser ({_normalizer_label(state.normalizer)}), not the one given "
                             f"({_normalizer_label(given)}); pass none (or that one) to resume, or start a new run")
        announce_resume(self.config, state, path, self.info.is_main)
        self.last_good = path
        self.normalizer = state.normalizer
        return state

    def _init_state(self) -> dict[str, Any] | None:
        """The checkpoint of `TrainConfig.init_from` (a new run's first weights), checked against the
        config and the training frame (`read_init_from`); its normaliser is the run's unless one was given."""
        state = read_init_from(self.config, self.frame)
        if state is not None and self.normalizer is None:
            self.normalizer = PoseNormalizer.from_state_dict(state["normalizer"])
        return state

    def _config_changes(self, state: TrainingState) -> list[tuple[str, Any, Any]]:
        """(field, checkpoint value, new value) of each `RESUME_FIELDS` entry that differs (`config_changes`)."""
        return config_changes(self.config, state, self.frame, self.data)

    def _accept_changes(self, state: TrainingState, changes: list[tuple[str, Any, Any]]) -> None:
        """Refuse changed settings, or (``resume_changes="allow"``) log them in ``config_changes.log``."""
        accept_changes(self.config, state, changes, self.out_dir, self.info.is_main)

    def _plan_steps(self) -> None:
        """Steps per epoch: each process's shard of the training images in batches of ``local_batch``."""
        self.steps_per_epoch = steps_per_epoch(len(self.train_cache), self.info.world_size, self.local_batch,
                                               self.config.drop_last)

    def _build_model_and_optimiser(self) -> None:
        """Augmentation, seeds, the run's initial model, normaliser and targets, loss and optimiser."""
        cfg, device = self.config, self.device
        # Built before the RNG is seeded or restored: nothing it draws at construction can shift
        # the draws of a resumed run.
        self.augment = build_augment(cfg.augment, cfg.augment_strength, device)
        self.relight = RandomSunRelight(p=cfg.relight) if cfg.relight > 0 else None
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        model = initial_model(cfg, device)  # seeds torch with cfg.seed
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        rotation = model.head.rotation
        if self.normalizer is None:
            self.normalizer = PoseNormalizer.fit(self.train_cache.c2w, rotation=rotation)
        elif self.normalizer.rotation != rotation:
            raise ValueError(f"normalizer: its rotation code {self.normalizer.rotation!r} does not match the model's "
                             f"output {rotation!r} (TrainConfig.model_kwargs['rotation'])")
        self.targets = self.normalizer.encode(self.train_cache.c2w.to(self.train_cache.device))
        self.criterion = AtLocLoss(cfg.sx, cfg.sq, learnable=cfg.learn_loss_weights).to(device)
        if self.init_state is not None:  # a fine-tune: the weights and loss weights of `init_from`
            load_init_weights(self.init_state, model, self.criterion, cfg)
            self.init_state = None  # the checkpoint's other contents are not needed: not kept for the run
        groups = [{"params": list(model.parameters())}]
        if cfg.learn_loss_weights:
            groups.append({"params": list(self.criterion.parameters())})
        if cfg.scene_coords > 0:  # the auxiliary head (a fresh one in a fine-tune too), last in the optimiser
            try:
                self.scene = SceneHeadTraining(model, cfg.image_size, self.train_set, self.scene_points,
                                               len(self.train_cache), device, self.train_cache.device)
            except Exception:  # noqa: BLE001 - a model that cannot run is refused by name, not by the head's probe
                check_model_runs(model, cfg.model, cfg.model_kwargs, cfg.image_size, device)
                raise
            self.scene_points = None  # pooled into the head's targets: not kept for the run
            groups.append({"params": list(self.scene.head.parameters())})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _restore(self, state: TrainingState | None) -> None:
        """Load the checkpoint's weights, optimiser, RNG states and history; or seed a new run."""
        cfg, info = self.config, self.info
        if state is None:
            torch.manual_seed(cfg.seed + 1 + info.rank)  # dropout and augmentations: one stream per rank
            return
        if (self.scene is None) != (state.scene_head is None):  # the optimiser's groups would not match
            raise ValueError(f"resume: {str(state.path)!r} was trained with TrainConfig.scene_coords="
                             f"{state.config.get('scene_coords', 0.0)!r}; the head cannot be added to or dropped "
                             "from a run: resume with that value, or start a new run (init_from= the checkpoint)")
        restore_training_state(state, self.model, self.criterion, self.optimizer, cfg, info)
        if self.scene is not None and state.scene_head is not None:
            self.scene.load(state.scene_head, state.path, allow_new_targets=cfg.resume_changes == "allow")
        self.history = list(state.history)

    def _wrap(self) -> None:
        """The module the steps run: DDP and / or ``torch.compile`` around the model; the CUDA side stream."""
        self.train_model: nn.Module = self.model
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415 - only under DDP

            self.train_model = DistributedDataParallel(self.model,
                                                       device_ids=[self.device.index] if self.cuda else None)
        if self.config.compile:
            # compiling a module gives a module (an OptimizedModule); the stub says any callable
            self.train_model = cast(nn.Module, torch.compile(self.train_model))
        self.side_stream = torch.cuda.Stream(self.device) if self.cuda else None
