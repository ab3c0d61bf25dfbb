"""A timm model used as a feature extractor: feature map, pooled vector, normalisation."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, cast

import timm
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
import torch
from torch import Tensor, nn

from topoloc.models.contract import check_unit_range, to_unit_float

__all__ = ["Backbone"]

_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".pth.tar", ".ckpt")


def _is_token_model(model: nn.Module) -> bool:
    """Whether timm's ``forward_features`` returns (B, N, C) tokens (ViT family)."""
    return hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens")


def _check_weights_file(model: nn.Module, path: str, name: str) -> None:
    """Refuse a weights file whose keys are not ``model``'s (classifier keys aside): timm loads it with
    ``strict=False`` (the file's classifier does not fit ``num_classes=0``), so a file of another architecture
    (ResNet18 weights into a ResNet34) left the layers it lacks at random weights without a word."""
    from timm.models import load_state_dict

    held = set(load_state_dict(path))
    wanted = set(model.state_dict())
    cfg = getattr(model, "pretrained_cfg", None)
    classifier = (cfg.get("classifier") if isinstance(cfg, dict) else None) or ()
    prefixes = tuple(f"{c}." for c in ((classifier,) if isinstance(classifier, str) else classifier))
    missing = sorted(wanted - held)
    extra = sorted(k for k in held - wanted if not k.startswith(prefixes))
    if missing or extra:
        said = "; ".join(f"{what} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                         for what, keys in (("missing", missing), ("not in the model", extra)) if keys)
        raise ValueError(f"Backbone({name!r}): the weights file {path!r} is not a state dict of the timm model "
                         f"{name!r}: keys {said}; expected the weights of the same architecture")


def _resolve_pretrained(name: str, pretrained: bool | str | PathLike) -> tuple[bool, dict | None]:
    """Validate ``pretrained`` and turn it into timm's (pretrained, pretrained_cfg_overlay)."""
    if isinstance(pretrained, bool):
        return pretrained, None
    if isinstance(pretrained, (str, PathLike)):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Backbone({name!r}): `pretrained` weights file {str(path)!r} does not exist "
                f"(expected a {' / '.join(_WEIGHT_SUFFIXES)} state dict of the timm model)"
            )
        return True, {"file": str(path)}
    raise TypeError(
        f"Backbone({name!r}): `pretrained` must be False, True or a path to a local weights file, "
        f"got {type(pretrained).__name__}"
    )


