"""``rsfm train RECIPE [key.path=value ...] [--resume]``: train a recipe.

The same entry point runs under ``accelerate launch -m rsfm.train`` (multi-process, multi-GPU,
mixed precision from ``accelerate config``) and as a plain process.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rsfm.errors import RsfmError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file (or the name of a shipped recipe: demo)")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value",
                        help="recipe overrides, e.g. train.epochs=3 model.backbone=dofa_base")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last complete checkpoint of the output directory")
    parser.add_argument("--auto-resume", action="store_true",
                        help="resume when a checkpoint exists, else start fresh")


def run(args: argparse.Namespace) -> int:
    from rsfm.train.loop import train

    resume = True if args.resume else ("auto" if args.auto_resume else None)
    result = train(args.recipe, args.overrides, resume=resume)
    best = result["best_metric"]
    sys.stdout.write(f"[rsfm] done: best {result['metric']} = "
                     f"{'n/a' if best is None else f'{best:.4f}'} at epoch {result['best_epoch']}"
                     f"; run directory {result['run_dir']}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m rsfm.train`` / ``accelerate launch -m rsfm.train``."""
    parser = argparse.ArgumentParser(prog="rsfm.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except RsfmError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
