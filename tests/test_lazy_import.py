"""`import topoloc` and the CLI's parser load no heavy library; the facade's names still resolve.

`topoloc --help`, a subcommand's `--help` and a refused argument used to import torch, timm and
matplotlib first (about 10 s on a 2-core CPU). Each check runs in a new interpreter, since this one
has imported everything already.
"""

import json
import subprocess
import sys

import pytest

import topoloc
from topoloc.cli.app import build_parser

HEAVY = ("torch", "torchvision", "timm", "kornia", "matplotlib", "pyproj", "PIL", "scipy")


def _modules_after(code: str) -> list[str]:
    """Top-level packages imported in a new interpreter after running ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _subcommands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_import_topoloc_loads_no_heavy_package():
    loaded = _modules_after("import topoloc")
    assert not [m for m in HEAVY if m in loaded], loaded


def test_help_of_every_subcommand_loads_no_heavy_package():
    # main() exits through argparse after printing the help; the modules are listed on exit
    commands = [[], *([name] for name in _subcommands()), ["poses", "corridor"], ["poses", "lhs"]]
    code = ("import atexit, json, sys, contextlib, io\n"
            "atexit.register(lambda: sys.__stdout__.write('\\n' + json.dumps(sorted({m.split('.')[0] for m in "
            "sys.modules})) + '\\n'))\n"
            "from topoloc.cli import main\n"
            f"for argv in {commands!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n"
            "            main(argv + ['--help'])\n"
            "        except SystemExit as exc:\n"
            "            assert exc.code == 0, (argv, exc.code)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert not [m for m in HEAVY if m in loaded], loaded


def test_a_refused_argument_loads_no_heavy_package():
    code = ("import sys\nfrom topoloc.cli import main\n"
            "try:\n    main(['poses', 'corridor', '--flight', 'x', '--count', '0', '--out', 'p.npy'])\n"
            "except SystemExit as exc:\n    assert exc.code == 2, exc.code\n")
    assert not [m for m in HEAVY if m in _modules_after(code)]


def test_every_public_name_resolves_to_its_modules_object():
    from topoloc import engine, models, saliency

    for name in topoloc.__all__:
        assert getattr(topoloc, name) is not None, name
    assert set(topoloc.__all__) - {"__version__"} <= set(dir(topoloc))
    assert topoloc.AtLoc is models.AtLoc and topoloc.train is engine.train
    assert topoloc.saliency is saliency and callable(topoloc.saliency.gradient_saliency)
    with pytest.raises(AttributeError):
        topoloc.no_such_name


def test_geoid_offset_help_gives_the_librarys_default():
    from topoloc.cli._common import GEOID_OFFSET_HELP_M
    from topoloc.data.exif import DEFAULT_GEOID_OFFSET_M

    assert GEOID_OFFSET_HELP_M == DEFAULT_GEOID_OFFSET_M
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    help_text = next(a.help for a in sub.choices["localise"]._actions if "--geoid-offset" in a.option_strings)
    assert f"default: {DEFAULT_GEOID_OFFSET_M}," in help_text
