"""Saliency figures, the per-class saliency shares, the sentence stating their change, and the
multi-run report; figures that differ from image to image and before vs after training."""

import numpy as np
import pytest
import torch
from torch import nn

from topoloc.models import create_model
from topoloc.saliency import planted_cue_data, spearman
from topoloc.reporting.saliency_figures import (
    ClassShares,
    class_saliency_shares,
    compute_saliency,
    feature_grid,
    plot_saliency_figure,
    plot_shares,
    shares_table,
    stable_change_text,
)
from topoloc.reporting.saliency_shares import bootstrap_mean

CLASSES = {0: "sky", 4: "rock", 6: "road", 9: "cloud", 1: "meadow"}


def test_shares_by_hand():
    # Image 1: all saliency on the road pixel. Image 2: uniform saliency over sky / cloud / rock / meadow.
    maps = torch.tensor([[[4.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    sem = torch.tensor([[[6, 0], [0, 0]], [[0, 9], [4, 1]]], dtype=torch.uint8)
    s = class_saliency_shares(maps, sem, CLASSES)
    # Each map is scaled to mean 1 (mass 4 per image, 8 in all): road 4/8, sky 1/8, cloud, rock, meadow 1/8.
    assert s.saliency == pytest.approx({"road": 0.5, "sky": 0.125, "cloud": 0.125, "rock": 0.125, "meadow": 0.125})
    assert s.area == pytest.approx({"road": 1 / 8, "sky": 4 / 8, "cloud": 1 / 8, "rock": 1 / 8, "meadow": 1 / 8})
    assert s.stable == pytest.approx(0.625) and s.unstable == pytest.approx(0.25)
    assert s.group(["road"], of="area") == pytest.approx(0.125)


def test_semantics_are_resized_to_the_maps():
    maps = torch.zeros(1, 4, 4)
    maps[0, :2] = 1.0  # saliency on the top half only
    sem = torch.tensor([[[0], [6]]], dtype=torch.uint8)  # (1, 2, 1): top sky, bottom road
    s = class_saliency_shares(maps, sem, CLASSES)
    assert s.saliency == pytest.approx({"sky": 1.0, "road": 0.0})


def test_shrunk_class_maps_take_each_cell_at_its_centre():
    # a 6 x 6 class map shrunk to the 2 x 2 saliency maps: each cell takes the class of its 3 x 3 block's centre
    # pixel, (1, 1), (1, 4), (4, 1), (4, 4), as topoloc.data.read_semantics does; torch's "nearest" had taken the
    # top-left pixels (0, 0), (0, 3), ...
    sem = torch.full((1, 6, 6), 6, dtype=torch.uint8)  # road
    sem[0, 1, 1] = sem[0, 4, 4] = 0  # the centres of the top-left and bottom-right cells: sky
    maps = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]])
    s = class_saliency_shares(maps, sem, CLASSES)
    assert s.saliency == pytest.approx({"sky": 1.0, "road": 0.0})


def test_bad_inputs():
    with pytest.raises(ValueError, match="semantics"):
        class_saliency_shares(torch.ones(2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="semantics"):
        class_saliency_shares(torch.ones(1, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="maps"):
        class_saliency_shares(-torch.ones(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.uint8))


def test_figure_and_table(tmp_path):
    torch.manual_seed(0)
    before = create_model("atloc_resnet18", feat_dim=16)
    after = create_model("atloc_resnet18", feat_dim=16)
    images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
    maps = compute_saliency(before, after, images, device="cpu")
    assert maps.before.shape == (2, 32, 48)
    torch.testing.assert_close(maps.before.mean(dim=(1, 2)), torch.ones(2))
    torch.testing.assert_close(maps.difference, maps.after - maps.before)
    path = plot_saliency_figure(images, maps, tmp_path / "s.png", row_labels=["a", "b"], title="t")
    assert path.stat().st_size > 1000
    names = ["road", "sky"]
    s = ClassShares(names, np.array([[0.5, 0.5]]), np.array([[0.1, 0.9]]))
    table = shares_table({"before training": s, "run: after": s})
    assert "| road | 10.0% | 50.0% (5.00x) | 50.0% (5.00x) |" in table
    assert "| stable (road, building, rock, ridgeline) | 10.0% | 50.0% (5.00x) |" in table
    assert plot_shares({"real (1 images)": {"before": s, "after": s}}, tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="images"):
        compute_saliency(before, after, images.float())


def test_bootstrap_interval():
    values = np.random.default_rng(0).normal(0.3, 1.0, 400)
    mean, lo, hi = bootstrap_mean(values)
    assert mean == pytest.approx(values.mean())
    # the percentile interval of a mean of 400 draws: about +-1.96 sigma / sqrt(n)
    assert hi - lo == pytest.approx(2 * 1.96 * values.std() / 20, rel=0.15)
    assert bootstrap_mean(np.array([2.0])) == (2.0, 2.0, 2.0)


def _shares(stable_per_image):
    """ClassShares of images whose saliency share on 'road' (stable) is given; 20 % road pixels
    (each value stands for two images: 12 in all)."""
    v = np.repeat(np.asarray(stable_per_image, dtype=float), 2)
    return ClassShares(["road", "sky"], np.stack([v, 1 - v], 1), np.tile([0.2, 0.8], (len(v), 1)))


def test_change_text_states_direction_and_size():
    before = _shares([0.20, 0.22, 0.18, 0.21, 0.19, 0.20])
    towards = _shares([0.30, 0.33, 0.29, 0.31, 0.30, 0.32])  # +10.8 pp on average, +8 to +12 pp on each image
    same = _shares([0.21, 0.21, 0.18, 0.20, 0.20, 0.20])
    text = stable_change_text("real (12 images)", {"aug": (before, towards), "none": (before, same)}, baseline="none")
    assert "with `aug` from 20.0% to 30.8% (+10.8 pp" in text
    assert "these classes cover 20.0% of the pixels" in text
    assert "Training with `aug` rather than `none` moved attention towards the stable classes by 10.8 pp" in text
    text = stable_change_text("real", {"aug": (before, same), "none": (before, towards)}, baseline="none")
    assert "moved attention away from the stable classes by 10.8 pp" in text
    noisy = _shares([0.10, 0.30, 0.12, 0.28, 0.20, 0.22])
    text = stable_change_text("real", {"aug": (before, noisy), "none": (before, before)}, baseline="none")
    assert "contains 0" in text and "towards" in text  # "no shift towards or away from ..."
    with pytest.raises(ValueError, match="baseline"):
        stable_change_text("real", {"aug": (before, noisy)}, baseline="other")
    few = ClassShares(["road"], np.ones((3, 1)), np.ones((3, 1)))
    text = stable_change_text("real", {"aug": (few, few), "none": (few, few)}, baseline="none")
    assert "3 images are too few to tell a direction" in text


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(),
                         nn.Linear(8 * 8 * 8, 3))


def test_figure_maps_differ_between_images_and_before_after():
    # a tiny model trained for 200 steps to read the colour of a patch in the top-left quarter
    torch.manual_seed(0)
    before = _tiny().eval()
    torch.manual_seed(0)
    after = _tiny()
    opt = torch.optim.Adam(after.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        x, y = planted_cue_data(32, (32, 32), (0, 16, 0, 16), g)
        loss = ((after(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, _ = planted_cue_data(4, (32, 32), (0, 16, 0, 16), torch.Generator().manual_seed(1))
    images = (x * 255).round().byte()
    for method, kwargs in (("gradient", {}), ("smoothgrad", {"samples": 4, "max_shift": 2})):
        maps = compute_saliency(before, after.eval(), images, device="cpu", method=method, **kwargs)
        assert float(spearman(maps.before, maps.after).mean()) < 0.6, method
        pairs = [float(spearman(maps.after[i:i + 1], maps.after[j:j + 1])) for i in range(4) for j in range(i + 1, 4)]
        assert max(pairs) < 0.9, (method, pairs)


def test_feature_grid_of_a_resnet():
    model = create_model("atloc_resnet18", feat_dim=16)
    assert feature_grid(model, (64, 96)) == (2, 3)
    assert feature_grid(_tiny(), (32, 32)) is None


def _fake_flight(root, flight="comballaz-2020-11-06-planned", count=3, size_wh=(48, 32), photos="-real"):
    """Random renders with semantics, and real photos with their own semantics, in TOPO's layout (``photos``: the
    photo folder's suffix, ``-real-alt`` for the second appearance)."""
    from PIL import Image

    from topoloc.data.preset import load_preset, load_preset_pic_names

    rng = np.random.default_rng(0)
    poses, names = load_preset(flight), load_preset_pic_names(flight)
    folder, real = root / flight, root / f"{flight}{photos}"
    folder.mkdir(parents=True)
    real.mkdir()
    np.save(folder / f"{flight}_poses.npy", poses)
    (folder / f"{flight}_pic_names.csv").write_text(",".join(names))
    w, h = size_wh
    for i in range(count):
        rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        Image.fromarray(np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], 2), "RGBA").save(
            folder / f"{flight}_{i:05d}_{names[i]}_img.png")
        np.save(folder / f"{flight}_{i:05d}_{names[i]}_semantics.npy", rng.integers(0, 12, (h, w)).astype(np.uint8))
        Image.fromarray(rgb).save(real / f"{names[i]}.JPG")
        np.save(real / f"{names[i]}_semantics.npy", rng.integers(0, 12, (h, w)).astype(np.uint8))
    return flight


def test_report_of_two_runs(tmp_path):
    from topoloc.data import TopoFlight
    from topoloc.reporting.saliency_figures import saliency_report

    flight = _fake_flight(tmp_path / "data")
    sets = [TopoFlight(tmp_path / "data", flight, domain=d, frame="comballaz") for d in ("synthetic", "real")]
    torch.manual_seed(0)
    before = create_model("atloc_resnet18", feat_dim=16)
    runs = {"aug": (before, create_model("atloc_resnet18", feat_dim=16)),
            "none": (before, create_model("atloc_resnet18", feat_dim=16))}
    md = saliency_report(runs, sets, tmp_path / "out", image_size=(32, 48), figure_images=2, share_images=3,
                         device="cpu", method_kwargs={"samples": 2})
    for link in ("plots/saliency_synthetic.png", "plots/saliency_real.png", "plots/saliency_shares.png"):
        assert f"({link})" in md and (tmp_path / "out" / link).is_file()
    assert "48x32 px" in md and "2x1 cells (stride 32 px)" in md
    assert "| aug |" in md and "| none |" in md  # randomisation check rows
    assert "| class | pixels | before training | aug: after | none: after |" in md
    assert "*real (3 images)*" in md and "*synthetic (3 images)*" in md
    assert md.count("Training with `aug` rather than `none`") == 2 and "too few to tell a direction" in md
    with pytest.raises(ValueError, match="runs"):
        saliency_report({}, sets, tmp_path / "out")
    with pytest.raises(ValueError, match="baseline"):
        saliency_report(runs, sets, tmp_path / "out", baseline="other")


def test_the_second_photo_appearance_is_labelled_by_its_own_class_maps(tmp_path):
    # real_alt's lens moves its pixels, and its own class maps lie beside its photos; the render's maps at the same
    # pose had been used without the "labels of the synthetic twin" note
    from topoloc.data import TopoFlight
    from topoloc.reporting.saliency_figures import _gather

    flight = _fake_flight(tmp_path / "data", photos="-real-alt")
    alt = TopoFlight(tmp_path / "data", flight, domain="real_alt", frame="comballaz")
    _, _, sem, twin_labels = _gather("real_alt", [alt], share_images=3, image_size=None)
    own = np.stack([np.load(p.with_name(p.stem + "_semantics.npy")) for p in alt.real_paths])
    assert not twin_labels and np.array_equal(sem.numpy(), own)
    for p in alt.real_paths:  # without them: the render's maps, and said so
        p.with_name(p.stem + "_semantics.npy").unlink()
    _, _, sem, twin_labels = _gather("real_alt", [alt], share_images=3, image_size=None)
    renders = np.stack([np.load(str(p).replace("_img.png", "_semantics.npy")) for p in alt.render_paths])
    assert twin_labels and np.array_equal(sem.numpy(), renders)


def test_ids_outside_the_class_table_count_as_one_unknown_class():
    # mass 1 + 2 + 3 + 4 = 10: sky 1, the ids 2 and 3 (not in the table) 2 + 3, road 4
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    sem = torch.tensor([[[0, 2], [3, 6]]], dtype=torch.uint8)
    s = class_saliency_shares(maps, sem, {0: "sky", 6: "road"})
    assert sorted(s.names) == ["road", "sky", "unknown"]
    assert s.saliency == pytest.approx({"sky": 0.1, "unknown": 0.5, "road": 0.4})
    assert s.area == pytest.approx({"sky": 0.25, "unknown": 0.5, "road": 0.25})


def test_a_figure_gets_its_rows_when_the_shares_ask_for_fewer_images(tmp_path, monkeypatch):
    # `topoloc saliency --num-images 5 --share-images 2` drew a figure of 2 rows without a word
    import topoloc.reporting.saliency_figures as figures
    from topoloc.data import TopoFlight

    flight = _fake_flight(tmp_path / "data", count=6)
    sets = [TopoFlight(tmp_path / "data", flight, domain="synthetic", frame="comballaz")]
    rows = []

    def plot(images, columns, path, **kwargs):
        rows.append(len(images))
        return path

    monkeypatch.setattr(figures, "plot_saliency_figure", plot)
    torch.manual_seed(0)
    model = create_model("atloc_resnet18", feat_dim=16)
    md = figures.saliency_report({"model": (model, model)}, sets, tmp_path / "out", image_size=(32, 48),
                                 figure_images=5, share_images=2, device="cpu", method_kwargs={"samples": 1},
                                 randomisation=False)
    assert rows == [5] and "*synthetic (5 images)*" in md
    rows.clear()
    figures.saliency_report({"model": (model, model)}, sets, tmp_path / "out2", image_size=(32, 48),
                            figure_images=2, share_images=4, device="cpu", method_kwargs={"samples": 1},
                            randomisation=False)
    assert rows == [2]


def test_two_runs_colour_bars_do_not_overlap(tmp_path, monkeypatch):
    # two runs interleave their "after" (jet) and "difference" (red / blue) columns: each bar spanned from its first
    # to its last column, and the difference bar was drawn over the right half of the saliency bar
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import topoloc.reporting.saliency_figures as figures

    saved = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, dpi: saved.setdefault("fig", fig) and path)
    g = torch.Generator().manual_seed(0)
    maps = {"before training": torch.rand(2, 16, 24, generator=g), "a: after": torch.rand(2, 16, 24, generator=g),
            "a: after - initial weights": torch.randn(2, 16, 24, generator=g),
            "b: after": torch.rand(2, 16, 24, generator=g),
            "b: after - initial weights": torch.randn(2, 16, 24, generator=g)}
    plot_saliency_figure(torch.rand(2, 3, 16, 24, generator=g), maps, tmp_path / "s.png")
    FigureCanvasAgg(saved["fig"]).draw()  # the constrained layout places the bars when drawn
    bars = [ax for ax in saved["fig"].axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2
    one, two = (ax.get_window_extent() for ax in bars)
    assert not one.overlaps(two), (one, two)


def test_the_colour_scale_reads_every_map():
    # the scale read the first million values only: at 480 x 720 px and three rows, the "before" column alone
    from topoloc.reporting.saliency_figures import _pooled_scale

    before, after = torch.full((3, 480, 720), 1.0), torch.full((3, 480, 720), 10.0)
    after[:, :, :36] = 0.0  # 5 % of the "after" maps: the pooled 99th percentile is still 10
    assert _pooled_scale([before, after]) == pytest.approx(10.0)
    assert _pooled_scale([before]) == pytest.approx(1.0)


def test_the_share_bars_by_hand(tmp_path, monkeypatch):
    # One image: road 10 % of the pixels, sky 90 %. "before" puts half of the saliency on each (road 0.5 / 0.1 =
    # 5x, sky 0.5 / 0.9); "run: after" 0.2 and 0.8 (road 2x, sky 0.8 / 0.9). Bars per group, largest area first
    # (sky, road), then STABLE (road alone here) and UNSTABLE (sky alone); with one image each whisker has length 0.
    from topoloc.reporting import plots as plots_module

    figures = []
    monkeypatch.setattr(plots_module, "save_figure", lambda fig, path, dpi: figures.append(fig) or path)
    area = np.array([[0.1, 0.9]])
    shares = {"real (1 images)": {"before": ClassShares(["road", "sky"], np.array([[0.5, 0.5]]), area),
                                  "run: after": ClassShares(["road", "sky"], np.array([[0.2, 0.8]]), area)}}
    plot_shares(shares, tmp_path / "p.png")
    (ax,) = figures[0].axes
    bars = [(round(p.get_x() + p.get_width() / 2, 9), p.get_height()) for p in ax.patches]
    want = [(-0.2, 0.5 / 0.9), (0.8, 5.0), (1.8, 5.0), (2.8, 0.5 / 0.9),  # before: sky, road, STABLE, UNSTABLE
            (0.2, 0.8 / 0.9), (1.2, 2.0), (2.2, 2.0), (3.2, 0.8 / 0.9)]   # run: after
    assert [x for x, _ in bars] == [x for x, _ in want]
    np.testing.assert_allclose([h for _, h in bars], [h for _, h in want], rtol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sky\n90.0% px", "road\n10.0% px", "STABLE\n10.0% px",
                                                            "UNSTABLE\n90.0% px"]
    assert ax.get_title() == "real (1 images)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "run: after"]
