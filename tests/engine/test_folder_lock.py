"""One process at a time in an output folder: a second training run, study or demo in a folder where one is
still working is refused, and a killed one (kill -9 included) blocks nothing. The holder is another process,
locking with ``flock`` as the kernel documents it, not topoloc's own code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from topoloc._lock import FolderLock
from topoloc.engine import train

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only (nothing is locked on Windows)")

#: Another process that takes the lock on a folder with flock itself and holds it until killed.
HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def held(tmp_path):
    """``held(folder)``: the folder, locked by another process until the test ends (or ``.kill()``)."""
    procs = []

    def hold(folder):
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_folder_another_process_works_in_is_refused_and_freed_when_it_is_killed(tmp_path, held):
    folder = tmp_path / "run"
    holder = held(folder)
    with pytest.raises(BlockingIOError, match=rf"^out '{folder}': another process is working in this folder"):
        FolderLock(folder, "out").acquire()
    os.kill(holder.pid, signal.SIGKILL)  # no clean-up at all: the kernel drops the lock
    holder.wait()
    with FolderLock(folder, "out"):
        pass
    assert list(folder.iterdir()) == []  # no lock file left behind


def test_the_lock_is_also_refused_within_one_process_and_free_again_after_release(tmp_path):
    first = FolderLock(tmp_path / "new" / "run", "out").acquire()  # made if missing
    with pytest.raises(BlockingIOError, match="another process is working in this folder"):
        FolderLock(tmp_path / "new" / "run", "out").acquire()
    first.release()
    first.release()  # twice: nothing
    with FolderLock(tmp_path / "new" / "run", "out"):
        pass


def test_a_second_training_run_in_a_working_runs_folder_is_refused_before_touching_it(tiny_config, pose_images,
                                                                                     held, tmp_path):
    # Two runs in one folder (the first under nohup, say): the second resumed the first's half-written state,
    # and their epochs interleaved in log.csv ("4, 6, 5, 6")
    cfg = tiny_config(epochs=1, resume=True)
    held(tmp_path / "run")
    with pytest.raises(BlockingIOError, match=rf"^TrainConfig.out_dir '{tmp_path / 'run'}': another process is "
                                              "working in this folder .*then run the same command again$"):
        train(cfg, pose_images(n=8, size_hw=(32, 32)))
    assert list((tmp_path / "run").iterdir()) == []


def test_the_cli_says_it_in_one_line(tmp_path, held, capsys):
    from topoloc.cli import main

    held(tmp_path / "demo")
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--smoke", "--out", str(tmp_path / "demo"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2
    assert err.startswith(f"topoloc demo: error: the demo folder '{tmp_path / 'demo'}': another process is working")
    assert "\n" not in err and list((tmp_path / "demo").iterdir()) == []
