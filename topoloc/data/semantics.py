"""The semantic class table: per-pixel class ids of the ``<stem>_semantics.npy`` files, their names,
and which classes look the same in renders and photos.

One owner for the table that Mini-Comballaz writes (`topoloc.procedural`) and the saliency analysis
reads (`topoloc.reporting.saliency_shares`). The ids are those of Mini-Comballaz's land cover; a
``classes.json`` beside a render lists the same table.
"""

from __future__ import annotations

__all__ = [
    "SEMANTIC_CLASSES",
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
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
