"""Recipes at work: `run_recipe` (train, evaluate, report) and the CLI's back-ends for checkpoints.

`run_recipe` is ``topoloc train``, `evaluate_checkpoint` ``topoloc evaluate`` and `explain_checkpoint`
``topoloc saliency``.

The recipe itself (its YAML file, `Recipe`, `DataSpec`, `FlightSpec`, `load_recipe`, the overrides)
is in `topoloc.experiments.recipe_spec`; its names stay importable from here. The land-cover helpers
split a report's errors by the land cover in view (``evaluate.landcover``, ``topoloc evaluate
--landcover``).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from topoloc._device import resolve_device
from topoloc._paths import not_a_checkpoint_file
from topoloc._tempfiles import write_text_atomically
from topoloc.data import TopoFlight
from topoloc.data._images import read_semantics
from topoloc.data.flights import FlightCollection
from topoloc.data.semantics import CLASS_TABLE_FILE, class_table, read_class_table
from topoloc.engine.adapt import ADABN_LABEL
from topoloc.engine.checkpoint import check_frame, load_model
from topoloc.engine.evaluate import evaluate
from topoloc.engine.train import initial_model, train
from topoloc.experiments.leakage import (adopt_training_splits, other_training_data, refuse_foreign_folder,
                                        training_rows_in_tests)
from topoloc.experiments.recipe_spec import (RECIPE_FILE, DataSpec, FlightSpec, Recipe, _recipe_flights,
                                             apply_overrides, build_flights, load_recipe, parse_flight,
                                             refuse_repeated_tests, write_recipe)
from topoloc.geodesy import LocalFrame, as_frame
from topoloc.reporting.landcover import landcover_section
from topoloc.reporting.report import write_report
from topoloc.reporting.saliency_figures import saliency_report

__all__ = [
    "DataSpec",
    "FlightSpec",
    "Recipe",
    "apply_overrides",
    "evaluate_checkpoint",
    "explain_checkpoint",
    "load_recipe",
    "parse_flight",
    "run_recipe",
    "write_recipe",
]

#: The land-cover split's CSV in a report folder (``evaluate.landcover``, ``topoloc evaluate --landcover``).
LANDCOVER_CSV = "landcover.csv"


def _flights_of(recipe: Recipe, which: str) -> list[Any]:
    """The flights of ``data.<which>``; a flight that cannot be read is refused naming the recipe's section."""
    try:
        return build_flights(recipe.data, which)
    except (FileNotFoundError, ValueError) as err:  # "<root>/<flight>: folder not found; ...": from which section
        raise _said_again(err, f"recipe {recipe.source!r}: data.{which}: {err}") from err


def _said_again(err: Exception, message: str) -> Exception:
    """``message`` as an error of ``err``'s kind: FileNotFoundError, another OSError or ValueError (not
    ``type(err)``: some subclasses, UnicodeDecodeError, take other arguments)."""
    kind = FileNotFoundError if isinstance(err, FileNotFoundError) else OSError if isinstance(err, OSError) \
        else ValueError
    return kind(message)


def _selected(recipe: Recipe, which: str, each: bool = False) -> list[Any]:
    """The flights of ``data.<which>``; refused, naming each flight and split, when they hold no image (``each``:
    when any entry holds none, named ``data.<which>[i]``: the test flights are evaluated one by one)."""
    sets = _flights_of(recipe, which)
    empty = next((i for i, ds in enumerate(sets) if len(ds) == 0), None) if each else None
    if empty is not None:
        f = getattr(recipe.data, which)[empty]
        raise ValueError(f"recipe {recipe.source!r}: data.{which}[{empty}] selects no image: {f.flight} ({f.domain}, "
                         f"split {f.split!r}) is empty in {str(recipe.data.root)!r}")
    if sets and not sum(len(ds) for ds in sets):
        specs = ", ".join(f"{f.flight} ({f.domain}, split {f.split!r})" for f in getattr(recipe.data, which))
        raise ValueError(f"recipe {recipe.source!r}: data.{which} selects no image: {specs} "
                         f"{'is' if len(sets) == 1 else 'are'} empty in {str(recipe.data.root)!r}"
                         + (" (leave data.val out to train without validation)" if which == "val" else ""))
    return sets


