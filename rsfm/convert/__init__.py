"""Converters from other tools' training configs into rsfm recipes.

>>> from rsfm.convert import convert_terratorch
>>> result = convert_terratorch("burn_scars.yaml")
>>> result.recipe, result.notes, result.unmapped

Each converter returns a :class:`ConversionResult`: a recipe mapping that
:func:`rsfm.recipe.validate_recipe` accepts, notes on every approximation, and the dotted keys of
the source config that have no rsfm equivalent (never silently dropped).
"""

from __future__ import annotations

from rsfm.convert.terratorch import ConversionResult, convert_terratorch

__all__ = ["ConversionResult", "convert_terratorch"]
