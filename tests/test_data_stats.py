"""``rsfm stats``: exact streaming mean/std with nodata excluded, YAML output, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import yaml
from data_fixtures import LANDSAT7, S1, write_tif

from rsfm.cli import main
from rsfm.data.stats import RunningStats, compute_stats
from rsfm.errors import DataError


def test_matches_numpy_over_valid_pixels_of_real_chips():
    stats = compute_stats([S1], bands=["VV", "VH"])
    vals = [[], []]
    for p in sorted(S1.glob("*.tif")):
        with rasterio.open(p) as src:
            a = src.read()
        for b in range(2):
            vals[b].append(a[b][np.isfinite(a[b])])
    for b in range(2):
        v = np.concatenate(vals[b]).astype(np.float64)
        assert np.isclose(stats["mean"][b], v.mean(), rtol=1e-10)
        assert np.isclose(stats["std"][b], v.std(), rtol=1e-10)
    assert stats["bands"] == ["VV", "VH"] and stats["files"] == 4
    by_index = compute_stats([S1], bands=[2])  # a 1-based index names the file's band
    assert by_index["bands"] == ["VH"] and by_index["mean"] == [stats["mean"][1]]
    assert stats["count"] == min(len(np.concatenate(x)) for x in vals)


def test_nodata_collar_excluded_and_value_scale():
    stats = compute_stats([LANDSAT7], value_scale=0.5)
    with rasterio.open(LANDSAT7) as src:
        a = src.read().astype(np.float64)
    valid = ~(a == 0).all(axis=0)
    assert np.allclose(stats["mean"], [0.5 * a[b][valid].mean() for b in range(3)])
    assert stats["bands"] == ["RED", "GREEN", "BLUE"] and stats["value_scale"] == 0.5


def test_running_stats_merge_is_exact():
    rng = np.random.default_rng(0)
    x = rng.normal(1e4, 3.0, size=10001)
    acc = RunningStats(1)
    for chunk in np.array_split(x, 7):
        acc.update(0, chunk)
    assert np.isclose(acc.mean[0], x.mean(), rtol=1e-12) and np.isclose(acc.std[0], x.std())


def test_cli_writes_yaml(tmp_path, capsys):
    out = tmp_path / "s.yaml"
    assert main(["stats", str(S1), "--bands", "VV", "VH", "-o", str(out)]) == 0
    doc = yaml.safe_load(out.read_text())
    assert set(doc) >= {"bands", "mean", "std", "count", "value_scale"} and len(doc["mean"]) == 2
    bad = write_tif(tmp_path / "nd.tif", np.zeros((1, 8, 8), np.uint8), nodata=0)
    assert main(["stats", str(bad), "-o", str(tmp_path / "x.yaml")]) == 2
    assert "nodata" in capsys.readouterr().err
    with pytest.raises(DataError):
        compute_stats([tmp_path / "missing.tif"])
