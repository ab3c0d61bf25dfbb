"""TOPO datasets, pose normalisation, DJI metadata and the vendored flight presets."""

from topoloc.data.normalize import PoseNormalizer
from topoloc.data.preset import PRESETS_DIR, list_presets, load_preset, load_preset_pic_names
from topoloc.data.splits import DEFAULT_FRACTIONS, split_assignment
from topoloc.data.topo import DOMAINS, TopoFlight, area_frame, read_pic_names, read_pose_file

__all__ = [
    "PRESETS_DIR",
    "list_presets",
    "load_preset",
    "load_preset_pic_names",
    "TopoFlight",
    "DOMAINS",
    "area_frame",
    "read_pose_file",
    "read_pic_names",
    "split_assignment",
    "DEFAULT_FRACTIONS",
    "PoseNormalizer",
]
