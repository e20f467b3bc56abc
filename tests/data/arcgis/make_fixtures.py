"""Write tiny ArcGIS "Export Training Data For Deep Learning" folders (seeded, self-made data).

The layout and text conventions follow real exports as documented in rsfm's research note
(``/work/research/arcgis.md``): 9-digit chip names, ``map.txt`` with Windows backslashes, two
spaces and a trailing space (CRLF here), Pro's JSON style (``"Key" : value``, 2-space indent),
``BandStatsState`` with ``Mean``/``StdDev`` written as 0 and the real values in ``M1``/``M2``/
``Num``, and the old template ``.emd`` with ``"e.g. 256"`` placeholders. No data is copied from
anywhere; pixels are smooth synthetic patterns, 32 x 32 chips.

Run ``python tests/data/arcgis/make_fixtures.py`` to rewrite every folder next to this script.

Folders:
    classified_tiles/              Classified_Tiles, 4 named bands (uint16), classes 1, 5, 20
    classified_tiles_wavelengths/  the same with ModelParameters.wavelengths in the .emd
    pascal_voc/                    PASCAL_VOC_rectangles, JPEG chips + .jgw/.aux.xml sidecars,
                                   empty band names, <name> = class value or class name,
                                   one chip without a label
    kitti/                         KITTI_rectangles, 15-column label files
    rcnn_masks/                    RCNN_Masks, labels/<class name or value>/<chip>.tif
    labeled_tiles/                 Labeled_Tiles, one <object> per chip XML
    legacy_template/               older Pro: template .emd ("e.g. 256"), no MetaDataMode in the
                                   .emd, no band statistics, colours [-1, -1, -1], no 0 pixels
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
SIZE = 32
WKT_UTM33 = "EPSG:32633"
RNG = np.random.default_rng(20261201)


def pro_json(doc: dict) -> str:
    """JSON as ArcGIS Pro writes it: ``"Key" : value``, 2-space indent."""
    return json.dumps(doc, indent=2, separators=(",", " : ")) + "\n"


def transform_of(i: int):
    return from_origin(500000 + i * SIZE * 10, 5000000, 10, 10)


def write_raster(path: Path, data: np.ndarray, *, driver: str = "GTiff", georef: int | None = None,
                 photometric: str | None = None) -> None:
    data = data if data.ndim == 3 else data[None]
    profile = {"driver": driver, "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "dtype": data.dtype.name}
    if driver == "GTiff":
        profile.update(compress="deflate", predictor=2 if data.dtype.kind in "ui" else 1)
        if photometric:
            profile["photometric"] = photometric
    if georef is not None:
        profile.update(crs=WKT_UTM33, transform=transform_of(georef))
    if driver == "JPEG":
        profile["quality"] = 90
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def smooth_image(bands: int, scale: float, offset: float, dtype: str) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for b in range(bands):
        phase = RNG.uniform(0, np.pi)
        base = 0.5 + 0.35 * np.sin(2 * np.pi * (xx * (b + 1) / 3 + yy / 2) + phase)
        out.append(offset + scale * (base + RNG.normal(0, 0.02, base.shape)))
    return np.clip(np.stack(out), 0, np.iinfo(dtype).max).astype(dtype)


def band_stats_state(chips: list[np.ndarray]) -> list[dict]:
    """Pro's running statistics: Mean/StdDev written as 0, the values in M1, M2, Num."""
    stack = np.concatenate([c.reshape(c.shape[0], -1) for c in chips], axis=1).astype(np.float64)
    out = []
    for band in stack:
        mean = float(band.mean())
        out.append({"Min": int(band.min()), "Max": int(band.max()), "Mean": 0, "StdDev": 0,
                    "M1": round(mean, 6), "M2": round(float(((band - mean) ** 2).sum()), 3),
                    "Num": int(band.size)})
    return out


