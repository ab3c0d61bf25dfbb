"""The run log on resume: rows past the checkpoint dropped, nothing of the rest lost."""

import csv

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
