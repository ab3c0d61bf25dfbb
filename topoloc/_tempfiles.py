"""Temporary files of atomic writes (``<tmp>`` then ``os.replace``): their names carry the writer's
process id, so that the next run can remove those a killed process left behind."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from os import PathLike
from pathlib import Path

__all__ = ["pid_alive", "remove_stale", "write_atomically", "write_text_atomically", "OPEN_MODE", "remove_stale_writes"]


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (this process counts as alive)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # no signal 0 there: os.kill(pid, 0) sends CTRL_C_EVENT to the process group pid
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError):  # OverflowError: a number beyond a pid's C type, which no process has
        return False
    return True


# Win32 constants (winnt.h, winerror.h, minwinbase.h)
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_ERROR_ACCESS_DENIED = 5
_STILL_ACTIVE = 259  # GetExitCodeProcess's code while the process runs


def _windows_pid_alive(pid: int, kernel32=None, last_error: Callable[[], int] | None = None) -> bool:
    """`pid_alive` by the Win32 API: a process that opens and has no exit code yet. One that exists but refuses
    to be opened (another user's) is alive; ``kernel32`` and ``last_error`` stand in for ctypes' in tests."""
    import ctypes

    if not 0 < pid < 2**32:  # a DWORD
        return False
    if kernel32 is None:
        kernel32 = _kernel32()
    if last_error is None:
        last_error = ctypes.get_last_error  # type: ignore[attr-defined]  # Windows only; typeshed gates it so
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return last_error() == _ERROR_ACCESS_DENIED
    try:
        code = ctypes.c_ulong()  # a DWORD
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # opened, so it exists; its state unknown: keep its files
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _kernel32():
    """Windows' kernel32 with the signatures `_windows_pid_alive` calls (a HANDLE is pointer-sized)."""
    import ctypes
    from ctypes import wintypes

    k = ctypes.WinDLL("kernel32", use_last_error=True)
    k.OpenProcess.argtypes, k.OpenProcess.restype = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD), wintypes.HANDLE
    k.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    k.GetExitCodeProcess.restype = wintypes.BOOL
    k.CloseHandle.argtypes, k.CloseHandle.restype = (wintypes.HANDLE,), wintypes.BOOL
    return k


def remove_stale(folder: str | PathLike, pattern: str, glob: str = ".*tmp*") -> list[Path]:
    """Delete the temporary files in ``folder`` whose writer is dead.

    Args:
        folder: where to look (not recursive); a missing folder is no error.
        pattern: a regular expression matched against each file name; its group ``pid`` is the
            writer's process id. A match without a ``pid`` group value (an older name carrying
            no id) is removed too.
        glob: pre-selects candidate names.

    Returns:
        The files removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    regex = re.compile(pattern)
    for path in folder.glob(glob):
        m = regex.fullmatch(path.name)
        if m is None or not path.is_file():
            continue
        pid = m.groupdict().get("pid")
        if pid is not None and pid_alive(int(pid)):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _open_mode() -> int:
    mask = os.umask(0o022)  # read it the only way there is: set it, then put it back
    os.umask(mask)
    return 0o666 & ~mask


#: The mode `open` gives a new file in this process (0o666 less the umask, 0o644 usually), which
#: `tempfile.mkstemp`'s files (0o600) get before they replace their target.
OPEN_MODE = _open_mode()


def write_atomically(path: str | PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills ``.<name>.<pid>.tmp`` beside it, which then
    replaces ``path``. A process killed meanwhile leaves the previous file (or none), never half of one;
    `remove_stale_writes` removes its temporary file. The new data is synced to disk before the rename
    (and the rename after it), so a power cut does not leave an empty file under the name either.

    Example:
        >>> import tempfile
        >>> out = write_atomically(Path(tempfile.mkdtemp()) / "a.txt", lambda tmp: tmp.write_text("done"))
        >>> out.read_text(), sorted(p.name for p in out.parent.iterdir())
        ('done', ['a.txt'])
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        _sync(tmp)  # the data on disk before the name points at it: a power cut leaves the old file or the new
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _sync(path.parent, folder=True)  # the rename itself on disk
    return path


def _sync(path: Path, folder: bool = False) -> None:
    """``fsync`` a file's data, or a folder's entries (best effort: some file systems cannot sync a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


def write_text_atomically(path: str | PathLike, text: str, encoding: str | None = None) -> Path:
    """``Path(path).write_text(text, encoding)``, whole or not at all (`write_atomically`)."""
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def remove_stale_writes(folder: str | PathLike, name: str | None = None) -> list[Path]:
    """Delete the ``.<name>.<pid>.tmp`` files of `write_atomically` whose process is dead: of every file in
    ``folder``, or of the file ``name`` only."""
    held = ".+" if name is None else re.escape(name)
    return remove_stale(folder, rf"\.{held}\.(?P<pid>\d+)\.tmp", glob=".*.tmp")
