"""ArcGIS "Export Training Data For Deep Learning" folders: the reader, the recipe defaults, the
datasets, and one training step + prediction per metadata format (fixtures written by
tests/data/arcgis/make_fixtures.py in the real layout)."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from rsfm.data.arcgis import detect, read_arcgis_export, recipe_defaults
from rsfm.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
ARC = ROOT / "tests" / "data" / "arcgis"
TINY_DOFA = {"depth": 1, "embed_dim": 32, "num_heads": 2}


@pytest.fixture
def arcgis_log(caplog):
    """caplog for the loggers that report what an export filled in (propagation may be off)."""
    loggers = [logging.getLogger(n) for n in ("rsfm.data.arcgis", "rsfm.recipe")]
    for lg in loggers:
        lg.addHandler(caplog.handler)
        lg.setLevel(logging.INFO)
    yield caplog
    for lg in loggers:
        lg.removeHandler(caplog.handler)
        lg.setLevel(logging.NOTSET)


def copy_export(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(ARC / name, dst)
    return dst


def edit_json(path: Path, **changes) -> None:
    doc = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    path.write_text(json.dumps(doc, indent=2))


def load(images, **model):
    """A recipe over an export folder (``kind`` not written: auto-detected)."""
    from rsfm.recipe import load_recipe

    return load_recipe({"model": {"backbone": "resnet18", "head": "fcn", **model},
                        "data": {"train": {"images": str(images)}}})


# ------------------------------------------------------------------------------- the reader


def test_read_classified_tiles():
    export = read_arcgis_export(ARC / "classified_tiles")
    assert export.metadata_format == "Classified_Tiles" and export.task == "segmentation"
    assert [(c.value, c.name, c.color) for c in export.classes] == [
        (1, "Water", (0, 112, 255)), (5, "Forest", (38, 115, 0)),
        (20, "Built-up area", (255, 0, 0))]
    assert export.chip_size == (32, 32) and export.tile_size == 32
    assert export.band_names == ("Red", "Green", "Blue", "NearInfrared") and export.num_bands == 4
    assert export.sensor_name == "Sentinel-2" and export.image_space == "MAP_SPACE"
    assert export.wavelengths is None and export.label_suffix == ".tif"
    # 4 chips; the GDAL .aux.xml sidecar in images/ is not a chip; map.txt is CRLF + backslashes
    assert [c.image.name for c in export.chips] == [f"00000000{i}.tif" for i in range(4)]
    assert all(c.label == export.root / "labels" / c.image.name for c in export.chips)
    assert not export.unlabeled and not export.notes
    # statistics: Mean/StdDev are written as 0; mean = M1, std = sqrt(M2 / Num)
    state = json.loads((ARC / "classified_tiles" / "esri_accumulated_stats.json").read_text())
    for stat, raw in zip(export.band_stats, state["BandStatsState"]):
        assert raw["Mean"] == 0 and raw["StdDev"] == 0
        assert stat.mean == raw["M1"] and math.isclose(stat.std, math.sqrt(raw["M2"] / raw["Num"]))
    assert detect(ARC / "classified_tiles") and not detect(ARC) and not detect(ARC / "nope")
    # the export's images/ folder also names the export
    assert read_arcgis_export(ARC / "classified_tiles" / "images").root == export.root


@pytest.mark.parametrize(("name", "fmt", "task", "chips"), [
    ("classified_tiles", "Classified_Tiles", "segmentation", 4),
    ("pascal_voc", "PASCAL_VOC_rectangles", "detection", 3),
    ("kitti", "KITTI_rectangles", "detection", 3),
    ("rcnn_masks", "RCNN_Masks", "detection", 3),
    ("labeled_tiles", "Labeled_Tiles", "classification", 4),
    ("legacy_template", "Classified_Tiles", "segmentation", 3),
])
def test_every_format_reads(name, fmt, task, chips):
    export = read_arcgis_export(ARC / name)
    assert (export.metadata_format, export.task, len(export.chips)) == (fmt, task, chips)
    assert export.chip_size == (32, 32)


def test_voc_chip_without_label_is_left_out(arcgis_log):
    export = read_arcgis_export(ARC / "pascal_voc")
    assert [p.name for p in export.unlabeled] == ["000000003.jpg"]
    assert export.band_names == ("", "", "")  # unnamed bands (SensorName "Undefined")
    assert any("no label file" in n for n in export.notes)


def test_rcnn_class_folders_by_name_or_value():
    export = read_arcgis_export(ARC / "rcnn_masks")
    first = export.chips[0]
    assert first.label is None
    # labels/Building/ (class name) and labels/2/ (class value of "Tree crown")
    assert sorted(v for v, _ in first.masks) == [1, 2]
    assert [len(c.masks) for c in export.chips] == [2, 1, 2]


def test_legacy_template_emd():
    """Pro 2.x: the .emd is the template ("e.g. 256"), MetaDataMode only in the stats file."""
    export = read_arcgis_export(ARC / "legacy_template")
    assert export.metadata_format == "Classified_Tiles"  # from esri_accumulated_stats.json
    assert export.chip_size == (32, 32)  # TileSizeX/Y, not "e.g. 256"
    assert [(c.value, c.name, c.color) for c in export.classes] == [(1, "1", None), (4, "4", None)]
    assert export.band_names == () and export.band_stats == () and export.num_bands == 3


def test_lenient_where_real_exports_vary(tmp_path):
    folder = copy_export("classified_tiles", tmp_path)
    emd = folder / "esri_model_definition.emd"
    edit_json(emd, ImageHeight="e.g. 256", ImageWidth="e.g. 256", MetaDataMode=None,
              Classes=[{"ClassValue": "20", "ClassName": "Built-up area"},  # other spellings
                       {"ClassValue": 1, "ClassName": "Water", "Color": [-1, -1, -1]},
                       {"ClassValue": 5}])
    emd.write_bytes(b"\xef\xbb\xbf" + emd.read_bytes())  # a BOM, as Windows tools write
    text = (folder / "map.txt").read_text().replace("labels\\000000000.tif", "labels\\000000000.png")
    (folder / "map.txt").write_text(text.replace(".tif \r\n", ".png \r\n"))
    export = read_arcgis_export(folder)
    assert export.metadata_format == "Classified_Tiles" and export.chip_size == (32, 32)
    assert [(c.value, c.name, c.color) for c in export.classes] == [
        (1, "Water", None), (5, "5", None), (20, "Built-up area", None)]
    assert len(export.chips) == 4 and export.label_suffix == ".tif"
    assert any("map.txt names label files '*.png'" in n for n in export.notes)
    (folder / "map.txt").unlink()
    assert len(read_arcgis_export(folder).chips) == 4  # pairs by name without map.txt


# ------------------------------------------------------------------------------- errors


def test_missing_emd_names_file_and_layout(tmp_path):
    folder = copy_export("kitti", tmp_path)
    (folder / "esri_model_definition.emd").unlink()
    assert not detect(folder)
    with pytest.raises(DataError, match=r"esri_model_definition\.emd' not found.*images/, labels/"):
        read_arcgis_export(folder)
    from rsfm.recipe import load_recipe

    with pytest.raises(DataError, match=r"esri_model_definition\.emd"):  # kind: arcgis says so too
        load_recipe({"model": {"task": "detection", "backbone": "resnet18", "head": "fcos"},
                     "data": {"kind": "arcgis", "train": {"images": str(folder)}}})


def test_broken_json_names_file(tmp_path):
    folder = copy_export("kitti", tmp_path)
    emd = folder / "esri_model_definition.emd"
    emd.write_text(emd.read_text()[:200])
    with pytest.raises(DataError, match=r"esri_model_definition\.emd' is not valid JSON .*line"):
        read_arcgis_export(folder)
    stats = copy_export("labeled_tiles", tmp_path) / "esri_accumulated_stats.json"
    stats.write_text("{\"MetaDataMode\" : ")
    with pytest.raises(DataError, match=r"esri_accumulated_stats\.json' is not valid JSON"):
        read_arcgis_export(stats.parent)


def test_unknown_format_names_file(tmp_path):
    folder = copy_export("kitti", tmp_path)
    edit_json(folder / "esri_accumulated_stats.json", MetaDataMode="Fancy_Tiles")
    with pytest.raises(DataError, match=r"esri_accumulated_stats\.json': MetaDataMode "
                                        r"'Fancy_Tiles' is not a known.*Classified_Tiles"):
        read_arcgis_export(folder)


def test_missing_labels_folder_and_classes(tmp_path):
    folder = copy_export("kitti", tmp_path)
    shutil.rmtree(folder / "labels")
    with pytest.raises(DataError, match=r"labels' not found: a KITTI_rectangles export keeps its "
                                        r"labels as labels/<chip name>\.txt"):
        read_arcgis_export(folder)
    folder = copy_export("labeled_tiles", tmp_path)
    edit_json(folder / "esri_model_definition.emd", Classes=None)
    edit_json(folder / "esri_accumulated_stats.json", Classes=None)
    with pytest.raises(DataError, match=r"has no \"Classes\" list"):
        read_arcgis_export(folder)


def test_format_rsfm_cannot_train_is_a_clear_error(tmp_path):
    folder = copy_export("labeled_tiles", tmp_path)
    for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        edit_json(folder / doc, MetaDataMode="MultiLabeled_Tiles")
    assert read_arcgis_export(folder).task is None
    with pytest.raises(ConfigError, match=r"MultiLabeled_Tiles export, which holds several classes per chip.*rsfm trains Classified"):
        load(folder, head="classification")


# ------------------------------------------------------------------------------- recipe defaults


def test_auto_detection_and_defaults(arcgis_log):
    recipe = load(ARC / "classified_tiles")  # kind not written: chips -> arcgis
    assert "reading it as an ArcGIS export" in arcgis_log.text
    d = recipe.data
    assert d.kind == "arcgis" and recipe.model.task == "segmentation"
    assert [c.name for c in d.classes] == ["NoData", "Water", "Forest", "Built-up area"]
    assert [c.color for c in d.classes] == [None, "#0070FF", "#267300", "#FF0000"]
    assert recipe.model.num_classes == 4
    # class values 1, 5, 20 -> ids 1, 2, 3; 0 (NoData) -> 0; 2 and 3 are no class: ignored
    assert d.label_map == {0: 0, 1: 1, 2: -1, 3: -1, 5: 2, 20: 3}
    assert d.file_bands == ("RED", "GREEN", "BLUE", "NIR_NARROW") and d.tile_size == 32
    assert d.label_format == "raster" and d.missing_labels == "skip"
    # SensorName "Sentinel-2": data.sensor, so the bands are Sentinel-2's (NIR_NARROW is B8A)
    assert d.sensor == "sentinel2" and "sensor ('Sentinel-2')" in arcgis_log.text
    # resnet18's card has no NIR statistics: the export's are used, and the log says why
    export = read_arcgis_export(ARC / "classified_tiles")
    assert d.normalization.mode == "stats"
    assert d.normalization.mean == tuple(s.mean for s in export.band_stats)
    assert "card of 'resnet18' has none for ['NIR_NARROW']" in arcgis_log.text
    # an explicit kind: chips is read as the export too; a plain chip folder stays chips
    from rsfm.recipe import load_recipe

    again = load_recipe({"model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn",
                                   "num_classes": 4},
                         "data": {"kind": "chips",
                                  "train": {"images": str(ARC / "classified_tiles")}}})
    assert again.data.kind == "arcgis"
    s1 = ROOT / "tests" / "data" / "sen1floods11"
    plain = load_recipe({"model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn",
                                   "num_classes": 2, "bands": ["VV", "VH"]},
                         "data": {"train": {"images": str(s1 / "S1Hand"),
                                            "labels": str(s1 / "LabelHand")},
                                  "normalization": {"mode": "per_tile"}}})
    assert plain.data.kind == "chips" and not detect(s1 / "S1Hand")


def test_user_keys_win_and_nodata_opt_out():
    from rsfm.recipe import load_recipe

    recipe = load_recipe({
        "model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn"},
        "data": {"kind": "arcgis", "train": {"images": str(ARC / "classified_tiles")},
                 "label_ignore_values": [0], "tile_size": 16,
                 "bands": ["RED", "NIR_NARROW"], "normalization": {"mode": "stats"}}})
    d = recipe.data
    # value 0 ignored: the classes are the export's only, ids 0..2; value 2 would pass as "Built-up"
    assert [c.name for c in d.classes] == ["Water", "Forest", "Built-up area"]
    assert d.label_map == {1: 0, 2: -1, 5: 1, 20: 2} and recipe.model.num_classes == 3
    assert d.tile_size == 16 and d.bands == ("RED", "NIR_NARROW")
    # mode stats without values: the export's statistics of the stated bands
    stats = read_arcgis_export(ARC / "classified_tiles").band_stats
    assert d.normalization.mean == (stats[0].mean, stats[3].mean)
    assert d.normalization.bands == ("RED", "NIR_NARROW")


def test_class_count_and_task_must_fit_the_export():
    with pytest.raises(ConfigError, match=r"num_classes is 3 but the ArcGIS export .* has 4 "
                                          r"classes "
                                          r"\['NoData', 'Water', 'Forest', 'Built-up area'\].*"
                                          r"label_ignore_values: \[0\]"):
        load(ARC / "classified_tiles", num_classes=3)
    with pytest.raises(ConfigError, match=r"model\.task is .segmentation. but .* PASCAL_VOC"):
        load(ARC / "pascal_voc", task="segmentation")
    with pytest.raises(ConfigError, match=r"mask_rcnn needs instance masks.*boxes only"):
        load(ARC / "pascal_voc", head="mask_rcnn")
    assert load(ARC / "rcnn_masks", head="mask_rcnn").model.head == "mask_rcnn"


def test_rcnn_masks_give_instance_masks_for_mask_rcnn():
    from rsfm.datasets import build_datasets
    from rsfm.preflight import preflight

    recipe = load(ARC / "rcnn_masks", task="detection", head="mask_rcnn")
    ds = build_datasets(recipe, preflight(recipe)).train
    boxes_only = _dataset("rcnn_masks", "detection")
    sample, plain = ds[0], boxes_only[0]
    assert "masks" not in plain and torch.equal(sample["boxes"], plain["boxes"])
    masks = sample["masks"]
    assert masks.dtype == torch.uint8 and masks.shape == (len(sample["boxes"]), *sample["image"].shape[-2:])
    for m, (x0, y0, x1, y1) in zip(masks, sample["boxes"].tolist()):  # each box is its mask's extent
        rows, cols = np.nonzero(m.numpy())
        assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x0, y0, x1, y1)


def test_legacy_template_defaults_rgb_from_first_chip():
    recipe = load(ARC / "legacy_template")
    d = recipe.data
    assert [c.name for c in d.classes] == ["NoData", "1", "4"]
    assert all(c.color is None for c in d.classes)  # [-1, -1, -1]: rsfm's palette
    assert d.label_map == {0: 0, 1: 1, 2: -1, 4: 2}
    assert d.bands == ("RED", "GREEN", "BLUE")  # 3 unnamed uint8 bands: RGB, like arcgis.learn
    assert d.normalization.mode == "card"  # resnet18's ImageNet statistics cover RGB


def test_val_export_must_match(tmp_path):
    from rsfm.recipe import load_recipe

    val = copy_export("kitti", tmp_path)
    edit_json(val / "esri_model_definition.emd",
              Classes=[{"Value": 1, "Name": "Palm"}, {"Value": 7, "Name": "Other"}])
    with pytest.raises(ConfigError, match=r"data\.val\.images: .*\(class values \[1, 7\] vs "
                                          r"\[1, 2\]"):
        load_recipe({"model": {"task": "detection", "backbone": "resnet18", "head": "fcos"},
                     "data": {"kind": "arcgis", "train": {"images": str(ARC / "kitti")},
                              "val": {"images": str(val)}}})


def test_defaults_are_a_mapping_under_the_users_keys():
    export = read_arcgis_export(ARC / "kitti")
    out = recipe_defaults(export, {"train": {"images": "x"}, "classes": ["a", "b"]},
                          {"task": "detection", "head": "fcos"})
    assert "classes" not in out["data"] and out["model"] == {"num_classes": 2}
    assert out["data"]["kind"] == "arcgis" and out["data"]["file_bands"] == ["RED", "GREEN", "BLUE"]


# ------------------------------------------------------------------------------- datasets


def _dataset(name: str, task: str):
    from rsfm.datasets import build_datasets
    from rsfm.preflight import preflight

    head = {"segmentation": "fcn", "detection": "fcos", "classification": "classification"}[task]
    recipe = load(ARC / name, task=task, head=head)
    return build_datasets(recipe, preflight(recipe)).train


def test_classified_tiles_value_map():
    ds = _dataset("classified_tiles", "segmentation")
    sample = ds[0]
    with rasterio.open(ds.items[0][1]) as src:
        raw = src.read(1)
    mask = sample["mask"].numpy()
    for value, cls in ((0, 0), (1, 1), (5, 2), (20, 3)):
        assert (mask[raw == value] == cls).all()
    assert sample["image"].shape == (4, 32, 32)


def test_classified_tiles_classes_keep_their_export_values():
    """Prediction rasters speak the export's class values (0 NoData, 1, 5, 20), not ids 0..3."""
    from rsfm.registry import get_card
    from rsfm.spec import resolve_input_spec

    recipe = load(ARC / "classified_tiles", task="segmentation", head="fcn")
    spec = resolve_input_spec(recipe.model, get_card("resnet18"), recipe.data)
    assert spec.class_values == (0, 1, 5, 20)
    hidden = load_recipe_with(ARC / "classified_tiles", label_ignore_values=[0])
    spec = resolve_input_spec(hidden.model, get_card("resnet18"), hidden.data)
    assert spec.class_values == (1, 5, 20) and spec.num_classes == 3


