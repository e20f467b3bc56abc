"""``rsfm check RECIPE [key.path=value ...] [--data]``: validate a recipe without training.

Without ``--data`` it reads only the recipe and the adapter card (no torch model is built): the
schema, the resolved bands/normalisation/classes, the model options against the backbone, the
output folder. With ``--data`` it also opens the datasets: folders pair up, bands exist in the
files, label values fit the classes on a sample, detection boxes lie inside their images.
"""

from __future__ import annotations

import argparse
import sys

from rsfm.modelcheck import check_module_names
from rsfm.preflight import preflight
from rsfm.recipe import load_recipe, recipe_to_yaml
from rsfm.spec import InputSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm check``."""
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="overrides")
    parser.add_argument("--data", action="store_true",
                        help="also open the datasets (pairing, bands, label values, boxes)")
    parser.add_argument("--quiet", action="store_true", help="do not print the resolved recipe")


def describe_spec(spec: InputSpec) -> str:
    """The resolved input facts as YAML comment lines."""
    bands = ", ".join(f"{b.name}" + (f" ({b.wavelength_um:.3g} um)" if b.wavelength_um else "")
                      for b in spec.channels)
    n = spec.normalization
    norm = n.mode if n.mode != "stats" else (
        f"stats mean {[round(m, 4) for m in n.mean or ()]} std {[round(s, 4) for s in n.std or ()]}")
    if n.value_scale != 1.0:
        norm += f", raw values x {n.value_scale:g} first"
    return (f"# input: {bands}\n# normalisation: {norm}\n"
            f"# classes: {spec.class_names} (ignore_index {spec.ignore_index})\n"
            + (f"# tile size: {spec.tile_size}\n" if spec.tile_size else ""))


def run(args: argparse.Namespace) -> int:
    """Validate; print the resolved recipe (and dataset facts with ``--data``)."""
    recipe = load_recipe(args.recipe, args.overrides)
    spec = preflight(recipe)
    check_module_names(recipe.model, recipe.lora, recipe.train.freeze)
    if not args.quiet:
        sys.stdout.write(recipe_to_yaml(recipe))
    sys.stdout.write(describe_spec(spec))
    if args.data:
        # lazy: only --data needs torch and the datasets; the recipe checks above stay light
        from rsfm.datasets import build_datasets, describe_datasets

        datasets = build_datasets(recipe, spec)
        sys.stdout.write(describe_datasets(datasets))
    sys.stderr.write(f"recipe OK: {recipe.name} ({recipe.model.task}, {recipe.model.backbone} + "
                     f"{recipe.model.head})\n")
    return 0
