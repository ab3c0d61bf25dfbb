"""Saliency maps, overlays and sanity checks against values worked by hand: closed-form gradients of
linear and one-pixel models, where a shifted copy's gradient must land, the Gaussian CDF of
SmoothGrad on a ReLU, completeness of integrated gradients from a baseline other than 0, the
cell-centre rule of bilinear upsampling, numpy's quantile for the overlay's colour scale."""

import matplotlib
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from topoloc import AtLoc
from topoloc.saliency import (
    PlantedCueCheck,
    RandomisationCheck,
    attention_saliency,
    gradient_saliency,
    integrated_gradients,
    overlay,
    planted_cue_check,
    planted_cue_data,
    randomisation_check,
    randomize_weights,
    saliency,
    saliency_difference,
    smoothgrad,
)


class _LinearPose(nn.Module):
    """poses = A vec(x), 6 outputs: the gradient of any output is a known row of A."""

    def __init__(self, h, w, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(6, 3 * h * w, generator=g, dtype=torch.float64))

    def forward(self, x):
        return x.flatten(1) @ self.A.T


class _NormalisedLinearPose(_LinearPose):
    """A linear model behind ``normalize(x) = (x - 0.5) / 0.25``: d poses / d x = 4 A."""

    def normalize(self, x):
        return (x - 0.5) / 0.25


class _Pixel(nn.Module):
    """Reads one pixel of channel 0: its gradient is 1 there, 0 elsewhere."""

    def __init__(self, row, col):
        super().__init__()
        self.row, self.col = row, col

    def forward(self, x):
        return x[:, :1, self.row, self.col]


