"""Clean-up of class rasters (probability threshold, small-object removal, hole filling) and of
instance masks (threshold, crop to the instance).

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

Instance masks (Mask R-CNN's soft ``(N, 1, H, W)`` tile masks) are thresholded and cropped to
the pixels that pass (:func:`crop_instance_masks`), then bit-packed (:class:`InstanceMask`): a
scene's detections cost one bit per pixel of their extents, never a scene-sized array each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.features import sieve
from rasterio.windows import Window

from rsfm.errors import ConfigError

__all__ = [
    "MASK_THRESHOLD",
    "InstanceMask",
    "apply_threshold",
    "clean_array",
    "clean_raster",
    "crop_instance_masks",
    "fill_holes",
    "remove_small_objects",
]

_SIEVE_DTYPES = ("uint8", "uint16", "int16", "int32")
MASK_THRESHOLD = 0.5  # torchvision's and detectron2's cut of soft instance masks


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


# ----------------------------------------------------------------------------- instance masks
@dataclass(frozen=True, eq=False)  # arrays have no single truth value
class InstanceMask:
    """One detection's instance mask in scene pixels, cropped to the pixels that passed the
    threshold and bit-packed (1 bit per pixel of its extent).

    Attributes:
        row: Scene row of the crop's top-left pixel.
        col: Scene column of the crop's top-left pixel.
        height: Crop height in pixels (0 when no pixel passed the threshold).
        width: Crop width in pixels (0 when no pixel passed the threshold).
        bits: ``np.packbits`` of the ``(height, width)`` bool crop.
    """

    row: int
    col: int
    height: int
    width: int
    bits: np.ndarray

    @classmethod
    def from_array(cls, mask: np.ndarray, row: int, col: int) -> InstanceMask:
        """Pack a ``(h, w)`` bool mask whose top-left pixel is scene pixel ``(row, col)``."""
        h, w = mask.shape
        return cls(int(row), int(col), int(h), int(w), np.packbits(mask, axis=None))

    @property
    def empty(self) -> bool:
        """No pixel passed the threshold."""
        return self.height == 0 or self.width == 0

    def array(self) -> np.ndarray:
        """The ``(height, width)`` bool mask."""
        n = self.height * self.width
        return np.unpackbits(self.bits, count=n).reshape(self.height, self.width).astype(bool)


def crop_instance_masks(
    masks: torch.Tensor, row: int, col: int, size: tuple[int, int],
    threshold: float = MASK_THRESHOLD,
) -> list[InstanceMask]:
    """Threshold a tile's soft instance masks and crop each to its pixels inside the scene.

    Args:
        masks: ``(N, 1, h, w)`` or ``(N, h, w)`` probabilities of one tile (torchvision Mask
            R-CNN's ``masks``), on any device.
        row: Scene row of the tile's top-left pixel (negative for the reflect-padded margin).
        col: Scene column of the tile's top-left pixel.
        size: The scene's ``(height, width)``: pixels outside it (reflect padding) are dropped.
        threshold: A pixel belongs to the instance where its probability is ``>= threshold``.

    Returns:
        One :class:`InstanceMask` per mask, in order (empty when no pixel passes).
    """
    n, h, w = masks.shape[0], masks.shape[-2], masks.shape[-1]
    # the tile's part inside the scene, in tile pixels
    r0, c0 = max(0, -row), max(0, -col)
    r1, c1 = min(h, size[0] - row), min(w, size[1] - col)
    if n == 0:
        return []
    if r1 <= r0 or c1 <= c0:
        return [InstanceMask.from_array(np.zeros((0, 0), bool), row, col) for _ in range(n)]
    fg = (masks.reshape(n, h, w)[:, r0:r1, c0:c1] >= threshold).cpu()  # (N, h', w') bool
    rows, cols = fg.any(2), fg.any(1)  # (N, h'), (N, w'): rows / columns holding the instance
    out = []
    for i in range(n):
        ys, xs = torch.nonzero(rows[i]).flatten(), torch.nonzero(cols[i]).flatten()
        if len(ys) == 0:
            out.append(InstanceMask.from_array(np.zeros((0, 0), bool), row + r0, col + c0))
            continue
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        out.append(InstanceMask.from_array(fg[i, y0:y1, x0:x1].numpy(), row + r0 + y0,
                                           col + c0 + x0))
    return out
