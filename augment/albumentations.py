"""albumentations adapters: every augment op as an ``ImageOnlyTransform`` (albumentations 2.0.x).

Each adapter builds the matching kornia augmentation (which validates the arguments, naming
the one at fault) and runs it on the CPU. Randomness comes from the transform's own generator,
which ``Compose(seed=...)`` seeds: a torch seed is drawn from it per call and used inside
``torch.random.fork_rng``, so the global torch RNG is left alone and a seeded pipeline gives the
same output on every run, from any thread. As with albumentations' own transforms, one call draws
once: ``image``, every image of ``images`` and every slice of ``volume`` get the same parameters.
albumentations 2.0.8's ``Compose(seed=...)`` seeds every transform's generator alike, so two adapters in one
pipeline draw the same torch seed on each call: their ``p`` coin flips agree whenever their ``p`` do (as
albumentations' own transforms' do), and two copies of one adapter draw the same parameters. To mix several ops
independently, use one `SimToReal` adapter (its ops draw apart) rather than several adapters. In a torch
``DataLoader`` with workers, a seeded pipeline draws the same in every worker (albumentations' own transforms do
too, and torch's per-worker seeds do not reach the transforms' generators): give each worker its own seed with
``worker_init_fn=lambda _: pipeline.set_random_seed(torch.initial_seed() % 2**32)``.

Images are HWC RGB numpy arrays, ``uint8`` (0..255) or ``float32`` (0..1), or RGBA ones whose alpha
is passed through; the output has the input's dtype. float32 values within [-1, 2] (the overshoot of a cubic or
Lanczos ``A.Resize`` beside sharp edges) are clamped to [0, 1]; beyond it (images in [0, 255], after ``A.Normalize``)
they are refused, and so are images with more than a third of their values more than 0.25 outside [0, 1] (most
photos normalised into [-1, 1]; a resize's overshoot puts under 0.1 % of a photo's values there). This module
needs albumentations; ``import augment`` does not.

Example:
    >>> import albumentations as A
    >>> import numpy as np
    >>> from augment.albumentations import RandomClouds
    >>> pipeline = A.Compose([RandomClouds(p=1.0)], seed=0)
    >>> pipeline(image=np.zeros((32, 32, 3), np.uint8))["image"].shape
    (32, 32, 3)
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Sequence
import warnings

import numpy as np
import torch

try:
    from albumentations.core.transforms_interface import ImageOnlyTransform  # type: ignore[import-untyped, import-not-found]
except ImportError as err:  # pragma: no cover - exercised only without albumentations
    raise ImportError(
        "augment.albumentations needs albumentations (pip install 'albumentations>=2.0.8,<2.1'); "
        "the kornia augmentations in `augment` work without it."
    ) from err

import augment
from augment._checks import OVERSHOOT, OVERSHOOT_SHARE, PIXEL_SLACK, check_probability, overshoot_share

__all__ = [
    "FourierDomainAdaptation",
    "RandomCameraEffects",
    "RandomClouds",
    "RandomEdgeAbstraction",
    "RandomHaze",
    "RandomIllumination",
    "RandomSeasonShift",
    "RandomSnowCover",
    "SimToReal",
]

Range = Sequence[float] | float

# torch's CPU generator is one per process: seeding it inside fork_rng from two threads at once mixes
# their draws (and restores the wrong state), so the seeded runs take turns.
_TORCH_RNG = threading.Lock()


def _check_numpy_image(img: Any, name: str = "image") -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (H, W, 3), got {type(img).__name__}.")
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        grey = img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 1)
        raise ValueError(f"{name} must have shape (H, W, 3) (RGB) or (H, W, 4) (RGBA, its alpha kept), channels "
                         f"last, got {img.shape}." + (" For a greyscale image put A.ToRGB() before it: the ops read "
                                                      "colour (vegetation, sky, snow)." if grey else ""))
    if img.dtype not in (np.uint8, np.float32):
        raise TypeError(f"{name} must be uint8 (0..255) or float32 (0..1), got {img.dtype}.")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{name} must be at least 1 x 1 pixels, got shape {img.shape}.")


def _check_unit_range(images: np.ndarray, name: str) -> None:
    """float32 images must lie in [0, 1] (albumentations' convention), give or take a resize's overshoot: values
    within [-1, 2] are clamped to [0, 1] (by `_to_tensor`), others (NaN too) refused, not clamped to white, and so
    are images with more than `OVERSHOOT_SHARE` of their values more than `OVERSHOOT` outside [0, 1] (normalised
    ones: a resize's overshoot is a few pixels beside edges)."""
    if images.dtype == np.float32 and images.size:
        low, high = float(images.min()), float(images.max())
        found = f"got values in [{low:g}, {high:g}]"
        if -PIXEL_SLACK <= low and high <= 1.0 + PIXEL_SLACK:  # False for NaN (its min and max are NaN)
            share = overshoot_share(images)
            if share <= OVERSHOOT_SHARE:
                return
            found += f", {100 * share:.1f} % of them more than {OVERSHOOT:g} outside [0, 1]"
        raise ValueError(f"{name}: float32 images must be in [0, 1] (values within [-1, 2], a cubic or Lanczos "
                         f"resize's overshoot, are clamped to it), {found}; divide images in [0, 255] by 255 (or "
                         "pass uint8), and augment before A.Normalize.")


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 or float32 -> (N, 3, H, W) float32 in [0, 1]."""
    # a float32 copy made by numpy: writable (torch warns on a read-only array, such as np.asarray(PIL image))
    x = torch.from_numpy(np.array(images, dtype=np.float32, order="C")).permute(0, 3, 1, 2)
    return x / 255.0 if images.dtype == np.uint8 else x.clamp(0.0, 1.0)


def _to_numpy(x: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    out = x.permute(0, 2, 3, 1).contiguous()
    if dtype == np.uint8:
        return (out * 255.0).round_().to(torch.uint8).numpy()
    return out.numpy().astype(np.float32, copy=False)


def _plain(value: Any) -> Any:
    """A numpy or torch number or array (or a pair of them) as Python numbers, which ``A.save`` writes."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value.tolist() if isinstance(value, (np.ndarray, np.generic, torch.Tensor)) else value


def _short(value: Any) -> str:
    """``repr(value)``, or ``<ndarray (N, H, W, 3) uint8>`` for an array, tensor or list of arrays."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"<{type(value).__name__} {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}>"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        return f"<{len(value)} arrays {tuple(value[0].shape)} {value[0].dtype}>"
    return repr(value)


def _bank_tensor(bank: Any) -> torch.Tensor:
    """An adapter's ``bank`` argument (numpy images, a list of them, or a tensor) as ``(N, 3, H, W)`` floats."""
    if isinstance(bank, (list, tuple)):
        if not bank:
            raise ValueError("bank must hold at least one image, got an empty list.")
        for i, item in enumerate(bank):
            _check_numpy_image(item, f"bank[{i}]")
            if (item.shape, item.dtype) != (bank[0].shape, bank[0].dtype):
                raise ValueError(f"bank images must share one shape and dtype: bank[0] is {bank[0].shape} "
                                 f"{bank[0].dtype}, bank[{i}] is {item.shape} {item.dtype}.")
        bank = np.stack(bank)
    if isinstance(bank, np.ndarray):
        if bank.ndim != 4 or not len(bank):
            raise ValueError(f"bank must have shape (N, H, W, 3) with N >= 1, got {bank.shape}.")
        _check_numpy_image(bank[0], "bank[0]")
        if bank.shape[-1] != 3:  # an RGBA bank: the kornia op would name its (N, 4, H, W) copy
            raise ValueError(f"bank must hold RGB images (N, H, W, 3), got {bank.shape}; drop the alpha channel "
                             "with bank[..., :3].")
        _check_unit_range(bank, "bank")
        return _to_tensor(bank)
    if isinstance(bank, torch.Tensor):
        return bank  # checked by the kornia op
    raise TypeError(f"bank must be a numpy array, a list of arrays or a torch tensor, got {type(bank).__name__}.")


def _with_albumentations_args(init: Callable[..., None], name: str) -> Callable[..., None]:
    """An adapter's ``__init__`` that also takes the two arguments every albumentations 2.0 transform takes:
    ``strict`` (an unknown argument is refused here whatever it says: a TypeError naming it) and ``always_apply``
    (gone in albumentations 2.0, whose own transforms warn and ignore it; so do the adapters, naming ``p=1.0``),
    so that code and ``A.from_dict`` configs written for albumentations 1.x build."""

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, strict: bool = False, always_apply: Any = None, **kwargs: Any) -> None:
        if always_apply is not None:
            warnings.warn(f"{name}: `always_apply` is not an argument in albumentations 2.0 and is ignored; pass "
                          "p=1.0 to apply the transform to every image", UserWarning, stacklevel=2)
        init(self, *args, **kwargs)

    return wrapped


class _KorniaAdapter(ImageOnlyTransform):
    """Run a kornia augmentation (built with ``p=1``) as an albumentations image-only transform."""

    _op: torch.nn.Module  # set by each subclass's `_build`

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _with_albumentations_args(cls.__dict__["__init__"], cls.__name__)  # type: ignore[method-assign]

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=check_probability(p, "p"))

    def _build(self, op: torch.nn.Module, **args: Any) -> None:
        for name, value in args.items():
            setattr(self, name, _plain(value))  # the arguments to_dict and A.save write
        self._op = op.eval()

    def get_params(self) -> dict[str, Any]:
        return {"torch_seed": int(self.random_generator.integers(0, 2**31 - 1))}

    def __repr__(self) -> str:
        """albumentations' repr, with an image bank summarised by its shape instead of printed whole."""
        args = {**self.get_base_init_args(), **self.get_transform_init_args()}
        return f"{type(self).__name__}({', '.join(f'{k}={_short(v)}' for k, v in args.items())})"

    def _run(self, images: np.ndarray, torch_seed: int) -> np.ndarray:
        """(N, H, W, 3 or 4) images augmented from ``torch_seed``; an alpha channel is passed through."""
        colours = images[..., :3]
        with _TORCH_RNG, torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(torch_seed)
            out = _to_numpy(self._op(_to_tensor(colours)), images.dtype)
        return np.concatenate([out, images[..., 3:]], axis=-1) if images.shape[-1] == 4 else out

    def apply(self, img: np.ndarray, torch_seed: int = 0, **params: Any) -> np.ndarray:
        _check_numpy_image(img)
        _check_unit_range(img, "image")
        return self._run(img[None], torch_seed)[0]

    def apply_to_images(self, images: np.ndarray, torch_seed: int = 0, **params: Any) -> np.ndarray:
        if not isinstance(images, np.ndarray) or images.ndim != 4:
            raise ValueError("images must be a numpy array (N, H, W, 3) or (N, H, W, 4).")
        if len(images) == 0:  # nothing to augment
            if images.shape[-1] not in (3, 4):
                raise ValueError(f"images must be a numpy array (N, H, W, 3) or (N, H, W, 4), got shape "
                                 f"{images.shape}.")
            return images.copy()
        _check_numpy_image(images[0], "images[0]")
        _check_unit_range(images, "images")
        # one draw for the call: each image from the same torch seed, so each gets the parameters `image` gets
        return np.concatenate([self._run(images[i : i + 1], torch_seed) for i in range(len(images))])


