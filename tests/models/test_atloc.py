"""AtLoc assembled: shapes per family and attention, gradients, registry, compile."""

import shutil

import pytest
import torch

import topoloc
from topoloc import AtLoc, AtLocLoss, create_model, list_models


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_b0", "convnext_atto", "vit_tiny_patch16_224"])
@pytest.mark.parametrize("attention", ["atloc", None])
def test_shapes(backbone, attention):
    model = AtLoc(backbone, attention=attention, feat_dim=64).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(images)
        features = model.forward_features(images)
    assert out.shape == (2, 9) and features.shape == (2, 64)  # translation + the default 6D rotation code
    assert torch.isfinite(out).all()
    torch.testing.assert_close(model.forward_head(features), out)
    assert model.num_features == model.feat_dim == 64


@pytest.mark.parametrize("backbone, backbone_kwargs", [
    ("resnet18", None), ("vit_tiny_patch16_224", {"global_pool": "avg", "fc_norm": False})])
def test_spatial_attention(backbone, backbone_kwargs):
    model = AtLoc(backbone, attention="spatial", feat_dim=32, backbone_kwargs=backbone_kwargs).eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        poses, weights, grid = model.forward_with_attention(images)
        torch.testing.assert_close(poses, model(images))
    n = grid[0] * grid[1]
    assert weights.shape == (2, n, n)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, n))


def test_spatial_needs_patch_pooling():
    with pytest.raises(ValueError, match="global_pool"):
        AtLoc("vit_tiny_patch16_224", attention="spatial", feat_dim=32)


def test_paper_configuration():
    model = create_model("atloc_resnet34", rotation="log_quat")  # the paper's rotation output (default: 6D)
    assert model.projection.in_features == 512 and model.projection.out_features == 2048
    assert model.attention.g.weight.shape == (256, 2048) and model.attention.W.weight.shape == (2048, 256)
    assert model.head.fc_xyz.weight.shape == (3, 2048) and model.head.fc_wpqr.weight.shape == (3, 2048)
    assert model.head.dropout.p == 0.5
    assert model.pretrained_cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))


def test_gradients_reach_backbone_and_loss():
    torch.manual_seed(0)
    model = AtLoc("resnet18", feat_dim=32)
    loss_fn = AtLocLoss()
    loss = loss_fn(model(torch.randn(2, 3, 64, 64)), torch.randn(2, 9))
    loss.backward()
    for param in (model.backbone.model.conv1.weight, model.projection.weight, model.attention.theta.weight,
                  model.head.fc_wpqr.weight, loss_fn.sax, loss_fn.saq):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_channels_last_and_bf16_autocast():
    model = AtLoc("resnet18", feat_dim=32).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(images)
        model_cl = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model_cl(images.contiguous(memory_format=torch.channels_last)), reference,
                                   atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images)
    assert out.shape == (2, 9) and torch.isfinite(out).all()
    assert (out.float() - reference).abs().max() < 0.1 * reference.abs().max() + 0.1


def test_quaternion_rotation():
    model = AtLoc("resnet18", feat_dim=32, rotation="quat").eval()
    out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 7) and model.out_dim == 7


def test_config_round_trip():
    model = create_model("atloc_spatial_resnet34", feat_dim=48, dropout=0.2)
    clone = AtLoc.from_config(model.config)
    clone.load_state_dict(model.state_dict())
    assert clone.config == model.config and clone.attention_type == "spatial"


def test_registry():
    names = list_models()
    for name in ("atloc_resnet34", "atloc_resnet18", "atloc_efficientnet_b0", "atloc_convnext_tiny",
                 "atloc_vit_small", "posenet_resnet34", "atloc_spatial_resnet34"):
        assert name in names
    assert list_models("posenet_*") == ["posenet_resnet34"]
    model = create_model("posenet_resnet34", feat_dim=16)
    assert model.attention_type is None and model.config["backbone"] == "resnet34.tv_in1k"
    vit = create_model("atloc_spatial_vit_small", feat_dim=16, backbone_kwargs={"drop_path_rate": 0.1})
    assert vit.config["backbone_kwargs"] == {"global_pool": "avg", "fc_norm": False, "drop_path_rate": 0.1}
    with pytest.raises(ValueError, match="atloc_resnet34"):
        create_model("atloc_resnet999")
    assert topoloc.create_model is create_model


@pytest.mark.parametrize("kwargs, name", [
    ({"attention": "nonlocal"}, "attention"), ({"feat_dim": 0}, "feat_dim"),
    ({"rotation": "euler"}, "rotation"), ({"backbone": "nope"}, "name")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AtLoc(**{"backbone": "resnet18", **kwargs})


def test_forward_with_attention_needs_spatial():
    with pytest.raises(ValueError, match="spatial"):
        AtLoc("resnet18", feat_dim=16).forward_with_attention(torch.randn(1, 3, 32, 32))


def _inductor_unavailable():
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        return "no C compiler for TorchInductor's CPU backend"
    return None


def test_compiled_matches_eager():
    reason = _inductor_unavailable()
    if reason:
        pytest.skip(reason)
    torch.manual_seed(0)
    # timm's smallest ResNet keeps the CPU compile to ~10 s; the AtLoc parts are the full ones.
    model = AtLoc("test_resnet", feat_dim=32).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        eager = model(images)
        try:
            compiled = torch.compile(model, backend="inductor")(images)
        except Exception as err:  # noqa: BLE001 - toolchain problems are environment, not code
            pytest.skip(f"torch.compile (inductor) unavailable on this CPU: {type(err).__name__}: {err}")
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)
