"""The pure functions against references worked by hand or written out again, for what mutation testing found open.

Each test names the wrong variants of the code it tells apart (a mutant that the other tests let through). The
references never call the function under test: the hash and Box-Muller are written out on Python integers, the
interpolation kernels and the compositing formulas from their definitions, the quantile with `statistics` (the fBm and
cloud references build on single noise octaves, which the tests above them check on their own).
"""

import math

import torch

from augment.functional.noise import fractal_noise, hash_bits, hash_uniform, perlin_noise, value_noise

D = torch.float64


def full(value, n=1):
    return torch.full((n,), float(value), dtype=D)


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
