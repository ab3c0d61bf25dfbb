"""PoseNormalizer: statistics against hand-worked values, the log-quaternion against known rotations."""

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
        n = PoseNormalizer((0.0, 0.0, 0.0), (2.0, 2.0, 2.0))
        code = n.encode(torch.from_numpy(_pose([2.0, -4.0, 6.0], 90.0, axis=2))[None])
        assert code.dtype == torch.float32 and code.shape == (1, 6)
        # log-quaternion of 90 deg about z: half the angle along the axis
        assert code[0].tolist() == pytest.approx([1.0, -2.0, 3.0, 0.0, 0.0, math.pi / 4], abs=1e-6)

    def test_roundtrip_batch(self):
        g = np.random.default_rng(0)
        c2w = np.stack([_pose(g.normal(size=3) * 100, a, ax) for a, ax in zip(g.uniform(-170, 170, 8), range(8))
                        for ax in [ax % 3]])
        n = PoseNormalizer.fit(c2w)
        back = n.decode(n.encode(torch.from_numpy(c2w), dtype=torch.float64))
        assert back.dtype == torch.float64
        np.testing.assert_allclose(back.numpy(), c2w, atol=1e-9)
        # numpy in -> numpy out
        np.testing.assert_allclose(n.decode(n.encode(c2w)), c2w, atol=1e-9)

    def test_decode_normalises_quaternion(self):
        n = PoseNormalizer((1.0, 2.0, 3.0), (1.0, 1.0, 1.0))
        r = n.decode(torch.tensor([[0.0, 0.0, 0.0, 0.3, -0.2, 0.9]]))[0, :3, :3]
        torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
        assert torch.linalg.det(r).item() == pytest.approx(1.0)

    def test_state_dict_json(self):
        n = PoseNormalizer((1.5, -2.0, 3.0), (4.0, 5.0, 6.0))
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
        with pytest.raises(ValueError, match="missing keys"):
            PoseNormalizer.from_state_dict({"mean_m": [0, 0, 0]})
        with pytest.raises(ValueError, match="non-empty"):
            PoseNormalizer.fit(np.zeros((0, 4, 4)))
