"""Streaming sliding-window prediction over large georeferenced scenes.

What a scene must look like comes from the model: its :class:`~rsfm.spec.InputSpec` (bands,
normalisation, nodata, classes and colours, ignore index, tile size, frames) and its task, read
from the model's :class:`~rsfm.saved.SavedConfig`. How to run is a :class:`PredictOptions`
(tile size and overlap, batch size, precision, thresholds, outputs).

Everything that can fail is checked before the first tile runs (:mod:`rsfm.inference.checks`).
Then the scene is cut into overlapping tiles on a grid that starts half an overlap *before* the
scene (so scene edges never sit at a tile border, where a model has no context); pixels outside
the scene are filled by reflection. Tiles are processed one tile row at a time:

1. the row's strip of the scene is read (one windowed read, prefetched in a thread while the
   previous row runs through the model), normalised with the training statistics, reflect-padded
   and cut into tiles;
2. tiles go through the model in batches; class probabilities are multiplied by a blending weight
   that falls off linearly towards the tile border and added into a buffer one tile high;
3. rows no later tile can touch are finished: probabilities are divided by the summed weights,
   turned into classes (argmax or a threshold), input nodata is written as output nodata (the
   model's ignore index when the raster's dtype can hold it), and the rows go to the output
   GeoTIFF in whole block rows.

Memory therefore holds about two strips of input and one tile-high row of probabilities,
whatever the scene size. The tiled GeoTIFF is finally copied into a Cloud-Optimised GeoTIFF
(MODE overviews for classes) by GDAL, which also streams, and the class names go where GIS
software reads them (:mod:`rsfm.inference.gis`).

The same engine runs without files: :class:`ScenePredictor` (and :func:`predict_array`) return
the classes, probabilities or boxes as arrays, row strip by row strip for large scenes; this is
what :func:`rsfm.evaluate` scores, so its metrics are those of the maps ``predict`` writes.

Detection keeps each tile's detections above the score threshold (a Mask R-CNN's masks
thresholded and cropped to their pixels as they arrive), merges them across tiles once the
scene is done, and writes boxes, or instance outlines when the model returned masks
(:mod:`rsfm.inference.vectorize`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from rsfm import __version__
from rsfm.colors import class_colors
from rsfm.data.reader import ImageReader
from rsfm.errors import ConfigError, DataError, UnknownNameError
from rsfm.factory import check_model_config
from rsfm.inference.arguments import check_predict_arguments
from rsfm.inference.checks import (
    check_outputs,
    check_value_range,
    is_rsfm_prediction,
    output_targets,
    scene_reader,
)
from rsfm.inference.gis import class_nodata, style_paths, to_cog, write_class_style
from rsfm.inference.loading import OnnxModel, load_model, training_precision
from rsfm.inference.outputs import argmax0, as_logits, probabilities
from rsfm.inference.postprocess import InstanceMask, clean_array, clean_raster, crop_instance_masks
from rsfm.inference.precision import (
    PRECISIONS,
    PrecisionReport,
    autocast,
    parity_report,
    resolve_precision,
)
from rsfm.inference.show import preview_scene
from rsfm.inference.vectorize import (
    Detections,
    merge_tile_detections,
    vectorize_raster,
    write_boxes,
    write_instances,
)
from rsfm.io import FileSet, atomic_write_named, disk_full_error
from rsfm.saved import SavedConfig
from rsfm.spec import ClassInfo, InputSpec, class_values

__all__ = [
    "ArrayPrediction",
    "PredictOptions",
    "PredictionResult",
    "RowBlock",
    "ScenePredictor",
    "blend_weights",
    "predict",
    "predict_array",
    "predict_scene",
    "tile_offsets",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
_GDAL_CACHE_MB = 256  # MB; GDAL reads values below 100000 as megabytes
DEFAULT_TILE = 256


@dataclass(frozen=True)
class PredictOptions:
    """How to run a prediction (what the scene must look like comes from the model).

    Attributes:
        tile_size: Tile side in pixels (default: the model's training tile size, else 256).
        overlap: Overlap of neighbouring tiles in pixels (default: a quarter tile, even).
        batch_size: Tiles per forward pass.
        device: Torch device (default: CUDA when available, else CPU).
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast (default: fp32, or bf16 when the
            model was trained in bf16 and the device supports it). A precision the device lacks
            falls back to fp32 with a warning.
        parity_check: With a reduced precision, also run the first batch in fp32 and report
            class agreement and the largest probability difference (logged at INFO, and in
            :attr:`PredictionResult.parity`).
        score_threshold: Detection: minimum score of kept boxes.
        threshold: Two-class segmentation: class 1 where its probability >= threshold.
        probabilities: Also write per-class probabilities (``uint8``: 0..254 = 0..1, 255 =
            nodata, GDAL scale set; or ``float32``) to ``<out>_probs.tif``.
        confidence: Also write the max class probability (uint8) to ``<out>_conf.tif``.
        min_object_size: Remove objects smaller than this many pixels.
        max_hole_size: Fill holes smaller than this many pixels.
        cog: Write Cloud-Optimised GeoTIFFs (with overviews); else tiled GeoTIFFs.
        progress: Show a progress bar.
    """

    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 8
    device: str | None = None
    precision: str | None = None
    parity_check: bool = False
    score_threshold: float = 0.05
    threshold: float | None = None
    probabilities: str | None = None
    confidence: bool = False
    min_object_size: int = 0
    max_hole_size: int = 0
    cog: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.tile_size is not None and self.tile_size < 8:
            raise ConfigError(f"tile_size must be >= 8 pixels, got {self.tile_size}.")
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"overlap must be >= 0 pixels, got {self.overlap}.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}.")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is not one of {list(PRECISIONS)}.")
        if self.probabilities not in (None, "uint8", "float32"):
            raise ConfigError(f"probabilities must be None, 'uint8' or 'float32', got "
                              f"{self.probabilities!r}.")
        if not 0 <= self.score_threshold <= 1:
            raise ConfigError(f"score_threshold must be in [0, 1], got {self.score_threshold}.")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}.")
        for name, flag, value in (("min_object_size", "--min-object-size", self.min_object_size),
                                  ("max_hole_size", "--fill-holes", self.max_hole_size)):
            if value < 0:
                raise ConfigError(f"{name} ({flag}) must be >= 0 pixels (0 turns it off), got "
                                  f"{value}.", key=name)

    def tiling(self, spec: InputSpec) -> tuple[int, int]:
        """``(tile, overlap)`` for a model with ``spec`` (overlap even, so margins split evenly).

        Raises:
            ConfigError: The overlap is not smaller than the tile.
        """
        tile = self.tile_size or spec.tile_size or DEFAULT_TILE
        overlap = tile // 4 if self.overlap is None else self.overlap
        if overlap >= tile:
            raise ConfigError(f"overlap must be smaller than the tile ({tile} px), got {overlap}.")
        return tile, overlap - overlap % 2


def _options(options: PredictOptions | None, kwargs: dict[str, Any]) -> PredictOptions:
    names = {f.name for f in fields(PredictOptions)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise ConfigError(f"Unknown prediction option(s) {unknown}; options: {sorted(names)}.")
    return replace(options or PredictOptions(), **kwargs)


@dataclass
class PredictionResult:
    """What :func:`predict_scene` wrote.

    Attributes:
        classes: Class raster (segmentation) or ``None``.
        probabilities: Per-class probability raster when asked for.
        confidence: Confidence (max probability) raster when asked for.
        vectors: GeoJSON / GeoPackage of polygons (segmentation), boxes (detection) or
            instance outlines (Mask R-CNN).
        preview: Quicklook image.
        style: QGIS style of the class raster (``.qml``; GDAL category names and the attribute
            table are in ``<classes>.aux.xml``).
        summary: Vector summary (count and area per class) or detection counts.
        tiles: Number of tiles run through the model.
        seconds: Wall time.
        megapixels_per_second: Scene megapixels per second of wall time.
        precision: The precision the model ran in.
        parity: The reduced-precision vs fp32 report of the first batch, when asked for.
    """

    classes: Path | None = None
    probabilities: Path | None = None
    confidence: Path | None = None
    vectors: Path | None = None
    preview: Path | None = None
    style: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    tiles: int = 0
    seconds: float = 0.0
    megapixels_per_second: float = 0.0
    precision: str = "fp32"
    parity: PrecisionReport | None = None


# ----------------------------------------------------------------------------- tiling geometry
def tile_offsets(size: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets along one axis of ``size`` pixels.

    The first tile starts ``overlap // 2`` pixels before the scene and tiles follow every
    ``tile - overlap`` pixels; the last one is moved back so it ends ``overlap // 2`` past the
    scene (less wasted computation than a full extra step). Offsets outside the scene are
    reflect-padded when read.
    """
    margin = overlap // 2
    stride = tile - overlap
    end = size + margin - tile  # offset of a tile ending `margin` past the scene
    if end <= -margin:
        return [-margin]
    offs = list(range(-margin, end, stride))
    if not offs or offs[-1] != end:
        offs.append(end)
    return offs


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """``(tile, tile)`` float32 weights, 1 in the core, falling linearly to ~0 at the border.

    Over an overlap of ``overlap`` pixels the two tiles' ramps sum to one, so a constant model
    gives a constant output, and each tile's least reliable border pixels count least.
    """
    d = np.minimum(np.arange(tile) + 0.5, tile - np.arange(tile) - 0.5)
    w = np.clip(d / max(overlap, 1), 1e-3, 1.0).astype(np.float32)
    return np.outer(w, w)


# ----------------------------------------------------------------------------- input reading
class _SceneReader:
    """Reads normalised, reflect-padded strips (or tiles) of one scene / time stack."""

    def __init__(self, reader: ImageReader, paths: Sequence[PathLike]) -> None:
        self.reader = reader
        self.paths = [str(p) for p in paths]
        self.info = reader.plan(self.paths[0]).info
        self.per_tile = reader.normalizer.mode in ("minmax", "per_tile")
        self.temporal = len(self.paths) > 1 or reader.spec.num_frames > 1

    def _read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        if self.temporal:
            return self.reader.read_stack(self.paths, window)
        return self.reader.read(self.paths[0], window)

    def _padded(self, r0: int, c0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``[r0, r0+h)`` x cols ``[c0, c0+w)`` (may extend past the scene): reflect padding."""
        H, W = self.info.height, self.info.width
        rr0, rr1 = max(r0, 0), min(r0 + h, H)
        cc0, cc1 = max(c0, 0), min(c0 + w, W)
        img, bad = self._read(Window(cc0, rr0, cc1 - cc0, rr1 - rr0))
        pad = ((rr0 - r0, r0 + h - rr1), (cc0 - c0, c0 + w - cc1))
        if any(p for pair in pad for p in pair):
            img = np.pad(img, ((0, 0),) * (img.ndim - 2) + pad, mode="reflect")
        return img, bad

    def strip(self, r0: int, tile: int, cols: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
        """The tiles of one tile row, and the invalid-pixel mask of the strip's scene rows."""
        if self.per_tile:  # per-tile statistics: each tile is normalised on its own pixels
            tiles = [self._padded(r0, c, tile, tile)[0] for c in cols]
            top = max(r0, 0)
            rows = Window(0, top, self.info.width, min(r0 + tile, self.info.height) - top)
            return tiles, self._read(rows)[1]
        c0, c1 = cols[0], cols[-1] + tile
        img, bad = self._padded(r0, c0, tile, c1 - c0)
        return [img[..., :, c - c0 : c - c0 + tile] for c in cols], bad


# ----------------------------------------------------------------------------- output writing
class _BlockRowWriter:
    """Collects finished rows and writes them one whole block row at a time.

    Writing whole blocks means every compressed block is encoded once, and GDAL's cache never
    holds more than the current block row.
    """

    def __init__(self, ds: Any, block: int) -> None:
        self.ds, self.block = ds, block
        self.buf = np.zeros((ds.count, block, ds.width), dtype=ds.dtypes[0])
        self.top = 0  # scene row of buf[:, 0]
        self.fill = 0

    def write(self, rows: np.ndarray) -> None:
        i = 0
        while i < rows.shape[1]:
            n = min(self.block - self.fill, rows.shape[1] - i)
            self.buf[:, self.fill : self.fill + n] = rows[:, i : i + n]
            self.fill += n
            i += n
            if self.fill == self.block:
                self.flush()

    def flush(self) -> None:
        if self.fill:
            window = Window(0, self.top, self.ds.width, self.fill)
            self.ds.write(self.buf[:, : self.fill], window=window)
            self.top += self.fill
            self.fill = 0


def _profile(info: Any, count: int, dtype: str, nodata: float | None, block: int) -> dict[str, Any]:
    return {
        "driver": "GTiff", "width": info.width, "height": info.height, "count": count,
        "dtype": dtype, "crs": info.crs, "transform": info.transform, "nodata": nodata,
        "tiled": True, "blockxsize": block, "blockysize": block, "compress": "deflate",
        "predictor": 2 if dtype.startswith("uint") else 3, "BIGTIFF": "IF_SAFER",
    }


def _companion(out: Path, suffix: str) -> Path:
    return out.with_name(out.stem + suffix)


def _output_classes(spec: InputSpec, k: int) -> tuple[ClassInfo, ...]:
    """The classes of ``k`` output planes: the model's, then ``class_<i>`` in the palette.

    Class values (``ClassInfo.value``) hold only when the planes are the model's classes.
    """
    if k == spec.num_classes:
        return spec.classes
    palette = class_colors(k)
    return tuple(replace(spec.classes[i], value=None) if i < spec.num_classes
                 else ClassInfo(f"class_{i}", palette[i]) for i in range(k))


def _tags(spec: InputSpec, task: str, names: Sequence[str], tile: int, overlap: int,
          precision: str, values: Sequence[int] | None = None) -> dict[str, str]:
    return {
        "RSFM_VERSION": __version__, "RSFM_TASK": task, "CLASSES": json.dumps(list(names)),
        **({"CLASS_VALUES": json.dumps(list(values))} if values is not None else {}),
        "BANDS": json.dumps(spec.channel_names), "IGNORE_INDEX": str(spec.ignore_index),
        "TILE_SIZE": str(tile), "TILE_OVERLAP": str(overlap), "PRECISION": precision,
    }


def _count_classes(path: Path, values: Sequence[int], nodata: int, strip_rows: int = 1024) -> list[int]:
    """Pixels per class (index = class id) of a class raster holding ``values``."""
    counts = np.zeros(max(values) + 1, dtype=np.int64)
    with rasterio.open(path) as ds:
        for r in range(0, ds.height, strip_rows):
            a = ds.read(1, window=Window(0, r, ds.width, min(strip_rows, ds.height - r)))
            counts += np.bincount(a[a != nodata].ravel(), minlength=len(counts))[: len(counts)]
    return counts[list(values)].tolist()


def _publish(src: Path, dst: Path, cog: bool, resampling: str) -> Path:
    """Move a finished GeoTIFF to ``dst`` (as a COG when ``cog``), replacing it atomically."""
    if cog:
        return to_cog(src, dst, resampling)
    os.replace(src, dst)
    style_paths(dst)[0].unlink(missing_ok=True)  # a stale sidecar would describe another file
    return dst


# ----------------------------------------------------------------------------- the engine
class _Engine:
    def __init__(self, model: Callable[..., Any], reader: _SceneReader, spec: InputSpec,
                 task: str, device: torch.device, options: PredictOptions,
                 precision: str) -> None:
        self.model, self.reader, self.spec, self.task = model, reader, spec, task
        self.device, self.options, self.precision = device, options, precision
        self.batch_size = options.batch_size
        self.tile, self.overlap = options.tiling(spec)
        info = reader.info
        side = max(info.height, info.width)
        if options.tile_size and self.tile > 2 * side and self.tile > (spec.tile_size or 0):
            # the tile is padded from the scene: a huge one only costs memory (100000 px: 37 GiB)
            raise ConfigError(f"--tile-size {self.tile} is more than twice the size of "
                              f"'{reader.paths[0]}' ({info.height} x {info.width} pixels); use a "
                              f"tile of at most {side} (rounded up to the patch size for ViTs).",
                              key="tile_size")
        self.rows = tile_offsets(info.height, self.tile, self.overlap)
        self.cols = tile_offsets(info.width, self.tile, self.overlap)
        self.n_tiles = len(self.rows) * len(self.cols)
        self.parity: PrecisionReport | None = None

    def _bar(self) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=self.n_tiles, unit="tile", disable=not self.options.progress,
                    desc="predict", dynamic_ncols=True)

    def _strips(self) -> Any:
        """Yields ``(row offset, tiles, bad)`` per tile row; the next strip is read in a thread."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(self.reader.strip, self.rows[0], self.tile, self.cols)
            for i, r0 in enumerate(self.rows):
                tiles, bad = fut.result()
                if i + 1 < len(self.rows):
                    fut = pool.submit(self.reader.strip, self.rows[i + 1], self.tile, self.cols)
                yield r0, tiles, bad

    def _forward(self, x: torch.Tensor, precision: str) -> Any:
        with torch.inference_mode(), autocast(self.device, precision):
            return self.model(x)

    def _segment(self, tiles: list[np.ndarray]) -> torch.Tensor:
        """Class probabilities ``(B, K, T, T)`` on the CPU of a batch of tiles."""
        x = torch.from_numpy(np.stack(tiles)).to(self.device, non_blocking=True)
        size = (self.tile, self.tile)
        probs = probabilities(as_logits(self._forward(x, self.precision)), size)
        if self.parity is None and self.options.parity_check and self.precision != "fp32":
            full = probabilities(as_logits(self._forward(x, "fp32")), size)
            self.parity = parity_report(self.precision, probs, full)
            log.info("%s", self.parity)
        return probs.cpu()

    def _batches(self, tiles: list[np.ndarray]) -> Any:
        for i in range(0, len(tiles), self.batch_size):
            yield i, tiles[i : i + self.batch_size]

    # -- segmentation
    def classes_of(self, p: torch.Tensor) -> torch.Tensor:
        """Class ids ``(n, W)`` of probabilities ``(K, n, W)``: argmax, or the two-class
        threshold."""
        if self.options.threshold is not None and p.shape[0] == 2:
            return (p[1] >= self.options.threshold).to(torch.uint8)
        return argmax0(p)

    def blended_rows(self) -> Iterator[tuple[int, torch.Tensor, np.ndarray]]:
        """The scene's finished rows, top to bottom: ``(first scene row, probabilities
        (K, n, W) float32, invalid input (n, W) bool)``.

        Tile probabilities are weighted by :func:`blend_weights` and summed into a buffer one
        tile high; rows no later tile can touch are divided by the summed weights and yielded.
        """
        info, T, ov = self.reader.info, self.tile, self.overlap
        H, W = info.height, info.width
        c_first = self.cols[0]
        width = self.cols[-1] + T - c_first  # buffer columns, scene col = buffer col + c_first
        cols = slice(-c_first, -c_first + W)
        weights = torch.from_numpy(blend_weights(T, ov))
        acc: torch.Tensor | None = None  # (K, T, width) weighted probabilities
        wsum = torch.zeros(T, width)
        bad_buf = np.zeros((T, W), dtype=bool)
        t_start = time.perf_counter()
        bar = self._bar()
        done = 0
        try:
            for ri, (r0, tiles, bad) in enumerate(self._strips()):
                # invalid-pixel mask of this strip's scene rows, aligned to the buffer rows
                top = max(r0, 0) - r0
                bad_buf[top : top + bad.shape[0]] = bad
                for i, batch in self._batches(tiles):
                    probs = self._segment(batch)
                    if acc is None:
                        acc = torch.zeros(probs.shape[1], T, width)
                    probs *= weights
                    for j in range(probs.shape[0]):
                        c = self.cols[i + j] - c_first
                        acc[:, :, c : c + T] += probs[j]
                        wsum[:, c : c + T] += weights
                    done += len(batch)
                    bar.update(len(batch))
                    el = time.perf_counter() - t_start
                    rate = done * (T - ov) ** 2 / 1e6 / max(el, 1e-9)
                    bar.set_postfix_str(f"{rate:.2f} MPix/s", refresh=False)
                last = ri + 1 == len(self.rows)
                nxt = r0 + T if last else self.rows[ri + 1]
                # rows [r0, nxt) are final; crop them to the scene
                a, b = max(r0, 0), min(nxt, H)
                if b > a:
                    p = acc[:, a - r0 : b - r0, cols] / wsum[None, a - r0 : b - r0, cols]
                    yield a, p, bad_buf[a - r0 : b - r0].copy()
                shift = nxt - r0
                if not last:  # move the unfinished rows to the top of the buffers
                    acc[:, : T - shift] = acc[:, shift:].clone()
                    acc[:, T - shift :] = 0
                    wsum[: T - shift] = wsum[shift:].clone()
                    wsum[T - shift :] = 0
                    bad_buf[: T - shift] = bad_buf[shift:].copy()
                    bad_buf[T - shift :] = False
        finally:
            bar.close()

    def run_segmentation(self, out: Path) -> PredictionResult:
        opts = self.options
        info, T, ov = self.reader.info, self.tile, self.overlap
        H, W = info.height, info.width
        tmpdir = Path(tempfile.mkdtemp(prefix=".rsfm-predict-", dir=out.parent))
        writers: dict[str, _BlockRowWriter] = {}
        files: dict[str, Any] = {}
        state: dict[str, Any] = {}
        block = 512 if min(H, W) >= 512 else 256 if min(H, W) >= 256 else 128
        result = PredictionResult(tiles=self.n_tiles, precision=self.precision)

        def open_outputs(k: int) -> None:
            classes = _output_classes(self.spec, k)
            names = [c.name for c in classes]
            values = list(class_values(classes))
            dtype, nodata = class_nodata(values, self.spec.ignore_index)
            tags = _tags(self.spec, self.task, names, T, ov, self.precision, values)
            # class id -> pixel value (None: the ids are the values)
            lut = None if values == list(range(k)) else np.asarray(values, dtype=dtype)
            state.update(k=k, nodata=nodata, classes=classes, values=values, lut=lut,
                         counts=np.zeros(k, np.int64))
            ds = files["classes"] = rasterio.open(tmpdir / "classes.tif", "w",
                                                  **_profile(info, 1, dtype, nodata, block))
            ds.set_band_description(1, "class")
            ds.write_colormap(1, {v: (*c.color, 255) for v, c in zip(values, classes)})
            ds.update_tags(**tags)
            ds.update_tags(1, **{f"CLASS_{v}": n for v, n in zip(values, names)})
            if opts.probabilities:
                pd = opts.probabilities
                nd = 255 if pd == "uint8" else float("nan")
                ds = files["probs"] = rasterio.open(tmpdir / "probs.tif", "w",
                                                    **_profile(info, k, pd, nd, block))
                for i, n in enumerate(names):
                    ds.set_band_description(i + 1, f"p({n})")
                if pd == "uint8":
                    ds.scales = [1 / 254] * k
                ds.update_tags(**tags)
            if opts.confidence:
                ds = files["conf"] = rasterio.open(tmpdir / "conf.tif", "w",
                                                   **_profile(info, 1, "uint8", 255, block))
                ds.set_band_description(1, "confidence")
                ds.scales = [1 / 254]
                ds.update_tags(**tags)
            for key, ds in files.items():
                writers[key] = _BlockRowWriter(ds, block)

        def emit(p: torch.Tensor, bad_rows: np.ndarray) -> None:
            """Finish a band of scene rows: probabilities -> classes, nodata, write."""
            cls_np = self.classes_of(p).numpy().astype(files["classes"].dtypes[0])
            state["counts"] += np.bincount(cls_np[~bad_rows].ravel(), minlength=state["k"])
            if state["lut"] is not None:
                cls_np = state["lut"][cls_np]
            cls_np[bad_rows] = state["nodata"]
            writers["classes"].write(cls_np[None])
            if "probs" in writers:
                if opts.probabilities == "uint8":
                    q = (p * 254).round_().to(torch.uint8).numpy()
                    q[:, bad_rows] = 255
                else:
                    q = p.numpy().astype(np.float32)
                    q[:, bad_rows] = np.nan
                writers["probs"].write(q)
            if "conf" in writers:
                c = (p.max(0).values * 254).round_().to(torch.uint8).numpy()
                c[bad_rows] = 255
                writers["conf"].write(c[None])

        try:
            for _row, p, bad_rows in self.blended_rows():
                if not files:
                    open_outputs(p.shape[0])
                emit(p, bad_rows)
            for w in writers.values():
                w.flush()
            for ds in files.values():
                ds.close()
            final = {k: tmpdir / f"{k}.tif" for k in files}
            counts = state["counts"].tolist()
            if opts.min_object_size or opts.max_hole_size:
                cleaned = tmpdir / "classes_clean.tif"
                clean_raster(final["classes"], cleaned, min_object_size=opts.min_object_size,
                             max_hole_size=opts.max_hole_size, background=state["values"][0])
                final["classes"] = cleaned
                counts = _count_classes(cleaned, state["values"], state["nodata"])
            targets = {"classes": out, "probs": _companion(out, "_probs.tif"),
                       "conf": _companion(out, "_conf.tif")}
            for key, src in final.items():
                _publish(src, targets[key], opts.cog, "MODE" if key == "classes" else "AVERAGE")
            result.classes = out
            result.style = write_class_style(out, state["classes"], counts)[1]
            result.probabilities = targets["probs"] if "probs" in final else None
            result.confidence = targets["conf"] if "conf" in final else None
        except Exception as err:  # GDAL says only that a block failed: was the disk full?
            full = disk_full_error(err, out, probe=tmpdir)
            if full is not None:
                raise full from None
            raise
        finally:
            for ds in files.values():
                if not ds.closed:
                    ds.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
        result.parity = self.parity
        return result

    # -- detection
    def detect(self) -> Detections:
        """Scene-pixel detections (boxes, scores, 0-based labels; instance masks when the model
        returns ``masks``), merged across tiles."""
        info = self.reader.info
        size = (info.height, info.width)
        boxes, scores, labels = [], [], []
        masks: list[InstanceMask] | None = None
        bar = self._bar()
        for r0, tiles, _bad in self._strips():
            for i, batch in self._batches(tiles):
                x = torch.from_numpy(np.stack(batch)).to(self.device, non_blocking=True)
                for j, d in enumerate(self._forward(x, self.precision)):
                    c0 = self.cols[i + j]
                    keep = d["scores"] >= self.options.score_threshold
                    b = d["boxes"][keep].float().cpu().clone()
                    b[:, [0, 2]] += c0
                    b[:, [1, 3]] += r0
                    boxes.append(b)
                    scores.append(d["scores"][keep].float().cpu())
                    # torchvision detectors reserve label 0 for background: classes are 1..K
                    labels.append(d["labels"][keep].cpu() - 1)
                    if "masks" in d:  # Mask R-CNN: (N, 1, T, T) soft masks, cropped now
                        masks = masks if masks is not None else []
                        masks += crop_instance_masks(d["masks"][keep], r0, c0, size)
                bar.update(len(batch))
        bar.close()
        if boxes:
            b, s, lab = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        else:
            b, s, lab = torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long)
        if masks is not None and len(masks) != len(b):
            raise DataError(f"The model returned {len(masks)} instance masks for {len(b)} "
                            "boxes: every tile's output needs 'masks' or none does.")
        dets = Detections(b, s, lab, None if masks is None else tuple(masks))
        # tiles are reflect-padded at the scene edge: drop mirrored detections centred outside it
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        inside = (cx >= 0) & (cx < info.width) & (cy >= 0) & (cy < info.height)
        return merge_tile_detections(dets.select(inside), size)

    def run_detection(self, out: Path) -> PredictionResult:
        info = self.reader.info
        dets = self.detect()
        lab = dets.labels
        k = max(self.spec.num_classes, int(lab.max()) + 1 if len(lab) else 0)
        classes = _output_classes(self.spec, k)
        if dets.masks is not None:
            summary = write_instances(out, dets, info.transform, info.crs, classes)
        else:
            summary = write_boxes(out, dets.boxes, dets.scores, lab, info.transform, info.crs,
                                  [c.name for c in classes])
        return PredictionResult(vectors=out, summary=summary, tiles=self.n_tiles,
                                precision=self.precision)


# ----------------------------------------------------------------------------- preparation
@dataclass
class _Scene:
    """One scene, checked and ready to run."""

    paths: list[Path]
    out: Path
    reader: ImageReader
    vectors: Path | None
    preview: Path | None


def _device(options: PredictOptions) -> torch.device:
    if options.device is not None:
        return torch.device(options.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _scene_paths(inputs: PathLike | Sequence[PathLike], spec: InputSpec) -> list[Path]:
    """The files of one scene (one per time step of the model)."""
    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    if not paths:
        raise ConfigError("predict_scene needs at least one input file.")
    if len(paths) != spec.num_frames:
        raise ConfigError(
            f"The model takes {spec.num_frames} time step(s) but {len(paths)} file(s) were given "
            f"for one scene: {[str(p) for p in paths]}."
        )
    return paths


def _checked_reader(spec: InputSpec, paths: Sequence[Path]) -> ImageReader:
    """The scene's reader: bands present in every file, values near the training statistics."""
    reader = scene_reader(spec, paths)
    check_value_range(reader, paths[0])
    return reader


