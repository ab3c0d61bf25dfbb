"""The pure functions against independent references: formulas worked by hand, numpy, kornia."""

import math

import kornia
import numpy as np
import pytest
import torch

import augment.functional as AF


def full(value, n=1):
    return torch.full((n,), float(value), dtype=torch.float64)


def solid(rgb, h=8, w=8, n=1):
    return torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1).expand(n, 3, h, w).contiguous()


LUMA = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)


class TestHaze:
    def test_koschmieder_with_a_depth_map(self):
        image = torch.rand(1, 3, 4, 5, dtype=torch.float64)
        depth = torch.rand(1, 1, 4, 5, dtype=torch.float64) * 3
        airlight = torch.tensor([[0.8, 0.85, 0.9]], dtype=torch.float64)
        out = AF.haze(image, full(0.7), full(0.0), airlight, depth=depth)
        t = np.exp(-0.7 * depth.numpy())
        expected = image.numpy() * t + airlight.numpy().reshape(1, 3, 1, 1) * (1 - t)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)

    def test_flat_ground_distance_model(self):
        height = 10
        image = torch.zeros(1, 3, height, 2, dtype=torch.float64)
        airlight = torch.ones(1, 3, dtype=torch.float64)
        horizon, density = 0.2, 0.5
        out = AF.haze(image, full(density), full(horizon), airlight)
        for row in (3, 6, 9):  # below the horizon: d = (1 - h) / (v - h)
            v = (row + 0.5) / height
            expected = 1 - math.exp(-density * (1 - horizon) / (v - horizon))
            assert float(out[0, 0, row, 0]) == pytest.approx(expected, abs=1e-12)
        # Rows above the horizon are at the capped distance 20.
        assert float(out[0, 0, 0, 0]) == pytest.approx(1 - math.exp(-density * 20), abs=1e-12)

    def test_zero_density_is_identity(self):
        image = torch.rand(2, 3, 6, 6, dtype=torch.float64)
        out = AF.haze(image, full(0.0, 2), full(0.3, 2), torch.ones(2, 3, dtype=torch.float64))
        torch.testing.assert_close(out, image)


class TestIllumination:
    def test_exposure_and_gamma(self):
        image = torch.rand(1, 3, 5, 5, dtype=torch.float64) * 0.5
        out = AF.illumination(image, full(0), full(1.0), full(0.0), full(1.0), full(1.0))
        torch.testing.assert_close(out, image * 2)
        out = AF.illumination(image, full(0), full(1.0), full(0.0), full(2.2), full(0.0))
        torch.testing.assert_close(out, torch.from_numpy(image.numpy() ** 2.2))

    def test_lambertian_shading_of_a_ramp(self):
        # Luma rises by a = 0.02 per pixel to the right: slope dz/dx = relief * a.
        width, a, relief = 12, 0.02, 10.0
        ramp = 0.3 + a * torch.arange(width, dtype=torch.float64)
        image = ramp.view(1, 1, 1, -1).expand(1, 3, 6, width).contiguous()
        azimuth, elevation = math.radians(90.0), math.radians(40.0)  # sun from the image's right
        out = AF.illumination(image, full(azimuth), full(elevation), full(relief), full(1.0), full(0.0))
        normal = np.array([-relief * a, 0.0, 1.0]) / math.hypot(relief * a, 1.0)
        sun = np.array([math.cos(elevation), 0.0, math.sin(elevation)])
        shade = normal @ sun / math.sin(elevation)
        np.testing.assert_allclose(out[0, :, 2:4, 2:-2].numpy(), image[0, :, 2:4, 2:-2].numpy() * shade, atol=1e-12)
        assert shade < 1  # the slope faces away from the sun

    def test_identity_parameters(self):
        image = torch.rand(1, 3, 6, 6, dtype=torch.float64)
        out = AF.illumination(image, full(1.0), full(0.5), full(0.0), full(1.0), full(0.0))
        torch.testing.assert_close(out, image)


