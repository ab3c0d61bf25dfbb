"""The loops: training, prediction, evaluation, checkpoints, DDP, localisation of new photos, export.

The engine runs models over data: `train` (the cached, on-device training loop, `Trainer`;
`train_side_by_side`: several CPU runs at once), `predict` (batched poses), `evaluate` (a model
beside its brackets), `adapt_batchnorm` (AdaBN: batch-norm statistics of the test images),
checkpoints (`save_checkpoint`, `load_checkpoint`, `load_model`), `localise` (photos without
ground truth) and `export_onnx`. What an
evaluation produces (result types, CSV / JSON, the baselines) is one floor below, in
`topoloc.evaluation`; the report and the figures one floor above, in `topoloc.reporting`; the demo,
the recipes and the study on the top floor, in `topoloc.experiments`.
"""

from topoloc.engine.adapt import adapt_batchnorm
from topoloc.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from topoloc.engine.config import TrainConfig
from topoloc.engine.evaluate import evaluate
from topoloc.engine.export import export_onnx
from topoloc.engine.localise import localise
from topoloc.engine.predict import predict
from topoloc.engine.side_by_side import train_side_by_side
from topoloc.engine.train import ResumeSettingsError, Trainer, TrainResult, build_augment, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "ResumeSettingsError",
    "build_augment",
    "train",
    "train_side_by_side",
    "predict",
    "evaluate",
    "adapt_batchnorm",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    # new photos, no ground truth
    "localise",
    "export_onnx",
]
