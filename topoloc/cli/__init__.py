"""The ``topoloc`` command line (the console script ``topoloc = topoloc.cli:main``), on the top floor.

One module per subcommand (``poses``, ``render``, ``train``, ``evaluate``, ``saliency``, ``demo``,
``localise``, ``export``), each parsing its flags and making one call into the library; `app` builds
the parser and runs it. The subcommands import the library at the top of their modules: importing
`topoloc.cli` imports the `topoloc` package (torch, the engine) in any case.
"""

from topoloc.cli.app import SUBCOMMANDS, build_parser, main

__all__ = ["SUBCOMMANDS", "build_parser", "main"]
