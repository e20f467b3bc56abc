"""Normalisation modes and spectral indices (band order given by configuration)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from data_fixtures import RGBN, make_spec

from rsfm.data import SceneDataset
from rsfm.data.indices import compute_index
from rsfm.data.normalize import Normalizer
from rsfm.errors import BandError, ConfigError
from rsfm.spec import Normalization

RGBN_ORDER = ["RED", "GREEN", "BLUE", "NIR"]


def test_stats_mode_value_scale_and_nodata():
    raw = np.array([[[10000, 0], [5000, 2000]]], dtype=np.uint16)
    bad = raw == 0
    out = Normalizer(Normalization("stats", (0.5,), (0.25,), 1e-4))(raw, bad)
    assert out.dtype == np.float32
    assert np.allclose(out, [[[2.0, 0.0], [0.0, -1.2]]])


def test_per_tile_modes_ignore_nodata():
    raw = np.array([[[0, 10], [20, 30]]], dtype=np.float32)
    bad = raw == 0
    mm = Normalizer(Normalization("minmax"))(raw, bad)
    assert np.allclose(mm, [[[0, 0], [0.5, 1]]])
    st = Normalizer(Normalization("per_tile"))(raw, bad)
    assert np.isclose(st[~bad].mean(), 0, atol=1e-6) and np.isclose(st[~bad].std(), 1, atol=1e-5)
    nan = np.full((1, 2, 2), np.nan, np.float32)
    assert Normalizer(Normalization("minmax"))(nan).tolist() == [[[0, 0], [0, 0]]]
    assert Normalizer()(raw, bad).tolist() == [[[0, 10], [20, 30]]]  # none: values as read


def test_normalization_config_errors():
    # the spec's Normalization checks its values; the Normalizer only computes
    with pytest.raises(ConfigError, match="mean and std"):
        Normalization("stats", mean=(1.0,))
    with pytest.raises(ConfigError, match="> 0"):
        Normalization("stats", (1.0,), (0.0,))


def test_ndvi_from_configured_band_order():
    spec = make_spec(["RED", "GREEN", "BLUE"], file_bands=RGBN_ORDER, indices=("NDVI",),
                     mode="minmax")
    ds = SceneDataset(RGBN, None, spec, task="none", tile_size=160)
    img = ds[0]["image"].numpy()
    with rasterio.open(RGBN) as src:
        r, n = src.read(1).astype(float), src.read(4).astype(float)
    assert ds.bands == ["RED", "GREEN", "BLUE", "NDVI"]
    assert np.allclose(img[3], np.where(n + r > 0, (n - r) / (n + r), 0), atol=1e-6)
    assert compute_index(np.array([0.0]), np.array([0.0])).tolist() == [0.0]


def test_index_needs_band():
    with pytest.raises(BandError, match="needs a SWIR_2 band"):
        SceneDataset(RGBN, None, make_spec(["RED"], file_bands=RGBN_ORDER, indices=("NBR",)),
                     task="none")
    with pytest.raises(ConfigError, match="unknown spectral index"):
        make_spec(["RED"], file_bands=RGBN_ORDER, indices=("XYZ",))
