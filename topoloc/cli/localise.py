"""``topoloc localise``: where was each photo taken? A checkpoint on new photos, written as CSV / GeoJSON /
KML (`topoloc.engine.localise`, `topoloc.evaluation.gis`)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from topoloc.cli._common import (CHECKPOINT_FLAGS, GEOID_OFFSET_HELP_M, checkpoint_arg, device_arg, frame_arg,
                                 one_line, out_file, positive_int, print_warnings)

__all__ = ["add"]



def _out_name(value: str) -> str:
    """``--out``'s type: `out_file`, and a folder among its names said to be photos given after it."""
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value!r} is a folder, not an output file (.csv, .geojson, .kml); photos "
                                         "and photo folders go before --out, which takes every name after it")
    return out_file(value)


def _check_order(args: argparse.Namespace) -> None:
    """Photos named after ``--out`` (which takes every name after it) are refused with that said."""
    from topoloc.evaluation.gis import GIS_FORMATS

    strays = [out for out in args.out if os.path.splitext(out)[1].lower() not in GIS_FORMATS]
    if strays and (not args.photos or os.path.exists(strays[0])):
        raise ValueError(f"--out: {strays[0]!r} is not an output file ({', '.join(sorted(GIS_FORMATS))}); --out takes "
                         "every name after it, so give the photos before --out")
    if not args.photos:
        raise ValueError("no PHOTO given: name photo files or folders before --out")


def _run(args: argparse.Namespace) -> int:
    from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M
    from topoloc.engine.localise import localise
    from topoloc.evaluation.gis import gis_format

    _check_order(args)
    for out in args.out:
        gis_format(out)  # an unknown suffix fails before the model runs
    named = [os.path.realpath(out) for out in args.out]
    for i, out in enumerate(args.out):
        if named[i] in named[:i]:
            raise ValueError(f"--out: {out!r} is given twice")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = localise(args.checkpoint, args.photos, frame=args.frame, device=args.device,
                              batch_size=args.batch_size, on_error="raise" if args.strict else "skip",
                              geoid_offset_m=DEFAULT_GEOID_OFFSET_M if args.geoid_offset is None else args.geoid_offset,
                              progress=not args.no_progress, adabn=args.adabn)
    except (ValueError, FileNotFoundError) as err:
        raise one_line(err) from err
    print_warnings(caught, skip_prefix="localise: skipped")
    if len(result) == 0 and len(result.skipped) == 1:  # the only photo: one error line, naming it and why
        name, why = result.skipped[0]
        raise ValueError(f"no photo could be read: {name}: {why}")
    for name, why in result.skipped:
        print(f"warning: skipped {name}: {why}", file=sys.stderr)  # "warning: " as every other warning line
    total = len(result) + len(result.skipped)
    if result.skipped:
        print(f"warning: {len(result.skipped)} of {total} photo(s) skipped (unreadable)", file=sys.stderr)
    if len(result) == 0:
        raise ValueError(f"no photo could be read ({total} given); first: {result.skipped[0][0]}")
    for out in args.out:
        print(f"{result.write(out)}: {len(result)} photo(s)")
    return 0


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("localise", help="where was each photo taken? run a checkpoint on new photos, write CSV / "
                                        "GeoJSON / KML",
                       description="Predicts the camera pose of each photo (no ground truth needed): ECEF, WGS84 "
                                   "lat / lon / ellipsoidal height and height above sea level, yaw / pitch / roll "
                                   "(Cesium / DJI), and the training frame's east / north / up. Photos are read as "
                                   "stored (EXIF orientation not applied) and resized to the model's input size "
                                   "as in training. Unreadable photos are reported by name and skipped.")
    checkpoint_arg(p, "(or demo: DIR/runs/augmented/last.pt)")
    p.add_argument("photos", nargs="*", metavar="PHOTO",  # "*": a missing one is refused in _run, with a hint
                   help="photo files and / or folders (a folder gives its .jpg / .png / .tif ... files, sorted); "
                        "at least one, before --out")
    p.add_argument("--out", required=True, nargs="+", action="extend", type=_out_name, metavar="FILE",
                   help="output file(s), format by suffix: .csv, .geojson (or .json, RFC 7946), .kml (Google Earth); "
                        "takes every name after it; an existing file is replaced, missing folders are made")
    p.add_argument("--frame", default=None, type=frame_arg, metavar="ORIGIN",
                   help="training frame: comballaz, epfl or LAT,LON,H (degrees, degrees, ellipsoidal m) (default: "
                        "the checkpoint's; comballaz with a warning when it records none)")
    p.add_argument("--geoid-offset", type=float, default=None, metavar="M",
                   help=f"geoid undulation N in metres for heights above sea level h - N (default: "
                        f"{GEOID_OFFSET_HELP_M}, western Switzerland)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="photos per forward pass (default: 32)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable photo (exit status 2)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--adabn", action="store_true",
                   help="first re-estimate the model's batch-norm statistics on these photos (AdaBN: unsupervised "
                        "adaptation to their season, light and camera; pass one flight's photos together)")
    device_arg(p)
    p.set_defaults(func=_run, flag_names={**CHECKPOINT_FLAGS, "geoid_offset_m": "--geoid-offset", "output": "--out"})
    return p
