"""SimToReal: the strength knob, reproducibility, masks, and its public exports."""

import pytest
import torch
from kornia.augmentation import AugmentationSequential

import augment


def test_strength_zero_is_identity(make_image):
    x = make_image(4, 3, 16, 16)
    assert torch.equal(augment.SimToReal(strength=0.0, p=1.0)(x), x)


def test_output_in_range_and_changed(make_image):
    torch.manual_seed(0)
    x = make_image(4, 3, 24, 24)
    out = augment.SimToReal(strength=1.0, p=1.0, bank=torch.rand(2, 3, 32, 32))(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x)


def test_strength_scales_the_change(make_image):
    x = make_image(8, 3, 24, 24, low=0.2, high=0.8)
    changes = []
    for strength in (0.2, 1.0):
        torch.manual_seed(1)
        changes.append(float((augment.SimToReal(strength=strength, p=1.0)(x) - x).abs().mean()))
    assert changes[0] < changes[1]


def test_the_edge_abstraction_is_whole_at_any_strength_and_only_its_share_of_images_is_set():
    # Documented exception to "strength scales every magnitude": posterising has no neutral level, so the edge
    # abstraction keeps its full ranges at any strength > 0 and is applied to p * 0.2 of the images.
    default = augment.RandomEdgeAbstraction()
    for strength in (0.01, 0.5, 1.0):
        edges = dict(augment.SimToReal(strength=strength, p=0.5).named_children())["RandomEdgeAbstraction_5"]
        assert edges._ranges == default._ranges and edges.p == pytest.approx(0.1)
    haze = dict(augment.SimToReal(strength=0.01, p=0.5).named_children())["RandomHaze_4"]
    assert haze._ranges["density"] == pytest.approx((0.01 * 0.05, 0.01 * 0.6))  # the others are scaled


def test_reproducible_and_masks_pass(make_image):
    x = make_image(3, 3, 16, 16)
    mask = torch.randint(0, 2, (3, 1, 16, 16)).float()
    seq = AugmentationSequential(augment.SimToReal(strength=0.8), data_keys=["input", "mask"])
    torch.manual_seed(5)
    a, mask_a = seq(x, mask)
    torch.manual_seed(5)
    b, _ = seq(x, mask)
    assert torch.equal(a, b) and torch.equal(mask_a, mask)


@pytest.mark.parametrize("strength, error", [(-0.1, ValueError), (1.5, ValueError), ("strong", TypeError)])
def test_bad_strength(strength, error):
    with pytest.raises(error, match="strength"):
        augment.SimToReal(strength=strength)


def test_bad_bank():
    with pytest.raises(TypeError, match="bank"):
        augment.SimToReal(bank=torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="bank"):
        augment.FourierDomainAdaptation(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="bank"):
        augment.FourierDomainAdaptation(torch.rand(2, 3, 8, 8) * 3)
    bank = torch.rand(2, 3, 8, 8)
    bank[0, 0, 0, 0] = float("nan")  # it would turn the clean images that draw it into NaN
    with pytest.raises(ValueError, match=r"bank must hold images in \[0, 1\], got 1 NaN value\(s\)"):
        augment.FourierDomainAdaptation(bank)


def test_fda_resizes_the_bank(make_image):
    out = augment.FourierDomainAdaptation(torch.rand(2, 3, 40, 30), beta=0.2, p=1.0)(make_image(2, 3, 16, 16))
    assert out.shape == (2, 3, 16, 16)


