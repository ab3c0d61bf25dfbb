"""Killing a training run after a given optimiser step, and comparing the weights of two runs."""

from __future__ import annotations

import torch

from topoloc.engine import load_checkpoint


class Killed(Exception):
    """Stands for the process being killed after a given optimiser step."""


def kill_at(global_step: int):
    """A training callback that raises :class:`Killed` once ``global_step`` optimiser steps are done."""
    def callback(event):
        if event["global_step"] == global_step:
            raise Killed(f"killed after step {global_step}")
    return callback


def checkpoint_weights(path) -> dict[str, torch.Tensor]:
    """A checkpoint's model tensors and the loss's learnt weights (``loss.sx``, ``loss.sq``) in one dict."""
    state = load_checkpoint(path)
    return {**state["model_state"], **{f"loss.{k}": v for k, v in state["loss_state"].items()}}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Every tensor of ``a`` and ``b`` equal to the bit, and the same names in both."""
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
