"""A folder written by rsfm 0.1.0 (tests/data/legacy_v0_1_0) still loads, predicts exactly what
0.1.0 predicted, and re-saves in the current format.

The prediction tests need ``rsfm.predict`` migrated to the InputSpec (the inference owner's part
of issue 9); the loading tests need only rsfm.hub.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from hub_utils import LEGACY, SCENE
from safetensors.torch import load_file, save_file


def _predict(source, out):
    import rsfm

    res = rsfm.predict(str(source), str(SCENE), str(out), tile_size=64, progress=False,
                       probabilities="float32")
    with rasterio.open(res.classes) as ds:
        classes = ds.read(1)
    with rasterio.open(res.probabilities) as ds:
        probs = ds.read().astype(np.float16)
    return classes, probs


def test_legacy_config_reads_as_saved_config():
    from rsfm.hub import load_config

    cfg = load_config(LEGACY)
    assert cfg.rsfm_version == "0.1.0" and cfg.model.backbone == "prithvi_eo_v2_300m"
    spec = cfg.input
    assert spec.band_names == ["VV", "VH"] and spec.class_names == ["dry", "water"]
    n = spec.normalization
    assert (n.mode, n.mean, n.std, n.value_scale) == ("stats", (-10.0, -17.0), (4.0, 5.0), 1.0)
    assert spec.tile_size == 64 and spec.ignore_index == -1


def test_legacy_folder_loads_its_weights():
    from rsfm.hub import from_pretrained

    model = from_pretrained(LEGACY)
    stored = load_file(str(LEGACY / "model.safetensors"))
    state = model.state_dict()
    assert set(state) == set(stored)
    for key, value in stored.items():
        assert torch.equal(state[key], value), key
    assert model.saved_config.rsfm_version == "0.1.0"


def test_legacy_folder_resaves_in_the_current_format(tmp_path):
    from rsfm.hub import from_pretrained, save_pretrained
    from rsfm.saved import SAVED_FORMAT

    model = from_pretrained(LEGACY)
    out = save_pretrained(model, tmp_path / "new")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == SAVED_FORMAT and "data" not in cfg
    assert cfg["input"]["normalization"]["mean"] == [-10.0, -17.0]
    assert cfg["metrics"]["val_miou"] == model.saved_config.metrics["val_miou"]
    again = save_pretrained(from_pretrained(out), tmp_path / "again")
    assert (again / "config.json").read_bytes() == (out / "config.json").read_bytes()


def test_legacy_prediction_is_reproduced_exactly(tmp_path):
    """Needs the inference owner's migrated rsfm.predict."""
    classes, probs = _predict(LEGACY, tmp_path / "pred.tif")
    assert np.array_equal(classes, np.load(LEGACY / "expected_prediction.npy"))
    assert np.array_equal(probs, np.load(LEGACY / "expected_probabilities.npy"), equal_nan=True)


def test_resaved_legacy_folder_predicts_the_same(tmp_path):
    """Needs the inference owner's migrated rsfm.predict."""
    from rsfm.hub import from_pretrained, save_pretrained

    out = save_pretrained(from_pretrained(LEGACY), tmp_path / "new")
    classes, probs = _predict(out, tmp_path / "pred.tif")
    assert np.array_equal(classes, np.load(LEGACY / "expected_prediction.npy"))
    assert np.array_equal(probs, np.load(LEGACY / "expected_probabilities.npy"), equal_nan=True)


# ------------------------------------------------- 0.1 layouts that later defaults changed are pinned
def _v1_folder(tmp_path, backbone: str, head: str, head_kwargs: dict, family: str = "resnet"):
    """The fixture's 0.1 config.json with another backbone and head (no weights yet)."""
    cfg = json.loads((LEGACY / "config.json").read_text())
    cfg["model"].update(backbone=backbone, head=head, head_kwargs=head_kwargs, backbone_kwargs={})
    cfg["model"]["neck"].pop("out_channels")
    cfg["card"] = {"name": backbone, "family": family, "license": "apache-2.0", "weights": None}
    folder = tmp_path / f"{backbone}_{head}"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_v1_resnet_unet_converts_without_the_stem_level(tmp_path):
    from rsfm.saved import read_saved_config

    cfg = read_saved_config(_v1_folder(tmp_path, "resnet18", "unet", {}))
    assert cfg.model.backbone_kwargs == {"stem": False}
    vit = read_saved_config(_v1_folder(tmp_path, "prithvi_eo_v2_300m", "unet", {}, "prithvi"))
    assert "stem" not in vit.model.backbone_kwargs  # only ResNets gained a level
    fcn = read_saved_config(_v1_folder(tmp_path, "resnet50", "fcn", {}))
    assert fcn.model.backbone_kwargs == {} and fcn.model.head_kwargs == {}


def test_v1_deeplabv3plus_converts_to_the_full_width_head(tmp_path):
    from rsfm.saved import read_saved_config

    cfg = read_saved_config(_v1_folder(tmp_path, "resnet50", "deeplabv3plus", {"aspp_channels": 32}))
    assert cfg.model.head_kwargs == {"separable": False, "aspp_channels": 32}


@pytest.mark.parametrize(("backbone", "head", "head_kwargs", "layout"), [
    ("resnet18", "unet", {}, {"backbone_kwargs": {"stem": False}}),
    ("resnet50", "deeplabv3plus", {"aspp_channels": 32, "low_level_channels": 16}, {"separable": False}),
])
def test_v1_weights_of_changed_layouts_load_strictly(tmp_path, backbone, head, head_kwargs, layout):
    """0.1 weights (built with the 0.1 layout) load into the converted config; today's default
    layout would not take them."""
    import rsfm
    from rsfm.hub import from_pretrained

    folder = _v1_folder(tmp_path, backbone, head, head_kwargs)
    kw = {"num_classes": 2, "bands": ["VV", "VH"], **head_kwargs}
    torch.manual_seed(0)
    old = rsfm.create_model("segmentation", backbone, head=head, **kw, **layout)
    save_file(old.state_dict(), str(folder / "model.safetensors"))
    model = from_pretrained(folder)
    for key, value in old.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    today = rsfm.create_model("segmentation", backbone, head=head, **kw)
    assert {k: v.shape for k, v in today.state_dict().items()} != {
        k: v.shape for k, v in old.state_dict().items()}
