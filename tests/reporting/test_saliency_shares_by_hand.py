"""The per-class saliency shares, their table, the bootstrap and the change sentence against values worked
by hand (what mutation testing showed unpinned)."""

import numpy as np
import pytest
import torch

from topoloc.reporting.saliency_shares import (ClassShares, bootstrap_mean, per_image_shares, shares_table,
                                               stable_change_text)

STABLE = "stable (road, building, rock, ridgeline)"
UNSTABLE = "unstable (sky, cloud, forest_deciduous, snow, real_only)"


def test_maps_and_ids_that_cannot_be_shares_are_refused():
    sem = torch.zeros(1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"maps: expected saliency maps of shape \(B, H, W\), got \(2, 2\)"):
        per_image_shares(torch.ones(2, 2), sem)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="maps: expected finite, non-negative saliency"):
            per_image_shares(torch.tensor([[[1.0, bad], [1.0, 1.0]]]), sem)
    with pytest.raises(ValueError, match="semantics: expected non-negative class ids"):
        per_image_shares(torch.ones(1, 2, 2), torch.tensor([[[0, -1], [0, 0]]]))


def test_the_default_class_table_names_the_ids():
    # mass 3 + 1 = 4: road (id 6) 3 / 4, sky (id 0) 1 / 4; one pixel of four is road
    s = per_image_shares(torch.tensor([[[3.0, 1.0], [0.0, 0.0]]]), torch.tensor([[[6, 0], [0, 0]]], dtype=torch.uint8))
    assert s.saliency == pytest.approx({"road": 0.75, "sky": 0.25})
    assert s.area == pytest.approx({"road": 0.25, "sky": 0.75})


def test_an_all_zero_map_puts_no_mass_anywhere():
    # image 1: no saliency at all (shares 0, not NaN); image 2: all on the road pixel
    maps = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]])
    sem = torch.tensor([[[6, 0], [0, 0]], [[6, 0], [0, 0]]], dtype=torch.uint8)
    s = per_image_shares(maps, sem, {0: "sky", 6: "road"})
    np.testing.assert_array_equal(s.saliency_per_image, [[0.0, 0.0], [0.0, 1.0]])  # columns: sky, road
    assert s.saliency == pytest.approx({"sky": 0.0, "road": 0.5})


