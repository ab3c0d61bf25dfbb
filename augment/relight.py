"""RandomSunRelight: a sun from a random direction on the images' own surface normals."""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from augment._base import poison_non_finite
from augment._checks import check_image, check_param_bounds, check_pixel_range, check_probability, check_range
from augment.functional._utils import work_dtype
from augment.functional.relight import _check_normals, _sun_relight, sun_direction

__all__ = ["RandomSunRelight"]


#: The values each parameter may take at all (the bounds of its range argument): azimuth and elevation in degrees.
_DOMAINS = {"sun_azimuth": (-360.0, 360.0), "sun_elevation": (5.0, 90.0), "sky_share": (0.0, 1.0)}


class RandomSunRelight(nn.Module):
    r"""Relight evenly lit renders with a sun from a random direction, using their geometry.

    Unlike the other ops this one needs more than the image: the surface normal of every pixel in
    a z-up world frame (east, north, up), e.g. from a render's depth map or TOPO-DataGen's
    ``_pc.npy`` scene coordinates (:func:`augment.functional.surface_normals`). The sun's azimuth
    is drawn in that frame, so the light falls on the terrain as one sun would, whatever the
    camera's heading. See :func:`augment.functional.sun_relight` for the light model. It is a plain
    ``nn.Module`` (``aug(image, normals)``), not a kornia augmentation: kornia's containers pass
    only the image.

    Args:
        sun_azimuth: range of the sun azimuth in degrees, clockwise from north, within ``[-360, 360]``.
        sun_elevation: range of the sun elevation in degrees, within ``[5, 90]``.
        sky_share: range of the sky's share of the light on flat ground, within ``[0, 1]``
            (clear days about 0.15-0.3; 1 is overcast).
        same_on_batch: one sun (and one coin) for the whole batch.
        p: probability of relighting each image.

    As the kornia ops do, a call keeps its draws in ``_params`` (``sun_azimuth`` and ``sun_elevation``
    in degrees, ``sky_share``, ``batch_prob``), and ``aug(image, normals, params=...)`` replays them:
    the same sun on a paired image. Replayed parameters are held to the bounds of the arguments, as the kornia
    ops hold theirs.

    Shape:
        - image: :math:`(B, 3, H, W)` or :math:`(3, H, W)`, float in ``[0, 1]``
        - normals: the image's shape, unit vectors (any float or int8 scaled by 127), ``0`` where unknown
        - output: the image's shape

    Example:
        >>> _ = torch.manual_seed(0)
        >>> img = torch.full((2, 3, 4, 4), 0.5)
        >>> flat = torch.zeros(2, 3, 4, 4); flat[:, 2] = 1.0
        >>> torch.allclose(RandomSunRelight(p=1.0)(img, flat), img)  # flat ground keeps its brightness
        True
    """

    def __init__(
        self,
        sun_azimuth: Tuple[float, float] | float = (0.0, 360.0),
        sun_elevation: Tuple[float, float] | float = (20.0, 70.0),
        sky_share: Tuple[float, float] | float = (0.2, 0.6),
        p: float = 0.5,
        same_on_batch: bool = False,
    ) -> None:
        super().__init__()
        self.sun_azimuth = check_range(sun_azimuth, "sun_azimuth", *_DOMAINS["sun_azimuth"])
        self.sun_elevation = check_range(sun_elevation, "sun_elevation", *_DOMAINS["sun_elevation"])
        self.sky_share = check_range(sky_share, "sky_share", *_DOMAINS["sky_share"])
        self.p = check_probability(p, "p")
        if not isinstance(same_on_batch, bool):  # a TypeError, as the kornia ops raise
            raise TypeError(f"same_on_batch must be a bool, got {same_on_batch!r}.")
        self.same_on_batch = same_on_batch
        self._params: Dict[str, Tensor] = {}
        self._range_checked = False  # the first batch's values are checked to lie in [0, 1], as the kornia ops do
        self._normals_checked = False  # and its float normals to be no longer than unit

    def _uniform(self, bounds: Tuple[float, float], n: int, device) -> Tensor:
        lo, hi = bounds
        return lo + (hi - lo) * torch.rand(1 if self.same_on_batch else n, device=device).expand(n)

    def forward_parameters(self, batch: int, device: torch.device | str = "cpu") -> Dict[str, Tensor]:
        """Draw the parameters of a batch: the sun in degrees, the sky's share, and who is relit."""
        return {"sun_azimuth": self._uniform(self.sun_azimuth, batch, device),  # the draws' order is the one
                "sun_elevation": self._uniform(self.sun_elevation, batch, device),  # of every release: seeded
                "sky_share": self._uniform(self.sky_share, batch, device),  # runs relight as before
                "batch_prob": self._uniform((0.0, 1.0), batch, device) < self.p}

    def _check_params(self, params: Dict[str, Tensor], batch: int) -> None:
        """Check replayed ``params``: the four entries, one value per image, each a value the op could draw (as
        the kornia ops check theirs: one reduction and one device synchronisation per entry, on replays only)."""
        for name in ("sun_azimuth", "sun_elevation", "sky_share", "batch_prob"):
            value = params.get(name)
            if not isinstance(value, Tensor):
                raise ValueError(f"RandomSunRelight: params: expected the parameters of a call of this op (its "
                                 f"`_params` after the call), got none named {name!r} among {sorted(params)}")
            if value.dim() != 1:  # a (B, 1) column: "holds 4 values ... for a batch of 4" would not say what is wrong
                raise ValueError(f"RandomSunRelight: params[{name!r}] must have one value per image, shape ({batch},), "
                                 f"got {tuple(value.shape)}.")
            if value.shape != (batch,):
                raise ValueError(f"RandomSunRelight: params[{name!r}] holds {value.numel()} values (one per image of "
                                 f"the call they come from), for a batch of {batch} images; replay the parameters "
                                 "of a call on as many images.")
        for name, (low, high) in _DOMAINS.items():
            value = params[name]
            if value.dtype == torch.bool or value.is_complex():  # integers are read as numbers, as the kornia ops do
                raise TypeError(f"RandomSunRelight: params[{name!r}] must hold a number per image, got a {value.dtype} "
                                "tensor.")
            # elevation 0 or below: a sun on or under the horizon, slopes facing it white
            check_param_bounds("RandomSunRelight", name, value, low, high, "" if name == "sky_share" else " (degrees)")
        coin = params["batch_prob"]
        odd = (coin != 0) & (coin != 1)  # 0.3: the kornia ops read False (> 0.5), .bool() read True
        if coin.dtype != torch.bool and bool(odd.any()):
            raise ValueError(f"RandomSunRelight: params['batch_prob'] must say whether each image is relit: True or "
                             f"False (1 or 0, as the kornia ops draw it), got {float(coin[odd][0]):g}.")

    def forward(self, image: Tensor, normals: Tensor, params: Optional[Dict[str, Tensor]] = None) -> Tensor:
        check_image(image, "RandomSunRelight: image")
        if not self._range_checked:
            check_pixel_range(image, "RandomSunRelight: image")
            self._range_checked = image.numel() > 0  # an empty batch says nothing of the next
        if image.dim() == 3 and isinstance(normals, Tensor) and normals.dim() == 3:  # one image, as kornia's ops take
            return self.forward(image[None], normals[None], params)[0]
        if not isinstance(normals, Tensor):
            raise TypeError(f"RandomSunRelight: `normals` must be a tensor (B, 3, H, W), got {type(normals).__name__}")
        if normals.dtype != torch.int8 and not normals.dtype.is_floating_point:
            raise TypeError(f"RandomSunRelight: `normals` must be float unit normals or int8 ones scaled by 127 (as "
                            f"`downsample_normals` and `flight_normals` give them), got {normals.dtype}")
        if image.dim() != 4 or normals.shape != image.shape:
            raise ValueError(f"RandomSunRelight: `image` (B, 3, H, W) and `normals` of the same shape expected, got "
                             f"{tuple(image.shape)} and {tuple(normals.shape)}")
        if normals.dtype == torch.int8:
            normals = normals.to(work_dtype(image.dtype)) / 127.0  # float32 for half-precision images, as the light
        elif not self._normals_checked:  # float normals: the first batch's lengths, as the images' range
            _check_normals(normals, "RandomSunRelight: normals")
            self._normals_checked = True
        b, dev = image.shape[0], image.device
        if params is None:
            params = self.forward_parameters(b, dev)
        else:
            self._check_params(params, b)
        self._params = params
        az = params["sun_azimuth"].to(dev) * (math.pi / 180.0)
        el = params["sun_elevation"].to(dev) * (math.pi / 180.0)
        on = params["batch_prob"].to(dev).bool()
        # elevations drawn (or replayed and checked) in [5, 90] deg: unit suns above the horizon, no check per batch
        out = _sun_relight(image, normals, sun_direction(az, el), params["sky_share"].to(dev))  # in float32 or 64
        kept = poison_non_finite(image, torch.where(on[:, None, None, None], out, image))  # as every op does
        return poison_non_finite(normals, kept)  # corrupt normals too, applied or not

    def extra_repr(self) -> str:
        return (f"sun_azimuth={self.sun_azimuth}, sun_elevation={self.sun_elevation}, sky_share={self.sky_share}, "
                f"p={self.p}, same_on_batch={self.same_on_batch}")
