"""Datasets over ArcGIS "Export Training Data For Deep Learning" folders (:mod:`rsfm.data.arcgis`).

Classified Tiles and the box formats are a :class:`~rsfm.data.chips.ChipDataset` over the
export's pairs (same reader, nodata handling, label rules, transforms, box counts); only the
label files ArcGIS writes differently are read here: VOC/KITTI class tokens that are class
values, and RCNN instance masks, which become one box per instance (and, for Mask R-CNN, one
mask per instance). Labeled Tiles and Imagenet exports are a
:class:`~rsfm.data.class_folders.ClassFolderDataset` whose items come from the export.

What ``arcgis.learn`` does, and rsfm too:

* objects whose class token the ``.emd`` does not list are skipped (reported once per dataset
  by the box check; an error only when no object has a listed class);
* ``CropTileMode: Variable_Size`` chips (Labeled Tiles) are resized, bilinear, to the tile size.

Where rsfm differs: Classified Tiles and box chips of different sizes are padded at the bottom
and right to the largest chip with nodata pixels (ignored in the loss and the metrics, as at a
scene's edge) rather than cropped, so batches stack and no labelled pixel is lost.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window
from torch.utils.data import Dataset

from rsfm.data.arcgis import ArcGISChip, ArcGISExport, read_arcgis_export
from rsfm.data.base import window_meta
from rsfm.data.chips import ChipDataset
from rsfm.data.class_folders import ClassFolderDataset
from rsfm.data.labels import BoxCount, LabelCount, LabelRules, clip_boxes, read_kitti, read_voc
from rsfm.data.rasters import RasterInfo, inspect_raster, read_window
from rsfm.data.reader import ImageReader
from rsfm.errors import ConfigError, DataError
from rsfm.spec import InputSpec

__all__ = ["ArcGISChipDataset", "ArcGISTileDataset", "arcgis_dataset", "boxes_from_instances",
           "instances_from_ids", "read_boxes"]

log = logging.getLogger(__name__)

_FORMAT = {"Classified_Tiles": "raster", "PASCAL_VOC_rectangles": "voc",
           "KITTI_rectangles": "kitti", "RCNN_Masks": "rcnn_masks"}
# (export, size) pairs whose resize was logged: once per process, not once per dataset
_RESIZE_LOGGED: set[tuple[Path, tuple[int, int]]] = set()


def _class_tokens(label: Path, fmt: str) -> list[str]:
    """The class token of each object of a VOC (``fmt="voc"``) or KITTI label file; files the
    readers reject give none (the reader names the problem)."""
    try:
        if fmt == "voc":
            names = (o.findtext("name") for o in ET.parse(label).getroot().iter("object"))
            return [n.strip() for n in names if n is not None]
        lines = label.read_text(encoding="utf-8-sig").splitlines()
        return [line.split()[0] for line in lines if line.split()]
    except (OSError, ET.ParseError, UnicodeDecodeError):
        return []


def _known(token: str, class_ids: Mapping[str, int]) -> bool:
    return token in class_ids or token.strip().lower() in class_ids  # as the readers look up


def read_boxes(label: str | os.PathLike[str], fmt: str,
               class_ids: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Boxes of a VOC or KITTI label file of an export, without the objects of unknown classes.

    ``arcgis.learn`` skips an object whose class token is neither a class value nor a class
    name of the ``.emd``; so does this.

    Args:
        label: The ``.xml`` (``fmt="voc"``) or ``.txt`` (``fmt="kitti"``) file.
        fmt: ``"voc"`` or ``"kitti"``.
        class_ids: Class token -> class id (:meth:`~rsfm.data.arcgis.ArcGISExport.class_ids`).

    Returns:
        ``(boxes (N, 4) xyxy float32, labels (N,) int64, class tokens of the skipped objects)``.

    Raises:
        DataError: A missing or malformed file (see :func:`~rsfm.data.labels.read_voc`,
            :func:`~rsfm.data.labels.read_kitti`).
    """
    path = Path(label)
    unknown = [t for t in _class_tokens(path, fmt) if not _known(t, class_ids)]
    ids = {**class_ids, **dict.fromkeys(unknown, -1)}  # -1: the objects to skip
    if fmt == "voc":
        _, boxes, labels = read_voc(path, None, class_ids=ids)
    else:
        boxes, labels = read_kitti(path, ids)
    keep = labels >= 0
    return boxes[keep], labels[keep], unknown


