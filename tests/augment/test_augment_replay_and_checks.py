"""What an audit found read wrong or said wrong in `augment`: replayed parameters above an op's own range (its
buffers are sized from that range), functional arguments out of their ranges, corrupt normals, and SimToReal's
message on 0-255 images."""

import math

import pytest
import torch

import augment
import augment.functional as AF

X = torch.rand(4, 3, 24, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("op, name, top, value", [
    (lambda: augment.RandomClouds(p=1.0, scale=(2.0, 3.0)), "scale", 3, 20.0),  # noise read off the lattice's edge
    (lambda: augment.RandomCameraEffects(p=1.0, blur_sigma=(0.0, 1.0)), "blur_sigma", 1, 5.0),  # kernel cut short
    (lambda: augment.RandomEdgeAbstraction(p=1.0, smoothing=(0.0, 0.5)), "smoothing", 0.5, 6.0),
])
def test_a_replayed_value_above_the_ops_own_range_is_refused(op, name, top, value):
    aug = op()
    with pytest.raises(ValueError, match=rf"^{type(aug).__name__}: params\['{name}'\] holds {value:g}, above this op's "
                                         rf"{name} range, up to {top:g}, which sizes its buffers"):
        aug(X, **{name: torch.full((4,), value)})
    aug(X, **{name: torch.full((4,), float(top))})  # at the top of its range: as drawn


def test_simtoreal_params_of_a_stronger_instance_are_refused_not_computed_wrongly():
    strong, weak = augment.SimToReal(1.0, p=1.0), augment.SimToReal(0.2, p=1.0)
    torch.manual_seed(0)
    out = strong(X)
    with pytest.raises(ValueError, match=r"which sizes its buffers"):
        weak(X, params=strong._params)
    torch.testing.assert_close(strong(X, params=strong._params), out)  # its own replay still reproduces


def _cloud_args(**over):
    ones = torch.ones(1)
    args = dict(seed=torch.tensor([3.0]), opacity=ones, coverage=torch.tensor([0.5]), softness=torch.tensor([0.2]),
                color=torch.ones(1, 3), scale=torch.tensor([2.0]), shadow_strength=torch.zeros(1),
                shadow_shift=torch.zeros(1, 2))
    args.update(over)
    return args


@pytest.mark.parametrize("call, message", [
    (lambda x: AF.cloud_layer(x, **_cloud_args(shadow_strength=torch.tensor([3.0]))),
     r"shadow_strength must be .*got 3"),  # turned 96 % of the pixels black
    (lambda x: AF.cloud_layer(x, **_cloud_args(opacity=torch.tensor([2.0]))), r"opacity must be .*got 2"),
    (lambda x: AF.cloud_layer(x, **_cloud_args(seed=torch.tensor([math.nan]))), r"seed must be"),
    (lambda x: AF.cloud_layer(x, **_cloud_args(), noise_resolution=0), r"noise_resolution must be a positive int"),
    (lambda x: AF.cloud_layer(x, **_cloud_args(scale=torch.tensor([20.0])), max_scale=3.0), r"scale must be"),
    (lambda x: AF.season_shift(x, torch.tensor([3.0]), torch.zeros(1), torch.zeros(1)), r"autumn must be .*got 3"),
    (lambda x: AF.season_shift(x, torch.zeros(1), torch.zeros(1), torch.tensor([-1.0])), r"tint must be .*got -1"),
    (lambda x: AF.snow_cover(x, torch.ones(1), torch.tensor([-0.1]), torch.ones(1)), r"softness must be .*got -0\.1"),
    (lambda x: AF.snow_cover(x, torch.ones(1), torch.tensor([0.1]), torch.ones(1),
                             mask=torch.full((1, 1, 24, 32), 5.0)), r"mask must be .*got 5"),
    (lambda x: AF.haze(x, torch.ones(1), torch.tensor([-1.0]), torch.ones(1, 3), max_distance=0),
     r"max_distance must be a finite number > 0"),  # returned the input unchanged
    (lambda x: AF.haze(x, torch.ones(1), torch.tensor([-1.0]), torch.ones(1, 3), depth=-torch.ones(1, 1, 24, 32)),
     r"depth must be .*got -1"),
    (lambda x: AF.camera_effects(x, torch.zeros(1), torch.ones(1, 3), torch.zeros(1), torch.zeros(1),
                                 torch.tensor([2.0]), max_blur_sigma=0.0), r"blur_sigma must be .*got 2"),  # no blur
    (lambda x: AF.edge_abstraction(x, torch.tensor([4.0]), torch.tensor([2.0]), torch.ones(1), torch.tensor([0.1]),
                                   max_smoothing=0.5), r"smoothing must be .*got 2"),
])
def test_functional_arguments_out_of_range_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call(X[:1])


def test_sun_relight_refuses_a_sky_share_above_one():
    # a sky share of 2 turned the relief inside out: a slope facing the sun went from 0.40 to 0.16 (0.52 expected)
    img = torch.full((1, 3, 1, 1), 0.4)
    n = torch.tensor([0.0, -0.6, 0.8]).view(1, 3, 1, 1)
    with pytest.raises(ValueError, match=r"sky_share must be .*got 2"):
        AF.sun_relight(img, n, torch.tensor([[0.0, -0.8, 0.6]]), torch.tensor([2.0]))
    # 0.4 * (0.5 + 0.5 * 0.96 / 0.6) = 0.52, by hand
    lit = AF.sun_relight(img, n, torch.tensor([[0.0, -0.8, 0.6]]), torch.tensor([0.5]))
    assert float(lit[0, 0, 0, 0]) == pytest.approx(0.52, abs=1e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_an_image_with_corrupt_normals_comes_out_all_nan(bad):
    # NaN normals left the pixel as it was, +inf lit it white, -inf darkened it: plausible-looking images
    x = torch.full((2, 3, 4, 4), 0.4)
    n = torch.zeros(2, 3, 4, 4)
    n[:, 2] = 1.0
    n[0, 0, 1, 1] = bad
    for p in (1.0, 0.0):  # applied or not, as for a corrupt image
        out = augment.RandomSunRelight(p=p, sky_share=0.3)(x, n)
        assert out[0].isnan().all() and not out[1].isnan().any()
    sun = torch.tensor([[0.0, 0.0, 1.0]]).repeat(2, 1)
    out = AF.sun_relight(x, n, sun, torch.full((2,), 0.3))
    assert out[0].isnan().all() and not out[1].isnan().any()


def test_simtoreal_names_itself_for_0_255_images():
    # said "RandomSeasonShift: input must hold values in [0, 1]", an op the user never built
    with pytest.raises(ValueError, match=r"^SimToReal: input must hold values in \[0, 1\], got .* to 25\d"):
        augment.SimToReal(p=1.0)(X * 255)
