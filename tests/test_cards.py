"""Card consistency (every shipped card) and card loading errors."""

from pathlib import Path

import pytest
import torch

import rsfm
from rsfm.cards import load_card
from rsfm.errors import CardError
from rsfm.registry import count_parameters


@pytest.mark.parametrize("name", rsfm.list_backbones())
def test_card_is_consistent_with_its_model(name):
    card = rsfm.backbone_card(name)
    assert card.source.endswith(f"{name}.yaml")
    assert card.weights is not None and card.weights.repo_id.count("/") == 1
    assert card.license and card.citation and card.paper
    assert len(card.normalization.mean) == len(card.bands) == len(card.normalization.std)
    assert all(s > 0 for s in card.normalization.std)
    assert all(b.wavelength_um > 0 for b in card.bands)
    with torch.device("meta"):
        model = rsfm.create_backbone(name)
    modules = dict(model.named_modules())
    if card.state_dict.first_conv:
        conv = modules[card.state_dict.first_conv]
        assert conv.weight.shape[1] == len(card.bands)
    for target in card.lora_targets:
        assert any(n.endswith(target) for n in modules), f"LoRA target {target} not in {name}"
    # `rsfm backbones` prints the stored count without building the model
    count = sum(p.numel() for p in model.parameters())
    assert card.num_params == count == count_parameters(name), (
        f"set num_params: {count} in adapters/{name}.yaml")


def test_family_facts_agree_with_the_builders():
    """rsfm.cards states the family facts without torch; the models the builders make agree."""
    import torch

    from rsfm import cards
    from rsfm.models import backbones
    from rsfm.models.backbones.vit import ViTBackbone

    assert set(backbones.FAMILIES) == set(cards.FAMILIES) == set(cards.EXTRA_ARGS)
    for name in ("resnet18", "prithvi_eo_v1_100m", "dofa_base"):
        family = rsfm.backbone_card(name).family
        with torch.device("meta"):
            model = rsfm.create_backbone(name)
        assert isinstance(model, ViTBackbone) == (family in cards.VIT_FAMILIES), name
        if family in cards.MULTI_FRAME:
            with torch.device("meta"):
                rsfm.create_backbone(name, num_frames=3)
        else:
            with pytest.raises(rsfm.errors.ConfigError, match="num_frames"):
                rsfm.create_backbone(name, num_frames=3)


def test_bad_card_names_file_and_key(tmp_path):
    bad = tmp_path / "broken.yaml"
    text = Path(rsfm.backbone_card("resnet18").source).read_text()
    bad.write_text(text.replace("name: resnet18", "name: broken").replace("license:", "licence:"))
    with pytest.raises(CardError, match=r"(?s)broken.yaml.*licence: unknown key.*Did you mean 'license'"):
        load_card(bad)
    stem = tmp_path / "other.yaml"
    stem.write_text(text)
    with pytest.raises(CardError, match="file name must be the card name"):
        load_card(stem)
    rev = tmp_path / "resnet18.yaml"
    rev.write_text(text.replace("revision: null", "revision: main"))
    with pytest.raises(CardError, match="40-hex"):
        load_card(rev)
