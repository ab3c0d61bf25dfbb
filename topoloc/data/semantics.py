"""The semantic class table: per-pixel class ids of the ``<stem>_semantics.npy`` files, their names,
and which classes look the same in renders and photos.

One owner for the table that Mini-Comballaz writes (`topoloc.procedural`) and the saliency analysis
reads (`topoloc.reporting.saliency_shares`). The ids are those of Mini-Comballaz's land cover; the
``semantic_classes.json`` that it writes in each flight folder lists the same table. Semantic maps of
other renderers have other ids: TOPO-DataGen's are the classes of the swissSURFACE3D LiDAR point cloud
it renders (`TOPO_DATAGEN_CLASSES`). `class_table` gives a built-in table by name or reads any other from
a JSON file (`read_class_table`).
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

__all__ = [
    "SEMANTIC_CLASSES",
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
    "CLASS_TABLE_FILE",
    "TOPO_DATAGEN_CLASSES",
    "CLASS_TABLES",
    "class_table",
    "read_class_table",
    "SKY",
    "MEADOW",
    "FOREST_EVERGREEN",
    "FOREST_DECIDUOUS",
    "ROCK",
    "WATER",
    "ROAD",
    "BUILDING",
    "SNOW",
    "CLOUD",
    "REAL_ONLY",
    "RIDGELINE",
]

SKY, MEADOW, FOREST_EVERGREEN, FOREST_DECIDUOUS, ROCK, WATER = 0, 1, 2, 3, 4, 5
ROAD, BUILDING, SNOW, CLOUD, REAL_ONLY, RIDGELINE = 6, 7, 8, 9, 10, 11

#: Per-pixel semantic class id -> name (``<stem>_semantics.npy`` holds the ids, uint8).
SEMANTIC_CLASSES: dict[int, str] = {
    SKY: "sky",
    MEADOW: "meadow",
    FOREST_EVERGREEN: "forest_evergreen",
    FOREST_DECIDUOUS: "forest_deciduous",
    ROCK: "rock",
    WATER: "water",
    ROAD: "road",
    BUILDING: "building",
    SNOW: "snow",
    CLOUD: "cloud",
    REAL_ONLY: "real_only",
    RIDGELINE: "ridgeline",
}
#: Names of the classes that look the same in renders and photos, across seasons and weather.
STABLE_CLASSES: tuple[str, ...] = tuple(SEMANTIC_CLASSES[c] for c in (ROAD, BUILDING, ROCK, RIDGELINE))
#: Names of the classes that change between renders and photos, seasons or hours (or exist in photos only).
UNSTABLE_CLASSES: tuple[str, ...] = tuple(SEMANTIC_CLASSES[c] for c in (SKY, CLOUD, FOREST_DECIDUOUS, SNOW, REAL_ONLY))

#: TOPO-DataGen's semantic ids: the ASPRS LAS classes of swissSURFACE3D, which the renderer paints per
#: pixel (swisstopo classifies its points as unclassified, ground, vegetation, building, water and bridge;
#: the sky has no point, 0). CrossLoc (Yan et al. 2022), trained on these maps, lists the same raw ids in
#: its label trimming (``loss/semantics.py``): 0 sky, 1 unclassified and temporary objects, 2 ground,
#: 3 low vegetation, 6 buildings, 9 water, 17 bridge deck.
TOPO_DATAGEN_CLASSES: dict[int, str] = {0: "sky", 1: "unclassified", 2: "ground", 3: "vegetation", 6: "building",
                                        9: "water", 17: "bridge"}
#: Built-in class tables by name (`class_table`; the CLI's ``--classes NAME``, a recipe's ``evaluate.classes``).
CLASS_TABLES: dict[str, dict[int, str]] = {"topo-datagen": TOPO_DATAGEN_CLASSES, "mini-comballaz": SEMANTIC_CLASSES}

#: The class table in a flight folder: JSON ``{"<id>": "<name>", ...}`` (Mini-Comballaz writes it).
CLASS_TABLE_FILE = "semantic_classes.json"


def class_table(spec: str | PathLike) -> dict[int, str]:
    """A class table: a built-in one by name (`CLASS_TABLES`: ``"topo-datagen"``, ``"mini-comballaz"``), or
    read from a JSON file (`read_class_table`).

    Example:
        >>> class_table("topo-datagen")[6]
        'building'
    """
    if isinstance(spec, str) and spec.strip().lower() in CLASS_TABLES:
        return dict(CLASS_TABLES[spec.strip().lower()])
    return read_class_table(spec)


def read_class_table(path: str | PathLike) -> dict[int, str]:
    """A semantic class table: JSON ``{"<id>": "<name>", ...}``, ids 0-255 as in ``*_semantics.npy``.

    Example:
        ``{"1": "meadow", "3": "forest_deciduous"}`` -> ``{1: "meadow", 3: "forest_deciduous"}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or not an object of distinct non-empty names keyed by ids 0-255
            (the message names the file and the entry).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class table not found; expected a JSON object of class id -> name, "
                                f'e.g. {{"1": "meadow", "3": "forest_deciduous"}}, or a built-in table\'s name '
                                f"({', '.join(CLASS_TABLES)})")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: could not read the class table ({err}); expected a JSON object of class "
                         "id -> name") from err
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: expected a non-empty JSON object of class id -> name, got {type(raw).__name__}")
    table: dict[int, str] = {}
    for key, name in raw.items():
        try:
            cid = int(key)
        except ValueError:
            cid = -1
        if not 0 <= cid <= 255 or str(cid) != key.strip():
            raise ValueError(f"{path}: class id {key!r}: expected an integer from 0 to 255 (the ids of the "
                             "*_semantics.npy maps)")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{path}: class {key}: expected a non-empty name, got {name!r}")
        table[cid] = name.strip()
    names = list(table.values())
    if len(set(names)) != len(names):
        twice = sorted(n for n in set(names) if names.count(n) > 1)
        raise ValueError(f"{path}: class names must be distinct, got {twice} more than once")
    return table
