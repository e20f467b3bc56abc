"""Vector outputs: RFC 7946 GeoJSON (lon/lat, right-hand rule, no crs), other formats keep the CRS."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine
from rasterio.warp import transform

from rsfm.errors import ConfigError
from rsfm.inference import vectorize
from rsfm.inference.vectorize import read_features, vectorize_raster, write_boxes

BACKENDS = [b for b in ("pyogrio", "fiona") if importlib.util.find_spec(b)] + ["json"]
ORIGIN = (500000.0, 4000000.0)


@pytest.fixture
def class_raster(tmp_path: Path) -> Path:
    a = np.zeros((100, 80), dtype=np.uint8)
    a[10:50, 10:30] = 1  # crosses the strip border at row 32
    a[60:90, 40:70] = 1  # a building with a courtyard (a hole)
    a[70:80, 50:60] = 0
    a[5:15, 50:60] = 2
    path = tmp_path / "v.tif"
    with rasterio.open(path, "w", driver="GTiff", width=80, height=100, count=1, dtype="uint8",
                       crs="EPSG:32616", transform=Affine(2, 0, ORIGIN[0], 0, -2, ORIGIN[1]),
                       nodata=255) as ds:
        ds.write(a[None])
        ds.update_tags(CLASSES=json.dumps(["bg", "building", "tree"]))
    return path


def _signed_area(ring: list[list[float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def _decimals_ok(coords: object) -> bool:
    if isinstance(coords[0], (int, float)):  # type: ignore[index]
        return all(round(c, 7) == c for c in coords)  # type: ignore[union-attr]
    return all(_decimals_ok(c) for c in coords)  # type: ignore[union-attr]


def check_rfc7946(doc: dict) -> None:
    """The RFC 7946 rules a writer controls (sections 3.1.6, 4, 11.2)."""
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    for feat in doc["features"]:
        assert feat["type"] == "Feature" and "crs" not in feat
        geom = feat["geometry"]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for rings in polys:
            for i, ring in enumerate(rings):
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in ring)
                # right-hand rule: exterior counter-clockwise, holes clockwise
                assert (_signed_area(ring) > 0) == (i == 0)
        assert _decimals_ok(geom["coordinates"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_geojson_is_rfc7946(class_raster: Path, tmp_path: Path, backend: str,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorize, "vector_backend", lambda: backend)
    out = tmp_path / "v.geojson"
    summary = vectorize_raster(class_raster, out, strip_rows=32)
    assert summary["objects"] == 3  # strip-cut polygon merged back
    assert summary["classes"]["building"]["count"] == 2
    assert summary["classes"]["building"]["area"] == pytest.approx((40 * 20 + 30 * 30 - 100) * 4)
    doc = json.loads(out.read_text())
    check_rfc7946(doc)
    holes = [f for f in doc["features"] if len(f["geometry"]["coordinates"]) == 2]
    assert len(holes) == 1  # the courtyard
    # the top-left corner of the tree lands where pyproj puts it (lon/lat order)
    tree = next(f for f in doc["features"] if f["properties"]["class"] == "tree")
    ring = tree["geometry"]["coordinates"][0]
    (lon,), (lat,) = transform("EPSG:32616", "EPSG:4326", [ORIGIN[0] + 100], [ORIGIN[1] - 10])
    assert min(abs(x - lon) + abs(y - lat) for x, y in ring) < 1e-6
    crs, feats = read_features(out)
    assert crs == "EPSG:4326" and len(feats) == 3


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "json"])
def test_other_formats_keep_the_raster_crs(class_raster: Path, tmp_path: Path, backend: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorize, "vector_backend", lambda: backend)
    vectorize_raster(class_raster, tmp_path / "v.gpkg")
    crs, feats = read_features(tmp_path / "v.gpkg")
    assert crs == "EPSG:32616" and len(feats) == 3
    assert min(f["geometry"].bounds[0] for f in feats) >= ORIGIN[0]


def test_without_gdal_vector_library_only_geojson(class_raster: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorize, "vector_backend", lambda: "json")
    with pytest.raises(ConfigError, match="pyogrio or fiona"):
        vectorize_raster(class_raster, tmp_path / "v.gpkg")


def test_detection_boxes_geojson_in_lon_lat(tmp_path: Path) -> None:
    out = tmp_path / "boxes.geojson"
    t = Affine(2, 0, ORIGIN[0], 0, -2, ORIGIN[1])
    write_boxes(out, torch.tensor([[40.0, 50.0, 62.0, 70.0]]), torch.tensor([0.9]),
                torch.tensor([0]), t, rasterio.crs.CRS.from_epsg(32616), ["tree"])
    doc = json.loads(out.read_text())
    check_rfc7946(doc)
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    xs, ys = transform("EPSG:32616", "EPSG:4326", [ORIGIN[0] + 80, ORIGIN[0] + 124],
                       [ORIGIN[1] - 140, ORIGIN[1] - 100])
    assert min(p[0] for p in ring) == pytest.approx(min(xs), abs=1e-6)
    assert max(p[1] for p in ring) == pytest.approx(max(ys), abs=1e-6)
    assert doc["features"][0]["properties"] == {"class_id": 0, "class": "tree", "score": 0.9}
