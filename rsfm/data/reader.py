"""Turn a raster window into a normalised image: band selection, nodata, indices, normalisation.

Shared by the chip and scene datasets. One :class:`ImageReader` holds the user's choices; the
per-file plan (which band indexes to read) is worked out once per file and cached.
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
    _try_band,
    inspect_raster,
    invalid_mask,
    read_window,
    select_bands,
)
from rsfm.errors import DataError

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
    """Read windows of image files as normalised float32 arrays.

    Args:
        bands: Band names or 1-based indexes to read (``None``: all bands of the file).
        file_bands: The files' band order when they carry no band descriptions.
        sensor: Sensor of the files (band order, resolution of bare names like ``B5``).
        nodata: Override of the files' nodata value.
        normalizer: Normalisation (default: none).
        indices: Spectral index names appended as extra channels (``["NDVI"]``).
    """

    def __init__(
        self,
        bands: Sequence[str | int] | None = None,
        file_bands: Sequence[str] | None = None,
        sensor: str | None = None,
        nodata: float | None = None,
        normalizer: Normalizer | None = None,
        indices: Sequence[str] = (),
    ) -> None:
        self.bands = None if bands is None else list(bands)
        self.file_bands = None if file_bands is None else list(file_bands)
        self.sensor = sensor
        self.nodata = nodata
        self.normalizer = normalizer or Normalizer("none")
        self.indices = [i.upper() for i in indices]
        self._plans: dict[str, FilePlan] = {}
        self.band_names: list[str] | None = None  # fixed by the first file

    def plan(self, path: str | Path) -> FilePlan:
        """Inspect ``path`` (once) and check it gives the same bands as the files before it.

        Raises:
            DataError: The file is unreadable or yields different bands than the first file.
            BandError: A requested band or index input is not in the file.
        """
        key = str(path)
        found = self._plans.get(key)
        if found is not None:
            return found
        info = inspect_raster(path)
        sel = select_bands(info, self.bands, self.file_bands, self.sensor)
        plans: list[IndexPlan] = []
        if self.indices:
            names = sel.file_names or ()
            file_cat = [_try_band(n, self.sensor) for n in names] if names else []
            plans = plan_indices(self.indices, file_cat, f"'{path}'")
        read = sorted({*sel.indexes, *(p.a for p in plans), *(p.b for p in plans)})
        names = [*sel.names, *self.indices]
        if self.band_names is None:
            self.normalizer.check_bands(len(sel.names), sel.names)
            self.band_names = names
        elif names != self.band_names:
            raise DataError(
                f"'{path}' gives bands {names} but earlier files gave {self.band_names}; all "
                "images of a dataset must have the same bands (check band descriptions/counts)."
            )
        nodata = self.nodata if self.nodata is not None else info.nodata
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
        edge = _outside(window, plan.info.width, plan.info.height)
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


def _outside(window: Window | None, width: int, height: int) -> np.ndarray | None:
    """``(H, W)`` mask of the window's pixels that lie outside the raster, or None if none do."""
    if window is None:
        return None
    c0, r0 = int(window.col_off), int(window.row_off)
    h, w = int(window.height), int(window.width)
    if c0 >= 0 and r0 >= 0 and c0 + w <= width and r0 + h <= height:
        return None
    rows = np.arange(r0, r0 + h)
    cols = np.arange(c0, c0 + w)
    return ((rows < 0) | (rows >= height))[:, None] | ((cols < 0) | (cols >= width))[None, :]
