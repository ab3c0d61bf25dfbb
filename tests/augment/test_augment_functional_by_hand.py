"""The pure functions against references worked by hand or written out again, for what mutation testing found open.

Each test names the wrong variants of the code it tells apart (a mutant that the other tests let through). The
references never call the function under test: the hash and Box-Muller are written out on Python integers, the
interpolation kernels and the compositing formulas from their definitions, the quantile with `statistics` (the fBm and
cloud references build on single noise octaves, which the tests above them check on their own).
"""

import math
import statistics

import pytest
import torch
import torch.nn.functional as F

import augment.functional as AF
from augment.functional.noise import fractal_noise, hash_bits, hash_uniform, perlin_noise, value_noise

D = torch.float64


def full(value, n=1):
    return torch.full((n,), float(value), dtype=D)


def solid(rgb, h=8, w=8, n=1):
    return torch.tensor(rgb, dtype=D).view(1, 3, 1, 1).expand(n, 3, h, w).contiguous()


# --- the hash, written out on Python integers -------------------------------------------------------------------

_MASK = 0xFFFFFFFF


def _hash_py(ix, iy, seed):
    """The murmur-style finaliser of ``ix * PX ^ iy * PY ^ seed * PS`` modulo 2**32, as an unsigned int."""
    h = ((ix * 668265261) & _MASK) ^ ((iy * 374761393) & _MASK) ^ ((seed * 1540483477) & _MASK)
    h = ((h ^ (h >> 15)) * 739982445) & _MASK
    h = ((h ^ (h >> 12)) * 695872825) & _MASK
    return h ^ (h >> 15)


def _signed(h):
    return h - (1 << 32) if h >= 1 << 31 else h


def _uniform_py(ix, iy, seed):
    return (_hash_py(ix, iy, seed) & 0xFFFFFF) / 16777216.0


def test_hash_bits_is_the_murmur_finaliser_written_out():
    # Kills: a changed multiplier, a shift of 16 for 15, an arithmetic shift (sign bits copied in), the last
    # xor-shift dropped, the seed added instead of xor-ed. The hash is what makes a seed's field the same on every
    # version and device, so its bits are pinned, negative coordinates and a seed above 2**30 included.
    coords = [(0, 0), (1, 0), (0, 1), (-1, -1), (12345, -678), (-70000, 91011), (2**20, 3)]
    for seed in (0, 1, 9, 2**30 + 7):
        ix = torch.tensor([c[0] for c in coords])
        iy = torch.tensor([c[1] for c in coords])
        got = hash_bits(ix, iy, torch.tensor(seed)).tolist()
        assert got == [_signed(_hash_py(x, y, seed)) for x, y in coords]
        assert hash_uniform(ix, iy, torch.tensor(seed)).tolist() == [_uniform_py(x, y, seed) for x, y in coords]
    # (0, 0, 0): every product is 0 and the finaliser maps 0 to 0.
    assert int(hash_bits(torch.tensor(0), torch.tensor(0), torch.tensor(0))) == 0


# --- value and Perlin noise from their definitions --------------------------------------------------------------


def _keys(t, a=-0.75):
    """Keys' cubic convolution kernel with torch's a = -0.75 (bicubic grid_sample)."""
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    if t < 2:
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return 0.0


def test_keys_kernel_at_half_a_cell():
    # w(0.5) = 1.25 / 8 - 2.25 / 4 + 1 = 0.59375, w(1.5) = -0.75 (3.375 - 11.25 + 12 - 4) = -0.09375: sum 1.
    assert _keys(0.5) == 0.59375 and _keys(1.5) == -0.09375 and _keys(0) == 1.0 and _keys(1) == 0.0


def test_value_noise_is_keys_interpolation_of_the_hashed_lattice_in_noise_plane_coordinates():
    # A pixel centre (x + 0.5, y + 0.5) / max(H, W) sits at u = that * scale + offset in the noise plane, and the
    # field there is sum_ij K(u - i) K(v - j) hash(i, j). Offsets with fractions 0.9 and 0.85 put the last pixels
    # near the far side of a cell, where the lattice needs its margin; a wide and a tall image.
    # Kills: pixel corners for centres, min(H, W) for the longest side, a lattice short by two nodes (either axis),
    # the node-to-hash index off by one, the +1 margin dropped, 2 / nx for 2 / (nx - 1), bilinear for bicubic, the
    # y fraction taken from x.
    seed, scale = 11, 4.0
    for size in [(3, 7), (8, 2)]:
        height, width = size
        side = max(height, width)
        offset = (-2.1, 0.85)  # fractions 0.9 and 0.85
        out = value_noise(full(seed), torch.tensor([offset], dtype=D), full(scale), size, dtype=D)[0, 0]
        expected = torch.zeros(size, dtype=D)
        for y in range(height):
            for x in range(width):
                u = (x + 0.5) / side * scale + offset[0]
                v = (y + 0.5) / side * scale + offset[1]
                iu, iv = math.floor(u), math.floor(v)
                expected[y, x] = sum(_keys(u - i) * _keys(v - j) * _uniform_py(i, j, seed)
                                     for i in range(iu - 1, iu + 3) for j in range(iv - 1, iv + 3))
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def _fade(t):
    return 6 * t**5 - 15 * t**4 + 10 * t**3


