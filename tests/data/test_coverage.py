"""coverage: nearest training pose against scipy's KD-tree and scipy's rotation angles."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
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
        c = coverage(train, test)
        dist, idx = cKDTree(train[:, :3, 3]).query(test[:, :3, 3])
        np.testing.assert_allclose(c.distance_m, dist, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(c.nearest, idx)
        rel = Rotation.from_matrix(test[:, :3, :3]).inv() * Rotation.from_matrix(train[idx, :3, :3])
        np.testing.assert_allclose(c.angle_deg, np.degrees(rel.magnitude()), atol=1e-6)

    def test_torch_input_summary_and_table(self):
        train = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
        train[:, 0, 3] = torch.tensor([0.0, 10.0, 20.0])
        test = torch.eye(4, dtype=torch.float64).repeat(4, 1, 1)
        test[:, 1, 3] = torch.tensor([1.0, 2.0, 3.0, 4.0])
        c = coverage(train, test)
        s = c.summary()
        assert s["count"] == 4 and s["median_m"] == pytest.approx(2.5) and s["max_m"] == 4.0
        assert s["median_deg"] == 0.0
        assert "| median | 2.50 | 0.00 |" in c.table()

    def test_bad_input(self):
        with pytest.raises(ValueError, match="train_c2w"):
            coverage(np.zeros((3, 3, 3)), np.tile(np.eye(4), (1, 1, 1)))
        with pytest.raises(ValueError, match="test_c2w: expected at least one"):
            coverage(np.tile(np.eye(4), (1, 1, 1)), np.zeros((0, 4, 4)))
        bad = np.tile(np.eye(4), (1, 1, 1))
        bad[0, 0, 3] = np.nan
        with pytest.raises(ValueError, match="finite"):
            coverage(bad, np.tile(np.eye(4), (1, 1, 1)))
