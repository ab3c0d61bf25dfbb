"""The version of topoloc: one place, read by the package, the CLI's ``--version`` and the build (pyproject.toml)."""

__version__ = "0.1.0"
