"""The training data a run holds: uint8 image caches at the training size, relight normals, steps per epoch.

`topoloc.engine.train.Trainer` decodes the training (and validation) images once with `training_caches`,
reads the surface normals `TrainConfig.relight` needs with `relight_normals`, and splits each epoch into
`steps_per_epoch` batches per process. The per-step gather, augmentation and normalisation stay with the
trainer (`Trainer._inputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from topoloc._modes import eval_mode
from topoloc.data.cache import ImageCache, as_cache, check_dataset
from topoloc.data.geometry import flight_normals
from topoloc.engine.config import TrainConfig

__all__ = ["training_caches", "caches_device", "relight_normals", "steps_per_epoch", "check_model_runs",
           "check_last_batch", "blank_forward"]


def training_caches(config: TrainConfig, train_set: Any, val_set: Any, device: torch.device, out_dir: Path,
                    is_main: bool) -> tuple[ImageCache, ImageCache | None]:
    """Decode the training (and validation) images once into uint8 caches at ``config.image_size``.

    Args:
        config: the run's `TrainConfig` (``cache_device``, ``cache_file``, ``num_workers``, ``progress``).
        train_set: a dataset of sample dicts, or an `ImageCache` (then used as it is, resized if need be).
        val_set: the same kind, or None.
        device: the training device (where the caches live: `caches_device`).
        out_dir: the run folder (a relative ``cache_file`` is under it).
        is_main: this is the main process: only it shows progress and writes the cache file.

    Returns:
        ``(train_cache, val_cache)``; ``val_cache`` is None without ``val_set`` or with ``config.val_every`` 0.
    """
    cache_device = caches_device(config.cache_device, device)
    cache_file = None
    if config.cache_file is not None:
        cache_file = Path(config.cache_file)
        cache_file = cache_file if cache_file.is_absolute() else out_dir / cache_file
    check_dataset(train_set, "train_set")
    if len(train_set) == 0:
        raise ValueError(f"train_set: the dataset {type(train_set).__name__} is empty: nothing to train on "
                         "(did its flights or its split select no image?)")
    if isinstance(train_set, ImageCache):
        train_cache = as_cache(train_set, config.image_size)
    else:
        train_cache = ImageCache.from_dataset(
            train_set, config.image_size, device=cache_device, num_workers=config.num_workers,
            progress=config.progress and is_main, path=cache_file if is_main else None)
    val_cache = None
    if val_set is not None and config.val_every:  # val_every=0: never validated, so not decoded
        try:
            val_cache = as_cache(val_set, config.image_size, device=cache_device, num_workers=config.num_workers,
                                 progress=config.progress and is_main, name="val_set")
        except ValueError as err:  # e.g. "the dataset ... is empty": say which one
            raise ValueError(f"validation set: {err}") from err
    return train_cache, val_cache


def caches_device(cache_device: str, device: torch.device) -> str | torch.device:
    """Where a run's image caches live, by `TrainConfig.cache_device` and the training ``device``: host memory for a
    run on the CPU whatever the setting (``"auto"`` had put a CPU run's caches in GPU memory where CUDA is present,
    and copied each batch back); on a GPU, ``"cuda"`` is the training device itself and ``"auto"`` its memory when
    the cache fits (`topoloc.data.ImageCache`)."""
    if device.type != "cuda":
        return "cpu"
    return device if cache_device == "cuda" else cache_device


def relight_normals(config: TrainConfig, train_set: Any, normals: Tensor | None, train_cache: ImageCache,
                    device: torch.device) -> Tensor:
    """The training images' normals for `TrainConfig.relight`: ``normals`` as given, or read from the
    renders' geometry files (`topoloc.data.flight_normals`), on ``train_cache``'s device.

    Shape:
        The result: int8 (N, 3, H, W), unit normals x 127 (local ENU) at ``config.image_size``,
        N = ``len(train_cache)``.

    Raises:
        TypeError: no ``normals`` with an `ImageCache` (it has no geometry files to read).
        ValueError: ``normals`` of another dtype or shape.
    """
    n = normals
    if n is None:
        if isinstance(train_set, ImageCache):
            raise TypeError("TrainConfig.relight needs the training renders' surface normals: pass `normals` "
                            "(topoloc.data.flight_normals) with an ImageCache, or the TopoFlight itself")
        n = flight_normals(train_set, config.image_size, device=device)
    want = (len(train_cache), 3, *config.image_size)
    if tuple(n.shape) != want or n.dtype != torch.int8:
        raise ValueError(f"train: `normals` must be int8 {want} (unit normals x 127 at the training size), "
                         f"got {n.dtype} {tuple(n.shape)}")
    return n.to(train_cache.device)


def steps_per_epoch(n_images: int, world_size: int, local_batch: int, drop_last: bool) -> int:
    """Steps per epoch: each of ``world_size`` processes' shard of ``n_images`` in batches of ``local_batch``.

    Raises:
        ValueError: ``drop_last`` leaves no full batch.
    """
    shard = -(-n_images // world_size)
    steps = shard // local_batch if drop_last else -(-shard // local_batch)
    if steps == 0:
        raise ValueError(f"TrainConfig: {n_images} training images give no full batch of {local_batch} "
                         "per process with drop_last=True")
    return steps


def blank_forward(model: nn.Module, image_size: tuple[int, int], device: torch.device) -> None:
    """One forward pass of a blank image of ``image_size`` in eval mode, for what hooks see of the model's layers:
    no batch-norm statistics move and no random number is drawn; the model's mode is restored after."""
    with torch.no_grad(), eval_mode(model):
        model(torch.zeros(1, 3, *image_size, device=device))


