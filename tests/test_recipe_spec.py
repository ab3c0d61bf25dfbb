"""A recipe's sections, flights and overrides, value by value: what each gives the run, and each refusal's words."""

from pathlib import Path

import pytest
import yaml

from topoloc.experiments.recipe import (FlightSpec, Recipe, _recipe_flights, apply_overrides, load_recipe, parse_flight,
                                        write_recipe)

FLIGHT, LHS = "comballaz-2020-11-06-planned", "comballaz-LHS"
TEST = [{"flight": FLIGHT, "domain": "real"}]  # the photos of the training poses: no overlap warning


def _recipe(tmp_path: Path, data: dict | None = None, **sections) -> Path:
    """A recipe file: ``data`` (default: one training and one test flight) and the other sections as given."""
    path = tmp_path / "r.yaml"
    data = {"root": "x", "train": [FLIGHT], "test": TEST} if data is None else data
    sections.setdefault("train", {"out_dir": str(tmp_path / "run")})
    path.write_text(yaml.safe_dump({"data": data, **sections}))
    return path


@pytest.mark.parametrize("entry, match", [
    ("", r"flight: expected a flight folder name, got ''"),
    ({"flight": FLIGHT, "domain": "winter"},
     r"data\.train\[0\]: flight 'comballaz-2020-11-06-planned': `domain` must be one of "
     r"\('synthetic', 'real', 'real_alt'\), got 'winter'"),
    ({"flight": FLIGHT, "split": "holdout"},
     r"data\.train\[0\]: flight 'comballaz-2020-11-06-planned': `split` must be all / train / val / test, "
     r"got 'holdout'"),
    ({"flight": FLIGHT, "split_fractions": {"train": 0.8}},
     rf"data\.train\[0\]: flight {FLIGHT!r}: `split_fractions` must be three non-negative"),
    ({"flight": FLIGHT, "split_seed": True},
     rf"data\.train\[0\]: flight {FLIGHT!r}: `split_seed` must be an integer >= 0, got True"),
    ({"flight": FLIGHT, "split_block": True},
     rf"data\.train\[0\]: flight {FLIGHT!r}: `split_block` must be an integer >= 1, got True"),
    (3, r"data\.train\[0\]: expected a flight name or a mapping \{flight, domain, split\}, got 3"),
])
def test_a_bad_training_flight_is_refused_naming_the_file_and_the_rule(tmp_path, entry, match):
    path = _recipe(tmp_path, {"root": "x", "train": [entry], "test": TEST})
    with pytest.raises(ValueError, match=rf"^recipe '.*r\.yaml': {match}"):
        load_recipe(path)


@pytest.mark.parametrize("data, match", [
    ([1, 2], r"data: expected a mapping with root, train, test, got list"),
    ({"root": "x", "train": [FLIGHT]}, r"data: missing `test`"),
    ({"root": "x", "train": [FLIGHT], "test": []}, r"data: `train` and `test` must each name at least one flight"),
    ({"root": "x", "train": [], "test": TEST}, r"data: `train` and `test` must each name at least one flight"),
    ({"root": "x", "train": [FLIGHT], "test": TEST, "frame": "atlantis"}, r"data\.frame: unknown frame 'atlantis'"),
])
def test_a_bad_data_section_is_refused_naming_the_file_and_the_key(tmp_path, data, match):
    with pytest.raises(ValueError, match=rf"^recipe '.*r\.yaml': {match}"):
        load_recipe(_recipe(tmp_path, data))


def test_a_lhs_flight_is_split_by_single_rows_unless_told(tmp_path):
    # LHS poses are independent: block 1 by default (other flights: 25). A training entry that says
    # split_block: 1 and a validation entry that says nothing split the flight the same way.
    assert FlightSpec(LHS).effective_split() == ((0.8, 0.1, 0.1), 0, 1)
    assert FlightSpec(FLIGHT).effective_split() == ((0.8, 0.1, 0.1), 0, 25)
    path = _recipe(tmp_path, {"root": "x", "train": [{"flight": LHS, "split": "train", "split_block": 1}],
                              "val": [{"flight": LHS, "split": "val"}], "test": TEST})
    assert load_recipe(path).data.val[0].effective_split() == ((0.8, 0.1, 0.1), 0, 1)


def test_a_flights_written_fractions_are_a_plain_list():
    d = FlightSpec(FLIGHT, "real", "test", split_fractions=(0.5, 0.25, 0.25)).to_dict()
    assert d == {"flight": FLIGHT, "domain": "real", "split": "test", "split_fractions": [0.5, 0.25, 0.25]}
    assert type(d["split_fractions"]) is list