class TestCameraEffects:
    def test_vignetting_follows_cos4(self):
        image = torch.full((1, 3, 5, 7), 0.8, dtype=torch.float64)
        k = 0.5
        out = AF.camera_effects(image, full(0), torch.ones(1, 3, dtype=torch.float64), full(k), full(0.0), full(0.0))
        theta = math.atan(math.sqrt(k))  # the corner: r = 1, tan(theta)^2 = k
        assert float(out[0, 0, 0, 0]) == pytest.approx(0.8 * math.cos(theta) ** 4, abs=1e-12)
        assert float(out[0, 0, 2, 3]) == pytest.approx(0.8, abs=1e-12)  # the centre

    def test_white_balance_gains(self):
        image = torch.rand(1, 3, 4, 4, dtype=torch.float64) * 0.5
        gains = torch.tensor([[1.2, 1.0, 0.7]], dtype=torch.float64)
        out = AF.camera_effects(image, full(0), gains, full(0.0), full(0.0), full(0.0))
        torch.testing.assert_close(out, image * gains.view(1, 3, 1, 1))

    def test_blur_matches_kornia(self):
        image = torch.rand(2, 3, 20, 20, dtype=torch.float64)
        sigma = torch.tensor([0.8, 1.5], dtype=torch.float64)
        out = AF.camera_effects(image, full(0, 2), torch.ones(2, 3, dtype=torch.float64), full(0.0, 2), full(0.0, 2), sigma)
        for i in range(2):
            radius = math.ceil(3 * 1.5)
            ref = kornia.filters.gaussian_blur2d(
                image[i : i + 1], (2 * radius + 1, 2 * radius + 1), (float(sigma[i]), float(sigma[i])), border_type="replicate"
            )
            torch.testing.assert_close(out[i : i + 1], ref.clamp(0, 1), atol=1e-10, rtol=0)

    def test_noise_is_gaussian_with_the_given_std(self):
        image = torch.full((2, 3, 128, 128), 0.5, dtype=torch.float64)
        out = AF.camera_effects(image, torch.tensor([1.0, 2.0]), torch.ones(2, 3, dtype=torch.float64), full(0.0, 2), full(0.05, 2), full(0.0, 2))
        noise = (out - 0.5).flatten()
        assert abs(float(noise.mean())) < 1e-3
        assert float(noise.std()) == pytest.approx(0.05, rel=0.02)
        # Gaussian: 68.27 % within one sigma, 95.45 % within two.
        assert float((noise.abs() < 0.05).double().mean()) == pytest.approx(0.6827, abs=0.01)
        assert float((noise.abs() < 0.10).double().mean()) == pytest.approx(0.9545, abs=0.01)
        assert not torch.equal(out[0], out[1])


class TestSeasonShift:
    def test_vegetation_keeps_its_luma_and_turns_autumn(self):
        green = solid([0.15, 0.5, 0.1])
        out = AF.season_shift(green, full(1.0), full(0.0), full(1.0))
        luma_in = float((LUMA.view(1, 3, 1, 1) * green).sum(1).mean())
        luma_out = float((LUMA.view(1, 3, 1, 1) * out).sum(1).mean())
        assert luma_out == pytest.approx(luma_in, rel=1e-3)
        red = torch.tensor([0.72, 0.28, 0.08], dtype=torch.float64)
        expected = red * luma_in / float(LUMA @ red)
        torch.testing.assert_close(out[0, :, 0, 0], expected, atol=2e-3, rtol=0)

    def test_grey_rock_is_untouched(self):
        grey = solid([0.5, 0.5, 0.5])
        out = AF.season_shift(grey, full(1.0), full(1.0), full(0.5))
        torch.testing.assert_close(out, grey, atol=2e-6, rtol=0)

    def test_zero_amounts_are_identity(self):
        image = torch.rand(1, 3, 6, 6, dtype=torch.float64)
        torch.testing.assert_close(AF.season_shift(image, full(0), full(0), full(0.5)), image)


