"""The registry of training augmentations (`topoloc.engine.augmentations`): its refusals and where it builds."""

import pytest
import torch
from torch import nn

from topoloc.engine.augmentations import AUGMENTATIONS, build_augment, register_augment


@pytest.mark.parametrize("name", ["Snow", "none", ""])
def test_a_name_that_no_config_could_ask_for_is_refused(name):
    # TrainConfig lower-cases `augment` and reads "none" as no augmentation: an upper-case or "none"
    # entry could never be used, so it is refused when registered.
    with pytest.raises(ValueError, match="lower-case name other than 'none'"):
        register_augment(name, lambda strength: (lambda x: x))
    assert name not in AUGMENTATIONS


def test_colorjitter_changes_every_image_as_atloc_does():
    # AtLoc's torchvision ColorJitter(0.7, 0.7, 0.7, 0.5) is applied to every training image; with p < 1
    # some images of a batch would pass unchanged.
    torch.manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    out = build_augment("colorjitter")(x)
    changed = (out - x).abs().flatten(1).amax(1) > 1e-4
    assert changed.all()


def test_modules_are_built_on_the_asked_device(monkeypatch):
    # "meta" stands in for a GPU on a CPU-only machine: a module left on the CPU keeps CPU weights.
    given = nn.Conv2d(3, 3, 1)
    assert build_augment(given, device="meta").weight.device.type == "meta"
    monkeypatch.setitem(AUGMENTATIONS, "tint", lambda strength: nn.Conv2d(3, 3, 1))
    assert build_augment("tint", device="meta").weight.device.type == "meta"
