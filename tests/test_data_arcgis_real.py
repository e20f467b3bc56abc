"""ArcGIS exports in the variants real Pro exports come in, each built from scratch in tmp_path.

Layouts and conventions follow Esri's documentation of "Export Training Data For Deep Learning"
and how ``arcgis.learn.prepare_data`` reads the folders (see tests/test_data_arcgis.py for the
committed fixtures): chip formats TIFF/PNG/JPEG with world-file and ``.aux.xml`` sidecars,
uppercase extensions, ``map.txt`` with Windows paths (relative or absolute, with spaces), BOM,
CRLF and blank lines, ``.emd`` variants (hex or missing colours, numbers as strings, no
``Classes`` in label-free formats), statistics under other key casings, Esri band names of
Sentinel-2 and Landsat exports, the formats rsfm cannot train (one-line errors naming the
format) and a user pointing at the wrong folder. Pixels are synthetic, seeded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rsfm.data.arcgis import detect, exports_in, read_arcgis_export, recipe_defaults
from rsfm.errors import ConfigError, DataError, RsfmError

SIZE = 16
CLASSES = ((1, "Building", [255, 0, 0]), (2, "Road", [0, 0, 255]))
_DRIVER = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _write(path: Path, data: np.ndarray) -> None:
    data = data if data.ndim == 3 else data[None]
    driver = _DRIVER[path.suffix.lower()]
    profile = {"driver": driver, "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "dtype": data.dtype.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _pro_json(doc: dict) -> str:
    return json.dumps(doc, indent=2, separators=(",", " : ")) + "\n"


def _image(rng: np.random.Generator, bands: int, dtype: str) -> np.ndarray:
    if dtype == "float32":
        return rng.normal(0.2, 0.05, (bands, SIZE, SIZE)).astype(np.float32)
    high = 255 if dtype == "uint8" else 4000
    return rng.integers(1, high, (bands, SIZE, SIZE)).astype(dtype)


def make_export(root: Path, fmt: str = "Classified_Tiles", *, n: int = 3, bands: int = 3,
                dtype: str = "uint8", chip_ext: str = ".tif", label_ext: str = ".tif",
                classes=CLASSES, band_names: list[str] | None = None,
                sensor: str = "Undefined", map_rows: list[str] | None = None,
                sidecars: tuple[str, ...] = (), emd: dict | None = None,
                stats: dict | None = None) -> Path:
    """An export folder as Pro writes it (``map.txt``: backslashes, two spaces, trailing
    space, CRLF). ``emd``/``stats`` entries replace keys (None removes one)."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True, exist_ok=True)
    names = [c[1] for c in classes]
    chips, rows = [], []
    for i in range(n):
        stem = f"{i:09d}"
        folder = "images" if fmt != "Imagenet" else f"images/{names[i % len(names)]}"
        image = root / folder / f"{stem}{chip_ext}"
        data = _image(rng, bands, dtype)
        _write(image, data)
        chips.append(data)
        for side in sidecars:  # world files, GDAL PAM, overviews next to the chip
            world = side in (".tfw", ".pgw", ".jgw", ".wld")  # <stem>.tfw, <name>.aux.xml
            (image.parent / ((stem if world else image.name) + side)).write_text("0\n")
        value = classes[i % len(classes)][0]
        label = None
        if fmt in ("Classified_Tiles", "Panoptic_Segmentation"):
            mask = np.zeros((SIZE, SIZE), np.uint8 if max(c[0] for c in classes) < 256
                            else np.uint16)
            mask[: SIZE // 2] = value
            label = root / "labels" / f"{stem}{label_ext}"
            _write(label, mask)
        elif fmt in ("PASCAL_VOC_rectangles", "Labeled_Tiles", "MultiLabeled_Tiles"):
            label = root / "labels" / f"{stem}.xml"
            label.parent.mkdir(exist_ok=True)
            label.write_text(
                f'<?xml version="1.0"?>\n<annotation>\n    <filename>{image.name}</filename>\n'
                f"    <size>\n        <width>{SIZE}</width>\n        <height>{SIZE}</height>\n"
                f"        <depth>{bands}</depth>\n    </size>\n    <object>\n"
                f"        <name>{value}</name>\n        <bndbox>\n            <xmin>2.00</xmin>\n"
                "            <ymin>3.00</ymin>\n            <xmax>10.50</xmax>\n"
                "            <ymax>12.00</ymax>\n        </bndbox>\n    </object>\n</annotation>\n")
        elif fmt == "KITTI_rectangles":
            label = root / "labels" / f"{stem}.txt"
            label.parent.mkdir(exist_ok=True)
            label.write_text(f"{value} 0.00 0 0.00 2.00 3.00 10.50 12.00 0.00 0.00 0.00 0.00 "
                             "0.00 0.00 0.00\n")
        elif fmt == "RCNN_Masks":
            mask = np.zeros((SIZE, SIZE), np.uint8)
            mask[2:6, 2:6], mask[9:14, 8:15] = 1, 2
            label = root / "labels" / names[i % len(names)] / f"{stem}{label_ext}"
            _write(label, mask)
        rel = f"{folder}/{image.name}".replace("/", "\\")
        if label is None:
            rows.append(f"{rel}\r\n")
        else:
            rows.append(f"{rel}  {label.relative_to(root).as_posix().replace('/', chr(92))} \r\n")
    (root / "map.txt").write_text("".join(map_rows if map_rows is not None else rows),
                                  newline="")
    stack = np.concatenate([c.reshape(bands, -1) for c in chips], axis=1).astype(np.float64)
    band_names = band_names if band_names is not None else [""] * bands
    state = [{"BandName": band_names[b], "Min": float(stack[b].min()),
              "Max": float(stack[b].max()), "Mean": 0, "StdDev": 0, "M1": float(stack[b].mean()),
              "M2": float(((stack[b] - stack[b].mean()) ** 2).sum()), "Num": stack.shape[1]}
             for b in range(bands)]
    class_docs = [{"Value": v, "Name": nm, "Color": col} for v, nm, col in classes]
    emd_doc = {"MetaDataMode": fmt, "ImageHeight": SIZE, "ImageWidth": SIZE,
               "ImageSpaceUsed": "MAP_SPACE", "IsMultidimensional": False,
               "Classes": class_docs,
               "InputRastersProps": {"RasterCount": 1, "SensorName": sensor,
                                     "BandNames": band_names},
               "AllTilesStats": [{"BandName": s["BandName"], "Min": s["Min"], "Max": s["Max"],
                                  "Mean": s["M1"], "StdDev": (s["M2"] / s["Num"]) ** 0.5}
                                 for s in state]}
    stats_doc = {"Version": 1, "NumBands": bands, "TileSizeX": SIZE, "TileSizeY": SIZE,
                 "NumClasses": len(classes), "NumTiles": n, "MetaDataMode": fmt,
                 "Classes": [{"ClassValue": v, "ClassName": nm, "Color": col}
                             for v, nm, col in classes],
                 "InputRastersProps": emd_doc["InputRastersProps"], "BandStatsState": state}
    for doc, changes in ((emd_doc, emd), (stats_doc, stats)):
        for key, value in (changes or {}).items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
    (root / "esri_model_definition.emd").write_text(_pro_json(emd_doc))
    (root / "esri_accumulated_stats.json").write_text(_pro_json(stats_doc))
    (root / "stats.txt").write_text(f"images = {n} *{bands}*{SIZE}*{SIZE}\r\n")
    return root


def _recipe(images: Path, task: str, head: str, backbone: str = "resnet18", **data):
    from rsfm.recipe import load_recipe

    return load_recipe({"model": {"task": task, "backbone": backbone, "head": head},
                        "data": {"train": {"images": str(images)}, **data}})


def _train_set(images: Path, task: str, head: str, **data):
    from rsfm.datasets import build_datasets
    from rsfm.preflight import preflight

    recipe = _recipe(images, task, head, **data)
    return build_datasets(recipe, preflight(recipe)).train


# ------------------------------------------------------------------------------- chip formats


@pytest.mark.parametrize(("chip_ext", "label_ext", "bands", "dtype", "sidecars"), [
    (".tif", ".tif", 3, "uint8", (".tfw", ".aux.xml", ".ovr", ".xml")),
    (".png", ".png", 3, "uint8", (".pgw", ".aux.xml")),
    (".jpg", ".png", 3, "uint8", (".jgw", ".aux.xml", ".ovr")),
    (".TIF", ".TIF", 4, "uint16", ()),
    (".tif", ".tif", 12, "uint16", ()),
    (".tif", ".tif", 5, "float32", ()),
])
def test_classified_tiles_chip_formats(tmp_path, chip_ext, label_ext, bands, dtype, sidecars):
    folder = make_export(tmp_path / "export", chip_ext=chip_ext, label_ext=label_ext,
                         bands=bands, dtype=dtype, sidecars=sidecars)
    export = read_arcgis_export(folder)
    assert [c.image.name for c in export.chips] == [f"{i:09d}{chip_ext}" for i in range(3)]
    assert not export.notes and export.num_bands == bands and export.chip_size == (SIZE, SIZE)
    ds = _train_set(folder, "segmentation", "fcn", normalization={"mode": "per_tile"})
    sample = ds[0]
    assert tuple(sample["image"].shape) == (bands, SIZE, SIZE)
    assert set(np.unique(sample["mask"].numpy())) == {0, 1}  # NoData 0, value 1 -> id 1


@pytest.mark.parametrize(("fmt", "task", "head", "chip_ext", "label_ext"), [
    ("PASCAL_VOC_rectangles", "detection", "fcos", ".jpg", ".xml"),
    ("KITTI_rectangles", "detection", "fcos", ".png", ".txt"),
    ("RCNN_Masks", "detection", "fcos", ".tif", ".png"),
    ("Labeled_Tiles", "classification", "classification", ".png", ".xml"),
    ("Imagenet", "classification", "classification", ".jpg", ""),
])
def test_every_trainable_format_reads_samples(tmp_path, fmt, task, head, chip_ext, label_ext):
    folder = make_export(tmp_path / "export", fmt, n=4, chip_ext=chip_ext, label_ext=label_ext,
                         sidecars=(".jgw",) if chip_ext == ".jpg" else ())
    export = read_arcgis_export(folder)
    assert export.task == task and len(export.chips) == 4 and not export.notes
    sample = _train_set(folder, task, head)[0]
    assert tuple(sample["image"].shape) == (3, SIZE, SIZE)
    if task == "detection":
        assert len(sample["boxes"]) >= 1
    else:
        assert int(sample["label"]) in (0, 1)


# ------------------------------------------------------------------------------- map.txt


@pytest.mark.parametrize("style", ["bom_blank_lines", "absolute_windows", "forward_slashes",
                                   "tabs_lf", "spaces_in_paths"])
def test_map_txt_variants(tmp_path, style):
    rows = []
    for i in range(3):
        img, lab = f"images\\{i:09d}.tif", f"labels\\{i:09d}.tif"
        if style == "bom_blank_lines":
            rows.append(("\ufeff" if i == 0 else "") + f"{img}  {lab} \r\n\r\n")
        elif style == "absolute_windows":
            base = "C:\\Users\\Jane\\Documents\\ArcGIS\\Projects\\Export"
            rows.append(f"{base}\\{img}  {base}\\{lab} \r\n")
        elif style == "forward_slashes":
            rows.append(f"{img.replace(chr(92), '/')} {lab.replace(chr(92), '/')}\n")
        elif style == "tabs_lf":
            rows.append(f"{img}\t{lab}\n")
        else:
            base = "D:\\GIS Data\\My Exports\\Roads 2024"
            rows.append(f"{base}\\{img}  {base}\\{lab} \r\n")
    folder = make_export(tmp_path / "export", map_rows=rows)
    export = read_arcgis_export(folder)
    assert len(export.chips) == 3 and not export.notes and export.label_suffix == ".tif"


# ------------------------------------------------------------------------------- .emd and stats


def test_emd_colours_hex_missing_and_numbers_as_strings(tmp_path):
    classes = [{"Value": "1", "Name": "Building", "Color": "#FF8000"},
               {"Value": 2, "Name": "Road"},
               {"Value": "3", "Name": "Water", "Color": ["0", "0", "255"]}]
    folder = make_export(tmp_path / "export", emd={"Classes": classes, "ImageHeight": "16",
                                                   "ImageWidth": "16"},
                         stats={"NumBands": "3", "TileSizeX": "16", "TileSizeY": "16"})
    export = read_arcgis_export(folder)
    assert [(c.value, c.name, c.color) for c in export.classes] == [
        (1, "Building", (255, 128, 0)), (2, "Road", None), (3, "Water", (0, 0, 255))]
    assert export.num_bands == 3 and export.chip_size == (SIZE, SIZE)


def test_saved_model_emd_keys_are_ignored(tmp_path):
    """Keys of an arcgis.learn saved-model .emd (ModelConfiguration, ExtractBands, DataRange,
    IsMultispectral...) do not disturb reading an export."""
    folder = make_export(tmp_path / "export", emd={
        "ModelConfiguration": "_unet", "ExtractBands": [0, 1, 2], "DataRange": [0, 255],
        "IsMultispectral": False, "ModelParameters": {"backbone": "resnet34"},
        "SensorName": "Undefined", "BatchSize": "4"})
    export = read_arcgis_export(folder)
    assert len(export.chips) == 3 and export.wavelengths is None


def test_band_statistics_in_other_key_casings(tmp_path):
    folder = make_export(tmp_path / "export", bands=4, dtype="uint16")
    stats_path = folder / "esri_accumulated_stats.json"
    doc = json.loads(stats_path.read_text())
    want = [v for s in doc["BandStatsState"] for v in (s["M1"], (s["M2"] / s["Num"]) ** 0.5)]
    doc["BandStatsState"] = [{k.lower(): v for k, v in s.items()} for s in doc["BandStatsState"]]
    stats_path.write_text(json.dumps(doc))
    emd_path = folder / "esri_model_definition.emd"
    emd = json.loads(emd_path.read_text())
    emd.pop("AllTilesStats")
    emd_path.write_text(json.dumps(emd))
    export = read_arcgis_export(folder)
    assert [v for s in export.band_stats for v in (s.mean, s.std)] == pytest.approx(want)
    assert not export.notes
    # only the .emd's AllTilesStats, with upper-case keys
    stats_path.write_text(json.dumps({**doc, "BandStatsState": None}))
    emd["AllTilesStats"] = [{"BANDNAME": "", "MIN": 1, "MAX": 9, "MEAN": m, "STDDEV": str(s)}
                            for m, s in zip(want[::2], want[1::2])]
    emd_path.write_text(json.dumps(emd))
    again = read_arcgis_export(folder).band_stats
    assert [v for s in again for v in (s.mean, s.std)] == pytest.approx(want)


def test_sentinel2_esri_band_names(tmp_path):
    """Esri's Sentinel-2 band names: three "VRE" bands, "NIR" (B8) next to "NarrowNIR" (B8A)."""
    names = ["Coastal", "Blue", "Green", "Red", "VRE", "VRE", "VRE", "NIR", "NarrowNIR",
             "Water_Vapor", "SWIR_1", "SWIR_2"]
    folder = make_export(tmp_path / "export", bands=12, dtype="uint16", band_names=names)
    out = recipe_defaults(read_arcgis_export(folder), {}, {})["data"]
    assert out["file_bands"] == ["COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "RED_EDGE_1",
                                 "RED_EDGE_2", "RED_EDGE_3", "NIR_BROAD", "NIR_NARROW",
                                 "WATER_VAPOR", "SWIR_1", "SWIR_2"]
    long_names = ["CoastalAerosol", "Blue", "Green", "Red", "VegetationRedEdge_1",
                  "VegetationRedEdge_2", "VegetationRedEdge_3", "NIR", "NarrowNIR",
                  "WaterVapour", "SWIR_1", "SWIR_2"]
    folder = make_export(tmp_path / "again", bands=12, dtype="uint16", band_names=long_names,
                         sensor="Sentinel-2")
    out = recipe_defaults(read_arcgis_export(folder), {}, {})["data"]
    assert out["sensor"] == "sentinel2"
    assert out["bands"] == ["COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "RED_EDGE_1",
                            "RED_EDGE_2", "RED_EDGE_3", "NIR_BROAD", "NIR_NARROW",
                            "WATER_VAPOR", "SWIR_1", "SWIR_2"]


def test_landsat_esri_band_names(tmp_path):
    names = ["CoastalAerosol", "Blue", "Green", "Red", "NearInfrared", "ShortWaveInfrared_1",
             "ShortWaveInfrared_2", "Cirrus", "ThermalInfrared1", "ThermalInfrared2"]
    folder = make_export(tmp_path / "export", bands=10, dtype="uint16", band_names=names)
    out = recipe_defaults(read_arcgis_export(folder), {}, {})["data"]
    assert out["file_bands"] == ["COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "NIR_NARROW",
                                 "SWIR_1", "SWIR_2", "CIRRUS", "THERMAL_INFRARED_1",
                                 "THERMAL_INFRARED_2"]


# ------------------------------------------------------------------------------- refused formats


def _one_line_refusal(folder: Path, task: str, head: str) -> str:
    with pytest.raises(RsfmError) as info:
        _recipe(folder, task, head)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(("fmt", "extra", "named"), [
    ("Export_Tiles", None, "Export_Tiles"),
    ("Export_Tiles", "images2", "Export_Tiles"),  # Pix2Pix
    ("CycleGAN", None, "CycleGAN"),
    ("MultiLabeled_Tiles", None, "MultiLabeled_Tiles"),
    ("Panoptic_Segmentation", "labels2", "Panoptic_Segmentation"),
    ("Classified_Tiles", "images2", "change detection"),
])
def test_formats_rsfm_cannot_train_are_one_line_errors(tmp_path, fmt, extra, named):
    unlabeled = fmt in ("Export_Tiles", "CycleGAN")
    folder = make_export(tmp_path / "export", fmt,
                         emd={"Classes": None} if unlabeled else None,
                         stats={"Classes": None} if unlabeled else None)
    if extra is not None:
        (folder / extra).mkdir()
        for p in (folder / "images").iterdir():
            (folder / extra / p.name).write_bytes(p.read_bytes())
    assert named in _one_line_refusal(folder, "segmentation", "fcn")


def test_cyclegan_a_b_layout_is_named(tmp_path):
    root = tmp_path / "cyclegan"
    for side in "AB":
        make_export(root / side, "CycleGAN", emd={"Classes": None}, stats={"Classes": None})
    assert detect(root)
    with pytest.raises(DataError, match=r"CycleGAN.*A/.*B/"):
        read_arcgis_export(root)
    assert "CycleGAN" in _one_line_refusal(root, "segmentation", "fcn")


# ------------------------------------------------------------------------------- wrong folder


def test_pointing_at_a_folder_inside_the_export(tmp_path):
    folder = make_export(tmp_path / "export")
    root = read_arcgis_export(folder).root
    for inside in (folder / "images", folder / "labels", folder / "esri_model_definition.emd",
                   folder / "map.txt"):
        assert read_arcgis_export(inside).root == root
    assert detect(folder / "images", inside=True) and not detect(folder / "images")
    recipe = _recipe(folder / "images", "segmentation", "fcn", kind="arcgis")
    assert recipe.data.kind == "arcgis" and recipe.model.num_classes == 3
    # images/ + labels/ of an export stated as a chip folder pair stay chips
    from rsfm.recipe import load_recipe

    chips = load_recipe({"model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn",
                                   "num_classes": 3},
                         "data": {"train": {"images": str(folder / "images"),
                                            "labels": str(folder / "labels")}}})
    assert chips.data.kind == "chips"


