"""``rsfm check RECIPE [key.path=value ...]``: validate a recipe and print it resolved."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="overrides")
    parser.add_argument("--data", action="store_true",
                        help="also open the datasets (counts, bands, normalisation)")


def run(args: argparse.Namespace) -> int:
    from rsfm.recipe import load_recipe, recipe_to_yaml

    recipe = load_recipe(args.recipe, args.overrides)
    sys.stdout.write(recipe_to_yaml(recipe))
    # the checks training runs before opening any file (bands vs statistics, card statistics)
    from rsfm.train.data import _bands, _normalization

    _normalization(recipe, _bands(recipe))
    if args.data:
        from rsfm.train.data import build_datasets

        train_ds, val_ds, meta = build_datasets(recipe)
        sys.stdout.write(f"# data: {len(train_ds)} train samples, "
                         f"{len(val_ds) if val_ds is not None else 0} validation samples\n"
                         f"# bands {meta.bands}, normalize {meta.normalize}, mean {meta.mean}, "
                         f"std {meta.std}\n")
    sys.stderr.write(f"recipe OK: {recipe.name} ({recipe.model.task}, {recipe.model.backbone} + "
                     f"{recipe.model.head})\n")
    return 0
