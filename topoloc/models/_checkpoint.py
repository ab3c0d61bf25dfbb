"""Reading checkpoints of the original AtLoc code (Wang et al. 2020) into topoloc's layout."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["load_atloc_checkpoint", "atloc_to_topoloc_state_dict"]

# Original prefix -> topoloc prefix. torchvision's ResNet and timm's ResNet share their module
# names (conv1, bn1, layer1-4 with conv1/bn1/conv2/bn2[/conv3/bn3] and downsample.0 / .1), so
# the backbone keys carry over unchanged; torchvision's replaced `fc` (512 -> feat_dim) is
# topoloc's `projection`.
_PREFIX_MAP = (
    ("feature_extractor.fc.", "projection."),
    ("feature_extractor.", "backbone.model."),
    ("att.", "attention."),
    ("fc_xyz.", "head.fc_xyz."),
    ("fc_wpqr.", "head.fc_wpqr."),
)


def load_atloc_checkpoint(path: str | PathLike) -> dict[str, Any]:
    """Read an original AtLoc checkpoint, validate it and strip ``module.`` prefixes.

    Args:
        path: file written by ``torch.save`` in the original code: a dict with
            ``model_state_dict`` and (optionally) ``criterion_state_dict`` (``sax``, ``saq``).

    Returns:
        The dict, with ``model_state_dict`` / ``criterion_state_dict`` cleaned of the
        ``module.`` prefix that ``nn.DataParallel`` adds.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"AtLoc checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt file, pickle with objects, ...
        raise ValueError(
            f"AtLoc checkpoint {str(path)!r} could not be read as a torch.save file of tensors: {err}"
        ) from err
    if not isinstance(checkpoint, dict) or "model_state_dict" not in checkpoint:
        keys = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(
            f"AtLoc checkpoint {str(path)!r}: expected a dict with 'model_state_dict' (and "
            f"'criterion_state_dict'), as written by the original AtLoc code; got {keys}"
        )
    out = dict(checkpoint)
    for key in ("model_state_dict", "criterion_state_dict"):
        if key in out:
            out[key] = {_strip_module(k): v for k, v in out[key].items()}
    criterion = out.get("criterion_state_dict")
    if criterion is not None and not {"sax", "saq"} <= set(criterion):
        raise ValueError(
            f"AtLoc checkpoint {str(path)!r}: 'criterion_state_dict' must hold 'sax' and 'saq', "
            f"got {sorted(criterion)}"
        )
    return out


def _strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def atloc_to_topoloc_state_dict(state_dict: dict[str, Tensor], source: str = "checkpoint") -> dict[str, Tensor]:
    """Rename the keys of an original AtLoc ``model_state_dict`` to `topoloc.AtLoc`'s keys.

    Raises:
        ValueError: a key outside the original layout (named with ``source``).
    """
    out = {}
    for key, value in state_dict.items():
        key = _strip_module(key)
        for old, new in _PREFIX_MAP:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            raise ValueError(
                f"AtLoc {source}: unexpected key {key!r} in model_state_dict (expected keys under "
                "feature_extractor., att., fc_xyz., fc_wpqr.)"
            )
    return out
