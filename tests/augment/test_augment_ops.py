"""kornia-style tests shared by every op class: smoke, cardinality, p=0, range, seeds, gradcheck, compile, errors."""

import math

import numpy as np
import pytest
import torch
from kornia.augmentation import AugmentationSequential


DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def test_smoke(op_name, ops, make_image):
    op = ops[op_name](p=1.0)
    out = op(make_image(2, 3, 16, 16))
    assert out.shape == (2, 3, 16, 16)
    assert op_name in type(op).__name__.lower() or repr(op)


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 3, 16, 12), (3, 3, 9, 17)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cardinality(op_name, shape, dtype, ops, make_image):
    op = ops[op_name](p=1.0)
    out = op(make_image(*shape, dtype=dtype))
    assert out.shape == shape
    assert out.dtype == dtype
    assert torch.isfinite(out.float()).all()
    assert out.min() >= 0 and out.max() <= 1


def test_keepdim_unbatched(op_name, ops, make_image):
    op = ops[op_name](p=1.0, keepdim=True)
    out = op(make_image(3, 12, 12))
    assert out.shape == (3, 12, 12)


def test_p0_is_identity(op_name, ops, make_image):
    x = make_image(3, 3, 16, 16)
    assert torch.equal(ops[op_name](p=0.0)(x), x)


def test_changes_the_image(op_name, ops, make_image):
    x = make_image(2, 3, 16, 16, low=0.1, high=0.9)
    # FDA's window b = floor(beta * 16) is empty at the default beta on a 16-pixel image.
    kwargs = {"beta": (0.1, 0.3)} if op_name == "fda" else {}
    assert not torch.allclose(ops[op_name](p=1.0, **kwargs)(x), x)


def test_output_finite_in_unit_range_on_extremes(op_name, ops, make_image):
    torch.manual_seed(3)
    for x in (torch.zeros(2, 3, 16, 16), torch.ones(2, 3, 16, 16), make_image(2, 3, 16, 16)):
        out = ops[op_name](p=1.0)(x)
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


def test_same_seed_same_output(op_name, ops, make_image):
    x = make_image(4, 3, 16, 16)
    torch.manual_seed(42)
    a = ops[op_name](p=0.5)(x)
    torch.manual_seed(42)
    b = ops[op_name](p=0.5)(x)
    assert torch.equal(a, b)
    torch.manual_seed(43)
    c = ops[op_name](p=1.0)(x)
    assert not torch.equal(a, c)


def test_replay_with_params(op_name, ops, make_image):
    x = make_image(3, 3, 16, 16)
    op = ops[op_name](p=0.7)
    first = op(x)
    torch.manual_seed(1234)  # the replay must not depend on the global RNG
    assert torch.equal(op(x, params=op._params), first)


def test_unknown_keyword_raises_naming_it(op_name, ops, make_image):
    # kornia drops a keyword that names no parameter: a generator= would seed nothing.
    x = make_image(2, 3, 16, 16)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['generator'\].*torch.manual_seed"):
        ops[op_name](p=1.0)(x, generator=torch.Generator().manual_seed(0))


def test_keyword_overrides_the_drawn_parameter(op_name, ops, make_image):
    # A keyword naming a drawn parameter replaces it: the replay of one image's draws on the whole batch.
    x = make_image(1, 3, 16, 16).expand(3, -1, -1, -1).contiguous()
    op = ops[op_name](p=1.0)
    op(x)
    drawn = {k: v for k, v in op._params.items() if k not in ("batch_prob", "forward_input_shape")}
    first = {k: v[:1].expand(len(x), *v.shape[1:]).clone() for k, v in drawn.items()}
    out = op(x, **first)
    torch.testing.assert_close(out[1:], out[:1].expand(2, -1, -1, -1))


