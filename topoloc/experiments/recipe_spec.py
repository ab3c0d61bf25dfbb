"""The typed recipe: a YAML file naming the data (flights, domains, splits) and the `TrainConfig`.

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

`load_recipe` reads and checks one, `write_recipe` writes the resolved one beside a checkpoint
(`RECIPE_FILE`, where `topoloc evaluate` finds the training data), `parse_flight` reads the CLI's
``flight[:domain[:split]]``. `topoloc.experiments.recipe` runs a recipe (`run_recipe`); every name
here is also importable from there.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import yaml

from topoloc._paths import file_above, not_a_file
from topoloc._tempfiles import write_text_atomically
from topoloc.data import TopoFlight
from topoloc.data.splits import DEFAULT_FRACTIONS, check_fractions
from topoloc.data.topo import default_split_block
from topoloc._yaml import load_yaml
from topoloc.engine.config import TrainConfig
from topoloc.geodesy import LocalFrame, as_frame

__all__ = [
    "DataSpec",
    "FlightSpec",
    "Recipe",
    "RECIPE_FILE",
    "apply_overrides",
    "build_flights",
    "load_recipe",
    "parse_flight",
    "refuse_repeated_tests",
    "write_recipe",
]

#: Domains a recipe or a CLI flight spec can name (real_alt: `topoloc render --real-alt`).
_DOMAINS = ("synthetic", "real", "real_alt")
#: The recipe's data section, written beside the checkpoints so that `evaluate_checkpoint` finds the training data.
RECIPE_FILE = "recipe.yaml"


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
        if isinstance(value, str) and ":" in value:  # the CLI's "flight:domain[:split]" (as --flights takes it)
            try:
                return parse_flight(value)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from err
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            unknown = set(value) - set(_FLIGHT_KEYS)
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected {', '.join(_FLIGHT_KEYS)}")
            if "flight" not in value:
                raise ValueError(f"{where}: missing `flight` (the flight folder's name) in {value!r}")
            try:
                return cls(**value)
            except ValueError as err:  # the flight's own check ("flight 'a': `split_fractions` must be ...")
                raise ValueError(f"{where}: {err}") from err
        raise ValueError(f"{where}: expected a flight name or a mapping {{flight, domain, split}}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The recipe mapping of this flight (the split options only where set)."""
        d: dict[str, Any] = {"flight": self.flight, "domain": self.domain, "split": self.split, **self.split_options()}
        if "split_fractions" in d:
            d["split_fractions"] = list(d["split_fractions"])  # a YAML list, not a tagged tuple
        return d

    def effective_split(self) -> tuple[tuple[float, float, float], int, int]:
        """(fractions, seed, block) that `TopoFlight` splits this flight's rows with, defaults filled in."""
        f = self.split_fractions or DEFAULT_FRACTIONS
        return ((f[0], f[1], f[2]), 0 if self.split_seed is None else self.split_seed,
                default_split_block(self.flight) if self.split_block is None else self.split_block)

    def split_options(self) -> dict[str, Any]:
        """The `TopoFlight` keyword arguments of the split options that are set."""
        return {k: getattr(self, k) for k in ("split_fractions", "split_seed", "split_block")
                if getattr(self, k) is not None}


_FLIGHT_KEYS = ("flight", "domain", "split", "split_fractions", "split_seed", "split_block")


def _splits_share_rows(f: FlightSpec, g: FlightSpec) -> bool:
    """Whether two entries of one flight share rows: either takes ``all`` of them, or both the same split."""
    return "all" in (f.split, g.split) or f.split == g.split


def refuse_repeated_tests(tests: Sequence[FlightSpec], where: str) -> None:
    """Refuse two test entries ``where[i]`` of one flight and domain whose rows overlap (either takes ``all``,
    or both the same split): the report has one row per flight and domain, which would count those images twice.

    Example:
        >>> refuse_repeated_tests([FlightSpec("f", "real", "val"), FlightSpec("f", "real", "test")], "flights")
    """
    for j, g in enumerate(tests):
        for i, f in enumerate(tests[:j]):
            if (f.flight, f.domain) == (g.flight, g.domain) and _splits_share_rows(f, g):
                raise ValueError(f"{where}[{j}]: {g.flight} {g.domain} (split {g.split!r}) shares rows with entry "
                                 f"[{i}] (split {f.split!r}); the report has one row per flight and domain, which "
                                 "would count those images twice: give each flight and domain once")


