"""Training and evaluation engines: the cached, on-device data path, checkpoints, DDP."""

from topoloc.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from topoloc.engine.config import TrainConfig
from topoloc.engine.predict import predict
from topoloc.engine.train import Trainer, TrainResult, build_augment, train
from topoloc.engine.evaluate import EvaluationResult, PoseEvaluation, evaluate, evaluate_poses
from topoloc.engine.retrieval import extract_features, nearest_neighbours, retrieve_poses
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
    # evaluation, retrieval baseline, recipes, demo
    "EvaluationResult",
    "PoseEvaluation",
    "evaluate",
    "evaluate_poses",
    "extract_features",
    "nearest_neighbours",
    "retrieve_poses",
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
