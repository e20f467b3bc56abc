"""Chip folders: ``images/*.tif`` + ``labels/*.tif`` (or PNG/JPEG, VOC XML, YOLO txt, one COCO
JSON), paired by file name, or listed in a manifest CSV, optionally filtered by a split file.

This is what ArcGIS "Export Training Data" and most public datasets give.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rsfm.colors import class_colors
from rsfm.data.base import GeoDataset, window_meta
from rsfm.data.labels import LabelRules, clip_boxes, count_boxes, read_coco, read_voc, read_yolo
from rsfm.data.rasters import (
    IMAGE_SUFFIXES,
    inspect_raster,
    invalid_mask,
    list_images,
    read_window,
)
from rsfm.errors import ConfigError, DataError
from rsfm.spec import ClassInfo, InputSpec

# IMAGE_SUFFIXES and list_images live in rsfm.data.rasters (re-exported here)
__all__ = ["IMAGE_SUFFIXES", "ChipDataset", "guess_suffixes", "list_images", "strip_suffix"]

log = logging.getLogger(__name__)

_LABEL_SUFFIXES = {"raster": IMAGE_SUFFIXES, "voc": (".xml",), "yolo": (".txt",)}
MIN_CHIP_SIZE = 8  # pixels a side (the smallest data.tile_size)

PathLike = str | Path


def _key(path: Path, suffix: str) -> str:
    return strip_suffix(path.stem, suffix)


def strip_suffix(stem: str, suffix: str) -> str:
    """``stem`` without the pairing ending ``suffix`` (``"Bolivia_1_S1Hand"`` -> ``"Bolivia_1"``)."""
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


def _ending(stems: Sequence[str]) -> str:
    """The ending all ``stems`` share, from a separator on (``_S1Hand``); for one stem, its last
    separator-delimited part."""
    if len(stems) == 1:
        cut = max(stems[0].rfind(c) for c in "_-.")
        return stems[0][cut:] if cut > 0 else ""
    n = 0
    while n < min(map(len, stems)) and len({s[len(s) - n - 1] for s in stems}) == 1:
        n += 1
    common = stems[0][len(stems[0]) - n:]
    cut = [i for i, ch in enumerate(common) if ch in "_-."]
    return common[cut[0]:] if cut else ""


def guess_suffixes(images: Sequence[Path], labels: Sequence[Path]) -> tuple[str, str]:
    """The stem endings that pair image and label files by name (``X_S1Hand.tif`` with
    ``X_LabelHand.tif``): ``("", "")`` when plain stems pair, or when no common ending makes every
    image find its label (the dataset then names the unpaired images)."""
    image_stems, label_stems = [p.stem for p in images], [p.stem for p in labels]
    if not image_stems or set(image_stems) <= set(label_stems):
        return "", ""
    isuf, lsuf = _ending(image_stems), _ending(label_stems)
    keys = {strip_suffix(s, lsuf) for s in label_stems}
    if (isuf or lsuf) and all(strip_suffix(s, isuf) in keys for s in image_stems):
        return isuf, lsuf
    return "", ""


def _read_split_file(path: PathLike) -> set[str]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"Split file not found: '{path}'.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"Split file '{path}' is not UTF-8 text; save it as UTF-8.") from None
    except OSError as e:
        raise DataError(f"Cannot read split file '{path}': {e.strerror or e}.") from None
    names = set()
    for line in text.splitlines():
        line = line.strip().split(",")[0].strip()
        if line and not line.startswith("#"):
            names.add(Path(line).name)
            names.add(Path(line).stem)
    return names


def _read_manifest(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """The header and the rows of a manifest CSV, each row with its line number (the header is
    line 1, as row 1 in a spreadsheet). UTF-8, with or without the byte-order mark Excel writes.

    Raises:
        DataError: The file is not UTF-8 text (names the file and the line).
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"Cannot read manifest '{path}': {e.strerror or e}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"Manifest '{path}' is not UTF-8 text (byte 0x{raw[e.start]:02x} on row {line}); "
            "save it as UTF-8 CSV (in Excel: 'CSV UTF-8').") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for r in reader:  # header cells stripped (' label' is 'label'); extra cells dropped
            rows.append((reader.line_num, {k.strip(): v for k, v in r.items() if k is not None}))
    except csv.Error as e:
        raise DataError(f"Manifest '{path}', row {reader.line_num}: not valid CSV ({e}).") from None
    return [f.strip() for f in reader.fieldnames or []], rows


