"""Collection rules for the whole repository (`tests/conftest.py` holds the fixtures).

`--doctest-modules` imports every module under `topoloc/` and `augment/`. The albumentations adapters need
the optional extra: without it their module is left out of collection (its tests skip themselves), so that
`pip install -e ".[dev]"` alone still runs the rest of the suite.
"""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("albumentations") else ["augment/albumentations.py"]
