"""Backbone: timm families, feature maps, pooled vectors, normalisation, weights files."""

import inspect

import pytest
import timm
import torch

from topoloc import Backbone
from topoloc.models import backbone as backbone_module

# (name, channels of the feature map, its stride) for a 64 x 96 input.
FAMILIES = [
    ("resnet18", 512, 32),
    ("efficientnet_b0", 1280, 32),
    ("convnext_atto", 320, 32),
    ("vit_tiny_patch16_224", 192, 16),
]


@pytest.mark.parametrize("name, channels, stride", FAMILIES)
def test_shapes(name, channels, stride):
    bb = Backbone(name).eval()
    fmap, pooled = bb(torch.randn(2, 3, 64, 96))
    assert fmap.shape == (2, channels, 64 // stride, 96 // stride)
    assert pooled.shape == (2, channels)
    assert bb.num_features == channels and bb.pooled_dim == channels


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto"])
def test_pooled_is_timm_pre_logits(name):
    bb = Backbone(name).eval()
    x = torch.randn(1, 3, 64, 64)
    fmap, pooled = bb(x)
    # Independent reference: timm's own forward_head on its forward_features.
    torch.testing.assert_close(pooled, bb.model.forward_head(bb.model.forward_features(x), pre_logits=True))
    torch.testing.assert_close(bb.pool(fmap), pooled)
    torch.testing.assert_close(bb.forward_map(x), fmap)


def test_vit_map_is_patch_tokens():
    bb = Backbone("vit_tiny_patch16_224").eval()
    x = torch.randn(1, 3, 32, 48)
    fmap, pooled = bb(x)
    tokens = bb.model.forward_features(x)  # (1, 1 + 2 * 3, 192), class token first
    assert tokens.shape == (1, 7, 192)
    torch.testing.assert_close(fmap[0, :, 1, 2], tokens[0, 1 + 1 * 3 + 2])
    torch.testing.assert_close(pooled, tokens[:, 0])  # class-token pooling, norm already applied
    assert not bb.can_pool_map


def test_vit_avg_pool_map():
    bb = Backbone("vit_tiny_patch16_224", global_pool="avg", fc_norm=False).eval()
    fmap, pooled = bb(torch.randn(1, 3, 32, 32))
    assert bb.can_pool_map
    torch.testing.assert_close(bb.pool(fmap), fmap.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3)))


def test_normalisation_from_pretrained_cfg():
    bb = Backbone("vit_tiny_patch16_224")
    cfg = timm.create_model("vit_tiny_patch16_224", pretrained=False).pretrained_cfg
    assert tuple(bb.image_mean.flatten().tolist()) == pytest.approx(cfg["mean"])
    images = torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    out = bb.normalize(images)
    expected = [(0 - cfg["mean"][0]) / cfg["std"][0], (1 - cfg["mean"][1]) / cfg["std"][1],
                (128 / 255 - cfg["mean"][2]) / cfg["std"][2]]
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(expected))
    resnet = Backbone("resnet18")
    assert resnet.image_std.flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])  # ImageNet
    with pytest.raises(ValueError, match="images"):
        resnet.normalize(torch.zeros(3, 4, 4))


