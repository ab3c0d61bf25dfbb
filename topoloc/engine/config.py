"""`TrainConfig`: the typed, YAML-serialisable configuration of a training run."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
import os
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Callable

import yaml

from topoloc._paths import not_a_file
from topoloc._tempfiles import write_text_atomically
from topoloc._yaml import load_yaml
from topoloc.engine.augmentations import AUGMENT_NAMES, AUGMENTATIONS, build_augment
from topoloc.image_size import parse_image_size
from topoloc.models import AtLoc, list_models

__all__ = ["TrainConfig", "AUGMENT_NAMES", "DEVICES", "augment_strength_at", "build_augment", "load_yaml"]

LR_SCHEDULES = ("constant", "cosine")
#: Values of ``TrainConfig.resume_changes``.
RESUME_CHANGES = ("refuse", "allow")


def scheduled_lr(config: "TrainConfig", step: int, total_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total_steps`` under ``config.lr_schedule``."""
    if config.lr_schedule == "constant" or total_steps <= 1:
        return config.lr
    progress = min(step, total_steps - 1) / (total_steps - 1)
    floor = 0.01
    return config.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def augment_strength_at(config: "TrainConfig", epoch: int) -> float:
    """The augmentation strength of ``epoch`` (0-based) under ``config.augment_ramp_epochs``.

    Example:
        >>> cfg = TrainConfig(augment="simtoreal", augment_strength=0.5, augment_ramp_epochs=10)
        >>> [augment_strength_at(cfg, e) for e in (0, 4, 9, 30)]
        [0.05, 0.25, 0.5, 0.5]
    """
    if not config.augment_ramp_epochs:
        return config.augment_strength
    return config.augment_strength * min(1.0, (epoch + 1) / config.augment_ramp_epochs)


#: Values of ``TrainConfig.device`` and ``TrainConfig.cache_device``.
DEVICES = ("auto", "cpu", "cuda")


def _positive_int(value: Any, name: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"TrainConfig: `{name}` must be {kind} int, got {value!r}")
    return int(value)


def _float(value: Any, name: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"TrainConfig: `{name}` must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"TrainConfig: `{name}` must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"TrainConfig: `{name}` must be >= {minimum}, got {value!r}")
    return float(value)


