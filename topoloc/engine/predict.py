"""Batched pose prediction from an `ImageCache` (or any dataset of sample dicts)."""

from __future__ import annotations

from typing import Any, Literal, overload

import torch
from torch import Tensor, nn

from topoloc._modes import eval_mode
from topoloc._device import module_device, resolve_device
from topoloc._flags import check_flag
from topoloc.data.cache import as_cache
from topoloc.data.normalize import PoseNormalizer
from topoloc.models.contract import check_model, prepare, resolve_input_size, unwrap_model

__all__ = ["predict"]


# without return_codes the poses alone: the overloads tell the type checker which of the two comes back
@overload
def predict(model: nn.Module, data: Any, normalizer: PoseNormalizer, batch_size: int = ...,
            device: str | torch.device | None = ..., image_size: tuple[int, int] | None = ..., amp: bool = ...,
            channels_last: bool = ..., return_codes: Literal[False] = ...) -> Tensor: ...
@overload
def predict(model: nn.Module, data: Any, normalizer: PoseNormalizer, batch_size: int = ...,
            device: str | torch.device | None = ..., image_size: tuple[int, int] | None = ..., amp: bool = ...,
            channels_last: bool = ..., *, return_codes: Literal[True]) -> tuple[Tensor, Tensor]: ...
@overload
def predict(model: nn.Module, data: Any, normalizer: PoseNormalizer, batch_size: int = ...,
            device: str | torch.device | None = ..., image_size: tuple[int, int] | None = ..., amp: bool = ...,
            channels_last: bool = ..., return_codes: bool = ...) -> Tensor | tuple[Tensor, Tensor]: ...
@torch.no_grad()
def predict(
    model: nn.Module,
    data: Any,
    normalizer: PoseNormalizer,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    image_size: tuple[int, int] | None = None,
    amp: bool = True,
    channels_last: bool = True,
    return_codes: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Camera-to-world poses predicted by ``model`` for every image of ``data``, in order.

    The images go through ``model.prepare`` (`topoloc.models.contract.prepare`: the backbone's
    mean / std) in front of the model; the (B, 3 + k) pose codes are decoded with
    ``normalizer.decode``. The model is put in ``eval()`` for the call and back to its previous
    mode after.

    Args:
        model: an `AtLoc` (anything with ``prepare`` or ``normalize`` and a pose-code output; a DDP
            or compiled wrapper is unwrapped for them).
        data: an `ImageCache` or a dataset of sample dicts (decoded once, see `topoloc.data.cache.as_cache`).
        normalizer: the `PoseNormalizer` the model was trained with.
        batch_size: images per forward pass.
        device: where to run; ``None``: the model's device; ``"auto"``: CUDA when available
            (the model must already be there).
        image_size: (H, W) in pixels to run at; ``None``: the training size the model records
            (``model.config["image_size"]``, see `topoloc.models.contract`); for a model that
            records none, the size of an `ImageCache`, and for a dataset a ``ValueError``
            naming ``image_size``.
        amp: bf16 autocast on CUDA.
        channels_last: channels_last inputs (cuDNN's preferred layout; on the CPU oneDNN runs the
            demo's ResNet18 1.26x faster on them: benchmarks/bench_predict.py; the poses agree to float
            rounding).
        return_codes: also return the raw (N, 3 + k) outputs (normalised translation, rotation code).

    Returns:
        float64 (N, 4, 4) camera-to-world poses (the training poses' frame, metres) on the CPU,
        and the (N, 3 + k) float32 codes with ``return_codes``.

    Raises:
        ValueError: ``batch_size`` is not a positive int, or ``data`` holds no image.
        TypeError: ``model`` is not a module, or ``normalizer`` has no ``decode``.

    Shape:
        data: N images -> (N, 4, 4), and (N, 3 + k) with ``return_codes``
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"predict: `batch_size` must be a positive int, got {batch_size!r}")
    for name, flag in (("amp", amp), ("channels_last", channels_last), ("return_codes", return_codes)):
        check_flag(flag, f"predict: {name}")
    if not callable(getattr(normalizer, "decode", None)):
        raise TypeError(f"predict: `normalizer` must be the PoseNormalizer the model was trained with (load_model "
                        f"returns it beside the model), got {type(normalizer).__name__}")
    raw = unwrap_model(check_model(model, "predict"))
    device = module_device(raw) if device is None else resolve_device(device)
    image_size = resolve_input_size(raw, image_size, data, where="predict")
    cache = as_cache(data, image_size, name="predict: data")
    if len(cache) == 0:  # torch.cat of no batches said "expected a non-empty list of Tensors"
        raise ValueError("predict: `data` holds no image")
    cuda = device.type == "cuda"
    codes = []
    with eval_mode(model):  # each layer's mode back after: a frozen batch-norm stays frozen
        for start in range(0, len(cache), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(cache)))
            images, _ = cache.batch(idx, device)
            x = prepare(raw, images, channels_last=channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda and amp):
                out = model(x)
            codes.append(out.float())
    codes_n6 = torch.cat(codes)
    c2w = normalizer.decode(codes_n6).to("cpu", torch.float64)
    return (c2w, codes_n6.cpu()) if return_codes else c2w