def run_recipe(recipe: Recipe, evaluate_only: bool = False) -> dict[str, Any]:
    """Train the recipe's model (resuming when ``train.resume`` says so), evaluate it on the test
    flights with every bracket (constant pose, retrieval, coverage ceiling, training fit and the
    recipe's validation flights), and write the report. The resolved recipe is written to
    ``<train.out_dir>/recipe.yaml`` (`topoloc evaluate` reads its training flights there).

    Returns:
        ``{"checkpoint": path, "report": path, "result": EvaluationResult}``.
    """
    cfg = recipe.train
    if not Path(recipe.data.root).is_dir():  # e.g. recipes/topo/*'s placeholder, left as it is
        raise FileNotFoundError(f"recipe {recipe.source!r}: data.root {recipe.data.root!r}: "
                                f"{'not a folder' if Path(recipe.data.root).exists() else 'folder not found'}; "
                                "expected the folder that holds the flight folders (set it with "
                                "--override data.root=DIR)")
    twins = []
    if recipe.eval_landcover:  # before training: a missing semantic map or class table is found at once
        twins = _landcover_twins(recipe.data.root, recipe.data.test, recipe.data.local_frame(), recipe.eval_classes)
    train_set = FlightCollection(_selected(recipe, "train"))
    val_sets = _selected(recipe, "val")
    val_set = FlightCollection(val_sets) if val_sets else None
    # before training too: a missing test flight, or one that selects no image, is found at once
    test_sets = _selected(recipe, "test", each=True)
    eval_dir = Path(recipe.eval_out_dir)
    made = not eval_dir.exists()
    try:  # before training too: an evaluate.out_dir that cannot be made is found at once
        eval_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"recipe {recipe.source!r}: evaluate.out_dir {recipe.eval_out_dir!r} cannot be made "
                         f"({err.strerror or err})") from err
    checkpoint = Path(cfg.out_dir) / "last.pt"
    if not evaluate_only:
        recorded: list[bool] = []

        def record_recipe(event: dict[str, Any]) -> None:
            """After the run's first step (its folder is its own by then): a run stopped or killed later still
            has the recipe.yaml that `topoloc evaluate` reads its training flights from."""
            if not recorded and getattr(getattr(event["trainer"], "info", None), "is_main", True):
                write_recipe(recipe, Path(cfg.out_dir) / RECIPE_FILE)
                recorded.append(True)

        try:
            checkpoint = Path(train(cfg, train_set, val_set, callbacks=[record_recipe]).final_checkpoint)
        except BaseException:  # refused or stopped: leave no empty evaluation folder behind
            if made:
                with contextlib.suppress(OSError):  # not empty (or gone): left as it is
                    eval_dir.rmdir()
            raise
        write_recipe(recipe, checkpoint.parent / RECIPE_FILE)
    model, normalizer, _ = load_model(checkpoint, device=_device(cfg.device))
    name = Path(recipe.source).stem or "model"
    result = evaluate(model, normalizer, test_sets, frame=recipe.data.local_frame(),
                      train_set=train_set, batch_size=recipe.eval_batch_size,
                      val_sets=val_sets or None, method=name)
    if not val_sets:
        result.notes.append("The recipe names no validation flights (`data.val`): no validation row.")
    # test images at training poses: said in the report, as `topoloc evaluate` says it (load_recipe warned of it)
    result.notes += training_rows_in_tests(test_sets, train_set.datasets)
    report = write_report(recipe.eval_out_dir, {name: result}, title=f"topoloc: {name}",
                          intro=f"Recipe `{recipe.source}`, checkpoint `{checkpoint}`.",
                          extra_sections=_landcover_sections({name: result}, twins, recipe.eval_out_dir))
    return {"checkpoint": checkpoint, "report": report, "result": result}


def _device(name: str) -> str:
    return resolve_device(name).type


def _specs(flights: Sequence[FlightSpec | str]) -> list[FlightSpec]:
    """Flights given as `FlightSpec` or ``"flight[:domain[:split]]"`` text, as `FlightSpec`."""
    return [parse_flight(f) if isinstance(f, str) else f for f in flights]


def _frame_arg(frame: str | LocalFrame | None) -> LocalFrame | None:
    return None if frame is None else as_frame(frame)


