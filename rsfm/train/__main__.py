"""``accelerate launch -m rsfm.train RECIPE [key=value ...] [--resume]``."""

from __future__ import annotations

import sys

from rsfm.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
