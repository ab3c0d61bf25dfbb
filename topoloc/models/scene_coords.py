"""An auxiliary scene-coordinate head: the world point under each cell of the backbone's stride-8 map.

Trained beside the pose regressor (`TrainConfig.scene_coords`) on the renders' geometry files and
dropped after training, it makes the backbone's features say where each part of the image lies,
as the scene-coordinate networks of TOPO's CrossLoc do. The model that is saved, evaluated and
exported is the plain `AtLoc`. Measured on Mini-Comballaz (docs/RESULTS.md, "A scene-coordinate head
in the augmented fine-tune"): the unaugmented run's renders come near the coverage ceiling (13.2 m
against 12.7 m there).

`scene_stages` finds the backbone's stages at strides 8 and deeper from timm's ``feature_info``;
`StageTap` keeps their outputs as the model runs; `SceneCoordHead` upsamples them to the first
one's grid and regresses a point per cell; `scene_coord_loss` is the mean Euclidean distance to the
cells' mean points, in units of `SCENE_SCALE_M` about the training points' centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topoloc.models.backbone import _is_token_model

if TYPE_CHECKING:
    from topoloc.models.atloc import AtLoc

__all__ = ["SCENE_SCALE_M", "SceneCoordHead", "StageTap", "scene_stages", "scene_coord_loss"]

#: The head regresses ``(point - centre) / SCENE_SCALE_M``: the loss is in hundreds of metres.
SCENE_SCALE_M = 100.0


def scene_stages(model: "AtLoc") -> list[str]:
    """The names (in ``model.backbone.model``) of the backbone's last module at each stride of 8 and more.

    Args:
        model: an `AtLoc` (its ``backbone.model`` is the timm model).

    Raises:
        ValueError: a token (ViT) backbone, or one without timm ``feature_info`` at stride 8 or more,
            naming the backbone.
    """
    timm_model = model.backbone.model
    name = type(timm_model).__name__
    if _is_token_model(timm_model):
        raise ValueError(f"TrainConfig.scene_coords: the backbone {name} is a token model (ViT): it has one "
                         "stride and no feature map per stage for the scene-coordinate head; use a convolutional "
                         "backbone or scene_coords=0")
    last: dict[int, str] = {}
    for info in getattr(timm_model, "feature_info", None) or []:
        reduction, module = info.get("reduction"), info.get("module")
        if isinstance(reduction, int) and reduction >= 8 and module:
            last[reduction] = module
    if not last:
        raise ValueError(f"TrainConfig.scene_coords: the backbone {name} lists no stage at stride 8 or more in timm's "
                         "feature_info; the scene-coordinate head needs one (use a timm CNN such as a ResNet, or "
                         "scene_coords=0)")
    return [last[r] for r in sorted(last)]


class StageTap:
    """Forward hooks that keep the outputs of the named submodules of ``model.backbone.model`` while
    ``active`` (the training steps): `features` gives them in the order of ``names``."""

    def __init__(self, model: "AtLoc", names: Sequence[str]) -> None:
        modules = dict(model.backbone.model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"StageTap: the backbone has no module(s) {missing}")
        self.names = list(names)
        self.active = False
        self._out: dict[int, Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._keeper(i)) for i, n in enumerate(self.names)]

    def _keeper(self, i: int) -> Any:
        def keep(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            if self.active:
                self._out[i] = output
        return keep

    def features(self) -> list[Tensor]:
        """The kept outputs of the last forward pass (and forgets them)."""
        if len(self._out) != len(self.names):
            raise RuntimeError("StageTap: no forward pass of the model since the last call (or not `active`)")
        out = [self._out[i] for i in range(len(self.names))]
        self._out.clear()
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


class SceneCoordHead(nn.Module):
    """World points per cell from the backbone's stages: each stage is upsampled (bilinear) to the
    first one's grid and concatenated; a 1x1 convolution to ``width`` channels, a 3x3 one and a 1x1
    one to (east, north, up) follow, with ReLUs between. It runs in float32 (outside autocast).

    At ``width=64`` on the demo's half-width ResNet18 (64 + 128 + 256 channels, 8 x 12 cells) it is
    12.6 MFLOPs per image, against the model's 142 (docs/RESULTS.md).

    Args:
        in_channels: the channels of each stage, in `scene_stages` order.
        width: the hidden channels.
    """

    def __init__(self, in_channels: Sequence[int], width: int = 64) -> None:
        super().__init__()
        if not in_channels or any(int(c) < 1 for c in in_channels):
            raise ValueError(f"SceneCoordHead: `in_channels` must be positive channel counts, got {in_channels!r}")
        self.net = nn.Sequential(nn.Conv2d(sum(int(c) for c in in_channels), width, 1), nn.ReLU(),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 1))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        maps = [f.float() if f.shape[-2:] == size else
                F.interpolate(f.float(), size=size, mode="bilinear", align_corners=False) for f in features]
        with torch.autocast(device_type=maps[0].device.type, enabled=False):
            return self.net(torch.cat(maps, 1))


def scene_coord_loss(pred: Tensor, target: Tensor) -> Tensor:
    """The mean Euclidean distance between ``pred`` and ``target`` (both (B, 3, h, w)) over the cells
    where ``target`` is finite; 0 (with a gradient path) where no cell is.

    Example:
        >>> t = torch.tensor([[[[0.0, float("nan")]], [[0.0, 0.0]], [[0.0, 0.0]]]])  # (1, 3, 1, 2)
        >>> scene_coord_loss(torch.tensor([[[[3.0, 9.0]], [[4.0, 9.0]], [[0.0, 9.0]]]]), t)
        tensor(5.)
    """
    if pred.shape != target.shape:
        raise ValueError(f"scene_coord_loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    valid = torch.isfinite(target).all(1).to(pred.dtype)  # no boolean indexing: no device sync per step
    distance = (pred - torch.nan_to_num(target, nan=0.0, posinf=0.0, neginf=0.0)).norm(dim=1)
    return (distance * valid).sum() / valid.sum().clamp_min(1.0)
