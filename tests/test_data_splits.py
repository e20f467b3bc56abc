"""Spatial block splits (no straddling, deterministic), random and file splits, class balance."""

from __future__ import annotations

import pytest
from data_fixtures import S1, S1_KW, S1_LABELS, S1_SPEC, SPACENET, SPACENET_VEC, make_spec
from shapely.geometry import box

from rsfm.data import ChipDataset, SceneDataset
from rsfm.data.splits import (
    block_split,
    class_balance,
    file_split,
    format_balance,
    random_split,
    split_dataset,
)
from rsfm.errors import ConfigError


def _grid(n=40, tile=100.0, step=50.0):
    return [(c * step, r * step, c * step + tile, r * step + tile) for r in range(n) for c in range(n)]


def test_block_split_no_tile_straddles_splits():
    feet = _grid()  # overlapping 100 m tiles every 50 m over 2 km
    res = block_split(feet, block_size=500, seed=1)
    assert res.sizes() == block_split(feet, block_size=500, seed=1).sizes()  # deterministic
    assert res.indices != block_split(feet, block_size=500, seed=2).indices
    assert res.dropped and sum(res.sizes().values()) + len(res.dropped) == len(feet)
    sizes = res.sizes()
    assert sizes["train"] > sizes["val"] > 0 and sizes["test"] > 0
    names = list(res.indices)
    for a in names:
        for b in names:
            if a < b:
                ga = [box(*feet[i]) for i in res[a]]
                gb = [box(*feet[i]) for i in res[b]]
                # tiles of different splits may touch at a block edge but never overlap
                assert not any(x.intersection(y).area > 0 for x in ga for y in gb)


def test_block_split_on_scene_and_balance():
    ds = SceneDataset(SPACENET, SPACENET_VEC, make_spec(SPACENET, ["background", "building"]),
                      tile_size=150)
    # 75 m tiles, 100 m blocks: without dropping, every tile lands in the block of its centre
    res = block_split(ds, block_size=100, fractions={"train": 0.5, "val": 0.5}, seed=0,
                      drop_straddling=False)
    assert not res.dropped and sorted(res["train"] + res["val"]) == list(range(36))
    strict = block_split(ds, block_size=100, fractions={"train": 0.5, "val": 0.5}, seed=0)
    assert strict.dropped and set(strict["train"]) <= set(res["train"])
    subsets = split_dataset(ds, res)
    assert len(subsets["train"]) == len(res["train"])
    bal = class_balance(ds, res)
    buildings = sum(int((ds.read_target(i)["mask"] == 1).sum()) for i in range(len(ds)))
    assert bal["train"]["building"] + bal["val"]["building"] == buildings > 0
    assert bal["train"]["ignore"] == 0
    assert "building" in format_balance(bal)


def test_geographic_crs_needs_degrees():
    ds = ChipDataset(S1, S1_LABELS, S1_SPEC, **S1_KW)  # EPSG:4326
    with pytest.raises(ConfigError, match="geographic"):
        block_split(ds, block_size=5000)
    res = block_split(ds, block_size=0.05, fractions={"train": 1.0})
    assert len(res["train"]) + len(res.dropped) == 3


def test_random_and_file_splits(tmp_path):
    res = random_split(10, {"train": 0.6, "val": 0.4}, seed=0)
    assert sorted(res["train"] + res["val"]) == list(range(10)) and len(res["train"]) == 6
    with pytest.raises(ConfigError, match="sum to 1"):
        random_split(10, {"train": 0.6, "val": 0.6})
    ds = ChipDataset(S1, S1_LABELS, S1_SPEC, **S1_KW)
    (tmp_path / "train.txt").write_text("Bolivia_312675_S1Hand\nSpain_7370579_S1Hand.tif\n")
    (tmp_path / "val.txt").write_text("Ghana_53713_S1Hand.tif\n")
    res = file_split(ds, {"train": tmp_path / "train.txt", "val": tmp_path / "val.txt"})
    assert [ds.names()[i] for i in res["val"]] == ["Ghana_53713_S1Hand.tif"]
    assert len(res["train"]) == 2
    bal = class_balance(ds, res)
    assert bal["val"]["water"] == 0 and bal["val"]["dry"] > 0  # Ghana_53713: all dry
