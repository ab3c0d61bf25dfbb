"""Saliency maps against analytic gradients, known expectations (SmoothGrad of a ReLU is the
Gaussian CDF) and axioms (completeness of integrated gradients), known attention patterns;
overlays; the sanity checks against scipy and on planted cues. The cases from the end of the file on
were written against mutants: closed-form gradients of linear and one-pixel models, where a shifted
copy's gradient must land, the Gaussian CDF of SmoothGrad on a ReLU, completeness of integrated
gradients from a baseline other than 0, the cell-centre rule of bilinear upsampling, numpy's quantile
for the overlay's colour scale."""

import matplotlib
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from topoloc import AtLoc
from topoloc.saliency import (
    METHODS,
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
    rank,
    region_share,
    saliency,
    saliency_difference,
    smoothgrad,
    spearman,
)


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
        with pytest.raises(TypeError, match="images"):  # uint8 is not normalised: only with normalize=True
            gradient_saliency(model, torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
        with pytest.raises(ValueError, match="target"):
            gradient_saliency(model, torch.zeros(1, 3, 2, 2, dtype=torch.float64), target="yaw")

    def test_uint8_images_with_normalize_are_read_as_model_prepare_reads_them(self):
        # the README passes the images it gives model.prepare, "uint8 works too": the maps refused them
        model = AtLoc("resnet18", feat_dim=8, attention="spatial")
        images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        as_float = images.double().div(255).float()  # [0, 255] -> [0, 1] by hand
        for method in METHODS:
            kwargs = {"smoothgrad": {"samples": 2}, "integrated_gradients": {"steps": 2}}.get(method, {})
            torch.testing.assert_close(saliency(model, images, method, normalize=True, **kwargs),
                                       saliency(model, as_float, method, normalize=True, **kwargs))

    def test_normalize_checks_the_range_of_the_callers_images(self):
        # normalize=True turns the model's own range check off (SmoothGrad's noisy copies leave [0, 1]), so
        # images in [0, 255] or with NaN pixels gave maps of a view the model never sees.
        model = AtLoc("resnet18", feat_dim=8)
        grey = torch.full((1, 3, 16, 16), 128.0)
        for fn in (gradient_saliency, smoothgrad, integrated_gradients):
            with pytest.raises(ValueError, match=rf"{fn.__name__}: float `images` must be in \[0, 1\], got a maximum "
                                                 "of 128"):
                fn(model, grey, normalize=True)
        holed = torch.full((1, 3, 16, 16), 0.5)
        holed[0, 0, 3, 3] = float("nan")
        with pytest.raises(ValueError, match="smoothgrad: float `images` hold NaN pixels"):
            smoothgrad(model, holed, normalize=True)
        with pytest.raises(TypeError, match="gradient_saliency: normalize: expected True or False, got str 'no'"):
            gradient_saliency(model, holed, normalize="no")
        with pytest.raises(TypeError, match="smoothgrad: times_input: expected True or False"):
            smoothgrad(model, grey / 255, normalize=True, times_input="yes")
        # Python's or torch's own errors before: "'>=' not supported", "'int' object has no attribute 'device'",
        # "new(): invalid data type 'str'", "'NoneType' object has no attribute 'training'".
        with pytest.raises(ValueError, match="smoothgrad: `noise` must be a finite number >= 0"):
            smoothgrad(model, grey / 255, normalize=True, noise="0.1")
        with pytest.raises(TypeError, match="smoothgrad: `generator` must be a torch.Generator or None, got int"):
            smoothgrad(model, grey / 255, normalize=True, generator=3)
        with pytest.raises(ValueError, match="integrated_gradients: `baseline` must be a number or a tensor"):
            integrated_gradients(model, grey / 255, normalize=True, baseline="black")
        with pytest.raises(TypeError, match="gradient_saliency: `model` must be a torch module"):
            gradient_saliency(None, grey / 255)
        # Without normalize, the images are the network's input as given: any value is the caller's choice.
        assert torch.isfinite(gradient_saliency(_LinearPose(16, 16), grey.double())).all()


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

    def test_a_float_image_in_0_255_is_refused_not_clamped_to_white(self):
        # its mean came out 0.997 at alpha 0.5: the image part clamped to white
        with pytest.raises(ValueError, match=r"overlay: float `image` must be in \[0, 1\], got a maximum of 2\d\d"):
            overlay(torch.rand(1, 3, 16, 16) * 255, torch.rand(1, 16, 16))
        with pytest.raises(ValueError, match=r"overlay: float `image` holds NaN pixels"):
            overlay(torch.full((3, 4, 4), float("nan")), torch.rand(4, 4))

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
        # numpy gave "'numpy.ndarray' object has no attribute ...", an empty batch torch's quantile error.
        with pytest.raises(TypeError, match="overlay: `image` must be a torch tensor, got ndarray"):
            overlay(np.zeros((3, 8, 8)), torch.rand(8, 8))
        with pytest.raises(TypeError, match="overlay: `saliency` must be a torch tensor, got ndarray"):
            overlay(torch.rand(3, 8, 8), np.zeros((8, 8)))
        with pytest.raises(ValueError, match=r"overlay: `image` holds no pixel or no image, got \(0, 3, 8, 8\)"):
            overlay(torch.rand(0, 3, 8, 8), torch.rand(0, 8, 8))


def test_saliency_difference_still_importable_from_maps():
    """It moved to `topoloc.saliency.difference`; the old module path gives the same objects."""
    import topoloc.saliency.difference as difference
    from topoloc.saliency.maps import SaliencyDifference as OldClass
    from topoloc.saliency.maps import saliency_difference as old_function

    assert old_function is difference.saliency_difference and OldClass is difference.SaliencyDifference
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        import topoloc.saliency.maps as maps

        maps.nothing_here  # noqa: B018 - the attribute access is the test


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


class _ReluSum(nn.Module):
    """objective = sum relu(x): d/dx = 1[x > 0], so SmoothGrad's mean gradient is Phi(x / sigma)."""

    def forward(self, x):
        return torch.relu(x).flatten(1).sum(1, keepdim=True).expand(-1, 3)


class _OnePixel(nn.Module):
    """Reads pixel (5, 5) of channel 0 only."""

    def forward(self, x):
        return x[:, :1, 5, 5]


class _Tanh(nn.Module):
    def __init__(self, n):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = nn.Parameter(torch.randn(6, n, generator=g, dtype=torch.float64) / n ** 0.5)

    def forward(self, x):
        return torch.tanh(x.flatten(1) @ self.W.T) ** 2


class TestSmoothGrad:
    def test_relu_gives_the_gaussian_cdf(self):
        # a seeded input: the tolerance is about 3.3 standard errors of the 4000 samples' mean, so an unseeded one
        # would fail now and then, depending on what ran before
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        g = torch.Generator().manual_seed(0)
        maps = smoothgrad(_ReluSum(), x, samples=4000, noise=0.2, times_input=False, generator=g)
        # objective = 3 * sum relu(x): mean gradient 3 * Phi(x / sigma), sigma = 0.2 * (max - min)
        sigma = 0.2 * (x.flatten(1).amax(1) - x.flatten(1).amin(1))
        expected = 3 * stats.norm.cdf((x / sigma.view(2, 1, 1, 1)).numpy()).max(axis=1)
        np.testing.assert_allclose(maps.numpy(), expected, atol=0.08)

    def test_linear_model_is_the_gradient(self):
        model = _LinearPose(4, 5)
        x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
        torch.testing.assert_close(smoothgrad(model, x, samples=3), gradient_saliency(model, x))

    def test_shifts_spread_a_pixel_uniformly(self):
        # offsets uniform in {-1, 0, 1}^2: the one pixel read is each of the 9 around (5, 5) with p = 1/9
        x = torch.rand(1, 3, 11, 11, dtype=torch.float64)
        maps = smoothgrad(_OnePixel(), x, samples=1800, noise=0.0, max_shift=1, times_input=False,
                          generator=torch.Generator().manual_seed(1))[0]
        block = maps[4:7, 4:7]
        np.testing.assert_allclose(block.numpy(), np.full((3, 3), 1 / 9), atol=0.025)
        assert float(maps.sum()) == pytest.approx(1.0) and float(block.sum()) == pytest.approx(1.0)

    def test_seeded_and_per_image(self):
        torch.manual_seed(0)
        model = AtLoc("resnet18", feat_dim=16)
        images = torch.rand(3, 3, 32, 48)

        def run(seed, imgs):
            return smoothgrad(model, imgs, normalize=True, samples=2, generator=torch.Generator().manual_seed(seed))

        a, b, c = run(0, images), run(0, images), run(1, images)
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, c)
        assert a.shape == (3, 32, 48) and (a >= 0).all()

    def test_bad_arguments(self):
        x = torch.rand(1, 3, 4, 4)
        with pytest.raises(ValueError, match="samples"):
            smoothgrad(_ReluSum(), x, samples=0)
        with pytest.raises(ValueError, match="max_shift"):
            smoothgrad(_ReluSum(), x, max_shift=-1)
        # an offset of the smaller side or more moves whole copies out of the frame (was accepted)
        with pytest.raises(ValueError, match=r"`max_shift` must be under the image's smaller side \(4 px\), got 4"):
            smoothgrad(_ReluSum(), torch.rand(1, 3, 4, 6), max_shift=4)
        assert smoothgrad(_ReluSum(), torch.rand(1, 3, 4, 6), max_shift=3, samples=2).shape == (1, 4, 6)
        with pytest.raises(ValueError, match="noise"):
            smoothgrad(_ReluSum(), x, noise=-0.1)


