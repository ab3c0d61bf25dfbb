"""The report's figures, tables and files against values worked by hand: errors of 1, 2, 8 m and 1, 2.5,
8 deg on three real images, 4 m / 0 deg on three synthetic ones (what mutation testing showed unpinned)."""

import json
import re

import numpy as np
import pytest

from topoloc.data.pose_coverage import coverage
from topoloc.evaluation import EvaluationResult, PoseEvaluation, evaluate_poses
from topoloc.geodesy import LocalFrame
from topoloc.reporting import plots as plots_module
from topoloc.reporting.plots import plot_error_cdf, plot_topdown_map
from topoloc.reporting.report import brackets_headline, comparison_table, write_report

FRAME = LocalFrame.named("comballaz")
NAMES = [f"im{i}" for i in range(6)]
DOMAINS = ["real"] * 3 + ["synthetic"] * 3
# far apart, so that each test pose's nearest training pose is its own
GT = np.tile(np.eye(4), (6, 1, 1))
GT[:, :3, 3] = [[-300, 0, 10], [-200, 150, 20], [-100, -150, 30], [0, 150, 40], [100, -150, 50], [200, 0, 60]]
TRAIN = GT.copy()
TRAIN[:, 1, 3] += 50.0  # 50 m north of each test pose


def _turned(c2w, degrees):
    out = c2w.copy()
    for i, deg in enumerate(degrees):
        a = np.radians(deg)
        out[i, :3, :3] = c2w[i, :3, :3] @ np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return out


def _model_pred():
    pred = _turned(GT, [1.0, 2.5, 8.0, 0.0, 0.0, 0.0])
    pred[:, 0, 3] += [1.0, 2.0, 8.0, 4.0, 4.0, 4.0]
    return pred


def _ev(method, pred, keep=slice(None)):
    return PoseEvaluation(method, NAMES[keep], "f1", DOMAINS[keep], pred[keep], GT[keep], FRAME)


def _constant():
    pred = GT.copy()
    pred[:, 0, 3] += 100.0
    return _ev("constant pose", pred)


def _full(**kw):
    model = evaluate_poses(_model_pred(), GT, FRAME, names=NAMES, flights="f1", domains=DOMAINS, train_c2w=TRAIN)
    return EvaluationResult(model, train_c2w=TRAIN, constant=_constant(), ceiling=_ev("coverage ceiling", TRAIN), **kw)


def _captured(monkeypatch):
    """The figures the report's plots save, by file name."""
    figures = {}

    def save(fig, path, dpi):
        figures[path.name] = fig
        return path

    monkeypatch.setattr(plots_module, "save_figure", save)
    return figures


HEAD = ("| method | domain | images | median m | median deg | mean m | mean deg | p90 m | p90 deg | 3m / 3deg | "
        "5m / 5deg | 10m / 7deg | 10m / 10deg | 20m / 10deg | 30m / 10deg |")
RULE = "| --- | --- |" + " ---: |" * 13


def test_the_domain_table_typed_out():
    # real: 1, 2, 8 m -> median 2, mean 11 / 3 = 3.7, p90 2 + 0.8 x 6 = 6.8; 1, 2.5, 8 deg -> median 2.5,
    # mean 11.5 / 3 = 3.8, p90 2.5 + 0.8 x 5.5 = 6.9; strictly below 3/3, 5/5, 10/7: 2 of 3 images; 10/10 on: all
    table = comparison_table([_ev("model", _model_pred()), _constant()], by="domain")
    assert table.splitlines() == [
        HEAD, RULE,
        "| model | real | 3 | 2.0 | 2.5 | 3.7 | 3.8 | 6.8 | 6.9 | 67% | 67% | 67% | 100% | 100% | 100% |",
        "| constant pose | real | 3 | 100.0 | 0.0 | 100.0 | 0.0 | 100.0 | 0.0 | 0% | 0% | 0% | 0% | 0% | 0% |",
        "| model | synthetic | 3 | 4.0 | 0.0 | 4.0 | 0.0 | 4.0 | 0.0 | 0% | 100% | 100% | 100% | 100% | 100% |",
        "| constant pose | synthetic | 3 | 100.0 | 0.0 | 100.0 | 0.0 | 100.0 | 0.0 | 0% | 0% | 0% | 0% | 0% | 0% |",
    ]
    assert comparison_table([_constant()], by="flight").splitlines()[0] == HEAD.replace("| domain |", "| flight |")
    with pytest.raises(ValueError, match="by: expected 'domain' or 'flight'"):
        comparison_table([_constant()], by="method")


