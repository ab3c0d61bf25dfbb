"""PoseNormalizer: statistics against hand-worked values, the rotation codes against known rotations."""

import json
import math

import numpy as np
import pytest
import torch

from topoloc.data.normalize import PoseNormalizer


def _pose(t, angle_deg=0.0, axis=2):
    """4x4 pose with a rotation of angle_deg about a coordinate axis."""
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(4)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    m[:3, 3] = t
    return m


class TestPoseNormalizer:
    def test_fit_hand_values(self):
        c2w = np.stack([_pose([1.0, 10.0, 5.0]), _pose([3.0, 10.0, -5.0]), _pose([5.0, 10.0, 0.0])])
        n = PoseNormalizer.fit(c2w)
        assert n.mean_m == pytest.approx((3.0, 10.0, 0.0))
        # population std (ddof 0) as AtLoc: sqrt(8/3) for (1, 3, 5); constant axis -> 1
        assert n.std_m == pytest.approx((math.sqrt(8 / 3), 1.0, math.sqrt(50 / 3)))

    def test_encode_known_rotation(self):
        pose = torch.from_numpy(_pose([2.0, -4.0, 6.0], 90.0, axis=2))[None]
        n = PoseNormalizer((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), rotation="log_quat")
        code = n.encode(pose)
        assert code.dtype == torch.float32 and code.shape == (1, 6)
        # log-quaternion of 90 deg about z: half the angle along the axis
        assert code[0].tolist() == pytest.approx([1.0, -2.0, 3.0, 0.0, 0.0, math.pi / 4], abs=1e-6)
        # 6D code (the default): the first two columns of Rz(90) = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
        code = PoseNormalizer((0.0, 0.0, 0.0), (2.0, 2.0, 2.0)).encode(pose)
        assert code.shape == (1, 9)
        assert code[0].tolist() == pytest.approx([1.0, -2.0, 3.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0], abs=1e-6)
        # unit quaternion (w, x, y, z) = (cos 45, 0, 0, sin 45)
        code = PoseNormalizer((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), rotation="quat").encode(pose)
        h = math.sqrt(0.5)
        assert code[0].tolist() == pytest.approx([1.0, -2.0, 3.0, h, 0.0, 0.0, h], abs=1e-6)

    @pytest.mark.parametrize("rotation", ["6d", "quat", "log_quat"])
    def test_roundtrip_batch(self, rotation):
        g = np.random.default_rng(0)
        c2w = np.stack([_pose(g.normal(size=3) * 100, a, ax) for a, ax in zip(g.uniform(-170, 170, 8), range(8))
                        for ax in [ax % 3]])
        n = PoseNormalizer.fit(c2w, rotation=rotation)
        assert n.code_dim == {"6d": 9, "quat": 7, "log_quat": 6}[rotation]
        back = n.decode(n.encode(torch.from_numpy(c2w), dtype=torch.float64))
        assert back.dtype == torch.float64
        np.testing.assert_allclose(back.numpy(), c2w, atol=1e-9)
        # numpy in -> numpy out
        np.testing.assert_allclose(n.decode(n.encode(c2w)), c2w, atol=1e-9)

    @pytest.mark.parametrize("rotation, code", [("log_quat", [0.3, -0.2, 0.9]), ("quat", [0.3, -0.2, 0.9, 2.0]),
                                                 ("6d", [0.3, -0.2, 0.9, 2.0, 1.0, -1.0])])
    def test_decode_gives_a_rotation_for_any_code(self, rotation, code):
        n = PoseNormalizer((1.0, 2.0, 3.0), (1.0, 1.0, 1.0), rotation=rotation)
        r = n.decode(torch.tensor([[0.0, 0.0, 0.0, *code]]))[0, :3, :3]
        torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
        assert torch.linalg.det(r).item() == pytest.approx(1.0)

    def test_decode_6d_is_gram_schmidt(self):
        # a1 = (2, 0, 0) -> b1 = x; a2 = (1, 3, 0) -> minus its x part -> b2 = y; b3 = x cross y = z
        n = PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        r = n.decode(torch.tensor([[0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 3.0, 0.0]]))[0, :3, :3]
        torch.testing.assert_close(r, torch.eye(3, dtype=torch.float64))

    @pytest.mark.parametrize("rotation", ["6d", "quat", "log_quat"])
    def test_state_dict_json(self, rotation):
        n = PoseNormalizer((1.5, -2.0, 3.0), (4.0, 5.0, 6.0), rotation=rotation)
        again = PoseNormalizer.from_state_dict(json.loads(json.dumps(n.state_dict())))
        assert again == n

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match="std_m"):
            PoseNormalizer((0.0, 0.0, 0.0), (1.0, 0.0, 1.0))
        with pytest.raises(ValueError, match="mean_m"):
            PoseNormalizer((0.0, float("nan"), 0.0), (1.0, 1.0, 1.0))
        n = PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        with pytest.raises(ValueError, match="c2w_b44"):
            n.encode(torch.zeros(2, 3, 3))
        with pytest.raises(ValueError, match="pred_b6"):
            n.decode(torch.zeros(2, 7))
        # An integer or bool dtype truncated the codes (a 0.7 m normalised offset became 0) without a word.
        pose = torch.eye(4, dtype=torch.float64)[None]
        pose[0, :3, 3] = torch.tensor([0.7, -0.3, 1.6], dtype=torch.float64)
        assert n.encode(pose, dtype=torch.float16)[0, :3].tolist() == pytest.approx([0.7, -0.3, 1.6], abs=1e-3)
        for dtype in (torch.int64, torch.bool, "float32"):
            with pytest.raises(ValueError, match="dtype: expected a floating-point torch dtype"):
                n.encode(pose, dtype=dtype)
        with pytest.raises(ValueError, match="missing keys"):
            PoseNormalizer.from_state_dict({"mean_m": [0, 0, 0]})
        with pytest.raises(ValueError, match="non-empty"):
            PoseNormalizer.fit(np.zeros((0, 4, 4)))
        with pytest.raises(ValueError, match="rotation"):
            PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), rotation="euler")


