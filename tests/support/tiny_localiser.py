"""A tiny untrained AtLoc checkpoint and random photos, for the `localise` tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from topoloc.data import PoseNormalizer
from topoloc.data.preset import load_preset
from topoloc.engine import TrainConfig
from topoloc.engine.checkpoint import save_checkpoint
from topoloc.geodesy import LocalFrame
from topoloc.models import create_model

KWARGS = {"backbone": "test_resnet", "feat_dim": 32}
SIZE = (32, 48)  # (H, W) the tiny model takes


def write_checkpoint(path: Path, image_size=SIZE, frame=None, seed: int = 0) -> Path:
    """A topoloc checkpoint of an untrained tiny AtLoc, normaliser fitted on Comballaz LHS poses."""
    torch.manual_seed(seed)
    model = create_model("atloc_resnet18", **KWARGS).eval()
    frame_obj = LocalFrame.named(frame if isinstance(frame, str) else "comballaz")
    normalizer = PoseNormalizer.fit(frame_obj.cesium_to_c2w(load_preset("comballaz-LHS")[:60] if frame != "epfl"
                                                           else load_preset("EPFL-LHS")[:60]))
    cfg = TrainConfig(model="atloc_resnet18", model_kwargs=KWARGS, image_size=image_size, device="cpu")
    state = {"model_name": "atloc_resnet18", "model_kwargs": KWARGS, "model_state": model.state_dict(),
             "normalizer": normalizer.state_dict(), "config": cfg.to_dict()}
    if frame is not None:  # as checkpoints record it: {name, lat_deg, lon_deg, h_m}
        state["frame"] = {"name": frame, **frame_obj.to_dict()}
    return save_checkpoint(state, path)


def write_photos(folder: Path, n: int = 3, size_wh=(72, 48), seed: int = 0, suffix: str = ".png") -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 256, (size_wh[1], size_wh[0], 3), dtype=np.uint8)
        paths.append(folder / f"photo_{i}{suffix}")
        Image.fromarray(arr).save(paths[-1])
    return paths
