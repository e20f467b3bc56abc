"""Chip folders: Sen1Floods11 (SAR, NaN nodata, -1 labels), Dubai colour masks, NEON VOC boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from data_fixtures import (
    DUBAI,
    DUBAI_COLORS,
    DUBAI_RULES,
    DUBAI_SPEC,
    S1,
    S1_KW,
    S1_LABELS,
    S1_SPEC,
    S2_CHIP,
    TREES,
    make_spec,
)
from torch.utils.data import DataLoader

from rsfm.data import ChipDataset, LabelRules, collate_fn
from rsfm.data.labels import read_voc
from rsfm.errors import DataError
from rsfm.spec import resolve_bands_stated

RGB = ["RED", "GREEN", "BLUE"]


def test_sen1floods11_chips_nodata_and_ignore():
    spec = make_spec(["VV", "VH"], ["dry", "water"], mean=[-10.0, -17.0], std=[4.0, 5.0])
    ds = ChipDataset(S1, S1_LABELS, spec, **S1_KW)
    # Paraguay_34417 is entirely NaN: skipped and counted
    assert len(ds) == 3
    assert ds.stats["skipped_nodata"] == 1 and "Paraguay_34417" in ds.stats["skipped_items"][0]
    assert ds.bands == ["VV", "VH"] and ds.classes == ["dry", "water"] and ds.ignore_index == -1
    s = ds[0]  # Bolivia crop: holds NaN pixels
    assert s["image"].dtype == torch.float32 and s["image"].shape == (2, 128, 128)
    assert s["mask"].dtype == torch.int64 and s["mask"].shape == (128, 128)
    with rasterio.open(S1 / "Bolivia_312675_S1Hand.tif") as src:
        raw = src.read()
    nan = np.isnan(raw).any(axis=0)
    assert nan.sum() > 100
    assert (s["image"][:, torch.from_numpy(nan)] == 0).all()
    assert (s["mask"][torch.from_numpy(nan)] == -1).all()
    # normalised with the given statistics where valid
    v = ~nan
    expected = (raw[0][v] + 10.0) / 4.0
    assert np.allclose(s["image"][0].numpy()[v], expected, atol=1e-5)
    assert set(np.unique(s["mask"].numpy())) <= {-1, 0, 1}


def test_custom_ignore_index_and_manifest_split(tmp_path):
    rows = ["image,label,split"]
    for stem, split in (("Bolivia_312675", "train"), ("Ghana_53713", "val"),
                        ("Spain_7370579", "train")):
        rows.append(f"{S1}/{stem}_S1Hand.tif,{S1_LABELS}/{stem}_LabelHand.tif,{split}")
    (tmp_path / "m.csv").write_text("\n".join(rows))
    ds = ChipDataset(None, None, make_spec(["VV", "VH"], ["dry", "water"], ignore_index=255),
                     manifest=tmp_path / "m.csv", split="train", label_rules=S1_KW["label_rules"])
    assert len(ds) == 2 and ds.ignore_index == 255
    assert 255 in ds[0]["mask"].unique()  # the -1 labels of Bolivia
    (tmp_path / "val.txt").write_text("Ghana_53713_S1Hand.tif\n")
    ds2 = ChipDataset(S1, S1_LABELS, S1_SPEC, split_file=tmp_path / "val.txt", **S1_KW)
    assert ds2.names() == ["Ghana_53713_S1Hand.tif"]


def test_s2_chip_bands_by_name_and_indices():
    bands = resolve_bands_stated(["B04", "B03", "B02", "NIR_NARROW"])
    ds = ChipDataset([S2_CHIP], None, make_spec(bands, indices=("NDVI", "ndwi"), value_scale=1e-4),
                     task="none")
    assert ds.bands == ["B4", "B3", "B2", "NIR_NARROW", "NDVI", "NDWI"]  # catalog names
    img = ds[0]["image"]
    assert img.shape == (6, 128, 128)
    with rasterio.open(S2_CHIP) as src:
        b8, b4 = src.read(8).astype(float), src.read(4).astype(float)
    ndvi = (b8 - b4) / (b8 + b4)  # NDVI prefers the broad NIR (B8), as usual for Sentinel-2
    assert np.allclose(img[4].numpy(), ndvi, atol=1e-5)
    assert np.allclose(img[3].numpy(), src_band(9) * 1e-4, atol=1e-6)


def src_band(i):
    with rasterio.open(S2_CHIP) as src:
        return src.read(i).astype(np.float32)


def test_dubai_colour_masks_road_quirk():
    ds = ChipDataset(DUBAI / "images", DUBAI / "masks", DUBAI_SPEC, label_rules=DUBAI_RULES)
    assert ds.bands == ["RED", "GREEN", "BLUE"]
    s = ds[0]
    assert s["image"].shape[0] == 3 and s["image"].min() >= 0 and s["image"].max() <= 1
    counts = np.bincount(s["mask"].numpy().ravel() + 1, minlength=7)
    assert counts[1 + 2] > 1000  # roads found via the colour the masks really use
    assert ds.stats["unknown_color_pixels"] == 0
    # with the class file's road colour instead, road pixels are unknown and counted
    bad = dict(DUBAI_COLORS)
    del bad["#6EC1E4"]
    bad["#1BB3F5"] = 2
    ds2 = ChipDataset(DUBAI / "images", DUBAI / "masks", DUBAI_SPEC,
                      label_rules=LabelRules(color_map=bad), on_invalid_label="ignore")
    m2 = ds2[0]["mask"]
    assert (m2 == 2).sum() == 0 and ds2.stats["unknown_color_pixels"] == counts[3]


def test_voc_detection_chips_and_loader():
    ds = ChipDataset([TREES / "images/OSBS_029.tif", TREES / "images/SOAP_061.png"],
                     TREES / "annotations", make_spec(RGB, ["Tree", "Alive", "Dead"]),
                     task="detection")
    s = ds[0]
    assert s["boxes"].shape == (61, 4) and s["boxes"].dtype == torch.float32
    assert (s["labels"] == 0).all() and s["labels"].dtype == torch.int64
    assert s["boxes"][0].tolist() == [203, 67, 227, 90]
    assert set(ds[1]["labels"].tolist()) == {1, 2}
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_fn)))
    assert batch["image"].shape == (2, 3, 400, 400)
    assert isinstance(batch["boxes"], list) and [len(b) for b in batch["boxes"]] == [61, 37]
    assert batch["meta"]["path"][0].endswith("OSBS_029.tif")


def test_coco_detection(tmp_path):
    _, boxes, _labels = read_voc(TREES / "annotations/OSBS_029.xml", ["Tree"])
    doc = {"images": [{"id": 7, "file_name": "OSBS_029.tif", "width": 400, "height": 400}],
           "categories": [{"id": 1, "name": "Tree"}],
           "annotations": [{"id": i, "image_id": 7, "category_id": 1,
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]),
                                     float(b[3] - b[1])]} for i, b in enumerate(boxes)]}
    (tmp_path / "coco.json").write_text(json.dumps(doc))
    ds = ChipDataset([TREES / "images/OSBS_029.tif"], tmp_path / "coco.json", make_spec(RGB),
                     task="detection")
    assert ds.classes == ["Tree"]
    s = ds[0]
    assert torch.equal(s["boxes"], torch.from_numpy(boxes)) and (s["labels"] == 0).all()


def test_multitemporal_chips_and_workers():
    a, b = S1 / "Bolivia_312675_S1Hand.tif", S1 / "Ghana_53713_S1Hand.tif"
    # Two different chips are not co-registered: refused with both names
    with pytest.raises(DataError, match="co-registered"):
        ChipDataset([[a, b]], None, S1_SPEC, task="none")
    ds = ChipDataset([[a, a]], [S1_LABELS / "Bolivia_312675_LabelHand.tif"], S1_SPEC,
                     label_rules=LabelRules(ignore_values=(-1,)))
    s = ds[0]
    assert s["image"].shape == (2, 2, 128, 128) and s["mask"].shape == (128, 128)
    ds1 = ChipDataset(S1, S1_LABELS, S1_SPEC, **S1_KW)
    loader = DataLoader(ds1, batch_size=2, num_workers=2, collate_fn=collate_fn)
    shapes = [tuple(b["image"].shape) for b in loader]
    assert shapes == [(2, 2, 128, 128), (1, 2, 128, 128)]


def test_yolo_chip_class_out_of_range_and_clipped_boxes(tmp_path):
    from rsfm.errors import DataError

    img = TREES / "images/OSBS_029.tif"
    (tmp_path / "OSBS_029.txt").write_text("0 0.99 0.5 0.1 0.1\n")  # overhangs the right edge
    ds = ChipDataset([img], tmp_path, make_spec(RGB, ["Tree"]), task="detection",
                     label_format="yolo")
    b = ds[0]["boxes"]
    assert b.shape == (1, 4) and b[0, 2] == 400 and np.isclose(b[0, 0].item(), 376.0)
    (tmp_path / "OSBS_029.txt").write_text("3 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match="class ids \\[3\\] but only 1 classes"):
        ds[0]


def test_partly_annotated_voc_folder(tmp_path, caplog):
    import shutil

    import pytest

    from rsfm.errors import DataError

    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(TREES / "images/OSBS_029.tif", images)
    shutil.copy(TREES / "images/OSBS_029.tif", images / "no_label.tif")
    with pytest.raises(DataError, match="missing_labels='skip'"):
        ChipDataset(images, TREES / "annotations", make_spec(RGB, ["Tree"]), task="detection")
    ds = ChipDataset(images, TREES / "annotations", make_spec(RGB, ["Tree"]), task="detection",
                     missing_labels="skip")
    assert len(ds) == 1 and "1 image(s) without a label" in caplog.text


def test_guess_suffixes_pairs_names_that_differ_by_an_ending():
    from rsfm.data.chips import guess_suffixes

    def paths(*names):
        return [Path(f"{n}.tif") for n in names]

    assert guess_suffixes(paths("a_S1Hand", "b_S1Hand"), paths("a_LabelHand", "b_LabelHand")) == (
        "_S1Hand", "_LabelHand")
    assert guess_suffixes(paths("Bolivia_1_S1Hand"), paths("Bolivia_1_LabelHand")) == (
        "_S1Hand", "_LabelHand")  # one file: its last separated part
    assert guess_suffixes(paths("a", "b"), paths("a", "b", "c")) == ("", "")  # plain stems pair
    assert guess_suffixes(paths("x_1", "y_2"), paths("z_1", "w_2")) == ("", "")  # nothing pairs