def test_validation_rows_that_are_a_second_training_flights_rows_are_warned_about(tmp_path):
    path = _recipe(tmp_path, {"root": "x", "train": [LHS, FLIGHT], "val": [{"flight": FLIGHT, "split": "val"}],
                              "test": [{"flight": FLIGHT, "domain": "real"}]})
    with pytest.warns(UserWarning, match=r"^data\.val\[0\]: the val rows of 'comballaz-2020-11-06-planned' "
                                         r"\(synthetic, split 'val'\) are training rows of data\.train\[1\]"):
        load_recipe(path)


def test_overrides_key_by_key():
    values = {"train": {"epochs": 3, "image_size": [16, 24]}}
    out = apply_overrides(values, [" train.epochs = 5", "train . image_size=[32, 48]", "evaluate.classes=",
                                   "train.model_kwargs. dropout=0.1"])
    assert out == {"train": {"epochs": 5, "image_size": [32, 48], "model_kwargs": {"dropout": 0.1}},
                   "evaluate": {"classes": ""}}
    assert values == {"train": {"epochs": 3, "image_size": [16, 24]}}  # the caller's values are not changed
    apply_overrides(values, ["train.image_size=[1, 2]"])
    assert values["train"]["image_size"] == [16, 24]


@pytest.mark.parametrize("override, match", [
    ("train..epochs=5", r"override 'train\.\.epochs=5': empty key part in 'train\.\.epochs'"),
    ("=5", r"override '=5': empty key part in ''"),
    ("train. .epochs=5", r"override 'train\. \.epochs=5': empty key part in 'train\. \.epochs'"),
    ("train.epochs.x=1", r"override 'train\.epochs\.x=1': 'epochs' is not a mapping"),
    ("train.lr=[5", r"override 'train\.lr=\[5': the value is not valid YAML"),
    ("train.epochs", r"override 'train\.epochs': expected key=value, e\.g\. train\.epochs=5"),
])
def test_a_bad_override_is_refused_naming_it(override, match):
    with pytest.raises(ValueError, match=rf"^{match}"):
        apply_overrides({"train": {"epochs": 3}}, [override])


def test_one_override_given_as_a_string_is_refused_saying_to_pass_a_list(tmp_path):
    # was "override 't': expected key=value": the string was read one character at a time
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 3}}))
    with pytest.raises(TypeError, match=r"^overrides: expected a list of 'key=value' strings, got the string "
                                        r"'train\.epochs=5': pass \['train\.epochs=5'\]$"):
        load_recipe(path, "train.epochs=5")
    assert apply_overrides({"train": {"epochs": 3}}, ("train.epochs=5",)) == {"train": {"epochs": 5}}


def test_an_empty_recipe_file_takes_its_sections_from_the_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("")
    with pytest.raises(ValueError, match=r"^recipe '.*r\.yaml': data: expected a mapping with root, train, test, "
                                         r"got nothing \(no `data` section, or an empty one\)$"):
        load_recipe(path)  # it said "got NoneType"
    recipe = load_recipe(path, ["data.root=x", f"data.train=[{FLIGHT}]",
                                f"data.test=[{{flight: {FLIGHT}, domain: real}}]", f"train.out_dir={tmp_path / 'run'}"])
    assert (recipe.data.root, recipe.data.train, recipe.data.test) == ("x", [FlightSpec(FLIGHT)],
                                                                       [FlightSpec(FLIGHT, "real")])
    # the defaults of what the file leaves out
    assert (recipe.data.frame, recipe.data.val, recipe.eval_batch_size, recipe.eval_landcover, recipe.eval_classes) == (
        "comballaz", [], 64, False, None)
    assert recipe.eval_out_dir == str(tmp_path / "run" / "eval") and recipe.source == str(path)


def test_a_recipe_that_is_not_a_mapping_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("- data\n- train\n")
    with pytest.raises(ValueError, match=r"^recipe '.*r\.yaml': expected a mapping with data / train / evaluate "
                                         r"sections$"):
        load_recipe(path)


@pytest.mark.parametrize("data, train, override", [
    # the file's own error names a key that an override's key is the end or the start of
    ({"root": "x", "train": [3], "test": TEST}, None, "train={epochs: 2}"),  # data.train[0] is not `train`
    ({"root": "x", "train": [FLIGHT], "test": TEST}, {"lr_schedule": "steep"}, "train.lr=1e-3"),
    ({"root": "x", "train": [FLIGHT], "test": TEST, "flights": [FLIGHT]}, None, "data.root=/y"),  # another key
])
def test_an_error_in_the_file_is_not_blamed_on_an_override_of_a_neighbouring_key(tmp_path, data, train, override):
    path = _recipe(tmp_path, data, train={"out_dir": str(tmp_path / "run"), **(train or {})})
    with pytest.raises(ValueError) as err:
        load_recipe(path, [override])
    assert str(err.value).startswith(f"recipe {str(path)!r}: ") and "override" not in str(err.value)


