"""TrainConfig.scene_coords: the auxiliary scene-coordinate head learns, is checkpointed, resumes, and is refused
where it cannot work."""

from __future__ import annotations

import pytest
import torch

from topoloc.data import as_cache
from topoloc.engine import TrainConfig, load_checkpoint, load_model, train
from topoloc.engine.scene_head import image_means, targets_match
from topoloc.engine.train import Trainer
from topoloc.models import create_model
from topoloc.models.scene_coords import scene_stages

from support.killed_runs import Killed, assert_same_weights, checkpoint_weights, kill_at

COMMON = dict(epochs=2, batch_size=6, checkpoint_every_steps=3, lr=1e-3,
              model_kwargs={"backbone": "test_resnet", "feat_dim": 32, "dropout": 0.5})


def _points(ds, size_hw=(32, 32)) -> torch.Tensor:
    """World points that the images show: the camera's east / north plus 30 m across the image, up 0.
    (The images' channel levels are linear in the camera's east and north.)"""
    n = len(ds)
    h, w = size_hw
    across = torch.linspace(-15.0, 15.0, w).expand(h, w)
    pts = torch.zeros(n, 3, h, w)
    pts[:, 0] = ds.xyz[:, 0, None, None].float() + across
    pts[:, 1] = ds.xyz[:, 1, None, None].float()
    pts[:, :, :4, :] = float("nan")  # a strip of sky
    return pts


def test_the_stages_of_a_resnet_and_a_vit_refused_by_name():
    resnet = create_model("atloc_resnet18", backbone="test_resnet", feat_dim=16)
    assert scene_stages(resnet) == ["layer2", "layer3", "layer4"]  # strides 8, 16, 32 (timm's feature_info)
    vit = create_model("atloc_resnet18", backbone="vit_tiny_patch16_224", feat_dim=16)
    with pytest.raises(ValueError, match="VisionTransformer is a token model"):
        scene_stages(vit)


def test_a_model_that_cannot_run_is_refused_by_name_with_the_head_on(tmp_path):
    # two stages of a ResNet: the model cannot run; with the head on, its probe's bare AttributeError came first
    from topoloc.data.cache import ImageCache

    c2w = torch.eye(4, dtype=torch.float64).repeat(8, 1, 1)
    c2w[:, 0, 3] = torch.arange(8.0)
    cache = ImageCache(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8), c2w)
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs={"feat_dim": 16, "backbone_kwargs": {"channels": [32, 64]}},
                      image_size=(32, 32), epochs=1, batch_size=4, out_dir=str(tmp_path / "run"), device="cpu",
                      scene_coords=3.0, progress=False)
    with pytest.raises(ValueError, match=r"^TrainConfig.model_kwargs: the model 'atloc_resnet18' built with .* cannot "
                                         r"run on a \(32, 32\) image \(AttributeError: 'ResNet' object has no "
                                         r"attribute 'layer3'\)"):
        train(cfg, cache, scene_points=torch.zeros(8, 3, 32, 32))


def test_the_head_learns_the_cells_points(tiny_config, pose_images):
    ds = pose_images(n=24)
    seen: list[float] = []

    def record(event):  # from the first step on, every step's head loss
        scene = event["trainer"].scene
        if not hasattr(scene, "recorded"):
            loss = scene.loss
            scene.recorded = True
            scene.loss = lambda idx: seen.append(float((v := loss(idx)).detach())) or v

    result = train(tiny_config(epochs=20, batch_size=8, lr=3e-3, scene_coords=1.0), ds, callbacks=[record],
                   scene_points=_points(ds))
    assert len(seen) == 59  # 3 steps per epoch, all but the first
    first, last = sum(seen[:6]) / 6, sum(seen[-6:]) / 6
    # measured 0.24 -> 0.07 (hundreds of metres); a head that learnt nothing stays near its first losses
    assert last < 0.5 * first, (first, last)
    logged = [row["scene_loss"] for row in result.history]  # log.csv's column: each epoch's mean of the steps'
    assert logged[-1] == pytest.approx(sum(seen[-3:]) / 3, rel=1e-6) and logged[-1] < 0.5 * logged[0]
    assert load_model(result.final_checkpoint)[0].__class__.__name__ == "AtLoc"  # the head is not in the model


