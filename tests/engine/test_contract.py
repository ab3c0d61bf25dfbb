"""The input contract through training, checkpoints and evaluation; the run's initial model; devices."""

import pytest
import torch

from topoloc._device import resolve_device
from topoloc.engine import load_checkpoint, load_model, save_checkpoint, train
from topoloc.engine.distributed import DistInfo
from topoloc.engine.evaluate import evaluate
from topoloc.engine.train import Trainer, initial_model
from topoloc.geodesy import LocalFrame
from topoloc.models import create_model


def test_the_checkpoint_carries_size_and_normalisation_and_evaluate_uses_them(tiny_config, pose_images, tmp_path):
    result = train(tiny_config(out_dir=str(tmp_path / "run"), epochs=1, image_size=(32, 32)), pose_images(n=8))
    state = load_checkpoint(result.final_checkpoint)
    assert state["model_config"]["image_size"] == [32, 32] and len(state["model_config"]["mean"]) == 3
    # A normalisation recorded in the checkpoint wins over the backbone's default.
    state["model_config"]["mean"], state["model_config"]["std"] = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    save_checkpoint(state, tmp_path / "custom.pt")
    model, normalizer, _ = load_model(tmp_path / "custom.pt")
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    torch.testing.assert_close(model.prepare(white), torch.ones(1, 3, 2, 2))  # (1 - 0) / 1
    # A checkpoint from before the contract (no model_config): the size of its TrainConfig.
    del state["model_config"]
    save_checkpoint(state, tmp_path / "old.pt")
    old, _, _ = load_model(tmp_path / "old.pt")
    assert old.config["image_size"] == [32, 32]
    # evaluate without image_size runs the model at the size it records, not the images' 40 x 48.
    seen = []
    old.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    evaluate(old, normalizer, pose_images(n=4, size_hw=(40, 48)), frame=LocalFrame.named("comballaz"),
             retrieval=False)
    assert seen and set(seen) == {(32, 32)}


def test_the_trainer_starts_from_the_runs_initial_model(tiny_config, pose_images):
    cfg = tiny_config(seed=3)
    torch.manual_seed(3)  # what "the run's initial weights" means: the model drawn right after seeding
    by_hand = create_model(cfg.model, **cfg.model_kwargs).state_dict()
    built = initial_model(cfg)
    assert built.config["image_size"] == [32, 32]
    trainer = Trainer(cfg, pose_images(n=8))
    trainer._setup(DistInfo())
    for key, value in by_hand.items():
        assert torch.equal(built.state_dict()[key], value), key
        assert torch.equal(trainer.model.state_dict()[key], value), key


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="my_device: expected 'auto'"):
        resolve_device("banana", name="my_device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="TrainConfig.device: 'cuda' asked for but no CUDA device"):
            resolve_device("cuda", name="TrainConfig.device")
