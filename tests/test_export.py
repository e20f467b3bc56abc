"""Export of a tiny ViT segmentation model to torch.export (.pt2), ONNX and legacy TorchScript:
parity at other sizes, the SavedConfig as metadata, prediction from the exported files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from rsfm.bands import resolve_band
from rsfm.colors import class_colors
from rsfm.errors import ConfigError, DataError
from rsfm.factory import create_model
from rsfm.inference.export import export_model, export_onnx, export_pt2, format_of
from rsfm.inference.loading import load_model
from rsfm.inference.predict import predict
from rsfm.spec import ClassInfo, InputSpec, Normalization

BANDS = ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")
SPEC = InputSpec(
    bands=tuple(resolve_band(b) for b in BANDS),
    normalization=Normalization("stats", (1000.0,) * 6, (500.0,) * 6),
    classes=tuple(ClassInfo(n, c) for n, c in zip(("bg", "water", "x"), class_colors(3))),
    tile_size=64, ignore_index=255,
)


def tiny_vit() -> torch.nn.Module:
    """Prithvi layout (window attention with padding, interpolated pos-embed), 2 blocks."""
    torch.manual_seed(0)
    return create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=3,
                        input_spec=SPEC, window_size=3, neck={"out_channels": 16},
                        backbone_kwargs={"depth": 2, "embed_dim": 32, "num_heads": 2}).eval()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_vit()


@pytest.fixture(scope="module")
def exported(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("export")
    return {"pt2": export_pt2(model, folder / "tiny.pt2"),
            "onnx": export_onnx(model, folder / "tiny.onnx")}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 3000, (6, 90, 110), dtype=np.uint16)
    path = tmp_path_factory.mktemp("scene") / "s.tif"
    with rasterio.open(path, "w", driver="GTiff", width=110, height=90, count=6, dtype="uint16",
                       crs="EPSG:32632", transform=Affine(10, 0, 300000, 0, -10, 5000000),
                       nodata=0) as ds:
        ds.write(data)
        for i, b in enumerate(["B2", "B3", "B4", "B8A", "B11", "B12"]):
            ds.set_band_description(i + 1, b)
    return path


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_parity_at_other_sizes(exported: dict, fmt: str) -> None:
    res = exported[fmt]
    assert res.passed and res.dynamic, res
    assert set(res.max_abs_diff) == {"(2, 6, 64, 64)", "(1, 6, 64, 80)", "(3, 6, 96, 96)"}
    assert max(res.max_abs_diff.values()) < (1e-4 if fmt == "pt2" else 1e-3)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_exported_file_carries_the_saved_config(exported: dict, fmt: str,
                                                model: torch.nn.Module) -> None:
    net, config = load_model(exported[fmt].path)
    assert config.input == SPEC and config.model == model.config
    assert config.model.task == "segmentation" and config.card.name == "prithvi_eo_v2_300m"
    if fmt == "onnx":
        assert json.loads(net.metadata["bands"]) == list(BANDS)
        assert json.loads(net.metadata["classes"]) == ["bg", "water", "x"]
        assert net.metadata["ignore_index"] == "255"


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_predict_from_exported_file_equals_the_model(exported: dict, fmt: str, scene: Path,
                                                     model: torch.nn.Module,
                                                     tmp_path: Path) -> None:
    out = predict(str(exported[fmt].path), scene, tmp_path / "e.tif", progress=False)
    ref = predict(model, scene, tmp_path / "t.tif", progress=False)
    a, b = (rasterio.open(r.classes).read(1) for r in (out, ref))
    assert (a == b).mean() > 0.999
    with rasterio.open(out.classes) as ds:
        assert ds.nodata == 255  # the model's ignore index survives the export


def test_pt2_refuses_a_tile_it_was_not_exported_for(exported: dict, scene: Path,
                                                    tmp_path: Path) -> None:
    with pytest.raises((ConfigError, DataError), match="tile"):
        predict(str(exported["pt2"].path), scene, tmp_path / "o.tif", tile_size=40,
                progress=False)


def test_torchscript_legacy_roundtrip_without_deprecation_warnings(model: torch.nn.Module,
                                                                   tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = export_model(model, tmp_path / "m.pt", "torchscript")
        module, config = load_model(tmp_path / "m.pt")
    assert not [w for w in caught if "torch.jit" in str(w.message)]
    assert res.format == "torchscript" and res.max_abs_diff["(2, 6, 64, 64)"] < 1e-5
    assert config.input == SPEC
    assert module(torch.zeros(1, 6, 64, 64)).shape == (1, 3, 64, 64)


def test_files_exported_by_rsfm_0_1_still_load(exported: dict, tmp_path: Path,
                                               scene: Path) -> None:
    import onnx

    proto = onnx.load(str(exported["onnx"].path))
    old = {"task": "segmentation", "bands": list(BANDS), "file_bands": None, "sensor": None,
           "mean": [1000.0] * 6, "std": [500.0] * 6, "value_scale": 1.0, "normalize": None,
           "indices": [], "nodata": None, "classes": ["bg", "water", "x"], "colors": None,
           "tile_size": 64, "overlap": 16, "num_frames": 1, "wavelengths": None,
           "score_threshold": 0.05}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"rsfm_spec": json.dumps(old), "rsfm_version": "0.1.0"})
    legacy = tmp_path / "legacy.onnx"
    onnx.save(proto, str(legacy))
    _, config = load_model(legacy)
    assert config.input.band_names == list(BANDS) and config.input.class_names == ["bg", "water", "x"]
    assert config.input.normalization == SPEC.normalization and config.input.tile_size == 64
    res = predict(str(legacy), scene, tmp_path / "l.tif", progress=False)
    assert res.classes.exists()
    del proto.metadata_props[:]
    onnx.save(proto, str(legacy))
    with pytest.raises(ConfigError, match="carries no rsfm config"):
        load_model(legacy)


def test_export_formats_and_tasks(model: torch.nn.Module, tmp_path: Path) -> None:
    assert format_of("a.pt2") == "pt2" and format_of("a.onnx") == "onnx"
    assert format_of("a.pt") == "torchscript" and format_of("a.bin", "onnx") == "onnx"
    with pytest.raises(ConfigError, match="Cannot tell the export format"):
        format_of("a.bin")
    with pytest.raises(ConfigError, match="multiple of 16"):
        export_pt2(model, tmp_path / "x.pt2", size=72)
    torch.manual_seed(0)
    det = create_model("detection", "resnet18", head="faster_rcnn", num_classes=2)
    with pytest.raises(ConfigError, match="segmentation"):
        export_pt2(det, tmp_path / "d.pt2")
    with pytest.raises(ConfigError, match="carries no rsfm config"):
        export_pt2(torch.nn.Conv2d(6, 3, 1), tmp_path / "p.pt2")
