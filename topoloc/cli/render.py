"""``topoloc render``: Mini-Comballaz flights in the TOPO-DataGen layout (`topoloc.procedural.render_flights`)."""

from __future__ import annotations

import argparse

from topoloc.cli._common import device_arg, non_negative_int, out_dir

__all__ = ["add"]


_DEFAULT_FLIGHTS = "comballaz-LHS:400,comballaz-2020-11-06-planned:60"


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "render",
        help="render Mini-Comballaz flights in the TOPO-DataGen layout",
        description="Render Mini-Comballaz (a procedural stand-in for the TOPO Comballaz data) at the real "
        "TOPO flight poses, writing DIR/<flight>/ (synthetic renders, poses, semantics) and, for real "
        "flights, DIR/<flight>-real/<picname>.JPG (the real-photo appearance). With --poses FILE.npy --name NAME, "
        "a pose file (e.g. from 'topoloc poses corridor') is rendered as the synthetic flight DIR/NAME/. "
        "Interrupted renders resume, and the same command with --real-alt or --depth added completes a render "
        "(--photos-like cannot be added to a render made without it, and one made with it keeps it, with the same "
        "flight; a folder holds one seed and size). A "
        "flight's folder holds one set of views: a run that does not ask for every view it holds (another ':N' "
        "spread, other poses under --name) is refused before anything is written.",
    )
    p.add_argument("--out", required=True, type=out_dir, metavar="DIR", help="output root folder")
    p.add_argument(
        "--flights",
        default=None,
        metavar="NAME[:N],...",
        help="comma separated flight presets; ':N' renders N poses spread evenly over the flight (an N whose views "
        "leave out some the folder already holds is refused; one whose views include them adds the rest) "
        f"(default: {_DEFAULT_FLIGHTS}, or none when --poses is given)",
    )
    p.add_argument("--poses", default=None, metavar="FILE.npy",
                   help="also render this TOPO-DataGen pose file ((N, 6) ECEF m + yaw, pitch, roll deg, e.g. "
                        "written by 'topoloc poses') as the synthetic flight --name, into DIR/<name>/; rows looking "
                        "above the horizon (pitch > 0) get a warning")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="flight name of --poses; it must start with the area's prefix (comballaz- or sepey-), "
                        "e.g. comballaz-corridor")
    p.add_argument("--photos-like", default=None, metavar="FLIGHT",
                   help="also render --poses in the photo appearance of this real flight (its season and sun, clouds, "
                        "haze, cars, camera, JPEG), written as DIR/<name>-real/PHOTO_<row>.JPG: labelled 'photos' at "
                        "chosen poses, e.g. to train on the photos' own look (an in-domain bracket)")
    p.add_argument("--min-clearance", type=float, default=2.0, metavar="M",
                   help="refuse --poses rows whose camera is less than M metres above the ground, trees or buildings "
                        "(default: %(default)s)")
    p.add_argument("--size", default="360x240", metavar="WxH",
                   help="image size in px; TOPO's native is 720x480 (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="world and image seed (default: %(default)s)")
    device_arg(p)
    p.add_argument("--batch-size", type=int, default=16, help="images rendered together (default: %(default)s)")
    p.add_argument("--depth", action="store_true",
                   help="also write <stem>_depth.npy (float32 m along the optical axis)")
    p.add_argument("--real-alt", action="store_true",
                   help="real flights also get the second 'real' appearance (a late-summer evening through another "
                        "camera) in DIR/<flight>-real-alt/")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads while rendering (default: torch's choice; 1 is often faster on a busy "
                        "machine)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run, flag_names=_FLAGS)
    return p


#: The library's argument names as they lead its error messages, and the flags that set them here.
_FLAGS = {"out_dir": "--out", "flights": "--flights", "size": "--size", "name": "--name",
          "photos_like": "--photos-like", "seed": "--seed", "batch_size": "--batch-size", "threads": "--threads",
          "min_clearance_m": "--min-clearance", "poses": "--poses"}


def _run(args) -> int:
    from topoloc.procedural import parse_flights, pose_flight, render_flights

    if not args.min_clearance >= 0:
        raise ValueError(f"--min-clearance: expected a non-negative number of metres, got {args.min_clearance}")
    if (args.poses is None) != (args.name is None):
        raise ValueError("--poses and --name: expected both (a pose file and the flight name to render it as) "
                         "or neither")
    if args.photos_like is not None and args.poses is None:
        raise ValueError("--photos-like: expected with --poses FILE.npy --name NAME (it gives a pose file photos)")
    flights = []
    if args.flights is not None or args.poses is None:
        if args.flights is not None and not args.flights.strip(" ,"):  # e.g. an unset shell variable
            raise ValueError(f"--flights: expected NAME[:N],..., got {args.flights!r}; leave the flag out for "
                             f"the default ({_DEFAULT_FLIGHTS})")
        flights += parse_flights(args.flights if args.flights is not None else _DEFAULT_FLIGHTS)
    if args.poses is not None:
        try:
            flights.append(pose_flight(args.name, args.poses, photos_like=args.photos_like))
        except FileNotFoundError as err:  # "x.npy: pose file not found": the file is --poses'
            raise FileNotFoundError(f"--poses: {err}") from err
    done = render_flights(
        args.out, flights, size=args.size, seed=args.seed, device=args.device,
        batch_size=args.batch_size, progress=not args.no_progress, depth=args.depth,
        threads=args.threads, min_clearance_m=args.min_clearance,
        domains=("synthetic", "real", "real_alt") if args.real_alt else ("synthetic", "real"),
    )
    for flight, n in done.items():
        print(f"{flight}: {n} image(s) rendered")
    return 0
