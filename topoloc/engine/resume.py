"""Where a training run starts: its folder, the checkpoint it resumes, or the weights it fine-tunes.

`topoloc.engine.train.Trainer` calls these while it sets a run up: `refuse_another_run` (a new
run into a folder holding another run's `RUN_FILES`) and `remove_previous_run` (those files, once
the new run is set up, when ``overwrite`` replaces them), `resume_path` and `announce_resume`
(``TrainConfig.resume``), `config_changes` and `accept_changes` (the `RESUME_FIELDS` a resume
changes: refused with a `ResumeSettingsError`, or logged in ``config_changes.log``),
`restore_training_state` (the checkpoint's weights, optimiser and RNG states), and `read_init_from`
/ `load_init_weights` (``TrainConfig.init_from``: a new run's first weights, checked against the
config and the training frame).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from topoloc.engine.checkpoint import (TrainingState, frames_differ, load_checkpoint, recorded_frame,
                                       restore_rng_state)
from topoloc.engine.config import TrainConfig
from topoloc.engine.distributed import DistInfo

__all__ = ["EXECUTION_FIELDS", "RESUME_FIELDS", "RUN_FILES", "ResumeSettingsError", "refuse_another_run",
           "remove_previous_run", "resume_path", "run_checkpoint", "announce_resume", "config_changes",
           "accept_changes", "refuse_fewer_epochs", "restore_training_state", "read_init_from", "load_init_weights"]

log = logging.getLogger("topoloc.engine")

#: Fields that change how the steps are trained: a resume with other values is refused unless
#: ``TrainConfig.resume_changes="allow"`` (``epochs`` counts under a cosine schedule, whose rates
#: depend on the run's length; ``frame`` is the training data's local frame).
RESUME_FIELDS = ("model", "model_kwargs", "init_from", "batch_size", "image_size", "seed", "learn_loss_weights",
                 "drop_last", "lr", "weight_decay", "lr_schedule", "grad_clip", "augment", "augment_strength",
                 "augment_fraction", "augment_ramp_epochs", "relight", "scene_coords", "sx", "sq")
#: Fields that place a mid-epoch checkpoint within its epoch: never changed mid-epoch (the training data:
#: the epoch's order is a permutation of its images).
_POSITION_FIELDS = ("batch_size", "seed", "drop_last", "training data")
#: Fields of where and how fast the steps run: they may change on a resume (a run moved from a GPU to a CPU, bf16
#: switched off); they change the rounding, not what is trained. The resume line names each change.
EXECUTION_FIELDS = ("device", "amp", "cpu_amp", "channels_last", "cpu_channels_last", "compile", "num_workers",
                    "cache_device")
#: The files of a run in ``out_dir``, removed together by ``TrainConfig(overwrite=True)``.
RUN_FILES = ("config.yaml", "last.pt", "best.pt", "log.csv", "config_changes.log")


def _without_pretrained(model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``model_kwargs`` less ``pretrained``: where the first weights came from does not change the model."""
    return {k: v for k, v in (model_kwargs or {}).items() if k != "pretrained"}


class ResumeSettingsError(ValueError):
    """A resume refused because the checkpoint was trained with other settings (`RESUME_FIELDS`).

    Attributes:
        changes: ``(field, checkpoint value, new value)`` of each setting that differs.
        run: the label of the run that raised it, set by `train_side_by_side` (absent elsewhere).
    """

    run: str

    def __init__(self, message: str, changes: list[tuple[str, Any, Any]]) -> None:
        super().__init__(message)
        self.changes = changes

    def __reduce__(self) -> tuple:  # picklable (a side-by-side run's error comes back from its process)
        return type(self), (str(self), self.changes), self.__dict__

    @staticmethod
    def describe(changes: list[tuple[str, Any, Any]]) -> str:
        """``"field: old -> new; ..."`` of ``changes``."""
        return "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in changes)


