"""Open and validate rasters, select bands by name, and read windows lazily.

Every read goes through :func:`get_handle`, which keeps one open rasterio dataset per file *per
process*: DataLoader workers are forked from the main process, and a GDAL handle must not be shared
across a fork, so the cache is dropped (and files re-opened) whenever the process id changes.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from rsfm.bands import Band, declared_band, match_bands, sensor_bands
from rsfm.errors import BandError, DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "BandSelection",
    "RasterInfo",
    "bands_of_file",
    "check_same_grid",
    "file_band_names",
    "get_handle",
    "inspect_raster",
    "invalid_mask",
    "list_images",
    "outside_mask",
    "read_aligned",
    "read_window",
    "select_bands",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt")

_MAX_HANDLES = 64  # chip folders have thousands of files: keep the most recent open only
_handles: OrderedDict[str, Any] = OrderedDict()
_handles_pid: int | None = None


def _open(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise DataError(f"Raster file not found: '{path}'.")
    if path.is_dir():
        raise DataError(f"'{path}' is a directory, not a raster file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # PNG/JPEG chips
            return rasterio.open(path)
    except RasterioIOError as err:
        raise DataError(
            f"Cannot read '{path}' as a raster (not a GeoTIFF/PNG/JPEG GDAL can open, or a "
            f"truncated/corrupt file): {err}"
        ) from None


def list_images(folder: str | Path) -> list[Path]:
    """Raster files directly in ``folder`` (sorted by name).

    Raises:
        DataError: Missing folder, or no raster files in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        hint = (" Wildcards are not expanded: give the folder, or a list of files."
                if any(c in str(folder) for c in "*?[") else "")
        if folder.is_file():
            hint = " It is a file; give the folder that holds the images (or a list of files)."
        raise DataError(f"Image folder not found: '{folder}'.{hint}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        found = sorted({p.suffix.lower() or p.name for p in folder.iterdir() if p.is_file()})
        boxes = [s for s in found if s in (".xml", ".txt", ".json")]
        if boxes:
            hint = (f" It holds annotation files ({', '.join(boxes)}): box annotations (PASCAL "
                    "VOC, YOLO, COCO) go with data.kind: chips (data.label_format: voc, yolo or "
                    "coco), paired with the images by file name; kind: scenes takes vector "
                    "labels (GeoPackage, GeoJSON...).")
        elif found:
            hint = f" It holds {', '.join(found[:8])} files."
        else:
            hint = " The folder is empty."
        raise DataError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) in '{folder}'.{hint}")
    return files


def get_handle(path: str | Path) -> Any:
    """The open rasterio dataset for ``path`` in this process (opened on first use).

    Args:
        path: Raster file.

    Returns:
        A ``rasterio.DatasetReader`` shared by every read of this file in this process.

    Raises:
        DataError: The file is missing or GDAL cannot open it.
    """
    global _handles_pid
    pid = os.getpid()
    if _handles_pid != pid:
        # Forked worker: the inherited handles belong to the parent. Forget them without closing
        # (closing would act on file state shared with the parent) and re-open lazily.
        _handles.clear()
        _handles_pid = pid
    key = str(path)
    ds = _handles.get(key)
    if ds is None:
        ds = _open(path)
        _handles[key] = ds
        if len(_handles) > _MAX_HANDLES:
            _handles.popitem(last=False)[1].close()
    else:
        _handles.move_to_end(key)
    return ds


