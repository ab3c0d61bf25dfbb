"""``topoloc poses corridor | lhs``: training pose files that cover a flight.

The sampling is done by :mod:`topoloc.data.pose_sampling` and :mod:`topoloc.data.pose_lhs`; the
terrain (Mini-Comballaz's surface, to keep Latin-hypercube cameras above the ground) comes from
:mod:`topoloc.procedural`. Both are imported when a command runs, not for ``--help`` (see
`topoloc.cli`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["add"]

#: Cameras of a flight-envelope LHS are kept this many metres above the Mini-Comballaz surface.
ENVELOPE_CLEARANCE_M = 10.0
#: ``--margin`` of ``poses lhs --flight`` when not given: `lhs_envelope`'s default (a test keeps them equal; not
#: imported, so that ``--help`` does not load the library).
DEFAULT_MARGIN_M = 50.0


def _triple(text: str, flag: str, what: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(np.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"{flag}: expected three non-negative comma-separated numbers {what}, got {text!r}")
    return values


def _count(value: int) -> int:
    if value < 1:
        raise ValueError(f"--count: expected an integer >= 1, got {value}")
    return value


def _seed(value: int, flag: str = "--seed") -> int:
    if value < 0:
        raise ValueError(f"{flag}: expected a non-negative integer, got {value}")
    return value


def _flight_rows(name: str) -> np.ndarray:
    """A vendored preset by name, or a .npy pose file by path."""
    from topoloc.data.pose_files import load_pose_file
    from topoloc.data.preset import list_presets, load_preset

    if name in list_presets():
        return load_preset(name)
    if name.endswith(".npy") or Path(name).is_file():
        try:
            return load_pose_file(name)
        except (OSError, ValueError) as err:  # "x.npy: pose file not found": the file is --flight's
            raise type(err)(f"--flight: {err}") from err
    raise ValueError(f"--flight: expected a vendored preset (one of {list_presets()}) or a .npy pose file, "
                     f"got {name!r}")


def _area_frame(rows: np.ndarray):
    """The TOPO origin frame the rows lie near (within 30 km), or None."""
    from topoloc.geodesy import TOPO_ORIGINS, LocalFrame

    for name in TOPO_ORIGINS:
        frame = LocalFrame.named(name)
        if np.linalg.norm(rows[:, :3].mean(0) - frame.origin_ecef) < 30_000.0:
            return frame
    return None


def _terrain(rows: np.ndarray | None, seed: int):
    """Mini-Comballaz's surface as ``(east_m, north_m) -> up_m`` in Comballaz ENU, or None outside its area."""
    from topoloc.procedural import area_of_positions, build_world, terrain_function

    if rows is not None:
        try:
            area_of_positions(rows[:, :3])
        except ValueError:
            return None
    return terrain_function(build_world(seed))


def _out(value: str) -> str:
    """``--out``, refused before any work when no pose file can be written there (a folder, under a file, a file
    that holds no pose rows)."""
    from topoloc._paths import cannot_write
    from topoloc.data.pose_files import pose_file_path

    path = pose_file_path(value, name="--out")
    why = cannot_write(path)
    if why is not None:
        raise ValueError(f"--out: {value!r}: {why}")
    _held_rows(path)  # a file that is no pose file is refused now, not after the sampling
    return value


def _write(rows: np.ndarray, out: str) -> int:
    from topoloc.data.pose_files import pose_file_path, pose_summary, save_pose_file

    held = _held_rows(pose_file_path(out, name="--out"))
    path = save_pose_file(out, rows)
    if held is not None and not np.array_equal(held, rows):  # the same command again writes the same file: no word
        print(f"warning: {path} held other poses and was replaced; a render of the old file into a folder refuses "
              "this one (render it into another folder)", file=sys.stderr)
    print(f"{path}: {pose_summary(rows, _area_frame(rows))}")
    return 0


def _held_rows(path) -> np.ndarray | None:
    """The pose rows a file already holds, or None (no file). A file that holds no pose rows (not a numpy
    file, or an array of another shape) is refused: --out replaces pose files only."""
    if not path.is_file():
        return None
    try:
        held = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        held = None
    if not isinstance(held, np.ndarray) or held.ndim != 2 or held.shape[1] != 6 or held.dtype.kind not in "iuf":
        what = "not a numpy file" if held is None else f"a {held.dtype} array of shape {held.shape}"
        raise ValueError(f"--out: {str(path)!r} exists and holds no pose rows ({what}); it is replaced only when it "
                         "is a pose file: give another name, or move it away")
    return held