class _Blind(nn.Module):
    """Ignores the image: every gradient map is 0."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        return (0.0 * x).flatten(1).sum(1, keepdim=True) + self.b


class _ReluSum(nn.Module):
    """objective = 3 sum relu(x): d/dx = 3 * 1[x > 0]."""

    def forward(self, x):
        return torch.relu(x).flatten(1).sum(1, keepdim=True).expand(-1, 3)


class _Tanh(nn.Module):
    def __init__(self, n):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = nn.Parameter(torch.randn(6, n, generator=g, dtype=torch.float64) / n ** 0.5)

    def forward(self, x):
        return torch.tanh(x.flatten(1) @ self.W.T) ** 2


class _Square(nn.Module):
    """objective = 3 s sum x^2: every gradient is 6 s x, the weight only scales it."""

    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.tensor([2.0]))

    def forward(self, x):
        return (self.s * x ** 2).flatten(1).sum(1, keepdim=True).expand(-1, 3)


def _norm_gradient(model, x, rows):
    """d ||A_rows x|| / dx = (p / ||p||)^T A_rows, p = A_rows x, as (B, 3, H, W)."""
    p = model(x).detach()[:, rows]
    return ((p / p.norm(dim=1, keepdim=True)) @ model.A.detach()[rows]).view(x.shape)


class TestTargets:
    def test_rotation_is_the_norm_of_the_outputs_after_the_translation(self):
        model = _LinearPose(3, 4)
        x = torch.randn(2, 3, 3, 4, dtype=torch.float64)
        expected = (_norm_gradient(model, x, slice(3, 6)) * x).abs().amax(dim=1)
        torch.testing.assert_close(gradient_saliency(model, x, target="rotation"), expected)

    @pytest.mark.parametrize("method,kwargs", [("gradient", {}), ("smoothgrad", {"noise": 0.0, "samples": 2}),
                                               ("integrated_gradients", {"steps": 3})])
    def test_saliency_passes_the_target_to_every_gradient_method(self, method, kwargs):
        # ||A_t x|| is homogeneous of degree 1, so its gradient is the same all along the ray t x: integrated
        # gradients from 0 give x * gradient(x), SmoothGrad without noise the gradient itself.
        model = _LinearPose(3, 3)
        x = torch.randn(2, 3, 3, 3, dtype=torch.float64)
        expected = (_norm_gradient(model, x, slice(0, 3)) * x).abs().amax(dim=1)
        torch.testing.assert_close(saliency(model, x, method, target="translation", **kwargs), expected)

    def test_a_target_must_give_one_number_per_image(self):
        x = torch.randn(2, 3, 2, 2, dtype=torch.float64)
        with pytest.raises(ValueError, match=r"`target` must give one number per image \(2,\), got \(2, 6\)"):
            gradient_saliency(_LinearPose(2, 2), x, target=lambda poses: poses)
        spatial = AtLoc("resnet18", attention="spatial", feat_dim=8)
        with pytest.raises(ValueError, match="method='attention' follows no output"):
            saliency(spatial, torch.rand(1, 3, 32, 32), "attention", target="translation", normalize=True)


class TestNormalize:
    @pytest.mark.parametrize("method,kwargs", [("gradient", {}), ("smoothgrad", {"noise": 0.0, "samples": 2}),
                                               ("integrated_gradients", {"steps": 2})])
    def test_the_product_is_with_the_unit_range_image(self, method, kwargs):
        # poses = A (x - 0.5) / 0.25: the gradient is 4 A everywhere, and the documented map multiplies it by the
        # [0, 1] image (integrated gradients from the black baseline 0: x * 4 A, exactly, the model being affine).
        model = _NormalisedLinearPose(3, 4)
        x = torch.rand(2, 3, 3, 4, dtype=torch.float64)
        expected = (4.0 * model.A.detach().sum(0).view(3, 3, 4) * x).abs().amax(dim=1)
        torch.testing.assert_close(saliency(model, x, method, normalize=True, **kwargs), expected)

    def test_an_eval_model_stays_in_eval_mode(self):
        model = _LinearPose(2, 2).eval()
        gradient_saliency(model, torch.randn(1, 3, 2, 2, dtype=torch.float64))
        assert not model.training


class TestSmoothGradByHand:
    def test_the_default_generator_is_seeded_0(self):
        # the module's promise: maps are reproducible, "seeded 0 when none is given"
        x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
        seeded = smoothgrad(_ReluSum(), x, samples=3, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(smoothgrad(_ReluSum(), x, samples=3), seeded, rtol=0, atol=0)

    def test_a_shifted_gradient_lands_back_on_its_own_pixel(self):
        # 3 sum relu(x) without noise: whatever the offset, a pixel at least max_shift from the border is in the
        # copy and its gradient is its own 3 * 1[x > 0]; taken back to the wrong pixel it would be a neighbour's
        x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
        maps = smoothgrad(_ReluSum(), x, samples=20, noise=0.0, max_shift=2, times_input=False,
                          generator=torch.Generator().manual_seed(0))
        expected = 3.0 * (x > 0).any(dim=1).double()
        torch.testing.assert_close(maps[:, 2:-2, 2:-2], expected[:, 2:-2, 2:-2], rtol=0, atol=1e-12)

    def test_shifted_copies_are_noisy_too(self):
        # Smilkov et al.'s noise must reach the model with shifts as without: pixels at least max_shift from the
        # border are in every shifted copy, and the mean gradient of 3 sum relu there is 3 Phi(x / sigma).
        x = torch.randn(2, 3, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        maps = smoothgrad(_ReluSum(), x, samples=3000, noise=0.2, max_shift=2, times_input=False,
                          generator=torch.Generator().manual_seed(0))
        sigma = 0.2 * (x.flatten(1).amax(1) - x.flatten(1).amin(1))
        expected = 3 * stats.norm.cdf((x / sigma.view(2, 1, 1, 1)).numpy()).max(axis=1)
        np.testing.assert_allclose(maps[:, 2:-2, 2:-2].numpy(), expected[:, 2:-2, 2:-2], atol=0.1)  # 3.7 SE


class TestIntegratedGradientsByHand:
    @pytest.mark.parametrize("baseline", [0.3, "tensor"])
    def test_completeness_from_a_baseline_other_than_0(self, baseline):
        # the attributions add up to objective(x) - objective(x0) along the straight path from x0 to x
        model = _Tanh(3 * 4 * 4)
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
        x0 = torch.full_like(x, 0.3) if baseline == 0.3 else torch.randn(1, 3, 4, 4, dtype=torch.float64)
        attributions = integrated_gradients(model, x, steps=256, baseline=baseline if baseline == 0.3 else x0,
                                            attributions=True)
        expected = (model(x).sum(1) - model(x0.expand_as(x)).sum(1)).detach()
        torch.testing.assert_close(attributions.sum(dim=(1, 2, 3)), expected, atol=1e-4, rtol=1e-4)


class TestAttentionGrid:
    def test_a_grid_of_2_x_3_cells_keeps_rows_and_columns(self):
        # 64 x 96 px -> a 2 x 3 grid, cell (r, c) at index 3 r + c. Bilinear upsampling by 32 with
        # align_corners=False puts cell centres at pixel 15.5 + 32 k: the 16 x 16 px corner blocks, before the
        # outermost centres, hold their cell's value exactly.
        torch.manual_seed(0)
        model = AtLoc("resnet18", attention="spatial", feat_dim=16).eval()
        nn.init.normal_(model.spatial_attention.theta.weight, std=0.5)
        images = torch.randn(1, 3, 64, 96)
        maps = attention_saliency(model, images)[0]
        with torch.no_grad():
            _, weights, grid = model.forward_with_attention(images)
        assert grid == (2, 3)
        received = weights[0].sum(0)  # the mean over the 6 queries times N = 6
        assert float(received.max() - received.min()) > 1e-3  # the cells differ
        for (rows, cols), cell in (((slice(0, 16), slice(0, 16)), 0), ((slice(0, 16), slice(80, 96)), 2),
                                   ((slice(48, 64), slice(0, 16)), 3), ((slice(48, 64), slice(80, 96)), 5)):
            torch.testing.assert_close(maps[rows, cols], received[cell].expand(16, 16))


class TestSaliencyDifferenceByHand:
    def test_difference_is_after_minus_before(self):
        # one-pixel models: a map |1 * x| on one pixel of 16, scaled to mean 1: 16 there, 0 elsewhere
        x = torch.rand(1, 3, 4, 4, dtype=torch.float64) + 0.5
        result = saliency_difference(_Pixel(0, 0), _Pixel(1, 2), x)
        expected = torch.zeros(1, 4, 4, dtype=torch.float64)
        expected[0, 1, 2], expected[0, 0, 0] = 16.0, -16.0
        torch.testing.assert_close(result.difference, expected)

    def test_smoothgrad_of_one_model_twice_gives_no_difference(self):
        # both maps must see the same noise, with the default generator as with one given
        model = _Tanh(3 * 4 * 4)
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
        for kwargs in ({}, {"generator": torch.Generator().manual_seed(5)}):
            result = saliency_difference(model, model, x, method="smoothgrad", samples=3, **kwargs)
            torch.testing.assert_close(result.difference, torch.zeros(2, 4, 4, dtype=torch.float64))

    def test_a_map_of_zeros_stays_zero(self):
        # a model blind to the image has a zero map: scaled to mean 1 it must stay 0, not 0 / 0
        x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
        result = saliency_difference(_Blind(), _Pixel(0, 0), x)
        torch.testing.assert_close(result.before, torch.zeros(1, 4, 4, dtype=torch.float64))
        assert torch.isfinite(result.difference).all()


class TestRandomisationCheckByHand:
    def test_smoothgrad_of_a_map_the_weights_only_scale_does_not_pass(self):
        # with the same noise for both models the maps are |6 s mean_n(x + e_n) x| and |6 s' ...|: the same ranks
        images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))
        check = randomisation_check(_Square(), images, method="smoothgrad", samples=2)
        np.testing.assert_allclose(check.rank_correlation.numpy(), 1.0, rtol=1e-12)
        assert not check.passed

    def test_passes_only_below_the_threshold(self):
        assert not RandomisationCheck(torch.tensor([0.25, 0.75], dtype=torch.float64), 0.5).passed  # mean 0.5
        assert RandomisationCheck(torch.tensor([0.25, 0.7], dtype=torch.float64), 0.5).passed

    def test_a_parameter_without_reset_is_redrawn_with_its_spread(self):
        # 10 000 values: the sample standard deviation is within 1.5 % of the true one (3 standard errors)
        module = nn.Module()
        module.p = nn.Parameter(torch.randn(100, 100, generator=torch.Generator().manual_seed(0)) * 0.01)
        clone = randomize_weights(module, seed=1)
        assert not torch.equal(clone.p, module.p)
        assert float(clone.p.detach().std()) == pytest.approx(float(module.p.detach().std()), rel=0.03)
        assert abs(float(clone.p.detach().mean())) < 3 * 0.01 / 100


class TestPlantedCueByHand:
    def test_the_patch_fills_the_region_and_sets_a_standardised_target(self):
        # region (top 1, bottom 3, left 2, right 7): rows 1-2, columns 2-6. The colour is uniform in [0, 1]
        # (mean 1/2, variance 1/12), so the standardised target is (colour - 1/2) * sqrt(12).
        images, targets = planted_cue_data(4000, (5, 9), (1, 3, 2, 7), torch.Generator().manual_seed(0))
        patch = images[:, :, 1:3, 2:7]
        colour = patch[:, :, 0, 0]
        torch.testing.assert_close(patch, colour[:, :, None, None].expand_as(patch))
        torch.testing.assert_close(targets, (colour - 0.5) * 12 ** 0.5)
        outside = images.clone()
        outside[:, :, 1:3, 2:7] = float("nan")
        assert not (outside == colour[:, :, None, None]).any()
        np.testing.assert_allclose(targets.mean(0).numpy(), 0.0, atol=0.06)
        np.testing.assert_allclose(targets.std(0).numpy(), 1.0, atol=0.04)

    @pytest.mark.parametrize("name,value", [("generator", torch.Generator()), ("target", "translation")])
    def test_arguments_the_check_sets_itself_are_refused_by_name(self, name, value):
        # saliency() got them twice: a bare TypeError, "got multiple values for keyword argument"
        with pytest.raises(ValueError, match=rf"planted_cue_check: `{name}` is set by the check"):
            planted_cue_check(_Blind, method="smoothgrad", **{name: value})

    @pytest.mark.parametrize("cue,control,passed", [(0.6, 0.2, True), (0.6, 0.3, False), (0.4, 0.1, False)])
    def test_passed_needs_most_mass_on_the_cue_and_less_than_its_area_without(self, cue, control, passed):
        check = PlantedCueCheck(cue_share=cue, control_share=control, area_share=0.25, cue_loss=0.0,
                                control_loss=0.0)
        assert check.passed is passed


def _jet_index(values, clip_quantile):
    """Colormap index (0..255) of each value of a non-negative map: min -> 0, quantile -> 255."""
    low, high = values.min(), np.quantile(values, clip_quantile)
    return np.round(np.clip((values - low) / (high - low), 0.0, 1.0) * 255).astype(int)


class TestOverlayByHand:
    def test_each_map_is_scaled_by_its_own_minimum_and_quantile(self):
        maps = torch.stack([torch.arange(100.0), 3 * torch.arange(100.0) + 50]).view(2, 10, 10)
        out = overlay(torch.zeros(2, 3, 10, 10), maps, alpha=1.0, clip_quantile=0.5)
        jet = matplotlib.colormaps["jet"]
        for b in range(2):
            index = _jet_index(maps[b].numpy().astype(np.float64), 0.5)
            expected = jet(index / 255)[..., :3].transpose(2, 0, 1)
            np.testing.assert_allclose(out[b].numpy(), expected, atol=1e-6)

    def test_signed_maps_are_scaled_by_the_quantile_of_their_magnitude(self):
        # magnitudes 0..5 and one spike of 100: the median magnitude, 3, and beyond reach the ends of the colormap
        values = torch.tensor([[-5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 100.0]])
        out = overlay(torch.zeros(3, 1, 11), values, alpha=1.0, clip_quantile=0.5)
        scale = np.quantile(np.abs(values.numpy()), 0.5)
        assert scale == 3.0
        index = np.round((np.clip(values.numpy() / scale, -1, 1) * 0.5 + 0.5) * 255).astype(int)
        expected = matplotlib.colormaps["RdBu_r"](index / 255)[..., :3].transpose(2, 0, 1)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
        assert index[0, 0] == 0 and index[0, -1] == 255

    def test_non_finite_maps_are_refused(self):
        holed = torch.rand(4, 4)
        holed[1, 1] = float("nan")
        with pytest.raises(ValueError, match="overlay: `saliency` has non-finite values"):
            overlay(torch.rand(3, 4, 4), holed)
