"""Per-pixel geometry of rendered flights: scene points and surface normals in the local ENU frame.

TOPO-DataGen writes each render's scene coordinates (``<stem>_pc.npy``, (H, W, 3) ECEF metres,
``-1`` where nothing is hit); Mini-Comballaz writes a depth map on request (``topoloc render
--depth``: ``<stem>_depth.npy``, (H, W) float32 metres along the optical axis, ``inf`` where nothing
is hit). Either gives the surface normals that `augment.RandomSunRelight` lights, and the world
point under each cell of a feature map that `TrainConfig.scene_coords` trains an auxiliary head on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from augment.functional.relight import downsample_normals, surface_normals
from topoloc.data._arrays import load_npy

__all__ = ["TOPO_SIZE", "TOPO_FOCAL_PX", "geometry_path", "depth_to_points", "scene_points", "flight_normals",
           "flight_parts", "pool_scene_points", "flight_scene_points", "refuse_other_lens"]

#: TOPO-DataGen's camera: 720 x 480 px, focal length 480 px, principal point at the centre.
TOPO_SIZE = (720, 480)
TOPO_FOCAL_PX = 480.0

_SUFFIX = "_img.png"


def geometry_path(render: Path) -> Path:
    """The geometry file beside a render ``<stem>_img.png``: its ``_pc.npy`` if present, else ``_depth.npy``.

    Raises:
        FileNotFoundError: neither exists (the message names both and how to get them).
    """
    render = Path(render)
    stem = render.name[: -len(_SUFFIX)] if render.name.lower().endswith(_SUFFIX) else render.stem
    pc, depth = render.with_name(stem + "_pc.npy"), render.with_name(stem + "_depth.npy")
    if pc.is_file():
        return pc
    if depth.is_file():
        return depth
    raise FileNotFoundError(f"{render}: no geometry beside this render: expected {pc.name} (TOPO-DataGen scene "
                            f"coordinates) or {depth.name} (Mini-Comballaz: render with 'topoloc render --depth')")


def depth_to_points(depth: np.ndarray, c2w: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """World points of a depth map taken with TOPO's pinhole camera (f = 480 px at 720 px wide, centred).

    Args:
        depth: (H, W) metres along the optical axis; non-finite or <= 0 where nothing is hit.
        c2w: (4, 4) camera-to-world pose, OpenCV camera axes (x right, y down, z forward).
        device: where to compute (float64 on the CPU, float32 on a GPU: the points are then
            good to about 0.1 mm at 1 km from the frame's origin).

    Returns:
        (3, H, W) float32 points in the world frame of ``c2w``, on ``device``; NaN where nothing is hit.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth_to_points: `depth` must be (H, W), got {depth.shape}")
    device = torch.device(device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    h, w = depth.shape
    f = TOPO_FOCAL_PX * w / TOPO_SIZE[0]
    d = torch.as_tensor(depth).to(device=device, dtype=dtype)
    u = (torch.arange(w, device=device, dtype=dtype) + 0.5 - w / 2.0) / f
    v = (torch.arange(h, device=device, dtype=dtype) + 0.5 - h / 2.0) / f
    z = torch.where(torch.isfinite(d) & (d > 0), d, torch.full_like(d, float("nan")))
    cam = torch.stack([u[None, :] * z, v[:, None] * z, z])  # (3, H, W)
    pose = torch.as_tensor(np.asarray(c2w, dtype=np.float64)).to(device=device, dtype=dtype)
    world = torch.einsum("ij,jhw->ihw", pose[:3, :3], cam) + pose[:3, 3, None, None]
    return world.to(torch.float32)


def scene_points(path: Path, c2w: np.ndarray, frame: Any, device: str | torch.device = "cpu") -> torch.Tensor:
    """World (local ENU) points of one render from its geometry file (see `geometry_path`).

    Args:
        path: a ``_pc.npy`` ((H, W, 3) ECEF m, ``-1`` = none) or ``_depth.npy`` ((H, W) m) file.
        c2w: (4, 4) the render's camera-to-ENU pose (used for a depth map).
        frame: the `LocalFrame` of ``c2w`` (used for scene coordinates).
        device: where the points are returned (and a depth map's are computed).

    Returns:
        (3, H, W) float32 ENU metres, NaN where nothing is hit.
    """
    arr = load_npy(path, "geometry array", "a .npy depth map or scene-coordinate array")
    if path.name.endswith("_depth.npy"):
        if arr.ndim != 2 or arr.dtype.kind not in "iuf":
            raise ValueError(f"{path}: a depth map must be a numeric (H, W) array of metres, got shape {arr.shape} "
                             f"dtype {arr.dtype}")
        behind = int((np.isfinite(arr) & (arr <= 0)).sum())
        if behind:
            raise ValueError(f"{path}: {behind} of {arr.size} depths are 0 or negative; a depth map holds metres "
                             "along the optical axis in front of the camera (> 0), inf where nothing is hit (as "
                             "'topoloc render --depth' writes it)")
        return depth_to_points(arr, c2w, device)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype.kind not in "iuf":
        raise ValueError(f"{path}: scene coordinates must be (H, W, 3) ECEF metres, got {arr.shape} dtype {arr.dtype}")
    flat = arr.reshape(-1, 3).astype(np.float64)
    none = np.all(flat == -1.0, axis=1) | ~np.isfinite(flat).all(axis=1)
    enu = np.full_like(flat, np.nan)
    if (~none).any():
        enu[~none] = frame.ecef_to_enu(flat[~none])
    return torch.from_numpy(enu.reshape(arr.shape).transpose(2, 0, 1).astype(np.float32)).to(device)


def _check_aspect(geometry: Path, hw: tuple[int, int], render: Path) -> None:
    """Refuses a geometry file whose (H, W) is not its render's shape, or a scaling of it (TOPO's scene
    coordinates may be stored at a fraction of the image's resolution): its points or normals would not line up."""
    try:
        with Image.open(render) as im:
            width, height = im.size  # the header only
    except OSError:
        return  # an unreadable render is named where it is decoded
    h, w = hw
    if abs(w / h - width / height) > 0.01 * width / height:  # aspect ratios 1 % apart
        raise ValueError(f"{geometry}: is {w}x{h} (W x H), not {width}x{height} or a scaling of it like its render "
                         f"{render.name}; its points or normals would not line up with the image")


def flight_normals(dataset: Any, size: tuple[int, int], device: str | torch.device = "cpu") -> torch.Tensor:
    """Surface normals of every render of a `TopoFlight` (or of each flight of a `FlightCollection`,
    in its order), at ``size``, in its local ENU frame.

    Args:
        dataset: a `TopoFlight` of synthetic renders (its ``render_paths``, ``poses()``, ``frame``), or
            a `FlightCollection` of them (what `topoloc train` builds from a recipe's ``train`` flights).
        size: (H, W) of the training images the normals go with.
        device: where the normals are computed (the trainer passes its own: on one CPU core they
            cost tens of ms per 384x256 render); the result is on the CPU either way.

    Returns:
        int8 (N, 3, H, W): unit normals x 127 (east, north, up), ``0`` where unknown (sky, far
        mountains, image borders); in the dataset's order.

    Raises:
        TypeError: ``dataset`` has no renders to read geometry beside.
        FileNotFoundError: a render has no geometry file (the message names it).
        ValueError: a ``real_alt`` flight (its lens does not fit the renders' geometry).
    """
    def normals(points: torch.Tensor) -> torch.Tensor:
        n = downsample_normals(surface_normals(points[None]), (size[0], size[1]))[0]
        return (n * 127.0).round().to(torch.int8)

    return _each_render(dataset, "flight_normals", size, torch.int8, normals, device)


def _each_render(dataset: Any, caller: str, size: tuple[int, int], dtype: torch.dtype,
                 per_render: Callable[[torch.Tensor], torch.Tensor], device: str | torch.device) -> torch.Tensor:
    """``per_render`` of each render's (3, H, W) `scene_points`, stacked on the CPU as (N, 3, *size) ``dtype``,
    for a `TopoFlight` or each flight of a `FlightCollection` in its order; ``caller`` names the refusals."""
    parts = []
    for flight in flight_parts(dataset):
        paths = getattr(flight, "render_paths", None)
        if paths is None or not hasattr(flight, "poses"):
            raise TypeError(f"{caller}: expected a TopoFlight (renders with geometry files beside them), got "
                            f"{type(flight).__name__}")
        refuse_other_lens(flight, caller)
        c2w = flight.poses()
        out = torch.zeros(len(paths), 3, *size, dtype=dtype)
        for i, render in enumerate(paths):
            geometry = geometry_path(render)
            points = scene_points(geometry, c2w[i], flight.frame, device)
            _check_aspect(geometry, (points.shape[-2], points.shape[-1]), render)
            out[i] = per_render(points).cpu()
        parts.append(out)
    return torch.cat(parts) if parts else torch.zeros(0, 3, *size, dtype=dtype)


def refuse_other_lens(flight: Any, caller: str) -> None:
    """Refuse a ``real_alt`` flight: its photos are taken through another lens (barrel distortion, about 3 %
    zoom), so the renders' pinhole geometry files do not fit their pixels (0.7-9 m off at the median, up to
    about 5 px at 720x480 in the corners)."""
    if getattr(flight, "domain", None) == "real_alt":
        raise ValueError(f"{caller}: {getattr(flight, 'flight', 'the flight')} (real_alt): its photos are taken "
                         "through another lens, which the renders' geometry files (depth, world points) do not "
                         "fit; take the geometry of its synthetic or real domain")


def flight_parts(dataset: Any) -> Iterator[Any]:
    """The flights of a dataset: a `TopoFlight` itself, or each flight of a `FlightCollection` (recursively), in
    its order; anything else is yielded as it is (for the caller to refuse)."""
    flights = getattr(dataset, "datasets", None)
    if flights is not None and getattr(dataset, "render_paths", None) is None:  # a FlightCollection
        for flight in flights:
            yield from flight_parts(flight)
    else:
        yield dataset


def pool_scene_points(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The mean world point of each cell of a ``size`` grid laid over each image's points.

    The cells are those of `torch.nn.functional.adaptive_avg_pool2d` (equal blocks when ``size``
    divides the points' (H, W)); NaN pixels (nothing hit) are left out of the mean, and a cell where
    fewer than half the pixels hit something is NaN: its mean would be a point of a sliver.

    Args:
        points: (N, 3, H, W) float world points (NaN where nothing is hit).
        size: (h, w) of the grid.

    Returns:
        (N, 3, h, w) float32 on ``points``' device.

    Example:
        >>> pts = torch.arange(16.0).reshape(1, 1, 4, 4).expand(1, 3, 4, 4).clone()
        >>> pts[0, :, 0, 0] = float("nan")
        >>> pool_scene_points(pts, (2, 2))[0, 0]
        tensor([[ 3.3333,  4.5000],
                [10.5000, 12.5000]])
    """
    if points.ndim != 4 or points.shape[1] != 3:
        raise ValueError(f"pool_scene_points: `points` must be (N, 3, H, W), got {tuple(points.shape)}")
    points = points.float()
    hit = torch.isfinite(points).all(1, keepdim=True).float()
    total = F.adaptive_avg_pool2d(torch.nan_to_num(points, nan=0.0, posinf=0.0, neginf=0.0) * hit, size)
    share = F.adaptive_avg_pool2d(hit, size)
    cells = total / share.clamp_min(1e-6)
    return cells.masked_fill(share < 0.5, float("nan"))


def flight_scene_points(dataset: Any, size: tuple[int, int], device: str | torch.device = "cpu") -> torch.Tensor:
    """The mean world point (local ENU m) of each cell of a ``size`` grid, for every render of a
    `TopoFlight` (or of each flight of a `FlightCollection`, in its order): `pool_scene_points` of
    `scene_points`, the targets of `TrainConfig.scene_coords`.

    Args:
        dataset: a `TopoFlight` of synthetic renders with geometry files beside them (``_pc.npy``
            or ``_depth.npy``), or a `FlightCollection` of them.
        size: (h, w) of the grid (the auxiliary head's feature map).
        device: where the points are computed; the result is on the CPU.

    Returns:
        (N, 3, h, w) float32, NaN in cells where less than half the pixels hit something.

    Raises:
        TypeError: ``dataset`` has no renders to read geometry beside.
        FileNotFoundError: a render has no geometry file (the message names it).
        ValueError: a ``real_alt`` flight (its lens does not fit the renders' geometry).
    """
    return _each_render(dataset, "flight_scene_points", size, torch.float32,
                        lambda points: pool_scene_points(points[None], size)[0], device)
