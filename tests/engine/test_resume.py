"""Reliability: a killed run resumes to the same weights; NaN stops cleanly; checkpoints are atomic."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from topoloc import cpu_has_bf16
from topoloc.engine import load_checkpoint, save_checkpoint, train
from topoloc.engine.checkpoint import capture_rng_state, restore_rng_state

from support.killed_runs import Killed, assert_same_weights, checkpoint_weights, kill_at


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_killed_mid_epoch_resumes_to_identical_weights(tiny_config, pose_images, tmp_path, schedule):
    # Dropout and SimToReal draw from the RNG: resuming must restore it, not only the weights.
    ds = pose_images(n=20)
    common = dict(epochs=3, batch_size=6, checkpoint_every_steps=3, augment="simtoreal", augment_strength=1.0,
                  lr_schedule=schedule,
                  lr=1e-3, log_every=2, model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.5})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    assert whole.history[-1]["step"] == 12  # 4 steps per epoch (20 images, batch 6, last batch of 2)

    run = str(tmp_path / "killed")
    with pytest.raises(Killed):  # killed after step 8: epoch 2, mid-epoch; last checkpoint at step 6
        train(tiny_config(out_dir=run, **common), ds, callbacks=[kill_at(8)])
    state = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 2, 6)
    done = []
    resumed = train(tiny_config(out_dir=run, resume=True, **common), ds,
                    callbacks=[lambda event: done.append(event["global_step"])])
    assert done == list(range(7, 13))  # it continued from the checkpoint, not from scratch

    assert_same_weights(checkpoint_weights(whole.final_checkpoint), checkpoint_weights(resumed.final_checkpoint))
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in whole.history], rel=1e-12)
    rows = list(csv.DictReader(open(tmp_path / "killed" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]


def test_a_resumed_run_says_where_it_goes_on(tiny_config, pose_images, tmp_path, capsys):
    ds = pose_images(n=20)
    common = dict(out_dir=str(tmp_path / "run"), epochs=3, batch_size=6, checkpoint_every_steps=3)
    with pytest.raises(Killed):  # after step 8; the last checkpoint is at step 6: epoch 2, its 2nd step
        train(tiny_config(**common), ds, callbacks=[kill_at(8)])
    capsys.readouterr()
    train(tiny_config(resume=True, progress=True, **common), ds)
    out = capsys.readouterr().out
    assert f"resume: {tmp_path / 'run' / 'last.pt'}: 1 of 3 epoch(s) done, 2 step(s) into epoch 2\n" in out


def test_a_resume_names_the_execution_settings_it_changes(tiny_config, pose_images, tmp_path, capsys):
    # bf16 and the memory layout change the rounding, not what is trained: allowed, but said (they were not)
    ds = pose_images(n=12)
    common = dict(out_dir=str(tmp_path / "run"), batch_size=6, lr_schedule="constant")
    train(tiny_config(epochs=1, **common), ds)
    capsys.readouterr()
    train(tiny_config(epochs=2, resume=True, progress=True, cpu_channels_last=True, num_workers=0, **common), ds)
    out = capsys.readouterr().out
    assert f"resume: {tmp_path / 'run' / 'last.pt'}: 1 of 2 epoch(s) done; now cpu_channels_last True (was False)\n" \
        in out


def _assert_killed_run_resumes(tiny_config, ds, tmp_path, common: dict, whole, **train_kw) -> None:
    """Kill a run of ``common`` after step 5 and resume it: it must reach ``whole``'s weights."""
    run = str(tmp_path / "killed")
    with pytest.raises(Killed):
        train(tiny_config(out_dir=run, **common), ds, callbacks=[kill_at(5)], **train_kw)
    resumed = train(tiny_config(out_dir=run, resume=True, **common), ds, **train_kw)
    assert_same_weights(checkpoint_weights(whole.final_checkpoint), checkpoint_weights(resumed.final_checkpoint))


