"""Rotations against scipy's Rotation (an independent implementation) and hand-worked cases."""

import math
import re

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from topoloc.rotations import (
    canonical_quaternion,
    chordal_mean_rotation,
    geodesic_angle_deg,
    matrix_to_quaternion,
    qexp,
    qlog,
    quaternion_angle_deg,
    quaternion_to_matrix,
    rotation_zyx,
)

RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def random_rotations(n, seed=0):
    return Rotation.random(n, random_state=seed)


def scipy_wxyz(rot):
    q = rot.as_quat()  # scipy: (x, y, z, w)
    q = np.concatenate([q[:, 3:], q[:, :3]], axis=1)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


class TestQuaternionMatrix:
    def test_hand_worked_90_about_z(self):
        q = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
        np.testing.assert_allclose(quaternion_to_matrix(q), RZ90, atol=1e-12)
        np.testing.assert_allclose(matrix_to_quaternion(RZ90), q, atol=1e-12)

    def test_against_scipy(self):
        rot = random_rotations(200)
        q = scipy_wxyz(rot)
        np.testing.assert_allclose(quaternion_to_matrix(q), rot.as_matrix(), atol=1e-12)
        np.testing.assert_allclose(matrix_to_quaternion(rot.as_matrix()), q, atol=1e-9)

    def test_w_non_negative_and_batched(self):
        q = matrix_to_quaternion(random_rotations(24, seed=1).as_matrix().reshape(2, 3, 4, 3, 3))
        assert q.shape == (2, 3, 4, 4) and np.all(q[..., 0] >= 0)

    def test_torch_keeps_dtype_and_graph(self):
        q = torch.tensor([[0.9, 0.1, -0.3, 0.2]], dtype=torch.float32, requires_grad=True)
        r = quaternion_to_matrix(canonical_quaternion(q))
        assert r.dtype == torch.float32 and r.requires_grad
        r.sum().backward()
        assert torch.isfinite(q.grad).all()

    def test_bad_shape(self):
        with pytest.raises(ValueError, match=r"q: expected shape \(\.\.\., 4\)"):
            quaternion_to_matrix(np.zeros((2, 3)))
        with pytest.raises(ValueError, match=r"r: expected shape \(\.\.\., 3, 3\)"):
            matrix_to_quaternion(np.zeros((2, 3, 4)))


class TestLogQuaternion:
    def test_hand_worked(self):
        # 90 deg about z: q = (cos 45, 0, 0, sin 45); AtLoc's log is arccos(w) * v / |v| = (0, 0, pi / 4).
        q = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
        np.testing.assert_allclose(qlog(q), [0.0, 0.0, math.pi / 4], atol=1e-12)
        np.testing.assert_allclose(qlog(np.array([1.0, 0, 0, 0])), [0, 0, 0], atol=0)

    def test_equals_half_rotation_vector(self):
        # For w >= 0 the log-quaternion is half scipy's rotation vector.
        rot = random_rotations(100, seed=2)
        np.testing.assert_allclose(qlog(scipy_wxyz(rot)), rot.as_rotvec() / 2, atol=1e-9)

    def test_hemisphere(self):
        q = scipy_wxyz(random_rotations(10, seed=3))
        np.testing.assert_allclose(qlog(-q), qlog(q), atol=1e-12)

    def test_round_trip(self):
        q = scipy_wxyz(random_rotations(100, seed=4))
        np.testing.assert_allclose(qexp(qlog(q)), q, atol=1e-12)
        np.testing.assert_allclose(qexp(np.zeros(3)), [1, 0, 0, 0], atol=0)

    def test_gradient_finite_at_identity(self):
        u = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
        qexp(u).sum().backward()
        assert torch.isfinite(u.grad).all()


class TestAngles:
    def test_hand_worked(self):
        assert geodesic_angle_deg(np.eye(3), RZ90) == pytest.approx(90.0, abs=1e-12)
        rx180 = np.diag([1.0, -1.0, -1.0])
        assert geodesic_angle_deg(np.eye(3), rx180) == pytest.approx(180.0, abs=1e-12)
        assert geodesic_angle_deg(RZ90, RZ90) == pytest.approx(0.0, abs=1e-12)

    def test_against_scipy_magnitude(self):
        a, b = random_rotations(200, seed=5), random_rotations(200, seed=6)
        expected = np.rad2deg((a.inv() * b).magnitude())
        np.testing.assert_allclose(geodesic_angle_deg(a.as_matrix(), b.as_matrix()), expected, atol=1e-9)
        np.testing.assert_allclose(quaternion_angle_deg(scipy_wxyz(a), scipy_wxyz(b)), expected, atol=1e-9)

    def test_tiny_angles_are_accurate(self):
        rot = Rotation.from_rotvec([[0.0, 0.0, np.deg2rad(1e-7)]])
        assert geodesic_angle_deg(np.eye(3)[None], rot.as_matrix())[0] == pytest.approx(1e-7, rel=1e-6)
        q = scipy_wxyz(rot)
        assert quaternion_angle_deg(np.array([[1.0, 0, 0, 0]]), q)[0] == pytest.approx(1e-7, rel=1e-6)

    def test_torch_batched(self):
        a = torch.tensor(random_rotations(8, seed=7).as_matrix())
        out = geodesic_angle_deg(a, a.transpose(-1, -2))
        assert isinstance(out, torch.Tensor) and out.shape == (8,)


