"""Export models to ``torch.export`` (``.pt2``) or ONNX, each with a parity check.

Every exported file carries the model's :class:`~rsfm.saved.SavedConfig` (task, bands,
normalisation, classes, ignore index, tile size) as metadata, so ``rsfm predict model.pt2
scene.tif`` needs nothing else.

Both formats start from one ``torch.export`` program. Batch, height and width are exported as
dynamic dimensions (height and width as multiples of the patch size): shape arithmetic in the
ViTs (token grid, positional-embedding interpolation, window padding) is traced symbolically,
so one file serves any batch and any tile size that is such a multiple (and at least 64 px). When a model does not
allow that, the export falls back to the example shape and says so in ``notes``. The parity
check runs PyTorch and the exported file at the export shape *and* at two other shapes.

TorchScript (``.pt``) is deprecated in PyTorch; it stays available as a legacy format when
asked for explicitly.

The output is checked before the model is loaded (:func:`check_export_output`): an existing
folder, a folder that cannot be written, or an existing file that is not an earlier rsfm export
(a run's weights, ``config.json``, a recipe, a scene) fail at once. Files are written under a
temporary name and renamed into place, so a failed export leaves the previous file, and a
hard-linked target (a run's ``model.safetensors``) is never written through.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rsfm import __version__
from rsfm.errors import ConfigError
from rsfm.inference.loading import (
    CONFIG_KEY,
    FORMAT_SUFFIXES,
    TORCHSCRIPT_DEPRECATION,
    ExportedModel,
    OnnxModel,
    config_json,
    load_model,
)
from rsfm.inference.outputs import as_logits
from rsfm.io import atomic_write_named, check_free_space, check_output_path
from rsfm.lora import is_lora
from rsfm.lora import merge_lora as _merge
from rsfm.preflight import check_writable_dir
from rsfm.saved import SavedConfig

__all__ = [
    "FORMATS",
    "ExportResult",
    "check_export_output",
    "export_model",
    "export_onnx",
    "export_pt2",
    "export_torchscript",
    "format_of",
    "is_rsfm_export",
    "merge_lora",
]

log = logging.getLogger(__name__)

FORMATS = {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".pt"}
_MAX_SIDE = 8192  # largest exported height / width
# smallest exported height / width: two pixels at the coarsest feature stride (32) of every
# rsfm model; torch.export specialises a 1-pixel feature map, which smaller tiles would give
_MIN_SIDE = 64


@dataclass
class ExportResult:
    """An exported file and its parity check.

    Attributes:
        path: The written file.
        format: ``pt2``, ``onnx`` or ``torchscript``.
        max_abs_diff: Max |PyTorch - exported| of the outputs, per checked input shape.
        passed: All differences are within the tolerance.
        dynamic: Batch, height and width are dynamic (else the file takes the example shape).
        notes: Limits found while exporting (e.g. a static shape).
        atol: The parity tolerance the differences were held to.
    """

    path: Path
    format: str
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    passed: bool = True
    dynamic: bool = True
    notes: list[str] = field(default_factory=list)
    atol: float | None = None


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold LoRA adapters into the base weights (no-op for models without adapters)."""
    if not is_lora(model):
        return model
    log.info("LoRA adapters merged into the backbone weights")
    return _merge(model)


