"""Export models to ONNX (dynamic batch and spatial size) or TorchScript, with a parity check.

Both formats carry the :class:`~rsfm.inference.spec.PredictionSpec` (bands, normalisation,
classes, tile size) as metadata, so ``rsfm predict model.onnx scene.tif`` needs nothing else.

ONNX uses the ``torch.export`` based exporter (``dynamo=True``): shape arithmetic in the ViTs
(token grid, positional-embedding interpolation, window padding) is traced symbolically, so one
file serves any batch size and any tile size that is a multiple of ``multiple`` (the patch size).
The parity check runs PyTorch and onnxruntime at the export size *and* at two other sizes.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rsfm.errors import ConfigError
from rsfm.inference.loading import SPEC_KEY, OnnxModel, load_model
from rsfm.inference.spec import PredictionSpec

__all__ = ["ExportResult", "export_model", "export_onnx", "export_torchscript", "merge_lora"]

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """An exported file and its parity check.

    Attributes:
        path: The written file.
        format: ``onnx`` or ``torchscript``.
        max_abs_diff: Max |PyTorch - exported| of the outputs, per checked input shape.
        passed: All differences are within the tolerance.
        notes: Limits found while exporting (e.g. a static shape).
    """

    path: Path
    format: str
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    passed: bool = True
    notes: list[str] = field(default_factory=list)


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold LoRA adapters into the base weights (no-op for models without adapters)."""
    from rsfm.lora import is_lora
    from rsfm.lora import merge_lora as merge

    if not is_lora(model):
        return model
    log.info("LoRA adapters merged into the backbone weights")
    return merge(model)


def _in_channels(model: torch.nn.Module, spec: PredictionSpec) -> int:
    if spec.bands is not None:
        return len(spec.bands) + len(spec.indices)
    for attr in ("in_chans", "in_channels"):
        for m in (model, getattr(model, "backbone", None)):
            if m is not None and isinstance(getattr(m, attr, None), int):
                return int(getattr(m, attr))
    raise ConfigError("Cannot tell the model's number of input bands: give the spec's bands.")


def _example(model: torch.nn.Module, spec: PredictionSpec, batch: int, h: int, w: int) -> torch.Tensor:
    c = _in_channels(model, spec)
    shape = (batch, c, spec.num_frames, h, w) if spec.num_frames > 1 else (batch, c, h, w)
    g = torch.Generator().manual_seed(h * 1000 + w + batch)
    return torch.randn(shape, generator=g)


def _logits(out: Any) -> torch.Tensor:
    from rsfm.inference.predict import _as_logits

    return _as_logits(out)