def test_enrichment_by_hand():
    # test_shares_by_hand's images: road 1/2 of the saliency on 1/8 of the pixels; road + rock 5/8 on 2/8
    maps = torch.tensor([[[4.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    sem = torch.tensor([[[6, 0], [0, 0]], [[0, 9], [4, 1]]], dtype=torch.uint8)
    s = per_image_shares(maps, sem, {0: "sky", 4: "rock", 6: "road", 9: "cloud", 1: "meadow"})
    assert s.enrichment(["road"]) == pytest.approx(4.0)
    assert s.enrichment(["road", "rock"]) == pytest.approx(2.5)
    assert np.isnan(s.enrichment(["water"]))  # no pixel: no enrichment, not 0


def test_the_enrichment_interval_by_enumerating_every_resample():
    # three images, saliency / pixel shares of the road: 0.1 / 0.2 (0.5x), 0.3 / 0.1 (3x), 0.2 / 0.2 (1x); the
    # enrichment is the ratio of the means, 0.2 / (0.5 / 3) = 1.2. Of the 27 equally likely resamples the lowest
    # ratio is image 1 three times (0.5x, p 1/27 > 2.5 %), the highest image 2 three times (3x): those are the
    # 2.5 % and 97.5 % quantiles of the exact bootstrap distribution
    s = ClassShares(["road"], np.array([[0.1], [0.3], [0.2]]), np.array([[0.2], [0.1], [0.2]]))
    sal, area = [0.1, 0.3, 0.2], [0.2, 0.1, 0.2]
    ratios = sorted(sum(sal[i] for i in pick) / sum(area[i] for i in pick) for pick in np.ndindex(3, 3, 3))
    assert (ratios[0], ratios[-1]) == pytest.approx((0.5, 3.0))
    assert s.enrichment(["road"]) == pytest.approx(1.2)
    assert s.enrichment_interval(["road"], resamples=20000) == pytest.approx((0.5, 3.0))
    # a resample of images without road pixels has no enrichment: left out (here only image 2's 0.4 / 0.2 = 2x)
    holes = ClassShares(["road"], np.array([[0.0], [0.4]]), np.array([[0.0], [0.2]]))
    assert holes.enrichment_interval(["road"]) == pytest.approx((2.0, 2.0))
    one = ClassShares(["road"], np.array([[0.3]]), np.array([[0.1]]))
    assert one.enrichment_interval(["road"]) == pytest.approx((3.0, 3.0))
    assert all(np.isnan(one.enrichment_interval(["water"])))


def test_shares_of_no_image_are_zero():
    empty = ClassShares(["road"], np.zeros((0, 1)), np.zeros((0, 1)))
    assert empty.group(["road"]) == 0.0 and empty.stable == 0.0 and empty.n_images == 0


def test_the_bootstrap_interval_of_a_mean():
    values = np.random.default_rng(0).normal(0.3, 1.0, 400)
    mean, lo, hi = bootstrap_mean(values, resamples=20000)
    # normal theory: the 95 % interval of a mean is mean -+ 1.96 sigma / sqrt(n)
    half = 1.96 * values.std() / np.sqrt(400)
    assert mean - lo == pytest.approx(half, rel=0.05) and hi - mean == pytest.approx(half, rel=0.05)
    assert bootstrap_mean(values, seed=1) != bootstrap_mean(values, seed=0)
    assert bootstrap_mean(values, seed=1) == bootstrap_mean(values, seed=1)
    # every image can be drawn, the last one too: a resample holding the 1 has a mean of at least 0.1
    assert bootstrap_mean(np.array([0.0] * 9 + [1.0]))[2] >= 0.1
    for bad in (np.array([]), np.ones((2, 2))):
        with pytest.raises(ValueError, match="values: expected a non-empty"):
            bootstrap_mean(bad)


def test_the_shares_table_typed_out():
    # two images; pixels sky, road, meadow: 0.5 / 0.1 / 0.4 and 0.3 / 0.2 / 0.5 -> 40, 15, 45 %;
    # saliency 0.2 / 0.6 / 0.2 and 0.2 / 0.4 / 0.4 -> 20, 50, 30 %
    s = ClassShares(["sky", "road", "meadow"], np.array([[0.2, 0.6, 0.2], [0.2, 0.4, 0.4]]),
                    np.array([[0.5, 0.1, 0.4], [0.3, 0.2, 0.5]]))
    assert shares_table({"before training": s}).splitlines() == [
        "| class | pixels | before training |",
        "| --- | ---: | ---: |",
        "| meadow | 45.0% | 30.0% (0.67x) |",  # most pixels first
        "| sky | 40.0% | 20.0% (0.50x) |",
        "| road | 15.0% | 50.0% (3.33x) |",
        f"| {STABLE} | 15.0% | 50.0% (3.33x) |",
        f"| {UNSTABLE} | 40.0% | 20.0% (0.50x) |",
    ]
    # a group without a pixel has no share to show
    no_sky = ClassShares(["road", "meadow"], np.array([[0.5, 0.5]]), np.array([[0.2, 0.8]]))
    assert shares_table({"a": no_sky, "b": no_sky}).splitlines()[-1] == f"| {UNSTABLE} | 0.0% | - | - |"
    with pytest.raises(ValueError, match="shares: expected at least one column"):
        shares_table({})


def _road(share, n=8):
    return ClassShares(["road", "sky"], np.tile([share, 1 - share], (n, 1)), np.tile([0.25, 0.75], (n, 1)))


def test_eight_images_are_enough_for_a_direction_and_no_change_is_no_direction():
    before, after = _road(0.2), _road(0.3)
    text = stable_change_text("real (8 images)", {"aug": (before, after), "none": (before, before)}, baseline="none")
    assert text == (
        "real (8 images): training moved the stable classes' share of the saliency with `aug` from 20.0% to 30.0% "
        "(+10.0 pp; 95% interval +10.0 pp to +10.0 pp); with `none` from 20.0% to 20.0% (+0.0 pp; 95% interval "
        "+0.0 pp to +0.0 pp); these classes cover 25.0% of the pixels (intervals: bootstrap over the images, one "
        "training seed). Training with `aug` rather than `none` moved attention towards the stable classes by "
        "10.0 pp (95% interval +10.0 pp to +10.0 pp).")
    same = stable_change_text("real", {"aug": (before, after), "none": (before, after)}, baseline="none")
    assert same.endswith("Training with `aug` rather than `none` changed the stable share by +0.0 pp, with a 95% "
                         "interval (+0.0 pp to +0.0 pp) that contains 0: on these 8 images no shift towards or away "
                         "from the stable classes is distinguishable from chance.")


def test_the_seed_reaches_every_interval():
    before = _road(0.2, n=12)
    after = ClassShares(["road", "sky"], np.stack([np.linspace(0.1, 0.5, 12), 1 - np.linspace(0.1, 0.5, 12)], 1),
                        np.tile([0.25, 0.75], (12, 1)))
    text = stable_change_text("real", {"aug": (before, after), "none": (before, before)}, baseline="none", seed=3)
    for seed, present in ((3, True), (0, False)):  # seed 0's interval: +3.0 to +17.0 pp, seed 3's +2.7 to +16.7
        _, lo, hi = bootstrap_mean(np.linspace(0.1, 0.5, 12) - 0.2, seed=seed)
        assert (f"(+10.0 pp; 95% interval {100 * lo:+.1f} pp to {100 * hi:+.1f} pp)" in text) is present, seed


def test_a_change_that_rounds_to_zero_is_written_plus_zero():
    # "95% interval -0.0 pp to ..." for a bound of -0.0001
    from topoloc.reporting.saliency_shares import _pp

    assert [_pp(v) for v in (-0.0001, 0.0, 0.0004, 0.0123, -0.0123)] == [
        "+0.0 pp", "+0.0 pp", "+0.0 pp", "+1.2 pp", "-1.2 pp"]
