"""Load a model for prediction from a run directory, a Hub repo id or an exported file.

Every loader returns the callable *and* its :class:`~rsfm.inference.spec.PredictionSpec`, so the
bands, normalisation and classes always come with the weights.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsfm.errors import ConfigError, WeightsError
from rsfm.inference.spec import PredictionSpec

__all__ = ["SPEC_KEY", "OnnxModel", "load_model", "spec_from_run"]

log = logging.getLogger(__name__)

SPEC_KEY = "rsfm_spec"  # metadata key (ONNX metadata_props / TorchScript extra file) of the spec
_ONNX = (".onnx",)
_SCRIPT = (".pt", ".pth", ".ts", ".torchscript", ".jit")


class OnnxModel:
    """An exported ONNX model as a torch-in / torch-out callable (onnxruntime on CPU or CUDA).

    Args:
        path: The ``.onnx`` file written by :func:`rsfm.inference.export.export_onnx`.
        providers: onnxruntime execution providers (default: CUDA when available, then CPU).
    """

    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        avail = ort.get_available_providers()
        providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in avail]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise WeightsError(f"onnxruntime cannot load '{self.path}': {err}") from None
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, str] = dict(meta)

    @property
    def spec(self) -> PredictionSpec | None:
        """The :class:`PredictionSpec` stored at export (``None`` for foreign files)."""
        text = self.metadata.get(SPEC_KEY)
        return PredictionSpec.from_json(text) if text else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(np.asarray(out))

    def eval(self) -> OnnxModel:  # lets code treat it like an nn.Module
        return self


def spec_from_run(path: str | Path) -> PredictionSpec:
    """The spec of a run directory / downloaded Hub repo (its ``config.json``).

    Raises:
        ConfigError: No ``config.json`` in the directory.
    """
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        raise ConfigError(f"'{path}' has no config.json (not an rsfm run directory or Hub repo).")
    return PredictionSpec.from_config(json.loads(cfg.read_text()))


def _spec_from_model(model: Any) -> PredictionSpec | None:
    for attr in ("prediction_spec",):
        found = getattr(model, attr, None)
        if isinstance(found, PredictionSpec):
            return found
    for attr in ("rsfm_metadata", "hub_config"):  # the whole config.json (rsfm.hub sets it)
        found = getattr(model, attr, None)
        if isinstance(found, dict) and "model" in found:
            return PredictionSpec.from_config(found)
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        return PredictionSpec.from_config({"model": cfg.to_dict(), "data": {}})
    return None


def load_model(source: Any) -> tuple[Any, PredictionSpec]:
    """Return ``(callable, spec)`` for a model source.

    Args:
        source: An ``RsfmModel`` / ``nn.Module`` with a ``config``; an exported ``.onnx`` file;
            a TorchScript file (``.pt``/``.ts``) written by ``rsfm export``; a run directory or a
            Hub repo id (loaded with ``rsfm.hub.from_pretrained``).

    Raises:
        ConfigError: The source's bands/normalisation cannot be found.
        WeightsError: The file cannot be loaded.
    """
    if isinstance(source, torch.nn.Module) or (callable(source) and not isinstance(source, (str, Path))):
        spec = _spec_from_model(source)
        if spec is None:
            raise ConfigError("This model carries no config: pass spec=PredictionSpec(...) to predict.")
        return source, spec
    path = Path(str(source))
    if path.is_file() and path.suffix.lower() in _ONNX:
        model = OnnxModel(path)
        if model.spec is None:
            raise ConfigError(f"'{path}' has no '{SPEC_KEY}' metadata (not exported by rsfm); pass spec=...")
        return model, model.spec
    if path.is_file() and path.suffix.lower() in _SCRIPT:
        extra = {f"{SPEC_KEY}.json": ""}
        try:
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except RuntimeError as err:
            raise WeightsError(f"'{path}' is not a TorchScript file rsfm can load: {err}") from None
        if not extra[f"{SPEC_KEY}.json"]:
            raise ConfigError(f"'{path}' has no {SPEC_KEY}.json extra file (not exported by rsfm).")
        return module.eval(), PredictionSpec.from_json(extra[f"{SPEC_KEY}.json"])
    if path.is_file():
        raise ConfigError(
            f"Cannot load '{path}': expected a run directory, a Hub repo id, an .onnx file or a "
            f"TorchScript file ({', '.join(_SCRIPT)})."
        )
    try:
        from rsfm.hub import from_pretrained
    except ImportError:
        raise ConfigError(
            f"Cannot load '{source}': rsfm.hub is not available in this installation, so run "
            "directories and Hub ids cannot be opened; export the model to ONNX/TorchScript."
        ) from None
    model = from_pretrained(str(source))
    spec = spec_from_run(path) if (path / "config.json").is_file() else _spec_from_model(model)
    if spec is None:
        raise ConfigError(f"'{source}' loaded, but its bands/normalisation are unknown; pass spec=...")
    return model.eval(), spec
