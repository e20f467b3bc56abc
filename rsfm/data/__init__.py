"""The geospatial data layer: chip folders, large scenes, labels, bands, normalisation, splits,
augmentation and ``show_batch``.

Names load lazily so ``import rsfm.data`` stays cheap (no torch/rasterio until used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ChipDataset": "rsfm.data.chips",
    "SceneDataset": "rsfm.data.scenes",
    "GeoDataset": "rsfm.data.base",
    "Normalizer": "rsfm.data.normalize",
    "ImageReader": "rsfm.data.reader",
    "inspect_raster": "rsfm.data.rasters",
    "select_bands": "rsfm.data.rasters",
    "check_same_grid": "rsfm.data.rasters",
    "read_vector": "rsfm.data.labels",
    "read_coco": "rsfm.data.labels",
    "read_voc": "rsfm.data.labels",
    "read_yolo": "rsfm.data.labels",
    "INDICES": "rsfm.data.indices",
    "block_split": "rsfm.data.splits",
    "random_split": "rsfm.data.splits",
    "file_split": "rsfm.data.splits",
    "split_dataset": "rsfm.data.splits",
    "class_balance": "rsfm.data.splits",
    "build_transforms": "rsfm.data.transforms",
    "collate_fn": "rsfm.data.collate",
    "compute_stats": "rsfm.data.stats",
    "show_batch": "rsfm.data.show",
}

__all__ = [
    "INDICES",
    "ChipDataset",
    "GeoDataset",
    "ImageReader",
    "Normalizer",
    "SceneDataset",
    "block_split",
    "build_transforms",
    "check_same_grid",
    "class_balance",
    "collate_fn",
    "compute_stats",
    "file_split",
    "inspect_raster",
    "random_split",
    "read_coco",
    "read_vector",
    "read_voc",
    "read_yolo",
    "select_bands",
    "show_batch",
    "split_dataset",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsfm.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