def _run_corridor(args: argparse.Namespace) -> int:
    sigma_m = _triple(args.sigma_m, "--sigma-m", "A,L,U (across, along, up in m)")
    sigma_deg = _triple(args.sigma_deg, "--sigma-deg", "Y,P,R (yaw, pitch, roll in deg)")
    count, seed, out = _count(args.count), _seed(args.seed), _out(args.out)
    if args.world_seed is not None and args.min_clearance is None:
        raise ValueError("--world-seed: chooses the Mini-Comballaz world of --min-clearance; without --min-clearance "
                         "no world is used")
    world_seed = _seed(0 if args.world_seed is None else args.world_seed, "--world-seed")
    if args.min_clearance is not None and not 0 <= args.min_clearance < float("inf"):
        raise ValueError(f"--min-clearance: expected a non-negative number of metres, got {args.min_clearance}")
    from topoloc.data.pose_sampling import corridor
    from topoloc.procedural import area_of_positions, build_world, clearance_m

    rows = corridor(_flight_rows(args.flight), count, sigma_m, sigma_deg, seed=seed, pick=args.pick)
    if args.min_clearance is not None:
        area_of_positions(rows[:, :3], "--min-clearance: the corridor")
        low = clearance_m(rows, build_world(world_seed)) < args.min_clearance
        if low.all():
            raise ValueError(f"--min-clearance: every one of the {len(rows)} views is less than "
                             f"{args.min_clearance:g} m above the Mini-Comballaz surface")
        rows = rows[~low]
        print(f"dropped {int(low.sum())} of {len(low)} views less than {args.min_clearance:g} m above the "
              "Mini-Comballaz surface")
    return _write(rows, out)


def _run_lhs(args: argparse.Namespace) -> int:
    count, seed, out = _count(args.count), _seed(args.seed), _out(args.out)
    if (args.flight is None) == (args.area is None):
        raise ValueError("--flight / --area: expected exactly one of them (a flight's envelope, or a whole area)")
    if args.world_seed is not None and args.no_terrain:
        raise ValueError("--world-seed: chooses the Mini-Comballaz world whose terrain is used; --no-terrain uses none")
    world_seed = _seed(0 if args.world_seed is None else args.world_seed, "--world-seed")
    if args.margin is not None and args.area is not None:
        raise ValueError("--margin: widens a flight's envelope (--flight); --area samples the whole area")
    margin = DEFAULT_MARGIN_M if args.margin is None else args.margin
    if not 0 <= margin < float("inf"):
        raise ValueError(f"--margin: expected a non-negative number of metres, got {args.margin}")
    from topoloc.data.pose_lhs import lhs_area, lhs_envelope
    from topoloc.geodesy import LocalFrame

    if args.area is not None:
        ground = None if args.no_terrain else _terrain(None, world_seed)
        rows = lhs_area(args.area, count, seed=seed, ground_m=ground)
    else:
        flight = _flight_rows(args.flight)
        ground = None if args.no_terrain else _terrain(flight, world_seed)
        if ground is None and not args.no_terrain:  # the help promises the clearance: say why there is none
            print(f"note: {args.flight}'s positions are not all within the Mini-Comballaz area, so its terrain is "
                  f"not used: the cameras keep no clearance above the ground (as with --no-terrain)")
        frame = LocalFrame.named("comballaz") if ground is not None else None
        rows = lhs_envelope(flight, count, seed=seed, margin_m=margin, frame=frame, ground_m=ground,
                            clearance_m=ENVELOPE_CLEARANCE_M)
    return _write(rows, out)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, required=True, metavar="N", help="number of poses to write")
    p.add_argument("--out", required=True, metavar="FILE.npy",
                   help="pose file to write, '.npy' appended when FILE does not end in it (as numpy does); a folder "
                        "is refused, a file holding other poses is replaced with a warning, a file holding "
                        "anything else is refused. Float64 (N, 6), ECEF x, y, z m + Cesium yaw, pitch, roll deg "
                        "(TOPO-DataGen's format; render it with 'topoloc render --poses FILE.npy --name NAME')")
    p.add_argument("--seed", type=int, default=0,
                   help="sampling seed; the same seed writes the same file (default: %(default)s)")


