"""The "Where the error is" section against tables typed out by hand: other numbers of parts, other
flights' images, the domains and class tables asked for, and its refusals (what mutation testing showed
unpinned)."""

import csv
from types import SimpleNamespace

import numpy as np
import pytest

from topoloc.data.topo import TopoFlight
from topoloc.evaluation import PoseEvaluation
from topoloc.reporting.landcover import _ordinal, landcover_section

from support.landcover_twin import FLIGHT, landcover_twin, shifted_evaluation

MEADOW = [50, 0, 25, 100, 75, 10, 40, 60]  # pixels of 100 in each view (id 1); the rest rock (id 4)


@pytest.fixture()
def twin(tmp_path):
    return landcover_twin(tmp_path, {1: MEADOW})


ORDER = [3, 0, 6, 1, 7, 2, 5, 4]  # any order of the pose file's rows


def _real(twin):
    return shifted_evaluation(twin, ORDER, "real", 10.0 * (np.array(ORDER) + 1))  # row k: 10 (k + 1) m, k + 1 deg


def test_three_groups_of_eight_images(twin):
    # meadow share, sorted: rows 1 (0 %), 5 (10), 2 (25) | 6 (40), 0 (50), 7 (60) | 4 (75), 3 (100);
    # errors 20, 60, 30 -> 30 m / 3 deg | 70, 10, 80 -> 70 m / 7 deg | 50, 40 -> 45 m / 4.5 deg
    text = landcover_section({"aug": SimpleNamespace(model=_real(twin))}, [twin], {1: "meadow"}, parts=3,
                             csv_path=twin.root / "lc.csv")
    assert ("the test images cut into 3 groups of nearly equal size by the share of each common land-cover class "
            "in view (from the synthetic render's semantic map at each pose), median m / deg per group") in text
    assert ("\n\n| class | reading | 1st group | 2nd group | 3rd group |\n"
            "|---|---|---|---|---|\n"
            "| meadow | share in view | 0-25 % | 40-60 % | 75-100 % |\n"
            "| | real | 30 m / 3.0 deg | 70 m / 7.0 deg | 45 m / 4.5 deg |") in text
    with open(twin.root / "lc.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["part"], r["images"], float(r["median_m"])) for r in rows] == [("1", "3", 30.0), ("2", "3", 70.0),
                                                                               ("3", "2", 45.0)]


def test_only_the_flights_own_images_are_split(twin):
    # four more photos of the same poses, from another flight, 1000 m off: not this flight's readings
    other = shifted_evaluation(twin, [0, 1, 2, 3], "real", np.full(4, 1000.0), flights="comballaz-other")
    real = _real(twin)
    both = PoseEvaluation("aug", names=list(real.names) + list(other.names),
                          flights=[FLIGHT] * 8 + ["comballaz-other"] * 4, domains="real",
                          pred_c2w=np.concatenate([real.pred_c2w, other.pred_c2w]),
                          gt_c2w=np.concatenate([real.gt_c2w, other.gt_c2w]), frame=real.frame)
    text = landcover_section({"aug": SimpleNamespace(model=both)}, [twin], {1: "meadow"})
    assert "| | real | 40 m / 4.0 deg | 50 m / 5.0 deg | 45 m / 4.5 deg | 45 m / 4.5 deg |" in text
    # a run with no image of this flight has no reading
    text = landcover_section({"aug": SimpleNamespace(model=other)}, [twin], {1: "meadow"})
    assert "No reading to split." in text and "| class |" not in text


def test_the_domains_and_labels_asked_for(twin):
    synthetic = shifted_evaluation(twin, ORDER, "synthetic", np.full(8, 5.0))
    both = PoseEvaluation("aug", names=list(_real(twin).names) * 2, flights=FLIGHT,
                          domains=["real"] * 8 + ["synthetic"] * 8,
                          pred_c2w=np.concatenate([_real(twin).pred_c2w, synthetic.pred_c2w]),
                          gt_c2w=np.concatenate([_real(twin).gt_c2w, synthetic.gt_c2w]), frame=twin.frame)
    runs = {"aug": SimpleNamespace(model=both), "aug extra": SimpleNamespace(model=_real(twin))}
    text = landcover_section(runs, [twin], {1: "meadow"}, domains=["synthetic"])
    assert "| | synthetic | 5 m / 0.5 deg |" in text and "| | real" not in text
    # a run whose name starts with the headline's but not with "<headline> + " keeps its whole name
    assert "| | real, aug extra | 40 m / 4.0 deg |" in landcover_section(runs, [twin], {1: "meadow"})
    # with a higher limit, the message gives it
    assert "No class fills 60 % of the views on average." in landcover_section(runs, [twin], {1: "meadow"},
                                                                                min_share=0.6)


def test_one_class_table_per_flight(twin):
    runs = {"aug": SimpleNamespace(model=_real(twin))}
    text = landcover_section(runs, [twin, twin], [{1: "meadow"}, {4: "rock"}])
    first, second = text.split(f"**Where the error is** (aug, `{FLIGHT}`)")[1:]
    assert "| meadow |" in first and "| rock |" not in first
    assert "| rock |" in second and "| meadow |" not in second


def test_refusals_name_what_was_expected(twin):
    runs = {"aug": SimpleNamespace(model=_real(twin))}
    with pytest.raises(ValueError, match="landcover_section: expected at least one run"):
        landcover_section({}, [twin], {1: "meadow"})
    with pytest.raises(ValueError, match=r"expected one class table or one per flight \(1\), got 2"):
        landcover_section(runs, [twin], [{1: "meadow"}, {4: "rock"}])
    without = TopoFlight(twin.root, FLIGHT, domain="synthetic", frame=twin.frame)
    for bad in (without, _Short(twin)):
        with pytest.raises(ValueError, match=f"{FLIGHT}: expected the synthetic flight read with load_semantics=True"):
            landcover_section(runs, [bad], {1: "meadow"})


class _Short:
    """A flight whose semantic maps are one fewer than its pose file's rows."""

    def __init__(self, twin):
        self.flight, self.semantics_paths, self._n = twin.flight, twin.semantics_paths[:-1], len(twin)

    def __len__(self):
        return self._n


def test_ordinals():
    assert [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 20, 21, 22, 23, 101, 111, 112, 113)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "20th", "21st", "22nd", "23rd", "101st", "111th", "112th",
        "113th"]
