"""TrainConfig: AtLoc's defaults, validation naming the field, YAML round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from topoloc.engine import TrainConfig, build_augment
from topoloc._yaml import load_yaml
from topoloc.experiments.recipe import load_recipe


def test_defaults_are_the_atloc_paper():
    cfg = TrainConfig()
    assert (cfg.model, cfg.lr, cfg.weight_decay, cfg.batch_size) == ("atloc_resnet34", 5e-5, 5e-4, 64)
    assert (cfg.sx, cfg.sq, cfg.learn_loss_weights, cfg.image_size) == (0.0, -3.0, True, (256, 256))


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs={"feat_dim": 64, "backbone_kwargs": {"drop_rate": 0.1}},
                      epochs=3, image_size=(64, 96), augment="SimToReal", augment_strength=0.3, resume=True)
    assert cfg.augment == "simtoreal"
    path = cfg.to_yaml(tmp_path / "config.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["image_size"] == [64, 96] and data["model_kwargs"]["feat_dim"] == 64
    assert TrainConfig.from_yaml(path) == cfg
    assert TrainConfig.from_yaml(path, epochs=7).epochs == 7


def test_int_image_size_is_refused_and_callable_augment():
    def my_aug(x):
        return x

    # An int is the short side everywhere (topoloc.image_size); a training size has no aspect ratio to keep.
    with pytest.raises(ValueError, match=r"image_size.*\(128, 128\) for a square"):
        TrainConfig(image_size=128)
    assert TrainConfig(image_size="96x64").image_size == (64, 96)  # text is width first, as --size
    cfg = TrainConfig(image_size=(128, 128), augment=my_aug)
    assert cfg.image_size == (128, 128)
    assert cfg.to_dict()["augment"] == "callable:my_aug"
    assert TrainConfig.from_dict(cfg.to_dict()).augment is None
    assert build_augment(my_aug) is my_aug and build_augment(None) is None


@pytest.mark.parametrize("field, value, error", [
    ("model", "atloc_resnet999", ValueError),
    ("epochs", 0, ValueError),
    ("batch_size", 2.5, ValueError),
    ("lr", -1.0, ValueError),
    ("lr", "fast", TypeError),
    ("image_size", (32,), ValueError),
    ("image_size", (4, 4), ValueError),
    ("augment", "fog", ValueError),
    ("augment", 3, TypeError),
    ("device", "tpu", ValueError),
    ("cache_device", "gpu", ValueError),
    ("amp", "yes", TypeError),
    ("cpu_amp", "yes", TypeError),
    ("cpu_channels_last", 1, TypeError),
    ("checkpoint_every_steps", -1, ValueError),
    ("model_kwargs", ["feat_dim"], TypeError),
    ("resume", 1.0, TypeError),
    ("lr", float("inf"), ValueError),  # trained to a nan loss at step 2
    ("lr", float("nan"), ValueError),  # failed in torch's Adam, not naming `lr`
    ("sx", float("inf"), ValueError),
    ("grad_clip", 0.0, ValueError),  # clips every gradient to zero: nothing learnt
    ("augment_strength", 5.0, ValueError),  # SimToReal's strength lies in [0, 1]
    ("model_kwargs", {"feat_dmi": 64}, ValueError),  # was AtLoc's TypeError after the images were decoded
    ("epochs", True, ValueError),  # a bool is an int to Python: True would train 1 epoch
    ("log_every", 0, ValueError),  # steps between updates: 0 has no meaning
    ("val_every", -1, ValueError),
    ("weight_decay", -5e-4, ValueError),  # a negative decay grows the weights
    ("sq", float("nan"), ValueError),  # named `sq`, not `sx`
    ("resume_changes", "ask", ValueError),  # "refuse" or "allow"
    ("overwrite", "yes", TypeError),
])
def test_bad_fields_are_named(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value})


def test_resume_and_overwrite_together_are_refused():
    # `topoloc train --resume --overwrite` resumed and rewrote config.yaml beside the old run's log
    with pytest.raises(ValueError, match=r"`resume=True` .* and `overwrite=True` .* exclude each other"):
        TrainConfig(resume=True, overwrite=True)
    assert TrainConfig(resume="runs/a/last.pt", overwrite=True).overwrite  # another run's checkpoint: no conflict


def test_an_empty_resume_path_is_refused_when_the_config_is_made():
    # `train.resume: ""` (an unset variable) passed the config and failed at the start, naming '.' as a folder
    with pytest.raises(ValueError, match=r"`resume` must be a bool or a checkpoint path, got '' \(an empty path\)"):
        TrainConfig(resume="")


def test_numpy_numbers_are_taken_as_the_numbers_they_are(tmp_path):
    cfg = TrainConfig(epochs=np.int64(3), batch_size=np.int32(8), lr=np.float32(0.5))
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (3, 8, 0.5) and type(cfg.epochs) is int
    assert TrainConfig.from_yaml(cfg.to_yaml(tmp_path / "config.yaml")) == cfg


def test_yaml_keys_given_twice_are_refused_naming_both_lines(tmp_path):
    # YAML keeps the last of two equal keys: this recipe's first `train` section (model, size...) was dropped
    text = "train:\n  model: atloc_resnet18\n  epochs: 2\nevaluate: {}\ntrain:\n  epochs: 3\n"
    (tmp_path / "twice.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"twice.yaml.*key 'train' is there twice \(lines 1 and 5\)"):
        load_recipe(tmp_path / "twice.yaml")
    with pytest.raises(yaml.YAMLError, match=r"key 'lr' is there twice \(lines 1 and 2\)"):
        load_yaml("lr: 1e-3\nlr: 1e-4\n")


def test_base_60_numbers_are_not_read_as_numbers():
    # YAML 1.1 reads 1:2 as 62 (1 * 60 + 2): `--override train.epochs=1:2` trained 62 epochs
    assert load_yaml("epochs: 1:2\nlr: 1:30.5\nclock: 12:00") == {"epochs": "1:2", "lr": "1:30.5", "clock": "12:00"}
    assert yaml.safe_load("epochs: 1:2") == {"epochs": 62}  # what plain PyYAML does
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.from_dict(load_yaml("epochs: 1:2"))


def test_numbers_with_leading_zeros_are_decimal_not_octal():
    # YAML 1.1 reads 010 as 8: `--override train.epochs=010` trained 8 epochs
    assert yaml.safe_load("epochs: 010") == {"epochs": 8}  # what plain PyYAML does
    assert load_yaml("epochs: 010\nseed: -007\nsteps: 0_100\nzero: 0\nhex: 0x10") == {
        "epochs": 10, "seed": -7, "steps": 100, "zero": 0, "hex": 16}


def test_unknown_fields_and_files(tmp_path):
    with pytest.raises(ValueError, match="unknown field"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        TrainConfig.from_yaml(tmp_path / "list.yaml")


def test_augmentations_are_looked_up_by_name():
    import augment
    from kornia.augmentation import ColorJitter

    from topoloc.engine.augmentations import AUGMENTATIONS, register_augment

    sim = build_augment("simtoreal", strength=0.3)
    assert isinstance(sim, augment.SimToReal) and sim.strength == 0.3
    assert isinstance(build_augment("colorjitter"), ColorJitter) and build_augment("none") is None
    with pytest.raises(ValueError, match="unknown augment 'snowstorm'"):
        build_augment("snowstorm")
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment="snowstorm")
    try:  # a registered name is accepted by TrainConfig and built with the config's strength
        register_augment("halve", lambda strength: (lambda x: x * strength))
        cfg = TrainConfig(augment="HALVE", augment_strength=0.5)
        assert cfg.augment == "halve"
        x = torch.ones(1, 3, 4, 4)
        assert torch.equal(build_augment(cfg.augment, cfg.augment_strength)(x), x * 0.5)
        with pytest.raises(ValueError, match="already registered"):
            register_augment("halve", lambda s: None)
    finally:
        AUGMENTATIONS.pop("halve", None)


def test_from_yaml_names_a_file_that_is_not_yaml(tmp_path):
    # yaml's ParserError, several lines without the file's name, was raised as it was.
    (tmp_path / "config.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ValueError, match=r"TrainConfig.from_yaml: '.*config.yaml' is not valid YAML \(while parsing"):
        TrainConfig.from_yaml(tmp_path / "config.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00epochs")
    with pytest.raises(ValueError, match=r"binary.yaml' is not valid YAML"):
        TrainConfig.from_yaml(tmp_path / "binary.yaml")


def test_model_kwargs_must_be_plain_data():
    # An object passed, then failed as yaml's RepresenterError when config.yaml was written.
    with pytest.raises(TypeError, match=r"`model_kwargs\['feat_dim'\]` must be plain data .* got object"):
        TrainConfig(model_kwargs={"feat_dim": object()})
    with pytest.raises(TypeError, match=r"`model_kwargs\['backbone_kwargs'\]\[1\]` must be plain data"):
        TrainConfig(model_kwargs={"backbone_kwargs": [1, {2}]})
    assert TrainConfig(model_kwargs={"feat_dim": 64, "pretrained": False}).model_kwargs["feat_dim"] == 64


def test_a_config_that_cannot_be_written_leaves_the_previous_file_and_nothing_else(tmp_path):
    # the YAML was dumped into a fixed `config.yaml.tmp`, left behind when the dump failed
    path = TrainConfig(out_dir=str(tmp_path / "run")).to_yaml(tmp_path / "config.yaml")
    before = path.read_text()
    broken = TrainConfig(out_dir=str(tmp_path / "other"))
    object.__setattr__(broken, "model_kwargs", {"stem": object()})  # past the checks: YAML cannot represent it
    with pytest.raises(yaml.YAMLError):
        broken.to_yaml(path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_an_empty_yaml_file_is_the_default_config(tmp_path):
    # YAML reads an empty file (or one of comments) as None, not as a mapping without fields
    (tmp_path / "config.yaml").write_text("# every field at its default\n")
    assert TrainConfig.from_yaml(tmp_path / "config.yaml") == TrainConfig()


def test_paths_are_taken_and_written_as_strings(tmp_path):
    from pathlib import Path

    cfg = TrainConfig(init_from=Path("runs/a/last.pt"), resume=Path("runs/b/last.pt"),
                      model_kwargs={"backbone_kwargs": {"weights": Path("w/resnet.pt"), "sizes": (1, 2)}})
    assert (cfg.init_from, cfg.resume) == ("runs/a/last.pt", "runs/b/last.pt")
    written = yaml.safe_load(cfg.to_yaml(tmp_path / "config.yaml").read_text())
    assert written["model_kwargs"] == {"backbone_kwargs": {"weights": "w/resnet.pt", "sizes": [1, 2]}}


def test_model_kwargs_keys_must_be_strings_at_any_depth():
    # config.yaml would write the key 1 as "1": the model read back would be given another argument
    with pytest.raises(TypeError, match=r"`model_kwargs\['backbone_kwargs'\]` has the key 1; expected str keys"):
        TrainConfig(model_kwargs={"backbone_kwargs": {1: "a"}})