def test_pointing_at_the_parent_names_the_exports(tmp_path):
    make_export(tmp_path / "parent" / "train_export")
    make_export(tmp_path / "parent" / "val_export")
    assert [p.name for p in exports_in(tmp_path / "parent")] == ["train_export", "val_export"]
    assert not detect(tmp_path / "parent")  # train/ + val/ exports stay a split layout
    with pytest.raises(DataError, match=r"holds ArcGIS exports in.*train_export.*val_export"):
        read_arcgis_export(tmp_path / "parent")
    make_export(tmp_path / "single" / "Roads Export")
    with pytest.raises(DataError, match=r"Roads Export"):
        read_arcgis_export(tmp_path / "single")


def test_unlabeled_format_without_classes_reads(tmp_path):
    folder = make_export(tmp_path / "export", "Export_Tiles", emd={"Classes": None},
                         stats={"Classes": None})
    export = read_arcgis_export(folder)
    assert export.task is None and export.classes == () and len(export.chips) == 3
    with pytest.raises(ConfigError, match="Export_Tiles"):
        recipe_defaults(export, {}, {})


@pytest.mark.parametrize("names", [["Red", "Green", "Blue"], ["", "", ""]])
def test_rgba_png_chips_drop_their_alpha_band(tmp_path, names):
    folder = make_export(tmp_path / "export", chip_ext=".png", label_ext=".png",
                         band_names=names)
    for chip in (folder / "images").iterdir():  # RGBA chips of an RGB export
        rgba = np.full((4, SIZE, SIZE), 255, np.uint8)
        rgba[:3] = 90
        with rasterio.open(chip, "w", driver="PNG", count=4, height=SIZE, width=SIZE,
                           dtype="uint8", photometric="RGB", alpha="YES") as dst:
            dst.write(rgba)
    export = read_arcgis_export(folder)
    assert export.num_bands == 4 and export.band_names[-1] == "Alpha"
    data = recipe_defaults(export, {}, {})["data"]
    assert data["file_bands"] == ["RED", "GREEN", "BLUE", "ALPHA"]
    assert data["bands"] == ["RED", "GREEN", "BLUE"]
    assert tuple(_train_set(folder, "segmentation", "fcn")[0]["image"].shape) == (3, SIZE, SIZE)