def _nadir(tilt_deg: float) -> np.ndarray:
    """Camera-to-ENU pose looking straight down (yaw 0: image x east, y south), tilted about east."""
    a = np.deg2rad(tilt_deg)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    pose = np.eye(4)
    pose[:3, :3] = rx @ np.diag([1.0, -1.0, -1.0])
    return pose


class TestRotationReference:
    def test_nadir_views_sit_on_the_log_quaternion_boundary_without_it(self):
        # diag(1, -1, -1) is a 180 deg rotation: quaternion (0, 1, 0, 0), w = 0. Two views 2 deg apart
        # get codes pi apart (opposite signs) with the identity reference ...
        poses = np.stack([_nadir(1.0), _nadir(-1.0)])
        raw = PoseNormalizer.fit(poses, rotation_reference="identity", rotation="log_quat").encode(poses)[:, 3:]
        assert np.linalg.norm(raw[0] - raw[1]) > 3.0
        # ... and half their angle apart (log-quaternions are half-angles) with the fitted mean.
        norm = PoseNormalizer.fit(poses, rotation="log_quat")
        code = norm.encode(poses)[:, 3:]
        assert np.linalg.norm(code[0] - code[1]) == pytest.approx(np.deg2rad(2.0) / 2, rel=1e-6)
        np.testing.assert_allclose(norm.decode(norm.encode(poses)), poses, atol=1e-12)

    def test_mean_of_the_lhs_flight_looks_down(self, presets_dir):
        from topoloc.geodesy import LocalFrame

        c2w = LocalFrame.named("comballaz").cesium_to_c2w(np.load(presets_dir / "comballaz-LHS_poses.npy")[:2000])
        reference = np.asarray(PoseNormalizer.fit(c2w).reference_rotation).reshape(3, 3)
        # LHS pitch is -90..-45 with uniform yaw: the mean viewing direction (column 2) points down
        # (within the pitch spread: the chordal mean of oblique views is not exactly nadir).
        assert reference[2, 2] < -0.9
        np.testing.assert_allclose(reference @ reference.T, np.eye(3), atol=1e-12)

    def test_state_round_trip_and_old_states(self):
        norm = PoseNormalizer.fit(np.stack([_nadir(3.0), _nadir(-5.0)]))
        again = PoseNormalizer.from_state_dict(json.loads(json.dumps(norm.state_dict())))
        assert again == norm
        old = PoseNormalizer.from_state_dict({"mean_m": [0, 0, 0], "std_m": [1, 1, 1]})
        assert old.reference_rotation is None and old.rotation == "log_quat"  # written before the 6D code

    def test_bad_reference(self):
        with pytest.raises(ValueError, match="reference_rotation"):
            PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), tuple(np.diag([1.0, 1.0, -1.0]).ravel()))
        with pytest.raises(ValueError, match="rotation_reference"):
            PoseNormalizer.fit(np.eye(4)[None], rotation_reference="median")


