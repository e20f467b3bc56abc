"""Datasets over ArcGIS "Export Training Data For Deep Learning" folders (:mod:`rsfm.data.arcgis`).

Classified Tiles and the box formats are a :class:`~rsfm.data.chips.ChipDataset` over the
export's pairs (same reader, nodata handling, label rules, transforms); only the label files
ArcGIS writes differently are read here: VOC/KITTI class tokens that are class values, and RCNN
instance masks, which become one box per instance. Labeled Tiles and Imagenet exports are a
:class:`~rsfm.data.class_folders.ClassFolderDataset` whose items come from the export.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from rsfm.data.arcgis import ArcGISChip, ArcGISExport, read_arcgis_export
from rsfm.data.chips import ChipDataset
from rsfm.data.class_folders import ClassFolderDataset
from rsfm.data.labels import LabelRules, clip_boxes, read_kitti, read_voc
from rsfm.data.rasters import RasterInfo, inspect_raster, read_window
from rsfm.data.reader import ImageReader
from rsfm.errors import ConfigError, DataError
from rsfm.spec import InputSpec

__all__ = ["ArcGISChipDataset", "ArcGISTileDataset", "arcgis_dataset", "boxes_from_instances"]

log = logging.getLogger(__name__)

_FORMAT = {"Classified_Tiles": "raster", "PASCAL_VOC_rectangles": "voc",
           "KITTI_rectangles": "kitti", "RCNN_Masks": "rcnn_masks"}


def boxes_from_instances(ids: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """One box per instance of an instance-id raster.

    Args:
        ids: ``(H, W)`` or ``(B, H, W)`` integers; 0 is background, each other value one
            instance (per band: the same id in two bands is two instances).
        nodata: The file's nodata value, also background.

    Returns:
        ``(N, 4)`` float32 pixel boxes ``xmin, ymin, xmax, ymax`` (pixel edges), in id order.
    """
    planes = ids[None] if ids.ndim == 2 else ids
    boxes = []
    for plane in planes:
        for value in np.unique(plane):
            if value == 0 or value == nodata:
                continue
            rows, cols = np.nonzero(plane == value)
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    return np.asarray(boxes, np.float32).reshape(-1, 4)


class ArcGISChipDataset(ChipDataset):
    """Classified Tiles (segmentation) or PASCAL VOC / KITTI / RCNN Masks (detection boxes).

    Samples are those of :class:`~rsfm.data.chips.ChipDataset`. Label chips are checked to have
    their image chip's size only (ArcGIS writes each label on its chip's grid; georeferencing
    and sidecar files vary between chip formats and Pro versions).

    Args:
        export: The export (:func:`~rsfm.data.arcgis.read_arcgis_export`).
        spec: What to read (bands, normalisation, classes: the export's, see
            :func:`~rsfm.data.arcgis.recipe_defaults`).
        chips: The chips to use (default: every labelled chip of the export).
        label_rules: Classified Tiles: the class value map (``recipe_defaults`` gives it).
        **kwargs: ``task``, ``split_file``, ``skip_nodata``, ``on_invalid_label``,
            ``transforms`` of :class:`~rsfm.data.chips.ChipDataset`.

    Raises:
        ConfigError: A format without pixel or box labels, or classes that do not fit.
        DataError: See :class:`~rsfm.data.chips.ChipDataset`.
    """

    def __init__(self, export: ArcGISExport, spec: InputSpec, *,
                 chips: Sequence[ArcGISChip] | None = None,
                 label_rules: LabelRules | None = None, **kwargs: Any) -> None:
        fmt = _FORMAT.get(export.metadata_format)
        if fmt is None:
            raise ConfigError(f"'{export.root}' is a {export.metadata_format} export, not "
                              "Classified Tiles or boxes; use ArcGISTileDataset / arcgis_dataset.")
        chips = list(export.chips if chips is None else chips)
        task = kwargs.pop("task", "segmentation" if fmt == "raster" else "detection")
        if spec.classes and fmt != "raster" and len(spec.classes) != len(export.classes):
            raise ConfigError(f"The spec has {len(spec.classes)} classes {spec.class_names} but "
                              f"the export '{export.root}' has {len(export.classes)} "
                              f"{[c.name for c in export.classes]}.")
        self.export = export
        self._arcgis_format = fmt
        self._class_ids = export.class_ids()
        self._value_ids = {c.value: i for i, c in enumerate(export.classes)}
        self._masks = {c.image: c.masks for c in chips}
        labels = [c.label if fmt != "rcnn_masks" else c.masks[0][1] for c in chips]
        super().__init__([c.image for c in chips], labels, spec, task=task,
                         label_format=fmt if fmt in ("raster", "voc") else None,
                         label_rules=label_rules, **kwargs)

    def _guess_format(self, label: Path) -> str:
        return self._arcgis_format

    def _check_label_raster(self, image: RasterInfo, label: RasterInfo) -> None:
        # ArcGIS writes each label chip on its image chip's grid: only the size is checked
        # (georeferencing differs between chip formats, sidecar files and Pro versions)
        if (image.width, image.height) != (label.width, label.height):
            raise DataError(f"Label chip '{label.path}' is {label.width}x{label.height} but its "
                            f"image chip '{image.path}' is {image.width}x{image.height} pixels.")
        if self.label_rules.color_map and label.count < 3:
            raise DataError(f"color_map is set but label '{label.path}' has {label.count} "
                            "band(s); colour masks need R, G, B.")

    def read_target(self, index: int) -> dict[str, np.ndarray]:
        fmt = self._arcgis_format
        if fmt == "raster":
            return super().read_target(index)
        images, label = self.items[index]
        info = self.reader.plan(images[0]).info
        if fmt == "voc":
            _, boxes, labels = read_voc(label, None, class_ids=self._class_ids)
        elif fmt == "kitti":
            boxes, labels = read_kitti(label, self._class_ids)
        else:  # rcnn_masks: one box per instance of each class folder's raster
            parts_b, parts_l = [], []
            for value, path in self._masks[images[0]]:
                mask = inspect_raster(path)
                if (mask.width, mask.height) != (info.width, info.height):
                    raise DataError(f"Instance mask '{path}' is {mask.width}x{mask.height} but "
                                    f"its chip '{images[0]}' is {info.width}x{info.height} pixels.")
                b = boxes_from_instances(read_window(path, None, range(1, mask.count + 1)),
                                         mask.nodata)
                parts_b.append(b)
                parts_l.append(np.full(len(b), self._value_ids[value], np.int64))
            boxes = np.concatenate(parts_b) if parts_b else np.zeros((0, 4), np.float32)
            labels = np.concatenate(parts_l) if parts_l else np.zeros(0, np.int64)
        # Pro clips boxes to the chip; slivers at the chip edge are dropped (< 1 px)
        boxes, labels = clip_boxes(boxes.astype(np.float32), labels.astype(np.int64), 0, 0,
                                   info.width, info.height, min_size=1.0)
        return {"boxes": boxes, "labels": labels}


class ArcGISTileDataset(ClassFolderDataset):
    """Labeled Tiles (class of each chip: the first ``<object><name>`` of its XML, value or
    name) or Imagenet (``images/<class>/``) exports, as a
    :class:`~rsfm.data.class_folders.ClassFolderDataset` (same samples and reader).

    Args:
        export: The export.
        spec: Bands, normalisation and classes (one per export class, ascending value).
        chips: The chips to use (default: every labelled chip).
        transforms: Callable on the sample dict.

    Raises:
        ConfigError: Not a classification export, or a class count that does not fit.
        DataError: An unreadable label file, or no chip with a class.
    """

    def __init__(self, export: ArcGISExport, spec: InputSpec, *,
                 chips: Sequence[ArcGISChip] | None = None,
                 transforms: Callable[[dict], dict] | None = None) -> None:
        if export.task != "classification":
            raise ConfigError(f"'{export.root}' is a {export.metadata_format} export, not "
                              "Labeled_Tiles or Imagenet.")
        if len(spec.classes) != len(export.classes):
            raise ConfigError(f"The spec has {len(spec.classes)} classes {spec.class_names} but "
                              f"the export '{export.root}' has {len(export.classes)} "
                              f"{[c.name for c in export.classes]}.")
        ids, value_ids = export.class_ids(), {c.value: i for i, c in enumerate(export.classes)}
        items, empty = [], []
        for chip in export.chips if chips is None else chips:
            if chip.class_value is not None:
                items.append((chip.image, value_ids[chip.class_value]))
                continue
            _, _, labels = read_voc(chip.label, None, class_ids=ids)  # type: ignore[arg-type]
            if len(labels):
                items.append((chip.image, int(labels[0])))  # the first object, as arcgis.learn
            else:
                empty.append(chip.label)
        if empty:
            log.warning("%d Labeled Tiles label file(s) name no class (e.g. '%s'); those chips "
                        "are left out.", len(empty), empty[0])
        if not items:
            raise DataError(f"No chip of '{export.root}' has a class.")
        # the attributes ClassFolderDataset.__init__ sets; only the item list differs
        self.items = items
        self.spec = spec
        self.reader = ImageReader(spec)
        self.transforms = transforms


def arcgis_dataset(
    folder: str | os.PathLike[str],
    spec: InputSpec,
    *,
    task: str,
    label_rules: LabelRules | None = None,
    split_file: str | os.PathLike[str] | None = None,
    skip_nodata: bool = True,
    missing_labels: str = "skip",
    on_invalid_label: str = "warn",
    transforms: Callable[[dict], dict] | None = None,
) -> Dataset:
    """The dataset of an export folder for ``task`` (what ``data.kind: arcgis`` builds).

    Args:
        folder: The export folder (or its ``images/``).
        spec: The run's input spec (its classes are the export's: see
            :func:`~rsfm.data.arcgis.recipe_defaults`).
        task: ``segmentation``, ``detection`` or ``classification``; must be the export's.
        label_rules: Classified Tiles: the value map (``data.label_map`` etc.).
        split_file: Keep only the chips named in this file (segmentation and detection).
        skip_nodata: Drop all-nodata chips.
        missing_labels: ``skip`` (default, as arcgis.learn) or ``error`` for chips without a
            label file.
        on_invalid_label: Label pixels outside the classes: ``warn``, ``error`` or ``ignore``.
        transforms: Callable on the sample dict.

    Raises:
        ConfigError: The export's task is not ``task``.
        DataError: Chips without labels with ``missing_labels="error"``; see the dataset classes.
    """
    export = read_arcgis_export(folder)
    if export.task != task:
        raise ConfigError(f"'{export.root}' is a {export.metadata_format} export "
                          f"({export.task or 'not trainable'}), not {task}; set model.task: "
                          f"{export.task}." if export.task else
                          f"'{export.root}' is a {export.metadata_format} export, which rsfm "
                          "cannot train on.")
    if export.unlabeled and missing_labels == "error":
        raise DataError(f"{len(export.unlabeled)} chip(s) of '{export.root}' have no label file "
                        f"(e.g. '{export.unlabeled[0]}'); set data.missing_labels: skip to leave "
                        "them out, as arcgis.learn does.")
    if task == "classification":
        return ArcGISTileDataset(export, spec, transforms=transforms)
    return ArcGISChipDataset(export, spec, task=task, label_rules=label_rules,
                             split_file=split_file, skip_nodata=skip_nodata,
                             on_invalid_label=on_invalid_label, transforms=transforms)
