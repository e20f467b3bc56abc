"""LoRA through peft: defaults per backbone family, what trains, peft-format adapter that loads
onto the base backbone, merging into a plain model, and a LoRA training run."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from test_train import tiny_recipe

TINY = {"task": "segmentation", "backbone": "dofa_base", "head": "fcn", "num_classes": 2,
        "bands": ["VV", "VH"], "backbone_kwargs": {"depth": 2, "embed_dim": 64, "num_heads": 2},
        "neck": {"out_channels": 32}}


def tiny_model():
    from rsfm.factory import create_model

    torch.manual_seed(0)
    return create_model(TINY).eval()


def perturb_lora(model) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)


def test_apply_lora_defaults_and_trainable_parts():
    from rsfm.lora import apply_lora, count_parameters, is_lora

    model = tiny_model()
    total_before = sum(p.numel() for p in model.parameters())
    apply_lora(model, r=4, alpha=8)
    assert is_lora(model) and model.lora_config["target_modules"] == ["attn.qkv", "attn.proj"]
    trainable, total = count_parameters(model)
    lora = [n for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone")]
    assert lora and all("lora_" in n for n in lora)
    assert len(lora) == 2 * 2 * 2  # 2 blocks x (qkv, proj) x (A, B)
    assert all(p.requires_grad for p in model.head.parameters())
    assert all(p.requires_grad for p in model.neck.parameters())
    lora_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert total == total_before + lora_params
    assert lora_params == 2 * (4 * 64 + 4 * 192) + 2 * (4 * 64 + 4 * 64)
    assert trainable < total


def test_bad_targets_name_close_matches():
    from rsfm.errors import ConfigError
    from rsfm.lora import apply_lora

    with pytest.raises(ConfigError, match="match no module"):
        apply_lora(tiny_model(), target_modules=["attn.qvk"])


def test_adapter_saved_in_peft_format_loads_onto_base_and_merges(tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file

    from rsfm.lora import apply_lora, is_lora, load_adapter, merge_lora, save_adapter

    base = tiny_model()
    pristine = copy.deepcopy(base)
    model = apply_lora(base, r=4, alpha=8, dropout=0.0)
    perturb_lora(model)
    with torch.no_grad():
        model.head.parameters().__next__().add_(0.1)  # the head trains fully: its weights travel
    x = torch.randn(2, 2, 64, 64)
    with torch.no_grad():
        ref = model(x)
    out = save_adapter(model, tmp_path / "adapter")
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json",
                                               "adapter_model.safetensors", "head.safetensors"}
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 8 and cfg["peft_type"] == "LORA"
    assert all("lora_" in k for k in load_file(str(out / "adapter_model.safetensors")))
    # plain peft API onto the base backbone
    bb = PeftModel.from_pretrained(copy.deepcopy(pristine.backbone), str(out))
    assert isinstance(bb, PeftModel)
    # the rsfm helper (adapter + neck/head) rebuilds the exact model
    again = load_adapter(copy.deepcopy(pristine), out).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), ref)
    merged = merge_lora(again)
    assert not is_lora(merged)
    assert not any("lora_" in k for k in merged.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(merged(x), ref, atol=1e-5, rtol=1e-4)


def test_lora_training_run(tmp_path):
    from safetensors.torch import load_file

    from rsfm.hub.save import from_pretrained
    from rsfm.saved import read_saved_config
    from rsfm.train.loop import train

    snaps = {}

    def snap(event, state):
        if event == "epoch":
            snaps[state.epoch] = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    recipe = tiny_recipe(tmp_path / "lora", train={"epochs": 2, "optimizer": {"lr": 1e-2}},
                         lora={"r": 4, "alpha": 8})
    train(recipe, callbacks=[snap])
    run = tmp_path / "lora"
    assert (run / "adapter" / "adapter_config.json").exists()
    assert (run / "adapter" / "head.safetensors").exists()
    cfg = read_saved_config(run)
    assert cfg.lora.r == 4 and cfg.lora.target_modules == ("attn.qkv", "attn.proj")
    assert cfg.card.repo_id == "earthflow/DOFA"
    base_key = "backbone.base_model.model.blocks.0.attn.qkv.base_layer.weight"
    assert torch.equal(snaps[0][base_key], snaps[1][base_key])  # base weights stay frozen
    lora_key = "backbone.base_model.model.blocks.0.attn.qkv.lora_B.default.weight"
    assert not torch.equal(snaps[0][lora_key], snaps[1][lora_key])
    merged = load_file(str(run / "model.safetensors"))
    assert not any("lora_" in k for k in merged)
    model = from_pretrained(run)
    x = torch.randn(1, 2, 64, 64)
    ref = tiny_model()
    ref.load_state_dict(merged)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


def test_lora_keeps_backbone_kwargs_and_freeze_rules():
    from rsfm.lora import apply_lora

    model = tiny_model()
    x = torch.randn(1, 2, 32, 32)
    waves = [0.665, 0.56]
    with torch.no_grad():
        before = model(x, wavelengths=waves)
    apply_lora(model, r=4, alpha=8)
    with torch.no_grad():  # DOFA's per-call wavelengths still reach the wrapped backbone
        torch.testing.assert_close(model(x, wavelengths=waves), before)
    model.freeze_backbone()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.unfreeze_backbone()  # only the adapters train again; base weights stay frozen
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