def test_top_level_exports_and_no_topoloc():
    for name in augment.__all__:
        assert hasattr(augment, name)
    import subprocess
    import sys

    code = ("import sys, augment, augment.functional; assert 'topoloc' not in sys.modules; "
            "assert 'albumentations' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_scalars_are_numbers_too():
    np = pytest.importorskip("numpy")
    x = torch.rand(2, 3, 16, 16)
    torch.manual_seed(0)
    a = augment.SimToReal(strength=np.float32(0.5), p=np.float32(0.5))(x)
    torch.manual_seed(0)
    b = augment.SimToReal(strength=0.5, p=0.5)(x)
    assert torch.equal(a, b)
    assert augment.RandomClouds(octaves=np.int64(3)).octaves == 3
    assert augment.RandomHaze(density=np.float64(0.3)) is not None
    with pytest.raises(ValueError, match="octaves must be an integer"):
        augment.RandomClouds(octaves=np.float32(3.0))


def test_inputs_of_another_type_or_shape_are_refused_by_name():
    from augment import RandomHaze, SimToReal

    x = torch.rand(1, 3, 8, 8)
    # kornia read a numpy batch (1, 3, 8, 8) as an (H, W, C) image and complained about 8 channels; a list
    # gave an AttributeError; a 5-D batch kornia's "input shape expected to be in (2, 4)".
    for op in (RandomHaze(p=1.0), SimToReal()):
        with pytest.raises(TypeError, match=f"^{type(op).__name__}: input must be a torch.Tensor, got ndarray"):
            op(x.numpy())
        with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
            op(x.tolist())
        with pytest.raises(ValueError, match=r"input must have shape \(B, 3, H, W\) or \(3, H, W\), got \(1, 1, 3,"):
            op(x[None])
    # Parameters replayed from another op name what is missing (was a KeyError).
    with pytest.raises(ValueError, match=r"params: expected the parameters of a call of this op .* 'airlight'"):
        RandomHaze(p=1.0)(x, params={"batch_prob": torch.ones(1), "density": torch.ones(1)})
    haze = RandomHaze(p=1.0)
    first = haze(x)
    torch.testing.assert_close(haze(x, params=haze._params), first)  # a real replay still works


def test_replayed_params_are_held_to_the_ops_bounds():
    from augment import RandomHaze, RandomIllumination, SimToReal

    x = torch.rand(1, 3, 8, 8)
    haze = RandomHaze(p=1.0)
    haze(x)
    # Replayed parameters edited by hand are held to the bounds the op's ranges are: the functional domain
    # (haze horizon < 1, illumination gamma > 0) used to be bypassed by a class op's replay, silently.
    params = {k: v.clone() for k, v in haze._params.items()}
    params["horizon"] = torch.tensor([1.5])
    with pytest.raises(ValueError, match=r"RandomHaze: params\['horizon'\] must lie in \[-5, 0.9\].* got 1.5"):
        haze(x, params=params)
    light = RandomIllumination(p=1.0)
    light(x)
    params = {k: v.clone() for k, v in light._params.items()}
    params["gamma"] = torch.tensor([float("nan")])
    with pytest.raises(ValueError, match=r"params\['gamma'\] must lie in \[0.1, 10\].* got nan"):
        light(x, params=params)
    # ... and so are those replayed through SimToReal, whose container calls its ops without their forward.
    seq = SimToReal(strength=1.0, p=1.0)
    first = seq(x)
    torch.testing.assert_close(seq(x, params=seq._params), first)
    for item in seq._params:
        if item.name.startswith("RandomIllumination"):
            item.data["gamma"] = torch.tensor([-1.0])
    with pytest.raises(ValueError, match=r"RandomIllumination: params\['gamma'\] must lie in \[0.1, 10\]"):
        seq(x, params=seq._params)


def test_a_keyword_override_is_held_to_the_ops_bounds():
    from augment import RandomClouds

    x = torch.rand(2, 3, 8, 8)
    clouds = RandomClouds(p=1.0)
    clouds(x)
    # op(x, opacity=...) replaces the drawn opacity as params= does: it was taken unchecked and clamped
    with pytest.raises(ValueError, match=r"RandomClouds: params\['opacity'\] must lie in \[0, 1\].* got 7"):
        clouds(x, opacity=torch.full((2,), 7.0))


def test_parameters_of_another_batch_size_are_refused_naming_both_sizes():
    from augment import RandomClouds

    clouds = RandomClouds(p=1.0)
    clouds(torch.rand(2, 3, 8, 8))
    # it said "seed must have one value per image, shape (3,), got (2,)": a parameter the user never passed
    with pytest.raises(ValueError, match=r"RandomClouds: params\['\w+'\] holds 2 values .* a batch of 3 images"):
        clouds(torch.rand(3, 3, 8, 8), params=clouds._params)
    clouds(torch.rand(2, 3, 8, 8), params=clouds._params)  # as many images: replayed


def test_params_replayed_through_a_kornia_container_are_held_to_the_ops_bounds():
    from kornia.augmentation import AugmentationSequential

    from augment import RandomClouds

    x = torch.rand(2, 3, 8, 8)
    seq = AugmentationSequential(RandomClouds(p=1.0))
    first = seq(x)
    torch.testing.assert_close(seq(x, params=seq._params), first)  # a faithful replay
    seq._params[0].data["opacity"] = torch.full((2,), 7.0)  # edited by hand: it was taken and clamped
    with pytest.raises(ValueError, match=r"RandomClouds: params\['opacity'\] must lie in \[0, 1\].* got 7"):
        seq(x, params=seq._params)
    seq(x)  # a fresh draw through the container is not checked again, and works


def test_the_ops_run_in_the_documented_order_with_their_weights():
    # "the order light travels" and "p times its weight (edge abstraction 0.2, snow 0.5, season 0.8, the others 1)"
    seq = augment.SimToReal(strength=0.5, p=0.5, bank=torch.rand(2, 3, 8, 8))
    got = [(type(op).__name__, op.p) for op in seq.children()]
    assert got == [("RandomSeasonShift", pytest.approx(0.4)), ("RandomSnowCover", pytest.approx(0.25)),
                   ("RandomIllumination", 0.5), ("RandomClouds", 0.5), ("RandomHaze", 0.5),
                   ("FourierDomainAdaptation", 0.5), ("RandomEdgeAbstraction", pytest.approx(0.1)),
                   ("RandomCameraEffects", 0.5)]


def test_scaled_moves_both_ends_towards_the_neutral_value():
    from augment.compose import _scaled

    # neutral + s (end - neutral): gamma (0.6, 1.5) about 1 at s = 0.5 is (1 - 0.2, 1 + 0.25)
    assert _scaled((0.6, 1.5), 0.5, neutral=1.0) == pytest.approx((0.8, 1.25))
    assert _scaled((-0.8, 0.8), 0.25) == pytest.approx((-0.2, 0.2))


def test_strength_zero_is_the_identity_however_many_images():
    # at strength 0 no op is applied, the edge abstraction (whole at any strength > 0) included: with p = 1 it
    # would take 0.2 of 64 images
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    assert torch.equal(augment.SimToReal(strength=0.0, p=1.0)(x), x)


def test_every_magnitude_scales_linearly_from_the_ops_identity():
    # strength s: neutral + s * (strong - neutral). So each range at s is (1 - s) r(0) + s r(1), and at s = 0
    # every op but the edge abstraction (the documented exception) is the identity, when applied.
    bank = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ranges = {s: [op._ranges for op in augment.SimToReal(strength=s, bank=bank).children()] for s in (0.0, 0.25, 1.0)}
    for r0, r25, r1 in zip(*ranges.values()):
        for name in r1:
            want = tuple(0.75 * a + 0.25 * b for a, b in zip(r0[name], r1[name]))
            assert r25[name] == pytest.approx(want), name
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    for op in augment.SimToReal(strength=0.0, bank=bank).children():
        if not isinstance(op, augment.RandomEdgeAbstraction):
            op.p = 1.0
            torch.testing.assert_close(op(x), x, atol=1e-6, rtol=0, msg=type(op).__name__)  # FDA: an FFT's rounding


def test_same_on_batch_and_keepdim_reach_every_op(make_image):
    x = make_image(1, 3, 16, 16).expand(3, -1, -1, -1).contiguous()
    torch.manual_seed(0)
    out = augment.SimToReal(strength=1.0, p=1.0, same_on_batch=True)(x)
    assert not torch.equal(out[0], x[0]) and torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    assert augment.SimToReal(strength=1.0, p=1.0, keepdim=True)(x[0]).shape == (3, 16, 16)
    assert augment.SimToReal(strength=1.0, p=1.0)(x[0]).shape == (1, 3, 16, 16)


def test_the_repr_shows_strength_and_p():
    assert "strength=0.3, p=0.4" in repr(augment.SimToReal(strength=0.3, p=0.4))
    with pytest.raises(TypeError, match="strength must be a number in"):
        augment.SimToReal(strength=True)  # a bool is not a strength
    with pytest.raises(ValueError, match=r"strength must be a number in \[0, 1\], got 1.5"):
        augment.SimToReal(strength=1.5)


def test_the_fda_bank_must_be_a_batch_of_at_least_one_image():
    with pytest.raises(ValueError, match=r"bank must have shape \(N, 3, H, W\) with N >= 1, got \(3, 8, 8\)"):
        augment.FourierDomainAdaptation(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"with N >= 1, got \(0, 3, 8, 8\)"):
        augment.FourierDomainAdaptation(torch.rand(0, 3, 8, 8))
    with pytest.raises(ValueError, match=r"beta must lie within \[0.0, 0.5\]"):  # the documented window bound
        augment.FourierDomainAdaptation(torch.rand(1, 3, 8, 8), beta=(0.1, 0.6))


def test_the_fda_bank_is_a_copy_held_as_a_buffer_and_every_image_is_drawn():
    bank = torch.rand(3, 3, 8, 8)
    op = augment.FourierDomainAdaptation(bank)
    bank.zero_()  # the caller's tensor reused: the op keeps the images it was given
    assert op.bank.min() > 0
    assert op.to(torch.float64).bank.dtype == torch.float64  # a buffer: moves with .to()
    index = op.forward_parameters(torch.Size((600, 3, 8, 8)))["index"]
    assert set(index.floor().long().tolist()) == {0, 1, 2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fda_resizes_the_bank_antialiased_keeping_its_mean(dtype):
    # b = floor(beta * 16) = 1 swaps only the mean colour (the FFT's DC term): the output's mean is the resized
    # bank image's. Columns 0.9, 0, 0, 0 repeated have mean 0.9 / 4 = 0.225, which an antialiased 64 -> 16 resize
    # keeps (up to its borders); plain bilinear samples columns 4i + 1 and 4i + 2 (both 0), nearest 4i (all 0.9).
    # 0.9 is not a float32: a float64 bank and image stay float64 throughout.
    bank = torch.zeros(1, 3, 64, 64, dtype=dtype)
    bank[..., 0::4] = 0.9
    x = 0.5 + 0.1 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=dtype)
    out = augment.FourierDomainAdaptation(bank, beta=0.1, p=1.0)(x)
    torch.testing.assert_close(out.mean(dim=(2, 3)), torch.full((2, 3), 0.225, dtype=dtype), atol=0.005, rtol=0)
    same = augment.FourierDomainAdaptation(bank[..., :16, :16], beta=0.1, p=1.0)(x)  # no resize: exactly 0.225
    atol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(same.mean(dim=(2, 3)), torch.full((2, 3), 0.225, dtype=dtype), atol=atol, rtol=0)


def test_a_replayed_bank_index_outside_the_bank_is_refused():
    # index 7 of a bank of 3 (parameters of an op with a larger bank) was taken as its last image, silently
    x = torch.rand(2, 3, 8, 8)
    op = augment.FourierDomainAdaptation(torch.rand(3, 3, 8, 8), p=1.0)
    op(x)
    for bad in (7.0, -1.0):
        with pytest.raises(ValueError, match=rf"params\['index'\] must lie in \[0, 3\].* got {bad:g}"):
            op(x, params={**op._params, "index": torch.tensor([bad, 1.0])})
    op(x, params={**op._params, "index": torch.tensor([3.0, 0.0])})  # 3, the closed bound, is the last image