def load_recipe_with(images, **data):
    from rsfm.recipe import load_recipe

    return load_recipe({"model": {"backbone": "resnet18", "head": "fcn"},
                        "data": {"train": {"images": str(images)}, **data}})


def test_voc_class_value_or_name_and_edge_slivers():
    ds = _dataset("pascal_voc", "detection")
    first, second = ds[0], ds[1]
    # chip 0 names classes by value ("1", "3"); its 0.07 px wide sliver at the edge is dropped
    assert first["labels"].tolist() == [0, 0, 1]
    # chip 1 names them by name ("Car", "Truck")
    assert second["labels"].tolist() == [0, 1]
    assert torch.allclose(second["boxes"][0], torch.tensor([5.0, 5.0, 15.0, 13.0]))


def test_kitti_and_rcnn_boxes():
    kitti = _dataset("kitti", "detection")[0]
    assert kitti["labels"].tolist() == [0, 1]
    assert torch.allclose(kitti["boxes"][1], torch.tensor([14.0, 10.25, 30.8, 24.0]))
    rcnn = _dataset("rcnn_masks", "detection")[0]
    # labels/Building: instances 1 and 2; labels/2 (Tree crown): instance 1 -> one box each
    got = sorted(zip(rcnn["labels"].tolist(), rcnn["boxes"].tolist()))
    assert got == [(0, [3.0, 2.0, 12.0, 10.0]), (0, [18.0, 15.0, 30.0, 25.0]),
                   (1, [2.0, 20.0, 9.0, 28.0])]


