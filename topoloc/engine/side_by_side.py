"""Several training runs side by side on one CPU, each in its own process with its share of the cores.

On a small CPU the convolutions of a small-image model scale poorly from one thread to two: the
weight gradients of ResNet18's last stage (2 x 3 feature maps at 64 x 96 px) run *slower* on two
threads than on one in oneDNN's float32 path. Two runs on one thread each then make 1.3x the steps
per second of the same runs one after the other on both threads (the demo's two trainings on a 2-core
Zen 3, measured in the same half hour; BENCHMARKS.md).

Each run is `train` in a spawned process (no inherited OpenMP state) with the given torch threads.
Its steps, the messages of its callbacks and its warnings come back through a queue: one progress
bar counts the steps of all the runs, and a warning that every run gives is shown once. The first
run that fails stops the others (each one resumes from its last checkpoint, as after any
interruption) and its error is raised here, with the failed process's traceback as a note.

Processes are spawned: a script that calls this at import time must do so under
``if __name__ == "__main__":`` (Python's multiprocessing rule).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue as queue_module
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from topoloc._device import resolve_device
from topoloc._progress import maybe_bar
from topoloc._tempfiles import remove_stale
from topoloc.engine.config import TrainConfig

__all__ = ["train_side_by_side"]

#: A callback factory: ``factory(label, write)`` -> the run's callbacks (`train`'s ``callbacks``), made in
#: the run's process; ``write(text)`` shows a line above the progress bar. Picklable (a module-level function).
CallbackFactory = Callable[[str, Callable[[str], None]], list]


class _Relay:
    """What a run's process sends back: steps, callback messages, warnings, its result or its error."""

    def __init__(self, queue: Any, label: str, parent: int) -> None:
        self.queue, self.label, self.parent = queue, label, parent

    def step(self, state: dict[str, Any]) -> None:
        if os.getppid() != self.parent:  # the parent is gone (killed): stop rather than train unwatched
            raise SystemExit(f"run {self.label!r}: the process that started it has ended")
        trainer = state["trainer"]
        self.queue.put(("step", self.label, state["global_step"], trainer.config.epochs * trainer.steps_per_epoch))

    def write(self, text: str) -> None:
        self.queue.put(("write", self.label, text))


class _RelayHandler(logging.Handler):
    def __init__(self, relay: _Relay) -> None:
        super().__init__(logging.WARNING)
        self.relay = relay

    def emit(self, record: logging.LogRecord) -> None:
        self.relay.queue.put(("log", self.relay.label, record.name, record.levelno, record.getMessage()))


def _run(label: str, config: TrainConfig, data_file: str, threads: int, queue: Any, parent: int,
         callback_factory: CallbackFactory | None) -> None:
    """A run's process: `train` with ``threads`` torch threads on the data pickled in ``data_file``, its
    news relayed through ``queue``."""
    from topoloc.engine.train import train  # noqa: PLC0415 - the spawned process imports what it runs

    relay = _Relay(queue, label, parent)
    root = logging.getLogger()
    root.addHandler(_RelayHandler(relay))
    root.setLevel(logging.WARNING)
    try:
        with open(data_file, "rb") as f:
            train_set, normals = pickle.load(f)
        torch.set_num_threads(threads)
        callbacks = [relay.step] + (list(callback_factory(label, relay.write)) if callback_factory else [])
        result = train(config, train_set, callbacks=callbacks, normals=normals if config.relight > 0 else None)
        queue.put(("done", label, str(result.final_checkpoint)))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, KeyboardInterrupt too
        note = f"in the process of run {label!r}:\n{''.join(traceback.format_exception(err))}"
        try:
            payload = pickle.dumps(err)
        except Exception:  # noqa: BLE001 - an unpicklable error comes back as its text
            payload = pickle.dumps(RuntimeError(f"{type(err).__name__}: {err}"))
        queue.put(("error", label, payload, note))