def _flight_sets(root: str | PathLike, flights: Sequence[FlightSpec | str], frame,
                 each: str | None = None) -> list[Any]:
    """The flights' datasets; with ``each`` (the argument's name, e.g. ``"flights (--flights)"``), a flight
    that selects no image is refused by name (and TopoFlight's warning that it is empty not given too)."""
    specs = [parse_flight(f) if isinstance(f, str) else f for f in flights]
    if each is not None and specs and not Path(root).is_dir():  # not each flight missing: the root
        raise FileNotFoundError(f"root (--data) {str(root)!r}: {'not a folder' if Path(root).exists() else 'not found'}"
                                "; expected the folder holding the flight folders")
    with warnings.catch_warnings():
        if each is not None:  # the refusal below says it
            warnings.filterwarnings("ignore", message=r"TopoFlight .* is empty$")
        sets = []
        for s in specs:
            try:
                sets.append(TopoFlight(root, s.flight, domain=s.domain, split=s.split, frame=frame,
                                       **s.split_options()))
            except FileNotFoundError as err:  # a flight's folder or files: said by the argument that named it
                if each is None:
                    raise
                raise FileNotFoundError(f"{each}: {err}") from err
    empty = next((s for s, ds in zip(specs, sets) if len(ds) == 0), None) if each is not None else None
    if empty is not None:
        raise ValueError(f"{each}: {empty.flight} ({empty.domain}, split {empty.split!r}) selects no image in "
                         f"{str(root)!r}" + (": its rows all fall in other splits" if empty.split != "all" else ""))
    return sets