def test_killed_relit_run_resumes_to_identical_weights(tiny_config, pose_images, tmp_path):
    # RandomSunRelight draws its suns from the global RNG too: the checkpoint's RNG state must cover it.
    ds = pose_images(n=20)
    normals = torch.zeros(20, 3, 32, 32, dtype=torch.int8)
    normals[:, 0], normals[:10, 2] = 90, 90  # walls and slopes facing east
    common = dict(epochs=2, batch_size=6, checkpoint_every_steps=3, augment="simtoreal", augment_strength=0.5,
                  augment_fraction=0.5, relight=1.0, lr=1e-3, model_kwargs={"backbone": "test_resnet", "feat_dim": 32})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds, normals=normals)
    plain = train(tiny_config(out_dir=str(tmp_path / "plain"), **{**common, "relight": 0.0}), ds)
    # relighting acts
    assert any(not torch.equal(a, b) for a, b in zip(checkpoint_weights(whole.final_checkpoint).values(),
                                                     checkpoint_weights(plain.final_checkpoint).values()))
    _assert_killed_run_resumes(tiny_config, ds, tmp_path, common, whole, normals=normals)


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_killed_cpu_amp_run_resumes_to_identical_weights(tiny_config, pose_images, tmp_path):
    # The demo's CPU runs train under bf16 autocast: a killed one must resume to the same weights too.
    ds = pose_images(n=20)
    common = dict(epochs=2, batch_size=6, checkpoint_every_steps=3, augment="simtoreal", augment_fraction=0.5,
                  cpu_amp=True, lr=1e-3, model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.5})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    fp32 = train(tiny_config(out_dir=str(tmp_path / "fp32"), **{**common, "cpu_amp": False}), ds)
    assert any(not torch.equal(a, b) for a, b in zip(checkpoint_weights(whole.final_checkpoint).values(),
                                                     checkpoint_weights(fp32.final_checkpoint).values()))  # bf16 acts
    _assert_killed_run_resumes(tiny_config, ds, tmp_path, common, whole)


def test_killed_cpu_channels_last_run_resumes_to_identical_weights(tiny_config, pose_images, tmp_path):
    # The demo's CPU runs train in channels_last: the resumed model and optimiser state must take it up.
    ds = pose_images(n=20)
    common = dict(epochs=2, batch_size=6, checkpoint_every_steps=3, augment="simtoreal", augment_fraction=0.5,
                  cpu_channels_last=True, lr=1e-3, model_kwargs={"backbone": "test_resnet", "feat_dim": 32})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    _assert_killed_run_resumes(tiny_config, ds, tmp_path, common, whole)


def test_resume_of_a_finished_run_trains_further(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=8)
    whole = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=3), ds)
    train(tiny_config(out_dir=str(tmp_path / "b"), epochs=2), ds)
    longer = train(tiny_config(out_dir=str(tmp_path / "b"), epochs=3, resume=True), ds)
    assert_same_weights(checkpoint_weights(whole.final_checkpoint), checkpoint_weights(longer.final_checkpoint))
    assert len(longer.history) == 3


def test_resume_refuses_another_configuration(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1), ds)
    with pytest.raises(ValueError, match="batch_size"):
        train(tiny_config(out_dir=str(tmp_path / "a"), epochs=2, batch_size=4, resume=True), ds)


def test_resume_of_a_run_killed_before_its_first_checkpoint_says_it_starts_anew(tiny_config, pose_images, tmp_path,
                                                                                  caplog):
    # it said only "removing the previous run's config.yaml, log.csv", the new start being at INFO, unseen
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: atloc_resnet18\n")
    (run / "log.csv").write_text("epoch\n")
    with caplog.at_level("WARNING"):
        train(tiny_config(out_dir=str(run), epochs=1, resume=True), pose_images(n=8))
    assert (f"out_dir {run}: no last.pt to resume (the previous run stopped before its first checkpoint): a new run, "
            "removing the previous run's config.yaml, log.csv") in caplog.text


