"""Inference and delivery: streaming scene prediction, clean-up, vectors, export, result plots.

Names load lazily so ``import rsfm.inference`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "predict": "rsfm.inference.predict",
    "predict_scene": "rsfm.inference.predict",
    "predict_array": "rsfm.inference.predict",
    "ScenePredictor": "rsfm.inference.predict",
    "ArrayPrediction": "rsfm.inference.predict",
    "PredictOptions": "rsfm.inference.predict",
    "PredictionResult": "rsfm.inference.predict",
    "PrecisionReport": "rsfm.inference.precision",
    "load_model": "rsfm.inference.loading",
    "OnnxModel": "rsfm.inference.loading",
    "ExportedModel": "rsfm.inference.loading",
    "clean_raster": "rsfm.inference.postprocess",
    "remove_small_objects": "rsfm.inference.postprocess",
    "fill_holes": "rsfm.inference.postprocess",
    "vectorize_raster": "rsfm.inference.vectorize",
    "merge_tile_boxes": "rsfm.inference.vectorize",
    "read_category_names": "rsfm.inference.gis",
    "export_model": "rsfm.inference.export",
    "export_onnx": "rsfm.inference.export",
    "export_pt2": "rsfm.inference.export",
    "export_torchscript": "rsfm.inference.export",
    "show_results": "rsfm.inference.show",
    "preview_scene": "rsfm.inference.show",
}

__all__ = [
    "ArrayPrediction",
    "ExportedModel",
    "OnnxModel",
    "PrecisionReport",
    "PredictOptions",
    "PredictionResult",
    "ScenePredictor",
    "clean_raster",
    "export_model",
    "export_onnx",
    "export_pt2",
    "export_torchscript",
    "fill_holes",
    "load_model",
    "merge_tile_boxes",
    "predict",
    "predict_array",
    "predict_scene",
    "preview_scene",
    "read_category_names",
    "remove_small_objects",
    "show_results",
    "vectorize_raster",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsfm.inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