def test_chips_with_another_band_count_are_read_by_position(tmp_path):
    folder = make_export(tmp_path / "export", bands=4, dtype="uint16",
                         band_names=["Red", "Green", "Blue", "NearInfrared"])
    for chip in (folder / "images").iterdir():
        _write(chip, np.full((5, SIZE, SIZE), 300, np.uint16))
    export = read_arcgis_export(folder)
    assert export.num_bands == 5 and export.band_names == () and export.band_stats == ()
    assert any("has 5" in n and "by position" in n for n in export.notes)


def test_json_files_with_bom_or_utf16(tmp_path):
    folder = make_export(tmp_path / "export")
    emd = folder / "esri_model_definition.emd"
    emd.write_bytes(emd.read_text().encode("utf-16"))  # Notepad's "Unicode"
    stats = folder / "esri_accumulated_stats.json"
    stats.write_bytes(b"\xef\xbb\xbf" + stats.read_bytes().replace(b"\n", b"\r\n"))
    mapping = folder / "map.txt"
    mapping.write_bytes(mapping.read_bytes().decode().encode("utf-16"))
    export = read_arcgis_export(folder)
    assert export.metadata_format == "Classified_Tiles" and len(export.classes) == 2
    assert not export.notes and export.label_suffix == ".tif"


