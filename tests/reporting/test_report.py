"""The report writes every file it names, every bracket row, and the right numbers in its tables."""

import csv
import json
import re

import numpy as np
import pytest

from topoloc.evaluation import EvaluationResult, PoseEvaluation, evaluate_poses
from topoloc.geodesy import LocalFrame
from topoloc.reporting.plots import plot_error_cdf, plot_topdown_map
from topoloc.reporting.report import brackets_headline, comparison_table, write_report

FRAME = LocalFrame.named("comballaz")


def _shifted(gt, east_m):
    pred = gt.copy()
    pred[:, 0, 3] += east_m
    return pred


def _result(offset_m, seed=0, brackets=True):
    """Six test images (3 synthetic, 3 real, flights f1 / f2); the model is ``offset_m`` east of the
    truth, the constant pose 100 m, the thumbnail retrieval 60 m, the model-feature retrieval 70 m,
    the coverage ceiling 50 m north (the training poses); training fit 2 m, validation 8 m."""
    rng = np.random.default_rng(seed)
    gt = np.tile(np.eye(4), (6, 1, 1))
    gt[:, :3, 3] = rng.uniform(-300, 300, (6, 3))
    train = gt.copy()
    train[:, 1, 3] += 50.0
    labels = dict(names=[f"im{i}" for i in range(6)], flights=["f1"] * 3 + ["f2"] * 3,
                  domains=["synthetic", "real"] * 3)
    model = evaluate_poses(_shifted(gt, offset_m), gt, FRAME, train_c2w=train, **labels)
    if not brackets:
        return EvaluationResult(model, train_c2w=train)

    def ev(method, pred, g=gt, **kw):
        return PoseEvaluation(method, kw.get("names", labels["names"]), kw.get("flights", labels["flights"]),
                              kw.get("domains", labels["domains"]), pred, g, FRAME)

    fit_gt = train[:4]
    return EvaluationResult(
        model, train_c2w=train, constant=ev("constant pose", _shifted(gt, 100.0)),
        retrievals={"thumbnail": ev("retrieval (features: 16x24 grey thumbnail)", _shifted(gt, 60.0)),
                    "model": ev("retrieval (features: trained model)", _shifted(gt, 70.0))},
        ceiling=ev("coverage ceiling", train),
        training_fit=ev("training fit", _shifted(fit_gt, 2.0), fit_gt, names=list("abcd"), flights="lhs",
                        domains="synthetic"),
        validation=ev("validation", _shifted(fit_gt[:2], 8.0), fit_gt[:2], names=["v0", "v1"], flights="lhs",
                      domains="synthetic"))


