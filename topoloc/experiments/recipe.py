"""Recipes: a YAML file naming the data (flights, domains, splits) and the `TrainConfig`, and the
function that trains, evaluates and reports one of them.

A recipe file::

    data:
      root: demo/data                 # a TOPO-DataGen / Mini-Comballaz folder of flights
      frame: comballaz                # local ENU origin (name or {lat_deg, lon_deg, h_m})
      train: [{flight: comballaz-LHS, domain: synthetic}]
      val:   [{flight: comballaz-2020-11-06-planned, domain: synthetic, split: val}]
                                      # a flight may also set split_fractions, split_seed, split_block
      test:  [{flight: comballaz-2020-11-06-planned, domain: real}]
    train:                            # any TrainConfig field
      model: atloc_resnet34
      augment: simtoreal
    evaluate:
      out_dir: runs/x/eval            # report folder (default: <train.out_dir>/eval)
      landcover: true                 # errors by land cover in view (default false), from the test
                                      # flights' synthetic semantic maps; classes: FILE.json for a
                                      # class table other than each flight's semantic_classes.json

Overrides are dotted ``key=value`` strings (``train.epochs=5``, ``data.root=/data/topo``); values
are parsed as YAML (``5`` is an int, ``[1, 2]`` a list).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from topoloc._device import resolve_device
from topoloc._paths import not_a_file
from topoloc.data import TopoFlight
from topoloc.data._images import read_semantics
from topoloc.data.flights import FlightCollection
from topoloc.data.semantics import CLASS_TABLE_FILE, read_class_table
from topoloc.data.splits import DEFAULT_FRACTIONS, check_fractions
from topoloc.data.topo import default_split_block
from topoloc.engine.adapt import ADABN_LABEL
from topoloc.engine.checkpoint import check_frame, load_model
from topoloc.engine.config import TrainConfig, load_yaml
from topoloc.engine.evaluate import evaluate
from topoloc.engine.train import initial_model, train
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

#: Domains a recipe or a CLI flight spec can name (real_alt: `topoloc render --real-alt`).
_DOMAINS = ("synthetic", "real", "real_alt")


@dataclass
class FlightSpec:
    """One flight of a recipe: its name, the domain of its images and the split of its rows.

    ``split_fractions``, ``split_seed`` and ``split_block`` set how the rows are split (see
    `topoloc.data.TopoFlight`); left out, the flight's defaults. A flight named twice (``train`` and
    ``val``) must be given the same ones in both places for the splits to be disjoint.
    """

    flight: str
    domain: str = "synthetic"
    split: str = "all"
    split_fractions: tuple[float, float, float] | None = None
    split_seed: int | None = None
    split_block: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.flight, str) or not self.flight:
            raise ValueError(f"flight: expected a flight folder name, got {self.flight!r}")
        if self.domain not in _DOMAINS:
            raise ValueError(f"flight {self.flight!r}: `domain` must be one of {_DOMAINS}, got {self.domain!r}")
        if self.split not in ("all", "train", "val", "test"):
            raise ValueError(f"flight {self.flight!r}: `split` must be all / train / val / test, got {self.split!r}")
        if self.split_fractions is not None:
            try:
                self.split_fractions = check_fractions(self.split_fractions)
            except (ValueError, TypeError) as err:
                raise ValueError(f"flight {self.flight!r}: `split_fractions` must be three non-negative (train, "
                                 f"val, test) shares summing to 1, got {self.split_fractions!r}") from err
        for key, low in (("split_seed", 0), ("split_block", 1)):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ValueError(f"flight {self.flight!r}: `{key}` must be an integer >= {low}, got {value!r}")

    @classmethod
    def parse(cls, value: Any, where: str) -> "FlightSpec":
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            unknown = set(value) - set(_FLIGHT_KEYS)
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected {', '.join(_FLIGHT_KEYS)}")
            return cls(**value)
        raise ValueError(f"{where}: expected a flight name or a mapping {{flight, domain, split}}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The recipe mapping of this flight (the split options only where set)."""
        d: dict[str, Any] = {"flight": self.flight, "domain": self.domain, "split": self.split, **self.split_options()}
        if "split_fractions" in d:
            d["split_fractions"] = list(d["split_fractions"])  # a YAML list, not a tagged tuple
        return d

    def effective_split(self) -> tuple[tuple[float, float, float], int, int]:
        """(fractions, seed, block) that `TopoFlight` splits this flight's rows with, defaults filled in."""
        return (tuple(self.split_fractions or DEFAULT_FRACTIONS), 0 if self.split_seed is None else self.split_seed,
                default_split_block(self.flight) if self.split_block is None else self.split_block)

    def split_options(self) -> dict[str, Any]:
        """The `TopoFlight` keyword arguments of the split options that are set."""
        return {k: getattr(self, k) for k in ("split_fractions", "split_seed", "split_block")
                if getattr(self, k) is not None}


