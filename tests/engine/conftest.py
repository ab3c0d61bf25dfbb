"""Tiny data and configurations for the training-engine tests (CPU, seconds each)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from topoloc.engine import TrainConfig


class PoseImages(torch.utils.data.Dataset):
    """In-memory dataset of sample dicts whose images depend on the pose (learnable).

    The camera positions lie on a 40 m grid of local ENU metres; each image's three channels are
    smooth ramps whose levels are linear in x, y and the heading, so a network can regress them.
    """

    def __init__(self, n: int = 24, size_hw: tuple[int, int] = (40, 48), seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.xyz = torch.rand(n, 3, generator=g, dtype=torch.float64) * torch.tensor([40.0, 40.0, 5.0])
        self.yaw = torch.rand(n, generator=g, dtype=torch.float64) * 1.0
        h, w = size_hw
        ramp = torch.linspace(0, 1, w).expand(h, w)
        levels = torch.stack([self.xyz[:, 0] / 40, self.xyz[:, 1] / 40, self.yaw], 1).float()
        img = 60 + 120 * levels[:, :, None, None] + 60 * ramp
        self.images = img.round().clamp(0, 255).to(torch.uint8)
        c, s = torch.cos(self.yaw), torch.sin(self.yaw)
        self.c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
        self.c2w[:, 0, 0], self.c2w[:, 0, 1], self.c2w[:, 1, 0], self.c2w[:, 1, 1] = c, -s, s, c
        self.c2w[:, :3, 3] = self.xyz

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "c2w": self.c2w[i], "name": f"img_{i:03d}", "domain": "synthetic",
                "flight": "tiny", "index": i}

    def poses(self) -> np.ndarray:
        return self.c2w.numpy()


def write_lhs_flight(root, n: int = 6, size_hw: tuple[int, int] = (24, 32), flight: str = "comballaz-LHS"):
    """A TOPO-DataGen LHS flight folder (RGBA PNG renders + poses) for `TopoFlight`; returns the folder."""
    from topoloc.data.preset import load_preset

    folder = root / flight
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{flight}_poses.npy", load_preset("comballaz-LHS")[:n])
    rng = np.random.default_rng(0)
    for i in range(n):
        rgba = rng.integers(0, 256, (*size_hw, 4), dtype=np.uint8)
        rgba[..., 3] = 255
        Image.fromarray(rgba, "RGBA").save(folder / f"{flight}_{i:05d}_img.png")
    return folder


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: the 2-core test machine is shared, and oversubscription is slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pose_images():
    """Factory: ``pose_images(n=24, size_hw=(40, 48), seed=0)``."""
    return PoseImages


@pytest.fixture
def tiny_config(tmp_path):
    """Factory of `TrainConfig` for a ~0.3 M-parameter AtLoc on 32 x 32 images, quiet, on the CPU."""

    def make(**changes) -> TrainConfig:
        values = dict(model="atloc_resnet18", model_kwargs={"backbone": "test_resnet", "feat_dim": 32},
                      epochs=2, batch_size=8, image_size=(32, 32), device="cpu", cache_device="cpu",
                      progress=False, tensorboard=False, out_dir=str(tmp_path / "run"))
        values.update(changes)
        return TrainConfig(**values)

    return make


@pytest.fixture
def lhs_flight():
    """Writer: ``lhs_flight(root, n=6, size_hw=(24, 32))`` -> a TOPO flight folder on disk."""
    return write_lhs_flight