def all_tiles_stats(chips: list[np.ndarray], names: list[str]) -> list[dict]:
    stack = np.concatenate([c.reshape(c.shape[0], -1) for c in chips], axis=1).astype(np.float64)
    return [{"BandName": n, "Min": int(b.min()), "Max": int(b.max()),
             "Mean": round(float(b.mean()), 4), "StdDev": round(float(b.std()), 4)}
            for n, b in zip(names, stack)]


def write_map(folder: Path, rows: list[tuple[str, str]]) -> None:
    """map.txt: Windows paths, two spaces, a trailing space, CRLF line ends."""
    text = "".join(f"{img.replace('/', chr(92))}  {lab.replace('/', chr(92))} \r\n"
                   for img, lab in rows)
    (folder / "map.txt").write_bytes(text.encode())


def write_stats_txt(folder: Path, n: int, bands: int, classes: list[tuple[str, int, int]],
                    unit: str = "pixels") -> None:
    lines = [f"images = {n} *{bands}*{SIZE}*{SIZE}", f"classes = {len(classes)}",
             f"{'cls name':<22}{'cls value':>9}{'images':>11}{unit:>11}"]
    lines += [f"{name:<22}{value:>9}{imgs:>11}" for name, value, imgs in classes]
    (folder / "stats.txt").write_text("\n".join(lines) + "\n")


def classes_doc(classes: list[tuple[int, str, list[int] | None]], stats_style: bool) -> list:
    out = []
    for value, name, color in classes:
        entry = ({"ClassValue": value, "ClassName": name} if stats_style
                 else {"Value": value, "Name": name})
        if color is not None:
            entry["Color"] = color
        out.append(entry)
    return out


def export_docs(fmt: str, classes: list, band_names: list[str], chips: list[np.ndarray],
                emd_extra: dict | None = None, space: str = "MAP_SPACE") -> tuple[dict, dict]:
    emd = {"MetaDataMode": fmt, "ImageHeight": SIZE, "ImageWidth": SIZE,
           "ImageSpaceUsed": space, "IsMultidimensional": False,
           "Classes": classes_doc(classes, stats_style=False),
           "InputRastersProps": {"RasterCount": 1, "SensorName": "Undefined",
                                 "BandNames": band_names},
           "AllTilesStats": all_tiles_stats(chips, band_names),
           "WellKnownBandNames (FYI, these band names can be used in ExtractBands)":
               ["Red", "Green", "Blue", "Infrared", "NearInfrared", "ShortWaveInfrared",
                "Panchromatic"]}
    emd.update(emd_extra or {})
    stats = {"Version": 1, "NumBands": chips[0].shape[0], "TileSizeX": SIZE, "TileSizeY": SIZE,
             "NumClasses": len(classes), "NumTiles": len(chips), "NumTilesAsDouble": len(chips),
             "NextTileIndex": len(chips), "OutputFeatures": fmt != "Classified_Tiles",
             "MetaDataMode": fmt, "Classes": classes_doc(classes, stats_style=True),
             "InputRastersProps": emd["InputRastersProps"],
             "BandStatsState": band_stats_state(chips)}
    return emd, stats


def write_docs(folder: Path, emd: dict, stats: dict) -> None:
    (folder / "esri_model_definition.emd").write_text(pro_json(emd))
    (folder / "esri_accumulated_stats.json").write_text(pro_json(stats))


def fresh(name: str) -> Path:
    folder = HERE / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    return folder


def quadrant_labels(values: tuple[int, int, int, int], k: int) -> np.ndarray:
    """A 32 x 32 label chip: four quadrants, rotated by ``k``."""
    lab = np.zeros((SIZE, SIZE), np.uint8)
    h = SIZE // 2
    lab[:h, :h], lab[:h, h:], lab[h:, :h], lab[h:, h:] = values
    return np.rot90(lab, k).copy()


# ------------------------------------------------------------------------------- formats


