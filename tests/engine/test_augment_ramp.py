"""`TrainConfig.augment_ramp_epochs`: the augmentation's strength ramps up by epoch, resumably."""

from __future__ import annotations

import pytest
import torch

from topoloc.engine import load_checkpoint, train
from topoloc.engine.augmentations import AUGMENTATIONS, register_augment
from topoloc.engine.config import TrainConfig, augment_strength_at

from support.killed_runs import Killed, kill_at


def test_strength_by_epoch_worked_by_hand():
    cfg = TrainConfig(augment="simtoreal", augment_strength=0.75, augment_ramp_epochs=4)
    # epoch e (0-based) trains at 0.75 * min(1, (e + 1) / 4): 0.1875, 0.375, 0.5625, 0.75, 0.75
    assert [augment_strength_at(cfg, e) for e in range(5)] == pytest.approx([0.1875, 0.375, 0.5625, 0.75, 0.75])
    flat = TrainConfig(augment="simtoreal", augment_strength=0.75)
    assert [augment_strength_at(flat, e) for e in range(3)] == [0.75, 0.75, 0.75]


def test_refusals():
    with pytest.raises(ValueError, match="augment_ramp_epochs"):
        TrainConfig(augment="simtoreal", augment_ramp_epochs=-1)
    with pytest.raises(ValueError, match="augment_ramp_epochs"):
        TrainConfig(augment="simtoreal", augment_ramp_epochs=2.5)
    with pytest.raises(ValueError, match="augment_ramp_epochs.*callable"):
        TrainConfig(augment=lambda x: x, augment_ramp_epochs=3)


@pytest.fixture
def recording_augment():
    """A registered augmentation that records the strength of each copy built and of each batch it sees."""
    seen: list[float] = []

    class Scale(torch.nn.Module):
        def __init__(self, strength):
            super().__init__()
            self.strength = strength

        def forward(self, x):
            seen.append(self.strength)
            return x * (1 - 0.5 * self.strength)

    register_augment("test-ramp-recorder", Scale)
    yield seen
    del AUGMENTATIONS["test-ramp-recorder"]


def test_each_epoch_trains_at_its_strength(tiny_config, pose_images, tmp_path, recording_augment):
    ds = pose_images(n=16)  # 2 steps per epoch at batch 8
    train(tiny_config(out_dir=str(tmp_path / "r"), epochs=4, augment="test-ramp-recorder", augment_strength=0.8,
                      augment_ramp_epochs=2, val_every=0), ds)
    assert recording_augment == pytest.approx([0.4, 0.4, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])


def test_a_ramp_longer_than_the_run_is_warned_about(tiny_config, pose_images, tmp_path, recording_augment, caplog):
    # a recipe's ramp of 30 epochs under `--override train.epochs=2` would stop at 2 / 30 of the strength
    ds = pose_images(n=16)
    with caplog.at_level("WARNING", logger="topoloc.engine"):
        train(tiny_config(out_dir=str(tmp_path / "r"), epochs=2, augment="test-ramp-recorder", augment_strength=0.6,
                          augment_ramp_epochs=30, val_every=0), ds)
    assert recording_augment[-1] == pytest.approx(0.04)  # 0.6 * 2 / 30
    assert "augment_ramp_epochs (30) is more than epochs (2): the last epoch augments at strength 0.04" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="topoloc.engine"):
        train(tiny_config(out_dir=str(tmp_path / "s"), epochs=2, augment="test-ramp-recorder", augment_strength=0.6,
                          augment_ramp_epochs=2, val_every=0), ds)
    assert "augment_ramp_epochs" not in caplog.text


def test_a_ramp_of_an_augmentation_without_strength_is_warned_about(tiny_config, pose_images, tmp_path, caplog):
    # e.g. a recipe's augmented run with `--override train.augment=none`: the ramp had gone unsaid
    ds = pose_images(n=8)
    for k, augment in enumerate((None, "colorjitter")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="topoloc.engine"):
            train(tiny_config(out_dir=str(tmp_path / str(k)), epochs=1, augment=augment, augment_ramp_epochs=1,
                              val_every=0), ds)
        assert f"augment_ramp_epochs (1) ramps nothing: augment {augment!r} has no strength" in caplog.text


def test_killed_ramped_run_resumes_to_identical_weights(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=20)
    common = dict(epochs=3, batch_size=6, checkpoint_every_steps=3, augment="simtoreal", augment_strength=1.0,
                  augment_ramp_epochs=3, lr=1e-3,
                  model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.5})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    flat = train(tiny_config(out_dir=str(tmp_path / "flat"), **{**common, "augment_ramp_epochs": 0}), ds)
    a, b = load_checkpoint(whole.final_checkpoint)["model_state"], load_checkpoint(flat.final_checkpoint)["model_state"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the ramp changes the training
    run = str(tmp_path / "killed")
    with pytest.raises(Killed):  # after step 8: epoch 2 of 3, mid-epoch; the last checkpoint is at step 6
        train(tiny_config(out_dir=run, **common), ds, callbacks=[kill_at(8)])
    resumed = train(tiny_config(out_dir=run, resume=True, **common), ds)
    c = load_checkpoint(resumed.final_checkpoint)["model_state"]
    assert all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="augment_ramp_epochs"):  # a resume with another ramp is refused
        train(tiny_config(out_dir=run, resume=True, **{**common, "epochs": 4, "augment_ramp_epochs": 2}), ds)


@pytest.fixture
def drawing_augment():
    """A registered augmentation that draws from torch's RNG when built and when applied."""

    class Noise(torch.nn.Module):
        def __init__(self, strength):
            super().__init__()
            self.strength = strength
            self.offset = float(torch.rand(()))  # a draw at construction

        def forward(self, x):
            return (x + self.strength * 0.1 * (torch.rand_like(x) - 0.5 + self.offset)).clamp(0, 1)

    register_augment("test-drawing-ramp", Noise)
    yield "test-drawing-ramp"
    del AUGMENTATIONS["test-drawing-ramp"]


def test_killed_ramped_run_of_an_augment_that_draws_when_built_resumes_to_identical_weights(
        tiny_config, pose_images, tmp_path, drawing_augment):
    # The ramp rebuilds the augmentation at each epoch's start. What it draws when built came from the RNG state
    # there, which a run resumed mid-epoch does not have (it rebuilds it from the checkpoint's state): epoch 2
    # trained on another offset, and the resumed run ended elsewhere. Nor may the build shift the steps' draws.
    ds = pose_images(n=20)
    common = dict(epochs=3, batch_size=6, checkpoint_every_steps=3, augment=drawing_augment, augment_strength=1.0,
                  augment_ramp_epochs=3, lr=1e-3,
                  model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    run = str(tmp_path / "killed")
    with pytest.raises(Killed):  # after step 8: epoch 2, mid-epoch; the last checkpoint is at step 6
        train(tiny_config(out_dir=run, **common), ds, callbacks=[kill_at(8)])
    resumed = train(tiny_config(out_dir=run, resume=True, **common), ds)
    a, b = (load_checkpoint(p)["model_state"] for p in (whole.final_checkpoint, resumed.final_checkpoint))
    assert all(torch.equal(a[k], b[k]) for k in a)