def test_imagenet_without_classes_takes_its_folders(tmp_path):
    folder = make_export(tmp_path / "export", "Imagenet", n=4, emd={"Classes": None},
                         stats={"Classes": None})
    export = read_arcgis_export(folder)
    assert [(c.value, c.name) for c in export.classes] == [(1, "Building"), (2, "Road")]
    assert len(export.chips) == 4 and {c.class_value for c in export.chips} == {1, 2}


def test_default_kind_reads_a_folder_inside_an_export_and_names_exports_in_a_parent(tmp_path):
    """``kind`` left at ``chips``: ``images: <export>/images`` without labels is the export, and a
    parent of exports is an error naming them (not "model.num_classes: Field required")."""
    from rsfm.learn import prepare_data
    from rsfm.recipe import load_recipe

    folder = make_export(tmp_path / "parent" / "Roads Export")
    recipe = load_recipe({"model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn"},
                          "data": {"train": {"images": str(folder / "images")}}})
    assert recipe.data.kind == "arcgis" and recipe.model.num_classes == 3
    with pytest.raises(RsfmError, match="Roads Export"):
        load_recipe({"model": {"task": "segmentation", "backbone": "resnet18", "head": "fcn"},
                     "data": {"train": {"images": str(tmp_path / "parent")}}})
    assert prepare_data(folder / "images", batch_size=2).layout == "arcgis"
    with pytest.raises(RsfmError, match="Roads Export"):
        prepare_data(tmp_path / "parent", batch_size=2)


def test_dofa_leaves_a_qa_band_out_as_arcgis_learn_does(tmp_path, caplog):
    """A Landsat export with its QA band: DOFA embeds bands by wavelength, and QA has none."""
    from rsfm.cards import get_card

    names = ["Blue", "Green", "Red", "NearInfrared", "QA_PIXEL"]
    folder = make_export(tmp_path / "export", bands=5, dtype="uint16", band_names=names)
    export = read_arcgis_export(folder)
    out = recipe_defaults(export, {}, {"backbone": "dofa_base"}, get_card("dofa_base"))["data"]
    assert [b if isinstance(b, str) else b["name"] for b in out["bands"]] == [
        "BLUE", "GREEN", "RED", "NIR_NARROW"]
    assert "QA_PIXEL" in caplog.text and len(out["file_bands"]) == 5
    # other backbones read every band; a stated band list is the user's
    out = recipe_defaults(export, {}, {"backbone": "resnet18"}, get_card("resnet18"))["data"]
    assert len(out["bands"]) == 5
