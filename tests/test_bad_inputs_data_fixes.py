"""Bad data inputs next to the catalogue cases: manifests, COCO annotations, 2-band label
rasters, points/lines as vector labels, a label folder of another format."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import rasterio
from data_fixtures import S1, S1_KW, S1_LABELS, S1_SPEC, SPACENET, SPACENET_VEC, make_spec

from rsfm.data import ChipDataset, SceneDataset
from rsfm.data.labels import read_coco
from rsfm.errors import DataError

SEG = make_spec(SPACENET, ["background", "building"])
STEM = "Ghana_53713"


def _manifest(tmp_path, text: str | bytes):
    shutil.copy(S1 / f"{STEM}_S1Hand.tif", tmp_path / "im.tif")
    shutil.copy(S1_LABELS / f"{STEM}_LabelHand.tif", tmp_path / "lab.tif")
    csv = tmp_path / "chips.csv"
    if isinstance(text, bytes):
        csv.write_bytes(text)
    else:
        csv.write_text(text)
    return csv


def test_manifest_with_bom_and_spaced_header_reads(tmp_path):
    csv = _manifest(tmp_path, "\ufeffimage, label\nim.tif,lab.tif\n")
    ds = ChipDataset(None, None, S1_SPEC, manifest=csv, label_rules=S1_KW["label_rules"])
    assert len(ds) == 1


@pytest.mark.parametrize("text, match", [
    ("image,label\n", "lists no images"),
    ("image,label\n,lab.tif\n", r"row 2: the 'image' cell is empty"),
    ("image,label,split\nim.tif,lab.tif,train\n", r"no row with split 'val'.*\['train'\]"),
])
def test_manifest_bad_rows_name_the_file_and_row(tmp_path, text, match):
    csv = _manifest(tmp_path, text)
    split = "val" if "split" in text else None
    with pytest.raises(DataError, match=match) as err:
        ChipDataset(None, None, S1_SPEC, manifest=csv, split=split)
    assert str(csv) in str(err.value)


def test_split_file_not_utf8_names_the_file(tmp_path):
    (tmp_path / "split.txt").write_bytes("Espa\xf1a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"split\.txt' is not UTF-8"):
        ChipDataset(S1, S1_LABELS, S1_SPEC, split_file=tmp_path / "split.txt", **S1_KW)


def _coco(tmp_path, ann) -> tuple:
    doc = {"images": [{"id": 1, "file_name": "a.tif"}], "categories": [{"id": 1, "name": "Tree"}],
           "annotations": [ann]}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    return tmp_path / "ann.json"


@pytest.mark.parametrize("ann, match", [
    ({"id": 3, "image_id": 1, "category_id": 1, "bbox": ["1", 1, 5, 5]}, r"annotation 3 has bbox"),
    ({"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, None, 5]}, "annotation 3 has bbox"),
    ({"image_id": 1, "category_id": 1}, r"annotation #1 \(it has no 'id'\) has no 'bbox'"),
    ({"id": 3, "category_id": 1, "bbox": [1, 1, 5, 5]}, "annotation 3 has no 'image_id'"),
    ({"id": 3, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}, "unknown image 2"),
    ("box", "annotation #1 is a str"),
])
def test_coco_bad_annotation_names_file_and_id(tmp_path, ann, match):
    path = _coco(tmp_path, ann)
    with pytest.raises(DataError, match=match) as err:
        read_coco(path)
    assert str(path) in str(err.value)


def test_coco_good_annotation_reads(tmp_path):
    _, out = read_coco(_coco(tmp_path, {"id": 3, "image_id": 1, "category_id": 1,
                                        "bbox": [1, 2, 5, 6]}))
    assert out["a.tif"][0].tolist() == [[1, 2, 6, 8]] and out["a.tif"][1].tolist() == [0]


def _two_band_labels(tmp_path, same: bool):
    im, lab = tmp_path / "im", tmp_path / "lab"
    shutil.copytree(S1, im)
    lab.mkdir()
    for f in S1_LABELS.iterdir():
        with rasterio.open(f) as src:
            d, prof = src.read(), src.profile
        prof.update(count=2)
        with rasterio.open(lab / f.name, "w", **prof) as dst:
            dst.write(np.concatenate([d, d if same else 1 - d]))
    return im, lab


def test_label_of_two_equal_bands_is_read(tmp_path):
    ds = ChipDataset(*_two_band_labels(tmp_path, True), S1_SPEC, **S1_KW)
    assert ds[0]["mask"].ndim == 2


def test_label_of_two_different_bands_is_refused(tmp_path):
    ds = ChipDataset(*_two_band_labels(tmp_path, False), S1_SPEC, **S1_KW)
    with pytest.raises(DataError, match="has 2 bands that differ"):
        ds[0]


def _with_points(tmp_path, keep_polygons: bool):
    doc = json.loads(SPACENET_VEC.read_text())
    feats = doc["features"] if keep_polygons else []
    x, y = doc["features"][0]["geometry"]["coordinates"][0][0][:2]
    extra = [{"type": "Feature", "properties": {}, "geometry": g} for g in (
        {"type": "Point", "coordinates": [x, y]},
        {"type": "LineString", "coordinates": [[x, y], [x + 5, y + 5]]})]
    doc["features"] = feats + extra
    (tmp_path / "v.geojson").write_text(json.dumps(doc))
    return tmp_path / "v.geojson"


def test_points_and_lines_only_are_refused(tmp_path):
    path = _with_points(tmp_path, False)
    with pytest.raises(DataError, match=r"no polygon, only LineString \(1\), Point \(1\)"):
        SceneDataset(SPACENET, path, SEG, tile_size=256)


def test_points_among_polygons_warn_with_a_count(tmp_path, caplog):
    path = _with_points(tmp_path, True)
    with caplog.at_level(logging.WARNING):
        SceneDataset(SPACENET, path, SEG, tile_size=256)
    assert "2 of" in caplog.text and "not polygons" in caplog.text


def test_voc_format_given_raster_labels_says_which_format(tmp_path):
    with pytest.raises(DataError, match=r"label_format voc reads .xml files.*holds .tif "
                                        r"\(raster\).*label_format: raster"):
        ChipDataset(S1, S1_LABELS, S1_SPEC, label_format="voc", **S1_KW)
