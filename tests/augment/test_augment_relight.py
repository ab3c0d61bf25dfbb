"""Relighting: normals of point maps and the sun + sky light model, against hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from augment import RandomSunRelight
from augment.functional import downsample_normals, sun_direction, sun_relight, surface_normals


def _plane(a: float, b: float, h: int = 6, w: int = 7) -> torch.Tensor:
    """The plane z = a x + b y as a camera above it sees it: x along the columns, y decreasing down
    the rows (image up = north for a camera looking down). (1, 3, H, W)."""
    y, x = torch.meshgrid(-torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([x, y, a * x + b * y])[None]


@pytest.mark.parametrize("a,b", [(0.0, 0.0), (2.0, 0.0), (-0.5, 1.5)])
def test_normals_of_a_plane_are_its_gradient_normal(a, b):
    n = surface_normals(_plane(a, b))
    want = torch.tensor([-a, -b, 1.0], dtype=torch.float64) / math.sqrt(a * a + b * b + 1.0)
    interior = n[0, :, 1:-1, 1:-1].reshape(3, -1)
    assert torch.allclose(interior, want[:, None].expand_as(interior), atol=1e-12)
    # the border has no central difference: 0
    assert n[0, :, 0].abs().sum() == 0 and n[0, :, :, -1].abs().sum() == 0


def test_normals_are_zero_next_to_missing_points():
    p = _plane(0.3, 0.1)
    p[0, :, 3, 3] = float("nan")
    n = surface_normals(p)
    for r, c in [(3, 3), (2, 3), (4, 3), (3, 2), (3, 4)]:
        assert n[0, :, r, c].abs().sum() == 0, (r, c)
    assert torch.allclose(torch.linalg.vector_norm(n[0, :, 1, 1]), torch.tensor(1.0, dtype=torch.float64))


def test_normals_reject_bad_shapes():
    with pytest.raises(ValueError, match="points"):
        surface_normals(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="valid"):
        surface_normals(torch.zeros(1, 3, 4, 5), valid=torch.ones(1, 5, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="`points` must be floating point"):  # was linalg.vector_norm's error
        surface_normals(torch.zeros(1, 3, 4, 5, dtype=torch.int64))


def test_downsampled_normals_stay_unit_and_keep_a_plane():
    n = surface_normals(_plane(1.0, 0.0, h=10, w=12))
    small = downsample_normals(n[:, :, 1:-1, 1:-1], (2, 5))
    want = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) / math.sqrt(2)
    assert torch.allclose(small[0].reshape(3, -1), want[:, None].expand(3, 10), atol=1e-12)


def test_sun_direction_east_north_up():
    s = sun_direction(torch.tensor([0.0, math.pi / 2, math.pi]), torch.tensor([0.0, 0.0, math.pi / 6]))
    want = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, -math.cos(math.pi / 6), 0.5]])
    assert torch.allclose(s, want, atol=1e-6)


def test_relight_worked_by_hand():
    # sun from the south-east at elevation 30 deg; sky share 0.25
    az, el = math.radians(135.0), math.radians(30.0)
    sun = sun_direction(torch.tensor([az]), torch.tensor([el]))
    normals = torch.zeros(1, 3, 1, 4)
    normals[0, :, 0, 0] = torch.tensor([0.0, 0.0, 1.0])  # flat ground: unchanged
    normals[0, :, 0, 1] = sun[0]  # facing the sun: cos = 1 -> 0.25 + 0.75 / sin(30) = 1.75
    normals[0, :, 0, 2] = torch.tensor([-math.sin(az), -math.cos(az), 0.0])  # a cliff facing away: sky only, 0.25
    # pixel 3: no geometry (sky): unchanged
    image = torch.full((1, 3, 1, 4), 0.4)
    out = sun_relight(image, normals, sun, torch.tensor([0.25]))
    assert torch.allclose(out[0, :, 0], torch.tensor([0.4, 0.7, 0.1, 0.4])[None].expand(3, 4), atol=1e-6)


def test_relight_clamps_and_overcast_is_identity():
    sun = sun_direction(torch.tensor([0.0]), torch.tensor([math.radians(10.0)]))
    normals = sun[:, :, None, None].expand(1, 3, 2, 2).clone()
    image = torch.full((1, 3, 2, 2), 0.5)
    assert sun_relight(image, normals, sun, torch.tensor([0.0])).max() == 1.0  # 0.5 / sin(10 deg) > 1
    assert torch.allclose(sun_relight(image, normals, sun, torch.tensor([1.0])), image)


def test_relight_rejects_mismatched_inputs():
    image = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="normals"):
        sun_relight(image, torch.zeros(2, 3, 4, 5), torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="sun"):
        sun_relight(image, torch.zeros(2, 3, 4, 4), torch.zeros(3), torch.zeros(2))


def test_relight_refuses_a_sun_below_the_horizon_or_not_a_unit_vector():
    # "unit vectors towards the sun, with a positive up component": a sun on or below the horizon had its up component
    # clamped to 1e-3, so a wall facing it came out 0.5 + 0.5 * 0.8 / 0.001 = 400 times brighter (white) and flat
    # ground half as bright, without a word
    image = torch.full((2, 3, 1, 2), 0.4)
    flat = torch.zeros(2, 3, 1, 2)
    flat[:, 2] = 1.0
    share = torch.full((2,), 0.5)
    up = torch.tensor([0.0, -0.8, 0.6])  # from the south, elevation asin(0.6)
    for bad, shown in (((0.0, -0.8, -0.6), r"\(0, -0.8, -0.6\)"), ((0.0, -1.0, 0.0), r"\(0, -1, 0\)"),
                       ((0.0, float("nan"), 0.6), r"\(0, nan, 0.6\)")):
        with pytest.raises(ValueError, match=r"sun must hold unit vectors towards the sun with a positive up "
                                             rf"component \(a sun above the horizon\), got sun\[1\] = {shown}"):
            sun_relight(image, flat, torch.stack([up, torch.tensor(bad)]), share)
    with pytest.raises(ValueError, match=r"sun must hold unit vectors .*got sun\[0\] = \(0, -1.6, 1.2\), of length 2"):
        sun_relight(image, flat, torch.stack([2.0 * up, up]), share)  # (az, el, ...) mistaken for a vector, say
    # a unit vector rounded to bfloat16 (lengths within 0.2 %) is a unit vector
    sun = sun_direction(torch.tensor([0.3, 2.0]), torch.tensor([0.2, 1.1])).bfloat16()
    assert sun_relight(image, flat, sun, share).shape == (2, 3, 1, 2)


def test_random_sun_relight_probability_and_int8_normals():
    torch.manual_seed(0)
    image = torch.full((64, 3, 2, 2), 0.3)
    wall = torch.zeros(64, 3, 2, 2, dtype=torch.int8)
    wall[:, 0] = 127  # a wall facing east: lit only by suns from the east half
    assert torch.equal(RandomSunRelight(p=0.0)(image, wall), image)
    out = RandomSunRelight(p=1.0, sky_share=0.4)(image, wall)
    changed = (out != image).flatten(1).any(1)
    assert changed.all()  # every image relit: 0.3 * 0.4 in the shade, brighter in the sun
    assert torch.allclose(out.min(), torch.tensor(0.12))
    half = RandomSunRelight(p=0.5)(image, wall)
    assert 10 < int((half != image).flatten(1).any(1).sum()) < 54


def test_random_sun_relight_validates_arguments():
    with pytest.raises(ValueError, match="sun_elevation"):
        RandomSunRelight(sun_elevation=(0.0, 30.0))
    with pytest.raises(ValueError, match="sky_share"):
        RandomSunRelight(sky_share=(0.2, 1.5))
    with pytest.raises(ValueError, match="p"):
        RandomSunRelight(p=2.0)
    with pytest.raises(ValueError, match="same shape"):
        RandomSunRelight()(torch.rand(1, 3, 4, 4), torch.zeros(1, 3, 4, 3))
    # Only int8 normals have a known scale (127); other integers or bools were used as unit vectors of
    # length 127 or 32767, and a missing or numpy array gave an AttributeError.
    for dtype in (torch.int16, torch.uint8, torch.bool):
        with pytest.raises(TypeError, match=f"`normals` must be float unit normals or int8.*got {dtype}"):
            RandomSunRelight()(torch.rand(1, 3, 4, 4), torch.zeros(1, 3, 4, 4, dtype=dtype))
    for bad, kind in ((None, "NoneType"), (np.zeros((1, 3, 4, 4), np.float32), "ndarray")):
        with pytest.raises(TypeError, match=f"`normals` must be a tensor .*got {kind}"):
            RandomSunRelight()(torch.rand(1, 3, 4, 4), bad)
    with pytest.raises(TypeError, match="normals must be float unit normals, got torch.int8"):
        sun_relight(torch.rand(1, 3, 4, 4), torch.zeros(1, 3, 4, 4, dtype=torch.int8), torch.zeros(1, 3),
                    torch.zeros(1))


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_random_sun_relight_makes_a_corrupt_image_all_nan_as_every_op_does(p):
    x = torch.rand(2, 3, 6, 8)
    x[1, 0, 2, 2] = float("nan")
    normals = torch.zeros(2, 3, 6, 8)
    normals[:, 2] = 1.0  # flat ground
    out = RandomSunRelight(p=p)(x, normals)
    assert out[1].isnan().all() and torch.isfinite(out[0]).all()


def _flat_and_wall(b: int = 4, h: int = 6, w: int = 8) -> torch.Tensor:
    normals = torch.zeros(b, 3, h, w)
    normals[:, 2, :, : w // 2] = 1.0  # flat ground on the left
    normals[:, 0, :, w // 2 :] = 1.0  # a wall facing east on the right
    return normals


def test_random_sun_relight_draws_in_the_order_it_always_did():
    # azimuth, elevation, sky share, then the coin of each image: a seeded training run relights as before
    image, normals = torch.rand(4, 3, 6, 8, generator=torch.Generator().manual_seed(1)), _flat_and_wall()
    torch.manual_seed(3)
    got = RandomSunRelight(p=0.6)(image, normals)
    torch.manual_seed(3)
    az, el, share, coin = (torch.rand(4) for _ in range(4))
    az, el, share = az * 360.0, 20.0 + 50.0 * el, 0.2 + 0.4 * share
    want = sun_relight(image, normals, sun_direction(torch.deg2rad(az), torch.deg2rad(el)), share)
    torch.testing.assert_close(got, torch.where((coin < 0.6)[:, None, None, None], want, image))


def test_random_sun_relight_replays_its_sun_on_another_image():
    # as a kornia op does with params=: the same sun on a paired image (another render of the same view)
    op = RandomSunRelight(p=1.0)
    image, other, normals = torch.rand(4, 3, 6, 8), torch.rand(4, 3, 6, 8), _flat_and_wall()
    first = op(image, normals)
    params = op._params
    torch.manual_seed(1234)  # the replay does not draw
    torch.testing.assert_close(op(image, normals, params=params), first)
    az, el = torch.deg2rad(params["sun_azimuth"]), torch.deg2rad(params["sun_elevation"])
    torch.testing.assert_close(op(other, normals, params=params),
                               sun_relight(other, normals, sun_direction(az, el), params["sky_share"]))
    with pytest.raises(ValueError, match=r"RandomSunRelight: params\['sun_azimuth'\] holds 4 values .* a batch of 2"):
        op(image[:2], normals[:2], params=params)
    with pytest.raises(ValueError, match=r"RandomSunRelight: params: expected the parameters of a call .* 'sky_share'"):
        op(image, normals, params={k: v for k, v in params.items() if k != "sky_share"})


def test_random_sun_relight_same_on_batch_and_unbatched_images():
    op = RandomSunRelight(p=1.0, same_on_batch=True)
    image = torch.rand(1, 3, 6, 8).expand(5, -1, -1, -1).contiguous()
    out = op(image, _flat_and_wall(5))
    assert all(torch.equal(out[i], out[0]) for i in range(5))  # one sun for the batch
    assert op._params["sun_azimuth"].unique().numel() == 1
    single = RandomSunRelight(p=1.0)
    torch.manual_seed(0)
    unbatched = single(image[0], _flat_and_wall(1)[0])
    torch.manual_seed(0)
    assert unbatched.shape == (3, 6, 8) and torch.equal(unbatched, single(image[:1], _flat_and_wall(1))[0])
    for flag in ("yes", 1):  # a TypeError naming the flag, as every other op raises
        with pytest.raises(TypeError, match=f"same_on_batch must be a bool, got {flag!r}"):
            RandomSunRelight(same_on_batch=flag)


def test_random_sun_relight_takes_its_documented_angle_bounds():
    # azimuth "within [-360, 360]", elevation "within [5, 90]" (90: the sun overhead)
    assert RandomSunRelight(sun_azimuth=(-90.0, 90.0), sun_elevation=(30.0, 90.0)).sun_elevation == (30.0, 90.0)
    with pytest.raises(ValueError, match=r"sun_azimuth must lie within \[-360.0, 360.0\]"):
        RandomSunRelight(sun_azimuth=(-400.0, 0.0))


def test_random_sun_relight_int8_normals_are_unit_normals_times_127():
    # 127 is the int8 scale: (127, 0, 0) is the unit normal (1, 0, 0) (a wall facing east), lit as the float one
    image = torch.rand(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    wall = torch.zeros(4, 3, 2, 2)
    wall[:, 0] = 1.0
    op = RandomSunRelight(p=1.0, sky_share=0.4)
    as_float = op(image, wall)
    torch.testing.assert_close(op(image, (127 * wall).to(torch.int8), params=op._params), as_float)


def test_normals_longer_than_unit_are_refused_and_float_normals_times_127_are_named():
    # int8 normals scaled by 127 cast to float (not divided) lit every slope 127 times brighter: white, no error.
    # By hand: a wall facing east at length 127 is 127 long; a normal mixed by resizing, (0.6, 0, 0.6), is shorter
    # than unit (0.85) and passes, as 0 (unknown) does.
    image = torch.full((1, 3, 1, 3), 0.4)
    sun = sun_direction(torch.tensor([1.0]), torch.tensor([0.5]))
    normals = torch.zeros(1, 3, 1, 3)
    normals[0, :, 0, 0] = torch.tensor([0.6, 0.0, 0.6])
    normals[0, 2, 0, 1] = 1.0
    assert sun_relight(image, normals, sun, torch.tensor([0.5])).shape == (1, 3, 1, 3)
    normals[0, :, 0, 1] = torch.tensor([127.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"^normals must be unit vectors \(0 where unknown\), got one of length 127; "
                                         r"int8 normals scaled by 127 cast to float: divide them by 127"):
        sun_relight(image, normals, sun, torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"^normals must be unit vectors \(0 where unknown\), got one of length 1.5$"):
        sun_relight(image, normals / 127.0 * 1.5, sun, torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"^RandomSunRelight: normals must be unit vectors .* length 127; int8"):
        RandomSunRelight(p=1.0)(image, normals)
    assert RandomSunRelight(p=1.0)(image, normals.to(torch.int8)).shape == (1, 3, 1, 3)  # int8: scaled by 127


def test_random_sun_relight_refuses_normals_of_another_batch_and_shows_its_arguments():
    with pytest.raises(ValueError, match=r"same shape expected, got \(1, 3, 4, 4\) and \(2, 3, 4, 4\)"):
        RandomSunRelight()(torch.rand(1, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    assert repr(RandomSunRelight(p=0.3, same_on_batch=True)).endswith("p=0.3, same_on_batch=True)")


def test_random_sun_relight_refuses_a_replayed_column_naming_the_shapes():
    # a (B, 1) column was "4 values ... for a batch of 4 images": true of its size, silent on its shape
    op = RandomSunRelight(p=1.0)
    image, normals = torch.rand(4, 3, 6, 8), _flat_and_wall()
    op(image, normals)
    params = {**op._params, "sky_share": op._params["sky_share"][:, None]}
    with pytest.raises(ValueError, match=r"params\['sky_share'\] must have one value per image, shape \(4,\), got "
                                         r"\(4, 1\)"):
        op(image, normals, params=params)


def test_random_sun_relight_refuses_replayed_values_it_would_not_draw_by_name():
    # replayed params were checked for their shape only: a sun at elevation 0 or below the horizon had its up
    # component clamped to 1e-3 (slopes facing it white); a sky share of 1.5 lit slopes facing away more than flat
    # ground and turned those facing a low sun black
    op = RandomSunRelight(p=1.0)
    image, normals = torch.rand(4, 3, 6, 8), _flat_and_wall()
    op(image, normals)
    params = op._params
    for name, value, bounds in (("sun_elevation", 0.0, r"\[5, 90\]"), ("sun_elevation", -30.0, r"\[5, 90\]"),
                                ("sky_share", 1.5, r"\[0, 1\]"), ("sun_azimuth", float("nan"), r"\[-360, 360\]")):
        edited = {**params, name: torch.tensor([params[name][0].item(), value, 0.5, 0.5])}
        with pytest.raises(ValueError, match=rf"RandomSunRelight: params\['{name}'\] must lie in {bounds}, the "
                                             rf"values the op accepts for {name}.*, got {value:g}"):
            op(image, normals, params=edited)
    for name in ("sun_elevation", "sky_share"):  # True / False where numbers are expected: entries swapped, say
        with pytest.raises(TypeError, match=rf"RandomSunRelight: params\['{name}'\] must hold a number per image, "
                                            r"got a torch.bool tensor"):
            op(image, normals, params={**params, name: torch.ones(4, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"RandomSunRelight: params\['batch_prob'\] must say whether each image is "
                                         r"relit: True or False \(1 or 0, as the kornia ops draw it\), got 0.3"):
        op(image, normals, params={**params, "batch_prob": torch.tensor([1.0, 0.3, 1.0, 0.0])})
    # what the op would draw is taken: whole-degree elevations as integers, a kornia op's coins (float 1 and 0)
    coins = torch.tensor([1.0, 0.0, 1.0, 0.0])
    whole = {**params, "sun_elevation": torch.tensor([30, 45, 60, 90]), "batch_prob": coins}
    out = op(image, normals, params=whole)
    sun = sun_direction(torch.deg2rad(params["sun_azimuth"]), torch.deg2rad(torch.tensor([30.0, 45.0, 60.0, 90.0])))
    want = sun_relight(image, normals, sun, params["sky_share"])
    torch.testing.assert_close(out[0::2], want[0::2])
    torch.testing.assert_close(out[1::2], image[1::2])  # not relit


def _exact_relight(image, normals, sun, share):
    """The module's formula, by hand in float64 on the image's own values."""
    n, s, a = normals.double(), sun.double(), share.double()[:, None, None, None]
    cos_i = (n * s[:, :, None, None]).sum(dim=1, keepdim=True).clamp_min(0.0)
    return (image.double() * (a + (1.0 - a) * cos_i / s[:, 2, None, None, None])).clamp(0.0, 1.0)


def _ulps_off(got, exact, bits):
    """The largest error of ``got`` in units in the last place of a float with ``bits`` significant bits."""
    ulp = 2.0 ** (torch.floor(torch.log2(exact.clamp_min(2.0 ** -14))) - (bits - 1))
    return float(((got.double() - exact).abs() / ulp).max())


def _slopes(g):
    normals = torch.randn(4, 3, 16, 16, generator=g)
    normals[:, 2] = normals[:, 2].abs() + 1.0  # slopes of every aspect, none overhanging
    return normals / torch.linalg.vector_norm(normals, dim=1, keepdim=True)


@pytest.mark.parametrize("dtype, bits", [(torch.bfloat16, 8), (torch.float16, 11)])
def test_relight_of_a_half_precision_image_is_the_exact_light_rounded_once(dtype, bits):
    # the light was computed in the image's dtype: with n . s and its ratio to sin(e) in bfloat16 (8 significant
    # bits) pixels came out up to 3.5 units in the last place (ulp) off, 0.009 (2 levels of 255); 6 ulp in float16
    g = torch.Generator().manual_seed(0)
    image = (0.05 + 0.8 * torch.rand(4, 3, 16, 16, generator=g)).to(dtype)
    normals = _slopes(g)
    sun = sun_direction(torch.tensor([0.3, 1.9, 3.5, 5.2]), torch.deg2rad(torch.tensor([20.0, 35.0, 50.0, 70.0])))
    share = torch.tensor([0.2, 0.3, 0.4, 0.6])
    got = sun_relight(image, normals, sun, share)
    assert got.dtype == dtype
    worst = _ulps_off(got, _exact_relight(image, normals, sun, share), bits)
    assert worst <= 0.5 + 1e-3, f"{worst:.2f} ulp off"  # rounded once, to the nearest


@pytest.mark.parametrize("int8", [False, True])
def test_random_sun_relight_of_a_bfloat16_image_keeps_its_normals_precision(int8):
    # float32 normals were rounded to bfloat16, int8 ones divided by 127 in bfloat16, before the light was computed
    g = torch.Generator().manual_seed(1)
    image = (0.05 + 0.8 * torch.rand(4, 3, 16, 16, generator=g)).bfloat16()
    normals = _slopes(g)
    if int8:
        normals = (127.0 * normals).round().to(torch.int8)
    op = RandomSunRelight(p=1.0)
    got = op(image, normals)
    params = op._params
    sun = sun_direction(torch.deg2rad(params["sun_azimuth"].double()), torch.deg2rad(params["sun_elevation"].double()))
    exact = _exact_relight(image, normals.double() / (127.0 if int8 else 1.0), sun, params["sky_share"])
    worst = _ulps_off(got, exact, 8)
    assert worst <= 0.5 + 1e-3, f"{worst:.2f} ulp off"
