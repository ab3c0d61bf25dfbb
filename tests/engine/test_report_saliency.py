"""Saliency figures and the per-class saliency shares."""

import pytest
import torch

from topoloc.models import create_model
from topoloc.saliency_figures import (
    ClassShares,
    class_saliency_shares,
    compute_saliency,
    plot_saliency_figure,
    shares_table,
)

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
    s = ClassShares({"road": 0.5, "sky": 0.5}, {"road": 0.1, "sky": 0.9})
    table = shares_table({"real": (s, s)})
    assert "| real | stable" in table and "| 10.0% | 50.0% | 50.0% |" in table
    with pytest.raises(ValueError, match="images"):
        compute_saliency(before, after, images.float())
