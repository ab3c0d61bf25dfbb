"""The run log: rows past the checkpoint dropped on resume, values as given, TensorBoard events at the global step."""

import csv
import sys
import types

import pytest

from topoloc.engine.runlog import LOG_COLUMNS, RunLogger

HEADER = ",".join(LOG_COLUMNS) + "\r\n"


def _row(epoch: int, step: int, loss: str) -> str:
    return ",".join([str(epoch), str(step), loss] + [""] * (len(LOG_COLUMNS) - 3)) + "\r\n"


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["epoch"], r["step"], r["loss"]) for r in csv.DictReader(f)]


def test_resume_keeps_the_rows_up_to_its_step(tmp_path):
    (tmp_path / "log.csv").write_text(HEADER + _row(1, 50, "0.5") + _row(2, 100, "0.25") + _row(3, 150, "0.125"),
                                      newline="")
    RunLogger(tmp_path, tensorboard=False, resume_step=100).close()
    assert _read(tmp_path / "log.csv") == [("1", "50", "0.5"), ("2", "100", "0.25")]


def test_a_row_cut_short_by_a_kill_is_dropped(tmp_path):
    # killed while appending epoch 3's row (step 150): only "3,1" reached the disk, a step of 1 <= 100
    (tmp_path / "log.csv").write_text(HEADER + _row(1, 50, "0.5") + _row(2, 100, "0.25") + "3,1", newline="")
    logger = RunLogger(tmp_path, tensorboard=False, resume_step=100)
    logger.epoch({"epoch": 3, "step": 150, "loss": 0.125})
    logger.close()
    assert _read(tmp_path / "log.csv") == [("1", "50", "0.5"), ("2", "100", "0.25"), ("3", "150", "0.125")]


def test_a_resume_killed_while_it_rewrites_the_log_keeps_the_old_one(tmp_path, monkeypatch):
    old = HEADER + _row(1, 50, "0.5") + _row(2, 100, "0.25") + _row(3, 150, "0.125")
    (tmp_path / "log.csv").write_text(old, newline="")

    def killed(self, rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    with pytest.raises(KeyboardInterrupt):
        RunLogger(tmp_path, tensorboard=False, resume_step=100)
    assert (tmp_path / "log.csv").read_bytes().decode() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_a_new_run_starts_an_empty_log(tmp_path):
    (tmp_path / "log.csv").write_text(HEADER + _row(1, 50, "0.5"), newline="")
    RunLogger(tmp_path, tensorboard=False).close()
    assert (tmp_path / "log.csv").read_bytes().decode() == HEADER


def test_a_zero_is_written_as_a_zero_and_none_as_empty(tmp_path):
    # a learnt weight of exactly 0 (sx starts there) is a value, not a missing column
    logger = RunLogger(tmp_path, tensorboard=False)
    logger.epoch({"epoch": 1, "step": 10, "loss": 0.5, "sx": 0.0, "sq": -3.0, "val_median_m": None})
    logger.close()
    with open(tmp_path / "log.csv", newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert (row["sx"], row["sq"], row["val_median_m"], row["lr"]) == ("0.0", "-3.0", "", "")


def test_a_logger_that_is_not_enabled_writes_nothing(tmp_path):
    # every DDP rank but 0: one log.csv per run, written by one process
    logger = RunLogger(tmp_path, enabled=False)
    logger.epoch({"epoch": 1, "step": 10, "loss": 0.5})
    logger.close()
    assert list(tmp_path.iterdir()) == []


class _Events:
    """Stands for TensorBoard's ``SummaryWriter``: keeps its arguments and the scalars added."""

    def __init__(self, **kwargs):
        self.kwargs, self.scalars = kwargs, []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        pass


def test_an_epoch_row_goes_to_tensorboard_at_its_global_step(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_Events))
    logger = RunLogger(tmp_path, tensorboard=True)
    events = logger.writer
    logger.epoch({"epoch": 2, "step": 40, "loss": 0.5, "t_loss": 0.25, "q_loss": float("nan"), "sx": 0.0,
                  "lr": 1e-3, "val_median_m": None})
    # the float columns from `loss` on, less the NaN and the missing value, at the run's step 40 (not epoch 2)
    assert events.scalars == [("epoch/loss", 0.5, 40), ("epoch/t_loss", 0.25, 40), ("epoch/sx", 0.0, 40),
                              ("epoch/lr", 1e-3, 40)]


def test_a_resumed_logger_purges_the_tensorboard_events_past_its_step(tmp_path, monkeypatch):
    # as log.csv drops the killed run's rows past the checkpoint, TensorBoard drops its events
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_Events))
    logger = RunLogger(tmp_path, tensorboard=True, resume_step=100)
    assert logger.writer.kwargs == {"log_dir": str(tmp_path / "tb"), "purge_step": 100}
