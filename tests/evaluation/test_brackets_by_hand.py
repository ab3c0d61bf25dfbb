"""The brackets of every accuracy figure (constant pose, coverage ceiling, retrieval) on inputs worked by hand.

Each test kills small changes of the code (mutants) that the rest of the suite let pass: (N, 3, 4) or
ECEF-sized torch poses, bad training poses, database rows of other lengths, the uniform-thumbnail threshold,
batches.
"""

import numpy as np
import pytest
import torch

from topoloc.evaluation.baselines import constant_pose, coverage_ceiling
from topoloc.evaluation.retrieval import extract_features, nearest_neighbours, thumbnail_features

NADIR = np.diag([1.0, -1.0, -1.0])  # camera x east, y south, z down: looking straight down


def _nadir_34(*positions):
    """(N, 3, 4) nadir poses at the given ENU positions (m)."""
    out = np.zeros((len(positions), 3, 4))
    out[:, :, :3] = NADIR
    out[:, :, 3] = positions
    return out


def test_constant_pose_and_coverage_ceiling_take_3x4_poses_and_return_4x4_ones():
    train = _nadir_34([0.0, 0.0, 100.0], [10.0, 20.0, 100.0])
    # Mean translation (0 + 10) / 2, (0 + 20) / 2, 100; both rotations nadir, so is their chordal mean.
    expected = np.eye(4)
    expected[:3, :3] = NADIR
    expected[:3, 3] = [5.0, 10.0, 100.0]
    np.testing.assert_allclose(constant_pose(train), expected, atol=1e-12)
    # The test pose (9, 20, 100) lies 1 m from training pose 1 and sqrt(81 + 400) m from pose 0, same rotation.
    pred, cov = coverage_ceiling(train, _nadir_34([9.0, 20.0, 100.0]))
    np.testing.assert_array_equal(cov.nearest, [1])
    assert pred.shape == (1, 4, 4)
    np.testing.assert_array_equal(pred[0, 3], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(pred[0, :3], train[1])
    np.testing.assert_allclose(cov.distance_m, [1.0], atol=1e-9)


def test_bad_training_poses_are_refused_naming_train_c2w():
    # Without the check, an empty set failed in the chordal mean naming "rotations_n33", and a NaN pose with
    # numpy's "SVD did not converge".
    nan = np.tile(np.eye(4), (2, 1, 1))
    nan[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"^train_c2w: expected a non-empty batch of camera-to-world poses"):
        constant_pose(np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match=r"^train_c2w: expected finite numbers, got NaN or inf$"):
        constant_pose(nan)
    with pytest.raises(ValueError, match=r"^train_c2w: expected a non-empty batch of camera-to-world poses"):
        coverage_ceiling(np.zeros((0, 4, 4)), np.eye(4)[None])
    with pytest.raises(ValueError, match=r"^train_c2w: expected finite numbers"):
        coverage_ceiling(nan, np.eye(4)[None])


def test_cosines_against_database_rows_of_different_lengths():
    # Row-normalised, the database (2, 0), (1, 1) is (1, 0), (1, 1) / sqrt(2). Query (1, 0): cosines 1 and
    # 1 / sqrt(2). Query (0.6, 0.8) (unit length): cosines 0.6 and 1.4 / sqrt(2) = 0.98995.
    db = np.array([[2.0, 0.0], [1.0, 1.0]])
    q = np.array([[1.0, 0.0], [0.6, 0.8]])
    for chunk_size in (1, 2, 4096):
        idx, sim = nearest_neighbours(q, db, chunk_size=chunk_size)
        assert idx.tolist() == [0, 1]
        np.testing.assert_allclose(sim.numpy(), [1.0, 1.4 / np.sqrt(2.0)], rtol=0, atol=1e-12)


def _grey(values_hw):
    """A float32 RGB image (1, 3, H, W) whose three channels are the given grey values (BT.601 grey = value)."""
    return torch.as_tensor(values_hw, dtype=torch.float32).expand(1, 3, *values_hw.shape).contiguous()


def test_the_uniform_image_threshold_is_an_rms_of_1e_5_on_the_grey_scale():
    # A 16 x 24 image (the thumbnail size: no resampling), left half 0.5, right half 0.5 + 2c. Centred, each
    # pixel is -c or +c: root-mean-square c. Above 1e-5 it is a layout, kept at unit norm (+-1 / sqrt(384));
    # below 1e-5 it counts as uniform, the zero descriptor.
    expected = np.full((16, 24), 1.0 / np.sqrt(384.0))
    expected[:, :12] *= -1
    for c, kept in ((2e-5, True), (1e-4, True), (8e-6, False)):
        img = np.full((16, 24), 0.5)
        img[:, 12:] += 2 * c
        f = thumbnail_features(_grey(img))[0].numpy()
        if kept:
            np.testing.assert_allclose(f, expected.ravel(), rtol=0, atol=1e-4, err_msg=f"rms {c}")
        else:
            assert np.abs(f).max() == 0, f"rms {c}"


def test_thumbnails_of_more_images_than_one_batch():
    # Five 16 x 24 grey images, image k dark (0.2) left of column 4 (k + 1) and bright (0.7) right of it; the
    # descriptor of each, written out with numpy, is its pixels centred and scaled to unit norm.
    images, expected = [], []
    for k in range(5):
        img = np.full((16, 24), 0.7)
        img[:, :4 * (k + 1)] = 0.2
        images.append(_grey(img))
        centred = img.ravel() - img.mean()
        expected.append(centred / np.linalg.norm(centred))
    batch = torch.cat(images)
    for batch_size in (2, 5, 1024):
        f = thumbnail_features(batch, batch_size=batch_size)
        np.testing.assert_allclose(f.numpy(), np.stack(expected), rtol=0, atol=1e-6, err_msg=f"batch {batch_size}")


def test_torch_poses_at_ecef_scale_keep_float64():
    # ECEF coordinates are ~6.4e6 m: float32 keeps them to 0.5 m. Two poses 2 m apart in x average to the
    # midpoint, 4,373,001.3 m, to the micrometre; the ceiling returns the training pose as it was given.
    train = np.tile(np.eye(4), (2, 1, 1))
    train[:, :3, 3] = [[4_373_000.3, 540_000.7, 4_600_000.1], [4_373_002.3, 540_000.7, 4_600_000.1]]
    pose = constant_pose(torch.as_tensor(train))
    np.testing.assert_allclose(pose[:3, 3], [4_373_001.3, 540_000.7, 4_600_000.1], rtol=0, atol=1e-6)
    pred, cov = coverage_ceiling(torch.as_tensor(train), torch.as_tensor(train[[1]]))
    np.testing.assert_array_equal(cov.nearest, [1])
    np.testing.assert_array_equal(pred[0], train[1])


def test_the_ceiling_finds_a_pose_of_the_very_rotation_the_test_pose_has():
    # Ten scenes 10 km apart, each a random rotation R_k (scipy's), a training pose with R_k 100 m from the test
    # pose and one with R_k 1 m from it: the nearest is the one 1 m away, at 0 deg. For about a third of random
    # rotations sum(R * R) rounds above 3, so the cosine (sum - 1) / 2 must be clipped to 1 before its arccos.
    from scipy.spatial.transform import Rotation

    rots = Rotation.random(10, random_state=1).as_matrix()
    train, test = np.tile(np.eye(4), (20, 1, 1)), np.tile(np.eye(4), (10, 1, 1))
    for k, rot in enumerate(rots):
        centre = np.array([10_000.0 * k, 0.0, 300.0])
        test[k, :3, :3] = train[2 * k, :3, :3] = train[2 * k + 1, :3, :3] = rot
        test[k, :3, 3] = centre
        train[2 * k, :3, 3] = centre + [100.0, 0.0, 0.0]
        train[2 * k + 1, :3, 3] = centre + [0.0, 1.0, 0.0]
    pred, cov = coverage_ceiling(train, test)
    np.testing.assert_array_equal(cov.nearest, np.arange(1, 20, 2))
    np.testing.assert_array_equal(pred, train[1::2])
    np.testing.assert_allclose(cov.distance_m, 1.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cov.angle_deg, 0.0, rtol=0, atol=1e-5)


def test_integer_features_are_compared_as_numbers():
    # Query (1, 1) against (0, 3) and (2, 0): cosines 3 / (sqrt(2) 3) = 2 / (sqrt(2) 2) = 1 / sqrt(2), a tie
    # to the lower index; query (0, 5) matches (0, 3) exactly.
    idx, sim = nearest_neighbours([[1, 1], [0, 5]], [[0, 3], [2, 0]])
    assert idx.tolist() == [0, 0]
    np.testing.assert_allclose(sim.numpy(), [1 / np.sqrt(2.0), 1.0], rtol=0, atol=1e-6)


class _MeanBackbone(torch.nn.Module):
    """A backbone whose one feature is each image's mean on the [0, 1] scale (``normalize`` is the identity)."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None]


class _MeanModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = _MeanBackbone()

    def normalize(self, x):
        return x


def test_extract_features_of_an_iterable_of_batches():
    # Grey levels 51 and 102 are 0.2 and 0.4 of 255: two images of 51, then one of 102, in two batches.
    batches = [torch.full((2, 3, 4, 4), 51, dtype=torch.uint8), torch.full((1, 3, 4, 4), 102, dtype=torch.uint8)]
    feats = extract_features(_MeanModel(), batches)
    torch.testing.assert_close(feats, torch.tensor([[0.2], [0.2], [0.4]]), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match=r"^images: expected at least one batch, got none$"):
        extract_features(_MeanModel(), [])
