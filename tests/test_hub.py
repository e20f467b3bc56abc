"""The model folder: save_pretrained / from_pretrained round trips (config.json equal, outputs and
predictions bit-identical), and the push path up to huggingface_hub's API: the commit it would
send is captured, then loaded back from an offline Hub cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_utils import SCENE, SECRET, RecordingApi, publish, saved_run, tiny_model, tiny_recipe_obj
from test_train import tiny_recipe


def _outputs(model, x):
    with torch.no_grad():
        return model(x)


def _predict(source, out: Path) -> tuple[np.ndarray, np.ndarray]:
    # Depends on the inference owner's migrated rsfm.predict (reads model.input_spec).
    import rasterio

    import rsfm

    res = rsfm.predict(str(source), str(SCENE), str(out), tile_size=64, progress=False,
                       probabilities="float32")
    with rasterio.open(res.classes) as ds:
        classes = ds.read(1)
    with rasterio.open(res.probabilities) as ds:
        probs = ds.read()
    return classes, probs


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real (one-epoch) training run of the tiny DOFA VV/VH recipe."""
    import rsfm

    out = tmp_path_factory.mktemp("hub") / "run"
    rsfm.train(tiny_recipe(out, train={"epochs": 1}))
    return out


# ------------------------------------------------------------------------------ save / load
def test_save_pretrained_writes_the_models_own_config(tmp_path):
    from rsfm.hub import from_pretrained, load_config
    from rsfm.saved import SavedConfig

    folder = saved_run(tmp_path / "run")
    cfg = load_config(folder)
    assert isinstance(cfg, SavedConfig)
    spec = cfg.input
    assert spec.band_names == ["VV", "VH"] and spec.class_names == ["dry", "water"]
    n = spec.normalization
    assert (n.mode, n.mean, n.std, n.value_scale) == ("stats", (-10.0, -17.0), (4.0, 5.0), 0.5)
    assert (spec.ignore_index, spec.nodata, spec.tile_size) == (255, -9999.0, 64)
    assert cfg.card.name == "dofa_base" and cfg.card.revision and cfg.card.citation
    assert cfg.model.bands is None and cfg.model.classes is None  # they live in cfg.input
    # scalars only: the confusion matrix stays in metrics.jsonl
    assert cfg.metrics == {"epoch": 2, "val_miou": 0.61, "val_macro_f1": 0.7,
                           "val_accuracy": 0.9, "test_miou": 0.58}
    assert (folder / "recipe.yaml").is_file()
    model = from_pretrained(folder)
    assert model.saved_config == cfg and model.input_spec == cfg.input
    assert not model.training


def test_round_trip_config_and_outputs_identical(tmp_path):
    """The round trip law: save_pretrained(from_pretrained(d)) writes d's config.json again and
    the model computes the same outputs (the 0.1 release lost normalisation, tile size and the
    ignore index here)."""
    from rsfm.hub import from_pretrained, save_pretrained

    d = saved_run(tmp_path / "run")
    model = from_pretrained(d)
    e = save_pretrained(model, tmp_path / "again")
    assert (e / "config.json").read_bytes() == (d / "config.json").read_bytes()
    again = from_pretrained(e)
    x = torch.randn(2, 2, 64, 64)
    torch.testing.assert_close(_outputs(again, x), _outputs(model, x), rtol=0, atol=0)
    # and once more: a fixed point
    f = save_pretrained(again, tmp_path / "third")
    assert (f / "config.json").read_bytes() == (d / "config.json").read_bytes()


def test_round_trip_keeps_what_the_caller_changes(tmp_path):
    from rsfm.hub import from_pretrained, load_config, save_pretrained

    model = from_pretrained(saved_run(tmp_path / "run"))
    save_pretrained(model, tmp_path / "b", metrics={"val_miou": np.float32(0.5)},
                    datasets=["org/floods"])
    cfg = load_config(tmp_path / "b")
    assert cfg.metrics == {"val_miou": 0.5} and cfg.datasets == ("org/floods",)
    assert cfg.input == model.input_spec


def test_save_pretrained_fresh_model(tmp_path):
    from rsfm.factory import create_model
    from rsfm.hub import from_pretrained, load_config, save_pretrained

    torch.manual_seed(0)
    model = create_model("segmentation", "resnet18", head="fcn", num_classes=3,
                         bands=["RED", "GREEN", "BLUE", "NIR_BROAD"], classes=["a", "b", "c"]).eval()
    save_pretrained(model, tmp_path / "m")
    cfg = load_config(tmp_path / "m")
    assert cfg.input == model.input_spec and cfg.model == model.config
    assert cfg.card.name == "resnet18" and cfg.metrics == {} and cfg.lora is None
    again = from_pretrained(tmp_path / "m")
    x = torch.randn(2, 4, 64, 64)
    torch.testing.assert_close(_outputs(again, x), _outputs(model, x), rtol=0, atol=0)


