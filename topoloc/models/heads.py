"""Pose regression head: dropout, then translation and rotation layers."""

from __future__ import annotations

from contextlib import nullcontext

import torch.nn.functional as F
import torch
from torch import Tensor, nn

from topoloc._messages import shape_of

__all__ = ["PoseHead", "ROTATION_FORMATS"]

#: Rotation outputs of `PoseHead` and their sizes: the continuous 6D code (two matrix columns,
#: decoded by Gram-Schmidt; the default), a unit quaternion (w, x, y, z) or AtLoc's log-quaternion.
ROTATION_FORMATS = {"6d": 6, "quat": 4, "log_quat": 3}
#: Devices whose autocast the head switches off in eval mode (torch.autocast refuses some other device types).
AUTOCAST_DEVICES = ("cpu", "cuda")


class PoseHead(nn.Module):
    """Dropout followed by AtLoc's two linear layers ``fc_xyz`` (3) and ``fc_wpqr`` (3 or 4).

    AtLoc applies ``F.dropout(x, p)`` with ``training=True`` hard-wired, so its dropout stays on
    at test time. Here dropout is an ``nn.Dropout`` module: active in ``train()``, off in
    ``eval()``.

    Args:
        in_dim: size of the input feature vector (``feat_dim`` of the model, 2048 in AtLoc).
        dropout: dropout probability before the layers (0.5 in AtLoc).
        rotation: ``"6d"`` (6 numbers, ``topoloc.rotations.matrix_to_rot6d``: continuous, no
            jump anywhere on SO(3); output raw, decoded by Gram-Schmidt), ``"quat"`` (4 numbers,
            a unit quaternion (w, x, y, z), normalised in the head) or ``"log_quat"`` (AtLoc,
            3 numbers, ``topoloc.rotations.qlog``).

    Shape:
        - input: (B, in_dim)
        - output: (B, 9) for ``"6d"``, (B, 7) for ``"quat"``, (B, 6) for ``"log_quat"``:
          translation first.

    Examples:
        >>> head = PoseHead(16, rotation="quat").eval()
        >>> out = head(torch.randn(2, 16))
        >>> out.shape, torch.allclose(out[:, 3:].norm(dim=1), torch.ones(2))
        (torch.Size([2, 7]), True)
    """

    def __init__(self, in_dim: int, dropout: float = 0.5, rotation: str = "6d") -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
            raise ValueError(f"PoseHead: `in_dim` must be a positive int, got {in_dim!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"PoseHead: `dropout` must be a probability in [0, 1), got {dropout!r}")
        if not isinstance(rotation, str) or rotation not in ROTATION_FORMATS:
            raise ValueError(
                f"PoseHead: `rotation` must be one of {sorted(ROTATION_FORMATS)}, got {rotation!r}"
            )
        self.in_dim = in_dim
        self.rotation = rotation
        self.rotation_dim = ROTATION_FORMATS[rotation]
        self.out_dim = 3 + self.rotation_dim
        self.dropout = nn.Dropout(float(dropout))
        self.fc_xyz = nn.Linear(in_dim, 3)
        self.fc_wpqr = nn.Linear(in_dim, self.rotation_dim)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, rotation={self.rotation!r}"

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"PoseHead: `x` must be (B, {self.in_dim}) features, got {shape_of(x)}")
        # In eval mode float32 even under autocast: bf16 codes are 2^-8 of their size apart, about 1 m of a 600 m
        # spread of positions and up to degrees, a floor under every figure read on a GPU (predict, evaluate,
        # localise autocast there). Training keeps autocast's bf16 layers: their rounding is noise in a step, and
        # the figures of the runs trained so (bf16 CPUs, GPUs) stay as they were.
        precise = not self.training and x.device.type in AUTOCAST_DEVICES
        with torch.autocast(x.device.type, enabled=False) if precise else nullcontext():
            x = self.dropout(x.float() if precise else x)
            xyz = self.fc_xyz(x)
            wpqr = self.fc_wpqr(x)
        if self.rotation == "quat":
            wpqr = F.normalize(wpqr, dim=1)
        return torch.cat([xyz, wpqr], dim=1)
