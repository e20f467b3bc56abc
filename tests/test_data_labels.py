"""Label value mapping, colours, VOC/COCO/YOLO readers, vector classes, box clipping."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_fixtures import SPACENET_VEC, SPACENET_YOLO, TREES

from rsfm.data.labels import (
    apply_color_map,
    clip_boxes,
    map_label_values,
    parse_color,
    read_coco,
    read_vector,
    read_voc,
    read_yolo,
)
from rsfm.errors import ConfigError, DataError


def test_map_label_values_counts_and_modes(caplog):
    raw = np.array([[0, 1, 2], [-1, 9, 1]])
    out, n = map_label_values(raw, 3, ignore_index=-100, source_ignore=[-1])
    assert n == 1 and out.tolist() == [[0, 1, 2], [-100, -100, 1]]
    assert "1 pixels have values [9]" in caplog.text
    with pytest.raises(DataError, match="values \\[9\\] outside the 3 declared classes"):
        map_label_values(raw, 3, source_ignore=[-1], on_invalid="error", source="x.tif")
    out, n = map_label_values(np.array([0, 255]), 2, value_map={255: 1})
    assert n == 0 and out.tolist() == [0, 1]


def test_colours():
    assert parse_color("#6EC1E4") == (110, 193, 228) == parse_color([110, 193, 228])
    with pytest.raises(ConfigError):
        parse_color("blue")
    rgb = np.array([[[110, 0]], [[193, 0]], [[228, 1]]], dtype=np.uint8)  # (3, 1, 2)
    mask, unknown = apply_color_map(rgb, {"#6EC1E4": 2})
    assert mask.tolist() == [[2, -1]] and unknown == 1


def test_voc_reader_real_file():
    name, boxes, labels = read_voc(TREES / "annotations/SOAP_061.xml", ["Alive", "Dead"])
    assert name == "SOAP_061.png" and boxes.shape == (37, 4) and set(labels) == {0, 1}
    with pytest.raises(DataError, match="'Tree' is not in classes"):
        read_voc(TREES / "annotations/OSBS_029.xml", ["Alive"])


def test_coco_reader_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_coco(tmp_path / "bad.json")
    (tmp_path / "nokeys.json").write_text("{}")
    with pytest.raises(DataError, match="not COCO"):
        read_coco(tmp_path / "nokeys.json")


def test_yolo_reader():
    boxes, labels = read_yolo(SPACENET_YOLO, 900, 900)
    assert boxes.shape == (43, 4) and (labels == 0).all()
    assert (boxes[:, 2] > boxes[:, 0]).all()


def test_vector_class_attribute(tmp_path):
    doc = json.loads(SPACENET_VEC.read_text())
    for i, f in enumerate(doc["features"]):
        f["properties"] = {"kind": "house" if i % 2 else "shed"}
    (tmp_path / "v.geojson").write_text(json.dumps(doc))
    vec = read_vector(tmp_path / "v.geojson", "kind", classes=["bg", "house", "shed"])
    assert vec.class_ids[:4].tolist() == [2, 1, 2, 1]
    vec = read_vector(tmp_path / "v.geojson", "kind", class_map={"house": 5, "shed": 6})
    assert set(vec.class_ids.tolist()) == {5, 6}
    with pytest.raises(DataError, match="not a class name"):
        read_vector(tmp_path / "v.geojson", "kind", classes=["bg", "house"])
    assert str(vec.crs) == "EPSG:32616"


def test_clip_boxes():
    b = np.array([[10, 10, 50, 50], [90, 90, 99, 99]], np.float32)
    out, lab = clip_boxes(b, np.array([0, 1]), 40, 40, 20, 20)
    assert out.tolist() == [[0, 0, 10, 10]] and lab.tolist() == [0]
