"""topoloc: drone localisation from a single camera image.

Absolute pose regression in the AtLoc family on the EPFL TOPO drone data: position (ECEF,
WGS84, local ENU) and orientation (Cesium yaw / pitch / roll) from one image.

The package is built in floors, each importing only from its own floor and those below it, top
down: the apps (`topoloc.cli`, `topoloc.experiments`: recipes, demo, study), the reports
(`topoloc.reporting`), the loops (`topoloc.engine`: train, predict, evaluate, checkpoints,
localise, export), the results (`topoloc.evaluation`: result types and their files, baselines,
retrieval), the components (`topoloc.models`, `topoloc.data`, `topoloc.procedural`,
`topoloc.saliency`, and the separate `augment` package) and the geometry (`topoloc.geodesy`,
`topoloc.rotations`, `topoloc.metrics`). This module re-exports the public names of every floor.
"""

import lazy_loader

from topoloc._version import __version__

# The public names are imported from their modules when first used (the list is __init__.pyi), so that
# `topoloc --help` and `import topoloc` do not pay for torch, timm and matplotlib (about 10 s on a 2-core CPU).
__getattr__, __dir__, _ = lazy_loader.attach_stub(__name__, __file__)

__all__ = [
    "__version__",
    # geodesy and metrics
    "LocalFrame",
    "wgs84_to_ecef",
    "ecef_to_wgs84",
    "cesium_to_c2w",
    "c2w_to_cesium",
    "pose_errors",
    "summarize",
    "PoseErrorSummary",
    # data
    "load_preset",
    "list_presets",
    "TopoFlight",
    "ComballazSynthetic",
    "ComballazAir",
    "EPFLPhantom",
    "CrossLocScene",
    "parse_dji_metadata",
    "PoseNormalizer",
    "coverage",
    "corridor",
    "lhs_envelope",
    "lhs_area",
    "save_pose_file",
    "load_pose_file",
    # models
    "AtLoc",
    "AtLocAttention",
    "AtLocLoss",
    "Backbone",
    "PoseHead",
    "SpatialAttention",
    "create_model",
    "list_models",
    # training
    "TrainConfig",
    "TrainResult",
    "train",
    "load_model",
    "predict",
    "cpu_has_bf16",
    # evaluation, report, recipes, demo
    "evaluate",
    "adapt_batchnorm",
    "EvaluationResult",
    "write_report",
    "load_recipe",
    "run_recipe",
    "run_demo",
    # new photos: where was each taken?
    "localise",
    "Localisation",
    "export_onnx",
]
