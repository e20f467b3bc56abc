"""Class folders (``root/<class>/*.tif``) and the epoch-seeded sampler, moved into rsfm.data."""

from __future__ import annotations

import shutil

import pytest
import torch
from data_fixtures import S1, S1_SPEC, make_spec

from rsfm.data import ChipDataset, ClassFolderDataset, EpochSampler
from rsfm.errors import ConfigError


def _folders(tmp_path):
    root = tmp_path / "root"
    for cls, stems in (("dry", ["Ghana_53713"]), ("water", ["Spain_7370579", "Bolivia_312675"])):
        (root / cls).mkdir(parents=True)
        for stem in stems:
            shutil.copy(S1 / f"{stem}_S1Hand.tif", root / cls)
    return root


def test_class_folders_read_like_chips(tmp_path):
    root = _folders(tmp_path)
    spec = make_spec(["VV", "VH"], ["dry", "water"], mean=[-10.0, -17.0], std=[4.0, 5.0])
    ds = ClassFolderDataset(root, spec)
    assert len(ds) == 3 and ds.classes == ["dry", "water"] and ds.bands == ["VV", "VH"]
    assert [int(ds[i]["label"]) for i in range(3)] == [0, 1, 1]
    chip = ChipDataset([root / "dry/Ghana_53713_S1Hand.tif"], None, spec, task="none")
    assert torch.equal(ds[0]["image"], chip[0]["image"])
    flipped = ClassFolderDataset(root, spec, transforms=lambda s: {**s, "image": -s["image"]})
    assert torch.equal(flipped[0]["image"], -ds[0]["image"])


def test_class_folder_errors(tmp_path):
    root = _folders(tmp_path)
    with pytest.raises(ConfigError, match=r"sub-folders \['water'\]"):
        ClassFolderDataset(root, make_spec(["VV", "VH"], ["dry", "cloud"]))
    with pytest.raises(ConfigError, match="does not exist"):
        ClassFolderDataset(tmp_path / "nope", S1_SPEC)


def test_epoch_sampler_depends_on_seed_and_epoch_only():
    a, b = EpochSampler(10, seed=3), EpochSampler(10, seed=3)
    first = list(a)
    assert sorted(first) == list(range(10)) and first == list(b) and len(a) == 10
    a.use_epoch(1)
    assert list(a) != first
    b.use_epoch(1)
    assert list(a) == list(b)
    assert list(EpochSampler(4, seed=0, shuffle=False)) == [0, 1, 2, 3]
