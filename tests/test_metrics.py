"""Pose metrics on cases worked by hand."""

import json

import numpy as np
import pytest
import torch

from topoloc.metrics import CROSSLOC_THRESHOLDS, PoseErrorSummary, pose_errors, summarize


def pose(r=np.eye(3), t=(0.0, 0.0, 0.0)):
    p = np.eye(4)
    p[:3, :3] = r
    p[:3, 3] = t
    return p


def test_three_four_five_and_ninety_degrees():
    rz90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    pred = np.stack([pose(t=(3.0, 4.0, 0.0)), pose(rz90, (10.0, 0.0, 0.0))])
    gt = np.stack([pose(), pose(t=(10.0, 0.0, 0.0))])
    t, r = pose_errors(pred, gt)
    np.testing.assert_allclose(t, [5.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r, [0.0, 90.0], atol=1e-12)


def test_accepts_torch_and_3x4():
    pred = torch.tensor(pose(t=(0.0, 0.0, 2.0))[None, :3])
    t, r = pose_errors(pred, pose()[None])
    assert t.tolist() == [2.0] and r.tolist() == [0.0]


def test_summary_by_hand():
    t = np.arange(1.0, 11.0)  # 1..10 m
    r = np.array([1.0, 2.0, 4.0, 6.0, 8.0, 9.0, 9.5, 11.0, 12.0, 0.5])
    s = summarize(t, r)
    assert s.count == 10
    assert s.median_m == 5.5 and s.mean_m == 5.5
    assert s.p90_m == pytest.approx(9.1)  # linear interpolation between the 9th and 10th values
    # sorted rotations: 0.5 1 2 4 6 | 8 9 9.5 11 12 -> median (6 + 8) / 2
    assert s.median_deg == pytest.approx(7.0) and s.mean_deg == pytest.approx(6.3)
    # (3 m, 3 deg): images 1, 2 -> 0.2; (5, 5): 1, 2, 3 (t=3 < 5, r=4 < 5) -> 0.3; (10, 7): 1-4 -> 0.4;
    # (10, 10): 1-7 -> 0.7; (20, 10): also t=10, r=0.5 -> 0.8; (30, 10): 0.8.
    assert s.within == {
        "3m_3deg": 0.2, "5m_5deg": 0.3, "10m_7deg": 0.4, "10m_10deg": 0.7, "20m_10deg": 0.8, "30m_10deg": 0.8,
    }
    assert list(s.within) == [f"{m:g}m_{d:g}deg" for m, d in CROSSLOC_THRESHOLDS]


def test_summary_serialises_and_prints():
    s = summarize([1.0, 2.0], [3.0, 4.0])
    d = json.loads(s.to_json())
    assert d["median_m"] == 1.5 and PoseErrorSummary.from_dict(d) == s
    text = s.table("val")
    assert "| median | 1.50 | 3.50 |" in text and "5m_5deg" in text and "val" in text


def test_thresholds_that_are_not_pairs_are_refused_by_name():
    # 5 gave "'int' object is not iterable", ((1,),) "not enough values to unpack".
    for bad in (5, [(1,)], [(5.0, -1.0)], [("a", "b")], [(float("nan"), 3.0)]):
        with pytest.raises(ValueError, match=r"thresholds: expected \(metres, degrees\) pairs"):
            summarize([1.0], [1.0], thresholds=bad)
    assert summarize([1.0, 4.0], [1.0, 1.0], thresholds=[[2, 2]]).within == {"2m_2deg": 0.5}


def test_bad_input():
    with pytest.raises(ValueError, match="pred_c2w"):
        pose_errors(np.zeros((2, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="same number"):
        pose_errors(np.stack([pose(), pose()]), pose()[None])
    with pytest.raises(ValueError, match="NaN"):
        pose_errors(np.full((1, 4, 4), np.nan), pose()[None])
    with pytest.raises(ValueError, match="at least one"):
        summarize([], [])
    with pytest.raises(ValueError, match="same number"):
        summarize([1.0], [1.0, 2.0])


def test_a_matrix_that_is_not_a_rotation_is_refused():
    # A rotation scaled by 2 has a geodesic "angle" of 0 to itself by trace, and a reflection has
    # determinant -1: neither is a camera orientation.
    scaled = pose()
    scaled[:3, :3] *= 2.0
    with pytest.raises(ValueError, match=r"pred_c2w\[1\]: expected a rotation .* \|R\^T R - I\| = 3"):
        pose_errors(np.stack([pose(), scaled]), np.stack([pose(), pose()]))
    mirrored = pose()
    mirrored[:3, 0] *= -1.0
    with pytest.raises(ValueError, match=r"gt_c2w\[0\]: .*determinant -1"):
        pose_errors(pose()[None], mirrored[None])
    # float32 round-off of a true rotation (as a model decodes it) is still a rotation.
    c, s = np.cos(0.3), np.sin(0.3)
    turned = pose()
    turned[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float32)
    _, r = pose_errors(turned[None], pose()[None])
    np.testing.assert_allclose(r, np.degrees(0.3), atol=1e-4)


def _ecef_and_enu(n=3):
    from topoloc.data.preset import load_preset
    from topoloc.geodesy import LocalFrame, cesium_to_c2w

    rows = load_preset("comballaz-2021-03-27-winter")[:n]
    return cesium_to_c2w(rows), LocalFrame.named("comballaz").cesium_to_c2w(rows)


def test_poses_of_two_frames_are_refused_not_6368_km_apart():
    ecef, enu = _ecef_and_enu()
    # the Comballaz origin is 6,368 km from the Earth's centre: that was the "error" of each image
    with pytest.raises(ValueError, match=r"pred_c2w is in ECEF .* gt_c2w in a local frame.*same frame"):
        pose_errors(ecef, enu)
    with pytest.raises(ValueError, match=r"pred_c2w is in a local frame .* gt_c2w in ECEF"):
        pose_errors(enu, ecef)
    t, r = pose_errors(ecef, ecef)  # either frame alone is fine
    assert np.allclose(t, 0) and np.allclose(r, 0, atol=1e-6)
    far = enu.copy()
    far[:, :3, 3] += 5.0e5  # a diverged model 870 km off in ENU is an error, not a frame mix
    assert np.allclose(pose_errors(far, enu)[0], np.sqrt(3) * 5.0e5)


def test_negative_errors_are_refused():
    # signed differences, not distances: 100 % were "within 3 m / 3 deg"
    with pytest.raises(ValueError,
                       match=r"translation_m: errors are distances, expected values >= 0, got -4 at index 0"):
        summarize([-4.0, -20.0], [1.0, 8.0])
    with pytest.raises(ValueError, match=r"rotation_deg: errors are angles, expected values >= 0, got -8 at index 1"):
        summarize([4.0, 20.0], [1.0, -8.0])
