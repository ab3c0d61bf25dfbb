"""`topoloc._progress.maybe_bar`: a real tqdm bar when asked for, else nothing at all (no tqdm import, no thread)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

from topoloc._progress import NoBar, maybe_bar


def test_a_shown_bar_is_tqdms_own_and_counts():
    tqdm = __import__("tqdm.auto", fromlist=["tqdm"]).tqdm
    bar = maybe_bar(True, total=5, desc="decode", file=io.StringIO())
    try:
        assert isinstance(bar, tqdm)
        bar.update(2)
        bar.update(1)
        assert (bar.n, bar.total, bar.desc) == (3, 5, "decode")
    finally:
        bar.close()


def test_no_bar_takes_every_call_the_library_makes_and_shows_nothing(capsys):
    bar = maybe_bar(False, total=5, desc="decode")
    assert isinstance(bar, NoBar)
    bar.update(3)
    bar.set_postfix(loss="0.1")
    bar.total, bar.n = 22, 7  # side-by-side training sets the counters directly
    bar.refresh()
    bar.close()
    assert capsys.readouterr() == ("", "")


def test_no_bar_neither_imports_tqdm_nor_leaves_a_thread():
    # A disabled tqdm would start tqdm's monitor thread, which outlives it. In a fresh interpreter, so that
    # no other test has imported tqdm or started the monitor already.
    code = textwrap.dedent("""
        import sys, threading
        from topoloc._progress import maybe_bar
        bar = maybe_bar(False, total=3)
        bar.update(3); bar.close()
        print("tqdm" in sys.modules, sorted(t.name for t in threading.enumerate() if t.name != "MainThread"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False []", out
