"""Guards of `evaluate_checkpoint` against scoring what the model trained on, and against writing its report
over another command's output.

- `adopt_training_splits`: a test flight that is also a training flight, named without split options
  of its own, is split as training split it (so ``comballaz-demo-train:synthetic:test`` means the rows
  that training left out, not the rows of the flight's default split).
- `training_rows_in_tests`: the notes that say how many test images sit at training poses.
- `other_training_data`: the note that the training flights read for the brackets are not the images the
  checkpoint trained on (e.g. a flight that gained rows since, whose splits moved).
- `refuse_foreign_folder`: an output folder that holds a demo's output is refused (a report written there
  would replace the demo's report and delete its predictions and plots).
"""

from __future__ import annotations

import dataclasses
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

from topoloc.engine.checkpoint import poses_digest
from topoloc.experiments.recipe_spec import FlightSpec

__all__ = ["adopt_training_splits", "other_training_data", "refuse_foreign_folder", "training_rows_in_tests"]


def adopt_training_splits(tests: Sequence[FlightSpec], trained: Sequence[FlightSpec], source: str
                          ) -> tuple[list[FlightSpec], list[str]]:
    """``tests`` with the split options of the training or validation flight of the same name, where a test
    flight selects a split and sets no split option of its own; and one note per flight so changed.

    Args:
        tests: the test flights as given.
        trained: the training and validation flights (given, or read from the checkpoint's recipe).
        source: where ``trained`` came from, for the notes (e.g. ``"--train-flights"``).
    """
    options = {spec.flight: spec.split_options() for spec in trained if spec.split_options()}
    out, notes = [], []
    for spec in tests:
        adopted = options.get(spec.flight)
        if adopted and spec.split != "all" and not spec.split_options():
            spec = dataclasses.replace(spec, **adopted)
            said = ", ".join(f"{key} {value}" for key, value in adopted.items())
            notes.append(f"Test flight {spec.flight} {spec.domain} {spec.split}: split as the same flight is split "
                         f"for training ({source}: {said}), so its {spec.split} rows are those training left out.")
        out.append(spec)
    return out, notes


def training_rows_in_tests(tests: Sequence[Any], trained: Sequence[Any]) -> list[str]:
    """One note per test flight that holds images at training poses: the rows (poses) of the same flight
    folder that a training set (``trained``: `TopoFlight` s) also holds, in any domain (a photo at a training
    render's pose is one the model has seen the place of)."""
    notes = []
    for test in tests:
        same = [ds for ds in trained if ds.root == test.root and ds.flight == test.flight]
        seen = set().union(*(set(int(r) for r in ds.rows) for ds in same)) if same else set()
        shared = sum(int(r) in seen for r in test.rows)
        if shared:
            notes.append(f"{shared} of the {len(test)} test images of {test.flight} {test.domain} "
                         f"{test.split} are at poses of the training images: their errors "
                         f"measure the fit, not the localisation of new views.")
    return notes


def other_training_data(record: dict[str, Any] | None, train_set: Any, source: str) -> list[str]:
    """The note that ``train_set`` (the training flights read for the brackets) is not what the checkpoint
    trained on, by its ``training_data`` record (`topoloc.engine.checkpoint.data_record`): another number of
    images, or (where the record has them) other poses; none when they agree or the checkpoint records nothing.

    A flight that gained pose rows since the training is the quiet case: its rows are split by the row count
    (`topoloc.data.split_assignment`), so the same split options now select other training rows, and its
    test rows may include images the model trained on, which `training_rows_in_tests` (which sees today's
    split) cannot tell.

    Args:
        record: the checkpoint's ``training_data`` (``model.config["training_data"]`` after `load_model`).
        train_set: the training flights as read now (a `FlightCollection`).
        source: where they came from, for the note (e.g. ``"--train-flights"``).
    """
    if not record or train_set is None:
        return []
    n_now, n_then = len(train_set), int(record["images"])
    if n_now == n_then and ("poses_sha256" not in record or poses_digest(train_set.poses()) == record["poses_sha256"]):
        return []
    what = (f"{n_now} images now, against the {n_then} it trained on" if n_now != n_then
            else f"the {n_now} images it trained on in number, at other poses")
    return [f"The training flights (from {source}) are not the checkpoint's training images ({what}): the constant "
            "pose, the retrieval baseline, the coverage ceiling and the training fit describe other images, and the "
            "test images may include images it trained on. A flight that gained pose rows since the training has "
            "its rows split anew (the split depends on the row count): evaluate on the pose files it was trained on."]


def refuse_foreign_folder(out_dir: str | PathLike, name: str) -> None:
    """Refuse ``out_dir`` where it holds a demo's output (its ``demo.json``): ``ValueError`` naming the argument
    and the folder. A report of `evaluate_checkpoint` already there is replaced, as a rerun replaces its own."""
    folder = Path(out_dir)
    if (folder / "demo.json").is_file():
        raise ValueError(f"{name} {str(folder)!r}: holds a demo's output (demo.json); a report written there would "
                         f"replace the demo's report and delete its predictions and plots: give another folder, "
                         f"e.g. {str(folder / 'eval')!r}")
