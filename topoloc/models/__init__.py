"""AtLoc-family pose regressors as composable parts: backbone, attention, head, loss."""

from topoloc.models._registry import create_model, list_models, register_model
from topoloc.models.atloc import ATTENTION_TYPES, AtLoc
from topoloc.models.attention import AtLocAttention, SpatialAttention
from topoloc.models.backbone import Backbone
from topoloc.models.heads import ROTATION_FORMATS, PoseHead
from topoloc.models.input_filter import LocalContrastNorm
from topoloc.models.loss import AtLocLoss

__all__ = [
    "ATTENTION_TYPES",
    "ROTATION_FORMATS",
    "AtLoc",
    "AtLocAttention",
    "AtLocLoss",
    "Backbone",
    "LocalContrastNorm",
    "PoseHead",
    "SpatialAttention",
    "create_model",
    "list_models",
    "register_model",
]