def _named(payload: bytes, label: str, note: str) -> BaseException:
    """A run's error, back in this process: its message begins with the run's label (the CLI and the recipes
    print the message alone), ``run`` is the label, and the child's traceback is a note. An error that pickles
    but does not unpickle (a constructor with an argument of its own) comes back as a `RuntimeError` of the
    traceback's last line."""
    try:
        err = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - whatever the error's constructor raises
        err = RuntimeError(note.strip().splitlines()[-1])
    if err.args and isinstance(err.args[0], str) and not err.args[0].startswith(f"run {label!r}: "):
        err.args = (f"run {label!r}: {err.args[0]}", *err.args[1:])
    err.run = label  # type: ignore[attr-defined]
    err.add_note(note)
    return err


#: The data files of `train_side_by_side` in the temporary folder; ``pid``: the process that wrote it
#: (absent from the names of versions before 2026-12-01, whose files are all removed).
_DATA_FILE = r"topoloc-side-by-side-(?:(?P<pid>\d+)-)?[^-]+\.pkl"


def _write_data_file(train_set: Any, normals: Any) -> str:
    """Pickle the runs' data to a new temporary file and return its path, after removing the files of
    earlier calls whose process is dead (a parent killed outright cannot remove its own)."""
    remove_stale(tempfile.gettempdir(), _DATA_FILE, glob="topoloc-side-by-side-*.pkl")
    with tempfile.NamedTemporaryFile("wb", prefix=f"topoloc-side-by-side-{os.getpid()}-", suffix=".pkl",
                                     delete=False) as f:
        pickle.dump((train_set, normals), f, protocol=pickle.HIGHEST_PROTOCOL)
    return f.name


def _check_alive(procs: dict[str, Any], done: dict[str, Path], drained: bool) -> None:
    """Raise for a run whose process has ended without a word: killed (a non-zero exit code) or, once the
    queue is drained, ended cleanly without sending its result (a run's own errors exit with 0, sent)."""
    for label, p in procs.items():
        if label in done or p.is_alive() or (p.exitcode == 0 and not drained):
            continue
        cause = ("killed, or out of memory?" if p.exitcode != 1 else "its error is above; from a script that calls "
                 "train_side_by_side at its top level, put the call under `if __name__ == \"__main__\":`: "
                 "each run's process imports the script again")
        raise RuntimeError(f"train_side_by_side: the process of run {label!r} ended without a result (exit code "
                           f"{p.exitcode}: {cause}); run again to resume from its last checkpoint")


