"""The verification recipe's bracket and table (`topoloc.experiments.verification`) on hand-worked cases."""

import numpy as np

from topoloc.experiments.verification import _best_hypothesis, verification_table


def _rz(deg: float, x: float = 0.0) -> np.ndarray:
    a = np.radians(deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    m[0, 3] = x
    return m


def test_the_best_hypothesis_weighs_metres_and_degrees_as_the_coverage_ceiling():
    """Joint error = metres + 1 m per degree: 10 m off (10) loses to 4 deg off (4), which loses to 1 m + 2 deg (3)."""
    gt = np.stack([np.eye(4), np.eye(4)])
    hyp = np.stack([np.stack([_rz(0, 10.0), _rz(4), _rz(2, 1.0)]), np.stack([_rz(0, 10.0), _rz(4), _rz(0, 5.0)])])
    best = _best_hypothesis(hyp, gt)
    np.testing.assert_allclose(best, np.stack([_rz(2, 1.0), _rz(4)]))


def test_the_table_has_a_line_per_method_and_a_column_per_flight_and_domain():
    rows = [{"flight": "f", "domain": "synthetic", "method": "model", "t_m": 1.25, "r_deg": 2.0},
            {"flight": "f", "domain": "real", "method": "model", "t_m": 10.0, "r_deg": 3.04},
            {"flight": "f", "domain": "real", "method": "model + verification", "t_m": 5.0, "r_deg": 1.0}]
    assert verification_table(rows).splitlines() == [
        "| method | f synthetic | f real |",
        "| --- | --- | --- |",
        "| model | 1.2 m / 2.0 deg | 10.0 m / 3.0 deg |",
        "| model + verification |  | 5.0 m / 1.0 deg |",
    ]