class TestIntegratedGradients:
    def test_linear_model_by_hand(self):
        model = _LinearPose(3, 4)
        x = torch.randn(2, 3, 3, 4, dtype=torch.float64)
        expected = model.A.detach().sum(0).view(3, 3, 4) * (x - 0.5)
        got = integrated_gradients(model, x, steps=3, baseline=0.5, attributions=True)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(integrated_gradients(model, x, steps=3, baseline=0.5), expected.abs().amax(1))

    def test_completeness(self):
        # the attributions add up to objective(x) - objective(baseline) (Sundararajan et al., axiom)
        model = _Tanh(3 * 4 * 4)
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
        attributions = integrated_gradients(model, x, steps=256, attributions=True)
        expected = model(x).sum(1) - model(torch.zeros_like(x)).sum(1)
        torch.testing.assert_close(attributions.sum(dim=(1, 2, 3)), expected.detach(), atol=1e-4, rtol=1e-4)


class TestSaliencyEntry:
    def test_dispatch(self):
        model = _LinearPose(4, 4)
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
        torch.testing.assert_close(saliency(model, x, "gradient"), gradient_saliency(model, x))
        torch.testing.assert_close(saliency(model, x, "integrated_gradients", steps=2),
                                   integrated_gradients(model, x, steps=2))
        torch.testing.assert_close(saliency(model, x, samples=2), smoothgrad(model, x, samples=2))
        spatial = AtLoc("resnet18", attention="spatial", feat_dim=16)
        images = torch.rand(1, 3, 64, 64)
        torch.testing.assert_close(saliency(spatial, images, "attention", normalize=True),
                                   attention_saliency(spatial, images, normalize=True))
        with pytest.raises(ValueError, match="method"):
            saliency(model, x, "lime")
        with pytest.raises(ValueError, match="spatial"):
            saliency(AtLoc("resnet18", feat_dim=16), images, "attention")


