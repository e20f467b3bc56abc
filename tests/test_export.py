"""ONNX / TorchScript export of a tiny ViT segmentation model: parity, metadata, predict from files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from rsfm.inference.export import export_onnx, export_torchscript
from rsfm.inference.loading import load_model
from rsfm.inference.predict import predict
from rsfm.inference.spec import PredictionSpec

BANDS = ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")
SPEC = PredictionSpec(bands=BANDS, mean=(1000.0,) * 6, std=(500.0,) * 6, classes=("bg", "water", "x"),
                      tile_size=64, overlap=16)


class TinyViTSeg(torch.nn.Module):
    """Prithvi-style ViT (window attention with padding, interpolated pos-embed) + 1x1 head."""

    def __init__(self) -> None:
        super().__init__()
        from rsfm import create_backbone

        torch.manual_seed(0)
        self.backbone = create_backbone("prithvi_eo_v2_300m", depth=2, embed_dim=32, num_heads=2, window_size=3)
        self.head = torch.nn.Conv2d(32, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)[-1]
        return torch.nn.functional.interpolate(self.head(f), size=x.shape[-2:], mode="bilinear")


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    res = export_onnx(TinyViTSeg().eval(), path, SPEC)
    return path, res


def test_onnx_parity_at_other_sizes(onnx_file) -> None:
    _path, res = onnx_file
    assert res.passed, res
    shapes = list(res.max_abs_diff)
    assert "(2, 6, 64, 64)" in shapes and "(1, 6, 32, 48)" in shapes and "(3, 6, 96, 96)" in shapes
    assert max(res.max_abs_diff.values()) < 1e-3


def test_onnx_metadata_and_predict(onnx_file, tmp_path: Path) -> None:
    path, _ = onnx_file
    model, spec = load_model(path)
    assert spec == SPEC
    assert json.loads(model.metadata["bands"]) == list(BANDS)
    assert json.loads(model.metadata["classes"]) == ["bg", "water", "x"]
    rng = np.random.default_rng(0)
    data = rng.integers(1, 3000, (6, 90, 110), dtype=np.uint16)
    scene = tmp_path / "s.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=110, height=90, count=6, dtype="uint16",
                       crs="EPSG:32632", transform=from_origin(0, 0, 10, 10), nodata=0) as ds:
        ds.write(data)
        for i, b in enumerate(["B2", "B3", "B4", "B8A", "B11", "B12"]):
            ds.set_band_description(i + 1, b)
    out_onnx = predict(str(path), scene, tmp_path / "o.tif", progress=False)
    out_torch = predict(TinyViTSeg().eval(), scene, tmp_path / "t.tif", spec=SPEC, progress=False)
    a = rasterio.open(out_onnx.classes).read(1)
    b = rasterio.open(out_torch.classes).read(1)
    assert (a == b).mean() > 0.999


def test_torchscript_roundtrip(tmp_path: Path) -> None:
    res = export_torchscript(TinyViTSeg().eval(), tmp_path / "m.pt", SPEC)
    assert res.max_abs_diff["(2, 6, 64, 64)"] < 1e-5
    module, spec = load_model(tmp_path / "m.pt")
    assert spec == SPEC
    assert module(torch.zeros(1, 6, 64, 64)).shape == (1, 3, 64, 64)