@dataclass
class _Skipped:
    """Objects of classes the ``.emd`` does not list, counted while labels are read."""

    labels_read: int = 0
    objects: int = 0
    files: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    example: str = ""

    def add(self, tokens: Sequence[str], label: Path) -> None:
        self.objects += len(tokens)
        self.files += 1
        for t in tokens:
            self.tokens[t] = self.tokens.get(t, 0) + 1
        self.example = self.example or str(label)

    def describe(self, where: str = "") -> str:
        """``"3 object(s) in 2 label file(s) <where> name class(es) ['99'], which the .emd does
        not list (e.g. '<file>')"``."""
        return (f"{self.objects} object(s) in {self.files} label file(s){where} name class(es) "
                f"{sorted(self.tokens)[:10]}, which the .emd does not list (e.g. "
                f"'{self.example}')")


def _known_classes(export: ArcGISExport) -> list[str]:
    return [f"{c.value}={c.name}" for c in export.classes]


def boxes_from_instances(ids: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """One box per instance of an instance-id raster.

    Args:
        ids: ``(H, W)`` or ``(B, H, W)`` integers; 0 is background, each other value one
            instance (per band: the same id in two bands is two instances).
        nodata: The file's nodata value, also background.

    Returns:
        ``(N, 4)`` float32 pixel boxes ``xmin, ymin, xmax, ymax`` (pixel edges), in id order.
    """
    return instances_from_ids(ids, nodata)[0]


def instances_from_ids(ids: np.ndarray, nodata: float | None = None, masks: bool = False,
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`boxes_from_instances`, and with ``masks`` each instance's ``(H, W)`` uint8 mask
    (``(N, H, W)``, Mask R-CNN targets), else None."""
    planes = ids[None] if ids.ndim == 2 else ids
    boxes, out_masks = [], []
    for plane in planes:
        for value in np.unique(plane):
            if value == 0 or value == nodata:
                continue
            inside = plane == value
            rows, cols = np.nonzero(inside)
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            if masks:
                out_masks.append(inside.astype(np.uint8))
    stacked = None
    if masks:
        stacked = (np.stack(out_masks) if out_masks
                   else np.zeros((0, *planes.shape[-2:]), np.uint8))
    return np.asarray(boxes, np.float32).reshape(-1, 4), stacked


class ArcGISChipDataset(ChipDataset):
    """Classified Tiles (segmentation) or PASCAL VOC / KITTI / RCNN Masks (detection boxes).

    Samples are those of :class:`~rsfm.data.chips.ChipDataset`. Label chips are checked to have
    their image chip's size only (ArcGIS writes each label on its chip's grid; georeferencing
    and sidecar files vary between chip formats and Pro versions). Boxes are counted (clipped,
    dropped) like other detection data; objects of classes the ``.emd`` does not list are
    skipped, as ``arcgis.learn`` does, and reported by :meth:`check_boxes`. Chips of different
    sizes are padded at the bottom and right to the largest with nodata pixels (ignored in the
    loss and the metrics), so they batch together.

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

    pads_chips = True  # chips of several sizes are padded (_load), not a problem

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
        self._skipped = _Skipped()
        self._stray: tuple[int, ...] = ()
        self._pad_to: tuple[int, int] | None = None
        labels = [c.label if fmt != "rcnn_masks" else c.masks[0][1] for c in chips]
        instance_masks = bool(kwargs.pop("instance_masks", False))
        if instance_masks and fmt != "rcnn_masks":
            raise ConfigError(f"model.head mask_rcnn needs instance masks, but '{export.root}' "
                              f"is a {export.metadata_format} export (boxes only); export with "
                              "the RCNN_Masks metadata format, or use faster_rcnn.")
        super().__init__([c.image for c in chips], labels, spec, task=task,
                         label_format=fmt if fmt in ("raster", "voc") else None,
                         label_rules=label_rules, **kwargs)
        self.instance_masks = instance_masks  # RCNN Masks: set after ChipDataset (box labels)
        rules = self.label_rules
        values = sorted(c.value for c in export.classes)
        if fmt == "raster" and rules.value_map and not rules.color_map:
            # values between the class values that are no class: the value map sends them to
            # the ignore index (they would pass as a class id); reported like other strays
            self._stray = tuple(sorted(
                v for v, i in rules.value_map.items()
                if i == self.ignore_index and values[0] < v < values[-1] and v not in values
                and v not in rules.ignore_values))
        self._pad_to = self._padded_size()

    def _padded_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of the largest chip when the chips differ in size (logged)."""
        sizes: dict[tuple[int, int], Path] = {}
        for images, _ in self.items:
            info = self.reader.plan(images[0]).info
            sizes.setdefault((info.height, info.width), images[0])
        if len(sizes) < 2:
            return None
        size = (max(h for h, _ in sizes), max(w for _, w in sizes))
        shown = ", ".join(f"{w}x{h} ('{p.name}')" for (h, w), p in list(sizes.items())[:4])
        log.warning("ArcGIS export '%s': chips of %d sizes (%s): each is padded at its bottom "
                    "and right to %dx%d px with nodata pixels (ignored in the loss and the "
                    "metrics), so chips batch together. Export with a fixed tile size to train "
                    "on one size.", self.export.root, len(sizes), shown, size[1], size[0])
        return size

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

    def _label_mask(self, raw: np.ndarray, bad: np.ndarray | None, path: str,
                    where: str = "") -> np.ndarray:
        mask = super()._label_mask(raw, bad, path, where)
        if not self._stray:
            return mask
        values = raw if raw.ndim == 2 else raw[0]
        hit = np.isin(values, self._stray) if bad is None else np.isin(values, self._stray) & ~bad
        n = int(np.count_nonzero(hit))
        if not n:
            return mask
        found = np.unique(values[hit])[:10].tolist()
        self.report.out_of_range_pixels += n
        if self._label_log is not None:  # rsfm check --data: counted with the other strays
            self._label_log.append((str(path), LabelCount(0, n, found)))
        elif self.on_invalid_label != "ignore":
            msg = (f"{path}{where}: {n} pixels have values {found} between the class values "
                   f"{[c.value for c in self.export.classes]} that are no class; they are set to "
                   f"ignore_index={self.ignore_index}.")
            if self.on_invalid_label == "error":
                raise DataError(msg + " Map them to a class with data.label_map, list them in "
                                "data.label_ignore_values, or set on_invalid_label='warn'.")
            log.warning(msg)
        return mask

    def read_target(self, index: int) -> dict[str, np.ndarray]:
        fmt = self._arcgis_format
        if fmt == "raster":
            return super().read_target(index)
        images, label = self.items[index]
        info = self.reader.plan(images[0]).info
        if fmt in ("voc", "kitti"):
            boxes, labels, unknown = read_boxes(label, fmt, self._class_ids)
            self._skipped.labels_read += 1
            if unknown:  # skipped, as arcgis.learn does; check_boxes reports them
                self._skipped.add(unknown, label)
        else:  # rcnn_masks: one box (and mask) per instance of each class folder's raster
            parts_b, parts_l, parts_m = [], [], []
            for value, path in self._masks[images[0]]:
                mask = inspect_raster(path)
                if (mask.width, mask.height) != (info.width, info.height):
                    raise DataError(f"Instance mask '{path}' is {mask.width}x{mask.height} but "
                                    f"its chip '{images[0]}' is {info.width}x{info.height} pixels.")
                b, m = instances_from_ids(read_window(path, None, range(1, mask.count + 1)),
                                          mask.nodata, masks=self.instance_masks)
                parts_b.append(b)
                parts_l.append(np.full(len(b), self._value_ids[value], np.int64))
                parts_m.append(m)
            boxes = np.concatenate(parts_b) if parts_b else np.zeros((0, 4), np.float32)
            labels = np.concatenate(parts_l) if parts_l else np.zeros(0, np.int64)
            if self.instance_masks:  # pixel boxes lie inside the chip: nothing to clip
                self._count_boxes(boxes, info.width, info.height, label, images[0])
                masks = (np.concatenate(parts_m) if parts_m
                         else np.zeros((0, info.height, info.width), np.uint8))
                return {"boxes": boxes, "labels": labels, "masks": masks}
        # Pro clips boxes to the chip; what is clipped or dropped (outside, slivers < 1 px) is
        # counted in report.boxes as for any detection data
        self._count_boxes(boxes, info.width, info.height, label, images[0])
        boxes, labels = clip_boxes(boxes.astype(np.float32), labels.astype(np.int64), 0, 0,
                                   info.width, info.height, min_size=1.0)
        return {"boxes": boxes, "labels": labels}

    def check_boxes(self, limit: int = 2000) -> BoxCount:
        """:meth:`~rsfm.data.base.GeoDataset.check_boxes`, and one warning for the objects of
        classes the ``.emd`` does not list (skipped).

        Raises:
            DataError: See the base method; or no object of the export has a listed class.
        """
        self._skipped = _Skipped()
        n = min(limit, len(self))
        try:
            count = super().check_boxes(limit)
        except DataError:  # "no box": say why when every object read had an unknown class
            skipped = self._skipped
            if skipped.objects and skipped.labels_read == n and not self.report.boxes.total:
                raise self._all_unknown() from None
            raise
        skipped = self._skipped
        if skipped.objects:
            if not count.total and not self._any_known(range(n, len(self))):
                raise self._all_unknown()
            where = f"the first {n} samples" if n < len(self) else f"all {n} samples"
            log.warning("ArcGIS export '%s': %s; they are skipped, as arcgis.learn does. The "
                        ".emd's classes: %s.", self.export.root, skipped.describe(f" of {where}"),
                        _known_classes(self.export))
        return count

    def _any_known(self, indices: Iterable[int]) -> bool:
        """Whether a label file of these samples has an object of a listed class."""
        return any(_known(t, self._class_ids)
                   for i in indices for t in _class_tokens(self.items[i][1], self._arcgis_format))

    def _all_unknown(self) -> DataError:
        return DataError(
            f"No object of the ArcGIS export '{self.export.root}' has a class its .emd lists: "
            f"{self._skipped.describe()}; its classes are "
            f"{_known_classes(self.export)}. Label files name a class by its value or name "
            "(<name>1</name>); export again with the classes of the training samples.")

    def _load(self, index: int, out: np.ndarray | None = None):
        images, label = self.items[index]
        info = self.reader.plan(images[0]).info
        if self._pad_to is None or (info.height, info.width) == self._pad_to:
            return super()._load(index, out)
        height, width = self._pad_to
        window = Window(0, 0, width, height)  # past the chip: nodata, as at a scene's edge
        image, bad = self.reader.read(images[0], window, out=out)
        if self._arcgis_format == "raster":
            raw = self._read_label(label, info, window)
            target = {"mask": self._label_mask(raw, bad, str(label))}  # padding: ignore_index
        else:
            target = self.read_target(index)  # boxes keep their pixels (top-left anchored)
            if "masks" in target:
                m = target["masks"]
                target["masks"] = np.pad(m, ((0, 0), (0, height - m.shape[1]), (0, width - m.shape[2])))
        return image, bad, target, window_meta(str(images[0]), 0, 0, width, height, info)


class ArcGISTileDataset(ClassFolderDataset):
    """Labeled Tiles (class of each chip: the first ``<object><name>`` of its XML, value or
    name, whose class the ``.emd`` lists) or Imagenet (``images/<class>/``) exports, as a
    :class:`~rsfm.data.class_folders.ClassFolderDataset` (same samples and reader).

    Chips of another size than the export's are resized, bilinear (the whole chip, aspect not
    kept), as ``arcgis.learn`` resizes them: ``CropTileMode: Variable_Size`` chips to the tile
    size (``spec.tile_size``, square), others to the export's chip size. So batches of more than
    one chip stack.

    Args:
        export: The export.
        spec: Bands, normalisation, tile size and classes (one per export class, ascending
            value).
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
        items, empty, skipped = [], [], _Skipped()
        for chip in export.chips if chips is None else chips:
            if chip.class_value is not None:
                items.append((chip.image, value_ids[chip.class_value]))
                continue
            _, labels, unknown = read_boxes(chip.label, "voc", ids)  # type: ignore[arg-type]
            if unknown:
                skipped.add(unknown, chip.label)  # type: ignore[arg-type]
            if len(labels):
                items.append((chip.image, int(labels[0])))  # the first object, as arcgis.learn
            else:
                empty.append(chip.label)
        if not items and skipped.objects:
            raise DataError(f"No object of the ArcGIS export '{export.root}' has a class its "
                            f".emd lists: {skipped.describe()}; its classes are "
                            f"{_known_classes(export)}.")
        if skipped.objects:
            log.warning("ArcGIS export '%s': %s; those objects are skipped, as arcgis.learn "
                        "does. The .emd's classes: %s.", export.root, skipped.describe(),
                        _known_classes(export))
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
        self.export = export
        side = spec.tile_size or export.tile_size
        self._size = ((side, side) if export.variable_size and side else export.chip_size)
        if export.variable_size and self._size and (export.root, self._size) not in _RESIZE_LOGGED:
            _RESIZE_LOGGED.add((export.root, self._size))
            log.info("ArcGIS export '%s': CropTileMode Variable_Size: each chip is resized "
                     "(bilinear) to %dx%d px, as arcgis.learn does.", export.root, *self._size)
        self._warned_size = False

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.items[index]
        image, _bad = self.reader.read(path)
        tensor = torch.from_numpy(image.copy())
        if self._size is not None and tuple(tensor.shape[-2:]) != self._size:
            if not self.export.variable_size and not self._warned_size:
                self._warned_size = True
                log.warning("ArcGIS export '%s': chip '%s' is %dx%d px, not the export's %dx%d; "
                            "chips of another size are resized (bilinear).", self.export.root,
                            path, tensor.shape[-1], tensor.shape[-2], self._size[1],
                            self._size[0])
            # bilinear, like arcgis.learn's resize of these chips (fastai ResizeMethod.SQUISH)
            tensor = F.interpolate(tensor[None], size=self._size, mode="bilinear",
                                   align_corners=False)[0]
        sample = {"image": tensor, "label": torch.tensor(label, dtype=torch.int64)}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample


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
    instance_masks: bool = False,
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
        instance_masks: Detection: also one mask per instance (Mask R-CNN; RCNN Masks exports).

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
                             on_invalid_label=on_invalid_label, transforms=transforms,
                             instance_masks=instance_masks)