def _prepare(inputs: PathLike | Sequence[PathLike], out: PathLike, spec: InputSpec, task: str,
             options: PredictOptions, vectors: PathLike | None,
             preview: PathLike | None, *, read: FileSet | None = None,
             model_dir: PathLike | None = None) -> _Scene:
    """Every check of one scene that needs no model output (see :mod:`rsfm.inference.checks`).

    ``read``: every file the command reads (all scenes, an exported model file; default: this
    scene's); ``model_dir``: the model folder read. No output may overwrite either.
    """
    paths = _scene_paths(inputs, spec)
    out = Path(out)
    options.tiling(spec)
    check_outputs(task, out, inputs=read if read is not None else FileSet(paths),
                  vectors=vectors, preview=preview,
                  num_classes=spec.num_classes or None, probabilities=options.probabilities,
                  confidence=options.confidence, threshold=options.threshold,
                  min_object_size=options.min_object_size, max_hole_size=options.max_hole_size,
                  model_dir=model_dir)
    reader = _checked_reader(spec, paths)
    return _Scene(paths, out, reader, Path(vectors) if vectors is not None else None,
                  Path(preview) if preview is not None else None)


def _make_dirs(scene: _Scene) -> None:
    for target in (scene.out, scene.vectors, scene.preview):
        if target is None:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"Cannot create output folder '{target.parent}': "
                              f"{err.strerror or err}.") from None


