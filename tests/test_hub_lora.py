"""LoRA model folders: the adapter in peft's format (no template README, the base repo recorded),
reloadable with ``peft.PeftModel.from_pretrained`` onto the base backbone, pushed adapter-only and
rebuilt from the base checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from hub_utils import RecordingApi, place_in_hub_cache, publish, remove_repo
from safetensors.torch import save_file

BASE_REPO = "someone/r18-base"
REV = "b" * 40
WEIGHTS = f"hf://{BASE_REPO}/model.safetensors@{REV}"


@pytest.fixture
def base_checkpoint(tmp_path, hub_cache):
    """A ResNet-18 checkpoint in the offline Hub cache (as if downloaded from BASE_REPO)."""
    import rsfm

    torch.manual_seed(0)
    base = rsfm.create_backbone("resnet18")
    src = tmp_path / "base.safetensors"
    save_file({**base.state_dict(), "fc.weight": torch.zeros(1000, 512),
               "fc.bias": torch.zeros(1000)}, str(src))
    place_in_hub_cache(hub_cache, BASE_REPO, "model.safetensors", src, REV)
    yield WEIGHTS
    remove_repo(hub_cache, BASE_REPO)


@pytest.fixture
def lora_model(base_checkpoint):
    from rsfm.config import ModelConfig
    from rsfm.factory import create_model
    from rsfm.lora import apply_lora

    model = create_model(ModelConfig(task="segmentation", backbone="resnet18", head="fcn",
                                     num_classes=2, weights=base_checkpoint))
    apply_lora(model, r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model.eval()


def _out(model, x):
    with torch.no_grad():
        return model(x)


def test_adapter_folder_is_clean_and_names_its_base(lora_model, tmp_path):
    from rsfm.config import LoraSettings
    from rsfm.hub import load_config, save_pretrained

    folder = save_pretrained(lora_model, tmp_path / "run")
    adapter = folder / "adapter"
    assert sorted(p.name for p in adapter.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "head.safetensors"]  # no README.md
    peft_cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert peft_cfg["base_model_name_or_path"] == BASE_REPO
    cfg = load_config(folder)
    assert cfg.lora == LoraSettings(r=4, alpha=8, dropout=0.0,
                                    target_modules=tuple(lora_model.lora_config["target_modules"]))
    assert cfg.lora_adapter == "adapter" and cfg.model.weights == WEIGHTS


def test_peft_reloads_the_adapter_onto_the_base_backbone(lora_model, base_checkpoint, tmp_path):
    from peft import PeftConfig, PeftModel

    import rsfm
    from rsfm.hub import save_pretrained

    folder = save_pretrained(lora_model, tmp_path / "run")
    assert PeftConfig.from_pretrained(str(folder / "adapter")).base_model_name_or_path == BASE_REPO
    base = rsfm.create_backbone("resnet18", weights=base_checkpoint).eval()
    reloaded = PeftModel.from_pretrained(base, str(folder / "adapter")).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, got = lora_model.backbone(x), reloaded(x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_full_weights_have_the_adapter_merged(lora_model, tmp_path):
    from rsfm.hub import from_pretrained, save_pretrained
    from rsfm.lora import is_lora

    folder = save_pretrained(lora_model, tmp_path / "run")
    plain = from_pretrained(folder)
    assert not is_lora(plain) and plain.saved_config.lora is not None
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(_out(plain, x), _out(lora_model, x), atol=1e-5, rtol=1e-4)


def test_lora_only_repo_rebuilds_from_base_checkpoint(lora_model, tmp_path, hub_cache):
    """Pushed as adapter + head only: from_pretrained fetches the base backbone from its own
    (offline-cached) checkpoint, applies the adapter and gives the same outputs."""
    from huggingface_hub import ModelCard

    from rsfm.hub import from_pretrained, push, save_pretrained

    save_pretrained(lora_model, tmp_path / "run")
    api = RecordingApi()
    push(tmp_path / "run", "org/lora-only", api=api)
    files = api.commits[0]["files"]
    assert "model.safetensors" not in files and "adapter/adapter_model.safetensors" in files
    assert "adapter/README.md" not in files
    (tmp_path / "README.md").write_bytes(files["README.md"])
    meta = ModelCard.load(tmp_path / "README.md").data
    assert meta.base_model == BASE_REPO and meta.base_model_relation == "adapter"
    assert {"lora", "peft"} <= set(meta.tags)
    publish(hub_cache, "org/lora-only", files, tmp_path / "stage")
    try:
        again = from_pretrained("org/lora-only")
        x = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(_out(again, x), _out(lora_model, x), atol=1e-5, rtol=1e-4)
        assert again.config == lora_model.config  # weights: hf://... as trained
        unmerged = from_pretrained("org/lora-only", merge=False)
        out = save_pretrained(unmerged, tmp_path / "resaved")
        assert json.loads((out / "config.json").read_text()) == json.loads(files["config.json"])
    finally:
        remove_repo(hub_cache, "org/lora-only")


def test_full_push_of_a_lora_run_ships_the_adapter_too(lora_model, tmp_path):
    from huggingface_hub import ModelCard

    from rsfm.hub import push, save_pretrained

    save_pretrained(lora_model, tmp_path / "run")
    api = RecordingApi()
    push(tmp_path / "run", "org/full", api=api, lora_only=False)
    files = api.commits[0]["files"]
    assert {"model.safetensors", "adapter/adapter_config.json"} <= set(files)
    (tmp_path / "README.md").write_bytes(files["README.md"])
    meta = ModelCard.load(tmp_path / "README.md").data
    assert meta.base_model == BASE_REPO and meta.base_model_relation == "finetune"


def test_lora_only_needs_a_hub_base(tmp_path):
    from hub_utils import saved_run

    from rsfm.errors import ConfigError
    from rsfm.hub import from_pretrained, push, save_pretrained
    from rsfm.lora import apply_lora

    model = from_pretrained(saved_run(tmp_path / "run"))  # DOFA trained from scratch
    apply_lora(model, r=2, alpha=4, dropout=0.0)
    save_pretrained(model, tmp_path / "lora")
    with pytest.raises(ConfigError, match="did not start from a Hub checkpoint"):
        push(tmp_path / "lora", "org/x", api=RecordingApi(), lora_only=True)
    api = RecordingApi()
    push(tmp_path / "lora", "org/x", api=api)  # default: full weights
    assert "model.safetensors" in api.commits[0]["files"]
