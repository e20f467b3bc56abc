"""save_pretrained / from_pretrained round trips, and the push path up to huggingface_hub's API:
the commit operations it would send are captured, then loaded back from an offline Hub cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hub_utils import place_in_hub_cache
from test_train import tiny_recipe

SECRET = "hf_NotARealTokenButCheckItNeverLeaks123"


class RecordingApi:
    """Stands in for ``huggingface_hub.HfApi``: records what would be uploaded."""

    def __init__(self):
        self.repos, self.commits = [], []

    def create_repo(self, repo_id, private=True, exist_ok=False, **kw):
        self.repos.append({"repo_id": repo_id, "private": private, "exist_ok": exist_ok})

    def create_commit(self, repo_id, operations, commit_message="", revision=None, **kw):
        files = {}
        for op in operations:
            src = op.path_or_fileobj
            files[op.path_in_repo] = Path(src).read_bytes() if isinstance(src, str) else src
        self.commits.append({"repo_id": repo_id, "files": files, "message": commit_message,
                             "revision": revision})
        return "commit-info"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from rsfm.train.loop import train

    out = tmp_path_factory.mktemp("hub") / "run"
    train(tiny_recipe(out, train={"epochs": 1}))
    return out


def test_save_pretrained_round_trip(tmp_path):
    from rsfm.hub import from_pretrained, save_pretrained
    from rsfm.models.factory import create_model

    torch.manual_seed(0)
    model = create_model({"task": "segmentation", "backbone": "resnet18", "head": "unet",
                          "num_classes": 3, "bands": ["RED", "GREEN", "BLUE", "NIR"],
                          "classes": ["a", "b", "c"]}).eval()
    save_pretrained(model, tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["data"]["bands"] == ["RED", "GREEN", "BLUE", "NIR"]
    assert cfg["data"]["classes"] == ["a", "b", "c"] and cfg["card"]["name"] == "resnet18"
    again = from_pretrained(tmp_path / "m")
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


def test_push_sends_expected_files(run_dir, caplog, capsys):
    from rsfm.hub import push

    api = RecordingApi()
    push(run_dir, "org/tiny-flood", api=api, token=SECRET, datasets=["cloudtostreet/sen1floods11"])
    assert api.repos == [{"repo_id": "org/tiny-flood", "private": True, "exist_ok": True}]
    files = api.commits[0]["files"]
    assert {"config.json", "model.safetensors", "README.md", "recipe.yaml", "metrics.jsonl",
            "metrics.csv", "plots/loss.png", "plots/metrics.png",
            "plots/confusion_matrix.png"} <= set(files)
    assert files["model.safetensors"] == (run_dir / "model.safetensors").read_bytes()
    cfg = json.loads(files["config.json"])
    assert cfg == json.loads((run_dir / "config.json").read_text())
    readme = files["README.md"].decode()
    meta = yaml.safe_load(readme.split("---")[1])
    assert meta["library_name"] == "rsfm"
    assert {"remote-sensing", "sentinel2", "segmentation"} <= set(meta["tags"])
    assert meta["datasets"] == ["cloudtostreet/sen1floods11"]
    assert "mean_iou" in meta["metrics"]
    assert "base_model" not in meta  # trained from scratch: no base checkpoint to cite
    assert 'rsfm.from_pretrained("org/tiny-flood")' in readme
    # the token never reaches a file, a log or the terminal
    captured = capsys.readouterr()
    blobs = [*files.values(), captured.out.encode(), captured.err.encode(), caplog.text.encode()]
    assert not any(SECRET.encode() in b for b in blobs)


def test_pushed_repo_loads_back_offline(run_dir, hub_cache):
    from rsfm.hub import from_pretrained, push

    api = RecordingApi()
    push(run_dir, "org/tiny-roundtrip", api=api)
    stage = run_dir.parent / "stage"
    for name, blob in api.commits[0]["files"].items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_bytes(blob)
        place_in_hub_cache(hub_cache, "org/tiny-roundtrip", name, stage / name)
    local = from_pretrained(run_dir)
    remote = from_pretrained("org/tiny-roundtrip")  # HF_HUB_OFFLINE=1: served from the cache
    assert remote.rsfm_metadata["data"] == local.rsfm_metadata["data"]
    x = torch.randn(2, 2, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(remote(x), local(x), rtol=0, atol=0)
    with pytest.raises(Exception, match="Cannot load"):
        from_pretrained("org/not-in-cache")


def test_lora_only_push_references_base(run_dir, tmp_path):
    from rsfm.hub import model_card, push

    lora_run = tmp_path / "lora_run"
    shutil.copytree(run_dir, lora_run)
    cfg = json.loads((lora_run / "config.json").read_text())
    cfg["model"]["pretrained"] = True
    cfg["lora"] = {"r": 4, "alpha": 8, "target_modules": ["attn.qkv", "attn.proj"],
                   "adapter": "adapter", "base_model": cfg["card"]["weights"]}
    (lora_run / "config.json").write_text(json.dumps(cfg))
    (lora_run / "adapter").mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors", "head.safetensors"):
        (lora_run / "adapter" / name).write_text("x")
    api = RecordingApi()
    push(lora_run, "org/tiny-lora", api=api)
    files = api.commits[0]["files"]
    assert "model.safetensors" not in files
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors",
            "adapter/head.safetensors"} <= set(files)
    sent = json.loads(files["config.json"])
    assert sent["weights"]["format"] == "lora_adapter"
    assert sent["weights"]["base_model"]["repo_id"] == "earthflow/DOFA"
    meta = yaml.safe_load(files["README.md"].decode().split("---")[1])
    assert meta["base_model"] == "earthflow/DOFA" and "lora" in meta["tags"]
    assert "adapter" in model_card(sent, "org/x", lora_only=True)


def test_cli_push_uses_hfapi(run_dir, monkeypatch, capsys):
    import huggingface_hub

    from rsfm.cli import main

    api = RecordingApi()
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, *a, **k: api.create_repo(*a, **k))
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit",
                        lambda self, *a, **k: api.create_commit(*a, **k))
    assert main(["push", str(run_dir), "--repo-id", "org/cli", "--public"]) == 0
    assert api.repos[0]["private"] is False and "config.json" in api.commits[0]["files"]
    assert main(["push", str(run_dir), "--repo-id", "not-a-repo-id"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err


def test_recipe_push_to_hub_after_training(tmp_path, monkeypatch):
    import rsfm.hub
    from rsfm.train.loop import train

    calls = []
    monkeypatch.setattr(rsfm.hub, "push", lambda run_dir, repo_id, **kw: calls.append(
        (str(run_dir), repo_id, kw)))
    out = tmp_path / "pushed"
    train(tiny_recipe(out, train={"epochs": 1}, output={"dir": str(out),
                                                        "push_to_hub": "org/from-recipe"}))
    assert calls == [(str(out), "org/from-recipe", {"private": True, "datasets": ()})]


def test_lora_only_repo_rebuilds_from_base_checkpoint(tmp_path, hub_cache):
    """A LoRA run pushed as adapter + head only: from_pretrained fetches the base backbone from
    its own (offline-cached) checkpoint, applies the adapter and gives the same outputs."""
    from hub_utils import remove_repo
    from safetensors.torch import save_file

    import rsfm
    from rsfm.hub import from_pretrained, push, save_pretrained
    from rsfm.lora import apply_lora
    from rsfm.models.factory import create_model

    torch.manual_seed(0)
    base = rsfm.create_backbone("resnet18")
    src = tmp_path / "base.safetensors"
    save_file({**base.state_dict(), "fc.weight": torch.zeros(1000, 512),
               "fc.bias": torch.zeros(1000)}, str(src))
    rev = "b" * 40
    place_in_hub_cache(hub_cache, "someone/r18-base", "model.safetensors", src, rev)
    try:
        model = create_model({"task": "segmentation", "backbone": "resnet18", "head": "fcn",
                              "num_classes": 2,
                              "weights": f"hf://someone/r18-base/model.safetensors@{rev}"})
        apply_lora(model, r=4, alpha=8, dropout=0.0)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.05)
        model.eval()
        save_pretrained(model, tmp_path / "run")
        api = RecordingApi()
        push(tmp_path / "run", "org/lora-only", api=api)
        files = api.commits[0]["files"]
        assert "model.safetensors" not in files and "adapter/adapter_model.safetensors" in files
        for name, blob in files.items():
            (tmp_path / "stage" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "stage" / name).write_bytes(blob)
            place_in_hub_cache(hub_cache, "org/lora-only", name, tmp_path / "stage" / name)
        again = from_pretrained("org/lora-only")
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(again(x), model(x), atol=1e-5, rtol=1e-4)
    finally:
        remove_repo(hub_cache, "someone/r18-base")
        remove_repo(hub_cache, "org/lora-only")


def test_cli_push_offline_is_one_clear_line(run_dir, capsys, monkeypatch):
    from rsfm.cli import main

    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert main(["push", str(run_dir), "--repo-id", "org/offline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing was pushed" in err and "Traceback" not in err
    assert SECRET not in err
