"""Load a model for prediction: an ``RsfmModel``, a run directory or Hub repo, an exported file.

Every loader returns the callable *and* its :class:`~rsfm.saved.SavedConfig`, so the input facts
(bands, normalisation, nodata, classes, ignore index, tile size: the model's
:class:`~rsfm.spec.InputSpec`) and the task always come with the weights. Exported files carry
the SavedConfig JSON as metadata (ONNX ``metadata_props``, ``.pt2`` / TorchScript extra files);
files exported by rsfm 0.1 (which carried a ``PredictionSpec``) are read too.
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from rsfm.bands import declared_band
from rsfm.colors import class_colors
from rsfm.config import ModelConfig
from rsfm.errors import ConfigError, DataError, WeightsError
from rsfm.hub import from_pretrained
from rsfm.hub import saved_config_of as hub_saved_config_of
from rsfm.saved import CardRef, SavedConfig
from rsfm.spec import ClassInfo, InputSpec, Normalization
from rsfm.validation import dump, validate

__all__ = [
    "CONFIG_KEY",
    "EXPORT_SUFFIXES",
    "FORMAT_SUFFIXES",
    "TORCHSCRIPT_DEPRECATION",
    "ExportedModel",
    "OnnxModel",
    "config_json",
    "load_model",
    "saved_config_of",
    "training_precision",
]

log = logging.getLogger(__name__)

CONFIG_KEY = "rsfm_config"  # SavedConfig JSON: ONNX metadata key; "<key>.json" extra file
_LEGACY_KEY = "rsfm_spec"  # rsfm 0.1: a PredictionSpec JSON under this key
_ONNX = (".onnx",)
_PT2 = (".pt2",)
_SCRIPT = (".pt", ".pth", ".ts", ".torchscript", ".jit")
EXPORT_SUFFIXES: tuple[str, ...] = _ONNX + _PT2 + _SCRIPT
# export format -> the suffixes load_model reads as that format
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {"pt2": _PT2, "onnx": _ONNX, "torchscript": _SCRIPT}
# PyTorch's FutureWarning on every torch.jit call: silenced where TorchScript is asked for
TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


def config_json(config: SavedConfig) -> str:
    """The SavedConfig as the one-line JSON stored in exported files."""
    return json.dumps(dump(config), separators=(",", ":"))


def saved_config_of(model: Any) -> SavedConfig | None:
    """The :class:`SavedConfig` a model carries (``rsfm.hub.saved_config_of``), or None."""
    try:
        if getattr(model, "input_spec", None) is None:  # exported files carry only the record
            found = getattr(model, "saved_config", None)
            return found if isinstance(found, SavedConfig) else None
        return hub_saved_config_of(model)
    except ConfigError:
        return None


def _parse(text: str, where: str) -> SavedConfig:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"{where}: the rsfm config metadata is not JSON ({err}).") from None
    return validate(SavedConfig, data, where)


def _legacy(text: str, where: str) -> SavedConfig:
    """The SavedConfig of a file exported by rsfm 0.1 (its ``PredictionSpec`` JSON)."""
    old: dict[str, Any] = json.loads(text)
    names = old.get("classes")
    if not names:
        raise ConfigError(f"{where} was exported by rsfm 0.1 without class names, which this "
                          "rsfm needs; export the model again with `rsfm export`.")
    sensor = old.get("sensor")
    waves = old.get("wavelengths") or [None] * len(old.get("bands") or [])
    bands = []
    for item, wave in zip(old.get("bands") or [], waves):
        bands.append(declared_band(f"band{item}" if isinstance(item, int) else str(item), wave,
                                   sensor=sensor))
    if not bands:
        raise ConfigError(f"{where} was exported by rsfm 0.1 without band names; export the "
                          "model again with `rsfm export`.")
    mode = old.get("normalize") or ("stats" if old.get("mean") is not None else "none")
    mode = {"standardize": "per_tile"}.get(mode, mode)
    stats = mode == "stats"
    norm = Normalization(mode, tuple(old["mean"]) if stats else None,
                         tuple(old["std"]) if stats else None,
                         float(old.get("value_scale") or 1.0))
    colors = old.get("colors") or class_colors(len(names))
    spec = InputSpec(
        bands=tuple(bands), normalization=norm,
        classes=tuple(ClassInfo(str(n), tuple(int(v) for v in c))
                      for n, c in zip(names, colors)),
        nodata=old.get("nodata"), tile_size=old.get("tile_size"),
        num_frames=int(old.get("num_frames") or 1), indices=tuple(old.get("indices") or ()),
        file_bands=tuple(old["file_bands"]) if old.get("file_bands") else None, sensor=sensor,
    )
    task = old.get("task") or "segmentation"
    model = ModelConfig(task=task, backbone="unknown",
                        head="fcn" if task == "segmentation" else "faster_rcnn",
                        num_classes=len(names), num_frames=spec.num_frames)
    log.info("%s was exported by rsfm 0.1: read its prediction spec.", where)
    return SavedConfig(rsfm_version="0.1.0", model=model, input=spec,
                       card=CardRef(name="unknown"))


def _from_metadata(meta: Mapping[str, str], where: str) -> SavedConfig:
    if meta.get(CONFIG_KEY):
        return _parse(meta[CONFIG_KEY], where)
    if meta.get(_LEGACY_KEY):
        return _legacy(meta[_LEGACY_KEY], where)
    raise ConfigError(f"{where} carries no rsfm config (not exported by `rsfm export`), so its "
                      "bands, normalisation and classes are unknown. Export the model with "
                      "`rsfm export`, or predict with the model itself and spec=InputSpec(...).")


class OnnxModel:
    """An exported ONNX model as a torch-in / torch-out callable (onnxruntime on CPU or CUDA).

    Args:
        path: The ``.onnx`` file written by :func:`rsfm.inference.export.export_onnx`.
        providers: onnxruntime execution providers (default: CUDA when available, then CPU).

    Raises:
        WeightsError: onnxruntime cannot load the file.
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        avail = ort.get_available_providers()
        providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                                  if p in avail]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise WeightsError(f"onnxruntime cannot load '{self.path}': {err}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def saved_config(self) -> SavedConfig:
        """The :class:`SavedConfig` stored at export.

        Raises:
            ConfigError: The file carries none.
        """
        return _from_metadata(self.metadata, f"'{self.path}'")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(np.asarray(out))

    def eval(self) -> OnnxModel:  # lets code treat it like an nn.Module
        return self


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else repr(err)


class _Captured(logging.Filter):
    """Keeps what ``torch.export.load`` logs (a whole traceback, as a warning) off the
    terminal, as a filter of its logger (torch gives that logger its own handler); its error
    becomes the reason in rsfm's one-line message."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def reason(self) -> str | None:
        for record in reversed(self.records):
            if record.exc_info and record.exc_info[1] is not None:
                return _first_line(record.exc_info[1])
        return None


class ExportedModel(torch.nn.Module):
    """A ``torch.export`` program (``.pt2`` written by ``rsfm export``) as a module.

    Raises:
        WeightsError: The file is not a ``torch.export`` archive.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        extra = {f"{CONFIG_KEY}.json": ""}
        if not zipfile.is_zipfile(self.path):  # torch's own error comes with a logged traceback
            raise WeightsError(f"'{self.path}' is not a torch.export (.pt2) file rsfm can load: "
                               "it is not a ZIP archive (a .pt2 file is one). Give a file "
                               "written by `rsfm export`.")
        logged = _Captured()
        torch_log = logging.getLogger("torch.export")
        torch_log.addFilter(logged)
        try:
            program = torch.export.load(str(self.path), extra_files=extra)
        except Exception as err:  # noqa: BLE001 - torch raises many types for foreign files
            raise WeightsError(f"'{self.path}' is not a torch.export (.pt2) file rsfm can load: "
                               f"{logged.reason() or _first_line(err)}") from None
        finally:
            torch_log.removeFilter(logged)
        self.program = program
        self.graph_module = program.module()
        self.metadata = {CONFIG_KEY: extra[f"{CONFIG_KEY}.json"]}

    @property
    def saved_config(self) -> SavedConfig:
        """The :class:`SavedConfig` stored at export."""
        return _from_metadata(self.metadata, f"'{self.path}'")

    def train(self, mode: bool = True) -> ExportedModel:
        """An exported program has no training mode: only the flag changes."""
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> Any:
        try:
            return self.graph_module(x)
        except (RuntimeError, AssertionError) as err:  # the program's shape guards
            raise DataError(
                f"'{self.path}' does not take input of shape {tuple(x.shape)}: "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else err!r}. Files "
                "exported by rsfm take tiles that are multiples of the patch size and at least "
                "64 px (--tile-size)."
            ) from None


