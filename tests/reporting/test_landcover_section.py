"""The report's "Where the error is" section on a fabricated flight whose maps and errors are designed."""

import csv
from types import SimpleNamespace

import numpy as np
import pytest

from topoloc.evaluation import PoseEvaluation
from topoloc.reporting.landcover import landcover_section

from support.landcover_twin import FLIGHT, landcover_twin, shifted_evaluation

MEADOW = [50, 0, 25, 100, 75, 10, 40, 60]  # pixels of 100 in each view; then 3 of building, the rest rock


@pytest.fixture()
def twin(tmp_path):
    buildings = [3 if n <= 97 else 0 for n in MEADOW]  # 3 % of each view, after its meadow
    return landcover_twin(tmp_path, {1: MEADOW, 7: buildings})


def _concat(*evs):
    return PoseEvaluation("aug", names=sum((list(e.names) for e in evs), []), flights=FLIGHT,
                          domains=[str(d) for e in evs
                                   for d in np.broadcast_to(np.asarray(e.domains), (len(e.names),))],
                          pred_c2w=np.concatenate([e.pred_c2w for e in evs]),
                          gt_c2w=np.concatenate([e.gt_c2w for e in evs]), frame=evs[0].frame)


def test_each_domain_and_run_is_split_by_the_classes_in_view(twin):
    order = [3, 0, 6, 1, 7, 2, 5, 4]  # any order of the pose file's rows
    real = shifted_evaluation(twin, order, "real", 10.0 * (np.array(order) + 1))  # row k: 10 (k + 1) m, k + 1 deg
    alt = shifted_evaluation(twin, [0, 1, 2], "real_alt", [1.0, 2.0, 3.0])
    synthetic = shifted_evaluation(twin, order, "synthetic", np.full(8, 5.0))
    adabn = shifted_evaluation(twin, order, "real", 20.0 * (np.array(order) + 1))
    runs = {"aug": SimpleNamespace(model=_concat(synthetic, alt, real)),  # photos are listed first all the same
            "aug + AdaBN": SimpleNamespace(model=adabn)}
    text = landcover_section(runs, [twin], {1: "meadow", 4: "rock", 7: "building"}, csv_path=twin.root / "lc.csv")
    # meadow share, sorted: rows 1, 5 | 2, 6 | 0, 7 | 4, 3; rock is the rest less 3 % of building
    expected = [
        "| class | reading | 1st quarter | 2nd quarter | 3rd quarter | 4th quarter |",
        "|---|---|---|---|---|---|",
        "| meadow | share in view | 0-10 % | 25-40 % | 50-60 % | 75-100 % |",
        "| | real | 40 m / 4.0 deg | 50 m / 5.0 deg | 45 m / 4.5 deg | 45 m / 4.5 deg |",
        "| | real, AdaBN | 80 m / 8.0 deg | 100 m / 10.0 deg | 90 m / 9.0 deg | 90 m / 9.0 deg |",
        "| | synthetic | 5 m / 0.5 deg | 5 m / 0.5 deg | 5 m / 0.5 deg | 5 m / 0.5 deg |",
        "| rock | share in view | 0-22 % | 37-47 % | 57-72 % | 87-97 % |",
        "| | real | 45 m / 4.5 deg | 45 m / 4.5 deg | 50 m / 5.0 deg | 40 m / 4.0 deg |",
    ]
    assert "\n".join(expected) in text
    assert "| building |" not in text  # under 5 % of the views
    assert "Split not computed for real_alt (aug): 3 image(s), fewer than the 4 parts need." in text
    assert text.index("| | real |") < text.index("| | real, AdaBN |") < text.index("| | synthetic |")
    # the CSV: one row per part shown (2 classes x 3 readings x 4 parts), shares as fractions
    with open(twin.root / "lc.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and "The same figures, one row per part: `lc.csv`." in text
    adabn_meadow = [r for r in rows if r["class"] == "meadow" and r["run"] == "aug + AdaBN"]
    assert [(r["domain"], r["part"], float(r["share_low"]), float(r["share_high"]), r["images"], float(r["median_m"]))
            for r in adabn_meadow] == [("real", "1", 0.0, 0.1, "2", 80.0), ("real", "2", 0.25, 0.4, "2", 100.0),
                                       ("real", "3", 0.5, 0.6, "2", 90.0), ("real", "4", 0.75, 1.0, "2", 90.0)]


def test_a_test_pose_outside_the_renders_pose_file_is_refused(twin):
    ev = shifted_evaluation(twin, [0, 1, 2, 3], "real", np.full(4, 5.0))
    ev.gt_c2w[2, 2, 3] += 30.0
    with pytest.raises(ValueError, match=f"{FLIGHT} real: a test image's pose is not in the pose file"):
        landcover_section({"aug": SimpleNamespace(model=ev)}, [twin], {1: "meadow"})


def test_with_no_common_class_it_says_so(twin):
    ev = shifted_evaluation(twin, [0, 1, 2, 3], "real", np.full(4, 5.0))
    text = landcover_section({"aug": SimpleNamespace(model=ev)}, [twin], {7: "building"})
    assert "No class fills 5 % of the views on average." in text and "| class |" not in text


def test_under_a_heading_each_flight_leads_with_its_name(twin):
    ev = shifted_evaluation(twin, [0, 1, 2, 3], "real", np.full(4, 5.0))
    alone = landcover_section({"aug": SimpleNamespace(model=ev)}, [twin], {1: "meadow"})
    headed = landcover_section({"aug": SimpleNamespace(model=ev)}, [twin], {1: "meadow"}, under_heading=True)
    assert alone.startswith(f"**Where the error is** (aug, `{FLIGHT}`): the test images cut into 4 quarters")
    assert headed.startswith(f"**`{FLIGHT}`** (aug): the test images cut into 4 quarters")
    assert "Where the error is" not in headed


# A second design, for which classes are shown: the meadow as above, then classes that fill one view only;
# the rest of each view is rock (id 4).
SNOW = [30, 0, 0, 0, 0, 0, 0, 0]  # id 9: 30 % of one view, 3.75 % on average
FOREST = [0, 40, 0, 0, 0, 0, 0, 0]  # id 5: 40 % of one view, 5 % on average: exactly the limit
RARE_CLASSES = {1: "meadow", 4: "rock", 5: "forest", 9: "snow"}


@pytest.fixture()
def twin_rare(tmp_path):
    return landcover_twin(tmp_path, {1: MEADOW, 9: SNOW, 5: FOREST})


def test_a_class_is_shown_by_its_mean_share_not_its_largest(twin_rare):
    rows = list(range(8))
    runs = {"aug": SimpleNamespace(model=shifted_evaluation(twin_rare, rows, "real", 10.0 * (np.arange(8) + 1)))}
    text = landcover_section(runs, [twin_rare], RARE_CLASSES)
    assert "| meadow | share in view |" in text  # 45 % on average
    assert "| forest | share in view |" in text  # 40 / 8 = 5 % on average: at the limit, shown
    assert "| snow |" not in text  # 30 / 8 = 3.75 % on average, although 30 % of one view
    # with the limit above the forest's mean it goes too
    assert "| forest |" not in landcover_section(runs, [twin_rare], RARE_CLASSES, min_share=0.06)


def test_each_set_of_images_gets_its_own_share_row(twin_rare):
    # real photos of all 8 rows, renders of rows 0-3 only: the renders' quarters hold one image each, cut at
    # other meadow shares (row 1: 0 %, row 2: 25 %, row 0: 50 %, row 3: 100 %) than the photos'
    order = [3, 0, 6, 1, 7, 2, 5, 4]
    real = shifted_evaluation(twin_rare, order, "real", 10.0 * (np.array(order) + 1))  # row k: 10 (k + 1) m, k + 1 deg
    synthetic = shifted_evaluation(twin_rare, [0, 1, 2, 3], "synthetic", np.array([1.0, 2.0, 3.0, 4.0]))
    runs = {"aug": SimpleNamespace(model=_concat(synthetic, real))}
    text = landcover_section(runs, [twin_rare], {1: "meadow"})
    expected = [
        "| meadow | share in view | 0-10 % | 25-40 % | 50-60 % | 75-100 % |",  # rows 1, 5 | 2, 6 | 0, 7 | 4, 3
        "| | real | 40 m / 4.0 deg | 50 m / 5.0 deg | 45 m / 4.5 deg | 45 m / 4.5 deg |",
        "| meadow | share in view | 0-0 % | 25-25 % | 50-50 % | 100-100 % |",  # rows 1 | 2 | 0 | 3
        "| | synthetic | 2 m / 0.2 deg | 3 m / 0.3 deg | 1 m / 0.1 deg | 4 m / 0.4 deg |",
    ]
    assert "\n".join(expected) in text