def test_resume_true_without_checkpoint_starts_fresh(tiny_config, pose_images, tmp_path):
    result = train(tiny_config(out_dir=str(tmp_path / "new"), epochs=1, resume=True), pose_images(n=8))
    assert result.final_checkpoint.is_file()


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tiny_config, pose_images,
                                                                                tmp_path, monkeypatch):
    from topoloc.models import AtLocLoss

    original = AtLocLoss.terms
    calls = {"n": 0}

    def poisoned(self, pred, target):
        calls["n"] += 1
        terms = original(self, pred, target)
        if calls["n"] == 5:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(AtLocLoss, "terms", poisoned)
    run = tmp_path / "nan"
    cfg = tiny_config(out_dir=str(run), epochs=3, batch_size=4, checkpoint_every_steps=2, log_every=3)
    with pytest.raises(FloatingPointError) as info:
        train(cfg, pose_images(n=12))
    message = str(info.value)
    assert "step 5" in message and "nan" in message and str(run / "last.pt") in message
    state = load_checkpoint(run / "last.pt")
    assert state["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model_state"].values() if v.is_floating_point())


def test_huge_learning_rate_is_caught(tiny_config, pose_images, tmp_path):
    cfg = tiny_config(out_dir=str(tmp_path / "lr"), epochs=20, batch_size=4, lr=1e12, log_every=1,
                      checkpoint_every_steps=1)
    # Adam's first step moves every weight by ~1e12: finite weights, but predictions that overflow,
    # so no checkpoint of this run is good and none is written.
    with pytest.raises(FloatingPointError,
                       match="non-finite predictions on a training batch after step 1 .*checkpoint is none"):
        train(cfg, pose_images(n=8))
    assert not (tmp_path / "lr" / "last.pt").exists()


def test_unreadable_image_mid_dataset_is_reported_by_name(tiny_config, tmp_path, lhs_flight):
    from topoloc.data import TopoFlight

    folder = lhs_flight(tmp_path / "data", n=6)
    (folder / "comballaz-LHS_00004_img.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match="comballaz-LHS_00004_img.png"):
        train(tiny_config(epochs=1, num_workers=1), TopoFlight(tmp_path / "data", "comballaz-LHS"))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"value": torch.tensor([1.0])}, path)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"value": torch.tensor([2.0])}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["value"], torch.tensor([1.0]))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = capture_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


_KILL_SCRIPT = textwrap.dedent("""
    import os, sys, signal, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from conftest import PoseImages
    from topoloc.engine import TrainConfig, train
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs={{"backbone": "test_resnet", "feat_dim": 32}},
                      epochs=2, batch_size=4, image_size=(32, 32), device="cpu", cache_device="cpu",
                      progress=False, tensorboard=False, checkpoint_every_steps=2, augment="colorjitter",
                      out_dir={out!r}, resume=True)
    kill = int(sys.argv[1])
    def cb(event):
        if event["global_step"] == kill:
            os.kill(os.getpid(), signal.SIGKILL)
    train(cfg, PoseImages(n=12), callbacks=[cb] if kill else [])
""")


def test_sigkilled_process_resumes_to_identical_weights(tmp_path):
    """The real thing: SIGKILL a training process mid-epoch, rerun the same command with resume."""
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(tests))}
    outs = {}
    for name, kills in (("whole", [0]), ("killed", [5, 0])):
        script = tmp_path / f"{name}.py"
        script.write_text(_KILL_SCRIPT.format(tests=tests, out=str(tmp_path / name)))
        for kill in kills:
            proc = subprocess.run([sys.executable, str(script), str(kill)], env=env, capture_output=True, text=True)
            expected = -signal.SIGKILL if kill else 0
            assert proc.returncode == expected, proc.stderr[-2000:]
        outs[name] = checkpoint_weights(tmp_path / name / "last.pt")
    assert_same_weights(outs["whole"], outs["killed"])
    assert math.isfinite(float(outs["whole"]["loss.sax"]))