def test_a_keyword_override_that_is_not_a_tensor_is_refused_by_name(ops, make_image):
    # op(x, opacity=0.5) failed deep inside with "'float' object has no attribute 'to'"
    x = make_image(2, 3, 8, 8)
    for value in (0.5, [0.5, 0.6]):
        with pytest.raises(TypeError, match=r"RandomClouds: opacity= .* a tensor with one value per image, shape "
                                            r"\(2,\), got (float|list)"):
            ops["clouds"](p=1.0)(x, opacity=value)
    with pytest.raises(TypeError, match=r"RandomClouds: seed= .* got int"):
        ops["clouds"](p=1.0)(x, seed=3)


def test_a_replayed_parameter_edited_to_a_number_is_refused_by_name(ops, make_image):
    # op(x, params={**op._params, "opacity": 0.5}) failed deep inside with "'float' object has no attribute 'to'"
    x = make_image(2, 3, 8, 8)
    op = ops["clouds"](p=1.0)
    op(x)
    with pytest.raises(TypeError, match=r"RandomClouds: params\['opacity'\] must be a tensor with one value per "
                                        r"image, got float 0.5"):
        op(x, params={**op._params, "opacity": 0.5})
    with pytest.raises(TypeError, match=r"RandomClouds: params\['seed'\] must be a tensor .* got int 3"):
        op(x, params={**op._params, "seed": 3})


def test_same_on_batch(op_name, ops, make_image):
    x = make_image(1, 3, 16, 16).expand(3, -1, -1, -1).contiguous()
    kwargs = {"beta": (0.1, 0.3)} if op_name == "fda" else {}
    out = ops[op_name](p=1.0, same_on_batch=True, **kwargs)(x)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    different = ops[op_name](p=1.0, same_on_batch=False, **kwargs)(x)
    assert not torch.equal(different[0], different[1])


def test_masks_pass_through_sequential(op_name, ops, make_image):
    x = make_image(2, 3, 16, 16)
    mask = (make_image(2, 1, 16, 16, seed=5) > 0.5).float()
    seq = AugmentationSequential(ops[op_name](p=1.0), data_keys=["input", "mask"])
    out, mask_out = seq(x, mask)
    assert out.shape == x.shape
    assert torch.equal(mask_out, mask)
    replay, mask_replay = seq(x, mask, params=seq._params)
    assert torch.equal(replay, out) and torch.equal(mask_replay, mask)


def test_gradcheck(op_name, ops, make_image):
    if op_name == "abstraction":
        pytest.skip("piecewise-constant quantisation: tested for a finite gradient instead")
    torch.manual_seed(0)
    op = ops[op_name](p=1.0, **({"beta": (0.2, 0.3)} if op_name == "fda" else {}))
    x = make_image(1, 3, 6, 6, dtype=torch.float64, low=0.3, high=0.6).requires_grad_(True)
    op(x.detach())  # draw the parameters once
    params = op._params
    assert torch.autograd.gradcheck(lambda t: op(t, params=params), (x,), eps=1e-6, atol=1e-4, fast_mode=True)