def _load_torchscript(path: Path) -> tuple[Callable[..., Any], SavedConfig]:
    extra = {f"{CONFIG_KEY}.json": "", f"{_LEGACY_KEY}.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATION,
                                    category=FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as err:
        raise WeightsError(f"'{path}' is not a TorchScript file rsfm can load: "
                           f"{str(err).splitlines()[0]}") from None
    meta = {CONFIG_KEY: extra[f"{CONFIG_KEY}.json"], _LEGACY_KEY: extra[f"{_LEGACY_KEY}.json"]}
    return module.eval(), _from_metadata(meta, f"'{path}'")


def _is_model(source: Any) -> bool:
    return isinstance(source, torch.nn.Module) or (
        callable(source) and not isinstance(source, (str, Path)))


def load_model(source: Any) -> tuple[Callable[..., Any], SavedConfig]:
    """Return ``(callable, saved_config)`` for a model source.

    Args:
        source: An ``RsfmModel`` (from ``create_model`` or ``from_pretrained``); an exported
            ``.onnx`` or ``.pt2`` file or a legacy TorchScript ``.pt`` written by ``rsfm export``;
            a run directory, a saved model folder or a Hub repo id.

    Raises:
        ConfigError: The source carries no rsfm config (a plain callable: predict it with
            ``spec=InputSpec(...)``), or an unknown file type.
        WeightsError: The file cannot be loaded.
    """
    if _is_model(source):
        config = saved_config_of(source)
        if config is None:
            raise ConfigError(
                f"This {type(source).__name__} carries no rsfm config (model.input_spec): pass "
                "spec=InputSpec(...) and task=... to predict, or build the model with "
                "rsfm.create_model / rsfm.from_pretrained."
            )
        return source, config
    path = Path(str(source))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in _ONNX:
            onnx_model = OnnxModel(path)
            return onnx_model, onnx_model.saved_config
        if suffix in _PT2:
            exported = ExportedModel(path).eval()
            return exported, exported.saved_config
        if suffix in _SCRIPT:
            return _load_torchscript(path)
        hint = {".yaml": " This is a recipe: give the run folder it trained (its output.dir, "
                         "e.g. runs/<name>).",
                ".yml": " This is a recipe: give the run folder it trained (its output.dir).",
                ".safetensors": " Give the folder holding these weights with their config.json."
                }.get(suffix, "")
        raise ConfigError(
            f"Cannot load '{path}': expected a run directory, a saved model folder, a Hub repo "
            f"id, or a file exported by `rsfm export` ({', '.join(EXPORT_SUFFIXES)}).{hint}"
        )
    model = from_pretrained(str(source))
    config = saved_config_of(model)
    if config is None:  # pragma: no cover - from_pretrained always sets it
        raise ConfigError(f"'{source}' loaded, but it carries no rsfm config.")
    return model.eval(), config


def training_precision(source: Any) -> str | None:
    """The ``train.mixed_precision`` of a run directory's ``recipe.yaml`` (None if unknown)."""
    if _is_model(source):
        return None
    recipe = Path(str(source)) / "recipe.yaml"
    if not recipe.is_file():
        return None
    try:
        data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    train = data.get("train") if isinstance(data, dict) else None
    value = train.get("mixed_precision") if isinstance(train, dict) else None
    return str(value) if value is not None else None