class _Logits(torch.nn.Module):
    """Wraps a segmentation model so the exported graph has one tensor output."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _logits(self.model(x))


def _check_sizes(size: int, multiple: int) -> list[tuple[int, int, int]]:
    """Two (batch, H, W) shapes unlike the export shape: smaller non-square, larger square."""
    small = max(multiple, (size // 2 // multiple) * multiple)
    large = size + 2 * multiple
    return [(1, small, small + multiple), (3, large, large)]


def _prepare(model: Any, spec: PredictionSpec | None) -> tuple[torch.nn.Module, PredictionSpec]:
    if spec is None or isinstance(model, (str, Path)):
        model, loaded = load_model(model)
        spec = spec or loaded
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"Only PyTorch models can be exported, got {type(model).__name__}.")
    if spec.task != "segmentation":
        raise ConfigError(
            "Export supports segmentation models: torchvision detection models post-process "
            "(NMS, score filtering) with data-dependent shapes that do not export with dynamic "
            "sizes; run detection in PyTorch."
        )
    model = merge_lora(model).eval().float()
    return _Logits(model).eval(), spec


def _metadata(spec: PredictionSpec, fmt: str, notes: Sequence[str]) -> dict[str, str]:
    import json

    from rsfm import __version__

    return {
        SPEC_KEY: spec.to_json(), "rsfm_version": __version__, "task": spec.task,
        "bands": json.dumps(list(spec.bands) if spec.bands is not None else None),
        "classes": json.dumps(list(spec.classes) if spec.classes else None),
        "mean": json.dumps(list(spec.mean) if spec.mean else None),
        "std": json.dumps(list(spec.std) if spec.std else None),
        "value_scale": str(spec.value_scale), "tile_size": str(spec.tile_size),
        "format": fmt, "limits": json.dumps(list(notes)),
    }


def export_onnx(
    model: Any, path: str | Path, spec: PredictionSpec | None = None, *, size: int | None = None,
    multiple: int = 16, opset: int = 18, atol: float = 1e-3,
    check_sizes: Sequence[tuple[int, int, int]] | None = None,
) -> ExportResult:
    """Export to ONNX with dynamic batch, height and width, then check parity with onnxruntime.

    Args:
        model: Model, run directory, Hub id (LoRA is merged first).
        path: ``.onnx`` output.
        spec: Bands/normalisation/classes (default: from the model).
        size: Example tile size (default: the spec's tile size).
        multiple: Height and width are exported as ``multiple * k`` (the patch size).
        opset: ONNX opset.
        atol: Parity tolerance on the logits.
        check_sizes: ``(batch, H, W)`` shapes of the parity check besides the export shape.
    """
    import onnx

    net, spec = _prepare(model, spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = int(size or spec.tile_size)
    if size % multiple:
        raise ConfigError(f"Export size {size} must be a multiple of {multiple} (the patch size).")
    # batch 2: torch.export specialises dimensions of size 0 and 1
    x = _example(net, spec, 2, size, size)
    hw = (-2, -1)
    dims = {0: torch.export.Dim("batch", min=1, max=1024),
            x.ndim + hw[0]: multiple * torch.export.Dim("h_blocks", min=1, max=4096 // multiple),
            x.ndim + hw[1]: multiple * torch.export.Dim("w_blocks", min=1, max=4096 // multiple)}
    notes: list[str] = []
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(
            net, (x,), dynamo=True, dynamic_shapes={"x": dims}, input_names=["image"],
            output_names=["logits"], opset_version=opset, verbose=False,
        )
    prog.save(str(path))
    proto = onnx.load(str(path))
    dims_out = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    static = [i for i in (0, x.ndim - 2, x.ndim - 1) if isinstance(dims_out[i], int)]
    if static:
        notes.append(f"input shape exported as {dims_out}: dimensions {static} are static")
    onnx.helper.set_model_props(proto, _metadata(spec, "onnx", notes))
    onnx.save(proto, str(path))
    result = ExportResult(path, "onnx", notes=notes)
    ort_model = OnnxModel(path, providers=["CPUExecutionProvider"])
    shapes = [(2, size, size), *(check_sizes or _check_sizes(size, multiple))]
    for b, h, w in shapes:
        xi = _example(net, spec, b, h, w)
        with torch.no_grad():
            ref = net(xi)
        try:
            got = ort_model(xi)
            diff = float((ref - got).abs().max())
        except Exception as err:  # noqa: BLE001 - onnxruntime errors: report as a failed shape
            diff = math.inf
            result.notes.append(f"shape {tuple(xi.shape)} failed in onnxruntime: {str(err)[:200]}")
        result.max_abs_diff[str(tuple(xi.shape))] = diff
    result.passed = all(d <= atol for d in result.max_abs_diff.values())
    return result


def export_torchscript(
    model: Any, path: str | Path, spec: PredictionSpec | None = None, *, size: int | None = None,
    multiple: int = 16, atol: float = 1e-4, check_sizes: Sequence[tuple[int, int, int]] | None = None,
) -> ExportResult:
    """Export to TorchScript (scripted when possible, else traced) with the spec as an extra file.

    A *traced* ViT records its token-grid arithmetic for the example size; the parity check at
    other sizes shows whether the file still works there (reported in ``notes``).
    """
    net, spec = _prepare(model, spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = int(size or spec.tile_size)
    x = _example(net, spec, 2, size, size)
    notes: list[str] = []
    try:
        scripted = torch.jit.script(net)
        how = "scripted"
    except Exception as err:  # noqa: BLE001 - scripting fails in many ways; tracing is the fallback
        log.info("torch.jit.script failed (%s); tracing at %dx%d", str(err).splitlines()[0], size, size)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            scripted = torch.jit.trace(net, x, check_trace=False)
        how = "traced"
    notes.append(f"{how} at example shape {tuple(x.shape)}")
    torch.jit.save(scripted, str(path), _extra_files={f"{SPEC_KEY}.json": spec.to_json()})
    loaded = torch.jit.load(str(path))
    result = ExportResult(path, "torchscript", notes=notes)
    for b, h, w in [(2, size, size), *(check_sizes or _check_sizes(size, multiple))]:
        xi = _example(net, spec, b, h, w)
        with torch.no_grad():
            ref = net(xi)
            try:
                diff = float((ref - loaded(xi)).abs().max())
            except Exception as err:  # noqa: BLE001 - a traced graph may fail at other sizes
                diff = math.inf
                result.notes.append(f"shape {tuple(xi.shape)} fails: {str(err).splitlines()[0][:200]}")
        result.max_abs_diff[str(tuple(xi.shape))] = diff
    result.passed = all(d <= atol for d in result.max_abs_diff.values())
    if not result.passed and how == "traced":
        result.notes.append("the traced file only works at the example size: use ONNX for dynamic sizes")
    return result


def export_model(model: Any, path: str | Path, format: str = "onnx", **kwargs: Any) -> ExportResult:
    """Export with :func:`export_onnx` or :func:`export_torchscript` (``format``)."""
    if format == "onnx":
        return export_onnx(model, path, **kwargs)
    if format == "torchscript":
        return export_torchscript(model, path, **kwargs)
    raise ConfigError(f"export format {format!r} is not 'onnx' or 'torchscript'.")