def test_imagenet_layout(tmp_path):
    """Imagenet exports keep chips in images/<class name>/ and have no labels/."""
    folder = copy_export("labeled_tiles", tmp_path)
    shutil.rmtree(folder / "labels")
    for i, chip in enumerate(sorted((folder / "images").glob("*.tif"))):
        (folder / "images" / ("Field", "Forest")[i % 2]).mkdir(exist_ok=True)
        chip.rename(folder / "images" / ("Field", "Forest")[i % 2] / chip.name)
    for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        edit_json(folder / doc, MetaDataMode="Imagenet")
    export = read_arcgis_export(folder)
    assert export.task == "classification" and [c.class_value for c in export.chips] == [1, 1, 2, 2]
    from rsfm.datasets import build_datasets
    from rsfm.preflight import preflight

    recipe = load(folder, head="classification")
    ds = build_datasets(recipe, preflight(recipe)).train
    assert sorted(int(ds[i]["label"]) for i in range(len(ds))) == [0, 0, 1, 1]


def test_missing_labels_error_and_change_detection(tmp_path):
    from rsfm.datasets import build_datasets
    from rsfm.preflight import preflight
    from rsfm.recipe import load_recipe

    recipe = load_recipe({"model": {"task": "detection", "backbone": "resnet18", "head": "fcos"},
                          "data": {"train": {"images": str(ARC / "pascal_voc")},
                                   "missing_labels": "error"}})
    with pytest.raises(DataError, match=r"1 chip\(s\) .* have no label file .*000000003\.jpg"):
        build_datasets(recipe, preflight(recipe))
    folder = copy_export("classified_tiles", tmp_path)
    shutil.copytree(folder / "images", folder / "images2")
    with pytest.raises(ConfigError, match=r"images2/ .*change detection"):
        load(folder)


