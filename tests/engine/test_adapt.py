"""AdaBN: batch-norm statistics re-estimated on target images, checked against numpy's statistics."""

import numpy as np
import pytest
import torch
from torch import nn

from topoloc.data.cache import ImageCache
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine import evaluate
from topoloc.engine.adapt import adapt_batchnorm
from topoloc.geodesy import LocalFrame


class PooledBN(nn.Module):
    """Dropout, a batch norm on the image, global average pool: (B, 3) numbers, then a pose code.

    The code's translation part is the pooled batch-norm output, its rotation part a fixed 6D code
    of the identity, so the decoded position is ``mean_m + std_m * pooled``.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.bn = nn.BatchNorm2d(3, affine=False)
        self.scale = nn.Parameter(torch.ones(()))  # the one weight (identity): the model's device
        self.register_buffer("rot6d", torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def normalize(self, x):
        return x

    def forward(self, x):
        pooled = self.scale * self.bn(self.drop(x)).mean((2, 3))
        return torch.cat([pooled, self.rot6d.expand(len(x), 6)], 1)


def _images(n, seed=0, level=(0, 256)):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(*level, (n, 3, 4, 5), generator=g, dtype=torch.uint8)


def _cache(images, flights=None, domains=None):
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(images), 1, 1)
    return ImageCache(images, c2w, flights=flights, domains=domains)


def test_variance_of_one_batch_is_the_unbiased_variance_and_dropout_is_off():
    images = _images(8, seed=1)
    adapted = adapt_batchnorm(PooledBN(dropout=0.9), _cache(images), batch_size=8)
    x = images.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(adapted.bn.running_var.numpy(), x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    np.testing.assert_allclose(adapted.bn.running_mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-6)
    assert not adapted.training


@pytest.mark.parametrize("count, batch_size, seed", [
    (12, 4, 0),  # three batches of 4
    (10, 4, 2),  # two batches of 5: the mean of the two batch means is the mean of all 10
    (3, 64, 8),  # fewer images than a batch: one batch of 3
])
def test_mean_is_the_images_mean_whatever_the_batches(count, batch_size, seed):
    images = _images(count, seed=seed)
    adapted = adapt_batchnorm(PooledBN(), _cache(images), batch_size=batch_size)
    x = images.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(adapted.bn.running_mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-6)


def test_a_model_without_parameters_is_adapted_on_the_device_of_its_buffers():
    # a batch norm with affine=False and nothing else has no parameter: adapt_batchnorm raised StopIteration
    class Frozen(PooledBN):
        def __init__(self):
            super().__init__()
            del self.scale

        def forward(self, x):
            return torch.cat([self.bn(x).mean((2, 3)), self.rot6d.expand(len(x), 6)], 1)

    images = _images(6, seed=3)
    adapted = adapt_batchnorm(Frozen(), _cache(images), batch_size=6)
    x = images.numpy().astype(np.float64) / 255.0
    np.testing.assert_allclose(adapted.bn.running_mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-6)


def test_the_model_itself_is_left_alone():
    model = PooledBN()
    adapted = adapt_batchnorm(model, _cache(_images(6, level=(200, 256))), batch_size=3)
    assert torch.equal(model.bn.running_mean, torch.zeros(3)) and torch.equal(model.bn.running_var, torch.ones(3))
    assert adapted is not model and adapted.bn.running_mean.min() > 0.7


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="batch_size"):
        adapt_batchnorm(PooledBN(), _cache(_images(4)), batch_size=1)

    class NoBN(PooledBN):
        def __init__(self):
            super().__init__()
            self.bn = nn.Identity()

    with pytest.raises(ValueError, match="no batch-norm layer"):
        adapt_batchnorm(NoBN(), _cache(_images(4)))
    with pytest.raises(ValueError, match="adapt: expected None or one of"):
        evaluate(PooledBN(), PoseNormalizer.fit(torch.eye(4).repeat(2, 1, 1)), _cache(_images(4)),
                 frame=LocalFrame.named("comballaz"), retrieval=False, adapt="tent")
    # torch's "manual_seed expected a long, but got str" and an unnamed "got NoneType" before.
    with pytest.raises(ValueError, match="adapt_batchnorm: `seed` must be a non-negative int, got '1'"):
        adapt_batchnorm(PooledBN(), _cache(_images(4)), seed="1")
    with pytest.raises(TypeError, match="adapt_batchnorm: data: expected an ImageCache .* got NoneType"):
        adapt_batchnorm(PooledBN(), None, image_size=(8, 8))


def test_evaluate_adapts_each_flight_and_domain_on_its_own_images():
    # Two flights, one bright and one dark, in one dataset. Adapted on its own images, each group's
    # batch-norm output averages to 0, so its mean predicted position is the normaliser's mean; adapted
    # on both groups together, the bright one would land on one side of it and the dark one on the other.
    images = torch.cat([_images(8, seed=3, level=(150, 256)), _images(8, seed=4, level=(0, 100))])
    flights = ["bright"] * 8 + ["dark"] * 8
    data = _cache(images, flights=flights, domains=["real"] * 16)
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[1, :3, 3] = torch.tensor([20.0, 40.0, 60.0])
    norm = PoseNormalizer.fit(c2w)  # mean (10, 20, 30) m, std (10, 20, 30) m
    frame = LocalFrame.named("comballaz")
    result = evaluate(PooledBN(), norm, data, frame=frame, retrieval=False, adapt="adabn", batch_size=8)
    pred = result.model.pred_c2w[:, :3, 3]
    for name in ("bright", "dark"):
        rows = np.array(flights) == name
        np.testing.assert_allclose(pred[rows].mean(0), [10.0, 20.0, 30.0], atol=1e-4)
    plain = evaluate(PooledBN(), norm, data, frame=frame, retrieval=False, batch_size=8)
    bright = np.array(flights) == "bright"
    # unadapted (running mean 0, variance 1): the bright images' pooled values are their mean levels, about 0.8
    assert (plain.model.pred_c2w[bright, 0, 3] > 10.0 + 10.0 * 0.7).all()
    assert result.extra["adapt"] == "adabn"


@pytest.mark.gpu
def test_statistics_on_the_gpu_match_the_cpu():
    images = _images(16, seed=5)
    cpu = adapt_batchnorm(PooledBN(), _cache(images), batch_size=8)
    gpu = adapt_batchnorm(PooledBN(), _cache(images), batch_size=8, device="cuda")
    assert gpu.bn.running_mean.device.type == "cuda"
    torch.testing.assert_close(gpu.bn.running_mean.cpu(), cpu.bn.running_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.bn.running_var.cpu(), cpu.bn.running_var, atol=1e-5, rtol=1e-5)


def test_evaluate_adapts_the_renders_and_photos_of_one_flight_apart():
    # One flight, its renders bright and its photos dark: AdaBN must group by (flight, domain), so each
    # domain's batch-norm output averages to 0 on its own images and its mean position is the
    # normaliser's mean (10, 20, 30) m. Grouped by flight alone, the bright renders would land above
    # it in every axis and the dark photos below.
    images = torch.cat([_images(8, seed=3, level=(150, 256)), _images(8, seed=4, level=(0, 100))])
    domains = ["synthetic"] * 8 + ["real"] * 8
    data = _cache(images, flights=["one"] * 16, domains=domains)
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[1, :3, 3] = torch.tensor([20.0, 40.0, 60.0])
    norm = PoseNormalizer.fit(c2w)  # mean (10, 20, 30) m, std (10, 20, 30) m
    result = evaluate(PooledBN(), norm, data, frame=LocalFrame.named("comballaz"), retrieval=False,
                      adapt="adabn", batch_size=8)
    pred = result.model.pred_c2w[:, :3, 3]
    for name in ("synthetic", "real"):
        rows = np.array(domains) == name
        np.testing.assert_allclose(pred[rows].mean(0), [10.0, 20.0, 30.0], atol=1e-4)


class PooledBN1d(nn.Module):
    """Global average pool, then a 1-d batch norm over the (B, 3) pooled values: a head-style layer."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3)  # affine: its weights are the model's parameters (its device)

    def normalize(self, x):
        return x

    def forward(self, x):
        return self.bn(x.mean((2, 3)))