def _row(text, method, group):
    line = next(line for line in text.splitlines() if line.startswith(f"| {method} | {group} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_comparison_table_values():
    table = comparison_table([_result(4.0).model], by="domain")
    cells = _row(table, "model", "real")
    assert cells[2] == "3" and cells[3] == "4.0" and cells[4] == "0.0"  # three real images, median 4 m, 0 deg
    # Thresholds 3m/3deg, 5m/5deg, 10m/7deg, 10m/10deg, 20m/10deg, 30m/10deg: 4 m is in all but the first.
    assert cells[9:] == ["0%", "100%", "100%", "100%", "100%", "100%"]
    flights = comparison_table([_result(4.0).model], by="flight")
    assert flights.count("\n") == 1 + 4  # header, rule, 2 flights x 2 domains


def test_write_report_has_every_bracket_row_and_the_headline(tmp_path):
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
    # Per domain: both models, then the brackets, with their medians (m).
    expected = {"augmented": 4.0, "no augmentation": 40.0, "constant pose": 100.0,
                "retrieval (features: 16x24 grey thumbnail)": 60.0,
                "retrieval (features: augmented model)": 70.0, "retrieval (features: no augmentation model)": 70.0,
                "coverage ceiling": 50.0}
    for method, median in expected.items():
        for domain in ("real", "synthetic"):
            cells = _row(text, method, domain)
            assert (cells[2], float(cells[3])) == ("3", median), (method, domain)
        assert float(_row(text, method, "f1 (real)")[3]) == median
    for run in ("augmented", "no augmentation"):
        assert _row(text, f"training fit ({run})", "synthetic")[2:4] == ["4", "2.0"]
        assert _row(text, f"validation ({run})", "synthetic")[2:4] == ["2", "8.0"]
    # The headline, per domain.
    assert ("- **real** brackets (median): augmented 4.0 m / 0.0 deg, no augmentation 40.0 m / 0.0 deg vs "
            "constant pose 100.0 m / 0.0 deg, retrieval (features: 16x24 grey thumbnail) 60.0 m / 0.0 deg, "
            "retrieval (features: augmented model) 70.0 m / 0.0 deg, retrieval (features: no augmentation model) "
            "70.0 m / 0.0 deg, coverage ceiling 50.0 m / 0.0 deg.") in text
    assert "- **synthetic** brackets (median): augmented 4.0 m" in text
    assert "## Saliency" in text
    # Coverage: the training poses are 50 m north of the test poses, same rotation.
    assert "| all | 6 | 50.0 | 0.0 | 50.0 | 0.0 | 50.0 | 0.0 | - |" in text
    # Predictions CSV and summary JSON carry the brackets (method column / key).
    with open(tmp_path / "predictions" / "augmented_predictions.csv") as f:
        methods = {r["method"] for r in csv.DictReader(f)}
    assert methods == {"model", "constant pose", "retrieval (features: 16x24 grey thumbnail)",
                       "retrieval (features: trained model)", "coverage ceiling", "training fit", "validation"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["augmented"]["methods"]["constant pose"]["all"]["median_m"] == pytest.approx(100.0)


def test_a_report_written_again_leaves_no_file_of_the_earlier_runs(tmp_path):
    """Evaluated again into the same folder (e.g. `topoloc evaluate --adabn`, then without): the predictions
    and plots of a run that the new report does not have are gone; other files stay."""
    write_report(tmp_path, {"augmented": _result(4.0), "no augmentation": _result(40.0, seed=1)})
    (tmp_path / "plots" / "saliency_real.png").write_bytes(b"not the report's")
    (tmp_path / "predictions" / "notes.txt").write_text("mine")
    assert (tmp_path / "predictions" / "no_augmentation_predictions.csv").is_file()
    text = write_report(tmp_path, {"augmented": _result(4.0)}).read_text()
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == [
        "augmented_predictions.csv", "augmented_summary.json", "notes.txt"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "cdf_real.png", "cdf_synthetic.png", "map_augmented_real.png", "map_augmented_synthetic.png",
        "saliency_real.png"]
    for link in re.findall(r"\]\(([^)]+)\)", text):  # every figure it links is there
        assert (tmp_path / link).is_file(), link


def test_a_single_run_and_missing_brackets_are_said(tmp_path):
    result = _result(4.0)
    line = brackets_headline(result).splitlines()[0]
    assert line == ("- **real** brackets (median): model 4.0 m / 0.0 deg vs constant pose 100.0 m / 0.0 deg, "
                    "retrieval (features: 16x24 grey thumbnail) 60.0 m / 0.0 deg, retrieval (features: trained "
                    "model) 70.0 m / 0.0 deg, coverage ceiling 50.0 m / 0.0 deg.")
    text = write_report(tmp_path / "one", {"run": result}).read_text()
    assert _row(text, "training fit", "synthetic")[3] == "2.0" and _row(text, "validation", "synthetic")[3] == "8.0"
    bare = _result(4.0, brackets=False)
    bare.notes.append("No validation flights in this checkpoint's recipe.")
    text = write_report(tmp_path / "bare", {"run": bare}).read_text()
    assert "(no brackets computed)" in text
    assert "not computed in this evaluation: constant pose, coverage ceiling, retrieval, training fit." in text
    assert "- No validation flights in this checkpoint's recipe." in text


def test_a_second_evaluation_of_a_run_shares_its_brackets(tmp_path):
    """The same model evaluated again (e.g. with AdaBN) on the same images: its model-free brackets and
    retrieval are the first run's, so only what it lacks of its own (its training fit) is listed."""
    bare = _result(3.0, brackets=False)
    bare.brackets_of = "augmented"
    text = write_report(tmp_path / "shared", {"augmented": _result(4.0), "augmented + AdaBN": bare}).read_text()
    assert ("- augmented + AdaBN: not computed in this evaluation: training fit (its other brackets are those of "
            "augmented: the same training set and test images).") in text
    assert "constant pose, coverage ceiling" not in text.split("Not available:")[1].split("##")[0]
    # a run that is not in the report cannot lend its brackets
    bare.brackets_of = "another run"
    text = write_report(tmp_path / "absent", {"augmented + AdaBN": bare}).read_text()
    assert "not computed in this evaluation: constant pose, coverage ceiling, retrieval, training fit." in text


def test_a_missing_validation_is_said_once(tmp_path):
    result = _result(4.0)
    result.validation = None
    text = write_report(tmp_path / "generic", {"run": result}).read_text()
    assert text.count("no validation row") == 1 and "- no validation set was given: no validation row." in text
    result.notes.append("The recipe names no validation flights (`data.val`): no validation row.")
    text = write_report(tmp_path / "said", {"run": result}).read_text()
    assert text.count("no validation row") == 1 and "(`data.val`): no validation row." in text
    # A second evaluation of that run (AdaBN) points to the reason; it used to say no validation set was given.
    again = _result(3.0, brackets=False)
    again.validation, again.brackets_of = None, "run"
    text = write_report(tmp_path / "again", {"run": result, "run + AdaBN": again}).read_text()
    assert "- run + AdaBN: no validation row either, for the reason given for run." in text
    assert "no validation set was given" not in text


def test_plots_reject_empty_inputs(tmp_path):
    with pytest.raises(ValueError, match="evaluations"):
        plot_error_cdf([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="domain"):
        plot_topdown_map(_result(1.0).model, tmp_path / "y.png", domain="winter")
    with pytest.raises(TypeError, match="runs"):
        write_report(tmp_path, {"a": "not a result"})
    with pytest.raises(ValueError, match="retrieval_run"):
        write_report(tmp_path, {"a": _result(1.0)}, retrieval_run="b")


def test_a_report_killed_while_writing_leaves_the_previous_files_whole(tmp_path, monkeypatch):
    # figures, summary.json and report.md were written in place: a run killed in a write left a 0-byte
    # plots/cdf_real.png that the previous report.md still linked to
    import os

    from matplotlib.figure import Figure
    from PIL import Image

    write_report(tmp_path, {"augmented": _result(4.0)})
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    real_savefig = Figure.savefig

    def killed_mid_write(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG")  # a first few bytes, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        write_report(tmp_path, {"augmented": _result(4.0)})
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no file cut short, none left beside them
    Image.open(tmp_path / "plots" / "cdf_real.png").verify()
    # what a SIGKILLed writer leaves (its temporary file) is removed by the next report
    monkeypatch.setattr(Figure, "savefig", real_savefig)
    stale = tmp_path / "plots" / ".cdf_real.png.999999999.tmp"
    stale.write_bytes(b"\x89PNG")
    write_report(tmp_path, {"augmented": _result(4.0)})
    assert not stale.exists() and not [p for p in tmp_path.rglob(".*.tmp")]
    assert (oct(os.stat(tmp_path / "report.md").st_mode & 0o777)
            == oct(os.stat(tmp_path / "summary.json").st_mode & 0o777))


def _turned(c2w, degrees):
    """Each pose turned about its own optical axis (z) by its angle in ``degrees``: rotation errors of
    exactly those angles."""
    out = c2w.copy()
    for i, deg in enumerate(degrees):
        a = np.radians(deg)
        out[i, :3, :3] = c2w[i, :3, :3] @ np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0],
                                                     [0, 0, 1]])
    return out


def _skewed(train_m=(1.0, 2.0, 3.0, 4.0, 5.0, 20.0), train_deg=(1.0, 2.0, 3.0, 4.0, 5.0, 30.0)):
    """Six test images like `_result`'s, far apart, whose model errors are 1, 2, 10 m and 1, 2, 30 deg in
    each domain (synthetic: images 0, 2, 4; real: 1, 3, 5), and whose training poses lie ``train_m``
    north and ``train_deg`` turned from each test pose (each one its test pose's nearest)."""
    gt = np.tile(np.eye(4), (6, 1, 1))
    gt[:, :3, 3] = [[-300, 0, 0], [-200, 150, 0], [-100, -150, 0], [0, 150, 0], [100, -150, 0], [200, 0, 0]]
    train = _turned(gt, train_deg)
    train[:, 1, 3] += np.array(train_m)
    pred = _turned(gt, [1.0, 1.0, 2.0, 2.0, 30.0, 30.0])
    pred[:, 0, 3] += [1.0, 1.0, 2.0, 2.0, 10.0, 10.0]
    labels = dict(names=[f"im{i}" for i in range(6)], flights=["f1"] * 3 + ["f2"] * 3,
                  domains=["synthetic", "real"] * 3)
    model = evaluate_poses(pred, gt, FRAME, train_c2w=train, **labels)
    return EvaluationResult(model, train_c2w=train,
                            constant=PoseEvaluation("constant pose", labels["names"], labels["flights"],
                                                    labels["domains"], _shifted(gt, 100.0), gt, FRAME),
                            ceiling=PoseEvaluation("coverage ceiling", labels["names"], labels["flights"],
                                                   labels["domains"], train, gt, FRAME))


def test_the_tables_median_mean_and_p90_columns_on_skewed_errors(tmp_path):
    # per domain errors 1, 2, 10 m and 1, 2, 30 deg: median 2 m / 2 deg; mean 13 / 3 = 4.33 m and
    # 33 / 3 = 11 deg; p90 (linear, numpy's default): rank 0.9 x (3 - 1) = 1.8, so 2 + 0.8 x (10 - 2) = 8.4 m
    # and 2 + 0.8 x (30 - 2) = 24.4 deg
    text = write_report(tmp_path, {"run": _skewed()}).read_text()
    for domain in ("synthetic", "real"):
        assert _row(text, "run", domain)[2:9] == ["3", "2.0", "2.0", "4.3", "11.0", "8.4", "24.4"], domain
    # per flight: f1 has synthetic images 0, 2 (1 and 2 m / deg): median = mean = 1.5, p90 1 + 0.9 = 1.9
    assert _row(text, "run", "f1 (synthetic)")[2:9] == ["2", "1.5", "1.5", "1.5", "1.5", "1.9", "1.9"]
    # f2 synthetic: image 4 alone (10 m / 30 deg)
    assert _row(text, "run", "f2 (synthetic)")[2:9] == ["1", "10.0", "30.0", "10.0", "30.0", "10.0", "30.0"]
    summary = json.loads((tmp_path / "summary.json").read_text())["run"]["methods"]["model"]["by_domain"]["real"]
    assert summary["median_m"] == pytest.approx(2.0) and summary["mean_m"] == pytest.approx(13 / 3)
    assert summary["p90_m"] == pytest.approx(8.4) and summary["p90_deg"] == pytest.approx(24.4)
    assert summary["median_deg"] == pytest.approx(2.0) and summary["mean_deg"] == pytest.approx(11.0)


def test_the_headline_gives_medians_in_both_units_on_skewed_errors():
    # the model's medians are 2 m / 2 deg (means 4.3 m / 11 deg)
    for line in brackets_headline({"run": _skewed()}).splitlines():
        assert line.split(": ", 1)[1].startswith("run 2.0 m / 2.0 deg vs constant pose 100.0 m / 0.0 deg"), line


def test_the_coverage_table_p90_and_max_columns_on_skewed_distances(tmp_path):
    # nearest training poses 1, 2, 3, 4, 5, 20 m and 1, 2, 3, 4, 5, 30 deg away: median 3.5 / 3.5;
    # p90 (linear): rank 0.9 x 5 = 4.5, so 5 + 0.5 x (20 - 5) = 12.5 m and 5 + 0.5 x (30 - 5) = 17.5 deg;
    # max 20 m / 30 deg
    text = write_report(tmp_path, {"run": _skewed()}).read_text()
    cells = _row(text, "all", "6")
    assert cells[2:8] == ["3.5", "3.5", "12.5", "17.5", "20.0", "30.0"], cells
    # synthetic (images 0, 2, 4: 1, 3, 5 m and deg) in flight f1 holds images 0 and 2: 1 and 3
    assert _row(text, "synthetic/f1", "2")[2:8] == ["2.0", "2.0", "2.8", "2.8", "3.0", "3.0"]


def test_the_brackets_default_to_the_first_run_that_has_them(tmp_path):
    """{run, run + AdaBN}, the second evaluated without brackets or training poses: the report shows the first
    run's constant pose, coverage ceiling and coverage table without being told which run to take them from."""
    run = _skewed()
    again = EvaluationResult(evaluate_poses(run.model.pred_c2w, run.model.gt_c2w, FRAME, names=run.model.names,
                                            flights=run.model.flights, domains=run.model.domains))
    again.brackets_of = "run"
    text = write_report(tmp_path, {"run": run, "run + AdaBN": again}).read_text()
    assert _row(text, "constant pose", "real")[2:4] == ["3", "100.0"]
    assert _row(text, "coverage ceiling", "real")[2:4] == ["3", "4.0"]  # real images 1, 3, 5: 2, 4, 20 m
    assert _row(text, "all", "6")[2:8] == ["3.5", "3.5", "12.5", "17.5", "20.0", "30.0"]
    assert "coverage not computed" not in text
    assert "constant pose 100.0 m / 0.0 deg" in brackets_headline({"run": run, "run + AdaBN": again})


def test_an_output_folder_that_cannot_be_written_is_named_before_anything_is_written(tmp_path):
    # were OSErrors: "[Errno 20] Not a directory: 'notes.txt/plots'", and for a folder given as the CSV
    # "[Errno 21] Is a directory: '.out.<pid>.tmp' -> 'out'", naming a temporary file
    run = _result(4.0)
    (tmp_path / "notes.txt").write_text("a file")
    (tmp_path / "out").mkdir()
    notes = tmp_path / "notes.txt"
    for out, why in ((notes, "a file, expected a folder"), (notes / "report", rf"'{notes}' is a file, not a folder")):
        with pytest.raises(ValueError, match=rf"^out_dir '{out}': {why}$"):
            write_report(out, {"run": run})
        with pytest.raises(ValueError, match=rf"^out_dir '{out}': {why}$"):
            run.write(out)
    with pytest.raises(ValueError, match=rf"^output '{tmp_path / 'out'}': a folder, expected a file name$"):
        run.model.to_csv(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out"]
    assert not any((tmp_path / "out").iterdir())
    # a new folder is made: the model's rows hold its 4 m error east, by hand
    with (run.write(tmp_path / "new")["predictions"]).open() as f:
        errors = [float(r["translation_error_m"]) for r in csv.DictReader(f) if r["method"] == run.model.method]
    assert errors == pytest.approx([4.0] * 6, abs=1e-9)