def _thread_shares(labels: list[str], total: int) -> dict[str, int]:
    """``total`` torch threads shared out over the runs ``labels``: the remainder to the first, at least one each."""
    n = len(labels)
    if n > total:
        logging.getLogger("topoloc.engine").warning(
            "%d runs side by side on %d torch threads: each gets one, so the runs share the cores (slower than "
            "one after the other)", n, total)
    return {label: max(1, total // n + (i < total % n)) for i, label in enumerate(labels)}


def train_side_by_side(configs: Mapping[str, TrainConfig], train_set: Any, *, normals: Any = None,
                       threads: int | None = None, progress: bool = True,
                       callback_factory: CallbackFactory | None = None, poll_s: float = 0.5) -> dict[str, Path]:
    """Train ``configs`` at the same time, each in its own process; returns each run's final checkpoint.

    Args:
        configs: label -> the run's `TrainConfig` (CPU runs; each with its own ``out_dir``). Runs that
            share a ``cache_file`` should find it built (`ImageCache.from_dataset` with its ``path``):
            otherwise each decodes the images and writes it.
        train_set: the training data of every run (as `train` takes it; pickled once to a temporary file
            that each process reads).
        normals: `train`'s ``normals``, for the runs with ``relight`` (with an `ImageCache` as ``train_set``).
        threads: torch threads per run; default: this process's torch threads shared out, the remainder to
            the first runs (7 threads, 2 runs: 4 and 3), at least 1 each (more runs than threads: a warning).
        progress: one progress bar over the steps of all the runs (the runs' own bars are off).
        callback_factory: makes each run's extra callbacks in its process (`CallbackFactory`).
        poll_s: how often the processes are checked for an exit without a word (a crash).

    Raises:
        The first error of a run (e.g. `ResumeSettingsError`), after the other runs are stopped, with
        the run's label as its ``run`` attribute and the process's traceback as a note;
        RuntimeError when a run's process ends without a result (killed, out of memory).
    """
    from tqdm.auto import tqdm  # noqa: PLC0415 - only here

    if not isinstance(configs, Mapping) or not all(isinstance(c, TrainConfig) for c in configs.values()):
        got = type(configs).__name__ if not isinstance(configs, Mapping) else (
            f"a mapping holding {sorted({type(c).__name__ for c in configs.values()})}")
        raise TypeError(f"configs: expected a mapping of run label -> TrainConfig, e.g. {{'a': cfg_a, 'b': cfg_b}} "
                        f"(the labels name the runs in errors and the progress bar), got {got}")
    if not configs:
        raise ValueError("configs: expected at least one training run, got none")
    for label, cfg in configs.items():
        if resolve_device(cfg.device).type != "cpu":
            raise ValueError(f"configs[{label!r}].device: side-by-side runs share the CPU, got {cfg.device!r}")
    dirs = [str(Path(cfg.out_dir).resolve()) for cfg in configs.values()]
    if len(set(dirs)) < len(dirs):
        raise ValueError(f"configs: each run needs its own out_dir, got {dirs}")
    if threads is None:
        shares = _thread_shares(list(configs), torch.get_num_threads())
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected a positive int, got {threads!r}")
    else:
        shares = dict.fromkeys(configs, threads)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    # The data goes to the processes through a file, not with the process: a process that dies while it
    # starts (a script without the `__main__` guard) would leave `Process.start` blocked for ever on a
    # start-up message larger than a pipe holds.
    data_file = _write_data_file(train_set, normals)
    # not daemonic: a run may start processes of its own (decoding workers)
    procs = {label: ctx.Process(target=_run, name=f"topoloc-train-{label}",
                                args=(label, cfg.replace(progress=False), data_file, shares[label], queue,
                                      os.getpid(), callback_factory))
             for label, cfg in configs.items()}
    done: dict[str, Path] = {}
    steps: dict[str, int] = {}
    totals: dict[str, int] = {}
    warned: set[tuple[str, str]] = set()
    bar = maybe_bar(progress, desc=f"training {len(configs)} runs side by side", unit="step")
    try:
        for p in procs.values():
            p.start()
        checked = time.monotonic()
        while len(done) < len(procs):
            try:
                news = queue.get(timeout=poll_s)
            except queue_module.Empty:
                news = None
            if news is None or time.monotonic() - checked > poll_s:  # the other runs' steps keep the queue busy
                checked = time.monotonic()
                _check_alive(procs, done, drained=news is None)
            if news is None:
                continue
            kind, label = news[0], news[1]
            if kind == "step":
                steps[label], totals[label] = news[2], news[3]
                bar.total = sum(totals.values())
                bar.n = sum(steps.values())
                bar.refresh()
            elif kind == "write":
                tqdm.write(news[2])  # above the bar, when there is one
            elif kind == "log":
                name, level, message = news[2:]
                if (name, message) not in warned:  # the same warning from every run: once
                    warned.add((name, message))
                    logging.getLogger(name).log(level, "%s", message)
            elif kind == "done":
                done[label] = Path(news[2])
            elif kind == "error":
                raise _named(news[2], label, news[3])
    finally:
        bar.close()
        for p in procs.values():
            if p.is_alive():
                p.terminate()
        for p in procs.values():
            if p.pid is not None:  # started
                p.join()
        queue.close()
        Path(data_file).unlink(missing_ok=True)
    return {label: done[label] for label in configs}
