"""AtLoc's vector attention and the spatial attention against hand-written evaluations."""

import math

import numpy as np
import pytest
import torch

from topoloc import AtLocAttention, SpatialAttention


def _linear(layer, x):
    return x @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


class TestAtLocAttention:
    def test_matches_formula_by_hand(self):
        torch.manual_seed(0)
        att = AtLocAttention(32).double()
        x = torch.randn(3, 32, dtype=torch.float64)
        out = att(x).detach().numpy()
        xn = x.numpy()
        for b in range(3):
            g = _linear(att.g, xn[b])  # (4,)
            theta = _linear(att.theta, xn[b])
            phi = _linear(att.phi, xn[b])
            # f[i, j] = softmax_j(phi_i * theta_j); y_i = sum_j f[i, j] g_j
            y = np.array([np.dot(_softmax(phi[i] * theta), g) for i in range(4)])
            z = _linear(att.W, y) + xn[b]
            np.testing.assert_allclose(out[b], z, rtol=1e-12, atol=1e-12)

    def test_parameter_names_and_shapes(self):
        att = AtLocAttention(2048)
        shapes = {k: tuple(v.shape) for k, v in att.state_dict().items()}
        assert shapes == {
            "g.weight": (256, 2048), "g.bias": (256,), "theta.weight": (256, 2048), "theta.bias": (256,),
            "phi.weight": (256, 2048), "phi.bias": (256,), "W.weight": (2048, 256), "W.bias": (2048,),
        }

    def test_weights_are_row_stochastic(self):
        att = AtLocAttention(64)
        f = att.attention_weights(torch.randn(2, 64))
        assert f.shape == (2, 8, 8)
        torch.testing.assert_close(f.sum(-1), torch.ones(2, 8))

    def test_gradcheck(self):
        torch.manual_seed(0)
        att = AtLocAttention(16, reduction=4).double()
        x = torch.randn(2, 16, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(att, (x,))

    @pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": 4, "reduction": 8}, {"dim": 16.0}])
    def test_bad_arguments(self, kwargs):
        with pytest.raises(ValueError, match="dim"):
            AtLocAttention(**kwargs)


class TestSpatialAttention:
    def test_identity_at_initialisation(self):
        att = SpatialAttention(16)
        x = torch.randn(2, 16, 3, 4)
        torch.testing.assert_close(att(x), x)

    def test_matches_formula_by_hand(self):
        torch.manual_seed(1)
        att = SpatialAttention(16, reduction=4).double()
        torch.nn.init.normal_(att.W.weight)  # leave the zero start so the test sees W
        x = torch.randn(2, 16, 2, 3, dtype=torch.float64)
        out, weights = att(x, return_attention=True)
        fast = att(x)

        def conv1x1(conv, v):  # v: (C, N)
            w = conv.weight.detach().double().numpy()[:, :, 0, 0]
            return w @ v + conv.bias.detach().double().numpy()[:, None]

        for b in range(2):
            v = x[b].reshape(16, 6).numpy()
            q, k, g = conv1x1(att.theta, v), conv1x1(att.phi, v), conv1x1(att.g, v)  # (4, 6)
            a = np.stack([_softmax(q[:, i] @ k / math.sqrt(4)) for i in range(6)])  # (6, 6)
            y = g @ a.T  # y[:, i] = sum_j a[i, j] g[:, j]
            z = conv1x1(att.W, y) + v
            np.testing.assert_allclose(weights[b].detach().numpy(), a, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(out[b].reshape(16, 6).detach().numpy(), z, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(fast, out)

    def test_gradcheck(self):
        torch.manual_seed(0)
        att = SpatialAttention(8, reduction=4).double()
        torch.nn.init.normal_(att.W.weight, std=0.1)
        x = torch.randn(1, 8, 2, 2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: att(t, return_attention=True)[0], (x,))


@pytest.mark.parametrize("make, x, expected", [
    (lambda: AtLocAttention(64), torch.randn(2, 32), r"AtLocAttention: `x` must be \(B, 64\) features, got \(2, 32\)"),
    (lambda: AtLocAttention(64), torch.randn(2, 64, 3, 3), r"AtLocAttention: `x` must be \(B, 64\)"),
    (lambda: SpatialAttention(64), torch.randn(2, 32, 4, 4),
     r"SpatialAttention: `x` must be a \(B, 64, h, w\) feature map, got \(2, 32, 4, 4\)"),
    (lambda: SpatialAttention(64), torch.randn(2, 64), r"SpatialAttention: `x` must be a \(B, 64, h, w\)"),
])
def test_a_part_given_features_of_another_shape_names_the_shape_it_takes(make, x, expected):
    # each was torch's "mat1 and mat2 shapes cannot be multiplied" or "not enough values to unpack"
    with pytest.raises(ValueError, match=expected):
        make()(x)


@pytest.mark.parametrize("make", [AtLocAttention, SpatialAttention])
def test_a_zero_reduction_is_named(make):
    with pytest.raises(ValueError, match="`reduction` must be a positive int, got 0"):
        make(16, reduction=0)