def test_a_batch_norm_1d_is_adapted_to_the_pooled_values():
    images = _images(8, seed=6)
    adapted = adapt_batchnorm(PooledBN1d(), _cache(images), batch_size=8)
    pooled = (images.numpy().astype(np.float64) / 255.0).mean(axis=(2, 3))  # (8, 3)
    np.testing.assert_allclose(adapted.bn.running_mean.numpy(), pooled.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(adapted.bn.running_var.numpy(), pooled.var(axis=0, ddof=1), rtol=1e-5)


def test_a_batch_norm_without_running_statistics_is_nothing_to_adapt():
    model = PooledBN()
    model.bn = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    with pytest.raises(ValueError, match="no batch-norm layer with running statistics"):
        adapt_batchnorm(model, _cache(_images(4)))


def test_the_statistics_are_of_the_models_normalised_input():
    class Normalised(PooledBN):
        def normalize(self, x):  # x in [0, 1] -> (x - 0.5) / 0.25
            return (x - 0.5) / 0.25

    images = _images(8, seed=7)
    adapted = adapt_batchnorm(Normalised(), _cache(images), batch_size=8)
    x = (images.numpy().astype(np.float64) / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(adapted.bn.running_mean.numpy(), x.mean(axis=(0, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(adapted.bn.running_var.numpy(), x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)


@pytest.mark.parametrize("one_pass_bytes", [1 << 30, 0], ids=["one pass", "layer by layer"])
def test_the_variance_is_the_whole_sets_whatever_the_batches_or_their_order(one_pass_bytes, monkeypatch):
    # A flight dark then bright. torch's update_bn (used until 2026-12-07) averaged the unbiased variances of
    # the batches, which in the flight's own order are each one level: far below the set's variance.
    images = torch.cat([_images(4, seed=9, level=(0, 64)), _images(4, seed=10, level=(192, 256))])
    x = images.numpy().astype(np.float64) / 255.0
    whole = x.var(axis=(0, 2, 3), ddof=1)
    per_batch = np.mean([x[b].var(axis=(0, 2, 3), ddof=1) for b in np.split(np.arange(8), 2)], axis=0)
    assert np.all(whole > 2 * per_batch)  # the test can tell the two apart
    import topoloc.engine.adapt as adapt

    monkeypatch.setattr(adapt, "ONE_PASS_BYTES", one_pass_bytes)
    for batch_size, seed in ((4, 0), (2, 3), (8, 1), (3, 5)):
        adapted = adapt_batchnorm(PooledBN(), _cache(images), batch_size=batch_size, seed=seed)
        np.testing.assert_allclose(adapted.bn.running_var.numpy(), whole, rtol=1e-5)


class TwoBN(nn.Module):
    """A batch norm on the image, a ReLU, stochastic depth (timm's DropPath, not a torch dropout) and a second
    batch norm: the second layer's statistics are those of its input at test time."""

    def __init__(self, drop_path: float = 0.0) -> None:
        super().__init__()
        from timm.layers import DropPath

        self.bn1 = nn.BatchNorm2d(3, affine=False)
        self.drop = DropPath(drop_path)
        self.bn2 = nn.BatchNorm2d(3, affine=False)
        self.scale = nn.Parameter(torch.ones(()))
        self.register_buffer("rot6d", torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def normalize(self, x):
        return x

    def forward(self, x):
        pooled = self.scale * self.bn2(self.drop(torch.relu(self.bn1(x)))).mean((2, 3))
        return torch.cat([pooled, self.rot6d.expand(len(x), 6)], 1)


@pytest.mark.parametrize("one_pass_bytes", [1 << 30, 0], ids=["one pass", "layer by layer"])
def test_a_later_layer_takes_the_statistics_of_its_input_at_test_time(one_pass_bytes, monkeypatch):
    # by hand: the first layer's input is the images; the second's is relu((x - mean1) / sqrt(var1 + eps)), the
    # first layer as it normalises in eval() mode with its adapted statistics; stochastic depth off. A set too
    # large for one pass goes layer by layer: the same statistics.
    import topoloc.engine.adapt as adapt

    monkeypatch.setattr(adapt, "ONE_PASS_BYTES", one_pass_bytes)
    images = _images(10, seed=4)
    x = images.numpy().astype(np.float64) / 255.0
    m1, v1 = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    h = np.maximum((x - m1[:, None, None]) / np.sqrt(v1[:, None, None] + 1e-5), 0.0)
    for batch_size in (2, 3, 10):
        adapted = adapt_batchnorm(TwoBN(drop_path=0.5), _cache(images), batch_size=batch_size)
        np.testing.assert_allclose(adapted.bn1.running_var.numpy(), v1, rtol=1e-5)
        np.testing.assert_allclose(adapted.bn2.running_mean.numpy(), h.mean(axis=(0, 2, 3)), rtol=1e-5)
        np.testing.assert_allclose(adapted.bn2.running_var.numpy(), h.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)


def test_a_negative_seed_and_no_image_are_refused_by_name():
    with pytest.raises(ValueError, match="`seed` must be a non-negative int, got -1"):
        adapt_batchnorm(PooledBN(), _cache(_images(4)), seed=-1)
    with pytest.raises(ValueError, match="`data` has no image"):
        adapt_batchnorm(PooledBN(), _cache(_images(0)), image_size=(4, 5))


@pytest.mark.parametrize("one_pass", [True, False])
def test_a_float64_model_gets_float64_statistics(monkeypatch, one_pass):
    # both paths took each batch's statistics in float32: 1e-7 off numpy's float64 ones, not 1e-15
    import topoloc.engine.adapt as adapt

    if not one_pass:
        monkeypatch.setattr(adapt, "ONE_PASS_BYTES", 0)  # the layer-by-layer path
    images = _images(11, seed=3)

    class PooledBN64(PooledBN):
        def normalize(self, x):
            return x.double()  # as a float64 AtLoc's prepare casts to its dtype

    adapted = adapt_batchnorm(PooledBN64().double(), _cache(images), batch_size=4)
    x = (images.numpy() / np.float32(255.0)).astype(np.float32).astype(np.float64)  # the model's float64 input
    np.testing.assert_allclose(adapted.bn.running_var.numpy(), x.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    np.testing.assert_allclose(adapted.bn.running_mean.numpy(), x.mean(axis=(0, 2, 3)), rtol=1e-12)


class VectorBN(PooledBN):
    """The batch norm on the pooled vector: one value per channel and image."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3, affine=False)

    def forward(self, x):
        return torch.cat([self.scale * self.bn(x.mean((2, 3))), self.rot6d.expand(len(x), 6)], 1)


@pytest.mark.parametrize("one_pass", [True, False])
def test_one_value_per_channel_is_refused_by_name(monkeypatch, one_pass):
    # one image, a vector batch norm: one pass set the variance to NaN, the layer-by-layer path to 0
    import topoloc.engine.adapt as adapt

    if not one_pass:
        monkeypatch.setattr(adapt, "ONE_PASS_BYTES", 0)
    with pytest.raises(ValueError, match=r"^data: AdaBN needs at least 2 values per channel at every batch-norm "
                                         r"layer; BatchNorm1d\(3.*\) sees 1 over all the images"):
        adapt_batchnorm(VectorBN(), _cache(_images(1)), batch_size=4)
