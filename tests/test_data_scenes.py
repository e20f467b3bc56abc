"""Large scenes: tiling, vector labels (rasterised, reprojected, boxed), nodata tiles, sampling."""

from __future__ import annotations

import json

import numpy as np
import rasterio
import torch
from data_fixtures import LANDSAT7, SPACENET, SPACENET_VEC, SPACENET_YOLO, make_spec, write_tif
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from torch.utils.data import DataLoader

from rsfm.data import SceneDataset, collate_fn
from rsfm.data.labels import read_yolo
from rsfm.data.scenes import grid_offsets

SEG = make_spec(SPACENET, ["background", "building"])  # the file's one band: band1
DET = make_spec(SPACENET, ["building"])
NONE = make_spec(LANDSAT7)  # RED, GREEN, BLUE from the colour interpretation


def _full_mask() -> np.ndarray:
    with rasterio.open(SPACENET) as src:
        feats = json.loads(SPACENET_VEC.read_text())["features"]
        return rasterize([(f["geometry"], 1) for f in feats], out_shape=(900, 900),
                         transform=src.transform)


def test_grid_offsets_overlap_and_edge():
    assert grid_offsets(900, 256, 200) == [0, 200, 400, 600, 644]
    assert grid_offsets(900, 300, 300) == [0, 300, 600]
    assert grid_offsets(100, 256, 128) == [0]


def test_vector_segmentation_tiles_match_full_rasterisation():
    ds = SceneDataset(SPACENET, SPACENET_VEC, SEG, tile_size=256, stride=200)
    assert len(ds) == 25 and ds.bands == ["band1"]
    full = _full_mask()
    for i in (0, 7, 24):
        s = ds[i]
        c, r, w, h = s["meta"]["window"].tolist()
        assert np.array_equal(s["mask"].numpy(), full[r:r + h, c:c + w])
    assert s["image"].shape == (1, 256, 256) and s["meta"]["crs"] == "EPSG:32616"
    with rasterio.open(SPACENET) as src:
        c, r, w, h = s["meta"]["window"].tolist()
        expected = rasterio.windows.transform(rasterio.windows.Window(c, r, w, h), src.transform)
    assert np.allclose(s["meta"]["transform"].numpy(), list(expected)[:6])


def test_vector_labels_reprojected_to_raster_crs(tmp_path):
    doc = json.loads(SPACENET_VEC.read_text())
    for f in doc["features"]:
        f["geometry"] = transform_geom("EPSG:32616", "EPSG:4326", f["geometry"], precision=-1)
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    (tmp_path / "wgs84.geojson").write_text(json.dumps(doc))
    ds = SceneDataset(SPACENET, tmp_path / "wgs84.geojson", SEG, tile_size=300)
    full = _full_mask()
    got = np.zeros_like(full)
    for i in range(len(ds)):
        c, r, w, h = ds[i]["meta"]["window"].tolist()
        got[r:r + h, c:c + w] = ds[i]["mask"].numpy()
    agree = (got == full).mean()
    assert agree > 0.999  # vertices reprojected twice: only boundary pixels may differ


def test_detection_boxes_clipped_match_yolo_file():
    ds = SceneDataset(SPACENET, SPACENET_VEC, DET, task="detection", tile_size=900,
                      min_visible=0.0)
    s = ds[0]
    yolo, _ = read_yolo(SPACENET_YOLO, 900, 900)
    assert len(s["boxes"]) == len(yolo) == 43
    # same buildings: every vector box has a YOLO box within half a pixel per edge
    d = np.abs(s["boxes"].numpy()[:, None, :] - yolo[None, :, :]).max(axis=2)
    assert (d.min(axis=1) < 1.0).all()
    tiles = SceneDataset(SPACENET, SPACENET_VEC, DET, task="detection", tile_size=450)
    for i in range(len(tiles)):
        b = tiles[i]["boxes"]
        assert ((b >= 0) & (b <= 450)).all() and (b[:, 2] > b[:, 0]).all()
    assert sum(len(tiles[i]["boxes"]) for i in range(4)) >= 43  # cut buildings appear twice


def test_label_raster_scene_and_out_of_range(tmp_path, caplog):
    with rasterio.open(SPACENET) as src:
        profile = src.profile
    full = _full_mask().astype(np.uint8)
    full[:10, :10] = 7  # not a declared class
    lab = write_tif(tmp_path / "lab.tif", full, crs=profile["crs"], transform=profile["transform"])
    ds = SceneDataset(SPACENET, lab, SEG, tile_size=300)
    with caplog.at_level("WARNING"):
        m = ds[0]["mask"]
    assert (m[:10, :10] == -1).all() and "100 pixels" in caplog.text
    assert ds.check_labels()["out_of_range_pixels"] == 100


def test_nodata_collar_tiles_skipped_and_masked():
    ds = SceneDataset(LANDSAT7, None, NONE, task="none", tile_size=64)
    assert len(ds) + ds.stats["skipped_nodata"] == 16
    assert ds.stats["skipped_nodata"] >= 3
    # a kept tile on the collar edge: nodata pixels are 0 in the input
    with rasterio.open(LANDSAT7) as src:
        raw = src.read()
    for i in range(len(ds)):
        s = ds[i]
        c, r, w, h = s["meta"]["window"].tolist()
        nod = (raw[:, r:r + h, c:c + w] == 0).all(axis=0)
        assert (s["image"][:, torch.from_numpy(nod)] == 0).all()