class RandomClouds(_KorniaAdapter):
    """Fractal clouds with shadows: see :class:`augment.RandomClouds` for the arguments."""

    def __init__(
        self,
        opacity: Range = (0.5, 0.9),
        coverage: Range = (0.15, 0.6),
        softness: Range = (0.2, 0.8),
        brightness: Range = (0.8, 1.0),
        scale: Range = (2.0, 5.0),
        shadow_strength: Range = (0.2, 0.6),
        shadow_shift: Range = (0.02, 0.1),
        octaves: int = 5,
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(
            opacity=opacity, coverage=coverage, softness=softness, brightness=brightness, scale=scale,
            shadow_strength=shadow_strength, shadow_shift=shadow_shift, octaves=octaves
        )
        self._build(augment.RandomClouds(**args, p=1.0), **args)


class RandomSnowCover(_KorniaAdapter):
    """Snow on vegetation and flat ground: see :class:`augment.RandomSnowCover` for the arguments."""

    def __init__(
        self, amount: Range = (0.3, 0.9), softness: Range = (0.05, 0.3), brightness: Range = (0.85, 1.0), p: float = 0.5
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(amount=amount, softness=softness, brightness=brightness)
        self._build(augment.RandomSnowCover(**args, p=1.0), **args)


class RandomSeasonShift(_KorniaAdapter):
    """Autumn and winter palettes: see :class:`augment.RandomSeasonShift` for the arguments."""

    def __init__(
        self, autumn: Range = (0.0, 1.0), winter: Range = (0.0, 0.6), tint: Range = (0.0, 1.0), p: float = 0.5
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(autumn=autumn, winter=winter, tint=tint)
        self._build(augment.RandomSeasonShift(**args, p=1.0), **args)


class RandomHaze(_KorniaAdapter):
    """Aerial perspective: see :class:`augment.RandomHaze` for the arguments."""

    def __init__(
        self,
        density: Range = (0.05, 0.4),
        horizon: Range = (-1.0, 0.3),
        airlight: Range = (0.7, 0.95),
        blue: Range = (0.0, 0.1),
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(density=density, horizon=horizon, airlight=airlight, blue=blue)
        self._build(augment.RandomHaze(**args, p=1.0), **args)


class RandomIllumination(_KorniaAdapter):
    """Sun shading, exposure and gamma: see :class:`augment.RandomIllumination` for the arguments."""

    def __init__(
        self,
        sun_azimuth: Range = (0.0, 360.0),
        sun_elevation: Range = (25.0, 70.0),
        relief: Range = (0.0, 8.0),
        gamma: Range = (0.75, 1.35),
        exposure: Range = (-0.6, 0.6),
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(
            sun_azimuth=sun_azimuth, sun_elevation=sun_elevation, relief=relief, gamma=gamma, exposure=exposure
        )
        self._build(augment.RandomIllumination(**args, p=1.0), **args)


class RandomCameraEffects(_KorniaAdapter):
    """White balance, vignetting, noise and blur: see :class:`augment.RandomCameraEffects` for the arguments."""

    def __init__(
        self,
        temperature: Range = (-0.12, 0.12),
        tint: Range = (-0.04, 0.04),
        vignetting: Range = (0.0, 0.4),
        noise_std: Range = (0.0, 0.03),
        blur_sigma: Range = (0.0, 1.2),
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(
            temperature=temperature, tint=tint, vignetting=vignetting, noise_std=noise_std, blur_sigma=blur_sigma
        )
        self._build(augment.RandomCameraEffects(**args, p=1.0), **args)


class RandomEdgeAbstraction(_KorniaAdapter):
    """Flat colours and dark edges: see :class:`augment.RandomEdgeAbstraction` for the arguments."""

    def __init__(
        self,
        levels: Range = (3.0, 8.0),
        smoothing: Range = (0.5, 2.0),
        edge_strength: Range = (0.5, 1.0),
        edge_threshold: Range = (0.02, 0.08),
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(
            levels=levels, smoothing=smoothing, edge_strength=edge_strength, edge_threshold=edge_threshold
        )
        self._build(augment.RandomEdgeAbstraction(**args, p=1.0), **args)


class FourierDomainAdaptation(_KorniaAdapter):
    """Fourier domain adaptation against real images: see :class:`augment.FourierDomainAdaptation`.

    Args:
        bank: real images, a numpy array ``(N, H, W, 3)`` (uint8 or float32) or a list of ``(H, W, 3)``
            arrays of one size, or a torch tensor ``(N, 3, H, W)`` in ``[0, 1]``.
        beta: range of the low-frequency window as a fraction of the shorter side.
        p: probability of applying the transform.

    The bank is part of the transform: ``to_dict`` / ``from_dict``, pickling and ``ReplayCompose`` carry it,
    but ``A.save`` cannot write it to JSON or YAML (albumentations raises while writing and leaves a
    partial file); pickle a pipeline that holds a bank instead.
    """

    def __init__(self, bank: Any, beta: Range = (0.01, 0.05), p: float = 0.5) -> None:
        super().__init__(p=p)
        args: dict[str, Any] = dict(beta=beta)
        self._build(augment.FourierDomainAdaptation(_bank_tensor(bank), **args, p=1.0), **args)
        self.bank = bank


class SimToReal(_KorniaAdapter):
    """Every sim-to-real op under one strength knob: see :class:`augment.SimToReal`.

    Args:
        strength: magnitude of every op, in ``[0, 1]``.
        op_p: base probability of each op inside the composition.
        bank: optional real images for Fourier domain adaptation (as for :class:`FourierDomainAdaptation`;
            with a bank, pickle the pipeline: ``A.save`` cannot write the images to JSON or YAML).
        p: probability of applying the composition at all.
    """

    def __init__(self, strength: float = 0.5, op_p: float = 0.5, bank: Any = None, p: float = 1.0) -> None:
        super().__init__(p=p)
        check_probability(op_p, "op_p")  # augment.SimToReal calls it `p`
        bank_t = _bank_tensor(bank) if bank is not None else None
        self._build(augment.SimToReal(strength=strength, p=op_p, bank=bank_t), strength=strength, op_p=op_p)
        self.bank = bank
