"""Every recipe YAML loads into a validated Recipe (DataSpec + TrainConfig); overrides apply."""

from pathlib import Path

import pytest

from topoloc.engine.config import TrainConfig
from topoloc.experiments.recipe import FlightSpec, apply_overrides, load_recipe, parse_flight

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ALL = sorted(RECIPES.glob("*.yaml")) + sorted(RECIPES.glob("topo/*.yaml"))


def test_the_four_experiments_exist_for_both_data_sources():
    names = {"synthetic_only", "real_only", "mixed", "synthetic_augmented"}
    assert {p.stem for p in RECIPES.glob("*.yaml")} >= names
    assert {p.stem for p in RECIPES.glob("topo/*.yaml")} >= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_loads(path):
    recipe = load_recipe(path)
    assert isinstance(recipe.train, TrainConfig)
    assert recipe.data.train and recipe.data.test
    assert {f.domain for f in recipe.data.test} == {"synthetic", "real"}
    if "augmented" in path.stem:
        assert recipe.train.augment == "simtoreal"
    if path.stem == "synthetic_only":
        assert recipe.train.augment is None
    if "synthetic" in path.stem:  # synthetic training only
        assert {f.domain for f in recipe.data.train} == {"synthetic"}
    if path.stem == "real_only":
        assert {f.domain for f in recipe.data.train} == {"real"}


def test_overrides_and_errors(tmp_path):
    recipe = load_recipe(RECIPES / "synthetic_augmented.yaml", ["train.epochs=2", "data.root=/x", "train.image_size=[32, 48]"],
                         resume=True)
    assert recipe.train.epochs == 2 and recipe.data.root == "/x" and recipe.train.image_size == (32, 48)
    assert recipe.train.resume is True
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ValueError, match="epochs"):
        load_recipe(RECIPES / "mixed.yaml", ["train.epochs=0"])
    with pytest.raises(ValueError, match="unknown"):
        load_recipe(RECIPES / "mixed.yaml", ["train.epoch=3"])
    # the second "real" appearance (`topoloc render --real-alt`) is a domain a flight spec can name
    assert parse_flight("comballaz-2020-11-06-planned:real_alt:test") == FlightSpec(
        "comballaz-2020-11-06-planned", "real_alt", "test")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {root: x, train: [{flight: a, domain: winter}], test: [b]}\n")
    with pytest.raises(ValueError, match="domain"):
        load_recipe(bad)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_recipe(tmp_path / "nope.yaml")
