"""Input validation: bad values and files give one clear error (or a counted warning) naming the
file, key, band or value, before data or model are built where possible (QA bad-input round).

Library-level tests (no training except one tiny run): vector labels, label rasters, the recipe
schema, the BatchNorm/tile-size check, saved ``config.json`` colours, message sizes.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from data_fixtures import S1, S1_LABELS, S1_SPEC, SPACENET, write_tif

from rsfm.data.labels import LabelRules, apply_label_rules, read_vector
from rsfm.errors import ConfigError, DataError
from rsfm.recipe import load_recipe

UTM = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32616"}}
X0, Y0 = 733700.0, 3724800.0
SQUARE = {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 50, Y0], [X0 + 50, Y0 + 50],
                                              [X0, Y0 + 50], [X0, Y0]]]}
TWO_POINTS = {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 5, Y0]]]}


def geojson(path: Path, geoms: list, crs: dict | None = UTM) -> Path:
    doc: dict = {"type": "FeatureCollection",
                 "features": [{"type": "Feature", "properties": {}, "geometry": g} for g in geoms]}
    if crs is not None:
        doc["crs"] = crs
    path.write_text(json.dumps(doc))
    return path


# ------------------------------------------------------------------------ 1. degenerate polygons
def test_degenerate_polygon_is_skipped_with_a_counted_warning(tmp_path, caplog):
    path = geojson(tmp_path / "v.geojson", [TWO_POINTS, SQUARE])
    with caplog.at_level(logging.WARNING, logger="rsfm.data.labels"):
        labels = read_vector(path)
    assert len(labels.geometries) == 1 and labels.geometries[0].area == pytest.approx(2500)
    text = caplog.text
    assert str(path) in text and "1 of 2 features" in text and "feature 0" in text


def test_only_degenerate_polygons_is_an_error(tmp_path):
    nan = json.loads(json.dumps(SQUARE))
    nan["coordinates"][0][1][0] = float("nan")
    path = geojson(tmp_path / "v.geojson", [TWO_POINTS, nan, {"type": "Polygon"}])
    with pytest.raises(DataError) as info:
        read_vector(path)
    msg = str(info.value)
    assert str(path) in msg and "feature 0" in msg and "4 coordinates" in msg and len(msg) < 3000


def test_self_intersecting_polygon_is_repaired(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 50, Y0 + 50], [X0 + 50, Y0],
                                                  [X0, Y0 + 50], [X0, Y0]]]}
    labels = read_vector(geojson(tmp_path / "v.geojson", [bowtie]))
    assert labels.geometries[0].is_valid and labels.geometries[0].area == pytest.approx(1250)


# ------------------------------------------------------------------------ 2. GeoJSON CRS / documents
def test_unknown_geojson_crs_names_file_and_crs(tmp_path):
    path = geojson(tmp_path / "v.geojson", [SQUARE],
                   {"type": "name", "properties": {"name": "EPSG:999999"}})
    with pytest.raises(DataError) as info:
        read_vector(path)
    assert str(path) in str(info.value) and "EPSG:999999" in str(info.value)


def test_malformed_geojson_crs_member(tmp_path):
    path = geojson(tmp_path / "v.geojson", [SQUARE], {"type": "name"})
    with pytest.raises(DataError, match="crs"):
        read_vector(path)


@pytest.mark.parametrize("doc", [{"type": "Feature", "properties": {}, "geometry": SQUARE,
                                  "crs": UTM},
                                 {**SQUARE, "crs": UTM}])
def test_bare_feature_or_geometry_is_read(tmp_path, doc):
    path = tmp_path / "v.geojson"
    path.write_text(json.dumps(doc))
    labels = read_vector(path)
    assert len(labels.geometries) == 1 and labels.crs.to_epsg() == 32616


def test_geojson_that_is_no_feature_document(tmp_path):
    path = tmp_path / "v.geojson"
    path.write_text("[1, 2]")
    with pytest.raises(DataError) as info:
        read_vector(path)
    assert str(path) in str(info.value) and "FeatureCollection" in str(info.value)
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_vector(path)


def test_known_crs_spellings_read(tmp_path):
    lonlat = {"type": "Polygon", "coordinates": [[[-84.4, 33.7], [-84.3, 33.7], [-84.3, 33.8],
                                                  [-84.4, 33.7]]]}
    for crs, geom in (({"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
                       lonlat), ({"type": "EPSG", "properties": {"code": 32616}}, SQUARE),
                      (None, lonlat)):
        labels = read_vector(geojson(tmp_path / "v.geojson", [geom], crs))
        assert labels.crs is not None


def test_projected_coordinates_without_a_crs_member(tmp_path):
    path = geojson(tmp_path / "v.geojson", [SQUARE], None)
    with pytest.raises(DataError) as info:
        read_vector(path)
    msg = str(info.value)
    assert str(path) in msg and "'crs' member" in msg and "EPSG:4326" in msg and "733700" in msg


# ------------------------------------------------------------------------ 3. colour mask as labels
def rgb_chips(tmp_path: Path, same_bands: bool) -> Path:
    import rasterio

    root = tmp_path / "chips"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    src = S1 / "Spain_7370579_S1Hand.tif"
    with rasterio.open(S1_LABELS / "Spain_7370579_LabelHand.tif") as f:
        lab, profile = f.read(1), f.profile
    (root / "images" / "a.tif").write_bytes(src.read_bytes())
    if same_bands:
        data = np.stack([lab, lab, lab])
    else:
        data = np.zeros((3, *lab.shape), np.uint8)
        data[2][lab == 1] = 255
    write_tif(root / "labels" / "a.tif", data, crs=profile["crs"], transform=profile["transform"])
    return root


def test_rgb_label_without_color_map_is_an_error(tmp_path):
    from rsfm.data.chips import ChipDataset

    root = rgb_chips(tmp_path, same_bands=False)
    ds = ChipDataset(root / "images", root / "labels", S1_SPEC)
    with pytest.raises(DataError) as info:
        ds.check_labels_sample()  # rsfm check --data; reading a target fails the same way
    with pytest.raises(DataError):
        ds[0]
    msg = str(info.value)
    assert str(root / "labels" / "a.tif") in msg and "3 bands" in msg and "color_map" in msg
    assert "#0000FF" in msg  # the colours found, ready to map


def test_label_with_three_equal_bands_reads_band_one(tmp_path):
    from rsfm.data.chips import ChipDataset

    root = rgb_chips(tmp_path, same_bands=True)
    ds = ChipDataset(root / "images", root / "labels", S1_SPEC,
                     label_rules=LabelRules(ignore_values=(-1,)))
    assert ds.read_target(0)["mask"].max() == 1


# ------------------------------------------------------------------------ 4. NaN labels
def test_nan_label_pixels_are_ignored_and_counted_without_warning():
    raw = np.array([[0, 1, np.nan], [np.nan, 1, 0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask, count = apply_label_rules(raw, LabelRules(), 2, -1, on_invalid="error")
    assert mask.tolist() == [[0, 1, -1], [-1, 1, 0]]
    assert count.invalid == 0 and count.nan == 2 and count.labelled == 4


def test_nan_labels_in_a_dataset_are_reported(tmp_path, caplog):
    import rasterio

    from rsfm.data.chips import ChipDataset

    root = tmp_path / "chips"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "images" / "a.tif").write_bytes((S1 / "Ghana_53713_S1Hand.tif").read_bytes())
    with rasterio.open(S1_LABELS / "Ghana_53713_LabelHand.tif") as f:
        lab, profile = f.read(1).astype(np.float32), f.profile
    lab[:10] = np.nan
    write_tif(root / "labels" / "a.tif", lab, crs=profile["crs"], transform=profile["transform"])
    ds = ChipDataset(root / "images", root / "labels", S1_SPEC,
                     label_rules=LabelRules(ignore_values=(-1,)))
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="rsfm.data.base"):
        warnings.simplefilter("error")
        sample = ds.check_labels_sample()
        ds.check_labels()
    assert sample.invalid == 0
    assert ds.stats["nan_label_pixels"] == 10 * lab.shape[1]
    assert "NaN" in caplog.text and str(root / "labels" / "a.tif") in caplog.text


# ------------------------------------------------------------------------ 5. schema values
BASE = {
    "name": "t",
    "model": {"task": "segmentation", "backbone": "resnet18", "head": "unet", "num_classes": 2,
              "bands": ["VV", "VH"]},
    "data": {"train": {"images": "imgs", "labels": "labs"}, "classes": ["dry", "water"]},
}


def error_of(overrides: list[str], base: dict = BASE) -> str:
    with pytest.raises(ConfigError) as info:
        load_recipe(base, overrides)
    return str(info.value)


@pytest.mark.parametrize(("override", "key", "shown"), [
    ("train.optimizer.betas=[1.5, 2]", "train.optimizer.betas", "1.5"),
    ("train.optimizer.betas=[0.9, 1.0]", "train.optimizer.betas", "1.0"),
    ("data.normalization={mean: [.nan, 1], std: [1, 1]}", "data.normalization.mean", "nan"),
    ("data.normalization={mean: [0, 1], std: [.inf, 1]}", "data.normalization.std", "inf"),
    ("data.normalization={mean: [0, 1], std: [0, 1]}", "data.normalization.std", "0"),
    ("train.loss.class_weights=[-1, 1]", "train.loss.class_weights", "-1"),
    ("train.loss.class_weights=[0, 0]", "train.loss.class_weights", "0"),
    ("train.loss.class_weights=[.nan, 1]", "train.loss.class_weights", "nan"),
    ("train.loss.focal_gamma=-2", "train.loss.focal_gamma", "-2"),
    ("data.batch_size=true", "data.batch_size", "true"),
    ("train.epochs=true", "train.epochs", "true"),
    ("train.optimizer.lr=true", "train.optimizer.lr", "true"),
    ("data.augment.hflip=-0.5", "data.augment.hflip", "-0.5"),
    ("data.augment.rot90=2", "data.augment.rot90", "2"),
    ("data.augment.vflip={p: 1.5}", "data.augment.vflip", "1.5"),
    ("data.augment.noise=maybe", "data.augment.noise", "maybe"),
    ("data.augment.resized_crop={size: 0}", "data.augment.resized_crop.size", "0"),
    ("data.augment.resized_crop={size: [64, -1]}", "data.augment.resized_crop.size", "-1"),
    ("data.augment.resized_crop={size: 64.5}", "data.augment.resized_crop.size", "64.5"),
    ("data.augment.resized_crop={scale: [0.5, 1]}", "data.augment.resized_crop", "size"),
    ("data.augment.resized_crop={size: 64, scale: [0.9, 0.5]}",
     "data.augment.resized_crop.scale", "0.9"),
    ("data.augment.resized_crop={size: 64, scale: [0, 1]}",
     "data.augment.resized_crop.scale", "0"),
    ("data.augment.resized_crop={size: 64, ratio: [2, 1]}",
     "data.augment.resized_crop.ratio", "2"),
    ("data.augment.noise={std: 0.1, sigma: 2}", "data.augment.noise.sigma", "'std'"),
])
def test_schema_rejects_bad_values_at_check(override, key, shown):
    msg = error_of([override])
    assert key in msg and shown in msg, msg


def test_schema_accepts_good_values():
    r = load_recipe(BASE, ["train.optimizer.betas=[0.0, 0.95]", "train.loss.class_weights=[0, 1]",
                           "train.loss.focal_gamma=0", "data.augment.hflip=true",
                           "data.augment.rot90=0.5", "data.augment.vflip={p: 1}",
                           "data.augment.resized_crop={size: [64, 48], scale: [0.5, 1.0]}",
                           "data.augment.haze={p: 0.2, max_haze: 0.3}"])
    assert r.train.optimizer.betas == (0.0, 0.95)


def test_schema_augment_options_match_the_transforms():
    import inspect

    from rsfm.data import transforms
    from rsfm.schema import AUGMENT_OPTIONS

    classes = {"hflip": transforms.v2.RandomHorizontalFlip, "vflip": transforms.v2.RandomVerticalFlip,
               "rot90": transforms.RandomRot90, "band_jitter": transforms.BandJitter,
               "noise": transforms.GaussianNoise, "haze": transforms.CloudHaze}
    for name, cls in classes.items():
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert set(AUGMENT_OPTIONS[name]) == params, name
    crop = set(inspect.signature(transforms.v2.RandomResizedCrop.__init__).parameters) - {"self"}
    assert set(AUGMENT_OPTIONS["resized_crop"]) == crop | {"p"}


def test_transforms_reject_a_zero_crop_size():
    from rsfm.data.transforms import build_transforms

    with pytest.raises(ConfigError, match=r"data.augment.resized_crop.size"):
        build_transforms({"resized_crop": {"size": 0}})


# ------------------------------------------------------------------------ 6. BatchNorm at 1x1
SCENES = {**BASE, "data": {**BASE["data"], "kind": "scenes", "tile_size": 32, "batch_size": 1}}


def test_resnet_tile_too_small_for_batchnorm_at_batch_one():
    msg = error_of([], SCENES)
    assert "data.tile_size" in msg and "data.batch_size" in msg and "64" in msg
    assert "32" in msg and len(msg) < 3000


@pytest.mark.parametrize("override", ["data.batch_size=2", "data.tile_size=48",
                                      "model.freeze_backbone=true", "data.kind=chips"])
def test_resnet_small_tiles_that_train(override):
    load_recipe(SCENES, [override])


def test_resized_crop_size_is_the_training_tile():
    msg = error_of(["data.kind=chips", "data.augment.resized_crop={size: 16}"], SCENES)
    assert "data.augment.resized_crop.size" in msg


def test_vit_tile_of_one_patch():
    vit = {**SCENES, "model": {**BASE["model"], "backbone": "dofa_base", "head": "fcn"}}
    msg = error_of(["data.tile_size=16"], vit)
    assert "data.tile_size" in msg and "16" in msg
    load_recipe(vit, ["data.tile_size=32"])


def test_one_pixel_chip_is_an_error(tmp_path):
    import rasterio

    from rsfm.data.chips import ChipDataset

    root = tmp_path / "chips"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    with rasterio.open(S1 / "Ghana_53713_S1Hand.tif") as f:
        img, profile = f.read(), f.profile
    write_tif(root / "images" / "a.tif", img[:, :1, :1], crs=profile["crs"],
              transform=profile["transform"], descriptions=["VV", "VH"])
    write_tif(root / "labels" / "a.tif", np.zeros((1, 1), np.int16), crs=profile["crs"],
              transform=profile["transform"])
    with pytest.raises(DataError) as info:
        ChipDataset(root / "images", root / "labels", S1_SPEC)
    assert str(root / "images" / "a.tif") in str(info.value) and "1x1" in str(info.value)


# ------------------------------------------------------------------------ 7. no-validation summary
def test_run_without_validation_reports_the_train_loss(tmp_path):
    from test_train import tiny_recipe

    import rsfm

    recipe = tiny_recipe(tmp_path / "run", train={"epochs": 1, "max_steps": 1, "progress": False},
                         output={"dir": str(tmp_path / "run"), "plots": False})
    recipe["data"]["val_fraction"] = 0.0
    result = rsfm.train(recipe)
    assert result.metric == "train_loss"
    assert result.best_metric == pytest.approx(result.history[0]["train_loss"])
    assert result.best_metric > 0


# ------------------------------------------------------------------------ 8. config.json colours
def test_saved_config_with_a_bad_class_colour(tmp_path):
    from rsfm.saved import read_saved_config

    path = saved_config(tmp_path)
    doc = json.loads(path.read_text())
    doc["input"]["classes"][1]["color"] = [300, -1, 2]
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        read_saved_config(path)
    msg = str(info.value)
    # ClassInfo checks colours wherever one is made (recipes, config.json, the Hub)
    assert str(path) in msg and "input.classes[1].color" in msg and "300" in msg and "0..255" in msg


def saved_config(tmp_path: Path) -> Path:
    from rsfm.config import ModelConfig
    from rsfm.saved import CardRef, SavedConfig, read_saved_config, write_saved_config

    model = ModelConfig(task="segmentation", backbone="resnet18", head="unet", num_classes=2)
    path = write_saved_config(tmp_path / "config.json",
                              SavedConfig("0.0", model, S1_SPEC, CardRef("resnet18")))
    read_saved_config(path)  # the good file reads
    return path


# ------------------------------------------------------------------------ 9. message sizes
def test_unknown_key_with_a_huge_value_gives_a_short_message(tmp_path):
    from rsfm.saved import read_saved_config

    path = saved_config(tmp_path)
    good = json.loads(path.read_text())
    path.write_text(json.dumps({**good, "geojson": {"type": "FeatureCollection",
                                                    "features": [SQUARE] * 2000}}))
    with pytest.raises(ConfigError) as info:
        read_saved_config(path)
    msg = str(info.value)
    assert "geojson: unknown key" in msg and "'features'" in msg and len(msg) < 1500
    many = {**good, "input": {**good["input"], **{f"junk{i}": "x" * 5000 for i in range(100)}}}
    path.write_text(json.dumps(many))
    with pytest.raises(ConfigError) as info:
        read_saved_config(path)
    msg = str(info.value)
    assert "input.junk0: unknown key" in msg and "more problem(s)" in msg and len(msg) < 3000


def test_recipe_unknown_key_with_a_huge_value(tmp_path):
    big = {**BASE, "data": {**BASE["data"], "polygons": "x" * 100000}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(big))
    msg = error_of([], big)
    assert "data.polygons" in msg and len(msg) < 1000


# ------------------------------------------------------------------------ 10. prepare_data
@pytest.mark.parametrize("size", [0, -5, 3, 64.5, True])
def test_prepare_data_names_chip_size(tmp_path, size):
    from rsfm.learn import prepare_data

    with pytest.raises(ConfigError) as info:
        prepare_data(tmp_path, chip_size=size)
    assert "chip_size" in str(info.value) and "tile_size" not in str(info.value)


def test_spacenet_vectors_still_read():
    from data_fixtures import SPACENET_VEC

    labels = read_vector(SPACENET_VEC)
    assert len(labels.geometries) > 0 and labels.crs is not None and SPACENET.exists()


# ------------------------------------------------------------------------ stats --value-scale
@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan")])
def test_stats_value_scale_must_be_positive(tmp_path, scale):
    from rsfm.data.stats import compute_stats

    with pytest.raises(ConfigError, match="--value-scale must be a finite number > 0"):
        compute_stats([tmp_path / "never-read.tif"], value_scale=scale)
