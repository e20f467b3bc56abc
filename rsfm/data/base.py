"""What every rsfm dataset shares: the sample format, the input spec, label rules and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import Dataset, get_worker_info

from rsfm.data.labels import BoxCount, LabelCount, LabelRules, apply_label_rules, is_vector_file
from rsfm.data.rasters import (
    RasterInfo,
    check_same_grid,
    inspect_raster,
    read_aligned,
    read_window,
)
from rsfm.data.reader import ImageReader
from rsfm.data.splits import spread_indices
from rsfm.errors import ConfigError, DataError
from rsfm.spec import InputSpec

__all__ = ["TASKS", "DataReport", "GeoDataset", "LabelSample"]

log = logging.getLogger(__name__)

TASKS = ("segmentation", "detection", "none")


@dataclass
class DataReport:
    """Counts a dataset collects while it is built and read (per process: DataLoader workers
    keep their own copy, so read-time counts are complete with ``num_workers=0`` or after
    :meth:`GeoDataset.check_labels`).

    Attributes:
        skipped_nodata: Tiles/chips dropped because every pixel is nodata.
        skipped_items: Their names (file, or file@window).
        out_of_range_pixels: Label pixels outside the declared classes (set to ignore_index).
        unknown_color_pixels: Colour-mask pixels whose colour is not in the colour table.
        nan_label_pixels: Float label pixels that are NaN (read as "no label").
        boxes: Detection boxes read, kept, clipped to their image and dropped (outside the
            image, zero-size, too small), with ``box_examples`` (category -> first annotation
            file and box).
    """

    skipped_nodata: int = 0
    skipped_items: list[str] = field(default_factory=list)
    out_of_range_pixels: int = 0
    unknown_color_pixels: int = 0
    nan_label_pixels: int = 0
    boxes: BoxCount = field(default_factory=BoxCount)
    box_examples: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for logs and YAML)."""
        return {
            "skipped_nodata": self.skipped_nodata,
            "skipped_items": list(self.skipped_items),
            "out_of_range_pixels": self.out_of_range_pixels,
            "unknown_color_pixels": self.unknown_color_pixels,
            "nan_label_pixels": self.nan_label_pixels,
            "boxes": dict(vars(self.boxes)),
        }


@dataclass(frozen=True)
class LabelSample:
    """What :meth:`GeoDataset.check_labels_sample` read.

    Attributes:
        targets: Targets read.
        labelled: Label pixels that got a class id.
        invalid: Label pixels outside the classes (values or unknown colours).
        nan: Float label pixels that are NaN (read as "no label").
        files: The label files read.
        classes_seen: The class ids that have at least one pixel.
        complete: Every sample of the dataset was read (not a sample of them).
    """

    targets: int = 0
    labelled: int = 0
    invalid: int = 0
    nan: int = 0
    files: tuple[str, ...] = ()
    classes_seen: tuple[int, ...] = ()
    complete: bool = False


