"""`TrainConfig.init_from`: a new run that starts from another run's weights (a fine-tune)."""

from __future__ import annotations

import pytest
import torch

from topoloc.engine import load_checkpoint, train
from topoloc.geodesy import LocalFrame

from support.killed_runs import Killed, kill_at


def _params(path) -> dict[str, torch.Tensor]:
    """The trainable tensors of a checkpoint: the model's parameters (not the batch-norm statistics,
    which a training forward pass updates at any learning rate) and the loss weights."""
    state = load_checkpoint(path)
    stats = ("running_mean", "running_var", "num_batches_tracked")
    out = {k: v for k, v in state["model_state"].items() if not k.endswith(stats)}
    out.update({f"loss.{k}": v for k, v in state["loss_state"].items()})
    return out


def test_a_fine_tune_starts_from_the_checkpoints_weights_and_normaliser(tiny_config, pose_images, tmp_path):
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=2, lr=1e-3), pose_images(n=16))
    # Another training set, whose own normaliser would differ: the fine-tune keeps the checkpoint's.
    other = pose_images(n=12, seed=1)
    still = train(tiny_config(out_dir=str(tmp_path / "b"), epochs=1, lr=0.0, weight_decay=0.0,
                              init_from=str(first.final_checkpoint)), other)
    a, b = _params(first.final_checkpoint), _params(still.final_checkpoint)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # at learning rate 0 nothing moved from the checkpoint
    assert (load_checkpoint(still.final_checkpoint)["normalizer"]
            == load_checkpoint(first.final_checkpoint)["normalizer"])
    fresh = train(tiny_config(out_dir=str(tmp_path / "c"), epochs=1, lr=0.0, weight_decay=0.0), other)
    assert not all(torch.equal(a[k], v) for k, v in _params(fresh.final_checkpoint).items())  # new weights differ
    assert (load_checkpoint(fresh.final_checkpoint)["normalizer"]
            != load_checkpoint(first.final_checkpoint)["normalizer"])


def test_a_killed_fine_tune_resumes_to_the_same_weights(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=20)
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1, lr=1e-3), ds)
    common = dict(epochs=2, batch_size=6, checkpoint_every_steps=3, lr=1e-3, augment="simtoreal",
                  init_from=str(first.final_checkpoint))
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    with pytest.raises(Killed):
        train(tiny_config(out_dir=str(tmp_path / "killed"), **common), ds, callbacks=[kill_at(5)])
    resumed = train(tiny_config(out_dir=str(tmp_path / "killed"), resume=True, **common), ds)
    a, b = load_checkpoint(whole.final_checkpoint), load_checkpoint(resumed.final_checkpoint)
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])


def test_a_fine_tune_moved_with_the_run_it_starts_from_resumes(tiny_config, pose_images, tmp_path):
    # the demo's augmented run starts from its unaugmented run's last.pt: a demo folder moved or copied was
    # refused ("trained with other settings (init_from: '/old/runs/...' -> '/new/runs/...')")
    import shutil

    from topoloc.engine.resume import ResumeSettingsError

    ds = pose_images(n=12)
    old = tmp_path / "old"
    first = train(tiny_config(out_dir=str(old / "a"), epochs=1), ds)
    train(tiny_config(out_dir=str(old / "b"), epochs=1, init_from=str(first.final_checkpoint)), ds)
    new = tmp_path / "new"
    shutil.move(old, new)
    resumed = train(tiny_config(out_dir=str(new / "b"), epochs=2, resume=True, resume_changes="refuse",
                                init_from=str(new / "a" / "last.pt")), ds)
    assert load_checkpoint(resumed.final_checkpoint)["epoch"] == 2
    # another run to start from is still another setting
    other = train(tiny_config(out_dir=str(new / "c"), epochs=1, seed=1), ds)
    with pytest.raises(ResumeSettingsError, match="init_from"):
        train(tiny_config(out_dir=str(new / "b"), epochs=3, resume=True, init_from=str(other.final_checkpoint)), ds)


def test_a_missing_checkpoint_is_named(tiny_config, pose_images, tmp_path):
    with pytest.raises(FileNotFoundError, match="TrainConfig.init_from: no such checkpoint .*nowhere.pt"):
        train(tiny_config(init_from=str(tmp_path / "nowhere.pt")), pose_images(n=8))


