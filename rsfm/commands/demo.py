"""``rsfm demo``: train the bundled flood demo, predict a held-out chip, write a preview PNG."""

from __future__ import annotations

import argparse
import sys

from rsfm.commands.train import show_status_lines
from rsfm.train.demo import run_demo

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm demo``."""
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="recipe overrides")
    parser.add_argument("--out", help="run directory (default runs/demo)")


def run(args: argparse.Namespace) -> int:
    """Run the demo end to end (see :mod:`rsfm.train.demo`)."""
    show_status_lines()
    res = run_demo(args.out, args.overrides)
    miou = "n/a" if res.miou is None else f"{res.miou:.3f}"
    base = "n/a" if res.majority_miou is None else f"{res.majority_miou:.3f}"
    sys.stdout.write(f"[rsfm] demo: validation mIoU {miou} (majority-class baseline {base}); "
                     f"prediction {res.prediction}, preview {res.preview}; run directory "
                     f"{res.run_dir}\n")
    return 0