def test_labeled_tiles_classes():
    ds = _dataset("labeled_tiles", "classification")
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [0, 1, 0, 1]
    assert ds.classes == ["Field", "Forest"]


# ------------------------------------------------------------------------------- export variants


def _datasets(folder: Path, task: str, **data):
    """Train dataset of a recipe over ``folder`` (``data``: extra data keys)."""
    from rsfm.datasets import build_datasets
    from rsfm.preflight import preflight
    from rsfm.recipe import load_recipe

    head = {"segmentation": "fcn", "detection": "fcos", "classification": "classification"}[task]
    recipe = load_recipe({"model": {"task": task, "backbone": "resnet18", "head": head},
                          "data": {"train": {"images": str(folder)}, **data}})
    return build_datasets(recipe, preflight(recipe)).train


def _rewrite_chip(path: Path, height: int, width: int, fill=None) -> None:
    """Write ``path`` again at ``height`` x ``width`` (same bands, dtype and georeferencing)."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    reps = (1, -(-height // data.shape[1]), -(-width // data.shape[2]))
    data = np.tile(data, reps)[:, :height, :width] if fill is None else \
        np.full((data.shape[0], height, width), fill, data.dtype)
    profile.update(height=height, width=width)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _add_object(xml: str, name: str, box: tuple[float, ...]) -> str:
    """A VOC file's text with one more ``<object>`` (before the closing tag)."""
    coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    head, tail = xml.rsplit("</annotation>", 1)
    return f"{head}<object><name>{name}</name><bndbox>{coords}</bndbox></object>\n" \
           f"</annotation>{tail}"


