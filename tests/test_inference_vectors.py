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


# ----------------------------------------------------------------------------- instance masks
def _l_shape() -> np.ndarray:
    """A 100 x 100 scene with an L-shaped building: rows 20-39, columns 30-59, less its
    top-right corner (rows 20-29, columns 45-59)."""
    a = np.zeros((100, 100), dtype=bool)
    a[20:40, 30:60] = True
    a[20:30, 45:60] = False
    return a


def _tile_view(scene_mask: np.ndarray, row: int, col: int, tile: int = 64) -> torch.Tensor:
    """What a tile at scene pixel (row, col) sees of the mask: ``(1, 1, tile, tile)`` soft
    probabilities (0.9 inside), zero outside the scene."""
    out = torch.zeros(1, 1, tile, tile)
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + tile, scene_mask.shape[0]), min(col + tile, scene_mask.shape[1])
    part = torch.from_numpy(scene_mask[r0:r1, c0:c1].astype(np.float32)) * 0.9
    out[0, 0, r0 - row : r1 - row, c0 - col : c1 - col] = part
    return out


def test_instance_masks_follow_the_merged_boxes() -> None:
    from rsfm.inference.postprocess import crop_instance_masks
    from rsfm.inference.vectorize import Detections, merge_tile_detections

    obj = _l_shape()
    # three overlapping 64 px tiles: A sees the whole building; B (from column 48) sees it cut
    # by its border; C (from row -16, in the reflect-padded margin) sees it whole, scoring lower
    views = {"A": (0, 0, 0.8), "B": (0, 48, 0.7), "C": (-16, 0, 0.6)}
    boxes, scores, masks = [], [], []
    for row, col, score in views.values():
        m = crop_instance_masks(_tile_view(obj, row, col), row, col, obj.shape)[0]
        boxes.append([m.col, m.row, m.col + m.width, m.row + m.height])
        scores.append(score)
        masks.append(m)
    dets = Detections(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores),
                      torch.zeros(3, dtype=torch.long), tuple(masks))
    # C is A's duplicate (NMS); B's box lies inside A's (a view cut by a tile border)
    merged = merge_tile_detections(dets, obj.shape)
    assert len(merged) == 1 and merged.scores.tolist() == pytest.approx([0.8])
    kept = merged.masks[0]
    assert (kept.row, kept.col) == (20, 30)  # tile A's crop, in scene pixels
    assert np.array_equal(kept.array(), obj[20:40, 30:60])
    assert merged.boxes.tolist() == [[30.0, 20.0, 60.0, 40.0]]
    # the cut view's mask is its own: columns 48-59 of the building only
    assert (masks[1].col, masks[1].width) == (48, 12)
    # box detectors (no masks) merge exactly as before
    plain = merge_tile_detections(Detections(dets.boxes, dets.scores, dets.labels), obj.shape)
    assert plain.masks is None and torch.equal(plain.boxes, merged.boxes)


def test_crop_drops_the_reflect_padded_margin_and_empty_masks() -> None:
    from rsfm.inference.postprocess import crop_instance_masks

    soft = torch.zeros(2, 1, 32, 32)
    soft[0, 0, 0:10, 0:10] = 0.7  # rows/cols 0-7 lie in the margin before the scene
    soft[1, 0] = 0.3  # below the 0.5 threshold everywhere
    full, empty = crop_instance_masks(soft, -8, -8, (50, 50))
    assert (full.row, full.col, full.height, full.width) == (0, 0, 2, 2)
    assert full.array().all() and empty.empty


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_instance_outlines_written_as_polygons(tmp_path: Path, suffix: str) -> None:
    from rsfm.inference.postprocess import InstanceMask
    from rsfm.inference.vectorize import Detections, write_instances
    from rsfm.spec import ClassInfo

    obj = _l_shape()
    donut = np.ones((12, 12), dtype=bool)
    donut[4:8, 4:8] = False  # a courtyard: a hole in the outline
    stray = np.zeros((12, 12), dtype=bool)
    stray[:, :6] = True
    stray[0, 11] = True  # an isolated pixel of a soft mask: not part of the outline
    masks = (InstanceMask.from_array(obj[20:40, 30:60], 20, 30),
             InstanceMask.from_array(donut, 60, 60), InstanceMask.from_array(stray, 80, 10),
             InstanceMask.from_array(np.zeros((0, 0), bool), 0, 0))
    boxes = torch.tensor([[30, 20, 60, 40], [60, 60, 72, 72], [10, 80, 22, 92], [1, 2, 5, 9.0]])
    dets = Detections(boxes, torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([0, 1, 1, 0]),
                      masks)
    t = Affine(2, 0, ORIGIN[0], 0, -2, ORIGIN[1])
    classes = [ClassInfo("building", (255, 0, 0), value=5), ClassInfo("tree", (0, 255, 0))]
    out = tmp_path / f"inst{suffix}"
    summary = write_instances(out, dets, t, rasterio.crs.CRS.from_epsg(32616), classes)
    assert summary == {"objects": 4, "area_unit": "m2", "classes": {"building": 2, "tree": 2}}
    crs, feats = read_features(out)
    props = [f["properties"] for f in feats]
    assert [p["class_value"] for p in props] == [5, 1, 1, 5]
    assert [p["pixels"] for p in props] == [obj.sum(), 144 - 16, 72, 0]
    if suffix == ".geojson":
        check_rfc7946(json.loads(out.read_text()))
        assert crs == "EPSG:4326"
        return
    assert crs == "EPSG:32616"
    building, court, strayed, boxed = (f["geometry"] for f in feats)
    assert building.area == pytest.approx(obj.sum() * 4)  # 2 m pixels
    assert not building.equals(building.envelope)  # an L, not its box
    assert building.bounds == (ORIGIN[0] + 60, ORIGIN[1] - 80, ORIGIN[0] + 120, ORIGIN[1] - 40)
    assert len(court.interiors) == 1 and court.area == pytest.approx(128 * 4)
    assert strayed.area == pytest.approx(72 * 4)
    # no mask pixel passed the threshold: the detection keeps its box
    assert boxed.equals(boxed.envelope) and boxed.area == pytest.approx(4 * 7 * 4)