def test_abstraction_gradient_finite(ops, make_image):
    op = ops["abstraction"](p=1.0)
    x = make_image(1, 3, 8, 8).requires_grad_(True)
    op(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_compiled_equals_eager(op_name, ops, make_image):
    torch._dynamo.reset()
    op = ops[op_name](p=1.0)
    x = make_image(2, 3, 16, 16)
    eager = op(x)
    params = op._params
    compiled = torch.compile(op, backend="aot_eager")
    torch.testing.assert_close(compiled(x, params=params), eager, atol=1e-5, rtol=1e-5)


def test_a_fresh_op_compiles_as_one_graph(op_name, ops, make_image):
    # the first call's check of the pixel range read a value (float(x.min())): fullgraph=True refused it with
    # "Could not guard on data-dependent expression"
    if ops[op_name](p=1.0)._needs_seed:
        pytest.skip("its per-image noise hash is kept out of compiled graphs (torch.compiler.disable)")
    torch._dynamo.reset()
    x = make_image(2, 3, 16, 16)
    torch.manual_seed(0)
    eager = ops[op_name](p=1.0)(x)
    torch.manual_seed(0)
    compiled = torch.compile(ops[op_name](p=1.0), backend="eager", fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compiled_inductor_equals_eager(op_name, ops, make_image):
    torch._dynamo.reset()
    op = ops[op_name](p=1.0)
    x = make_image(2, 3, 16, 16)
    eager = op(x)
    compiled = torch.compile(op)
    torch.testing.assert_close(compiled(x, params=op._params), eager, atol=1e-4, rtol=1e-4)


def test_integer_input_raises(op_name, ops, make_image):
    with pytest.raises(TypeError, match="input"):
        ops[op_name](p=1.0)(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize("channels", [1, 4])
def test_wrong_channel_count_raises(op_name, channels, ops, make_image):
    with pytest.raises(ValueError, match="input.*3"):
        ops[op_name](p=1.0)(torch.rand(1, channels, 8, 8))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bad_probability_raises(op_name, p, ops, make_image):
    with pytest.raises(ValueError, match="p must"):
        ops[op_name](p=p)


BAD_ARGUMENTS = {
    "clouds": [("opacity", (0.9, 0.1)), ("opacity", (-0.2, 0.5)), ("coverage", (0.0, 1.5)), ("scale", (0.0, 2.0))],
    "snow": [("amount", (0.8, 0.2)), ("amount", -0.1), ("brightness", (0.5, 2.0))],
    "season": [("autumn", (1.0, 0.0)), ("winter", (-0.5, 0.5)), ("tint", (0.0, 2.0))],
    "haze": [("density", (0.5, 0.1)), ("density", (-1.0, 0.1)), ("horizon", (0.0, 1.0))],
    "illumination": [("gamma", (1.5, 0.5)), ("gamma", (-1.0, 1.0)), ("sun_elevation", (0.0, 45.0))],
    "camera": [("noise_std", (0.1, 0.0)), ("noise_std", (-0.1, 0.1)), ("blur_sigma", (0.0, 50.0))],
    "abstraction": [("levels", (8.0, 3.0)), ("levels", (1.0, 4.0)), ("edge_strength", (-0.5, 0.5))],
    "fda": [("beta", (0.1, 0.01)), ("beta", (-0.1, 0.1))],
}


@pytest.mark.parametrize(
    "op_and_arg", [(name, arg, value) for name, args in sorted(BAD_ARGUMENTS.items()) for arg, value in args]
)
def test_bad_range_raises_naming_argument(op_and_arg, ops, make_image):
    name, arg, value = op_and_arg
    with pytest.raises(ValueError, match=arg):
        ops[name](**{arg: value})


def test_non_numeric_range_raises(ops, make_image):
    with pytest.raises(TypeError, match="opacity"):
        ops["clouds"](opacity="dense")


@pytest.mark.parametrize("value", [
    torch.tensor([0.5, 0.9]), np.array([0.5, 0.9]), np.array([0.5, 0.9], np.float32)])
def test_a_range_given_as_a_tensor_or_an_array_is_read_as_a_pair(value, ops):
    # as kornia reads its own ranges: K.ColorJitter(brightness=torch.tensor([0.8, 1.2])) works
    op = ops["clouds"](opacity=value)
    assert op._ranges["opacity"] == pytest.approx((0.5, 0.9))


@pytest.mark.parametrize("value", [torch.tensor(0.7), np.float32(0.7), np.array(0.7)])
def test_a_zero_dimensional_tensor_or_array_is_a_number(value, ops):
    assert ops["clouds"](opacity=value)._ranges["opacity"] == pytest.approx((0.7, 0.7))


@pytest.mark.parametrize("value", [torch.tensor([0.5, 0.7, 0.9]), np.array([[0.5, 0.9]]), torch.tensor([True, False])])
def test_a_tensor_or_array_that_is_not_a_pair_is_refused_by_name(value, ops):
    with pytest.raises(TypeError, match="opacity must be a number or a pair of numbers"):
        ops["clouds"](opacity=value)


@pytest.mark.parametrize("name", ["camera", "abstraction"])
def test_inside_autocast_the_ops_still_compute_in_float32(name, ops, make_image):
    # a training step's `with torch.autocast(...)` around the augmentation: the same drawn parameters must give
    # the same image (the blur's convolutions ran in bf16: a whole posterisation level off)
    op = ops[name](p=1.0)
    x = make_image(2, 3, 32, 32)
    torch.manual_seed(0)
    expected = op(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = op(x, params=op._params)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_an_op_cast_to_bfloat16_draws_within_its_ranges(ops):
    # levels are drawn in [low, high + 0.999) and floored; in bf16 high + 0.999 = 8.999 rounds to 9.0
    op = ops["abstraction"](levels=(3, 8), p=1.0).to(torch.bfloat16)
    torch.manual_seed(0)
    levels = op.forward_parameters(torch.Size((4000, 3, 4, 4)))["levels"]
    assert torch.floor(levels.float()).max() == 8 and torch.floor(levels.float()).min() == 3


def test_the_repr_shows_every_argument_as_given(ops):
    # ranges were rounded to 4 figures (0.1235) and octaves and the bank left out
    text = repr(ops["clouds"](opacity=(0.12345, 0.5), octaves=2, p=0.3))
    assert text.startswith("RandomClouds(opacity=(0.12345, 0.5), ") and "octaves=2" in text and "p=0.3" in text
    assert "bank=<Tensor (3, 3, 24, 24)>" in repr(ops["fda"](beta=(0.01, 0.05)))


def test_haze_airlight_is_grey_with_a_blue_cast():
    # RandomHaze's airlight for grey g and blue cast c: (g (1 - c), g (1 - c / 2), g) (red reduced by c, green by
    # half). On black ground out = airlight * (1 - t), t = exp(-density * (1 - h) / (v - h)) for the row centre v.
    import augment

    g, c, density, horizon = 0.8, 0.4, 0.5, -1.0
    out = augment.RandomHaze(density=density, horizon=horizon, airlight=g, blue=c, p=1.0)(
        torch.zeros(1, 3, 8, 4, dtype=torch.float64))
    airlight = torch.tensor([g * (1 - c), g * (1 - c / 2), g], dtype=torch.float64)
    for row in (0, 3, 7):
        v = (row + 0.5) / 8
        t = math.exp(-density * (1 - horizon) / (v - horizon))
        torch.testing.assert_close(out[0, :, row, 1], airlight * (1 - t), atol=1e-6, rtol=0)  # float32 draws


def test_illumination_angles_are_degrees():
    # Azimuth 90 deg (the sun at the image's right) and elevation 40 deg on a ramp rising a per column: the
    # Lambertian shade n . s / s_z with n = (-relief * a, 0, 1) / norm and s = (cos e, 0, sin e), e in radians.
    import augment

    width, a, relief, elevation = 12, 0.02, 10.0, math.radians(40.0)
    ramp = 0.3 + a * torch.arange(width, dtype=torch.float64)
    image = ramp.view(1, 1, 1, -1).expand(1, 3, 6, width).contiguous()
    op = augment.RandomIllumination(sun_azimuth=90.0, sun_elevation=40.0, relief=relief, gamma=1.0, exposure=0.0,
                                    p=1.0)
    out = op(image)
    shade = (-relief * a * math.cos(elevation) + math.sin(elevation)) / (math.hypot(relief * a, 1.0)
                                                                         * math.sin(elevation))
    torch.testing.assert_close(out[0, :, 2:4, 2:-2], image[0, :, 2:4, 2:-2] * shade, atol=1e-6, rtol=0)  # float32 draws


def test_camera_temperature_and_tint_gains():
    # Documented white balance: red gain 1 + t, green 1 + tint, blue 1 - t (warm: t > 0 reddens). Nothing else
    # on: a grey 0.5 image comes out 0.5 * gains.
    import augment

    op = augment.RandomCameraEffects(temperature=0.2, tint=0.1, vignetting=0.0, noise_std=0.0, blur_sigma=0.0, p=1.0)
    out = op(torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64))
    expected = torch.tensor([0.5 * 1.2, 0.5 * 1.1, 0.5 * 0.8], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected.expand(1, 3, 4, 4), atol=1e-6, rtol=0)  # float32 draws


@pytest.mark.parametrize("value, error, message", [
    (True, TypeError, "opacity must be a number or a pair of numbers"),  # a bool is not a number of a range
    (("low", "high"), TypeError, "opacity must be a number or a pair of numbers"),  # was float()'s ValueError
    (("0.1", "0.5"), TypeError, "opacity must be a number or a pair of numbers"),  # text, as "0.5" alone: was read
    ((float("nan"), 0.5), ValueError, "opacity must be finite"),  # nan compares False with both bounds
])
def test_a_bool_words_or_nan_as_a_range_are_refused_by_name(value, error, message, ops):
    with pytest.raises(error, match=message):
        ops["clouds"](opacity=value)


def test_p_and_the_flags_take_a_number_and_bools_only(ops):
    with pytest.raises(TypeError, match=r"p must be a number in \[0, 1\], got bool True"):
        ops["clouds"](p=True)
    with pytest.raises(TypeError, match=r"p must be a number in \[0, 1\], got str '0.5'"):  # a type, not a value
        ops["clouds"](p="0.5")
    for value in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\], got"):
            ops["clouds"](p=value)
    with pytest.raises(TypeError, match="same_on_batch must be a bool, got 'yes'"):
        ops["clouds"](same_on_batch="yes")
    with pytest.raises(TypeError, match="keepdim must be a bool, got 1"):
        ops["clouds"](keepdim=1)


def test_check_per_image_wants_the_whole_shape():
    from augment._checks import check_per_image

    check_per_image(torch.zeros(2, 3), "shift", 2, trailing=(3,))
    with pytest.raises(ValueError, match=r"shift must have shape \(2, 3\), got \(2, 1\)"):
        check_per_image(torch.zeros(2, 1), "shift", 2, trailing=(3,))  # right batch, wrong row
    with pytest.raises(TypeError, match="shift must be a tensor with one value per image, got list"):
        check_per_image([0.0, 0.0], "shift", 2)


def test_poison_non_finite_keeps_an_unbatched_output_unbatched():
    from augment._base import poison_non_finite

    x = torch.rand(3, 4, 4)
    x[1, 2, 2] = float("inf")
    out = poison_non_finite(x, x.clamp(0, 1))
    assert out.shape == (3, 4, 4) and out.isnan().all()
    assert torch.equal(poison_non_finite(x.nan_to_num(), x.nan_to_num().clamp(0, 1)), x.nan_to_num().clamp(0, 1))


def test_a_float64_op_draws_float64_parameters_and_integer_seeds_below_2_to_the_24(ops):
    # _base: "Seeds are drawn as integers in [0, 2**24): exact in float32"; a float64 op draws in float64
    params = ops["clouds"](p=1.0).to(torch.float64).forward_parameters(torch.Size((2000, 3, 4, 4)))
    assert params["opacity"].dtype == torch.float64
    seed = params["seed"]
    assert torch.equal(seed, seed.floor()) and seed.min() >= 0 and seed.max() < 2**24
    assert seed.max() > 2**23  # 2000 draws spread over the range: about 1000 of them above half of it


def test_an_op_without_noise_draws_no_seed(ops, make_image):
    op = ops["haze"](p=1.0)
    op(make_image(2, 3, 8, 8))
    assert set(op._params) == {"density", "horizon", "airlight", "blue", "batch_prob", "forward_input_shape"}


def test_an_unbatched_image_replays_its_parameters(op_name, ops, make_image):
    # one (3, H, W) image has a batch of 1: its own parameters (one value each) replay on it
    op = ops[op_name](p=1.0, keepdim=True)
    x = make_image(3, 12, 12)
    first = op(x)
    assert torch.equal(op(x, params=op._params), first)


def test_a_replayed_seed_of_another_batch_size_is_named(ops, make_image):
    op = ops["clouds"](p=1.0)
    x = make_image(2, 3, 8, 8)
    op(x)
    params = {**op._params, "seed": op._params["seed"][:1]}  # only the seed was cut
    with pytest.raises(ValueError, match=r"RandomClouds: params\['seed'\] holds 1 values .* a batch of 2 images"):
        op(x, params=params)


def test_replayed_values_on_the_bounds_are_accepted(ops, make_image):
    # the bounds are closed: "must lie in [0, 1]"; opacity 0 (no cloud) and 1 (opaque) replay
    op = ops["clouds"](p=1.0)
    x = make_image(2, 3, 8, 8)
    op(x)
    out = op(x, params={**op._params, "opacity": torch.tensor([0.0, 1.0])})
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_save_kwargs_keeps_the_override_in_params(ops, make_image):
    # kornia: "overwriting parameters in kwargs will not be recorded ... pass save_kwargs=True additionally"
    op = ops["haze"](p=1.0)
    x = make_image(2, 3, 8, 8)
    op(x)
    density = torch.tensor([0.25, 0.5])
    op(x, density=density, save_kwargs=True)
    assert torch.equal(op._params["density"], density)


def test_an_integer_or_bool_parameter_is_held_to_the_ops_bounds(ops, make_image):
    # an integer tensor skipped the check: opacity 7 was taken (and clamped); it is read as the number 7
    op = ops["clouds"](p=1.0)
    x = make_image(2, 3, 8, 8)
    op(x)
    with pytest.raises(ValueError, match=r"RandomClouds: params\['opacity'\] must lie in \[0, 1\].* got 7"):
        op(x, opacity=torch.full((2,), 7))
    with pytest.raises(ValueError, match=r"params\['blue'\] must lie in \[0, 0.5\].* got 1"):
        ops["haze"](p=1.0)(x, blue=torch.tensor([True, False]))  # True is 1
    op(x, opacity=torch.tensor([0, 1]))  # in bounds: taken as 0.0 and 1.0


def test_edge_abstraction_replays_its_own_draws_at_256_levels(ops):
    # levels are drawn in [256, 256.999) and floored: each image has 256 levels, and its draws replay. A grey
    # 0.5 at 256 levels, without smoothing or edges, is the centre of its level: (floor(0.5 * 256) + 0.5) / 256
    op = ops["abstraction"](levels=256, smoothing=0.0, edge_strength=0.0, p=1.0)
    x = torch.full((2, 3, 6, 6), 0.5)
    first = op(x)
    assert torch.allclose(first, torch.full_like(x, 128.5 / 256))
    assert torch.equal(op(x, params=op._params), first)


def test_edge_abstraction_levels_are_whole_numbers(ops, make_image):
    # "every integer in the range is equally likely": (2.5, 3.5) holds one, 3, but 2 and 4 levels were drawn too
    with pytest.raises(ValueError, match=r"levels must be whole numbers .* got \(2.5, 3.5\)"):
        ops["abstraction"](levels=(2.5, 3.5))
    with pytest.raises(ValueError, match=r"levels must be whole numbers"):
        ops["abstraction"](levels=4.5)
    op = ops["abstraction"](levels=(3.0, 4.0), p=1.0)  # whole numbers given as floats, as a config gives them
    levels = op.forward_parameters(torch.Size((500, 3, 4, 4)))["levels"].floor()
    assert set(levels.tolist()) == {3.0, 4.0}


def test_another_ops_parameters_are_refused_naming_the_op_they_were_given_to(op_name, ops, make_image):
    # "params: expected the parameters of a call of this op" did not say which op, inside a pipeline of several
    op = ops[op_name](p=1.0)
    other = ops["clouds" if op_name == "haze" else "haze"](p=1.0)
    x = make_image(2, 3, 16, 16)
    other(x)
    with pytest.raises(ValueError, match=rf"^{type(op).__name__}: params: expected the parameters of a call of this "
                                         r"op \(its `_params` after the call\), got none named '\w+' among \["):
        op(x, params=other._params)