def test_value_zero_is_a_class_in_box_and_tile_formats(tmp_path):
    """arcgis.learn drops class value 0 for Classified Tiles and RCNN Masks only."""
    voc = copy_export("pascal_voc", tmp_path)
    for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        edit_json(voc / doc, Classes=[{"Value": 0, "Name": "Car"}, {"Value": 3, "Name": "Truck"}])
    for xml in (voc / "labels").glob("*.xml"):
        xml.write_text(xml.read_text().replace("<name>1</name>", "<name>0</name>"))
    assert [c.value for c in read_arcgis_export(voc).classes] == [0, 3]
    ds = _datasets(voc, "detection")
    assert ds.classes == ["Car", "Truck"] and ds[0]["labels"].tolist() == [0, 0, 1]
    tiles = copy_export("labeled_tiles", tmp_path)
    edit_json(tiles / "esri_model_definition.emd",
              Classes=[{"Value": 0, "Name": "Field"}, {"Value": 2, "Name": "Forest"}])
    for xml in (tiles / "labels").glob("*.xml"):
        xml.write_text(xml.read_text().replace("<name>1</name>", "<name>0</name>"))
    ds = _datasets(tiles, "classification")
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [0, 1, 0, 1]
    # Classified Tiles: value 0 stays NoData
    assert 0 not in [c.value for c in read_arcgis_export(ARC / "classified_tiles").classes]


