"""Errors split by the share of a land-cover class in view, worked by hand."""

import numpy as np
import pytest

from topoloc.evaluation.landcover import class_shares, errors_by_share


def test_class_shares_count_pixels():
    sem = np.zeros((2, 2, 5), dtype=np.uint8)
    sem[0, 0, :3] = 3  # 3 of 10 pixels
    sem[1] = 3
    sem[1, 1, 4] = 1
    shares = class_shares(sem, {3: "forest_deciduous", 1: "meadow", 7: "building"})
    assert shares["forest_deciduous"].tolist() == [0.3, 0.9]
    assert shares["meadow"].tolist() == [0.0, 0.1]
    assert shares["building"].tolist() == [0.0, 0.0]


def test_errors_by_share_sorts_and_cuts_into_equal_parts():
    share = np.array([0.5, 0.0, 0.25, 1.0, 0.75, 0.1, 0.4, 0.6])
    t = 10.0 * np.arange(1, 9)  # image k: 10 (k + 1) m, k + 1 deg
    r = np.arange(1.0, 9.0)
    parts = errors_by_share(t, r, share)
    # sorted by share: images 1, 5 | 2, 6 | 0, 7 | 4, 3
    assert [(p.low, p.high, p.count) for p in parts] == [(0.0, 0.1, 2), (0.25, 0.4, 2), (0.5, 0.6, 2), (0.75, 1.0, 2)]
    assert [p.median_m for p in parts] == [40.0, 50.0, 45.0, 45.0]
    assert [p.median_deg for p in parts] == [4.0, 5.0, 4.5, 4.5]


def test_ties_keep_their_order_and_uneven_counts_go_first():
    # seven views, three with none of the class: the parts still hold 3, 2 and 2 images
    share = np.array([0.0, 0.3, 0.0, 0.2, 0.0, 0.1, 0.9])
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    parts = errors_by_share(t, t / 10, share, parts=3)
    assert [p.count for p in parts] == [3, 2, 2]
    assert [p.median_m for p in parts] == [3.0, 5.0, 4.5]  # {0, 2, 4} | {5, 3} | {1, 6}
    assert (parts[0].low, parts[0].high) == (0.0, 0.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(share=np.zeros(3)), "one value per image, got 4, 4 and 3"),
    (dict(parts=0), "`parts` must be an integer from 1 to the number of images \\(4\\)"),
    (dict(parts=5), "got 5"),
    (dict(parts=True), "got True"),
])
def test_errors_by_share_refusals(kwargs, match):
    args = dict(translation_m=np.ones(4), rotation_deg=np.ones(4), share=np.zeros(4)) | kwargs
    with pytest.raises(ValueError, match=match):
        errors_by_share(**args)


def test_class_shares_refuses_a_stack_that_is_no_class_map():
    with pytest.raises(ValueError, match=r"\(N, H, W\) integer class ids, got float64 \(2, 3\)"):
        class_shares(np.zeros((2, 3)), {1: "meadow"})


def _yawed(yaw_deg, x_m):
    """Poses at (x, 0, 0) m turned by yaw about z."""
    c, s = np.cos(np.deg2rad(yaw_deg)), np.sin(np.deg2rad(yaw_deg))
    poses = np.tile(np.eye(4), (len(x_m), 1, 1))
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = c, -s, s, c
    poses[:, 0, 3] = x_m
    return poses


def test_rows_of_poses_finds_each_pose_in_any_order():
    from topoloc.evaluation.landcover import rows_of_poses

    pose_file = _yawed(np.array([0.0, 0.0, 90.0, 0.0]), np.array([0.0, 0.0, 0.0, 50.0]))
    # rows 0, 1 and 2 share a camera centre (a hover): row 1 repeats row 0, row 2 is turned by 90 deg
    assert rows_of_poses(pose_file[[3, 2, 0]], pose_file).tolist() == [3, 2, 0]
    # 0.1 mm off is the same pose; 1 m, or 1 deg of yaw (0.025 in the rotation's Frobenius norm), is not
    near = pose_file[[3]].copy()
    near[0, 0, 3] += 1e-4
    assert rows_of_poses(near, pose_file).tolist() == [3]
    far = pose_file[[3]].copy()
    far[0, 0, 3] += 1.0
    with pytest.raises(ValueError, match="in no row of the pose file.*pose 0, nearest row 3"):
        rows_of_poses(far, pose_file)
    with pytest.raises(ValueError, match="in no row"):
        rows_of_poses(_yawed(np.array([1.0]), np.array([50.0])), pose_file)
    with pytest.raises(ValueError, match=r"\(N, 4, 4\)"):
        rows_of_poses(pose_file[:, :3], pose_file)


def test_each_part_gives_the_median_not_the_mean_of_skewed_errors():
    # twelve views, three per quarter; in each quarter one error far from the other two:
    # quarter errors (m) 1, 2, 30 | 10, 11, 60 | 5, 5, 100 | 0, 3, 4 -> medians 2, 11, 5, 3 (means 11, 27, 36.7, 2.3)
    # and (deg) 1, 2, 90 | 4, 6, 8 | 30, 1, 2 | 7, 7, 70 -> medians 2, 6, 2, 7 (means 31, 6, 11, 28)
    share = np.array([0.05, 0.0, 0.1, 0.3, 0.35, 0.4, 0.5, 0.55, 0.6, 0.9, 0.95, 1.0])
    t = np.array([1.0, 2.0, 30.0, 10.0, 11.0, 60.0, 5.0, 5.0, 100.0, 0.0, 3.0, 4.0])
    r = np.array([1.0, 2.0, 90.0, 4.0, 6.0, 8.0, 30.0, 1.0, 2.0, 7.0, 7.0, 70.0])
    perm = np.array([7, 2, 11, 0, 5, 9, 3, 10, 1, 8, 4, 6])  # the images in any order
    parts = errors_by_share(t[perm], r[perm], share[perm])
    assert [p.count for p in parts] == [3, 3, 3, 3]
    assert [(p.low, p.high) for p in parts] == [(0.0, 0.1), (0.3, 0.4), (0.5, 0.6), (0.9, 1.0)]
    assert [p.median_m for p in parts] == [2.0, 11.0, 5.0, 3.0]
    assert [p.median_deg for p in parts] == [2.0, 6.0, 2.0, 7.0]
