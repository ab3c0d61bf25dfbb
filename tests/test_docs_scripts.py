"""The scripts under docs/ that draw the README's figures: they run, and refuse bad arguments in one line.

The refusals run each script in this process (`runpy`, as ``python script.py``): a subprocess per case spent
about 3.5 s importing torch, 40 s of the suite. The drawing itself runs as a user runs it, in a subprocess.
"""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DOCS / script), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def _refused(script: str, argv: list[str], cwd: Path, monkeypatch, capsys) -> str:
    """The last line of what ``python script argv`` in ``cwd`` prints on its way out with exit code 2."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [str(DOCS / script), *argv])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first
    with pytest.raises(SystemExit) as exc:  # any other exception is the traceback the test refuses
        runpy.run_path(str(DOCS / script), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2, err[-2000:]
    return err.strip().splitlines()[-1]


def test_gallery_draws_every_op_on_a_folder_of_images(tmp_path):
    images = tmp_path / "renders"
    images.mkdir()
    for i in range(2):
        Image.new("RGB", (40, 30), (40 * i, 120, 60)).save(images / f"{i}.png")
    run = _run("gallery_augment.py", "--images", str(images), "--rows", "2", "--size", "32", "--out",
               str(tmp_path / "g.png"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "wrote" in run.stdout and Image.open(tmp_path / "g.png").size[0] > 0


@pytest.mark.parametrize("args, expected", [
    (("--rows", "0"), "--rows: expected a whole number >= 1, got 0"),  # was a RuntimeError from torch.stack
    (("--size", "4"), "--size: expected a tile size of 16 px or more, got 4"),
    (("--images", "empty"), "--images 'empty': no .png/.jpg images found"),  # was a FileNotFoundError traceback
    (("--bank", "empty"), "--bank 'empty': no .png/.jpg images found"),
    (("--out", "."), "--out '.': a folder, expected a .png file"),
    (("--out", "a-file/g.png"), "--out 'a-file/g.png': 'a-file' is a file, not a folder"),  # was said after the drawing
    (("--out", "/proc/g.png"), "--out '/proc/g.png': cannot write in '/proc'"),
])
def test_gallery_refuses_bad_arguments_in_one_line(tmp_path, args, expected, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("")
    out = () if "--out" in args else ("--out", str(tmp_path / "g.png"))  # never the repository's figure
    last = _refused("gallery_augment.py", [*args, *out], tmp_path, monkeypatch, capsys)
    assert last.startswith(f"gallery_augment.py: error: {expected}"), last


@pytest.mark.parametrize("args, expected", [
    (("--size", "abc"), "--size: expected 'WxH' text such as '360x240' or (width, height), two ints of 16..4096 px, "
                        "got 'abc'"),
    (("--out", "/proc/x.png"), "--out '/proc/x.png': cannot write in '/proc'"),
    (("--out", "."), "--out '.': a folder, expected a .png file"),
    # was a traceback after the renders
    (("--out", "a-file/c.png"), "--out 'a-file/c.png': 'a-file' is a file, not a folder"),
])
def test_contact_sheet_refuses_bad_arguments_in_one_line(tmp_path, args, expected, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    out = () if "--out" in args else ("--out", str(tmp_path / "c.png"))  # never the repository's figure
    # each was a traceback, /proc after the renders
    last = _refused("make_contact_sheet.py", [*args, *out], tmp_path, monkeypatch, capsys)
    assert last.startswith(f"make_contact_sheet.py: error: {expected}"), last