class TestSnowCover:
    def test_flat_meadow_turns_white(self):
        meadow = solid([0.2, 0.55, 0.15])
        out = AF.snow_cover(meadow, full(0.9), full(0.1), full(1.0))
        luma = float(LUMA @ torch.tensor([0.2, 0.55, 0.15], dtype=torch.float64))
        expected = torch.tensor([0.94, 0.96, 1.0], dtype=torch.float64) * (0.85 + 0.15 * luma)
        torch.testing.assert_close(out[0, :, 3, 3], expected, atol=1e-9, rtol=0)

    def test_dark_textured_ground_stays_bare_with_little_snow(self):
        g = torch.Generator().manual_seed(0)
        rock = 0.1 + 0.3 * torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64).expand(1, 3, 16, 16)
        out = AF.snow_cover(rock, full(0.3), full(0.1), full(1.0))
        torch.testing.assert_close(out, rock)

    def test_water_and_dark_forest_stay_bare(self):
        water = solid([0.16, 0.27, 0.36])
        g = torch.Generator().manual_seed(1)
        canopy = 0.7 + 0.6 * torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64)  # textured tree tops
        forest = solid([0.12, 0.27, 0.12]) * canopy
        torch.testing.assert_close(AF.snow_cover(water, full(0.9), full(0.1), full(1.0)), water)
        torch.testing.assert_close(AF.snow_cover(forest, full(0.4), full(0.1), full(1.0)), forest)
        meadow = solid([0.38, 0.55, 0.22])
        assert float(AF.snow_cover(meadow, full(0.4), full(0.1), full(1.0)).min()) > 0.8

    def test_mask_and_zero_amount(self):
        meadow = solid([0.2, 0.55, 0.15])
        assert torch.equal(AF.snow_cover(meadow, full(0.0), full(0.1), full(1.0)), meadow)
        mask = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
        mask[..., :4] = 1
        out = AF.snow_cover(meadow, full(1.0), full(0.1), full(1.0), mask=mask)
        assert torch.equal(out[..., 4:], meadow[..., 4:])
        assert float(out[..., :4].min()) > 0.8
        with pytest.raises(ValueError, match="mask"):
            AF.snow_cover(meadow, full(1.0), full(0.1), full(1.0), mask=mask[..., :4])


class TestClouds:
    def _clouds(self, image, coverage, opacity=1.0, shadow=0.0, n=8):
        return AF.cloud_layer(
            image,
            seed=torch.arange(n, dtype=torch.float64),
            opacity=full(opacity, n),
            coverage=full(coverage, n),
            softness=full(0.05, n),
            color=torch.ones(n, 3, dtype=torch.float64),
            scale=full(4.0, n),
            shadow_strength=full(shadow, n),
            shadow_shift=torch.full((n, 2), 6.0, dtype=torch.float64),
        )

    @pytest.mark.parametrize("coverage", [0.2, 0.5, 0.8])
    def test_coverage_is_the_cloudy_share(self, coverage):
        out = self._clouds(torch.zeros(8, 3, 64, 64, dtype=torch.float64), coverage)
        share = float((out[:, 0] > 0.5).double().mean())
        assert share == pytest.approx(coverage, abs=0.05)

    def test_shadows_darken_the_same_share_elsewhere(self):
        white = torch.ones(8, 3, 64, 64, dtype=torch.float64)
        out = self._clouds(white, 0.4, opacity=0.0, shadow=1.0)
        assert float((out[:, 0] < 0.5).double().mean()) == pytest.approx(0.4, abs=0.08)

    def test_no_opacity_no_shadow_is_identity(self):
        image = torch.rand(8, 3, 16, 16, dtype=torch.float64)
        torch.testing.assert_close(self._clouds(image, 0.5, opacity=0.0, shadow=0.0), image)


class TestEdgeAbstraction:
    def test_flat_levels_and_dark_edge_on_a_step(self):
        image = torch.full((1, 3, 8, 12), 0.2, dtype=torch.float64)
        image[..., 6:] = 0.7
        out = AF.edge_abstraction(image, full(4), full(0.0), full(1.0), full(0.05))
        # Far from the step: the level centres (floor(0.2 * 4) + 0.5) / 4 and (floor(0.7 * 4) + 0.5) / 4.
        torch.testing.assert_close(out[..., :3], torch.full_like(out[..., :3], 0.125))
        torch.testing.assert_close(out[..., 9:], torch.full_like(out[..., 9:], 0.625))
        # At the step the Sobel magnitude is 0.5 * 4 / 8 = 0.25 >= 2 * threshold: fully dark.
        assert float(out[..., 5:7].max()) == 0.0

    def test_output_levels_without_edges(self):
        image = torch.rand(1, 3, 16, 16, dtype=torch.float64)
        out = AF.edge_abstraction(image, full(3), full(1.0), full(0.0), full(0.05))
        assert set(torch.unique(out * 6).round().tolist()) <= {1.0, 3.0, 5.0}


