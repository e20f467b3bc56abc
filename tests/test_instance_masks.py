"""Mask R-CNN: instance masks from polygon labels, through augmentation, batching, training,
validation (mask mAP) and prediction (instance outlines as polygons, merged across tiles);
sources without outlines are refused before compute."""

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
    # rsfm evaluate scores the predicted outlines too, through predict's tiling
    from rsfm.evaluation import evaluate

    scored = evaluate(tmp_path / "run", split="val", write=False, progress=False)
    assert 0.0 <= scored.metrics["map_50"] <= 1.0
    assert 0.0 <= scored.metrics["segm_map_50"] <= 1.0


def test_rsfm_check_refuses_mask_rcnn_on_chip_labels():
    from rsfm.recipe import load_recipe

    with pytest.raises(ConfigError, match=r"data\.kind: model\.head mask_rcnn learns object outlines"):
        load_recipe(ROOT / "recipes" / "vit_faster_rcnn_detection.yaml", ["model.head=mask_rcnn"])


# ----------------------------------------------------------------------------- prediction
def _write_scene(path: Path, data: np.ndarray) -> Path:
    import rasterio
    from rasterio.transform import Affine

    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype,
                       crs="EPSG:32616", transform=Affine(2.0, 0, 500000, 0, -2.0, 4000000)) as ds:
        ds.write(data)
        for i, name in enumerate(("RED", "GREEN", "BLUE")):
            ds.set_band_description(i + 1, name)
    return path


def _disc_detector(x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """A Mask R-CNN stand-in: the bright pixels of a tile are one instance, its soft mask 0.9;
    like a real model, it is less sure of an object cut by the tile border (fewer pixels)."""
    out = []
    for img in x:
        bright = img[0] > 0.5
        ys, xs = torch.nonzero(bright, as_tuple=True)
        if len(ys):
            box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
            score = torch.tensor([len(ys) / 1000])
            out.append({"boxes": box, "labels": torch.tensor([1]), "scores": score,
                        "masks": bright[None, None].float() * 0.9})
        else:
            out.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                        "scores": torch.zeros(0), "masks": torch.zeros(0, 1, *img.shape[-2:])})
    return out


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson"])
def test_predict_writes_one_outline_per_instance_across_tiles(tmp_path, suffix):
    from rsfm.inference.predict import PredictOptions, predict_scene
    from rsfm.inference.vectorize import read_features

    yy, xx = np.mgrid[:150, :150]
    disc = (yy - 60) ** 2 + (xx - 70) ** 2 < 15**2  # seen whole and cut by several 64 px tiles
    data = np.full((3, 150, 150), 10, dtype=np.uint8)
    data[:, disc] = 250
    scene = _write_scene(tmp_path / "s.tif", data)
    spec = make_spec(["RED", "GREEN", "BLUE"], ["tree"], value_scale=1 / 255, tile_size=64)
    res = predict_scene(_disc_detector, scene, tmp_path / f"crowns{suffix}", spec, task="detection",
                        options=PredictOptions(overlap=32, progress=False))
    crs, feats = read_features(tmp_path / f"crowns{suffix}")
    assert res.summary["objects"] == 1 and len(feats) == 1
    props, geom = feats[0]["properties"], feats[0]["geometry"]
    assert props["class"] == "tree" and props["class_value"] == 0 and props["score"] == pytest.approx(disc.sum() / 1000, abs=1e-4)
    assert props["pixels"] == disc.sum()
    if suffix == ".geojson":  # RFC 7946: longitude/latitude
        assert crs == "EPSG:4326" and -90 < geom.centroid.x < -80
        return
    assert crs == "EPSG:32616"
    assert geom.area == pytest.approx(disc.sum() * 4)  # the disc's pixels, 2 m each
    assert geom.area < 0.85 * geom.envelope.area  # round, not its box
    x0, y0, x1, y1 = geom.bounds
    assert (x0, x1) == (500000 + 56 * 2, 500000 + 85 * 2)
    assert (y0, y1) == (4000000 - 75 * 2, 4000000 - 46 * 2)


def test_tiny_mask_rcnn_predicts_instance_polygons(tmp_path):
    from rasterio.transform import Affine
    from shapely.affinity import affine_transform

    from rsfm.factory import create_model
    from rsfm.inference.predict import predict, predict_array
    from rsfm.inference.vectorize import instance_polygon, read_features

    torch.manual_seed(0)
    model = create_model("detection", "resnet18", head="mask_rcnn", num_classes=1,
                         bands=["RED", "GREEN", "BLUE"], classes=["building"],
                         box_detections_per_img=4, rpn_post_nms_top_n_test=32)
    rng = np.random.default_rng(0)  # 2 x 2 overlapping tiles
    scene = _write_scene(tmp_path / "s.tif", rng.integers(1, 255, (3, 90, 80), dtype=np.uint8))
    opts = {"tile_size": 64, "overlap": 16, "progress": False}
    res = predict(model, scene, tmp_path / "b.gpkg", **opts)
    crs, feats = read_features(tmp_path / "b.gpkg")
    assert crs == "EPSG:32616" and len(feats) == res.summary["objects"] > 0
    # the polygons are the outlines of the instance masks the engine keeps (same tiling, merge)
    pred = predict_array(model, scene, **opts)
    assert pred.masks is not None and len(pred.masks) == len(pred.boxes) == len(feats)
    t = Affine(2.0, 0, 500000, 0, -2.0, 4000000)
    coeffs = [t.a, t.b, t.d, t.e, t.xoff, t.yoff]
    outlines = [affine_transform(instance_polygon(m), coeffs) for m in pred.masks]
    assert all(f["geometry"].equals(o) for f, o in zip(feats, outlines))
    assert sorted(f["properties"]["score"] for f in feats) == pytest.approx(
        sorted(pred.scores.tolist()), abs=1e-4)
    # random weights give ragged masks: outlines, not boxes
    assert any(not f["geometry"].equals(f["geometry"].envelope) for f in feats)
    scene_box = (500000, 4000000 - 180, 500000 + 160, 4000000)
    for f in feats:
        x0, y0, x1, y1 = f["geometry"].bounds
        assert scene_box[0] <= x0 and scene_box[1] <= y0 and x1 <= scene_box[2] and y1 <= scene_box[3]