def test_float_images_in_0_255_are_refused_not_normalised_wrongly():
    from topoloc import AtLoc

    model = AtLoc("resnet18", feat_dim=8)
    grey = torch.full((1, 3, 8, 8), 128, dtype=torch.uint8)
    # (128 / 255 - 0.485) / 0.229 by hand, the red channel with ImageNet's mean and std
    assert float(model.prepare(grey)[0, 0, 0, 0]) == pytest.approx((128 / 255 - 0.485) / 0.229, abs=1e-6)
    assert torch.equal(model.prepare(grey.float() / 255), model.prepare(grey))
    with pytest.raises(ValueError, match=r"float `images` must be in \[0, 1\], got a maximum of 128: divide"):
        model.prepare(grey.float())
    # the library's own floats (augmented batches, SmoothGrad's noisy copies) may stray above 1
    assert float(model.prepare(grey.float(), check_range=False)[0, 0, 0, 0]) == pytest.approx((128 - 0.485) / 0.229)
    # a resize's overshoot beside an edge may reach 1.9 in a few pixels
    overshot = torch.full((1, 3, 8, 8), 0.5)
    overshot[..., 0, 0] = 1.9
    assert float(model.prepare(overshot)[0, 0, 0, 0]) == pytest.approx((1.9 - 0.485) / 0.229)
    # -inf left the maximum finite and passed; an image normalised twice reaches about -2.1 (ImageNet's
    # (0 - 0.485) / 0.229 normalised again).
    holed = torch.full((1, 3, 8, 8), 0.5)
    holed[0, 1, 2, 3] = -float("inf")
    with pytest.raises(ValueError, match="^prepare: float `images` hold infinite pixels"):  # the call made, named
        model.prepare(holed)
    with pytest.raises(ValueError, match="^normalize: float `images` hold infinite pixels"):
        model.normalize(holed)
    once = model.prepare(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"got a minimum of -2\.1.*normalised again"):
        model.prepare(once)
    # white pixels normalised reach (1 - 0.406) / 0.225 = 2.64 > 2: that was blamed on [0, 255] images
    full_range = model.prepare(torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)]))
    with pytest.raises(ValueError, match=r"got a minimum of -2\.1\d* \(maximum 2\.64\d*\): images already normalised"):
        model.prepare(full_range)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_from_local_file(tmp_path, suffix):
    source = timm.create_model("resnet18", pretrained=False)  # with its 1000-class fc
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        from safetensors.torch import save_file
        save_file(source.state_dict(), str(path))
    bb = Backbone("resnet18", pretrained=path)
    torch.testing.assert_close(bb.model.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(bb.model.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)


def test_pretrained_offline_error_says_how(monkeypatch):
    real = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(backbone_module.timm, "create_model", offline)
    with pytest.raises(RuntimeError, match=r"pretrained='/path/to/weights.pth'"):
        Backbone("resnet18", pretrained=True)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        Backbone("resnet_does_not_exist")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        Backbone("resnet18", pretrained=tmp_path / "nothing.pth")
    with pytest.raises(TypeError, match="pretrained"):
        Backbone("resnet18", pretrained=1)
    with pytest.raises(ValueError, match="num_classes"):
        Backbone("resnet18", num_classes=10)
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match=r"bad.pth' is not a state dict of the timm model 'resnet18': keys missing"):
        Backbone("resnet18", pretrained=bad)
    # timm loads a file non-strictly (its 1000-class fc does not fit num_classes=0): ResNet18 weights gave a
    # ResNet34 its first layers and left the rest random, and the other way round dropped 96 tensors, each
    # without an error
    for source, target, why in (("resnet18", "resnet34", "keys missing 96"), ("resnet34", "resnet18",
                                                                              "keys not in the model 96")):
        path = tmp_path / f"{source}.pth"
        torch.save(timm.create_model(source, pretrained=False).state_dict(), path)
        with pytest.raises(ValueError, match=rf"{source}.pth' is not a state dict of the timm model '{target}': "
                                             rf"{why} \(layer1\.2\."):
            Backbone(target, pretrained=path)
    with pytest.raises(ValueError, match=r"got 'efficientnet-b0'; did you mean 'efficientnet_b0'"):
        Backbone("efficientnet-b0")


def _input_grad(backbone, size=(64, 64)):
    """|d pooled / d input| summed over channels, of a backbone in eval mode."""
    x = torch.randn(1, 3, *size, requires_grad=True)
    _, pooled = backbone.eval()(x)
    (grad,) = torch.autograd.grad(pooled.sum(), x)
    return grad.abs().sum(1)[0]