class TestFourierDomainAdaptation:
    def test_small_beta_is_identity(self):
        image, target = torch.rand(2, 3, 16, 16, dtype=torch.float64), torch.rand(2, 3, 16, 16, dtype=torch.float64)
        torch.testing.assert_close(AF.fourier_domain_adaptation(image, target, full(0.05, 2)), image)

    def test_dc_only_swaps_the_mean_colour(self):
        image = 0.25 + 0.5 * torch.rand(1, 3, 16, 16, dtype=torch.float64)
        target = 0.3 + 0.2 * torch.rand(1, 3, 16, 16, dtype=torch.float64)
        out = AF.fourier_domain_adaptation(image, target, full(1 / 16))  # b = 1: only k = 0
        expected = image - image.mean((2, 3), keepdim=True) + target.mean((2, 3), keepdim=True)
        torch.testing.assert_close(out, expected.clamp(0, 1))

    def test_window_amplitude_from_target_phase_from_source(self):
        image = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 0.2 + 0.4
        target = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 0.2 + 0.4
        b = 3
        out = AF.fourier_domain_adaptation(image, target, full(b / 16))
        fs, ft, fo = (np.fft.fft2(t.numpy()) for t in (image, target, out))
        k = np.abs(np.fft.fftfreq(16, 1 / 16))
        window = (k[:, None] < b) & (k[None, :] < b)
        np.testing.assert_allclose(np.abs(fo)[..., window], np.abs(ft)[..., window], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fo[..., ~window], fs[..., ~window], atol=1e-9)
        phase_diff = np.angle(fo[..., window] * np.conj(fs[..., window]))
        np.testing.assert_allclose(phase_diff, 0.0, atol=1e-9)

    def test_target_shape_must_match(self):
        with pytest.raises(ValueError, match="target"):
            AF.fourier_domain_adaptation(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 4, 4), torch.ones(1))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: AF.haze(x, torch.ones(1), torch.zeros(1), torch.ones(1, 3)),
        lambda x: AF.season_shift(x, torch.ones(1), torch.ones(1), torch.ones(1)),
        lambda x: AF.snow_cover(x, torch.ones(1), torch.ones(1), torch.ones(1)),
    ],
)
def test_functional_input_checks(call):
    with pytest.raises(TypeError, match="image"):
        call(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="image.*3"):
        call(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"image must be a batch \(B, 3, H, W\), got \(3, 4, 4\); add the batch"):
        call(torch.zeros(3, 4, 4))  # one image without its batch dimension


def test_functional_parameters_are_checked_by_name():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(TypeError, match=r"density must be a tensor with one value per image, shape \(2,\), "
                                        r"got float 0.5"):
        AF.haze(x, 0.5, torch.zeros(2), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"amount must have one value per image, shape \(2,\), got \(5,\)"):
        AF.snow_cover(x, torch.ones(5), torch.ones(2), torch.ones(2))
    with pytest.raises(TypeError, match="edge_strength must be a tensor"):
        AF.edge_abstraction(x, torch.full((2,), 4.0), torch.ones(2), 0.5, torch.full((2,), 0.05))
    with pytest.raises(ValueError, match=r"sky_share must have one value per image"):
        AF.sun_relight(x, torch.zeros(2, 3, 8, 8), torch.zeros(2, 3), torch.tensor(0.5))


def test_functional_parameters_of_another_shape_are_refused_not_broadcast():
    # Each would broadcast: one image with two densities came out as two images, a (B, 1) colour was
    # one grey level for all three channels, a (B, 2, 1) density turned the batch into a 5-D tensor.
    one = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"density must have one value per image, shape \(1,\), got \(1, 2\)"):
        AF.haze(one, torch.ones(1, 2), torch.zeros(1), torch.ones(1, 3))
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"airlight must have one value per image, shape \(2, 3\), got \(2, 1\)"):
        AF.haze(x, torch.ones(2), torch.zeros(2), torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"depth must have one value per image, shape \(2, 1, 8, 8\), got \(2, 8, 8\)"):
        AF.haze(x, torch.ones(2), torch.zeros(2), torch.ones(2, 3), depth=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match=r"white_balance must have one value per image, shape \(2, 3\)"):
        AF.camera_effects(x, torch.zeros(2, dtype=torch.int64), torch.ones(2), torch.zeros(2), torch.zeros(2),
                          torch.zeros(2))
    with pytest.raises(ValueError, match=r"shadow_shift must have one value per image, shape \(2, 2\)"):
        AF.cloud_layer(x, torch.zeros(2, dtype=torch.int64), torch.ones(2), torch.ones(2), torch.ones(2),
                        torch.ones(2, 3), torch.ones(2), torch.ones(2), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"mask must have one value per image, shape \(2, 1, 8, 8\)"):
        AF.snow_cover(x, torch.ones(2), torch.ones(2), torch.ones(2), mask=torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"autumn must have one value per image, shape \(2,\), got \(2, 2\)"):
        AF.season_shift(x, torch.ones(2, 2), torch.zeros(2), torch.zeros(2))