# ----------------------------------------------------------------- the run's folder
def refuse_another_run(config: TrainConfig, out_dir: Path) -> list[str]:
    """Refuse a new run into ``out_dir`` when it holds another run's `RUN_FILES`, unless ``overwrite``
    (or ``resume=True`` finds no checkpoint to resume).

    Returns:
        The names of the previous run's files that the new run replaces (``[]`` when none), for
        `remove_previous_run` once the new run is set up: a run refused while it is set up leaves them.

    Raises:
        FileExistsError: another run's files are there and neither ``overwrite`` nor ``resume=True`` is set.
    """
    resuming = config.resume is not False and (config.resume is not True or run_checkpoint(out_dir) is not None)
    present = [n for n in RUN_FILES if (out_dir / n).exists()]
    if resuming or not present:
        return []
    if not config.overwrite and config.resume is not True:
        raise FileExistsError(f"TrainConfig.out_dir: {str(out_dir)!r} holds another run "
                              f"({', '.join(present)}); pass resume=True (CLI: --resume) to continue it, "
                              "overwrite=True (CLI: --overwrite) to replace it, or another out_dir (CLI: --override "
                              "train.out_dir=DIR)")
    return present


def remove_previous_run(config: TrainConfig, out_dir: Path, present: list[str]) -> None:
    """Remove the files ``present`` of the run that ``overwrite`` (or a ``resume=True`` that found no
    checkpoint) replaces (`refuse_another_run`), saying so."""
    if not present:
        return
    why = "" if config.overwrite else ("no last.pt to resume (the previous run stopped before its first "
                                       "checkpoint): a new run, ")
    log.warning("out_dir %s: %sremoving the previous run's %s", out_dir, why, ", ".join(present))
    for name in present:
        (out_dir / name).unlink(missing_ok=True)


# ----------------------------------------------------------------- resuming
def resume_path(config: TrainConfig, out_dir: Path) -> Path | None:
    """The checkpoint ``config.resume`` names, or None for a new run. For ``True``: ``out_dir/last.pt``,
    else ``out_dir/best.pt`` (a run killed between writing its first best.pt and its first last.pt, or a
    last.pt deleted: the epochs after best.pt's are trained again, and nothing is deleted), else None.

    Raises:
        FileNotFoundError: ``resume`` is a path and no file is there.
    """
    if config.resume is False:
        return None
    if config.resume is True:
        path = run_checkpoint(out_dir)
        if path is None:
            log.info("resume: no checkpoint in %s, starting a new run", out_dir)
        elif path.name == "best.pt":
            log.warning("resume: no last.pt in %s; resuming from best.pt, the run's only checkpoint left (the "
                        "epochs after it are trained again)", out_dir)
        return path
    path = Path(config.resume)
    if not path.is_file():
        raise FileNotFoundError(f"TrainConfig.resume: {_no_checkpoint(path)}")
    return path


def run_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint ``resume=True`` continues in ``out_dir``: ``last.pt``, else ``best.pt`` (both hold the
    whole training state), else None."""
    for name in ("last.pt", "best.pt"):
        if (out_dir / name).is_file():
            return out_dir / name
    return None


def _no_checkpoint(path: Path) -> str:
    """Why ``path`` (not a file) is no checkpoint: missing, or a run's folder given for its checkpoint."""
    if path.is_dir():
        return (f"{str(path)!r} is a folder, expected a checkpoint file (a run's last.pt or best.pt, e.g. "
                f"{str(path / 'last.pt')!r})")
    return f"no such checkpoint {str(path)!r}"


def announce_resume(config: TrainConfig, state: TrainingState, path: Path, is_main: bool) -> None:
    """Say where the run resumes, and which `EXECUTION_FIELDS` changed since the checkpoint: above the progress
    bar (main process, ``progress``), else in the log."""
    where = f"resume: {path}: {state.epoch} of {config.epochs} epoch(s) done" + (
        f", {state.step} step(s) into epoch {state.epoch + 1}" if state.step else "")
    mine = config.to_dict()
    moved = [f"{k} {mine[k]!r} (was {state.config[k]!r})" for k in EXECUTION_FIELDS
             if k in state.config and state.config[k] != mine[k]]
    if moved:
        where += "; now " + ", ".join(moved)
    if config.progress and is_main:
        from tqdm.auto import tqdm  # noqa: PLC0415 - only with a progress bar

        tqdm.write(where)  # above the bar, where the user looks
    else:
        log.info(where)