def test_random_resnet_sees_every_pixel():
    # timm's zero_init_last=True zeroes the last BN of every residual branch: the untrained ResNet
    # is then stem + max-pool + three stride-2 1x1 shortcut convolutions, whose output depends on
    # the input only through 11 x 11 px windows (7x7/2 conv + 3x3/2 max-pool) every 32 px.
    torch.manual_seed(0)
    timm_init = Backbone("resnet18", zero_init_last=True)
    assert all(not m.bn2.weight.detach().any() for m in timm_init.model.modules() if hasattr(m, "bn2"))
    reached = (_input_grad(timm_init) > 0).float()
    # windows at 0 and 32 px in each direction: rows/columns -5..5 (clipped at the border) and 27..37
    assert reached[12:26, :].sum() == 0 and reached[:, 12:26].sum() == 0 and reached[38:, :].sum() == 0
    assert 0.05 < float(reached.mean()) < 0.2
    # the default from random weights: every residual branch is a normal random layer
    torch.manual_seed(0)
    ours = Backbone("resnet18")
    assert all(torch.equal(m.bn2.weight, torch.ones_like(m.bn2.weight))
               for m in ours.model.modules() if hasattr(m, "bn2"))
    assert float((_input_grad(ours) > 0).float().mean()) > 0.99
    # models without the argument are built as before
    assert Backbone("vit_tiny_patch16_224", img_size=32).num_features == 192


def test_stem_width_of_the_7x7_stem(tmp_path):
    # timm documents `stem_width` as the width of the single 7x7 stem too, but builds 64 channels.
    half = [32, 64, 128, 256]
    torch.manual_seed(0)
    narrow = Backbone("resnet18", channels=half, stem_width=32)
    default = Backbone("resnet18", channels=half)
    seen = {}
    narrow.model.act1.register_forward_hook(lambda m, i, out: seen.update(stem=out.shape))
    fmap, _ = narrow.eval()(torch.randn(2, 3, 64, 96))
    assert seen["stem"] == (2, 32, 32, 48) and fmap.shape == (2, 256, 2, 3)
    # Parameters saved, worked by hand: the stem conv 3 x 49 x (64 - 32), its norm 2 x (64 - 32),
    # layer1's first conv 9 x 32 x (64 - 32), and its 64 -> 32 shortcut (1x1 conv + norm) gone.
    saved = 3 * 49 * 32 + 2 * 32 + 9 * 32 * 32 + (64 * 32 + 2 * 32)
    assert sum(p.numel() for p in default.parameters()) - sum(p.numel() for p in narrow.parameters()) == saved == 16096
    assert narrow.model.layer1[0].downsample is None
    assert narrow.model.feature_info[0] == {"num_chs": 32, "reduction": 2, "module": "act1"}
    # initialised as timm initialises its convolutions: Kaiming normal over the fan-out (32 x 7 x 7)
    assert float(narrow.model.conv1.weight.detach().std()) == pytest.approx((2 / (32 * 49)) ** 0.5, rel=0.05)
    # a width that keeps a shortcut projection: 48 -> 32 channels
    mid = Backbone("resnet18", channels=half, stem_width=48)
    assert mid.model.layer1[0].downsample[0].weight.shape == (32, 48, 1, 1)
    # ResNet18's own widths: layer1's identity shortcut (64 -> 64) becomes a 32 -> 64 projection, as timm
    # builds a block whose input and output widths differ. By hand: the stem conv 3 x 49 x 32 and its
    # norm 2 x 32 fewer, layer1's first conv 9 x 64 x 32 fewer, the projection 32 x 64 + 2 x 64 more.
    full, narrow_stem = Backbone("resnet18"), Backbone("resnet18", stem_width=32)
    assert narrow_stem.eval()(torch.randn(1, 3, 64, 96))[0].shape == (1, 512, 2, 3)
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in narrow_stem.parameters()) == \
        3 * 49 * 32 + 2 * 32 + 9 * 64 * 32 - (32 * 64 + 2 * 64)
    # 64 builds timm's model; deep stems are timm's own (c, d: three 3x3 convolutions)
    assert {k: v.shape for k, v in Backbone("resnet18", stem_width=64).state_dict().items()} == \
        {k: v.shape for k, v in Backbone("resnet18").state_dict().items()}
    assert Backbone("resnet18d", stem_width=16).model.conv1[0].out_channels == 16
    with pytest.raises(ValueError, match="stem_width"):
        Backbone("resnet18", stem_width=0)
    with pytest.raises(ValueError, match="stem_width.*SelectiveKernel"):  # blocks timm builds otherwise
        Backbone("skresnet18", stem_width=32)
    weights = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), weights)
    with pytest.raises(ValueError, match="stem_width.*64-channel"):
        Backbone("resnet18", pretrained=weights, stem_width=32)