def test_perlin_noise_is_the_fade_weighted_sum_of_the_four_corner_gradients():
    # Perlin (2002): corner (i, j) has the unit gradient of angle 2 pi hash(i, j) and contributes g . (u - i, v - j);
    # the four contributions are blended with the quintic fade of the fractions. Scale 4 on 4 px puts pixel centres
    # at x + 0.5 + offset: fractions 0.25 across and 0.75 down, where the quintic fade is 0.103515625 and
    # 0.896484375 (a cubic smoothstep would be 0.15625), and the two axes differ.
    # Kills: a cubic fade, the corner offsets swapped between x and y (in the dot product or the hash), the fade of u
    # used down the rows.
    seed = 7
    assert _fade(0.25) == 0.103515625 and _fade(0.75) == 0.896484375
    out = perlin_noise(full(seed), torch.tensor([[-0.25, 0.25]], dtype=D), full(4.0), (4, 4), dtype=D)[0, 0]
    expected = torch.zeros(4, 4, dtype=D)
    for y in range(4):
        for x in range(4):
            u, v = x + 0.25, y + 0.75
            i0, j0 = math.floor(u), math.floor(v)
            fu, fv = u - i0, v - j0

            def corner(dx, dy):
                angle = 2 * math.pi * _uniform_py(i0 + dx, j0 + dy, seed)
                return math.cos(angle) * (fu - dx) + math.sin(angle) * (fv - dy)

            bottom = corner(0, 0) + _fade(fu) * (corner(1, 0) - corner(0, 0))
            top = corner(0, 1) + _fade(fu) * (corner(1, 1) - corner(0, 1))
            expected[y, x] = bottom + _fade(fv) * (top - bottom)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_fractal_noise_is_the_normalised_sum_of_its_octaves():
    # fBm: octave k has scale * L**k cells, offset * L**k, amplitude p**k and the seed seed + k * 1013904223; the
    # sum is divided by sum_k p**k and centred on 0.5 (a value octave is centred first: its field is about [0, 1]).
    # Here L = 3, p = 0.7 (a number and one per image), three octaves, a non-integer offset.
    # Kills: one seed for every octave, the amplitude stepped before its octave is added, the sum divided by the
    # number of octaves, the lattice of octave k sized for the base scale, a float persistence read as 0.5, a
    # lacunarity read as 2.
    seed, offset, scale, size = full(5, 2), torch.tensor([[0.3, -1.2], [2.7, 0.4]], dtype=D), full(2.5, 2), (6, 9)
    for persistence in (0.7, torch.full((2,), 0.7, dtype=D)):
        for basis in ("value", "perlin"):
            out = fractal_noise(seed, offset, scale, size, 3, persistence, 3.0, basis, dtype=D)
            total, norm = 0.0, 0.0
            for k in range(3):
                seed_k = seed + k * 1013904223
                if basis == "value":
                    octave = value_noise(seed_k, offset * 3.0**k, scale * 3.0**k, size, dtype=D) - 0.5
                else:
                    octave = perlin_noise(seed_k, offset * 3.0**k, scale * 3.0**k, size, dtype=D)
                total, norm = total + 0.7**k * octave, norm + 0.7**k
            torch.testing.assert_close(out, total / norm + 0.5, atol=1e-9, rtol=0)


def test_a_seed_is_read_modulo_2_to_the_31():
    # The lattice seed is the integer seed modulo 2**31: -1 is 2**31 - 1 and 5 + 2**31 is 5 (both exact in float64).
    # Kills: the seed taken modulo 2**32, or cast to int32 without the modulo (both wrap -1 and 5 + 2**31 elsewhere).
    def field(seed):
        return value_noise(torch.tensor([float(seed)], dtype=D), torch.zeros(1, 2, dtype=D), full(3.0), (4, 4))

    assert torch.equal(field(-1), field(2**31 - 1))
    assert torch.equal(field(5 + 2**31), field(5))
    assert not torch.equal(field(5), field(6))


