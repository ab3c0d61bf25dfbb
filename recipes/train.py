#!/usr/bin/env python
"""``topoloc train`` runnable without installing: the same flags, the same code (`topoloc.cli.train`).

    python recipes/train.py --config recipes/synthetic_augmented.yaml \
        --override train.epochs=5 train.augment_ramp_epochs=5
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topoloc.cli import main  # noqa: E402 - after the path line

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