def add(sub) -> argparse.ArgumentParser:
    """Adds ``poses corridor`` and ``poses lhs`` to an argparse subparsers object."""
    p = sub.add_parser(
        "poses", help="write training pose files that cover a flight (corridor, Latin hypercube)",
        description="Write TOPO-DataGen pose files of training views. An absolute pose regressor interpolates "
                    "between its training views, so render them where the drone will fly: a corridor around the "
                    "planned flight, and a Latin hypercube inside its envelope.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    c = kinds.add_parser("corridor", help="views jittered around a flight's poses",
                         description="Jitter a flight's poses: Gaussian offsets across / along the direction of "
                                     "travel and up, Gaussian yaw / pitch / roll noise; a pitch past nadir (-90) "
                                     "or the horizon (0) is reflected back into [-90, 0] (-95 -> -85, +4 -> -4), so "
                                     "near either bound the spread is narrower than asked and the views pile up "
                                     "towards it.")
    c.add_argument("--flight", required=True, metavar="NAME",
                   help="a vendored flight preset (e.g. comballaz-2020-11-06-planned) or a .npy pose file")
    _common(c)
    c.add_argument("--sigma-m", default="15,15,8", metavar="A,L,U",
                   help="standard deviations across track, along track and up, in m (default: %(default)s)")
    c.add_argument("--sigma-deg", default="15,5,3", metavar="Y,P,R",
                   help="standard deviations of yaw, pitch and roll, in deg (default: %(default)s)")
    c.add_argument("--pick", choices=("even", "random"), default="even",
                   help="base rows: spread evenly over the flight, or drawn at random with the seed "
                        "(default: %(default)s)")
    c.add_argument("--min-clearance", type=float, default=None, metavar="M",
                   help="drop the views whose camera is less than M metres above the Mini-Comballaz surface (ground, "
                        "trees, buildings), which 'topoloc render --poses' would refuse (default: keep every view)")
    c.add_argument("--world-seed", type=int, default=None,
                   help="seed of the Mini-Comballaz world of --min-clearance (default: 0; give the --seed that "
                        "'topoloc render' will render the views with)")
    c.set_defaults(func=_run_corridor, flag_names={"sigma_m": "--sigma-m", "sigma_deg": "--sigma-deg", "n": "--count",
                                                "flight_rows": "--flight"})

    h = kinds.add_parser("lhs", help="a Latin hypercube inside a flight's envelope or over a whole area",
                         description="Latin-hypercube poses: with --flight, inside the flight's envelope (its "
                                     "horizontal box plus --margin, height band, pitch and roll bands, headings); "
                                     "with --area, over the area as TOPO-DataGen's *-LHS pose sets (comballaz: "
                                     "east 0-923.5 m, north 0-1334.3 m of the Comballaz origin, 100-200 m above the "
                                     "terrain, pitch -90..-45 deg, roll -15..15 deg, every heading).")
    h.add_argument("--flight", default=None, metavar="NAME",
                   help="a vendored flight preset or a .npy pose file whose envelope is sampled")
    h.add_argument("--area", default=None, choices=("comballaz",),
                   help="sample a whole area instead of a flight's envelope")
    _common(h)
    h.add_argument("--margin", type=float, default=None, metavar="M",
                   help=f"with --flight: horizontal margin around the flight's positions, in m (default: "
                        f"{DEFAULT_MARGIN_M:g})")
    h.add_argument("--no-terrain", action="store_true",
                   help="ignore the Mini-Comballaz terrain: --area takes the absolute height band of TOPO's LHS "
                        "(ENU up 105.9-627.7 m, some cameras under high ground) and --flight may go below "
                        f"the terrain (by default its cameras stay {ENVELOPE_CLEARANCE_M:g} m above it)")
    h.add_argument("--world-seed", type=int, default=None,
                   help="seed of the Mini-Comballaz world whose terrain is used (default: 0; give the --seed that "
                        "'topoloc render' will render the views with)")
    h.set_defaults(func=_run_lhs, flag_names={"n": "--count", "flight_rows": "--flight"})
    return p
