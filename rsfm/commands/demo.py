"""``rsfm demo``: train the bundled flood demo, predict a held-out chip, write a preview PNG."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm demo``."""
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="recipe overrides")
    parser.add_argument("--out", help="run directory (default runs/demo)")


def run(args: argparse.Namespace) -> int:
    """Run the demo end to end (see :mod:`rsfm.train.demo`)."""
    from rsfm.train.demo import main

    argv = [*args.overrides, *(["--out", args.out] if args.out else [])]
    return main(argv)
