"""A folder written by rsfm 0.1.0 (tests/data/legacy_v0_1_0) still loads, predicts exactly what
0.1.0 predicted, and re-saves in the current format.

The prediction tests need ``rsfm.predict`` migrated to the InputSpec (the inference owner's part
of issue 9); the loading tests need only rsfm.hub.
"""

from __future__ import annotations

import json

import numpy as np
import rasterio
import torch
from hub_utils import LEGACY, SCENE
from safetensors.torch import load_file


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