class TestRankCorrelation:
    def test_ranks_match_scipy(self):
        g = torch.Generator().manual_seed(0)
        values = torch.randint(0, 5, (3, 40), generator=g).float()  # many ties
        np.testing.assert_allclose(rank(values).numpy(), stats.rankdata(values.numpy(), axis=1))

    @pytest.mark.parametrize("ties", [False, True])
    def test_spearman_matches_scipy(self, ties):
        g = torch.Generator().manual_seed(1)
        a = torch.rand(4, 6, 7, generator=g)
        b = a + 0.5 * torch.rand(4, 6, 7, generator=g)
        if ties:
            a, b = (a * 4).round(), (b * 4).round()
        expected = [stats.spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy())[0] for i in range(4)]
        np.testing.assert_allclose(spearman(a, b).numpy(), expected, rtol=1e-10)

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="same shape"):
            spearman(torch.rand(2, 3), torch.rand(2, 4))


class TestRandomizeWeights:
    def test_every_weight_redrawn_original_kept(self):
        torch.manual_seed(0)
        model = AtLoc("resnet18", feat_dim=16)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        rng = torch.get_rng_state()
        clone = randomize_weights(model, seed=3)
        assert torch.equal(torch.get_rng_state(), rng)
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), k
        layers = [(n, m, c) for (n, m), c in zip(model.named_modules(), clone.modules())
                  if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(layers) > 20
        for name, m, c in layers:
            assert not torch.equal(m.weight, c.weight), name
        assert randomize_weights(_LinearPose(2, 2)).A.std() > 0.5

    @pytest.mark.parametrize("seed", [None, "0", True, -1, 1.5])
    def test_a_seed_that_is_not_a_whole_number_is_refused_by_name(self, seed):
        # None and "0" failed inside torch.manual_seed, True was taken as 1
        with pytest.raises(ValueError, match=r"randomize_weights: `seed` must be a non-negative int, got "):
            randomize_weights(_LinearPose(2, 2), seed=seed)
        with pytest.raises(ValueError, match=r"randomisation_check: `seed` must be a non-negative int"):
            randomisation_check(_LinearPose(2, 2), torch.rand(1, 3, 4, 4), normalize=False, seed=seed)
        with pytest.raises(ValueError, match=r"planted_cue_check: `seed` must be a non-negative int"):
            planted_cue_check(_tiny, size=(32, 32), method="gradient", seed=seed)


class _Square(nn.Module):
    """Map proportional to x^2 whatever the weight: the randomisation check must fail on it.

    objective = 3 s sum x^2: every gradient is 6 s x, the weight only scales it."""

    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.tensor([2.0]))

    def forward(self, x):
        return (self.s * x ** 2).flatten(1).sum(1, keepdim=True).expand(-1, 3)


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 3))


