"""Pose metrics on more cases worked by hand: a skewed summary and its table, the rotation tolerance, the
frame check's median and its neither-frame band."""

import numpy as np
import pytest

from topoloc.metrics import pose_errors, summarize


def _pose(t=(0.0, 0.0, 0.0), r=np.eye(3)):
    p = np.eye(4)
    p[:3, :3] = r
    p[:3, 3] = t
    return p


def test_a_skewed_summary_and_its_table():
    t = [1.0, 2.0, 3.0, 4.0, 100.0]
    r = [5.0, 1.0, 50.0, 2.0, 3.0]  # sorted: 1 2 3 5 50
    s = summarize(t, r, thresholds=((3.0, 3.0), (5.0, 5.0)))
    # Means (1 + 2 + 3 + 4 + 100) / 5 = 22 and (1 + 2 + 3 + 5 + 50) / 5 = 12.2, far from the medians 3 and 3.
    assert (s.count, s.median_m, s.median_deg) == (5, 3.0, 3.0)
    assert s.mean_m == pytest.approx(22.0) and s.mean_deg == pytest.approx(12.2)
    # 90th percentile, linear: rank 0.9 * (5 - 1) = 3.6, so the 4th value + 0.6 of the step to the 5th:
    # 4 + 0.6 * 96 = 61.6 m and 5 + 0.6 * 45 = 32 deg.
    assert s.p90_m == pytest.approx(61.6) and s.p90_deg == pytest.approx(32.0)
    # Strictly below both: (3 m, 3 deg) only image 1 (2 m, 1 deg): 1/5; (5 m, 5 deg) images 1 and 3
    # (4 m, 2 deg); image 0 has exactly 5 deg, not below: 2/5.
    assert s.within == {"3m_3deg": 0.2, "5m_5deg": 0.4}
    lines = s.table().splitlines()
    assert lines[0] == "5 images"
    assert "| mean | 22.00 | 12.20 |" in lines and "| p90 | 61.60 | 32.00 |" in lines
    assert lines[-3:] == ["| within | 3m_3deg | 5m_5deg |", "| --- | ---: | ---: |", "| share | 20.0% | 40.0% |"]


def test_a_zero_threshold_is_refused():
    for bad in (((0.0, 5.0),), ((5.0, 0.0),)):
        with pytest.raises(ValueError, match=r"^thresholds: expected \(metres, degrees\) pairs of positive numbers"):
            summarize([1.0], [1.0], thresholds=bad)


def test_the_rotation_tolerance_is_1e_4():
    # R + E, E one entry: (R + E)^T (R + E) - I = R^T E + E^T R + E^T E, whose largest entry is about 2 e for
    # the diagonal element under e. e = 5e-6 (~1e-5, a float32 decode's round-off at worst) is a rotation;
    # e = 1e-3 (~2e-3) is not.
    near = _pose()
    near[0, 0] += 5e-6
    t, r = pose_errors(near[None], _pose()[None])
    assert t.tolist() == [0.0] and r[0] < 0.01
    off = _pose()
    off[0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"^pred_c2w\[0\]: expected a rotation .* \|R\^T R - I\| = 0.002"):
        pose_errors(off[None], _pose()[None])


ECEF_X = 6.371e6  # a point on the x axis about the Earth's radius from its centre: ECEF


def test_the_frame_is_told_by_the_median_radius():
    # Two ECEF predictions and one diverged to 1e9 m: the median radius is ECEF's, so against a local frame's
    # truth it is a frame mix (the mean radius, 3.4e8 m, is neither frame's and was let through).
    pred = np.stack([_pose((ECEF_X, 0.0, 0.0)), _pose((ECEF_X, 10.0, 0.0)), _pose((1e9, 0.0, 0.0))])
    gt = np.stack([_pose((0.0, 0.0, 100.0))] * 3)
    # The message gives each set's median radius: the middle of 6,371,000, sqrt(6,371,000^2 + 10^2) =
    # 6,371,000.000008 and 1e9 m, printed 6,371,000 m; and 100 m.
    with pytest.raises(ValueError, match=r"^pred_c2w is in ECEF and gt_c2w in a local frame \(their positions lie "
                                         r"at a median 6,371,000 m and 100 m from the origin\)"):
        pose_errors(pred, gt)


@pytest.mark.parametrize("pred_x, gt_x", [
    (3.0e6, 0.0),  # diverged (neither frame) against a local truth
    (7.0e6, 0.0),  # beyond ECEF's 6.48e6 m: neither frame either
    (3.0e6, ECEF_X),  # diverged against an ECEF truth: not "a local frame"
])
def test_a_prediction_of_neither_frame_is_an_error_not_a_frame_mix(pred_x, gt_x):
    t, r = pose_errors(_pose((pred_x, 0.0, 0.0))[None], _pose((gt_x, 0.0, 0.0))[None])
    assert t.tolist() == [abs(pred_x - gt_x)] and r.tolist() == [0.0]


def test_labels_keep_fractional_thresholds():
    s = summarize([1.0, 3.0], [1.0, 1.0], thresholds=((2.5, 1.5), (2.0, 2.0)))
    assert s.within == {"2.5m_1.5deg": 0.5, "2m_2deg": 0.5}


def test_the_message_gives_the_largest_entry_of_rt_r_minus_i():
    # A 45 deg turn about z with its first column stretched by 1.01: A = R D, D = diag(1.01, 1, 1), so
    # A^T A - I = D^2 - I, largest entry 1.01^2 - 1 = 0.0201. (A A^T - I = R (D^2 - I) R^T has 0.0201 / 2.)
    c = np.sqrt(0.5)
    stretched = _pose(r=np.array([[c, -c, 0.0], [c, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1.01, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"^gt_c2w\[0\]: expected a rotation .* \|R\^T R - I\| = 0.0201 and "
                                         r"determinant 1.01 \(1 of 1 poses\)$"):
        pose_errors(_pose()[None], stretched[None])


def test_a_titled_table_counts_the_images_and_to_json_takes_dumps_arguments():
    s = summarize([1.0, 3.0], [2.0, 4.0], thresholds=((2.0, 3.0),))
    assert s.table("val").splitlines()[0] == "**val** (2 images)"
    lines = s.to_json(indent=2).splitlines()
    assert lines[:3] == ["{", '  "count": 2,', '  "median_m": 2.0,']


def test_errors_of_more_than_one_column_are_refused_and_a_column_is_read_as_a_list():
    # (2, 3) per-axis offsets are not 2 errors: flattened they were summarised as 6 "images"
    with pytest.raises(ValueError, match=r"^translation_m: expected one error per image, shape \(N,\), got shape "
                                         r"\(2, 3\)"):
        summarize([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]], [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    with pytest.raises(ValueError, match=r"^rotation_deg: expected one error per image, shape \(N,\), got shape "
                                         r"\(1, 2, 2\)"):
        summarize([1.0, 2.0, 3.0, 4.0], [[[1.0, 2.0], [3.0, 4.0]]])
    # a column (N, 1) holds one error per image: median of 1, 2, 40 is 2, their mean 43 / 3
    s = summarize(np.array([[1.0], [2.0], [40.0]]), np.array([[1.0], [2.0], [1.0]]))
    assert (s.count, s.median_m, s.mean_m) == (3, 2.0, pytest.approx(43.0 / 3.0))
