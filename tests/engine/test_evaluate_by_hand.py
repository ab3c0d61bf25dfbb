"""`evaluate` against values worked by hand: the coverage weight in every bracket, the training fit's
labels and count, the retrieval model and the colour thumbnail, and refusals by name."""

import numpy as np
import pytest
import torch

from topoloc.data.cache import ImageCache
from topoloc.data.normalize import PoseNormalizer
from topoloc.engine.evaluate import evaluate
from topoloc.geodesy import LocalFrame

FRAME = LocalFrame.named("comballaz")


def _nadir(yaw_deg, xyz):
    """A camera looking straight down (OpenCV axes in ENU), turned by ``yaw_deg`` about up, at ``xyz``."""
    a = np.radians(yaw_deg)
    c2w = np.eye(4)
    c2w[:3, :3] = (np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
                   @ np.diag([1.0, -1, -1]))
    c2w[:3, 3] = xyz
    return c2w


class _FixedPose(torch.nn.Module):
    """A 'model' that predicts the code of one fixed pose for every image; its backbone's features
    are the image's red and green means and a constant 0.05 (blind to blue)."""

    def __init__(self, normalizer, c2w):
        super().__init__()
        self.code = torch.nn.Parameter(torch.as_tensor(normalizer.encode(c2w[None]), dtype=torch.float32),
                                       requires_grad=False)
        self.backbone = _ChannelMeans(blue=False)

    def normalize(self, x):
        return x

    def forward(self, x):
        return self.code.expand(x.shape[0], -1)


class _ChannelMeans(torch.nn.Module):
    """A backbone whose pooled features are the image's (R, G, B) means, or (R, G, 0.05) without ``blue``."""

    def __init__(self, blue=True):
        super().__init__()
        self.blue = blue
        self.weight = torch.nn.Parameter(torch.ones(()))  # a parameter: the module's device

    def forward(self, x):
        means = self.weight * x.mean((2, 3))
        return means if self.blue else torch.cat([means[:, :2], torch.full_like(means[:, :1], 0.05)], 1)


class _RetrievalModel(torch.nn.Module):
    """A model whose backbone's features are the image's (R, G, B) means."""

    def __init__(self):
        super().__init__()
        self.backbone = _ChannelMeans()

    def normalize(self, x):
        return x


def _cache(images, c2w, names=None, flights="f", domains="real"):
    n = len(images)
    return ImageCache(images, torch.as_tensor(np.asarray(c2w)), names=names or [f"i{k}" for k in range(n)],
                      flights=[flights] * n if isinstance(flights, str) else flights,
                      domains=[domains] * n if isinstance(domains, str) else domains)


# Training poses 0 to 3; test pose 0 sits 2 m from training pose 0 (turned 90 deg) and 10 m from
# training pose 1 (turned 3 deg); test pose 1 is training pose 2; the validation pose (103, 104, 300),
# yaw 10, sits sqrt(1 + 16) = sqrt(17) m from training pose 0 (80 deg) and sqrt(9 + 4 + 64) = sqrt(77) m
# from training pose 1 (7 deg).
TRAIN_C2W = np.stack([_nadir(90, [102, 100, 300]), _nadir(3, [100, 106, 308]), _nadir(-60, [-200, 0, 250]),
                      _nadir(60, [200, -40, 350])])
TEST_C2W = np.stack([_nadir(0, [100, 100, 300]), TRAIN_C2W[2]])
VAL_C2W = _nadir(10, [103, 104, 300])[None]


def _random_images(n, seed=0, size_hw=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, *size_hw), dtype=torch.uint8, generator=g)


def _run(**kwargs):
    norm = PoseNormalizer.fit(TRAIN_C2W)
    model = _FixedPose(norm, TEST_C2W[0])
    train = kwargs.pop("train_set", _cache(_random_images(4), TRAIN_C2W, flights="lhs", domains="synthetic"))
    test = kwargs.pop("datasets", _cache(_random_images(2, seed=1), TEST_C2W))
    return evaluate(model, norm, test, frame=FRAME, train_set=train, batch_size=2, **kwargs)