def test_random_windows_deterministic_and_loader_workers():
    kw = {"tile_size": 128, "sampling": "random", "samples_per_epoch": 6, "seed": 3}
    a = SceneDataset(SPACENET, SPACENET_VEC, SEG, **kw)
    b = SceneDataset(SPACENET, SPACENET_VEC, SEG, **kw)
    wa = [a[i]["meta"]["window"].tolist() for i in range(6)]
    assert wa == [b[i]["meta"]["window"].tolist() for i in range(6)]
    a.set_epoch(1)
    assert [a[i]["meta"]["window"].tolist() for i in range(6)] != wa
    loader = DataLoader(b, batch_size=3, num_workers=2, collate_fn=collate_fn)
    windows = [w.tolist() for batch in loader for w in batch["meta"]["window"]]
    assert windows == wa


def test_time_series_scene_is_c_t_h_w():
    ds = SceneDataset([[SPACENET, SPACENET]], SPACENET_VEC, SEG, tile_size=300)
    s = ds[0]
    assert s["image"].shape == (1, 2, 300, 300) and s["mask"].shape == (300, 300)
    assert torch.equal(s["image"][:, 0], s["image"][:, 1])


def test_label_raster_on_other_grid_is_aligned_on_request(tmp_path):
    import pytest
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    from rsfm.errors import DataError

    full = _full_mask().astype(np.uint8)
    with rasterio.open(SPACENET) as src:
        t, w, h = calculate_default_transform(src.crs, "EPSG:4326", 900, 900, *src.bounds)
        dst = np.zeros((h, w), np.uint8)
        reproject(full, dst, src_transform=src.transform, src_crs=src.crs, dst_transform=t,
                  dst_crs="EPSG:4326", resampling=Resampling.nearest)
    lab = write_tif(tmp_path / "lab4326.tif", dst, crs="EPSG:4326", transform=t)
    with pytest.raises(DataError, match="align_labels=True"):
        SceneDataset(SPACENET, lab, SEG, tile_size=300)
    ds = SceneDataset(SPACENET, lab, SEG, tile_size=300, align_labels=True)
    got = np.zeros_like(full, dtype=np.int64)
    for i in range(len(ds)):
        c, r, ww, hh = ds[i]["meta"]["window"].tolist()
        got[r:r + hh, c:c + ww] = ds[i]["mask"].numpy()
    assert (got == full).mean() > 0.98  # two nearest-neighbour warps: edges may move a pixel


def test_batched_reads_equal_item_reads_without_copy():
    from rsfm.data import ChipDataset
    from rsfm.data.collate import collate_fn as collate

    ds = SceneDataset(LANDSAT7, None, make_spec(LANDSAT7, mean=[50, 50, 50], std=[20, 20, 20]),
                      task="none", tile_size=64)
    idx = list(range(len(ds)))
    samples = ds.__getitems__(idx)
    batch = collate(samples)
    assert batch["image"].data_ptr() == samples[0]["image"].data_ptr()  # no stacking copy
    for k in idx:
        assert torch.equal(batch["image"][k], ds[k]["image"])
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate_fn)
        got = torch.cat([b["image"] for b in loader])
        assert torch.equal(got, torch.stack([ds[k]["image"] for k in idx]))
    # chips with NaN nodata through the batch path (Bolivia first)
    from data_fixtures import S1, S1_KW, S1_LABELS, S1_SPEC

    chips = ChipDataset(S1, S1_LABELS, S1_SPEC, **S1_KW)
    b = next(iter(DataLoader(chips, batch_size=3, collate_fn=collate_fn)))
    for k in range(3):
        assert torch.equal(b["image"][k], chips[k]["image"])
        assert torch.equal(b["mask"][k], chips[k]["mask"])


def test_tiles_past_the_scene_edge_are_nodata_even_without_a_nodata_value(tmp_path):
    # a scene smaller than one tile, no nodata declared: the padding must not become class 0/1
    image = write_tif(tmp_path / "small.tif", np.full((2, 80, 100), 500, dtype=np.uint16),
                      descriptions=["VV", "VH"])
    label = write_tif(tmp_path / "lab.tif", np.ones((80, 100), dtype=np.uint8))
    ds = SceneDataset(image, label, make_spec(["VV", "VH"], ["dry", "water"]), tile_size=128)
    sample = ds[0]
    mask, img = sample["mask"], sample["image"]
    assert mask.shape == (128, 128)
    assert (mask[:80, :100] == 1).all()
    assert (mask[80:] == ds.ignore_index).all() and (mask[:, 100:] == ds.ignore_index).all()
    assert (img[:, :80, :100] == 500).all() and (img[:, 80:] == 0).all() and (img[:, :, 100:] == 0).all()


def test_polygon_segmentation_needs_a_background_class():
    import pytest

    from rsfm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"classes=\['background', 'building'\]"):
        SceneDataset(SPACENET, SPACENET_VEC, DET, tile_size=256)
