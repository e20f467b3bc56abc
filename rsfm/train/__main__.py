"""``accelerate launch -m rsfm.train RECIPE [key=value ...] [--resume]``: the same command as
``rsfm train`` (arguments, logging, error messages and exit codes).

An entry point, not library code: it hands over to the CLI at the top of the layer stack (looked up
by name, so the training package itself never imports the command line).
"""

from __future__ import annotations

import importlib
import sys

if __name__ == "__main__":
    sys.exit(importlib.import_module("rsfm.cli").main(["train", *sys.argv[1:]]))