@dataclass
class TrainConfig:
    """Everything a training run needs besides its data; written as ``config.yaml`` beside
    every checkpoint.

    The defaults are the AtLoc paper's (Adam, lr 5e-5, weight decay 5e-4, batch 64, learnable
    loss weights ``sx = 0``, ``sq = -3``, 256 x 256 images) with the fast data path on
    (decoded uint8 cache, batches and augmentations on the device, bf16 and channels_last on CUDA).
    They suit ImageNet weights (``model_kwargs={"pretrained": True}``). From random weights, train as
    the demo and the recipes do: ``lr=1e-3, lr_schedule="cosine", sq=0.0`` (measured: 300 steps with
    5e-5 and -3 left a ResNet34 at the constant pose; docs/RESULTS.md, "The recipes' training settings").

    Args:
        model: a name of `topoloc.models.list_models` (e.g. ``"atloc_resnet34"``).
        model_kwargs: extra `create_model` arguments (``pretrained``, ``feat_dim``, ``dropout``...).
        epochs: number of passes over the training set.
        batch_size: images per optimiser step, over all processes (divided among DDP ranks; a batch norm
            normalises over each rank's share, with no SyncBatchNorm).
        lr: Adam learning rate.
        weight_decay: Adam weight decay (applied to the loss weights too, as in AtLoc).
        sx, sq: initial log-variance weights of the translation and rotation terms of `AtLocLoss`.
        learn_loss_weights: train ``sx`` / ``sq`` (AtLoc's ``learn_beta``).
        image_size: (H, W) in pixels of the decoded cache and of the model's input.
        augment: ``None`` / ``"none"``, ``"simtoreal"`` (``augment.SimToReal(strength)``),
            ``"colorjitter"`` (AtLoc's ColorJitter 0.7 on the device), or a callable on float
            (B, 3, H, W) images in [0, 1] (written to YAML by its name only).
        augment_strength: the ``strength`` of ``"simtoreal"``.
        augment_ramp_epochs: ramp the strength of a named ``augment`` up over this many epochs:
            epoch ``e`` (counted from 1) trains at ``augment_strength * min(1, e / augment_ramp_epochs)``
            (`augment_strength_at`), so that the network learns the renders' geometry before the
            full appearance changes (the strength scales SimToReal's magnitudes, not the relighting's
            probability nor the edge abstraction, which is whole at any strength); 0: full strength
            from the first epoch.
        augment_fraction: share of each batch that is augmented, in (0, 1]: the first
            ``round(augment_fraction * B)`` images of every (randomly ordered) batch go through the
            augmentation, the others stay clean (under DDP, ``B`` is each process's share of the batch).
            Below 1 the network keeps seeing the rendered appearance it must fit while it learns to ignore
            the appearance changes.
        relight: probability that an augmented image is first relit by a sun from a random
            direction on its own surface normals (`augment.RandomSunRelight`), in [0, 1]; 0 turns
            it off. Needs a `TopoFlight` training set whose renders have geometry beside them
            (``_pc.npy`` from TOPO-DataGen, or ``_depth.npy`` from ``topoloc render --depth``), or a
            `FlightCollection` of them.
        scene_coords: weight of an auxiliary loss that trains a small head on the backbone's stages
            (`topoloc.models.scene_coords.SceneCoordHead`) to give the world point under each cell of
            its stride-8 feature map: the mean Euclidean error in hundreds of metres, added to the
            pose loss (``log.csv``'s ``loss`` includes it, ``scene_loss`` is the head's own, unweighted);
            0 turns it off. The head is dropped after training (the saved model is the plain `AtLoc`); its
            weights and optimiser state are in ``last.pt`` for resuming. Needs geometry files beside
            the training renders, as ``relight`` does (or `train`'s ``scene_points``), and a
            convolutional backbone; not with ``compile``. A fine-tune
            (``init_from``) starts a new head. Measured on Mini-Comballaz: 3 took the demo's unaugmented
            run from 19.5 m / 3.7 deg to 14.0 m / 3.3 deg on the renders (three seeds; the coverage
            ceiling is 12.7 m), each training step taking about 1.1 times as long (docs/RESULTS.md,
            BENCHMARKS.md).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        amp: bf16 autocast on CUDA (the CPU: see ``cpu_amp``).
        cpu_amp: bf16 autocast on the CPU too, where the CPU computes bf16 natively (AVX512-BF16 or
            AMX; `topoloc.cpu_has_bf16`): the training steps ran 1.4x faster on a 2-core Zen 4
            (BENCHMARKS.md). Elsewhere a warning, and the run trains in float32. Off by default:
            it changes the figures (as another seed would; docs/RESULTS.md).
        channels_last: channels_last memory format on CUDA (the CPU: see ``cpu_channels_last``).
        cpu_channels_last: channels_last on the CPU too, where max pooling (and some convolutions)
            run faster: the demo's half-width ResNet18 trained 1.14-1.16x as many images per second
            on two threads of a 2-core Zen 3; the full width's step was no faster (BENCHMARKS.md).
            Off by default: the same steps up to float rounding, which changes the figures as
            another seed would.
        compile: ``torch.compile`` the model.
        val_every: validate every this many epochs (and after the last one); 0 turns it off.
        checkpoint_every_steps: also write the rolling checkpoint every this many optimiser
            steps, mid-epoch (0: only at the end of each epoch).
        log_every: steps between progress-bar / TensorBoard updates (and NaN checks).
        seed: seeds the weights, the epoch permutations, dropout and the augmentations.
        out_dir: folder of ``config.yaml``, ``last.pt``, ``best.pt``, ``log.csv`` (and the cache).
        num_workers: DataLoader workers for the one-time decode into the cache.
        cache_device: where the uint8 cache of a run on a GPU lives: ``"auto"`` (GPU memory when it fits
            in half the free memory, else pinned host memory), ``"cpu"`` or ``"cuda"``. A run on the CPU keeps
            its caches in host memory.
        cache_file: save the decoded training cache to this file (relative paths are under
            ``out_dir``) and reuse it on re-runs; ``None`` decodes every time.
        drop_last: drop the last, incomplete batch of each epoch.
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        lr_schedule: ``"constant"`` (the paper's) or ``"cosine"``: the learning rate decays from
            ``lr`` to ``lr / 100`` along half a cosine over all the run's steps. It is a function of
            the step's place in the run alone (epoch and step within it), so a resumed run follows the same
            schedule, and one resumed with another batch size (``resume_changes="allow"``) the rest of it.
        tensorboard: also log to TensorBoard when it is installed.
        progress: show a tqdm progress bar.
        init_from: a checkpoint of another run (its ``last.pt`` or ``best.pt``) whose model weights
            start this run instead of new ones: a fine-tune. Its learned loss weights come with them,
            and its pose normaliser unless `train` is given one, so the weights' outputs keep their
            meaning. The checkpoint must hold this config's ``model`` and ``model_kwargs`` (apart
            from ``pretrained``) and be trained in the training set's local frame. Only a new run
            reads it: a resumed run continues from its own checkpoint. The demo's CPU preset trains
            its augmented run so, from its unaugmented run (`topoloc.experiments.demo.DemoConfig`).
        resume: ``False``; ``True`` to continue from ``out_dir/last.pt`` when it exists (else from
            ``out_dir/best.pt`` when that exists); or the path of a checkpoint to continue from.
        resume_changes: what a resume does when a field that changes how steps are trained
            (``lr``, ``augment``, ``batch_size``, ``model_kwargs``, ... see
            `topoloc.engine.resume.RESUME_FIELDS`) differs from the checkpoint's: ``"refuse"``
            (an error naming each field, old and new value) or ``"allow"`` (go on, and append
            the changes to ``out_dir/config_changes.log``). Where and how fast the steps run
            (``device``, ``amp``, ``channels_last``, ``num_workers``, ...: `topoloc.engine.resume.EXECUTION_FIELDS`)
            may change on any resume; the resume line names each change.
        overwrite: a new run (no checkpoint to resume) into an ``out_dir`` that holds another
            run's files is an error unless this is ``True``; then ``config.yaml``, ``last.pt``,
            ``best.pt``, ``log.csv`` and ``config_changes.log`` are removed together first.
    """

    model: str = "atloc_resnet34"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 5e-4
    sx: float = 0.0
    sq: float = -3.0
    learn_loss_weights: bool = True
    image_size: tuple[int, int] = (256, 256)
    augment: str | Callable | None = None
    augment_strength: float = 1.0
    augment_ramp_epochs: int = 0
    augment_fraction: float = 1.0
    relight: float = 0.0
    scene_coords: float = 0.0
    device: str = "auto"
    amp: bool = True
    cpu_amp: bool = False
    channels_last: bool = True
    cpu_channels_last: bool = False
    compile: bool = False
    val_every: int = 1
    checkpoint_every_steps: int = 0
    log_every: int = 20
    seed: int = 0
    out_dir: str = "runs/train"
    num_workers: int = 0
    cache_device: str = "auto"
    cache_file: str | None = None
    drop_last: bool = False
    grad_clip: float | None = None
    lr_schedule: str = "constant"
    tensorboard: bool = True
    progress: bool = True
    init_from: str | None = None
    resume: bool | str = False
    resume_changes: str = "refuse"
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or self.model not in list_models():
            raise ValueError(f"TrainConfig: `model` must be one of {list_models()}, got {self.model!r}")
        if not isinstance(self.model_kwargs, dict):
            raise TypeError(f"TrainConfig: `model_kwargs` must be a dict, got {type(self.model_kwargs).__name__}")
        known = [k for k in inspect.signature(AtLoc.__init__).parameters if k != "self"]
        unknown = sorted(set(self.model_kwargs) - set(known))
        if unknown:  # found here, not when the model is built after the images are decoded
            raise ValueError(f"TrainConfig: `model_kwargs` has unknown key(s) {unknown}; AtLoc takes {known}")
        for key, value in self.model_kwargs.items():  # written to config.yaml and the checkpoint as plain data
            _check_plain(value, f"model_kwargs[{key!r}]")
        for name in ("epochs", "batch_size", "log_every"):
            setattr(self, name, _positive_int(getattr(self, name), name))
        for name in ("val_every", "checkpoint_every_steps", "num_workers", "seed", "augment_ramp_epochs"):
            setattr(self, name, _positive_int(getattr(self, name), name, allow_zero=True))
        if self.seed >= 2**32:  # numpy's generators take 32 bits: it failed in set-up, naming no field
            raise ValueError(f"TrainConfig: `seed` must be below 2**32 (numpy's seeds), got {self.seed}")
        self.lr = _float(self.lr, "lr", 0.0)
        self.weight_decay = _float(self.weight_decay, "weight_decay", 0.0)
        self.sx = _float(self.sx, "sx")
        self.sq = _float(self.sq, "sq")
        self.augment_strength = _float(self.augment_strength, "augment_strength", 0.0)
        if self.augment_strength > 1.0:
            raise ValueError(f"TrainConfig: `augment_strength` must be in [0, 1], got {self.augment_strength!r}")
        self.augment_fraction = _float(self.augment_fraction, "augment_fraction", 0.0)
        if not 0.0 < self.augment_fraction <= 1.0:
            raise ValueError(f"TrainConfig: `augment_fraction` must be in (0, 1], got {self.augment_fraction!r}")
        self.relight = _float(self.relight, "relight", 0.0)
        if self.relight > 1.0:
            raise ValueError(f"TrainConfig: `relight` must be a probability in [0, 1], got {self.relight!r}")
        self.scene_coords = _float(self.scene_coords, "scene_coords", 0.0)
        if self.grad_clip is not None:
            self.grad_clip = _float(self.grad_clip, "grad_clip", 0.0)
            if self.grad_clip == 0.0:  # clip_grad_norm_ to 0 zeroes every gradient: nothing would be learnt
                raise ValueError("TrainConfig: `grad_clip` must be > 0 (or None for no clipping), got 0.0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"TrainConfig: `lr_schedule` must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        self.image_size = parse_image_size(self.image_size, name="TrainConfig: `image_size`", short_side=False,
                                           minimum=8)
        if isinstance(self.augment, str):
            names = ("none", *AUGMENTATIONS)
            if self.augment.lower() not in names:
                raise ValueError(f"TrainConfig: `augment` must be None, a callable or one of {names}, "
                                 f"got {self.augment!r}")
            self.augment = None if self.augment.lower() == "none" else self.augment.lower()
        elif self.augment is not None and not callable(self.augment):
            raise TypeError(f"TrainConfig: `augment` must be None, a name or a callable, got {self.augment!r}")
        if self.augment_ramp_epochs and callable(self.augment):
            raise ValueError("TrainConfig: `augment_ramp_epochs` ramps the strength of a named `augment` "
                             f"({tuple(AUGMENTATIONS)}); a callable has no strength to ramp: set it to 0")
        for name in ("device", "cache_device"):
            if getattr(self, name) not in DEVICES:
                raise ValueError(f"TrainConfig: `{name}` must be one of {DEVICES}, got {getattr(self, name)!r}")
        if self.resume_changes not in RESUME_CHANGES:
            raise ValueError(f"TrainConfig: `resume_changes` must be one of {RESUME_CHANGES}, "
                             f"got {self.resume_changes!r}")
        for name in ("learn_loss_weights", "amp", "cpu_amp", "channels_last", "cpu_channels_last",
                     "compile", "drop_last", "tensorboard",
                     "progress", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"TrainConfig: `{name}` must be a bool, got {getattr(self, name)!r}")
        if self.scene_coords > 0 and self.compile:
            raise ValueError("TrainConfig: `scene_coords` (the auxiliary head reads the backbone's stages through "
                             "forward hooks) is not supported with `compile=True` yet: set one of them off")
        if not isinstance(self.resume, (bool, str, PathLike)):
            raise TypeError(f"TrainConfig: `resume` must be a bool or a checkpoint path, got {self.resume!r}")
        if isinstance(self.resume, PathLike):
            self.resume = str(self.resume)
        if self.resume == "":  # an unset variable in a recipe: it was refused only at the start, as "'.' is a folder"
            raise ValueError("TrainConfig: `resume` must be a bool or a checkpoint path, got '' (an empty path)")
        if self.resume is True and self.overwrite:
            raise ValueError("TrainConfig: `resume=True` (go on with out_dir's run) and `overwrite=True` (replace it "
                             "by a new run) exclude each other: pick one (CLI: --resume or --overwrite)")
        if isinstance(self.init_from, PathLike):
            self.init_from = str(self.init_from)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise TypeError(f"TrainConfig: `init_from` must be None or a checkpoint path, got {self.init_from!r}")
        if isinstance(self.out_dir, PathLike):
            self.out_dir = str(self.out_dir)
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise TypeError(f"TrainConfig: `out_dir` must be a folder path, got {self.out_dir!r}")
        if self.cache_file is not None and not isinstance(self.cache_file, (str, PathLike)):
            raise TypeError(f"TrainConfig: `cache_file` must be a path or None, got {self.cache_file!r}")
        if isinstance(self.cache_file, PathLike):
            self.cache_file = str(self.cache_file)
        if self.cache_file == "":  # resolved to out_dir itself: "FileExistsError: [Errno 17] File exists"
            raise ValueError("TrainConfig: `cache_file` must be a file path or None, got ''")
        for name in ("out_dir", "cache_file", "init_from", "resume"):  # "~/runs" is the home folder's, as in a shell
            if isinstance(getattr(self, name), str) and getattr(self, name).startswith("~"):
                setattr(self, name, os.path.expanduser(getattr(self, name)))

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-able values (a callable ``augment`` becomes ``"callable:<name>"``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["image_size"] = list(self.image_size)
        out["model_kwargs"] = _plain(self.model_kwargs)
        if callable(self.augment):
            out["augment"] = f"callable:{getattr(self.augment, '__name__', type(self.augment).__name__)}"
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], **overrides: Any) -> "TrainConfig":
        """Build from `to_dict` output (e.g. read back from YAML or a checkpoint).

        A ``"callable:<name>"`` augment cannot be rebuilt and becomes ``None``; pass the
        callable again as an override (``augment=...``).
        """
        if not isinstance(values, dict):
            raise TypeError(f"TrainConfig.from_dict: expected a dict, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known) + sorted(set(overrides) - known)
        if unknown:
            close = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            meant = "; ".join(f"{k!r}: did you mean {c[0]!r}?" for k, c in close.items() if c)
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}" + (f" ({meant})" if meant else "")
                             + f"; known: {sorted(known)}")
        merged = {**values, **overrides}
        if isinstance(merged.get("augment"), str) and merged["augment"].startswith("callable:"):
            merged["augment"] = None
        if isinstance(merged.get("image_size"), list):
            merged["image_size"] = tuple(merged["image_size"])
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | PathLike, **overrides: Any) -> "TrainConfig":
        """Read a YAML mapping of fields (a ``config.yaml`` written by `train` or a recipe)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TrainConfig.from_yaml: {str(path)!r}: {not_a_file(path)}")
        try:
            with open(path, encoding="utf-8") as f:
                values = load_yaml(f) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"TrainConfig.from_yaml: {str(path)!r} is not valid YAML ({first} ...)") from err
        if not isinstance(values, dict):
            raise ValueError(f"TrainConfig.from_yaml: {str(path)!r} must hold a mapping of fields, "
                             f"got {type(values).__name__}")
        return cls.from_dict(values, **overrides)

    def to_yaml(self, path: str | PathLike) -> Path:
        """Write `to_dict` as YAML (atomically) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomically(path, yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_plain(value: Any, where: str) -> None:
    """Refuse a value that YAML and a weights-only checkpoint cannot hold: anything but None, bool, int,
    float, str, a path, or lists, tuples and str-keyed dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str, PathLike)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"TrainConfig: `{where}` has the key {k!r}; expected str keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"TrainConfig: `{where}` must be plain data (None, a bool, number, string, path, or lists and "
                    f"dicts of them: it is written to config.yaml and the checkpoint), got {type(value).__name__}")


def _plain(value: Any) -> Any:
    """Tuples to lists and paths to strings, recursively, for YAML."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, PathLike):
        return str(value)
    return value