_FLIGHT_KEYS = ("flight", "domain", "split", "split_fractions", "split_seed", "split_block")


@dataclass
class DataSpec:
    """Where the flights are and which of them train, validate and test."""

    root: str
    train: list[FlightSpec]
    test: list[FlightSpec]
    val: list[FlightSpec] = field(default_factory=list)
    frame: str | dict[str, float] = "comballaz"
    semantics: bool = False

    def __post_init__(self) -> None:
        self._check_rows_apart()

    def _check_rows_apart(self) -> None:
        """Refuse a flight split two ways; warn about validation or test rows that are training rows.

        A flight's rows are split by (fractions, seed, block): named in several places with different
        ones, its train / val / test rows overlap, which is never meant. In one domain, a training entry
        and a validation or test entry of the same flight share rows when either takes ``all`` of them
        or both take the same split: a warning (a check of the training fit may be meant; the report
        has its own "training fit" row). The same poses in *another* domain (renders for training, the
        photos of the same flight for testing) is a protocol of its own: nothing said.
        """
        entries = [(f"data.{key}[{i}]", key, f) for key in ("train", "val", "test")
                   for i, f in enumerate(getattr(self, key))]
        split_by: dict[str, tuple[str, tuple]] = {}
        for where, _, f in entries:
            if f.split == "all":
                continue
            split = f.effective_split()
            first = split_by.setdefault(f.flight, (where, split))
            if first[1] != split:
                raise ValueError(f"{where}: flight {f.flight!r} is split with (fractions, seed, block) = {split}, but "
                                 f"{first[0]} splits it with {first[1]}: give it the same split_fractions, split_seed "
                                 "and split_block everywhere, or its train / val / test rows overlap")
        for where, _, f in entries[: len(self.train)]:
            for other, key, g in entries[len(self.train):]:
                shared = "all" in (f.split, g.split) or f.split == g.split
                if (g.flight, g.domain) == (f.flight, f.domain) and shared:
                    warnings.warn(f"{other}: the {key} rows of {g.flight!r} ({g.domain}, split {g.split!r}) are "
                                  f"training rows of {where} (split {f.split!r}): its figures measure the training "
                                  f"fit; for held-out rows use split: train for training and split: val / test here",
                                  UserWarning, stacklevel=4)

    def local_frame(self) -> LocalFrame:
        return as_frame(self.frame, "data.frame")

    @classmethod
    def parse(cls, d: Any) -> "DataSpec":
        if not isinstance(d, dict):
            raise ValueError(f"data: expected a mapping with root, train, test, got {type(d).__name__}")
        unknown = set(d) - {"root", "train", "val", "test", "frame", "semantics"}
        if unknown:
            raise ValueError(f"data: unknown key(s) {sorted(unknown)}; expected root, train, val, test, frame, semantics")
        for key in ("root", "train", "test"):
            if key not in d:
                raise ValueError(f"data: missing `{key}`")
        lists = {}
        for key in ("train", "val", "test"):
            items = d.get(key) or []
            if not isinstance(items, list):
                raise ValueError(f"data.{key}: expected a list of flights, got {items!r}")
            lists[key] = [FlightSpec.parse(v, f"data.{key}[{i}]") for i, v in enumerate(items)]
        if not lists["train"] or not lists["test"]:
            raise ValueError("data: `train` and `test` must each name at least one flight")
        spec = cls(root=str(d["root"]), frame=d.get("frame", "comballaz"), semantics=bool(d.get("semantics", False)),
                   **lists)
        spec.local_frame()
        return spec