def test_nodata_class_keeps_the_emd_name_and_colour(tmp_path):
    folder = copy_export("classified_tiles", tmp_path)
    emd = folder / "esri_model_definition.emd"
    classes = json.loads(emd.read_text())["Classes"]
    edit_json(emd, Classes=[{"Value": 0, "Name": "Background", "Color": [10, 10, 10]}, *classes])
    d = load(folder).data
    assert (d.classes[0].name, d.classes[0].color) == ("Background", "#0A0A0A")
    assert [c.color for c in d.classes[1:]] == ["#0070FF", "#267300", "#FF0000"]


@pytest.mark.parametrize(("name", "sensor"), [
    ("Landsat-8", "landsat8"), ("Landsat 8", "landsat8"), ("Landsat8", "landsat8"),
    ("LANDSAT_9", "landsat9"), ("Landsat-8 OLI/TIRS", "landsat8"), ("Sentinel-2", "sentinel2"),
    ("Sentinel2", "sentinel2"), ("Sentinel-2A", "sentinel2"), ("Sentinel-1", "sentinel1"),
    ("NAIP", "naip"), ("WorldView-3", None), ("Undefined", None), ("", None)])
def test_sensor_names(name, sensor):
    from rsfm.data.arcgis import catalog_sensor

    assert catalog_sensor(name) == sensor


def test_sensor_name_resolves_band_names(tmp_path, arcgis_log):
    """B5 of a Landsat 8 export is NIR (0.865 um), not Sentinel-2's red edge (0.705 um)."""
    from rsfm.registry import get_card
    from rsfm.spec import resolve_input_spec

    folder = copy_export("classified_tiles", tmp_path)

    def sensor(name: str, bands: list[str]):
        for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
            edit_json(folder / doc, InputRastersProps={"RasterCount": 1, "SensorName": name,
                                                       "BandNames": bands})
        recipe = load(folder)
        spec = resolve_input_spec(recipe.model, get_card("resnet18"), recipe.data)
        return recipe.data.sensor, [b.wavelength_um for b in spec.bands]

    assert sensor("Landsat-8", ["B2", "B3", "B4", "B5"]) == ("landsat8",
                                                              [0.482, 0.561, 0.655, 0.865])
    assert "sensor ('Landsat-8')" in arcgis_log.text
    # a sensor rsfm does not know: as before (bare names are Sentinel-2's), and the log says so
    assert sensor("WorldView-3", ["B2", "B3", "B4", "B5"]) == (None, [0.49, 0.56, 0.665, 0.705])
    assert "SensorName 'WorldView-3' is none of rsfm's sensors" in arcgis_log.text
    assert "band names ['B2', 'B3', 'B4', 'B5'] are sensor band names" in arcgis_log.text


def test_objects_of_unknown_classes_are_skipped_and_reported(tmp_path, caplog):
    folder = copy_export("pascal_voc", tmp_path)
    xml = folder / "labels" / "000000001.xml"
    xml.write_text(_add_object(xml.read_text(), "99", (2, 2, 8, 8)))
    kitti = copy_export("kitti", tmp_path)
    with (kitti / "labels" / "000000000.txt").open("a") as fh:
        fh.write("99 0.00 0 0.00 1.00 1.00 9.00 9.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00\n")
    ds = _datasets(folder, "detection")
    assert ds[1]["labels"].tolist() == [0, 1]  # the class-99 box is skipped
    assert _datasets(kitti, "detection")[0]["labels"].tolist() == [0, 1]
    with caplog.at_level(logging.WARNING, logger="rsfm.data.arcgis_datasets"):
        ds.check_boxes()
    warned = [r.getMessage() for r in caplog.records if "['99']" in r.getMessage()]
    assert len(warned) == 1 and "1 object(s) in 1 label file(s)" in warned[0]
    assert "000000001.xml" in warned[0] and "['1=Car', '3=Truck']" in warned[0]
    # every object of the export unknown: an error naming the classes
    for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        edit_json(folder / doc, Classes=[{"Value": 7, "Name": "Bus"}, {"Value": 8, "Name": "Van"}])
    with pytest.raises(DataError, match=r"No object of the ArcGIS export .* has a class its "
                                        r"\.emd lists.*'7=Bus', '8=Van'"):
        _datasets(folder, "detection").check_boxes()


def test_box_counts_are_reported(tmp_path, caplog):
    """Clipped and dropped boxes are counted as for any detection data (rsfm check --data)."""
    folder = copy_export("pascal_voc", tmp_path)
    xml = folder / "labels" / "000000001.xml"
    xml.write_text(_add_object(xml.read_text(), "1", (40, 40, 50, 50)))  # past the chip
    ds = _datasets(folder, "detection")
    with caplog.at_level(logging.WARNING, logger="rsfm.data.base"):
        count = ds.check_boxes()
    assert (count.outside, count.small) == (1, 1)  # the box past the chip, chip 0's sliver
    assert "1 outside their image (dropped)" in caplog.text and "000000001.xml" in caplog.text


