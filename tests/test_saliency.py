"""Saliency maps against analytic gradients and known attention patterns; overlays."""

import matplotlib
import pytest
import torch
from torch import nn

from topoloc import AtLoc
from topoloc.saliency import attention_saliency, gradient_saliency, overlay, saliency_difference


class _LinearPose(nn.Module):
    """poses = A vec(x): the gradient of any output is a known row of A."""

    def __init__(self, h, w, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(6, 3 * h * w, generator=g, dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.A.T


class TestGradientSaliency:
    def test_pose_sum_by_hand(self):
        model = _LinearPose(4, 5)
        x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
        expected = (model.A.detach().sum(0).view(3, 4, 5) * x).abs().amax(dim=1)
        torch.testing.assert_close(gradient_saliency(model, x), expected)

    def test_translation_norm_by_hand(self):
        model = _LinearPose(3, 3)
        x = torch.randn(2, 3, 3, 3, dtype=torch.float64)
        t = model(x).detach()[:, :3]
        # d||t|| / dx = (t / ||t||)^T A_t
        grad = (t / t.norm(dim=1, keepdim=True)) @ model.A.detach()[:3]
        expected = (grad.view(2, 3, 3, 3) * x).abs().amax(dim=1)
        torch.testing.assert_close(gradient_saliency(model, x, target="translation"), expected)

    def test_atloc_maps(self):
        torch.manual_seed(0)
        model = AtLoc("resnet18", feat_dim=32)  # left in training mode on purpose
        images = torch.rand(3, 3, 48, 64)
        maps = gradient_saliency(model, images, normalize=True)
        assert maps.shape == (3, 48, 64)
        assert torch.isfinite(maps).all() and (maps >= 0).all() and maps.sum() > 0
        # eval mode inside: one image's map does not depend on the rest of the batch
        alone = gradient_saliency(model, images[1:2], normalize=True)
        torch.testing.assert_close(alone[0], maps[1], atol=1e-6, rtol=1e-4)
        assert model.training and all(p.grad is None for p in model.parameters())

    def test_bad_arguments(self):
        model = _LinearPose(2, 2)
        with pytest.raises(ValueError, match="images"):
            gradient_saliency(model, torch.zeros(3, 2, 2))
        with pytest.raises(TypeError, match="images"):
            gradient_saliency(model, torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
        with pytest.raises(ValueError, match="target"):
            gradient_saliency(model, torch.zeros(1, 3, 2, 2, dtype=torch.float64), target="yaw")


class TestAttentionSaliency:
    def test_uniform_attention_gives_ones(self):
        model = AtLoc("resnet18", attention="spatial", feat_dim=16)
        with torch.no_grad():  # theta = 0: every score equal, softmax uniform
            model.spatial_attention.theta.weight.zero_()
            model.spatial_attention.theta.bias.zero_()
        maps = attention_saliency(model, torch.rand(2, 3, 64, 96), normalize=True)
        assert maps.shape == (2, 64, 96)
        torch.testing.assert_close(maps, torch.ones(2, 64, 96))

    def test_received_attention_by_hand(self):
        torch.manual_seed(0)
        model = AtLoc("resnet18", attention="spatial", feat_dim=16).eval()
        nn.init.normal_(model.spatial_attention.theta.weight, std=0.5)
        images = torch.randn(1, 3, 64, 64)  # 2 x 2 feature grid
        maps = attention_saliency(model, images)
        _, weights, grid = model.forward_with_attention(images)
        assert grid == (2, 2)
        received = weights[0].sum(0)  # the mean over the 4 queries times N = 4
        # bilinear upsampling (align_corners=False) by 32 keeps each cell's centre value in the
        # corner block of pixels that lie beyond the outermost sample centres
        torch.testing.assert_close(maps[0, 0, 0], received[0])
        torch.testing.assert_close(maps[0, -1, -1], received[3])
        assert (maps >= 0).all()
        torch.testing.assert_close(maps.mean(), received.mean(), atol=1e-5, rtol=1e-5)

    def test_needs_spatial_attention(self):
        with pytest.raises(ValueError, match="spatial"):
            attention_saliency(AtLoc("resnet18", feat_dim=16), torch.rand(1, 3, 32, 32))


class TestOverlay:
    def test_alpha_zero_is_image(self):
        image = torch.rand(3, 8, 8)
        torch.testing.assert_close(overlay(image, torch.rand(8, 8), alpha=0.0), image)

    def test_colours_follow_matplotlib(self):
        image = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
        saliency = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).expand(2, 2, 2)
        out = overlay(image, saliency, alpha=1.0, clip_quantile=1.0)
        jet = matplotlib.colormaps["jet"]
        assert out.shape == (2, 3, 2, 2)
        torch.testing.assert_close(out[1, :, 0, 0], torch.tensor(jet(0.0)[:3], dtype=torch.float32))
        torch.testing.assert_close(out[1, :, 1, 1], torch.tensor(jet(1.0)[:3], dtype=torch.float32))

    def test_signed_maps_are_diverging(self):
        saliency = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
        out = overlay(torch.zeros(3, 2, 2), saliency, alpha=1.0, clip_quantile=1.0)
        rdbu = matplotlib.colormaps["RdBu_r"]
        torch.testing.assert_close(out[:, 0, 1], torch.tensor(rdbu(128 / 255)[:3], dtype=torch.float32))
        torch.testing.assert_close(out[:, 1, 1], torch.tensor(rdbu(1.0)[:3], dtype=torch.float32))

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="saliency"):
            overlay(torch.rand(3, 8, 8), torch.rand(4, 4))
        with pytest.raises(ValueError, match="image"):
            overlay(torch.rand(8, 8), torch.rand(8, 8))
        with pytest.raises(ValueError, match="alpha"):
            overlay(torch.rand(3, 8, 8), torch.rand(8, 8), alpha=2.0)
        with pytest.raises(ValueError, match="cmap"):
            overlay(torch.rand(3, 8, 8), torch.rand(8, 8), cmap="nope")


class TestSaliencyDifference:
    def test_same_model_no_difference(self):
        model = _LinearPose(4, 4)
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
        result = saliency_difference(model, model, x)
        torch.testing.assert_close(result.difference, torch.zeros(2, 4, 4, dtype=torch.float64))
        torch.testing.assert_close(result.before.mean(dim=(1, 2)), torch.ones(2, dtype=torch.float64))

    def test_scale_invariant_and_signed(self):
        before = _LinearPose(4, 4, seed=0)
        scaled = _LinearPose(4, 4, seed=0)
        with torch.no_grad():
            scaled.A.mul_(10.0)
        x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
        torch.testing.assert_close(saliency_difference(before, scaled, x).difference,
                                   torch.zeros(1, 4, 4, dtype=torch.float64))
        other = saliency_difference(before, _LinearPose(4, 4, seed=1), x)
        assert (other.difference > 0).any() and (other.difference < 0).any()
        assert torch.isfinite(other.difference).all()

    def test_attention_method(self):
        torch.manual_seed(0)
        a = AtLoc("resnet18", attention="spatial", feat_dim=16)
        b = AtLoc("resnet18", attention="spatial", feat_dim=16)
        nn.init.normal_(b.spatial_attention.theta.weight, std=0.5)
        result = saliency_difference(a, b, torch.rand(1, 3, 64, 64), method="attention", normalize=True)
        assert result.difference.shape == (1, 64, 64) and torch.isfinite(result.difference).all()
        with pytest.raises(ValueError, match="method"):
            saliency_difference(a, b, torch.rand(1, 3, 64, 64), method="lime")
