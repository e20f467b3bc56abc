"""Every bad-input case of the issue fails with a clear error naming the file (or band/key)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from data_fixtures import (
    RGBN,
    S1,
    S1_KW,
    S1_LABELS,
    S1_SPEC,
    S2_CHIP,
    SPACENET,
    SPACENET_VEC,
    make_spec,
    write_tif,
)

from rsfm.data import ChipDataset, SceneDataset
from rsfm.data.labels import read_vector
from rsfm.errors import BandError, ConfigError, DataError
from rsfm.spec import InputSpec, Normalization

SEG = make_spec(["band1"], ["background", "building"])
ONE = make_spec(["band1"])


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"not found: '.*nope.tif'"):
        SceneDataset(tmp_path / "nope.tif", None, ONE, task="none")
    with pytest.raises(DataError, match=r"Image folder not found"):
        ChipDataset(tmp_path / "images", tmp_path / "labels", SEG)
    with pytest.raises(DataError, match=r"Vector label file not found"):
        SceneDataset(SPACENET, tmp_path / "x.geojson", SEG)


def test_not_a_raster(tmp_path):
    (tmp_path / "notes.tif").write_text("this is not a GeoTIFF")
    with pytest.raises(DataError, match=r"Cannot read '.*notes.tif' as a raster"):
        SceneDataset(tmp_path / "notes.tif", None, ONE, task="none")


def test_truncated_tiff(tmp_path):
    bad = tmp_path / "trunc.tif"
    data = (S1 / "Spain_7370579_S1Hand.tif").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"trunc.tif"):
        ChipDataset([bad], None, S1_SPEC, task="none")


def test_band_not_in_file():
    with pytest.raises(BandError, match=r"'B99' is not in .*S2Hand.tif.*B8A"):
        ChipDataset([S2_CHIP], None, make_spec(["B02", "B99"]), task="none")
    with pytest.raises(BandError, match=r"'B5' is not in .*S1Hand.tif.*\['VV', 'VH'\]"):
        ChipDataset([S1 / "Spain_7370579_S1Hand.tif"], None, make_spec(["B05"]), task="none")
    with pytest.raises(BandError, match=r"rgbn.crop.tif': the file has 4 bands without "
                                        r"descriptions.*file_bands"):
        SceneDataset(RGBN, None, make_spec(["NIR"]), task="none")


def test_band_count_mismatch_with_recipe(tmp_path):
    with pytest.raises(DataError, match=r"has 4 bands but file_bands lists 3"):
        SceneDataset(RGBN, None, make_spec(["RED"], file_bands=["RED", "GREEN", "BLUE"]),
                     task="none")
    with pytest.raises(ConfigError, match=r"3 mean/std values for 2 bands"):
        InputSpec(S1_SPEC.bands, Normalization("stats", (0, 0, 0), (1, 1, 1)))
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(S1 / "Spain_7370579_S1Hand.tif", folder / "a.tif")
    write_tif(folder / "b.tif", np.ones((3, 8, 8), np.float32), crs="EPSG:4326")
    with pytest.raises(BandError, match=r"b.tif': the file has 3 bands without descriptions"):
        ChipDataset(folder, None, S1_SPEC, task="none")
    # bands read by position: another band count is another dataset
    unnamed = tmp_path / "unnamed"
    unnamed.mkdir()
    write_tif(unnamed / "a.tif", np.ones((2, 8, 8), np.float32))
    write_tif(unnamed / "b.tif", np.ones((3, 8, 8), np.float32))
    with pytest.raises(DataError, match=r"b.tif' has 3 bands but earlier files have 2"):
        ChipDataset(unnamed, None, make_spec(["band1", "band2"]), task="none")


def test_crs_and_size_mismatch(tmp_path):
    img = write_tif(tmp_path / "img.tif", np.ones((2, 16, 16), np.uint16), crs="EPSG:32633")
    lab_crs = write_tif(tmp_path / "lab_crs.tif", np.ones((1, 16, 16), np.uint8), crs="EPSG:32634")
    lab_size = write_tif(tmp_path / "lab_size.tif", np.ones((1, 16, 20), np.uint8))
    with pytest.raises(DataError, match=r"'.*img.tif' and label '.*lab_crs.tif'.*CRS EPSG:32633 "
                                        r"vs EPSG:32634"):
        SceneDataset(img, lab_crs, make_spec(["band1"], ["a", "b"]), tile_size=8)
    with pytest.raises(DataError, match=r"lab_size.tif.*size 16x16 vs 20x16"):
        ChipDataset([img], [lab_size], make_spec(["band1"], ["a", "b"]))


def test_empty_vector_file(tmp_path):
    (tmp_path / "empty.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                        "features": []}))
    with pytest.raises(DataError, match=r"'.*empty.geojson' has no features"):
        SceneDataset(SPACENET, tmp_path / "empty.geojson", SEG)


def test_vector_without_class_attribute(tmp_path):
    with pytest.raises(DataError, match=r"has no attribute 'category'.*'building'"):
        SceneDataset(SPACENET, SPACENET_VEC, SEG, class_attribute="category")
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
        ChipDataset(folder, None, S1_SPEC, task="none")
    nd = write_tif(tmp_path / "nd.tif", np.zeros((1, 64, 64), np.uint16), nodata=0)
    with pytest.raises(DataError, match=r"entirely nodata"):
        SceneDataset(nd, None, ONE, task="none", tile_size=32)


def test_unpaired_and_config_errors(tmp_path):
    with pytest.raises(DataError, match=r"No label for image"):
        ChipDataset(S1, S1_LABELS, S1_SPEC)  # suffixes not given
    with pytest.raises(ConfigError, match=r"task 'classify'"):
        ChipDataset(S1, S1_LABELS, S1_SPEC, task="classify", **S1_KW)
    with pytest.raises(ConfigError, match=r"needs labels"):
        SceneDataset(SPACENET, None, SEG)
    with pytest.raises(ConfigError, match=r"InputSpec"):
        SceneDataset(SPACENET, None, ["band1"], task="none")
    with pytest.raises(ConfigError, match=r"Segmentation needs classes"):
        SceneDataset(SPACENET, SPACENET_VEC, ONE)
