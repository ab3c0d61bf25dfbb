"""What a run watches of its steps: losses summed across reports, speed, non-finite losses and models."""

import math
import time

import pytest
import torch
from torch import nn

from topoloc.engine.meter import (StepMeter, epoch_row, first_non_finite, non_finite_loss_error,
                                  non_finite_model_error, predicts_finite, progress_bar, weights_finite)


def _terms(loss, t_l1, q_l1):
    return {"loss": torch.tensor(loss), "t_l1": torch.tensor(t_l1), "q_l1": torch.tensor(q_l1)}


def test_each_report_adds_its_steps_to_the_epochs_sums():
    meter = StepMeter(torch.device("cpu"), world_size=1)
    stats = {"loss": 0.0, "t_loss": 0.0, "q_loss": 0.0}
    meter.add(0, _terms(1.0, 2.0, 3.0), images=8)
    meter.drain_into(stats)
    meter.add(1, _terms(4.0, 5.0, 6.0), images=8)
    meter.drain_into(stats)
    assert stats == {"loss": 5.0, "t_loss": 7.0, "q_loss": 9.0, "scene_loss": 0.0}  # 1 + 4, 2 + 5, 3 + 6; no head


def test_the_scene_coordinate_heads_loss_is_summed_too():
    meter = StepMeter(torch.device("cpu"), world_size=1)
    stats = {"loss": 0.0, "t_loss": 0.0, "q_loss": 0.0}  # a mid-epoch checkpoint's sums from before the column
    meter.add(0, {**_terms(1.0, 2.0, 3.0), "scene_loss": torch.tensor(0.25, requires_grad=True)}, images=8)
    meter.add(1, {**_terms(1.0, 2.0, 3.0), "scene_loss": torch.tensor(0.5)}, images=8)
    meter.drain_into(stats)
    assert stats["scene_loss"] == 0.75


def test_images_per_second_counts_every_process_images():
    meter = StepMeter(torch.device("cpu"), world_size=2)
    meter.add(0, _terms(1.0, 1.0, 1.0), images=8)
    meter.add(1, _terms(1.0, 1.0, 1.0), images=8)
    meter.tic = time.perf_counter() - 1000.0  # the epoch began 1000 s ago
    # 2 steps x 8 images on each of 2 processes in 1000 s
    assert meter.images_per_s() == pytest.approx(32 / 1000.0, rel=1e-3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_the_first_non_finite_loss_is_found_nan_or_infinite(bad):
    pending = [(10, torch.tensor(1.0)), (11, torch.tensor(bad)), (12, torch.tensor(float("nan")))]
    step, value = first_non_finite(pending)
    assert step == 11 and (math.isnan(value) if math.isnan(bad) else value == bad)
    assert first_non_finite([(10, torch.tensor(1.0))]) is None


def test_the_errors_count_epochs_from_one():
    loss = non_finite_loss_error((7, float("nan")), epoch=0, last_good=None, lr=1e-4)
    assert "loss nan at step 7 (epoch 1)" in str(loss)
    model = non_finite_model_error("non-finite weights", epoch=2, global_step=30, last_good=None)
    assert "non-finite weights after step 30 (epoch 3)" in str(model)


def test_one_non_finite_weight_makes_the_weights_non_finite():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert weights_finite(model)
    with torch.no_grad():
        model[1].weight[0, 1] = float("inf")
    assert not weights_finite(model)


class _Net(nn.Module):
    """uint8 images -> their per-channel mean; NaN everywhere in training mode, or in ``bad`` channels."""

    def __init__(self, bad=()):
        super().__init__()
        self.bad = list(bad)

    def prepare(self, images):
        return images.float() / 255.0

    def forward(self, x):
        out = x.mean((2, 3))
        out[:, self.bad] = float("nan")
        return out * float("nan") if self.training else out


def test_predictions_are_checked_in_eval_mode_and_the_mode_is_restored():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    model = _Net().eval()
    assert predicts_finite(model, images, autocast=False) and not model.training
    model.train()
    assert predicts_finite(model, images, autocast=False) and model.training


def test_one_non_finite_prediction_makes_the_predictions_non_finite():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    assert not predicts_finite(_Net(bad=[1]).eval(), images, autocast=False)


def test_a_resumed_epochs_bar_starts_at_its_first_step():
    pytest.importorskip("tqdm")
    bar = progress_bar(epoch=1, epochs=3, first=4, steps_per_epoch=10)
    try:
        assert (bar.n, bar.total, bar.desc) == (4, 10, "epoch 2/3")
    finally:
        bar.close()


def test_the_epochs_row_holds_the_learning_rate_of_the_step_and_its_time():
    criterion = nn.Module()
    criterion.sax, criterion.saq = nn.Parameter(torch.tensor(0.0)), nn.Parameter(torch.tensor(-3.0))
    optimizer = torch.optim.SGD([criterion.sax], lr=1e-3)
    optimizer.param_groups[0]["lr"] = 2.5e-4  # as a schedule leaves it: no longer the initial 1e-3
    stats = {"loss": 8.0, "t_loss": 4.0, "q_loss": 2.0, "steps": 4, "images_per_s": 12.5, "time_s": 30.0}
    row = epoch_row(1, 20, stats, criterion, optimizer)
    assert row["lr"] == 2.5e-4 and row["time_s"] == 30.0 and row["images_per_s"] == 12.5
    assert (row["epoch"], row["step"], row["loss"], row["t_loss"], row["q_loss"]) == (2, 20, 2.0, 1.0, 0.5)
    assert (row["sx"], row["sq"]) == (0.0, -3.0)


def test_predictions_are_checked_under_the_autocast_the_steps_use():
    class Recording(_Net):
        def forward(self, x):
            self.matmul_dtype = (x.flatten(1) @ torch.ones(x[0].numel(), 1)).dtype
            return super().forward(x)

    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    model = Recording().eval()
    assert predicts_finite(model, images, autocast=True) and model.matmul_dtype == torch.bfloat16
    assert predicts_finite(model, images, autocast=False) and model.matmul_dtype == torch.float32
