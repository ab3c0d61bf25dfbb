"""Where the network looks: saliency maps, overlays and the sanity checks that maps must pass.

AtLoc's "saliency maps" (Wang et al. 2020, Fig. 1) are gradient x input maps: the absolute
product of the input image with the gradient of the pose output with respect to it, maximised
over the RGB channels (`gradient_saliency`). `smoothgrad` averages that gradient over noisy (and
optionally shifted) copies of the image, `integrated_gradients` integrates it from a baseline, and
`attention_saliency` reads the weights of `topoloc.models.SpatialAttention` (AtLoc's own
attention acts on a pooled vector and has no image positions). `saliency` picks one by name.
Every map is (B, H, W) at the input's size, one per image.

The checks of Adebayo et al. (NeurIPS 2018) are in `topoloc.saliency.checks`: a map that does not
change when the weights are randomised explains the architecture, not the model.

A grid of bright squares 32 px apart, the same in every image, is the architecture: a ResNet whose
residual branches are near zero (timm's ``zero_init_last``, kept by short trainings) sees the input
only through its stride-2 1x1 shortcuts and max-pool, an 11 x 11 px window every 32 px. `Backbone`
no longer builds random ResNets that way; a weaker pattern locked to the stride remains in the
gradient of any ResNet, and `smoothgrad(max_shift=...)` averages it out.

Modules: ``maps`` (the methods), ``difference`` (two models compared), ``overlay`` (colouring),
``checks`` (sanity checks).
"""

from topoloc.saliency.checks import (
    PlantedCueCheck,
    RandomisationCheck,
    planted_cue_check,
    planted_cue_data,
    randomisation_check,
    randomize_weights,
    rank,
    region_share,
    spearman,
)
from topoloc.saliency.difference import SaliencyDifference, saliency_difference
from topoloc.saliency.maps import (
    METHODS,
    attention_saliency,
    gradient_saliency,
    integrated_gradients,
    saliency,
    smoothgrad,
)
from topoloc.saliency.overlay import overlay

__all__ = [
    "METHODS",
    "PlantedCueCheck",
    "RandomisationCheck",
    "SaliencyDifference",
    "attention_saliency",
    "gradient_saliency",
    "integrated_gradients",
    "overlay",
    "planted_cue_check",
    "planted_cue_data",
    "randomisation_check",
    "randomize_weights",
    "rank",
    "region_share",
    "saliency",
    "saliency_difference",
    "smoothgrad",
    "spearman",
]