def test_register_tokens_are_not_patches():
    # 1 class token + 4 register tokens: the patch grid starts at token 5 (timm's num_prefix_tokens)
    bb = Backbone("vit_tiny_patch16_224", reg_tokens=4).eval()
    x = torch.randn(1, 3, 32, 48)
    fmap, _ = bb(x)
    tokens = bb.model.forward_features(x)
    assert tokens.shape == (1, 5 + 2 * 3, 192) and fmap.shape == (1, 192, 2, 3)
    torch.testing.assert_close(fmap[0, :, 0, 0], tokens[0, 5])
    torch.testing.assert_close(fmap[0, :, 1, 2], tokens[0, 5 + 1 * 3 + 2])


def test_channels_last_model_with_a_wider_head():
    # timm's MambaOut gives (B, h, w, C) features and a pre-logits vector wider than C (head_hidden_size)
    bb = Backbone("test_mambaout").eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        fmap, pooled = bb(x)
        nhwc = bb.model.forward_features(x)
        reference = timm.create_model("test_mambaout", num_classes=0)
        reference.load_state_dict(bb.model.state_dict())
        want_pooled = reference.eval()(x)  # timm's own classifier-free forward
    assert nhwc.shape == (2, 2, 3, 64) and fmap.shape == (2, 64, 2, 3)
    torch.testing.assert_close(fmap[1, :, 1, 2], nhwc[1, 1, 2])
    assert want_pooled.shape == (2, 256) and bb.pooled_dim == 256 and bb.num_features == 64
    torch.testing.assert_close(pooled, want_pooled)
    torch.testing.assert_close(bb.pool(fmap), want_pooled)
    from topoloc import AtLoc

    assert AtLoc("test_mambaout", feat_dim=8).eval()(x).shape == (2, 9)


def test_swin_is_a_map_model_not_a_token_model():
    # Swin has a patch_embed but no prefix tokens: its (B, h, w, C) output is a map, not tokens
    bb = Backbone("swin_tiny_patch4_window7_224", embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
                  img_size=64, window_size=2).eval()
    x = torch.randn(1, 3, 64, 64)
    fmap, pooled = bb(x)
    assert not bb.is_token_model
    torch.testing.assert_close(fmap, bb.model.forward_features(x).permute(0, 3, 1, 2))
    torch.testing.assert_close(pooled, bb.model.forward_head(bb.model.forward_features(x), pre_logits=True))


def test_vit_max_pool_map():
    # can_pool_map: "avg", "max" or "avgmax" pools of patch tokens
    bb = Backbone("vit_tiny_patch16_224", global_pool="max", fc_norm=False).eval()
    fmap, pooled = bb(torch.randn(1, 3, 32, 32))
    assert bb.can_pool_map
    torch.testing.assert_close(pooled, fmap.amax(dim=(2, 3)))
    torch.testing.assert_close(bb.pool(fmap), fmap.amax(dim=(2, 3)))


@pytest.mark.parametrize("mean, std", [([0.5, 0.5, 0.5], [0.2, 0.0, 0.2]), ([0.5, 0.5, 0.5], [0.2, -0.1, 0.2]),
                                       ([123.675, 116.28, 103.53], [0.229, 0.224, 0.225]),
                                       ([-0.1, 0.5, 0.5], [0.2, 0.2, 0.2])])
