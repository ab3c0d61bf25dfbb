"""Training: `train(config, train_set, val_set)` and the `Trainer` behind it.

The data path is the point. The training images are decoded once into a uint8 `ImageCache`
(GPU memory when it fits); every step gathers a batch by index on the device, converts it to
float, applies the augmentations there, normalises it with the backbone's mean / std and runs
the model under bf16 autocast in channels_last (CUDA; on the CPU too with `TrainConfig.cpu_amp` and
`TrainConfig.cpu_channels_last`).
No Python loop touches single images.

A run is resumable to the bit on the CPU: the epoch order is a pure function of (seed, epoch),
and checkpoints hold the model, optimiser, loss weights, normaliser, the position within the
epoch and every RNG state (dropout and the augmentations draw from the global torch RNG).

The trainer's parts beside it: `topoloc.engine.run_setup` (its arguments and everything built before
the first step), `topoloc.engine.resume` (a run's folder, the checkpoint it resumes and its settings, a
fine-tune's first weights), `topoloc.engine.inputs` (the caches, relight normals,
steps per epoch) and `topoloc.engine.meter` (step losses, non-finite checks, progress, log rows).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from topoloc._device import resolve_device
from topoloc._lock import FolderLock
from topoloc._progress import NoBar
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine.checkpoint import capture_rng_state, save_checkpoint, training_checkpoint
from topoloc.engine.config import TrainConfig, augment_strength_at, build_augment, scheduled_lr
from topoloc.engine.distributed import (DistInfo, all_reduce_any, average_gradients, barrier, epoch_permutation,
                                        init_distributed, mean_over_ranks, shard_indices)
from topoloc.engine.meter import (StepMeter, epoch_row, first_non_finite, non_finite_loss_error,
                                  non_finite_model_error, predicts_finite, progress_bar, weights_finite)
from topoloc.engine.predict import predict
from topoloc.engine.resume import RESUME_FIELDS, RUN_FILES, ResumeSettingsError
from topoloc.engine.run_setup import RunSetup, initial_model, training_autocast
from topoloc.engine.runlog import RunLogger
from topoloc.engine.stopping import StopOnSignal, TrainingStopped
from topoloc.metrics import pose_errors
from topoloc.models.contract import to_unit_float

__all__ = ["train", "Trainer", "TrainResult", "ResumeSettingsError", "initial_model", "build_augment", "RESUME_FIELDS",
           "RUN_FILES", "training_autocast"]

log = logging.getLogger("topoloc.engine")


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        final_checkpoint: ``out_dir/last.pt``, the state after the last epoch.
        best_checkpoint: ``out_dir/best.pt`` (lowest validation median translation error), or
            the final checkpoint when there was no validation.
        history: one dict per epoch with the `topoloc.engine.runlog.LOG_COLUMNS`.
        out_dir: the run folder (``config.yaml``, ``log.csv``, checkpoints).
    """

    final_checkpoint: Path
    best_checkpoint: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path = Path(".")


def train(config: TrainConfig, train_set: Any, val_set: Any = None, *, normalizer: Any = None,
          callbacks: Sequence[Callable[[dict[str, Any]], None]] = (), normals: Tensor | None = None,
          scene_points: Tensor | None = None) -> TrainResult:
    """Train a pose regressor; see `Trainer`.

    Args:
        config: the run's `TrainConfig`.
        train_set: a dataset of sample dicts (``image`` uint8 (3, H, W), ``c2w`` (4, 4), ``name``...)
            or an `ImageCache`.
        val_set: the same kind, validated every ``config.val_every`` epochs (median errors in
            metres and degrees); ``None`` for no validation.
        normalizer: a `PoseNormalizer`; default: fitted to the training poses (a resumed run takes its
            checkpoint's, and refuses another).
        callbacks: called after every optimiser step with ``{"epoch", "step", "global_step",
            "loss", "trainer"}``: the epoch from 0, the steps done in it and in the run (a resumed run
            goes on with the same numbers); ``loss`` is a tensor: reading it synchronises the device.
        normals: for ``config.relight``: the training images' surface normals, int8 (N, 3, H, W)
            (unit x 127, local ENU, in ``train_set``'s order, see `topoloc.data.flight_normals`);
            default: read from the geometry files beside ``train_set``'s renders.
        scene_points: for ``config.scene_coords``: the training images' world points, float
            (N, 3, H, W) local ENU metres (NaN where nothing is hit, any resolution, in ``train_set``'s
            order, see `topoloc.data.flight_scene_points`); default: read from the geometry files
            beside ``train_set``'s renders.

    Returns:
        A `TrainResult` (checkpoint paths and the per-epoch history).

    Raises:
        FloatingPointError: the loss became NaN or infinite; the message gives the step, the
            value and the last good checkpoint, which is left untouched.
        ValueError: an image could not be decoded (the message names it).
    """
    return Trainer(config, train_set, val_set, normalizer=normalizer, callbacks=callbacks, normals=normals,
                   scene_points=scene_points).fit()