def test_the_head_acts_is_checkpointed_and_a_killed_run_resumes_to_identical_weights(tiny_config, pose_images,
                                                                                    tmp_path):
    ds = pose_images(n=20)
    points = _points(ds)
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), scene_coords=2.0, **COMMON), ds, scene_points=points)
    plain = train(tiny_config(out_dir=str(tmp_path / "plain"), **COMMON), ds)
    assert any(not torch.equal(a, b) for a, b in zip(checkpoint_weights(whole.final_checkpoint).values(),
                                                     checkpoint_weights(plain.final_checkpoint).values()))
    head = load_checkpoint(whole.final_checkpoint)["scene_head"]
    assert head["stages"] == ["layer2", "layer3", "layer4"] and head["scale_m"] == 100.0
    assert load_checkpoint(plain.final_checkpoint)["scene_head"] is None
    assert [r["scene_loss"] for r in plain.history] == [None, None]  # log.csv's column stays empty
    assert all(r["scene_loss"] > 0 for r in whole.history)
    assert set(checkpoint_weights(whole.final_checkpoint)) == set(checkpoint_weights(plain.final_checkpoint))

    run = str(tmp_path / "killed")
    with pytest.raises(Killed):  # after step 5; the last checkpoint is at step 3
        train(tiny_config(out_dir=run, scene_coords=2.0, **COMMON), ds, callbacks=[kill_at(5)], scene_points=points)
    resumed = train(tiny_config(out_dir=run, resume=True, scene_coords=2.0, **COMMON), ds, scene_points=points)
    assert_same_weights(checkpoint_weights(whole.final_checkpoint), checkpoint_weights(resumed.final_checkpoint))
    # the head resumed too (a fresh head would have moved the backbone elsewhere, and its own weights differ)
    assert_same_weights(head["state"], load_checkpoint(resumed.final_checkpoint)["scene_head"]["state"])


def test_a_resume_cannot_add_or_drop_the_head(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=12)
    points = _points(ds)
    train(tiny_config(out_dir=str(tmp_path / "a"), epochs=1), ds)
    with pytest.raises(ValueError, match=r"scene_coords=0\.0; the head cannot be added"):
        train(tiny_config(out_dir=str(tmp_path / "a"), epochs=2, resume=True, resume_changes="allow",
                          scene_coords=1.0), ds, scene_points=points)
    train(tiny_config(out_dir=str(tmp_path / "b"), epochs=1, scene_coords=1.0), ds, scene_points=points)
    with pytest.raises(ValueError, match=r"scene_coords=1\.0; the head cannot be added to or dropped"):
        train(tiny_config(out_dir=str(tmp_path / "b"), epochs=2, resume=True, resume_changes="allow"), ds)
    with pytest.raises(Exception, match="scene_coords"):  # by default, a changed weight is refused like lr
        train(tiny_config(out_dir=str(tmp_path / "b"), epochs=2, resume=True, scene_coords=3.0), ds,
              scene_points=points)


def test_a_head_trained_in_other_target_units_is_refused_on_resume(tiny_config, pose_images, tmp_path):
    # its stored scale_m was ignored: a head trained at another SCENE_SCALE_M would resume with outputs in the
    # wrong units
    from topoloc.engine.checkpoint import save_checkpoint

    ds = pose_images(n=12)
    points = _points(ds)
    run = tmp_path / "run"
    train(tiny_config(out_dir=str(run), epochs=1, scene_coords=1.0), ds, scene_points=points)
    state = load_checkpoint(run / "last.pt")
    state["scene_head"]["scale_m"] = 10.0
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, run / "last.pt")
    with pytest.raises(ValueError, match=r"last.pt: the scene-coordinate head was trained with targets in units of "
                                         r"10.0 m, this version's are 100.0 m; start a new run"):
        train(tiny_config(out_dir=str(run), epochs=2, resume=True, scene_coords=1.0), ds, scene_points=points)


def test_a_resume_onto_other_geometry_is_refused_unless_allowed(tiny_config, pose_images, tmp_path, caplog):
    # geometry files re-rendered or replaced between a kill and its resume were taken as they were, and the head
    # went on training towards other targets with the checkpoint's centre
    ds = pose_images(n=12)
    points = _points(ds)
    run = tmp_path / "run"
    train(tiny_config(out_dir=str(run), epochs=1, scene_coords=1.0), ds, scene_points=points)
    before = (run / "last.pt").read_bytes()
    moved = points.clone()
    moved[3, 0] += 5.0  # one image's points 5 m east
    with pytest.raises(ValueError, match=r"last.pt: the scene-coordinate head's targets differ from those the run "
                                         r"was trained on.*resume_changes='allow'"):
        train(tiny_config(out_dir=str(run), epochs=2, resume=True, scene_coords=1.0), ds, scene_points=moved)
    assert (run / "last.pt").read_bytes() == before  # the run refused is left as it was
    with caplog.at_level("WARNING", logger="topoloc.engine"):
        train(tiny_config(out_dir=str(run), epochs=2, resume=True, resume_changes="allow", scene_coords=1.0), ds,
              scene_points=moved)
    assert "going on with the new targets" in caplog.text
    # the same points up to another device's rounding (1 mm here, within the 1 cm allowed) resume without a word
    train(tiny_config(out_dir=str(tmp_path / "same"), epochs=1, scene_coords=1.0), ds, scene_points=points)
    train(tiny_config(out_dir=str(tmp_path / "same"), epochs=2, resume=True, scene_coords=1.0), ds,
          scene_points=points + 1e-3)


