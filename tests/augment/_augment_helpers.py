"""Shared helpers for the augment tests: the op classes with small, valid constructions."""

import torch

import augment

BANK = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(7))

#: name -> factory(**kwargs) building the op with its default ranges.
OPS = {
    "clouds": lambda **kw: augment.RandomClouds(**kw),
    "snow": lambda **kw: augment.RandomSnowCover(**kw),
    "season": lambda **kw: augment.RandomSeasonShift(**kw),
    "haze": lambda **kw: augment.RandomHaze(**kw),
    "illumination": lambda **kw: augment.RandomIllumination(**kw),
    "camera": lambda **kw: augment.RandomCameraEffects(**kw),
    "abstraction": lambda **kw: augment.RandomEdgeAbstraction(**kw),
    "fda": lambda **kw: augment.FourierDomainAdaptation(BANK, **kw),
}


def make_image(*shape, dtype=torch.float32, low=0.0, high=1.0, seed=0):
    """Smooth-ish aerial-like test image: random colours in [low, high]."""
    g = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)).to(dtype)