class Trainer(RunSetup):
    """One training run: data caches, model, loss, optimiser, checkpoints and logs.

    `fit` calls `_setup`, whose named builders run in this order: `_init_state` (a new run's first
    weights, `TrainConfig.init_from`, checked before anything is removed or decoded), `_claim_out_dir`,
    `_build_device`, `_build_caches`, `_resume_state` (reads a checkpoint to resume), `_plan_steps`,
    `_build_model_and_optimiser`, `_restore` (or seed a new run), `_wrap` (DDP, ``torch.compile``).
    Then `_epoch` per epoch, whose parts are `_set_lr`, `_step`, `_report` (NaN check, logging),
    `_checkpoint_due` / `_save` and `_run_callbacks`.

    Args: see `train`. Attributes set by `fit`: ``model`` (unwrapped), ``criterion``, ``optimizer``,
    ``normalizer``, ``train_cache``, ``val_cache``, ``device``, ``history``, ``scene`` (the auxiliary
    head of ``scene_coords``, a `SceneHeadTraining`, or None).
    """

    # ----------------------------------------------------------------- the step
    def _inputs(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The batch of ``idx`` on the device: augmented, prepared images and target codes."""
        images, _ = self.train_cache.batch(idx, self.device)
        target = self.targets.index_select(0, idx.to(self.targets.device)).to(self.device, non_blocking=self.cuda)
        x = to_unit_float(images)
        if self.augment is not None or self.relight is not None:
            k = round(self.config.augment_fraction * x.shape[0])
            if k > 0:  # batches are in random order: the first k images are a random subset
                x = torch.cat([self._augment(x[:k], idx[:k]), x[k:]])
        return self.model.prepare(x, channels_last=self.channels_last, check_range=False), target  # augmented

    def _augment(self, x: Tensor, idx: Tensor) -> Tensor:
        """The augmented images of ``idx``: relit on their normals (when asked), then `augment`."""
        if self.relight is not None:
            normals = cast(Tensor, self.normals)  # `_build_caches` set them with `relight`
            normals = normals.index_select(0, idx.to(normals.device)).to(x.device, non_blocking=x.is_cuda)
            x = self.relight(x, normals)
        return self.augment(x) if self.augment is not None else x

    def _ramp_augment(self, epoch: int) -> None:
        """The augmentation at ``epoch``'s strength (`augment_strength_at`), built without drawing from
        the RNG streams the steps use, and from a stream of (seed, epoch) only, so a resumed run draws as an
        uninterrupted one."""
        with torch.random.fork_rng(devices=[self.device] if self.cuda else []):
            torch.manual_seed(self.config.seed + epoch)  # what it draws when built: a function of (seed, epoch)
            self.augment = build_augment(self.config.augment, augment_strength_at(self.config, epoch), self.device)

    def _step(self, idx: Tensor) -> dict[str, Tensor]:
        cfg = self.config
        if self.side_stream is not None:
            # The batch is prepared on a side stream: kornia's per-op `.item()` calls then wait for
            # the augmentation kernels only, not for the previous step still running on the GPU.
            # Same launch order as without it, so the RNG draws (and resuming) are unchanged.
            main = torch.cuda.current_stream(self.device)
            with torch.cuda.stream(self.side_stream):
                x, target = self._inputs(idx)
            main.wait_stream(self.side_stream)
            x.record_stream(main)
            target.record_stream(main)
        else:
            x, target = self._inputs(idx)
        if self.scene is not None:
            self.scene.start()
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            pred = self.train_model(x)
        terms = self.criterion.terms(pred, target)
        if self.scene is not None:
            terms["scene_loss"] = self.scene.loss(idx)
            terms["loss"] = terms["loss"] + cfg.scene_coords * terms["scene_loss"]
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        average_gradients(self.criterion.parameters(), self.info)  # sx, sq: outside the DDP module
        if self.scene is not None:
            average_gradients(self.scene.head.parameters(), self.info)  # outside the DDP module too
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self._clipped_parameters(), cfg.grad_clip)
        self.optimizer.step()
        return terms

    def _clipped_parameters(self) -> list[nn.Parameter]:
        """What ``grad_clip`` clips: the model's parameters, and the auxiliary head's."""
        params = list(self.model.parameters())
        return params + list(self.scene.head.parameters()) if self.scene is not None else params

    def _set_lr(self, epoch: int, step: int) -> None:
        """The schedule's learning rate for step ``step`` of ``epoch`` (0-based): its place in the run counted in
        this run's steps per epoch (a run resumed with another batch size, ``resume_changes="allow"``, carries a
        global step counted in the old ones; the same number as the global step otherwise)."""
        lr = scheduled_lr(self.config, epoch * self.steps_per_epoch + step, self.config.epochs * self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _check_finite(self, pending: list[tuple[int, Tensor]], epoch: int) -> None:
        """Raise `FloatingPointError` if any pending loss (or, on any rank, any loss) is not finite."""
        bad = first_non_finite(pending)
        pending.clear()
        if all_reduce_any(bad is not None, self.info, self.device) or bad is not None:
            raise non_finite_loss_error(bad, epoch, self.last_good, self.config.lr)

    # ----------------------------------------------------------------- checkpoints
    def _checkpoint_due(self, global_step: int) -> bool:
        every = self.config.checkpoint_every_steps
        return bool(every) and global_step % every == 0

    def _save(self, epoch: int, step: int, global_step: int, stats: dict[str, float], best: dict | None,
              also_best: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt``) if the model is still finite; every rank's RNG state goes in."""
        self._refuse_non_finite(epoch, global_step)
        rngs = self._gather_rng_states()
        if not self.info.is_main:
            return
        state = training_checkpoint(
            config=self.config, model=self.model, criterion=self.criterion, optimizer=self.optimizer,
            normalizer=self.normalizer, rng=rngs, epoch=epoch, step=step, global_step=global_step,
            epoch_stats=stats, best=best, history=self.history, world_size=self.info.world_size, frame=self.frame,
            training_data=self.data, scene_head=self.scene.state() if self.scene is not None else None)
        if also_best:  # best.pt first: a run killed between the two files redoes this epoch and writes both
            save_checkpoint(state, self.out_dir / "best.pt")
        self.last_good = save_checkpoint(state, self.out_dir / "last.pt")

    def _refuse_non_finite(self, epoch: int, global_step: int) -> None:
        """Raise `FloatingPointError` (on every rank) if any rank's weights or predictions are not finite."""
        finite = weights_finite(self.model)
        what = "non-finite weights" if not finite else "non-finite predictions on a training batch"
        if finite:
            finite = self._predicts_finite()
        if all_reduce_any(not finite, self.info, self.device):
            raise non_finite_model_error(what, epoch, global_step, self.last_good)

    def _gather_rng_states(self) -> list[dict[str, Any]]:
        rng = capture_rng_state()
        if not self.info.distributed:
            return [rng]
        rngs: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(rngs, rng)
        return rngs

    @torch.no_grad()
    def _predicts_finite(self) -> bool:
        """Whether the model's outputs on the first training images are finite (`predicts_finite`)."""
        idx = torch.arange(min(self.local_batch, len(self.train_cache)))
        images, _ = self.train_cache.batch(idx, self.device)
        return predicts_finite(self.model, images, self.autocast)

    # ----------------------------------------------------------------- validation
    def validate(self) -> tuple[float, float]:
        """Median translation (m) and rotation (deg) errors on the validation cache (this process)."""
        if self.val_cache is None:
            raise ValueError("Trainer.validate: the run has no validation set (`val_set`)")
        normalizer = cast(PoseNormalizer, self.normalizer)  # fitted or read in the set-up
        pred = predict(self.model, self.val_cache, normalizer, batch_size=self.local_batch, device=self.device,
                       amp=self.config.amp, channels_last=self.config.channels_last)
        t_m, r_deg = pose_errors(pred, self.val_cache.c2w.cpu())
        return float(np.median(t_m)), float(np.median(r_deg))

    def _validate_epoch(self, epoch: int, row: dict[str, Any], best: dict | None) -> tuple[dict | None, bool]:
        """Validate when due (rank 0, broadcast); fill ``row`` and return (best so far, whether this is it)."""
        cfg = self.config
        if self.val_cache is None or not cfg.val_every or not (
                (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            return best, False
        metrics = [self.validate() if self.info.is_main else None]
        if self.info.distributed:
            dist.broadcast_object_list(metrics, src=0)
        val_m, val_deg = cast(tuple[float, float], metrics[0])  # rank 0's, broadcast
        row["val_median_m"], row["val_median_deg"] = val_m, val_deg
        if best is not None and val_m >= best["val_median_m"]:
            return best, False
        return {"epoch": epoch + 1, "val_median_m": val_m, "val_median_deg": val_deg}, True

    # ----------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        """Run (or resume) the training; see `train`."""
        info = init_distributed(resolve_device(self.config.device, name="TrainConfig.device").type)
        finished = False
        # one run at a time in the folder (rank 0 writes): taken now where the folder exists (a run to resume),
        # else once the run is set up, before its first file (a refused run leaves no folder)
        lock = self._lock = FolderLock(self.out_dir, "TrainConfig.out_dir")
        try:
            if info.is_main:
                lock.acquire(create=False)
            result = self._fit(info)
            finished = True
            return result
        finally:
            lock.release()
            if info.distributed:
                self._leave_process_group(info, finished)

    def _leave_process_group(self, info: DistInfo, finished: bool) -> None:
        """Drop the DDP wrapper and, if `fit` created the process group, destroy it.

        The DDP reducer holds a reference to the group: left alive, the group is torn down at
        interpreter exit, where gloo's worker threads can abort the process ("terminate called
        without an active exception", seen about once in 20 two-rank runs on a loaded 2-core CPU).
        Ranks that finished meet at a barrier first so that no rank closes its connections while
        another is still in a collective; after an error there is no barrier (the other ranks may
        never reach it).
        """
        if finished:
            barrier(info)
        if hasattr(self, "model"):  # absent when the set-up failed before building it
            self.train_model = self.model
            gc.collect()
        if info.initialized_here:
            dist.destroy_process_group()

    def _fit(self, info: DistInfo) -> TrainResult:
        cfg = self.config
        state = self._setup(info)
        start_epoch, start_step, global_step = 0, 0, 0
        stats: dict[str, float] = {}
        best = None
        if state is not None:
            start_epoch, start_step, global_step = state.epoch, state.step, state.global_step
            stats, best = dict(state.epoch_stats), state.best
        if info.is_main:
            self._lock.acquire()  # makes the folder
            cfg.to_yaml(self.out_dir / "config.yaml")
        logger = RunLogger(self.out_dir, cfg.tensorboard, resume_step=global_step if state else None,
                           enabled=info.is_main)
        # SIGTERM / Ctrl-C: stop at a step's end with a checkpoint there (one process only: ranks would disagree)
        self._stop = StopOnSignal(enabled=info.world_size == 1)
        try:
            self._stop.__enter__()
            for epoch in range(start_epoch, cfg.epochs):
                first = start_step if epoch == start_epoch else 0
                if first == 0:
                    stats = {"loss": 0.0, "t_loss": 0.0, "q_loss": 0.0, "scene_loss": 0.0, "steps": 0}
                global_step = self._epoch(epoch, first, global_step, stats, best, logger)
                row = self._epoch_row(epoch, global_step, stats)
                best, is_best = self._validate_epoch(epoch, row, best)
                self.history.append(row)
                logger.epoch(row)
                if info.is_main and cfg.progress:
                    log.info("epoch %d/%d: %s", epoch + 1, cfg.epochs, row)
                self._save(epoch + 1, 0, global_step, {}, best, also_best=is_best)
                if self._stop.requested is not None and epoch + 1 < cfg.epochs:
                    raise self._stopped(epoch + 1, 0)
            if start_epoch >= cfg.epochs and not (self.out_dir / "last.pt").is_file():
                self._save(start_epoch, start_step, global_step, stats, best)  # resumed from best.pt, every epoch done
        finally:
            self._stop.__exit__()
            logger.close()
            if self.scene is not None:
                self.scene.close()
        final = self.out_dir / "last.pt"
        best_path = self.out_dir / "best.pt"
        return TrainResult(final, best_path if best is not None and best_path.is_file() else final,
                           list(self.history), self.out_dir)

    def _epoch(self, epoch: int, first: int, global_step: int, stats: dict[str, float], best: dict | None,
               logger: RunLogger) -> int:
        """Steps ``first`` .. the end of ``epoch``; returns the global step reached."""
        shard = self._epoch_shard(epoch)
        if self.config.augment_ramp_epochs:
            self._ramp_augment(epoch)
        self.train_model.train()
        meter = StepMeter(self.device, self.info.world_size)
        bar = self._progress_bar(epoch, first)
        for s in range(first, self.steps_per_epoch):
            idx = shard[s * self.local_batch:(s + 1) * self.local_batch]
            self._set_lr(epoch, s)
            terms = self._step(idx)
            global_step += 1
            loss = meter.add(global_step, terms, int(idx.numel()))
            last = s + 1 == self.steps_per_epoch
            due = self._checkpoint_due(global_step)
            stop = not last and getattr(self, "_stop", None) is not None and self._stop.requested is not None
            if global_step % self.config.log_every == 0 or due or last or stop:
                self._report(meter, stats, epoch, global_step, loss, logger, bar)
            stats["steps"] = stats.get("steps", 0) + 1
            bar.update(1)
            if (due or stop) and not last:
                self._save(epoch, s + 1, global_step, stats, best)
            self._run_callbacks(epoch, s + 1, global_step, loss)
            if stop:  # at the epoch's last step the epoch ends first (validation, its last.pt), then `_fit` stops
                bar.close()
                raise self._stopped(epoch, s + 1)
        bar.close()
        if self.cuda:
            torch.cuda.synchronize(self.device)
        stats["images_per_s"] = meter.images_per_s()
        stats["time_s"] = meter.elapsed_s()
        return global_step

    def _epoch_shard(self, epoch: int) -> Tensor:
        """This process's share of the epoch's order (a pure function of seed and epoch), on the cache's device."""
        cfg, info = self.config, self.info
        shard = shard_indices(epoch_permutation(len(self.train_cache), cfg.seed, epoch), info.rank, info.world_size)
        shard = shard.to(self.train_cache.device)  # one copy per epoch, none per step
        if self.side_stream is not None:  # the batches' inputs (cache, targets, shard) are ready
            self.side_stream.wait_stream(torch.cuda.current_stream(self.device))
        return shard

    def _progress_bar(self, epoch: int, first: int) -> Any:
        if not (self.info.is_main and self.config.progress):
            return NoBar()
        return progress_bar(epoch, self.config.epochs, first, self.steps_per_epoch)

    def _report(self, meter: StepMeter, stats: dict[str, float], epoch: int, global_step: int, loss: Tensor,
                logger: RunLogger, bar: Any) -> None:
        """Check the pending losses for NaN, add them to ``stats``, log the loss and the speed."""
        self._check_finite(meter.pending, epoch)
        mean_over_ranks(meter.sums, self.info)  # log.csv's losses: the global batch's, not rank 0's share
        meter.drain_into(stats)
        rate = meter.images_per_s()
        bar.set_postfix(loss=f"{float(loss):.4f}", img_s=f"{rate:.0f}")
        logger.scalars({"loss": float(loss), "images_per_s": rate}, global_step)

    def _stopped(self, epoch: int, step: int) -> TrainingStopped:
        """The error that ends a run stopped on a signal, once its checkpoint is written at (epoch, step)."""
        where = f"step {step} of epoch {epoch + 1}" if step else f"epoch {epoch}"
        return TrainingStopped(f"training stopped on {self._stop.requested} after {where}; "
                               f"{self.out_dir / 'last.pt'} holds it: the same run with resume=True (CLI: --resume) "
                               "goes on from there")

    def _run_callbacks(self, epoch: int, step: int, global_step: int, loss: Tensor) -> None:
        for callback in self.callbacks:
            callback({"epoch": epoch, "step": step, "global_step": global_step, "loss": loss, "trainer": self})

    def _epoch_row(self, epoch: int, global_step: int, stats: dict[str, float]) -> dict[str, Any]:
        """The epoch's ``log.csv`` row (`epoch_row`); ``scene_loss`` empty without the head."""
        row = epoch_row(epoch, global_step, stats, self.criterion, self.optimizer)
        if self.scene is None:
            row["scene_loss"] = None
        return row
