"""Command-line parsers of ``topoloc localise | export`` (used by `topoloc.cli`).

``localise`` runs a checkpoint on new photos and writes CSV / GeoJSON / KML; ``export`` writes the
ONNX model, its statistics JSON and the numpy pose decoder. The work is done by the library
(`topoloc.engine.localise`, `topoloc.engine.export`).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M

__all__ = ["add_localise", "add_export"]


def _one_line(err: Exception) -> Exception:
    """The same error with its first line only (torch's unpickling errors run over many lines)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return type(err)(first) if isinstance(err, (ValueError, FileNotFoundError)) else err


def _print_warnings(caught, skip_prefix: str | None = None) -> None:
    for w in caught:
        text = str(w.message)
        if skip_prefix and text.startswith(skip_prefix):
            continue
        print(f"warning: {text}", file=sys.stderr)


def _run_localise(args: argparse.Namespace) -> int:
    from topoloc.engine.localise import localise  # noqa: PLC0415 - keeps `topoloc --help` fast
    from topoloc.gis import gis_format  # noqa: PLC0415

    for out in args.out:
        gis_format(out)  # an unknown suffix fails before the model runs
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = localise(args.checkpoint, args.photos, frame=args.frame, device=args.device,
                              batch_size=args.batch_size, on_error="raise" if args.strict else "skip",
                              geoid_offset_m=args.geoid_offset, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as err:
        raise _one_line(err) from err
    _print_warnings(caught, skip_prefix="localise: skipped")
    for name, why in result.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    total = len(result) + len(result.skipped)
    if result.skipped:
        print(f"{len(result.skipped)} of {total} photo(s) skipped (unreadable)", file=sys.stderr)
    if len(result) == 0:
        raise ValueError(f"no photo could be read ({total} given); first: {result.skipped[0][0]}")
    for out in args.out:
        print(f"{result.write(out)}: {len(result)} photo(s)")
    return 0


def add_localise(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("localise", help="where was each photo taken? run a checkpoint on new photos, write CSV / "
                                        "GeoJSON / KML",
                       description="Predicts the camera pose of each photo (no ground truth needed): ECEF, WGS84 "
                                   "lat / lon / ellipsoidal height and height above sea level, yaw / pitch / roll "
                                   "(Cesium / DJI), and the training frame's east / north / up. Photos are read as "
                                   "stored (EXIF orientation not applied) and resized to the model's input size "
                                   "as in training. Unreadable photos are reported by name and skipped.")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="last.pt or best.pt written by topoloc train "
                                                                       "(or demo: DIR/runs/augmented/last.pt)")
    p.add_argument("photos", nargs="+", metavar="PHOTO",
                   help="photo files and / or folders (a folder gives its .jpg / .png / .tif ... files, sorted)")
    p.add_argument("--out", required=True, nargs="+", metavar="FILE",
                   help="output file(s), format by suffix: .csv, .geojson (or .json, RFC 7946), .kml (Google Earth)")
    p.add_argument("--frame", default=None, metavar="ORIGIN",
                   help="training frame: comballaz or epfl (default: the checkpoint's; comballaz with a warning "
                        "when it records none)")
    p.add_argument("--geoid-offset", type=float, default=DEFAULT_GEOID_OFFSET_M, metavar="M",
                   help="geoid undulation N in metres for heights above sea level h - N (default: %(default)s, "
                        "western Switzerland)")
    p.add_argument("--batch-size", type=int, default=32, help="photos per forward pass (default: 32)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable photo (exit status 2)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to run: auto (CUDA when available), cpu or cuda (default: auto)")
    p.set_defaults(func=_run_localise)
    return p


def _run_export(args: argparse.Namespace) -> int:
    from topoloc.engine.export import export_onnx  # noqa: PLC0415 - torch.onnx only when exporting

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = export_onnx(args.checkpoint, args.out, frame=args.frame, opset=args.opset,
                                 input_dtype=args.input_dtype)
    except (ValueError, FileNotFoundError) as err:
        raise _one_line(err) from err
    except ImportError as err:
        raise ValueError(str(err)) from err
    _print_warnings([w for w in caught if "frame" in str(w.message)])
    meta = result.metadata
    inp = meta["input"]
    print(f"{result.onnx}: opset {meta['opset']}, input images {inp['dtype']} (batch, 3, {inp['height']}, "
          f"{inp['width']}) RGB {inp['range']}, output code float32 (batch, {meta['code_size']}), "
          f"rotation {meta['rotation']}")
    print(f"{result.stats}: normaliser statistics and frame (also in the ONNX metadata, key 'topoloc')")
    print(f"{result.decoder}: numpy decoder (decode_pose(code, stats)), no torch needed")
    return 0


def add_export(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export a checkpoint to ONNX for the drone, with a numpy pose decoder",
                       description="Writes the network with its input normalisation as ONNX (dynamic batch), "
                                   "the normaliser's statistics as JSON beside it (and in the ONNX metadata) and "
                                   "topoloc_pose_decoder.py, which decodes the output with numpy alone. Needs "
                                   "pip install \"topoloc[export]\".")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="last.pt or best.pt written by topoloc train")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="the ONNX file (FILE.json is written beside it)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17, read by TensorRT 8.5+)")
    p.add_argument("--input-dtype", choices=("uint8", "float"), default="uint8",
                   help="graph input: uint8 RGB in [0, 255] or float32 in [0, 1] (default: uint8)")
    p.add_argument("--frame", default=None, metavar="ORIGIN",
                   help="training frame: comballaz or epfl (default: the checkpoint's; comballaz with a warning)")
    p.set_defaults(func=_run_export)
    return p