def check_model_runs(model: nn.Module, config_name: str, model_kwargs: dict, image_size: tuple[int, int],
                     device: torch.device) -> None:
    """Refuse a model that cannot run one (blank) image of ``image_size``, before the run writes anything: a
    backbone built with arguments its forward pass does not fit (a timm ResNet with two ``channels`` for its four
    stages) failed at the first step, with torch's traceback, and left the run's files behind.

    Raises:
        ValueError: naming ``model_kwargs`` and the error of the forward pass.
    """
    try:
        blank_forward(model, image_size, device)
    except torch.cuda.OutOfMemoryError:
        raise
    except (AssertionError, AttributeError, IndexError, KeyError, RuntimeError, TypeError, ValueError) as err:
        h, w = image_size  # AssertionError: timm's fixed-size models (CaiT) at another size
        raise ValueError(f"TrainConfig.model_kwargs: the model {config_name!r} built with {model_kwargs} cannot run "
                         f"on a ({h}, {w}) image ({type(err).__name__}: {err}); check its arguments (e.g. "
                         "backbone_kwargs against the timm model's)") from err


def check_last_batch(model: nn.Module, n_images: int, world_size: int, local_batch: int, drop_last: bool,
                     image_size: tuple[int, int], device: torch.device) -> None:
    """Refuse a run whose epochs end in a batch of one image (or whose every batch is one image, ``local_batch``
    1) when a batch-norm layer of ``model`` then sees one value per channel: torch stops that step with "Expected
    more than 1 value per channel when training", after the epoch's other steps. That happens at small sizes,
    where the backbone's last feature map is 1 x 1 (at most 32 px a side for a ResNet); a larger map trains on its
    pixels, and ``drop_last`` has no last batch of one.

    The layers' inputs are read from one `blank_forward` pass.

    Raises:
        ValueError: naming ``batch_size``, ``drop_last`` and ``image_size``, with the layer and its input.
    """
    shard = -(-n_images // world_size)
    every_batch = local_batch == 1  # then every batch is one image, with drop_last too
    if not every_batch and (drop_last or shard % local_batch != 1):
        return
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = [module.register_forward_hook(lambda mod, args, out, name=name: seen.append((name, tuple(args[0].shape))))
             for name, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    try:
        blank_forward(model, image_size, device)
    finally:
        for hook in hooks:
            hook.remove()
    flat = next(((name, shape) for name, shape in seen if int(torch.tensor(shape[2:]).prod()) == 1), None)
    if flat is None:
        return
    name, shape = flat
    h, w = image_size
    head = f"{n_images} training images" + (f" over {world_size} processes" if world_size > 1 else "")
    if every_batch:
        head = "batches of one image" + (f" per process ({world_size} processes)" if world_size > 1 else "")
        fix = "a batch_size of at least 2 per process, or a larger image_size"
    else:
        head += f" in batches of {local_batch} end each epoch in a batch of one image"
        fix = "drop_last=True, another batch_size, or a larger image_size"
    raise ValueError(f"TrainConfig: {head}, and at image_size ({h}, {w}) the batch norm {name!r} sees "
                     f"{tuple(shape[1:])} (one value per channel): it cannot train on one image (torch: 'Expected "
                     f"more than 1 value per channel when training'). Set {fix}")
