"""Turn a raster window into a normalised image: band selection, nodata, indices, normalisation.

Shared by every rsfm dataset and by prediction. One :class:`ImageReader` reads what an
:class:`~rsfm.spec.InputSpec` says (bands, the files' band order, sensor, nodata, normalisation,
spectral indices); the per-file plan (which band indexes to read) is worked out once per file and
cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from rsfm.data.indices import IndexPlan, compute_index, plan_indices
from rsfm.data.normalize import Normalizer
from rsfm.data.rasters import (
    BandSelection,
    RasterInfo,
    inspect_raster,
    invalid_mask,
    outside_mask,
    read_window,
    select_bands,
)
from rsfm.errors import DataError
from rsfm.spec import InputSpec

__all__ = ["FilePlan", "ImageReader"]


@dataclass(frozen=True)
class FilePlan:
    """How to read one file: header, band selection, extra bands for indices, nodata."""

    info: RasterInfo
    selection: BandSelection
    read_indexes: tuple[int, ...]  # sorted union of selected and index-input bands
    indices: tuple[IndexPlan, ...]
    nodata: float | None


class ImageReader:
    """Read windows of image files as normalised float32 arrays, as ``spec`` says.

    Args:
        spec: The input spec: ``bands`` (matched against each file's bands), ``file_bands``,
            ``sensor``, ``nodata`` (overrides the files'), ``normalization`` and ``indices``
            (spectral indices appended as extra channels).
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.normalizer = Normalizer(spec.normalization)
        self._plans: dict[str, FilePlan] = {}
        self._positional_count: int | None = None  # band count of the first file read by position

    @property
    def band_names(self) -> list[str]:
        """Names of the channels read: the spec's bands, then its spectral indices."""
        return self.spec.channel_names

    def plan(self, path: str | Path) -> FilePlan:
        """Inspect ``path`` (once) and find the spec's bands in it.

        Raises:
            DataError: The file is unreadable, or (bands selected by position) it has another
                band count than the files before it.
            BandError: A band of the spec or an index input is not in the file.
        """
        key = str(path)
        found = self._plans.get(key)
        if found is not None:
            return found
        spec = self.spec
        info = inspect_raster(path)
        sel = select_bands(info, spec.bands, spec.file_bands, spec.sensor)
        if sel.by_position:  # files with another band count hold other bands there
            if self._positional_count is None:
                self._positional_count = info.count
            elif info.count != self._positional_count:
                raise DataError(
                    f"'{path}' has {info.count} bands but earlier files have "
                    f"{self._positional_count}, and bands {sel.names} are read by position; all "
                    "images of a dataset must have the same bands (check band counts, or name "
                    "the bands with descriptions or file_bands)."
                )
        plans: list[IndexPlan] = []
        if spec.indices:
            plans = plan_indices(spec.indices, sel.file_bands or (), f"'{path}'")
        read = sorted({*sel.indexes, *(p.a for p in plans), *(p.b for p in plans)})
        nodata = spec.nodata if spec.nodata is not None else info.nodata
        plan = FilePlan(info, sel, tuple(read), tuple(plans), nodata)
        self._plans[key] = plan
        return plan

    def read(
        self, path: str | Path, window: Window | None = None, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read and normalise one window of one file.

        Returns:
            ``(image, bad)``: float32 ``(C, H, W)`` with invalid values at 0, and the boolean
            ``(H, W)`` mask of invalid pixels. When ``out`` (float32, the right shape) is given
            and no band reordering or index is needed, the image is read and normalised in it.
        """
        plan = self.plan(path)
        is_float = np.dtype(plan.info.dtype).kind == "f"
        # GDAL converts to float32 while reading: one array per tile, normalised in place.
        h = plan.info.height if window is None else int(window.height)
        w = plan.info.width if window is None else int(window.width)
        direct = (out is not None and not plan.indices and out.dtype == np.float32
                  and out.shape == (len(plan.read_indexes), h, w)
                  and list(plan.read_indexes) == list(plan.selection.indexes))
        raw = read_window(path, window, plan.read_indexes, out_dtype="float32",
                          out=out if direct else None)
        pos = {b: i for i, b in enumerate(plan.read_indexes)}
        if plan.indices:
            _, bad_all = invalid_mask(raw, plan.nodata, check_finite=is_float)
            extra = [compute_index(raw[pos[p.a]], raw[pos[p.b]], bad_all) for p in plan.indices]
        order = [pos[b] for b in plan.selection.indexes]
        sel = raw if order == list(range(len(raw))) else raw[order]
        bad_values, bad = invalid_mask(sel, plan.nodata, check_finite=is_float)
        edge = outside_mask(window, plan.info.width, plan.info.height)
        if edge is not None:  # padding past the scene edge is nodata, whatever was filled in
            bad = bad | edge
            bad_values = bad_values | edge[None]
        # bad_values is all False when nothing can be invalid; the normaliser then skips masking
        image = self.normalizer(sel, bad_values, inplace=True, finite=not is_float)
        if plan.indices:
            bad = bad | bad_all
            image = np.concatenate([image, np.stack(extra)], axis=0)
        return image, bad

    def check_stack(self, paths: Sequence[str | Path]) -> None:
        """Fail unless the time steps share size, CRS and transform.

        Raises:
            DataError: Names the first file and the one that differs.
        """
        first = self.plan(paths[0]).info
        for p in paths[1:]:
            info = self.plan(p).info
            if (info.width, info.height, info.crs, info.transform) != (
                first.width, first.height, first.crs, first.transform
            ):
                raise DataError(
                    f"Time steps '{paths[0]}' and '{p}' are not co-registered (size, CRS or "
                    "transform differ); resample them onto one grid first."
                )

    def read_stack(
        self, paths: Sequence[str | Path], window: Window | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read co-registered files in time order as ``(C, T, H, W)``.

        A pixel is marked invalid only when it is invalid at every time step (a cloud on one date
        should not remove the label).

        Raises:
            DataError: The time steps are not on the same grid.
        """
        self.check_stack(paths)
        images, bads = [], []
        for p in paths:
            img, bad = self.read(p, window)
            images.append(img)
            bads.append(bad)
        return np.stack(images, axis=1), np.logical_and.reduce(bads)