def _onnx_precision(model: Any, precision: str) -> str:
    if isinstance(model, OnnxModel) and precision != "fp32":
        log.warning("onnxruntime runs the exported model in fp32; precision %s is ignored.",
                    precision)
        return "fp32"
    return precision


def _gdal_env() -> Any:
    """GDAL's block cache defaults to 5% of RAM and is what grows on huge scenes: cap it (unless
    the user set GDAL_CACHEMAX) so memory stays bounded by a few tile rows."""
    cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": _GDAL_CACHE_MB}
    return rasterio.Env(**cache)


def _run(model: Callable[..., Any], scene: _Scene, task: str, options: PredictOptions,
         device: torch.device, precision: str) -> PredictionResult:
    _make_dirs(scene)
    precision = _onnx_precision(model, precision)
    spec = scene.reader.spec
    t0 = time.perf_counter()
    with _gdal_env():
        reader = _SceneReader(scene.reader, scene.paths)
        if isinstance(model, torch.nn.Module):
            model = model.to(device).eval()
        engine = _Engine(model, reader, spec, task, device, options, precision)
        if task == "detection":
            result = engine.run_detection(scene.out)
        else:
            result = engine.run_segmentation(scene.out)
            if scene.vectors is not None:
                result.vectors = scene.vectors
                try:
                    result.summary = vectorize_raster(result.classes, scene.vectors)
                except Exception as err:
                    full = disk_full_error(err, scene.vectors)
                    if full is not None:
                        raise full from None
                    raise
    result.seconds = time.perf_counter() - t0
    mpix = reader.info.width * reader.info.height / 1e6
    result.megapixels_per_second = mpix / max(result.seconds, 1e-9)
    if scene.preview is not None:  # written under a temporary name, renamed into place
        shown = result.classes or result.vectors
        atomic_write_named(scene.preview, lambda tmp: preview_scene(
            scene.paths[-1], shown, tmp, spec=spec))
        result.preview = scene.preview
    log.info("%s: %d tiles, %.1f MPix in %.1f s (%.2f MPix/s, %s)", scene.paths[0],
             result.tiles, mpix, result.seconds, result.megapixels_per_second, precision)
    return result