def test_set_normalization_refuses_a_zero_std_or_a_mean_outside_0_1(mean, std):
    bb = Backbone("test_resnet")
    with pytest.raises(ValueError, match="mean / std"):
        bb.set_normalization(mean, std)
    assert bb.image_std.flatten().tolist() == pytest.approx(timm.create_model("test_resnet").pretrained_cfg["std"])


def test_an_argument_the_timm_model_lacks_is_refused_naming_the_backbone():
    # was timm's bare "ResNet.__init__() got an unexpected keyword argument 'nope'"
    with pytest.raises(TypeError, match=r"^Backbone\('resnet18'\): timm could not build 'resnet18' with \{'nope': 1\} "
                                        r"\(.*unexpected keyword argument 'nope'\)"):
        Backbone("resnet18", nope=1)


def test_swin_takes_other_sizes_than_224():
    # was timm's "AssertionError: Input height (64) doesn't match model (224)": Swin fixes its size unless built
    # with strict_img_size=False, as ViTs need dynamic_img_size
    torch.manual_seed(0)
    bb = Backbone("swin_tiny_patch4_window7_224").eval()
    with torch.no_grad():
        fmap = bb.forward_map(torch.rand(1, 3, 64, 96))
    assert bb.model.patch_embed.strict_img_size is False
    assert bb.pool(fmap).shape == (1, bb.pooled_dim)


def test_token_models_without_dynamic_sizes_are_built():
    # CaiT and XCiT take no dynamic_img_size: it was always passed to token models, and they could not be built
    cait = Backbone("cait_xxs24_224").eval()
    assert "dynamic_img_size" not in inspect.signature(type(cait.model).__init__).parameters
    xcit = Backbone("xcit_nano_12_p16_224").eval()
    with torch.no_grad():  # XCiT's positional encoding takes any size: 16 px patches, 160 / 16 x 192 / 16 cells
        assert xcit.forward_map(torch.rand(1, 3, 160, 192)).shape == (1, xcit.num_features, 10, 12)
        assert cait(torch.rand(1, 3, 224, 224))[1].shape == (1, cait.pooled_dim)


def test_a_backbone_without_a_spatial_map_says_so():
    # LeViT gives (B, 16, 384) tokens with no patch embedding: its "map" went on to the spatial attention
    bb = Backbone("levit_128s").eval()
    with torch.no_grad():
        assert bb(torch.rand(1, 3, 224, 224))[1].shape == (1, bb.pooled_dim)  # the pooled vector is fine
        with pytest.raises(ValueError, match=r"^Backbone\('levit_128s'\): its features are \(1, 16, 384\), not a "
                                             r"\(B, C, h, w\) map"):
            bb.forward_map(torch.rand(1, 3, 224, 224))


@pytest.mark.parametrize("kwargs, match", [({"features_only": True}, "`features_only` is not supported"),
                                           ({"global_pool": ""}, "`global_pool` must name a pooling")])
def test_timm_arguments_that_leave_no_pooled_vector_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=rf"^Backbone\('resnet18'\): {match}"):
        Backbone("resnet18", **kwargs)


def test_a_hub_name_without_network_fails_once_and_says_what_to_do(monkeypatch):
    # offline, timm's probe and then its build each retried the hub five times (about 50 s), to a bare
    # LocalEntryNotFoundError (an OSError)
    calls = []

    def offline(name, **kwargs):
        calls.append(name)
        raise OSError("Name or service not known")

    monkeypatch.setattr(backbone_module.timm, "create_model", offline)
    with pytest.raises(RuntimeError, match=r"^Backbone\('hf-hub:timm/resnet18.a1_in1k'\): timm could not fetch the "
                                           r"model's configuration from the Hugging Face hub \(OSError: Name or "
                                           r"service not known\); without network access use timm's own name"):
        Backbone("hf-hub:timm/resnet18.a1_in1k")
    assert calls == ["hf-hub:timm/resnet18.a1_in1k"]
