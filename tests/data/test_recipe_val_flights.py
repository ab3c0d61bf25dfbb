"""`evaluate_checkpoint` with a recipe beside the checkpoint: validation flights given by the user are the ones
evaluated (the recipe's are only the default), and are refused by name when they select no image."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import topoloc.experiments.recipe as recipe_module
from topoloc.experiments.recipe import RECIPE_FILE, FlightSpec, evaluate_checkpoint

PLANNED, LHS = "comballaz-2020-11-06-planned", "comballaz-LHS"


@pytest.fixture
def checkpoint(tmp_path, make_topo_flight, monkeypatch):
    """A root with a 20-row planned flight and a 30-row LHS flight; a checkpoint file whose recipe trains on
    the LHS flight's train split and validates on its val split. Loading the model, evaluating it and writing
    the report are replaced by stand-ins that record what they were given."""
    make_topo_flight(tmp_path / "data", PLANNED, n_rows=20)
    make_topo_flight(tmp_path / "data", LHS, n_rows=30)
    run = tmp_path / "run"
    run.mkdir()
    (run / RECIPE_FILE).write_text(yaml.safe_dump({"data": {
        "root": str(tmp_path / "data"), "train": [{"flight": LHS, "domain": "synthetic", "split": "train"}],
        "val": [{"flight": LHS, "domain": "synthetic", "split": "val"}],
        "test": [{"flight": PLANNED, "domain": "real"}]}}))
    ckpt = run / "last.pt"
    ckpt.write_bytes(b"stand-in")
    seen = {}

    def fake_evaluate(model, normalizer, tests, **kwargs):
        seen["val_sets"] = kwargs.get("val_sets")
        return SimpleNamespace(notes=[], brackets_of=None)

    monkeypatch.setattr(recipe_module, "load_model",
                        lambda *a, **k: (None, None, SimpleNamespace(model="m", image_size=(16, 24))))
    monkeypatch.setattr(recipe_module, "check_frame", lambda *a, **k: None)
    monkeypatch.setattr(recipe_module, "evaluate", fake_evaluate)
    monkeypatch.setattr(recipe_module, "write_report", lambda out_dir, runs, **k: Path(out_dir) / "report.md")
    return ckpt, tmp_path / "data", seen


def test_the_users_validation_flights_replace_the_recipes(checkpoint, tmp_path):
    ckpt, root, seen = checkpoint
    evaluate_checkpoint(ckpt, root, [f"{PLANNED}:real"], tmp_path / "eval", device="cpu",
                        val_flights=[f"{PLANNED}:synthetic:all"])
    (val,) = seen["val_sets"]
    # the user's flight, all 20 of its renders: not the recipe's LHS validation split
    assert (val.flight, val.domain, len(val)) == (PLANNED, "synthetic", 20)


def test_without_validation_flights_the_recipes_are_used(checkpoint, tmp_path):
    ckpt, root, seen = checkpoint
    evaluate_checkpoint(ckpt, root, [f"{PLANNED}:real"], tmp_path / "eval", device="cpu")
    assert [(v.flight, v.domain) for v in seen["val_sets"]] == [(LHS, "synthetic")]


def test_a_users_validation_flight_that_selects_no_image_is_refused_by_name(checkpoint, tmp_path):
    ckpt, root, seen = checkpoint
    empty = FlightSpec(PLANNED, "synthetic", "test", split_fractions=[1.0, 0.0, 0.0])  # no test rows
    with pytest.raises(ValueError, match=r"^val_flights \(--val-flights\): comballaz-2020-11-06-planned "
                                         r"\(synthetic, split 'test'\) selects no image"):
        evaluate_checkpoint(ckpt, root, [f"{PLANNED}:real"], tmp_path / "eval", device="cpu", val_flights=[empty])
    assert "val_sets" not in seen
