"""Loading checkpoints written in the layout of the original AtLoc code."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from topoloc import AtLoc, AtLocLoss


class _OriginalAttention(nn.Module):
    """AtLoc's vector non-local block, written from the paper's description."""

    def __init__(self, c):
        super().__init__()
        self.g = nn.Linear(c, c // 8)
        self.theta = nn.Linear(c, c // 8)
        self.phi = nn.Linear(c, c // 8)
        self.W = nn.Linear(c // 8, c)

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

    def __init__(self, feat_dim=2048, droprate=0.5, resnet=torchvision.models.resnet34):
        super().__init__()
        self.droprate = droprate
        self.feature_extractor = resnet(weights=None)
        self.feature_extractor.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_extractor.fc = nn.Linear(self.feature_extractor.fc.in_features, feat_dim)
        self.att = _OriginalAttention(feat_dim)
        self.fc_xyz = nn.Linear(feat_dim, 3)
        self.fc_wpqr = nn.Linear(feat_dim, 3)

    def forward(self, x, dropout_on=False):
        x = F.relu(self.feature_extractor(x))
        x = self.att(x.view(x.size(0), -1))
        # The original's functional dropout is on even in eval; the comparison disables it.
        x = F.dropout(x, p=self.droprate, training=dropout_on)
        return torch.cat([self.fc_xyz(x), self.fc_wpqr(x)], 1)


def _perturbed_reference(feat_dim, resnet=torchvision.models.resnet34, seed=0):
    torch.manual_seed(seed)
    ref = _OriginalAtLoc(feat_dim=feat_dim, resnet=resnet)
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


def _save(ref, path, sax=0.25, saq=-2.5, data_parallel=False):
    state = ref.state_dict()
    if data_parallel:
        state = {"module." + k: v for k, v in state.items()}
    torch.save({
        "epoch": 42,
        "model_state_dict": state,
        "optim_state_dict": {},
        "criterion_state_dict": {"sax": torch.tensor([sax]), "saq": torch.tensor([saq])},
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
