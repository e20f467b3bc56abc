"""Every shipped recipe builds its model (tiny ViT sizes, no download), with LoRA and freezing as
the recipe says, and takes one optimizer step; the data side is checked by the demo tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
TINY_VIT = "model.backbone_kwargs={depth: 2, embed_dim: 64, num_heads: 2}"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_model_trains_one_step(path):
    from rsfm.cards import get_card
    from rsfm.factory import check_model_config, create_model
    from rsfm.lora import apply_lora, count_parameters
    from rsfm.recipe import load_recipe
    from rsfm.spec import resolve_input_spec
    from rsfm.train.losses import build_loss
    from rsfm.train.optim import build_optimizer
    from rsfm.train.unfreeze import UnfreezeScheduler

    recipe = load_recipe(path)
    overrides = ["model.pretrained=false", "model.neck.out_channels=32"]
    if get_card(recipe.model.backbone).family != "resnet":
        overrides.append(TINY_VIT)
    recipe = load_recipe(path, overrides)
    torch.manual_seed(0)
    spec = resolve_input_spec(recipe.model, get_card(recipe.model.backbone), recipe.data)
    check_model_config(recipe.model, spec)  # every shipped recipe passes the pre-compute checks
    model = create_model(recipe)
    assert model.input_spec == spec
    if recipe.train.freeze.backbone:
        model.freeze_backbone()
    if recipe.lora is not None:
        apply_lora(model, recipe.lora.r, recipe.lora.alpha, recipe.lora.dropout,
                   recipe.lora.target_modules)
        trainable, total = count_parameters(model)
        assert trainable < total
    opt = build_optimizer(model, recipe.train.optimizer)
    n_bands = len(spec.channels)
    x = torch.randn(2, n_bands, 64, 64)
    model.train()
    if recipe.model.task == "detection":
        targets = [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]]),
                    "labels": torch.tensor([1])} for _ in range(2)]
        loss = sum(model(list(x), targets).values())
    else:
        loss_fn = build_loss(recipe.train.loss.name, ignore_index=recipe.data.ignore_index,
                             class_weights=recipe.train.loss.class_weights)
        out = model(x)
        k = recipe.model.num_classes
        target = (torch.randint(0, k, (2,)) if recipe.model.task == "classification"
                  else torch.randint(0, k, (2, 64, 64)))
        loss = loss_fn(out, target)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    for step in recipe.train.freeze.unfreeze:  # every unfreeze spec names real modules
        UnfreezeScheduler([step]).apply(model, step.epoch)



@pytest.mark.parametrize(("label_map", "values"), [
    ({255: 1}, (0, 255)),                  # a 0/255 mask: class 1 is written as 255
    ({1: 0, 2: 0, 3: 1}, (1, 3)),          # several values for a class: the smallest
    ({7: 1, 1: 0}, (1, 7)),
    ({5: 0}, (5, 1)),                      # class 1 keeps its id
    ({0: 0, 1: 1}, None),                  # the ids already: no values stored
    ({1: 0}, None),                        # class 0 would be 1, class 1's value: ids kept
])
def test_class_values_come_from_the_label_map(label_map, values):
    from rsfm.recipe import load_recipe
    from rsfm.registry import get_card
    from rsfm.spec import resolve_input_spec

    recipe = load_recipe({"model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn", "num_classes": 2},
                          "data": {"train": {"images": "x", "labels": "y"}, "label_map": label_map}})
    spec = resolve_input_spec(recipe.model, get_card("resnet18"), recipe.data)
    assert [c.value for c in spec.classes] == list(values or (None, None))
    assert spec.class_values == (values or (0, 1))