def test_values_between_class_values_are_reported(tmp_path, caplog):
    folder = copy_export("classified_tiles", tmp_path)
    label = folder / "labels" / "000000000.tif"
    with rasterio.open(label, "r+") as dst:
        raw = dst.read(1)
        raw[:2, :3] = 3  # no class, between the class values 1, 5, 20
        dst.write(raw, 1)
    ds = _datasets(folder, "segmentation")
    with caplog.at_level(logging.WARNING, logger="rsfm.data.arcgis_datasets"):
        mask = ds[0]["mask"].numpy()
    assert (mask[:2, :3] == -1).all()  # still ignored
    assert "6 pixels have values [3] between the class values [1, 5, 20]" in caplog.text
    assert "000000000.tif" in caplog.text and ds.report.out_of_range_pixels == 6
    assert ds.check_labels_sample().invalid == 6  # what rsfm check --data counts


def test_map_txt_paths_with_spaces(tmp_path):
    folder = copy_export("classified_tiles", tmp_path)
    base = r"C:\Users\Jane Doe\Documents\My Project\training data"
    (folder / "map.txt").write_text("".join(
        f"{base}\\images\\{i:09d}.tif  {base}\\labels\\{i:09d}.tif \r\n" for i in range(4)))
    export = read_arcgis_export(folder)
    assert not export.notes and export.label_suffix == ".tif"
    # Imagenet: one path per row, class folders with spaces
    folder = copy_export("labeled_tiles", tmp_path)
    shutil.rmtree(folder / "labels")
    rows = []
    for i, chip in enumerate(sorted((folder / "images").glob("*.tif"))):
        cls = ("Damaged building", "Forest")[i % 2]
        (folder / "images" / cls).mkdir(exist_ok=True)
        chip.rename(folder / "images" / cls / chip.name)
        rows.append(f"images\\{cls}\\{chip.name} \r\n")
    (folder / "map.txt").write_text("".join(rows))
    for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        edit_json(folder / doc, MetaDataMode="Imagenet",
                  Classes=[{"Value": 1, "Name": "Damaged building"}, {"Value": 2, "Name": "Forest"}])
    export = read_arcgis_export(folder)
    assert not export.notes and len(export.chips) == 4


def test_variable_size_labeled_tiles_are_resized(tmp_path):
    from rsfm.data.collate import collate_fn

    folder = copy_export("labeled_tiles", tmp_path)
    _rewrite_chip(folder / "images" / "000000000.tif", 24, 30)
    _rewrite_chip(folder / "images" / "000000001.tif", 40, 40)
    edit_json(folder / "esri_model_definition.emd", CropTileMode="Variable_Size")
    ds = _datasets(folder, "classification")
    assert {tuple(ds[i]["image"].shape) for i in range(len(ds))} == {(3, 32, 32)}
    assert collate_fn([ds[0], ds[1]])["image"].shape == (2, 3, 32, 32)  # batches stack


def test_classified_tiles_of_several_sizes_are_padded(tmp_path):
    from rsfm.data.collate import collate_fn

    folder = copy_export("classified_tiles", tmp_path)
    _rewrite_chip(folder / "images" / "000000001.tif", 40, 48)
    _rewrite_chip(folder / "labels" / "000000001.tif", 40, 48, fill=5)
    ds = _datasets(folder, "segmentation")
    small, big = ds[0], ds[1]
    assert small["image"].shape == big["image"].shape == (4, 40, 48)
    assert (small["mask"][32:] == -1).all() and (small["mask"][:, 32:] == -1).all()
    assert (small["mask"][:32, :32] >= 0).all() and (big["mask"] == 2).all()
    assert collate_fn([small, big])["mask"].shape == (2, 40, 48)


def test_chip_size_comes_from_the_chips(tmp_path):
    folder = copy_export("classified_tiles", tmp_path)
    edit_json(folder / "esri_model_definition.emd", ImageHeight=256, ImageWidth=256)
    edit_json(folder / "esri_accumulated_stats.json", TileSizeX=256, TileSizeY=256)
    export = read_arcgis_export(folder)
    assert export.chip_size == (32, 32)
    assert any("256x256" in n and "32x32" in n for n in export.notes)
    assert load(folder).data.tile_size == 32


# ------------------------------------------------------------------------------- train + predict


