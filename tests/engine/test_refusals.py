"""What training and evaluation refuse: changed resumes, overwritten runs, wrong frames, bad checkpoints."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml

from topoloc.engine import TrainConfig, train
from topoloc.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from topoloc.data.cache import ImageCache
from topoloc.engine.predict import predict
from topoloc.geodesy import LocalFrame


def _darken(x):
    """A callable augmentation (its name is what config.yaml records)."""
    return x * 0.5


# ----------------------------------------------------------------------------------- resume rules
def test_resume_without_the_callable_augment_is_refused(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1, augment=_darken), ds)
    assert yaml.safe_load((run / "config.yaml").read_text())["augment"] == "callable:_darken"
    with pytest.raises(ValueError, match=r"augment: 'callable:_darken' -> None") as info:
        train(tiny_config(out_dir=str(run), epochs=2, resume=True), ds)
    assert "resume_changes='allow'" in str(info.value)
    # The run's record is untouched: config.yaml still says how its first steps were trained.
    assert yaml.safe_load((run / "config.yaml").read_text())["augment"] == "callable:_darken"
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    # Resuming with the callable again is the same run.
    again = train(tiny_config(out_dir=str(run), epochs=2, resume=True, augment=_darken), ds)
    assert len(again.history) == 2 and not (run / "config_changes.log").exists()


CHANGES = {"lr": 1e-3, "augment": "colorjitter", "augment_strength": 0.5, "weight_decay": 0.0,
           "lr_schedule": "cosine", "grad_clip": 1.0, "batch_size": 4, "seed": 3, "augment_fraction": 0.5,
           "model_kwargs": {"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.1}}


def test_resume_with_changed_training_settings_is_refused_naming_each(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1), ds)
    before = (run / "config.yaml").read_text()
    base = tiny_config(out_dir=str(run))
    for field, value in CHANGES.items():
        with pytest.raises(ValueError, match="other settings") as info:
            train(tiny_config(out_dir=str(run), epochs=2, resume=True, **{field: value}), ds)
        old = getattr(base, field) if field != "model_kwargs" else base.model_kwargs
        assert f"{field}: {old!r} -> {value!r}" in str(info.value), field
    with pytest.raises(ValueError, match=r"lr: 5e-05 -> 0.001; grad_clip: None -> 2.0"):
        train(tiny_config(out_dir=str(run), epochs=2, resume=True, lr=1e-3, grad_clip=2.0), ds)
    assert (run / "config.yaml").read_text() == before


def test_resume_on_other_training_images_is_refused(tiny_config, pose_images, tmp_path):
    # `topoloc train --resume` with another data.train trained epoch 2 on other images without a word
    run = tmp_path / "run"
    ds = pose_images(n=8, seed=0)
    train(tiny_config(out_dir=str(run), epochs=1), ds)
    for other in (pose_images(n=8, seed=1), pose_images(n=16, seed=0)):  # same count, other images; more images
        with pytest.raises(ValueError, match=r"other settings; training data: '8 images, poses and pixels sha256 "):
            train(tiny_config(out_dir=str(run), epochs=2, resume=True), other)
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert len(train(tiny_config(out_dir=str(run), epochs=2, resume=True), pose_images(n=8, seed=0)).history) == 2
    # allowed at an epoch's end, and logged
    train(tiny_config(out_dir=str(run), epochs=3, resume=True, resume_changes="allow"), pose_images(n=16, seed=0))
    assert "training data: '8 images" in (run / "config_changes.log").read_text()


def test_allowed_change_is_logged_in_the_run_folder(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1), ds)
    result = train(tiny_config(out_dir=str(run), epochs=2, resume=True, lr=1e-3, resume_changes="allow"), ds)
    assert len(result.history) == 2 and result.history[1]["lr"] == pytest.approx(1e-3)
    log = (run / "config_changes.log").read_text()
    assert "at global step 1" in log and "lr: 5e-05 -> 0.001" in log
    assert yaml.safe_load((run / "config.yaml").read_text())["lr"] == pytest.approx(1e-3)


def test_longer_cosine_run_changes_the_schedule(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1, lr_schedule="cosine"), ds)
    with pytest.raises(ValueError, match="epochs: 1 -> 2"):
        train(tiny_config(out_dir=str(run), epochs=2, lr_schedule="cosine", resume=True), ds)


def test_a_cosine_run_resumed_with_another_batch_size_decays_over_what_is_left(tiny_config, pose_images, tmp_path):
    # the schedule read the global step counted in the old batches: 4 steps of batch 4, then 2 per epoch of batch 8,
    # put the resumed epochs at the end of a 6-step schedule, both at the floor (lr / 100)
    run = tmp_path / "run"
    ds = pose_images(n=16)
    train(tiny_config(out_dir=str(run), epochs=1, batch_size=4, lr=1e-3, lr_schedule="cosine"), ds)
    result = train(tiny_config(out_dir=str(run), epochs=3, batch_size=8, lr=1e-3, lr_schedule="cosine", resume=True,
                               resume_changes="allow"), ds)
    # in batches of 8: 2 steps per epoch, 6 in all; epoch 2 ends at step 3 of them, epoch 3 at step 5 (0-based)
    cosine = [1e-3 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * k / 5))) for k in (3, 5)]
    assert [row["lr"] for row in result.history[1:]] == pytest.approx(cosine, rel=1e-6)
    assert cosine[0] == pytest.approx(3.52e-4, rel=1e-3)


def test_fewer_epochs_than_the_checkpoint_reached_are_refused_under_a_constant_schedule(tiny_config, pose_images,
                                                                                      tmp_path):
    # under a constant schedule `epochs` may grow on a resume; shrunk below the checkpoint, the run "finished" at once
    # with a checkpoint of a later epoch, its config.yaml and log.csv saying otherwise
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=2), ds)
    with pytest.raises(ValueError, match=r"is already in epoch 2 \(0-based step 0 of epoch 2\); epochs=1 would end "
                                         r"the run with a checkpoint from later than its last epoch$"):
        train(tiny_config(out_dir=str(run), epochs=1, resume=True), ds)
    assert len(train(tiny_config(out_dir=str(run), epochs=3, resume=True), ds).history) == 3  # more: as before


def test_mid_epoch_checkpoint_refuses_another_batch_size_even_when_allowed(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=16)
    train(tiny_config(out_dir=str(run), epochs=1, batch_size=4), ds)
    state = load_checkpoint(run / "last.pt")
    state["epoch"], state["step"], state["global_step"] = 0, 2, 2  # as if killed after step 2
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, run / "last.pt")
    with pytest.raises(ValueError, match="mid-epoch"):
        train(tiny_config(out_dir=str(run), epochs=1, batch_size=8, resume=True, resume_changes="allow"), ds)


# ----------------------------------------------------------------------------------- run folders
def test_new_run_into_a_finished_run_folder_is_refused(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    first = train(tiny_config(out_dir=str(run), epochs=1), pose_images(n=8), pose_images(n=4, seed=1))
    assert (run / "best.pt").is_file()
    files = {n: (run / n).read_bytes() for n in ("config.yaml", "last.pt", "best.pt", "log.csv")}
    with pytest.raises(FileExistsError, match="holds another run.*overwrite=True"):
        train(tiny_config(out_dir=str(run), epochs=1, lr=1e-3), pose_images(n=8))
    assert {n: (run / n).read_bytes() for n in files} == files  # nothing touched
    # overwrite=True replaces the run's files together: no stale best.pt of the old run beside the new one.
    second = train(tiny_config(out_dir=str(run), epochs=1, lr=1e-3, overwrite=True), pose_images(n=8))
    assert not (run / "best.pt").exists() and second.best_checkpoint == run / "last.pt"
    assert len((run / "log.csv").read_text().strip().splitlines()) == 2
    assert first.final_checkpoint == second.final_checkpoint


def test_overwrite_keeps_the_previous_run_when_the_new_one_is_refused_while_set_up(tiny_config, pose_images, tmp_path):
    # overwrite=True removed the previous run's files first: a new run then refused (here its model cannot be
    # built, after its images were decoded) had replaced the old run by nothing
    run = tmp_path / "run"
    train(tiny_config(out_dir=str(run), epochs=1), pose_images(n=8), pose_images(n=4, seed=1))
    files = {n: (run / n).read_bytes() for n in ("config.yaml", "last.pt", "best.pt", "log.csv")}
    with pytest.raises(Exception, match="no_such_backbone"):
        train(tiny_config(out_dir=str(run), epochs=1, overwrite=True, model_kwargs={"backbone": "no_such_backbone"}),
              pose_images(n=8))
    assert {n: (run / n).read_bytes() for n in files} == files


def test_stale_checkpoint_temporaries_of_dead_processes_are_removed(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = run / f".last.pt.{dead.pid}.tmp"
    alive = run / f".last.pt.{os.getppid()}.tmp"
    stale.write_bytes(b"x" * 100)
    alive.write_bytes(b"y")
    train(tiny_config(out_dir=str(run), epochs=1, resume=True), pose_images(n=8))
    assert not stale.exists() and alive.exists()


# ----------------------------------------------------------------------------------- checkpoints
def test_last_good_checkpoint_predicts_finite_poses(tiny_config, pose_images, tmp_path, monkeypatch):
    original = torch.optim.Adam.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:  # finite, but far too large weights after the 4th step
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.fill_(1e9)
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    run = tmp_path / "run"
    cfg = tiny_config(out_dir=str(run), epochs=3, batch_size=4, checkpoint_every_steps=2, log_every=1)
    with pytest.raises(FloatingPointError, match="non-finite predictions on a training batch after step 4") as info:
        train(cfg, pose_images(n=12))
    assert str(run / "last.pt") in str(info.value)
    state = load_checkpoint(run / "last.pt")
    assert state["global_step"] == 3  # the end of epoch 1 (3 steps of 4 images), before the weights blew up
    monkeypatch.setattr(torch.optim.Adam, "step", original)
    model, normalizer, _ = load_model(run / "last.pt")
    assert torch.isfinite(predict(model, pose_images(n=4), normalizer)).all()


def test_checkpoint_records_frame_and_image_size(tiny_config, tmp_path, lhs_flight):
    from topoloc.data import TopoFlight

    lhs_flight(tmp_path / "data", n=6)
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1, image_size=(16, 24)),
                   TopoFlight(tmp_path / "data", "comballaz-LHS"))
    state = load_checkpoint(result.final_checkpoint)
    assert state["frame"] == {"name": "comballaz", "lat_deg": 46.3705, "lon_deg": 7.065, "h_m": 1410.0}
    model, _, _ = load_model(result.final_checkpoint)
    assert model.config["image_size"] == [16, 24] and model.config["frame"]["name"] == "comballaz"


def test_predict_without_image_size_uses_the_trained_size(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=4, size_hw=(40, 48))
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1, image_size=(32, 32)), pose_images(n=8))
    model, normalizer, cfg = load_model(result.final_checkpoint)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = predict(model, ds, normalizer)
    assert seen == [(32, 32)]
    assert torch.equal(default, predict(model, ds, normalizer, image_size=cfg.image_size))
    # A model that records no size (a pre-contract model): an explicit size, or an error naming the argument
    # (it used to run silently at the images' own size).
    del model.config["image_size"]
    with pytest.raises(ValueError, match="predict: `image_size` is needed"):
        predict(model, ds, normalizer)
    predict(model, ds, normalizer, image_size=(40, 48))
    assert seen[-1] == (40, 48)


def test_predict_feeds_channels_last_on_the_cpu_and_agrees_with_nchw(tiny_config, pose_images, tmp_path):
    # channels_last is a memory layout, not a change of the computation: the poses agree to float rounding
    ds = pose_images(n=6)
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1, device="cpu"), pose_images(n=8))
    model, normalizer, _ = load_model(result.final_checkpoint)
    layouts = []
    model.register_forward_pre_hook(
        lambda module, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)
                                            and not args[0].is_contiguous()))
    default, nchw = predict(model, ds, normalizer), predict(model, ds, normalizer, channels_last=False)
    assert layouts == [True, False]
    torch.testing.assert_close(default, nchw, rtol=0, atol=1e-4)


def test_override_numbers_parse_as_written(tmp_path):
    from topoloc.experiments.recipe import apply_overrides, load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  root: d\n  train: [{flight: comballaz-LHS}]\n  test: [{flight: comballaz-LHS}]\n"
                      "train:\n  model: atloc_resnet18\n  weight_decay: 1e-4\n")
    with pytest.warns(UserWarning, match="are training rows of data.train"):  # the recipe tests on its training rows
        loaded = load_recipe(recipe, ["train.lr=5e-5", "train.epochs=5"])
    assert loaded.train.lr == 5e-5 and loaded.train.weight_decay == 1e-4 and loaded.train.epochs == 5
    assert (apply_overrides({}, ["a.b=1E3", "a.c=5e", "a.d=[1e-3, 2]"])
            == {"a": {"b": 1000.0, "c": "5e", "d": [0.001, 2]}})
    assert TrainConfig.from_yaml(_write(tmp_path / "c.yaml", "lr: 3e-4\n")).lr == 3e-4


def _write(path, text):
    path.write_text(text)
    return path


def test_evaluate_refuses_another_frame_and_warns_without_one(tiny_config, tmp_path, lhs_flight):
    from topoloc.data import TopoFlight
    from topoloc.experiments.recipe import evaluate_checkpoint

    data = tmp_path / "data"
    lhs_flight(data, n=6)
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), TopoFlight(data, "comballaz-LHS"))
    with pytest.raises(ValueError, match="trained in the comballaz frame, not in epfl"):
        evaluate_checkpoint(result.final_checkpoint, data, ["comballaz-LHS"], tmp_path / "eval", frame="epfl",
                            device="cpu", retrieval=False)
    # A checkpoint written before frames were recorded: evaluated, with a warning.
    state = load_checkpoint(result.final_checkpoint)
    del state["frame"]
    old = save_checkpoint({k: v for k, v in state.items() if k != "format"}, tmp_path / "old" / "last.pt")
    with pytest.warns(UserWarning, match="does not record the local frame"):
        report = evaluate_checkpoint(old, data, ["comballaz-LHS"], tmp_path / "eval", device="cpu", retrieval=False)
    assert report.is_file()


def test_checkpoint_predating_a_field_resumes_with_its_default(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    ds = pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1), ds)
    state = load_checkpoint(run / "last.pt")
    del state["config"]["augment_fraction"]  # written before the field existed
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, run / "last.pt")
    assert len(train(tiny_config(out_dir=str(run), epochs=2, resume=True), ds).history) == 2


def test_resume_refuses_another_frame_and_not_a_rounding_of_the_same(tiny_config, pose_images, tmp_path):
    run = tmp_path / "run"
    data = pose_images(n=8)
    data.frame = LocalFrame.named("comballaz")
    train(tiny_config(out_dir=str(run), epochs=1), data)
    data.frame = LocalFrame.named("epfl")
    with pytest.raises(ValueError, match="frame"):
        train(tiny_config(out_dir=str(run), epochs=2, resume=True), data)
    # The same origin up to a few ulps (as a frame recomputed with other float rounding): the same frame,
    # as `evaluate` and `init_from` judge it (1e-9 deg / m).
    same = LocalFrame.named("comballaz")
    data.frame = LocalFrame(same.lat_deg, same.lon_deg, same.h_m + 1e-12)
    assert data.frame.h_m != same.h_m
    assert len(train(tiny_config(out_dir=str(run), epochs=2, resume=True), data).history) == 2


def test_a_validation_set_in_another_local_frame_is_refused_before_anything_is_written(tiny_config, pose_images,
                                                                                        tmp_path):
    # was accepted: validation compared positions about the training origin with poses about another one, so its
    # medians were off by up to the distance between the origins, and best.pt was chosen on them
    from pyproj import Transformer

    train_set, val_set = pose_images(n=8), pose_images(n=8, seed=1)
    train_set.frame = LocalFrame.named("comballaz")  # lat 46.3705, lon 7.065, h 1410 m
    val_set.frame = LocalFrame(46.3705, 7.070, 1410.0)  # 0.005 deg of longitude east: about 384 m
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    a = np.array(to_ecef.transform(7.065, 46.3705, 1410.0))
    b = np.array(to_ecef.transform(7.070, 46.3705, 1410.0))
    apart_m = np.linalg.norm(a - b)
    assert 380 < apart_m < 390  # 0.005 deg x 111.32 km x cos(46.37 deg) = 384 m, the chord a hair shorter
    run = tmp_path / "run"
    expected = (rf"^val_set: its poses are in the local frame lat 46.3705, lon 7.07, h 1410.0 m, the training set's "
                rf"in 'comballaz' \(origins {apart_m:,.0f} m apart\)")
    with pytest.raises(ValueError, match=expected):
        train(tiny_config(out_dir=str(run), epochs=1), train_set, val_set)
    assert not run.exists()
    # the same origin given by value is the same frame
    val_set.frame = LocalFrame(46.3705, 7.065, 1410.0)
    assert len(train(tiny_config(out_dir=str(run), epochs=1), train_set, val_set).history) == 1


def test_a_normalizer_of_another_type_is_named_before_anything_is_written(tiny_config, pose_images, tmp_path):
    # was AttributeError: 'str' object has no attribute 'rotation', after the images were decoded
    from topoloc.data.normalize import PoseNormalizer

    run, data = tmp_path / "run", pose_images(n=8)
    for wrong in ("comballaz", PoseNormalizer.fit(data.poses()).state_dict()):
        expected = rf"^train: `normalizer` must be a PoseNormalizer .* got {type(wrong).__name__}$"
        with pytest.raises(TypeError, match=expected):
            train(tiny_config(out_dir=str(run), epochs=1), data, normalizer=wrong)
        assert not run.exists()
    # a PoseNormalizer is taken as given: mean 20 m, std 10 m on every axis, by hand
    given = PoseNormalizer((20.0, 20.0, 20.0), (10.0, 10.0, 10.0), rotation="6d")
    result = train(tiny_config(out_dir=str(run), epochs=1), data, normalizer=given)
    assert load_checkpoint(result.final_checkpoint)["normalizer"]["mean_m"] == [20.0, 20.0, 20.0]


def test_callbacks_that_are_not_a_list_of_callables_are_named_before_anything_is_written(tiny_config, pose_images,
                                                                                         tmp_path):
    # were Python's own TypeErrors: "'builtin_function_or_method' object is not iterable" for a single function,
    # and "'int' object is not callable" after the first step, leaving config.yaml and log.csv in the run folder
    run, data = tmp_path / "run", pose_images(n=8)
    for wrong, expected in ((print, r"^train: `callbacks` must be a list of callables, got the single callable "
                                    r"<built-in function print>: pass \[it\]$"),
                            ([print, 1], r"^train: `callbacks\[1\]` must be callable .* got int 1$"),
                            ("print", r"^train: `callbacks` must be a list of callables, got str$")):
        with pytest.raises(TypeError, match=expected):
            train(tiny_config(out_dir=str(run), epochs=1), data, callbacks=wrong)
        assert not run.exists()
    # a tuple and a generator are lists enough: each callback sees every step, 8 images in batches of 4
    seen = []
    train(tiny_config(out_dir=str(run), epochs=1, batch_size=4), data, callbacks=(seen.append for _ in range(1)))
    assert [info["global_step"] for info in seen] == [1, 2]


def test_a_last_batch_of_one_image_that_batch_norm_cannot_train_on_is_refused_before_training(tiny_config,
                                                                                              pose_images, tmp_path):
    # failed at the epoch's last step with torch's "Expected more than 1 value per channel when training", leaving
    # config.yaml and log.csv behind
    run, data = tmp_path / "run", pose_images(n=9, size_hw=(32, 32))  # 9 images in batches of 8: a last batch of 1
    with pytest.raises(ValueError, match=r"^TrainConfig: 9 training images in batches of 8 end each epoch in a batch "
                                         r"of one image, and at image_size \(32, 32\) the batch norm '[\w.]+' sees "
                                         r"\(\d+, 1, 1\) \(one value per channel\).* Set drop_last=True"):
        train(tiny_config(out_dir=str(run), epochs=1, batch_size=8), data)
    assert not run.exists() or not any(run.iterdir())
    # drop_last: 9 // 8 = 1 step an epoch; at 64 x 64 px the last feature map is 2 x 2, so the single image trains
    # on its 4 pixels: ceil(9 / 8) = 2 steps
    assert train(tiny_config(out_dir=str(run), epochs=1, batch_size=8, drop_last=True), data).history[-1]["step"] == 1
    big = tiny_config(out_dir=str(tmp_path / "big"), epochs=1, batch_size=8, image_size=(64, 64))
    assert train(big, data).history[-1]["step"] == 2


def test_batches_of_one_image_that_batch_norm_cannot_train_on_are_refused_before_training(tiny_config, pose_images,
                                                                                          tmp_path):
    # batch_size 1 passed the last-batch check (n % 1 == 0) and failed at the first step with torch's error, leaving
    # config.yaml and log.csv behind, so that the same command was then refused as "another run"
    run, data = tmp_path / "run", pose_images(n=4, size_hw=(32, 32))
    for drop_last in (False, True):
        with pytest.raises(ValueError, match=r"^TrainConfig: batches of one image, and at image_size \(32, 32\) "
                                             r"the batch norm '[\w.]+' sees \(\d+, 1, 1\) .* Set a batch_size of "
                                             r"at least 2"):
            train(tiny_config(out_dir=str(run), epochs=1, batch_size=1, drop_last=drop_last), data)
        assert not run.exists() or not any(run.iterdir())
    # at 64 x 64 px the last feature map is 2 x 2: one image a step trains on its 4 pixels
    big = tiny_config(out_dir=str(tmp_path / "big"), epochs=1, batch_size=1, image_size=(64, 64))
    assert train(big, data).history[-1]["step"] == 4


def test_a_resume_refuses_a_normalizer_other_than_its_checkpoints(tiny_config, pose_images, tmp_path):
    # was ignored without a word: the run went on with the checkpoint's normaliser
    from topoloc.data.normalize import PoseNormalizer

    run, data = tmp_path / "run", pose_images(n=8)
    train(tiny_config(out_dir=str(run), epochs=1), data)
    _, saved, _ = load_model(run / "last.pt")
    # the checkpoint's is fitted to the poses: their mean and population std, by numpy
    xyz = data.poses()[:, :3, 3]
    np.testing.assert_allclose(saved.mean_m, xyz.mean(0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(saved.std_m, xyz.std(0), rtol=0, atol=1e-9)
    other = PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), saved.reference_rotation, saved.rotation)
    with pytest.raises(ValueError, match=r"^normalizer: the run resumes from '.*last\.pt', whose weights were trained "
                                         r"with its own normaliser \(mean \(\d.*\) m, std .*\), not the one given "
                                         r"\(mean \(0\.0, 0\.0, 0\.0\) m, std \(1\.0, 1\.0, 1\.0\) m, '6d'\)"):
        train(tiny_config(out_dir=str(run), epochs=2, resume=True), data, normalizer=other)
    assert load_checkpoint(run / "last.pt")["epoch"] == 1  # the run as it was
    # its own normaliser, given again, resumes
    assert len(train(tiny_config(out_dir=str(run), epochs=2, resume=True), data, normalizer=saved).history) == 2


def test_an_empty_validation_set_is_named_as_such(tiny_config, pose_images, tmp_path):
    # was "ImageCache.from_dataset: the dataset PoseImages is empty": which of the two sets?
    with pytest.raises(ValueError, match=r"^validation set: .*is empty"):
        train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), pose_images(n=8), pose_images(n=0))


def test_an_empty_training_set_is_named_as_such_and_leaves_no_run_folder_behind(tiny_config, pose_images, tmp_path):
    # was "ImageCache.from_dataset: the dataset PoseImages is empty", and for an empty ImageCache "0 training
    # images give no full batch of 4 per process"
    empty_cache = ImageCache(torch.zeros(0, 3, 16, 24, dtype=torch.uint8), torch.zeros(0, 4, 4))
    for data in (pose_images(n=0), empty_cache):
        with pytest.raises(ValueError, match=rf"^train_set: the dataset {type(data).__name__} is empty: nothing to "
                                             r"train on"):
            train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1), data, pose_images(n=8))
        assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_files_that_are_not_topoloc_checkpoints_are_named_in_one_plain_line(tmp_path):
    """A text file, and a torch file holding pickled Python objects (which weights-only loading refuses with many
    lines of advice to load it unsafely, in terminal colours): each one line saying what the file is."""
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    with pytest.raises(ValueError) as err:
        load_checkpoint(text)
    assert str(err.value).startswith(f"load_checkpoint: could not read '{text}' as a torch checkpoint: not a file "
                                     "written by torch.save (")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": argparse.Namespace(a=1)}, pickled)  # a class that weights-only loading refuses
    with pytest.raises(ValueError) as err:
        load_checkpoint(pickled)
    message = str(err.value)
    assert message == (f"load_checkpoint: could not read '{pickled}' as a torch checkpoint: it holds Python objects "
                       "beyond tensors and plain data, which topoloc's checkpoints never do; it is not loaded "
                       "(unpickling such objects can run code)")
    assert "\x1b" not in message and "\n" not in message


@pytest.mark.parametrize("name, head", [("config.yaml", b"model: atloc_resnet18\n"),
                                        ("photo.JPG", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
                                        ("poses.npy", b"\x93NUMPY\x01\x00v\x00")])
def test_a_run_s_other_files_given_as_the_checkpoint_are_named_as_no_torch_file_not_as_pickled_objects(
        tmp_path, name, head):
    # was "it holds Python objects beyond tensors and plain data, ... (unpickling such objects can run code)" for
    # the config.yaml beside last.pt, a photo or a pose file: weights-only loading refuses any byte it cannot
    # read as a pickle with the same advice as a pickle of Python objects
    path = tmp_path / name
    path.write_bytes(head + b"\x00" * 64)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    assert str(err.value) == (f"load_checkpoint: could not read '{path}' as a torch checkpoint: not a file written "
                              f"by torch.save (it starts with {head[:4]!r}; torch.save writes a zip archive, "
                              "b'PK\\x03\\x04')")
