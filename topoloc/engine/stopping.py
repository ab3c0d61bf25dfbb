"""Stopping a training run at a step's end on SIGTERM or Ctrl-C, with a checkpoint there.

A batch scheduler (SLURM, a cloud instance's shutdown) sends SIGTERM some seconds before it kills a job; a user
stops a run with Ctrl-C. Either used to end the process where it stood, and the run resumed from its last
checkpoint: by default the last epoch's end, up to an epoch of work lost. `StopOnSignal` turns the first signal
into a request: the run finishes the step it is in, writes ``last.pt`` there (a mid-epoch checkpoint, resumed to
the same weights as one written by ``checkpoint_every_steps``) and raises `TrainingStopped`. A second signal
stops it at once, as before.

It is installed only where a signal handler can run and the run alone decides when to stop: the main thread of a
process that is not a `multiprocessing` child (the side-by-side runs' processes are stopped by their parent) and
not one of several DDP ranks (each would stop at another step); elsewhere the signals act as they always did.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["StopOnSignal", "TrainingStopped"]

log = logging.getLogger("topoloc.engine")

#: The signals that ask a run to stop at its step's end.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(KeyboardInterrupt):
    """A run stopped on a signal after writing its checkpoint; a `KeyboardInterrupt`, as a Ctrl-C is."""


class StopOnSignal:
    """A context in which the first SIGINT or SIGTERM sets `requested` (the signal's name) instead of stopping
    the process; a second one raises `KeyboardInterrupt` at once. The previous handlers come back on exit.

    Args:
        enabled: install the handlers (see the module's docstring for where `Trainer` does); False: a context
            that never requests a stop.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = (enabled and threading.current_thread() is threading.main_thread()
                        and multiprocessing.parent_process() is None)
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignal":
        if self.enabled:
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:  # asked twice: now
            raise KeyboardInterrupt(f"{name} received twice: stopped at once")
        self.requested = name
        log.warning("%s received: the run stops at the end of this step and writes last.pt there (send it again to "
                    "stop at once)", name)