@pytest.mark.parametrize("evaluate, match", [
    ({"batchsize": 8, "out_dir": "e"}, r"`evaluate` takes out_dir, batch_size, landcover and classes, got "
                                       r"\{'batchsize': 8, 'out_dir': 'e'\}"),
    ({"landcover": "yes please"}, r"evaluate\.landcover: expected true or false, got 'yes please'"),
    ({"classes": "  "}, r"evaluate\.classes: expected the path of a JSON class table or a built-in table's name "
                        r"\(topo-datagen, mini-comballaz\), got '  '"),
    ({"classes": 5}, r"evaluate\.classes: expected the path .*, got 5"),
])
def test_a_bad_evaluate_section_is_refused_naming_the_key(tmp_path, evaluate, match):
    with pytest.raises(ValueError, match=rf"^recipe '.*r\.yaml': {match}$"):
        load_recipe(_recipe(tmp_path, evaluate=evaluate))


def test_the_evaluate_section_reaches_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    recipe = load_recipe(_recipe(tmp_path, evaluate={"out_dir": "~/ev", "batch_size": 8, "landcover": True,
                                                     "classes": "topo-datagen"}))
    assert (recipe.eval_out_dir, recipe.eval_batch_size, recipe.eval_landcover, recipe.eval_classes) == (
        str(tmp_path / "home" / "ev"), 8, True, "topo-datagen")


def test_a_flight_written_as_the_cli_writes_it_is_read_as_its_parts(tmp_path):
    # 'flight:domain:split' in a recipe's list was taken as a folder of that name (found missing only later)
    path = _recipe(tmp_path, {"root": "x", "train": [f"{FLIGHT}:synthetic:train"],
                              "val": [f"{FLIGHT}:synthetic:val"], "test": [f"{FLIGHT}:real"]})
    recipe = load_recipe(path)
    assert recipe.data.train == [FlightSpec(FLIGHT, "synthetic", "train")]
    assert FlightSpec.parse(FLIGHT, "data.train[0]") == FlightSpec(FLIGHT, "synthetic", "all")  # a plain name
    assert recipe.data.val == [FlightSpec(FLIGHT, "synthetic", "val")]
    assert recipe.data.test == [FlightSpec(FLIGHT, "real")]
    bad = _recipe(tmp_path, {"root": "x", "train": [FLIGHT], "test": [f"{FLIGHT}:photos"]})
    with pytest.raises(ValueError, match=r"data.test\[0\]: flight .*`domain` must be one of .*got 'photos'"):
        load_recipe(bad)


def test_a_written_recipe_reads_back_as_the_same_recipe(tmp_path):
    path = _recipe(tmp_path, {"root": "x", "frame": "epfl", "train": [{"flight": FLIGHT, "split": "train"}],
                              "val": [{"flight": FLIGHT, "split": "val"}], "test": TEST},
                   evaluate={"out_dir": str(tmp_path / "ev"), "batch_size": 8, "landcover": True})
    recipe = load_recipe(path)
    write_recipe(recipe, tmp_path / "run" / "recipe.yaml")
    again = load_recipe(tmp_path / "run" / "recipe.yaml")
    assert isinstance(again, Recipe) and again.to_dict() == recipe.to_dict()
    assert (again.data.frame, again.eval_out_dir, again.eval_batch_size, again.eval_landcover, again.eval_classes) == (
        "epfl", str(tmp_path / "ev"), 8, True, None)


def test_a_recipe_yaml_beside_a_checkpoint_that_is_not_one_is_refused_naming_it(tmp_path):
    (tmp_path / "recipe.yaml").write_text(f"data: {{root: x, train: [{FLIGHT}]}}\n")
    with pytest.raises(ValueError, match=r"^'.*recipe\.yaml': not a recipe written by `topoloc train`: "
                                         r"data: missing `test`$"):
        _recipe_flights(tmp_path / "last.pt")
    # not YAML, not a mapping, not UTF-8: a bare YAMLError, AttributeError or UnicodeDecodeError before; a key
    # given twice: the last one silently kept before
    for content, why in ((b"data: [unclosed\n", "not readable YAML"), (b"- a\n- b\n", "expected a mapping .*got list"),
                         (b"data: r\xe9sultats\n", "not readable YAML"),
                         (b"data:\n  root: x\n  root: y\n", r"not readable YAML \(the key 'root' is there twice")):
        (tmp_path / "recipe.yaml").write_bytes(content)
        with pytest.raises(ValueError, match=rf"^'.*recipe\.yaml': not a recipe written by `topoloc train`: {why}"):
            _recipe_flights(tmp_path / "last.pt")


