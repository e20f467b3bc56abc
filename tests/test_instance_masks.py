"""Mask R-CNN: instance masks from polygon labels, through augmentation, batching, training,
validation (mask mAP) and prediction; sources without outlines are refused before compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import SPACENET, SPACENET_VEC, make_spec
from torch.utils.data import DataLoader

from rsfm.data import SceneDataset, collate_fn
from rsfm.data.transforms import build_transforms
from rsfm.errors import ConfigError

DET = make_spec(SPACENET, ["building"])
ROOT = Path(__file__).resolve().parents[1]


def test_polygons_give_one_mask_per_box():
    ds = SceneDataset(SPACENET, SPACENET_VEC, DET, task="detection", tile_size=300,
                      instance_masks=True)
    boxes_only = SceneDataset(SPACENET, SPACENET_VEC, DET, task="detection", tile_size=300)
    seen = 0
    for i in range(len(ds)):
        s, b = ds[i], boxes_only[i]
        masks, boxes = s["masks"], s["boxes"]
        assert "masks" not in b and torch.equal(boxes, b["boxes"])
        assert masks.dtype == torch.uint8 and masks.shape == (len(boxes), 300, 300)
        for m, (x0, y0, x1, y1) in zip(masks, boxes.tolist()):
            rows, cols = np.nonzero(m.numpy())
            assert len(rows)  # every kept box has pixels
            # the mask lies inside its box (a pixel of rounding at the edges)
            assert cols.min() >= x0 - 1 and cols.max() <= x1 and rows.min() >= y0 - 1 and rows.max() <= y1
        seen += len(boxes)
    assert seen >= 43


def test_masks_follow_flips_and_crops_and_batch_as_lists():
    aug = build_transforms({"hflip": 1.0})
    ds = SceneDataset(SPACENET, SPACENET_VEC, DET, task="detection", tile_size=300,
                      instance_masks=True)
    flipped = SceneDataset(SPACENET, SPACENET_VEC, DET, task="detection", tile_size=300,
                           instance_masks=True, transforms=aug)
    s, f = ds[0], flipped[0]
    assert torch.equal(f["masks"], s["masks"].flip(-1))
    batch = collate_fn([ds[0], ds[1]])
    assert isinstance(batch["masks"], list) and [len(m) for m in batch["masks"]] == [len(b) for b in batch["boxes"]]
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_fn)
    assert len(next(iter(loader))["masks"]) == 2


def test_chips_with_box_labels_are_refused_for_mask_rcnn():
    from rsfm.data.chips import ChipDataset

    df = ROOT / "tests" / "data" / "deepforest"
    spec = make_spec(next((df / "images").iterdir()), ["Tree"])
    with pytest.raises(ConfigError, match="mask_rcnn needs object outlines"):
        ChipDataset(df / "images", df / "annotations", spec, task="detection", instance_masks=True)


def test_mask_rcnn_trains_on_polygons_and_reports_mask_map(tmp_path):
    import rasterio
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    from rsfm.train.loop import train

    with rasterio.open(SPACENET) as src:  # a 256 px corner of the scene: four 128 px tiles
        window = Window(0, 0, 256, 256)
        profile = {**src.profile, "width": 256, "height": 256,
                   "transform": window_transform(window, src.transform)}
        with rasterio.open(tmp_path / "corner.tif", "w", **profile) as dst:
            dst.write(src.read(window=window))
    src = {"images": str(tmp_path / "corner.tif"), "labels": str(SPACENET_VEC)}
    recipe = {
        "name": "masks",
        "model": {"task": "detection", "backbone": "resnet18", "head": "mask_rcnn", "num_classes": 1,
                  "pretrained": False, "bands": [{"name": "PAN"}],
                  # a random model keeps hundreds of boxes; each costs a mask-head pass on the CPU
                  "head_kwargs": {"box_detections_per_img": 10, "rpn_post_nms_top_n_train": 64,
                                  "rpn_post_nms_top_n_test": 32, "box_batch_size_per_image": 32}},
        "data": {"kind": "scenes", "train": src, "val": src, "classes": ["building"], "file_bands": ["PAN"],
                 "tile_size": 128, "normalization": {"mode": "per_tile"}, "batch_size": 2,
                 "augment": {"hflip": 0.5}},
        "train": {"epochs": 1, "max_steps": 2, "optimizer": {"lr": 1e-4}, "progress": False},
        "output": {"dir": str(tmp_path / "run")},
    }
    result = train(recipe)
    row = result.history[-1]
    assert 0.0 <= row["val_map_50"] <= 1.0
    assert "val_segm_map_50" in row and 0.0 <= row["val_segm_map_50"] <= 1.0


def test_rsfm_check_refuses_mask_rcnn_on_chip_labels():
    from rsfm.recipe import load_recipe

    with pytest.raises(ConfigError, match=r"data\.kind: model\.head mask_rcnn learns object outlines"):
        load_recipe(ROOT / "recipes" / "vit_faster_rcnn_detection.yaml", ["model.head=mask_rcnn"])
