"""The model's input contract: prepare() against a hand-worked normalisation, the recorded size."""

from types import SimpleNamespace

import pytest
import torch
import timm

from topoloc.models import AtLoc
from topoloc.models.contract import (input_size, prepare, record_input_size, resolve_input_size, to_unit_float,
                                     unwrap_model)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AtLoc("test_resnet", feat_dim=16).eval()


def test_prepare_is_the_backbone_normalisation_worked_by_hand(model):
    cfg = timm.create_model("test_resnet").pretrained_cfg  # timm's own record, the independent reference
    mean, std = cfg["mean"], cfg["std"]
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4).contiguous()
    # (v / 255 - mean) / std per channel
    want = torch.tensor([(v / 255 - m) / s for v, m, s in zip((0, 51, 255), mean, std)], dtype=torch.float32)
    out = model.prepare(images)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[:, :, 0, 0], want.expand(2, 3))
    torch.testing.assert_close(model.prepare(images.float() / 255), out)  # float in [0, 1] gives the same
    assert model.prepare(images, channels_last=True).is_contiguous(memory_format=torch.channels_last)
    assert model.config["mean"] == pytest.approx(mean) and model.config["std"] == pytest.approx(std)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_images_of_any_float_precision_are_prepared_in_the_model_dtype(model, dtype):
    # float64 is what numpy gives: it failed in the first convolution ("expected scalar type Double but found Float")
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = model.prepare(images.to(dtype))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, model.prepare(images), atol=0.05 if dtype != torch.float64 else 1e-6, rtol=0)
    assert torch.isfinite(model(out)).all()  # the network runs on it
    assert model.double().prepare(images).dtype == torch.float64  # a double model keeps its precision
    model.float()


def test_nan_pixels_are_refused(model):
    images = torch.rand(2, 3, 8, 8)
    images[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN pixels"):
        model.prepare(images)
    assert model.prepare(images, check_range=False).isnan().any()  # the library's own floats are not checked


def test_a_numpy_array_is_refused_saying_how_to_convert(model):
    with pytest.raises(TypeError, match=r"must be a torch tensor .*got ndarray .*torch.from_numpy"):
        model.prepare(torch.zeros(1, 3, 8, 8).numpy())  # was AttributeError: no attribute 'is_floating_point'


def test_a_model_with_only_normalize_is_prepared_too():
    class Plain(torch.nn.Module):
        def normalize(self, x):
            return x * 2.0

    x = prepare(Plain(), torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))
    assert torch.equal(x, torch.full((1, 3, 2, 2), 2.0))
    with pytest.raises(TypeError, match="uint8"):
        to_unit_float(torch.zeros(1, dtype=torch.int64))


def test_size_and_normalisation_are_recorded_and_travel_with_the_config(model):
    clone = AtLoc.from_config(model.config)
    assert input_size(clone) is None  # before training
    clone.set_input_contract(image_size=(48, 72), mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    assert clone.input_size == (48, 72) and clone.config["image_size"] == [48, 72]
    # (1.0 - 0.5) / 0.25 = 2 for a white pixel
    torch.testing.assert_close(clone.prepare(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)),
                               torch.full((1, 3, 1, 1), 2.0))
    again = AtLoc.from_config(clone.config)
    assert again.config == clone.config and again.input_size == (48, 72)
    wrapped = torch.nn.Module()  # a DDP-like wrapper: the model under `.module`
    wrapped.module = again
    assert input_size(wrapped) == (48, 72)


def test_resolve_input_size(model):
    assert resolve_input_size(model, (8, 12)) == (8, 12)
    with pytest.raises(ValueError, match="predict: `image_size` is needed"):
        resolve_input_size(model, None, data=[{"image": torch.zeros(3, 4, 4)}])
    with pytest.raises(ValueError, match="localise: `image_size`: expected"):
        resolve_input_size(model, 32, where="localise")  # an int is the short side: no training size


