"""The cosine learning-rate schedule, against the formula worked by hand."""

import math

import pytest

from topoloc.engine import TrainConfig, train
from topoloc.engine.config import scheduled_lr


def test_cosine_by_hand():
    cfg = TrainConfig(model="atloc_resnet18", lr=1e-3, lr_schedule="cosine")
    # lr * (0.01 + 0.99 * (1 + cos(pi * t / (T - 1))) / 2) over T = 11 steps
    assert scheduled_lr(cfg, 0, 11) == pytest.approx(1e-3)
    assert scheduled_lr(cfg, 5, 11) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert scheduled_lr(cfg, 10, 11) == pytest.approx(1e-5)
    assert scheduled_lr(cfg, 2, 11) == pytest.approx(1e-3 * (0.01 + 0.99 * (1 + math.cos(math.pi * 0.2)) / 2))


def test_constant_is_the_default():
    cfg = TrainConfig(model="atloc_resnet18", lr=5e-5)
    assert cfg.lr_schedule == "constant"
    assert {scheduled_lr(cfg, t, 100) for t in (0, 50, 99)} == {5e-5}


def test_bad_schedule_names_the_field():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(model="atloc_resnet18", lr_schedule="step")


def test_training_follows_the_schedule(tiny_config, pose_images):
    # 2 epochs of 3 steps (18 images, batch 6): the last epoch's logged lr is that of the last step (5 of 6).
    result = train(tiny_config(epochs=2, batch_size=6, lr=1e-2, lr_schedule="cosine"), pose_images(n=18))
    assert result.history[-1]["lr"] == pytest.approx(1e-4)
    assert result.history[0]["lr"] == pytest.approx(1e-2 * (0.01 + 0.99 * (1 + math.cos(math.pi * 2 / 5)) / 2))
