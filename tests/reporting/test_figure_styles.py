"""Figures a reader compares across: one colour per run in every figure, one colour scale for every saliency map
(found by a visual audit: per-panel scaling made a small change look as saturated as a large one)."""

import matplotlib
import numpy as np
import torch

from topoloc.reporting.plots import method_styles
from topoloc.saliency import overlay


def test_a_run_keeps_its_colour_whatever_the_other_labels():
    cdf = method_styles(["augmented (SimToReal)", "no augmentation", "augmented (SimToReal) + AdaBN",
                         "no augmentation + AdaBN", "constant pose", "retrieval (thumbnail)", "coverage ceiling"])
    shares = method_styles(["before training", "no augmentation", "augmented (SimToReal)"])  # another order
    for run in ("augmented (SimToReal)", "no augmentation"):
        assert cdf[run]["color"] == shares[run]["color"] and cdf[run]["linestyle"] == "-"
        assert cdf[f"{run} + AdaBN"] == {"color": cdf[run]["color"], "linestyle": "--"}
    assert cdf["augmented (SimToReal)"]["color"] != cdf["no augmentation"]["color"]
    assert cdf["constant pose"]["color"] == "black" and cdf["retrieval (thumbnail)"]["linestyle"] == "-."


def test_one_vmax_maps_every_image_to_the_same_colours():
    # with vmax, a value means one colour in every image: 1 of vmax 2 is the colormap's middle, 2 and above its top
    jet = matplotlib.colormaps["jet"]
    maps = torch.tensor([[[0.0, 1.0], [2.0, 4.0]], [[0.0, 0.1], [0.2, 0.3]]])
    out = overlay(torch.zeros(2, 3, 2, 2), maps, alpha=1.0, vmax=2.0)
    expected = np.array([jet(v)[:3] for v in (0.0, 128 / 255, 1.0, 1.0)]).T.reshape(3, 2, 2)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1 / 255)
    # the second image's small values stay at the bottom of the scale (scaled per image, 0.3 was the top colour)
    small = np.array([jet(round(v / 2.0 * 255) / 255)[:3] for v in (0.0, 0.1, 0.2, 0.3)]).T.reshape(3, 2, 2)
    np.testing.assert_allclose(out[1].numpy(), small, atol=1 / 255)
    assert not np.allclose(out[1].numpy()[:, 1, 1], jet(1.0)[:3], atol=0.1)
    # signed: -vmax blue end, 0 the middle (white in RdBu_r), +vmax red end
    rdbu = matplotlib.colormaps["RdBu_r"]
    diff = overlay(torch.zeros(3, 1, 3), torch.tensor([[-2.0, 0.0, 2.0]]), alpha=1.0, vmax=2.0)
    want = np.array([rdbu(v)[:3] for v in (0.0, 128 / 255, 1.0)]).T.reshape(3, 1, 3)
    np.testing.assert_allclose(diff.numpy(), want, atol=1 / 255)
    # a difference column that happens to hold no negative value is still coloured about 0
    pos = overlay(torch.zeros(3, 1, 1), torch.tensor([[0.0]]), alpha=1.0, vmax=2.0, signed=True)
    np.testing.assert_allclose(pos.numpy().ravel(), rdbu(128 / 255)[:3], atol=1 / 255)
