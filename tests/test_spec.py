"""resolve_input_spec as the model side uses it: one band list per recipe, stated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsfm.cards import get_card
from rsfm.config import ModelConfig
from rsfm.errors import ConfigError
from rsfm.recipe import load_recipe
from rsfm.schema import DataConfig, DataSource
from rsfm.spec import resolve_input_spec

RECIPE = Path(__file__).parents[1] / "recipes" / "dofa_s2_band_subset.yaml"


def model(**kw) -> ModelConfig:
    return ModelConfig(task="segmentation", backbone="dofa_base", head="fcn", num_classes=2, **kw)


def data(**kw) -> DataConfig:
    return DataConfig(train=DataSource(images="x"), **kw)


def test_model_and_data_bands_that_disagree_name_both_keys():
    with pytest.raises(ConfigError, match=r"model.bands \['B2', 'B3', 'B4', 'B8', 'B11'\] and "
                                          r"data.bands \['B2', 'B3', 'B4', 'B8'\] disagree"):
        resolve_input_spec(model(bands=("B2", "B3", "B4", "B8", "B11")), get_card("dofa_base"),
                           data(bands=("B2", "B3", "B4", "B8")))


def test_the_recipe_of_the_issue_fails_at_check_time():
    """`rsfm check recipes/dofa_s2_band_subset.yaml "data.bands=[B2, B3, B4, B8]"` said "recipe OK"."""
    recipe = load_recipe(RECIPE, ["data.bands=[B2, B3, B4, B8]"])
    with pytest.raises(ConfigError, match=r"model.bands .* and data.bands \['B2', 'B3', 'B4', 'B8'\] disagree"):
        resolve_input_spec(recipe.model, get_card(recipe.model.backbone), recipe.data)


def test_bands_stated_once_either_key_or_twice_alike():
    card = get_card("dofa_base")
    only_data = resolve_input_spec(model(), card, data(bands=("B2", "B3", "B4", "B8")))
    only_model = resolve_input_spec(model(bands=("B2", "B3", "B4", "B8")), card, data())
    both = resolve_input_spec(model(bands=("B02", "B03", "B04", "B08")), card,
                              data(bands=("B2", "B3", "B4", "B8")))  # aliases of the same bands
    assert only_data.band_names == only_model.band_names == both.band_names == ["B2", "B3", "B4", "B8"]
    assert resolve_input_spec(model(), card).band_names == card.band_names  # nothing stated: the card's
