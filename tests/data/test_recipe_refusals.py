"""A recipe's test flights and `evaluate` settings are refused before training, not after it."""

import re
from pathlib import Path

import pytest
import yaml

from topoloc.experiments import recipe as recipe_module
from topoloc.experiments.recipe import load_recipe, run_recipe

FLIGHT = "comballaz-2020-11-06-planned"


def _recipe(tmp_path: Path, test_flight: str = FLIGHT, **evaluate) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"data": {"root": str(tmp_path / "data"), "train": [{"flight": FLIGHT}],
                                             "test": [{"flight": test_flight, "domain": "real"}]},
                                    "train": {"out_dir": str(tmp_path / "run")}, "evaluate": evaluate}))
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Training replaced by a failure: a test that reaches it has let the recipe through."""
    def train(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(recipe_module, "train", train)


def test_a_missing_test_flight_is_refused_before_training(tmp_path, make_topo_flight, no_training):
    make_topo_flight(tmp_path / "data", FLIGHT, n_rows=20)
    recipe = load_recipe(_recipe(tmp_path, test_flight="comballaz-2021-10-13-piloted"))
    with pytest.raises(FileNotFoundError, match="comballaz-2021-10-13-piloted"):
        run_recipe(recipe)


def test_an_evaluate_folder_that_cannot_be_made_is_refused_before_training(tmp_path, make_topo_flight, no_training):
    make_topo_flight(tmp_path / "data", FLIGHT, n_rows=20)
    recipe = load_recipe(_recipe(tmp_path, out_dir="/proc/topoloc-eval"))  # /proc takes no folders, root or not
    with pytest.raises(ValueError, match=r"evaluate.out_dir '/proc/topoloc-eval' cannot be made"):
        run_recipe(recipe)


def test_a_refused_training_leaves_no_empty_evaluate_folder(tmp_path, make_topo_flight, no_training):
    # the folder made before training (to find an unwritable one at once) stayed behind, empty
    make_topo_flight(tmp_path / "data", FLIGHT, n_rows=20)
    (tmp_path / "kept").mkdir()
    for out_dir, stays in ((tmp_path / "run" / "eval", False), (tmp_path / "kept", True)):
        with pytest.raises(AssertionError, match="training started"):
            run_recipe(load_recipe(_recipe(tmp_path, out_dir=str(out_dir))))
        assert out_dir.is_dir() == stays  # a folder that was there before is not the recipe's to remove


@pytest.mark.parametrize("value", [0, -3, 2.5, "64", True])
def test_a_bad_evaluate_batch_size_is_refused_by_name(tmp_path, value):
    with pytest.raises(ValueError, match=rf"r.yaml.*evaluate.batch_size: expected a whole number >= 1, got {value!r}"):
        load_recipe(_recipe(tmp_path, batch_size=value))


def test_an_evaluate_folder_under_a_file_is_refused_by_name(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    for out_dir in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "eval"):
        with pytest.raises(ValueError, match=r"evaluate.out_dir .*notes.txt' is a file, not a folder"):
            load_recipe(_recipe(tmp_path, out_dir=str(out_dir)))


def test_a_recipe_that_is_not_utf8_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train:\n  out_dir: r\xe9sultats\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.yaml'?: not a UTF-8 text file"):
        load_recipe(path)


@pytest.mark.parametrize("root, got", [(None, "null"), ("", "an empty string"), ("  ", "an empty string"),
                                       (["a", "b"], "['a', 'b']"), (True, "True")])
def test_a_data_root_that_is_no_path_is_refused_by_name(tmp_path, root, got):
    # null read as the folder 'None' ("data.root 'None': folder not found"), and '' as the working folder
    path = _recipe(tmp_path)
    recipe = yaml.safe_load(path.read_text())
    recipe["data"]["root"] = root
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ValueError, match=r"r.yaml.*data.root: expected the path of the folder that holds the flight "
                                         rf"folders, got {re.escape(got)}$"):
        load_recipe(path)


def test_a_flights_own_refusal_says_where_the_flight_is_and_a_train_that_is_no_mapping_is_named(tmp_path):
    # the flight's check named the flight only ("flight 'a': ..."), not which entry of which list held it; and
    # `train: fast` was "TrainConfig.from_dict: expected a dict, got str"
    path = tmp_path / "r.yaml"
    path.write_text("data: {root: /tmp, train: [b, {flight: a, split_fractions: [0.9, 0.1]}], test: [b]}\n")
    with pytest.raises(ValueError, match=re.escape(f"recipe {str(path)!r}: data.train[1]: flight 'a': "
                                                   "`split_fractions` must be three")):
        load_recipe(path)
    path.write_text("data: {root: /tmp, train: [a], test: [b]}\ntrain: fast\n")
    with pytest.raises(ValueError, match=re.escape(f"recipe {str(path)!r}: train: expected a mapping of TrainConfig "
                                                   "fields (epochs: 20, lr: 0.001, ...), got 'fast'")):
        load_recipe(path)
