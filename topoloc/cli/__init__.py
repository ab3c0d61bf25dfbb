"""The ``topoloc`` command line (the console script ``topoloc = topoloc.cli:main``), on the top floor.

One module per subcommand (``poses``, ``render``, ``train``, ``evaluate``, ``saliency``, ``demo``,
``localise``, ``export``), each parsing its flags and making one call into the library; `app` builds
the parser and runs it. The subcommands import the library inside the functions that run them, and
`import topoloc` loads its names when first used, so that ``topoloc --help``, each subcommand's
``--help`` and a refused argument answer without loading torch, timm or matplotlib (about 10 s on a
2-core CPU).
"""

from topoloc.cli.app import SUBCOMMANDS, build_parser, main

__all__ = ["SUBCOMMANDS", "build_parser", "main"]
