"""``python -m topoloc``: the same as the ``topoloc`` console script (and ``python -m topoloc.cli``)."""

import sys

from topoloc.cli.app import main

if __name__ == "__main__":  # imported (pytest's doctest collection), it does nothing
    sys.exit(main())