def _cesium_c2w(yaw_deg, pitch_deg, roll_deg=0.0):
    """Camera-to-ENU rotations of Cesium attitudes at the Comballaz origin, built independently of
    topoloc: NED -> ENU is (x, y, z) -> (y, x, -z); Cesium's body axes (x forward, y right, z down)
    map to OpenCV camera axes (x right, y down, z forward) by the column order [1, 2, 0]."""
    from scipy.spatial.transform import Rotation

    yaw_deg, pitch_deg, roll_deg = np.broadcast_arrays(yaw_deg, pitch_deg, roll_deg)
    body_in_ned = Rotation.from_euler("ZYX", np.c_[yaw_deg, pitch_deg, roll_deg], degrees=True).as_matrix()
    ned_to_enu = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    out = np.tile(np.eye(4), (len(body_in_ned), 1, 1))
    out[:, :3, :3] = (ned_to_enu @ body_in_ned)[:, :, [1, 2, 0]]
    return out


class TestContinuousCodes:
    """Poses a few degrees apart across the log-quaternion's flip get close 6D codes."""

    @pytest.mark.parametrize("reference", ["identity", "mean"])
    @pytest.mark.parametrize("yaw, pitch", [((179.0, -179.0), (-45.0, -45.0)),   # yaw wrap
                                            ((0.0, 0.0), (-89.0, -88.0)),        # nadir, identity flip
                                            ((-90.0, -90.0), (-89.0, -86.0))])    # nadir, yaw -90
    def test_close_poses_close_codes(self, reference, yaw, pitch):
        poses = _cesium_c2w(np.array(yaw), np.array(pitch))
        angle = np.rad2deg(np.arccos(np.clip((np.trace(poses[0, :3, :3].T @ poses[1, :3, :3]) - 1) / 2, -1, 1)))
        assert 0.5 < angle < 5.0
        # A training set whose chordal mean puts the log-quaternion's flip 180 deg of yaw from these views.
        train = np.concatenate([poses, _cesium_c2w(np.array([yaw[0] + 180.0] * 4), np.array([-60.0] * 4))])
        for rotation in ("6d", "quat"):
            norm = PoseNormalizer.fit(train, rotation_reference=reference, rotation=rotation)
            code = norm.encode(poses)[:, 3:]
            gap = min(np.linalg.norm(code[0] - code[1]), np.linalg.norm(code[0] + code[1]))  # q ~ -q
            # |R1 - R2|_F = 2 sqrt(2) sin(angle / 2) bounds the 6D gap; a unit quaternion's is 2 sin(angle / 4)
            bound = 2 * math.sqrt(2) * math.sin(math.radians(angle) / 2) if rotation == "6d" else \
                2 * math.sin(math.radians(angle) / 4)
            assert gap <= bound + 1e-9
            back = norm.decode(norm.encode(poses))
            # The angle from |R1 - R2|_F = 2 sqrt(2) sin(angle / 2): arccos of the trace cannot resolve it
            # (float64 rounding of the trace alone puts arccos at about 1e-6 deg, more or less by CPU).
            chord = np.linalg.norm(back[:, :3, :3] - poses[:, :3, :3], axis=(1, 2))
            assert np.rad2deg(2 * np.arcsin(chord / (2 * math.sqrt(2)))).max() < 1e-6

    def test_log_quaternion_jumps_where_the_6d_code_does_not(self):
        # The flight that motivated the 6D code: the planned Comballaz flight, every pair under 15 deg apart.
        from topoloc.data import load_preset
        from topoloc.geodesy import LocalFrame

        c2w = LocalFrame.named("comballaz").cesium_to_c2w(load_preset("comballaz-2020-11-06-planned"))
        r = c2w[:, :3, :3]
        cos = (np.einsum("aij,bij->ab", r, r) - 1) / 2
        i, j = np.nonzero(np.triu(cos > math.cos(math.radians(15.0)), 1))
        assert len(i) > 1000
        gaps = {}
        for rotation in ("6d", "log_quat"):
            code = PoseNormalizer.fit(c2w, rotation=rotation).encode(c2w)[:, 3:]
            gaps[rotation] = np.linalg.norm(code[i] - code[j], axis=1)
        assert gaps["log_quat"].max() > 1.5                       # jumps inside the data
        assert gaps["6d"].max() <= 2 * math.sqrt(2) * math.sin(math.radians(15.0) / 2) + 1e-9


