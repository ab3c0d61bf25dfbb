"""A killed render leaves nothing behind for good, and bad arguments fail before anything is written."""

import os
import subprocess
import sys

import pytest

from topoloc.cli import main
from topoloc.procedural import render_flights

SIZE = (32, 16)
FLIGHTS = "comballaz-LHS:1"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_a_killed_render_are_removed(tmp_path):
    render_flights(tmp_path, FLIGHTS, size=SIZE, progress=False)
    folder = tmp_path / "comballaz-LHS"
    stale = [folder / f".tmp-{_dead_pid()}-ab12_cd3.png", folder / ".tmp-k2j4h5g6.npy",  # older names carry no pid
             tmp_path / f".tmp-{_dead_pid()}-x1y2z3.json"]
    alive = folder / f".tmp-{os.getppid()}-q9w8e7.png"  # a render still running in another process
    for path in [*stale, alive]:
        path.write_bytes(b"partial")
    done = render_flights(tmp_path, FLIGHTS, size=SIZE, progress=False)
    assert done == {"comballaz-LHS": 0}
    assert not any(p.exists() for p in stale) and alive.exists()


def test_negative_threads_fail_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "r"
    with pytest.raises(ValueError, match="threads"):
        render_flights(out, FLIGHTS, size=SIZE, threads=-2, progress=False)
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["render", "--out", str(out), "--flights", FLIGHTS, "--size", "32x16", "--threads", "-2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("topoloc render: error: --threads: ") and err.count("\n") == 1
    assert not out.exists()
    # The folder's size is not locked by a failed call: another size renders there.
    assert render_flights(out, FLIGHTS, size=(48, 32), progress=False) == {"comballaz-LHS": 1}
