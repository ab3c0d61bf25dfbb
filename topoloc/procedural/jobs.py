"""What to render: a flight of Mini-Comballaz and which of its poses (`RenderJob`), from a preset's name
(`parse_flights`, ``"comballaz-LHS:400"``) or from pose rows of one's own (`pose_flight`), and the image size
(`parse_size`). `topoloc.procedural.writer.render_flights` renders the jobs.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from topoloc.data.pose_sampling import radians_warning
from topoloc.data.preset import list_presets
from topoloc.data.topo import read_pose_file
from topoloc.image_size import parse_image_size
from topoloc.procedural.clearance import area_of_positions
from topoloc.procedural.world import SUPPORTED_AREAS, area_of_flight

__all__ = ["RenderJob", "pose_flight", "parse_flights", "parse_size"]


@dataclass(frozen=True)
class RenderJob:
    """A render job: one flight and how many of its poses to render (None = all).

    The flight is a vendored preset, or a name with its own pose rows. (A flight of a recipe, with its
    domain and split, is `topoloc.experiments.recipe.FlightSpec`.)

    Attributes:
        name: a vendored preset, or (with ``rows``) the name of a synthetic flight.
        count: poses to render, spread evenly over the rows (None = all).
        rows: explicit pose rows (N, 6), ECEF m + Cesium deg; None for a preset. Build it with
            :func:`pose_flight`, which validates the name, the rows and their area.
        source: where the rows came from (a file), named in errors.
        photos_like: with ``rows``: a vendored real flight whose photo appearance (its date's season
            and sun, clouds, haze, cars, camera, JPEG) the rows also get, written like a real flight's
            photos; None renders the rows synthetic only.
    """

    name: str
    count: int | None = None
    rows: np.ndarray | None = field(default=None, compare=False, repr=False)
    source: str | None = None
    photos_like: str | None = None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Folder of each photo domain's images: ``out/<flight><suffix>/<picname>.JPG`` (a pose flight's name may not end so).
PHOTO_FOLDER_SUFFIX = {"real": "-real", "real_alt": "-real-alt"}


def pose_flight(name: str, poses, count: int | None = None, photos_like: str | None = None) -> RenderJob:
    """A synthetic flight ``name`` of explicit pose rows (a ``.npy`` pose file or an (N, 6) array).

    It renders like the ``*-LHS`` presets: synthetic images only, named ``<name>_<idx:05d>_img.png``,
    into ``out/<name>/`` with ``<name>_poses.npy``, so that ``TopoFlight(out, name)`` reads it.
    TopoFlight tells a flight's area from its name, so the name must start with the prefix of the
    area its positions fall in (``comballaz-`` or ``sepey-`` for Comballaz), and it must not be a
    vendored preset.

    With ``photos_like``, the rows are also rendered in the photo appearance of that real flight and
    written as a real flight's photos: ``out/<name>/<name>_pic_names.csv`` names row ``i``
    ``PHOTO_<i:05d>``, the renders become ``<name>_<idx:05d>_PHOTO_<idx:05d>_img.png`` and the photos
    ``out/<name>-real/PHOTO_<idx:05d>.JPG``, so that ``TopoFlight(out, name, domain="real")`` reads
    them. This is what no user of real data has: labelled photos at chosen poses. Mini-Comballaz
    can render them, e.g. to train a model on the photos' own appearance and measure how much of
    a render-trained model's real error is domain shift (the "in-domain ceiling").

    Args:
        name: flight name, e.g. ``"comballaz-corridor"``.
        poses: path of a TOPO-DataGen pose file, or pose rows, ECEF m + Cesium yaw, pitch, roll deg.
        count: render only this many rows spread evenly over the file (None = all).
        photos_like: a vendored real flight of the same area (e.g. ``"comballaz-2020-11-06-planned"``)
            whose photo appearance the rows also get; None: synthetic only.

    Shape:
        poses: (N, 6)
    """
    if isinstance(poses, (str, os.PathLike)):
        source = str(poses)
        rows = read_pose_file(Path(poses))
    else:
        source = "poses"
        rows = np.asarray(poses, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 6:
            raise ValueError(f"poses: expected pose rows of shape (N, 6), got {rows.shape}")
    if len(rows) == 0:
        raise ValueError(f"{source}: expected at least one pose row, got none")
    bad = np.flatnonzero(~np.all(np.isfinite(rows), axis=1))
    if bad.size:
        raise ValueError(f"{source}: rows {bad[:5].tolist()} hold NaN or inf; expected finite pose rows")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name: expected a flight name of letters, digits, '.', '_' and '-', got {name!r}")
    if name in list_presets():
        raise ValueError(f"name: {name!r} is a vendored preset; choose another name for a pose file "
                         f"(e.g. {name}-corridor)")
    taken = next((suffix for suffix in PHOTO_FOLDER_SUFFIX.values() if name.endswith(suffix)), None)
    if taken is not None:  # <flight>-real/ and <flight>-real-alt/ hold a flight's photos
        raise ValueError(f"name: {name!r} ends in {taken!r}, the folder name of the photos of flight "
                         f"{name.removesuffix(taken)!r}; choose another name (e.g. {name.removesuffix(taken)}-poses)")
    area = area_of_positions(rows[:, :3], source)
    prefixes = SUPPORTED_AREAS[area]
    if not name.startswith(prefixes):
        raise ValueError(
            f"name: expected a name starting with one of {list(prefixes)} for poses in the {area} area (TopoFlight "
            f"tells a flight's area from its name), got {name!r}; e.g. {prefixes[0]}{name}"
        )
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count: expected an int >= 1 or None, got {count!r}")
    if (said := radians_warning(rows, source)) is not None:
        warnings.warn(said, stacklevel=2)
    beyond = np.flatnonzero(np.abs(rows[:, 4]) > 90.0)
    if beyond.size:  # a real gimbal overshoots -90 by a degree (sepey's flight: -91.1), a typo by far more
        warnings.warn(f"{source}: {beyond.size} row(s) with a pitch outside Cesium's [-90, 90] deg (from "
                      f"{rows[beyond, 4].min():g} to {rows[beyond, 4].max():g} deg): rows {_first(beyond)}; "
                      f"rendered as given (the camera turned over, looking back)", stacklevel=2)
    up = np.flatnonzero(np.sin(np.radians(rows[:, 4])) > 1e-9)  # the optical axis's upward component
    if up.size:  # allowed (TOPO-DataGen's Cesium pitch is), but the samplers keep pitch in [-90, 0]
        warnings.warn(f"{source}: {up.size} row(s) look above the horizon (pitch between 0 and 180 deg, mod 360): "
                      f"rows {_first(up)}; rendered as given", stacklevel=2)
    if photos_like is not None:
        real_flights = [f for f in list_presets() if not f.endswith("-LHS") and f.startswith(prefixes)]
        if photos_like not in real_flights:
            raise ValueError(f"photos_like: expected a real flight of the {area} area, one of {real_flights}, "
                             f"got {photos_like!r}")
    return RenderJob(name, count, np.ascontiguousarray(rows, dtype=np.float64), source, photos_like)


def _first(rows: np.ndarray, k: int = 10) -> str:
    """Row numbers for a message: all of them, or the first ``k`` and how many more."""
    more = f" and {len(rows) - k} more" if len(rows) > k else ""
    return f"{np.asarray(rows)[:k].tolist()}{more}"


def _photo_names(n: int) -> list[str]:
    """Photo names of a pose flight rendered with ``photos_like``: ``PHOTO_<row:05d>``."""
    return [f"PHOTO_{i:05d}" for i in range(n)]


def parse_flights(spec) -> list[RenderJob]:
    """``"comballaz-LHS:400,comballaz-2020-11-06-planned"`` (or a list of such items) to RenderJobs."""
    if isinstance(spec, RenderJob):
        spec = [spec]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        if isinstance(item, RenderJob):
            if item.rows is None:
                parse_flights([(item.name, item.count)])
            out.append(item)
            continue
        if isinstance(item, (tuple, list)):
            name, count = item
        else:
            name, _, n = str(item).strip().partition(":")
            try:
                count = int(n) if n else None
            except ValueError as err:
                raise ValueError(f"flights: expected NAME[:N] with an integer N, got {item!r}") from err
        if name not in list_presets():
            raise ValueError(f"flights: unknown flight {name!r}; expected one of {list_presets()}")
        try:
            area_of_flight(name)
        except ValueError as err:
            raise ValueError(f"flights: {err}") from err
        if count is not None and count < 1:
            raise ValueError(f"flights: expected N >= 1 in {item!r}")
        out.append(RenderJob(name, count))
    if not out:
        raise ValueError("flights: expected at least one flight")
    names = [f.name for f in out]
    name, times = Counter(names).most_common(1)[0]
    if times > 1:  # two spreads of one flight would share its folder, and the folder would block the same command
        raise ValueError(f"flights: expected each flight once, got {name!r} {times} times in {names}")
    return out


def parse_size(size) -> tuple[int, int]:
    """``"360x240"`` or ``(360, 240)`` to ``(width, height)``, validated (16 to 4096 px a side).

    The renderer's sizes are width first (as ``--size 360x240``); the text goes through
    `topoloc.image_size.parse_image_size`, the one parser of sizes.
    """
    expected = f"size: expected 'WxH' text such as '360x240' or (width, height), two ints of 16..4096 px, got {size!r}"
    try:
        if not isinstance(size, str):
            w, h = size
            size = (h, w)
        h, w = parse_image_size(size, name="size", short_side=False, minimum=16, maximum=4096)
    except (TypeError, ValueError):  # parse_image_size speaks of (H, W): not the renderer's order
        raise ValueError(expected) from None
    return w, h


def _select(n_rows: int, count: int | None) -> np.ndarray:
    if count is None or count >= n_rows:
        return np.arange(n_rows)
    return np.unique(np.round(np.linspace(0, n_rows - 1, count)).astype(np.int64))