@dataclass(frozen=True)
class RasterInfo:
    """What a dataset needs to know about a raster without reading its pixels."""

    path: str
    width: int
    height: int
    count: int
    dtype: str
    crs: Any  # rasterio CRS or None
    transform: Any  # affine.Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]
    driver: str
    colorinterp: tuple[str, ...] = ()

    @property
    def georeferenced(self) -> bool:
        """True when the file has a CRS (PNG/JPEG chips have none)."""
        return self.crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units (pixel units when not georeferenced)."""
        t = self.transform
        xs = [t.c, t.c + t.a * self.width]
        ys = [t.f, t.f + t.e * self.height]
        return min(xs), min(ys), max(xs), max(ys)


def inspect_raster(path: str | Path) -> RasterInfo:
    """Read the header of a raster (size, bands, CRS, transform, nodata, band descriptions).

    Raises:
        DataError: Missing, unreadable or corrupt file (the message names it).
    """
    ds = get_handle(path)
    try:
        # A truncated TIFF opens fine and fails on the first pixel read: touch the first and the
        # last block (the last is the one a truncation cuts).
        ds.read(1, window=Window(0, 0, 1, 1))
        ds.read(ds.count, window=Window(ds.width - 1, ds.height - 1, 1, 1))
    except RasterioIOError as err:
        _handles.pop(str(path), None)
        raise DataError(f"'{path}' is truncated or corrupt (reading failed: {err}).") from None
    if str(ds.dtypes[0]).startswith("complex"):  # read as float, the imaginary part would vanish
        raise DataError(f"'{path}' holds complex values ({ds.dtypes[0]}, e.g. SAR single-look "
                        "complex data); rsfm reads real-valued bands. Convert it first to "
                        "amplitude or intensity (in dB), e.g. with SNAP or gdal_calc.py.")
    return RasterInfo(
        path=str(path), width=ds.width, height=ds.height, count=ds.count, dtype=ds.dtypes[0],
        crs=ds.crs, transform=ds.transform, nodata=ds.nodata,
        descriptions=tuple(ds.descriptions), driver=ds.driver,
        colorinterp=tuple(c.name for c in ds.colorinterp),
    )


def check_same_grid(image: RasterInfo, label: RasterInfo, tolerance_px: float = 0.01,
                    aligning: bool = False) -> None:
    """Fail unless ``image`` and ``label`` share size, CRS and transform.

    Corners are compared to ``tolerance_px`` of a pixel, since pixel sizes written by different
    tools differ in the last float digits (Sen1Floods11 labels do). ``aligning``: the caller
    resamples labels onto the image grid but cannot here (a file is not georeferenced), so the
    advice is not to align.

    Raises:
        DataError: Names both files and every property that differs.
    """
    problems = []
    if (image.width, image.height) != (label.width, label.height):
        problems.append(
            f"size {image.width}x{image.height} vs {label.width}x{label.height} (width x height)"
        )
    if image.georeferenced and label.georeferenced:
        if image.crs != label.crs:
            problems.append(f"CRS {image.crs.to_string()} vs {label.crs.to_string()}")
        else:
            px = max(abs(image.transform.a), abs(image.transform.e))
            worst = 0.0
            for col, row in ((0, 0), (image.width, 0), (0, image.height), (image.width, image.height)):
                xa, ya = _apply(image.transform, col, row)
                xb, yb = _apply(label.transform, col, row)
                worst = max(worst, abs(xa - xb), abs(ya - yb))
            if worst > tolerance_px * px:
                problems.append(
                    f"transform {tuple(image.transform)[:6]} vs {tuple(label.transform)[:6]} "
                    f"(corners differ by {worst / px:.3g} pixels)"
                )
    elif image.georeferenced != label.georeferenced:
        which = image.path if not image.georeferenced else label.path
        problems.append(f"'{which}' has no CRS while the other file has one")
    if problems and aligning:
        raise DataError(
            f"Image '{image.path}' and label '{label.path}' are not on the same grid: "
            + "; ".join(problems)
            + ". data.align_labels resamples labels by their georeferencing, so both files need "
            "a CRS and a transform: georeference the label (gdal_edit.py -a_srs -a_ullr) or "
            "write it on the image's pixel grid."
        )
    if problems:
        raise DataError(
            f"Image '{image.path}' and label '{label.path}' are not on the same grid: "
            + "; ".join(problems)
            + ". Set data.align_labels: true (Python: align_labels=True) to resample the label "
            "onto the image grid (nearest neighbour, done lazily per window), re-export it on "
            "the image grid (gdalwarp -te/-ts/-t_srs), or use vector labels, which are "
            "reprojected per window."
        )


def _apply(t: Any, x: float, y: float) -> tuple[float, float]:
    """Affine ``t`` applied to ``(x, y)`` (spelled out: affine deprecates ``*`` for this)."""
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


@dataclass(frozen=True)
class BandSelection:
    """Which bands of a file to read, under which names.

    Attributes:
        indexes: 1-based band indexes in the file, in output order.
        names: Output band names (the names of the requested bands, or the file's).
        bands: The requested bands (or the file's bands, for index requests), in output order.
        file_names: The names of all bands of the file (descriptions, ``file_bands`` or sensor),
            or ``None`` when the file does not say.
        file_bands: All bands of the file as :class:`~rsfm.bands.Band` (catalog bands where the
            name is known, declared bands otherwise), or ``None`` like ``file_names``.
        by_position: Some band was selected by its position in the file, not by its name.
    """

    indexes: tuple[int, ...]
    names: tuple[str, ...]
    bands: tuple[Band, ...]
    file_names: tuple[str, ...] | None
    file_bands: tuple[Band, ...] | None = None
    by_position: bool = False


def file_band_names(
    info: RasterInfo, file_bands: Sequence[str] | None = None, sensor: str | None = None
) -> tuple[str, ...] | None:
    """The names of a file's bands: ``file_bands``, else its descriptions, else the sensor's order,
    else ``RED, GREEN, BLUE`` for a 3-band file whose colour interpretation says exactly that
    (PNG/JPEG chips, RGB GeoTIFFs). Otherwise ``None`` (the order is unknown).

    Raises:
        DataError: ``file_bands`` (or the sensor's band list) does not match the file's band count.
    """
    if file_bands is not None:
        if len(file_bands) != info.count:
            raise DataError(
                f"'{info.path}' has {info.count} bands but file_bands lists {len(file_bands)}: "
                f"{list(file_bands)}. List one name per band of the file, in file order."
            )
        return tuple(file_bands)
    if info.descriptions and all(info.descriptions):
        return tuple(str(d) for d in info.descriptions)
    if sensor is not None:
        native = sensor_bands(sensor)
        if len(native) == info.count:
            return tuple(b.name for b in native)
        if sensor.lower() in ("rgb", "naip") and info.count in (3, 4):
            return tuple(b.name for b in native[: info.count])
        raise DataError(
            f"'{info.path}' has {info.count} bands and no band descriptions; sensor {sensor!r} has "
            f"{len(native)} bands, so the file's band order is unknown. Pass file_bands=[...]."
        )
    if info.count == 3 and sorted(info.colorinterp) == ["blue", "green", "red"]:
        return tuple(c.upper() for c in info.colorinterp)
    return None


def bands_of_file(
    file: str | Path | RasterInfo, file_bands: Sequence[str] | None = None,
    sensor: str | None = None,
) -> tuple[Band, ...]:
    """All bands of a file as :class:`~rsfm.bands.Band`, in file order.

    Named bands (see :func:`file_band_names`) become catalog bands when the catalog knows the
    name (``B8A``, ``VV``, ``RED``) and declared bands otherwise (``DEM``); the bands of a file
    that does not name them are ``band1``, ``band2``... (selected by position). Use it to read
    every band: ``InputSpec(bands=bands_of_file("scene.tif"))``.

    Raises:
        DataError: The file is unreadable, or ``file_bands``/``sensor`` do not fit it.
    """
    info = file if isinstance(file, RasterInfo) else inspect_raster(file)
    names = file_band_names(info, file_bands, sensor)
    if names is None:
        return tuple(declared_band(f"band{i}") for i in range(1, info.count + 1))
    return tuple(_named_band(n, sensor) for n in names)


@lru_cache(maxsize=4096)
def _named_band(name: str, sensor: str | None) -> Band:
    """The band a file (or a request) calls ``name``: catalog band, else a declared one (cached:
    chip folders ask for the same few names thousands of times)."""
    return declared_band(name, sensor=sensor)


def _position(band: Band | str) -> int | None:
    """N for a band called ``bandN`` (a file band selected by its 1-based position)."""
    name = band if isinstance(band, str) else band.name
    match = re.fullmatch(r"band(\d+)", name.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def select_bands(
    info: RasterInfo,
    bands: Sequence[Band | str | int] | None = None,
    file_bands: Sequence[str] | None = None,
    sensor: str | None = None,
) -> BandSelection:
    """Find requested bands in a file and return the 1-based indexes to read.

    The file's named bands are matched with :func:`rsfm.bands.match_bands` (the one band
    matcher: the same band first, then the same common name, so a request for ``NIR_NARROW``
    finds a band described ``B8A``). Files that do not name their bands are read by position:
    an integer is a 1-based band index and a band called ``band3`` is the third band (also when
    the file names its bands but none is called ``band3``).

    Args:
        info: The raster header (see :func:`inspect_raster`).
        bands: Bands (or names, or 1-based indexes) to read, in output order; ``None`` reads
            every band.
        file_bands: The file's band order when it has no band descriptions.
        sensor: Sensor of the file (gives the band order and resolves bare names like ``B5``).

    Raises:
        BandError: A band is not in the file, the file's bands are unnamed, an index is out of
            range, or two requests select the same band.
        DataError: ``file_bands`` does not match the band count.
    """
    names = file_band_names(info, file_bands, sensor)
    available = tuple(_named_band(n, sensor) for n in names) if names is not None else None
    if bands is None:
        out = available or bands_of_file(info)
        return BandSelection(tuple(range(1, info.count + 1)), tuple(b.name for b in out), out,
                             names, available, by_position=names is None)
    wanted = [b if isinstance(b, (Band, int)) else _named_band(str(b), sensor) for b in bands]
    hits = iter(match_bands([w for w in wanted if isinstance(w, Band)], available or ()))
    indexes: list[int] = []
    out_names: list[str] = []
    out_bands: list[Band] = []
    by_position = False
    for req in wanted:
        if isinstance(req, Band):
            hit = next(hits)
            i = hit + 1 if hit is not None else _position(req)
            by_position |= hit is None
            if i is None:
                twice = match_bands([req], available or ())[0]
                if twice is not None:
                    raise BandError(f"Bands {[getattr(w, 'name', w) for w in wanted]} select "
                                    f"band {names[twice]!r} of '{info.path}' twice.")
                if names is None:
                    raise BandError(
                        f"Cannot find band {req.name!r} in '{info.path}': the file has "
                        f"{info.count} bands without descriptions. State its band order with "
                        "file_bands=[...] (or sensor=...), or select bands by position "
                        "('band1', 'band2'...)."
                    )
                raise BandError(
                    f"Band {req.name!r} is not in '{info.path}'. The file's bands are "
                    f"{list(names)}."
                )
        else:
            i, by_position = int(req), True
        if not 1 <= i <= info.count:
            raise BandError(
                f"Band index {i} is out of range for '{info.path}', which has {info.count} "
                "bands (indexes are 1-based)."
            )
        indexes.append(i)
        if isinstance(req, Band):
            out_names.append(req.name)
            out_bands.append(req)
        else:
            out_names.append(names[i - 1] if names else f"band{i}")
            out_bands.append(available[i - 1] if available else declared_band(f"band{i}"))
    if len(set(indexes)) != len(indexes):
        raise BandError(f"Bands {out_names} select the same band of '{info.path}' twice.")
    return BandSelection(tuple(indexes), tuple(out_names), tuple(out_bands), names, available,
                         by_position)


def read_window(
    path: str | Path,
    window: Window | None,
    indexes: Sequence[int],
    out_shape: tuple[int, int] | None = None,
    out_dtype: str | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Read ``indexes`` (1-based) inside ``window`` from ``path``; pads past the raster edge.

    Args:
        path: Raster file (the per-process handle is reused).
        window: Pixel window; ``None`` reads the whole raster. May extend beyond the raster:
            the outside is filled with the file's nodata (or 0) so tiles keep their size.
        indexes: Bands to read.
        out_shape: Optional (H, W) to resample to (nearest), e.g. for decimated scans.
        out_dtype: Convert while reading (GDAL does it in the same pass, no extra copy).
        out: Array to read into (shape ``(len(indexes), H, W)``); returned.

    Returns:
        Array ``(len(indexes), H, W)`` in the file's dtype (or ``out_dtype``).

    Raises:
        DataError: The read fails (truncated or corrupt file).
    """
    ds = get_handle(path)
    kwargs: dict[str, Any] = {}
    if out_shape is not None:
        kwargs["out_shape"] = (len(indexes), *out_shape)
    if out_dtype is not None:
        kwargs["out_dtype"] = out_dtype
    try:
        if window is not None and (
            window.col_off < 0 or window.row_off < 0
            or window.col_off + window.width > ds.width or window.row_off + window.height > ds.height
        ):
            fill = ds.nodata if ds.nodata is not None else 0
            if isinstance(fill, float) and math.isnan(fill) and np.dtype(ds.dtypes[0]).kind != "f":
                fill = 0
            data = ds.read(list(indexes), window=window, boundless=True, fill_value=fill, **kwargs)
            if out is not None:
                out[...] = data
                return out
            return data
        if out is not None:
            kwargs.pop("out_dtype", None)  # the dtype of ``out`` decides
            return ds.read(list(indexes), window=window, out=out, **kwargs)
        return ds.read(list(indexes), window=window, **kwargs)
    except RasterioIOError as err:
        raise DataError(f"Reading {window} from '{path}' failed (truncated or corrupt?): {err}") from None


def invalid_mask(
    data: np.ndarray, nodata: float | None, axis: int = 0, check_finite: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-value and per-pixel invalidity of raw raster values.

    A *pixel* is invalid when any of its bands is NaN/inf, or when all its bands equal ``nodata``
    (GDAL's dataset-mask rule: a real dark pixel may have one band at 0). A *value* is invalid when
    it is NaN/inf or belongs to an invalid pixel; these become 0 after normalisation.

    Args:
        data: Raw values ``(C, ...spatial)`` (bands on ``axis``).
        nodata: The nodata value (``None`` or NaN for floats: only NaN/inf are invalid).
        axis: The band axis.
        check_finite: Look for NaN/inf (default: when ``data`` is float). Pass False for integer
            files read as float32, which cannot hold NaN.

    Returns:
        ``(bad_values, bad_pixels)``: boolean arrays shaped like ``data`` and like ``data`` without
        the band axis.
    """
    if check_finite is None:
        check_finite = data.dtype.kind == "f"
    if not check_finite and not _representable(nodata, data.dtype):
        # nothing can be invalid (integer file without nodata): skip the per-value passes
        shape = data.shape[:axis] + data.shape[axis + 1:]
        return np.zeros(data.shape, dtype=bool), np.zeros(shape, dtype=bool)
    nonfinite = ~np.isfinite(data) if check_finite else np.zeros(data.shape, dtype=bool)
    bad_pixels = nonfinite.any(axis=axis)
    if _representable(nodata, data.dtype):
        is_nd = data == np.asarray(nodata).astype(data.dtype)
        bad_pixels = bad_pixels | is_nd.all(axis=axis)
    return nonfinite | np.expand_dims(bad_pixels, axis), bad_pixels


def _representable(nodata: float | None, dtype: np.dtype) -> bool:
    """True when ``nodata`` is a value ``dtype`` can hold (NaN is handled as non-finite)."""
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        return False
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(nodata).is_integer() and info.min <= nodata <= info.max
    return True


def read_aligned(label: str | Path, image: RasterInfo, window: Window | None,
                 indexes: Sequence[int] = (1,)) -> np.ndarray:
    """Read bands ``indexes`` of ``label`` resampled onto ``image``'s grid (nearest), lazily.

    Only defined when both files are georeferenced; a ``WarpedVRT`` per (label, image grid) and
    process reprojects just the requested window, so class ids are never blended.

    Returns:
        ``(len(indexes), H, W)`` in the label's dtype.

    Raises:
        DataError: A file has no CRS (the grids cannot be related).
    """
    src = get_handle(label)
    if src.crs is None or image.crs is None:
        raise DataError(
            f"Cannot align label '{label}' to image '{image.path}': "
            f"{'the label' if src.crs is None else 'the image'} has no CRS."
        )
    key = f"{label}|aligned|{image.crs.to_string()}|{tuple(image.transform)[:6]}|{image.width}x{image.height}"
    vrt = _handles.get(key) if _handles_pid == os.getpid() else None
    if vrt is None:
        vrt = WarpedVRT(src, crs=image.crs, transform=image.transform, width=image.width,
                        height=image.height, resampling=Resampling.nearest,
                        nodata=src.nodata)
        _handles[key] = vrt
    try:
        return vrt.read(list(indexes), window=window, boundless=window is not None and (
            window.col_off < 0 or window.row_off < 0
            or window.col_off + window.width > image.width
            or window.row_off + window.height > image.height))
    except RasterioIOError as err:
        raise DataError(f"Reading '{label}' aligned to '{image.path}' failed: {err}") from None


def outside_mask(window: Window | None, width: int, height: int) -> np.ndarray | None:
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
