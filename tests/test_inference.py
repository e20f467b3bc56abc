"""Streaming prediction: seams, nodata, bands, outputs, post-processing, vectors, plots."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from rsfm.bands import resolve_band
from rsfm.colors import CLASS_COLORS, class_colors
from rsfm.errors import BandError, ConfigError, DataError
from rsfm.inference.gis import read_category_names, read_raster_attribute_table
from rsfm.inference.loading import load_model
from rsfm.inference.postprocess import clean_array, clean_raster, fill_holes, remove_small_objects
from rsfm.inference.predict import (
    PredictOptions,
    blend_weights,
    predict,
    predict_scene,
    tile_offsets,
)
from rsfm.inference.vectorize import merge_tile_boxes
from rsfm.spec import ClassInfo, InputSpec, Normalization

DATA = Path(__file__).parent / "data"
BANDS = ("RED", "GREEN", "BLUE")


def make_spec(bands=BANDS, classes=("bg", "a", "b"), **kw) -> InputSpec:
    colors = class_colors(len(classes))
    kw.setdefault("normalization", Normalization("none", value_scale=1 / 255))
    return InputSpec(bands=tuple(resolve_band(b) for b in bands),
                     classes=tuple(ClassInfo(n, c) for n, c in zip(classes, colors)), **kw)


SPEC = make_spec(tile_size=64)
OPTS = PredictOptions(overlap=16, progress=False)


def write_scene(path: Path, data: np.ndarray, names=BANDS, nodata=0, crs="EPSG:32616") -> Path:
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=data.dtype,
                       crs=crs, transform=Affine(2.0, 0, 500000, 0, -2.0, 4000000),
                       nodata=nodata) as ds:
        ds.write(data)
        for i, n in enumerate(names or ()):
            ds.set_band_description(i + 1, n)
    return path


class Constant(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
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
    res = predict_scene(Constant(), scene, tmp_path / "c.tif", SPEC, options=OPTS,
                        probabilities="float32", confidence=True, batch_size=3)
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
    res = predict_scene(model, scene, tmp_path / "p.tif", SPEC, options=OPTS,
                        probabilities="float32")
    with rasterio.open(scene) as ds:
        raw = ds.read().astype(np.float32) / 255
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(raw)[None]), 1)[0].numpy()
    with rasterio.open(res.probabilities) as ds:
        got = ds.read()
    valid = ~np.isnan(got[0])
    assert np.abs(got[:, valid] - ref[:, valid]).max() < 1e-5


def test_output_georeferencing_nodata_and_metadata(scene: Path, tmp_path: Path) -> None:
    res = predict_scene(Constant(), scene, tmp_path / "o.tif", SPEC, options=OPTS)
    with rasterio.open(scene) as src, rasterio.open(res.classes) as out:
        assert out.crs == src.crs and out.transform == src.transform
        assert (out.width, out.height) == (src.width, src.height)
        cls = out.read(1)
        assert np.all(cls[:20, :30] == 255) and np.all(cls[20:, 30:] == 1)
        tags = out.tags()
        assert json.loads(tags["CLASSES"]) == ["bg", "a", "b"]
        assert tags["IGNORE_INDEX"] == "-1" and tags["PRECISION"] == "fp32"
        assert out.colormap(1)[1][:3] == CLASS_COLORS[1]  # the shared palette
        assert out.profile["tiled"] and out.compression is not None
        assert out.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"  # kept in the COG copy


def test_ignore_index_is_the_class_nodata_when_it_fits(scene: Path, tmp_path: Path) -> None:
    for ignore, nodata in ((100, 100), (255, 255), (-1, 255), (300, 255)):
        spec = make_spec(tile_size=64, ignore_index=ignore)
        res = predict_scene(Constant(), scene, tmp_path / f"i{ignore}.tif", spec, options=OPTS)
        with rasterio.open(res.classes) as ds:
            assert ds.nodata == nodata and ds.tags()["IGNORE_INDEX"] == str(ignore)
            assert np.all(ds.read(1)[:20, :30] == nodata)


def test_class_names_readable_by_gis(scene: Path, tmp_path: Path) -> None:
    res = predict_scene(Constant(), scene, tmp_path / "g.tif", SPEC, options=OPTS)
    assert read_category_names(res.classes) == ["bg", "a", "b"]  # as GDAL reads them
    rat = read_raster_attribute_table(res.classes)
    assert [r["Class_Name"] for r in rat] == ["bg", "a", "b"]
    assert [int(r["Value"]) for r in rat] == [0, 1, 2]
    assert (int(rat[0]["Red"]), int(rat[0]["Green"]), int(rat[0]["Blue"])) == CLASS_COLORS[0]
    with rasterio.open(res.classes) as ds:
        cls = ds.read(1)
    assert [int(r["Count"]) for r in rat] == [int((cls == k).sum()) for k in range(3)]
    qml = res.style.read_text()
    assert res.style == tmp_path / "g.qml" and 'type="paletted"' in qml
    assert 'value="1" label="a"' in qml and "#{:02x}{:02x}{:02x}".format(*CLASS_COLORS[1]) in qml


def test_cog_overviews_use_mode_for_classes(tmp_path: Path) -> None:
    from rsfm.inference.gis import to_cog

    block = np.array([[2, 1], [1, 1]], dtype=np.uint8)  # the odd pixel moves between blocks
    tiles = [np.roll(np.roll(block, i, 0), j, 1) for i in range(2) for j in range(2)]
    row = np.concatenate([np.concatenate(tiles, 1)] * 256, 1)[:, :1024]
    a = np.concatenate([row] * 512, 0)[None]
    src = tmp_path / "src.tif"
    with rasterio.open(src, "w", driver="GTiff", width=1024, height=1024, count=1, dtype="uint8",
                       crs="EPSG:32616", transform=Affine(1, 0, 500000, 0, -1, 4000000),
                       nodata=255, tiled=True) as ds:
        ds.write(a)
    to_cog(src, tmp_path / "cog.tif", "MODE")
    with rasterio.open(tmp_path / "cog.tif") as ds:
        assert ds.overviews(1) == [2]
        small = ds.read(1, out_shape=(512, 512))
    assert np.all(small == 1)  # NEAREST would keep some 2s


def test_missing_band_fails_naming_file_and_bands(tmp_path: Path) -> None:
    data = np.ones((2, 40, 40), dtype=np.uint8)
    path = write_scene(tmp_path / "two.tif", data, names=("RED", "GREEN"))
    model = Constant()
    with pytest.raises(BandError) as err:
        predict_scene(model, path, tmp_path / "x.tif", SPEC, options=OPTS)
    msg = str(err.value)
    assert "two.tif" in msg and "BLUE" in msg and "['RED', 'GREEN', 'BLUE']" in msg
    assert "['RED', 'GREEN']" in msg
    assert model.calls == 0 and not (tmp_path / "x.tif").exists()


def test_unnamed_bands_by_count(tmp_path: Path) -> None:
    data = np.ones((3, 40, 40), dtype=np.uint8)
    ok = write_scene(tmp_path / "unnamed.tif", data, names=None)
    res = predict_scene(Constant(), ok, tmp_path / "u.tif", SPEC, options=OPTS)
    assert res.classes.exists()
    bad = write_scene(tmp_path / "four.tif", np.ones((4, 40, 40), dtype=np.uint8), names=None)
    with pytest.raises(BandError, match="4 bands without names"):
        predict_scene(Constant(), bad, tmp_path / "f.tif", SPEC, options=OPTS)


def test_real_landsat_collar_and_preview(tmp_path: Path) -> None:
    src = DATA / "landsat7" / "RGB.byte.crop.tif"
    res = predict(Pixelwise(), src, tmp_path / "l7.tif", spec=SPEC, task="segmentation",
                  preview=tmp_path / "l7.png", options=OPTS, min_object_size=4, max_hole_size=4)
    with rasterio.open(src) as s, rasterio.open(res.classes) as o:
        assert o.crs == s.crs and o.transform == s.transform
        collar = (s.read() == 0).all(0)
        assert collar.any()
        assert np.all(o.read(1)[collar] == 255) and np.all(o.read(1)[~collar] != 255)
        counts = [int((o.read(1) == k).sum()) for k in range(3)]
    assert [int(r["Count"]) for r in read_raster_attribute_table(res.classes)] == counts
    assert res.preview.stat().st_size > 10_000


def test_multitemporal_stack(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = write_scene(tmp_path / "t1.tif", rng.integers(1, 255, (3, 50, 60), dtype=np.uint8))
    b = write_scene(tmp_path / "t2.tif", rng.integers(1, 255, (3, 50, 60), dtype=np.uint8))
    seen = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return x.mean(2)  # (B, C, T, H, W) -> 3 "classes"

    spec = make_spec(tile_size=64, num_frames=2)
    kw = {"spec": spec, "task": "segmentation", "options": OPTS}
    res = predict(model, [a, b], tmp_path / "mt.tif", **kw)
    assert seen[0][1:3] == (3, 2) and res.classes.exists()
    c = write_scene(tmp_path / "t3.tif", rng.integers(1, 255, (3, 40, 60), dtype=np.uint8))
    with pytest.raises(DataError, match="co-registered"):
        predict(model, [a, c], tmp_path / "bad.tif", **kw)
    with pytest.raises(ConfigError, match="time steps"):
        predict(model, [a, b, c], tmp_path, **kw)


def test_folder_of_scenes(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds"
    res = predict(Constant(), scene.parent, out, spec=SPEC, task="segmentation", options=OPTS,
                  cog=False)
    assert (out / "scene_pred.tif").exists() and not isinstance(res, list)
    assert read_category_names(out / "scene_pred.tif") == ["bg", "a", "b"]


def test_threshold_binary(tmp_path: Path) -> None:
    data = np.full((3, 40, 40), 100, dtype=np.uint8)
    path = write_scene(tmp_path / "b.tif", data)

    def model(x: torch.Tensor) -> torch.Tensor:  # p(class 1) = sigmoid(-1) ~ 0.27
        return torch.stack([torch.zeros_like(x[:, 0]), torch.full_like(x[:, 0], -1.0)], 1)

    spec = make_spec(tile_size=64, classes=("bg", "fg"))
    lo = predict_scene(model, path, tmp_path / "lo.tif", spec, options=OPTS, threshold=0.2)
    hi = predict_scene(model, path, tmp_path / "hi.tif", spec, options=OPTS)
    assert rasterio.open(lo.classes).read(1).min() == 1
    assert rasterio.open(hi.classes).read(1).max() == 0
    with pytest.raises(ConfigError, match="two-class"):
        predict_scene(Constant(), path, tmp_path / "t3.tif", SPEC, options=OPTS, threshold=0.2)


# ----------------------------------------------------------------------------- checks first
def test_detection_with_raster_output_fails_before_compute(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "d.tif", np.full((3, 80, 80), 10, dtype=np.uint8))
    calls = []

    def detector(x: torch.Tensor) -> list:
        calls.append(1)
        return []

    spec = make_spec(classes=("tree",), tile_size=64)
    with pytest.raises(ConfigError) as err:
        predict(detector, path, tmp_path / "trees.tif", spec=spec, task="detection",
                vectors=tmp_path / "trees.geojson", options=OPTS)
    assert ".geojson" in str(err.value) and "vectors" in str(err.value)
    with pytest.raises(ConfigError, match="only apply to segmentation"):
        predict(detector, path, tmp_path / "trees.geojson", spec=spec, task="detection",
                options=OPTS, probabilities="uint8")
    with pytest.raises(ConfigError, match="class GeoTIFF"):
        predict(Constant(), path, tmp_path / "map.geojson", spec=SPEC, task="segmentation",
                options=OPTS)
    assert not calls and not list(tmp_path.glob("trees*"))


def test_unwritable_or_clashing_outputs_fail_before_compute(scene: Path, tmp_path: Path) -> None:
    model = Constant()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        predict(model, scene, blocker / "sub" / "o.tif", spec=SPEC, task="segmentation",
                options=OPTS)
    with pytest.raises(ConfigError, match="is an input"):
        predict(model, scene, scene, spec=SPEC, task="segmentation", options=OPTS)
    with pytest.raises(ConfigError, match="Unknown vector format"):
        predict(model, scene, tmp_path / "o.tif", spec=SPEC, task="segmentation",
                vectors=tmp_path / "o.kml", options=OPTS)
    with pytest.raises(ConfigError, match="Preview"):
        predict(model, scene, tmp_path / "o.tif", spec=SPEC, task="segmentation",
                preview=tmp_path / "o.bmp", options=OPTS)
    assert model.calls == 0 and not (tmp_path / "o.tif").exists()


def test_every_scene_is_checked_before_the_first_runs(scene: Path, tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    write_scene(folder / "a.tif", np.ones((3, 40, 40), dtype=np.uint8))
    write_scene(folder / "b.tif", np.ones((2, 40, 40), dtype=np.uint8), names=("RED", "GREEN"))
    model = Constant()
    with pytest.raises(BandError, match=r"b\.tif"):
        predict(model, folder, tmp_path / "out", spec=SPEC, task="segmentation", options=OPTS)
    assert model.calls == 0 and not (tmp_path / "out").exists()


def test_nan_and_inf_inputs_become_nodata(tmp_path: Path) -> None:
    data = np.full((3, 50, 50), 0.5, dtype=np.float32)
    data[0, 10:20, 10:20] = np.nan
    data[1, 30:35, 30:35] = np.inf
    data[2, 40:42, 5:8] = -np.inf
    path = write_scene(tmp_path / "f.tif", data, nodata=None)
    seen = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(bool(torch.isfinite(x).all()))
        return torch.zeros(x.shape[0], 3, *x.shape[-2:])

    spec = make_spec(tile_size=64, normalization=Normalization("none"))
    res = predict_scene(model, path, tmp_path / "o.tif", spec, options=OPTS)
    cls = rasterio.open(res.classes).read(1)
    assert all(seen)
    assert np.all(cls[10:20, 10:20] == 255) and np.all(cls[30:35, 30:35] == 255)
    assert np.all(cls[40:42, 5:8] == 255) and (cls != 255).sum() == 2500 - 100 - 25 - 6


def test_forced_file_bands_far_from_training_stats_warn(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    rgb = np.random.default_rng(3).integers(20, 250, (3, 60, 60), dtype=np.uint8)
    path = write_scene(tmp_path / "rgb.tif", rgb, names=None)
    sar = make_spec(bands=("VV", "VH"), classes=("dry", "water"), tile_size=64,
                    normalization=Normalization("stats", (-10.0, -17.0), (4.0, 4.5)))
    model = Constant()
    with caplog.at_level("WARNING", logger="rsfm"):
        predict(model, path, tmp_path / "o.tif", spec=sar, task="segmentation",
                file_bands=["VV", "VH", "X"], options=OPTS)
    warned = [r.getMessage() for r in caplog.records if "does not look like" in r.getMessage()]
    assert len(warned) == 1 and "rgb.tif" in warned[0] and "VV" in warned[0]
    caplog.clear()
    db = np.stack([np.full((60, 60), -11.0), np.full((60, 60), -16.0)]).astype(np.float32)
    fine = write_scene(tmp_path / "sar.tif", db, names=("VV", "VH"), nodata=None)
    with caplog.at_level("WARNING", logger="rsfm"):
        predict(model, fine, tmp_path / "o2.tif", spec=sar, task="segmentation", options=OPTS)
    assert not [r for r in caplog.records if "does not look like" in r.getMessage()]


def test_options_are_checked(scene: Path, tmp_path: Path) -> None:
    for bad in ({"tile_size": 4}, {"overlap": -1}, {"precision": "int8"}, {"batch_size": 0},
                {"probabilities": "uint16"}, {"threshold": 1.5}):
        with pytest.raises(ConfigError):
            PredictOptions(**bad)
    with pytest.raises(ConfigError, match="Unknown prediction option"):
        predict_scene(Constant(), scene, tmp_path / "o.tif", SPEC, tile=64)
    with pytest.raises(ConfigError, match="overlap must be smaller"):
        predict_scene(Constant(), scene, tmp_path / "o.tif", SPEC, overlap=64, progress=False)
    with pytest.raises(ConfigError, match="spec=InputSpec"):
        predict(Constant(), scene, tmp_path / "o.tif")
    with pytest.raises(ConfigError, match="carries no rsfm config"):
        load_model(Constant())


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
                       crs="EPSG:32616", transform=Affine(1, 0, 500000, 0, -1, 4000000),
                       nodata=255) as ds:
        ds.write(a[None])
    clean_raster(path, tmp_path / "c.tif", min_object_size=6, max_hole_size=6, strip_rows=16)
    whole = clean_array(a, 6, 6, nodata=255)
    assert np.array_equal(rasterio.open(tmp_path / "c.tif").read(1), whole)


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
                box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]],
                                   dtype=torch.float32)
                out.append({"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.9])})
            else:
                out.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                            "scores": torch.zeros(0)})
        return out

    spec = make_spec(classes=("bright",), tile_size=64)
    res = predict_scene(detector, path, tmp_path / "d.gpkg", spec, task="detection",
                        options=PredictOptions(overlap=32, progress=False))
    from rsfm.inference.vectorize import read_features

    crs, feats = read_features(tmp_path / "d.gpkg")  # GeoPackage: the raster's CRS
    assert res.summary["objects"] == 1 and len(feats) == 1 and crs == "EPSG:32616"
    x0, y0, x1, y1 = feats[0]["geometry"].bounds
    assert (x0, x1) == (500000 + 40 * 2, 500000 + 62 * 2)
    assert (y0, y1) == (4000000 - 70 * 2, 4000000 - 50 * 2)
    assert feats[0]["properties"]["class"] == "bright"


def test_merge_tile_boxes_drops_cut_duplicates() -> None:
    boxes = torch.tensor([[10, 10, 50, 50], [10, 10, 30, 50], [100, 100, 120, 120.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.tensor([1, 1, 1])
    b, s, _ = merge_tile_boxes(boxes, scores, labels, (200, 200))
    assert len(b) == 2 and s.tolist() == pytest.approx([0.9, 0.7])


# ----------------------------------------------------------------------------- plots
def test_show_results(tmp_path: Path) -> None:
    from rsfm.inference.show import show_results

    rng = np.random.default_rng(0)
    samples = [{"image": torch.from_numpy(rng.random((3, 32, 32), dtype=np.float32)),
                "mask": torch.from_numpy(rng.integers(0, 3, (32, 32)))} for _ in range(3)]
    show_results(Pixelwise(), samples, n=2, path=tmp_path / "r.png", spec=SPEC,
                 task="segmentation")
    assert (tmp_path / "r.png").stat().st_size > 5_000


def test_class_rasters_carry_the_label_values(scene: Path, tmp_path: Path) -> None:
    """Classes with label values (an ArcGIS export's 1, 5, 20) are written as those values."""
    spec = make_spec(tile_size=64, ignore_index=255)
    spec = InputSpec(bands=spec.bands, normalization=spec.normalization, tile_size=64, ignore_index=255,
                     classes=tuple(ClassInfo(c.name, c.color, v) for c, v in zip(spec.classes, (1, 5, 20))))
    res = predict_scene(Pixelwise(), scene, tmp_path / "v.tif", spec, vectors=tmp_path / "v.geojson",
                        preview=tmp_path / "v.png", options=OPTS, min_object_size=3)
    ids = predict_scene(Pixelwise(), scene, tmp_path / "i.tif", make_spec(tile_size=64, ignore_index=255),
                        options=OPTS, min_object_size=3)
    with rasterio.open(res.classes) as ds, rasterio.open(ids.classes) as ref:
        got, want = ds.read(1), ref.read(1)
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        assert json.loads(ds.tags()["CLASS_VALUES"]) == [1, 5, 20]
        cmap = ds.colormap(1)
        assert [cmap[v][:3] for v in (1, 5, 20)] == [c.color for c in spec.classes]
    lut = np.full(256, 255, dtype=np.uint8)
    lut[[0, 1, 2]] = [1, 5, 20]
    np.testing.assert_array_equal(got, lut[want])  # the same map, in label values
    assert set(np.unique(got)) <= {1, 5, 20, 255} and len(set(np.unique(got)) - {255}) >= 2
    rat = read_raster_attribute_table(res.classes)
    assert [(int(r["Value"]), r["Class_Name"]) for r in rat] == [(1, "bg"), (5, "a"), (20, "b")]
    assert [int(r["Count"]) for r in rat] == [int((got == v).sum()) for v in (1, 5, 20)]
    names = read_category_names(res.classes)
    assert (names[1], names[5], names[20]) == ("bg", "a", "b") and names[0] == names[2] == ""
    assert 'value="20" label="b"' in res.style.read_text()
    feats = json.loads((tmp_path / "v.geojson").read_text())["features"]
    assert {(f["properties"]["class_value"], f["properties"]["class_id"], f["properties"]["class"])
            for f in feats} <= {(1, 0, "bg"), (5, 1, "a"), (20, 2, "b")}
    assert res.preview is not None and res.preview.exists()


def test_class_nodata_avoids_the_class_values() -> None:
    from rsfm.inference.gis import class_ids, class_nodata

    assert class_nodata(3, 255) == ("uint8", 255)
    assert class_nodata([1, 5, 20], 5) == ("uint8", 255)  # 5 is a class value
    assert class_nodata([0, 255], 255) == ("uint16", 65535)
    assert class_nodata([0, 300], 1000) == ("uint16", 1000)
    pixels = np.array([[1, 5, 20, 255, 7]], dtype=np.uint8)
    np.testing.assert_array_equal(class_ids(pixels, [1, 5, 20], 255), [[0, 1, 2, -1, -1]])
    np.testing.assert_array_equal(class_ids(np.array([0, 2, 9]), [0, 1, 2]), [0, 2, -1])