def test_the_error_cdf_of_one_domain(tmp_path, monkeypatch):
    figures = _captured(monkeypatch)
    synthetic_only = _ev("synthetic only", _model_pred(), slice(3, 6))
    plot_error_cdf([_ev("model", _model_pred()), synthetic_only], tmp_path / "cdf.png", domain="real")
    ax_t, ax_r = figures["cdf.png"].axes
    assert ax_t.get_xscale() == "log" and ax_r.get_xscale() == "linear"
    # the method without a real image has no line and no legend entry
    assert len(ax_t.get_lines()) == len(ax_r.get_lines()) == 1
    # one legend below both panels (in the panels it hid the medians), each median with its unit
    assert [t.get_text() for t in figures["cdf.png"].legends[0].get_texts()] == ["model (median 2.0 m / 2.5 deg)"]
    for ax, errors in ((ax_t, [1.0, 2.0, 8.0]), (ax_r, [1.0, 2.5, 8.0])):
        line = ax.get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), errors, atol=1e-6)
        np.testing.assert_allclose(line.get_ydata(), [1 / 3, 2 / 3, 1.0])
    assert figures["cdf.png"].get_suptitle() == "Error CDF (real test images)"


def test_the_topdown_map_of_one_domain(tmp_path, monkeypatch):
    figures = _captured(monkeypatch)
    plot_topdown_map(_ev("model", _model_pred()), tmp_path / "map.png", train_c2w=TRAIN, domain="real")
    ax = figures["map.png"].axes[0]
    points = {c.get_label(): c.get_offsets() for c in ax.collections if c.get_label() in
              ("training poses", "true", "predicted")}
    np.testing.assert_allclose(points["training poses"], [[-300, 50], [-200, 200], [-100, -100], [0, 200], [100, -100],
                                                          [200, 50]])
    np.testing.assert_allclose(points["true"], [[-300, 0], [-200, 150], [-100, -150]])
    np.testing.assert_allclose(points["predicted"], [[-299, 0], [-198, 150], [-92, -150]])
    assert ax.get_title() == "model: real test images (median 2.0 m)"


def _two_flights(method, pred):
    """The real images as two flights: im0 alone on "b", im1 and im2 on "a"."""
    return PoseEvaluation(method, NAMES, ["b", "a", "a", "s", "s", "s"], DOMAINS, pred, GT, FRAME)


def test_the_error_cdf_a_row_per_flight(tmp_path, monkeypatch):
    figures = _captured(monkeypatch)
    plot_error_cdf([_two_flights("model", _model_pred())], tmp_path / "cdf.png", domain="real", flights=["a", "b"])
    axes = figures["cdf.png"].axes
    assert [ax.get_title(loc="left") for ax in axes[::2]] == ["a", "b"]
    # each row its own images and medians: a holds the errors 2 and 8 m (2.5 and 8 deg), b 1 m (1 deg)
    for (ax_t, ax_r), errors_m, errors_deg in ((axes[0:2], [2.0, 8.0], [2.5, 8.0]), (axes[2:4], [1.0], [1.0])):
        np.testing.assert_allclose(ax_t.get_lines()[0].get_xdata(), errors_m, atol=1e-6)
        np.testing.assert_allclose(ax_r.get_lines()[0].get_xdata(), errors_deg, atol=1e-6)
        assert ax_r.get_legend() is not None
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["model (median 5.0 m / 5.2 deg)"]
    assert [t.get_text() for t in axes[3].get_legend().get_texts()] == ["model (median 1.0 m / 1.0 deg)"]
    with pytest.raises(ValueError, match="flights: expected at least one flight name"):
        plot_error_cdf([_two_flights("model", _model_pred())], tmp_path / "cdf.png", domain="real", flights=[])


