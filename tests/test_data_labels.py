"""Label rules (values, colours) for every source, VOC/COCO/YOLO readers, vector classes, box
clipping, and the label check of ``rsfm check --data``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from data_fixtures import (
    DUBAI,
    DUBAI_RULES,
    DUBAI_SPEC,
    S1,
    S1_KW,
    S1_LABELS,
    S1_SPEC,
    SPACENET,
    SPACENET_VEC,
    SPACENET_YOLO,
    TREES,
    make_spec,
    write_tif,
)

from rsfm.data import ChipDataset, SceneDataset
from rsfm.data.labels import (
    LabelRules,
    apply_label_rules,
    clip_boxes,
    read_coco,
    read_vector,
    read_voc,
    read_yolo,
)
from rsfm.errors import ConfigError, DataError
from rsfm.spec import parse_color


def test_label_values_counts_and_modes(caplog):
    raw = np.array([[0, 1, 2], [-1, 9, 1]])
    out, n = apply_label_rules(raw, LabelRules(ignore_values=(-1,)), 3, ignore_index=-100)
    assert n.invalid == 1 and n.labelled == 4 and n.values == [9]
    assert out.tolist() == [[0, 1, 2], [-100, -100, 1]]
    assert "1 pixels have values outside the 3 declared classes (ids 0..2): [9]" in caplog.text
    with pytest.raises(DataError, match=r"x.tif: 1 pixels .*: \[9\]"):
        apply_label_rules(raw, LabelRules(ignore_values=(-1,)), 3, on_invalid="error",
                          source="x.tif")
    out, n = apply_label_rules(np.array([[0, 255]]), LabelRules(value_map={255: 1}), 2)
    assert n.invalid == 0 and out.tolist() == [[0, 1]]
    # a label already holding the ignore index is unlabelled, not out of range
    out, n = apply_label_rules(np.array([[0, 255]]), LabelRules(), 2, ignore_index=255)
    assert n.invalid == 0 and n.labelled == 1 and out.tolist() == [[0, 255]]
    # pixels ignored by the caller (image nodata) are neither labelled nor invalid
    out, n = apply_label_rules(np.array([[0, 7]]), LabelRules(), 2,
                               ignore=np.array([[False, True]]))
    assert (n.labelled, n.invalid) == (1, 0) and out.tolist() == [[0, -1]]


def test_colours():
    assert parse_color("#6EC1E4") == (110, 193, 228) == parse_color([110, 193, 228])
    with pytest.raises(ConfigError):
        parse_color("blue")
    with pytest.raises(ConfigError):
        LabelRules(color_map={"blue": 1})
    rgb = np.array([[[110, 0, 0]], [[193, 0, 0]], [[228, 1, 0]]], dtype=np.uint8)  # (3, 1, 3)
    rules = LabelRules(color_map={(110, 193, 228): 2, "#000000": -1})
    mask, n = apply_label_rules(rgb, rules, 3, ignore_index=255, on_invalid="ignore")
    # unknown colour (0, 0, 1): counted; black mapped to -1: ignored on purpose
    assert mask.tolist() == [[2, 255, 255]] and n.invalid == 1 and n.values == ["#000001"]
    with pytest.raises(DataError, match="colour masks need R, G, B"):
        apply_label_rules(rgb[0], rules, 3)


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


def _stitch(ds, key="mask"):
    """The full-scene target of a SceneDataset, from its tiles."""
    c, r, w, h = ds[0]["meta"]["window"].tolist()
    info = ds.reader.plan(ds.scenes[0][0]).info
    out = np.full((info.height, info.width), -99, dtype=np.int64)
    for i in range(len(ds)):
        c, r, w, h = ds[i]["meta"]["window"].tolist()
        out[r:r + h, c:c + w] = ds[i][key].numpy()
    return out


def test_colour_masks_in_scenes_give_the_chip_targets():
    image, mask = DUBAI / "images/image_part_001.jpg", DUBAI / "masks/image_part_001.png"
    chip = ChipDataset([image], [mask], DUBAI_SPEC, label_rules=DUBAI_RULES)[0]["mask"].numpy()
    scenes = SceneDataset(image, mask, DUBAI_SPEC, tile_size=128, label_rules=DUBAI_RULES)
    stitched = _stitch(scenes)
    assert np.array_equal(stitched, chip)
    assert len(np.unique(chip)) >= 5 and (chip == 2).sum() > 1000  # roads, and more classes
    assert scenes.check_labels()["unknown_color_pixels"] == 0
    assert np.array_equal(scenes.read_target(3)["mask"], scenes[3]["mask"].numpy())


def test_value_maps_and_ignore_values_same_in_chips_and_scenes():
    image = S1 / "Bolivia_312675_S1Hand.tif"  # NaN pixels, -1 labels
    label = S1_LABELS / "Bolivia_312675_LabelHand.tif"
    rules = LabelRules(value_map={0: 1, 1: 0}, ignore_values=(-1,))  # swap dry/water
    chip = ChipDataset([image], [label], S1_SPEC, label_rules=rules)[0]["mask"].numpy()
    scene = _stitch(SceneDataset(image, label, S1_SPEC, tile_size=32, label_rules=rules,
                                 skip_nodata=False))
    assert np.array_equal(scene, chip)
    plain = ChipDataset([image], [label], S1_SPEC, label_rules=LabelRules(ignore_values=(-1,)))
    plain = plain[0]["mask"].numpy()
    assert (plain == -1).sum() > 100 and np.array_equal(chip == -1, plain == -1)
    assert np.array_equal(chip[plain == 0], np.ones((plain == 0).sum()))


def test_vector_labels_take_the_value_rules_and_refuse_a_colour_map():
    spec = make_spec(SPACENET, ["background", "building"])
    swapped = SceneDataset(SPACENET, SPACENET_VEC, spec, tile_size=300,
                           label_rules=LabelRules(value_map={0: 1, 1: 0}))
    plain = SceneDataset(SPACENET, SPACENET_VEC, spec, tile_size=300)
    assert np.array_equal(swapped[4]["mask"].numpy(), 1 - plain[4]["mask"].numpy())
    with pytest.raises(ConfigError, match="color_map is for colour-mask rasters"):
        SceneDataset(SPACENET, SPACENET_VEC, spec, label_rules=DUBAI_RULES)


def test_label_sample_check_names_the_file_and_values(tmp_path):
    with rasterio.open(SPACENET) as src:
        grid = {"crs": src.crs, "transform": src.transform}
    values = np.full((900, 900), 255, np.uint8)  # 0/255 masks for classes 0/1
    values[:300] = 0
    lab = write_tif(tmp_path / "mask255.tif", values, **grid)
    spec = make_spec(SPACENET, ["background", "building"])
    ds = SceneDataset(SPACENET, lab, spec, tile_size=300)
    with pytest.raises(DataError, match=r"(?s)mask255.tif': 67% .* values \[255\].*label_map"):
        ds.check_labels_sample(n_tiles=9)
    fixed = SceneDataset(SPACENET, lab, spec, tile_size=300,
                         label_rules=LabelRules(value_map={255: 1}))
    assert fixed.check_labels_sample(n_tiles=9).invalid == 0
    # a few stray values pass (they stay per-tile warnings)
    values[:5, :5] = 7
    ok = SceneDataset(SPACENET, write_tif(tmp_path / "ok.tif", values // 255, **grid), spec,
                      tile_size=300)
    sample = ok.check_labels_sample()
    assert sample.targets == 8 and sample.invalid == 0 and sample.labelled == 8 * 300 * 300
    # a colour mask read as values: the error says so
    dubai = ChipDataset(DUBAI / "images", DUBAI / "masks", DUBAI_SPEC)
    with pytest.raises(DataError, match=r"(?s)image_part_001.png'.*colour mask: give color_map"):
        dubai.check_labels_sample()
    ChipDataset(DUBAI / "images", DUBAI / "masks", DUBAI_SPEC,
                label_rules=DUBAI_RULES).check_labels_sample()
    chips = ChipDataset(S1, S1_LABELS, S1_SPEC, **S1_KW)
    assert chips.check_labels_sample().targets == 3