@pytest.fixture(scope="module")
def planted():
    return planted_cue_check(_tiny, size=(32, 32), method="gradient", seed=0)


class TestSanityChecks:
    def test_planted_cue(self, planted):
        # 800 Adam steps on 32 x 32 noise: the cue is the top-left quarter (a quarter of the pixels)
        assert planted.area_share == 0.25 and planted.cue_loss < 5e-3 and planted.control_loss < 5e-3
        assert planted.cue_share > 0.5, planted
        assert planted.control_share < planted.area_share, planted
        assert planted.passed

    def test_randomisation(self, planted):
        images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(5))
        for method, kwargs in (("gradient", {}), ("smoothgrad", {"samples": 4})):
            check = randomisation_check(planted.cue_model, images, method=method, **kwargs)
            assert check.rank_correlation.shape == (6,)
            assert check.mean < 0.5 and check.passed, (method, check.mean)
        # a map fixed by the input (x^2 whatever the weight) does not pass
        fixed = randomisation_check(_Square(), images, method="gradient")
        np.testing.assert_allclose(fixed.rank_correlation.numpy(), 1.0)
        assert not fixed.passed

    def test_region_share_by_hand(self):
        maps = torch.zeros(1, 4, 4)
        maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0
        assert float(region_share(maps, (0, 2, 0, 2))[0]) == 0.75

    def test_region_share_reads_top_bottom_left_right(self):
        # A 4x6 map worked by hand, total mass 16. The region (top 0, bottom 2, left 0, right 5) is
        # rows 0-1 and columns 0-4: it holds 1 + 2 + 4 = 7 (not the 8 at row 3, nor the 1 at column 5
        # of row 0, which lies right of the end-exclusive right edge). Swapping rows and columns
        # would read rows 0-4, columns 0-1 instead: 1 + 2 + 8 = 11.
        maps = torch.zeros(2, 4, 6)
        maps[0, 0, 0], maps[0, 1, 4], maps[0, 0, 1], maps[0, 3, 0], maps[0, 0, 5] = 1.0, 4.0, 2.0, 8.0, 1.0
        maps[1, 2, 2] = 5.0  # nothing inside
        share = region_share(maps, (0, 2, 0, 5))
        torch.testing.assert_close(share, torch.tensor([7.0 / 16.0, 0.0]))
        torch.testing.assert_close(region_share(maps, (3, 4, 0, 1)), torch.tensor([0.5, 0.0]))


@pytest.mark.slow
@pytest.mark.parametrize("method,kwargs", [("smoothgrad", {"samples": 8}), ("integrated_gradients", {"steps": 16})])
def test_planted_cue_other_methods(method, kwargs):
    check = planted_cue_check(_tiny, size=(32, 32), method=method, seed=0, **kwargs)
    assert check.passed, check


