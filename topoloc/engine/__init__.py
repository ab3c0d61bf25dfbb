"""Training and evaluation engines: the cached, on-device data path, checkpoints, DDP."""

from topoloc.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from topoloc.engine.config import TrainConfig
from topoloc.engine.predict import predict
from topoloc.engine.train import Trainer, TrainResult, build_augment, train
from topoloc.engine.baselines import chordal_mean_rotation, constant_pose, coverage_ceiling
from topoloc.engine.evaluate import EvaluationResult, PoseEvaluation, evaluate, evaluate_poses
from topoloc.engine.retrieval import (extract_features, nearest_neighbours, retrieval_label, retrieve_poses,
                                      thumbnail_features)
from topoloc.engine.recipe import Recipe, evaluate_checkpoint, explain_checkpoint, load_recipe, run_recipe
from topoloc.engine.demo import DemoConfig, demo_config, run_demo
from topoloc.engine.localise import localise
from topoloc.engine.export import export_onnx

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
    # evaluation, its brackets (constant pose, retrieval, coverage ceiling), recipes, demo
    "EvaluationResult",
    "PoseEvaluation",
    "evaluate",
    "evaluate_poses",
    "chordal_mean_rotation",
    "constant_pose",
    "coverage_ceiling",
    "extract_features",
    "nearest_neighbours",
    "retrieval_label",
    "retrieve_poses",
    "thumbnail_features",
    "Recipe",
    "load_recipe",
    "run_recipe",
    "evaluate_checkpoint",
    "explain_checkpoint",
    "DemoConfig",
    "demo_config",
    "run_demo",
    # new photos, no ground truth
    "localise",
    "export_onnx",
]
