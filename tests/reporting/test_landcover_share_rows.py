"""The "Where the error is" section: which classes it shows (by their MEAN share in view) and a "share in view"
row for each set of images, on a fabricated flight whose semantic maps are designed."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from topoloc.data.preset import load_preset
from topoloc.data.topo import TopoFlight
from topoloc.evaluation import PoseEvaluation
from topoloc.geodesy import LocalFrame
from topoloc.reporting.landcover import landcover_section

FLIGHT = "comballaz-LHS"
# pixels of 100 in each of the 8 views; the rest of each view is rock (id 4)
MEADOW = [50, 0, 25, 100, 75, 10, 40, 60]  # id 1, mean 45 %
SNOW = [30, 0, 0, 0, 0, 0, 0, 0]  # id 9: 30 % of one view, 3.75 % on average
FOREST = [0, 40, 0, 0, 0, 0, 0, 0]  # id 5: 40 % of one view, 5 % on average: exactly the limit
CLASSES = {1: "meadow", 4: "rock", 5: "forest", 9: "snow"}


@pytest.fixture()
def twin(tmp_path):
    folder = tmp_path / FLIGHT
    folder.mkdir()
    np.save(folder / f"{FLIGHT}_poses.npy", load_preset(FLIGHT)[:8])
    for i in range(8):
        Image.new("RGBA", (10, 10), (90, 120, 60, 255)).save(folder / f"{FLIGHT}_{i:05d}_img.png")
        sem = np.full(100, 4, dtype=np.uint8)
        start = 0
        for cid, counts in ((1, MEADOW), (9, SNOW), (5, FOREST)):
            sem[start:start + counts[i]] = cid
            start += counts[i]
        assert start <= 100
        np.save(folder / f"{FLIGHT}_{i:05d}_semantics.npy", sem.reshape(10, 10))
    return TopoFlight(tmp_path, FLIGHT, domain="synthetic", frame=LocalFrame.named("comballaz"), load_semantics=True)


def _evaluation(twin, rows, domain, metres):
    """Predictions of ``rows``' poses moved ``metres`` east and turned by metres / 10 deg about their axis."""
    gt = twin.poses()[rows]
    yaw = np.deg2rad(np.asarray(metres) / 10.0)
    turn = np.tile(np.eye(4), (len(rows), 1, 1))
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1] = np.cos(yaw), -np.sin(yaw), np.sin(yaw), np.cos(yaw)
    pred = gt @ turn
    pred[:, 0, 3] += metres
    return PoseEvaluation("aug", names=[f"{domain}{r}" for r in rows], flights=FLIGHT, domains=domain,
                          pred_c2w=pred, gt_c2w=gt, frame=twin.frame)


def _concat(*evs):
    return PoseEvaluation("aug", names=sum((list(e.names) for e in evs), []), flights=FLIGHT,
                          domains=[str(d) for e in evs for d in np.broadcast_to(np.asarray(e.domains), (len(e.names),))],
                          pred_c2w=np.concatenate([e.pred_c2w for e in evs]),
                          gt_c2w=np.concatenate([e.gt_c2w for e in evs]), frame=evs[0].frame)


def test_a_class_is_shown_by_its_mean_share_not_its_largest(twin):
    rows = list(range(8))
    runs = {"aug": SimpleNamespace(model=_evaluation(twin, rows, "real", 10.0 * (np.arange(8) + 1)))}
    text = landcover_section(runs, [twin], CLASSES)
    assert "| meadow | share in view |" in text  # 45 % on average
    assert "| forest | share in view |" in text  # 40 / 8 = 5 % on average: at the limit, shown
    assert "| snow |" not in text  # 30 / 8 = 3.75 % on average, although 30 % of one view
    # with the limit above the forest's mean it goes too
    assert "| forest |" not in landcover_section(runs, [twin], CLASSES, min_share=0.06)


def test_each_set_of_images_gets_its_own_share_row(twin):
    # real photos of all 8 rows, renders of rows 0-3 only: the renders' quarters hold one image each, cut at
    # other meadow shares (row 1: 0 %, row 2: 25 %, row 0: 50 %, row 3: 100 %) than the photos'
    order = [3, 0, 6, 1, 7, 2, 5, 4]
    real = _evaluation(twin, order, "real", 10.0 * (np.array(order) + 1))  # row k: 10 (k + 1) m, k + 1 deg
    synthetic = _evaluation(twin, [0, 1, 2, 3], "synthetic", np.array([1.0, 2.0, 3.0, 4.0]))
    runs = {"aug": SimpleNamespace(model=_concat(synthetic, real))}
    text = landcover_section(runs, [twin], {1: "meadow"})
    expected = [
        "| meadow | share in view | 0-10 % | 25-40 % | 50-60 % | 75-100 % |",  # rows 1, 5 | 2, 6 | 0, 7 | 4, 3
        "| | real | 40 m / 4.0 deg | 50 m / 5.0 deg | 45 m / 4.5 deg | 45 m / 4.5 deg |",
        "| meadow | share in view | 0-0 % | 25-25 % | 50-50 % | 100-100 % |",  # rows 1 | 2 | 0 | 3
        "| | synthetic | 2 m / 0.2 deg | 3 m / 0.3 deg | 1 m / 0.1 deg | 4 m / 0.4 deg |",
    ]
    assert "\n".join(expected) in text
