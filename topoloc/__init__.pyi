"""What ``topoloc`` exports, for type checkers and IDEs, and for the lazy loading in ``__init__.py``.

``lazy_loader.attach_stub`` reads this file: each name below is imported from its module the first
time it is used (``from topoloc import AtLoc``, ``topoloc.train``), not when ``topoloc`` is imported.
"""

from ._version import __version__

# The floors, loaded when first used as attributes (topoloc.saliency.gradient_saliency, topoloc.engine, ...).
from . import (cli, data, engine, evaluation, experiments, geodesy, metrics, models, procedural, reporting, rotations,
               saliency)
from .data import (
    ComballazAir,
    ComballazSynthetic,
    CrossLocScene,
    EPFLPhantom,
    PoseNormalizer,
    TopoFlight,
    corridor,
    coverage,
    lhs_area,
    lhs_envelope,
    list_presets,
    load_pose_file,
    load_preset,
    parse_dji_metadata,
    save_pose_file,
)
from .geodesy import LocalFrame, c2w_to_cesium, cesium_to_c2w, ecef_to_wgs84, wgs84_to_ecef
from .metrics import PoseErrorSummary, pose_errors, summarize
from .models import (
    AtLoc,
    AtLocAttention,
    AtLocLoss,
    Backbone,
    PoseHead,
    SpatialAttention,
    create_model,
    list_models,
)
from .evaluation import EvaluationResult, Localisation
from .engine import (TrainConfig, TrainResult, adapt_batchnorm, evaluate, export_onnx, load_model, localise,
                     predict, train)
from .reporting import write_report
from ._device import cpu_has_bf16
from .experiments import load_recipe, run_demo, run_recipe

# What a type checker takes as exported (a stub's imports without `as` are private to it): the names of
# __init__.py's __all__, and the floors.
__all__ = [
    "__version__", "LocalFrame", "wgs84_to_ecef", "ecef_to_wgs84", "cesium_to_c2w", "c2w_to_cesium", "pose_errors",
    "summarize", "PoseErrorSummary", "load_preset", "list_presets", "TopoFlight", "ComballazSynthetic",
    "ComballazAir", "EPFLPhantom", "CrossLocScene", "parse_dji_metadata", "PoseNormalizer", "coverage", "corridor",
    "lhs_envelope", "lhs_area", "save_pose_file", "load_pose_file", "AtLoc", "AtLocAttention", "AtLocLoss",
    "Backbone", "PoseHead", "SpatialAttention", "create_model", "list_models", "TrainConfig", "TrainResult",
    "train", "load_model", "predict", "cpu_has_bf16", "evaluate", "adapt_batchnorm", "EvaluationResult",
    "write_report", "load_recipe", "run_recipe", "run_demo", "localise", "Localisation", "export_onnx", "cli",
    "data", "engine", "evaluation", "experiments", "geodesy", "metrics", "models", "procedural", "reporting",
    "rotations", "saliency",
]
