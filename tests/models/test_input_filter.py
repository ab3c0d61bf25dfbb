"""LocalContrastNorm against torchvision's Gaussian blur, its invariances, and AtLoc(local_contrast=...)."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from topoloc import AtLoc
from topoloc.evaluation.retrieval import extract_features
from topoloc.models import LocalContrastNorm


def _torchvision_blur(x, sigma):
    r = LocalContrastNorm(sigma).radius
    return TF.gaussian_blur(x, kernel_size=[2 * r + 1, 2 * r + 1], sigma=[sigma, sigma])  # reflect padding


@pytest.mark.parametrize("sigma", [1.0, 2.5, 6.0])
def test_blur_matches_torchvision(sigma):
    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(LocalContrastNorm(sigma).blur(x), _torchvision_blur(x, sigma), atol=1e-5, rtol=1e-5)


def test_formula_with_an_independent_blur():
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1)) * 4 - 2
    d = x - _torchvision_blur(x, 2.0)
    want = d / (_torchvision_blur(d * d, 2.0).sqrt() + 0.3)
    torch.testing.assert_close(LocalContrastNorm(2.0, floor=0.3)(x), want, atol=1e-5, rtol=1e-5)


def test_ramp_and_constant_give_zero():
    # a normalised Gaussian reproduces a linear ramp away from the borders: nothing is left after the mean
    h, w, r = 24, 40, LocalContrastNorm(2.0).radius
    ramp = (0.3 * torch.arange(w) + 1.0).expand(1, 3, h, w).clone()
    out = LocalContrastNorm(2.0)(ramp)
    assert out[..., r:-r, r:-r].abs().max() < 1e-4
    assert LocalContrastNorm(3.0)(torch.full((1, 3, 20, 20), 7.0)).abs().max() < 1e-4


def test_offset_and_gain_divided_out():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    lcn = LocalContrastNorm(3.0, floor=1e-6)
    torch.testing.assert_close(lcn(x), lcn(x + 5.0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(lcn(x), lcn(4.0 * x), atol=1e-4, rtol=1e-4)
    # each channel on its own: a colour cast (per-channel gain and offset) is removed too
    cast = x * torch.tensor([1.3, 1.0, 0.6]).view(1, 3, 1, 1) + torch.tensor([0.1, 0.0, -0.2]).view(1, 3, 1, 1)
    torch.testing.assert_close(lcn(x), lcn(cast), atol=1e-3, rtol=1e-3)


def test_gradient_is_finite_on_flat_images():
    x = torch.full((1, 3, 16, 16), 0.5, requires_grad=True)
    LocalContrastNorm(2.0)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kwargs, name", [({"sigma": 0}, "sigma"), ({"sigma": -1.0}, "sigma"),
                                          ({"sigma": True}, "sigma"), ({"sigma": float("nan")}, "sigma"),
                                          ({"sigma": 2.0, "floor": 0.0}, "floor")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LocalContrastNorm(**kwargs)


def test_too_small_images_refused():
    with pytest.raises(ValueError, match=r"larger than 18 px.*10x40"):
        LocalContrastNorm(6.0)(torch.rand(1, 3, 10, 40))


def test_an_image_without_its_batch_dimension_is_refused():
    # was "not enough values to unpack (expected 4, got 3)"
    with pytest.raises(ValueError, match=r"^LocalContrastNorm: expected a \(B, C, H, W\) batch, got \(3, 16, 16\)"):
        LocalContrastNorm(2.0)(torch.randn(3, 16, 16))


def test_atloc_local_contrast():
    torch.manual_seed(0)
    model = AtLoc("resnet18", feat_dim=16, local_contrast=2.0).eval()
    assert model.config["local_contrast"] == 2.0
    assert "local_contrast" not in AtLoc("resnet18", feat_dim=16).config  # earlier configs unchanged
    x = model.normalize(torch.rand(2, 3, 32, 48))
    with torch.no_grad():
        plain = AtLoc("resnet18", feat_dim=16).eval()
        plain.load_state_dict(model.state_dict())  # the filter has no weights: same state dict
        want = plain(LocalContrastNorm(2.0)(x))
        torch.testing.assert_close(model(x), want)
        clone = AtLoc.from_config(model.config).eval()
        clone.load_state_dict(model.state_dict())
        torch.testing.assert_close(clone(x), want)
    # the retrieval descriptor sees the filtered input as the regressor does
    images = (torch.rand(3, 3, 32, 48) * 255).to(torch.uint8)
    with torch.no_grad():
        pooled = model.backbone(LocalContrastNorm(2.0)(model.prepare(images)))[1]
    torch.testing.assert_close(extract_features(model, images), pooled.flatten(1))
    with pytest.raises(ValueError, match="local_contrast"):
        AtLoc("resnet18", feat_dim=16, local_contrast=0)


def test_images_as_small_as_the_radius_refused():
    # reflect padding of r needs more than r pixels: sigma 2 -> radius ceil(6) = 6
    with pytest.raises(ValueError, match=r"larger than 6 px.*6x40"):
        LocalContrastNorm(2.0)(torch.rand(1, 3, 6, 40))
    assert LocalContrastNorm(2.0)(torch.rand(1, 3, 7, 40)).shape == (1, 3, 7, 40)


def test_gradient_is_finite_on_an_exactly_flat_image():
    # zeros: d = 0 and the local variance is exactly 0, where sqrt has an infinite derivative
    x = torch.zeros(1, 3, 16, 16, requires_grad=True)
    LocalContrastNorm(2.0)(x).sum().backward()
    assert torch.isfinite(x.grad).all()
