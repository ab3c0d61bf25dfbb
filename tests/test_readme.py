"""The README's Python examples run as written (a block after `<!-- slow -->` only with --runslow)."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[tuple[str, bool]]:
    """(code, slow) for every ```python block of the README."""
    text = README.read_text()
    return [(m.group(2), bool(m.group(1))) for m in re.finditer(r"(<!-- slow -->\n)?```python\n(.*?)```", text, re.S)]


def run_block(code: str, workdir: Path) -> None:
    cwd = os.getcwd()
    os.chdir(workdir)  # examples write data/ and runs/ relative to the current folder
    try:
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(cwd)


def test_readme_has_examples():
    assert len(python_blocks()) >= 4


@pytest.mark.parametrize("index", [pytest.param(i, marks=[pytest.mark.slow] if slow else [])
                                   for i, (_, slow) in enumerate(python_blocks())])
def test_readme_example_runs(index, tmp_path, capsys):
    code, _ = python_blocks()[index]
    run_block(code, tmp_path)
    assert capsys.readouterr().out.strip(), "every README example prints something a reader can check"


def test_first_example_values(capsys, tmp_path):
    run_block(python_blocks()[0][0], tmp_path)
    out = capsys.readouterr().out
    assert "(665, 6)" in out and "| median | 13.00 | 0.00 |" in out
