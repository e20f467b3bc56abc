"""Clean-up of class rasters: probability threshold, small-object removal, hole filling.

Connected components come from GDAL's sieve filter (``rasterio.features.sieve``), which merges
regions smaller than a size into their largest neighbour. On its own it would both remove small
objects *and* fill small holes; restricting which pixels may change separates the two:

- :func:`remove_small_objects`: only non-background pixels may change (small objects become the
  neighbouring class, i.e. background for a binary map);
- :func:`fill_holes`: only background pixels may change (small background regions enclosed by
  an object take the object's class).

:func:`clean_raster` applies them to a GeoTIFF strip by strip with a halo of ``size`` rows, so a
large scene never sits in memory whole yet results equal the whole-image filter: a region that
reaches the halo's edge spans more than ``size`` rows, so it has more than ``size`` pixels and
is kept either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.features import sieve
from rasterio.windows import Window

from rsfm.errors import ConfigError

__all__ = ["apply_threshold", "clean_array", "clean_raster", "fill_holes", "remove_small_objects"]

_SIEVE_DTYPES = ("uint8", "uint16", "int16", "int32")


def apply_threshold(probs: torch.Tensor | np.ndarray, threshold: float, positive: int = 1) -> np.ndarray:
    """Binary classes from probabilities ``(K, H, W)``: ``positive`` where ``p >= threshold``.

    Unlike an argmax (threshold 0.5 for two classes) this trades precision for recall, e.g. a
    low threshold to miss fewer buildings.
    """
    p = torch.as_tensor(probs)[positive]
    return (p >= threshold).to(torch.uint8).numpy()


def _check(classes: np.ndarray) -> np.ndarray:
    if classes.ndim != 2:
        raise ConfigError(f"Class rasters must be 2-D (H, W), got shape {classes.shape}.")
    if classes.dtype.name not in _SIEVE_DTYPES:
        return classes.astype(np.int32)
    return classes


def _sieve(classes: np.ndarray, size: int, valid: np.ndarray | None, connectivity: int) -> np.ndarray:
    if connectivity not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity}.")
    mask = None if valid is None else valid.astype(np.uint8)
    return sieve(_check(classes), size=int(size), mask=mask, connectivity=connectivity)


def remove_small_objects(
    classes: np.ndarray, min_size: int, background: int = 0, nodata: int | None = None,
    connectivity: int = 4,
) -> np.ndarray:
    """Remove objects (non-background regions) with fewer than ``min_size`` pixels.

    An object's size counts holes smaller than ``min_size`` inside it (GDAL merges those first).
    Nodata pixels are neither changed nor used as neighbours.
    """
    if min_size <= 1:
        return classes
    valid = None if nodata is None else classes != nodata
    sieved = _sieve(classes, min_size, valid, connectivity).astype(classes.dtype)
    return np.where(classes == background, classes, sieved)


def fill_holes(
    classes: np.ndarray, max_hole_size: int, background: int = 0, nodata: int | None = None,
    connectivity: int = 4,
) -> np.ndarray:
    """Fill background regions with fewer than ``max_hole_size`` pixels with their surrounding class."""
    if max_hole_size <= 1:
        return classes
    valid = None if nodata is None else classes != nodata
    sieved = _sieve(classes, max_hole_size, valid, connectivity).astype(classes.dtype)
    return np.where(classes == background, sieved, classes)


def clean_array(
    classes: np.ndarray, min_object_size: int = 0, max_hole_size: int = 0, background: int = 0,
    nodata: int | None = None, connectivity: int = 4,
) -> np.ndarray:
    """:func:`remove_small_objects` then :func:`fill_holes` (the classic building-map clean-up)."""
    out = remove_small_objects(classes, min_object_size, background, nodata, connectivity)
    return fill_holes(out, max_hole_size, background, nodata, connectivity)


def clean_raster(
    src: str | Path, dst: str | Path, *, min_object_size: int = 0, max_hole_size: int = 0,
    background: int = 0, connectivity: int = 4, strip_rows: int = 1024,
) -> Path:
    """Clean a class GeoTIFF into ``dst`` (same grid, colour table and tags), strip by strip.

    Memory holds ``strip_rows + 2 * max(min_object_size, max_hole_size)`` rows of the raster.

    Args:
        src: Class raster (band 1), e.g. written by :func:`rsfm.predict`.
        dst: Output path (tiled, deflate-compressed GeoTIFF).
        min_object_size: Remove objects smaller than this many pixels (0: keep all).
        max_hole_size: Fill holes smaller than this many pixels (0: keep all).
        background: The background class id.
        connectivity: 4 or 8 (pixel neighbourhood of a region).
        strip_rows: Rows written per step (a multiple of the block height is fastest).
    """
    dst = Path(dst)
    halo = max(min_object_size, max_hole_size)
    with rasterio.open(src) as s:
        profile = s.profile.copy()
        profile.update(driver="GTiff", tiled=True, blockxsize=512 if s.width >= 512 else 256,
                       blockysize=512 if s.height >= 512 else 256, compress="deflate")
        try:
            cmap = s.colormap(1)
        except ValueError:
            cmap = None
        with rasterio.open(dst, "w", **profile) as d:
            if cmap:
                d.write_colormap(1, cmap)
            d.update_tags(**s.tags())
            d.update_tags(1, **s.tags(1))
            d.set_band_description(1, s.descriptions[0] or "class")
            nodata = None if s.nodata is None else int(s.nodata)
            for r in range(0, s.height, strip_rows):
                n = min(strip_rows, s.height - r)
                a, b = max(r - halo, 0), min(r + n + halo, s.height)
                arr = s.read(1, window=Window(0, a, s.width, b - a))
                out = clean_array(arr, min_object_size, max_hole_size, background, nodata, connectivity)
                d.write(out[r - a : r - a + n][None], window=Window(0, r, s.width, n))
    return dst
