"""coverage: nearest training pose against scipy's KD-tree (position only), a brute-force scipy
search (joint measure) and hand-chosen poses."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from scipy.spatial.transform import Rotation

from topoloc.data import coverage


def _poses(n, rng, scale=500.0, offset=0.0):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.random(n, random_state=rng).as_matrix()
    c2w[:, :3, 3] = rng.uniform(-scale, scale, size=(n, 3)) + offset
    return c2w


class TestCoverage:
    @pytest.mark.parametrize("offset", [0.0, 4.4e6])  # ENU-sized and ECEF-sized coordinates
    def test_against_kdtree(self, offset, monkeypatch):
        import topoloc.data.pose_coverage as mod

        monkeypatch.setattr(mod, "CHUNK_ELEMENTS", 5000)  # several chunks
        rng = np.random.default_rng(1)
        train, test = _poses(700, rng, offset=offset), _poses(150, rng, offset=offset)
        c = coverage(train, test, m_per_deg=0.0)
        dist, idx = cKDTree(train[:, :3, 3]).query(test[:, :3, 3])
        np.testing.assert_allclose(c.distance_m, dist, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(c.nearest, idx)
        rel = Rotation.from_matrix(test[:, :3, :3]).inv() * Rotation.from_matrix(train[idx, :3, :3])
        np.testing.assert_allclose(c.angle_deg, np.degrees(rel.magnitude()), atol=1e-6)
        np.testing.assert_allclose(c.position_m, dist, rtol=0, atol=1e-6)

    @pytest.mark.parametrize("m_per_deg", [1.0, 4.0])
    def test_joint_measure_against_brute_force(self, m_per_deg, monkeypatch):
        import topoloc.data.pose_coverage as mod

        monkeypatch.setattr(mod, "CHUNK_ELEMENTS", 5000)
        rng = np.random.default_rng(2)
        train, test = _poses(300, rng, scale=100.0), _poses(60, rng, scale=100.0)
        c = coverage(train, test, m_per_deg=m_per_deg)
        dist = cdist(test[:, :3, 3], train[:, :3, 3])
        rots = Rotation.from_matrix(train[:, :3, :3])
        ang = np.stack([np.degrees((Rotation.from_matrix(r).inv() * rots).magnitude()) for r in test[:, :3, :3]])
        joint = dist + m_per_deg * ang
        idx = joint.argmin(axis=1)
        np.testing.assert_array_equal(c.nearest, idx)
        np.testing.assert_allclose(c.distance_m, dist[np.arange(60), idx], atol=1e-6)
        np.testing.assert_allclose(c.angle_deg, ang[np.arange(60), idx], atol=1e-6)
        np.testing.assert_allclose(c.joint, joint.min(axis=1), atol=1e-6)
        np.testing.assert_allclose(c.position_m, dist.min(axis=1), atol=1e-6)

    def test_joint_measure_prefers_the_view_that_looks_the_same_way(self):
        # Training pose 0 is 2 m from the test camera but turned 90 deg; pose 1 is 10 m away and
        # turned 3 deg. With 1 m/deg: 2 + 90 = 92 against 10 + 3 = 13, so pose 1; by position: pose 0.
        yaw = lambda d: Rotation.from_euler("z", d, degrees=True).as_matrix()  # noqa: E731
        train = np.tile(np.eye(4), (2, 1, 1))
        train[0, :3, :3], train[0, :3, 3] = yaw(90.0), [2.0, 0.0, 0.0]
        train[1, :3, :3], train[1, :3, 3] = yaw(3.0), [0.0, 6.0, 8.0]
        test = np.eye(4)[None]
        c = coverage(train, test)
        assert c.nearest.tolist() == [1]
        assert (c.distance_m[0], c.angle_deg[0]) == pytest.approx((10.0, 3.0))
        assert c.position_m[0] == pytest.approx(2.0)
        assert coverage(train, test, m_per_deg=0.0).nearest.tolist() == [0]
        # At 0.05 m/deg the 90 deg turn costs 4.5 m: 6.5 m beats 10.15 m.
        assert coverage(train, test, m_per_deg=0.05).nearest.tolist() == [0]
        with pytest.raises(ValueError, match="m_per_deg"):
            coverage(train, test, m_per_deg=-1.0)

    def test_torch_input_summary_and_table(self):
        train = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
        train[:, 0, 3] = torch.tensor([0.0, 10.0, 20.0])
        test = torch.eye(4, dtype=torch.float64).repeat(4, 1, 1)
        test[:, 1, 3] = torch.tensor([1.0, 2.0, 3.0, 4.0])
        c = coverage(train, test)
        s = c.summary()
        assert s["count"] == 4 and s["median_m"] == pytest.approx(2.5) and s["max_m"] == 4.0
        assert s["median_deg"] == 0.0
        assert "| median | 2.50 | 0.00 | 2.50 |" in c.table()

    def test_bad_input(self):
        with pytest.raises(ValueError, match="train_c2w"):
            coverage(np.zeros((3, 3, 3)), np.tile(np.eye(4), (1, 1, 1)))
        with pytest.raises(ValueError, match="test_c2w: expected at least one"):
            coverage(np.tile(np.eye(4), (1, 1, 1)), np.zeros((0, 4, 4)))
        bad = np.tile(np.eye(4), (1, 1, 1))
        bad[0, 0, 3] = np.nan
        with pytest.raises(ValueError, match="finite"):
            coverage(bad, np.tile(np.eye(4), (1, 1, 1)))


def test_a_numpy_weight_is_a_number():
    # np.float32(1.0) was refused as "expected a finite non-negative weight".
    rng = np.random.default_rng(3)
    train, test = _poses(20, rng), _poses(5, rng)
    a = coverage(train, test, m_per_deg=np.float32(2.0))
    b = coverage(train, test, m_per_deg=2.0)
    np.testing.assert_array_equal(a.nearest, b.nearest)
    with pytest.raises(ValueError, match="m_per_deg: expected a finite non-negative weight"):
        coverage(train, test, m_per_deg="2")


def test_training_and_test_poses_of_two_frames_are_refused():
    from topoloc.data.preset import load_preset
    from topoloc.geodesy import LocalFrame, cesium_to_c2w

    rows = load_preset("comballaz-2021-03-27-winter")[:4]
    ecef, enu = cesium_to_c2w(rows), LocalFrame.named("comballaz").cesium_to_c2w(rows)
    with pytest.raises(ValueError, match=r"train_c2w is in ECEF .* test_c2w in a local frame"):
        coverage(ecef, enu)


def test_summary_and_table_values_by_hand():
    # One training pose (identity at the origin), so every test pose's nearest is it. Test poses at
    # x = 1, 2, 3, 4, 10 m, turned 1, 2, 3, 4, 20 deg about z. Distances: median 3, mean 20 / 5 = 4,
    # p90 (numpy's linear rule: position 0.9 * 4 = 3.6 between 4 and 10) = 4 + 0.6 * 6 = 7.6, max 10.
    # Angles: median 3, mean 30 / 5 = 6, p90 = 4 + 0.6 * 16 = 13.6, max 20.
    train = np.eye(4)[None]
    test = np.tile(np.eye(4), (5, 1, 1))
    test[:, 0, 3] = [1.0, 2.0, 3.0, 4.0, 10.0]
    test[:, :3, :3] = Rotation.from_euler("z", [[1.0], [2.0], [3.0], [4.0], [20.0]], degrees=True).as_matrix()
    c = coverage(train, test, m_per_deg=0.5)
    assert c.summary() == pytest.approx({
        "count": 5, "m_per_deg": 0.5, "median_m": 3.0, "mean_m": 4.0, "p90_m": 7.6, "max_m": 10.0,
        "median_deg": 3.0, "mean_deg": 6.0, "p90_deg": 13.6, "max_deg": 20.0,
        "median_position_m": 3.0, "p90_position_m": 7.6})
    np.testing.assert_allclose(c.joint, [1.5, 3.0, 4.5, 6.0, 20.0])  # distance + 0.5 m/deg x angle
    table = c.table("t")
    for row in ("| median | 3.00 | 3.00 | 3.00 |", "| mean | 4.00 | 6.00 | 4.00 |",
                "| p90 | 7.60 | 13.60 | 7.60 |", "| max | 10.00 | 20.00 | 10.00 |"):
        assert row in table


def test_a_bool_weight_is_refused():
    with pytest.raises(ValueError, match="m_per_deg: expected a finite non-negative weight .* got True"):
        coverage(np.eye(4)[None], np.eye(4)[None], m_per_deg=True)


def test_nearest_of_two_close_candidates_at_ecef_scale():
    # 20 test cameras at ECEF-sized coordinates (|x| ~ 4.4e6 m: |x|^2 ~ 6e13 m^2, whose float64 step is
    # 2^-7 = 0.008 m^2); each has two training cameras 10.0 mm and 10.5 mm away (squared distances
    # 1.0e-4 and 1.1e-4 m^2 apart by 1e-5 m^2, far under that step): the nearest is the 10.0 mm one.
    rng = np.random.default_rng(0)
    test = np.tile(np.eye(4), (20, 1, 1))
    test[:, :3, 3] = np.array([4.35e6, 5.5e5, 4.6e6]) + rng.uniform(-300.0, 300.0, (20, 3))
    train = np.tile(np.eye(4), (40, 1, 1))
    d = rng.normal(size=(20, 2, 3))
    d /= np.linalg.norm(d, axis=2, keepdims=True)
    train[0::2, :3, 3] = test[:, :3, 3] + 0.0105 * d[:, 0]
    train[1::2, :3, 3] = test[:, :3, 3] + 0.0100 * d[:, 1]
    c = coverage(train, test, m_per_deg=0.0)
    np.testing.assert_array_equal(c.nearest, np.arange(1, 40, 2))
    np.testing.assert_allclose(c.distance_m, 0.0100, atol=1e-8)
