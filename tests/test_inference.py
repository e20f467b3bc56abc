"""Streaming prediction: seams, nodata, bands, outputs, post-processing, vectors, plots."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from rsfm.colors import CLASS_COLORS
from rsfm.errors import BandError, ConfigError, DataError
from rsfm.inference.postprocess import clean_array, clean_raster, fill_holes, remove_small_objects
from rsfm.inference.predict import blend_weights, predict, predict_scene, tile_offsets
from rsfm.inference.spec import PredictionSpec
from rsfm.inference.vectorize import merge_tile_boxes, vectorize_raster

DATA = Path(__file__).parent / "data"
BANDS = ("RED", "GREEN", "BLUE")


def write_scene(path: Path, data: np.ndarray, names=BANDS, nodata=0, crs="EPSG:32616") -> Path:
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype,
                       crs=crs, transform=from_origin(500000, 4000000, 2.0, 2.0), nodata=nodata) as ds:
        ds.write(data)
        for i, n in enumerate(names or ()):
            ds.set_band_description(i + 1, n)
    return path


class Constant(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 3, *x.shape[-2:])
        out[:, 1] = 1.5
        out[:, 2] = 0.5
        return out


class Pixelwise(torch.nn.Module):
    """A 1x1 convolution: any misplaced or mis-blended tile shows as a difference."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, size=(3, 203, 171), dtype=np.uint8)
    data[:, :20, :30] = 0  # nodata corner
    return write_scene(tmp_path / "scene.tif", data)


SPEC = PredictionSpec(bands=BANDS, value_scale=1 / 255, classes=("bg", "a", "b"), tile_size=64, overlap=16)


def test_tile_grid_covers_scene_with_margin() -> None:
    for size in (1, 30, 64, 65, 203, 1000):
        offs = tile_offsets(size, 64, 16)
        assert offs[0] == -8
        assert offs[-1] + 64 >= size + 8 or offs == [-8]
        assert all(b - a <= 48 for a, b in itertools.pairwise(offs))
    w = blend_weights(64, 16)
    assert w.shape == (64, 64) and w.min() > 0 and w[32, 32] == 1
    # two overlapping ramps sum to a constant over the overlap
    one = w[32]
    assert np.allclose(one[48:] + one[:16], one[48] + one[0])


def test_constant_model_gives_constant_output_without_seams(scene: Path, tmp_path: Path) -> None:
    res = predict_scene(Constant(), scene, tmp_path / "c.tif", SPEC, probabilities="float32",
                        confidence=True, progress=False, batch_size=3)
    with rasterio.open(res.classes) as ds:
        cls = ds.read(1)
        assert ds.nodata == 255
    valid = cls != 255
    assert np.all(cls[valid] == 1)
    with rasterio.open(res.probabilities) as ds:
        p = ds.read()
    expected = torch.softmax(torch.tensor([0.0, 1.5, 0.5]), 0).numpy()
    for k in range(3):
        assert np.allclose(p[k][valid], expected[k], atol=1e-6)  # no seam anywhere
    with rasterio.open(res.confidence) as ds:
        conf = ds.read(1)
    assert np.unique(conf[valid]).size == 1


def test_pixelwise_model_matches_whole_image(scene: Path, tmp_path: Path) -> None:
    model = Pixelwise()
    res = predict_scene(model, scene, tmp_path / "p.tif", SPEC, probabilities="float32", progress=False)
    with rasterio.open(scene) as ds:
        raw = ds.read().astype(np.float32) / 255
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(raw)[None]), 1)[0].numpy()
    with rasterio.open(res.probabilities) as ds:
        got = ds.read()
    valid = ~np.isnan(got[0])
    assert np.abs(got[:, valid] - ref[:, valid]).max() < 1e-5


def test_output_georeferencing_nodata_and_metadata(scene: Path, tmp_path: Path) -> None:
    res = predict_scene(Constant(), scene, tmp_path / "o.tif", SPEC, progress=False)
    with rasterio.open(scene) as src, rasterio.open(res.classes) as out:
        assert out.crs == src.crs and out.transform == src.transform
        assert (out.width, out.height) == (src.width, src.height)
        cls = out.read(1)
        assert np.all(cls[:20, :30] == 255) and np.all(cls[20:, 30:] == 1)
        assert json.loads(out.tags()["CLASSES"]) == ["bg", "a", "b"]
        assert out.colormap(1)[1][:3] == CLASS_COLORS[1]  # the shared palette
        assert out.profile["tiled"] and out.compression is not None
        assert out.overviews(1) == [] or all(f > 1 for f in out.overviews(1))