def classified_tiles(name: str, band_names: list[str], emd_extra: dict | None = None,
                     n: int = 4) -> None:
    folder = fresh(name)
    classes = [(1, "Water", [0, 112, 255]), (5, "Forest", [38, 115, 0]),
               (20, "Built-up area", [255, 0, 0])]
    chips, rows = [], []
    for i in range(n):
        stem = f"{i:09d}"
        lab = quadrant_labels((0, 1, 5, 20), i)
        img = smooth_image(len(band_names), 2500, 200, "uint16")
        img[:, lab == 1] //= 3  # water is dark
        chips.append(img)
        write_raster(folder / "images" / f"{stem}.tif", img, georef=i)
        write_raster(folder / "labels" / f"{stem}.tif", lab, georef=i)
        rows.append((f"images/{stem}.tif", f"labels/{stem}.tif"))
    # a GDAL PAM sidecar next to a chip: must be ignored
    (folder / "images" / "000000000.tif.aux.xml").write_text(
        "<PAMDataset>\n  <Metadata />\n</PAMDataset>\n")
    emd, stats = export_docs("Classified_Tiles", classes, band_names, chips, emd_extra)
    stats["InputRastersProps"] = {**stats["InputRastersProps"], "SensorName": "Sentinel-2"}
    emd["InputRastersProps"] = stats["InputRastersProps"]
    write_docs(folder, emd, stats)
    write_map(folder, rows)
    write_stats_txt(folder, n, len(band_names), [(c[1], c[0], n) for c in classes])


def pascal_voc() -> None:
    folder = fresh("pascal_voc")
    classes = [(1, "Car", [255, 255, 0]), (3, "Truck", [0, 255, 255])]
    objects = {
        0: [("1", (2.4, 3.05, 12.1, 11.9)), ("1", (0.0, 20.33, 7.75, 29.02)),
            ("3", (14.0, 10.25, 30.8, 24.0)), ("1", (31.93, 5.0, 32.0, 9.5))],  # edge sliver
        1: [("Car", (5.0, 5.0, 15.0, 13.0)), ("Truck", (16.5, 18.0, 31.0, 30.0))],
        2: [("3", (1.0, 2.0, 20.0, 12.5))],
    }
    chips, rows = [], []
    for i in range(4):
        stem = f"{i:09d}"
        img = smooth_image(3, 200, 20, "uint8")
        chips.append(img)
        write_raster(folder / "images" / f"{stem}.jpg", img, driver="JPEG")
        # world file and GDAL sidecars as Pro 2.1 writes them next to JPEG chips
        t = transform_of(i)
        (folder / "images" / f"{stem}.jgw").write_text(
            f"{t.a}\n0.0\n0.0\n{t.e}\n{t.c + t.a / 2}\n{t.f + t.e / 2}\n")
        for aux in folder.glob(f"images/{stem}.jpg.aux.xml"):
            aux.unlink()
        (folder / "images" / f"{stem}.jpg.aux.xml").write_text(
            "<PAMDataset>\n  <SRS>EPSG:32633</SRS>\n</PAMDataset>\n")
        if i not in objects:  # chip 3 has no label file: left out like arcgis.learn does
            continue
        body = "".join(
            f"    <object>\n        <name>{name}</name>\n        <bndbox>\n"
            f"            <xmin>{x0:.2f}</xmin>\n            <ymin>{y0:.2f}</ymin>\n"
            f"            <xmax>{x1:.2f}</xmax>\n            <ymax>{y1:.2f}</ymax>\n"
            f"        </bndbox>\n    </object>\n" for name, (x0, y0, x1, y1) in objects[i])
        (folder / "labels" / f"{stem}.xml").write_text(
            f'<?xml version="1.0"?>\n<annotation>\n    <filename>{stem}.jpg</filename>\n'
            f"    <source>\n        <annotation>ArcGIS Pro 2.1</annotation>\n    </source>\n"
            f"    <size>\n        <width>{SIZE}</width>\n        <height>{SIZE}</height>\n"
            f"        <depth>3</depth>\n    </size>\n{body}</annotation>\n")
        rows.append((f"images/{stem}.jpg", f"labels/{stem}.xml"))
    emd, stats = export_docs("PASCAL_VOC_rectangles", classes, ["", "", ""], chips)
    write_docs(folder, emd, stats)
    write_map(folder, rows)
    write_stats_txt(folder, 3, 3, [(c[1], c[0], 2) for c in classes], unit="features")