# --- weather ----------------------------------------------------------------------------------------------------


def test_cloud_layer_is_its_documented_composite_on_the_coarse_noise_grid():
    # The docstring's recipe, written out: both fields are fBm (5 octaves, persistence 0.5, lacunarity 2) on the
    # coarse grid, the shadow's with the offset -shift * scale / max(H, W) (pixels to base cells), upsampled
    # bilinearly; the cloud field is standardised per image (sample std), the threshold is the normal quantile of
    # 1 - coverage (from statistics, not erfinv), d = sigmoid((z - threshold) / softness), the shadow the same with
    # the cloud field's mean and std; out = ground (1 - opacity d) + color (0.8 + 0.2 d) opacity d with
    # ground = image (1 - strength * shadow). A 6 x 10 image at noise_resolution 4: the grid is
    # (ceil(6 * 4 / 10), ceil(10 * 4 / 10)) = (3, 4), whose centres map onto the image's with align_corners=False
    # (the grid samples the noise at its own pixel centres, noise._pixel_coords). Opacities below 1.
    # Kills: int() for ceil() in the grid, the grid's sides swapped, align_corners=True, the population std, the
    # cloud shading by alpha = opacity * d instead of d, a persistence of 0.6.
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 6, 10, generator=g, dtype=D)
    seed, scale = torch.tensor([3.0, 8.0], dtype=D), torch.tensor([2.0, 3.5], dtype=D)
    shift = torch.tensor([[2.0, -1.0], [0.0, 3.0]], dtype=D)
    opacity, coverage = torch.tensor([0.6, 0.9], dtype=D), torch.tensor([0.3, 0.7], dtype=D)
    softness, strength = torch.tensor([0.4, 0.8], dtype=D), torch.tensor([0.5, 0.8], dtype=D)
    color = torch.tensor([[0.9, 0.95, 1.0], [0.7, 0.7, 0.75]], dtype=D)
    out = AF.cloud_layer(image, seed, opacity, coverage, softness, color, scale, strength, shift, noise_resolution=4)

    def field(offset):
        coarse = fractal_noise(seed, offset, scale, (3, 4), 5, 0.5, 2.0, "value", dtype=D)
        return F.interpolate(coarse, size=(6, 10), mode="bilinear", align_corners=False)

    cloud, shadow = field(torch.zeros(2, 2, dtype=D)), field(-shift * scale.view(-1, 1) / 10.0)
    mean = cloud.mean(dim=(1, 2, 3), keepdim=True)
    std = cloud.std(dim=(1, 2, 3), keepdim=True)  # sample std: n - 1 = 59
    threshold = torch.tensor([statistics.NormalDist().inv_cdf(1.0 - float(c)) for c in coverage], dtype=D)
    threshold, soft = threshold.view(-1, 1, 1, 1), softness.view(-1, 1, 1, 1)
    d = torch.sigmoid(((cloud - mean) / std - threshold) / soft)
    s = torch.sigmoid(((shadow - mean) / std - threshold) / soft)
    op = opacity.view(-1, 1, 1, 1)
    ground = image * (1.0 - strength.view(-1, 1, 1, 1) * s)
    expected = ground * (1.0 - op * d) + color.view(2, 3, 1, 1) * (0.8 + 0.2 * d) * op * d
    torch.testing.assert_close(out, expected, atol=1e-9, rtol=0)


def _meadow_luma():
    # Rec. 601 luma of the meadow (0.2, 0.55, 0.15): 0.0598 + 0.32285 + 0.0171 = 0.39975.
    return 0.299 * 0.2 + 0.587 * 0.55 + 0.114 * 0.15


def test_snow_on_a_flat_meadow_by_hand_with_half_a_mask_and_half_the_brightness():
    # A flat meadow at amount 1 is fully covered: grass = sigmoid((0.8333 - 0.05) / 0.05) ~ 1 (excess green
    # (1.1 - 0.35) / 0.9 = 0.8333), flatness 1, no water, affinity ~ 0.5 + 0.3 + 0.2 * 0.39975 = 0.88, cover
    # clamp(0.88 / 0.1) = 1. Snow is (0.94, 0.96, 1.0) * brightness * (0.85 + 0.15 * 0.39975) = rgb * 0.5 * 0.9099625;
    # half a mask moves the pixel half-way: out = x + 0.5 (snow - x).
    # Kills: the mask squared (a binary mask hides it), the brightness's square root (brightness 1 hides it).
    meadow = solid([0.2, 0.55, 0.15])
    out = AF.snow_cover(meadow, full(1.0), full(0.1), full(0.5), mask=torch.full((1, 1, 8, 8), 0.5, dtype=D))
    shade = 0.5 * (0.85 + 0.15 * _meadow_luma())
    assert shade == pytest.approx(0.45498125)
    for c, (x, white) in enumerate(zip((0.2, 0.55, 0.15), (0.94, 0.96, 1.0))):
        torch.testing.assert_close(out[0, c], torch.full((8, 8), x + 0.5 * (white * shade - x), dtype=D),
                                   atol=1e-6, rtol=0)


