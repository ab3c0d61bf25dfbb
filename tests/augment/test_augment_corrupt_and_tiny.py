"""Corrupt and tiny images: NaN in gives NaN out (never a valid-looking image), 1x1 images stay finite."""

import pytest
import torch

import augment

BANK = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(7))
PIPELINES = {"simtoreal": lambda: augment.SimToReal(strength=1.0, p=1.0),
             "simtoreal_bank": lambda: augment.SimToReal(strength=1.0, p=1.0, bank=BANK)}
#: Every op of the package (the conftest's OPS) and the composed pipeline, with and without a bank.
NAMES = ["abstraction", "camera", "clouds", "fda", "haze", "illumination", "season", "snow", *PIPELINES]


@pytest.fixture(params=NAMES)
def make(request, ops):
    """A factory of the op at p=1 (full-strength pipelines)."""
    if request.param in PIPELINES:
        return PIPELINES[request.param]
    return lambda: ops[request.param](p=1.0)


def test_every_op_is_covered(ops):
    assert set(ops) <= set(NAMES)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_corrupt_pixel_makes_its_image_all_nan(make, bad):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    x[1, 0, 5, 5] = bad
    out = make()(x)
    assert out[1].isnan().all()  # the corrupt image cannot pass for a valid one
    assert torch.isfinite(out[0]).all()  # its neighbour in the batch is untouched by it


def test_nan_survives_when_the_op_is_not_applied(make):
    op = make()
    for module in op.modules():  # p = 0 everywhere: the pipeline passes the image through
        if hasattr(module, "p") and isinstance(module.p, float):
            module.p = 0.0
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    x[0, 1, 2, 3] = float("nan")
    assert op(x)[0, 1, 2, 3].isnan()


@pytest.mark.parametrize("hw", [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3)])
def test_tiny_images_stay_finite_in_range(make, hw):
    torch.manual_seed(0)
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(3))
    out = make()(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_keepdim_unbatched_nan_image():
    x = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(4))
    x[2, 0, 0] = float("nan")
    out = augment.RandomIllumination(p=1.0, keepdim=True)(x)
    assert out.shape == (3, 6, 6) and out.isnan().all()


def test_an_empty_batch_comes_back_empty(make):
    x = torch.rand(0, 3, 12, 16)
    out = make()(x)
    assert out.shape == (0, 3, 12, 16) and out.dtype == x.dtype
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):  # and is still checked
        make()(torch.rand(0, 1, 12, 16))


def test_an_empty_batch_records_no_parameters(op_name, ops):
    # an empty batch had left the previous call's parameters in _params, so that op(y, params=op._params) replayed
    # them; kornia's own ops record zero-length parameters
    op = ops[op_name](p=1.0)
    op(torch.rand(2, 3, 12, 16))
    op(torch.rand(0, 3, 12, 16))
    assert op._params and all(len(value) == 0 for key, value in op._params.items() if key != "forward_input_shape")


def test_an_empty_batch_through_the_albumentations_adapters():
    import numpy as np

    # albumentations itself: `augment.albumentations` raises a plain ImportError without it, which
    # pytest >= 9's importorskip no longer turns into a skip
    pytest.importorskip("albumentations")
    from augment import albumentations as adapters

    images = np.zeros((0, 12, 16, 3), np.uint8)
    out = adapters.RandomClouds(p=1.0).apply_to_images(images)
    assert out.shape == (0, 12, 16, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("hw", [(0, 0), (0, 8), (8, 0)])
def test_an_image_of_no_pixels_is_refused(make, hw):
    # a 0 x 0 image ended in a ZeroDivisionError inside the camera noise
    with pytest.raises(ValueError, match=r"at least 1 x 1 pixels"):
        make()(torch.rand(2, 3, *hw))


def test_pixels_of_0_to_255_are_refused_on_the_first_call(make):
    # 0-255 floats came out clamped white where augmented and untouched elsewhere, one batch mixing both
    op = make()
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"input must hold values in \[0, 1\], got .* to .*; 8-bit pixels as "
                                         r"floats: divide them by 255\.$"):
        op(x * 255)
    with pytest.raises(ValueError, match=r"undo any mean / std normalisation first"):
        op((x - 0.45) / 0.1)  # ImageNet-style normalised: -4.5 to 5.5
    y = op(x * 1.4 - 0.2)  # a resize's overshoot (here -0.2 to 1.2) passes, and comes out in [0, 1]
    assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1


def test_the_sun_relight_refuses_0_to_255_pixels_too():
    normals = torch.zeros(1, 3, 8, 8)
    normals[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"^RandomSunRelight: image must hold values in \[0, 1\]"):
        augment.RandomSunRelight(p=1.0)(torch.full((1, 3, 8, 8), 128.0), normals)


def test_an_empty_first_batch_leaves_the_range_check_to_the_next(make):
    # the check ran once, on the first batch: an empty one switched it off, and 0-255 floats then came out white
    op = make()
    assert op(torch.empty(0, 3, 8, 8)).shape == (0, 3, 8, 8)
    with pytest.raises(ValueError, match=r"divide them by 255\.$"):
        op(torch.rand(2, 3, 8, 8) * 255)


def test_the_sun_relight_checks_after_an_empty_batch_too():
    op = augment.RandomSunRelight(p=1.0)
    op(torch.empty(0, 3, 8, 8), torch.empty(0, 3, 8, 8))
    normals = torch.zeros(1, 3, 8, 8)
    normals[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"^RandomSunRelight: image must hold values in \[0, 1\]"):
        op(torch.full((1, 3, 8, 8), 128.0), normals)


def test_images_normalised_into_minus_one_to_one_are_refused_and_a_resize_overshoot_is_not(make):
    # (x - 0.5) / 0.5 lies within the [-1, 2] a resize may reach, and went through clamped: half of it black
    # a darkish image (u^2, u uniform): 2 u^2 - 1 < -0.25 where u < sqrt(0.375), for 61 % of the values
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(2)) ** 2
    with pytest.raises(ValueError, match=r"got -1 to 0.99\d* with 6[01]\.\d % of them more than 0.25 outside .*"
                                         r"undo any mean / std normalisation"):
        make()((x - 0.5) / 0.5)
    # torch's own bicubic upsampling of a checkerboard of 0 and 1 overshoots [0, 1] beside every edge, and passes
    board = ((torch.arange(8)[:, None] + torch.arange(12)[None]) % 2).float().expand(1, 3, 8, 12)
    up = torch.nn.functional.interpolate(board, scale_factor=4, mode="bicubic", align_corners=False)
    assert float(up.min()) < -0.2 and float(up.max()) > 1.2
    out = make()(up)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_a_single_pixel_is_the_centre_of_the_vignetting():
    # linspace(-1, 1, 1) is [-1]: a 1 x 1 image's pixel was a corner (r = 1) and darkened to 0.8 / (1 + 1)^2 = 0.2
    op = augment.RandomCameraEffects(temperature=0.0, tint=0.0, vignetting=1.0, noise_std=0.0, blur_sigma=0.0, p=1.0)
    torch.testing.assert_close(op(torch.full((1, 3, 1, 1), 0.8)), torch.full((1, 3, 1, 1), 0.8))
    # a row of five: the ends at r^2 = 25 / 26 (x = +-1, y = 0 of a 5 x 1 image), the middle at 0
    row = op(torch.full((1, 3, 1, 5), 0.8))[0, 0, 0]
    ends = 0.8 / (1 + 25 / 26) ** 2
    torch.testing.assert_close(row[[0, 2, 4]], torch.tensor([ends, 0.8, ends]))