def test_the_topdown_map_a_panel_per_flight(tmp_path, monkeypatch):
    figures = _captured(monkeypatch)
    plot_topdown_map(_two_flights("model", _model_pred()), tmp_path / "map.png", domain="real", flights=["a", "b"])
    axes = figures["map.png"].axes
    assert [ax.get_title() for ax in axes] == ["a (median 5.0 m)", "b (median 1.0 m)"]
    true = [next(c.get_offsets() for c in ax.collections if c.get_label() == "true") for ax in axes]
    np.testing.assert_allclose(true[0], [[-200, 150], [-100, -150]])
    np.testing.assert_allclose(true[1], [[-300, 0]])
    assert figures["map.png"].get_suptitle() == "model: real test images"


def test_a_report_of_two_flights_plots_each_apart(tmp_path, monkeypatch):
    figures = _captured(monkeypatch)
    model = _two_flights("model", _model_pred())
    write_report(tmp_path, {"run": EvaluationResult(model, train_c2w=TRAIN)})
    # the real images span two flights: a row and a panel each; the synthetic ones one flight: pooled as before
    assert [ax.get_title(loc="left") for ax in figures["cdf_real.png"].axes[::2]] == ["a", "b"]
    assert [ax.get_title() for ax in figures["map_run_real.png"].axes] == ["a (median 5.0 m)", "b (median 1.0 m)"]
    assert len(figures["cdf_synthetic.png"].axes) == 2 and len(figures["map_run_synthetic.png"].axes) == 1


def test_a_run_named_model_in_a_single_result_and_a_second_run_on_fewer_domains(tmp_path, monkeypatch):
    full = _full()
    full.model.method = "augmented"
    assert brackets_headline(full).startswith("- **real** brackets (median): model 2.0 m / 2.5 deg vs constant pose")
    # a second run evaluated on the real photos only: no synthetic row, line or map of it, and no crash
    real_only = EvaluationResult(_ev("model", _model_pred(), slice(0, 3)), train_c2w=TRAIN)
    text = write_report(tmp_path, {"all": _full(), "photos": real_only}).read_text()
    assert "- **synthetic** brackets (median): all 4.0 m / 0.0 deg vs constant pose 100.0 m / 0.0 deg" in text
    assert "- **real** brackets (median): all 2.0 m / 2.5 deg, photos 2.0 m / 2.5 deg vs constant pose" in text
    assert sorted(p.name for p in (tmp_path / "plots").glob("map_*")) == [
        "map_all_real.png", "map_all_synthetic.png", "map_photos_real.png"]
    assert "| photos | synthetic |" not in text and "| photos | real | 3 | 2.0 | 2.5 |" in text
    # the other way round, the brackets (of the photos' run) have no synthetic image: none is named there
    bare = EvaluationResult(evaluate_poses(_model_pred(), GT, FRAME, names=NAMES, flights="f1", domains=DOMAINS))
    photos = EvaluationResult(real_only.model, train_c2w=TRAIN, constant=_ev("constant pose", _constant().pred_c2w,
                                                                              slice(0, 3)))
    assert brackets_headline({"all": bare, "photos": photos}).splitlines() == [
        "- **real** brackets (median): all 2.0 m / 2.5 deg, photos 2.0 m / 2.5 deg vs constant pose 100.0 m / 0.0 deg.",
        "- **synthetic** brackets (median): all 4.0 m / 0.0 deg (no brackets computed)."]