def test_missing_band_fails_naming_it(tmp_path: Path) -> None:
    data = np.ones((2, 40, 40), dtype=np.uint8)
    path = write_scene(tmp_path / "two.tif", data, names=("RED", "GREEN"))
    with pytest.raises(BandError, match="BLUE"):
        predict_scene(Constant(), path, tmp_path / "x.tif", SPEC, progress=False)
    assert not (tmp_path / "x.tif").exists()


def test_unnamed_bands_by_count(tmp_path: Path) -> None:
    data = np.ones((3, 40, 40), dtype=np.uint8)
    ok = write_scene(tmp_path / "unnamed.tif", data, names=None)
    res = predict_scene(Constant(), ok, tmp_path / "u.tif", SPEC, progress=False)
    assert res.classes.exists()
    bad = write_scene(tmp_path / "four.tif", np.ones((4, 40, 40), dtype=np.uint8), names=None)
    with pytest.raises(DataError, match="4 unnamed bands"):
        predict_scene(Constant(), bad, tmp_path / "f.tif", SPEC, progress=False)


def test_real_landsat_collar_and_preview(tmp_path: Path) -> None:
    src = DATA / "landsat7" / "RGB.byte.crop.tif"
    res = predict(Pixelwise(), src, tmp_path / "l7.tif", spec=SPEC, preview=tmp_path / "l7.png",
                  progress=False, min_object_size=4, max_hole_size=4)
    with rasterio.open(src) as s, rasterio.open(res.classes) as o:
        assert o.crs == s.crs and o.transform == s.transform
        collar = (s.read() == 0).all(0)
        assert collar.any()
        assert np.all(o.read(1)[collar] == 255) and np.all(o.read(1)[~collar] != 255)
    assert res.preview.stat().st_size > 10_000


