"""The training loop's bookkeeping against references worked by hand: each epoch's order, the callbacks'
step numbers, the best epoch kept through mid-epoch checkpoints and ties, the losses of a checkpoint
written between two log steps, and what a resumed run names as its last good checkpoint."""

from __future__ import annotations

import pytest
import torch

from topoloc.data import PoseNormalizer
from topoloc.engine import load_checkpoint, train
from topoloc.engine.distributed import epoch_permutation
from topoloc.models import AtLocLoss, create_model

from support.killed_runs import Killed, assert_same_weights, checkpoint_weights, kill_at

_PLAIN = {"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0}


def _reference_epochs(cfg, ds, orders) -> dict[str, torch.Tensor]:
    """AtLoc's steps written out by hand over the epochs' ``orders`` (float / 255, mean / std, Adam)."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs)
    loss_fn = AtLocLoss(cfg.sx, cfg.sq)
    opt = torch.optim.Adam([{"params": model.parameters()}, {"params": loss_fn.parameters()}],
                           lr=cfg.lr, weight_decay=cfg.weight_decay)
    norm = PoseNormalizer.fit(ds.c2w)
    for order in orders:
        for s in range(len(order) // cfg.batch_size):
            idx = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            x = (ds.images[idx].float() / 255.0 - 0.5) / 0.5  # the test backbone's mean = std = 0.5
            loss = loss_fn(model(x), norm.encode(ds.c2w[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.state_dict()


def test_each_epoch_draws_its_own_order(tiny_config, pose_images):
    # 2 epochs of 2 steps: epoch e's batches are epoch_permutation(16, seed, e), not epoch 0's again.
    ds = pose_images(n=16, size_hw=(32, 32))
    cfg = tiny_config(epochs=2, batch_size=8, lr=1e-3, model_kwargs=_PLAIN)
    state = load_checkpoint(train(cfg, ds).final_checkpoint)["model_state"]
    own = _reference_epochs(cfg, ds, [epoch_permutation(16, cfg.seed, e) for e in (0, 1)])
    same = _reference_epochs(cfg, ds, [epoch_permutation(16, cfg.seed, 0)] * 2)
    assert any(not torch.allclose(own[k].float(), same[k].float(), rtol=1e-4, atol=1e-6) for k in own)
    for key, value in state.items():
        assert torch.allclose(value.float(), own[key].float(), rtol=1e-4, atol=1e-6), key


def test_callbacks_get_the_epoch_from_0_and_the_steps_done(tiny_config, pose_images, tmp_path):
    # 12 images in batches of 4: 3 steps per epoch. "epoch" counts from 0, "step" is the steps done in the
    # epoch (1..3), "global_step" the steps done in the run; a resumed run goes on with the same numbers.
    events = []
    common = dict(out_dir=str(tmp_path / "run"), epochs=2, batch_size=4, checkpoint_every_steps=2)
    record = lambda e: events.append((e["epoch"], e["step"], e["global_step"]))  # noqa: E731
    train(tiny_config(out_dir=str(tmp_path / "whole"), epochs=2, batch_size=4), pose_images(n=12), callbacks=[record])
    assert events == [(0, 1, 1), (0, 2, 2), (0, 3, 3), (1, 1, 4), (1, 2, 5), (1, 3, 6)]
    events.clear()
    with pytest.raises(Killed):  # the last checkpoint is at step 4: epoch 2, its first step
        train(tiny_config(**common), pose_images(n=12), callbacks=[record, kill_at(5)])
    events.clear()
    train(tiny_config(resume=True, **common), pose_images(n=12), callbacks=[record])
    assert events == [(1, 2, 5), (1, 3, 6)]


def test_each_epochs_row_averages_its_own_steps_losses(tiny_config, pose_images):
    # The loss of each log row is the mean of the losses the callbacks saw in that epoch, not a running
    # sum over the epochs before it.
    losses: dict[int, list[float]] = {}
    record = lambda e: losses.setdefault(e["epoch"], []).append(float(e["loss"]))  # noqa: E731
    result = train(tiny_config(epochs=3, batch_size=4, lr=1e-3), pose_images(n=12), callbacks=[record])
    assert [len(v) for v in losses.values()] == [3, 3, 3]
    assert [r["loss"] for r in result.history] == pytest.approx([sum(v) / 3 for v in losses.values()], rel=1e-6)


def _scripted_validation(monkeypatch, medians_m):
    """Trainer.validate answers ``medians_m[epochs done]`` metres (and 1 deg), on resume as well."""
    from topoloc.engine.train import Trainer

    monkeypatch.setattr(Trainer, "validate", lambda self: (medians_m[len(self.history)], 1.0))


def test_a_run_resumed_from_a_mid_epoch_checkpoint_keeps_its_best_epoch(tiny_config, pose_images, tmp_path,
                                                                           monkeypatch):
    # Epoch 1 validates at 2 m, epoch 2 at 5 m: best.pt is epoch 1's. Killed in epoch 2 after its mid-epoch
    # checkpoint, the resumed run must still know epoch 1 as the best and leave best.pt alone.
    _scripted_validation(monkeypatch, [2.0, 5.0])
    train_set, val_set = pose_images(n=16), pose_images(n=4, seed=1)
    common = dict(epochs=2, batch_size=8, checkpoint_every_steps=1, model_kwargs=_PLAIN)
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), train_set, val_set)
    run = str(tmp_path / "killed")
    with pytest.raises(Killed):  # after step 3: epoch 2, its first step, checkpointed
        train(tiny_config(out_dir=run, **common), train_set, val_set, callbacks=[kill_at(3)])
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["step"] == 1
    resumed = train(tiny_config(out_dir=run, resume=True, **common), train_set, val_set)
    assert load_checkpoint(resumed.best_checkpoint)["best"] == {"epoch": 1, "val_median_m": 2.0, "val_median_deg": 1.0}
    assert load_checkpoint(resumed.final_checkpoint)["best"]["epoch"] == 1
    a, b = checkpoint_weights(whole.best_checkpoint), checkpoint_weights(resumed.best_checkpoint)
    assert_same_weights(a, b)


def test_an_epoch_that_only_ties_the_best_does_not_replace_it(tiny_config, pose_images, tmp_path, monkeypatch):
    # best.pt is rewritten for a lower median only: epoch 2's equal 3 m keeps epoch 1's weights.
    _scripted_validation(monkeypatch, [3.0, 3.0])
    result = train(tiny_config(epochs=2, batch_size=8, model_kwargs=_PLAIN), pose_images(n=8),
                   pose_images(n=4, seed=1))
    first = train(tiny_config(out_dir=str(tmp_path / "one"), epochs=1, batch_size=8, model_kwargs=_PLAIN),
                  pose_images(n=8), pose_images(n=4, seed=1))
    assert load_checkpoint(result.best_checkpoint)["best"]["epoch"] == 1
    a, b = checkpoint_weights(first.final_checkpoint), checkpoint_weights(result.best_checkpoint)
    assert_same_weights(a, b)


def test_a_checkpoint_between_two_log_steps_keeps_the_losses_of_its_steps(tiny_config, pose_images, tmp_path):
    # log_every=5, checkpoints every 3 steps, 4 steps per epoch: the checkpoint at step 6 (epoch 2, step 2) is
    # no log step; the losses of steps 5 and 6 must be in it, or the resumed epoch 2 averages them as 0.
    ds = pose_images(n=20)
    common = dict(epochs=3, batch_size=6, checkpoint_every_steps=3, log_every=5, lr=1e-3, model_kwargs=_PLAIN)
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    run = str(tmp_path / "killed")
    with pytest.raises(Killed):
        train(tiny_config(out_dir=run, **common), ds, callbacks=[kill_at(8)])
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["global_step"] == 6
    resumed = train(tiny_config(out_dir=run, resume=True, **common), ds)
    for key in ("loss", "t_loss", "q_loss"):
        assert [r[key] for r in resumed.history] == pytest.approx([r[key] for r in whole.history], rel=1e-12), key


def test_a_nan_before_a_resumed_runs_first_checkpoint_names_the_checkpoint_it_resumed(tiny_config, pose_images,
                                                                                        tmp_path, monkeypatch):
    run = tmp_path / "run"
    common = dict(out_dir=str(run), batch_size=4, log_every=1)
    train(tiny_config(epochs=1, **common), pose_images(n=12))
    original = AtLocLoss.terms

    def poisoned(self, pred, target):
        terms = original(self, pred, target)
        terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(AtLocLoss, "terms", poisoned)
    with pytest.raises(FloatingPointError, match="at step 4 ") as info:
        train(tiny_config(epochs=2, resume=True, **common), pose_images(n=12))
    assert f"the last good checkpoint is {str(run / 'last.pt')!r} (left untouched)" in str(info.value)
    assert load_checkpoint(run / "last.pt")["global_step"] == 3


def test_each_rank_of_a_new_run_draws_its_own_stream(tiny_config, pose_images):
    # Dropout and the augmentations draw from torch's global RNG: the ranks of a run must not draw the same
    # masks and augmentations: each its own stream.
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    trainer = Trainer(tiny_config(epochs=1, batch_size=8), pose_images(n=8))
    trainer._setup(DistInfo())
    after_weights = torch.get_rng_state()  # any state: each rank is seeded afresh
    draws = []
    for rank in (0, 1):
        torch.set_rng_state(after_weights)
        trainer.info = DistInfo(rank=rank, world_size=2)
        trainer._restore(None)
        draws.append(torch.rand(8))
    assert not torch.equal(draws[0], draws[1])


def test_a_killed_fine_tune_on_other_images_resumes_with_the_normaliser_it_started_from(tiny_config, pose_images,
                                                                                       tmp_path):
    # A fine-tune encodes its targets with init_from's normaliser, not one fitted to its own images; the resumed
    # run must take that one from its checkpoint (refitting to the fine-tune's images moves the targets).
    first = train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1, lr=1e-3, model_kwargs=_PLAIN),
                  pose_images(n=12))
    ds = pose_images(n=20, seed=5)
    common = dict(epochs=2, batch_size=6, checkpoint_every_steps=3, lr=1e-3, model_kwargs=_PLAIN,
                  init_from=str(first.final_checkpoint))
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), **common), ds)
    assert (load_checkpoint(whole.final_checkpoint)["normalizer"]
            == load_checkpoint(first.final_checkpoint)["normalizer"])
    run = str(tmp_path / "killed")
    with pytest.raises(Killed):
        train(tiny_config(out_dir=run, **common), ds, callbacks=[kill_at(5)])
    resumed = train(tiny_config(out_dir=run, resume=True, **common), ds)
    a, b = checkpoint_weights(whole.final_checkpoint), checkpoint_weights(resumed.final_checkpoint)
    assert_same_weights(a, b)