def predict_scene(
    model: Callable[[torch.Tensor], Any],
    inputs: PathLike | Sequence[PathLike],
    out: PathLike,
    spec: InputSpec,
    *,
    task: str = "segmentation",
    vectors: PathLike | None = None,
    preview: PathLike | None = None,
    options: PredictOptions | None = None,
    **kwargs: Any,
) -> PredictionResult:
    """Predict one scene (or one co-registered time stack) and write the results.

    Args:
        model: A callable taking ``(B, C, H, W)`` (``(B, C, T, H, W)`` for time stacks) float
            tensors. Segmentation: returns logits ``(B, K, h, w)``; detection: torchvision-style
            list of dicts with ``boxes`` (tile pixels, xyxy), ``labels`` (1-based), ``scores``
            and, for instance outlines, ``masks`` (``(N, 1, h, w)`` probabilities, cut at 0.5).
        inputs: The scene GeoTIFF, or the time steps of one scene in time order.
        out: Segmentation: the class GeoTIFF; detection: a ``.geojson``/``.gpkg``/``.fgb``
            of boxes, or of instance outlines when the model returns masks (Mask R-CNN).
        spec: What the model eats and emits (bands, normalisation, classes, ignore index...).
        task: ``segmentation`` or ``detection``.
        vectors: Segmentation: also vectorise the classes into this file.
        preview: Also write a quicklook image with the prediction overlaid.
        options: How to run (see :class:`PredictOptions`).
        **kwargs: :class:`PredictOptions` fields, overriding ``options``.

    Returns:
        A :class:`PredictionResult`.

    Raises:
        ConfigError: An output that cannot be written as asked (checked before any compute).
        BandError: A band the model needs is missing from the scene (names the file, the
            model's bands and the file's bands).
        DataError: Unreadable input, time steps not co-registered.
    """
    options = _options(options, kwargs)
    scene = _prepare(inputs, out, spec, task, options, vectors, preview)
    device = _device(options)
    precision = resolve_precision(options.precision, device)
    return _run(model, scene, task, options, device, precision)


