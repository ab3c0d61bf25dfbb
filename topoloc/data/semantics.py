"""The semantic class table: per-pixel class ids of the ``<stem>_semantics.npy`` files, their names,
and which classes look the same in renders and photos.

One owner for the table that Mini-Comballaz writes (`topoloc.procedural`) and the saliency analysis
reads (`topoloc.reporting.saliency_shares`). The ids are those of Mini-Comballaz's land cover; the
``semantic_classes.json`` that it writes in each flight folder lists the same table. Semantic maps of
other renderers (TOPO-DataGen's come from LiDAR classes) have other ids: `read_class_table` reads
any such table.
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

#: The class table in a flight folder: JSON ``{"<id>": "<name>", ...}`` (Mini-Comballaz writes it).
CLASS_TABLE_FILE = "semantic_classes.json"


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
                                f'e.g. {{"1": "meadow", "3": "forest_deciduous"}}')
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