def test_a_folder_is_named_as_a_folder(tiny_config, pose_images, tmp_path):
    # a run's folder given for its checkpoint was called "no such checkpoint", though it is there
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1), pose_images(n=8))
    with pytest.raises(FileNotFoundError, match="TrainConfig.init_from: .*/a' is a folder, expected a checkpoint file"
                                                ".*last.pt"):
        train(tiny_config(out_dir=str(tmp_path / "b"), init_from=str(first.final_checkpoint.parent)), pose_images(n=8))
    with pytest.raises(FileNotFoundError, match="TrainConfig.resume: .*/a' is a folder, expected a checkpoint file"):
        train(tiny_config(out_dir=str(tmp_path / "c"), resume=str(first.final_checkpoint.parent)), pose_images(n=8))


def test_another_model_is_refused(tiny_config, pose_images, tmp_path):
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1), pose_images(n=8))
    wider = {"backbone": "test_resnet", "feat_dim": 48}
    with pytest.raises(ValueError, match="TrainConfig.init_from: .*feat_dim.*32.*not this run's.*48"):
        train(tiny_config(out_dir=str(tmp_path / "b"), model_kwargs=wider, init_from=str(first.final_checkpoint),
                          cache_file="train_cache.pt"), pose_images(n=8))
    assert not (tmp_path / "b" / "train_cache.pt").exists()  # refused before the images were decoded


def test_a_refused_init_from_keeps_the_run_that_overwrite_would_replace(tiny_config, pose_images, tmp_path):
    # overwrite=True removed the folder's previous run before the init_from was found to be of another model
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1), pose_images(n=8))
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    wider = {"backbone": "test_resnet", "feat_dim": 48}
    with pytest.raises(ValueError, match="TrainConfig.init_from: .*not this run's"):
        train(tiny_config(out_dir=str(tmp_path / "a"), model_kwargs=wider, overwrite=True,
                          init_from=str(first.final_checkpoint)), pose_images(n=8))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before
    assert "last.pt" in before and "config.yaml" in before
    # a fine-tune that replaces the run it starts from: its last.pt is read before overwrite removes it (it
    # was "no such checkpoint")
    start = _params(first.final_checkpoint)
    again = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1, lr=0.0, overwrite=True,
                              init_from=str(first.final_checkpoint)), pose_images(n=8))
    assert all(torch.equal(start[k], v) for k, v in _params(again.final_checkpoint).items())


def test_a_checkpoint_of_another_frame_is_refused(tiny_config, pose_images, tmp_path):
    epfl, comballaz = pose_images(n=8), pose_images(n=8)
    epfl.frame, comballaz.frame = LocalFrame.named("epfl"), LocalFrame.named("comballaz")
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1), epfl)
    with pytest.raises(ValueError, match="TrainConfig.init_from: .*another origin"):
        train(tiny_config(out_dir=str(tmp_path / "b"), init_from=str(first.final_checkpoint)), comballaz)


def test_a_file_that_is_no_checkpoint_is_named(tiny_config, pose_images, tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="TrainConfig.init_from: .*notes.pt"):
        train(tiny_config(init_from=str(bad)), pose_images(n=8))


def test_a_run_started_from_pretrained_weights_can_be_fine_tuned_without_them(tiny_config, tmp_path):
    # `pretrained` says where a run's first weights came from, not what the model is: a fine-tune that does
    # not load them again (or loads them from another path) starts from that run as from any other.
    from topoloc.engine.checkpoint import save_checkpoint
    from topoloc.engine.resume import read_init_from

    base = tiny_config()
    path = save_checkpoint({"model_name": base.model, "model_state": {}, "loss_state": {},
                            "model_kwargs": {**base.model_kwargs, "pretrained": "/weights/resnet18.safetensors"}},
                           tmp_path / "pre" / "last.pt")
    assert read_init_from(tiny_config(init_from=str(path)), None)["model_kwargs"]["pretrained"].endswith(".safetensors")
    other = tiny_config(init_from=str(path), model_kwargs={**base.model_kwargs, "pretrained": True})
    assert read_init_from(other, None) is not None
    with pytest.raises(ValueError, match="not this run's atloc_resnet18 with"):  # another model is still refused
        read_init_from(tiny_config(init_from=str(path), model_kwargs={**base.model_kwargs, "feat_dim": 16}), None)