def _recipe(images: Path, out: Path, task: str, head: str, backbone: str, **data) -> dict:
    model = {"task": task, "backbone": backbone, "head": head}
    if backbone.startswith("dofa"):
        model.update(backbone_kwargs=TINY_DOFA, neck={"out_channels": 32})
    if head == "mask_rcnn":  # a random model keeps hundreds of boxes, each a mask-head pass
        model.update(head_kwargs={"box_detections_per_img": 10, "rpn_post_nms_top_n_test": 32})
    return {"name": "arcgis", "model": model,
            "data": {"kind": "arcgis", "train": {"images": str(images)}, "batch_size": 2, **data},
            "train": {"epochs": 1, "max_steps": 1, "progress": False, "seed": 0},
            "output": {"dir": str(out), "plots": False}}


@pytest.mark.parametrize(("name", "task", "head", "backbone"), [
    ("classified_tiles", "segmentation", "fcn", "resnet18"),
    ("legacy_template", "segmentation", "fcn", "resnet18"),
    ("pascal_voc", "detection", "faster_rcnn", "dofa_base"),
    ("kitti", "detection", "fcos", "dofa_base"),
    ("rcnn_masks", "detection", "faster_rcnn", "dofa_base"),
    ("rcnn_masks", "detection", "mask_rcnn", "resnet18"),
    ("labeled_tiles", "classification", "classification", "resnet18"),
])
def test_train_one_step_and_predict(tmp_path, name, task, head, backbone):
    import rsfm
    from rsfm.hub import from_pretrained

    export = read_arcgis_export(ARC / name)
    run = tmp_path / "run"
    result = rsfm.train(_recipe(export.root, run, task, head, backbone))
    assert result.global_step == 1 and (run / "model.safetensors").exists()
    model = from_pretrained(run)
    spec = model.input_spec
    names = ["NoData"] if task == "segmentation" else []
    assert spec.class_names == names + [c.name for c in export.classes]
    chip = export.chips[0].image
    if task == "classification":  # rsfm.predict writes maps; classify a chip with the model
        from rsfm.data.reader import ImageReader

        image, _ = ImageReader(spec).read(chip)
        with torch.no_grad():
            logits = model(torch.from_numpy(image)[None])
        assert logits.shape == (1, len(export.classes))
        return
    out = tmp_path / ("pred.tif" if task == "segmentation" else "pred.geojson")
    pred = rsfm.predict(run, chip, out)
    assert out.exists()
    if task == "segmentation":
        with rasterio.open(pred.classes) as ds:
            assert (ds.width, ds.height) == (32, 32)
            classes = ds.read(1)
            values = json.loads(ds.tags()["CLASS_VALUES"])
        # the export's class values (0 = NoData, then the .emd's values), not class ids
        assert values == [0] + [c.value for c in export.classes] == list(spec.class_values)
        assert set(np.unique(classes)) <= set(values)


def test_dofa_takes_wavelengths_from_the_emd(tmp_path):
    import rsfm
    from rsfm.hub import from_pretrained
    from rsfm.preflight import preflight
    from rsfm.recipe import load_recipe

    folder = ARC / "classified_tiles_wavelengths"
    recipe = _recipe(folder, tmp_path / "run", "segmentation", "fcn", "dofa_base")
    spec = preflight(load_recipe(recipe))
    # ModelParameters.wavelengths [0.443, 0.531, 0.585, 0.865]: GREEN at 0.531 (not the
    # catalog's 0.56) and Yellow, which rsfm's catalog lacks; SensorName "Sentinel-2" names
    # the catalog bands as Sentinel-2's (CoastalBlue = B1, Green = B3, NearInfrared = B8A)
    assert spec.band_names == ["B1", "B3", "Yellow", "B8A"]
    assert [b.wavelength_um for b in spec.bands] == [0.443, 0.531, 0.585, 0.865]
    rsfm.train(recipe)
    assert [b.wavelength_um for b in from_pretrained(tmp_path / "run").input_spec.bands] == \
        [0.443, 0.531, 0.585, 0.865]
    # model.wavelengths overrides the .emd
    over = {**recipe, "model": {**recipe["model"], "wavelengths": [0.45, 0.55, 0.6, 0.85]}}
    assert [b.wavelength_um for b in preflight(load_recipe(over)).bands] == [0.45, 0.55, 0.6, 0.85]


def test_dofa_band_without_wavelength_is_named(tmp_path):
    from rsfm.preflight import preflight
    from rsfm.recipe import load_recipe

    folder = copy_export("classified_tiles", tmp_path)
    for doc in ("esri_model_definition.emd", "esri_accumulated_stats.json"):
        props = json.loads((folder / doc).read_text())["InputRastersProps"]
        edit_json(folder / doc, InputRastersProps={**props,
                                                   "BandNames": ["Red", "Green", "Blue", "DEM"]})
    recipe = load_recipe(_recipe(folder, tmp_path / "run", "segmentation", "fcn", "dofa_base"))
    with pytest.raises(ConfigError, match=r"DOFA needs a wavelength for band 'DEM'"):
        preflight(recipe)