def _set_stem_width(model: nn.Module, width: int, name: str) -> None:
    """Give a timm ResNet's single 7x7 stem ``width`` output channels, as timm documents ``stem_width``.

    timm documents ``stem_width`` as the width of its default 7x7 stem too, but builds that stem
    with 64 channels whatever is asked (``stem_width`` reaches its deep stems only). The stem
    convolution and its norm are rebuilt at ``width``, initialised as timm initialises them, and the
    first block of ``layer1`` takes ``width`` input channels: its shortcut gets a 1x1 projection
    (convolution + norm) where the widths no longer match, and loses it where they then do, as timm
    builds a block. Nothing changes where the stem is already ``width``.
    """
    # the caller checked that model.conv1 is a Conv2d and that model has a layer1 (a Sequential of blocks)
    stem, norm, block = cast(nn.Conv2d, model.conv1), model.bn1, cast(nn.Sequential, model.layer1)[0]
    if stem.out_channels == width:
        return
    block_conv = getattr(block, "conv1", None)
    if type(norm) is not nn.BatchNorm2d or not isinstance(block_conv, nn.Conv2d):
        raise ValueError(f"Backbone({name!r}): `stem_width` of the 7x7 stem is supported for ResNets with a "
                         f"BatchNorm2d stem and plain convolutions in their blocks, not this one "
                         f"({type(norm).__name__}, {type(block_conv).__name__})")

    like: dict[str, Any] = dict(device=norm.weight.device, dtype=norm.weight.dtype)

    def timm_init(conv: nn.Conv2d) -> nn.Conv2d:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # timm's ResNet init
        return conv

    def conv_like(old: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
        k, s, d = ((t[0], t[1]) for t in (old.kernel_size, old.stride, old.dilation))  # a Conv2d's are pairs
        padding = old.padding if isinstance(old.padding, str) else (old.padding[0], old.padding[1])
        return timm_init(nn.Conv2d(in_channels, out_channels, k, stride=s, padding=padding,
                                   dilation=d, groups=old.groups, bias=old.bias is not None, **like))

    model.conv1 = conv_like(stem, stem.in_channels, width)
    model.bn1 = nn.BatchNorm2d(width, eps=norm.eps, momentum=norm.momentum, **like)
    block.conv1 = conv_like(block_conv, width, block_conv.out_channels)
    downsample = cast("nn.Sequential | None", block.downsample)  # timm's shortcut projection, if any
    if downsample is None:  # an identity shortcut: the block's output has the old stem's width
        out = stem.out_channels
        block.downsample = nn.Sequential(timm_init(nn.Conv2d(width, out, 1, bias=False, **like)),
                                         nn.BatchNorm2d(out, eps=norm.eps, momentum=norm.momentum, **like))
    else:
        i, proj = next((i, m) for i, m in enumerate(downsample) if isinstance(m, nn.Conv2d))
        if proj.out_channels == width and proj.stride == (1, 1) and len(downsample) == 2:
            block.register_module("downsample", None)  # what `block.downsample = None` does, typed
        else:
            downsample[i] = conv_like(proj, width, proj.out_channels)
    for info in getattr(model, "feature_info", []):
        if info.get("module") == "act1":
            info["num_chs"] = width


def _accepts(cls: type[nn.Module], name: str) -> bool:
    """Whether ``cls(...)`` takes a keyword argument ``name``."""
    try:
        return name in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


class Backbone(nn.Module):
    """Any timm model by name, giving its feature map and its pooled feature vector.

    CNNs (ResNet, EfficientNet, ConvNeXt, ...) give their last feature map directly. Token models
    (the ViT family) give their patch tokens reshaped to the patch grid; those that take
    ``dynamic_img_size`` are built with ``dynamic_img_size=True`` unless told otherwise, so any input
    size divisible by the patch size works; models that take ``strict_img_size`` (Swin) get
    ``strict_img_size=False`` likewise; XCiT takes any such size by itself. A few architectures fix
    their input size whatever the arguments (CaiT, BEiT, CoaT, LeViT, EfficientFormer at 224 px): timm's
    own error says so. Some give tokens with no grid (LeViT, MViTv2, MLP-Mixer): their pooled vector
    works, their `forward_map` is refused. The pooled vector is timm's own ``forward_head(..., pre_logits=True)``: the
    model's pooling and, where it has them, its final norm layers, so pretrained weights are used
    as they were trained. The classifier is removed (``num_classes=0``).

    From random weights (``pretrained=False``), models that take timm's ``zero_init_last``
    (ResNet, RegNet, CSPNet, ...) get ``zero_init_last=False``: every residual branch starts as a
    normal random layer instead of zero. With timm's default the network starts as its shortcuts
    alone (for a ResNet: three stride-2 1x1 convolutions that see one position in four), its
    output depends on the input only through 11 x 11 px windows every 32 px, and short trainings
    leave it so: every gradient saliency map is then the same grid. Pass
    ``zero_init_last=True`` to get timm's initialisation back.

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``"resnet34"``.
        pretrained: ``False`` (random init), ``True`` (timm's weights, downloaded: needs network
            access or timm's / Hugging Face's cache) or the path of a local weights file
            (``.pth`` / ``.safetensors`` state dict of the same timm model, classifier optional).
        **timm_kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``, ``global_pool``).
            For timm's ResNets with the single 7x7 stem, ``stem_width`` sets that stem's channels
            (timm documents it but builds 64 whatever is asked; random weights only).

    Attributes:
        model: the timm model.
        num_features: channels of the feature map.
        pooled_dim: size of the pooled vector (equals ``num_features`` for most models).
        pretrained_cfg: timm's configuration of the weights (``mean``, ``std``, ``input_size``...).
        image_mean, image_std: (1, 3, 1, 1) buffers from ``pretrained_cfg``, used by `normalize`.

    Shape:
        - input: (B, 3, H, W) normalised images
        - output: ``(feature_map (B, C, h, w), pooled (B, pooled_dim))``; for a model whose tokens have no
          grid the first is its (B, N, C) tokens as timm gives them

    Raises:
        ValueError: an unknown name, ``num_classes``, ``features_only``, an empty ``global_pool``, or a
            weights file of another architecture.
        TypeError: a timm argument the model does not take.
        RuntimeError: weights or a ``hf-hub:`` configuration that cannot be fetched (offline), or a weights
            file that cannot be loaded.

    Examples:
        >>> bb = Backbone("resnet18")
        >>> fmap, pooled = bb(torch.randn(1, 3, 64, 64))
        >>> fmap.shape, pooled.shape
        (torch.Size([1, 512, 2, 2]), torch.Size([1, 512]))
    """

    # the timm model: its class depends on `name` (forward_features, forward_head, num_features are timm's
    # contract, not nn.Module's), so it is not narrowed further
    model: Any
    image_mean: Tensor
    image_std: Tensor

    def __init__(self, name: str = "resnet34", pretrained: bool | str | PathLike = False,
                 **timm_kwargs: Any) -> None:
        super().__init__()
        hub = isinstance(name, str) and name.startswith(("hf-hub:", "hf_hub:"))  # timm fetches its config
        if not isinstance(name, str) or not (hub or timm.is_model(name)):
            close = difflib.get_close_matches(name, timm.list_models(), n=3) if isinstance(name, str) else []
            raise ValueError(
                f"Backbone: `name` must be a timm model name (see timm.list_models()), got {name!r}"
                + (f"; did you mean {' or '.join(map(repr, close))}?" if close else "")
            )
        if "num_classes" in timm_kwargs:
            raise ValueError("Backbone: `num_classes` is fixed to 0 (no classifier); do not pass it")
        if timm_kwargs.get("features_only"):  # timm's FeatureListNet has no forward_features / num_features
            raise ValueError(f"Backbone({name!r}): `features_only` is not supported; the Backbone takes the model's "
                             "last feature map itself (forward_map)")
        if "global_pool" in timm_kwargs and timm_kwargs["global_pool"] in ("", None):
            raise ValueError(f"Backbone({name!r}): `global_pool` must name a pooling (e.g. 'avg', 'max', "
                             f"'avgmax'), got {timm_kwargs['global_pool']!r}: the pose head takes a vector")
        use_pretrained, overlay = _resolve_pretrained(name, pretrained)
        kwargs = dict(timm_kwargs)
        # Probe the architecture on the meta device (no memory, no weights) to learn whether it
        # is a token model that needs dynamic_img_size to accept other sizes than 224.
        try:
            with torch.device("meta"):
                probe = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
        except Exception as err:  # noqa: BLE001 - a model that cannot be built on meta: no probe
            if hub and isinstance(err, OSError):  # no network: the build would retry as long again
                raise RuntimeError(f"Backbone({name!r}): timm could not fetch the model's configuration from the "
                                   f"Hugging Face hub ({type(err).__name__}: {err}); without network access use "
                                   "timm's own name (e.g. 'resnet18.a1_in1k'), and pass downloaded weights as "
                                   "pretrained='file'. (HF_HUB_OFFLINE=1 makes timm fail at once instead of "
                                   "retrying.)") from err
            probe = None
        if (probe is not None and _is_token_model(probe) and "dynamic_img_size" not in kwargs
                and _accepts(type(probe), "dynamic_img_size")):  # not CaiT, XCiT, BEiT (XCiT takes any size)
            kwargs["dynamic_img_size"] = True
        if probe is not None and "strict_img_size" not in kwargs and _accepts(type(probe), "strict_img_size"):
            kwargs["strict_img_size"] = False  # Swin: any size divisible by its patch and window grid
        if (probe is not None and not use_pretrained and "zero_init_last" not in kwargs
                and _accepts(type(probe), "zero_init_last")):
            # timm zero-initialises the last BatchNorm of every residual branch (Goyal et al. 2017),
            # so a network trained from random weights starts as its shortcuts alone; for ResNets
            # those are stride-2 1x1 convolutions that read one position in four, and the output
            # depends on the input only through an 11 px window every 32 px. A few hundred steps
            # leave it so (residual BN weights ~0.02) and every saliency map is that grid.
            kwargs["zero_init_last"] = False
        checked = False
        if overlay is not None and probe is not None:  # before timm loads it non-strictly (num_classes=0)
            _check_weights_file(probe, overlay["file"], name)
            checked = True
        del probe
        if overlay is not None:
            kwargs["pretrained_cfg_overlay"] = overlay
        try:
            self.model = timm.create_model(name, pretrained=use_pretrained, num_classes=0, **kwargs)
        except Exception as err:  # noqa: BLE001 - timm raises many kinds when offline
            if not use_pretrained and isinstance(err, TypeError) and timm_kwargs:  # an argument the model lacks
                raise TypeError(f"Backbone({name!r}): timm could not build {name!r} with {timm_kwargs} "
                                f"({err}); pass only arguments of the timm model") from err
            if not use_pretrained:
                raise
            if overlay is not None:
                raise RuntimeError(
                    f"Backbone({name!r}): could not load the weights file {overlay['file']!r} into the "
                    f"timm model {name!r}: {err}"
                ) from err
            raise RuntimeError(
                f"Backbone({name!r}): timm could not fetch the pretrained weights of {name!r} "
                f"({type(err).__name__}: {err}). Without network access, download them elsewhere "
                f"(e.g. timm.create_model({name!r}, pretrained=True) then "
                "torch.save(model.state_dict(), 'weights.pth'), or the model's .safetensors from the "
                "Hugging Face hub) and pass the file: pretrained='/path/to/weights.pth' or "
                "pretrained='/path/to/model.safetensors'. (HF_HUB_OFFLINE=1 makes timm fail at once instead of "
                "retrying without network.)"
            ) from err
        if overlay is not None and not checked:  # a model that could not be built on the meta device
            _check_weights_file(self.model, overlay["file"], name)
        stem_width = kwargs.get("stem_width")
        if stem_width is not None and isinstance(getattr(self.model, "conv1", None), nn.Conv2d) \
                and hasattr(self.model, "layer1"):
            if not isinstance(stem_width, int) or isinstance(stem_width, bool) or stem_width < 1:
                raise ValueError(f"Backbone({name!r}): `stem_width` must be a positive int, got {stem_width!r}")
            if use_pretrained and self.model.conv1.out_channels != stem_width:
                raise ValueError(f"Backbone({name!r}): `stem_width`={stem_width} does not fit the pretrained "
                                 f"weights' {self.model.conv1.out_channels}-channel stem")
            _set_stem_width(self.model, stem_width, name)
        self.name = name
        self.is_token_model = _is_token_model(self.model)
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        self.output_fmt = str(getattr(self.model, "output_fmt", "NCHW"))
        self.num_features = int(self.model.num_features)
        self.pooled_dim = int(getattr(self.model, "head_hidden_size", None) or self.num_features)
        self.pretrained_cfg: dict[str, Any] = dict(self.model.pretrained_cfg)
        # timm's configurations all carry mean / std; its ImageNet constants are the fallback.
        mean = self.pretrained_cfg.get("mean", IMAGENET_DEFAULT_MEAN)
        std = self.pretrained_cfg.get("std", IMAGENET_DEFAULT_STD)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"Backbone({name!r}): pretrained_cfg mean/std must have 3 channels, "
                             f"got {mean} / {std}")
        self.register_buffer("image_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("image_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_features={self.num_features}, pooled_dim={self.pooled_dim}"

    @property
    def can_pool_map(self) -> bool:
        """Whether `pool` can pool a (possibly modified) feature map with the model's own pooling.

        True for CNNs; for token models only when they pool patch tokens (``global_pool`` of
        ``"avg"``, ``"max"`` or ``"avgmax"``), not a class token or an attention pool.
        """
        if not self.is_token_model:
            return True
        return (getattr(self.model, "attn_pool", None) is None
                and getattr(self.model, "global_pool", "") in ("avg", "max", "avgmax")
                and not getattr(self.model, "pool_include_prefix", False))

    def normalize(self, images: Tensor, check_range: bool = True, where: str = "normalize") -> Tensor:
        """Images in [0, 1] (float) or [0, 255] (uint8) to the backbone's normalised input.

        Args:
            images: the batch.
            check_range: refuse float images brighter than 2 (images in [0, 255] passed as float would
                otherwise give a silently wrong pose); off where the library feeds its own floats
                (augmented training batches, SmoothGrad's noisy copies).
            where: the name the errors start with (``"prepare"`` when `prepare` calls it).

        Shape:
            - images: (B, 3, H, W), uint8 or floating point
            - output: (B, 3, H, W), float (float32 for uint8 input, else the input's dtype)
        """
        if not isinstance(images, Tensor):
            raise TypeError(f"{where}: `images` must be a torch tensor (B, 3, H, W), got {type(images).__name__} "
                            "(a numpy array: torch.from_numpy(a).permute(0, 3, 1, 2) for (B, H, W, 3))")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{where}: `images` must be (B, 3, H, W), got {tuple(images.shape)}")
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise TypeError(f"{where}: `images` must be uint8 or float, got {images.dtype}")
        if check_range:
            check_unit_range(images, where)
        images = to_unit_float(images)
        mean = self.image_mean.to(images.dtype)
        std = self.image_std.to(images.dtype)
        return (images - mean) / std

    def prepare(self, images: Tensor, channels_last: bool = False, check_range: bool = True) -> Tensor:
        """A batch as the model's input: `normalize`, then channels_last memory format if asked.

        The one place where images become the network's input (training, prediction, retrieval,
        saliency go through it, see `topoloc.models.contract.prepare`).

        Shape:
            - images: (B, 3, H, W), uint8 [0, 255] or float [0, 1] of any precision
            - output: (B, 3, H, W) in the model's float dtype (float64 from numpy would fail in the first
              convolution; under autocast the convolutions cast it as they would have anyway)
        """
        x = self.normalize(images, check_range=check_range, where="prepare")
        if x.dtype != self.image_mean.dtype:  # the buffer follows the model's .double() / .half()
            x = x.to(self.image_mean.dtype)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        """The (mean, std) per RGB channel that `normalize` uses."""
        return self.image_mean.flatten().tolist(), self.image_std.flatten().tolist()

    def set_normalization(self, mean: list[float], std: list[float]) -> None:
        """Use another per-channel (mean, std), e.g. the one a checkpoint was trained with."""
        if len(mean) != 3 or len(std) != 3 or any(float(s) <= 0 for s in std):
            raise ValueError(f"Backbone({self.name!r}): mean / std must be 3 numbers each (std > 0), "
                             f"got {mean} / {std}")
        if any(not 0.0 <= float(v) <= 1.0 for v in mean) or any(float(s) > 1.0 for s in std):
            raise ValueError(f"Backbone({self.name!r}): mean / std are for images in [0, 1] (what `prepare` works on), "
                             f"got {list(mean)} / {list(std)}; constants for [0, 255] images: divide both by 255")
        with torch.no_grad():
            self.image_mean.copy_(torch.tensor([float(v) for v in mean]).view(1, 3, 1, 1))
            self.image_std.copy_(torch.tensor([float(v) for v in std]).view(1, 3, 1, 1))

    def feature_grid(self, image_size: Sequence[int]) -> tuple[int, int] | None:
        """Patch grid (h, w) of a token model for an input of ``image_size`` (H, W); None where its patch
        embedding says none (MViTv2, whose stages pool the tokens)."""
        patch_embed = self.model.patch_embed
        if hasattr(patch_embed, "dynamic_feat_size"):
            return tuple(patch_embed.dynamic_feat_size(tuple(image_size)))
        if hasattr(patch_embed, "grid_size"):
            return tuple(patch_embed.grid_size)
        patch = getattr(patch_embed, "patch_size", None)  # XCiT's convolutional embedding keeps no grid
        if patch is None:
            return None
        ph, pw = (patch, patch) if isinstance(patch, int) else patch
        return int(image_size[0]) // ph, int(image_size[1]) // pw

    def _to_map(self, features: Tensor, image_size: Sequence[int]) -> Tensor:
        if self.is_token_model:
            tokens = features[:, self.num_prefix_tokens:]
            grid = self.feature_grid(image_size)
            if grid is None or grid[0] * grid[1] != tokens.shape[1]:  # tokens with no grid: left as they are
                return features
            return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)
        if self.output_fmt == "NHWC":
            return features.permute(0, 3, 1, 2)
        return features

    def pool(self, feature_map: Tensor) -> Tensor:
        """The model's pooling (and final norm) applied to a feature map (see `can_pool_map`).

        Shape:
            - feature_map: (B, C, h, w)
            - output: (B, pooled_dim)
        """
        if self.is_token_model:
            tokens = feature_map.flatten(2).transpose(1, 2)
            if self.num_prefix_tokens:
                # The patch-token pools drop the prefix tokens: placeholders keep timm's indexing.
                prefix = tokens.new_zeros(tokens.shape[0], self.num_prefix_tokens, tokens.shape[2])
                tokens = torch.cat([prefix, tokens], dim=1)
            return self.model.forward_head(tokens, pre_logits=True)
        if self.output_fmt == "NHWC":
            feature_map = feature_map.permute(0, 2, 3, 1)
        return self.model.forward_head(feature_map, pre_logits=True)

    def forward_map(self, x: Tensor) -> Tensor:
        """The feature map alone (what `pool` takes).

        Shape:
            - x: (B, 3, H, W) normalised images
            - output: (B, num_features, h, w)

        Raises:
            ValueError: the model's features are tokens with no grid (LeViT, MViTv2, MLP-Mixer).
        """
        feature_map = self._to_map(self.model.forward_features(x), x.shape[-2:])
        if not isinstance(feature_map, Tensor) or feature_map.ndim != 4:  # LeViT, MLP-Mixer: tokens, no grid
            got = tuple(feature_map.shape) if isinstance(feature_map, Tensor) else type(feature_map).__name__
            raise ValueError(f"Backbone({self.name!r}): its features are {got}, not a (B, C, h, w) map: this "
                             "backbone has no spatial feature map (use AtLoc's attention='atloc' or None; "
                             "saliency maps by gradients still work)")
        return feature_map

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.model.forward_features(x)
        pooled = self.model.forward_head(features, pre_logits=True)
        return self._to_map(features, x.shape[-2:]), pooled