def test_the_coverage_weight_reaches_every_bracket():
    # At 0 m per degree the position alone counts: test pose 0's nearest training pose is pose 0
    # (2 m, 90 deg), not pose 1 (10 m, 3 deg) as at the default 1 m per degree.
    val = _cache(_random_images(1, seed=2), VAL_C2W, domains="synthetic")
    result = _run(m_per_deg=0.0, retrieval=False, val_sets=val)
    for bracket in (result.model, result.constant, result.ceiling):
        np.testing.assert_allclose(bracket.nearest_train_m, [2.0, 0.0], atol=1e-9)
        np.testing.assert_allclose(bracket.nearest_train_deg, [90.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.ceiling.pred_c2w, TRAIN_C2W[[0, 2]], atol=0)
    np.testing.assert_allclose(result.ceiling.translation_m, [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(result.validation.nearest_train_m, [np.sqrt(17.0)], atol=1e-9)
    np.testing.assert_allclose(result.validation.nearest_train_deg, [80.0], atol=1e-6)
    # Each training image's nearest training pose is its own: the training fit's coverage is zero.
    np.testing.assert_allclose(result.training_fit.nearest_train_m, np.zeros(4), atol=1e-9)
    np.testing.assert_allclose(result.training_fit.nearest_train_deg, np.zeros(4), atol=1e-6)
    # Without the baselines the coverage is still measured with the weight asked for.
    alone = _run(m_per_deg=0.0, retrieval=False, baselines=False, train_fit=0)
    assert alone.ceiling is None and alone.constant is None
    np.testing.assert_array_equal(alone.coverage.nearest, [0, 2])
    np.testing.assert_allclose(alone.coverage.distance_m, [2.0, 0.0], atol=1e-9)


def test_the_training_fit_keeps_each_images_flight_and_domain():
    # Training images 0-3 of flights a, a, b, b in domains synthetic, real, synthetic, real; two evenly
    # spaced images are rows 0 and 3 (linspace(0, 3, 2)).
    train = _cache(_random_images(4), TRAIN_C2W, names=["t0", "t1", "t2", "t3"], flights=["a", "a", "b", "b"],
                   domains=["synthetic", "real", "synthetic", "real"])
    fit = _run(train_set=train, retrieval=False, train_fit=2).training_fit
    assert fit.names == ["t0", "t3"] and fit.flights == ["a", "b"] and fit.domains == ["synthetic", "real"]
    np.testing.assert_allclose(fit.gt_c2w, TRAIN_C2W[[0, 3]], atol=0)


def test_the_training_fit_without_retrieval_and_a_count_of_zero():
    # No retrieval: the training images are still decoded for the fit (4 images, under the default count).
    fit = _run(retrieval=False).training_fit
    assert len(fit) == 4
    # The model answers test pose 0 everywhere: |t - (100, 100, 300)| for each training pose.
    np.testing.assert_allclose(fit.translation_m, [2.0, np.sqrt(36 + 64), np.sqrt(300**2 + 100**2 + 50**2),
                                                   np.sqrt(100**2 + 140**2 + 50**2)], atol=1e-4)
    # 0: no training fit (documented), while the brackets are still computed from the training poses.
    none = _run(retrieval=False, train_fit=0)
    assert none.training_fit is None and none.ceiling is not None
    np.testing.assert_allclose(none.ceiling.translation_m, [10.0, 0.0], atol=1e-9)


def test_the_model_retrieval_uses_the_retrieval_model_when_given():
    # Uniform training images blue, green, red, grey; the query a bluish (10, 10, 200) image.
    colours = torch.tensor([[0, 0, 255], [0, 255, 0], [255, 0, 0], [128, 128, 128]], dtype=torch.uint8)
    train = _cache(colours[:, :, None, None].expand(4, 3, 8, 8).contiguous(), TRAIN_C2W)
    query = torch.tensor([10, 10, 200], dtype=torch.uint8)[None, :, None, None]
    test = _cache(query.expand(1, 3, 8, 8).contiguous(), TEST_C2W[:1])
    # The retrieval model's features (R, G, B): the query is nearest the blue image (cosine 0.998).
    given = _run(train_set=train, datasets=test, retrieval="model", retrieval_model=_RetrievalModel(), train_fit=0)
    np.testing.assert_array_equal(given.retrievals["model"].pred_c2w, TRAIN_C2W[[0]])
    # The model's own features (R, G, 0.05), with q = (0.039, 0.039, 0.05): cosine 0.05 / |q| = 0.67 to
    # blue (0, 0, 0.05), 0.56 to green and red, and (2 * 0.039 * 0.502 + 0.0025) / (|q| 0.711) = 0.79 to grey.
    own = _run(train_set=train, datasets=test, retrieval="model", train_fit=0)
    np.testing.assert_array_equal(own.retrievals["model"].pred_c2w, TRAIN_C2W[[3]])


def test_the_colour_thumbnail_tells_apart_what_grey_cannot():
    # 16x24 images (the thumbnail's size). The query: left half red, right half green, whose grey
    # (BT.601: 0.299 | 0.587) is dark left, bright right. Training image 0: black | white, the same
    # grey layout (grey correlation 1), but in colour its centred channels are orthogonal to the
    # query's (correlation 0, worked out per channel). Training image 1: the query with a 4x4 green
    # patch in its red half: in colour it is the nearest, in grey it correlates below 1.
    query = torch.zeros(1, 3, 16, 24, dtype=torch.uint8)
    query[0, 0, :, :12] = 255
    query[0, 1, :, 12:] = 255
    black_white = torch.zeros(1, 3, 16, 24, dtype=torch.uint8)
    black_white[0, :, :, 12:] = 255
    patched = query.clone()
    patched[0, :, 6:10, 4:8] = torch.tensor([0, 255, 0], dtype=torch.uint8)[:, None, None]
    flat = torch.full((2, 3, 16, 24), 90, dtype=torch.uint8)
    train = _cache(torch.cat([black_white, patched, flat]), TRAIN_C2W)
    test = _cache(query, TEST_C2W[:1])
    result = _run(train_set=train, datasets=test, retrieval=("thumbnail", "thumbnail_colour"), train_fit=0)
    np.testing.assert_array_equal(result.retrievals["thumbnail"].pred_c2w, TRAIN_C2W[[0]])
    np.testing.assert_array_equal(result.retrievals["thumbnail_colour"].pred_c2w, TRAIN_C2W[[1]])


class _Empty(torch.utils.data.Dataset):
    def __len__(self):
        return 0

    def __getitem__(self, i):
        raise IndexError(i)

    def poses(self):
        return np.zeros((0, 4, 4))


def test_an_empty_training_set_or_a_source_named_twice_is_refused_by_name():
    with pytest.raises(ValueError, match=r"train_set: the dataset .* is empty"):
        _run(train_set=_Empty(), retrieval=False, train_fit=0)
    with pytest.raises(ValueError, match="retrieval: feature source named twice"):
        _run(retrieval=("thumbnail", "thumbnail"))


def test_image_size_is_read_as_everywhere_width_first_in_text_and_an_int_is_refused_by_name():
    # "12x6" went to the caches as tuple("12x6"): torch's "output size of ('1', '2', 'x', '6')", or the cache's
    # refusal of that tuple; an int failed with "'int' object is not iterable"
    class _Sizes(_FixedPose):
        def forward(self, x):
            self.seen.append(tuple(x.shape[-2:]))
            return super().forward(x)

    norm = PoseNormalizer.fit(TRAIN_C2W)
    test = _cache(_random_images(2, seed=1), TEST_C2W)
    for size in ("12x6", (6, 12), [6, 12]):
        model = _Sizes(norm, TEST_C2W[0])
        model.seen = []
        result = evaluate(model, norm, test, frame=FRAME, retrieval=False, image_size=size)
        assert model.seen == [(6, 12)]  # H 6, W 12: "WxH" text is width first
        # test pose 0 is the predicted pose; test pose 1 lies (300, 100, 50) m from it: sqrt(102500) m (float32 codes)
        np.testing.assert_allclose(result.model.translation_m, [0.0, np.sqrt(102_500.0)], rtol=0, atol=1e-4)
    for size, got in ((8, "the int 8"), ("8", "'8'"), ((6, 0), r"\(6, 0\)")):
        with pytest.raises(ValueError, match=rf"^evaluate: `image_size`: expected None, \(H, W\) .* got {got}"):
            evaluate(_FixedPose(norm, TEST_C2W[0]), norm, test, frame=FRAME, retrieval=False, image_size=size)
