"""Render-and-compare verification (`topoloc.evaluation.verify`) on hand-made images and renderers,
checked against numpy's correlation coefficient and against the pose each view was made at."""

import numpy as np
import pytest
import torch

from topoloc.evaluation import (average_hypotheses, candidate_poses, dense_features, grey_features, verify_poses,
                                view_similarity)


def _pose(x: float) -> np.ndarray:
    c2w = np.eye(4)
    c2w[0, 3] = x
    return c2w


_RNG = np.random.default_rng(0)
_PATTERN = _RNG.integers(0, 256, size=(3, 16, 80)).astype(np.uint8)


def _shift_renderer(c2w) -> torch.Tensor:
    """A 'world' seen through a 16 x 24 window whose left edge is at the camera's x (pixels)."""
    c2w = np.asarray(c2w)
    out = [torch.from_numpy(_PATTERN[:, :, int(round(p[0, 3])):int(round(p[0, 3])) + 24].copy()) for p in c2w]
    return torch.stack(out)


def test_grey_similarity_is_numpys_correlation_coefficient():
    a = torch.randint(0, 256, (1, 3, 8, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    b = torch.randint(0, 256, (1, 3, 8, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    s = view_similarity(grey_features(a), grey_features(b)[:, None])
    want = np.corrcoef(a.double().mean(1).flatten().numpy(), b.double().mean(1).flatten().numpy())[0, 1]
    assert float(s) == pytest.approx(want, abs=1e-5)


def test_grey_similarity_ignores_brightness_and_contrast_and_a_flat_view_scores_zero():
    a = (torch.randint(0, 100, (1, 3, 8, 12), generator=torch.Generator().manual_seed(3)) * 2).to(torch.uint8)
    brighter = (a.int() // 2 + 40).to(torch.uint8)  # exact in uint8: a is even
    flat = torch.full_like(a, 77)
    s = view_similarity(grey_features(a), torch.stack([grey_features(brighter), grey_features(flat)], 1))
    assert s[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert s[0, 1].item() == 0.0


def test_candidate_poses_put_the_prediction_first_then_the_most_similar_descriptors():
    db_c2w = np.stack([_pose(x) for x in (10.0, 20.0, 30.0)])
    db = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    query = torch.tensor([[0.1, 1.0], [2.0, 0.1]])  # cosine order: 30, 20, 10 / 10, 20, 30
    hyp = candidate_poses(np.stack([_pose(-1.0), _pose(-2.0)]), query, db, db_c2w, k=2)
    assert hyp.shape == (2, 3, 4, 4)
    assert hyp[:, :, 0, 3].tolist() == [[-1.0, 30.0, 20.0], [-2.0, 10.0, 20.0]]
    assert candidate_poses(np.stack([_pose(5.0)])[:, :3], query[:1], db, db_c2w, k=0).shape == (1, 1, 4, 4)


@pytest.mark.parametrize("k, match", [(4, "k: expected an integer from 0 to the database size 3"),
                                      (-1, "k: expected"), (True, "k: expected")])
def test_candidate_poses_refuse_a_bad_k(k, match):
    db_c2w = np.stack([_pose(x) for x in (1.0, 2.0, 3.0)])
    with pytest.raises(ValueError, match=match):
        candidate_poses(_pose(0.0)[None], torch.ones(1, 2), torch.ones(3, 2), db_c2w, k=k)


def test_candidate_poses_refuse_descriptors_of_other_widths_and_poses_of_another_count():
    db_c2w = np.stack([_pose(1.0), _pose(2.0)])
    with pytest.raises(ValueError, match="the same width D"):
        candidate_poses(_pose(0.0)[None], torch.ones(1, 3), torch.ones(2, 2), db_c2w, k=1)
    with pytest.raises(ValueError, match="database_c2w: expected one pose per database descriptor"):
        candidate_poses(_pose(0.0)[None], torch.ones(1, 2), torch.ones(3, 2), db_c2w, k=1)


@pytest.mark.parametrize("chunk", [1, 2, 100])
def test_verify_picks_the_hypothesis_the_photo_was_taken_from(chunk):
    truths = [3, 17, 30, 5, 40]
    photos = _shift_renderer(np.stack([_pose(x) for x in truths]))
    offsets = [[0, 9, 21], [-5, 0, 6], [11, 0, -20], [7, 14, 0], [0, 1, 2]]
    hyp = np.stack([np.stack([_pose(t + o) for o in offs]) for t, offs in zip(truths, offsets)])
    out = verify_poses(photos, hyp, _shift_renderer, chunk=chunk)
    assert out.index.tolist() == [offs.index(0) for offs in offsets] == [0, 1, 1, 2, 0]
    assert out.c2w[:, 0, 3].tolist() == [float(t) for t in truths]
    assert out.scores.shape == (5, 3)
    assert out.scores.max(1) == pytest.approx(1.0, abs=1e-5)


def test_verify_refuses_a_renderer_of_the_wrong_size_and_hypotheses_of_another_count():
    photos = _shift_renderer(np.stack([_pose(3.0)]))
    hyp = np.stack([_pose(3.0), _pose(4.0)])[None]

    def small(c2w):
        return _shift_renderer(c2w)[..., :8, :]

    with pytest.raises(ValueError, match=r"render: expected uint8 views of shape \(2, 3, 16, 24\)"):
        verify_poses(photos, hyp, small)
    with pytest.raises(ValueError, match="hypotheses: expected .* N = 1 photos"):
        verify_poses(photos, np.concatenate([hyp, hyp]), _shift_renderer)
    with pytest.raises(ValueError, match="query_images: expected uint8 RGB images"):
        verify_poses(photos.float(), hyp, _shift_renderer)


def test_dense_features_are_unit_vectors_at_an_eighth_of_the_resolution():
    from topoloc.models import Backbone

    torch.manual_seed(0)
    backbone = Backbone("resnet18", pretrained=False)
    images = torch.randint(0, 256, (3, 3, 32, 48), dtype=torch.uint8)
    f = dense_features(backbone, images)
    assert f.shape == (3, 128, 4, 6)
    assert torch.allclose(f.norm(dim=1), torch.ones(3, 4, 6), atol=1e-5)
    assert backbone.training  # restored
    with pytest.raises(ValueError, match=r"reduction: 3 is not a feature map .* reductions \[2, 4, 8, 16, 32\]"):
        dense_features(backbone, images, reduction=3)


def test_verify_describes_the_views_with_the_view_model_and_the_photos_with_the_model():
    # The AdaBN reading: the photos through the adapted copy, the rendered views through the model as trained.
    # The scores are the mean cosine similarities of the photo's map under `model` and each view's under
    # `view_model` (two networks of other weights here), not under one network for both.
    from topoloc.models import AtLoc

    torch.manual_seed(0)
    photo_net = AtLoc("resnet18", feat_dim=16)
    torch.manual_seed(1)
    view_net = AtLoc("resnet18", feat_dim=16)
    photos = _shift_renderer(np.stack([_pose(3.0), _pose(30.0)]))
    hyp = np.stack([np.stack([_pose(3.0), _pose(12.0)]), np.stack([_pose(41.0), _pose(30.0)])])
    out = verify_poses(photos, hyp, _shift_renderer, model=photo_net, view_model=view_net)
    views = _shift_renderer(hyp.reshape(-1, 4, 4))
    want = view_similarity(dense_features(photo_net, photos), dense_features(view_net, views).reshape(2, 2, -1, 2, 3))
    np.testing.assert_allclose(out.scores, want.numpy(), rtol=0, atol=1e-6)
    one_net = verify_poses(photos, hyp, _shift_renderer, model=photo_net).scores
    assert np.abs(one_net - out.scores).max() > 0.01  # the two readings differ: the test tells them apart


def test_dense_features_pass_the_image_through_the_models_input_filter():
    # Local contrast normalisation removes a constant offset of each channel (its local mean moves with it; the
    # blur pads by reflection), so with the filter the maps of an image and of the image 30 levels brighter agree;
    # without it (the same weights) they do not.
    from topoloc.models import AtLoc

    images = torch.randint(20, 200, (2, 3, 32, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    brighter = images + 30
    torch.manual_seed(0)
    filtered = AtLoc("resnet18", feat_dim=16, local_contrast=2.0)
    torch.manual_seed(0)
    plain = AtLoc("resnet18", feat_dim=16)
    torch.testing.assert_close(dense_features(filtered, brighter), dense_features(filtered, images),
                               rtol=0, atol=1e-4)
    assert (dense_features(plain, brighter) - dense_features(plain, images)).abs().max() > 0.01


def _yaw_pose(deg: float, x: float = 0.0) -> np.ndarray:
    c2w = _pose(x)
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    c2w[:2, :2] = [[c, -s], [s, c]]
    return c2w


def _yaw_of(c2w) -> float:
    return float(np.degrees(np.arctan2(c2w[1, 0], c2w[0, 0])))


def test_averaging_weighs_the_best_hypotheses_by_a_softmax_of_their_scores():
    # scores 0.1 and 0.0 at temperature 0.1: weights 1 / (1 + e^-1) = 0.7310586 and e^-1 / (1 + e^-1) = 0.2689414.
    # Positions 0 and 10 m: 2.689414 m. Yaws 0 and 40 deg about one axis: the chordal mean of two rotations
    # about one axis is the rotation by atan2(w1 sin 0 + w2 sin 40, w1 cos 0 + w2 cos 40)
    # = atan2(0.2689414 x 0.6427876, 0.7310586 + 0.2689414 x 0.7660444) = atan2(0.1728729, 0.9371000) = 10.4524 deg.
    hyp = np.stack([_yaw_pose(0.0, 0.0), _yaw_pose(40.0, 10.0), _yaw_pose(90.0, 50.0)])[None]
    scores = np.array([[0.1, 0.0, -5.0]])  # the third weighs e^-51 of the first: nothing
    out = average_hypotheses(hyp, scores, top=3, temperature=0.1)
    w2 = np.exp(-1.0) / (1.0 + np.exp(-1.0))
    assert out[0, 0, 3] == pytest.approx(10.0 * w2, abs=1e-9)
    want = np.degrees(np.arctan2(w2 * np.sin(np.radians(40.0)), (1 - w2) + w2 * np.cos(np.radians(40.0))))
    assert want == pytest.approx(10.4524, abs=1e-4)
    assert _yaw_of(out[0]) == pytest.approx(want, abs=1e-9)
    np.testing.assert_allclose(out[0, :3, :3] @ out[0, :3, :3].T, np.eye(3), atol=1e-12)  # a rotation
    assert np.linalg.det(out[0, :3, :3]) == pytest.approx(1.0)
    np.testing.assert_array_equal(out[0, 3], [0, 0, 0, 1])


def test_averaging_the_top_one_is_the_verified_choice():
    hyp = np.stack([np.stack([_yaw_pose(10.0 * i, float(i)) for i in range(4)])] * 2)
    scores = np.array([[0.1, 0.7, 0.3, 0.7], [0.9, 0.2, 0.2, 0.1]])  # photo 0: a tie, the earlier one wins
    out = average_hypotheses(hyp[:, :, :3], scores, top=1)  # (N, K, 3, 4) taken too
    np.testing.assert_allclose(out, hyp[[0, 1], [1, 0]], atol=1e-12)
    # only the `top` best are averaged: photo 1's second and third (0.2 each) are left out at top=1 and 2 alike
    np.testing.assert_allclose(average_hypotheses(hyp, scores, top=2)[1, 0, 3],
                               1.0 / (1.0 + np.exp(0.7 / 0.05)), atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(top=0), "top: expected an integer from 1 to the 2"), (dict(top=3), "top: expected"),
    (dict(top=1.0), "top: expected"), (dict(top=2, temperature=0.0), "temperature: expected a positive finite"),
    (dict(top=2, temperature=float("inf")), "temperature"), (dict(top=2, temperature="0.1"), "temperature"),
])
def test_averaging_refuses_bad_arguments(kwargs, match):
    hyp = np.stack([_pose(0.0), _pose(1.0)])[None]
    with pytest.raises(ValueError, match=match):
        average_hypotheses(hyp, np.array([[0.5, 0.4]]), **kwargs)


def test_averaging_refuses_scores_of_another_shape_or_not_finite():
    hyp = np.stack([_pose(0.0), _pose(1.0)])[None]
    with pytest.raises(ValueError, match=r"scores: expected one per hypothesis, shape \(1, 2\)"):
        average_hypotheses(hyp, np.array([0.5, 0.4]))
    with pytest.raises(ValueError, match="scores: expected finite values"):
        average_hypotheses(hyp, np.array([[0.5, np.nan]]))
