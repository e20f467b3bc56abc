"""``rsfm schema [-o FILE] [--force]``: print the JSON schema of recipes (for editor completion).

With ``-o`` the schema is written atomically; an existing file is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm schema``."""
    parser.add_argument("-o", "--out", help="write to this file instead of stdout")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")


def run(args: argparse.Namespace) -> int:
    """Write the schema to ``--out`` (never over a file the user has, unless ``--force``)."""
    from rsfm.errors import ConfigError
    from rsfm.recipe import schema_json

    out = Path(args.out) if args.out else None
    if out is not None:  # before anything is computed
        if out.is_dir():
            raise ConfigError(f"-o '{out}' is a folder; give a file name such as "
                              f"'{out / 'rsfm-recipe.schema.json'}'.")
        if out.exists() and not args.force:
            raise ConfigError(f"'{out}' exists; pass --force to overwrite it, or choose "
                              "another -o.")
    text = schema_json() + "\n"
    if out is not None:
        from rsfm.io import atomic_write_text

        atomic_write_text(out, text)
    else:
        sys.stdout.write(text)
    return 0
