"""The sim-to-real study (topoloc.experiments): table arithmetic against hand-worked numbers, the
brackets on hand-made poses, the configs, and the smoke preset end to end (resumable)."""

import json
import math
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from topoloc.experiments import (OPS, aggregate, format_pm, mean_std, results_markdown, run_study, study_config,
                                 study_runs, write_section)
from topoloc.experiments.study import StudyConfig, _brackets, _train_config, prepare_data
from topoloc.experiments.study_settings import PLANNED, _op_alone
from topoloc.procedural import render_flights

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "study_simtoreal.py"


# ------------------------------------------------------------------------------ table arithmetic
def test_mean_and_sample_std_by_hand():
    # mean 7/3; sample std = sqrt(((1 - 7/3)^2 + (2 - 7/3)^2 + (4 - 7/3)^2) / 2) = sqrt(7/3)
    m, s = mean_std([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3) and s == pytest.approx(math.sqrt(7 / 3))
    m, s = mean_std([5.0])
    assert m == 5.0 and math.isnan(s)
    assert format_pm(20.0, 10.0) == "20.0 ± 10.0" and format_pm(5.0, math.nan) == "5.0"
    with pytest.raises(ValueError, match="values"):
        mean_std([])


def _summary(median_m, median_deg, share):
    labels = ("3m_3deg", "5m_5deg", "10m_7deg", "10m_10deg", "20m_10deg", "30m_10deg")
    return {"count": 4, "median_m": median_m, "median_deg": median_deg, "mean_m": 0.0, "mean_deg": 0.0,
            "p90_m": 0.0, "p90_deg": 0.0, "within": {lab: share for lab in labels}}


def test_aggregate_and_markdown_by_hand():
    results = [{"config": "none", "seed": s,
                "domains": {"real": _summary(m, d, w), "synthetic": _summary(1.0, 1.0, 1.0)}}
               for s, m, d, w in ((2, 30.0, 3.0, 0.3), (0, 10.0, 1.0, 0.1), (1, 20.0, 2.0, 0.2))]
    agg = aggregate(results)
    real = agg["none"]["real"]
    assert real["seeds"] == [0, 1, 2]
    assert real["median_m"] == pytest.approx((20.0, 10.0))  # sample std of 10, 20, 30 is 10
    assert real["median_deg"] == pytest.approx((2.0, 1.0))
    assert real["within"]["5m_5deg"] == pytest.approx((0.2, 0.1))
    brackets = {"constant pose": {"real": _summary(225.0, 57.0, 0.0)},
                "coverage ceiling": {"real": _summary(23.0, 3.2, 0.5)}}
    md = results_markdown(agg, brackets, ["none", "simtoreal-0.5"], ["synthetic", "real"],
                          {"title": "Study, test preset", "lines": ["device: a test"]}, {"none": "no augmentation"})
    assert "## Study, test preset" in md and "- device: a test" in md
    assert "| none | 3 | 1.0 ± 0.0 | 1.0 ± 0.0 | 20.0 ± 10.0 | 2.0 ± 1.0 |" in md
    assert "| simtoreal-0.5 | 0 | not run | not run | not run | not run |" in md
    assert "| *constant pose* | – | – | – | 225.0 | 57.0 |" in md
    assert "| *coverage ceiling* | – | – | – | 23.0 | 3.2 |" in md
    assert "| 3 m, 3° | 5 m, 5° | 10 m, 7° | 10 m, 10° | 20 m, 10° | 30 m, 10° |" in md
    assert "| none | 20.0 ± 10.0 | 20.0 ± 10.0 | 20.0 ± 10.0 | 20.0 ± 10.0 | 20.0 ± 10.0 | 20.0 ± 10.0 |" in md
    assert "| *coverage ceiling* | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 |" in md
    assert "- `none`: no augmentation" in md


def test_write_section_replaces_its_own_and_keeps_the_rest(tmp_path):
    path = tmp_path / "docs" / "RESULTS.md"
    write_section(path, "study-cpu", "cpu v1")
    write_section(path, "study-gpu", "gpu v1")
    (path.parent / "x").write_text("")  # the folder was made
    text = path.read_text().replace("<!-- study-gpu:end -->", "<!-- study-gpu:end -->\n\nA note by hand.")
    path.write_text(text)
    write_section(path, "study-cpu", "cpu v2")
    text = path.read_text()
    assert text.startswith("# Results\n")
    assert "cpu v2" in text and "cpu v1" not in text and "gpu v1" in text and "A note by hand." in text
    assert text.index("study-cpu:start") < text.index("study-gpu:start")
    assert text.count("study-cpu:start") == 1


# ------------------------------------------------------------------------------ brackets
def _pose(east, yaw_deg):
    a = math.radians(yaw_deg)
    out = np.eye(4)
    out[:3, :3] = [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]
    out[0, 3] = east
    return out


class _Poses:
    def __init__(self, c2w):
        self.c2w = c2w

    def poses(self):
        return self.c2w


def test_brackets_by_hand():
    """Training poses at 0, 10, 20 m east, yawed +30, -30, 0 deg: the constant pose is the identity at
    10 m (+-30 average out). A test pose at 10 m, yawed 10 deg: the constant pose is 0 m and 10 deg off;
    the ceiling weighs both jointly: 10 + 20 = 30, 0 + 40 = 40, 10 + 10 = 20, so it picks the third
    training pose, 10 m and 10 deg off (nearest by position alone would be the second, 40 deg off)."""
    train = np.stack([_pose(0.0, 30.0), _pose(10.0, -30.0), _pose(20.0, 0.0)])
    tests = {"real": [_Poses(np.stack([_pose(10.0, 10.0)]))]}
    b = _brackets(train, tests)
    assert b["constant pose"]["real"]["median_m"] == pytest.approx(0.0, abs=1e-9)
    assert b["constant pose"]["real"]["median_deg"] == pytest.approx(10.0)
    assert b["coverage ceiling"]["real"]["median_m"] == pytest.approx(10.0)
    assert b["coverage ceiling"]["real"]["median_deg"] == pytest.approx(10.0)


# ------------------------------------------------------------------------------ configs
def test_configs_and_ops_as_in_simtoreal(tmp_path):
    import augment

    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu")
    names = [r.name for r in study_runs(cfg)]
    assert names == (["none", "simtoreal-0.25", "simtoreal-0.5", "simtoreal-1", "relight-only", "simtoreal-0.5+relight",
                      "local-contrast-4", "simtoreal-0.5+relight+local-contrast-4"] + [f"{op}-only" for op in OPS])
    relit = {r.name: (r.relight, r.simtoreal, r.strength) for r in study_runs(cfg) if r.relight > 0}
    assert relit == {"relight-only": (0.8, False, 1.0), "simtoreal-0.5+relight": (0.8, True, 0.5),
                     "simtoreal-0.5+relight+local-contrast-4": (0.8, True, 0.5)}
    no_relight = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", relight=0.0)
    assert not any("relight" in r.name for r in study_runs(no_relight))
    assert "simtoreal-0.5+local-contrast-4" in [r.name for r in study_runs(no_relight)]
    # the local-contrast configs train AtLoc(local_contrast=sigma); the others leave the model as it is
    by_name = {r.name: r for r in study_runs(cfg)}
    lc = _train_config(cfg, by_name["simtoreal-0.5+relight+local-contrast-4"], 0, tmp_path / "r")
    assert (lc.model_kwargs == {"feat_dim": 16, "local_contrast": 4.0} and lc.relight == 0.8
            and lc.augment == "simtoreal")
    assert _train_config(cfg, by_name["none"], 0, tmp_path / "r").model_kwargs == {"feat_dim": 16}
    assert not any("local-contrast" in r.name for r in study_runs(
        study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", local_contrast=0.0)))
    # SimToReal's documented weights (edges 0.2, snow 0.5, season 0.8, the others 1) times p = 0.5
    expected_p = {"season": 0.4, "snow": 0.25, "illumination": 0.5, "clouds": 0.5, "haze": 0.5, "edges": 0.1,
                  "camera": 0.5}
    for op, p in expected_p.items():
        assert _op_alone(op).p == pytest.approx(p)
    clouds = _op_alone("clouds")
    assert isinstance(clouds, augment.RandomClouds)
    x = __import__("torch").rand(2, 3, 16, 16)
    assert clouds(x).shape == x.shape


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        study_config("tiny", tmp_path, tmp_path)
    with pytest.raises(ValueError, match="ops"):
        StudyConfig("x", str(tmp_path), str(tmp_path), ops=("rain",))
    with pytest.raises(ValueError, match="strengths"):
        StudyConfig("x", str(tmp_path), str(tmp_path), strengths=(0.0,))
    with pytest.raises(ValueError, match="seeds"):
        StudyConfig("x", str(tmp_path), str(tmp_path), seeds=(0, 0))
    with pytest.raises(ValueError, match="local_contrast"):
        StudyConfig("x", str(tmp_path), str(tmp_path), local_contrast=-1.0)
    with pytest.raises(ValueError, match="side_by_side` must be a positive int, got 0"):
        StudyConfig("x", str(tmp_path), str(tmp_path), side_by_side=0)
    with pytest.raises(ValueError, match="on 'cuda' train one run at a time"):
        StudyConfig("x", str(tmp_path), str(tmp_path), device="cuda", side_by_side=2)


def test_render_size_is_a_pair(tmp_path):
    # (W, H): three numbers were kept as they came and reached the renderer; a list becomes the pair (48, 32)
    with pytest.raises(ValueError, match=r"`render_size` must be \(W, H\) in pixels, got \(72, 48, 3\)"):
        StudyConfig("x", str(tmp_path), str(tmp_path), render_size=(72, 48, 3))
    assert StudyConfig("x", str(tmp_path), str(tmp_path), render_size=[48.0, 32]).render_size == (48, 32)


# ------------------------------------------------------------------------------ end to end
def _mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.glob("runs/*/*/result.json"))}


def test_smoke_study_writes_every_run_and_a_rerun_skips_them(tmp_path):
    """Two configs x two seeds through the library, trained on a corridor around the planned flight:
    every run in the table, a re-run trains nothing."""
    cfg = study_config("smoke", tmp_path / "data", tmp_path / "out", device="cpu", train_images=16, test_images=3,
                       strengths=(0.5,), ops=(), seeds=(0, 1), relight=0.0, local_contrast=0.0)
    results = tmp_path / "RESULTS.md"
    first = run_study(cfg, results, command="pytest", progress=False)
    assert sorted(first["ran"]) == [("none", 0), ("none", 1), ("simtoreal-0.5", 0), ("simtoreal-0.5", 1)]
    before = _mtimes(tmp_path / "out")
    assert len(before) == 4 and not list((tmp_path / "out").rglob("last.pt"))
    for r in first["results"]:
        assert set(r["domains"]) == {"synthetic", "real", "real_alt", "training fit"}
        assert r["domains"]["real_alt"]["count"] == 3 and r["domains"]["training fit"]["count"] == 16
    text = results.read_text()
    for name in ("none", "simtoreal-0.5"):
        assert f"| {name} | 2 | " in text
    assert "*constant pose*" in text and "*coverage ceiling*" in text and "command: `pytest`" in text
    assert "renders of `comballaz-corridor-planned`" in text
    assert len(np.load(tmp_path / "data" / "comballaz-corridor-planned" / "comballaz-corridor-planned_poses.npy")) <= 16
    second = run_study(cfg, results, command="pytest", progress=False)
    assert second["ran"] == [] and len(second["skipped"]) == 4
    assert _mtimes(tmp_path / "out") == before
    assert results.read_text().count("<!-- study-smoke:start -->") == 1
    with pytest.raises(ValueError, match="epochs"):
        run_study(cfg.__class__(**{**cfg.__dict__, "epochs": 2}), None, progress=False)


def test_side_by_side_study_gives_the_results_of_one_run_at_a_time(tmp_path):
    """Runs trained two at a time (one thread each) are the runs trained one by one on one thread:
    the same medians to the last bit, relighting (the renders' normals) included."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {}
        for k in (1, 2):
            cfg = study_config("smoke", tmp_path / "data", tmp_path / f"out{k}", device="cpu", train_images=16,
                               test_images=3, strengths=(0.5,), ops=(), seeds=(0,), local_contrast=0.0, side_by_side=k)
            results[k] = run_study(cfg, None, progress=False)["results"]
    finally:
        torch.set_num_threads(threads)
    assert [r["config"] for r in results[2]] == [r["config"] for r in results[1]] == \
        ["none", "simtoreal-0.5", "relight-only", "simtoreal-0.5+relight"]
    for one, two in zip(results[1], results[2]):
        assert one["domains"] == two["domains"], one["config"]


@pytest.mark.slow
def test_recipe_smoke_preset_every_config_and_seed(tmp_path, monkeypatch):
    """The recipe as a user runs it: every config x 3 seeds in the table; a re-run skips them all."""
    args = ["--preset", "smoke", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--results", str(tmp_path / "RESULTS.md"), "--device", "cpu", "--quiet"]
    monkeypatch.setattr(sys, "argv", [str(RECIPE)] + args)
    runpy.run_path(str(RECIPE), run_name="__main__")
    before = _mtimes(tmp_path / "out")
    names = [r.name for r in study_runs(study_config("smoke", "d", "o", device="cpu"))]
    assert len(before) == len(names) * 3 == 45
    text = (tmp_path / "RESULTS.md").read_text()
    for name in names:
        assert f"| {name} | 3 | " in text
    assert "study_simtoreal.py --preset smoke" in text
    runpy.run_path(str(RECIPE), run_name="__main__")
    assert _mtimes(tmp_path / "out") == before
    res = json.loads((tmp_path / "out" / "runs" / "clouds-only" / "seed2" / "result.json").read_text())
    assert res["config"] == "clouds-only" and res["seed"] == 2


def test_a_root_holding_the_test_flights_of_other_counts_is_named(tmp_path):
    first = study_config("smoke", tmp_path / "data", tmp_path / "out", device="cpu", test_images=3)
    other = study_config("smoke", tmp_path / "data", tmp_path / "out2", device="cpu", test_images=4)
    render_flights(first.root, [(f, first.test_images) for f in first.test_flights], size=first.render_size,
                   seed=first.render_seed, progress=False)  # rows 0, 223, 446 of the planned flight
    with pytest.raises(ValueError, match=rf"{tmp_path / 'data'}: holds the test flights of a study with other "
                                         r"image counts .* give this study another --root"):
        prepare_data(other)  # asks for rows 0, 149, 297, 446


# ------------------------------------------------------------------------------ the recipe's refusals
def _recipe(monkeypatch, capsys, *args: str) -> str:
    """Runs the recipe with ``args``; its exit status must be 2 and its stderr one line, returned."""
    monkeypatch.setattr(sys, "argv", [str(RECIPE), *args])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(RECIPE), run_name="__main__")
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("args, expected", [
    # the flags, not StudyConfig's fields (it said "StudyConfig: `epochs` must be ...")
    (("--seeds", "-1"), "error: --seeds must be non-negative ints"),
    (("--seeds", "a,b"), "--seeds: expected comma-separated whole numbers"),
    (("--seeds", "0,1.5"), "--seeds: expected comma-separated whole numbers"),
    (("--strengths", "-1"), r"error: --strengths must lie in \(0, 1\]"),
    (("--strengths", "a,b"), "--strengths: expected comma-separated numbers"),
    (("--epochs", "0"), "error: --epochs must be a positive int, got 0"),
    (("--ops", "foo"), r"error: unknown op\(s\) \['foo'\] in --ops"),
    (("--side-by-side", "0"), "error: --side-by-side must be a positive int"),
    (("--test-flights", "comballaz-foo"), r"error: unknown flight\(s\) \['comballaz-foo'\] in --test-flights"),
    # a second run of one name trained over the first, and the table counted it as another seed
    (("--strengths", "0.5,0.50"), r"error: --strengths must be distinct, got \(0.5, 0.5\)"),
    (("--ops", "haze,haze"), r"error: --ops must be distinct, got \('haze', 'haze'\)"),
])
def test_recipe_refuses_bad_settings_in_one_line(tmp_path, monkeypatch, capsys, args, expected):
    line = _recipe(monkeypatch, capsys, "--preset", "smoke", "--root", str(tmp_path / "data"),
                   "--out", str(tmp_path / "out"), "--results", "none", "--device", "cpu", "--quiet", *args)
    assert re.search(expected, line), line
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_recipe_refuses_a_file_as_out(tmp_path, monkeypatch, capsys):
    (tmp_path / "out").write_text("not a folder")
    line = _recipe(monkeypatch, capsys, "--preset", "smoke", "--root", str(tmp_path / "data"),
                   "--out", str(tmp_path / "out"), "--results", "none", "--device", "cpu", "--quiet")
    assert f"error: --out {tmp_path / 'out'}: is a file; expected a folder" in line  # the flag, not `out_dir`
    assert not (tmp_path / "data").exists()  # refused before rendering anything


def test_recipe_refuses_a_file_as_root_naming_root(tmp_path, monkeypatch, capsys):
    # it said "out_dir '<root>': a file, expected a folder", the renderer's name for it: a flag never given
    (tmp_path / "data").write_text("not a folder")
    line = _recipe(monkeypatch, capsys, "--preset", "smoke", "--root", str(tmp_path / "data"),
                   "--out", str(tmp_path / "out"), "--results", "none", "--device", "cpu", "--quiet")
    assert line.endswith(f"error: --root '{tmp_path / 'data'}': a file, expected a folder"), line
    assert not (tmp_path / "out").exists()


def test_a_failed_start_leaves_out_free_for_the_corrected_command(tmp_path):
    """A test flight that is missing under a root taken as it is, is refused without tying out_dir to it: the
    corrected study may use it. (A misspelt name is refused earlier, when the settings are built.)"""
    kw = dict(device="cpu", train_images=8, test_images=2, strengths=(), ops=(), seeds=(0,), relight=0.0,
              local_contrast=0.0)
    with pytest.raises(ValueError, match=r"unknown flight\(s\) \['comballaz-2020-11-06-plannd'\] in `test_flights`"):
        study_config("smoke", tmp_path / "data", tmp_path / "out", test_flights=("comballaz-2020-11-06-plannd",), **kw)
    right = study_config("smoke", tmp_path / "data", tmp_path / "out", **kw)
    prepare_data(right)
    wrong = study_config("smoke", tmp_path / "data", tmp_path / "out", test_flights=("comballaz-2020-11-06-piloted",),
                         render=False, **kw)
    with pytest.raises(FileNotFoundError, match="comballaz-2020-11-06-piloted"):
        run_study(wrong, None, progress=False)
    assert not (tmp_path / "out" / "study.json").exists()
    assert run_study(right, None, progress=False)["ran"] == [("none", 0)]
    assert json.loads((tmp_path / "out" / "study.json").read_text())["test_flights"] == [PLANNED]


def test_study_names_bad_flights_and_an_unwritable_table_before_any_work(tmp_path, monkeypatch, capsys):
    """Each used to surface late: after the test renders (a training flight named outside the area), in the
    renderer's words (corridor_of, test flights), or after every run, as an OSError (the table's path)."""
    with pytest.raises(ValueError, match=r"`corridor_of` must be a vendored flight preset, .* got 'nope'"):
        StudyConfig("x", str(tmp_path), str(tmp_path), corridor_of="nope")
    with pytest.raises(ValueError, match=r"`test_flights` must be real flights, .*\['comballaz-LHS'\]"):
        StudyConfig("x", str(tmp_path), str(tmp_path), test_flights=("comballaz-LHS",))
    StudyConfig("x", str(tmp_path), str(tmp_path), test_flights=("my-own-flight",), render=False)  # a folder of root
    kw = dict(device="cpu", train_images=8, test_images=2, strengths=(), ops=(), seeds=(0,), relight=0.0,
              local_contrast=0.0)
    cfg = study_config("smoke", tmp_path / "data", tmp_path / "out", train_flight="corridor", **kw)
    with pytest.raises(ValueError, match=r"StudyConfig: `train_flight`: expected a name starting with one of "
                                         r"\['comballaz-', 'sepey-'\]"):
        run_study(cfg, None, progress=False)
    (tmp_path / "afile").write_text("x")
    for results, why in ((tmp_path, "a folder, expected a markdown file"),
                         (tmp_path / "afile" / "r.md", f"{str(tmp_path / 'afile')!r} is a file, not a folder"),
                         ("/proc/r.md", "cannot write in '/proc'")):
        with pytest.raises(ValueError, match=re.escape(f"results_path {str(results)!r}: {why}")):
            run_study(study_config("smoke", tmp_path / "data", tmp_path / "out", **kw), results, progress=False)
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()  # nothing rendered, nothing run
    line = _recipe(monkeypatch, capsys, "--preset", "smoke", "--root", str(tmp_path / "data"),
                   "--out", str(tmp_path / "out"), "--results", "/proc/r.md", "--device", "cpu", "--quiet")
    assert line.endswith("error: --results '/proc/r.md': cannot write in '/proc' (No such file or directory)"), line


def test_the_ceiling_weighs_one_metre_per_degree():
    """Training poses 10 m east and yawed 10 deg, and 30 m east unturned, from a test pose at 0 m: under
    d = m + 1 m/deg x deg the first is 10 + 10 = 20 away and the second 30 + 0 = 30, so the ceiling picks the
    first (10 m, 10 deg off); at 10 m/deg it would pick the second (10 + 100 = 110 > 30)."""
    train = np.stack([_pose(10.0, 10.0), _pose(30.0, 0.0)])
    b = _brackets(train, {"real": [_Poses(np.stack([_pose(0.0, 0.0)]))]})
    assert b["coverage ceiling"]["real"]["median_m"] == pytest.approx(10.0)
    assert b["coverage ceiling"]["real"]["median_deg"] == pytest.approx(10.0)


def test_a_runs_train_loss_is_its_last_epochs(tmp_path, monkeypatch):
    """``train_loss`` in a run's result is the loss of the last epoch of its history (the last row of its
    log.csv), not the first."""
    import topoloc.experiments.study as study
    from topoloc.experiments.study_settings import RunConfig

    class _Summary:
        def to_dict(self):
            return {"count": 1}

    class _Ev:
        def summary(self, domain=None):
            return _Summary()

    class _Result:
        model = training_fit = _Ev()

    history = [{"epoch": 1, "loss": 3.5}, {"epoch": 2, "loss": 2.25}, {"epoch": 3, "loss": 1.125}]
    monkeypatch.setattr(study, "load_model", lambda checkpoint, device=None: (None, None, None))
    monkeypatch.setattr(study, "load_checkpoint", lambda checkpoint: {"history": history})
    monkeypatch.setattr(study, "evaluate", lambda *a, **k: _Result())
    cfg = study_config("smoke", tmp_path / "data", tmp_path / "out", device="cpu")
    run = RunConfig("none", "no augmentation", None)
    out = study._evaluate_run(cfg, run, 0, tmp_path / "final.pt", 5.0, None, None,
                              {d: [] for d in study.STUDY_DOMAINS})
    assert out["train_loss"] == 1.125


# ------------------------------------------------------------------------------ pinned by mutation testing
def test_two_values_have_a_sample_std_and_digits_are_kept():
    # mean 2, sample std sqrt(((1 - 2)^2 + (3 - 2)^2) / 1) = sqrt(2)
    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, math.sqrt(2.0)))
    assert format_pm(1.23456, 0.5, digits=2) == "1.23 ± 0.50" and format_pm(1.25, math.nan, digits=0) == "1"


def test_each_share_table_is_its_own_domains_and_absent_configs_are_dashed():
    results = [{"config": "none", "seed": s, "domains": {"synthetic": _summary(1.0, 1.0, 1.0),
                                                         "real": _summary(m, 1.0, w)}}
               for s, m, w in ((0, 10.0, 0.1), (1, 20.0, 0.3))]
    brackets = {"constant pose": {"real": _summary(225.0, 57.0, 0.25)}}
    md = results_markdown(aggregate(results), brackets, ["none", "b"], ["synthetic", "real"],
                          {"title": "T", "lines": []})
    head = "| config | 3 m, 3° | 5 m, 5° | 10 m, 7° | 10 m, 10° | 20 m, 10° | 30 m, 10° |\n| --- |" + " ---: |" * 6
    # 100 x shares of 0.1 and 0.3: 20 +- 100 x sqrt(0.02) = 14.1; the bracket's 0.25 as 25.0
    assert ("Share of synthetic test images within CrossLoc's thresholds (%, mean ± std over seeds):\n\n" + head
            + "\n| none |" + " 100.0 ± 0.0 |" * 6 + "\n| b |" + " – |" * 6
            + "\n| *constant pose* |" + " – |" * 6 + "\n") in md
    assert ("Share of real test images within CrossLoc's thresholds (%, mean ± std over seeds):\n\n" + head
            + "\n| none |" + " 20.0 ± 14.1 |" * 6 + "\n| b |" + " – |" * 6
            + "\n| *constant pose* |" + " 25.0 |" * 6 + "\n") in md


def test_write_section_text_by_hand(tmp_path):
    path = tmp_path / "RESULTS.md"
    write_section(path, "k", "a\n")
    write_section(path, "j", "b")
    assert path.read_text() == ("# Results\n\n<!-- k:start -->\na\n<!-- k:end -->\n\n"
                                "<!-- j:start -->\nb\n<!-- j:end -->\n")
    write_section(path, "k", "c\n\n")
    assert path.read_text() == ("# Results\n\n<!-- k:start -->\nc\n<!-- k:end -->\n\n"
                                "<!-- j:start -->\nb\n<!-- j:end -->\n")
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]  # no temporary file left


def test_the_presets_train_at_their_render_size_with_an_eighth_of_the_width_as_sigma(tmp_path):
    # render_size is (W, H), image_size (H, W): each preset trains at the size it renders
    for preset, width, sigma in (("smoke", 48, 4.0), ("cpu", 72, 9.0), ("gpu", 384, 48.0)):
        cfg = study_config(preset, tmp_path / "d", tmp_path / "o", device="cpu")
        assert cfg.image_size == cfg.render_size[::-1] and cfg.render_size[0] == width, preset
        assert cfg.local_contrast == sigma and cfg.seeds == (0, 1, 2) and cfg.ops == OPS, preset
    gpu = study_config("gpu", tmp_path / "d", tmp_path / "o", device="cpu")
    assert (gpu.model, gpu.epochs, gpu.batch_size, gpu.train_images) == ("atloc_resnet34", 30, 64, 3000)
    # the overrides win over the preset's sizes
    assert study_config("cpu", tmp_path / "d", tmp_path / "o", device="cpu", epochs=3, side_by_side=1).epochs == 3
    with pytest.raises(ValueError, match="device: expected 'auto', 'cpu' or 'cuda', got 'tpu'"):
        study_config("smoke", tmp_path / "d", tmp_path / "o", device="tpu")


@pytest.mark.parametrize("threads, side_by_side", [(1, 1), (2, 2), (4, 2)])
def test_the_cpu_preset_trains_two_at_a_time_where_it_has_two_threads(tmp_path, threads, side_by_side):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert study_config("cpu", tmp_path / "d", tmp_path / "o", device="cpu").side_by_side == side_by_side
        assert study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu").side_by_side == 1
    finally:
        torch.set_num_threads(before)


def test_each_op_alone_config_builds_its_own_op(tmp_path):
    # each "<op>-only" config's augmentation is that op (a closure over the loop variable would build the last one)
    import augment

    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu")
    built = {r.name: type(r.augment()).__name__ for r in study_runs(cfg) if r.augment is not None}
    assert built == {"season-only": "RandomSeasonShift", "snow-only": "RandomSnowCover",
                     "illumination-only": "RandomIllumination", "clouds-only": "RandomClouds",
                     "haze-only": "RandomHaze", "edges-only": "RandomEdgeAbstraction",
                     "camera-only": "RandomCameraEffects"}
    assert all(hasattr(augment, name) for name in built.values())


def test_more_settings_refused_by_name(tmp_path):
    root, out = str(tmp_path / "d"), str(tmp_path / "o")
    cfg = StudyConfig("x", tmp_path / "d", tmp_path / "o")  # paths are taken as the strings they name
    assert (cfg.root, cfg.out_dir) == (root, out)
    for kwargs, expected in (
            ({"root": ""}, "`root` must be a non-empty string, got ''"),
            ({"test_flights": ()}, "`test_flights` must name at least one flight"),
            ({"epochs": True}, "`epochs` must be a positive int, got True"),
            ({"train_images": 0}, "`train_images` must be a positive int, got 0"),
            ({"seeds": ()}, "`seeds` must be non-negative ints, at least one, got ()"),
            ({"seeds": (True,)}, r"`seeds` must be non-negative ints, at least one, got \(True,\)"),
            ({"device": "tpu"}, "`device` must be 'cpu' or 'cuda', got 'tpu'"),
            ({"local_contrast": math.nan}, "`local_contrast` must be a sigma in pixels >= 0"),
            ({"strengths": (1.5,)}, r"`strengths` must lie in \(0, 1\], got \(1.5,\)")):
        args = {"root": root, "out_dir": out, **kwargs}
        with pytest.raises(ValueError, match=expected):
            StudyConfig("x", **args)


@pytest.mark.parametrize("field, value", [("train_images", 20), ("test_images", 5), ("render_size", (64, 48)),
                                          ("image_size", (24, 36)), ("model_kwargs", {"feat_dim": 8}), ("lr", 2e-3),
                                          ("sq", -3.0), ("augment_fraction", 1.0), ("render_seed", 1),
                                          ("batch_size", 6), ("train_flight", "comballaz-other")])
def test_a_folder_of_runs_refuses_a_study_that_computes_them_otherwise(tmp_path, field, value):
    from topoloc.experiments.study import _check_folder

    base = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu")
    _check_folder(base, claim=True)
    other = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", **{field: value})
    old, new = base.to_dict()[field], other.to_dict()[field]
    with pytest.raises(ValueError, match=re.escape(f"holds study runs with other ['{field}'] ([{old!r}] there, "
                                                   f"[{new!r}] asked); use another out_dir")):
        _check_folder(other)
    # a field the folder's study.json does not record (written before the field was tied) is not taken as equal
    recorded = json.loads((tmp_path / "o" / "study.json").read_text())
    del recorded[field]
    (tmp_path / "o" / "study.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match=re.escape(f"holds study runs with other ['{field}'] ([None] there, ")):
        _check_folder(base)
    (tmp_path / "o" / "study.json").unlink()
    _check_folder(base, claim=True)
    # more seeds, configs or threads add runs to the same folder
    _check_folder(study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", seeds=(0, 1, 2, 3),
                               strengths=(0.75,), ops=("snow",), relight=0.0, local_contrast=0.0, side_by_side=2,
                               keep_checkpoints=True))


def test_a_study_json_written_half_way_is_not_left_behind(tmp_path, monkeypatch):
    # study.json was written in place: a write that failed (or was killed) half-way left a truncated file,
    # and every later run of the study stopped on a bare JSONDecodeError
    from topoloc.experiments.study import _check_folder

    base = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu")
    real_write_text = Path.write_text

    def broken_write_text(self, data, *args, **kwargs):
        real_write_text(self, data[:10], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", broken_write_text)
    with pytest.raises(OSError, match="disk full"):
        _check_folder(base, claim=True)
    monkeypatch.undo()
    assert not (tmp_path / "o" / "study.json").exists()
    _check_folder(base, claim=True)
    assert json.loads((tmp_path / "o" / "study.json").read_text()) == base.run_key()
    for text in ('{"train_images": 8', "[1, 2]"):  # one truncated, or written by something else: named
        (tmp_path / "o" / "study.json").write_text(text)
        with pytest.raises(ValueError, match=r"study.json' is not the JSON a study writes .*remove the folder \(its "
                                             r"runs may be of other settings\)"):
            _check_folder(base)


class _Cache(_Poses):
    def __len__(self):
        return len(self.c2w)


def test_run_study_trains_each_pending_run_once_in_groups_and_keeps_the_table_order(tmp_path, monkeypatch):
    """The study's loop on stand-ins for the data, the training and the evaluation: runs pending in table order
    (config by config, seed by seed) trained side_by_side at a time, finished ones skipped, each result.json
    written and its last.pt removed, the results returned and tabled in table order."""
    import topoloc.experiments.study as study

    poses = np.stack([_pose(0.0, 0.0), _pose(10.0, 0.0)])
    monkeypatch.setattr(study, "prepare_data", lambda cfg, progress=False: None)
    monkeypatch.setattr(study, "_datasets", lambda cfg: (None, _Cache(poses), None,
                                                         {d: [_Cache(poses[:1])] for d in study.STUDY_DOMAINS}))
    groups = []

    def train_group(cfg, group, train_cache, normals):
        groups.append([(run.name, seed) for run, seed in group])
        out = {}
        for run, seed in group:
            folder = study._run_dir(cfg, run, seed)
            folder.mkdir(parents=True)
            (folder / "last.pt").write_bytes(b"weights")
            out[run.name, seed] = folder / "last.pt"
        return out

    def evaluate_run(cfg, run, seed, checkpoint, train_s, frame, train_cache, tests):
        assert checkpoint == study._run_dir(cfg, run, seed) / "last.pt"
        summary = _summary(10.0 * (seed + 1), 1.0, 0.5)
        return {"config": run.name, "seed": seed, "description": run.description, "train_s": 0.5, "total_s": 1.0,
                "domains": {d: summary for d in study.STUDY_DOMAINS + (study.TRAIN_FIT,)}}

    monkeypatch.setattr(study, "_train_group", train_group)
    monkeypatch.setattr(study, "_evaluate_run", evaluate_run)
    kw = dict(device="cpu", strengths=(0.5,), ops=(), seeds=(0, 1), relight=0.0, local_contrast=0.0, side_by_side=3)
    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", **kw)
    study._check_folder(cfg, claim=True)  # a study of these settings ran before
    done = tmp_path / "o" / "runs" / "none" / "seed1"
    done.mkdir(parents=True)
    (done / "result.json").write_text(json.dumps(evaluate_run(cfg, study_runs(cfg)[0], 1, done / "last.pt", 0,
                                                              *[None] * 3)))
    out = run_study(cfg, tmp_path / "RESULTS.md", progress=False)
    assert groups == [[("none", 0), ("simtoreal-0.5", 0), ("simtoreal-0.5", 1)]]
    assert out["ran"] == [("none", 0), ("simtoreal-0.5", 0), ("simtoreal-0.5", 1)] and out["skipped"] == [("none", 1)]
    assert [(r["config"], r["seed"]) for r in out["results"]] == [("none", 0), ("none", 1), ("simtoreal-0.5", 0),
                                                                  ("simtoreal-0.5", 1)]
    assert not list((tmp_path / "o").rglob("last.pt")) and not list((tmp_path / "o").rglob("*.tmp"))
    assert json.loads((tmp_path / "o" / "runs" / "simtoreal-0.5" / "seed1" / "result.json").read_text())["seed"] == 1
    # medians 10 and 20 m over the two seeds: 15 +- 7.1 (sample std sqrt(50))
    assert "| none | 2 | 15.0 ± 7.1 | 1.0 ± 0.0 |" in out["markdown"]
    assert (tmp_path / "o" / "results.md").read_text() == out["markdown"]
    assert out["markdown"].rstrip() in (tmp_path / "RESULTS.md").read_text()
    assert "<!-- study-smoke:start -->" in (tmp_path / "RESULTS.md").read_text()
    # two at a time, the checkpoints kept
    groups.clear()
    cfg2 = study_config("smoke", tmp_path / "d", tmp_path / "o2", **{**kw, "side_by_side": 2, "keep_checkpoints": True})
    run_study(cfg2, None, progress=False)
    assert groups == [[("none", 0), ("none", 1)], [("simtoreal-0.5", 0), ("simtoreal-0.5", 1)]]
    assert len(list((tmp_path / "o2").rglob("last.pt"))) == 4


def _recipe_config(monkeypatch, tmp_path, *args: str):
    """The StudyConfig, results path, command and progress that the recipe passes to run_study for ``args``."""
    import logging

    import topoloc.experiments.study as study

    seen = {}

    def fake_run_study(cfg, results_path, command="", progress=True):
        seen.update(cfg=cfg, results=results_path, command=command, progress=progress)
        return {"ran": [("none", 0)], "skipped": []}

    monkeypatch.setattr(study, "run_study", fake_run_study)
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.setdefault("logging", kw))
    monkeypatch.setattr(sys, "argv", [str(RECIPE), "--preset", "smoke", "--root", str(tmp_path / "data"),
                                      "--out", str(tmp_path / "out"), "--device", "cpu", *args])
    runpy.run_path(str(RECIPE), run_name="__main__")
    return seen


def test_the_recipe_passes_each_flag_to_the_study(tmp_path, monkeypatch, capsys):
    seen = _recipe_config(monkeypatch, tmp_path, "--results", str(tmp_path / "R.md"), "--quiet",
                          "--train-flight", "comballaz-x", "--corridor-of", "comballaz-2020-11-06-piloted",
                          "--test-flights", f"{PLANNED},comballaz-2020-11-06-piloted", "--train-images", "7",
                          "--test-images", "3", "--strengths", "0.5,1,", "--ops", "snow,,haze",
                          "--local-contrast", "2.5", "--seeds", "3,1", "--epochs", "4", "--keep-checkpoints",
                          "--side-by-side", "2", "--no-render")
    cfg = seen["cfg"]
    assert (cfg.preset, cfg.root, cfg.out_dir, cfg.device) == ("smoke", str(tmp_path / "data"), str(tmp_path / "out"),
                                                               "cpu")
    assert (cfg.train_flight, cfg.corridor_of, cfg.test_flights) == (
        "comballaz-x", "comballaz-2020-11-06-piloted", (PLANNED, "comballaz-2020-11-06-piloted"))
    assert (cfg.train_images, cfg.test_images, cfg.strengths, cfg.ops, cfg.local_contrast, cfg.seeds, cfg.epochs) == (
        7, 3, (0.5, 1.0), ("snow", "haze"), 2.5, (3, 1), 4)
    assert (cfg.keep_checkpoints, cfg.side_by_side, cfg.render) == (True, 2, False)
    assert seen["results"] == str(tmp_path / "R.md") and seen["progress"] is False and "logging" not in seen
    assert seen["command"].startswith("python ") and "--ops snow,,haze" in seen["command"]
    assert "1 runs trained now, 0 finished before" in capsys.readouterr().out


def test_the_recipe_without_flags_keeps_the_presets_settings(tmp_path, monkeypatch):
    seen = _recipe_config(monkeypatch, tmp_path, "--results", "none", "--ops", "")
    cfg = seen["cfg"]
    assert cfg.ops == () and cfg.seeds == (0, 1, 2) and cfg.strengths == (0.25, 0.5, 1.0) and cfg.epochs == 1
    assert (cfg.render, cfg.keep_checkpoints, cfg.side_by_side, cfg.local_contrast) == (True, False, 1, 4.0)
    assert cfg.test_flights == (PLANNED,) and cfg.train_flight == "comballaz-corridor-planned"
    assert seen["results"] is None and seen["progress"] is True and seen["logging"]["level"] == 20  # INFO
    assert _recipe_config(monkeypatch, tmp_path)["cfg"].ops == OPS  # no --ops: every op


def test_the_smoke_preset_writes_no_table_unless_asked_and_the_others_write_the_repositorys(tmp_path, monkeypatch):
    # `--preset smoke`, a quick try, wrote its toy table into the tracked docs/RESULTS.md
    assert _recipe_config(monkeypatch, tmp_path)["results"] is None
    given = str(tmp_path / "R.md")
    assert _recipe_config(monkeypatch, tmp_path, "--results", given)["results"] == given
    repository = RECIPE.resolve().parents[1] / "docs" / "RESULTS.md"
    assert _recipe_config(monkeypatch, tmp_path, "--preset", "cpu")["results"] == str(repository)


def test_a_study_table_written_half_way_keeps_the_previous_one(tmp_path, monkeypatch):
    # results.md was written in place, and RESULTS.md through a fixed `.tmp` name left behind on failure:
    # a write that failed (or was killed) half-way left a truncated table
    import topoloc.experiments.study as study

    poses = np.stack([_pose(0.0, 0.0), _pose(10.0, 0.0)])
    monkeypatch.setattr(study, "prepare_data", lambda cfg, progress=False: None)
    monkeypatch.setattr(study, "_datasets", lambda cfg: (None, _Cache(poses), None,
                                                         {d: [_Cache(poses[:1])] for d in study.STUDY_DOMAINS}))
    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", strengths=(), ops=(), seeds=(0,),
                       relight=0.0, local_contrast=0.0)
    study._check_folder(cfg, claim=True)
    result = study._run_dir(cfg, study_runs(cfg)[0], 0) / "result.json"

    def train_group(cfg, group, train_cache, normals):  # the one run, trained each time: the tables are written
        result.parent.mkdir(parents=True, exist_ok=True)
        result.unlink(missing_ok=True)
        return {(run.name, seed): result.parent / "last.pt" for run, seed in group}

    def evaluate_run(cfg, run, seed, checkpoint, train_s, frame, train_cache, tests):
        return {"config": run.name, "seed": seed, "description": run.description, "train_s": 0.5, "total_s": 1.0,
                "domains": {d: _summary(10.0, 1.0, 0.5) for d in study.STUDY_DOMAINS + (study.TRAIN_FIT,)}}

    monkeypatch.setattr(study, "_train_group", train_group)
    monkeypatch.setattr(study, "_evaluate_run", evaluate_run)
    (tmp_path / "o" / "results.md").write_text("the previous table\n")
    (tmp_path / "RESULTS.md").write_text("# Results\n\nthe previous sections\n")
    real_write_text = Path.write_text

    def broken_for(name):
        def write_text(self, data, *args, **kwargs):
            if name not in self.name:
                return real_write_text(self, data, *args, **kwargs)
            real_write_text(self, data[:10], *args, **kwargs)
            raise OSError("disk full")
        return write_text

    for name in ("results.md", "RESULTS.md"):  # the run's table, then the section of the study's file
        monkeypatch.setattr(Path, "write_text", broken_for(name))
        with pytest.raises(OSError, match="disk full"):
            run_study(cfg, tmp_path / "RESULTS.md", progress=False)
        result.unlink()  # the run trains again
        if name == "results.md":
            assert (tmp_path / "o" / "results.md").read_text() == "the previous table\n"
        assert (tmp_path / "RESULTS.md").read_text() == "# Results\n\nthe previous sections\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md", "o"]
        assert not list((tmp_path / "o").rglob("*tmp*"))


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")
def test_a_second_study_in_a_folder_where_one_still_works_is_refused(tmp_path):
    # Started twice 4 s apart, two studies resumed each other's half-written runs: log.csv's epochs interleaved
    # and a result.json held 260.4 m where the uninterrupted run gives 258.2 m. The first study is stood in for
    # by another process holding flock on the folder.
    import subprocess

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(120)",
                               str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        cfg = study_config("smoke", tmp_path / "data", out, device="cpu", train_images=8, test_images=2, strengths=(),
                           ops=(), seeds=(0,), relight=0.0, local_contrast=0.0)
        with pytest.raises(BlockingIOError, match=rf"^out_dir '{out}': another process is working"):
            run_study(cfg, None, progress=False)
        assert list(out.iterdir()) == []  # no study.json, no run
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------------------ folders and finished runs
def _stand_ins(monkeypatch, study, trained: list):
    """The study's data, training and evaluation stood in for: each run's result gives 10 m x (seed + 1)."""
    poses = np.stack([_pose(0.0, 0.0), _pose(10.0, 0.0)])
    monkeypatch.setattr(study, "prepare_data", lambda cfg, progress=False: None)
    monkeypatch.setattr(study, "_datasets", lambda cfg: (None, _Cache(poses), None,
                                                         {d: [_Cache(poses[:1])] for d in study.STUDY_DOMAINS}))

    def train_group(cfg, group, train_cache, normals):
        trained.extend((run.name, seed) for run, seed in group)
        for run, seed in group:
            study._run_dir(cfg, run, seed).mkdir(parents=True, exist_ok=True)
        return {(run.name, seed): study._run_dir(cfg, run, seed) / "last.pt" for run, seed in group}

    def evaluate_run(cfg, run, seed, checkpoint, train_s, frame, train_cache, tests):
        return {"config": run.name, "seed": seed, "description": run.description, "train_s": 0.5, "total_s": 1.0,
                "finished": f"2026-12-0{seed + 1} 10:00 UTC", "device": "CPU test", "side_by_side": 1,
                "study": cfg.run_key(),
                "domains": {d: _summary(10.0 * (seed + 1), 1.0, 0.5) for d in study.STUDY_DOMAINS + (study.TRAIN_FIT,)}}

    monkeypatch.setattr(study, "_train_group", train_group)
    monkeypatch.setattr(study, "_evaluate_run", evaluate_run)


def test_a_folder_that_is_not_a_studys_is_refused_and_left_alone(tmp_path, monkeypatch):
    # a folder of notes was taken as the study's: its results.md was replaced without a word
    import topoloc.experiments.study as study

    _stand_ins(monkeypatch, study, trained := [])
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "results.md").write_text("my notes\n")
    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", strengths=(), ops=(), seeds=(0,),
                       relight=0.0, local_contrast=0.0)
    with pytest.raises(ValueError, match=rf"^out_dir {tmp_path / 'o'}: holds files but no study.json \(not a "
                                         r"study's folder: its results.md would be replaced\); use an empty or new"):
        run_study(cfg, None, progress=False)
    assert (tmp_path / "o" / "results.md").read_text() == "my notes\n" and trained == []


@pytest.mark.parametrize("planted, said", [
    ({"config": "none", "seed": 0, "domains": {}}, r"lacks \['train_s', 'total_s'\]"),  # a KeyError at the end
    ({"config": "haze-only", "seed": 3, "domains": {}, "train_s": 1, "total_s": 1},
     "is the result of haze-only seed 3"),
])
def test_a_result_that_is_not_the_runs_is_refused_before_training(tmp_path, monkeypatch, planted, said):
    import topoloc.experiments.study as study

    _stand_ins(monkeypatch, study, trained := [])
    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", strengths=(), ops=(), seeds=(0, 1),
                       relight=0.0, local_contrast=0.0)
    study._check_folder(cfg, claim=True)
    path = study._run_dir(cfg, study_runs(cfg)[0], 0) / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(planted))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}' {said}, not a result of none seed 0; remove it"):
        run_study(cfg, None, progress=False)
    assert trained == []


def test_a_result_of_other_settings_is_refused(tmp_path, monkeypatch):
    # study.json removed, as its error said then, and the study rerun with one epoch: fifteen-epoch runs were
    # tabled as one-epoch ones
    import topoloc.experiments.study as study

    _stand_ins(monkeypatch, study, [])
    kw = dict(device="cpu", strengths=(), ops=(), seeds=(0,), relight=0.0, local_contrast=0.0)
    run_study(study_config("smoke", tmp_path / "d", tmp_path / "o", epochs=2, **kw), None, progress=False)
    (tmp_path / "o" / "study.json").write_text(json.dumps(study_config("smoke", tmp_path / "d", tmp_path / "o",
                                                                       **kw).run_key()))
    with pytest.raises(ValueError, match=r"result.json' was trained with other \['epochs'\]; remove the folder"):
        run_study(study_config("smoke", tmp_path / "d", tmp_path / "o", **kw), None, progress=False)


def test_the_header_names_when_and_where_the_runs_were_trained_and_a_rerun_leaves_the_section(tmp_path,
                                                                                             monkeypatch):
    # a rerun of a finished study rewrote the header with its own date, device and a wall time of 0.0 min
    import topoloc.experiments.study as study

    _stand_ins(monkeypatch, study, trained := [])
    cfg = study_config("smoke", tmp_path / "d", tmp_path / "o", device="cpu", strengths=(), ops=(), seeds=(0, 1),
                       relight=0.0, local_contrast=0.0)
    results = tmp_path / "RESULTS.md"
    first = run_study(cfg, results, progress=False)["markdown"]
    assert "runs finished 2026-12-01 10:00 UTC to 2026-12-02 10:00 UTC on CPU test" in first
    assert "| none | 2 | 15.0 ± 7.1 |" in first  # medians 10 and 20 m: the sample std is sqrt(50)
    written = results.read_text()
    again = run_study(cfg, results, progress=False)
    assert again["ran"] == [] and trained == [("none", 0), ("none", 1)]  # trained once, by the first
    assert results.read_text() == written


def test_the_studys_corridor_of_another_count_is_refused(tmp_path):
    # --train-images 100 on a root whose corridor held 64 views trained on the 64, and study.json said 100
    from topoloc.experiments.study import _corridor_flight

    cfg = study_config("smoke", tmp_path / "data", tmp_path / "out", device="cpu", train_images=6)
    folder = tmp_path / "data" / cfg.train_flight
    folder.mkdir(parents=True)
    np.save(folder / f"{cfg.train_flight}_poses.npy", np.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"holds the training corridor of a study with other image counts or seed "
                                         r"\(4 views in .*, 6 asked\); give this study another --root"):
        _corridor_flight(cfg)


def test_size_overrides_of_a_preset_leave_its_published_table_alone(tmp_path, monkeypatch, capsys):
    # `--preset cpu --epochs 3 ...` replaced the 45-run table in docs/RESULTS.md with its ten toy runs
    import topoloc.experiments.study as study

    asked = []
    monkeypatch.setattr(study, "run_study", lambda cfg, results, command="", progress=True: asked.append(results)
                        or {"ran": [], "skipped": []})
    monkeypatch.setattr(sys, "argv", [str(RECIPE), "--preset", "cpu", "--root", str(tmp_path / "d"), "--out",
                                      str(tmp_path / "o"), "--device", "cpu", "--epochs", "3", "--seeds", "0"])
    runpy.run_path(str(RECIPE), run_name="__main__")
    assert asked == [None]
    assert (f"--epochs, --seeds change(s) the cpu preset: the table goes to {tmp_path / 'o' / 'results.md'} only"
            in capsys.readouterr().out)
    for more in ([], ["--no-render", "--keep-checkpoints", "--side-by-side", "1"]):  # what is computed is the same
        monkeypatch.setattr(sys, "argv", [str(RECIPE), "--preset", "cpu", "--root", str(tmp_path / "d"), "--out",
                                          str(tmp_path / "o"), "--device", "cpu", *more])
        runpy.run_path(str(RECIPE), run_name="__main__")
        assert asked[-1] == str(RECIPE.parents[1] / "docs" / "RESULTS.md")  # the preset as published