def test_the_brackets_and_coverage_come_from_the_first_run_that_has_them(tmp_path):
    bare = EvaluationResult(evaluate_poses(_model_pred(), GT, FRAME, names=NAMES, flights="f1", domains=DOMAINS))
    colour_pred = GT.copy()
    colour_pred[:, 0, 3] += 60.0
    colour = _ev("retrieval (features: 16x24 colour thumbnail)", colour_pred)
    text = write_report(tmp_path / "two", {"bare": bare, "full": _full(retrievals={"thumbnail_colour": colour})}
                        ).read_text()
    assert _row(text, "constant pose", "real")[2:4] == ["3", "100.0"]
    assert _row(text, "retrieval (features: 16x24 colour thumbnail)", "real")[2:4] == ["3", "60.0"]
    assert "| all | 6 | 50.0 | 0.0 | 50.0 | 0.0 | 50.0 | 0.0 | - |" in text  # full's coverage, 50 m north
    assert "coverage not computed" not in text
    alone = write_report(tmp_path / "one", {"bare": bare}).read_text()
    assert "_No training poses were given: coverage not computed._" in alone


def _row(text, method, group):
    line = next(line for line in text.splitlines() if line.startswith(f"| {method} | {group} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_the_report_text_files_and_links(tmp_path, monkeypatch):
    fit_pred = TRAIN[:2].copy()
    fit_pred[:, 0, 3] += 2.0
    fit = PoseEvaluation("training fit", ["a", "b"], "lhs", "synthetic", fit_pred, TRAIN[:2], FRAME)
    result = _full(training_fit=fit, validation=_ev("validation", _model_pred(), slice(3, 6)),
                   m_per_deg=2.0, coverage=coverage(TRAIN, GT, m_per_deg=2.0))
    result.notes += ["Said twice.", "Said twice."]
    figures = _captured(monkeypatch)
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "mine.csv").write_text("a user's table")
    text = write_report(tmp_path, {"run": result, "other": _full()}, intro="Trained 3 epochs.").read_text()
    assert text.startswith("# topoloc evaluation\n\nTrained 3 epochs.\n\n## Brackets")
    # the metres-per-degree weight of the reference run, in both sentences that give the measure
    assert text.count("d = metres + 2 m/deg x degrees") == 2 and "1 m/deg x degrees" not in text
    # the distance to the nearest training position, whatever the rotation: 50 m north of each test pose
    assert "| all | 6 | 50.0 | 0.0 | 50.0 | 0.0 | 50.0 | 0.0 | 50.0 |" in text
    assert text.count("- run: Said twice.") == 1
    # the training fit and validation are rows of the per-flight table too
    assert _row(text, "training fit (run)", "lhs (synthetic)")[2:4] == ["2", "2.0"]
    assert _row(text, "validation (run)", "f1 (synthetic)")[2:4] == ["3", "4.0"]
    # links and files are relative to the report's folder, summary.json first, every run in it
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links == ["plots/cdf_real.png", "plots/cdf_synthetic.png", "plots/map_run_real.png",
                     "plots/map_run_synthetic.png", "plots/map_other_real.png", "plots/map_other_synthetic.png"]
    assert re.findall(r"- `([^`]+)`", text) == [
        "summary.json", "predictions/run_predictions.csv", "predictions/run_summary.json",
        "predictions/other_predictions.csv", "predictions/other_summary.json"]
    assert sorted(json.loads((tmp_path / "summary.json").read_text())) == ["other", "run"]
    assert (tmp_path / "predictions" / "mine.csv").read_text() == "a user's table"
    # the CDFs show the test-set methods only (the training fit and validation are on other images)
    legend = [t.get_text().split(" (median")[0] for t in figures["cdf_synthetic.png"].legends[0].get_texts()]
    assert legend == ["run", "other", "constant pose", "coverage ceiling"]
    assert "(median 100.0 m / 0.0 deg)" in figures["cdf_synthetic.png"].legends[0].get_texts()[2].get_text()


def test_a_report_with_every_bracket_has_no_not_available_section(tmp_path):
    fit = _ev("training fit", _model_pred(), slice(3, 6))
    retrieval = _ev("retrieval (features: 16x24 grey thumbnail)", _constant().pred_c2w)
    text = write_report(tmp_path, {"run": _full(training_fit=fit, validation=fit, retrievals={"thumbnail": retrieval})}
                        ).read_text()
    assert "Not available" not in text and "not computed" not in text


def test_two_runs_that_would_write_the_same_files_are_refused(tmp_path):
    # "a b" and "a_b" both become a_b_predictions.csv, a_b_summary.json and map_a_b_*.png: the second run
    # silently overwrote the first's files and report.md listed them twice
    write_report(tmp_path, {"a b": _full()})
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"runs: 'a b' and 'a_b' would write the same files \(prefix 'a_b': "
                                         r"predictions/a_b_predictions.csv"):
        write_report(tmp_path, {"a b": _full(), "x": _full(), "a_b": _full()})
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written or removed
    # names that stay apart in their files are taken
    text = write_report(tmp_path, {"a b": _full(), "a-b": _full()}).read_text()
    assert "- `predictions/a_b_predictions.csv`" in text and "- `predictions/a-b_predictions.csv`" in text