def test_multitemporal_stack(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = write_scene(tmp_path / "t1.tif", rng.integers(1, 255, (3, 50, 60), dtype=np.uint8))
    b = write_scene(tmp_path / "t2.tif", rng.integers(1, 255, (3, 50, 60), dtype=np.uint8))
    seen = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return x.mean(2)  # (B, C, T, H, W) -> 3 "classes"

    spec = SPEC.with_overrides(num_frames=2)
    res = predict(model, [a, b], tmp_path / "mt.tif", spec=spec, progress=False)
    assert seen[0][1:3] == (3, 2) and res.classes.exists()
    c = write_scene(tmp_path / "t3.tif", rng.integers(1, 255, (3, 40, 60), dtype=np.uint8))
    with pytest.raises(DataError, match="co-registered"):
        predict(model, [a, c], tmp_path / "bad.tif", spec=spec, progress=False)
    with pytest.raises(ConfigError, match="time steps"):
        predict(model, [a, b, c], tmp_path, spec=spec, progress=False)


def test_folder_of_scenes(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds"
    res = predict(Constant(), scene.parent, out, spec=SPEC, progress=False, cog=False)
    assert (out / "scene_pred.tif").exists() and not isinstance(res, list)


def test_threshold_binary(tmp_path: Path) -> None:
    data = np.full((3, 40, 40), 100, dtype=np.uint8)
    path = write_scene(tmp_path / "b.tif", data)

    def model(x: torch.Tensor) -> torch.Tensor:  # p(class 1) = sigmoid(-1) ~ 0.27
        return torch.stack([torch.zeros_like(x[:, 0]), torch.full_like(x[:, 0], -1.0)], 1)

    spec = SPEC.with_overrides(classes=("bg", "fg"))
    lo = predict_scene(model, path, tmp_path / "lo.tif", spec, threshold=0.2, progress=False)
    hi = predict_scene(model, path, tmp_path / "hi.tif", spec, progress=False)
    assert rasterio.open(lo.classes).read(1).min() == 1
    assert rasterio.open(hi.classes).read(1).max() == 0


# ----------------------------------------------------------------------------- post-processing
def test_small_objects_and_holes() -> None:
    a = np.zeros((20, 20), dtype=np.uint8)
    a[2:4, 2:4] = 1  # 4 px object
    a[8:18, 8:18] = 1  # 100 px object with a 4 px hole
    a[12:14, 12:14] = 0
    out = remove_small_objects(a, 5)
    assert out[2:4, 2:4].max() == 0 and out[8:12, 8:18].min() == 1
    filled = fill_holes(a, 5)
    assert filled[12:14, 12:14].min() == 1 and filled[2:4, 2:4].min() == 1
    assert filled[0, 0] == 0  # the large background stays
    both = clean_array(a, 5, 5)
    assert both.sum() == 100


def test_clean_raster_strips_equal_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a = (rng.random((120, 90)) > 0.6).astype(np.uint8)
    path = tmp_path / "cls.tif"
    with rasterio.open(path, "w", driver="GTiff", width=90, height=120, count=1, dtype="uint8",
                       crs="EPSG:32616", transform=from_origin(0, 0, 1, 1), nodata=255) as ds:
        ds.write(a[None])
    clean_raster(path, tmp_path / "c.tif", min_object_size=6, max_hole_size=6, strip_rows=16)
    whole = clean_array(a, 6, 6, nodata=255)
    assert np.array_equal(rasterio.open(tmp_path / "c.tif").read(1), whole)


def test_vectorize_areas_and_strip_merge(tmp_path: Path) -> None:
    a = np.zeros((100, 80), dtype=np.uint8)
    a[10:50, 10:30] = 1  # crosses the strip border at row 32
    a[60:70, 50:60] = 2
    path = tmp_path / "v.tif"
    with rasterio.open(path, "w", driver="GTiff", width=80, height=100, count=1, dtype="uint8",
                       crs="EPSG:32616", transform=from_origin(500000, 4000000, 2, 2), nodata=255) as ds:
        ds.write(a[None])
        ds.update_tags(CLASSES=json.dumps(["bg", "building", "tree"]))
    summary = vectorize_raster(path, tmp_path / "v.geojson", strip_rows=32)
    assert summary["objects"] == 2
    assert summary["classes"]["building"] == {"count": 1, "area": 40 * 20 * 4.0}
    gj = json.loads((tmp_path / "v.geojson").read_text())
    xs = [p[0] for p in gj["features"][0]["geometry"]["coordinates"][0]]
    assert min(xs) >= 500000 and {f["properties"]["class"] for f in gj["features"]} == {"building", "tree"}
    vectorize_raster(path, tmp_path / "v.gpkg")
    assert (tmp_path / "v.gpkg").exists()


# ----------------------------------------------------------------------------- detection
def test_detection_boxes_merged_across_tiles(tmp_path: Path) -> None:
    data = np.full((3, 150, 150), 10, dtype=np.uint8)
    data[:, 50:70, 40:62] = 250  # one bright object, seen by several overlapping tiles
    path = write_scene(tmp_path / "d.tif", data)

    def detector(x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        out = []
        for img in x:
            ys, xs = torch.nonzero(img[0] > 0.5, as_tuple=True)
            if len(ys):
                box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
                out.append({"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.9])})
            else:
                out.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                            "scores": torch.zeros(0)})
        return out

    spec = PredictionSpec(task="detection", bands=BANDS, value_scale=1 / 255, classes=("bright",),
                          tile_size=64, overlap=32)
    res = predict_scene(detector, path, tmp_path / "d.geojson", spec, progress=False)
    gj = json.loads((tmp_path / "d.geojson").read_text())
    assert res.summary["objects"] == 1 and len(gj["features"]) == 1
    ring = gj["features"][0]["geometry"]["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(xs), max(xs)) == (500000 + 40 * 2, 500000 + 62 * 2)
    assert (min(ys), max(ys)) == (4000000 - 70 * 2, 4000000 - 50 * 2)
    assert gj["features"][0]["properties"]["class"] == "bright"


def test_merge_tile_boxes_drops_cut_duplicates() -> None:
    boxes = torch.tensor([[10, 10, 50, 50], [10, 10, 30, 50], [100, 100, 120, 120.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.tensor([1, 1, 1])
    b, s, _ = merge_tile_boxes(boxes, scores, labels, (200, 200))
    assert len(b) == 2 and s.tolist() == pytest.approx([0.9, 0.7])


# ----------------------------------------------------------------------------- spec, plots
def test_spec_from_config_and_roundtrip() -> None:
    cfg = {"model": {"task": "segmentation", "num_frames": 1, "bands": None, "classes": None},
           "data": {"bands": ["B2", "B3"], "mean": [1, 2], "std": [3, 4], "divide_by": 10000,
                    "classes": ["a", "b"], "tile_size": 224, "stride": 112, "ignore_index": -1}}
    spec = PredictionSpec.from_config(cfg)
    assert spec.value_scale == pytest.approx(1e-4) and spec.tile_size == 224 and spec.bands == ("B2", "B3")
    assert PredictionSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ConfigError):
        PredictionSpec.from_config({"model": {"task": "classification"}})


def test_show_results(tmp_path: Path) -> None:
    from rsfm.inference.show import show_results

    rng = np.random.default_rng(0)
    samples = [{"image": torch.from_numpy(rng.random((3, 32, 32), dtype=np.float32)),
                "mask": torch.from_numpy(rng.integers(0, 3, (32, 32)))} for _ in range(3)]
    show_results(Pixelwise(), samples, n=2, path=tmp_path / "r.png", spec=SPEC)
    assert (tmp_path / "r.png").stat().st_size > 5_000
