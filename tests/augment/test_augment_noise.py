"""Noise fields against their defining properties, worked by hand."""

import math

import pytest
import torch

from augment.functional.noise import fractal_noise, hash_uniform, perlin_noise, value_noise


def _ones(value, n=1):
    return torch.full((n,), float(value))


def test_hash_is_uniform_and_deterministic():
    ix = torch.arange(256).view(1, -1).expand(256, -1)
    iy = torch.arange(256).view(-1, 1).expand(-1, 256)
    u = hash_uniform(ix, iy, torch.tensor(9))
    assert torch.equal(u, hash_uniform(ix, iy, torch.tensor(9)))
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    # Uniform on [0, 1): mean 1/2, variance 1/12; 10 equal bins of 6554 expected counts each.
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert abs(float(u.var()) - 1.0 / 12.0) < 0.003
    counts = torch.histc(u, bins=10, min=0.0, max=1.0)
    chi2 = float(((counts - u.numel() / 10) ** 2 / (u.numel() / 10)).sum())
    assert chi2 < 27.9  # the 0.001 quantile of chi-square with 9 degrees of freedom
    assert not torch.equal(u, hash_uniform(ix, iy, torch.tensor(10)))


def test_value_noise_interpolates_the_hashed_lattice():
    # scale = 8 cells over 8 pixels and offset -0.5 put every pixel centre on a lattice node.
    out = value_noise(_ones(5), torch.full((1, 2), -0.5), _ones(8), (8, 8))
    ix = torch.arange(8)
    expected = hash_uniform(ix.view(1, 8), ix.view(8, 1), torch.tensor(5))
    torch.testing.assert_close(out[0, 0], expected, atol=1e-5, rtol=0)


def test_perlin_is_zero_on_lattice_nodes():
    out = perlin_noise(_ones(3), torch.full((1, 2), -0.5), _ones(16), (16, 16))
    assert float(out.abs().max()) < 1e-6


def test_perlin_gradient_at_a_node_is_its_hashed_unit_vector():
    # Near node (2, 3) the field is g . d with g = (cos a, sin a), a = 2 pi hash(2, 3, seed).
    seed, step = 11, 1e-3
    offsets = torch.tensor([[2.0 + step, 3.0], [2.0, 3.0 + step]], dtype=torch.float64)
    # One pixel, scale tiny: the pixel centre sits at the offset.
    out = perlin_noise(_ones(seed, 2), offsets, torch.full((2,), 1e-9, dtype=torch.float64), (1, 1), torch.float64)
    angle = 2.0 * math.pi * float(hash_uniform(torch.tensor(2), torch.tensor(3), torch.tensor(seed)))
    torch.testing.assert_close(out.flatten() / step,
                               torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64), atol=1e-5, rtol=0)


def test_perlin_bound():
    out = perlin_noise(torch.arange(4.0), torch.zeros(4, 2), _ones(6, 4), (64, 64))
    assert float(out.abs().max()) <= math.sqrt(2.0) / 2.0 + 1e-6


@pytest.mark.parametrize("basis", ["value", "perlin"])
def test_fractal_offset_translates_the_field_rigidly(basis):
    # Shifting the offset by 4 pixels' worth of base cells moves the whole fBm by 4 pixels.
    size, scale, shift_px = 32, 4.0, 4
    seed = torch.tensor([7.0, 7.0])
    offsets = torch.tensor([[0.0, 0.0], [shift_px * scale / size, 0.0]], dtype=torch.float64)
    out = fractal_noise(seed, offsets, torch.full((2,), scale), (size, size), octaves=4, basis=basis,
                        dtype=torch.float64)
    torch.testing.assert_close(out[1, 0, :, :-shift_px], out[0, 0, :, shift_px:], atol=1e-6, rtol=0)


def test_fractal_statistics_and_independence():
    out = fractal_noise(torch.arange(8.0), torch.zeros(8, 2), _ones(4, 8), (64, 64))
    assert abs(float(out.mean()) - 0.5) < 0.06
    assert 0.0 < float(out.min()) and float(out.max()) < 1.0
    assert not torch.equal(out[0], out[1])
    corr = torch.corrcoef(out.flatten(1))[0, 1]
    assert abs(float(corr)) < 0.5


def test_fractal_rejects_bad_arguments():
    args = (torch.zeros(1), torch.zeros(1, 2), torch.ones(1), (8, 8))
    with pytest.raises(ValueError, match="octaves"):
        fractal_noise(*args, octaves=0)
    with pytest.raises(ValueError, match="lacunarity"):
        fractal_noise(*args, lacunarity=1.0)
    with pytest.raises(ValueError, match="basis"):
        fractal_noise(*args, basis="simplex")