def test_shifts_do_not_pile_gradient_on_the_border():
    # a model that sums every pixel: the gradient is 1 everywhere, whatever the offset; edge
    # replication must not give the border pixels the gradient of their copies
    x = torch.rand(2, 3, 12, 16, dtype=torch.float64)
    model = _ReluSum()
    maps = smoothgrad(model, x + 1.0, samples=20, noise=0.0, max_shift=3, times_input=False,
                      generator=torch.Generator().manual_seed(0))
    # inside: seen in every copy, gradient 3; within 3 px of the border: in the frame less often
    torch.testing.assert_close(maps[:, 3:-3, 3:-3], torch.full_like(maps[:, 3:-3, 3:-3], 3.0))
    assert float(maps.max()) <= 3.0 + 1e-12 and float(maps[:, 0, 0].max()) < 3.0


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


class _ThreeReluSum(nn.Module):
    """objective = 3 sum relu(x): d/dx = 3 * 1[x > 0]."""

    def forward(self, x):
        return torch.relu(x).flatten(1).sum(1, keepdim=True).expand(-1, 3)


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
        seeded = smoothgrad(_ThreeReluSum(), x, samples=3, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(smoothgrad(_ThreeReluSum(), x, samples=3), seeded, rtol=0, atol=0)

    def test_a_shifted_gradient_lands_back_on_its_own_pixel(self):
        # 3 sum relu(x) without noise: whatever the offset, a pixel at least max_shift from the border is in the
        # copy and its gradient is its own 3 * 1[x > 0]; taken back to the wrong pixel it would be a neighbour's
        x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
        maps = smoothgrad(_ThreeReluSum(), x, samples=20, noise=0.0, max_shift=2, times_input=False,
                          generator=torch.Generator().manual_seed(0))
        expected = 3.0 * (x > 0).any(dim=1).double()
        torch.testing.assert_close(maps[:, 2:-2, 2:-2], expected[:, 2:-2, 2:-2], rtol=0, atol=1e-12)

    def test_shifted_copies_are_noisy_too(self):
        # Smilkov et al.'s noise must reach the model with shifts as without: pixels at least max_shift from the
        # border are in every shifted copy, and the mean gradient of 3 sum relu there is 3 Phi(x / sigma).
        x = torch.randn(2, 3, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        maps = smoothgrad(_ThreeReluSum(), x, samples=3000, noise=0.2, max_shift=2, times_input=False,
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


def test_every_layer_keeps_its_own_mode():
    # the maps, the feature extraction of the retrieval baseline and the figure's cell grid had put back
    # model.train(was_training), which unfroze a batch norm frozen (eval) inside a model in training
    from topoloc.evaluation.retrieval import extract_features
    from topoloc.models import create_model
    from topoloc.reporting.saliency_figures import feature_grid

    model = create_model("atloc_resnet18", feat_dim=8, attention="spatial").train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()  # frozen
    modes = {name: m.training for name, m in model.named_modules()}
    assert any(modes.values()) and not all(modes.values())
    images = torch.rand(2, 3, 64, 64)
    gen = torch.Generator().manual_seed(0)
    for method in ("gradient", "smoothgrad", "integrated_gradients", "attention"):
        kwargs = {"samples": 2, "generator": gen} if method == "smoothgrad" else {}
        kwargs = {"steps": 2} if method == "integrated_gradients" else kwargs
        saliency(model, images, method=method, normalize=True, **kwargs)
        assert {name: m.training for name, m in model.named_modules()} == modes, method
    extract_features(model, (images * 255).to(torch.uint8))
    assert feature_grid(model, (64, 64)) == (2, 2)
    assert {name: m.training for name, m in model.named_modules()} == modes


@pytest.mark.gpu
def test_the_randomisation_leaves_the_cuda_generators_as_they_were():
    # torch.manual_seed inside fork_rng(devices=[]) had reseeded every CUDA generator to the check's seed
    torch.cuda.manual_seed_all(123)
    before = torch.cuda.get_rng_state()
    randomize_weights(nn.Linear(4, 3).cuda(), seed=0)
    assert torch.equal(torch.cuda.get_rng_state(), before)
