"""AtLoc's pose loss with learned, homoscedastic weights (Kendall et al. 2017, Wang et al. 2020)."""

from __future__ import annotations

import math
import numbers
from os import PathLike

import torch
from torch import Tensor, nn

__all__ = ["AtLocLoss"]


class AtLocLoss(nn.Module):
    """AtLoc's loss: ``exp(-sx) * L1(t) + sx + exp(-sq) * L1(logq) + sq``.

    ``L1`` is the mean absolute error over the batch and the components (``nn.L1Loss`` with its
    default ``reduction="mean"``), exactly as in the original code. The weights ``sax`` and
    ``saq`` (the names of the original ``criterion_state_dict``) are ``nn.Parameter`` of shape
    (1,): pass ``loss.parameters()`` to the optimiser beside the model's when ``learnable``.

    The first three columns of a pose are the translation (normalised units, whatever the data
    pipeline uses), the remaining ones the rotation code (6 for the 6D code, 4 for a unit
    quaternion, 3 for a log-quaternion); prediction and target must have the same layout. A
    quaternion and its negative are the same rotation, so for 4-number codes the rotation term is
    sign-invariant: per pose the smaller of ``L1(q_pred - q)`` and ``L1(q_pred + q)``.

    Args:
        sx: initial translation weight (log variance), 0.0 in AtLoc.
        sq: initial rotation weight (log variance), -3.0 in AtLoc.
        learnable: whether ``sax`` / ``saq`` are trained (``requires_grad``).

    Shape:
        - pred: (B, 9), (B, 7) or (B, 6)
        - target: same as ``pred``
        - output: scalar

    Examples:
        >>> loss_fn = AtLocLoss()
        >>> pred, target = torch.zeros(2, 6), torch.ones(2, 6)
        >>> round(loss_fn(pred, target).item(), 4)  # exp(0) * 1 + 0 + exp(3) * 1 - 3
        18.0855
    """

    def __init__(self, sx: float = 0.0, sq: float = -3.0, learnable: bool = True) -> None:
        super().__init__()
        for name, value in (("sx", sx), ("sq", sq)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"AtLocLoss: `{name}` must be a float, got {type(value).__name__}")
            value = float(value)  # numpy's float32 is a Real but not a float
            if not math.isfinite(value):
                raise ValueError(f"AtLocLoss: `{name}` must be a finite log variance, got {value}")
        if not isinstance(learnable, bool):
            raise TypeError(f"AtLocLoss: `learnable` must be True or False, got {learnable!r}")
        self.learnable = learnable
        self.sax = nn.Parameter(torch.tensor([float(sx)]), requires_grad=self.learnable)
        self.saq = nn.Parameter(torch.tensor([float(sq)]), requires_grad=self.learnable)

    def extra_repr(self) -> str:
        return f"sx={self.sax.item():.4f}, sq={self.saq.item():.4f}, learnable={self.learnable}"

    def terms(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The loss and its parts, for logging.

        Returns:
            ``{"loss", "t_l1", "q_l1", "sax", "saq"}``, each a float32 scalar tensor whatever the dtype of
            ``pred`` (the loss is computed in float32; the L1 terms are the unweighted mean absolute errors).
        """
        for name, value in (("pred", pred), ("target", target)):
            if not isinstance(value, Tensor):
                raise TypeError(f"AtLocLoss: `{name}` must be a torch tensor, got {type(value).__name__} "
                                "(torch.as_tensor(...) for an array)")
        if pred.shape != target.shape or pred.ndim != 2 or pred.shape[1] not in (6, 7, 9):
            raise ValueError(
                "AtLocLoss: `pred` and `target` must both be (B, 9), (B, 7) or (B, 6) with the same shape, "
                f"got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        if pred.shape[0] == 0:
            raise ValueError("AtLocLoss: `pred` and `target` hold no pose (B = 0); the mean error of none is NaN")
        # The loss is computed in float32 even under autocast: exp() of the weights and the means
        # are better kept out of bf16.
        pred = pred.float()
        target = target.float()
        sax = self.sax.float().squeeze(0)
        saq = self.saq.float().squeeze(0)
        t_l1 = (pred[:, :3] - target[:, :3]).abs().mean()
        if pred.shape[1] == 7:  # quaternions: q and -q are one rotation
            q_l1 = torch.minimum((pred[:, 3:] - target[:, 3:]).abs().mean(1),
                                 (pred[:, 3:] + target[:, 3:]).abs().mean(1)).mean()
        else:
            q_l1 = (pred[:, 3:] - target[:, 3:]).abs().mean()
        loss = torch.exp(-sax) * t_l1 + sax + torch.exp(-saq) * q_l1 + saq
        return {"loss": loss, "t_l1": t_l1.detach(), "q_l1": q_l1.detach(),
                "sax": sax.detach(), "saq": saq.detach()}

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of predicted against target poses (see the class docstring)."""
        return self.terms(pred, target)["loss"]

    @classmethod
    def from_atloc_checkpoint(cls, path: str | PathLike, learnable: bool = True) -> "AtLocLoss":
        """The loss with the learned ``sax`` / ``saq`` of a checkpoint of the original AtLoc code.

        Args:
            path: a ``torch.save`` file holding ``criterion_state_dict`` with ``sax`` and ``saq``.
            learnable: whether the loaded weights keep training.
        """
        from topoloc.models._checkpoint import load_atloc_checkpoint

        criterion = load_atloc_checkpoint(path)["criterion_state_dict"]
        return cls(float(criterion["sax"].reshape(-1)[0]), float(criterion["saq"].reshape(-1)[0]),
                   learnable=learnable)