@pytest.mark.parametrize("text, match", [
    ("", r"flight: expected 'flight\[:domain\[:split\]\]', got ''"),
    (f"{FLIGHT}:real:test:x", rf"flight '{FLIGHT}:real:test:x': expected 'flight\[:domain\[:split\]\]'"),
])
def test_a_bad_flight_spec_is_refused_naming_the_form(text, match):
    with pytest.raises(ValueError, match=rf"^{match}$"):
        parse_flight(text)


@pytest.mark.parametrize("section, override, read", [
    ("train", "train.epochs=5", lambda r: r.train.epochs == 5),
    ("evaluate", "evaluate.batch_size=8", lambda r: r.eval_batch_size == 8),
])
def test_an_override_sets_a_key_of_a_section_the_file_leaves_empty(tmp_path, section, override, read):
    # `train:` with every key commented out is an empty section (YAML null), which the file may have;
    # an override of one of its keys was refused: "'train' is not a mapping"
    path = tmp_path / "r.yaml"
    path.write_text(f"data: {{root: x, train: [{FLIGHT}], test: [{{flight: {FLIGHT}, domain: real}}]}}\n"
                    f"{section}:\n  # batch_size: 4\n")
    assert read(load_recipe(path, [override, f"train.out_dir={tmp_path / 'run'}"]))
    assert apply_overrides({"train": None}, ["train.epochs=5"]) == {"train": {"epochs": 5}}


def test_a_flight_mapping_without_its_flight_is_refused_by_name(tmp_path):
    # it was a TypeError naming FlightSpec.__init__'s positional argument, not the recipe's entry
    path = _recipe(tmp_path, {"root": "x", "train": [FLIGHT], "test": [{"domain": "real", "split": "test"}]})
    with pytest.raises(ValueError, match=r"^recipe '.*r\.yaml': data\.test\[0\]: missing `flight` \(the flight "
                                         r"folder's name\) in \{'domain': 'real', 'split': 'test'\}$"):
        load_recipe(path)


def test_data_semantics_is_deprecated_refused_unless_a_bool_and_no_longer_written(tmp_path):
    # it was read with bool() (the string "false" gave True) and never used by anything
    data = {"root": "x", "train": [FLIGHT], "test": TEST}
    with pytest.raises(ValueError, match=r"^recipe '.*r\.yaml': data\.semantics: expected true or false, got 'false'"):
        load_recipe(_recipe(tmp_path, {**data, "semantics": "false"}))
    with pytest.warns(FutureWarning, match=r"data\.semantics has no effect .* remove it from the recipe"):
        recipe = load_recipe(_recipe(tmp_path, {**data, "semantics": True}))
    write_recipe(recipe, tmp_path / "out.yaml")
    assert set(yaml.safe_load((tmp_path / "out.yaml").read_text())["data"]) == {"root", "frame", "train", "val", "test"}


def test_a_written_recipe_leaves_out_how_its_run_was_started_and_its_default_report_folder(tmp_path):
    # run again, a recipe.yaml with `overwrite: true` replaced its run without asking, and its default
    # evaluate.out_dir, written as runs/x/eval, put the new run's report over the first run's
    path = _recipe(tmp_path, train={"out_dir": str(tmp_path / "run"), "overwrite": True, "resume_changes": "allow"})
    write_recipe(load_recipe(path), tmp_path / "run" / "recipe.yaml")
    written = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert not {"overwrite", "resume", "resume_changes"} & written["train"].keys()
    assert written["evaluate"]["out_dir"] is None
    again = load_recipe(tmp_path / "run" / "recipe.yaml", [f"train.out_dir={tmp_path / 'run2'}"])
    assert (again.train.overwrite, again.train.resume, again.train.resume_changes) == (False, False, "refuse")
    assert again.eval_out_dir == str(tmp_path / "run2" / "eval")
    # a report folder given stays as given
    given = _recipe(tmp_path, evaluate={"out_dir": str(tmp_path / "reports")})
    write_recipe(load_recipe(given), tmp_path / "run" / "recipe.yaml")
    assert yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["evaluate"]["out_dir"] == str(
        tmp_path / "reports")