def test_every_hash_bit_is_fair():
    from augment.functional.noise import hash_bits

    ix = torch.arange(128).view(1, -1)
    iy = torch.arange(128).view(-1, 1)
    bits = hash_bits(ix, iy, torch.tensor(3)).to(torch.int64) & 0xFFFFFFFF
    for k in range(32):
        share = float(((bits >> k) & 1).double().mean())
        assert abs(share - 0.5) < 0.02, f"bit {k} is set in {share:.3f} of the hashes"


def _hash_by_hand(ix, iy, seed):
    """The murmur-style hash in Python integers, modulo 2**32, returned as a signed 32-bit value."""
    m = 0xFFFFFFFF
    h = (ix * 668265261) & m
    h ^= (iy * 374761393) & m
    h ^= (seed * 1540483477) & m
    h = ((h ^ (h >> 15)) * 739982445) & m
    h = ((h ^ (h >> 12)) * 695872825) & m
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def test_hash_runs_eagerly_inside_compiled_code():
    """torch.compile must not trace the hash: Triton refused inductor's folding of its wrapping int32 products
    ("Scalar 95938916608 is out of range for type int32", RandomClouds on an H200, torch 2.11)."""
    from augment.functional.noise import hash_bits

    traced = []

    def recording_backend(gm, example_inputs):
        traced.extend(arg for node in gm.graph.nodes if node.op == "call_function" for arg in node.args)
        return gm.forward

    def lattice(n):
        ix = torch.arange(n) * 3 - 5
        return hash_bits(ix, ix * 7 + 1000, torch.tensor([11])) + 0

    torch._dynamo.reset()
    compiled = torch.compile(lattice, backend=recording_backend)(64)
    torch._dynamo.reset()
    assert not {668265261, 374761393, 1540483477, 739982445, 695872825} & {a for a in traced if isinstance(a, int)}
    expected = [_hash_by_hand(3 * i - 5, 7 * (3 * i - 5) + 1000, 11) for i in range(64)]
    assert compiled.tolist() == expected


@pytest.mark.parametrize("call, expected", [
    # each was a raw error from deep inside: IndexError, a size mismatch, AttributeError, ZeroDivisionError
    (lambda: value_noise(torch.zeros(2), torch.zeros(2), torch.full((2,), 3.0), (8, 8)),
     r"^offset must be a tensor of shape \(B, 2\), one \(x, y\) per image, got \(2,\)\.$"),
    (lambda: value_noise(torch.zeros(3), torch.zeros(2, 2), torch.full((2,), 3.0), (8, 8)),
     r"^seed must have shape \(2,\), got \(3,\)\.$"),
    (lambda: value_noise(torch.zeros(2), torch.zeros(2, 2), torch.zeros(2), (8, 8)),
     r"^scale must be > 0 and < inf, got 0\.$"),
    (lambda: perlin_noise(torch.zeros(2), torch.zeros(2, 2), torch.full((2,), 3.0), (0, 5)),
     r"^size must be \(H, W\), two ints >= 1, got \(0, 5\)\.$"),
    (lambda: fractal_noise(torch.zeros(1), torch.zeros(1, 2), torch.tensor([-1.0]), (8, 8)),
     r"^scale must be > 0 and < inf, got -1\.$"),
    (lambda: fractal_noise(torch.zeros(1), torch.zeros(1, 2), torch.tensor([4.0]), (8, 8), max_scale=0.0),
     r"^max_scale must be a number > 0"),
])
def test_bad_noise_arguments_are_refused_by_name(call, expected):
    with pytest.raises(ValueError, match=expected):
        call()
    with pytest.raises(TypeError, match=r"^scale must be a tensor with one value per image, got float\.$"):
        value_noise(torch.zeros(2), torch.zeros(2, 2), 3.0, (8, 8))


@pytest.mark.parametrize("scale", [0.0, float("nan")])
def test_a_cloud_layer_of_no_scale_is_refused_by_name(scale):
    # scale 0 was "ZeroDivisionError: float division by zero", NaN "cannot convert float NaN to integer"
    from augment.functional import cloud_layer

    o = torch.ones(2)
    with pytest.raises(ValueError, match=r"^scale must be > 0 and < inf, got (0|nan)\.$"):
        cloud_layer(torch.rand(2, 3, 8, 8), torch.zeros(2), o * 0.7, o * 0.4, o * 0.4, torch.ones(2, 3),
                    torch.full((2,), scale), o * 0.4, torch.zeros(2, 2))
