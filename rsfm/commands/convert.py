"""``rsfm convert terratorch CONFIG.yaml [-o recipe.yaml] [--force]``: another tool's config -> recipe.

The recipe goes to ``-o`` (written atomically; an existing file is kept unless ``--force``) or to
stdout. Notes on approximations and the keys that were not mapped go to stderr, and into the
recipe's header comments. Relative data paths are taken as relative to the config's folder and
rewritten relative to the recipe's folder (rsfm resolves them against the recipe file); on stdout
the recipe's folder is unknown, so they are written as absolute paths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SOURCES = ("terratorch",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm convert``."""
    parser.add_argument("source", choices=SOURCES, help="the tool the config comes from")
    parser.add_argument("config", help="the tool's config file (TerraTorch: a LightningCLI YAML)")
    parser.add_argument("-o", "--out", help="write the recipe here (default: stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument("--name", help="recipe name (default: the config file's stem)")


def run(args: argparse.Namespace) -> int:
    """Convert, report notes and unmapped keys on stderr, write the recipe."""
    from rsfm.errors import ConfigError

    out = Path(args.out) if args.out else None
    if out is not None:  # check before converting: never touch a file the user has
        if out.exists() and not args.force:
            raise ConfigError(f"'{out}' exists; pass --force to overwrite it, or choose another -o.")
        if out.exists() and not out.is_file():
            raise ConfigError(f"'{out}' is not a file.")
    from rsfm.convert.terratorch import convert_terratorch

    result = convert_terratorch(args.config, recipe_dir=out.parent if out else None,
                                name=args.name, absolute_paths=out is None)
    text = result.to_yaml()
    err = sys.stderr
    if result.notes:
        err.write(f"{len(result.notes)} note(s) on the conversion:\n")
        err.writelines(f"  - {n}\n" for n in result.notes)
    if result.unmapped:
        err.write(f"{len(result.unmapped)} key(s) not mapped (no rsfm equivalent):\n")
        err.writelines(f"  - {k}\n" for k in result.unmapped)
    if out is None:
        sys.stdout.write(text)
        return 0
    from rsfm.io import atomic_write_text

    atomic_write_text(out, text)
    err.write(f"wrote {out} ({result.recipe['model']['backbone']} + {result.recipe['model']['head']}"
              f"); check it with: rsfm check {out}\n")
    return 0
