"""`eval_mode`: a model in eval mode for a block, each of its layers' own mode restored after."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for the block; on leaving it, every layer gets back its own mode.

    ``module.train(was_training)`` would set all layers to the top module's mode: a batch norm frozen in a
    training model (``bn.eval()``, common when fine-tuning) came back training.
    """
    modes = [(layer, layer.training) for layer in module.modules()]
    try:
        yield module.eval()
    finally:
        for layer, training in modes:
            layer.training = training