def test_save_pretrained_needs_an_input_spec(tmp_path):
    from torch import nn

    from rsfm.errors import ConfigError
    from rsfm.hub import save_pretrained

    with pytest.raises(ConfigError, match="input_spec"):
        save_pretrained(nn.Linear(2, 2), tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing written


def test_weights_only_save_and_last_weights(tmp_path):
    from rsfm.errors import WeightsError
    from rsfm.hub import from_pretrained, save_pretrained

    d = saved_run(tmp_path / "run")
    with pytest.raises(WeightsError, match=r"No last_model\.safetensors"):
        from_pretrained(d, weights="last")
    model = from_pretrained(d)
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(1.0)
    before = (d / "config.json").read_bytes()
    save_pretrained(model, d, weights_name="last_model.safetensors", write_config=False)
    assert (d / "config.json").read_bytes() == before
    last = from_pretrained(d, weights="last")
    x = torch.randn(1, 2, 64, 64)
    torch.testing.assert_close(_outputs(last, x), _outputs(model, x), rtol=0, atol=0)


def test_from_pretrained_errors(tmp_path):
    from rsfm.errors import ConfigError, WeightsError
    from rsfm.hub import from_pretrained

    with pytest.raises(WeightsError, match="neither a model folder nor a Hub repo"):
        from_pretrained(tmp_path / "missing" / "deeper")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"No config\.json"):
        from_pretrained(tmp_path / "empty")
    with pytest.raises(WeightsError, match="Cannot load"):
        from_pretrained("org/not-in-cache")  # HF_HUB_OFFLINE=1 and not cached


def test_round_trip_of_a_trained_run(run_dir, tmp_path):
    """The law on a run directory written by training: config.json equal, and (through
    rsfm.predict, i.e. the inference owner's migrated predict) bit-identical predictions."""
    from rsfm.hub import from_pretrained, load_config, save_pretrained

    cfg = load_config(run_dir)
    n = cfg.input.normalization
    assert (n.mode, n.mean, n.std) == ("stats", (-10.0, -17.0), (4.0, 5.0))
    assert cfg.input.tile_size == 64 and cfg.input.class_names == ["dry", "water"]
    again = save_pretrained(from_pretrained(run_dir), tmp_path / "again")
    assert json.loads((again / "config.json").read_text()) == json.loads(
        (run_dir / "config.json").read_text())
    c1, p1 = _predict(run_dir, tmp_path / "a.tif")
    c2, p2 = _predict(again, tmp_path / "b.tif")
    assert np.array_equal(c1, c2) and np.array_equal(p1, p2, equal_nan=True)


def test_round_trip_predictions_identical(tmp_path):
    """Predictions from a folder and from its re-save are bit-identical (needs the migrated
    rsfm.predict of the inference owner)."""
    from rsfm.hub import from_pretrained, save_pretrained

    d = saved_run(tmp_path / "run", ignore_index=-1, nodata=None)
    e = save_pretrained(from_pretrained(d), tmp_path / "again")
    c1, p1 = _predict(d, tmp_path / "a.tif")
    c2, p2 = _predict(e, tmp_path / "b.tif")
    assert np.array_equal(c1, c2) and np.array_equal(p1, p2, equal_nan=True)


