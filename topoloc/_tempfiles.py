"""Temporary files of atomic writes (``<tmp>`` then ``os.replace``): their names carry the writer's
process id, so that the next run can remove those a killed process left behind."""

from __future__ import annotations

import os
import re
from os import PathLike
from pathlib import Path

__all__ = ["pid_alive", "remove_stale"]


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (this process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


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
