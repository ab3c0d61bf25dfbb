"""The ``topoloc`` command line: ``topoloc <subcommand> ...``.

Each subcommand is two small functions: ``_add_<name>(subparsers)`` declares its flags (help on
every flag) and ``_run_<name>(args)`` makes one call into the library. To add a subcommand, write
both and list ``_add_<name>`` in :data:`_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


# --- render -------------------------------------------------------------------------------------
def _add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render Mini-Comballaz flights in the TOPO-DataGen layout",
        description="Render Mini-Comballaz (a procedural stand-in for the TOPO Comballaz data) at the real "
        "TOPO flight poses, writing DIR/<flight>/ (synthetic renders, poses, semantics) and, for real "
        "flights, DIR/<flight>-real/<picname>.JPG (the real-photo appearance). Interrupted renders resume.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output root folder")
    p.add_argument(
        "--flights",
        default="comballaz-LHS:400,comballaz-2020-11-06-planned:60",
        metavar="NAME[:N],...",
        help="comma separated flight presets; ':N' renders N poses spread evenly over the flight "
        "(default: %(default)s)",
    )
    p.add_argument("--size", default="360x240", metavar="WxH", help="image size in px; TOPO's native is 720x480 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="world and image seed (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"), help="render device (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="images rendered together (default: %(default)s)")
    p.add_argument("--depth", action="store_true", help="also write <stem>_depth.npy (float32 m along the optical axis)")
    p.add_argument("--coarse-steps", type=int, default=None, help="ray-marching samples per coarse ray (speed/accuracy)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads while rendering (default: torch's choice; 1 is often faster on a busy machine)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_render)


def _run_render(args) -> int:
    from dataclasses import replace

    from topoloc.procedural import RenderConfig, render_flights

    config = RenderConfig() if args.coarse_steps is None else replace(RenderConfig(), coarse_steps=args.coarse_steps)
    done = render_flights(
        args.out, args.flights, size=args.size, seed=args.seed, device=args.device,
        batch_size=args.batch_size, progress=not args.no_progress, depth=args.depth, config=config, threads=args.threads,
    )
    for flight, n in done.items():
        print(f"{flight}: {n} image(s) rendered")
    return 0


# --- train / evaluate / saliency / demo (flags and runners in topoloc._cli_engine) --------------
from topoloc._cli_engine import add_demo, add_evaluate, add_saliency, add_train  # noqa: E402

# --- registry -----------------------------------------------------------------------------------
_SUBCOMMANDS = [_add_render, add_train, add_evaluate, add_saliency, add_demo]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="topoloc", description="Drone localisation from a single image (TOPO).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


#: What the library raises for bad input, files it cannot read or write, and a NaN stop: the CLI
#: prints these as one line ``topoloc <command>: error: ...`` and exits with status 2.
_USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)


def main(argv=None) -> int:
    """Entry point of the ``topoloc`` console script; returns the exit status.

    Bad arguments, unreadable or unwritable files, refused runs and a NaN stop end with one line
    ``topoloc <command>: error: <message>`` on stderr and exit status 2 (argparse's own status
    for bad arguments); anything else is a bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _USER_ERRORS as err:  # a clear message, no traceback
        message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        parser.exit(2, f"topoloc {args.command}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