def test_rotation_zyx_against_scipy():
    rng = np.random.default_rng(8)
    ypr = rng.uniform([-180, -90, -180], [180, 90, 180], (100, 3))
    expected = Rotation.from_euler("ZYX", ypr, degrees=True).as_matrix()  # intrinsic z-y'-x''
    np.testing.assert_allclose(rotation_zyx(ypr[:, 0], ypr[:, 1], ypr[:, 2]), expected, atol=1e-12)


class TestChordalMeanRotation:
    # 180-degree turns about x, y and z: diagonal matrices, so every sum below is diagonal too.
    RX180, RY180, RZ180 = np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])

    def test_a_sum_with_negative_determinant_gives_a_rotation_not_a_reflection(self):
        # Worked by hand: 2 Rx + 3 Ry + 4 Rz = diag(-5, -3, -1), determinant -15. The chordal mean
        # maximises trace(R^T M); over the diagonal rotations trace is -9 (I), -1 (Rx), 3 (Ry), 7 (Rz),
        # so the mean is Rz(180) (the nearest orthogonal matrix, -I, is a reflection).
        rots = np.stack([self.RX180] * 2 + [self.RY180] * 3 + [self.RZ180] * 4)
        mean = chordal_mean_rotation(rots)
        np.testing.assert_allclose(mean, self.RZ180, atol=1e-12)
        assert np.linalg.det(mean) == pytest.approx(1.0)

    def test_three_half_turns_average_to_a_half_turn(self):
        # Rx + Ry + Rz = -I: every half turn is equally near (trace(R^T (-I)) = -trace R, least at
        # trace -1), so the mean is some rotation by 180 degrees, and a proper rotation.
        mean = chordal_mean_rotation(np.stack([self.RX180, self.RY180, self.RZ180]))
        np.testing.assert_allclose(mean @ mean.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(mean) == pytest.approx(1.0)
        assert np.trace(mean) == pytest.approx(-1.0)

    def test_widely_spread_rotations_match_scipy_mean(self):
        # scipy's Rotation.mean is documented to be the chordal L2 mean. These random triples were
        # chosen because their summed matrices have a negative determinant: the sign fix matters.
        for seed in (8, 10, 25, 29, 32, 38):
            rot = Rotation.random(3, random_state=seed)
            assert np.linalg.det(rot.as_matrix().sum(axis=0)) < 0
            mean = chordal_mean_rotation(torch.tensor(rot.as_matrix()) if seed % 2 else rot.as_matrix())
            np.testing.assert_allclose(mean, rot.mean().as_matrix(), atol=1e-9)


def test_integer_tensors_are_read_as_numbers():
    # an integer numpy array worked; the same integers as a torch tensor failed inside torch.linalg / torch.finfo
    quarter_turn_z = torch.tensor([[0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 deg about z: (cos 45, 0, 0, sin 45)
    h = math.sqrt(0.5)
    assert torch.allclose(matrix_to_quaternion(quarter_turn_z), torch.tensor([h, 0, 0, h], dtype=torch.float64))
    assert torch.allclose(qlog(torch.tensor([0, 0, 0, 1])), torch.tensor([0, 0, math.pi / 2], dtype=torch.float64))


@pytest.mark.parametrize("fn, a, b", [(geodesic_angle_deg, np.zeros((2, 3, 3)), np.zeros((3, 3, 3))),
                                      (quaternion_angle_deg, np.ones((2, 4)), np.ones((3, 4)))])
def test_batches_that_do_not_broadcast_are_named(fn, a, b):
    with pytest.raises(ValueError, match=rf"^{fn.__name__}: .* the batch shapes {re.escape(str(a.shape))} and "
                                         rf"{re.escape(str(b.shape))} do not broadcast"):
        fn(a, b)