@dataclass
class Recipe:
    """A parsed recipe: data, training configuration and report folder."""

    data: DataSpec
    train: TrainConfig
    eval_out_dir: str
    eval_batch_size: int = 64
    source: str = ""
    eval_landcover: bool = False
    eval_classes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def flights(fs):
            return [f.to_dict() for f in fs]

        return {"data": {"root": self.data.root, "frame": self.data.frame, "semantics": self.data.semantics,
                         "train": flights(self.data.train), "val": flights(self.data.val),
                         "test": flights(self.data.test)},
                "train": self.train.to_dict(),
                "evaluate": {"out_dir": self.eval_out_dir, "batch_size": self.eval_batch_size,
                             "landcover": self.eval_landcover, "classes": self.eval_classes}}


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``values`` with dotted ``key=value`` overrides applied (values parsed as YAML).

    Example:
        >>> apply_overrides({"train": {"epochs": 3}}, ["train.epochs=5", "data.root=/x"])
        {'train': {'epochs': 5}, 'data': {'root': '/x'}}
    """
    out = copy.deepcopy(values)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value, e.g. train.epochs=5")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ValueError(f"override {item!r}: empty key part in {key!r}")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.setdefault(p, {}), dict):
                raise ValueError(f"override {item!r}: {p!r} is not a mapping")
            node = node[p]
        try:
            node[parts[-1]] = load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: the value is not valid YAML ({err})") from err
    return out


def load_recipe(path: str | PathLike, overrides: Sequence[str] = (), **train_overrides: Any) -> Recipe:
    """Read a recipe YAML, apply ``overrides`` (dotted ``key=value``) and validate it.

    Args:
        path: the recipe file.
        overrides: e.g. ``["train.epochs=5", "data.root=/data/topo"]``.
        **train_overrides: `TrainConfig` fields set from Python (e.g. ``resume=True``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {str(path)!r}: {not_a_file(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            values = load_yaml(f) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"recipe {str(path)!r}: not valid YAML ({err})") from err
    if not isinstance(values, dict):
        raise ValueError(f"recipe {str(path)!r}: expected a mapping with data / train / evaluate sections")
    values = apply_overrides(values, overrides)
    unknown = set(values) - {"data", "train", "evaluate"}
    if unknown:
        raise ValueError(f"recipe {str(path)!r}: unknown section(s) {sorted(unknown)}; expected data, train, evaluate")
    try:
        data = DataSpec.parse(values.get("data"))
        train = TrainConfig.from_dict(values.get("train") or {}, **train_overrides)
    except (ValueError, TypeError) as err:
        raise type(err)(f"recipe {str(path)!r}: {err}") from err
    ev = values.get("evaluate") or {}
    if not isinstance(ev, dict) or set(ev) - {"out_dir", "batch_size", "landcover", "classes"}:
        raise ValueError(f"recipe {str(path)!r}: `evaluate` takes out_dir, batch_size, landcover and classes, "
                         f"got {ev!r}")
    if not isinstance(ev.get("landcover", False), bool):
        raise ValueError(f"recipe {str(path)!r}: evaluate.landcover: expected true or false, got {ev['landcover']!r}")
    classes = ev.get("classes")
    if classes is not None and (not isinstance(classes, str) or not classes.strip()):
        raise ValueError(f"recipe {str(path)!r}: evaluate.classes: expected the path of a JSON class table, "
                         f"got {classes!r}")
    out_dir = str(ev.get("out_dir") or Path(train.out_dir) / "eval")
    return Recipe(data, train, out_dir, int(ev.get("batch_size", 64)), str(path),
                  eval_landcover=bool(ev.get("landcover", False)) or classes is not None, eval_classes=classes)


def build_flights(data: DataSpec, which: str, image_size=None, load_semantics: bool = False) -> list[Any]:
    """The `TopoFlight` datasets of ``data.train`` / ``val`` / ``test``."""
    frame = data.local_frame()
    return [TopoFlight(data.root, f.flight, domain=f.domain, split=f.split, image_size=image_size, frame=frame,
                       load_semantics=load_semantics and f.domain == "synthetic", **f.split_options())
            for f in getattr(data, which)]


#: The land-cover split's CSV in a report folder (``evaluate.landcover``, ``topoloc evaluate --landcover``).
LANDCOVER_CSV = "landcover.csv"

#: The recipe's data section, written beside the checkpoints so that `evaluate_checkpoint` finds the training data.
RECIPE_FILE = "recipe.yaml"


def _selected(recipe: Recipe, which: str) -> list[Any]:
    """The flights of ``data.<which>``; refused, naming each flight and split, when they hold no image."""
    sets = build_flights(recipe.data, which)
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
    twins = []
    if recipe.eval_landcover:  # before training: a missing semantic map or class table is found at once
        twins = _landcover_twins(recipe.data.root, recipe.data.test, recipe.data.local_frame(), recipe.eval_classes)
    train_set = FlightCollection(_selected(recipe, "train"))
    val_sets = _selected(recipe, "val")
    val_set = FlightCollection(val_sets) if val_sets else None
    checkpoint = Path(cfg.out_dir) / "last.pt"
    if not evaluate_only:
        checkpoint = Path(train(cfg, train_set, val_set).final_checkpoint)
        write_recipe(recipe, checkpoint.parent / RECIPE_FILE)
    model, normalizer, _ = load_model(checkpoint, device=_device(cfg.device))
    name = Path(recipe.source).stem or "model"
    result = evaluate(model, normalizer, build_flights(recipe.data, "test"), frame=recipe.data.local_frame(),
                      train_set=train_set, batch_size=recipe.eval_batch_size,
                      val_sets=val_sets or None, method=name)
    if not val_sets:
        result.notes.append("The recipe names no validation flights (`data.val`): no validation row.")
    report = write_report(recipe.eval_out_dir, {name: result}, title=f"topoloc: {name}",
                          intro=f"Recipe `{recipe.source}`, checkpoint `{checkpoint}`.",
                          extra_sections=_landcover_sections({name: result}, twins, recipe.eval_out_dir))
    return {"checkpoint": checkpoint, "report": report, "result": result}


def write_recipe(recipe: Recipe, path: str | PathLike) -> None:
    """Write ``recipe`` as YAML to ``path`` (beside a checkpoint: `RECIPE_FILE`, where `topoloc evaluate`
    finds the checkpoint's training and validation flights, split options included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(recipe.to_dict(), f, sort_keys=False)


def _recipe_flights(checkpoint: Path) -> tuple[list[FlightSpec], list[FlightSpec]] | None:
    """The training and validation flights of the recipe written beside ``checkpoint``, if any."""
    path = checkpoint.parent / RECIPE_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        data = (yaml.safe_load(f) or {}).get("data") or {}
    try:
        spec = DataSpec.parse(data)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{str(path)!r}: not a recipe written by `topoloc train`: {err}") from err
    return spec.train, spec.val


def _device(name: str) -> str:
    return resolve_device(name).type


def parse_flight(text: str) -> FlightSpec:
    """``"flight[:domain[:split]]"`` to a `FlightSpec`, e.g. ``"comballaz-2020-11-06-planned:real:test"``."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"flight: expected 'flight[:domain[:split]]', got {text!r}")
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"flight {text!r}: expected 'flight[:domain[:split]]'")
    return FlightSpec(*parts)


def _frame_arg(frame: str | LocalFrame | None):
    return None if frame is None else as_frame(frame)


def _flight_sets(root: str | PathLike, flights: Sequence[FlightSpec | str], frame) -> list[Any]:
    specs = [parse_flight(f) if isinstance(f, str) else f for f in flights]
    return [TopoFlight(root, s.flight, domain=s.domain, split=s.split, frame=frame, **s.split_options()) for s in specs]


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
        flights: test flights, `FlightSpec` or ``"flight[:domain[:split]]"`` strings.
        out_dir: the report folder.
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
    flights = [parse_flight(f) if isinstance(f, str) else f for f in flights]
    train_flights = [parse_flight(f) if isinstance(f, str) else f for f in train_flights]
    val_flights = [parse_flight(f) if isinstance(f, str) else f for f in val_flights]
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {str(checkpoint)!r}: {not_a_file(checkpoint)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    frame = _frame_arg(frame)
    model, normalizer, cfg = load_model(checkpoint, device=_device(device))
    if frame is not None:  # before reading the flights: their poses are checked against this frame
        check_frame(model, frame, checkpoint)
    tests = _flight_sets(root, flights, frame)
    if frame is None:
        check_frame(model, tests[0].frame, checkpoint)
    # before the evaluation: a missing semantic map or class table is found before the model runs
    twins = _landcover_twins(root, flights, frame or tests[0].frame, classes) if landcover else []
    notes = []
    source = "--train-flights"
    val_from_recipe = False
    if not train_flights:
        from_recipe = _recipe_flights(checkpoint) if use_recipe else None
        if from_recipe is None:
            why = ("its recipe was not read (use_recipe=False, `--ignore-recipe`)" if not use_recipe
                   else f"there is no {RECIPE_FILE} beside `{checkpoint}`")
            notes.append(f"The checkpoint's training data is unknown (no training flights were given and {why}): "
                         "the constant pose, retrieval, coverage ceiling and training fit could not be computed. "
                         "Pass the training flights (`topoloc evaluate --train-flights ...`).")
        else:
            train_flights, recipe_val = from_recipe
            val_from_recipe = not val_flights
            val_flights = val_flights or recipe_val
            source = f"`{checkpoint.parent / RECIPE_FILE}`"
    try:
        train_set = FlightCollection(_flight_sets(root, train_flights, frame)) if train_flights else None
        val_sets = _flight_sets(root, val_flights, frame) if val_flights else None
    except (OSError, ValueError) as err:
        if source == "--train-flights":
            raise
        kind = FileNotFoundError if isinstance(err, FileNotFoundError) else OSError if isinstance(err, OSError) \
            else ValueError  # not type(err): some subclasses (UnicodeDecodeError) take other arguments
        raise kind(f"{err} (a training or validation flight of {source}, read for the brackets; name "
                   "others with --train-flights / --val-flights, or pass --ignore-recipe)") from err
    if val_sets and val_from_recipe:  # a recipe's split may leave its validation empty (a small flight)
        for spec, ds in zip(val_flights, val_sets):
            if len(ds) == 0:
                notes.append(f"The validation flight of {source}, {spec.flight} {spec.domain} {spec.split}, has no "
                             "images (its split leaves none): no validation row for it.")
        val_sets = [ds for ds in val_sets if len(ds)] or None
    elif train_set is not None and val_sets is None:
        notes.append("No validation flights were given: no validation row.")
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
                  + ", ".join(f"{f.flight} {f.domain} {f.split}" for f in train_flights) + "."
                  if train_flights else "")
    return write_report(out_dir, runs, title=f"topoloc: {checkpoint}",
                        intro=f"Checkpoint `{checkpoint}` (`{cfg.model}`, {cfg.image_size[1]}x{cfg.image_size[0]} px) "
                              f"on {', '.join(f'{t.flight} {t.domain} ({len(t)})' for t in tests)}.{trained_on}",
                        extra_sections=_landcover_sections(runs, twins, out_dir))


def _landcover_sections(runs: Mapping[str, Any], twins: list[tuple[TopoFlight, dict[int, str]]],
                        out_dir: str | PathLike) -> dict[str, str]:
    """The report's "Where the error is" section (none without twins), its figures in ``out_dir/landcover.csv``."""
    if not twins:
        return {}
    return {"Where the error is": landcover_section(runs, [t for t, _ in twins], [c for _, c in twins],
                                                    csv_path=Path(out_dir) / LANDCOVER_CSV, under_heading=True)}


def _landcover_twins(root: str | PathLike, flights: Sequence[FlightSpec], frame: LocalFrame,
                     classes: str | PathLike | Mapping[int, str] | None) -> list[tuple[TopoFlight, dict[int, str]]]:
    """Each test flight's synthetic renders with their semantic maps, and the class table of those maps."""
    given = None
    if classes is not None:
        given = dict(classes) if isinstance(classes, Mapping) else read_class_table(classes)
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
                                    "give one (`--classes FILE.json`, a JSON object of class id -> name)")
        if given is not None:
            _warn_unnamed_ids(twin, given, classes)
        twins.append((twin, given if given is not None else read_class_table(table_file)))
    return twins


def _warn_unnamed_ids(twin: TopoFlight, table: Mapping[int, str], source: Any) -> None:
    """Warns when a flight's semantic maps hold class ids that a given class table does not name."""
    counts = sum(np.bincount(read_semantics(path).numpy().ravel(), minlength=256) for path in twin.semantics_paths)
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
        raise FileNotFoundError(f"checkpoint {str(checkpoint)!r}: {not_a_file(checkpoint)}")
    dev = _device(device)
    after, _, cfg = load_model(checkpoint, device=dev)
    frame = _frame_arg(frame)
    if frame is not None:  # before reading the flights, as `evaluate_checkpoint`: their poses are checked against it
        check_frame(after, frame, checkpoint)
    before = initial_model(cfg, dev).eval()  # the run's initial weights
    md = saliency_report({str(checkpoint): (before, after)}, _flight_sets(root, flights, frame), out_dir,
                         figure_images=figure_images, share_images=share_images, device=dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "saliency.md"
    path.write_text(f"# Saliency: {checkpoint}\n\n{md}\n")
    return path
