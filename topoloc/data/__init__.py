"""TOPO datasets, pose normalisation, DJI metadata and the vendored flight presets."""

from topoloc.data.preset import PRESETS_DIR, list_presets, load_preset, load_preset_pic_names

__all__ = ["PRESETS_DIR", "list_presets", "load_preset", "load_preset_pic_names"]