def test_a_run_killed_between_its_two_checkpoint_files_keeps_its_best_checkpoint(tiny_config, pose_images, tmp_path,
                                                                                  monkeypatch):
    # last.pt was written before best.pt: killed between the two, the resumed run found its epochs done and never
    # wrote best.pt (or left an older epoch's there), without a word
    train_module = sys.modules["topoloc.engine.train"]  # the module: `topoloc.engine.train` names the function

    train_set, val_set = pose_images(n=16), pose_images(n=8, seed=1)
    common = dict(epochs=1, batch_size=8, model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), train_set, val_set)
    real_save, written = train_module.save_checkpoint, []

    def killed_after_the_first_file(state, path):
        written.append(os.path.basename(path))
        if len(written) == 2:  # the epoch's second file: the process dies before it is written
            raise Killed(f"killed before {written[-1]}")
        return real_save(state, path)

    run = str(tmp_path / "killed")
    monkeypatch.setattr(train_module, "save_checkpoint", killed_after_the_first_file)
    with pytest.raises(Killed):
        train(tiny_config(out_dir=run, **common), train_set, val_set)
    monkeypatch.undo()
    resumed = train(tiny_config(out_dir=run, resume=True, **common), train_set, val_set)
    assert resumed.best_checkpoint.name == "best.pt"
    assert_same_weights(checkpoint_weights(whole.best_checkpoint), checkpoint_weights(resumed.best_checkpoint))
    assert load_checkpoint(resumed.best_checkpoint)["best"] == load_checkpoint(resumed.final_checkpoint)["best"]


def test_a_resumed_run_keeps_the_best_epoch_of_before_the_kill(tiny_config, pose_images, tmp_path, monkeypatch):
    # The best validation so far goes into every checkpoint: a resumed run whose next epoch validates worse must
    # keep best.pt (a run that forgot it took any later epoch as the best and overwrote best.pt with it).
    from topoloc.engine.train import Trainer

    train_set, val_set = pose_images(n=16), pose_images(n=8, seed=1)
    common = dict(out_dir=str(tmp_path / "run"), batch_size=8,
                  model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    first = train(tiny_config(epochs=1, **common), train_set, val_set)
    before = checkpoint_weights(first.best_checkpoint)
    best = {"epoch": 1, "val_median_m": first.history[0]["val_median_m"],
            "val_median_deg": first.history[0]["val_median_deg"]}
    monkeypatch.setattr(Trainer, "validate", lambda self: (1e6, 180.0))  # epoch 2: far worse
    resumed = train(tiny_config(epochs=2, resume=True, **common), train_set, val_set)
    assert resumed.history[1]["val_median_m"] == 1e6
    assert resumed.best_checkpoint == tmp_path / "run" / "best.pt"
    assert load_checkpoint(resumed.best_checkpoint)["best"] == best
    assert load_checkpoint(resumed.final_checkpoint)["best"] == best
    assert_same_weights(before, checkpoint_weights(resumed.best_checkpoint))



def test_resume_true_continues_from_best_pt_when_last_pt_is_gone(tiny_config, pose_images, tmp_path, caplog):
    # It used to start anew, deleting best.pt, and said the run "stopped before its first checkpoint".
    ds, val = pose_images(n=8), pose_images(n=8, seed=1)
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), epochs=3), ds, val)
    run = tmp_path / "run"
    first = train(tiny_config(out_dir=str(run), epochs=2), ds, val)
    best_epoch = load_checkpoint(run / "best.pt")["epoch"]
    first.final_checkpoint.unlink()  # last.pt, by hand
    with caplog.at_level("WARNING"):
        longer = train(tiny_config(out_dir=str(run), epochs=3, resume=True), ds, val)
    assert "resuming from best.pt" in caplog.text and "removing" not in caplog.text
    assert best_epoch in (1, 2)
    with open(run / "log.csv", newline="") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3]  # each epoch once
    assert_same_weights(checkpoint_weights(whole.final_checkpoint), checkpoint_weights(longer.final_checkpoint))


def test_an_out_dir_that_cannot_be_a_folder_is_refused_by_name_before_the_images_are_decoded(tiny_config, tmp_path):
    # It came after decoding, as "[Errno 17] File exists: '...'" without the setting's name
    (tmp_path / "a-file").write_text("")

    class Untouchable:
        def __len__(self):
            return 8

        def __getitem__(self, i):
            raise AssertionError("decoded before the out_dir was checked")

    for out, why in ((tmp_path / "a-file", "a file, expected a folder"),
                     (tmp_path / "a-file" / "run", "is a file, not a folder")):
        with pytest.raises(ValueError, match=rf"^TrainConfig.out_dir '.*': .*{why}"):
            train(tiny_config(out_dir=str(out), epochs=1), Untouchable())
