"""Prediction with rsfm models and saved folders: the InputSpec and task come with the model,
ignore_index survives into the outputs, and `rsfm predict` checks outputs before any compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from rsfm.cli import main
from rsfm.errors import ConfigError
from rsfm.factory import create_model
from rsfm.hub import save_pretrained
from rsfm.inference import precision as prec
from rsfm.inference.loading import load_model
from rsfm.inference.predict import predict
from rsfm.spec import InputSpec

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "legacy_v0_1_0"
SCENE = min((DATA / "sen1floods11" / "S1Hand").glob("*.tif"))
TINY = {"depth": 2, "embed_dim": 32, "num_heads": 2}


@pytest.fixture(scope="module")
def flood_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=2,
                        bands=["VV", "VH"], classes=["dry", "water"], backbone_kwargs=TINY,
                        neck={"out_channels": 16}).eval()


def test_model_carries_what_prediction_needs(flood_model: torch.nn.Module) -> None:
    net, config = load_model(flood_model)
    assert net is flood_model and isinstance(config.input, InputSpec)
    assert config.input.band_names == ["VV", "VH"] and config.model.task == "segmentation"
    _, legacy = load_model(LEGACY)
    assert legacy.input.class_names == ["dry", "water"] and legacy.input.band_names == ["VV", "VH"]


def test_ignore_index_survives_into_the_class_raster(flood_model: torch.nn.Module,
                                                     tmp_path: Path) -> None:
    from dataclasses import replace

    flood_model.input_spec = replace(flood_model.input_spec, ignore_index=255, tile_size=64)
    try:
        folder = tmp_path / "saved"
        save_pretrained(flood_model, folder)
        for source in (flood_model, str(folder)):
            res = predict(source, SCENE, tmp_path / "p.tif", progress=False)
            with rasterio.open(res.classes) as ds:
                assert ds.nodata == 255 and ds.tags()["IGNORE_INDEX"] == "255"
                assert ds.tags()["TILE_SIZE"] == "64"
    finally:
        flood_model.input_spec = replace(flood_model.input_spec, ignore_index=-1, tile_size=None)


def test_tile_size_not_a_patch_multiple_fails_before_compute(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--tile-size.*patch size 16"):
        predict(str(LEGACY), SCENE, tmp_path / "p.tif", tile_size=40, progress=False)
    assert not list(tmp_path.iterdir())


def test_cli_predict_writes_gis_ready_outputs(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "flood.tif"
    code = main(["predict", str(LEGACY), str(SCENE), "-o", str(out), "--tile-size", "64",
                 "--vectors", str(tmp_path / "flood.geojson"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.exists() and (tmp_path / "flood.qml").exists()
    assert (tmp_path / "flood.tif.aux.xml").exists() and (tmp_path / "flood.geojson").exists()
    assert "fp32" in capsys.readouterr().out
    expected = np.load(LEGACY / "expected_prediction.npy")
    assert np.array_equal(rasterio.open(out).read(1), expected)


def test_cli_bf16_reports_parity_with_verbose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    code = main(["predict", str(LEGACY), str(SCENE), "-o", str(tmp_path / "b.tif"),
                 "--tile-size", "64", "--precision", "bf16", "--verbose", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "bf16" in out and "class agreement" in out


def test_cli_detection_to_raster_fails_before_compute(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    det = create_model("detection", "resnet18", head="faster_rcnn", num_classes=1,
                       bands=["VV", "VH"], classes=["boat"])
    folder = tmp_path / "det"
    save_pretrained(det, folder)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["predict", str(folder), str(SCENE), "-o", str(tmp_path / "trees.tif"),
                 "--vectors", str(tmp_path / "trees.geojson"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and ".geojson" in err and "detection" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cli_export_needs_a_known_format(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(LEGACY), "-o", str(tmp_path / "model.bin")])
    assert code == 2 and "export format" in capsys.readouterr().err