def kitti() -> None:
    folder = fresh("kitti")
    classes = [(1, "Palm", [0, 200, 0]), (2, "Other tree", [200, 100, 0])]
    objects = {0: [(1, (2.4, 3.05, 12.1, 11.9)), (2, (14.0, 10.25, 30.8, 24.0))],
               1: [(1, (5.0, 5.0, 15.0, 13.0))], 2: [(2, (1.0, 2.0, 20.0, 12.5))]}
    chips, rows = [], []
    for i in range(3):
        stem = f"{i:09d}"
        img = smooth_image(3, 200, 20, "uint8")
        chips.append(img)
        write_raster(folder / "images" / f"{stem}.tif", img, georef=i)
        lines = "".join(f"{v} 0.00 0 0.00 {x0:.2f} {y0:.2f} {x1:.2f} {y1:.2f} 0.00 0.00 0.00 "
                        "0.00 0.00 0.00 0.00\n" for v, (x0, y0, x1, y1) in objects[i])
        (folder / "labels" / f"{stem}.txt").write_text(lines)
        rows.append((f"images/{stem}.tif", f"labels/{stem}.txt"))
    emd, stats = export_docs("KITTI_rectangles", classes, ["Red", "Green", "Blue"], chips)
    write_docs(folder, emd, stats)
    write_map(folder, rows)
    write_stats_txt(folder, 3, 3, [(c[1], c[0], 2) for c in classes], unit="features")


def rcnn_masks() -> None:
    folder = fresh("rcnn_masks")
    classes = [(1, "Building", [255, 0, 0]), (2, "Tree crown", [0, 160, 0])]
    chips, rows = [], []
    for i in range(3):
        stem = f"{i:09d}"
        img = smooth_image(3, 200, 20, "uint8")
        chips.append(img)
        write_raster(folder / "images" / f"{stem}.tif", img, georef=i)
        buildings = np.zeros((SIZE, SIZE), np.uint8)
        buildings[2:10, 3:12] = 1
        buildings[15 + i:25, 18:30] = 2
        write_raster(folder / "labels" / "Building" / f"{stem}.tif", buildings, georef=i)
        rows.append((f"images/{stem}.tif", f"labels/Building/{stem}.tif"))
        if i != 1:  # tree crowns in chips 0 and 2; this folder is named by the class value
            trees = np.zeros((SIZE, SIZE), np.uint8)
            trees[20:28, 2:9] = 1
            write_raster(folder / "labels" / "2" / f"{stem}.tif", trees, georef=i)
    emd, stats = export_docs("RCNN_Masks", classes, ["Red", "Green", "Blue"], chips)
    write_docs(folder, emd, stats)
    write_map(folder, rows)
    write_stats_txt(folder, 3, 3, [(c[1], c[0], 3) for c in classes], unit="features")


