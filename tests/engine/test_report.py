"""The report writes every file it names, with the right numbers in its tables."""

import re

import numpy as np
import pytest

from topoloc.engine.evaluate import EvaluationResult, PoseEvaluation, evaluate_poses
from topoloc.geodesy import LocalFrame
from topoloc.report import comparison_table, plot_error_cdf, plot_topdown_map, write_report

FRAME = LocalFrame.named("comballaz")


def _result(offset_m, seed=0):
    rng = np.random.default_rng(seed)
    gt = np.tile(np.eye(4), (6, 1, 1))
    gt[:, :3, 3] = rng.uniform(-300, 300, (6, 3))
    pred = gt.copy()
    pred[:, 0, 3] += offset_m
    train = gt.copy()
    train[:, 1, 3] += 50.0
    model = evaluate_poses(pred, gt, FRAME, names=[f"im{i}" for i in range(6)],
                           flights=["f1"] * 3 + ["f2"] * 3, domains=["synthetic", "real"] * 3, train_c2w=train)
    retr = PoseEvaluation("retrieval", model.names, model.flights, model.domains, train, gt, FRAME,
                          model.nearest_train_m, model.nearest_train_deg)
    return EvaluationResult(model, retr, train)


def test_comparison_table_values():
    table = comparison_table([_result(4.0).model], by="domain")
    real = next(line for line in table.splitlines() if "| real |" in line)
    cells = [c.strip() for c in real.strip("|").split("|")]
    assert cells[2] == "3" and cells[3] == "4.0"  # three real images, median 4 m
    assert cells[7] == "100%"  # within 5 m / 5 deg
    flights = comparison_table([_result(4.0).model], by="flight")
    assert flights.count("\n") == 1 + 4  # header, rule, 2 flights x 2 domains


def test_write_report_writes_all_files(tmp_path):
    runs = {"augmented": _result(4.0), "no augmentation": _result(40.0, seed=1)}
    report = write_report(tmp_path, runs, intro="Test run.", extra_sections={"Saliency": "nothing here"})
    text = report.read_text()
    assert text.startswith("# topoloc evaluation")
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (tmp_path / link).is_file(), link
    for name in re.findall(r"- `([^`]+)`", text):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "plots" / "cdf_real.png").stat().st_size > 1000
    assert (tmp_path / "predictions" / "augmented_predictions.csv").is_file()
    assert "| retrieval baseline | real | 3 | 50.0 |" in text
    assert "| no augmentation | synthetic | 3 | 40.0 |" in text
    assert "## Saliency" in text
    # Coverage: the training poses are 50 m north of the test poses.
    assert "| all | 6 | 50.0 | 50.0 | 50.0 |" in text


def test_plots_reject_empty_inputs(tmp_path):
    with pytest.raises(ValueError, match="evaluations"):
        plot_error_cdf([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="domain"):
        plot_topdown_map(_result(1.0).model, tmp_path / "y.png", domain="winter")
    with pytest.raises(TypeError, match="runs"):
        write_report(tmp_path, {"a": "not a result"})
