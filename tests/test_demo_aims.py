"""The demo's aims (`check_aims`) on hand-built evaluations whose medians are known by construction."""

import numpy as np

from topoloc.evaluation import EvaluationResult, PoseEvaluation
from topoloc.experiments.demo import ADABN_LABEL, PLANNED_FLIGHT, check_aims
from topoloc.geodesy import LocalFrame

FRAME = LocalFrame.named("comballaz")
DOMAINS = ["synthetic", "synthetic", "real", "real"]


def _truth():
    gt = np.tile(np.eye(4), (4, 1, 1))
    gt[:, :3, 3] = [[0, 0, 500], [100, 50, 480], [0, 0, 500], [100, 50, 480]]
    return gt


def _off(gt, m, deg):
    """Each pose moved ``m`` metres east and turned ``deg`` degrees about its optical axis (z):
    errors of exactly ``m`` and ``deg`` per image."""
    a = np.radians(deg)
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    pred = gt.copy()
    pred[:, :3, :3] = gt[:, :3, :3] @ turn
    pred[:, 0, 3] += m
    return pred


def _ev(method, syn, real):
    """A method with errors ``syn`` = (m, deg) on the two synthetic images and ``real`` on the two real ones."""
    gt = _truth()
    pred = np.concatenate([_off(gt[:2], *syn), _off(gt[2:], *real)])
    return PoseEvaluation(method, ["s0", "s1", "r0", "r1"], [PLANNED_FLIGHT] * 4, DOMAINS, pred, gt, FRAME)


def _runs(aug_real, plain_real=(400.0, 60.0)):
    brackets = dict(constant=_ev("constant pose", (240.0, 50.0), (240.0, 50.0)),
                    ceiling=_ev("coverage ceiling", (12.0, 2.0), (12.0, 2.0)),
                    retrievals={"thumbnail": _ev("retrieval", (25.0, 6.0), (90.0, 16.0))},
                    train_c2w=_truth())
    return {"augmented (SimToReal)": EvaluationResult(_ev("augmented", (30.0, 5.0), aug_real), **brackets),
            "no augmentation": EvaluationResult(_ev("plain", (20.0, 3.0), plain_real), **brackets)}


def test_aims_by_hand():
    # a1 20 <= 240 / 6 = 40; a2 20 < 25; a3 3 <= 3 x 2 = 6; b1 100 <= 400 / 3 = 133.3 m but 21 > 60 / 3 = 20 deg;
    # b2 100 > 1.5 x 30 = 45 m; b3 21 > 1.5 x 5 = 7.5 deg
    text = check_aims(_runs(aug_real=(100.0, 21.0)), "cpu")
    assert f"on `{PLANNED_FLIGHT}`, the runs as trained: 4 of 7 met." in text
    for line in ("- met: a1 unaugmented synthetic <= constant / 6 (m): 20.0 vs limit 40.0",
                 "- met: a2 unaugmented synthetic < best retrieval (m): 20.0 vs limit 25.0",
                 "- met: a3 unaugmented synthetic rotation <= 3x coverage ceiling (deg): 3.0 vs limit 6.0",
                 "- met: b1 augmented real <= unaugmented real / 3 (m): 100.0 vs limit 133.3",
                 "- NOT met: b1 augmented real <= unaugmented real / 3 (deg): 21.0 vs limit 20.0",
                 "- NOT met: b2 augmented real <= 1.5x augmented synthetic (m): 100.0 vs limit 45.0",
                 "- NOT met: b3 augmented real <= 1.5x augmented synthetic (deg): 21.0 vs limit 7.5"):
        assert line in text.splitlines(), line
    assert "recipes/in_domain_ceiling.yaml" in text  # b2 / b3 missed: the bracket they compare with is named
    assert "AdaBN" not in text  # not evaluated with it: no second block


def test_aims_all_met_and_again_with_adabn():
    runs = _runs(aug_real=(40.0, 7.0))
    runs.update({f"{k} + {ADABN_LABEL}": v for k, v in _runs(aug_real=(44.0, 8.0)).items()})
    text = check_aims(runs, "cpu")
    assert "the runs as trained: 7 of 7 met." in text and "in_domain_ceiling" not in text
    assert "both runs with AdaBN" in text and "6 of 7 met." in text  # 8.0 deg > 7.5
    assert "- NOT met: b3 augmented real <= 1.5x augmented synthetic (deg): 8.0 vs limit 7.5" in text


def test_aims_not_checked_without_the_runs():
    assert check_aims({"no augmentation": _runs((40.0, 7.0))["no augmentation"]}, "cpu") == (
        "**Aims**: not checked (the runs were not evaluated).")
