"""What a training run watches of its steps: the losses, their speed, and whether they stay finite.

`StepMeter` books each step's loss terms on the device (no sync per step) until `topoloc.engine.train.Trainer`
reports them; `first_non_finite` finds a NaN / inf among the booked losses, `weights_finite` and
`predicts_finite` check the model before a checkpoint is written, and the two ``non_finite_*_error``
functions word the `FloatingPointError` that stops the run. `progress_bar` and
`epoch_row` are what the user sees: the epoch's bar and its ``log.csv`` row
(`topoloc.engine.runlog.LOG_COLUMNS`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from topoloc._modes import eval_mode

if TYPE_CHECKING:
    from topoloc.models import AtLoc, AtLocLoss

__all__ = ["StepMeter", "first_non_finite", "non_finite_loss_error", "weights_finite", "predicts_finite",
           "non_finite_model_error", "progress_bar", "epoch_row"]


class StepMeter:
    """The losses of the steps since the last report, kept on the device (no sync per step).

    Args:
        device: where the losses are summed (the training device).
        world_size: the number of processes (their images count in `images_per_s`).

    Attributes:
        pending: ``(global step, loss)`` of each step not yet checked for non-finite values.
    """

    def __init__(self, device: torch.device, world_size: int) -> None:
        self.pending: list[tuple[int, Tensor]] = []
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)
        self._none = torch.zeros((), device=device)
        self.world_size = world_size
        self.images = 0
        self.tic = time.perf_counter()

    def add(self, global_step: int, terms: dict[str, Tensor], images: int) -> Tensor:
        """Book one step; returns its (detached) loss."""
        loss = terms["loss"].detach()
        self.pending.append((global_step, loss))
        scene = terms["scene_loss"].detach() if "scene_loss" in terms else self._none  # TrainConfig.scene_coords
        self.sums += torch.stack([loss, terms["t_l1"], terms["q_l1"], scene]).double()
        self.images += images
        return loss

    def drain_into(self, stats: dict[str, float]) -> None:
        """Add the summed losses to the epoch's running ``stats`` and start again."""
        done = self.sums.tolist()
        self.sums.zero_()
        for key, value in zip(("loss", "t_loss", "q_loss", "scene_loss"), done):
            stats[key] = stats.get(key, 0.0) + value  # a mid-epoch checkpoint before 2026-12-06 has no scene_loss

    def elapsed_s(self) -> float:
        """Seconds since the meter was made (the epoch's start)."""
        return time.perf_counter() - self.tic

    def images_per_s(self) -> float:
        """Training images per second, all processes together."""
        return self.images * self.world_size / max(self.elapsed_s(), 1e-9)


def first_non_finite(pending: list[tuple[int, Tensor]]) -> tuple[int, float] | None:
    """``(global step, loss)`` of the first non-finite loss in ``pending`` (one sync), or None."""
    if not pending:
        return None
    values = torch.stack([v for _, v in pending]).cpu().tolist()
    for (step, _), value in zip(pending, values):
        if not math.isfinite(value):
            return step, value
    return None


def non_finite_loss_error(bad: tuple[int, float] | None, epoch: int, last_good: Path | None,
                          lr: float) -> FloatingPointError:
    """The error that stops a run at a non-finite loss: ``bad`` on this process, or (None) on another.

    Args:
        bad: `first_non_finite`'s answer on this process.
        epoch: the epoch, 0-based.
        last_good: the last checkpoint written, or None.
        lr: ``TrainConfig.lr`` (the message suggests lowering it).
    """
    where = (f"the last good checkpoint is {str(last_good)!r} (left untouched)"
             if last_good is not None else "no checkpoint was written before it")
    what = f"loss {bad[1]} at step {bad[0]}" if bad else "a non-finite loss on another process"
    return FloatingPointError(f"training stopped: {what} (epoch {epoch + 1}); {where}. Lower "
                              f"TrainConfig.lr (now {lr}) or set grad_clip.")


def weights_finite(model: nn.Module) -> bool:
    """Whether every parameter of ``model`` is finite (one sync)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


@torch.no_grad()
def predicts_finite(model: AtLoc, images: Tensor, autocast: bool) -> bool:
    """Whether ``model``'s outputs on ``images`` are finite (eval mode, no RNG draw).

    Finite weights are not enough (weights of 1e9 overflow the activations): a checkpoint is
    called good only if it predicts finite codes.

    Args:
        model: the (unwrapped) model, with ``prepare``.
        images: a batch of training images, uint8 (B, 3, H, W), on the model's device.
        autocast: run the forward pass under bf16 autocast, as the steps do.
    """
    x = model.prepare(images)
    with eval_mode(model), torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=autocast):
        out = model(x)
    return bool(torch.isfinite(out).all())


def non_finite_model_error(what: str, epoch: int, global_step: int, last_good: Path | None) -> FloatingPointError:
    """The error that stops a run whose model went non-finite before a checkpoint (``what``: its weights
    or its predictions)."""
    where = repr(str(last_good)) if last_good is not None else "none"
    return FloatingPointError(f"training stopped: {what} after step {global_step} "
                              f"(epoch {epoch + 1}); the last good checkpoint is {where} (left untouched)")


def progress_bar(epoch: int, epochs: int, first: int, steps_per_epoch: int) -> Any:
    """The tqdm bar of epoch ``epoch`` (0-based) of ``epochs``, starting at step ``first``."""
    from tqdm.auto import tqdm  # noqa: PLC0415 - only with a progress bar

    return tqdm(total=steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False)


def epoch_row(epoch: int, global_step: int, stats: dict[str, float], criterion: AtLocLoss,
              optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The ``log.csv`` row of ``epoch`` (0-based): mean losses per step (``scene_loss``: the head of
    ``TrainConfig.scene_coords``, unweighted), loss weights, learning rate and speed; the validation
    columns ``None`` (filled when validated)."""
    steps = max(int(stats.get("steps", 0)), 1)
    return {
        "epoch": epoch + 1, "step": global_step,
        "loss": stats["loss"] / steps, "t_loss": stats["t_loss"] / steps, "q_loss": stats["q_loss"] / steps,
        "scene_loss": stats.get("scene_loss", 0.0) / steps,
        "sx": float(criterion.sax.detach()), "sq": float(criterion.saq.detach()),
        "lr": float(optimizer.param_groups[0]["lr"]),
        "images_per_s": float(stats.get("images_per_s", float("nan"))), "time_s": float(stats.get("time_s", 0.0)),
        "val_median_m": None, "val_median_deg": None,
    }
