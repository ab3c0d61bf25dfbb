"""train(): the step against a hand-written reference, learning, checkpoints, config.yaml, load_model."""

from __future__ import annotations

import csv
import importlib
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from topoloc import cpu_has_bf16
from topoloc.data import PoseNormalizer
from topoloc.engine import TrainConfig, load_checkpoint, load_model, predict, train
from topoloc.engine.distributed import epoch_permutation
from topoloc.models import AtLocLoss, create_model


def _reference_run(cfg: TrainConfig, ds, steps: int, bf16: bool = False,
                   channels_last: bool = False) -> dict[str, torch.Tensor]:
    """AtLoc's training step written out by hand: float / 255, mean / std, targets, Adam (the model
    under CPU bf16 autocast with ``bf16``; weights and inputs in channels_last with ``channels_last``)."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    loss_fn = AtLocLoss(cfg.sx, cfg.sq)
    opt = torch.optim.Adam([{"params": model.parameters()}, {"params": loss_fn.parameters()}],
                           lr=cfg.lr, weight_decay=cfg.weight_decay)
    mean = torch.tensor(model.pretrained_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(model.pretrained_cfg["std"]).view(1, 3, 1, 1)
    norm = PoseNormalizer.fit(ds.c2w)
    order = epoch_permutation(len(ds), cfg.seed, 0)
    for s in range(steps):
        idx = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
        x = ((ds.images[idx].float() / 255.0 - mean) / std).contiguous(memory_format=layout)
        target = norm.encode(ds.c2w[idx])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(x)
        loss = loss_fn(pred.float(), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {**model.state_dict(), "loss.sax": loss_fn.sax.detach(), "loss.saq": loss_fn.saq.detach()}


def test_steps_match_a_hand_written_reference(tiny_config, pose_images):
    ds = pose_images(n=16, size_hw=(32, 32))
    cfg = tiny_config(epochs=1, batch_size=8, lr=1e-3, model_kwargs={"backbone": "test_resnet", "feat_dim": 32,
                                                                     "dropout": 0.0})
    result = train(cfg, ds)
    state = load_checkpoint(result.final_checkpoint)
    ref = _reference_run(cfg, ds, steps=2)
    for key, value in state["model_state"].items():
        assert torch.allclose(value.float(), ref[key].float(), rtol=1e-4, atol=1e-6), key
    assert torch.allclose(state["loss_state"]["sax"], ref["loss.sax"], atol=1e-7)
    assert torch.allclose(state["loss_state"]["saq"], ref["loss.saq"], atol=1e-7)


def _max_difference(state: dict, ref: dict) -> float:
    return max(float((v.float() - ref[k].float()).abs().max()) for k, v in state["model_state"].items()
               if v.is_floating_point())


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_cpu_amp_steps_are_the_reference_steps_under_bf16_autocast(tiny_config, pose_images):
    ds = pose_images(n=16, size_hw=(32, 32))
    cfg = tiny_config(epochs=1, batch_size=8, lr=1e-3, cpu_amp=True,
                      model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    state = load_checkpoint(train(cfg, ds).final_checkpoint)
    bf16, fp32 = _reference_run(cfg, ds, steps=2, bf16=True), _reference_run(cfg, ds, steps=2)
    assert _max_difference(state, bf16) < 1e-5
    assert _max_difference(state, fp32) > 1e-4  # the steps did run in bf16
    assert all(v.dtype == torch.float32 for v in state["model_state"].values() if v.is_floating_point())


def test_cpu_amp_without_native_bf16_trains_in_float32(tiny_config, pose_images, monkeypatch, caplog):
    monkeypatch.setattr(importlib.import_module("topoloc.engine.run_setup"), "cpu_has_bf16", lambda: False)
    ds = pose_images(n=16, size_hw=(32, 32))
    cfg = tiny_config(epochs=1, batch_size=8, lr=1e-3, cpu_amp=True,
                      model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    with caplog.at_level("WARNING", logger="topoloc.engine"):
        state = load_checkpoint(train(cfg, ds).final_checkpoint)
    assert "no native bf16" in caplog.text and "float32" in caplog.text
    assert _max_difference(state, _reference_run(cfg, ds, steps=2)) < 1e-5


def test_cpu_channels_last_runs_the_reference_steps_in_channels_last(tiny_config, pose_images):
    ds = pose_images(n=16, size_hw=(32, 32))
    cfg = tiny_config(epochs=1, batch_size=8, lr=1e-3, cpu_channels_last=True,
                      model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    layouts = []

    def record(event):
        trainer = event["trainer"]
        convs = [m.weight for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]
        x, _ = trainer._inputs(torch.arange(8))
        layouts.append((all(w.is_contiguous(memory_format=torch.channels_last) for w in convs),
                        x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()))

    state = load_checkpoint(train(cfg, ds, callbacks=[record]).final_checkpoint)
    assert layouts == [(True, True), (True, True)]
    assert _max_difference(state, _reference_run(cfg, ds, steps=2, channels_last=True)) < 1e-5
    # The same steps as in NCHW up to float rounding, which Adam's first steps turn into up to
    # 2 x lr on weights whose gradients are near zero.
    assert _max_difference(state, _reference_run(cfg, ds, steps=2)) < 2 * cfg.lr


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file() or platform.machine() not in ("x86_64", "AMD64"),
                    reason="reads the x86 CPU flags of Linux's /proc/cpuinfo")
def test_cpu_has_bf16_matches_the_cpu_flags():
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    assert cpu_has_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_training_learns_and_validates(tiny_config, pose_images):
    train_set, val_set = pose_images(n=32), pose_images(n=8, seed=1)
    cfg = tiny_config(epochs=6, batch_size=8, lr=2e-3, val_every=3,
                      model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    result = train(cfg, train_set, val_set)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert [row["val_median_m"] is not None for row in result.history] == [False, False, True] * 2
    assert result.best_checkpoint.name == "best.pt" and result.best_checkpoint.is_file()
    # The validation figures are the medians of independently computed errors.
    model, normalizer, config = load_model(result.final_checkpoint)
    pred = predict(model, val_set, normalizer, image_size=config.image_size)
    t_err = (pred[:, :3, 3] - val_set.c2w[:, :3, 3]).norm(dim=1)
    assert result.history[-1]["val_median_m"] == pytest.approx(float(np.median(t_err.numpy())), rel=1e-9)
    rows = list(csv.DictReader(open(result.out_dir / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert float(rows[0]["loss"]) == pytest.approx(losses[0])
    assert float(rows[0]["sx"]) != 0.0 and float(rows[0]["lr"]) == 2e-3


def test_checkpoint_contents_config_and_load_model(tiny_config, pose_images):
    ds = pose_images(n=12)
    cfg = tiny_config(epochs=1, augment="colorjitter")
    result = train(cfg, ds)
    assert result.best_checkpoint == result.final_checkpoint  # no validation set
    state = load_checkpoint(result.final_checkpoint)
    for key in ("model_state", "optimizer_state", "loss_state", "normalizer", "config", "rng", "epoch",
                "step", "global_step", "model_name", "model_kwargs", "history"):
        assert key in state, key
    assert state["epoch"] == 1 and state["step"] == 0 and state["global_step"] == 2
    assert state["model_name"] == "atloc_resnet18"
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}
    # The normaliser is AtLoc's pose_stats of the training translations.
    assert state["normalizer"]["mean_m"] == pytest.approx(ds.xyz.mean(0).tolist())
    assert state["normalizer"]["std_m"] == pytest.approx(ds.xyz.std(0, unbiased=False).tolist())
    # config.yaml beside the checkpoints reads back to the same configuration.
    assert TrainConfig.from_yaml(result.out_dir / "config.yaml") == cfg
    model, normalizer, config = load_model(result.final_checkpoint)
    assert not model.training and config == cfg
    assert normalizer.mean_m == pytest.approx(tuple(ds.xyz.mean(0).tolist()))
    # The reloaded model predicts what the trained weights predict.
    fresh = create_model(cfg.model, **cfg.model_kwargs)
    fresh.load_state_dict(state["model_state"])
    fresh.eval()
    images = ds.images[:4].float() / 255
    with torch.no_grad():
        assert torch.equal(model(model.normalize(images)), fresh(fresh.normalize(images)))
    c2w = predict(model, ds, normalizer, image_size=(32, 32), batch_size=5)
    with pytest.raises(TypeError, match=r"`normalizer` must be the PoseNormalizer .* got dict"):  # was AttributeError
        predict(model, ds, {}, image_size=(32, 32))
    assert c2w.shape == (12, 4, 4) and c2w.dtype == torch.float64
    assert torch.allclose(c2w[:, :3, :3].transpose(1, 2) @ c2w[:, :3, :3], torch.eye(4, dtype=torch.float64)[:3, :3]
                          .expand(12, 3, 3), atol=1e-9)


def test_simtoreal_augment_runs_and_changes_training(tiny_config, pose_images):
    ds = pose_images(n=8)
    plain = train(tiny_config(epochs=1, out_dir=str(tiny_config().out_dir) + "_a"), ds)
    augmented = train(tiny_config(epochs=1, augment="simtoreal", augment_strength=1.0,
                                  out_dir=str(tiny_config().out_dir) + "_b"), ds)
    a = load_checkpoint(plain.final_checkpoint)["model_state"]
    b = load_checkpoint(augmented.final_checkpoint)["model_state"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_callable_augment_sees_float_batches_in_unit_range(tiny_config, pose_images):
    seen = []

    def probe(x):
        seen.append((x.dtype, x.shape, float(x.min()), float(x.max())))
        return x

    train(tiny_config(epochs=1, batch_size=4, augment=probe), pose_images(n=8))
    assert len(seen) == 2
    for dtype, shape, lo, hi in seen:
        assert dtype == torch.float32 and tuple(shape) == (4, 3, 32, 32) and 0.0 <= lo <= hi <= 1.0


def test_train_rejects_bad_input(tiny_config, pose_images):
    with pytest.raises(TypeError, match="config"):
        train({"epochs": 1}, pose_images(n=4))
    with pytest.raises(ValueError, match="no full batch"):
        train(tiny_config(batch_size=8, drop_last=True), pose_images(n=4))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        train(tiny_config(resume="/nonexistent/missing.pt"), pose_images(n=4))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model("nope.pt")


def test_cache_file_is_reused_by_a_rerun(tiny_config, pose_images):
    ds = pose_images(n=8)
    first = train(tiny_config(epochs=1, cache_file="train_cache.pt"), ds)
    assert (first.out_dir / "train_cache.pt").is_file()

    class Undecodable(type(ds)):
        def __getitem__(self, i):
            raise AssertionError("decoded again")

    # A new run into the same folder replaces the run's files (overwrite=True) but keeps the cache.
    again = train(tiny_config(epochs=1, cache_file="train_cache.pt", overwrite=True), Undecodable(n=8))
    assert again.history[0]["loss"] == pytest.approx(first.history[0]["loss"], rel=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("cache_device", ["auto", "cpu"])  # GPU memory, or pinned host memory
def test_cuda_bf16_channels_last_path(tiny_config, pose_images, cache_device):
    ds, val = pose_images(n=32), pose_images(n=8, seed=1)
    result = train(tiny_config(epochs=2, device="cuda", cache_device=cache_device, augment="simtoreal"), ds, val)
    assert all(np.isfinite(row["loss"]) for row in result.history)
    model, normalizer, config = load_model(result.final_checkpoint, device="cuda")
    c2w = predict(model, val, normalizer, image_size=config.image_size)
    assert c2w.shape == (8, 4, 4) and torch.isfinite(c2w).all()


def test_progress_bar_and_decode_workers(tiny_config, pose_images, capsys):
    result = train(tiny_config(epochs=1, progress=True, num_workers=1), pose_images(n=8))
    assert result.history[0]["images_per_s"] > 0
    assert "epoch 1/1" in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_training_matches_eager(tiny_config, pose_images):
    """torch.compile (inductor, about a minute on 2 CPU cores) takes the same steps as eager mode."""
    kwargs = {"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0}
    ds = pose_images(n=16)
    eager = train(tiny_config(epochs=1, model_kwargs=kwargs), ds)
    compiled = train(tiny_config(epochs=1, model_kwargs=kwargs, compile=True,
                                 out_dir=str(eager.out_dir) + "_compiled"), ds)
    a = load_checkpoint(eager.final_checkpoint)["model_state"]
    b = load_checkpoint(compiled.final_checkpoint)["model_state"]
    assert a.keys() == b.keys()  # the unwrapped module is saved, without `_orig_mod.` prefixes
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-3, atol=1e-4), key


def test_tensorboard_events_when_installed(tiny_config, pose_images):
    pytest.importorskip("tensorboard")
    result = train(tiny_config(epochs=1, tensorboard=True, log_every=1), pose_images(n=8))
    assert list((result.out_dir / "tb").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("rotation", ["quat", "log_quat", "6d"])
def test_every_rotation_code_trains_end_to_end(tiny_config, pose_images, rotation):
    # The normaliser follows the model's rotation output; the loss falls and predictions decode.
    train_set = pose_images(n=32)
    cfg = tiny_config(epochs=6, batch_size=8, lr=2e-3, val_every=0,
                      model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0, "rotation": rotation})
    result = train(cfg, train_set)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0], losses
    model, normalizer, _ = load_model(result.final_checkpoint)
    assert normalizer.rotation == rotation and normalizer.code_dim == model.out_dim
    c2w = predict(model, train_set, normalizer).numpy()
    r = c2w[:, :3, :3]
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-9)


def test_a_normaliser_that_does_not_fit_the_model_is_refused(tiny_config, pose_images):
    ds = pose_images(n=8)
    cfg = tiny_config(epochs=1, model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "rotation": "6d"})
    with pytest.raises(ValueError, match="rotation code 'log_quat'"):
        train(cfg, ds, normalizer=PoseNormalizer.fit(ds.c2w, rotation="log_quat"))


def test_augment_fraction_augments_that_share_of_each_batch(tiny_config, pose_images):
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    seen = []

    def mark(x):  # an "augmentation" that records how many images it got and paints them white
        seen.append(x.shape[0])
        return torch.ones_like(x)

    ds = pose_images(n=16)
    cfg = tiny_config(epochs=1, batch_size=8, augment=mark, augment_fraction=0.25)
    trainer = Trainer(cfg, ds)
    trainer._setup(DistInfo())
    x, _ = trainer._inputs(torch.arange(8))
    assert seen == [2]  # round(0.25 * 8)
    flat = x.flatten(2).std(dim=2).amax(dim=1) < 1e-6  # painted images: one value per channel
    assert flat.tolist() == [True, True] + [False] * 6
    with pytest.raises(ValueError, match="augment_fraction"):
        tiny_config(augment_fraction=0.0)
    # a share that rounds to no image of a batch had trained without augmentation, without a word
    few = Trainer(tiny_config(epochs=1, batch_size=4, augment=mark, augment_fraction=0.1), ds)
    with pytest.raises(ValueError, match=r"^TrainConfig: augment_fraction=0.1 of batches of 4 images augments no "
                                         r"image \(round\(0.1 x 4\) = 0\): raise augment_fraction or batch_size$"):
        few._setup(DistInfo())


def test_checkpoints_from_before_the_6d_default_still_load(tiny_config, pose_images, tmp_path):
    # Before the 6D code, checkpoints named no rotation anywhere: the model was AtLoc's log-quaternion.
    ds = pose_images(n=8)
    cfg = tiny_config(epochs=1, model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "rotation": "log_quat"})
    result = train(cfg, ds)
    state = load_checkpoint(result.final_checkpoint)
    del state["model_kwargs"]["rotation"], state["normalizer"]["rotation"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    model, normalizer, _ = load_model(old)
    assert model.head.rotation == normalizer.rotation == "log_quat"
    new_model, new_normalizer, _ = load_model(result.final_checkpoint)
    torch.testing.assert_close(predict(model, ds, normalizer), predict(new_model, ds, new_normalizer))


def test_relight_lights_the_augmented_share_on_the_given_normals(tiny_config, pose_images):
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    ds = pose_images(n=16)
    normals = torch.zeros(16, 3, 32, 32, dtype=torch.int8)
    normals[:, 0] = 127  # every pixel a wall facing east
    cfg = tiny_config(epochs=1, batch_size=8, augment=None, augment_fraction=0.5, relight=1.0)
    trainer = Trainer(cfg, ds, normals=normals)
    trainer._setup(DistInfo())
    prepare = trainer.model.prepare
    trainer.model.prepare = lambda x, channels_last=False, check_range=True: x  # look at the [0, 1] images
    try:
        x, _ = trainer._inputs(torch.arange(8))
    finally:
        trainer.model.prepare = prepare
    clean = trainer.train_cache.images[:8].float() / 255
    # the augmented half is relit: a wall facing east is (almost surely) not lit like flat ground
    assert ((x[:4] - clean[:4]).abs().flatten(1).amax(1) > 0.01).all()
    assert torch.allclose(x[4:], clean[4:])  # the clean half untouched
    with pytest.raises(ValueError, match="normals"):
        Trainer(cfg, ds, normals=normals[:, :, :16])._setup(DistInfo())


def test_relight_without_geometry_is_refused_with_the_reason(tiny_config, pose_images):
    from topoloc.data.cache import as_cache
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    cache = as_cache(pose_images(n=8), (32, 32))
    with pytest.raises(TypeError, match="normals"):
        Trainer(tiny_config(relight=0.5), cache)._setup(DistInfo())
    with pytest.raises(ValueError, match="relight"):
        tiny_config(relight=1.5)


def test_the_demo_training_estimate_reads_the_trainer(tiny_config, pose_images, capsys):
    # 24 images, batch 8: 3 steps an epoch, 2 epochs, 6 steps. Timed from step 1 (warm-up) to step 3
    # (2 steps measured) on a clock that reads 0 s then 1 s: 0.5 s a step, 2.00 steps/s; (6 - 3) * 0.5
    # = 1.5 s left ("2 s"), and 6 * 0.5 = 3 s for one more run of the same length.
    from topoloc.experiments.demo import TrainingEstimate

    readings = iter([0.0, 1.0])
    estimate = TrainingEstimate("tiny", later_runs=1, warmup=1, measure=2, clock=lambda: next(readings))
    train(tiny_config(), pose_images(24), callbacks=[estimate])
    assert estimate.message == "[demo] training tiny: 2.00 steps/s on this machine, about 2 s left for this run " \
                               "and 3 s for the next run"
    assert estimate.message in capsys.readouterr().out


@pytest.mark.parametrize(("flags_line", "onednn", "native"), [
    ("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512vl avx512dq", True, False),  # oneDNN emulates bf16 here
    ("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16", True, True),
    ("flags\t\t: fpu sse2 avx512f amx_tile amx_bf16", True, True),
    ("Features\t: fp asimd bf16 i8mm", True, True),  # Arm (Graviton 3, Neoverse V1)
    ("flags\t\t: fpu sse2 avx512f avx512_bf16", False, False),  # a torch whose oneDNN cannot use it
])
def test_cpu_has_bf16_needs_a_native_flag_and_onednn(tmp_path, monkeypatch, flags_line, onednn, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU\n{flags_line}\n\nprocessor\t: 1\n{flags_line}\n")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    assert cpu_has_bf16(cpuinfo) is native
    # Where no flags can be read (another OS), oneDNN's answer stands.
    assert cpu_has_bf16(tmp_path / "absent") is onednn


def test_augment_fraction_rounds_to_the_nearest_count_not_down(tiny_config, pose_images):
    # TrainConfig documents round(augment_fraction * B): 0.35 * 8 = 2.8 augments 3 images (int() would give 2).
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    seen = []

    def mark(x):
        seen.append(x.shape[0])
        return torch.ones_like(x)

    trainer = Trainer(tiny_config(epochs=1, batch_size=8, augment=mark, augment_fraction=0.35), pose_images(n=16))
    trainer._setup(DistInfo())
    x, _ = trainer._inputs(torch.arange(8))
    assert seen == [3]
    flat = x.flatten(2).std(dim=2).amax(dim=1) < 1e-6
    assert flat.tolist() == [True] * 3 + [False] * 5


def _tilted_normals(n: int, size: int = 32) -> torch.Tensor:
    """int8 normals (x 127), one direction per image: tilted 60 degrees from up towards azimuth 40 i degrees."""
    az = torch.arange(n, dtype=torch.float64) * (40.0 * np.pi / 180.0)
    tilt = np.pi / 3
    vec = torch.stack([np.sin(tilt) * torch.sin(az), np.sin(tilt) * torch.cos(az),
                       torch.full_like(az, np.cos(tilt))], 1)
    return (vec * 127).round().to(torch.int8)[:, :, None, None].expand(n, 3, size, size).contiguous()


def test_relight_lights_each_image_on_its_own_normals(tiny_config, pose_images):
    from augment import RandomSunRelight

    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    ds = pose_images(n=16)
    normals = _tilted_normals(16)
    cfg = tiny_config(epochs=1, batch_size=8, augment=None, augment_fraction=0.5, relight=1.0)
    trainer = Trainer(cfg, ds, normals=normals)
    trainer._setup(DistInfo())
    prepare = trainer.model.prepare
    trainer.model.prepare = lambda x, channels_last=False, check_range=True: x  # look at the [0, 1] images
    idx = torch.tensor([9, 2, 14, 5, 0, 11, 7, 3])  # a shuffled batch: the first half is relit
    try:
        x, _ = trainer._inputs(idx)
    finally:
        trainer.model.prepare = prepare
    draws = trainer.relight._params  # the trainer's sun, sky and coins, replayed on each image's own normals
    clean = trainer.train_cache.images.index_select(0, idx).float() / 255
    expected = RandomSunRelight(p=1.0)(clean[:4], normals.index_select(0, idx[:4]), params=draws)
    torch.testing.assert_close(x[:4], expected, rtol=0, atol=1e-6)
    # the other images' normals would light them otherwise (the test can tell)
    other = RandomSunRelight(p=1.0)(clean[:4], normals.index_select(0, idx[4:]), params=draws)
    assert (other - expected).abs().amax() > 1e-2


def test_relight_probability_is_the_configured_one(tiny_config, pose_images):
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    cfg = tiny_config(epochs=1, batch_size=8, augment=None, relight=0.3)
    trainer = Trainer(cfg, pose_images(n=16), normals=_tilted_normals(16))
    trainer._setup(DistInfo())
    assert trainer.relight.p == pytest.approx(0.3)
    # and it acts so: over 2000 coins about 30 % of images are relit (binomial sd about 1 %)
    torch.manual_seed(0)
    params = trainer.relight.forward_parameters(2000)
    assert abs(float(params["batch_prob"].float().mean()) - 0.3) < 0.05


def test_validation_is_due_every_val_every_epochs_and_after_the_last(tiny_config, pose_images):
    # epochs=7, val_every=3: validated after epochs 3, 6 and 7 (the last, though 7 % 3 != 0).
    result = train(tiny_config(epochs=7, batch_size=8, val_every=3), pose_images(n=8), pose_images(n=4, seed=1))
    assert [row["val_median_m"] is not None for row in result.history] == [False, False, True, False, False,
                                                                             True, True]
    assert result.history[-1]["val_median_deg"] is not None


def test_best_epoch_is_the_smallest_median_in_metres_not_degrees(tiny_config, pose_images):
    # Scripted validations: by metres the best is epoch 6 (3 m), by degrees it would be epoch 7 (0.5 deg).
    from topoloc.engine.distributed import DistInfo
    from topoloc.engine.train import Trainer

    trainer = Trainer(tiny_config(epochs=7, batch_size=8, val_every=3), pose_images(n=8), pose_images(n=4, seed=1))
    trainer._setup(DistInfo())
    scripted = iter([(5.0, 1.0), (3.0, 9.0), (4.0, 0.5)])
    trainer.validate = lambda: next(scripted)
    best, chosen = None, []
    for epoch in range(7):
        row = {}
        best, is_best = trainer._validate_epoch(epoch, row, best)
        if is_best:
            chosen.append(epoch + 1)
    assert chosen == [3, 6]
    assert best == {"epoch": 6, "val_median_m": 3.0, "val_median_deg": 9.0}


def test_log_row_columns_hold_their_own_losses_and_weights():
    # Hand-made epoch statistics over 2 steps and loss weights sx = -0.5, sq = -2.5: each column its own.
    from topoloc.engine.meter import epoch_row

    criterion = AtLocLoss(-0.5, -2.5, learnable=True)
    optimizer = torch.optim.Adam(criterion.parameters(), lr=3e-4)
    stats = {"loss": 9.0, "t_loss": 2.0, "q_loss": 5.0, "steps": 2, "images_per_s": 10.0, "time_s": 1.5}
    row = epoch_row(0, 2, stats, criterion, optimizer)
    assert (row["loss"], row["t_loss"], row["q_loss"]) == (4.5, 1.0, 2.5)
    assert (row["sx"], row["sq"]) == (-0.5, -2.5)
    assert row["lr"] == 3e-4 and row["epoch"] == 1 and row["step"] == 2


def test_log_csv_losses_are_the_translation_and_rotation_l1_of_the_step(tiny_config, pose_images):
    # One step on one batch with lr = 0: the weights stay the first ones, so the step's losses can be
    # recomputed by hand from the saved model in training mode (batch-norm on the batch's statistics).
    import math

    ds = pose_images(n=8, size_hw=(32, 32))  # the training size: no resize
    cfg = tiny_config(epochs=1, batch_size=8, lr=0.0, weight_decay=0.0, augment=None, sx=-0.7, sq=-2.2,
                      model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.0})
    result = train(cfg, ds)
    model, normalizer, _ = load_model(result.final_checkpoint)
    model.train()
    x = (ds.images.float() / 255.0 - 0.5) / 0.5  # the test backbone's mean = std = 0.5
    with torch.no_grad():
        code = model(x).double()
    target = normalizer.encode(ds.c2w).double()
    t_l1 = float((code[:, :3] - target[:, :3]).abs().mean())
    q_l1 = float((code[:, 3:] - target[:, 3:]).abs().mean())
    assert abs(t_l1 - q_l1) > 1e-3  # the test can tell the columns apart
    row = next(csv.DictReader(open(result.out_dir / "log.csv")))
    assert float(row["t_loss"]) == pytest.approx(t_l1, rel=1e-4)
    assert float(row["q_loss"]) == pytest.approx(q_l1, rel=1e-4)
    assert (float(row["sx"]), float(row["sq"])) == pytest.approx((-0.7, -2.2))
    loss = math.exp(0.7) * t_l1 - 0.7 + math.exp(2.2) * q_l1 - 2.2
    assert float(row["loss"]) == pytest.approx(loss, rel=1e-4)


def test_a_model_that_cannot_run_an_image_is_refused_before_the_run_writes_anything(tiny_config, pose_images, tmp_path):
    # timm builds a ResNet of two stages from two `channels`, and its forward asks for layer3: the first step failed
    # with torch's traceback, and the run's config.yaml and log.csv blocked the next attempt
    kwargs = {"backbone": "resnet18", "feat_dim": 32, "backbone_kwargs": {"channels": [8, 16]}}
    with pytest.raises(ValueError, match=r"^TrainConfig.model_kwargs: the model 'atloc_resnet18' built with "
                                         r".*'channels': \[8, 16\].* cannot run on a \(32, 32\) image "
                                         r"\(AttributeError: .*layer3"):
        train(tiny_config(out_dir=str(tmp_path / "run"), model_kwargs=kwargs), pose_images(n=8))
    assert not (tmp_path / "run" / "config.yaml").exists() and not (tmp_path / "run" / "log.csv").exists()


def test_a_bad_model_argument_is_refused_before_any_image_is_read(tiny_config, pose_images, tmp_path):
    # AtLoc's pose head takes a dropout probability: 2.0 was refused only when the model was built, after every
    # training image had been decoded (minutes on a real flight)
    images = pose_images(n=8)

    class Unread(type(images)):  # the same images; reading one fails the test
        def __getitem__(self, i):
            raise AssertionError(f"image {i} was read before the model's arguments were checked")

    unread = Unread.__new__(Unread)
    unread.__dict__.update(images.__dict__)
    kwargs = {"backbone": "test_resnet", "feat_dim": 32, "dropout": 2.0}
    with pytest.raises(ValueError, match=r"^TrainConfig.model_kwargs \{.*'dropout': 2.0\}: PoseHead: `dropout` must "
                                         r"be a probability in \[0, 1\), got 2.0"):
        train(tiny_config(out_dir=str(tmp_path / "run"), model_kwargs=kwargs), unread)
    assert not (tmp_path / "run").exists()
