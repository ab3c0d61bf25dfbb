"""SIGTERM and Ctrl-C stop a run at its step's end with a checkpoint there, which resumes to the same weights."""

from __future__ import annotations

import os
import signal

import pytest

from topoloc.engine import load_checkpoint, train
from topoloc.engine.stopping import StopOnSignal, TrainingStopped

from support.killed_runs import assert_same_weights, checkpoint_weights

COMMON = {"epochs": 2, "batch_size": 4, "lr_schedule": "cosine", "augment": "simtoreal"}


def _signal_at(global_step: int, sig: signal.Signals, times: int = 1):
    """A training callback that sends ``sig`` to this process ``times`` times after optimiser step ``global_step``."""
    def callback(event):
        if event["global_step"] == global_step:
            for _ in range(times):
                os.kill(os.getpid(), sig)
    return callback


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_after_its_step_with_a_checkpoint_that_resumes_to_the_same_weights(
        tiny_config, pose_images, tmp_path, sig):
    # the process used to end where it stood: without checkpoint_every_steps, up to an epoch of work was lost
    ds = pose_images(n=16)
    reference = train(tiny_config(out_dir=str(tmp_path / "ref"), **COMMON), ds)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    run = tmp_path / "run"
    # sent after step 2 of 4 (global step 2): step 3 runs, then last.pt is written there and the run stops
    with pytest.raises(TrainingStopped, match=rf"^training stopped on {sig.name} after step 3 of epoch 1; .*last\.pt "
                                              r"holds it: the same run with resume=True \(CLI: --resume\)"):
        train(tiny_config(out_dir=str(run), **COMMON), ds, callbacks=[_signal_at(2, sig)])
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers given back
    state = load_checkpoint(run / "last.pt")
    assert (state["epoch"], state["step"], state["global_step"]) == (0, 3, 3)
    resumed = train(tiny_config(out_dir=str(run), resume=True, **COMMON), ds)
    assert_same_weights(checkpoint_weights(resumed.final_checkpoint), checkpoint_weights(reference.final_checkpoint))
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in reference.history]


def test_a_signal_at_an_epochs_last_step_ends_the_epoch_first(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=16)
    run = tmp_path / "run"
    with pytest.raises(TrainingStopped, match=r"after epoch 1; "):
        train(tiny_config(out_dir=str(run), **COMMON), ds, callbacks=[_signal_at(3, signal.SIGTERM)])
    state = load_checkpoint(run / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 0)
    # at the run's very end there is nothing left to stop: it finishes
    assert len(train(tiny_config(out_dir=str(tmp_path / "end"), **COMMON), ds,
                     callbacks=[_signal_at(7, signal.SIGTERM)]).history) == 2


def test_a_second_signal_stops_at_once(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match="SIGINT received twice: stopped at once") as info:
        train(tiny_config(out_dir=str(run), **COMMON), pose_images(n=16), callbacks=[_signal_at(2, signal.SIGINT, 2)])
    assert not isinstance(info.value, TrainingStopped)
    assert not (run / "last.pt").exists()  # no checkpoint yet: the first epoch had not ended


def test_disabled_the_signals_act_as_before():
    previous = signal.getsignal(signal.SIGTERM)
    with StopOnSignal(enabled=False) as stop:
        assert signal.getsignal(signal.SIGTERM) is previous and stop.requested is None
