"""``rsfm.modelcheck.backbone_module_names`` (what ``rsfm check`` matches LoRA targets and
unfreeze specs against, without torch) lists exactly the modules the builders make."""

from __future__ import annotations

import pytest

import rsfm
from rsfm.cards import all_cards, get_card
from rsfm.modelcheck import backbone_module_names, lora_target_problem, unfreeze_spec_problem

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def _variants(card):
    if card.family == "dofa":
        return [TINY]
    if card.family == "prithvi":
        return [TINY, {**TINY, "coords_encoding": ["time", "location"]}]
    return [{}, {"stem": True}]


@pytest.mark.parametrize("name", sorted(all_cards()))
def test_names_match_the_built_backbone(name):
    card = get_card(name)
    for kw in _variants(card):
        built = rsfm.create_backbone(name, pretrained=False, **kw)
        real = sorted(n for n, _ in built.named_modules() if n)
        assert sorted(backbone_module_names(card, {**card.arch, **kw})) == real, kw


def test_matchers():
    names = backbone_module_names(get_card("dofa_base"), {**get_card("dofa_base").arch, **TINY})
    assert lora_target_problem(names, ["attn.qkv"]) is None
    assert "attn.qkv" in lora_target_problem(names, ["attn.qkvv"])
    for spec in ("backbone", "blocks.1", "backbone.blocks.0-1", "last_blocks:1", "head", "all"):
        assert unfreeze_spec_problem(spec, names) is None, spec
    assert "backbone" in unfreeze_spec_problem("bakbone", names)
    assert unfreeze_spec_problem("blocks.0-5", names) is not None
