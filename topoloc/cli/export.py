"""``topoloc export``: a checkpoint as ONNX for the drone, with its statistics JSON and a numpy pose decoder
(`topoloc.engine.export`)."""

from __future__ import annotations

import argparse
import warnings

from topoloc.cli._common import (CHECKPOINT_FLAGS, GEOID_OFFSET_HELP_M, checkpoint_arg, frame_arg, one_line,
                                 out_file, print_warnings)

__all__ = ["add"]


def _run(args: argparse.Namespace) -> int:
    from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M
    from topoloc.engine.export import export_onnx

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = export_onnx(args.checkpoint, args.out, frame=args.frame, opset=args.opset,
                                 input_dtype=args.input_dtype,
                                 geoid_offset_m=DEFAULT_GEOID_OFFSET_M if args.geoid_offset is None
                                 else args.geoid_offset)
    except (ValueError, FileNotFoundError) as err:
        raise one_line(err) from err
    except ImportError as err:
        raise ValueError(str(err)) from err
    print_warnings([w for w in caught if "frame" in str(w.message) or "geoid_offset_m" in str(w.message)])
    meta = result.metadata
    inp = meta["input"]
    print(f"{result.onnx}: opset {meta['opset']}, input images {inp['dtype']} (batch, 3, {inp['height']}, "
          f"{inp['width']}) RGB {inp['range']}, output code float32 (batch, {meta['code_size']}), "
          f"rotation {meta['rotation']}")
    print(f"{result.stats}: normaliser statistics and frame (also in the ONNX metadata, key 'topoloc')")
    print(f"{result.decoder}: numpy decoder (decode_pose(code, stats)), no torch needed")
    return 0


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export a checkpoint to ONNX for the drone, with a numpy pose decoder",
                       description="Writes the network with its input normalisation as ONNX (dynamic batch), "
                                   "the normaliser's statistics as JSON beside it (and in the ONNX metadata) and "
                                   "topoloc_pose_decoder.py, which decodes the output with numpy alone. Needs "
                                   "pip install \"topoloc[export]\".")
    checkpoint_arg(p)
    p.add_argument("--out", required=True, type=out_file, metavar="FILE.onnx",
                   help="the ONNX file (FILE.json and topoloc_pose_decoder.py are written beside it); existing "
                        "files are replaced, missing folders are made")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17, read by TensorRT 8.5+)")
    p.add_argument("--input-dtype", choices=("uint8", "float"), default="uint8",
                   help="graph input: uint8 RGB in [0, 255] or float32 in [0, 1] (default: uint8)")
    p.add_argument("--frame", default=None, type=frame_arg, metavar="ORIGIN",
                   help="training frame: comballaz, epfl or LAT,LON,H (degrees, degrees, ellipsoidal m) (default: "
                        "the checkpoint's; comballaz with a warning)")
    p.add_argument("--geoid-offset", type=float, default=None, metavar="M",
                   help=f"geoid undulation N in metres written to FILE.json, for heights above sea level h - N "
                        f"(default: {GEOID_OFFSET_HELP_M}, western Switzerland)")
    p.set_defaults(func=_run, flag_names={**CHECKPOINT_FLAGS, "output": "--out", "opset": "--opset",
                                          "input_dtype": "--input-dtype", "geoid_offset_m": "--geoid-offset"})
    return p