# ----------------------------------------------------------------------------- public entry point
def _expand_inputs(inputs: PathLike | Sequence[PathLike]) -> list[Path]:
    """The input files: files as given, folders expanded to their rasters (without the
    predictions rsfm wrote there, which a second run over the folder would otherwise read)."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in _RASTER_SUFFIXES)
            if not found:
                raise DataError(f"No raster files ({', '.join(_RASTER_SUFFIXES)}) in folder '{p}'.")
            own = [q for q in found if is_rsfm_prediction(q)]
            if own:
                found = [q for q in found if q not in own]
                log.info("'%s': skipping %d file(s) rsfm predict wrote (RSFM_TASK tag): %s", p,
                         len(own), ", ".join(q.name for q in own[:5])
                         + (", ..." if len(own) > 5 else ""))
            if not found:
                raise DataError(f"Folder '{p}' holds only predictions written by rsfm "
                                f"({', '.join(q.name for q in own[:3])}...), no scene to "
                                "predict.")
            files.extend(found)
        elif not p.exists():
            raise DataError(f"Input file not found: '{p}'.")
        else:
            files.append(p)
    return files


def _unique_scenes(groups: list[list[Path]]) -> list[list[Path]]:
    """``groups`` without repeats of the same scene (the same files, through any path): each
    is predicted once, with a log line."""
    seen: dict[tuple[str, ...], list[Path]] = {}
    for group in groups:
        key = tuple(os.path.normcase(os.path.realpath(p)) for p in group)
        if key in seen:
            log.info("'%s' is the same scene as '%s' (given twice): predicted once.",
                     group[-1], seen[key][-1])
            continue
        seen[key] = group
    return list(seen.values())


def _check_tile(saved: SavedConfig, spec: InputSpec, options: PredictOptions) -> None:
    """Fail before any compute when the tile size does not fit the model (ViT patch size)."""
    tile, _ = options.tiling(spec)
    config = replace(saved.model, pretrained=False, weights=None)
    try:
        check_model_config(config, replace(spec, tile_size=tile))
    except UnknownNameError:  # a file exported by rsfm 0.1 or a backbone not registered here
        return
    except ConfigError as err:
        if err.key != "tile_size":
            raise
        raise ConfigError(str(err).replace("data.tile_size", "The tile size (--tile-size)"),
                          key="tile_size") from None


def _resolve(model: Any, spec: InputSpec | None, task: str | None,
             file_bands: Sequence[str] | None,
             options: PredictOptions) -> tuple[Callable[..., Any], InputSpec, str, str | None]:
    """``(callable, spec, task, training precision)`` of a model source (see :func:`predict`)."""
    trained, saved = None, None
    if spec is not None and task is not None and callable(model) and not isinstance(
            model, (str, os.PathLike)):
        net = model
    else:
        net, saved = load_model(model)
        spec = spec or saved.input
        task = task or saved.model.task
        trained = training_precision(model)
    if spec is None or task is None:
        raise ConfigError("predict with a plain callable needs spec=InputSpec(...) and task=...")
    if file_bands is not None:
        spec = replace(spec, file_bands=tuple(str(b).strip() for b in file_bands))
    if saved is not None:
        _check_tile(saved, spec, options)
    if spec.normalization.mode == "none" and spec.normalization.value_scale == 1.0:
        log.warning("The model has no normalisation: raw pixel values are fed as they are.")
    return net, spec, task, trained


def _per_scene(path: PathLike | bool | None, target: Path, default: str,
               scenes: int) -> Path | None:
    """A companion output of one scene: ``True`` or several scenes -> next to ``target``."""
    if path is None or path is False:
        return None
    if path is True:
        return target.with_suffix(default)
    return target.with_suffix(Path(path).suffix or default) if scenes > 1 else Path(path)


def predict(
    model: Any,
    inputs: PathLike | Sequence[PathLike],
    out: PathLike | None = None,
    *,
    spec: InputSpec | None = None,
    task: str | None = None,
    file_bands: Sequence[str] | None = None,
    vectors: PathLike | bool | None = None,
    preview: PathLike | bool | None = None,
    detection_format: str = ".geojson",
    options: PredictOptions | None = None,
    **kwargs: Any,
) -> PredictionResult | list[PredictionResult]:
    """Predict GeoTIFF scenes with a model and write georeferenced results.

    Every scene and output is checked before the first tile runs.

    Examples::

        rsfm.predict("runs/flood", "scene.tif", "flood.tif", preview="flood.png")
        rsfm.predict(model, ["t1.tif", "t2.tif", "t3.tif"], "out.tif")  # 3-frame Prithvi
        rsfm.predict("model.onnx", "scenes/", "predictions/", vectors=True, precision="bf16")

    Args:
        model: An ``RsfmModel``, a run directory, saved model folder or Hub repo id, an
            exported ``.onnx`` / ``.pt2`` / TorchScript file, or any callable (then give
            ``spec`` and ``task``).
        inputs: A GeoTIFF, several, or a folder of them (without the predictions rsfm wrote
            there: files with an ``RSFM_TASK`` tag are skipped, with a log line). For a model
            with ``num_frames = T``, consecutive groups of T files are the time steps of one
            scene, in time order. A scene given twice (through any path) is predicted once.
        out: Output file for a single scene, else a folder (default: next to the input,
            ``<stem>_pred.tif``).
        spec: What the model eats (default: the model's :class:`~rsfm.spec.InputSpec`).
        task: ``segmentation`` or ``detection`` (default: the model's).
        file_bands: The scenes' band order when their bands carry no (or other) names.
        vectors: Segmentation: also write polygons to this file (``True``: ``<out>.gpkg``).
        preview: Also write a quicklook PNG (``True``: ``<out>.png`` next to each output).
        detection_format: Suffix of detection outputs when ``out`` is a folder.
        options: How to run (see :class:`PredictOptions`).
        **kwargs: :class:`PredictOptions` fields (``tile_size``, ``overlap``, ``batch_size``,
            ``device``, ``precision``, ``probabilities``, ``threshold``...), overriding
            ``options``.

    Returns:
        One :class:`PredictionResult` for one scene, else a list.

    Raises:
        ConfigError: Bad options or outputs (before any compute): two scenes whose outputs
            would have the same name, an output that would overwrite an input or a file of the
            model folder.
        BandError: A scene lacks bands the model needs (before any compute).
        DataError: Missing or unreadable inputs.
    """
    check_predict_arguments(inputs, file_bands)
    options = _options(options, kwargs)
    net, spec, task, trained = _resolve(model, spec, task, file_bands, options)
    files = _expand_inputs(inputs)
    frames = spec.num_frames
    if len(files) % frames:
        raise ConfigError(
            f"The model takes {frames} time steps per scene but {len(files)} files were given; "
            f"give the files of each scene in time order ({frames} per scene)."
        )
    groups = _unique_scenes([files[i : i + frames] for i in range(0, len(files), frames)])
    suffix = detection_format if task == "detection" else ".tif"
    single = len(groups) == 1 and out is not None and Path(out).suffix != ""
    if len(groups) > 1 and out is not None and Path(out).suffix.lower() in _RASTER_SUFFIXES:
        raise ConfigError(f"{len(groups)} scenes but one output file '{out}': give an output "
                          "folder (each scene writes <name>_pred.tif into it), or one scene.")
    source = Path(model) if isinstance(model, (str, os.PathLike)) else None
    model_dir = source if source is not None and source.is_dir() else None
    read = FileSet([*files, *([source] if source is not None and source.is_file() else [])])
    scenes = []
    written: dict[str, tuple[Path, list[Path]]] = {}  # output -> (file, the scene writing it)
    for group in groups:  # check everything before the first tile runs
        if single:
            target = Path(out)  # type: ignore[arg-type]
        else:
            folder = Path(out) if out is not None else group[-1].parent
            target = folder / f"{group[-1].stem}_pred{suffix}"
        vec = _per_scene(vectors, target, ".gpkg", len(groups))
        prev = _per_scene(preview, target, ".png", len(groups))
        for path in output_targets(task, target, vectors=vec, preview=prev,
                                   probabilities=options.probabilities,
                                   confidence=options.confidence):
            key = os.path.normcase(os.path.realpath(path))
            if key in written:
                other = written[key][1]
                raise ConfigError(
                    f"'{other[-1]}' and '{group[-1]}' would both be written to "
                    f"'{written[key][0]}' (the outputs are named after the scene file); predict "
                    "them into separate output folders (-o), or rename one of them.")
            written[key] = (path, group)
        scenes.append(_prepare(group, target, spec, task, options, vec, prev, read=read,
                               model_dir=model_dir))
    device = _device(options)
    precision = resolve_precision(options.precision, device, trained)
    results = [_run(net, scene, task, options, device, precision) for scene in scenes]
    return results[0] if len(results) == 1 else results


# ----------------------------------------------------------------------------- in memory
@dataclass
class ArrayPrediction:
    """One scene (or image) predicted in memory by :class:`ScenePredictor`: the same tiling,
    blending, thresholds and box merging as :func:`predict`, returned as arrays on the scene's
    grid instead of files.

    Attributes:
        task: ``segmentation``, ``detection`` or ``classification``.
        classes: Segmentation: ``(H, W)`` class ids, with the dtype and nodata value of the class
            GeoTIFF :func:`predict` writes (``nodata`` where the input is invalid);
            classification: the class id (0-d int64 array).
        nodata: Segmentation: the value of invalid pixels in ``classes``.
        valid: Segmentation: ``(H, W)`` bool, pixels whose input is valid.
        probabilities: Segmentation: ``(K, H, W)`` float32 when ``options.probabilities`` is
            set (NaN where the input is invalid); classification: ``(K,)`` always.
        boxes: Detection: ``(N, 4)`` float32 scene-pixel xyxy boxes.
        scores: Detection: ``(N,)`` float32.
        labels: Detection: ``(N,)`` int64, 0-based class ids.
        masks: Detection with instance masks (Mask R-CNN): one
            :class:`~rsfm.inference.postprocess.InstanceMask` per box (thresholded at 0.5,
            cropped to its pixels, scene offsets).
        tiles: Tiles run through the model.
        seconds: Wall time.
        precision: The precision the model ran in.
    """

    task: str
    classes: np.ndarray | None = None
    nodata: int | None = None
    valid: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    labels: np.ndarray | None = None
    masks: list[InstanceMask] | None = None
    tiles: int = 0
    seconds: float = 0.0
    precision: str = "fp32"


@dataclass(frozen=True)
class RowBlock:
    """Finished rows of a segmentation scene (:meth:`ScenePredictor.rows`).

    Attributes:
        row: First scene row.
        classes: ``(n, W)`` class ids (nodata where the input is invalid).
        valid: ``(n, W)`` bool, pixels whose input is valid.
        probabilities: ``(K, n, W)`` float32 blended class probabilities (NaN where the input
            is invalid).
    """

    row: int
    classes: np.ndarray
    valid: np.ndarray
    probabilities: np.ndarray


class ScenePredictor:
    """The prediction engine of :func:`predict` without files: one model, many scenes or
    images, results as arrays (what :func:`rsfm.evaluate` scores, so its numbers are those of
    the deployed prediction).

    Examples::

        predictor = ScenePredictor("runs/flood", tile_size=256, overlap=64)
        pred = predictor.predict("scene.tif")          # ArrayPrediction
        for block in predictor.rows("huge_scene.tif"):  # segmentation, strip by strip
            ...

    Args:
        model: As for :func:`predict`: an ``RsfmModel``, a run directory, saved model folder or
            Hub repo id, an exported file, or any callable with ``spec`` and ``task``.
        spec: What the model eats (default: the model's InputSpec).
        task: ``segmentation``, ``detection`` or ``classification`` (default: the model's).
        file_bands: The files' band order when their bands carry no (or other) names.
        options: How to run (:class:`PredictOptions`; the output-file options are not used).
        **kwargs: :class:`PredictOptions` fields, overriding ``options``.

    Raises:
        ConfigError: Bad options, a model without rsfm config and no spec/task, an unknown task.
    """

    def __init__(self, model: Any, *, spec: InputSpec | None = None, task: str | None = None,
                 file_bands: Sequence[str] | None = None, options: PredictOptions | None = None,
                 **kwargs: Any) -> None:
        self.options = _options(options, kwargs)
        net, self.spec, self.task, trained = _resolve(model, spec, task, file_bands, self.options)
        if self.task not in ("segmentation", "detection", "classification"):
            raise ConfigError(f"Unknown task {self.task!r}: segmentation, detection or "
                              "classification.")
        self.tile, self.overlap = self.options.tiling(self.spec)
        self.device = _device(self.options)
        self.precision = _onnx_precision(
            net, resolve_precision(self.options.precision, self.device, trained))
        if isinstance(net, torch.nn.Module):
            net = net.to(self.device).eval()
        self.model = net

    def check(self, inputs: PathLike | Sequence[PathLike]) -> ImageReader:
        """The checks :func:`predict` runs on a scene before any compute (time steps, bands,
        value range); returns its reader.

        Raises:
            ConfigError: Wrong number of time steps.
            BandError: A band the model needs is missing (names the file and the bands).
            DataError: Unreadable files, time steps not co-registered.
        """
        return _checked_reader(self.spec, _scene_paths(inputs, self.spec))

    def _engine(self, inputs: PathLike | Sequence[PathLike],
                reader: ImageReader | None) -> _Engine:
        paths = _scene_paths(inputs, self.spec)
        reader = reader or _checked_reader(self.spec, paths)
        return _Engine(self.model, _SceneReader(reader, paths), reader.spec, self.task,
                       self.device, self.options, self.precision)

    def rows(self, inputs: PathLike | Sequence[PathLike], *,
             reader: ImageReader | None = None) -> Iterator[RowBlock]:
        """Segmentation: the scene's finished rows top to bottom (memory: a few tile rows).

        Args:
            inputs: The scene file (or its time steps).
            reader: Its reader from :meth:`check` (checked again when not given).

        Raises:
            ConfigError: Not a segmentation model, or clean-up options (they need the whole
                scene: use :meth:`predict`).
        """
        if self.task != "segmentation":
            raise ConfigError(f"rows() is for segmentation models; this is a {self.task} model.")
        if self.options.min_object_size or self.options.max_hole_size:
            raise ConfigError("min_object_size / max_hole_size need the whole scene: use "
                              "ScenePredictor.predict.")
        with _gdal_env():
            engine = self._engine(inputs, reader)
            nodata: int | None = None
            for row, p, bad in engine.blended_rows():
                if nodata is None:
                    dtype, nodata = class_nodata(p.shape[0], self.spec.ignore_index)
                cls = engine.classes_of(p).numpy().astype(dtype)
                cls[bad] = nodata
                probs = p.numpy()
                probs[:, bad] = np.nan
                yield RowBlock(row, cls, ~bad, probs)

    def predict(self, inputs: PathLike | Sequence[PathLike], *,
                reader: ImageReader | None = None) -> ArrayPrediction:
        """Predict one scene or image in memory (see :class:`ArrayPrediction`).

        Segmentation keeps ``(H, W)`` classes (and ``(K, H, W)`` float32 probabilities only
        when ``options.probabilities`` is set): for scenes larger than memory, use :meth:`rows`.
        Classification runs the model once on the whole image.
        """
        t0 = time.perf_counter()
        with _gdal_env():
            engine = self._engine(inputs, reader)
            info = engine.reader.info
            out = ArrayPrediction(self.task, tiles=engine.n_tiles, precision=self.precision)
            if self.task == "detection":
                dets = engine.detect()
                out.boxes = dets.boxes.numpy().astype(np.float32)
                out.scores = dets.scores.numpy().astype(np.float32)
                out.labels = dets.labels.numpy().astype(np.int64)
                out.masks = None if dets.masks is None else list(dets.masks)
            elif self.task == "classification":
                img, _bad = engine.reader._read(Window(0, 0, info.width, info.height))
                x = torch.from_numpy(np.ascontiguousarray(img[None])).to(self.device)
                logits = as_logits(engine._forward(x, self.precision)).float().reshape(1, -1)
                probs = (torch.sigmoid(logits) if logits.shape[1] == 1
                         else torch.softmax(logits, 1))[0].cpu()
                if probs.shape[0] == 1:
                    probs = torch.cat([1 - probs, probs])
                out.probabilities = probs.numpy()
                out.classes = np.asarray(int(probs.argmax()), dtype=np.int64)
                out.tiles = 1
            else:
                self._segment_whole(engine, out)
        out.seconds = time.perf_counter() - t0
        return out

    def _segment_whole(self, engine: _Engine, out: ArrayPrediction) -> None:
        info = engine.reader.info
        H, W = info.height, info.width
        valid = np.zeros((H, W), dtype=bool)
        classes: np.ndarray | None = None
        for row, p, bad in engine.blended_rows():
            if classes is None:
                dtype, out.nodata = class_nodata(p.shape[0], self.spec.ignore_index)
                classes = np.zeros((H, W), dtype=dtype)
                if self.options.probabilities:
                    out.probabilities = np.zeros((p.shape[0], H, W), dtype=np.float32)
            n = p.shape[1]
            cls = engine.classes_of(p).numpy().astype(classes.dtype)
            cls[bad] = out.nodata
            classes[row : row + n] = cls
            valid[row : row + n] = ~bad
            if out.probabilities is not None:
                probs = p.numpy()
                probs[:, bad] = np.nan
                out.probabilities[:, row : row + n] = probs
        opts = self.options
        if classes is not None and (opts.min_object_size or opts.max_hole_size):
            classes = clean_array(classes, opts.min_object_size, opts.max_hole_size,
                                  nodata=out.nodata)
        out.classes, out.valid = classes, valid


def predict_array(
    model: Any,
    inputs: PathLike | Sequence[PathLike],
    *,
    spec: InputSpec | None = None,
    task: str | None = None,
    file_bands: Sequence[str] | None = None,
    options: PredictOptions | None = None,
    **kwargs: Any,
) -> ArrayPrediction:
    """Predict one scene (or the time steps of one scene) in memory with :func:`predict`'s
    tiling and blending; see :class:`ScenePredictor` to reuse a loaded model over many scenes.

    Example::

        pred = rsfm.inference.predict_array("runs/flood", "scene.tif", tile_size=256)
        water = pred.classes == 1

    Returns:
        An :class:`ArrayPrediction`.
    """
    predictor = ScenePredictor(model, spec=spec, task=task, file_bands=file_bands,
                               options=options, **kwargs)
    return predictor.predict(inputs)
