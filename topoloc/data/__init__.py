"""TOPO datasets, pose normalisation, coverage, DJI metadata and the vendored flight presets."""

from topoloc.data.pose_coverage import Coverage, coverage
from topoloc.data.cache import ImageCache, as_cache
from topoloc.data.crossloc import CrossLocScene
from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M, DjiMetadata, parse_dji_metadata, parse_dms
from topoloc.data.geometry import flight_normals, flight_scene_points
from topoloc.data.flights import ComballazAir, ComballazSynthetic, EPFLPhantom, FlightCollection
from topoloc.data.normalize import PoseNormalizer
from topoloc.data.posed import SAMPLE_KEYS, PosedImages
from topoloc.data.pose_files import load_pose_file, pose_summary, save_pose_file
from topoloc.data.pose_lhs import LHS_AREAS, LhsArea, latin_hypercube, lhs_area, lhs_envelope
from topoloc.data.pose_sampling import corridor
from topoloc.data.semantics import (CLASS_TABLE_FILE, CLASS_TABLES, SEMANTIC_CLASSES, STABLE_CLASSES,
                                   TOPO_DATAGEN_CLASSES, UNSTABLE_CLASSES, class_table, read_class_table)
from topoloc.data.preset import PRESETS_DIR, list_presets, load_preset, load_preset_pic_names
from topoloc.data.splits import DEFAULT_FRACTIONS, split_assignment
from topoloc.data.topo import DOMAINS, TopoFlight, area_frame, read_pic_names, read_pose_file

__all__ = [
    "flight_normals",
    "flight_scene_points",
    # presets
    "PRESETS_DIR",
    "list_presets",
    "load_preset",
    "load_preset_pic_names",
    # datasets
    "PosedImages",
    "SAMPLE_KEYS",
    "TopoFlight",
    "FlightCollection",
    "ComballazSynthetic",
    "ComballazAir",
    "EPFLPhantom",
    "CrossLocScene",
    "DOMAINS",
    "area_frame",
    "read_pose_file",
    "read_pic_names",
    "split_assignment",
    "DEFAULT_FRACTIONS",
    # poses
    "PoseNormalizer",
    "ImageCache",
    "as_cache",
    "Coverage",
    "coverage",
    # training poses (pose files)
    "corridor",
    "lhs_envelope",
    "lhs_area",
    "latin_hypercube",
    "LhsArea",
    "LHS_AREAS",
    "save_pose_file",
    "load_pose_file",
    "pose_summary",
    # semantic classes of the *_semantics.npy files
    "SEMANTIC_CLASSES",
    "CLASS_TABLE_FILE",
    "TOPO_DATAGEN_CLASSES",
    "CLASS_TABLES",
    "class_table",
    "read_class_table",
    "STABLE_CLASSES",
    "UNSTABLE_CLASSES",
    # metadata
    "parse_dji_metadata",
    "parse_dms",
    "DjiMetadata",
    "DEFAULT_GEOID_OFFSET_M",
]
