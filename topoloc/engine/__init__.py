"""Training and evaluation engines: the cached, on-device data path, checkpoints, DDP."""

from topoloc.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from topoloc.engine.config import TrainConfig
from topoloc.engine.predict import predict
from topoloc.engine.train import Trainer, TrainResult, build_augment, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_augment",
    "load_checkpoint",
    "load_model",
    "predict",
    "save_checkpoint",
    "train",
]