def _on_domains(domains):
    """`_full`'s model alone, its six images labelled with ``domains``."""
    model = evaluate_poses(_model_pred(), GT, FRAME, names=NAMES, flights="f1", domains=domains, train_c2w=TRAIN)
    return EvaluationResult(model, train_c2w=TRAIN)


def test_a_run_and_domain_pair_that_would_write_anothers_map_is_refused(tmp_path):
    # map_<run>_<domain>.png: run "x" on "real_alt" and run "x_real" on "alt" both make map_x_real_alt.png, and the
    # second run's map replaced the first's under both links of report.md
    two = ["real_alt"] * 3 + ["alt"] * 3
    with pytest.raises(ValueError, match=r"^runs: 'x' on domain 'real_alt' and 'x_real' on domain 'alt' would write "
                                         r"the same map plots/map_x_real_alt.png: rename one of the runs$"):
        write_report(tmp_path, {"x": _on_domains(two), "x_real": _on_domains(two)})
    assert not (tmp_path / "report.md").exists() and not list(tmp_path.rglob("*.png"))
    # the same two runs on one of the domains: their maps stay apart
    text = write_report(tmp_path, {"x": _on_domains(["real_alt"] * 6), "x_real": _on_domains(["real_alt"] * 6)}
                        ).read_text()
    assert "![x, real_alt](plots/map_x_real_alt.png)" in text
    assert "![x_real, real_alt](plots/map_x_real_real_alt.png)" in text


def test_two_domains_that_would_write_the_same_plot_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^domains: 'real alt' and 'real_alt' would write the same plot "
                                         r"plots/cdf_real_alt.png; file names replace every character"):
        write_report(tmp_path, {"x": _on_domains(["real alt"] * 3 + ["real_alt"] * 3)})


def test_a_domain_only_a_later_run_has_gets_its_plots(tmp_path):
    # the domains were the first run's: the second run's real_alt images were in the tables but had no map and no
    # error CDF, and nothing said so
    text = write_report(tmp_path, {"a": _on_domains(["real"] * 6), "b": _on_domains(["real"] * 3 + ["real_alt"] * 3)}
                        ).read_text()
    assert "![error CDF, real_alt](plots/cdf_real_alt.png)" in text
    assert "![b, real_alt](plots/map_b_real_alt.png)" in text and "map_a_real_alt" not in text
    assert (tmp_path / "plots" / "cdf_real_alt.png").is_file() and (tmp_path / "plots" / "map_b_real_alt.png").is_file()


def test_the_coverage_of_all_counts_a_pose_tested_in_two_domains_once():
    # a photo and its render at one pose are one pose to cover: "all" said 6 images for 3 poses (and its p90 drifted)
    gt = np.concatenate([GT[:3], GT[:3]])
    model = evaluate_poses(gt.copy(), gt, FRAME, names=NAMES, flights="f1", domains=DOMAINS, train_c2w=TRAIN)
    cov = EvaluationResult(model, train_c2w=TRAIN).coverage_summary()
    assert cov["all"]["count"] == 3 and cov["real/f1"]["count"] == cov["synthetic/f1"]["count"] == 3
    assert cov["all"]["median_m"] == pytest.approx(50.0)  # each 50 m south of its nearest training pose
