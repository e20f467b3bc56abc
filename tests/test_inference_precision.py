"""Prediction precision: bf16/fp16 autocast where the device has it, fp32 otherwise, parity report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from test_inference import OPTS, make_spec, write_scene

from rsfm.inference import precision as prec
from rsfm.inference.loading import training_precision
from rsfm.inference.predict import predict, predict_scene

CPU = torch.device("cpu")


class Recorder(torch.nn.Module):
    """A 1x1 convolution that records whether autocast was on, and in which dtype."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.seen: list[torch.dtype | None] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        on = torch.is_autocast_enabled("cpu")
        self.seen.append(torch.get_autocast_dtype("cpu") if on else None)
        return self.conv(x)


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))


@pytest.fixture
def plain_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))


def test_resolve_precision(bf16_cpu: None) -> None:
    assert prec.resolve_precision(None, CPU) == "fp32"
    assert prec.resolve_precision(None, CPU, trained="bf16") == "bf16"
    assert prec.resolve_precision(None, CPU, trained="no") == "fp32"
    assert prec.resolve_precision("bf16", CPU) == "bf16"


def test_unsupported_precision_falls_back_with_a_warning(plain_cpu: None,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rsfm"):
        assert prec.resolve_precision("bf16", CPU) == "fp32"
        assert prec.resolve_precision("fp16", CPU) == "fp32"
    assert "AVX512-BF16 or AMX-BF16" in caplog.text and "predicting in fp32" in caplog.text
    assert prec.resolve_precision(None, CPU, trained="bf16") == "fp32"  # no warning: a default


def test_bf16_predict_runs_under_autocast_and_reports_parity(
        bf16_cpu: None, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    scene = write_scene(tmp_path / "s.tif", rng.integers(1, 255, (3, 90, 70), dtype=np.uint8))
    spec = make_spec(tile_size=64)
    model = Recorder()
    with caplog.at_level(logging.INFO, logger="rsfm"):
        res = predict(model, scene, tmp_path / "b.tif", spec=spec, task="segmentation",
                      options=OPTS, precision="bf16", parity_check=True)
    assert res.precision == "bf16" and torch.bfloat16 in model.seen and None in model.seen
    report = res.parity
    assert report is not None and report.precision == "bf16" and 0.9 <= report.agreement <= 1
    assert 0 <= report.max_prob_diff < 0.1 and report.pixels > 0
    assert "class agreement" in caplog.text
    model.seen.clear()
    ref = predict_scene(model, scene, tmp_path / "f.tif", spec, options=OPTS)
    assert ref.precision == "fp32" and ref.parity is None and set(model.seen) == {None}


def test_no_parity_report_unless_asked(bf16_cpu: None, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "s.tif", np.ones((3, 40, 40), dtype=np.uint8))
    model = Recorder()
    res = predict_scene(model, scene, tmp_path / "b.tif", make_spec(tile_size=64), options=OPTS,
                        precision="bf16")
    assert res.parity is None and set(model.seen) == {torch.bfloat16}


def test_training_precision_from_run_recipe(tmp_path: Path) -> None:
    assert training_precision(tmp_path) is None
    (tmp_path / "recipe.yaml").write_text("train:\n  mixed_precision: bf16\n")
    assert training_precision(tmp_path) == "bf16"
    assert training_precision(torch.nn.Identity()) is None


def test_parity_report_numbers() -> None:
    full = torch.tensor([[[[0.9]], [[0.1]]], [[[0.4]], [[0.6]]]])  # (2, 2, 1, 1)
    reduced = torch.tensor([[[[0.8]], [[0.2]]], [[[0.55]], [[0.45]]]])
    r = prec.parity_report("bf16", reduced, full)
    assert r.agreement == 0.5 and r.max_prob_diff == pytest.approx(0.15) and r.pixels == 2
