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
    with pytest.raises(ConfigError, match="MultiLabeled_Tiles export; rsfm trains Classified"):
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
        load(ARC / "rcnn_masks", head="mask_rcnn")


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


# ------------------------------------------------------------------------------- train + predict


def _recipe(images: Path, out: Path, task: str, head: str, backbone: str, **data) -> dict:
    model = {"task": task, "backbone": backbone, "head": head}
    if backbone.startswith("dofa"):
        model.update(backbone_kwargs=TINY_DOFA, neck={"out_channels": 32})
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
    # catalog's 0.56) and Yellow, which rsfm's catalog lacks
    assert spec.band_names == ["COASTAL_AEROSOL", "GREEN", "Yellow", "NIR_NARROW"]
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
