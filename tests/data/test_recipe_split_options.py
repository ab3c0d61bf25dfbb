"""A recipe's flights can set how their rows are split (fractions, seed, block), as the demo does."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from topoloc.experiments.recipe import (RECIPE_FILE, FlightSpec, _recipe_flights, write_recipe, build_flights,
                                        load_recipe)

FLIGHT = "comballaz-2020-11-06-planned"
SPLIT = {"split_fractions": [0.9, 0.1, 0.0], "split_block": 10}


def _recipe(tmp_path: Path, root: Path, train: dict, val: dict) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"data": {"root": str(root), "train": [train], "val": [val],
                                             "test": [{"flight": FLIGHT, "domain": "real"}]},
                                    "train": {"out_dir": str(tmp_path / "run")}}))
    return path


def test_split_options_reach_the_flights(tmp_path, make_topo_flight):
    make_topo_flight(tmp_path / "data", FLIGHT, n_rows=100)
    recipe = load_recipe(_recipe(tmp_path, tmp_path / "data", {"flight": FLIGHT, "split": "train", **SPLIT},
                                 {"flight": FLIGHT, "split": "val", **SPLIT}))
    (train,), (val,) = build_flights(recipe.data, "train"), build_flights(recipe.data, "val")
    # 100 rows in blocks of 10: 9 blocks train, 1 block validation, nothing for test
    assert len(train.rows) == 90 and len(val.rows) == 10
    assert sorted(np.concatenate([train.rows, val.rows]).tolist()) == list(range(100))
    assert val.rows.min() % 10 == 0 and val.rows.tolist() == list(range(val.rows.min(), val.rows.min() + 10))
    # without the options the flight's own defaults apply (0.8 / 0.1 / 0.1): not 90 training rows
    plain = load_recipe(_recipe(tmp_path, tmp_path / "data", {"flight": FLIGHT, "split": "train"},
                                {"flight": FLIGHT, "split": "val"}))
    assert len(build_flights(plain.data, "train")[0].rows) != 90


def test_split_options_survive_the_written_recipe(tmp_path):
    spec = FlightSpec(FLIGHT, "synthetic", "train", split_fractions=[0.9, 0.1, 0.0], split_seed=3, split_block=10)
    val_spec = FlightSpec(FLIGHT, "synthetic", "val", split_fractions=[0.9, 0.1, 0.0], split_seed=3, split_block=10)
    recipe = load_recipe(_recipe(tmp_path, tmp_path, spec.to_dict(), val_spec.to_dict()))
    write_recipe(recipe, tmp_path / "run" / RECIPE_FILE)
    train, val = _recipe_flights(tmp_path / "run" / "last.pt")
    assert train == [spec] and val == [val_spec]
    assert train[0].split_options() == {"split_fractions": (0.9, 0.1, 0.0), "split_seed": 3, "split_block": 10}
    assert "split_seed" not in FlightSpec(FLIGHT).to_dict()


def test_a_failed_recipe_write_leaves_the_previous_file(tmp_path, monkeypatch):
    # recipe.yaml was written in place: a write killed or failed half-way left `topoloc evaluate` a broken file
    spec, val_spec = FlightSpec(FLIGHT, "synthetic", "train"), FlightSpec(FLIGHT, "synthetic", "val")
    recipe = load_recipe(_recipe(tmp_path, tmp_path, spec.to_dict(), val_spec.to_dict()))
    path = tmp_path / "run" / RECIPE_FILE
    write_recipe(recipe, path)
    before = path.read_bytes()

    def broken_dump(data, stream=None, **kwargs):  # fails half-way, as a full disk or a kill would
        if stream is not None:
            stream.write("data:\n  root: ")
        raise OSError("disk full")

    monkeypatch.setattr(yaml, "safe_dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        write_recipe(recipe, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [RECIPE_FILE]


@pytest.mark.parametrize("key, value, match", [
    ("split_fractions", [0.8, 0.1], "split_fractions"),
    ("split_fractions", [0.9, 0.2, 0.0], "split_fractions"),
    ("split_block", 0, "split_block"),
    ("split_seed", -1, "split_seed"),
    ("split_block", 2.5, "split_block"),
    ("split_blocks", 10, "unknown key"),
])
def test_bad_split_options_are_refused_by_flight(tmp_path, key, value, match):
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "train", key: value},
                   {"flight": FLIGHT, "split": "val"})
    with pytest.raises(ValueError, match=match) as err:
        load_recipe(path)
    assert "r.yaml" in str(err.value)
    if key != "split_blocks":
        assert FLIGHT in str(err.value)


@pytest.mark.parametrize("val, match", [
    # the same flight split two ways: its rows would overlap
    ({"flight": FLIGHT, "split": "val", "split_block": 5, "split_fractions": [0.9, 0.1, 0.0]},
     r"data\.val\[0\].*\(0\.9, 0\.1, 0\.0\), 0, 5\).*data\.train\[0\].*\(0\.9, 0\.1, 0\.0\), 0, 10\)"),
    # the options left out are the flight's defaults (0.8 / 0.1 / 0.1, seed 0, block 25), not the training entry's
    ({"flight": FLIGHT, "split": "val"}, r"data\.val\[0\].*\(0\.8, 0\.1, 0\.1\), 0, 25\)"),
])
def test_a_flight_split_two_ways_is_refused(tmp_path, val, match):
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "train", **SPLIT}, val)
    with pytest.raises(ValueError, match=match) as err:
        load_recipe(path)
    assert "r.yaml" in str(err.value)


@pytest.mark.parametrize("val, match", [
    # every row, or the training split itself, of the flight the model trains on
    ({"flight": FLIGHT}, r"data\.val\[0\]: the val rows of 'comballaz-2020-11-06-planned' \(synthetic, split 'all'\) "
                         r"are training rows of data\.train\[0\] \(split 'train'\): its figures measure the training "
                         r"fit"),
    ({"flight": FLIGHT, "split": "train", **SPLIT}, r"data\.val\[0\].*training rows"),
])
def test_validation_rows_that_are_training_rows_are_warned_about(tmp_path, val, match):
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "train", **SPLIT}, val)
    with pytest.warns(UserWarning, match=match):
        load_recipe(path)


@pytest.mark.filterwarnings("error")
def test_the_same_poses_in_another_domain_and_disjoint_splits_are_allowed(tmp_path):
    # renders for training, the photos of the same flight for testing: a protocol of its own
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "all"},
                   {"flight": FLIGHT, "domain": "real", "split": "all"})
    assert load_recipe(path).data.val[0].domain == "real"
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "train", "split_block": 25},
                   {"flight": FLIGHT, "split": "val"})  # block 25 is the default: the same split
    assert load_recipe(path).data.val[0].split == "val"


@pytest.mark.parametrize("key, value, low", [("split_block", 0, 1), ("split_block", -3, 1), ("split_seed", -1, 0)])
def test_split_block_and_seed_lower_bounds_are_named(tmp_path, key, value, low):
    """A block of 0 rows is refused by the rule it breaks (a whole number >= 1), not by a later error."""
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "train", key: value},
                   {"flight": FLIGHT, "split": "val"})
    with pytest.raises(ValueError, match=rf"flight '{FLIGHT}': `{key}` must be an integer >= {low}, got {value}"):
        load_recipe(path)


def test_split_block_one_and_seed_zero_are_allowed(tmp_path):
    path = _recipe(tmp_path, tmp_path, {"flight": FLIGHT, "split": "train", "split_block": 1, "split_seed": 0},
                   {"flight": FLIGHT, "split": "val", "split_block": 1, "split_seed": 0})
    assert load_recipe(path).data.train[0].split_options()["split_block"] == 1
