"""Shared pieces of the subcommands: the ``--device`` flag and the one-line error and warning output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from topoloc._paths import unwritable

__all__ = ["CHECKPOINT_FLAGS", "GEOID_OFFSET_HELP_M", "data_root", "device_arg", "checkpoint_arg", "flights_args",
           "one_line", "out_dir",
           "out_file", "positive_int", "non_negative_int", "print_warnings"]


#: The library's names of the arguments that the checkpoint subcommands (evaluate, saliency, localise, export)
#: set with these flags; an error leading with the name is printed with the flag (`topoloc.cli.app.main`).
CHECKPOINT_FLAGS = {"checkpoint": "--checkpoint", "load_checkpoint": "--checkpoint", "out_dir": "--out",
                    "flights": "--flights", "flight": "--flights", "frame": "--frame", "batch_size": "--batch-size",
                    "root": "--data"}


#: The default of --geoid-offset (localise, export) as its help gives it (`topoloc.data.exif.DEFAULT_GEOID_OFFSET_M`,
#: which a test keeps equal; not imported here, so that `--help` does not load the library).
GEOID_OFFSET_HELP_M = 49.5


def frame_arg(value: str) -> str | tuple[float, float, float]:
    """``--frame``'s type: a TOPO origin's name, or ``LAT,LON,H`` (degrees, degrees, ellipsoidal metres) for
    another site's origin; the value is checked where it is used (`topoloc.geodesy.as_frame`)."""
    if "," not in value:
        return value
    try:
        lat, lon, h = (float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame name (comballaz, epfl) or LAT,LON,H in degrees, "
                                         f"degrees and metres, e.g. 46.3705,7.065,1410, got {value!r}") from None
    return lat, lon, h


def device_arg(p: argparse.ArgumentParser) -> None:
    """Adds ``--device auto | cpu | cuda`` (default auto) to a subcommand's parser."""
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", type=torch_device,
                   help="where to run: auto (CUDA when available), cpu or cuda (default: auto)")


def checkpoint_arg(p: argparse.ArgumentParser, more: str = "") -> None:
    """Adds the required ``--checkpoint PATH`` (a checkpoint written by ``topoloc train``)."""
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="last.pt or best.pt written by topoloc train" + (f" {more}" if more else ""))


def flights_args(p: argparse.ArgumentParser, flights_help: str) -> None:
    """Adds the required ``--data ROOT`` and ``--flights FLIGHT[:DOMAIN[:SPLIT]] ...``."""
    p.add_argument("--data", required=True, metavar="ROOT", type=data_root, help="folder holding the flight folders")
    p.add_argument("--flights", nargs="+", action="extend", required=True, metavar="FLIGHT[:DOMAIN[:SPLIT]]",
                   help=flights_help)


def data_root(value: str) -> str:
    """argparse ``type`` of ``--data``: refused at once when it is a file (it was refused only as the first
    flight's folder, ``FILE/<flight>: folder not found``); a missing root is named with its flight's folder."""
    if Path(value).exists() and not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"expected the folder that holds the flight folders, {value!r} is a file")
    return value


def _check_writable(value: str) -> None:
    """Refuses a path that lies under a file or in a folder that cannot be written (nothing could be written
    there: refused before the work, not after it)."""
    why = unwritable(value)
    if why is not None:
        raise argparse.ArgumentTypeError(f"{value!r}: {why}")


def out_dir(value: str) -> str:
    """argparse ``type`` of an output folder: refused at once when it is an existing file (or lies under one)."""
    if Path(value).exists() and not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder, {value!r} is a file")
    _check_writable(value)
    return value


def out_file(value: str) -> str:
    """argparse ``type`` of an output file: refused at once when it is an existing folder (or lies under a file)."""
    if Path(value).is_dir() or value.endswith(("/", "\\")):
        raise argparse.ArgumentTypeError(f"expected a file name, {value!r} is a folder")
    _check_writable(value)
    return value


def torch_device(value: str) -> str:
    """argparse ``type`` of a device: ``auto``, ``cpu``, ``cuda`` (or ``cuda:N``), refused at once where it is no
    device or where CUDA is asked for and missing (torch said "Found no NVIDIA driver" at the first tensor)."""
    from topoloc._device import resolve_device  # torch: only once a device is parsed

    try:
        resolve_device(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("device: ")) from None
    return value


def _whole_number(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """argparse ``type`` of a count or size: an int >= 1, refused as the flag's own error otherwise."""
    return _whole_number(value, 1)


def non_negative_int(value: str) -> int:
    """argparse ``type`` of a seed: an int >= 0, refused as the flag's own error otherwise."""
    return _whole_number(value, 0)


def one_line(err: Exception) -> Exception:
    """The same error with its first line only (torch's unpickling errors run over many lines)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return type(err)(first) if isinstance(err, (ValueError, FileNotFoundError)) else err


def print_warnings(caught, skip_prefix: str | None = None) -> None:
    """Prints caught warnings to stderr as ``warning: <message>``, except those starting with ``skip_prefix``."""
    for w in caught:
        text = str(w.message)
        if skip_prefix and text.startswith(skip_prefix):
            continue
        print(f"warning: {text}", file=sys.stderr)