class GeoDataset(Dataset):
    """Base of :class:`~rsfm.data.chips.ChipDataset` and :class:`~rsfm.data.scenes.SceneDataset`.

    Subclasses set ``self.items`` and implement ``_load(i) -> (image, bad, target, meta)``.

    Args:
        spec: What to read and how (bands, the files' band order, sensor, nodata,
            normalisation, spectral indices, classes, ignore index); see
            :class:`~rsfm.spec.InputSpec`.
        task: ``"segmentation"``, ``"detection"`` or ``"none"``.
        label_rules: How raw label values or colours become class ids (the same for every
            source); see :class:`~rsfm.data.labels.LabelRules`. Default: values as class ids.
        on_invalid_label: ``"warn"``, ``"error"`` or ``"ignore"`` for label pixels outside the
            classes (values, or colours missing from the colour map).
        align_labels: Resample label rasters on another grid onto the image grid (nearest).
        transforms: Callable on the sample dict (see :func:`rsfm.data.transforms.build_transforms`).
        instance_masks: Detection: targets also carry ``masks``, one ``(H, W)`` uint8 mask per
            box (Mask R-CNN); only sources with object outlines have them.

    Raises:
        ConfigError: Not an InputSpec, unknown task or ``on_invalid_label``, segmentation
            without classes.
    """

    def __init__(
        self,
        spec: InputSpec,
        *,
        task: str = "segmentation",
        label_rules: LabelRules | None = None,
        on_invalid_label: str = "warn",
        align_labels: bool = False,
        transforms: Callable[[dict], dict] | None = None,
        instance_masks: bool = False,
    ) -> None:
        if not isinstance(spec, InputSpec):
            raise ConfigError(f"spec must be an rsfm.spec.InputSpec, got {type(spec).__name__}; "
                              "build one with InputSpec(bands=...) or resolve_input_spec(...).")
        if task not in TASKS:
            raise ConfigError(f"task {task!r} is not one of {list(TASKS)}.")
        if on_invalid_label not in ("warn", "error", "ignore"):
            raise ConfigError(
                f"on_invalid_label {on_invalid_label!r} is not one of ['warn', 'error', 'ignore']."
            )
        if task == "segmentation" and not spec.classes:
            raise ConfigError("Segmentation needs classes: InputSpec(classes=(ClassInfo(name, "
                              "color), ...)) (index = class id), or task='none' for images only.")
        self.spec = spec
        self.task = task
        self.label_rules = label_rules if label_rules is not None else LabelRules()
        self.on_invalid_label = on_invalid_label
        self.align_labels = bool(align_labels)
        self.transforms = transforms
        if instance_masks and task != "detection":
            raise ConfigError(f"instance masks are detection targets (Mask R-CNN), not {task!r}.")
        self.instance_masks = bool(instance_masks)
        self.reader = ImageReader(spec)
        self.report = DataReport()
        self.items: list[Any] = []
        # set by check_labels_sample while it reads: (label file, LabelCount) per target
        self._label_log: list[tuple[str, LabelCount]] | None = None
        self._grey_labels: set[str] = set()  # labels of 2+ equal bands (checked once)
        self._classes_seen: set[int] = set()

    # -- public attributes other modules rely on
    @property
    def bands(self) -> list[str]:
        """Names of the image channels (the spec's bands, then its spectral indices)."""
        return self.spec.channel_names

    @property
    def classes(self) -> list[str] | None:
        """Class names (index = class id), ``None`` when the spec has no classes."""
        return self.spec.class_names or None

    @property
    def ignore_index(self) -> int:
        """Target value of pixels without a class (the spec's)."""
        return self.spec.ignore_index

    @property
    def stats(self) -> dict[str, Any]:
        """The :class:`DataReport` as a dict (skipped all-nodata tiles, bad label counts)."""
        return self.report.as_dict()

    @property
    def num_classes(self) -> int | None:
        """Number of classes (``None`` when the spec has no classes)."""
        return self.spec.num_classes or None

    def __len__(self) -> int:
        return len(self.items)

    # -- helpers for subclasses
    def _check_label_raster(self, image: RasterInfo, label: RasterInfo) -> None:
        """Same grid (or, with ``align_labels``, two georeferenced files that can be aligned), and
        the bands the label rules read."""
        if not (self.align_labels and image.georeferenced and label.georeferenced):
            check_same_grid(image, label, aligning=self.align_labels)
        if self.label_rules.color_map and label.count < 3:
            raise DataError(f"color_map is set but label '{label.path}' has {label.count} "
                            "band(s); colour masks need R, G, B.")

    def _check_colour_mask(self, label: RasterInfo, size: int = 512) -> None:
        """A label raster of 2 or more bands read without ``color_map``: band 1 holds the class
        values when its first three bands are equal (a grey mask saved as RGB); when they differ
        it is a colour mask, and band 1 alone would label every pixel by its red value. Two bands
        that differ are refused too (band 2 would be dropped without a word).

        Reads a decimated view (at most ``size`` pixels a side), once per file and process: it
        runs at the first read of each label (:meth:`_read_label`), so ``check_labels_sample``
        (``rsfm check --data``) reports it before training.

        Raises:
            DataError: Names the file, its band count, the colours found and data.color_map.
        """
        if (self.label_rules.color_map or label.count < 2 or self.task != "segmentation"
                or label.path in self._grey_labels):
            return
        step = max(1, -(-max(label.width, label.height) // size))
        rgb = read_window(label.path, None, [1, 2, 3][:min(label.count, 3)],
                          out_shape=(max(1, label.height // step), max(1, label.width // step)))
        if all((rgb[0] == b).all() for b in rgb[1:]):
            self._grey_labels.add(label.path)
            return
        if label.count == 2:
            if not np.array_equal(rgb[0], np.round(rgb[0])):
                return  # not class ids at all (an image given as labels): reported per value
            raise DataError(
                f"Label '{label.path}' has 2 bands that differ: only band 1 would be read as "
                "class values and band 2 silently dropped. Give single-band labels of class ids "
                "(e.g. keep band 1 with 'gdal_translate -b 1'), or a 3-band colour mask with "
                "data.color_map.")
        colours = ""
        if np.issubdtype(rgb.dtype, np.integer) and rgb.min() >= 0 and rgb.max() <= 255:
            found = np.unique(rgb.reshape(3, -1).T, axis=0)
            shown = ["#{:02X}{:02X}{:02X}".format(*c) for c in found[:8].tolist()]
            more = f" and {len(found) - 8} more" if len(found) > 8 else ""
            example = ", ".join(f"'{c}': {i}" for i, c in enumerate(shown[:2]))
            colours = f"; colours found: {', '.join(shown)}{more}; e.g. {{{example}}}"
        raise DataError(
            f"Label '{label.path}' has {label.count} bands that differ: it looks like a colour "
            "mask: give color_map (data.color_map in a recipe: colour -> class id"
            f"{colours}). Without it only band 1 (red) would be read as class values; or give "
            "single-band labels of class ids.")

    def _read_label(self, label: Any, image: RasterInfo, window: Window | None) -> np.ndarray:
        """The label bands (band 1, or R, G, B for colour masks) for ``window`` of ``image``.

        Returns:
            ``(H, W)`` values or ``(3, H, W)`` colours; resampled onto the image grid when the
            label is on another grid and ``align_labels`` is set.
        """
        bands = self.label_rules.label_bands
        linfo = inspect_raster(label)
        self._check_colour_mask(linfo)
        if self.align_labels and (linfo.width, linfo.height, linfo.crs, linfo.transform) != (
            image.width, image.height, image.crs, image.transform
        ):
            raw = read_aligned(label, image, window, bands)
        else:
            raw = read_window(label, window, bands)
        return raw if len(bands) > 1 else raw[0]

    def _label_mask(self, raw: np.ndarray, bad: np.ndarray | None, path: str,
                    where: str = "") -> np.ndarray:
        """Class ids of one label (by the dataset's :class:`LabelRules`); ``bad`` pixels ignored.

        Args:
            raw: ``(H, W)`` values or ``(3, H, W)`` colours.
            bad: Pixels to ignore whatever their label (nodata in the image, outside the scene).
            path: The label file (for messages).
            where: The window inside it (``@col=..,row=..``), for messages.
        """
        on_invalid = "ignore" if self._label_log is not None else self.on_invalid_label
        mask, count = apply_label_rules(raw, self.label_rules, self.spec.num_classes,
                                        self.ignore_index, on_invalid, f"{path}{where}", bad)
        if self.label_rules.color_map:
            self.report.unknown_color_pixels += count.invalid
        else:
            self.report.out_of_range_pixels += count.invalid
        self.report.nan_label_pixels += count.nan
        if self._label_log is not None:
            self._label_log.append((str(path), count))
            valid = mask[(mask >= 0) & (mask < self.spec.num_classes)]
            self._classes_seen.update(np.unique(valid).tolist())
        return mask

    def _load(
        self, index: int, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    def _sample(self, index: int, out: np.ndarray | None = None) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image, _bad, target, meta = self._load(index % len(self), out)
        sample: dict[str, Any] = {"image": torch.from_numpy(np.ascontiguousarray(image))}
        for key, value in target.items():
            sample[key] = torch.from_numpy(np.ascontiguousarray(value))
        sample["meta"] = meta
        return sample

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self._sample(index)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Batch fetch (used by DataLoader): tiles are read straight into one batch array.

        Each image is a view of a ``(B, ...)`` tensor (in shared memory inside a worker), which
        :func:`~rsfm.data.collate.collate_fn` returns without copying; a copy of every batch is
        what otherwise separates a training loader from plain windowed reads. Samples whose shape
        differs, and datasets with ``transforms``, take the per-item path.
        """
        indices = list(indices)
        if self.transforms is not None or len(indices) < 2:
            return [self[i] for i in indices]
        first = self._sample(indices[0])
        base = torch.empty((len(indices), *first["image"].shape), dtype=torch.float32)
        if get_worker_info() is not None:
            base.share_memory_()  # the batch crosses to the main process without a copy
        batch = base.numpy()
        batch[0] = first["image"].numpy()
        first["image"] = base[0]
        samples = [first]
        for k, i in enumerate(indices[1:], start=1):
            s = self._sample(i, out=batch[k])
            if s["image"].data_ptr() == base[k].data_ptr():
                s["image"] = base[k]  # a view whose ._base is the batch tensor
            samples.append(s)
        return samples

    def check_labels(self) -> dict[str, Any]:
        """Read every target once (no images) and return the report with label counts.

        Use before training to see out-of-range label values that DataLoader workers would
        otherwise count in their own copies.
        """
        self.report.out_of_range_pixels = 0
        self.report.unknown_color_pixels = 0
        self.report.nan_label_pixels = 0
        for i in range(len(self)):
            self.read_target(i)
        return self.stats

    def check_labels_sample(self, n_tiles: int = 8, max_invalid: float = 0.5) -> LabelSample:
        """Read the targets of ``n_tiles`` samples spread evenly over the dataset (all of them
        when there are fewer) and fail when labels do not fit.

        A label file whose pixels (among those not ignored on purpose) fall outside the classes,
        or have colours missing from the colour map, for more than ``max_invalid`` of them is a
        wrong configuration (a colour mask read as values, labels 1/2 for classes 0/1, 255 for
        "no label"...), not a few stray pixels: this is what ``rsfm check --data`` runs, so the
        error comes before training rather than as a warning per tile. Nothing is logged per
        tile while it reads. Other tasks than segmentation are not checked.

        Args:
            n_tiles: Number of samples (chips or tiles) whose targets are read; see
                :func:`~rsfm.data.splits.spread_indices`.
            max_invalid: Largest share of invalid pixels per label file that passes.

        Returns:
            The counts read.

        Raises:
            DataError: Names each offending label file, its share of invalid pixels and the
                values (or colours) found, with the classes and how to map them.
        """
        if self.task == "detection" and len(self):
            self.check_boxes()
            return LabelSample()
        if self.task != "segmentation" or len(self) == 0:
            return LabelSample()
        self._label_log = []
        self._classes_seen = set()
        read = spread_indices(len(self), n_tiles)
        where = (f"all {len(self)} samples" if len(read) == len(self)
                 else f"{len(read)} samples spread over the {len(self)}")
        try:
            for i in read:
                self.read_target(i)
            log_ = self._label_log
        finally:
            self._label_log = None
        per_file: dict[str, LabelCount] = {}
        for path, count in log_:
            acc = per_file.setdefault(path, LabelCount())
            acc.labelled += count.labelled
            acc.invalid += count.invalid
            acc.nan += count.nan
            acc.values.extend(v for v in count.values if v not in acc.values)
        bad = {p: c for p, c in per_file.items()
               if c.invalid and c.invalid > max_invalid * (c.labelled + c.invalid)}
        if bad:
            lines = [f"'{p}': {100 * c.invalid / (c.labelled + c.invalid):.0f}% of its labelled "
                     f"pixels have {'colours' if self.label_rules.color_map else 'values'} "
                     f"{c.values[:10]}" for p, c in list(bad.items())[:5]]
            classes = ", ".join(f"{i}={n}" for i, n in enumerate(self.spec.class_names))
            if self.label_rules.color_map:
                hint = ("Add the colours to color_map (colour -> class id), or check that these "
                        "files are colour masks.")
            elif any(isinstance(v, float) and not float(v).is_integer()
                     for c in bad.values() for v in c.values):
                hint = ("Labels are integer class ids; fractional values come from a label "
                        "raster resampled with bilinear/cubic interpolation (resample labels "
                        "with nearest neighbour) or from a probability map.")
            else:
                hint = ("Map the values to class ids with label_map (e.g. {255: 1}), list "
                        "'no label' values in label_ignore_values, or declare the classes.")
                if any(inspect_raster(p).count >= 3 for p in bad if not is_vector_file(p)):
                    hint += (" A 3-band label looks like a colour mask: give color_map "
                             "(colour -> class id).")
            raise DataError(
                f"Labels outside the classes ({classes}) for most pixels of {where}:\n  " + "\n  ".join(lines) + f"\n{hint}"
            )
        labelled = sum(c.labelled for c in per_file.values())
        invalid = sum(c.invalid for c in per_file.values())
        nan = sum(c.nan for c in per_file.values())
        if nan:
            log.info("%s label pixel(s) of %s are NaN (e.g. '%s'); they are "
                     "read as 'no label' (ignore_index %d).", f"{nan:,}",
                     where, next(p for p, c in per_file.items() if c.nan),
                     self.ignore_index)
        missing = [i for i in range(self.spec.num_classes) if i not in self._classes_seen]
        if missing and invalid and invalid >= 0.01 * (labelled + invalid):
            # e.g. a 0/255 water mask for classes [dry, water]: 255 is not class 1, so water
            # is never learnt; a few stray values do not stop training, a class they hide does
            found = sorted({v for c in per_file.values() for v in c.values})[:10]
            names = [f"{i}={self.spec.class_names[i]!r}" for i in missing]
            what = "colours" if self.label_rules.color_map else "values"
            key = "color_map" if self.label_rules.color_map else "label_map"
            example = (f" (e.g. label_map: {{{found[0]!r}: {missing[0]}}})"
                       if key == "label_map" and len(missing) == 1 and len(found) == 1 else "")
            raise DataError(
                f"Class(es) {', '.join(names)} never appear in the labels of {where}, while {invalid:,} pixels "
                f"({100 * invalid / (labelled + invalid):.1f}%) have {what} {found} that are no "
                f"class (e.g. '{next(p for p, c in per_file.items() if c.invalid)}'). Map them "
                f"to their class with {key}{example}, or list 'no label' values in "
                "label_ignore_values."
            )
        return LabelSample(len(log_), labelled, invalid, nan, files=tuple(per_file),
                           classes_seen=tuple(sorted(int(c) for c in self._classes_seen)),
                           complete=len(read) == len(self))

    def check_boxes(self, limit: int = 2000) -> BoxCount:
        """Read the boxes of the first ``limit`` samples (annotations only, no image pixels);
        fail when no box is usable, warn with the counts of clipped and dropped ones.

        Returns:
            The counts (also in ``report.boxes``).

        Raises:
            DataError: Every box lies outside its image or is empty, or (all samples read) the
                annotations hold no box at all; names an annotation file.
        """
        self.report.boxes, self.report.box_examples = BoxCount(), {}
        n = min(limit, len(self))
        kept = sum(len(self.read_target(i).get("boxes", ())) for i in range(n))
        count, ex = self.report.boxes, dict(self.report.box_examples)  # (what the reader counted)
        empty = ex.pop("no box", "no annotation file")
        where = f"the first {n} samples" if n < len(self) else f"all {n} samples"
        if count.total and not kept:
            raise DataError(
                f"No usable box in the annotations of {where}: {count.total} box(es), "
                f"{count.outside} outside their image, {count.zero_size} zero-size, "
                f"{count.small} too small once clipped (e.g. {next(iter(ex.values()), empty)}). "
                "Boxes "
                "are pixel coordinates (xmin, ymin, xmax, ymax) of their own image; check that "
                "the annotation files belong to these images and use that convention."
            )
        if not kept and n == len(self):
            raise DataError(f"The annotations of {where} hold no box (e.g. {empty}); "
                            "detection needs objects to learn from.")
        dropped = count.outside + count.zero_size + count.small
        if count.clipped or dropped:
            parts = [f"{v} {k}" for k, v in (("clipped to their image", count.clipped),
                                              ("outside their image (dropped)", count.outside),
                                              ("zero-size (dropped)", count.zero_size),
                                              ("too small once clipped (dropped)", count.small))
                     if v]
            log.warning("Boxes of %s: %d read, %d used; %s. E.g. %s", where, count.total,
                        count.kept, ", ".join(parts),
                        "; ".join(f"{k}: {v}" for k, v in ex.items()))
        return count

    def read_target(self, index: int) -> dict[str, np.ndarray]:
        """The target of sample ``index`` (mask or boxes/labels) without reading the image."""
        raise NotImplementedError

    def footprint(self, index: int) -> tuple[float, float, float, float] | None:
        """Map bounds (left, bottom, right, top) of sample ``index``; ``None`` if not georeferenced."""
        raise NotImplementedError

    def crs_of(self, index: int) -> Any:
        """CRS of sample ``index`` (``None`` when not georeferenced)."""
        raise NotImplementedError


def window_meta(path: str, col: int, row: int, width: int, height: int, info: Any) -> dict:
    """The ``meta`` entry of a sample: plain strings/tensors that ``default_collate`` stacks.

    ``transform`` is the window's affine (a, b, c, d, e, f) for writing predictions back.
    """
    t = info.transform  # spelled out: rasterio's window helpers cost more than the arithmetic
    values = [t.a, t.b, t.c + t.a * col + t.b * row, t.d, t.e, t.f + t.d * col + t.e * row]
    return {
        "path": str(path),
        "window": torch.tensor([col, row, width, height], dtype=torch.int64),
        "transform": torch.tensor(values, dtype=torch.float64),
        "crs": info.crs.to_string() if info.crs is not None else "",
    }