def test_what_a_checkpoint_keeps_of_the_targets_worked_by_hand():
    cells = torch.tensor([[[[1.0, 2.0], [3.0, float("nan")]], [[0.0, 0.0], [6.0, 0.0]], [[5.0, 5.0], [5.0, 5.0]]]])
    # the NaN cell (its east is NaN) is left out: east (1 + 2 + 3) / 3, north (0 + 0 + 6) / 3, up 5
    assert image_means(cells).tolist() == [[2.0, 2.0, 5.0]]
    none = torch.full((1, 3, 2, 2), float("nan"))
    assert image_means(none).tolist() == [[0.0, 0.0, 0.0]]
    saved = image_means(cells)
    assert targets_match(saved, saved + 0.009) and not targets_match(saved, saved + 0.011)
    assert not targets_match(saved, image_means(torch.cat([cells, cells])))  # another number of images


def test_missing_or_wrong_points_are_refused_by_name(tiny_config, pose_images, tmp_path):
    ds = pose_images(n=12)
    cache = as_cache(ds, (32, 32))
    with pytest.raises(TypeError, match="scene_coords needs the training renders' world points.*ImageCache"):
        Trainer(tiny_config(scene_coords=1.0), cache)  # at once, before anything is decoded or written
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="`scene_points` has 5 images' points, the training set 12"):
        train(tiny_config(scene_coords=1.0), ds, scene_points=_points(ds)[:5])
    with pytest.raises(ValueError, match=r"`scene_points` must be a float \(N, 3, H, W\)"):
        train(tiny_config(scene_coords=1.0, overwrite=True), ds, scene_points=torch.zeros(12, 32, 32))
    with pytest.raises(ValueError, match="no cell of any training image has a scene point"):  # all sky
        train(tiny_config(scene_coords=1.0, overwrite=True), ds, scene_points=torch.full((12, 3, 32, 32), float("nan")))
    # points of another aspect than the images were pooled onto the head's grid all the same
    with pytest.raises(ValueError, match=r"`scene_points` are 64x32 \(W x H\) per image, not the training images' "
                                         r"32x32 \(TrainConfig.image_size\) or a scaling of it"):
        train(tiny_config(scene_coords=1.0, overwrite=True), ds, scene_points=_points(ds, (32, 64)))
    train(tiny_config(scene_coords=1.0, overwrite=True, epochs=1), ds, scene_points=_points(ds, (16, 16)))  # a scaling


def test_a_render_without_its_geometry_file_is_named_before_any_image_is_decoded(tmp_path):
    # it was found by the head's set-up, after the training images had been decoded
    from types import SimpleNamespace

    from topoloc.engine.scene_head import check_scene_source

    flights = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        paths = [folder / f"{name}_{i:05d}_img.png" for i in range(3)]
        for path in paths:
            path.write_bytes(b"")  # never opened
            path.with_name(path.name.replace("_img.png", "_depth.npy")).write_bytes(b"")
        flights.append(SimpleNamespace(render_paths=paths))
    collection = SimpleNamespace(datasets=flights)
    check_scene_source(collection, None)
    (tmp_path / "b" / "b_00002_depth.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"b_00002_img.png: no geometry beside this render: expected "
                                                r"b_00002_pc.npy .* or b_00002_depth.npy"):
        check_scene_source(collection, None)
    check_scene_source(collection, torch.zeros(6, 3, 4, 4))  # points given: the files are not needed


@pytest.mark.parametrize("changes,match", [
    (dict(scene_coords=-1.0), "`scene_coords` must be >= 0.0"),
    (dict(scene_coords=True), "`scene_coords` must be a number"),
    (dict(scene_coords=1.0, compile=True), "not supported with `compile=True`"),
])
def test_bad_settings_are_refused(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TrainConfig(**changes)
