"""Every bad-input case of the issue fails with a clear error naming the file (or band/key)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from data_fixtures import RGBN, S1, S1_KW, S1_LABELS, S2_CHIP, SPACENET, SPACENET_VEC, write_tif

from rsfm.data import ChipDataset, SceneDataset
from rsfm.data.labels import read_vector
from rsfm.errors import BandError, ConfigError, DataError

SEG = {"classes": ["background", "building"]}


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"not found: '.*nope.tif'"):
        SceneDataset(tmp_path / "nope.tif", task="none")
    with pytest.raises(DataError, match=r"Image folder not found"):
        ChipDataset(tmp_path / "images", tmp_path / "labels")
    with pytest.raises(DataError, match=r"Vector label file not found"):
        SceneDataset(SPACENET, tmp_path / "x.geojson", **SEG)


def test_not_a_raster(tmp_path):
    (tmp_path / "notes.tif").write_text("this is not a GeoTIFF")
    with pytest.raises(DataError, match=r"Cannot read '.*notes.tif' as a raster"):
        SceneDataset(tmp_path / "notes.tif", task="none")


def test_truncated_tiff(tmp_path):
    bad = tmp_path / "trunc.tif"
    data = (S1 / "Spain_7370579_S1Hand.tif").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"trunc.tif"):
        ChipDataset([bad], task="none")


def test_band_not_in_file():
    with pytest.raises(BandError, match=r"'B99' is not in .*S2Hand.tif.*B8A"):
        ChipDataset([S2_CHIP], task="none", bands=["B02", "B99"])
    with pytest.raises(BandError, match=r"RED_EDGE_1|not in"):
        ChipDataset([S1 / "Spain_7370579_S1Hand.tif"], task="none", bands=["B05"])


def test_band_count_mismatch_with_recipe(tmp_path):
    with pytest.raises(DataError, match=r"has 4 bands but file_bands lists 3"):
        SceneDataset(RGBN, task="none", file_bands=["RED", "GREEN", "BLUE"])
    with pytest.raises(ConfigError, match=r"3 mean/std values but 2 bands"):
        ChipDataset(S1, S1_LABELS, mean=[0, 0, 0], std=[1, 1, 1], **S1_KW)
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(S1 / "Spain_7370579_S1Hand.tif", folder / "a.tif")
    write_tif(folder / "b.tif", np.ones((3, 8, 8), np.float32), crs="EPSG:4326")
    with pytest.raises(DataError, match=r"b.tif' gives bands"):
        ChipDataset(folder, task="none")


def test_crs_and_size_mismatch(tmp_path):
    img = write_tif(tmp_path / "img.tif", np.ones((2, 16, 16), np.uint16), crs="EPSG:32633")
    lab_crs = write_tif(tmp_path / "lab_crs.tif", np.ones((1, 16, 16), np.uint8), crs="EPSG:32634")
    lab_size = write_tif(tmp_path / "lab_size.tif", np.ones((1, 16, 20), np.uint8))
    with pytest.raises(DataError, match=r"'.*img.tif' and label '.*lab_crs.tif'.*CRS EPSG:32633 "
                                        r"vs EPSG:32634"):
        SceneDataset(img, lab_crs, classes=["a", "b"], tile_size=8)
    with pytest.raises(DataError, match=r"lab_size.tif.*size 16x16 vs 20x16"):
        ChipDataset([img], [lab_size], classes=["a", "b"])


def test_empty_vector_file(tmp_path):
    (tmp_path / "empty.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                        "features": []}))
    with pytest.raises(DataError, match=r"'.*empty.geojson' has no features"):
        SceneDataset(SPACENET, tmp_path / "empty.geojson", **SEG)


def test_vector_without_class_attribute(tmp_path):
    with pytest.raises(DataError, match=r"has no attribute 'category'.*'building'"):
        SceneDataset(SPACENET, SPACENET_VEC, class_attribute="category", **SEG)
    # GeoPackage through fiona, same check
    fiona = pytest.importorskip("fiona")
    doc = json.loads(SPACENET_VEC.read_text())
    schema = {"geometry": "Polygon", "properties": {"name": "str"}}
    with fiona.open(tmp_path / "b.gpkg", "w", driver="GPKG", schema=schema,
                    crs="EPSG:32616") as dst:
        for f in doc["features"][:3]:
            dst.write({"geometry": f["geometry"], "properties": {"name": "x"}})
    assert len(read_vector(tmp_path / "b.gpkg").geometries) == 3
    with pytest.raises(DataError, match=r"b.gpkg' has no attribute 'class'"):
        read_vector(tmp_path / "b.gpkg", "class")


def test_all_nodata_dataset(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    shutil.copy(S1 / "Paraguay_34417_S1Hand.tif", folder)  # the real all-NaN chip
    with pytest.raises(DataError, match=r"All 1 images are entirely nodata.*Paraguay"):
        ChipDataset(folder, task="none")
    nd = write_tif(tmp_path / "nd.tif", np.zeros((1, 64, 64), np.uint16), nodata=0)
    with pytest.raises(DataError, match=r"entirely nodata"):
        SceneDataset(nd, task="none", tile_size=32)


def test_unpaired_and_config_errors(tmp_path):
    with pytest.raises(DataError, match=r"No label for image"):
        ChipDataset(S1, S1_LABELS, classes=["dry", "water"])  # suffixes not given
    with pytest.raises(ConfigError, match=r"task 'classify'"):
        ChipDataset(S1, S1_LABELS, task="classify", **S1_KW)
    with pytest.raises(ConfigError, match=r"needs labels"):
        SceneDataset(SPACENET, **SEG)
