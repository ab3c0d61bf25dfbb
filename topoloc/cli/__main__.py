"""``python -m topoloc.cli``: the same as the ``topoloc`` console script."""

import sys

from topoloc.cli.app import main

sys.exit(main())
