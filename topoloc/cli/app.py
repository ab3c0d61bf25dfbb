"""The ``topoloc`` command line: ``topoloc <subcommand> ...``: the parser and the entry point.

Each subcommand is one module of `topoloc.cli` with two small functions: ``add(subparsers)`` declares
its flags (help on every flag) and ``_run(args)`` makes one call into the library. To add a
subcommand, write its module and list its ``add`` in :data:`SUBCOMMANDS`. Where a library argument
has another name than its flag, ``add`` sets ``flag_names`` (library name -> flag) as a parser
default, and an error that leads with the library's name is printed with the flag's.
"""

from __future__ import annotations

import argparse
import errno
import functools
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence

from topoloc._messages import renamed
from topoloc._version import __version__
from topoloc.cli import demo, evaluate, export, localise, poses, render, saliency, train

__all__ = ["SUBCOMMANDS", "build_parser", "main"]


#: The subcommands, in the order ``topoloc --help`` lists them.
SUBCOMMANDS = [poses.add, render.add, train.add, evaluate.add, saliency.add, demo.add, localise.add, export.add]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="topoloc", description="Drone localisation from a single image (TOPO).")
    parser.add_argument("--version", action="version", version=f"topoloc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    return parser


#: What the library raises for bad input, files it cannot read or write, a NaN stop and memory run out: the CLI
#: prints these as one line ``topoloc <command>: error: ...`` and exits with status 2.
_USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, MemoryError)


def main(argv=None) -> int:
    """Entry point of the ``topoloc`` console script; returns the exit status.

    Bad arguments, unreadable or unwritable files, refused runs and a NaN stop end with one line
    ``topoloc <command>: error: <message>`` on stderr and exit status 2 (argparse's own status
    for bad arguments); a Ctrl-C with ``topoloc <command>: interrupted`` (and how to go on) and
    status 130; anything else is a bug and keeps its traceback. Warnings during a command
    are printed as one line each, ``warning: <message>``.
    """
    parser = build_parser()
    args = parser.parse_args(_negative_lists_joined(_home_expanded(sys.argv[1:] if argv is None else argv)))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_one_line_warning, names=getattr(args, "flag_names", {}))
            return int(args.func(args) or 0)
    except BaseException as err:  # noqa: BLE001 - a Ctrl-C may hide behind another error: see _interrupted
        if _interrupted(err):  # one line saying how to go on, status 130 (128 + SIGINT) as a shell's
            _close_progress_bars()
            go_on = _GO_ON[args.command](args) if args.command in _GO_ON else ""
            parser.exit(130, f"topoloc {_command(args)}: interrupted{go_on}\n")
        full = _no_space(err)
        if full is not None:  # torch's zip writer says "unexpected pos" over the OSError of a full disk
            err = full
        elif not isinstance(err, _USER_ERRORS):
            raise  # a bug: its traceback
        message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        if full is not None:
            where = f" writing {full.filename!r}" if full.filename else ""
            message = (f"no space left on device{where}; free some space and run the same command again (a "
                       "training goes on from its last checkpoint)")
        if isinstance(err, MemoryError):  # numpy's or torch's words: say what ran out, and what to try
            message = f"out of memory ({message}); ask for less at once (fewer images, a smaller batch or size)"
        message = renamed(message, getattr(args, "flag_names", {}))  # "size: ..." from the library is --size here
        parser.exit(2, f"topoloc {_command(args)}: error: {message}\n")  # a clear message, no traceback


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    """``err``, then the error it was raised from or while handling (its cause, else its context), and so on."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _no_space(err: BaseException) -> OSError | None:
    """The "no space left on device" error in ``err``'s chain, if any."""
    return next((e for e in _chain(err) if isinstance(e, OSError) and e.errno == errno.ENOSPC), None)


def _command(args: argparse.Namespace) -> str:
    """The command as argparse names it in its own errors: ``poses corridor``, ``train``."""
    kind = getattr(args, "kind", None)
    return f"{args.command} {kind}" if kind else args.command


#: What the subcommands that resume do when run again after a Ctrl-C.
_GO_ON = {
    "train": lambda args: "; the same command " + ("" if args.resume else "with --resume ")
                          + "goes on from the last checkpoint",
    "demo": lambda args: "; the same command goes on where it stopped",
    "render": lambda args: "; the same command renders the images still missing",
}


def _close_progress_bars() -> None:
    """Close the progress bars an interrupt left open, so that the message has a line of its own (an open bar
    draws itself again when it is collected, below the message)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _interrupted(err: BaseException | None) -> bool:
    """Whether ``err`` is a Ctrl-C, or an error raised while one was handled: torch.save's zip writer says
    ``RuntimeError: [enforce fail at inline_container.cc...]`` when interrupted mid-write."""
    return any(isinstance(e, KeyboardInterrupt) for e in _chain(err))


def _home_expanded(argv: Sequence[str]) -> list[str]:
    """The arguments with a leading ``~`` expanded as a shell would, also where the shell does not: in
    ``--out=~/runs`` (which used to make a folder named ``~`` here)."""
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if arg.startswith("~"):
            arg = os.path.expanduser(arg)
        elif arg.startswith("--") and eq and value.startswith("~"):
            arg = f"{flag}={os.path.expanduser(value)}"
        out.append(arg)
    return out


#: A comma-separated list that starts with a minus sign, e.g. ``-1,2,3`` or ``-0.5,1e-3``.
_NEGATIVE_LIST = re.compile(r"-[0-9.][0-9.eE+-]*(,[0-9.eE+-]*)+")


def _negative_lists_joined(argv: Sequence[str]) -> list[str]:
    """The arguments with ``--flag -1,2,3`` written as ``--flag=-1,2,3``: argparse takes a value that starts
    with a minus sign for a flag unless it is one plain number, and would say "expected one argument"
    instead of the flag's own message about the list."""
    out: list[str] = []
    for arg in argv:
        if out and _NEGATIVE_LIST.fullmatch(arg) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _one_line_warning(message, category, filename, lineno, file=None, line=None, names=None) -> None:
    """A warning during a command, as ``warning: <message>`` on stderr (not the source line it came from), led by
    the flag's name where it leads with the library's (``names``: the command's ``flag_names``)."""
    print(f"warning: {renamed(str(message), names or {})}", file=sys.stderr if file is None else file)
