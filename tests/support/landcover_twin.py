"""A fabricated synthetic flight whose semantic maps are designed, and predictions with designed errors: the
land-cover section's test fixtures."""

from __future__ import annotations

import numpy as np
from PIL import Image

from topoloc.data.preset import load_preset
from topoloc.data.topo import TopoFlight
from topoloc.evaluation import PoseEvaluation
from topoloc.geodesy import LocalFrame

FLIGHT = "comballaz-LHS"
ROCK = 4  # the land-cover id of every pixel not asked for


def landcover_twin(root, pixels: dict[int, list[int]]) -> TopoFlight:
    """The synthetic flight ``FLIGHT`` under ``root``: the preset's first poses, one 10 x 10 px view each.

    View i's semantic map holds ``pixels[c][i]`` pixels of each class id ``c``, in the dict's order, and
    rock in the rest; so ``pixels[c][i]`` is also class c's share of view i in percent.
    """
    n = len(next(iter(pixels.values())))
    folder = root / FLIGHT
    folder.mkdir()
    np.save(folder / f"{FLIGHT}_poses.npy", load_preset(FLIGHT)[:n])
    for i in range(n):
        Image.new("RGBA", (10, 10), (90, 120, 60, 255)).save(folder / f"{FLIGHT}_{i:05d}_img.png")
        sem = np.full(100, ROCK, dtype=np.uint8)
        start = 0
        for class_id, counts in pixels.items():
            sem[start:start + counts[i]] = class_id
            start += counts[i]
        assert start <= 100, f"view {i} asks for {start} pixels of 100"
        np.save(folder / f"{FLIGHT}_{i:05d}_semantics.npy", sem.reshape(10, 10))
    return TopoFlight(root, FLIGHT, domain="synthetic", frame=LocalFrame.named("comballaz"), load_semantics=True)


def shifted_evaluation(twin: TopoFlight, rows, domain, metres, method: str = "aug", flights=FLIGHT) -> PoseEvaluation:
    """Predictions of ``rows``' poses moved ``metres`` east and turned by metres / 10 deg about their axis."""
    gt = twin.poses()[rows]
    yaw = np.deg2rad(np.asarray(metres, dtype=float) / 10.0)
    turn = np.tile(np.eye(4), (len(rows), 1, 1))
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1] = np.cos(yaw), -np.sin(yaw), np.sin(yaw), np.cos(yaw)
    pred = gt @ turn
    pred[:, 0, 3] += metres
    return PoseEvaluation(method, names=[f"i{r}" for r in rows], flights=flights, domains=domain, pred_c2w=pred,
                          gt_c2w=gt, frame=twin.frame)
