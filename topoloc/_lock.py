"""One process at a time in an output folder: an advisory lock (``flock``) on the folder itself.

A run started again while the first one still works in the same folder (in another terminal, under
``nohup``, after an ssh session dropped) resumed the first one's half-written state, and the two
interleaved their epochs in ``log.csv``. The trainer, `topoloc.experiments.study.run_study` and
`topoloc.experiments.demo.run_demo` hold this lock on their output folder for as long as they work.

The lock is on the folder's own file descriptor, so it leaves no file behind, and the kernel drops it when
the process ends however it ends (a kill -9 included): a killed run never blocks the next one. Where the
platform or the file system has no ``flock`` (Windows, some network file systems) nothing is locked.
"""

from __future__ import annotations

import errno
import os
from os import PathLike
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderLock"]

#: What ``flock`` says when another open file holds the lock.
_HELD = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES}


class FolderLock:
    """An exclusive lock on ``folder`` (made if missing) while the ``with`` block runs, or from `acquire` to
    `release`.

    Args:
        folder: the output folder.
        what: the folder's name in the error (``"TrainConfig.out_dir"``, ``"the demo folder"``).

    Raises:
        BlockingIOError: (from `acquire`) another process, or another run in this process, holds it.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with FolderLock(folder, "out"):
        ...     FolderLock(folder, "out").acquire()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        BlockingIOError: out ...: another process is working in this folder ...
    """

    def __init__(self, folder: str | PathLike, what: str) -> None:
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None

    def acquire(self, create: bool = True) -> "FolderLock":
        """Take the lock (again: nothing). ``create=False``: only if the folder exists (a folder that does not
        exist yet holds no work to guard; call again once it is made)."""
        if fcntl is None or self._fd is not None:
            return self
        if not create and not self.folder.is_dir():
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in _HELD:
                raise BlockingIOError(
                    f"{self.what} {str(self.folder)!r}: another process is working in this folder (a run "
                    "started earlier and still going, perhaps in another terminal or under nohup); wait for it to "
                    "end or stop it, then run the same command again") from None
            return self  # no flock on this file system: work unlocked, as before
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the lock

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
