"""Named model configurations: ``create_model("atloc_resnet34")`` and ``list_models()``.

Each entry is a small function returning an `AtLoc`; its arguments are merged with the caller's
keyword arguments (the caller's win; ``backbone_kwargs`` dicts are merged key by key), as in
timm's registry. The ResNet entries name timm's ``tv_in1k`` weights, torchvision's ImageNet
weights that AtLoc started from, so ``pretrained=True`` gives the paper's initialisation.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable

from topoloc.models.atloc import AtLoc

__all__ = ["create_model", "list_models", "register_model"]

_MODELS: dict[str, Callable[..., AtLoc]] = {}


def register_model(fn: Callable[..., AtLoc]) -> Callable[..., AtLoc]:
    """Decorator adding a model function to the registry under its own name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"register_model: a model named {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def _build(model_args: dict[str, Any], **kwargs: Any) -> AtLoc:
    args = {**model_args, **kwargs}
    if "backbone_kwargs" in model_args and "backbone_kwargs" in kwargs:
        args["backbone_kwargs"] = {**model_args["backbone_kwargs"], **(kwargs["backbone_kwargs"] or {})}
    return AtLoc(**args)


def create_model(name: str, **kwargs: Any) -> AtLoc:
    """Build a registered model by name.

    Args:
        name: one of `list_models()`, e.g. ``"atloc_resnet34"`` (the AtLoc paper).
        **kwargs: `AtLoc` arguments overriding the entry's (``pretrained``, ``dropout``,
            ``feat_dim``, ``rotation``, ``backbone_kwargs``...).

    Examples:
        >>> model = create_model("atloc_resnet18", feat_dim=64)
        >>> model.config["backbone"], model.config["attention"]
        ('resnet18.tv_in1k', 'atloc')
    """
    if name not in _MODELS:
        raise ValueError(f"create_model: unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by a glob ``pattern``."""
    names = sorted(_MODELS)
    return fnmatch.filter(names, pattern) if pattern else names


@register_model
def atloc_resnet34(**kwargs: Any) -> AtLoc:
    """AtLoc as in the paper: ResNet34, 2048-d features, vector attention, dropout 0.5."""
    return _build(dict(backbone="resnet34.tv_in1k", attention="atloc", feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def atloc_resnet18(**kwargs: Any) -> AtLoc:
    """AtLoc with a ResNet18 backbone (lighter)."""
    return _build(dict(backbone="resnet18.tv_in1k", attention="atloc", feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def atloc_resnet50(**kwargs: Any) -> AtLoc:
    """AtLoc with a ResNet50 backbone (2048-d pooled features)."""
    return _build(dict(backbone="resnet50.tv_in1k", attention="atloc", feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def posenet_resnet34(**kwargs: Any) -> AtLoc:
    """PoseNet-style baseline: AtLoc's network without the attention block."""
    return _build(dict(backbone="resnet34.tv_in1k", attention=None, feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def atloc_spatial_resnet34(**kwargs: Any) -> AtLoc:
    """ResNet34 with self-attention over the feature map positions (readable attention maps)."""
    return _build(dict(backbone="resnet34.tv_in1k", attention="spatial", feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def atloc_efficientnet_b0(**kwargs: Any) -> AtLoc:
    """AtLoc with an EfficientNet-B0 backbone (1280-d pooled features)."""
    return _build(dict(backbone="efficientnet_b0", attention="atloc", feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def atloc_convnext_tiny(**kwargs: Any) -> AtLoc:
    """AtLoc with a ConvNeXt-Tiny backbone (768-d pooled features)."""
    return _build(dict(backbone="convnext_tiny", attention="atloc", feat_dim=2048, dropout=0.5), **kwargs)


@register_model
def atloc_vit_small(**kwargs: Any) -> AtLoc:
    """AtLoc with a ViT-S/16 backbone (class-token pooling, any input size divisible by 16)."""
    return _build(dict(backbone="vit_small_patch16_224", attention="atloc", feat_dim=2048, dropout=0.5),
                  **kwargs)


@register_model
def atloc_spatial_vit_small(**kwargs: Any) -> AtLoc:
    """ViT-S/16 with spatial attention over the patch grid (average pooling of patch tokens)."""
    return _build(dict(backbone="vit_small_patch16_224", attention="spatial", feat_dim=2048, dropout=0.5,
                       backbone_kwargs={"global_pool": "avg", "fc_norm": False}), **kwargs)
