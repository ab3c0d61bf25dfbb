"""Fixtures for the augment tests: the op classes with valid constructions, and test images."""

import pytest
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


def _make_image(*shape, dtype=torch.float32, low=0.0, high=1.0, seed=0):
    """Smooth-ish aerial-like test image: random colours in [low, high]."""
    g = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)).to(dtype)


@pytest.fixture(params=sorted(OPS))
def op_name(request):
    """Each op's short name in turn."""
    return request.param


@pytest.fixture
def ops():
    """name -> factory(**kwargs) of every op class."""
    return OPS


@pytest.fixture
def make_image():
    """make_image(*shape, dtype=..., low=..., high=..., seed=...) -> a random image in [low, high]."""
    return _make_image
