"""AtLoc (Wang et al., AAAI 2020) built from composable parts, with any timm backbone."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any, cast

import torch.nn.functional as F
from torch import Tensor, nn

from topoloc.models._checkpoint import atloc_to_topoloc_state_dict, load_atloc_checkpoint
from topoloc.models.attention import AtLocAttention, SpatialAttention
from topoloc.models.backbone import Backbone
from topoloc.models.contract import CONTRACT_KEYS
from topoloc.models.heads import ROTATION_FORMATS, PoseHead
from topoloc.models.input_filter import LocalContrastNorm
from topoloc.models.loss import AtLocLoss

__all__ = ["AtLoc", "ATTENTION_TYPES"]

#: Values of ``AtLoc(attention=...)``.
ATTENTION_TYPES = ("atloc", "spatial", None)


class AtLoc(nn.Module):
    """Absolute pose regressor: [local contrast] -> backbone -> [spatial attention] -> pool -> Linear -> ReLU ->
    [AtLoc attention] -> dropout -> translation (3) + rotation (3 or 4).

    With the defaults this is the network of the AtLoc paper: ResNet34, its 512-d pooled vector
    projected to 2048 (the original's replaced ``fc``), ReLU, the non-local block on the vector
    (`AtLocAttention`), dropout 0.5 and the ``fc_xyz`` / ``fc_wpqr`` heads, except for the rotation
    code: the 6D code by default, AtLoc's log-quaternion with ``rotation="log_quat"``. Unlike the
    original, dropout is off in ``eval()``.

    Args:
        backbone: timm model name (see `Backbone`).
        attention: ``"atloc"`` (AtLoc's block on the vector), ``"spatial"`` (`SpatialAttention`
            over the feature map, before pooling; its weights give
            `topoloc.saliency.attention_saliency`) or ``None`` (PoseNet-style baseline).
        feat_dim: size of the projected feature vector (2048 in AtLoc).
        dropout: dropout probability before the pose layers (0.5 in AtLoc).
        pretrained: backbone weights: ``False``, ``True`` (timm's) or a local file path.
        rotation: ``"6d"`` (the continuous 6D code of Zhou et al., CVPR 2019; default),
            ``"quat"`` (unit quaternion w, x, y, z) or ``"log_quat"`` (3 numbers, AtLoc's; used
            for original checkpoints). The log-quaternion jumps where w changes sign, which
            aerial views sit on; see `topoloc.data.PoseNormalizer`.
        attention_reduction: channel reduction inside the attention block (8 in AtLoc).
        backbone_kwargs: extra arguments for ``timm.create_model`` (e.g. ``drop_path_rate``).
        local_contrast: ``None`` (off; AtLoc's), or the Gaussian's sigma in pixels of a
            `LocalContrastNorm` applied to the normalised input before the backbone: each pixel
            relative to its neighbourhood, so that slowly varying light, haze and colour casts are
            divided out (it lowered the real-photo rotation error of the demo's augmented run by
            about 40 %; docs/RESULTS.md). In pixels at the model's input size.

    Attributes:
        num_features / feat_dim: size of the embedding given by `forward_features`.
        out_dim: 9 for ``"6d"``, 7 for ``"quat"``, 6 for ``"log_quat"``.
        config: the constructor arguments, to write next to checkpoints (`from_config`), and the
            input contract (`topoloc.models.contract`): ``image_size`` (H, W) once trained (None
            before), ``mean`` and ``std`` of the normalisation.

    Shape:
        - input: (B, 3, H, W), normalised with `normalize` (the backbone's mean / std)
        - output: (B, 9): translation (x, y, z) then the 6D rotation code; (B, 7) with ``"quat"``,
          (B, 6) with ``"log_quat"``.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> model = AtLoc("resnet18", feat_dim=64).eval()
        >>> images = model.normalize(torch.rand(2, 3, 64, 64))
        >>> model(images).shape
        torch.Size([2, 9])
    """

    def __init__(
        self,
        backbone: str = "resnet34",
        attention: str | None = "atloc",
        feat_dim: int = 2048,
        dropout: float = 0.5,
        pretrained: bool | str | PathLike = False,
        rotation: str = "6d",
        attention_reduction: int = 8,
        backbone_kwargs: dict[str, Any] | None = None,
        local_contrast: float | None = None,
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"AtLoc: `attention` must be one of {ATTENTION_TYPES}, got {attention!r}")
        if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 1:
            raise ValueError(f"AtLoc: `feat_dim` must be a positive int, got {feat_dim!r}")
        if not isinstance(rotation, str) or rotation not in ROTATION_FORMATS:
            raise ValueError(f"AtLoc: `rotation` must be one of {sorted(ROTATION_FORMATS)}, got {rotation!r}")
        if backbone_kwargs is not None and not isinstance(backbone_kwargs, dict):
            raise TypeError(f"AtLoc: `backbone_kwargs` must be a dict or None, got {type(backbone_kwargs).__name__}")
        if local_contrast is not None and (isinstance(local_contrast, bool)
                                           or not isinstance(local_contrast, (int, float)) or not local_contrast > 0):
            raise ValueError(f"AtLoc: `local_contrast` must be None or a positive sigma in pixels, "
                             f"got {local_contrast!r}")
        self.config: dict[str, Any] = {
            "backbone": backbone, "attention": attention, "feat_dim": feat_dim, "dropout": dropout,
            "rotation": rotation, "attention_reduction": attention_reduction,
            "backbone_kwargs": dict(backbone_kwargs or {}),
        }
        if local_contrast is not None:  # only when on: configs of earlier models stay as they were
            self.config["local_contrast"] = float(local_contrast)
        self.input_filter: nn.Module = (LocalContrastNorm(float(local_contrast)) if local_contrast is not None
                                        else nn.Identity())
        self.backbone = Backbone(backbone, pretrained=pretrained, **(backbone_kwargs or {}))
        # The input contract (see `topoloc.models.contract`): the normalisation, and the size once trained.
        mean, std = self.backbone.normalization
        self.config.update(image_size=None, mean=mean, std=std)
        if attention == "spatial":
            if not self.backbone.can_pool_map:
                raise ValueError(
                    f"AtLoc: attention='spatial' needs a backbone that pools its patch tokens; "
                    f"{backbone!r} pools a class token or uses an attention pool: pass "
                    "backbone_kwargs={'global_pool': 'avg'}"
                )
            self.spatial_attention: SpatialAttention | None = SpatialAttention(
                self.backbone.num_features, reduction=attention_reduction)
        else:
            self.spatial_attention = None
        # The original's torchvision `fc` (512 -> 2048) replaced inside the feature extractor.
        self.projection = nn.Linear(self.backbone.pooled_dim, feat_dim)
        self.attention: nn.Module = (AtLocAttention(feat_dim, reduction=attention_reduction)
                                     if attention == "atloc" else nn.Identity())
        self.head = PoseHead(feat_dim, dropout=dropout, rotation=rotation)
        self.attention_type = attention
        self.feat_dim = feat_dim
        self.num_features = feat_dim
        self.out_dim = self.head.out_dim

    # ----------------------------------------------------------------- normalisation
    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's configuration of the backbone's weights (``mean``, ``std``, ``input_size``...)."""
        return self.backbone.pretrained_cfg

    @property
    def image_mean(self) -> Tensor:
        """(1, 3, 1, 1) channel mean of the backbone's normalisation (on the model's device)."""
        return self.backbone.image_mean

    @property
    def image_std(self) -> Tensor:
        """(1, 3, 1, 1) channel std of the backbone's normalisation (on the model's device)."""
        return self.backbone.image_std

    def normalize(self, images: Tensor, check_range: bool = True) -> Tensor:
        """uint8 [0, 255] or float [0, 1] images to the model's input (see `Backbone.normalize`)."""
        return self.backbone.normalize(images, check_range=check_range)

    def prepare(self, images: Tensor, channels_last: bool = False, check_range: bool = True) -> Tensor:
        """uint8 [0, 255] or float [0, 1] images to the model's input, in the memory format asked
        for (see `Backbone.prepare`)."""
        return self.backbone.prepare(images, channels_last=channels_last, check_range=check_range)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The (H, W) in pixels the model was trained at (``config["image_size"]``), None before training."""
        size = self.config.get("image_size")
        return None if size is None else (int(size[0]), int(size[1]))

    def set_input_contract(self, image_size: Any = None, mean: Any = None, std: Any = None) -> None:
        """Record the training input size (H, W) and / or set the normalisation (mean, std per RGB
        channel), in ``config`` and, for the normalisation, in the backbone's buffers."""
        if image_size is not None:
            from topoloc.image_size import parse_image_size  # noqa: PLC0415 - leaf module, on use only

            h, w = parse_image_size(image_size, name="AtLoc: `image_size`", short_side=False)
            self.config["image_size"] = [h, w]
        if mean is not None or std is not None:
            cur_mean, cur_std = self.backbone.normalization
            self.backbone.set_normalization(cur_mean if mean is None else mean, cur_std if std is None else std)
            self.config["mean"], self.config["std"] = self.backbone.normalization

    # ----------------------------------------------------------------- forward
    def _check_input(self, images: Tensor) -> None:
        """Refuse what the first convolution would refuse in its own words (shape and dtype only: no sync)."""
        how = "model.prepare(images) makes the input from uint8 [0, 255] or float [0, 1] images"
        if not isinstance(images, Tensor):
            raise TypeError(f"AtLoc: `images` must be a (B, 3, H, W) tensor, got {type(images).__name__}; {how}")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"AtLoc: `images` must be (B, 3, H, W), normalised, got {tuple(images.shape)}; {how}")
        dtype = self.backbone.image_mean.dtype  # follows .double() / .half()
        if not images.is_floating_point():
            raise TypeError(f"AtLoc: `images` are {str(images.dtype).removeprefix('torch.')}, not normalised; {how}")
        if images.dtype != dtype:
            raise TypeError(f"AtLoc: `images` are {str(images.dtype).removeprefix('torch.')} and the model "
                            f"{str(dtype).removeprefix('torch.')}; {how} in the model's dtype")

    def _embed(self, images: Tensor, return_attention: bool = False
               ) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        self._check_input(images)
        weights = None
        images = self.input_filter(images)
        if self.spatial_attention is None:
            feature_map, pooled = self.backbone(images)
        else:
            feature_map = self.backbone.forward_map(images)
            if return_attention:
                feature_map, weights = self.spatial_attention(feature_map, return_attention=True)
            else:
                feature_map = self.spatial_attention(feature_map)
            pooled = self.backbone.pool(feature_map)
        grid = (int(feature_map.shape[-2]), int(feature_map.shape[-1]))
        x = F.relu(self.projection(pooled))
        return self.attention(x), weights, grid

    def forward_features(self, images: Tensor) -> Tensor:
        """The embedding in front of the pose head (after the attention, before dropout).

        Shape:
            - images: (B, 3, H, W) normalised
            - output: (B, feat_dim)
        """
        return self._embed(images)[0]

    def forward_head(self, features: Tensor) -> Tensor:
        """Dropout and the pose layers on embeddings from `forward_features`.

        Shape:
            - features: (B, feat_dim)
            - output: (B, out_dim)
        """
        return self.head(features)

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(images))

    def forward_with_attention(self, images: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Poses and the spatial attention weights (``attention="spatial"`` only).

        Returns:
            ``(poses (B, out_dim), weights (B, h*w, h*w), (h, w))``; row ``i`` of ``weights``
            is how query position ``i`` distributes its attention over all positions (sums to 1).
        """
        if self.spatial_attention is None:
            raise ValueError(
                f"forward_with_attention: the model has attention={self.attention_type!r}; only "
                "attention='spatial' has weights over image positions"
            )
        x, weights, grid = self._embed(images, return_attention=True)
        return self.forward_head(x), cast(Tensor, weights), grid  # a spatial attention asked for: its weights

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> "AtLoc":
        """Rebuild a model from its `config` (e.g. read back from a checkpoint's YAML)."""
        if not isinstance(config, dict):
            raise TypeError(f"AtLoc.from_config: `config` must be a dict, got {type(config).__name__}")
        merged = {**config, **overrides}
        contract = {k: merged.pop(k) for k in CONTRACT_KEYS if k in merged}
        model = cls(**merged)
        model.set_input_contract(contract.get("image_size"), contract.get("mean"), contract.get("std"))
        if contract.get("frame") is not None:
            model.config["frame"] = contract["frame"]
        return model

    @classmethod
    def from_atloc_checkpoint(
        cls,
        path: str | PathLike,
        backbone: str = "resnet34",
        return_loss: bool = False,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> "AtLoc | tuple[AtLoc, AtLocLoss]":
        """Load a checkpoint written by the original AtLoc code.

        The checkpoint is a ``torch.save`` dict with ``model_state_dict`` (torchvision ResNet
        ``feature_extractor.*`` with its ``fc`` 512 -> feat_dim, ``att.g|theta|phi|W.*``,
        ``fc_xyz.*``, ``fc_wpqr.*``; ``module.`` prefixes from ``nn.DataParallel`` are removed)
        and ``criterion_state_dict`` (``sax``, ``saq``). ``feat_dim``, the attention and the
        rotation size are read from the weights. In ``eval()`` the model gives the original's
        outputs for the same normalised input, except that dropout is off (the original keeps it on
        at test time). The original normalised its images with its dataset's ``stats.txt`` (the
        per-channel mean and variance of images in [0, 1]): pass ``mean`` and ``std`` (the square root
        of that variance) so that ``model.prepare`` does the same; without them it normalises with
        timm's ImageNet constants.

        Args:
            path: the checkpoint file.
            backbone: the timm name of the original's torchvision ResNet (``"resnet34"`` in the
                paper; ``"resnet18"`` / ``"resnet50"``... for other runs).
            return_loss: also return an `AtLocLoss` holding the checkpoint's learned ``sax`` and
                ``saq`` (a ``ValueError`` if the checkpoint has no ``criterion_state_dict``).
            mean, std: the original's input normalisation, 3 numbers each, for images in [0, 1].
            **kwargs: other `AtLoc` arguments (``dropout``, ``backbone_kwargs``); those read from the
                weights (``feat_dim``, ``attention``, ``rotation``, ``attention_reduction``) and ``pretrained``
                and ``local_contrast`` (which the original lacks) are refused.

        Returns:
            The model (in training mode, as any new module: call ``.eval()`` for inference), or
            ``(model, loss)`` with ``return_loss=True``.
        """
        fixed = sorted(set(kwargs) & {"feat_dim", "attention", "rotation", "attention_reduction", "pretrained",
                                      "local_contrast"})
        if fixed:
            raise ValueError(f"AtLoc.from_atloc_checkpoint: {fixed} cannot be given: the checkpoint's weights fix "
                             "feat_dim, attention, rotation and attention_reduction, and the original model has no "
                             "pretrained weights to load or local contrast")
        checkpoint = load_atloc_checkpoint(path)
        state = atloc_to_topoloc_state_dict(checkpoint["model_state_dict"], source=f"checkpoint {str(path)!r}")
        for key in ("projection.weight", "head.fc_wpqr.weight"):
            if key not in state:
                raise ValueError(f"AtLoc checkpoint {str(path)!r}: missing "
                                 f"{'feature_extractor.fc' if key.startswith('proj') else 'fc_wpqr'}.weight")
        feat_dim = int(state["projection.weight"].shape[0])
        rotation = {3: "log_quat", 4: "quat"}.get(int(state["head.fc_wpqr.weight"].shape[0]))
        if rotation is None:
            raise ValueError(f"AtLoc checkpoint {str(path)!r}: fc_wpqr must output 3 or 4 numbers, "
                             f"got {tuple(state['head.fc_wpqr.weight'].shape)}")
        attention = "atloc" if "attention.g.weight" in state else None
        reduction = (feat_dim // int(state["attention.g.weight"].shape[0])) if attention else 8
        params = {"feat_dim": feat_dim, "attention": attention, "rotation": rotation,
                  "attention_reduction": reduction, **kwargs}
        model = cls(backbone=backbone, pretrained=False, **params)
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # size mismatches, e.g. another ResNet depth
            raise ValueError(f"AtLoc checkpoint {str(path)!r} does not fit AtLoc(backbone={backbone!r}) "
                             f"(pass the original's ResNet as `backbone`): {err}") from err
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"AtLoc checkpoint {str(path)!r} does not match AtLoc(backbone={backbone!r}): "
                f"missing {result.missing_keys[:6]}{'...' if len(result.missing_keys) > 6 else ''}, "
                f"unexpected {result.unexpected_keys[:6]}{'...' if len(result.unexpected_keys) > 6 else ''}"
            )
        if mean is not None or std is not None:
            model.set_input_contract(mean=mean, std=std)
        if not return_loss:
            return model
        criterion = checkpoint.get("criterion_state_dict")
        if criterion is None:
            raise ValueError(f"AtLoc checkpoint {str(path)!r} has no 'criterion_state_dict' (sax, saq)")
        loss = AtLocLoss(float(criterion["sax"].reshape(-1)[0]), float(criterion["saq"].reshape(-1)[0]))
        return model, loss
