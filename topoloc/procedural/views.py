"""Views of Mini-Comballaz at any camera pose, as tensors: the renderer a render-and-compare step
needs (`topoloc.evaluation.verify_poses`), without writing files.

The views are TOPO's synthetic look (the appearance the models train on), rendered by the same
ray caster as `render_flights`, so a view at a rendered flight's pose is that flight's image.
"""

from __future__ import annotations

import numpy as np
import torch

from topoloc._device import resolve_device
from topoloc.procedural.appearance import appearance_for_flight, bake
from topoloc.procedural.renderer import RenderConfig, render
from topoloc.procedural.world import build_world

__all__ = ["ViewRenderer"]


class ViewRenderer:
    """Renders synthetic views of the Mini-Comballaz world at camera-to-world poses.

    Args:
        width, height: the views' size, pixels (the size of the images they are compared with).
        seed: the world's seed (the one the flights were rendered with).
        device: where to render ("cpu", "cuda", ...).
        batch_size: views per ray-casting batch.
        config: ray-casting settings (the writer's defaults).

    Calling it with poses (M, 3 or 4, 4) in the local east-north-up frame of Comballaz (OpenCV
    camera axes: what `topoloc.data.TopoFlight` and the image caches hold) returns uint8 RGB views
    (M, 3, height, width) on the CPU.

    Example:
        >>> views = ViewRenderer(96, 64)  # doctest: +SKIP
        >>> views(cache.c2w[:4]).shape  # doctest: +SKIP
        torch.Size([4, 3, 64, 96])
    """

    def __init__(self, width: int, height: int, seed: int = 0, device="cpu", batch_size: int = 256,
                 config: RenderConfig = RenderConfig()) -> None:
        for name, value in (("width", width), ("height", height), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        self.width, self.height, self.batch_size, self.config = width, height, batch_size, config
        self.device = resolve_device(device)
        world = build_world(seed)
        self._bakes = {"synthetic": bake(world, appearance_for_flight("", "synthetic")).to(self.device)}
        self._world = world.to(self.device)

    def __call__(self, c2w) -> torch.Tensor:
        poses = np.asarray(c2w, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] not in ((3, 4), (4, 4)) or not np.isfinite(poses).all():
            raise ValueError(f"c2w: expected finite camera-to-world poses (M, 3 or 4, 4), got {poses.shape}")
        if len(poses) == 0:
            return torch.empty((0, 3, self.height, self.width), dtype=torch.uint8)
        rows = torch.as_tensor(poses[:, :3], dtype=torch.float32)
        bottom = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]]).expand(len(rows), 1, 4)
        c2w_b44 = torch.cat([rows, bottom], 1).to(self.device)
        out = []
        for batch in c2w_b44.split(self.batch_size):
            keys = {"synthetic": torch.zeros(len(batch), dtype=torch.int64, device=self.device)}
            res = render(self._world, self._bakes, batch, keys, self.width, self.height, self.config)
            out.append(res["synthetic"][0].cpu())
        return torch.cat(out)
