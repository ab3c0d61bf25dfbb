"""Mini-Comballaz: a procedural stand-in for the TOPO Comballaz data, rendered at TOPO's real poses.

A deterministic world around the Comballaz origin (terrain with a valley and ridgelines, land
cover, buildings, forests, water), a batched torch ray caster with TOPO's camera, two appearance
models (TOPO's synthetic Cesium look and the real drone photos' look, following each flight's
date), and a writer of the exact TOPO-DataGen layout.

Example:
    >>> from topoloc.procedural import render_flights
    >>> render_flights("data/mini", "comballaz-LHS:8", size=(96, 64), progress=False)  # doctest: +SKIP
"""

from topoloc.procedural.appearance import Appearance, appearance_for_flight, bake, sun_position
from topoloc.data.semantics import SEMANTIC_CLASSES, STABLE_CLASSES, UNSTABLE_CLASSES
from topoloc.procedural.renderer import Geometry, RenderConfig, camera_rays, cast_rays, intrinsics, render
from topoloc.procedural.terrain import CLEARANCE_M, COMBALLAZ_FLIGHTS, Grid
from topoloc.procedural.world import World, area_of_flight, build_world
from topoloc.procedural.clearance import (MIN_CLEARANCE_M, area_of_positions, check_clearance, clearance_m,
                                          terrain_function)
from topoloc.procedural.jobs import RenderJob, parse_flights, parse_size, pose_flight
from topoloc.procedural.writer import FORMAT_VERSION, render_flights
from topoloc.procedural.views import ViewRenderer

__all__ = [
    "SEMANTIC_CLASSES",
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
    "render_flights",
    "ViewRenderer",
    "pose_flight",
    "parse_flights",
    "parse_size",
    "RenderJob",
    "FORMAT_VERSION",
    "World",
    "build_world",
    "area_of_flight",
    "area_of_positions",
    "check_clearance",
    "clearance_m",
    "terrain_function",
    "MIN_CLEARANCE_M",
    "Grid",
    "CLEARANCE_M",
    "COMBALLAZ_FLIGHTS",
    "Appearance",
    "appearance_for_flight",
    "bake",
    "sun_position",
    "RenderConfig",
    "Geometry",
    "camera_rays",
    "cast_rays",
    "intrinsics",
    "render",
]