# ------------------------------------------------------------------------------------- push
def test_push_sends_expected_files(tmp_path, caplog, capsys):
    from huggingface_hub import ModelCard

    from rsfm.hub import push

    d = saved_run(tmp_path / "run")
    (d / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (d / "plots").mkdir()
    (d / "plots" / "loss.png").write_bytes(b"png")
    api = RecordingApi()
    push(d, "org/tiny-flood", api=api, token=SECRET, datasets=["cloudtostreet/sen1floods11"])
    assert api.repos == [{"repo_id": "org/tiny-flood", "private": True, "exist_ok": True}]
    files = api.commits[0]["files"]
    assert set(files) == {"config.json", "model.safetensors", "README.md", "recipe.yaml",
                          "metrics.jsonl", "plots/loss.png"}
    assert files["model.safetensors"] == (d / "model.safetensors").read_bytes()
    sent, local = json.loads(files["config.json"]), json.loads((d / "config.json").read_text())
    assert sent == {**local, "datasets": ["cloudtostreet/sen1floods11"]}
    (tmp_path / "README.md").write_bytes(files["README.md"])
    meta = ModelCard.load(tmp_path / "README.md").data
    assert meta.library_name == "rsfm" and meta.datasets == ["cloudtostreet/sen1floods11"]
    assert meta.base_model is None  # trained from scratch: no base checkpoint to cite
    # the token never reaches a file, a log or the terminal
    captured = capsys.readouterr()
    blobs = [*files.values(), captured.out.encode(), captured.err.encode(), caplog.text.encode()]
    assert not any(SECRET.encode() in b for b in blobs)


def test_push_a_trained_run(run_dir, tmp_path):
    """`rsfm push` on a run directory: weights, records, plots and a card tagged from the data
    (the Sentinel-1 VV/VH demo on a DOFA backbone: sentinel-1/sar, not sentinel-2/rgb)."""
    from huggingface_hub import ModelCard

    from rsfm.hub import push

    api = RecordingApi()
    push(run_dir, "org/tiny-flood", api=api)
    files = api.commits[0]["files"]
    assert {"config.json", "model.safetensors", "README.md", "recipe.yaml", "metrics.jsonl",
            "metrics.csv"} <= set(files)
    assert any(name.startswith("plots/") for name in files)
    assert not any(name.startswith("checkpoints/") or name == "last_model.safetensors"
                   for name in files)
    (tmp_path / "README.md").write_bytes(files["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    assert {"sentinel-1", "sar"} <= set(card.data.tags)
    assert not {"sentinel-2", "sentinel2", "rgb"} & set(card.data.tags)
    assert {r.dataset_split for r in card.data.eval_results} == {"validation"}


def test_push_to_a_branch(tmp_path):
    from rsfm.hub import push

    api = RecordingApi()
    push(saved_run(tmp_path / "run"), "org/x", api=api, revision="v2", commit_message="m")
    assert api.branches == [("org/x", "v2")]
    assert api.commits[0]["revision"] == "v2" and api.commits[0]["message"] == "m"


def test_pushed_repo_loads_back_offline(tmp_path, hub_cache):
    from hub_utils import remove_repo

    from rsfm.hub import from_pretrained, push

    d = saved_run(tmp_path / "run")
    api = RecordingApi()
    push(d, "org/tiny-roundtrip", api=api)
    publish(hub_cache, "org/tiny-roundtrip", api.commits[0]["files"], tmp_path / "stage")
    try:
        local = from_pretrained(d)
        remote = from_pretrained("org/tiny-roundtrip")  # HF_HUB_OFFLINE=1: served from the cache
        assert remote.saved_config == local.saved_config
        x = torch.randn(2, 2, 64, 64)
        torch.testing.assert_close(_outputs(remote, x), _outputs(local, x), rtol=0, atol=0)
    finally:
        remove_repo(hub_cache, "org/tiny-roundtrip")


def test_push_refuses_what_it_cannot_rebuild(tmp_path):
    from rsfm.errors import ConfigError, WeightsError
    from rsfm.hub import push

    d = saved_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="no LoRA adapter"):
        push(d, "org/x", api=RecordingApi(), lora_only=True)
    with pytest.raises(ConfigError, match="ORG/NAME"):
        push(d, "not-a-repo-id", api=RecordingApi())
    (d / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"No model\.safetensors"):
        push(d, "org/x", api=RecordingApi())


def test_push_a_legacy_folder_sends_the_current_format(tmp_path):
    from hub_utils import LEGACY

    from rsfm.hub import push
    from rsfm.saved import SAVED_FORMAT

    api = RecordingApi()
    push(LEGACY, "org/legacy", api=api)
    sent = json.loads(api.commits[0]["files"]["config.json"])
    assert sent["format"] == SAVED_FORMAT and "input" in sent and "data" not in sent


def test_cli_push_uses_hfapi(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from rsfm.cli import main

    d = saved_run(tmp_path / "run")
    api = RecordingApi()
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, *a, **k: api.create_repo(*a, **k))
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit",
                        lambda self, *a, **k: api.create_commit(*a, **k))
    assert main(["push", str(d), "--repo-id", "org/cli", "--public"]) == 0
    assert api.repos[0]["private"] is False and "config.json" in api.commits[0]["files"]
    assert main(["push", str(d), "--repo-id", "not-a-repo-id"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err


def test_cli_push_offline_is_one_clear_line(tmp_path, capsys, monkeypatch):
    from rsfm.cli import main

    d = saved_run(tmp_path / "run")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert main(["push", str(d), "--repo-id", "org/offline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing was pushed" in err and "Traceback" not in err
    assert SECRET not in err


def test_recipe_push_to_hub_after_training(tmp_path, monkeypatch):
    import rsfm

    calls = []  # the training loop's own reference to rsfm.hub.push (imported at module level)
    monkeypatch.setattr("rsfm.train.loop.push",
                        lambda source, repo_id, **kw: calls.append((str(source), repo_id, kw)))
    out = tmp_path / "pushed"
    rsfm.train(tiny_recipe(out, train={"epochs": 1},
                           output={"dir": str(out), "push_to_hub": "org/from-recipe",
                                   "hub_datasets": ["org/floods"]}))
    assert calls == [(str(out), "org/from-recipe", {"private": True, "datasets": ("org/floods",)})]


def test_push_keeps_recorded_datasets(tmp_path):
    from rsfm.hub import push

    d = saved_run(tmp_path / "run", datasets=["org/floods"])
    api = RecordingApi()
    push(d, "org/x", api=api, datasets=())
    assert json.loads(api.commits[0]["files"]["config.json"])["datasets"] == ["org/floods"]


def test_fresh_model_from_recipe_has_the_recipes_spec(tmp_path):
    """The hub tests' own helper builds what training builds: the recipe's InputSpec."""
    recipe = tiny_recipe_obj(tmp_path, data={"ignore_index": 7})
    model = tiny_model(recipe)
    assert model.input_spec.ignore_index == 7 and model.input_spec.band_names == ["VV", "VH"]
