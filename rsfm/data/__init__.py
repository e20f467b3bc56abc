"""The geospatial data layer: chip folders, large scenes, class folders, labels, bands,
normalisation, splits, augmentation and ``show_batch``.

Every dataset reads what an :class:`~rsfm.spec.InputSpec` says (bands, normalisation, nodata,
classes, ignore index) and turns labels into class ids by one set of
:class:`~rsfm.data.labels.LabelRules`.

Names load lazily so ``import rsfm.data`` stays cheap (no torch/rasterio until used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ChipDataset": "rsfm.data.chips",
    "SceneDataset": "rsfm.data.scenes",
    "ClassFolderDataset": "rsfm.data.class_folders",
    "GeoDataset": "rsfm.data.base",
    "EpochSampler": "rsfm.data.samplers",
    "LabelRules": "rsfm.data.labels",
    "apply_label_rules": "rsfm.data.labels",
    "bands_of_file": "rsfm.data.rasters",
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
    "ClassFolderDataset",
    "EpochSampler",
    "GeoDataset",
    "ImageReader",
    "LabelRules",
    "Normalizer",
    "SceneDataset",
    "apply_label_rules",
    "bands_of_file",
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