@pytest.mark.parametrize("images, expected", [
    ((torch.rand(2, 3, 32, 32) * 255).byte(), r"AtLoc: `images` are uint8.*model.prepare\(images\)"),
    (torch.rand(2, 3, 32, 32).double(), r"AtLoc: `images` are float64 and the model float32.*model.prepare"),
    (torch.rand(3, 32, 32), r"AtLoc: `images` must be \(B, 3, H, W\).*got \(3, 32, 32\).*model.prepare"),
    (torch.rand(2, 1, 32, 32), r"AtLoc: `images` must be \(B, 3, H, W\).*got \(2, 1, 32, 32\)"),
])
def test_the_model_called_on_images_it_cannot_take_says_to_prepare_them(model, images, expected):
    # each failed inside torch: "expected scalar type Byte but found Float", "expected 4D input (got 3D input)"
    with pytest.raises((TypeError, ValueError), match=expected):
        model(images)
    assert model(model.prepare(images.expand(-1, 3, -1, -1) if images.dim() == 4 else images[None])).shape == (
        images.shape[0] if images.dim() == 4 else 1, model.out_dim)


def test_a_normalisation_on_the_0_255_scale_is_refused(model):
    # mmcv / Detectron's ImageNet constants are on [0, 255]; prepare() works on [0, 1]: every pixel became -2.1
    with pytest.raises(ValueError, match=r"mean / std are for images in \[0, 1\].*got \[123.675.*divide both by 255"):
        model.set_input_contract(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    with pytest.raises(ValueError, match=r"mean / std are for images in \[0, 1\]"):
        model.set_input_contract(mean=[0.5, 0.5, 0.5], std=[2.0, 2.0, 2.0])
    model.set_input_contract(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])  # CLIP-like constants are fine
    assert float(model.prepare(torch.ones(1, 3, 2, 2))[0, 0, 0, 0]) == pytest.approx((1 - 0.5) / 0.5)


def test_the_recorded_size_reaches_a_torch_compile_wrapper():
    torch.manual_seed(0)
    fresh = AtLoc("test_resnet", feat_dim=8)
    record_input_size(fresh, (48, 72))
    assert fresh.input_size == (48, 72)  # (H, W)
    compiled = torch.compile(fresh)  # not compiled until called
    assert unwrap_model(compiled) is fresh and input_size(compiled) == (48, 72)
    wrapped = torch.nn.Module()  # DDP-like: the compiled model under `.module`
    wrapped.module = compiled
    assert unwrap_model(wrapped) is fresh


def test_a_recorded_size_wins_over_an_image_cache():
    torch.manual_seed(0)
    fresh = AtLoc("test_resnet", feat_dim=8)
    cache = SimpleNamespace(images=torch.zeros(1, 3, 16, 24, dtype=torch.uint8), image_size=(16, 24))
    assert resolve_input_size(fresh, None, data=cache) == (16, 24)
    fresh.set_input_contract(image_size=(32, 40))
    assert resolve_input_size(fresh, None, data=cache) == (32, 40)


def test_prepare_passes_check_range_off_to_the_model(model):
    grey = torch.full((1, 3, 2, 2), 128.0)  # a [0, 255] float image, which only check_range=False lets through
    mean, std = model.config["mean"][0], model.config["std"][0]
    assert float(prepare(model, grey, check_range=False)[0, 0, 0, 0]) == pytest.approx((128 - mean) / std)
    with pytest.raises(ValueError, match="maximum of 128"):
        prepare(model, grey)


def test_images_normalised_into_minus_1_1_are_refused_by_the_share_rule():
    # (x - 0.5) / 0.5 stays within [-1, 1] and passed prepare's range check, to be normalised a second time. The
    # augment ops' rule: more than a third of the values more than 0.25 outside [0, 1]. Here, by hand: a ramp of
    # 0..1 in [0, 1] becomes -1..1, and the values below -0.25 or above 1.25 are those of x < 0.375: 37.5 %.
    from topoloc.models import create_model

    model = create_model("atloc_resnet18", feat_dim=8).eval()
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 8, 64).contiguous()
    model.prepare(ramp)  # in [0, 1]: taken
    with pytest.raises(ValueError, match=r"^prepare: float `images` must be in \[0, 1\], got -1 to 1 with 37.5 % of "
                                         r"the values more than 0.25 outside .* images normalised into \[-1, 1\]"):
        model.prepare(ramp * 2 - 1)