def _box_kind(box: Sequence[float], width: int, height: int, min_size: float = 1.0) -> str:
    """The :func:`~rsfm.data.labels.count_boxes` category of one xyxy box (for examples)."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return "zero-size"
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return "outside"
    cw = min(x1, width) - max(x0, 0)
    ch = min(y1, height) - max(y0, 0)
    if cw < min_size or ch < min_size:
        return "too small"
    return "clipped" if x0 < 0 or y0 < 0 or x1 > width or y1 > height else "inside"


class ChipDataset(GeoDataset):
    """Image chips with per-chip labels.

    Build it from folders (pairing by name), from a manifest CSV, or from explicit lists::

        spec = InputSpec(bands=resolve_bands_stated(["VV", "VH"]),
                         classes=(ClassInfo("dry", (60, 60, 60)), ClassInfo("water", (0, 114, 178))))
        ChipDataset("S1Hand", "LabelHand", spec, image_suffix="_S1Hand",
                    label_suffix="_LabelHand", label_rules=LabelRules(ignore_values=(-1,)))
        ChipDataset("images", "masks", spec, label_rules=LabelRules(color_map={"#3C1098": 0}))
        ChipDataset("images", "annotations", spec, task="detection")   # VOC XML
        ChipDataset("images", "coco.json", spec, task="detection")     # COCO
        ChipDataset(None, None, spec, manifest="chips.csv", split="train")

    Args:
        images: Image folder, list of files, or list of lists of files (time series, in time
            order: the image is then ``(C, T, H, W)``). ``None`` with ``manifest``.
        labels: Label folder, list of files (parallel to ``images``), a COCO JSON file, or
            ``None`` (``task="none"``, or with ``manifest``).
        spec: Bands, normalisation, nodata, classes and ignore index (see
            :class:`~rsfm.data.base.GeoDataset`). For COCO labels a spec without classes takes
            the file's categories.
        task: ``"segmentation"``, ``"detection"`` or ``"none"`` (images only, e.g. for stats).
        manifest: CSV with an ``image`` column (``;`` separates time steps), optional ``label``
            and ``split`` columns; relative paths are relative to the CSV.
        split: Keep only manifest rows whose ``split`` equals this, or the names in ``split_file``.
        split_file: Text file listing chip names (file names or stems, one per line) to keep.
        image_suffix: Stem ending of images removed before pairing (``"_S1Hand"``).
        label_suffix: Stem ending of labels removed before pairing (``"_LabelHand"``).
        label_format: ``"raster"``, ``"voc"``, ``"yolo"`` or ``"coco"``; guessed when ``None``.
        skip_nodata: Drop chips whose pixels are all nodata (counted in ``stats``).
        missing_labels: ``"error"`` (default) or ``"skip"``: images in a folder with no label
            file next to them are left out (with a warning), e.g. partly annotated VOC folders.
        label_rules: See :class:`~rsfm.data.base.GeoDataset`.
        on_invalid_label: See :class:`~rsfm.data.base.GeoDataset`.
        align_labels: See :class:`~rsfm.data.base.GeoDataset`.
        transforms: See :class:`~rsfm.data.base.GeoDataset`.

    Raises:
        DataError: Missing files, unpaired images, grid mismatches, an all-nodata dataset, a
            chip under 8 pixels a side (except ``task="none"``).
        BandError: Bands of the spec not in a file.
        ConfigError: Inconsistent arguments.
    """

    # Subclasses that pad chips of several sizes to one (ArcGIS exports) need no size warning.
    pads_chips: ClassVar[bool] = False

    def __init__(
        self,
        images: PathLike | Sequence[PathLike] | Sequence[Sequence[PathLike]] | None,
        labels: PathLike | Sequence[PathLike] | None,
        spec: InputSpec,
        *,
        task: str = "segmentation",
        manifest: PathLike | None = None,
        split: str | None = None,
        split_file: PathLike | None = None,
        image_suffix: str = "",
        label_suffix: str = "",
        label_format: str | None = None,
        skip_nodata: bool = True,
        missing_labels: str = "error",
        label_rules: LabelRules | None = None,
        on_invalid_label: str = "warn",
        align_labels: bool = False,
        transforms: Callable[[dict], dict] | None = None,
        instance_masks: bool = False,
    ) -> None:
        super().__init__(spec, task=task, label_rules=label_rules,
                         on_invalid_label=on_invalid_label, align_labels=align_labels,
                         transforms=transforms, instance_masks=instance_masks)
        if instance_masks:
            raise ConfigError(
                "model.head mask_rcnn needs object outlines, but chip labels (PASCAL VOC, YOLO, "
                "COCO) are read as boxes. Use polygon labels over scenes (data.kind: scenes with "
                "a vector file: GeoJSON, GeoPackage, Shapefile) or an ArcGIS RCNN_Masks export; "
                "for boxes use faster_rcnn, retinanet or fcos.")
        if missing_labels not in ("error", "skip"):
            raise ConfigError(f"missing_labels must be 'error' or 'skip', got {missing_labels!r}.")
        self.missing_labels = missing_labels
        self.label_format = label_format
        self._coco: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        pairs = self._collect(images, labels, manifest, split, split_file, image_suffix,
                              label_suffix)
        self._validate(pairs, skip_nodata)

    # ------------------------------------------------------------------ construction
    def _collect(self, images, labels, manifest, split, split_file, image_suffix, label_suffix):
        if manifest is not None:
            pairs = self._from_manifest(Path(manifest), split)
        else:
            if images is None:
                raise ConfigError("ChipDataset needs images=... (a folder or a list) or manifest=.")
            image_items: list[list[Path]]
            if isinstance(images, (str, Path)):
                image_items = [[p] for p in list_images(images)]
            else:
                image_items = [[Path(x)] if isinstance(x, (str, Path)) else [Path(y) for y in x]
                               for x in images]
            pairs = self._pair(image_items, labels, image_suffix, label_suffix)
        if split_file is not None:
            keep = _read_split_file(split_file)
            pairs = [(im, lab) for im, lab in pairs
                     if im[0].name in keep or _key(im[0], image_suffix) in keep
                     or im[0].stem in keep]
            if not pairs:
                raise DataError(f"No image matches a name listed in split file '{split_file}'.")
        if not pairs:
            raise DataError("The dataset has no images.")
        return pairs

    def _from_manifest(self, path: Path, split: str | None):
        if not path.exists():
            raise DataError(f"Manifest file not found: '{path}'.")
        header, rows = _read_manifest(path)
        if "image" not in header:
            raise DataError(f"Manifest '{path}' needs a header with an 'image' column "
                            f"(and optional 'label', 'split'); got {header}.")
        if not rows:
            raise DataError(f"Manifest '{path}' lists no images (only its header).")
        if split is not None:
            if "split" not in header:
                raise DataError(f"Manifest '{path}' has no 'split' column to select {split!r}.")
            empty = next((n for n, r in rows if not (r.get("split") or "").strip()), None)
            if empty is not None:
                raise DataError(f"Manifest '{path}', row {empty}: the 'split' cell is empty; "
                                f"write the split of every row (e.g. {split!r}).")
            found = sorted({(r["split"] or "").strip() for _, r in rows})
            rows = [(n, r) for n, r in rows if (r["split"] or "").strip() == split]
            if not rows:
                raise DataError(f"Manifest '{path}' has no row with split {split!r}; its 'split' "
                                f"column holds {found}.")
        base = path.parent
        pairs = []
        for n, r in rows:
            image = (r.get("image") or "").strip()
            if not image:
                raise DataError(f"Manifest '{path}', row {n}: the 'image' cell is empty.")
            ims = [base / p.strip() for p in image.split(";") if p.strip()]
            if self.task == "none":
                pairs.append((ims, None))
                continue
            lab = (r.get("label") or "").strip()
            if not lab:
                raise DataError(
                    f"Manifest '{path}', row {n}: no 'label' cell for image '{image}' (task "
                    f"{self.task!r} needs a label on every row; a row with fewer cells than the "
                    "header leaves the last ones empty).")
            pairs.append((ims, base / lab))
        return pairs

    def _pair(self, image_items, labels, image_suffix, label_suffix):
        if self.task == "none" or labels is None:
            if self.task != "none":
                raise ConfigError(f"task {self.task!r} needs labels=...; use task='none' for "
                                  "images only.")
            return [(im, None) for im in image_items]
        if isinstance(labels, (str, Path)) and Path(labels).suffix.lower() == ".json":
            self.label_format = "coco"
            names, self._coco = read_coco(labels, self.classes)
            if self.classes is None:  # the file's categories, in id order
                self.spec = replace(self.spec, classes=tuple(
                    ClassInfo(n, c) for n, c in zip(names, class_colors(len(names)))))
            return [(im, Path(labels)) for im in image_items]
        if isinstance(labels, (str, Path)):
            folder = Path(labels)
            if not folder.is_dir():
                raise DataError(f"Label folder not found: '{folder}'.")
            fmt = self.label_format
            suffixes = (_LABEL_SUFFIXES[fmt] if fmt in _LABEL_SUFFIXES else
                        _LABEL_SUFFIXES["raster"] + (".xml", ".txt"))
            table: dict[str, Path] = {}
            for p in sorted(folder.iterdir()):
                if p.suffix.lower() in suffixes:
                    table.setdefault(_key(p, label_suffix), p)
            pairs, unlabeled = [], []
            for im in image_items:
                k = _key(im[0], image_suffix)
                if k not in table and self.missing_labels == "skip":
                    unlabeled.append(im[0])
                    continue
                if k not in table:
                    self._wrong_format(folder, k, label_suffix, suffixes)
                    raise DataError(
                        f"No label for image '{im[0]}' in '{folder}' (looked for a file named "
                        f"'{k}{label_suffix}.*'). Set image_suffix/label_suffix if the names "
                        "differ by a suffix, use a manifest, or pass missing_labels='skip'."
                    )
                pairs.append((im, table[k]))
            if unlabeled:
                log.warning("%d image(s) without a label in '%s' skipped (e.g. '%s').", len(unlabeled),
                            folder, unlabeled[0])
            return pairs
        labels = [Path(p) for p in labels]
        if len(labels) != len(image_items):
            raise ConfigError(f"{len(image_items)} images but {len(labels)} labels were given.")
        return list(zip(image_items, labels))

    def _wrong_format(self, folder: Path, key: str, label_suffix: str,
                      suffixes: Sequence[str]) -> None:
        """Raise when the label of ``key`` is in ``folder`` in a format label_format does not
        read (``ann/X.xml`` with label_format yolo)."""
        other = next((p for p in sorted(folder.iterdir()) if _key(p, label_suffix) == key
                      and p.suffix.lower() not in suffixes), None)
        if other is None or self.label_format not in _LABEL_SUFFIXES:
            return
        known = {".xml": "voc", ".txt": "yolo", ".json": "coco"}
        fmt = known.get(other.suffix.lower(),
                        "raster" if other.suffix.lower() in IMAGE_SUFFIXES else None)
        kinds = {"voc": "PASCAL VOC XML", "yolo": "YOLO txt", "raster": "raster"}
        holds = f"{other.suffix} ({kinds.get(fmt, 'another format')})" if fmt else other.suffix
        hint = (f" Set data.label_format: {fmt} (label_format={fmt!r}), or leave it out to "
                "guess it from the files." if fmt in ("voc", "yolo") or (
                    fmt == "raster" and self.task == "segmentation") else "")
        raise DataError(
            f"label_format {self.label_format} reads {'/'.join(_LABEL_SUFFIXES[self.label_format])}"
            f" files but label folder '{folder}' holds {holds} files (e.g. '{other.name}' for "
            f"this image).{hint}")

    def _guess_format(self, label: Path) -> str:
        if self.label_format:
            return self.label_format
        suffix = label.suffix.lower()
        return {".xml": "voc", ".txt": "yolo", ".json": "coco"}.get(suffix, "raster")

    def _validate(self, pairs, skip_nodata: bool) -> None:
        frames = self.spec.num_frames
        odd = next((im for im, _ in pairs if len(im) != frames), None) if frames > 1 else None
        if odd is not None:
            raise DataError(
                f"The model takes {frames} time step(s) per sample (model.num_frames) but "
                f"'{odd[0]}' comes with {len(odd)}: list a time series as one manifest row with "
                "its files in time order separated by ';' (image column), or set "
                f"model.num_frames: {len(odd)}."
            )
        for images, label in pairs:
            for im in images:
                self.reader.plan(im)  # header, bands, readable
            if len(images) > 1:
                self.reader.check_stack(images)
            info = self.reader.plan(images[0]).info
            if label is not None:
                fmt = self._guess_format(label)
                if self.task == "segmentation" and fmt != "raster":
                    raise ConfigError(f"Label '{label}' is {fmt} (boxes) but task is segmentation.")
                if self.task == "detection" and fmt == "raster":
                    raise ConfigError(f"Label '{label}' is a raster but task is detection; "
                                      "give VOC XML, YOLO txt, COCO JSON or use SceneDataset "
                                      "with vector labels.")
                if fmt == "raster":
                    self._check_label_raster(info, inspect_raster(label))
                elif not label.exists():
                    raise DataError(f"Label file not found: '{label}'.")
            if skip_nodata and self._all_nodata(images):
                self.report.skipped_nodata += 1
                self.report.skipped_items.append(str(images[0]))
                continue
            self.items.append((images, label))
        if not self.items:
            raise DataError(
                f"All {len(pairs)} images are entirely nodata (e.g. '{pairs[0][0][0]}'); check "
                "the nodata value (nodata=...) and the band selection."
            )
        sizes: dict[tuple[int, int], Path] = {}
        tiny: list[tuple[Path, int, int]] = []
        for images, _ in self.items:
            info = self.reader.plan(images[0]).info
            sizes.setdefault((info.width, info.height), images[0])
            if min(info.width, info.height) < MIN_CHIP_SIZE:
                tiny.append((images[0], info.width, info.height))
        if tiny and self.task != "none":
            path, w, h = tiny[0]
            others = (f" (and {len(tiny) - 1} other chip(s) under {MIN_CHIP_SIZE} pixels a side)"
                      if len(tiny) > 1 else "")
            raise DataError(
                f"Chip '{path}' is {w}x{h} pixels{others}: too small to train on. Chips need at "
                f"least {MIN_CHIP_SIZE}x{MIN_CHIP_SIZE} pixels (models downsample by up to 32, "
                "and a ResNet trained at data.batch_size 1 needs more than 32x32). Remove such "
                "chips, or cut the images as scenes (data.kind: scenes with a data.tile_size).")
        if len(sizes) > 1 and self.task != "none" and not self.pads_chips:
            shown = ", ".join(f"{w}x{h} ('{p}')" for (w, h), p in list(sizes.items())[:4])
            log.warning("Chips of %d different sizes: %s. Batches of more than one chip need one "
                        "size (data.batch_size: 1, or crop/pad the chips, or read them as scenes "
                        "with a tile size).", len(sizes), shown)

    def _all_nodata(self, images: list[Path]) -> bool:
        for im in images:
            plan = self.reader.plan(im)
            h, w = plan.info.height, plan.info.width
            # A decimated read keeps the scan cheap; chips are small, so 1/4 is safe.
            raw = read_window(im, None, plan.selection.indexes,
                              out_shape=(max(1, h // 4), max(1, w // 4)))
            if not invalid_mask(raw, plan.nodata)[1].all():
                return False
        return True

    # ------------------------------------------------------------------ reading
    def read_target(self, index: int) -> dict[str, np.ndarray]:
        images, label = self.items[index]
        info = self.reader.plan(images[0]).info
        if self.task == "none" or label is None:
            return {}
        fmt = self._guess_format(label)
        if fmt == "raster":
            raw = self._read_label(label, info, None)
            return {"mask": self._label_mask(raw, None, str(label))}
        if fmt == "voc":
            _, boxes, labels = read_voc(label, self.classes)
        elif fmt == "yolo":
            boxes, labels = read_yolo(label, info.width, info.height)
        else:  # coco
            entry = self._coco.get(images[0].name) if self._coco is not None else None
            if entry is None:
                raise DataError(f"COCO file '{label}' has no image named '{images[0].name}'.")
            boxes, labels = entry
        if self.classes is not None and len(labels) and (
            labels.min() < 0 or labels.max() >= len(self.classes)
        ):
            raise DataError(
                f"'{label}' has class ids {sorted(set(labels.tolist()))} but only "
                f"{len(self.classes)} classes are declared ({self.classes})."
            )
        # Annotation tools write boxes that overhang the image edge; keep the visible part.
        self._count_boxes(boxes, info.width, info.height, label, images[0])
        boxes, labels = clip_boxes(boxes.astype(np.float32), labels.astype(np.int64), 0, 0,
                                   info.width, info.height, min_size=1.0)
        return {"boxes": boxes, "labels": labels}

    def _count_boxes(self, boxes: np.ndarray, width: int, height: int, label: Path,
                     image: Path) -> None:
        """Add one image's boxes to ``report.boxes`` (first example of each problem kept)."""
        count = count_boxes(boxes, width, height, min_size=1.0)
        self.report.boxes.add(count)
        where = f"'{label}'" + (f" [{image.name}]" if self.label_format == "coco" else "")
        examples = self.report.box_examples
        if not count.total:
            examples.setdefault("no box", f"{where} has none")
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        for key, n in (("outside", count.outside), ("zero-size", count.zero_size),
                       ("clipped", count.clipped), ("too small", count.small)):
            if n and key not in examples:
                one = next(r for r in b.tolist() if _box_kind(r, width, height) == key)
                examples[key] = (f"{where}: box {[round(v, 1) for v in one]} in a "
                                 f"{width}x{height} image")

    def _load(self, index: int, out: np.ndarray | None = None):
        images, _label = self.items[index]
        if len(images) == 1:
            image, bad = self.reader.read(images[0], out=out)
        else:
            image, bad = self.reader.read_stack(images)
        target = self.read_target(index)
        if "mask" in target:
            target["mask"][bad] = self.ignore_index
        info = self.reader.plan(images[0]).info
        meta = window_meta(str(images[0]), 0, 0, info.width, info.height, info)
        return image, bad, target, meta

    def footprint(self, index: int) -> tuple[float, float, float, float] | None:
        info = self.reader.plan(self.items[index][0][0]).info
        return info.bounds if info.georeferenced else None

    def crs_of(self, index: int) -> Any:
        return self.reader.plan(self.items[index][0][0]).info.crs

    def names(self) -> list[str]:
        """File name of each chip (first time step)."""
        return [im[0].name for im, _ in self.items]
