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

    @pytest.mark.parametrize("azimuth_deg, brighter", [(0.0, True), (180.0, False)])
    def test_lambertian_shading_of_a_ramp_down_the_rows(self, azimuth_deg, brighter):
        # Luma rises by a per row downwards (y down): the normal is (0, -relief * a, 1) / norm, the slope faces
        # the image's top. Azimuth 0 (clockwise from image up) puts the sun at the top: s = (0, -cos e, sin e);
        # azimuth 180 at the bottom: s = (0, +cos e, sin e). The shade is n . s / s_z.
        height, a, relief = 12, 0.02, 10.0
        ramp = 0.3 + a * torch.arange(height, dtype=torch.float64)
        image = ramp.view(1, 1, -1, 1).expand(1, 3, height, 6).contiguous()
        elevation = math.radians(40.0)
        out = AF.illumination(image, full(math.radians(azimuth_deg)), full(elevation), full(relief), full(1.0),
                              full(0.0))
        up = 1.0 if azimuth_deg == 0.0 else -1.0
        shade = (relief * a * math.cos(elevation) * up + math.sin(elevation)) / (
            math.hypot(relief * a, 1.0) * math.sin(elevation))
        np.testing.assert_allclose(out[0, :, 2:-2, 2:4].numpy(), image[0, :, 2:-2, 2:4].numpy() * shade, atol=1e-12)
        assert (shade > 1) == brighter

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

    def test_vignetting_radius_is_isotropic_on_a_wide_image(self):
        # r is the distance from the centre over the half-diagonal (1 at the corners): on an H x W image the
        # middle of the left / right edge is at r^2 = W^2 / (W^2 + H^2), of the top / bottom edge at
        # H^2 / (W^2 + H^2). 17 x 49: the rows and columns have exact middles.
        height, width, k = 17, 49, 1.0
        image = torch.full((1, 3, height, width), 0.8, dtype=torch.float64)
        out = AF.camera_effects(image, full(0), torch.ones(1, 3, dtype=torch.float64), full(k), full(0.0), full(0.0))
        diag2 = width**2 + height**2
        side = 0.8 / (1 + k * width**2 / diag2) ** 2  # r^2 = 0.893: nearly the corners' darkening
        top = 0.8 / (1 + k * height**2 / diag2) ** 2  # r^2 = 0.107: nearly the centre's brightness
        # (atol: whether the corner pixels' centres or outer corners are r = 1 moves these by < 2e-3)
        assert float(out[0, 0, height // 2, 0]) == pytest.approx(side, abs=5e-3)
        assert float(out[0, 0, height // 2, -1]) == pytest.approx(side, abs=5e-3)
        assert float(out[0, 0, 0, width // 2]) == pytest.approx(top, abs=5e-3)
        assert float(out[0, 0, -1, width // 2]) == pytest.approx(top, abs=5e-3)
        assert float(out[0, 0, 0, 0]) == pytest.approx(0.8 / (1 + k) ** 2, abs=1e-12)

    def test_white_balance_gains(self):
        image = torch.rand(1, 3, 4, 4, dtype=torch.float64) * 0.5
        gains = torch.tensor([[1.2, 1.0, 0.7]], dtype=torch.float64)
        out = AF.camera_effects(image, full(0), gains, full(0.0), full(0.0), full(0.0))
        torch.testing.assert_close(out, image * gains.view(1, 3, 1, 1))

    def test_blur_matches_kornia(self):
        image = torch.rand(2, 3, 20, 20, dtype=torch.float64)
        sigma = torch.tensor([0.8, 1.5], dtype=torch.float64)
        out = AF.camera_effects(image, full(0, 2), torch.ones(2, 3, dtype=torch.float64), full(0.0, 2), full(0.0, 2),
                                sigma)
        for i in range(2):
            radius = math.ceil(3 * 1.5)
            ref = kornia.filters.gaussian_blur2d(
                image[i : i + 1], (2 * radius + 1, 2 * radius + 1), (float(sigma[i]), float(sigma[i])),
                border_type="replicate"
            )
            torch.testing.assert_close(out[i : i + 1], ref.clamp(0, 1), atol=1e-10, rtol=0)

    def test_noise_is_gaussian_with_the_given_std(self):
        image = torch.full((2, 3, 128, 128), 0.5, dtype=torch.float64)
        out = AF.camera_effects(image, torch.tensor([1.0, 2.0]), torch.ones(2, 3, dtype=torch.float64), full(0.0, 2),
                                full(0.05, 2), full(0.0, 2))
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

    @pytest.mark.parametrize("winter", [0.5, 1.0])
    def test_winter_moves_the_autumn_colour_towards_straw(self, winter):
        # Full vegetation (excess green ~1): autumn = 1 gives the luma-matched yellow Y' (tint 0), then winter w
        # moves that colour towards the luma-matched straw S': (1 - w) * Y' + w * S'.
        rgb = [0.15, 0.5, 0.1]
        green = solid(rgb)
        out = AF.season_shift(green, full(1.0), full(winter), full(0.0))
        luma = float(LUMA @ torch.tensor(rgb, dtype=torch.float64))
        yellow = torch.tensor([0.80, 0.62, 0.12], dtype=torch.float64)
        straw = torch.tensor([0.52, 0.47, 0.38], dtype=torch.float64)
        expected = (1 - winter) * yellow * luma / float(LUMA @ yellow) + winter * straw * luma / float(LUMA @ straw)
        torch.testing.assert_close(out[0, :, 0, 0], expected, atol=1e-12, rtol=0)

    def test_vegetation_weight_ramps_from_0_02_to_0_2_of_excess_green(self):
        # The weight is a smoothstep of the excess green e = (2g - r - b) / (r + g + b) from 0.02 to 0.2: a pixel
        # with e >= 0.2 is fully recoloured, one at e = 0.11 (the middle) half-way (smoothstep(0.5) = 0.5).
        red = torch.tensor([0.72, 0.28, 0.08], dtype=torch.float64)
        for rgb, weight in (([0.3, 0.403, 0.3], 1.0), ([0.3, 0.3 + 0.11 * 0.9 / 1.89, 0.3], None)):
            pixel = torch.tensor(rgb, dtype=torch.float64)
            r, g, b = rgb
            e = (2 * g - r - b) / (r + g + b + 1e-3)  # the index's guard eps: 1e-3
            if weight is None:
                t = (e - 0.02) / 0.18
                assert t == pytest.approx(0.5, abs=2e-3)
                weight = t * t * (3 - 2 * t)
            else:
                assert e >= 0.2
            luma = float(LUMA @ pixel)
            expected = pixel + weight * (red * luma / float(LUMA @ red) - pixel)
            out = AF.season_shift(solid(rgb), full(1.0), full(0.0), full(1.0))
            torch.testing.assert_close(out[0, :, 0, 0], expected, atol=1e-12, rtol=0)

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

    @staticmethod
    def _affinity_without_water(rgb, flatness):
        """The documented affinity 0.5 * grass + 0.3 * flatness + 0.2 * luma of one colour, worked in floats."""
        r, g, b = rgb
        luma = 0.299 * r + 0.587 * g + 0.114 * b
        e = (2 * g - r - b) / (r + g + b + 1e-3)
        t = min(max((luma - 0.15) / 0.25, 0.0), 1.0)
        grass = 1 / (1 + math.exp(-(e - 0.05) / 0.05)) * t * t * (3 - 2 * t)
        return 0.5 * grass + 0.3 * flatness + 0.2 * luma, luma

    def test_water_starts_at_blue_0_02_above_the_mean_of_red_and_green(self):
        # b - (r + g) / 2 = 0.02: water 0, the full affinity (flat: flatness 1): ~0.51, and with amount 0.7 and
        # softness 0.1 the pixel is covered: (0.51 + 0.7 - 1) / 0.1 > 1. At 0.1 above it is all water: no snow.
        rgb = [0.5, 0.5, 0.52]
        affinity, luma = self._affinity_without_water(rgb, 1.0)
        assert (affinity + 0.7 - 1) / 0.1 > 1.5
        out = AF.snow_cover(solid(rgb), full(0.7), full(0.1), full(1.0))
        snow = torch.tensor([0.94, 0.96, 1.0], dtype=torch.float64) * (0.85 + 0.15 * luma)
        torch.testing.assert_close(out[0, :, 3, 3], snow, atol=1e-6, rtol=0)
        # Half-way up the water ramp (0.06 above): the affinity halves and the snow line is smoothstepped.
        rgb = [0.5, 0.5, 0.56]
        affinity, luma = self._affinity_without_water(rgb, 1.0)
        c = min(max((affinity * 0.5 + 1.0 - 1) / 1.0, 0.0), 1.0)  # amount 1, softness 1
        cover = c * c * (3 - 2 * c)
        pixel = torch.tensor(rgb, dtype=torch.float64)
        snow = torch.tensor([0.94, 0.96, 1.0], dtype=torch.float64) * (0.85 + 0.15 * luma)
        out = AF.snow_cover(solid(rgb), full(1.0), full(1.0), full(1.0))
        # (atol: flat ground's flatness is 1 to 2e-5, the guard inside the gradient's square root)
        torch.testing.assert_close(out[0, :, 3, 3], pixel + cover * (snow - pixel), atol=1e-4, rtol=0)
        lake = solid([0.5, 0.5, 0.6])
        torch.testing.assert_close(AF.snow_cover(lake, full(1.0), full(0.1), full(1.0)), lake)

    def test_flatness_of_a_ramp_is_exp_of_minus_slope_over_0_05(self):
        # A grey ramp rising 0.05 per column: |grad luma| = 0.05 (Sobel / 8) away from the borders, flatness
        # exp(-1); grey has no water. amount 1, softness 1: cover = smoothstep(affinity).
        width = 10
        ramp = 0.3 + 0.05 * torch.arange(width, dtype=torch.float64)
        image = ramp.view(1, 1, 1, -1).expand(1, 3, 6, width).contiguous()
        out = AF.snow_cover(image, full(1.0), full(1.0), full(1.0))
        for col in range(1, width - 1):
            v = float(ramp[col])
            affinity, luma = self._affinity_without_water([v, v, v], math.exp(-1.0))
            cover = affinity * affinity * (3 - 2 * affinity)
            snow = torch.tensor([0.94, 0.96, 1.0], dtype=torch.float64) * (0.85 + 0.15 * luma)
            expected = v + cover * (snow - v)
            torch.testing.assert_close(out[0, :, 2, col], expected, atol=1e-9, rtol=0)

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

    def test_thin_cloud_is_shaded_by_its_density(self):
        # Without shadows, out = ground (1 - d) + color (0.8 + 0.2 d) d at opacity 1. On black ground that is
        # b = d (0.8 + 0.2 d), so d = (-0.8 + sqrt(0.64 + 0.8 b)) / 0.4; on white ground the same draws give 1 - d + b.
        black = self._clouds(torch.zeros(8, 3, 32, 32, dtype=torch.float64), 0.5, shadow=0.0)
        white = self._clouds(torch.ones(8, 3, 32, 32, dtype=torch.float64), 0.5, shadow=0.0)
        d = (-0.8 + torch.sqrt(0.64 + 0.8 * black)) / 0.4
        torch.testing.assert_close(white, 1.0 - d + black, rtol=0, atol=1e-9)
        thin = (d > 0.2) & (d < 0.8)
        assert thin.float().mean() > 0.01 and (white[thin] < 1 - 1e-3).all()  # thin cloud on white ground: greyer

    def test_shadows_darken_the_same_share_elsewhere(self):
        white = torch.ones(8, 3, 64, 64, dtype=torch.float64)
        out = self._clouds(white, 0.4, opacity=0.0, shadow=1.0)
        assert float((out[:, 0] < 0.5).double().mean()) == pytest.approx(0.4, abs=0.08)

    def test_the_shadow_is_the_cloud_field_shifted_by_plus_shadow_shift(self):
        # Opacity 0 and full shadow strength on white ground: out = 1 - shadow. With no shift the shadow is the
        # cloud density d itself; shifted by (dx, dy) px it is d translated by +(dx, dy): out(y, x) = 1 - d(y - dy,
        # x - dx), so the shadow falls where the sun's direction carries it (full resolution: no resampling).
        def shadowed(dx, dy):
            return AF.cloud_layer(
                torch.ones(1, 3, 32, 32, dtype=torch.float64), seed=full(3), opacity=full(0.0), coverage=full(0.5),
                softness=full(0.5), color=torch.ones(1, 3, dtype=torch.float64), scale=full(3.0),
                shadow_strength=full(1.0), shadow_shift=torch.tensor([[float(dx), float(dy)]], dtype=torch.float64),
                noise_resolution=None)[0, 0]

        unshifted = shadowed(0, 0)
        assert float(unshifted.std()) > 0.1  # a field with structure, so that a wrong shift shows
        dx, dy = 5, 3
        torch.testing.assert_close(shadowed(dx, dy)[dy:, dx:], unshifted[:-dy, :-dx], atol=1e-9, rtol=0)

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

    def test_edges_are_read_from_the_smoothed_luma(self):
        # Stripes of 0.5 and 0.7, two columns each: the raw Sobel magnitude is 0.1 = 2 thresholds at every column
        # (fully dark edges if read from the raw image), but a Gaussian of sigma 3 px flattens a 4-px period to
        # exp(-2 pi^2 sigma^2 / 16) ~ 1e-5 of its amplitude: no edge. Every smoothed value lies in [0.5, 0.7], in
        # the level [0.5, 0.75) of 4 levels: the output is its centre 0.625 everywhere.
        stripes = torch.tensor([0.5, 0.5, 0.7, 0.7], dtype=torch.float64).repeat(4)
        image = stripes.view(1, 1, 1, -1).expand(1, 3, 16, 16).contiguous()
        out = AF.edge_abstraction(image, full(4), full(3.0), full(1.0), full(0.05))
        torch.testing.assert_close(out, torch.full_like(out, 0.625), atol=1e-12, rtol=0)


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

    def test_window_is_sized_by_the_shorter_side(self):
        # 16 x 32: b = floor(beta * min(H, W)) = floor(3 / 16 * 16) = 3, the window |k_y| < 3, |k_x| < 3.
        image = torch.rand(1, 3, 16, 32, dtype=torch.float64) * 0.2 + 0.4
        target = torch.rand(1, 3, 16, 32, dtype=torch.float64) * 0.2 + 0.4
        out = AF.fourier_domain_adaptation(image, target, full(3 / 16))
        fs, ft, fo = (np.fft.fft2(t.numpy()) for t in (image, target, out))
        ky, kx = np.abs(np.fft.fftfreq(16, 1 / 16)), np.abs(np.fft.fftfreq(32, 1 / 32))
        window = (ky[:, None] < 3) & (kx[None, :] < 3)
        np.testing.assert_allclose(np.abs(fo)[..., window], np.abs(ft)[..., window], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fo[..., ~window], fs[..., ~window], atol=1e-9)

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
    with pytest.raises(ValueError, match=r"airlight must have one row per image, shape \(2, 3\), got \(2, 1\)"):
        AF.haze(x, torch.ones(2), torch.zeros(2), torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"depth must have one map per image, shape \(2, 1, 8, 8\), got \(2, 8, 8\)"):
        AF.haze(x, torch.ones(2), torch.zeros(2), torch.ones(2, 3), depth=torch.ones(2, 8, 8))
    with pytest.raises(ValueError, match=r"white_balance must have one row per image, shape \(2, 3\)"):
        AF.camera_effects(x, torch.zeros(2, dtype=torch.int64), torch.ones(2), torch.zeros(2), torch.zeros(2),
                          torch.zeros(2))
    with pytest.raises(ValueError, match=r"shadow_shift must have one row per image, shape \(2, 2\)"):
        AF.cloud_layer(x, torch.zeros(2, dtype=torch.int64), torch.ones(2), torch.ones(2), torch.ones(2),
                        torch.ones(2, 3), torch.ones(2), torch.ones(2), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"mask must have one map per image, shape \(2, 1, 8, 8\)"):
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


def test_excess_green_is_woebbeckes_normalised_index():
    # Woebbecke et al. (1995): ExG = 2g - r - b on the chromatic coordinates r = R / (R + G + B), ..., i.e.
    # (2G - R - B) / (R + G + B): 2 for pure green, -1 for pure red or blue, 0 for grey (guard eps 1e-3).
    from augment.functional._utils import excess_green

    rgb = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.4, 0.4, 0.4], [0.2, 0.5, 0.1]],
                       dtype=torch.float64)
    out = excess_green(rgb.view(5, 3, 1, 1))
    assert out.shape == (5, 1, 1, 1)
    expected = torch.tensor([2.0 / 1.001, -1.0 / 1.001, -1.0 / 1.001, 0.0, 0.7 / 0.801], dtype=torch.float64)
    torch.testing.assert_close(out.flatten(), expected, atol=1e-12, rtol=0)


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


def test_a_sun_elevation_outside_0_to_90_degrees_in_radians_is_refused():
    # "in radians, in (0, pi/2]": 60 (degrees, as RandomIllumination takes them) put the sun at sin(60) < 0, under
    # the ground, and turned half of a relief-shaded image white and the other half black without a word
    x = torch.rand(2, 3, 8, 8)
    zeros, ones = torch.zeros(2), torch.ones(2)
    for bad in (60.0, 0.0, -0.3, float("nan")):
        with pytest.raises(ValueError, match=r"sun_elevation \(radians\) must be > 0 and < 1.5708"):
            AF.illumination(x, zeros, torch.tensor([0.5, bad]), ones, ones, zeros)
    overhead = AF.illumination(x, zeros, torch.full((2,), math.pi / 2), zeros, ones, zeros)  # pi / 2 itself is taken
    torch.testing.assert_close(overhead, x)


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


_X = torch.full((1, 3, 8, 8), 0.5)


@pytest.mark.parametrize("call, expected", [
    # each gave a finite but black, white or otherwise wrong image without a word
    (lambda: AF.illumination(_X, full(0.0), full(0.5), full(float("nan")), full(1.0), full(0.0)),
     r"^relief must be >= 0 and < inf, got nan\.$"),
    (lambda: AF.edge_abstraction(_X, full(4.0), full(1.0), full(1.0), full(0.0)),
     r"^edge_threshold must be > 0 and < inf, got 0\.$"),
    (lambda: AF.edge_abstraction(_X, full(4.0), full(1.0), full(1.5), full(0.1)),
     r"^edge_strength must be >= 0 and <= 1, got 1\.5\.$"),
    (lambda: AF.camera_effects(_X, full(0.0), torch.tensor([[1.0, -0.5, 1.0]]), full(0.0), full(0.0), full(0.0)),
     r"^white_balance must be > 0 and < inf, got -0\.5\.$"),
    (lambda: AF.camera_effects(_X, full(float("nan")), torch.ones(1, 3), full(0.0), full(0.0), full(0.0)),
     r"^seed must be > -inf and < inf, got nan\.$"),
    (lambda: AF.camera_effects(_X, full(0.0), torch.ones(1, 3), full(-1.0), full(0.0), full(0.0)),
     r"^vignetting must be >= 0 and < inf, got -1\.$"),
    (lambda: AF.fourier_domain_adaptation(_X, _X * 255, full(0.05)),
     r"^target must hold values in \[0, 1\], got 127\.5 to 127\.5; 8-bit pixels as floats: divide them by 255\.$"),
    (lambda: AF.fourier_domain_adaptation(_X, _X, full(2.0)), r"^beta must be >= 0 and <= 1, got 2\.$"),
    (lambda: AF.haze(_X, full(-1.0), full(-1.0), torch.ones(1, 3)), r"^density must be >= 0 and < inf, got -1\.$"),
    (lambda: AF.haze(_X, full(1.0), full(-1.0), torch.full((1, 3), 255.0)),
     r"^airlight must be >= 0 and <= 1, got 255\.$"),
])
def test_functional_values_outside_their_documented_domain_are_refused_by_name(call, expected):
    with pytest.raises(ValueError, match=expected):
        call()
