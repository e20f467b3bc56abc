"""``rsfm schema``: print the JSON schema of recipes (for editor completion)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    from rsfm.recipe import schema_json

    text = schema_json() + "\n"
    if args.out:
        from rsfm.io import atomic_write_text

        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