@pytest.mark.parametrize("rotation, code", [("quat", [0.0, 0.0, 0.0, 0.0]), ("6d", [0.0] * 6),
                                            ("6d", [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                                            ("6d", [1.0, 2.0, 3.0, 2.0, 4.0, 6.0])])
def test_a_degenerate_code_has_no_rotation_in_either_decoder(rotation, code):
    from topoloc.pose_decoder import decode_pose

    # A zero quaternion was NaN here but the identity in the exported decoder; a zero or parallel 6D
    # code a zero matrix in both. Neither is a rotation: NaN in both, which pose_errors then refuses.
    n = PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), rotation=rotation)
    full = np.array([[5.0, 6.0, 7.0, *code]])
    ours, exported = n.decode(full), decode_pose(full, n.state_dict())
    assert np.isnan(ours[0, :3, :3]).all() and np.isnan(exported[0, :3, :3]).all()
    np.testing.assert_array_equal(ours[0, :3, 3], [5.0, 6.0, 7.0])  # the position is still decoded
    np.testing.assert_array_equal(exported[0, :3, 3], [5.0, 6.0, 7.0])


def test_fit_refuses_non_finite_poses_naming_the_first_bad_one():
    c2w = np.stack([_pose([1.0, 2.0, 3.0], a) for a in (0.0, 30.0, 60.0, 90.0)])
    bad = c2w.copy()
    bad[2, 0, 1], bad[3, 1, 1] = np.nan, np.inf  # was numpy's "LinAlgError: SVD did not converge"
    for rotation_reference in ("mean", "identity"):
        with pytest.raises(ValueError, match=r"^c2w_n44: expected finite rotations, pose 2 holds NaN or inf$"):
            PoseNormalizer.fit(bad, rotation_reference=rotation_reference)
    bad = c2w.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"^c2w_n44: expected finite translations, pose 1 holds NaN or inf$"):
        PoseNormalizer.fit(torch.as_tensor(bad))


def test_a_reference_that_is_not_a_rotation_or_not_finite_is_refused_saying_which():
    # diag(2, 0.5, 1) has determinant 1 but is no rotation (R R^T = diag(4, 0.25, 1), not I)
    with pytest.raises(ValueError, match="reference_rotation: expected a rotation matrix"):
        PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), tuple(np.diag([2.0, 0.5, 1.0]).ravel()))
    with pytest.raises(ValueError, match="reference_rotation: expected 9 finite numbers"):
        PoseNormalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (float("nan"),) + (0.0,) * 8)


def test_fit_refuses_a_single_pose_without_its_batch_axis():
    with pytest.raises(ValueError, match=r"c2w_n44: expected a non-empty batch of shape \(N, 4, 4\), got \(4, 4\)"):
        PoseNormalizer.fit(np.eye(4))


@pytest.mark.parametrize("block, det, gram", [
    (np.diag([1.0, 1.0, -1.0]), "-1", "0"),  # a reflection: ENU and NED mixed up; its round trip was off by 2
    (2.0 * np.eye(3), "8", "3"),  # a scaled rotation: off by 1
    (np.zeros((3, 3)), "0", "1"),  # it even gave a reference rotation
])
def test_fit_refuses_blocks_that_are_not_rotations(block, det, gram):
    poses = np.repeat(np.eye(4)[None], 4, axis=0)
    poses[2, :3, :3] = block
    with pytest.raises(ValueError, match=rf"^c2w_n44: expected rotations .*; 1 pose\(s\) are not, the first pose 2 "
                                         rf"\(determinant {det}, \|R\^T R - I\| up to {gram}\)"):
        PoseNormalizer.fit(poses)


def test_an_axis_that_hardly_varies_is_raised_to_a_hundredth_of_the_largest():
    # a flight at one height (EPFL-2020-11-11-planned: z std 0.05 m against 71 m): 1 m of height error weighed as
    # much as 1,400 m across in the loss. By hand: x = +-100 m (std 100), y = +-10 m (std 10), z = +-0.05 m (std
    # 0.05) -> z raised to 1 m, y kept.
    poses = np.repeat(np.eye(4)[None], 2, axis=0)
    poses[:, :3, 3] = [[100.0, 10.0, 0.05], [-100.0, -10.0, -0.05]]
    with pytest.warns(UserWarning, match=r"hardly vary along z 0.05 m \(the largest axis: 100 m\); raised to 1 m"):
        normalizer = PoseNormalizer.fit(poses)
    assert normalizer.std_m == pytest.approx((100.0, 10.0, 1.0))