def evaluate_checkpoint(
    checkpoint: str | PathLike,
    root: str | PathLike,
    flights: Sequence[FlightSpec | str],
    out_dir: str | PathLike,
    train_flights: Sequence[FlightSpec | str] = (),
    frame: str | LocalFrame | None = None,
    device: str = "auto",
    batch_size: int = 64,
    retrieval: bool | str | Sequence[str] = True,
    val_flights: Sequence[FlightSpec | str] = (),
    adabn: bool = False,
    landcover: bool = False,
    classes: str | PathLike | Mapping[int, str] | None = None,
    use_recipe: bool = True,
) -> Path:
    """Evaluate a checkpoint on TOPO flights and write the report (``out_dir/report.md``).

    The brackets need the checkpoint's training data: ``train_flights`` when given, otherwise the
    training (and validation) flights of the ``recipe.yaml`` that `topoloc train` wrote beside the
    checkpoint, read under ``root``. Without either, the report says that the brackets could not be
    computed.

    Args:
        checkpoint: a ``last.pt`` / ``best.pt`` written by `train`.
        root: the folder of the flights.
        flights: test flights, `FlightSpec` or ``"flight[:domain[:split]]"`` strings. A test flight that is
            also a training or validation flight, with a split and no split options of its own, is split as
            training split it; test images at training poses are said in a warning and the report's notes.
        out_dir: the report folder; a report already there is replaced (its predictions and plots
            removed), a demo's folder (holding ``demo.json``) is refused.
        train_flights: the training flights (coverage, constant pose, retrieval, coverage ceiling,
            training fit); none: those of the checkpoint's ``recipe.yaml``, if any.
        frame: local frame (origin name or LocalFrame); None: the flights' area. It must be the
            frame the checkpoint was trained in (an error otherwise; a warning for checkpoints
            that do not record theirs).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: images per forward pass.
        retrieval: feature sources of the retrieval baseline (see `topoloc.engine.evaluate.evaluate`:
            ``True`` for the default ones, ``False`` for none, or e.g. ``("thumbnail", "model")``).
        val_flights: validation flights (the ``"validation"`` row); none: those of the recipe, if any.
        adabn: also evaluate the checkpoint with its batch-norm statistics re-estimated on each test
            flight's own images (AdaBN, `topoloc.engine.adapt`; no labels), reported beside it as
            ``"<run> + AdaBN"``.
        landcover: also split the errors of each test flight by the share of each land-cover class in
            view (the report's "Where the error is" section), from the semantic maps of the flight's
            synthetic renders (``<flight>/<stem>_semantics.npy``, one per pose).
        classes: the class table of those maps: class id -> name, or a JSON file of it; none: each
            flight's ``<flight>/semantic_classes.json`` (Mini-Comballaz writes it; TOPO-DataGen's maps
            have other ids, so give theirs).
        use_recipe: read the training and validation flights from the checkpoint's ``recipe.yaml``
            when none are given (False: not, e.g. to evaluate it on data without its training flight).
    """
    if not flights:
        raise ValueError("flights: expected at least one test flight")
    test_specs = _specs(flights)
    refuse_repeated_tests(test_specs, "flights")
    train_specs = _specs(train_flights)
    val_specs = _specs(val_flights)
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {str(checkpoint)!r}: {not_a_checkpoint_file(checkpoint)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    refuse_foreign_folder(out_dir, "out_dir (--out)")
    from_recipe = _recipe_flights(checkpoint) if use_recipe and not train_specs else None
    source = f"`{checkpoint.parent / RECIPE_FILE}`" if from_recipe is not None else "--train-flights"
    trained = [*train_specs, *val_specs] if from_recipe is None else [*from_recipe[0], *from_recipe[1]]
    test_specs, notes = adopt_training_splits(test_specs, trained, source)
    frame = _frame_arg(frame)
    model, normalizer, cfg = load_model(checkpoint, device=_device(device))
    if frame is not None:  # before reading the flights: their poses are checked against this frame
        check_frame(model, frame, checkpoint)
    try:
        tests = _flight_sets(root, test_specs, frame, each="flights (--flights)")
    except ValueError as err:
        if not notes:
            raise
        raise _said_again(err, f"{err}. {' '.join(notes)}") from err
    if frame is None:
        check_frame(model, tests[0].frame, checkpoint)
    # before the evaluation: a missing semantic map or class table is found before the model runs
    twins = _landcover_twins(root, test_specs, frame or tests[0].frame, classes) if landcover else []
    val_from_recipe = False
    if not train_specs:
        if from_recipe is None:
            why = ("its recipe was not read (use_recipe=False, `--ignore-recipe`)" if not use_recipe
                   else f"there is no {RECIPE_FILE} beside `{checkpoint}`")
            notes.append(f"The checkpoint's training data is unknown (no training flights were given and {why}): "
                         "the constant pose, retrieval, coverage ceiling and training fit could not be computed. "
                         "Pass the training flights (`topoloc evaluate --train-flights ...`).")
        else:
            train_specs, recipe_val = from_recipe
            val_from_recipe = not val_specs
            val_specs = val_specs or recipe_val
    given = source == "--train-flights"  # named by the caller: a flight that selects no image is refused by name
    try:
        train_set = FlightCollection(_flight_sets(root, train_specs, frame, each="train_flights (--train-flights)"
                                                  if given else None)) if train_specs else None
        val_sets = _flight_sets(root, val_specs, frame) if val_from_recipe and val_specs else None
    except (OSError, ValueError) as err:
        if given:
            raise
        raise _said_again(err, f"{err} (a training or validation flight of {source}, read for the brackets; name "
                               "others with --train-flights / --val-flights, or pass --ignore-recipe)") from err
    if val_specs and not val_from_recipe:
        val_sets = _flight_sets(root, val_specs, frame, each="val_flights (--val-flights)")
    if val_sets and val_from_recipe:  # a recipe's split may leave its validation empty (a small flight)
        for spec, ds in zip(val_specs, val_sets):
            if len(ds) == 0:
                notes.append(f"The validation flight of {source}, {spec.flight} {spec.domain} {spec.split}, has no "
                             "images (its split leaves none): no validation row for it.")
        val_sets = [ds for ds in val_sets if len(ds)] or None
    elif train_set is not None and val_sets is None:
        notes.append("No validation flights were given: no validation row.")
    leaks = other_training_data((getattr(model, "config", None) or {}).get("training_data"), train_set, source)
    leaks += training_rows_in_tests(tests, train_set.datasets if train_set is not None else [])
    for note in leaks:
        warnings.warn(note, stacklevel=2)
    notes += leaks
    name = checkpoint.parent.name or "model"
    result = evaluate(model, normalizer, tests, frame=frame or tests[0].frame, train_set=train_set,
                      batch_size=batch_size,
                      retrieval=retrieval if train_set is not None else False, method=name, val_sets=val_sets)
    result.notes = [n for n in result.notes if not n.startswith("No training set was given")] + notes
    runs = {name: result}
    if adabn:
        adapted = evaluate(model, normalizer, tests, frame=frame or tests[0].frame, train_set=train_set,
                           batch_size=batch_size, retrieval=False, baselines=False, method=f"{name} + {ADABN_LABEL}",
                           val_sets=val_sets, adapt="adabn")
        adapted.notes = [n for n in adapted.notes if not n.startswith("No training set was given")]
        adapted.brackets_of = name
        runs[f"{name} + {ADABN_LABEL}"] = adapted
    trained_on = (f" Training flights (from {source}): "
                  + ", ".join(f"{f.flight} {f.domain} {f.split}" for f in train_specs) + "."
                  if train_specs else "")
    return write_report(out_dir, runs, title=f"topoloc: {checkpoint}",
                        intro=f"Checkpoint `{checkpoint}` (`{cfg.model}`, {cfg.image_size[1]}x{cfg.image_size[0]} px) "
                              f"on {', '.join(f'{t.flight} {t.domain} ({len(t)})' for t in tests)}.{trained_on}",
                        extra_sections=_landcover_sections(runs, twins, out_dir))


def _landcover_sections(runs: Mapping[str, Any], twins: list[tuple[TopoFlight, dict[int, str]]],
                        out_dir: str | PathLike) -> dict[str, str]:
    """The report's "Where the error is" section (none without twins), its figures in ``out_dir/landcover.csv``.
    Without twins, a ``landcover.csv`` of an earlier evaluation into the folder is removed: it would not be
    the figures of the report beside it."""
    if not twins:
        (Path(out_dir) / LANDCOVER_CSV).unlink(missing_ok=True)
        return {}
    return {"Where the error is": landcover_section(runs, [t for t, _ in twins], [c for _, c in twins],
                                                    csv_path=Path(out_dir) / LANDCOVER_CSV, under_heading=True)}


def _landcover_twins(root: str | PathLike, flights: Sequence[FlightSpec], frame: LocalFrame,
                     classes: str | PathLike | Mapping[int, str] | None) -> list[tuple[TopoFlight, dict[int, str]]]:
    """Each test flight's synthetic renders with their semantic maps, and the class table of those maps."""
    given = None
    if classes is not None:
        given = dict(classes) if isinstance(classes, Mapping) else class_table(classes)
    twins = []
    for name in dict.fromkeys(f.flight for f in flights):
        try:
            twin = TopoFlight(root, name, domain="synthetic", frame=frame, load_semantics=True)
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f"landcover: flight {name!r} needs its synthetic renders' semantic maps "
                            f"(<flight>/<stem>_semantics.npy, one per pose): {err}") from err
        table_file = Path(root) / name / CLASS_TABLE_FILE
        if given is None and not table_file.is_file():
            raise FileNotFoundError(f"landcover: {table_file}: no class table for the semantic maps of {name!r}; "
                                    "give one (`--classes FILE.json`, a JSON object of class id -> name, or "
                                    "`--classes topo-datagen` for TOPO-DataGen's maps)")
        if given is not None:
            _warn_unnamed_ids(twin, given, classes)
        twins.append((twin, given if given is not None else read_class_table(table_file)))
    return twins


