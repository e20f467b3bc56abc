"""Augmentation: joint geometric transforms keep image, mask and boxes aligned; spectral ones."""

from __future__ import annotations

import pytest
import torch

from rsfm.data.transforms import (
    BandJitter,
    CloudHaze,
    GaussianNoise,
    RandomRot90,
    SampleTransform,
    build_transforms,
)
from rsfm.errors import ConfigError


def _sample(h=32, w=48):
    """An object (class 1) at rows 4..11, cols 20..35, its box, and a 5-band image marking it."""
    image = torch.zeros(5, h, w)
    mask = torch.zeros(h, w, dtype=torch.int64)
    mask[4:12, 20:36] = 1
    image[:, 4:12, 20:36] = 1.0
    return {"image": image, "mask": mask, "boxes": torch.tensor([[20.0, 4.0, 36.0, 12.0]]),
            "labels": torch.tensor([1]), "meta": {"path": "x.tif"}}


def _mask_box(mask):
    rows, cols = torch.nonzero(mask == 1, as_tuple=True)
    return [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]


@pytest.mark.parametrize("config", [{"hflip": 1.0}, {"vflip": 1.0}, {"rot90": 1.0},
                                    {"hflip": 1.0, "vflip": 1.0, "rot90": 1.0}])
def test_geometric_keeps_image_mask_boxes_aligned(config):
    t = build_transforms(config)
    for seed in range(4):
        torch.manual_seed(seed)
        out = t(_sample())
        assert type(out["image"]) is torch.Tensor and out["mask"].dtype == torch.int64
        assert out["boxes"][0].tolist() == _mask_box(out["mask"])
        assert torch.equal(out["image"][0] > 0, out["mask"] == 1)
        assert out["labels"].tolist() == [1] and out["meta"] == {"path": "x.tif"}


def test_rot90_changes_canvas_of_non_square():
    torch.manual_seed(0)
    out = SampleTransform([RandomRot90(p=1.0)])(_sample())
    k_odd = out["image"].shape[-2:] == (48, 32)
    assert k_odd or out["image"].shape[-2:] == (32, 48)
    assert out["boxes"][0].tolist() == _mask_box(out["mask"])


def test_resized_crop_mask_nearest_and_drops_cut_boxes():
    t = build_transforms({"resized_crop": {"size": 16, "scale": [0.05, 0.1]}})
    for seed in range(10):
        torch.manual_seed(seed)
        out = t(_sample())
        assert out["image"].shape == (5, 16, 16) and out["mask"].shape == (16, 16)
        assert set(out["mask"].unique().tolist()) <= {0, 1}
        assert len(out["boxes"]) == len(out["labels"])
        if (out["mask"] == 1).any() and len(out["boxes"]):
            b = out["boxes"][0]
            assert ((b >= 0) & (b <= 16)).all()


def test_multitemporal_image_flip():
    s = _sample()
    s["image"] = torch.stack([s["image"], s["image"] * 2], dim=1)  # (C, T, H, W)
    out = build_transforms({"hflip": 1.0})(s)
    assert out["image"].shape == (5, 2, 32, 48)
    assert torch.equal(out["image"][0, 1] > 0, out["mask"] == 1)


def test_spectral_transforms_change_image_only():
    torch.manual_seed(0)
    s = _sample()
    out = SampleTransform([], [BandJitter(0.2, 0.2, p=1.0), GaussianNoise(0.1, p=1.0),
                               CloudHaze(p=1.0, max_haze=0.3)])(s)
    assert not torch.equal(out["image"], s["image"]) and out["image"].shape == s["image"].shape
    assert torch.equal(out["mask"], s["mask"]) and torch.equal(out["boxes"], s["boxes"])
    s2 = _sample()
    s2["image"][:, :2, :2] = 0.0  # nodata corner stays 0 through spectral augmentation
    s2["image"][:, 2:, :] += 0.5
    out2 = SampleTransform([], [GaussianNoise(0.1, p=1.0), CloudHaze(p=1.0)])(s2)
    assert (out2["image"][:, :2, :2] == 0).all() and (out2["image"][:, 2:] != 0).any()
    hazy = CloudHaze(p=1.0, max_haze=0.0, coverage=0.5, max_cloud=1.0, brightness=3.0)(
        torch.zeros(2, 64, 64))
    assert hazy.max() > 2.0 and (hazy == 0).float().mean() > 0.3  # clouds cover part of the tile


def test_build_transforms_errors():
    assert build_transforms(None) is None and build_transforms({}) is None
    with pytest.raises(ConfigError, match="Unknown augmentation"):
        build_transforms({"flip": 0.5})
    with pytest.raises(ConfigError, match="needs size"):
        build_transforms({"resized_crop": {"scale": [0.5, 1]}})
    with pytest.raises(ConfigError, match="Bad augmentation option"):
        build_transforms({"noise": {"sigma": 1}})


def test_augmentation_names_match_the_recipe_schema():
    from rsfm.config import AUGMENTATIONS
    from rsfm.data.transforms import _AUGMENTATIONS

    assert set(_AUGMENTATIONS) == set(AUGMENTATIONS)
