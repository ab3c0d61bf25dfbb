"""The run log: one CSV row per epoch, TensorBoard scalars when TensorBoard is installed."""

from __future__ import annotations

import csv
import math
from os import PathLike
from pathlib import Path
from typing import Any

from topoloc._tempfiles import write_atomically

__all__ = ["RunLogger", "LOG_COLUMNS"]

#: Columns of ``log.csv`` (one row per finished epoch).
LOG_COLUMNS = ("epoch", "step", "loss", "t_loss", "q_loss", "sx", "sq", "lr", "images_per_s", "time_s",
               "val_median_m", "val_median_deg", "scene_loss")


class RunLogger:
    """Writes ``log.csv`` (and TensorBoard events under ``tb/``) in a run folder.

    Args:
        out_dir: the run folder.
        tensorboard: also write TensorBoard events when ``torch.utils.tensorboard`` imports.
        resume_step: when resuming, rows logged after this global step (by the killed run,
            past its last checkpoint) are dropped, so the log matches the restored state;
            ``None`` starts a new log.
        enabled: ``False`` on every rank but 0: nothing is written.
    """

    def __init__(self, out_dir: str | PathLike, tensorboard: bool = True, resume_step: int | None = None,
                 enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "log.csv"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = _rows_up_to(self.path, resume_step) if resume_step is not None and self.path.is_file() else []

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
                writer.writeheader()
                writer.writerows({k: r.get(k) or "" for k in LOG_COLUMNS} for r in rows)

        write_atomically(self.path, write)  # a run killed meanwhile keeps the log it had, not half of it
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - deferred: optional, slow to import
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tb"), purge_step=resume_step)

    def scalars(self, values: dict[str, float], step: int, prefix: str = "train") -> None:
        """TensorBoard scalars (no-op without TensorBoard)."""
        if self.writer is not None:
            for key, value in values.items():
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def epoch(self, row: dict[str, Any]) -> None:
        """Append one epoch's row to ``log.csv`` (missing columns stay empty)."""
        if not self.enabled:
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=LOG_COLUMNS).writerow(
                {k: ("" if row.get(k) is None else row[k]) for k in LOG_COLUMNS})
        self.scalars({k: row[k] for k in LOG_COLUMNS[2:] if isinstance(row.get(k), float)}, row["step"], "epoch")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _rows_up_to(path: Path, step: int) -> list[dict[str, str]]:
    """The rows of ``path`` logged at global steps up to ``step``. A last line without its line end
    (the run was killed while appending it) is not a row: its step may be cut short (``1`` of ``150``)."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [r for r in csv.DictReader(text.splitlines(keepends=True))
            if (r.get("step") or "").isdigit() and int(r["step"]) <= step]
