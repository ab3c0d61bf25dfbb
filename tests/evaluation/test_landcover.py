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


def test_tied_shares_stay_in_one_part_whatever_their_order():
    # Twenty views, twelve with none of the class (share 0). Cut in two halves of ten, the zeros used to be split
    # by their order in the flight (the first ten in the first half): two parts of the same share, different
    # errors. Now the twelve make the first part and the eight others the second. Errors: image k has k + 1 m.
    share = np.array([0.0, 0.3, 0.0, 0.0, 0.6, 0.0, 0.0, 0.1, 0.0, 0.0,
                      0.8, 0.0, 0.0, 0.2, 0.0, 0.0, 0.5, 0.0, 0.4, 0.7])
    t = np.arange(1.0, 21.0)
    low, high = errors_by_share(t, t, share, parts=2)
    assert (low.count, low.low, low.high, high.count, high.low, high.high) == (12, 0.0, 0.0, 8, 0.1, 0.8)
    assert low.median_m == 9.5  # 1, 3, 4, 6, 7, 9 | 10, 12, 13, 15, 16, 18: (9 + 10) / 2
    assert high.median_m == 12.5  # 2, 5, 8, 11 | 14, 17, 19, 20: (11 + 14) / 2
    flipped = errors_by_share(t[::-1], t[::-1], share[::-1], parts=2)
    assert [(p.count, p.median_m) for p in flipped] == [(12, 9.5), (8, 12.5)]


def test_a_part_that_ties_leave_nothing_for_is_empty():
    # shares 0, 0, 0, 0.5 in three parts: the first takes ceil(4 / 3) = 2 images and the tie's third, the second
    # ceil(1 / 2) = 1, the third none
    parts = errors_by_share(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 4.0]),
                            np.array([0.0, 0.0, 0.0, 0.5]), parts=3)
    assert [(p.count, p.median_m) for p in parts[:2]] == [(3, 2.0), (1, 4.0)]
    assert parts[2].count == 0 and np.isnan(parts[2].median_m) and np.isnan(parts[2].low)


def test_as_many_parts_as_images_gives_each_image_its_own_part():
    t, r, share = np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.9, 0.1])
    parts = errors_by_share(t, r, share, parts=3)
    assert [(p.low, p.high, p.count, p.median_m, p.median_deg) for p in parts] == [
        (0.1, 0.1, 1, 30.0, 3.0), (0.5, 0.5, 1, 10.0, 1.0), (0.9, 0.9, 1, 20.0, 2.0)]


def test_rotation_errors_of_another_length_are_refused():
    with pytest.raises(ValueError, match=r"one value per image, got 4, 3 and 4"):
        errors_by_share(np.ones(4), np.ones(3), np.zeros(4))


@pytest.mark.parametrize("semantics, got", [
    (np.zeros((2, 3, 4)), r"got float64 \(2, 3, 4\)"),  # (N, H, W) but not class ids
    (np.zeros((2, 3), dtype=np.int64), r"got int64 \(2, 3\)"),  # class ids but no stack of maps
])
def test_class_shares_refuses_float_maps_and_flat_stacks(semantics, got):
    with pytest.raises(ValueError, match=r"`semantics` must be \(N, H, W\) integer class ids, " + got):
        class_shares(semantics, {1: "meadow"})


def test_rows_of_poses_tolerance_is_metres_plus_radians_1e_3_by_default():
    from topoloc.evaluation.landcover import rows_of_poses

    pose_file = _yawed(np.array([0.0, 90.0]), np.array([0.0, 50.0]))
    # 0.03 deg of yaw is 0.03 * pi / 180 = 5.2e-4 (radians) < 1e-3: the same row; 0.1 deg is 1.7e-3: none
    assert rows_of_poses(_yawed(np.array([0.03]), np.array([0.0])), pose_file).tolist() == [0]
    with pytest.raises(ValueError, match="in no row"):
        rows_of_poses(_yawed(np.array([0.1]), np.array([0.0])), pose_file)
    # 0.5 mm off is the same row, 2 mm (2e-3 > 1e-3) is not
    assert rows_of_poses(_yawed(np.array([90.0]), np.array([50.0005])), pose_file).tolist() == [1]
    with pytest.raises(ValueError, match=r"nearest row 1 differs by 0\.002, more than 0\.001"):
        rows_of_poses(_yawed(np.array([90.0]), np.array([50.002])), pose_file)
    with pytest.raises(ValueError, match=r"a non-empty \(M, 4, 4\) pose file, got \(1, 4, 4\) and \(0, 4, 4\)"):
        rows_of_poses(pose_file[:1], pose_file[:0])


def test_class_shares_refuses_maps_without_pixels():
    # a (2, 0, 5) stack has no pixels to share: it gave NaN shares (0 / 0) and a RuntimeWarning
    with pytest.raises(ValueError,
                       match=r"^class_shares: `semantics` has maps of no pixels \(2, 0, 5\); expected H, W >= 1$"):
        class_shares(np.zeros((2, 0, 5), dtype=np.int64), {1: "meadow"})
