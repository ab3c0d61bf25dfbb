"""Loading checkpoints written in the layout of the original AtLoc code."""

import datetime

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from topoloc import AtLoc, AtLocLoss


class _OriginalAttention(nn.Module):
    """AtLoc's vector non-local block, written from the paper's description."""

    def __init__(self, c, reduction=8):
        super().__init__()
        self.g = nn.Linear(c, c // reduction)
        self.theta = nn.Linear(c, c // reduction)
        self.phi = nn.Linear(c, c // reduction)
        self.W = nn.Linear(c // reduction, c)

    def forward(self, x):
        b = x.size(0)
        g_x = self.g(x).view(b, -1, 1)
        theta_x = self.theta(x).view(b, 1, -1)
        phi_x = self.phi(x).view(b, -1, 1)
        f = torch.softmax(torch.matmul(phi_x, theta_x), dim=-1)
        y = torch.matmul(f, g_x).view(b, -1)
        return self.W(y) + x


class _OriginalAtLoc(nn.Module):
    """The original AtLoc layout on a torchvision ResNet (module names as in its checkpoints)."""

    def __init__(self, feat_dim=2048, droprate=0.5, resnet=torchvision.models.resnet34, reduction=8):
        super().__init__()
        self.droprate = droprate
        self.feature_extractor = resnet(weights=None)
        self.feature_extractor.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_extractor.fc = nn.Linear(self.feature_extractor.fc.in_features, feat_dim)
        # reduction None: no attention block (a PoseNet-style run), so no `att.*` keys
        self.att = _OriginalAttention(feat_dim, reduction) if reduction else nn.Identity()
        self.fc_xyz = nn.Linear(feat_dim, 3)
        self.fc_wpqr = nn.Linear(feat_dim, 3)

    def forward(self, x, dropout_on=False):
        x = F.relu(self.feature_extractor(x))
        x = self.att(x.view(x.size(0), -1))
        # The original's functional dropout is on even in eval; the comparison disables it.
        x = F.dropout(x, p=self.droprate, training=dropout_on)
        return torch.cat([self.fc_xyz(x), self.fc_wpqr(x)], 1)


def _perturbed_reference(feat_dim, resnet=torchvision.models.resnet34, seed=0, reduction=8):
    torch.manual_seed(seed)
    ref = _OriginalAtLoc(feat_dim=feat_dim, resnet=resnet, reduction=reduction)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in ref.modules():
            if isinstance(module, nn.BatchNorm2d):
                # Non-trivial running stats and affine parameters, so a BN mapped wrongly shows.
                module.running_mean.normal_(0.0, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0.0, 0.2, generator=gen)
                module.num_batches_tracked.fill_(100)
    return ref.eval()


def _save(ref, path, sax=0.25, saq=-2.5, data_parallel=False, **extra):
    state = ref.state_dict()
    if data_parallel:
        state = {"module." + k: v for k, v in state.items()}
    torch.save({
        "epoch": 42,
        "model_state_dict": state,
        "optim_state_dict": {},
        "criterion_state_dict": {"sax": torch.tensor([sax]), "saq": torch.tensor([saq])},
        **extra,
    }, path)


@pytest.mark.parametrize("data_parallel", [False, True])
def test_reproduces_original_outputs(tmp_path, data_parallel):
    ref = _perturbed_reference(feat_dim=256)
    path = tmp_path / "epoch_042.pth.tar"
    _save(ref, path, data_parallel=data_parallel)
    model, loss = AtLoc.from_atloc_checkpoint(path, backbone="resnet34", return_loss=True)
    model.eval()
    images = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ref(images)
        got = model(images)
    assert got.shape == (2, 6)
    assert expected.abs().max() > 1e-3  # the comparison is not between zeros
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert model.feat_dim == 256 and model.attention_type == "atloc"
    assert isinstance(loss, AtLocLoss)
    assert loss.sax.item() == pytest.approx(0.25) and loss.saq.item() == pytest.approx(-2.5)
    assert AtLocLoss.from_atloc_checkpoint(path).saq.item() == pytest.approx(-2.5)


def test_dropout_of_original_differs_but_ours_is_deterministic(tmp_path):
    ref = _perturbed_reference(feat_dim=64, resnet=torchvision.models.resnet18)
    path = tmp_path / "ckpt.pth"
    _save(ref, path)
    model = AtLoc.from_atloc_checkpoint(path, backbone="resnet18").eval()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), model(images))
        torch.testing.assert_close(model(images), ref(images), atol=1e-5, rtol=1e-5)


def test_wrong_backbone_is_named(tmp_path):
    ref = _perturbed_reference(feat_dim=64, resnet=torchvision.models.resnet18)
    path = tmp_path / "ckpt.pth"
    _save(ref, path)
    with pytest.raises(ValueError, match="resnet50"):
        AtLoc.from_atloc_checkpoint(path, backbone="resnet50")


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        AtLoc.from_atloc_checkpoint(tmp_path / "missing.pth")
    path = tmp_path / "not_atloc.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="model_state_dict"):
        AtLoc.from_atloc_checkpoint(path)
    path = tmp_path / "foreign.pth"
    torch.save({"model_state_dict": {"encoder.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="encoder.weight"):
        AtLoc.from_atloc_checkpoint(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="garbage.pth"):
        AtLoc.from_atloc_checkpoint(garbage)


@pytest.mark.parametrize("reduction, attention", [(4, "atloc"), (None, None)])
def test_attention_size_and_absence_are_read_from_the_weights(tmp_path, reduction, attention):
    # "feat_dim, the attention and the rotation size are read from the weights": a block of
    # 64 // 4 = 16 channels, and a run without the block (no att.* keys), reproduce the original.
    ref = _perturbed_reference(feat_dim=64, resnet=torchvision.models.resnet18, reduction=reduction)
    path = tmp_path / "ckpt.pth"
    _save(ref, path)
    model = AtLoc.from_atloc_checkpoint(path, backbone="resnet18").eval()
    assert model.attention_type == attention
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(model(images), ref(images), atol=1e-5, rtol=1e-5)


def test_a_deeper_resnet_read_as_a_shallower_one_is_refused(tmp_path):
    # ResNet34's keys hold all of ResNet18's with the same shapes, plus layer1.2 etc.: a non-strict
    # load would succeed and silently drop the extra blocks.
    path = tmp_path / "resnet34.pth"
    _save(_perturbed_reference(feat_dim=32), path)
    with pytest.raises(ValueError, match=r"does not match AtLoc\(backbone='resnet18'\).*"
                                         r"unexpected \['backbone.model.layer1.2"):
        AtLoc.from_atloc_checkpoint(path, backbone="resnet18")


def test_a_checkpoint_without_fc_wpqr_is_named(tmp_path):
    state = {k: v for k, v in _perturbed_reference(feat_dim=32, resnet=torchvision.models.resnet18).state_dict().items()
             if not k.startswith("fc_wpqr.")}
    path = tmp_path / "no_rotation.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(ValueError, match=r"no_rotation.pth'\: missing fc_wpqr.weight"):
        AtLoc.from_atloc_checkpoint(path)


def test_nested_module_prefixes_are_stripped_from_both_dicts(tmp_path):
    # nn.DataParallel around nn.DataParallel gives "module.module."; the criterion may carry it too
    ref = _perturbed_reference(feat_dim=32, resnet=torchvision.models.resnet18)
    path = tmp_path / "wrapped.pth"
    torch.save({"model_state_dict": {"module.module." + k: v for k, v in ref.state_dict().items()},
                "criterion_state_dict": {"module.module.sax": torch.tensor([0.5]),
                                         "module.module.saq": torch.tensor([-1.5])}}, path)
    model, loss = AtLoc.from_atloc_checkpoint(path, backbone="resnet18", return_loss=True)
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(images), ref(images), atol=1e-5, rtol=1e-5)
    assert (loss.sax.item(), loss.saq.item()) == (0.5, -1.5)


def test_loss_weights_loaded_frozen_when_asked(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"model_state_dict": {}, "criterion_state_dict": {"sax": torch.tensor([0.25]),
                                                                  "saq": torch.tensor([-2.5])}}, path)
    frozen = AtLocLoss.from_atloc_checkpoint(path, learnable=False)
    assert (frozen.sax.item(), frozen.saq.item()) == (0.25, -2.5)
    assert not frozen.sax.requires_grad and not frozen.saq.requires_grad
    assert AtLocLoss.from_atloc_checkpoint(path).saq.requires_grad


def test_criterion_without_saq_is_named(tmp_path):
    path = tmp_path / "half.pth"
    torch.save({"model_state_dict": {}, "criterion_state_dict": {"sax": torch.tensor([0.0])}}, path)
    with pytest.raises(ValueError, match=r"'criterion_state_dict' must hold 'sax' and 'saq', got \['sax'\]"):
        AtLocLoss.from_atloc_checkpoint(path)


def test_a_checkpoint_holding_python_objects_is_not_unpickled(tmp_path):
    # Original checkpoints hold tensors only; anything else is refused (weights_only loading), not
    # run by the unpickler.
    ref = _perturbed_reference(feat_dim=32, resnet=torchvision.models.resnet18)
    path = tmp_path / "objects.pth"
    _save(ref, path, written=datetime.date(2020, 1, 1))
    with pytest.raises(ValueError, match=r"objects.pth' could not be read as a torch.save file of tensors"):
        AtLoc.from_atloc_checkpoint(path, backbone="resnet18")


def test_the_originals_input_normalisation_is_taken(tmp_path):
    # the original normalised with its dataset's stats.txt (mean, variance of [0, 1] images), not ImageNet's
    ref = _perturbed_reference(feat_dim=64, resnet=torchvision.models.resnet18)
    path = tmp_path / "ckpt.pth"
    _save(ref, path)
    mean, var = [0.41, 0.47, 0.38], [0.04, 0.05, 0.06]
    std = [v ** 0.5 for v in var]
    model = AtLoc.from_atloc_checkpoint(path, backbone="resnet18", mean=mean, std=std).eval()
    images = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(5))
    by_hand = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(model.prepare(images)), ref(by_hand), atol=1e-5, rtol=1e-5)
    assert model.config["mean"] == pytest.approx(mean) and model.config["std"] == pytest.approx(std)


@pytest.mark.parametrize("key", ["feat_dim", "rotation", "attention", "attention_reduction", "pretrained",
                                 "local_contrast"])
def test_what_the_weights_fix_cannot_be_given(tmp_path, key):
    # feat_dim=128 was blamed on the backbone; pretrained=True was a "multiple values" TypeError; local_contrast
    # was taken without a word and changed the outputs
    ref = _perturbed_reference(feat_dim=64, resnet=torchvision.models.resnet18)
    path = tmp_path / "ckpt.pth"
    _save(ref, path)
    value = {"feat_dim": 128, "rotation": "6d", "attention": None, "attention_reduction": 4, "pretrained": True,
             "local_contrast": 2.0}[key]
    with pytest.raises(ValueError, match=rf"^AtLoc.from_atloc_checkpoint: \['{key}'\] cannot be given"):
        AtLoc.from_atloc_checkpoint(path, backbone="resnet18", **{key: value})