def labeled_tiles() -> None:
    folder = fresh("labeled_tiles")
    classes = [(1, "Field", [230, 200, 0]), (2, "Forest", [0, 120, 0])]
    chips, rows = [], []
    for i in range(4):
        stem = f"{i:09d}"
        value = 1 + i % 2
        img = smooth_image(3, 120 if value == 1 else 60, 30, "uint8")
        chips.append(img)
        write_raster(folder / "images" / f"{stem}.tif", img, georef=i)
        (folder / "labels" / f"{stem}.xml").write_text(
            f'<?xml version="1.0"?>\n<annotation>\n    <filename>{stem}.tif</filename>\n'
            f"    <source>\n        <annotation>ArcGIS Pro 2.1</annotation>\n    </source>\n"
            f"    <size>\n        <width>{SIZE}</width>\n        <height>{SIZE}</height>\n"
            f"        <depth>3</depth>\n    </size>\n    <object>\n        <name>{value}</name>\n"
            f"        <bndbox>\n            <xmin>4.00</xmin>\n            <ymin>4.00</ymin>\n"
            f"            <xmax>28.00</xmax>\n            <ymax>28.00</ymax>\n        </bndbox>\n"
            f"    </object>\n</annotation>\n")
        rows.append((f"images/{stem}.tif", f"labels/{stem}.xml"))
    emd, stats = export_docs("Labeled_Tiles", classes, ["Red", "Green", "Blue"], chips,
                             {"CropTileMode": "Fixed_Size", "BlackenAroundFeature": False})
    write_docs(folder, emd, stats)
    write_map(folder, rows)
    write_stats_txt(folder, 4, 3, [(c[1], c[0], 2) for c in classes], unit="features")


def legacy_template() -> None:
    """Older Pro: the .emd is the model-definition template plus Classes."""
    folder = fresh("legacy_template")
    chips, rows = [], []
    for i in range(3):
        stem = f"{i:09d}"
        lab = quadrant_labels((1, 1, 4, 1), i)  # background exported as class 1: no 0 pixels
        img = smooth_image(3, 200, 20, "uint8")
        chips.append(img)
        write_raster(folder / "images" / f"{stem}.tif", img, georef=i, photometric="MINISBLACK")
        write_raster(folder / "labels" / f"{stem}.tif", lab, georef=i)
        rows.append((f"images/{stem}.tif", f"labels/{stem}.tif"))
    emd = {
        "Framework": "e.g. CNTK",
        "ModelConfiguration": "some description",
        "ModelType": "e.g. ObjectDetection or ImageClassification",
        "ModelFile": "e.g. .\\trained.model",
        "ImageHeight": "e.g. 256",
        "ImageWidth": "e.g. 256",
        "ExtractBands": "e.g. [0, 1, 2]",
        "DataRange": "e.g. [0.1, 1.0] (optional)",
        "ModelPadding": "e.g. 64 (optional)",
        "BatchSize": "e.g. 8 (optional)",
        "PerProcessGPUMemoryFraction": "e.g. 0.8 (optional)",
        "Classes": [{"Value": 1, "Name": "1", "Color": [-1, -1, -1]},
                    {"Value": 4, "Name": "4", "Color": [-1, -1, -1]}],
        "WellKnownBandNames (FYI, these band names can be used in ExtractBands)":
            ["Red", "Green", "Blue", "Infrared", "NearInfrared", "Panchromatic"],
    }
    stats = {"Version": 1, "NumBands": 3, "TileSizeX": SIZE, "TileSizeY": SIZE, "NumClasses": 2,
             "NumTiles": 3, "OutputFeatures": False, "MetaDataMode": "Classified_Tiles",
             "Classes": [{"ClassValue": 1, "ClassName": "1"}, {"ClassValue": 4, "ClassName": "4"}]}
    write_docs(folder, emd, stats)
    write_map(folder, rows)
    write_stats_txt(folder, 3, 3, [("1", 1, 3), ("4", 4, 3)])


def main() -> None:
    classified_tiles("classified_tiles", ["Red", "Green", "Blue", "NearInfrared"])
    classified_tiles("classified_tiles_wavelengths",
                     ["CoastalBlue", "Green", "Yellow", "NearInfrared"],
                     {"ModelParameters": {"backbone": "dofa_base", "backend": "pytorch",
                                          "wavelengths": [0.443, 0.531, 0.585, 0.865]}}, n=2)
    pascal_voc()
    kitti()
    rcnn_masks()
    labeled_tiles()
    legacy_template()
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"wrote {HERE} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
