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
