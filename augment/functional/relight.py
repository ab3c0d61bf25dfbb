"""Relighting with the scene's geometry: surface normals from point maps, and a sun on them.

A render of orthophoto-textured terrain (TOPO's Cesium renders, Mini-Comballaz's synthetic
domain) is lit evenly: the relief barely shows. A photo taken in sunshine is not: slopes facing
the sun are bright, slopes facing away get only the sky's light. Where the render comes with its
geometry (TOPO-DataGen's ``_pc.npy`` scene coordinates, a depth map), the slopes are known and the
photo's light can be put on them.

Model (Lambert, sun + uniform sky): the irradiance of a surface with unit normal ``n`` under a sun
in direction ``s`` at elevation ``e`` is ``E = E_sky + E_sun * max(0, n . s)``. The render is taken
as lit like flat ground, ``E_flat = E_sky + E_sun * sin(e)``; with ``a = E_sky / E_flat`` (the
sky's share of the light on flat ground) each pixel is multiplied by::

    E / E_flat = a + (1 - a) * max(0, n . s) / sin(e)

so flat ground keeps its brightness, a slope facing away from the sun keeps ``a`` of it, and a
slope facing the sun gets brighter. Pixels without geometry (normal ``0``: sky, far mountains)
are left as they are. Cast shadows are not modelled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from augment._checks import check_batch, check_values
from augment.functional._utils import per_image, work_dtype

__all__ = ["surface_normals", "sun_direction", "sun_relight", "downsample_normals"]


def surface_normals(points: Tensor, valid: Tensor | None = None, eps: float = 1e-9) -> Tensor:
    """Unit surface normals of a point map, by the cross product of its central differences.

    ``n = normalize(dP/dv x dP/du)`` with ``u`` along the image columns and ``v`` down the rows:
    for an image taken by a camera (x right, y down, any right-handed world frame: OpenCV camera
    axes, ENU, ECEF) the normal points towards the side the camera sees the surface from. A pixel
    gets ``0`` where it or one of its four neighbours is invalid (and on the image border).

    Args:
        points: (B, 3, H, W) float, one 3D point per pixel (any right-handed frame, metres).
        valid: optional (B, H, W) bool, ``False`` where a pixel has no point; default: the
            pixels whose three coordinates are finite.
        eps: cross products shorter than this give ``0`` (degenerate neighbourhoods).

    Returns:
        (B, 3, H, W) unit normals in the frame of ``points``, ``0`` where undefined.

    Example:
        >>> u, v = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="xy")
        >>> plane = torch.stack([u, -v, 2.0 * u])[None]  # z = 2 x seen from above (rows run south)
        >>> surface_normals(plane)[0, :, 1, 1]
        tensor([-0.8944,  0.0000,  0.4472])
    """
    if points.dim() != 4 or points.shape[1] != 3:
        raise ValueError(f"surface_normals: `points` must be (B, 3, H, W), got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise TypeError(f"surface_normals: `points` must be floating point (metres), got {points.dtype}")
    if valid is None:
        valid = torch.isfinite(points).all(dim=1)
    elif valid.shape != (points.shape[0], *points.shape[2:]):
        raise ValueError(f"surface_normals: `valid` must be (B, H, W) = {(points.shape[0], *points.shape[2:])}, "
                         f"got {tuple(valid.shape)}")
    p = torch.where(valid[:, None], points, torch.zeros_like(points))
    du = torch.zeros_like(p)
    dv = torch.zeros_like(p)
    du[..., :, 1:-1] = p[..., :, 2:] - p[..., :, :-2]
    dv[..., 1:-1, :] = p[..., 2:, :] - p[..., :-2, :]
    n = torch.linalg.cross(dv, du, dim=1)
    ok = torch.zeros_like(valid)
    ok[:, 1:-1, 1:-1] = (valid[:, 1:-1, 1:-1] & valid[:, 1:-1, 2:] & valid[:, 1:-1, :-2]
                         & valid[:, 2:, 1:-1] & valid[:, :-2, 1:-1])
    length = torch.linalg.vector_norm(n, dim=1, keepdim=True)
    ok = ok[:, None] & (length > eps)
    return torch.where(ok, n / length.clamp_min(eps), torch.zeros_like(n))


def sun_direction(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """Unit vectors towards the sun in an east-north-up frame.

    Args:
        azimuth: (B,) radians, clockwise from north (north = +y, east = +x).
        elevation: (B,) radians above the horizon.

    Returns:
        (B, 3) ``(sin az cos el, cos az cos el, sin el)``.

    Example:
        >>> import math
        >>> sun_direction(torch.tensor([math.pi / 2]), torch.tensor([0.0])).abs().round(decimals=6)  # due east
        tensor([[1., 0., 0.]])
    """
    return torch.stack([torch.sin(azimuth) * torch.cos(elevation), torch.cos(azimuth) * torch.cos(elevation),
                        torch.sin(elevation)], dim=-1)


def sun_relight(image: Tensor, normals: Tensor, sun: Tensor, sky_share: Tensor) -> Tensor:
    """Light an evenly lit image with a sun and the sky, on its surface normals (see the module).

    Args:
        image: (B, 3, H, W) float in ``[0, 1]``.
        normals: (B, 3, H, W) unit normals in the frame of ``sun``, ``0`` where unknown; the
            frame's third axis must point up (the sun's elevation is measured from it).
        sun: (B, 3) unit vectors towards the sun (lengths within 1 % of 1), with a positive up component.
        sky_share: (B,) the sky's share ``a`` of the light on flat ground, in ``[0, 1]``
            (``1``: overcast, no relief shading).

    Returns:
        (B, 3, H, W) the relit image, clamped to ``[0, 1]``.

    Raises:
        ValueError: naming the first row of ``sun`` that is not a unit vector above the horizon (one device
            synchronisation per call; :class:`augment.RandomSunRelight` skips it for the suns it draws).

    Example:
        >>> img = torch.full((1, 3, 1, 2), 0.4)
        >>> n = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])[None, :, None]  # flat ground
        >>> n[0, :, 0, 1] = torch.tensor([0.0, -0.6, 0.8])  # a slope facing south
        >>> sun = torch.tensor([[0.0, -0.8, 0.6]])  # from the south, elevation asin(0.6)
        >>> sun_relight(img, n, sun, torch.tensor([0.5]))[0, 0, 0]  # flat: 0.4; slope: 0.4 * (0.5 + 0.5 * 0.96 / 0.6)
        tensor([0.4000, 0.5200])
    """
    check_batch(image, normals=normals, sun=sun, sky_share=sky_share, shapes={"normals": (3, "H", "W"), "sun": (3,)})
    if not normals.dtype.is_floating_point:
        raise TypeError(f"normals must be float unit normals, got {normals.dtype} (int8 normals scaled by 127: "
                        "divide them by 127, or use RandomSunRelight, which does)")
    _check_normals(normals)
    _check_sun(sun)
    check_values(sky_share, "sky_share", at_least=0.0, at_most=1.0)  # above 1 turned the relief inside out
    return _sun_relight(image, normals, sun, sky_share)


def _check_normals(normals: Tensor, name: str = "normals") -> None:
    """Refuse normals longer than unit (beyond 10 %; NaN and infinities pass: the image comes out all NaN, as for a
    non-finite image): int8 normals
    scaled by 127 and then cast to float lit every slope white. Shorter ones pass: resized normals are shorter
    where they mix directions, and ``0`` marks the unknown."""
    finite = torch.nan_to_num(normals.detach().float(), nan=0.0, posinf=0.0, neginf=0.0)
    longest = float(torch.linalg.vector_norm(finite, dim=1).max()) if finite.numel() else 0.0
    if longest > 1.1:
        hint = ("; int8 normals scaled by 127 cast to float: divide them by 127, or pass the int8 tensor to "
                "RandomSunRelight" if longest > 10.0 else "")
        raise ValueError(f"{name} must be unit vectors (0 where unknown), got one of length {longest:.4g}{hint}")


def _check_sun(sun: Tensor) -> None:
    """Refuse a row of ``sun`` on or below the horizon (its up component clamped to 1e-3 turned slopes facing it
    white), not of unit length (within 1 %: a unit vector rounded to bfloat16 is one), or NaN."""
    up = sun[:, 2].float()
    length = torch.linalg.vector_norm(sun.float(), dim=1)
    bad = ~(up > 0.0) | ~((length - 1.0).abs() <= 1e-2)  # NaN is bad
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        values = ", ".join(f"{float(v):g}" for v in sun[row])
        size = float(length[row])
        shown = f"({values})" if abs(size - 1.0) <= 1e-2 else f"({values}), of length {size:g}"
        raise ValueError(f"sun must hold unit vectors towards the sun with a positive up component (a sun above the "
                         f"horizon), got sun[{row}] = {shown}")


def _sun_relight(image: Tensor, normals: Tensor, sun: Tensor, sky_share: Tensor) -> Tensor:
    """:func:`sun_relight` without its checks (the caller's suns are unit vectors above the horizon)."""
    # in float32 (float64 for float64 images), rounded to the image's dtype once: computed in bfloat16, pixels came
    # out up to 3.5 units in the last place off (0.009)
    x = image.to(work_dtype(image.dtype))
    n = normals.to(x.dtype)
    s = sun.to(x.dtype)
    sin_el = s[:, 2].clamp_min(1e-3)
    cos_i = (n * s[:, :, None, None]).sum(dim=1, keepdim=True).clamp_min(0.0)
    a = per_image(sky_share, x)
    light = a + (1.0 - a) * cos_i / sin_el[:, None, None, None]
    known = n.abs().sum(dim=1, keepdim=True) > 0
    out = (x * torch.where(known, light, torch.ones_like(light))).clamp(0.0, 1.0)
    corrupt = ~torch.isfinite(n).flatten(1).all(dim=1)  # as for images: all NaN, never a plausible-looking image
    return torch.where(corrupt[:, None, None, None], torch.full_like(out, float("nan")), out).to(image.dtype)


def downsample_normals(normals: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-average unit normals to ``size`` (H, W) and renormalise; ``0`` stays ``0``."""
    n = F.adaptive_avg_pool2d(normals, size)
    length = torch.linalg.vector_norm(n, dim=1, keepdim=True)
    return torch.where(length > 1e-6, n / length.clamp_min(1e-6), torch.zeros_like(n))