def test_a_depth_map_is_not_capped_at_max_distance():
    # max_distance caps the horizon model's d (at the horizon it grows without bound); a depth map replaces that
    # model and is used as given. Black ground at depth 50, density 0.05, airlight 0.8: t = exp(-2.5) = 0.082085,
    # out = 0.8 (1 - t) = 0.734332 (capped at 20 it would be 0.8 (1 - exp(-1)) = 0.505696).
    # Kills: the depth clamped to max_distance.
    depth = torch.full((1, 1, 4, 4), 50.0, dtype=D)
    out = AF.haze(solid([0.0, 0.0, 0.0], 4, 4), full(0.05), full(0.0), torch.full((1, 3), 0.8, dtype=D), depth=depth)
    torch.testing.assert_close(out, torch.full_like(out, 0.8 * (1.0 - math.exp(-2.5))), atol=1e-12, rtol=0)
    assert float(out[0, 0, 0, 0]) == pytest.approx(0.734332, abs=1e-6)


# --- appearance -------------------------------------------------------------------------------------------------


def test_gamma_leaves_black_exactly_black():
    # 0 ** gamma = 0 for every gamma > 0; 0.25 ** 0.5 = 0.5 and 1 ** 0.5 = 1 (flat image: no shading).
    # Kills: the power taken of the 1e-12 floor at black too (1e-12 ** 0.5 = 1e-6, not 0).
    image = torch.tensor([0.0, 0.25, 1.0], dtype=D).view(1, 1, 1, 3).expand(1, 3, 4, 3).contiguous()
    # relief 0: flat shading whatever the gradient
    out = AF.illumination(image, full(0.3), full(0.8), full(0.0), full(0.5), full(0.0))
    assert torch.equal(out[..., 0], torch.zeros(1, 3, 4, dtype=D))
    torch.testing.assert_close(out[..., 1:], torch.tensor([0.5, 1.0], dtype=D).expand(1, 3, 4, 2), atol=1e-12, rtol=0)


def test_camera_noise_is_box_muller_of_the_hash_written_out():
    # Pixel (c, y, x) of image b takes the 32 hashed bits of (x, c * H + y, seed_b): the high 16 give
    # u1 = (hi + 1) / 65536 in (0, 1], the low 16 give the angle 2 pi lo / 65536, and the noise is
    # sqrt(-2 ln u1) cos(angle) (Box-Muller), scaled by noise_std. No blur, vignetting or white balance here.
    # Kills: one noise for all three channels, the angle over [0, pi), sin for cos, u1 without the + 1.
    h, w, seeds, std = 3, 5, (4, 1234567), 0.05
    image = torch.full((2, 3, h, w), 0.5, dtype=D)
    out = AF.camera_effects(image, torch.tensor(seeds, dtype=D), torch.ones(2, 3, dtype=D), full(0.0, 2),
                            full(std, 2), full(0.0, 2))
    expected = torch.zeros(2, 3, h, w, dtype=D)
    for b, seed in enumerate(seeds):
        for c in range(3):
            for y in range(h):
                for x in range(w):
                    bits = _hash_py(x, c * h + y, seed)
                    u1 = ((bits >> 16) + 1) / 65536.0
                    angle = 2.0 * math.pi * (bits & 0xFFFF) / 65536.0
                    expected[b, c, y, x] = 0.5 + std * math.sqrt(-2.0 * math.log(u1)) * math.cos(angle)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    # The tails end at sqrt(-2 ln(1 / 65536)) = sqrt(32 ln 2) = 4.7096 standard deviations.
    assert float((out - 0.5).abs().max()) <= std * math.sqrt(32.0 * math.log(2.0))


# --- abstraction ------------------------------------------------------------------------------------------------


def test_white_is_quantised_to_the_centre_of_the_top_level():
    # floor(1 * 4) = 4 is level 4 of 0..3: held to 3, whose centre is 3.5 / 4 = 0.875; black is 0.5 / 4 = 0.125.
    # Kills: the top level left unheld ((4 + 0.5) / 4 = 1.125, clamped to 1).
    image = torch.cat((torch.zeros(1, 3, 4, 2, dtype=D), torch.ones(1, 3, 4, 2, dtype=D)), dim=-1)
    out = AF.edge_abstraction(image, full(4), full(0.0), full(0.0), full(0.1))
    torch.testing.assert_close(out[..., :2], torch.full((1, 3, 4, 2), 0.125, dtype=D), atol=0, rtol=0)
    torch.testing.assert_close(out[..., 2:], torch.full((1, 3, 4, 2), 0.875, dtype=D), atol=0, rtol=0)