@dataclass
class DataSpec:
    """Where the flights are and which of them train, validate and test."""

    root: str
    train: list[FlightSpec]
    test: list[FlightSpec]
    val: list[FlightSpec] = field(default_factory=list)
    frame: str | dict[str, float] = "comballaz"
    semantics: bool = False  # no effect (deprecated): the reports find the semantic maps themselves

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
        refuse_repeated_tests(self.test, "data.test")
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
                shared = _splits_share_rows(f, g)
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
            got = "nothing (no `data` section, or an empty one)" if d is None else type(d).__name__
            raise ValueError(f"data: expected a mapping with root, train, test, got {got}")
        unknown = set(d) - {"root", "train", "val", "test", "frame", "semantics"}
        if unknown:
            raise ValueError(f"data: unknown key(s) {sorted(unknown)}; expected root, train, val, test, frame, "
                             "semantics")
        for key in ("root", "train", "test"):
            if key not in d:
                raise ValueError(f"data: missing `{key}`")
        root = d["root"]
        if isinstance(root, bool) or not isinstance(root, (str, int)) or not str(root).strip():
            got = "null" if root is None else "an empty string" if isinstance(root, str) else repr(root)
            raise ValueError(f"data.root: expected the path of the folder that holds the flight folders, got {got}")
        lists = {}
        for key in ("train", "val", "test"):
            items = d.get(key) or []
            if not isinstance(items, list):
                raise ValueError(f"data.{key}: expected a list of flights, got {items!r}")
            lists[key] = [FlightSpec.parse(v, f"data.{key}[{i}]") for i, v in enumerate(items)]
        if not lists["train"] or not lists["test"]:
            raise ValueError("data: `train` and `test` must each name at least one flight")
        semantics = d.get("semantics", False)
        if not isinstance(semantics, bool):
            raise ValueError(f"data.semantics: expected true or false, got {semantics!r}")
        if "semantics" in d:
            warnings.warn("data.semantics has no effect and will be refused in a later release: the reports read "
                          "the synthetic flights' semantic maps wherever they need them; remove it from the recipe",
                          FutureWarning, stacklevel=4)
        spec = cls(root=os.path.expanduser(str(root)), frame=d.get("frame", "comballaz"), semantics=semantics,
                   **lists)
        spec.local_frame()
        return spec


#: `TrainConfig` fields that say how a run was started, left out of the recipe written beside its checkpoint.
_HOW_STARTED = ("overwrite", "resume", "resume_changes")


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

        # how a run was started (over another, resumed), not what it is: a recipe run again with them would replace
        # or resume its run without asking
        train = {k: v for k, v in self.train.to_dict().items() if k not in _HOW_STARTED}
        # the default report folder follows train.out_dir (a recipe run again into another one reports there)
        default_eval = os.path.expanduser(str(Path(self.train.out_dir) / "eval"))
        return {"data": {"root": self.data.root, "frame": self.data.frame,
                         "train": flights(self.data.train), "val": flights(self.data.val),
                         "test": flights(self.data.test)},
                "train": train,
                "evaluate": {"out_dir": None if self.eval_out_dir == default_eval else self.eval_out_dir,
                             "batch_size": self.eval_batch_size, "landcover": self.eval_landcover,
                             "classes": self.eval_classes}}


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``values`` with dotted ``key=value`` overrides applied (values parsed as YAML).

    Example:
        >>> apply_overrides({"train": {"epochs": 3}}, ["train.epochs=5", "data.root=/x"])
        {'train': {'epochs': 5}, 'data': {'root': '/x'}}
    """
    if isinstance(overrides, (str, bytes)):  # iterated, it gave one override per character: "override 't': ..."
        raise TypeError(f"overrides: expected a list of 'key=value' strings, got the string {overrides!r}: pass "
                        f"[{overrides!r}]")
    out = copy.deepcopy(values)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value, e.g. train.epochs=5")
        key, raw = item.split("=", 1)
        parts = _key_parts(item)
        if not all(parts):
            raise ValueError(f"override {item!r}: empty key part in {key!r}")
        node = out
        for p in parts[:-1]:
            if node.get(p) is None:  # absent, or a section the file leaves empty (`train:` with no key under it)
                node[p] = {}
            if not isinstance(node[p], dict):
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
    except UnicodeDecodeError as err:
        raise ValueError(f"recipe {str(path)!r}: not a UTF-8 text file ({err.reason} at byte {err.start})") from err
    if not isinstance(values, dict):
        raise ValueError(f"recipe {str(path)!r}: expected a mapping with data / train / evaluate sections")
    values = apply_overrides(values, overrides)
    try:
        return _parse_recipe(path, values, train_overrides)
    except (ValueError, TypeError) as err:
        culprit = _override_named(overrides, str(err))
        if culprit is None:
            raise
        raise type(err)(f"{err} (set by the override {culprit!r}, not in the file)") from err


def _key_parts(override: str) -> list[str]:
    """The dotted key of a ``key=value`` override, part by part, each stripped (`train. epochs` is `train.epochs`)."""
    return [part.strip() for part in override.split("=", 1)[0].split(".")]


def _override_named(overrides: Sequence[str], message: str) -> str | None:
    """The override whose key a recipe error names (``train.epochs`` or an unknown ``'lr_schedul'``), if any:
    the error then says the value came from the command line, not from the recipe file."""
    named = re.split(r"; (?:known|expected)\b", message, maxsplit=1)[0]  # not the list of the keys it knows
    for item in reversed(list(overrides)):  # the last override of a key is the one that counts
        key = ".".join(_key_parts(item))
        section, _, leaf = key.rpartition(".")
        top = key.split(".")[0]
        if (re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", named)
                or (section and f"{top}: unknown" in named and repr(leaf) in named)
                or ("unknown section" in named and repr(top) in named)):
            return item
    return None


def _parse_recipe(path: Path, values: dict[str, Any], train_overrides: dict[str, Any]) -> Recipe:
    """Validate a recipe's values (read from ``path``, overrides applied) into a `Recipe`."""
    unknown = set(values) - {"data", "train", "evaluate"}
    if unknown:
        raise ValueError(f"recipe {str(path)!r}: unknown section(s) {sorted(unknown)}; expected data, train, evaluate")
    try:
        data = DataSpec.parse(values.get("data"))
        train_values = values.get("train") or {}
        if not isinstance(train_values, dict):
            raise ValueError(f"train: expected a mapping of TrainConfig fields (epochs: 20, lr: 0.001, ...), "
                             f"got {train_values!r}")
        train = TrainConfig.from_dict(train_values, **train_overrides)
    except (ValueError, TypeError) as err:  # TrainConfig's `epochs` is the recipe's (and --override's) train.epochs
        message = re.sub(r"^TrainConfig: `(\w+)`", r"train.\1", str(err))
        message = re.sub(r"^TrainConfig: unknown field\(s\)", "train: unknown key(s)", message)
        raise type(err)(f"recipe {str(path)!r}: {message}") from err
    ev = values.get("evaluate") or {}
    if not isinstance(ev, dict) or set(ev) - {"out_dir", "batch_size", "landcover", "classes"}:
        raise ValueError(f"recipe {str(path)!r}: `evaluate` takes out_dir, batch_size, landcover and classes, "
                         f"got {ev!r}")
    if not isinstance(ev.get("landcover", False), bool):
        raise ValueError(f"recipe {str(path)!r}: evaluate.landcover: expected true or false, got {ev['landcover']!r}")
    classes = ev.get("classes")
    if classes is not None and (not isinstance(classes, str) or not classes.strip()):
        raise ValueError(f"recipe {str(path)!r}: evaluate.classes: expected the path of a JSON class table or a "
                         f"built-in table's name (topo-datagen, mini-comballaz), got {classes!r}")
    batch_size = ev.get("batch_size", 64)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"recipe {str(path)!r}: evaluate.batch_size: expected a whole number >= 1, got {batch_size!r}")
    out_dir = os.path.expanduser(str(ev.get("out_dir") or Path(train.out_dir) / "eval"))
    blocker = file_above(out_dir) if not Path(out_dir).is_file() else Path(out_dir)
    if blocker is not None:
        raise ValueError(f"recipe {str(path)!r}: evaluate.out_dir {out_dir!r}: {str(blocker)!r} is a file, "
                         "not a folder")
    return Recipe(data, train, out_dir, batch_size, str(path),
                  eval_landcover=bool(ev.get("landcover", False)) or classes is not None, eval_classes=classes)