def test_sobel_matches_kornia():
    from augment.functional._utils import sobel_xy

    gray = torch.rand(2, 1, 9, 11, dtype=torch.float64)
    dx, dy = sobel_xy(gray)
    ref = kornia.filters.spatial_gradient(gray, mode="sobel", normalized=True)  # (B, 1, 2, H, W), replicate
    torch.testing.assert_close(dx, ref[:, :, 0])
    torch.testing.assert_close(dy, ref[:, :, 1])


def test_functional_parameters_outside_their_domain_are_refused():
    x = torch.rand(2, 3, 8, 8)
    ones, zeros = torch.ones(2), torch.zeros(2)
    # gamma <= 0: x ** 0 turned every lit pixel white and x ** -1 brighter than 1.
    for gamma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"gamma must be > 0, got "):
            AF.illumination(x, zeros, ones, zeros, torch.tensor([1.0, gamma]), zeros)
    out = AF.illumination(x, zeros, ones, zeros, torch.full((2,), 0.5), zeros)  # relief 0: a pure gamma
    torch.testing.assert_close(out, x.clamp_min(1e-12) ** 0.5)
    # horizon >= 1: the rows' distance (1 - h) / (v - h) is 0 / 0 at h = 1.
    with pytest.raises(ValueError, match=r"horizon must be < 1, got 1"):
        AF.haze(x, ones, torch.tensor([0.5, 1.0]), torch.ones(2, 3))
    # With a depth map the horizon is not used.
    depth = torch.ones(2, 1, 8, 8)
    hazy = AF.haze(x, ones, torch.ones(2), torch.ones(2, 3), depth=depth)
    torch.testing.assert_close(hazy, x * math.exp(-1.0) + (1.0 - math.exp(-1.0)))


def test_blur_sigma_is_checked_and_its_kernel_stays_within_the_image():
    x = torch.rand(2, 3, 8, 8)
    zeros, ones = torch.zeros(2), torch.ones(2)
    seed = torch.zeros(2, dtype=torch.int64)
    # NaN gave math.ceil's "cannot convert float NaN to integer"; a negative sigma a kernel of radius < 0.
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="blur_sigma must be finite and >= 0"):
            AF.camera_effects(x, seed, torch.ones(2, 3), zeros, zeros, torch.tensor([1.0, bad]))
        with pytest.raises(ValueError, match="smoothing must be finite and >= 0"):
            AF.edge_abstraction(x, torch.full((2,), 4.0), torch.tensor([bad, 1.0]), zeros, torch.full((2,), 0.05))
    with pytest.raises(ValueError, match="max_blur_sigma must be a finite number >= 0"):
        AF.camera_effects(x, seed, torch.ones(2, 3), zeros, zeros, ones, max_blur_sigma=float("inf"))
    # A sigma of 1e9 px asked for a kernel and a padded copy of 6e9 pixels per row and ran out of memory.
    # Cut at the image's side, an image of one colour per row stays one colour per row (to float32 round-off:
    # every tap reads a pixel of the image or its replicated border).
    rows = torch.linspace(0, 1, 8).view(1, 1, 8, 1).expand(2, 3, 8, 8).contiguous()
    out = AF.camera_effects(rows, seed, torch.ones(2, 3), zeros, zeros, torch.full((2,), 1e9))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, out[..., :1].expand_as(out))
    # A wide blur of a vertical ramp tends to its mean (0.5) with the borders replicated symmetrically.
    torch.testing.assert_close(out.mean(), torch.tensor(0.5), atol=1e-5, rtol=0)