class _Logits(torch.nn.Module):
    """Wraps a segmentation model so the exported graph has one tensor output."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return as_logits(self.model(x))


def _prepare(model: Any) -> tuple[torch.nn.Module, SavedConfig]:
    net, config = load_model(model)
    if not isinstance(net, torch.nn.Module) or isinstance(net, ExportedModel):
        raise ConfigError(f"Only PyTorch models can be exported, got {type(net).__name__}.")
    if config.model.task != "segmentation":
        raise ConfigError(
            f"Export supports segmentation models, not {config.model.task}: torchvision "
            "detection models post-process (NMS, score filtering) with data-dependent shapes "
            "that do not export with dynamic sizes; run detection in PyTorch."
        )
    if is_lora(net) or any(p.dtype != torch.float32 for p in net.parameters()):
        net = copy.deepcopy(net)  # merging and casting must not change the caller's model
    net = merge_lora(net).eval().float()
    return _Logits(net).eval(), config


def _patch_multiple(net: torch.nn.Module) -> int:
    """The input size multiple of a model: its ViT patch size, else 32 (CNN stride)."""
    for module in net.modules():
        patch = getattr(module, "patch_size", None)
        if isinstance(patch, int):
            return patch
        if isinstance(patch, (tuple, list)) and patch and all(isinstance(p, int) for p in patch):
            return int(patch[-1])
    return 32


def _example(config: SavedConfig, batch: int, h: int, w: int) -> torch.Tensor:
    spec = config.input
    c = len(spec.channels)
    shape = (batch, c, spec.num_frames, h, w) if spec.num_frames > 1 else (batch, c, h, w)
    g = torch.Generator().manual_seed(h * 1000 + w + batch)
    return torch.randn(shape, generator=g)


def _min_blocks(multiple: int) -> int:
    return max(1, -(-_MIN_SIDE // multiple))


def _check_sizes(size: int, multiple: int) -> list[tuple[int, int, int]]:
    """Two (batch, H, W) shapes unlike the export shape: non-square, and larger square."""
    small = max(_min_blocks(multiple) * multiple, (size // 2 // multiple) * multiple)
    large = size + 2 * multiple
    return [(1, small, small + multiple), (3, large, large)]


def _program(net: torch.nn.Module, x: torch.Tensor,
             multiple: int) -> tuple[torch.export.ExportedProgram, bool, list[str]]:
    """``torch.export`` of ``net`` with dynamic batch/H/W, else at the example shape."""
    low, top = _min_blocks(multiple), _MAX_SIDE // multiple
    dims = {0: torch.export.Dim("batch", min=1, max=1024),
            x.ndim - 2: multiple * torch.export.Dim("h_blocks", min=low, max=top),
            x.ndim - 1: multiple * torch.export.Dim("w_blocks", min=low, max=top)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            return torch.export.export(net, (x,), dynamic_shapes={"x": dims}), True, []
        except Exception as err:  # noqa: BLE001 - any constraint failure: export statically
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else repr(err)
            log.warning("Dynamic shapes do not export for this model (%s); exporting at %s.",
                        reason, tuple(x.shape))
            note = f"static input shape {tuple(x.shape)}: dynamic export failed ({reason})"
            return torch.export.export(net, (x,)), False, [note]


def _parity(result: ExportResult, net: torch.nn.Module, run: Callable[[torch.Tensor], Any],
            config: SavedConfig, shapes: Sequence[tuple[int, int, int]], atol: float) -> None:
    for b, h, w in shapes:
        xi = _example(config, b, h, w)
        with torch.no_grad():
            ref = net(xi)
            try:
                diff = float((ref - run(xi)).abs().max())
            except Exception as err:  # noqa: BLE001 - report a failing shape, do not crash
                diff = math.inf
                first = str(err).strip().splitlines()[0][:200] if str(err).strip() else repr(err)
                result.notes.append(f"shape {tuple(xi.shape)} fails: {first}")
        result.max_abs_diff[str(tuple(xi.shape))] = diff
    result.atol = atol
    result.passed = all(d <= atol for d in result.max_abs_diff.values())


def is_rsfm_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file written by ``rsfm export`` (it carries the rsfm config:
    an extra file of a ``.pt2`` / TorchScript archive, ONNX metadata)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if zipfile.is_zipfile(path):  # torch.export and TorchScript archives
            with zipfile.ZipFile(path) as archive:
                return any(n.rsplit("/", 1)[-1] == f"{CONFIG_KEY}.json"
                           for n in archive.namelist())
        if path.suffix.lower() == ".onnx":
            import onnx

            proto = onnx.load(str(path), load_external_data=False)
            return any(p.key == CONFIG_KEY for p in proto.metadata_props)
    except Exception:  # noqa: BLE001 - any unreadable file is not an rsfm export
        return False
    return False


def _local(model: Any) -> Path | None:
    return Path(model) if isinstance(model, (str, os.PathLike)) and os.path.exists(model) else None


def check_export_output(model: Any, path: str | Path, format: str | None = None) -> Path:
    """Fail, before the model is loaded, when ``path`` cannot take the export.

    Args:
        model: The model source (a run directory or saved model folder is protected).
        path: The output file.
        format: The export format (for the suggested file name).

    Raises:
        ConfigError: ``path`` is a folder; its folder cannot be created or written; or it is an
            existing file that is not an earlier rsfm export (a file of the model folder, a
            recipe, a scene...): export replaces only its own files.
    """
    path = Path(path)
    suffix = FORMATS.get(format or "onnx", ".onnx")
    if path.is_dir():
        raise ConfigError(f"Export output '{path}' is a folder; give a file name such as "
                          f"'{path / ('model' + suffix)}'.")
    check_writable_dir(path.parent, "Export output folder")
    source = _local(model)
    model_dir = source if source is not None and source.is_dir() else None
    inputs = [source] if source is not None and source.is_file() else []
    suggestion = (model_dir / f"model{suffix}" if model_dir is not None
                  and os.path.realpath(path).startswith(os.path.realpath(model_dir) + os.sep)
                  else path.with_suffix(suffix))
    hint = (f"choose another -o such as '{suggestion}'" if suggestion != path
            else "choose another -o")
    check_output_path(path, inputs=inputs, model_dir=model_dir, what="Export output",
                      replaceable=is_rsfm_export, hint=hint)
    if os.path.lexists(path) and not is_rsfm_export(path):
        raise ConfigError(f"Export output '{path}' exists and is not a model exported by rsfm; "
                          f"export only replaces its own earlier files: {hint}, or delete the "
                          "file first.")
    return path


def _check_options(path: Path, fmt: str, size: int | None, multiple: int | None,
                   atol: float) -> None:
    """Fail, before the model is loaded, on a suffix of another format and on sizes or a
    tolerance that cannot be."""
    suffix = path.suffix.lower()
    other = [f for f, suffixes in FORMAT_SUFFIXES.items() if f != fmt and suffix in suffixes]
    if other:
        raise ConfigError(
            f"Export output '{path}' is named as a {other[0]} file but the format is {fmt}: rsfm "
            f"predict reads an exported model's format from its suffix. Name it "
            f"'{path.with_suffix(FORMATS[fmt])}', or drop the format (--format) to export "
            f"{other[0]}.")
    if size is not None and size < 1:
        raise ConfigError(f"Export size {size} (--size) must be a positive number of pixels: a "
                          f"multiple of the patch size, at least {_MIN_SIDE} (default: the "
                          "model's tile size).", key="size")
    if multiple is not None and multiple < 1:
        raise ConfigError(f"Export multiple {multiple} (--multiple) must be >= 1: height and "
                          "width are exported as multiples of it (default: the patch size).",
                          key="multiple")
    if not (isinstance(atol, (int, float)) and math.isfinite(atol) and atol >= 0):
        raise ConfigError(f"Parity tolerance atol (--atol) must be a number >= 0, got {atol!r}: "
                          "it is the largest difference allowed between PyTorch's and the "
                          "exported file's logits (e.g. 1e-4).", key="atol")


def _file_bytes(net: torch.nn.Module) -> int:
    """About the size of an exported file: the weights and buffers (each storage once), plus
    1 MB for the graph."""
    seen: set[int] = set()
    total = 0
    for t in net.state_dict(keep_vars=False).values():
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total + (1 << 20)


def _setup(model: Any, path: str | Path, size: int | None, multiple: int | None, fmt: str,
           atol: float) -> tuple[torch.nn.Module, SavedConfig, Path, int, int, torch.Tensor]:
    _check_options(Path(path), fmt, size, multiple, atol)
    path = check_export_output(model, path, fmt)  # before the model is loaded
    net, config = _prepare(model)
    # a short write makes torch.export.save abort the process: check the space first
    check_free_space(path, _file_bytes(net), what="Export output")
    multiple = int(multiple if multiple is not None else _patch_multiple(net))
    size = int(size if size is not None else config.input.tile_size or 224)
    if size % multiple or size < _MIN_SIDE:
        low = _min_blocks(multiple) * multiple
        near = sorted({max(low, size // multiple * multiple),
                       max(low, (size // multiple + 1) * multiple)})
        raise ConfigError(f"Export size {size} must be a multiple of {multiple} (the patch "
                          f"size) and at least {low}; use {' or '.join(map(str, near))}.")
    # batch 2: torch.export specialises dimensions of size 0 and 1
    return net, config, path, size, multiple, _example(config, 2, size, size)


def _shapes(size: int, multiple: int, dynamic: bool,
            check_sizes: Sequence[tuple[int, int, int]] | None) -> list[tuple[int, int, int]]:
    if not dynamic:
        return [(2, size, size)]
    return [(2, size, size), *(check_sizes or _check_sizes(size, multiple))]


def export_pt2(
    model: Any, path: str | Path, *, size: int | None = None, multiple: int | None = None,
    atol: float = 1e-4, check_sizes: Sequence[tuple[int, int, int]] | None = None,
) -> ExportResult:
    """Export to a ``torch.export`` archive (``.pt2``) and check parity with PyTorch.

    Load it with ``rsfm.inference.load_model(path)`` or ``torch.export.load(path).module()``.

    Args:
        model: An ``RsfmModel``, run directory or Hub id (LoRA is merged first).
        path: ``.pt2`` output.
        size: Example tile size (default: the model's tile size, else 224).
        multiple: Height and width are exported as ``multiple * k`` (default: the patch size).
        atol: Parity tolerance on the logits.
        check_sizes: ``(batch, H, W)`` shapes of the parity check besides the export shape.

    Raises:
        ConfigError: An output that cannot take the export (:func:`check_export_output`, a
            suffix of another format), a size, multiple or tolerance below its range (all before
            the model is loaded), not a segmentation model, a size that is not a multiple, or
            too little free space (or file size limit) for the file.
    """
    net, config, path, size, multiple, x = _setup(model, path, size, multiple, "pt2", atol)
    program, dynamic, notes = _program(net, x, multiple)
    extra = {f"{CONFIG_KEY}.json": config_json(config)}
    atomic_write_named(path, lambda tmp: torch.export.save(program, str(tmp), extra_files=extra))
    result = ExportResult(path, "pt2", dynamic=dynamic, notes=notes)
    loaded = ExportedModel(path)
    _parity(result, net, loaded, config, _shapes(size, multiple, dynamic, check_sizes), atol)
    return result


def _onnx_metadata(config: SavedConfig, notes: Sequence[str]) -> dict[str, str]:
    spec = config.input
    return {
        CONFIG_KEY: config_json(config), "rsfm_version": __version__, "task": config.model.task,
        "bands": json.dumps(spec.channel_names), "classes": json.dumps(spec.class_names),
        "ignore_index": str(spec.ignore_index), "tile_size": str(spec.tile_size),
        "limits": json.dumps(list(notes)),
    }


def export_onnx(
    model: Any, path: str | Path, *, size: int | None = None, multiple: int | None = None,
    opset: int = 18, atol: float = 1e-3, check_sizes: Sequence[tuple[int, int, int]] | None = None,
) -> ExportResult:
    """Export to ONNX (from the ``torch.export`` program) and check parity with onnxruntime.

    Args:
        model: An ``RsfmModel``, run directory or Hub id (LoRA is merged first).
        path: ``.onnx`` output.
        size: Example tile size (default: the model's tile size, else 224).
        multiple: Height and width are exported as ``multiple * k`` (default: the patch size).
        opset: ONNX opset.
        atol: Parity tolerance on the logits.
        check_sizes: ``(batch, H, W)`` shapes of the parity check besides the export shape.

    Raises:
        ConfigError: An output that cannot take the export (:func:`check_export_output`, a
            suffix of another format), a size, multiple or tolerance below its range (all before
            the model is loaded), not a segmentation model, a size that is not a multiple, or
            too little free space (or file size limit) for the file.
    """
    import onnx

    net, config, path, size, multiple, x = _setup(model, path, size, multiple, "onnx", atol)
    program, dynamic, notes = _program(net, x, multiple)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, (x,), dynamo=True, input_names=["image"],
                                         output_names=["logits"], opset_version=opset,
                                         verbose=False)
    static: list[int] = []

    def write(tmp: Path) -> None:  # in a temporary folder: external data lands next to it
        onnx_program.save(str(tmp))
        proto = onnx.load(str(tmp))
        dims = [d.dim_param or d.dim_value
                for d in proto.graph.input[0].type.tensor_type.shape.dim]
        static.extend(i for i in (0, x.ndim - 2, x.ndim - 1) if isinstance(dims[i], int))
        if dynamic and static:
            notes.append(f"input shape exported as {dims}: dimensions {static} are static")
        onnx.helper.set_model_props(proto, _onnx_metadata(config, notes))
        onnx.save(proto, str(tmp))

    atomic_write_named(path, write)
    result = ExportResult(path, "onnx", dynamic=dynamic and not static, notes=notes)
    runtime = OnnxModel(path, providers=["CPUExecutionProvider"])
    _parity(result, net, runtime, config, _shapes(size, multiple, result.dynamic, check_sizes),
            atol)
    return result


def export_torchscript(
    model: Any, path: str | Path, *, size: int | None = None, multiple: int | None = None,
    atol: float = 1e-4, check_sizes: Sequence[tuple[int, int, int]] | None = None,
) -> ExportResult:
    """Export to TorchScript (legacy: deprecated in PyTorch; prefer :func:`export_pt2`).

    Scripted when possible, else traced; a *traced* ViT records its token-grid arithmetic for
    the example size, and the parity check at other sizes shows whether the file still works
    there (reported in ``notes``). PyTorch's deprecation warnings are silenced here, because
    the format was asked for explicitly.
    """
    log.warning("TorchScript is deprecated in PyTorch; .pt2 (torch.export) and .onnx are the "
                "supported export formats.")
    net, config, path, size, multiple, x = _setup(model, path, size, multiple, "torchscript",
                                                  atol)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATION, category=FutureWarning)
        try:
            scripted = torch.jit.script(net)
            how = "scripted"
        except Exception as err:  # noqa: BLE001 - scripting fails in many ways; trace instead
            log.info("torch.jit.script failed (%s); tracing at %dx%d",
                     str(err).splitlines()[0] if str(err) else err, size, size)
            with torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings: the parity check reports
                scripted = torch.jit.trace(net, x, check_trace=False)
            how = "traced"
        notes.append(f"{how} at example shape {tuple(x.shape)}")
        extra = {f"{CONFIG_KEY}.json": config_json(config)}
        atomic_write_named(path, lambda tmp: torch.jit.save(scripted, str(tmp),
                                                            _extra_files=extra))
        loaded = torch.jit.load(str(path))
    result = ExportResult(path, "torchscript", notes=notes)
    _parity(result, net, loaded, config, _shapes(size, multiple, True, check_sizes), atol)
    result.dynamic = result.passed
    if not result.passed and how == "traced":
        result.notes.append("the traced file only works at the example size: use .pt2 or ONNX "
                            "for dynamic sizes")
    return result


def format_of(path: str | Path, format: str | None = None) -> str:
    """The export format: ``format``, else from the suffix (``.pt2``, ``.onnx``, ``.pt``).

    Raises:
        ConfigError: An unknown format or suffix.
    """
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(f"export format {format!r} is not one of {sorted(FORMATS)}.")
        return format
    suffix = Path(path).suffix.lower()
    found = [f for f, s in FORMATS.items() if s == suffix]
    if not found:
        suffixes = ", ".join(FORMATS.values())
        raise ConfigError(f"Cannot tell the export format of '{path}': use a {suffixes} file "
                          "name or give format=.")
    return found[0]


def export_model(model: Any, path: str | Path, format: str | None = None,
                 **kwargs: Any) -> ExportResult:
    """Export with :func:`export_pt2`, :func:`export_onnx` or :func:`export_torchscript`.

    Args:
        model: An ``RsfmModel``, run directory or Hub id.
        path: The output file.
        format: ``pt2``, ``onnx`` or ``torchscript`` (default: from the suffix of ``path``).
        **kwargs: Options of the format's exporter (``size``, ``multiple``, ``atol``...).
    """
    fmt = format_of(path, format)
    exporter = {"pt2": export_pt2, "onnx": export_onnx, "torchscript": export_torchscript}[fmt]
    return exporter(model, path, **kwargs)