def build_flights(data: DataSpec, which: str, image_size=None, load_semantics: bool = False) -> list[Any]:
    """The `TopoFlight` datasets of ``data.train`` / ``val`` / ``test``."""
    frame = data.local_frame()
    return [TopoFlight(data.root, f.flight, domain=f.domain, split=f.split, image_size=image_size, frame=frame,
                       load_semantics=load_semantics and f.domain == "synthetic", **f.split_options())
            for f in getattr(data, which)]


def write_recipe(recipe: Recipe, path: str | PathLike) -> None:
    """Write ``recipe`` as YAML to ``path`` (beside a checkpoint: `RECIPE_FILE`, where `topoloc evaluate`
    finds the checkpoint's training and validation flights, split options included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(recipe.to_dict(), sort_keys=False)
    write_text_atomically(path, text, encoding="utf-8")  # a killed write leaves the previous file, never half


def _recipe_flights(checkpoint: Path) -> tuple[list[FlightSpec], list[FlightSpec]] | None:
    """The training and validation flights of the recipe written beside ``checkpoint``, if any."""
    path = checkpoint.parent / RECIPE_FILE
    if not path.is_file():
        return None
    written_by = "not a recipe written by `topoloc train`"
    try:
        with open(path, encoding="utf-8") as f:
            whole = load_yaml(f) or {}  # as the recipe it was written from is read
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{str(path)!r}: {written_by}: not readable YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(whole, dict):
        raise ValueError(f"{str(path)!r}: {written_by}: expected a mapping with a `data` section, got "
                         f"{type(whole).__name__}")
    try:
        spec = DataSpec.parse(whole.get("data") or {})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{str(path)!r}: {written_by}: {err}") from err
    return spec.train, spec.val


def parse_flight(text: str) -> FlightSpec:
    """``"flight[:domain[:split]]"`` to a `FlightSpec`, e.g. ``"comballaz-2020-11-06-planned:real:test"``."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"flight: expected 'flight[:domain[:split]]', got {text!r}")
    parts = text.split(":")
    if len(parts) > 3:
        raise ValueError(f"flight {text!r}: expected 'flight[:domain[:split]]'")
    fields: dict[str, Any] = dict(zip(("flight", "domain", "split"), parts))
    return FlightSpec(**fields)