def config_changes(config: TrainConfig, state: TrainingState, frame: dict[str, Any] | None,
                   data: dict[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """(field, checkpoint value, new value) of each `RESUME_FIELDS` entry that differs between
    ``state``'s config and ``config``, ``("frame", ...)`` when the training ``frame`` moved and
    ``("training data", ...)`` when the training images or poses differ (``data``: their `data_record`)."""
    saved, mine = state.config, config.to_dict()
    fields = list(RESUME_FIELDS)
    if "cosine" in (saved.get("lr_schedule"), mine["lr_schedule"]):
        fields.append("epochs")
    # A field the checkpoint's config predates had its default then.
    defaults = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                for f in dataclasses.fields(TrainConfig)}
    changes = []
    for k in fields:
        old, new = saved.get(k, defaults.get(k)), mine.get(k)
        if k == "model_kwargs":
            old, new = _without_pretrained(old), _without_pretrained(new)
        if k == "init_from" and old and new:  # the same run beside this one in a folder moved or copied
            old, new = _beside(old, saved.get("out_dir")), _beside(new, mine.get("out_dir"))
        if old != new:
            changes.append((k, old, new))
    if state.frame is not None and frame is not None and frames_differ(state.frame, frame):
        changes.append(("frame", state.frame, frame))
    if state.training_data is not None and data is not None and _records_differ(state.training_data, data):
        changes.append(("training data", _data_text(state.training_data), _data_text(data)))
    return changes


def _beside(path: str, out_dir: str | None) -> str:
    """``path`` relative to ``out_dir`` (``../unaugmented/last.pt``), as a resume compares ``init_from``."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir)) if out_dir else path


def _records_differ(saved: dict[str, Any], mine: dict[str, Any]) -> bool:
    """Whether two `data_record` s differ in a key both have (a checkpoint may predate a key)."""
    return any(saved[k] != mine[k] for k in saved.keys() & mine.keys())


def _data_text(record: dict[str, Any]) -> str:
    return f"{record['images']} images, poses and pixels sha256 {record['sha256'][:12]}"


def refuse_fewer_epochs(config: TrainConfig, state: TrainingState,
                        changes: list[tuple[str, Any, Any]] | None = None) -> None:
    """Refuse ``config.epochs`` below the epochs the checkpoint has finished or begun, whatever the schedule (under a
    constant one ``epochs`` is free to grow, not to fall behind the checkpoint: the run would end at once with a
    checkpoint from later than its last epoch, and its log and config saying otherwise).

    Raises:
        ResumeSettingsError: naming the checkpoint, its epoch and step, and ``epochs``.
    """
    reached = state.epoch + (1 if state.step else 0)
    if config.epochs < reached:
        listed = f" ({ResumeSettingsError.describe(changes)})" if changes else ""
        raise ResumeSettingsError(f"resume: {str(state.path)!r} is already in epoch {reached} (0-based step "
                                  f"{state.step} of epoch {state.epoch}); epochs={config.epochs} would end the run "
                                  f"with a checkpoint from later than its last epoch{listed}",
                                  changes or [("epochs", reached, config.epochs)])


def accept_changes(config: TrainConfig, state: TrainingState, changes: list[tuple[str, Any, Any]], out_dir: Path,
                   is_main: bool) -> None:
    """Refuse changed settings, or (``resume_changes="allow"``) log them in ``out_dir/config_changes.log``.

    Raises:
        ResumeSettingsError: ``resume_changes`` is not ``"allow"``, or a mid-epoch checkpoint's
            position in its epoch (batch size, seed, ``drop_last``) changed.
    """
    path = state.path
    listed = ResumeSettingsError.describe(changes)
    moved = [k for k, _, _ in changes if k in _POSITION_FIELDS]
    if state.step and moved:
        raise ResumeSettingsError(f"resume: {str(path)!r} was written mid-epoch; {moved} place it within its "
                                  f"epoch and cannot change there ({listed}): resume with the old values past "
                                  "the epoch's end (which writes last.pt), then from there with the new ones", changes)
    refuse_fewer_epochs(config, state, changes)
    if config.resume_changes != "allow":
        raise ResumeSettingsError(
            f"resume: the checkpoint {str(path)!r} was trained with other settings; {listed}. "
            "Resume with the same values, or pass TrainConfig(resume_changes='allow') "
            "(CLI: --allow-config-change) to go on with the new ones (the change is "
            "logged in config_changes.log), or start a new run in another out_dir", changes)
    if is_main:
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(out_dir / "config_changes.log", "a", encoding="utf-8") as f:
            f.write(f"{when} resume from {path} at global step {state.global_step} "
                    f"(epoch {state.epoch}, step {state.step}): {listed}\n")
    log.warning("resume: continuing %s with changed settings: %s", path, listed)


def restore_training_state(state: TrainingState, model: nn.Module, criterion: nn.Module,
                           optimizer: torch.optim.Optimizer, config: TrainConfig, info: DistInfo) -> None:
    """Load ``state``'s weights, loss weights and optimiser, and this rank's RNG state (or reseed it
    when the checkpoint was written by another number of processes at an epoch's end).

    Raises:
        ValueError: the weights do not fit the model, or a mid-epoch checkpoint was written by
            another number of processes.
    """
    try:
        model.load_state_dict(state.model_state)
    except RuntimeError as err:
        raise ValueError(f"resume: the checkpoint's weights do not fit {config.model}({config.model_kwargs}); "
                         f"a changed model needs a new run: {err}") from err
    criterion.load_state_dict(state.loss_state)
    optimizer.load_state_dict(state.optimizer_state)
    if state.step and state.world_size != info.world_size:
        raise ValueError(f"resume: the checkpoint was written mid-epoch by {state.world_size} "
                         f"processes; resume it with the same number (got {info.world_size})")
    if len(state.rng) == info.world_size:
        restore_rng_state(state.rng[info.rank])
    else:
        torch.manual_seed(config.seed + 1 + info.rank)


# ----------------------------------------------------------------- fine-tuning
def read_init_from(config: TrainConfig, frame: dict[str, Any] | None) -> dict[str, Any] | None:
    """The checkpoint of ``config.init_from`` (a new run's first weights), or None when unset.

    Args:
        config: the run's `TrainConfig`.
        frame: the training set's frame record (`topoloc.engine.checkpoint.frame_record`), or None.

    Raises:
        FileNotFoundError: no checkpoint at ``init_from``.
        ValueError: it is not a checkpoint, holds another model or ``model_kwargs`` (``pretrained``
            aside), or was trained in another frame than ``frame``.
    """
    if config.init_from is None:
        return None
    path = Path(config.init_from)
    if not path.is_file():
        raise FileNotFoundError(f"TrainConfig.init_from: {_no_checkpoint(path)}")
    try:
        state = load_checkpoint(path)
    except ValueError as err:
        raise ValueError(f"TrainConfig.init_from: {err}") from err
    theirs = (state["model_name"], _without_pretrained(state["model_kwargs"]))
    mine = (config.model, _without_pretrained(config.to_dict()["model_kwargs"]))
    if theirs != mine:
        raise ValueError(f"TrainConfig.init_from: {str(path)!r} holds {theirs[0]} with model_kwargs {theirs[1]}, "
                         f"not this run's {mine[0]} with {mine[1]}")
    recorded = recorded_frame(state)
    if recorded is not None and frame is not None and frames_differ(recorded, frame):
        raise ValueError(f"TrainConfig.init_from: {str(path)!r} was trained in the frame {recorded}, the training "
                         f"set is in {frame}: its weights place positions about another origin")
    return state


def load_init_weights(state: dict[str, Any], model: nn.Module, criterion: nn.Module, config: TrainConfig) -> None:
    """Load the weights and loss weights of ``config.init_from`` (``state``, from `read_init_from`).

    Raises:
        ValueError: the weights do not fit the model.
    """
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as err:
        raise ValueError(f"TrainConfig.init_from: the weights in {config.init_from!r} do not fit "
                         f"{config.model}({config.model_kwargs}): {err}") from err
    criterion.load_state_dict(state["loss_state"])
