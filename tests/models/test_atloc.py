"""AtLoc assembled: shapes per family and attention, gradients, registry, compile."""

import shutil

import pytest
import timm
import torch

import topoloc
from topoloc import AtLoc, AtLocLoss, create_model, list_models
from topoloc.models import _registry, register_model


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


@pytest.mark.parametrize("backbone, backbone_kwargs, stride", [
    ("resnet18", None, 32), ("vit_tiny_patch16_224", {"global_pool": "avg", "fc_norm": False}, 16)])
def test_spatial_attention(backbone, backbone_kwargs, stride):
    model = AtLoc(backbone, attention="spatial", feat_dim=32, backbone_kwargs=backbone_kwargs).eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        poses, weights, grid = model.forward_with_attention(images)
        torch.testing.assert_close(poses, model(images))
    assert grid == (64 // stride, 96 // stride)  # (h, w): rows first, as the weights' positions are laid out
    n = grid[0] * grid[1]
    assert weights.shape == (2, n, n)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, n))


def test_spatial_attention_output_is_what_is_pooled():
    # W = 0 and a bias c: the block adds c to every position, so the average pool moves by c. The
    # reference is timm's ResNet18 itself: relu(P (mean over positions of its map + c) + b).
    torch.manual_seed(0)
    model = AtLoc("resnet18", attention="spatial", feat_dim=16).eval()
    c = torch.linspace(-1.0, 1.0, 512)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model.spatial_attention.W.bias.copy_(c)
        pooled = model.backbone.model.forward_features(x).mean(dim=(2, 3)) + c
        want = torch.relu(pooled @ model.projection.weight.T + model.projection.bias)
        torch.testing.assert_close(model.forward_features(x), want, atol=1e-5, rtol=1e-5)


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


def test_from_config_overrides_win_and_the_frame_travels():
    config = {**AtLoc("resnet18", feat_dim=16, dropout=0.5).config,
              "frame": {"lat_deg": 46.5, "lon_deg": 6.6, "h_m": 400.0}}
    clone = AtLoc.from_config(config, dropout=0.1, feat_dim=24, image_size=(32, 48))
    assert clone.head.dropout.p == 0.1 and clone.projection.out_features == 24
    assert clone.input_size == (32, 48)
    assert clone.config["frame"] == {"lat_deg": 46.5, "lon_deg": 6.6, "h_m": 400.0}


def test_register_model_refuses_a_taken_name(monkeypatch):
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))  # a stray registration stays here

    def atloc_resnet34(**kwargs):
        return None

    with pytest.raises(ValueError, match="'atloc_resnet34' is already registered"):
        register_model(atloc_resnet34)


def test_list_models_is_sorted():
    names = list_models()
    assert names == sorted(names) and len(names) >= 9
    assert list_models("atloc_resnet*") == ["atloc_resnet18", "atloc_resnet34", "atloc_resnet50"]


def test_resnet_entries_name_torchvision_weights(monkeypatch):
    # The module's promise: ResNet entries name timm's tv_in1k weights (torchvision's ImageNet
    # weights, AtLoc's initialisation), with the depth of their name.
    seen = []
    monkeypatch.setattr(_registry, "AtLoc", lambda **kwargs: seen.append(kwargs))
    for name in list_models("*resnet*"):
        create_model(name)
        depth = name.rsplit("resnet", 1)[1]
        assert seen[-1]["backbone"] == f"resnet{depth}.tv_in1k", name
        assert timm.is_model(seen[-1]["backbone"])
    assert len(seen) == 5


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
        except torch._dynamo.exc.BackendCompilerFailed as err:  # the C++ toolchain: environment, not code
            pytest.skip(f"torch.compile (inductor) unavailable on this CPU: {err}")
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)