def test_fewer_than_two_levels_are_two():
    # levels 1.5 rounds down to 1, held to the documented minimum of 2: centres 0.25 and 0.75.
    # Kills: a minimum of 1 level (everything 0.5).
    image = torch.cat((torch.full((1, 3, 4, 2), 0.2, dtype=D), torch.full((1, 3, 4, 2), 0.9, dtype=D)), dim=-1)
    out = AF.edge_abstraction(image, full(1.5), full(0.0), full(0.0), full(0.1))
    assert sorted(set(out.flatten().tolist())) == [0.25, 0.75]


@pytest.mark.parametrize("threshold, factor", [(0.1, 0.5), (0.4, 0.875)])
def test_edge_darkening_saturates_at_one_by_hand(threshold, factor):
    # A black-to-white step across columns, no smoothing: luma 0 | 1, so the Sobel x-derivative (kernel / 8) is
    # (1 + 2 + 1) / 8 = 0.5 on the two columns beside the step, 0 elsewhere. With strength 0.5 those columns are
    # scaled by 1 - 0.5 min((0.5 - t) / t, 1): t = 0.1 gives min(4, 1) = 1, factor 0.5; t = 0.4 gives 0.25, factor
    # 0.875. Levels 4: black 0.125, white 0.875.
    # Kills: min(., 2) for min(., 1) (t = 0.1 would give factor 0).
    image = torch.cat((torch.zeros(1, 3, 4, 3, dtype=D), torch.ones(1, 3, 4, 3, dtype=D)), dim=-1)
    out = AF.edge_abstraction(image, full(4), full(0.0), full(0.5), full(threshold))[0, 0]
    expected = torch.tensor([0.125, 0.125, 0.125 * factor, 0.875 * factor, 0.875, 0.875], dtype=D).expand(4, 6)
    torch.testing.assert_close(out, expected, atol=1e-9, rtol=0)


def test_the_gradient_on_a_flat_image_is_zero_not_nan():
    # On a flat image the Sobel gradient is exactly 0 and below any threshold: the edge term is clamped to 0 and the
    # levels are piecewise constant, so the output does not move with the image: its gradient is 0. The square root
    # of the gradient magnitude has an infinite slope at 0, so the magnitude needs its floor (1e-12) to keep that 0
    # from becoming 0 * inf = NaN.
    # Kills: sqrt(gx^2 + gy^2) without the floor.
    image = torch.full((1, 3, 5, 5), 0.4, dtype=D, requires_grad=True)
    AF.edge_abstraction(image, full(4), full(0.0), full(0.5), full(0.1)).sum().backward()
    assert torch.equal(image.grad, torch.zeros_like(image))


def test_fda_gives_a_coefficient_the_source_lacks_the_targets_amplitude_at_phase_zero():
    # A constant source has no energy off k = 0, so it has no phase to keep there: the window takes the target's
    # amplitude with phase 0. 4 x 4 images, beta 0.5: b = 2, the window holds k_x in {0, 1}, k_y in {0, +-1}. The
    # target 0.5 + 0.25 sin(pi x / 2) has amplitude 16 * 0.5 = 8 at k = 0 and 16 * 0.25 / 2 = 2 at k_x = 1; at phase
    # 0 that is 0.5 + 0.25 cos(pi x / 2) = 0.75, 0.5, 0.25, 0.5 along every row.
    # Kills: the zero-amplitude branch dropped (0 * ratio: the output would stay flat at 0.5).
    x = torch.arange(4, dtype=D)
    target = (0.5 + 0.25 * torch.sin(math.pi * x / 2)).expand(1, 3, 4, 4).contiguous()
    out = AF.fourier_domain_adaptation(torch.full((1, 3, 4, 4), 0.3, dtype=D), target, full(0.5))
    expected = torch.tensor([0.75, 0.5, 0.25, 0.5], dtype=D).expand(1, 3, 4, 4)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_fda_refuses_an_integer_target_by_name():
    # Kills: the target's dtype unchecked (a uint8 target's amplitude is 255 times too large).
    image = torch.rand(1, 3, 4, 4, dtype=D)
    with pytest.raises(TypeError, match="target"):
        AF.fourier_domain_adaptation(image, (image * 255).to(torch.uint8), full(0.5))