def _warn_unnamed_ids(twin: TopoFlight, table: Mapping[int, str], source: Any) -> None:
    """Warns when a flight's semantic maps hold class ids that a given class table does not name."""
    counts = np.zeros(256, dtype=np.int64)  # pixels per uint8 class id
    for path in twin.semantics_paths:
        counts += np.bincount(read_semantics(path).numpy().ravel(), minlength=256)
    unnamed = [i for i in np.flatnonzero(counts).tolist() if i not in table]  # uint8 ids: 0-255
    if unnamed:
        where = source if isinstance(source, (str, PathLike)) else "the class table"
        share = 100 * counts[unnamed].sum() / counts.sum()
        warnings.warn(f"landcover: the semantic maps of {twin.flight!r} hold class id(s) "
                      f"{', '.join(map(str, unnamed))} ({share:.0f} % of their pixels) "
                      f"that {str(where)!r} does not name: they are left out of the split. Is it the table of "
                      "these maps?", stacklevel=3)


def explain_checkpoint(
    checkpoint: str | PathLike,
    root: str | PathLike,
    flights: Sequence[FlightSpec | str],
    out_dir: str | PathLike,
    figure_images: int = 3,
    share_images: int = 16,
    frame: str | LocalFrame | None = None,
    device: str = "auto",
) -> Path:
    """Saliency figures (image | before | after | difference) and per-class shares of a checkpoint
    against the untrained model of the same seed; writes ``out_dir/saliency.md`` and returns it."""

    if not flights:
        raise ValueError("flights: expected at least one flight")
    for name, value, least in (("figure_images", figure_images, 1), ("share_images", share_images, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: expected an int >= {least}, got {value!r}")
    flights = [parse_flight(f) if isinstance(f, str) else f for f in flights]
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {str(checkpoint)!r}: {not_a_checkpoint_file(checkpoint)}")
    refuse_foreign_folder(out_dir, "out_dir (--out)")  # its figures would replace the demo's, as a report would
    dev = _device(device)
    after, _, cfg = load_model(checkpoint, device=dev)
    frame = _frame_arg(frame)
    if frame is not None:  # before reading the flights, as `evaluate_checkpoint`: their poses are checked against it
        check_frame(after, frame, checkpoint)
    before = initial_model(cfg, dev).eval()  # the run's initial weights
    tests = _flight_sets(root, flights, frame, each="flights (--flights)")
    md = saliency_report({"model": (before, after)}, tests, out_dir,  # the heading names the checkpoint
                         figure_images=figure_images, share_images=share_images, device=dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "saliency.md"
    write_text_atomically(path, f"# Saliency: {checkpoint}\n\n{md}\n")
    linked = {out / link for link in re.findall(r"\]\((plots/saliency_[^)]+\.png)\)", md)}
    for stale in set((out / "plots").glob("saliency_*.png")) - linked:  # a domain of an earlier run's flights
        stale.unlink()
    return path
