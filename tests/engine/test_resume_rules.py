"""The resume rules of `topoloc.engine.resume` by hand: what a resume compares, refuses and logs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from topoloc.engine import TrainConfig
from topoloc.engine.distributed import DistInfo
from topoloc.engine.resume import ResumeSettingsError, accept_changes, config_changes, restore_training_state


def _checkpoint(config: TrainConfig, epoch: int = 1, step: int = 0, global_step: int = 4, **fields) -> SimpleNamespace:
    """The parts of a `TrainingState` the rules read: a run of ``config`` after ``global_step`` steps."""
    return SimpleNamespace(path=Path("run/last.pt"), config=config.to_dict(), frame=None, training_data=None,
                           epoch=epoch, step=step, global_step=global_step, **fields)


# One new value of each setting the README ("Resumes") says a resume refuses to change.
DOCUMENTED = {"model": "atloc_resnet18", "model_kwargs": {"feat_dim": 64}, "batch_size": 32, "image_size": (128, 128),
              "seed": 1, "learn_loss_weights": False, "drop_last": True, "lr": 1e-3, "weight_decay": 0.0,
              "lr_schedule": "cosine", "grad_clip": 1.0, "augment": "colorjitter", "augment_strength": 0.5,
              "augment_fraction": 0.5, "augment_ramp_epochs": 2, "relight": 0.5, "scene_coords": 1.0, "sx": -1.0,
              "sq": 0.0}


@pytest.mark.parametrize("field", DOCUMENTED)
def test_each_documented_setting_is_a_change(field):
    before = TrainConfig()
    changes = config_changes(TrainConfig(**{field: DOCUMENTED[field]}), _checkpoint(before), frame=None)
    assert [name for name, _, _ in changes] == [field]


def test_epochs_count_when_either_run_is_cosine():
    # a cosine schedule's rates depend on the run's length: the checkpoint's steps were trained under it
    assert config_changes(TrainConfig(epochs=20), _checkpoint(TrainConfig(epochs=10)), frame=None) == []
    cosine = TrainConfig(epochs=10, lr_schedule="cosine")
    assert config_changes(cosine.replace(epochs=20), _checkpoint(cosine), frame=None) == [("epochs", 10, 20)]
    changes = config_changes(TrainConfig(epochs=20), _checkpoint(cosine), frame=None)
    assert changes == [("lr_schedule", "cosine", "constant"), ("epochs", 10, 20)]


def test_where_the_first_weights_came_from_is_no_change():
    pretrained = TrainConfig(model_kwargs={"pretrained": True, "feat_dim": 64})
    assert config_changes(TrainConfig(model_kwargs={"feat_dim": 64}), _checkpoint(pretrained), frame=None) == []


def test_a_mid_epoch_checkpoint_refuses_other_training_data_even_when_allowed(tmp_path):
    # its position in the epoch indexes a permutation of the images it was trained on
    config = TrainConfig(out_dir=str(tmp_path), resume=True, resume_changes="allow")
    data = [("training data", "8 images, ...", "16 images, ...")]
    with pytest.raises(ResumeSettingsError, match=r"mid-epoch; \['training data'\]"):
        accept_changes(config, _checkpoint(config, epoch=0, step=2), data, tmp_path, is_main=True)
    accept_changes(config, _checkpoint(config, epoch=1, step=0), data, tmp_path, is_main=True)  # an epoch's end
    assert "training data: '8 images, ...' -> '16 images, ...'" in (tmp_path / "config_changes.log").read_text()


def test_each_allowed_change_is_appended_with_the_step_it_takes_effect(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), resume=True, resume_changes="allow")
    accept_changes(config, _checkpoint(config, epoch=2, step=3, global_step=11), [("lr", 5e-5, 1e-4)], tmp_path, True)
    accept_changes(config, _checkpoint(config, epoch=4, step=0, global_step=20), [("lr", 1e-4, 1e-3)], tmp_path, True)
    lines = (tmp_path / "config_changes.log").read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("resume from run/last.pt at global step 11 (epoch 2, step 3): lr: 5e-05 -> 0.0001")
    assert lines[1].endswith("resume from run/last.pt at global step 20 (epoch 4, step 0): lr: 0.0001 -> 0.001")


def test_a_mid_epoch_checkpoint_of_two_processes_is_refused_by_one():
    model, criterion = torch.nn.Linear(2, 2), torch.nn.Linear(1, 1)
    optimizer = torch.optim.Adam(model.parameters())
    trained = dict(model_state=model.state_dict(), loss_state=criterion.state_dict(),
                   optimizer_state=optimizer.state_dict(), rng=[{}, {}], world_size=2)
    with pytest.raises(ValueError, match=r"mid-epoch by 2 processes; resume it with the same number \(got 1\)"):
        restore_training_state(_checkpoint(TrainConfig(), step=3, **trained), model, criterion, optimizer,
                               TrainConfig(), DistInfo(rank=0, world_size=1))


def test_fewer_epochs_than_the_checkpoint_has_begun_are_refused_even_when_allowed(tmp_path):
    # a checkpoint 1 step into epoch 2 (0-based) resumed with epochs=2 ended at once, leaving that mid-epoch state as
    # the run's final last.pt, while config.yaml said 2 epochs
    config = TrainConfig(out_dir=str(tmp_path), resume=True, resume_changes="allow", epochs=2, lr_schedule="cosine")
    changes = [("epochs", 4, 2)]
    with pytest.raises(ResumeSettingsError, match=r"is already in epoch 3 \(0-based step 1 of epoch 2\); epochs=2 "):
        accept_changes(config, _checkpoint(config, epoch=2, step=1, global_step=9), changes, tmp_path, is_main=True)
    # at the end of epoch 1 (the start of epoch 2), two epochs are done: the run ends there, consistently
    accept_changes(config, _checkpoint(config, epoch=2, step=0, global_step=8), changes, tmp_path, is_main=True)


def test_seed_and_cache_file_are_checked_when_the_config_is_made():
    # seed 2**70 failed in set-up with numpy's "Seed must be between 0 and 2**32 - 1"; cache_file "" with
    # "FileExistsError: [Errno 17] File exists: '<out_dir>'"
    with pytest.raises(ValueError, match=r"`seed` must be below 2\*\*32"):
        TrainConfig(seed=2**32)
    assert TrainConfig(seed=2**32 - 1).seed == 2**32 - 1
    with pytest.raises(ValueError, match=r"`cache_file` must be a file path or None, got ''"):
        TrainConfig(cache_file="")
