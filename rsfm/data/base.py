"""What every rsfm dataset shares: the sample format, label handling options and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rsfm.data.labels import map_label_values
from rsfm.data.normalize import Normalizer
from rsfm.data.reader import ImageReader
from rsfm.errors import ConfigError

__all__ = ["TASKS", "DataReport", "GeoDataset"]

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
    """

    skipped_nodata: int = 0
    skipped_items: list[str] = field(default_factory=list)
    out_of_range_pixels: int = 0
    unknown_color_pixels: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for logs and YAML)."""
        return {
            "skipped_nodata": self.skipped_nodata,
            "skipped_items": list(self.skipped_items),
            "out_of_range_pixels": self.out_of_range_pixels,
            "unknown_color_pixels": self.unknown_color_pixels,
        }


class GeoDataset(Dataset):
    """Base of :class:`~rsfm.data.chips.ChipDataset` and :class:`~rsfm.data.scenes.SceneDataset`.

    Subclasses set ``self.items`` and implement ``_load(i) -> (image, bad, target, meta)``.

    Args (keyword-only, shared by every dataset):
        task: ``"segmentation"``, ``"detection"`` or ``"none"``.
        classes: Class names; index = class id.
        bands: Band names (catalog or file descriptions) or 1-based indexes to read.
        file_bands: The files' band order when they have no band descriptions.
        sensor: Sensor of the files (band order; resolves bare names such as ``B5``).
        nodata: Nodata override (else the file's; NaN/inf are always invalid).
        mean, std: Per-band statistics (adapter card or ``rsfm stats``) for ``"stats"``
            normalisation; ``value_scale`` multiplies raw values first.
        normalize: ``"stats"``, ``"minmax"``, ``"standardize"`` or ``"none"``.
        indices: Spectral indices appended as channels (``["NDVI"]``).
        ignore_index: Target value of invalid pixels (nodata, unknown classes); default -1.
        label_map: Raw label value -> class id.
        label_ignore_values: Raw label values meaning "no label" (e.g. -1, 255).
        on_invalid_label: ``"warn"``, ``"error"`` or ``"ignore"`` for out-of-range values.
        align_labels: Resample label rasters on another grid onto the image grid (nearest).
        transforms: Callable on the sample dict (see :func:`rsfm.data.transforms.build_transforms`).
    """

    def __init__(
        self,
        *,
        task: str = "segmentation",
        classes: Sequence[str] | None = None,
        bands: Sequence[str | int] | None = None,
        file_bands: Sequence[str] | None = None,
        sensor: str | None = None,
        nodata: float | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        value_scale: float = 1.0,
        normalize: str | None = None,
        indices: Sequence[str] = (),
        ignore_index: int = -1,
        label_map: Mapping[int, int] | None = None,
        label_ignore_values: Sequence[int] = (),
        on_invalid_label: str = "warn",
        align_labels: bool = False,
        transforms: Callable[[dict], dict] | None = None,
    ) -> None:
        if task not in TASKS:
            raise ConfigError(f"task {task!r} is not one of {list(TASKS)}.")
        if on_invalid_label not in ("warn", "error", "ignore"):
            raise ConfigError(
                f"on_invalid_label {on_invalid_label!r} is not one of ['warn', 'error', 'ignore']."
            )
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self.ignore_index = int(ignore_index)
        self.label_map = dict(label_map) if label_map else None
        self.label_ignore_values = tuple(label_ignore_values)
        self.on_invalid_label = on_invalid_label
        self.align_labels = bool(align_labels)
        self.transforms = transforms
        self.reader = ImageReader(
            bands=bands, file_bands=file_bands, sensor=sensor, nodata=nodata,
            normalizer=Normalizer(normalize, mean, std, value_scale), indices=indices,
        )
        self.report = DataReport()
        self.items: list[Any] = []

    # -- public attributes other modules rely on
    @property
    def bands(self) -> list[str]:
        """Names of the image channels (selected bands, then spectral indices)."""
        return list(self.reader.band_names or [])

    @property
    def stats(self) -> dict[str, Any]:
        """The :class:`DataReport` as a dict (skipped all-nodata tiles, bad label counts)."""
        return self.report.as_dict()

    @property
    def num_classes(self) -> int | None:
        """Number of classes (``None`` when ``classes`` was not given)."""
        return len(self.classes) if self.classes is not None else None

    def __len__(self) -> int:
        return len(self.items)

    # -- helpers for subclasses
    def _map_mask(self, raw: np.ndarray, bad: np.ndarray | None, source: str) -> np.ndarray:
        if self.classes is None:
            raise ConfigError("Segmentation labels need classes=[...] (names, index = class id).")
        mask, n_bad = map_label_values(
            raw, len(self.classes), self.ignore_index, self.label_map, self.label_ignore_values,
            self.on_invalid_label, source,
        )
        self.report.out_of_range_pixels += n_bad
        if bad is not None:
            mask[bad] = self.ignore_index
        return mask

    def _check_label_grid(self, image: Any, label: Any) -> None:
        """Same grid, or (``align_labels=True``) two georeferenced files that can be aligned."""
        from rsfm.data.rasters import check_same_grid

        if self.align_labels and image.georeferenced and label.georeferenced:
            return
        check_same_grid(image, label)

    def _read_label(self, label: Any, image: Any, window: Any) -> np.ndarray:
        """Band 1 of a label raster for ``window`` of ``image`` (resampled if misaligned)."""
        from rsfm.data.rasters import inspect_raster, read_aligned, read_window

        linfo = inspect_raster(label)
        if self.align_labels and (linfo.width, linfo.height, linfo.crs, linfo.transform) != (
            image.width, image.height, image.crs, image.transform
        ):
            return read_aligned(label, image, window)
        return read_window(label, window, [1])[0]

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
        from torch.utils.data import get_worker_info

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
        for i in range(len(self)):
            self.read_target(i)
        return self.stats

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
