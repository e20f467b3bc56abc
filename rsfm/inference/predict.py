"""Streaming sliding-window prediction over large georeferenced scenes.

The scene is cut into overlapping tiles on a grid that starts half an overlap *before* the scene
(so scene edges never sit at a tile border, where a model has no context); pixels outside the
scene are filled by reflection. Tiles are processed one tile row at a time:

1. the row's strip of the scene is read (one windowed read, prefetched in a thread while the
   previous row runs through the model), normalised with the training statistics, reflect-padded
   and cut into tiles;
2. tiles go through the model in batches; class probabilities are multiplied by a blending weight
   that falls off linearly towards the tile border and added into a buffer one tile high;
3. rows no later tile can touch are finished: probabilities are divided by the summed weights,
   turned into classes (argmax or a threshold), input nodata is written as output nodata, and
   the rows go to the output GeoTIFF in whole block rows.

Memory therefore holds about two strips of input and one tile-high row of probabilities,
whatever the scene size. The tiled GeoTIFF is finally copied into a Cloud-Optimised GeoTIFF
(with overviews) by GDAL, which also streams.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from rsfm.errors import ConfigError, DataError
from rsfm.inference.spec import PredictionSpec, class_colors

__all__ = ["PredictionResult", "blend_weights", "predict", "predict_scene", "tile_offsets"]

log = logging.getLogger(__name__)

PathLike = str | Path
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")


@dataclass
class PredictionResult:
    """What :func:`predict_scene` wrote.

    Attributes:
        classes: Class raster (segmentation) or ``None``.
        probabilities: Per-class probability raster when asked for.
        confidence: Confidence (max probability) raster when asked for.
        vectors: GeoJSON / GeoPackage of polygons (segmentation) or boxes (detection).
        preview: Quicklook PNG.
        summary: Vector summary (count and area per class) or detection counts.
        tiles: Number of tiles run through the model.
        seconds: Wall time.
        megapixels_per_second: Scene megapixels per second of wall time.
    """

    classes: Path | None = None
    probabilities: Path | None = None
    confidence: Path | None = None
    vectors: Path | None = None
    preview: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    tiles: int = 0
    seconds: float = 0.0
    megapixels_per_second: float = 0.0


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


# ----------------------------------------------------------------------------- model adapters
def _as_logits(out: Any) -> torch.Tensor:
    """The segmentation logits of a model output (tensor, ``{"out": ...}`` or a list)."""
    if isinstance(out, dict):
        for key in ("out", "logits", "masks"):
            if key in out:
                return out[key]
        raise DataError(f"Segmentation model returned a dict without 'out'/'logits': {list(out)}")
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


def _probabilities(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits ``(B, K, h, w)`` -> probabilities ``(B, K', H, W)`` (K=1: sigmoid -> 2 classes)."""
    logits = logits.float()
    if logits.shape[-2:] != size:
        logits = torch.nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def _argmax0(p: torch.Tensor) -> torch.Tensor:
    """``p.argmax(0)`` for ``(K, H, W)``: a running max over K planes (torch's strided argmax
    over the first dim is several times slower on CPU)."""
    if p.shape[0] > 32:
        return p.movedim(0, -1).contiguous().argmax(-1)
    best, idx = p[0].clone(), torch.zeros(p.shape[1:], dtype=torch.long)
    for k in range(1, p.shape[0]):
        better = p[k] > best
        best = torch.where(better, p[k], best)
        idx.masked_fill_(better, k)
    return idx


def _autocast(device: torch.device) -> Any:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cpu", enabled=False)


# ----------------------------------------------------------------------------- input reading
class _SceneReader:
    """Reads normalised, reflect-padded strips (or tiles) of one scene / time stack."""

    def __init__(self, spec: PredictionSpec, paths: Sequence[PathLike]) -> None:
        from rsfm.data.rasters import file_band_names, inspect_raster

        self.paths = [str(p) for p in paths]
        info = inspect_raster(self.paths[0])
        file_bands = spec.file_bands
        if (
            spec.bands is not None and file_bands is None and spec.sensor is None
            and file_band_names(info) is None
            and all(isinstance(b, str) for b in spec.bands)
        ):
            # The file's bands are unnamed: accept it when the count matches the model's bands.
            if info.count == len(spec.bands):
                log.warning(
                    "'%s' has no band descriptions; assuming its %d bands are the model's %s in "
                    "that order.", self.paths[0], info.count, list(spec.bands),
                )
                file_bands = tuple(str(b) for b in spec.bands)
            else:
                raise DataError(
                    f"'{self.paths[0]}' has {info.count} unnamed bands but the model needs "
                    f"{len(spec.bands)} bands {list(spec.bands)}; give the file's band order "
                    "(--file-bands / PredictionSpec.file_bands) or band descriptions."
                )
        self.spec = spec.with_overrides(file_bands=file_bands)
        self.reader = self.spec.make_reader()
        for p in self.paths:  # band errors now, before any output is created
            self.reader.plan(p)
        self.info = info
        self.per_tile = self.reader.normalizer.mode in ("minmax", "standardize")
        self.temporal = len(self.paths) > 1 or spec.num_frames > 1

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
            rows = Window(0, max(r0, 0), self.info.width, min(r0 + tile, self.info.height) - max(r0, 0))
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
            self.ds.write(self.buf[:, : self.fill], window=Window(0, self.top, self.ds.width, self.fill))
            self.top += self.fill
            self.fill = 0


def _profile(info: Any, count: int, dtype: str, nodata: float | None, block: int) -> dict[str, Any]:
    return {
        "driver": "GTiff", "width": info.width, "height": info.height, "count": count,
        "dtype": dtype, "crs": info.crs, "transform": info.transform, "nodata": nodata,
        "tiled": True, "blockxsize": block, "blockysize": block, "compress": "deflate",
        "predictor": 2 if dtype.startswith("uint") else 1, "BIGTIFF": "IF_SAFER",
    }


def _to_cog(src: Path, dst: Path, resampling: str) -> None:
    """Copy a tiled GeoTIFF into a COG (overviews, tiles, deflate); GDAL streams the copy."""
    from rasterio.shutil import copy as rio_copy

    rio_copy(
        str(src), str(dst), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512,
        OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
    )


def _companion(out: Path, suffix: str) -> Path:
    return out.with_name(out.stem + suffix)


# ----------------------------------------------------------------------------- the engine
def predict_scene(
    model: Callable[[torch.Tensor], Any],
    inputs: PathLike | Sequence[PathLike],
    out: PathLike,
    spec: PredictionSpec,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    probabilities: str | None = None,
    confidence: bool = False,
    threshold: float | None = None,
    min_object_size: int = 0,
    max_hole_size: int = 0,
    vectors: PathLike | None = None,
    preview: PathLike | None = None,
    cog: bool = True,
    progress: bool = True,
) -> PredictionResult:
    """Predict one scene (or one co-registered time stack) and write the results.

    Args:
        model: A callable taking ``(B, C, H, W)`` (``(B, C, T, H, W)`` for time stacks) float
            tensors. Segmentation: returns logits ``(B, K, h, w)``; detection: torchvision-style
            list of dicts with ``boxes`` (tile pixels, xyxy), ``labels``, ``scores``.
        inputs: The scene GeoTIFF, or the time steps of one scene in time order.
        out: Output path. Segmentation: the class GeoTIFF; detection: a ``.geojson``/``.gpkg``.
        spec: Bands, normalisation, classes and tiling (see :class:`PredictionSpec`).
        batch_size: Tiles per forward pass.
        device: Torch device (default: CUDA when available).
        probabilities: Also write per-class probabilities: ``"uint8"`` (0..254 = 0..1, 255 =
            nodata, GDAL scale set) or ``"float32"``. Written to ``<out>_probs.tif``.
        confidence: Also write the max class probability (uint8, 0..254) to ``<out>_conf.tif``.
        threshold: Two-class models: class 1 where its probability >= threshold (else argmax).
        min_object_size: Remove objects smaller than this many pixels (see
            :func:`~rsfm.inference.postprocess.clean_raster`).
        max_hole_size: Fill holes smaller than this many pixels.
        vectors: Also vectorise the result into this GeoJSON / GeoPackage.
        preview: Also write a quicklook PNG with the prediction overlaid.
        cog: Write a Cloud-Optimised GeoTIFF (with overviews); else a tiled GeoTIFF.
        progress: Show a progress bar (tiles done / total, MPix/s).

    Returns:
        A :class:`PredictionResult`.

    Raises:
        DataError: Unreadable input, time steps not co-registered.
        BandError: A band the model needs is missing from the scene (the message names it).
    """
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not paths:
        raise ConfigError("predict_scene needs at least one input file.")
    if len(paths) != spec.num_frames:
        raise ConfigError(
            f"The model takes {spec.num_frames} time step(s) but {len(paths)} file(s) were given "
            f"for one scene: {[str(p) for p in paths]}."
        )
    if probabilities not in (None, "uint8", "float32"):
        raise ConfigError(f"probabilities must be None, 'uint8' or 'float32', got {probabilities!r}.")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # GDAL's block cache defaults to 5% of RAM and is what grows on huge scenes: cap it (unless
    # the user set GDAL_CACHEMAX) so memory stays bounded by a few tile rows.
    cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": _GDAL_CACHE_MB}
    with rasterio.Env(**cache):
        reader = _SceneReader(spec, paths)
        if isinstance(model, torch.nn.Module):
            model = model.to(dev).eval()
        engine = _Engine(model, reader, spec, dev, batch_size, progress)
        t0 = time.perf_counter()
        if spec.task == "detection":
            result = engine.run_detection(out)
        else:
            result = engine.run_segmentation(
                out, probabilities, confidence, threshold, min_object_size, max_hole_size, cog
            )
            if vectors is not None:
                from rsfm.inference.vectorize import vectorize_raster

                result.vectors = Path(vectors)
                result.summary = vectorize_raster(result.classes, vectors)
    result.seconds = time.perf_counter() - t0
    mpix = reader.info.width * reader.info.height / 1e6
    result.megapixels_per_second = mpix / max(result.seconds, 1e-9)
    if preview is not None:
        from rsfm.inference.show import preview_scene

        result.preview = preview_scene(paths[-1], result.classes or result.vectors, preview, spec=spec)
    log.info(
        "%s: %d tiles, %.1f MPix in %.1f s (%.2f MPix/s)", paths[0], result.tiles, mpix,
        result.seconds, result.megapixels_per_second,
    )
    return result


_GDAL_CACHE_MB = 256  # MB; GDAL reads values below 100000 as megabytes


class _Engine:
    def __init__(
        self, model: Callable, reader: _SceneReader, spec: PredictionSpec, device: torch.device,
        batch_size: int, progress: bool,
    ) -> None:
        self.model, self.reader, self.spec, self.device = model, reader, spec, device
        self.batch_size = max(1, int(batch_size))
        self.tile = spec.tile_size
        self.overlap = spec.tile_overlap
        info = reader.info
        self.rows = tile_offsets(info.height, self.tile, self.overlap)
        self.cols = tile_offsets(info.width, self.tile, self.overlap)
        self.n_tiles = len(self.rows) * len(self.cols)
        self.progress = progress

    def _bar(self) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=self.n_tiles, unit="tile", disable=not self.progress, desc="predict",
                    dynamic_ncols=True)

    def _strips(self) -> Any:
        """Yields ``(row offset, tiles, bad)`` per tile row; the next strip is read in a thread."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(self.reader.strip, self.rows[0], self.tile, self.cols)
            for i, r0 in enumerate(self.rows):
                tiles, bad = fut.result()
                if i + 1 < len(self.rows):
                    fut = pool.submit(self.reader.strip, self.rows[i + 1], self.tile, self.cols)
                yield r0, tiles, bad

    def _forward(self, tiles: list[np.ndarray]) -> Any:
        x = torch.from_numpy(np.stack(tiles)).to(self.device, non_blocking=True)
        with torch.inference_mode(), _autocast(self.device):
            return self.model(x)

    def _batches(self, tiles: list[np.ndarray]) -> Any:
        for i in range(0, len(tiles), self.batch_size):
            yield i, tiles[i : i + self.batch_size]

    # -- segmentation
    def run_segmentation(
        self, out: Path, probabilities: str | None, confidence: bool, threshold: float | None,
        min_object_size: int, max_hole_size: int, cog: bool,
    ) -> PredictionResult:
        info, T, ov = self.reader.info, self.tile, self.overlap
        H, W = info.height, info.width
        c_first = self.cols[0]
        width = self.cols[-1] + T - c_first  # buffer columns, scene col = buffer col + c_first
        weights = torch.from_numpy(blend_weights(T, ov))
        acc: torch.Tensor | None = None  # (K, T, width) weighted probabilities
        wsum = torch.zeros(T, width)
        bad_buf = np.zeros((T, W), dtype=bool)
        tmpdir = Path(tempfile.mkdtemp(prefix=".rsfm-predict-", dir=out.parent))
        writers: dict[str, Any] = {}
        files: dict[str, Any] = {}
        state: dict[str, Any] = {"K": None}
        block = 512 if min(H, W) >= 512 else 256 if min(H, W) >= 256 else 128
        result = PredictionResult(tiles=self.n_tiles)
        t_start = time.perf_counter()

        def open_outputs(K: int) -> None:
            names = self.spec.class_names(K)
            cls_dtype = "uint8" if K < 255 else "uint16"
            nd = 255 if cls_dtype == "uint8" else 65535
            state.update(K=K, nd=nd, names=names)
            files["classes"] = rasterio.open(tmpdir / "classes.tif", "w", **_profile(info, 1, cls_dtype, nd, block))
            ds = files["classes"]
            ds.set_band_description(1, "class")
            ds.write_colormap(1, {i: (*c, 255) for i, c in enumerate(class_colors(K, self.spec.colors))})
            ds.update_tags(**_tags(self.spec, names))
            for i, n in enumerate(names):
                ds.update_tags(1, **{f"CLASS_{i}": n})
            if probabilities:
                pd = "uint8" if probabilities == "uint8" else "float32"
                files["probs"] = rasterio.open(
                    tmpdir / "probs.tif", "w", **_profile(info, K, pd, 255 if pd == "uint8" else float("nan"), block)
                )
                for i, n in enumerate(names):
                    files["probs"].set_band_description(i + 1, f"p({n})")
                if pd == "uint8":
                    files["probs"].scales = [1 / 254] * K
                files["probs"].update_tags(**_tags(self.spec, names))
            if confidence:
                files["conf"] = rasterio.open(tmpdir / "conf.tif", "w", **_profile(info, 1, "uint8", 255, block))
                files["conf"].set_band_description(1, "confidence")
                files["conf"].scales = [1 / 254]
            for key, ds in files.items():
                writers[key] = _BlockRowWriter(ds, block)

        def emit(a: int, b: int, acc_rows: torch.Tensor, w_rows: torch.Tensor, bad_rows: np.ndarray) -> None:
            """Finish scene rows [a, b): probabilities -> classes, nodata, write."""
            cols = slice(-c_first, -c_first + W)
            p = acc_rows[:, :, cols] / w_rows[None, :, cols]
            if threshold is not None and p.shape[0] == 2:
                cls = (p[1] >= threshold).to(torch.uint8)
            else:
                cls = _argmax0(p)
            cls_np = cls.numpy().astype(files["classes"].dtypes[0])
            cls_np[bad_rows] = state["nd"]
            writers["classes"].write(cls_np[None])
            if "probs" in writers:
                if probabilities == "uint8":
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

        bar = self._bar()
        done = 0
        try:
            for ri, (r0, tiles, bad) in enumerate(self._strips()):
                # invalid-pixel mask of this strip's scene rows, aligned to the buffer rows
                top = max(r0, 0) - r0
                bad_buf[top : top + bad.shape[0]] = bad
                for i, batch in self._batches(tiles):
                    probs = _probabilities(_as_logits(self._forward(batch)), (T, T)).cpu()
                    if acc is None:
                        open_outputs(probs.shape[1])
                        acc = torch.zeros(probs.shape[1], T, width)
                    probs *= weights
                    for j in range(probs.shape[0]):
                        c = self.cols[i + j] - c_first
                        acc[:, :, c : c + T] += probs[j]
                        wsum[:, c : c + T] += weights
                    done += len(batch)
                    bar.update(len(batch))
                    el = time.perf_counter() - t_start
                    bar.set_postfix_str(f"{done * (T - ov) ** 2 / 1e6 / max(el, 1e-9):.2f} MPix/s", refresh=False)
                last = ri + 1 == len(self.rows)
                nxt = r0 + T if last else self.rows[ri + 1]
                # rows [r0, nxt) are final; crop them to the scene
                a, b = max(r0, 0), min(nxt, H)
                if b > a:
                    emit(a, b, acc[:, a - r0 : b - r0], wsum[a - r0 : b - r0], bad_buf[a - r0 : b - r0])
                shift = nxt - r0
                if not last:  # move the unfinished rows to the top of the buffers
                    acc[:, : T - shift] = acc[:, shift:].clone()
                    acc[:, T - shift :] = 0
                    wsum[: T - shift] = wsum[shift:].clone()
                    wsum[T - shift :] = 0
                    bad_buf[: T - shift] = bad_buf[shift:].copy()
                    bad_buf[T - shift :] = False
            bar.close()
            for w in writers.values():
                w.flush()
            for ds in files.values():
                ds.close()
            final = {k: tmpdir / f"{k}.tif" for k in files}
            if min_object_size or max_hole_size:
                from rsfm.inference.postprocess import clean_raster

                cleaned = tmpdir / "classes_clean.tif"
                clean_raster(final["classes"], cleaned, min_object_size=min_object_size,
                             max_hole_size=max_hole_size)
                final["classes"] = cleaned
            targets = {"classes": out, "probs": _companion(out, "_probs.tif"),
                       "conf": _companion(out, "_conf.tif")}
            for key, src in final.items():
                if cog:
                    _to_cog(src, targets[key], "NEAREST" if key == "classes" else "AVERAGE")
                else:
                    shutil.move(str(src), targets[key])
            result.classes = out
            result.probabilities = targets["probs"] if "probs" in final else None
            result.confidence = targets["conf"] if "conf" in final else None
        finally:
            for ds in files.values():
                if not ds.closed:
                    ds.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
        return result

    # -- detection
    def run_detection(self, out: Path) -> PredictionResult:
        from rsfm.inference.vectorize import merge_tile_boxes, write_boxes

        info = self.reader.info
        boxes, scores, labels = [], [], []
        bar = self._bar()
        for r0, tiles, _bad in self._strips():
            for i, batch in self._batches(tiles):
                dets = self._forward(batch)
                for j, d in enumerate(dets):
                    keep = d["scores"] >= self.spec.score_threshold
                    b = d["boxes"][keep].float().cpu().clone()
                    b[:, [0, 2]] += self.cols[i + j]
                    b[:, [1, 3]] += r0
                    boxes.append(b)
                    scores.append(d["scores"][keep].float().cpu())
                    # torchvision detectors reserve label 0 for background: classes are 1..K
                    labels.append(d["labels"][keep].cpu() - 1)
                bar.update(len(batch))
        bar.close()
        if boxes:
            b, s, lab = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        else:
            b, s, lab = torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long)
        # tiles are reflect-padded at the scene edge: drop mirrored detections centred outside it
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        inside = (cx >= 0) & (cx < info.width) & (cy >= 0) & (cy < info.height)
        b, s, lab = b[inside], s[inside], lab[inside]
        b, s, lab = merge_tile_boxes(b, s, lab, (info.height, info.width))
        names = self.spec.class_names(int(lab.max()) + 1 if len(lab) else len(self.spec.classes or ()))
        summary = write_boxes(out, b, s, lab, info.transform, info.crs, names)
        return PredictionResult(vectors=out, summary=summary, tiles=self.n_tiles)


def _tags(spec: PredictionSpec, names: list[str]) -> dict[str, str]:
    from rsfm import __version__

    return {
        "RSFM_VERSION": __version__, "RSFM_TASK": spec.task, "CLASSES": json.dumps(names),
        "BANDS": json.dumps(list(spec.bands) if spec.bands is not None else None),
        "TILE_SIZE": str(spec.tile_size), "TILE_OVERLAP": str(spec.tile_overlap),
    }


# ----------------------------------------------------------------------------- public entry point
def _expand_inputs(inputs: PathLike | Sequence[PathLike]) -> list[Path]:
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in _RASTER_SUFFIXES)
            if not found:
                raise DataError(f"No raster files ({', '.join(_RASTER_SUFFIXES)}) in folder '{p}'.")
            files.extend(found)
        elif not p.exists():
            raise DataError(f"Input file not found: '{p}'.")
        else:
            files.append(p)
    return files


def predict(
    model: Any,
    inputs: PathLike | Sequence[PathLike],
    out: PathLike | None = None,
    *,
    spec: PredictionSpec | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    detection_format: str = ".geojson",
    **kwargs: Any,
) -> PredictionResult | list[PredictionResult]:
    """Predict GeoTIFF scenes with a model and write georeferenced results.

    Examples::

        rsfm.predict("runs/flood", "scene.tif", "flood.tif", preview="flood.png")
        rsfm.predict(model, ["t1.tif", "t2.tif", "t3.tif"], "out.tif")  # 3-frame Prithvi
        rsfm.predict("model.onnx", "scenes/", "predictions/", vectors=True)

    Args:
        model: An ``RsfmModel`` (its ``config`` gives task/classes), a run directory or Hub repo
            id, an exported ``.onnx`` / TorchScript ``.pt`` file, or any callable (then pass
            ``spec``).
        inputs: A GeoTIFF, several, or a folder of them. For a model with ``num_frames = T``,
            consecutive groups of T files are the time steps of one scene, in time order.
        out: Output file for a single scene, else a folder (default: next to the input,
            ``<stem>_pred.tif``).
        spec: Bands, normalisation, classes and tiling; default from the model's config.
        tile_size: Override of the spec's tile size.
        overlap: Override of the spec's overlap.
        detection_format: Suffix of detection outputs when ``out`` is a folder.
        **kwargs: Options of :func:`predict_scene` (``batch_size``, ``probabilities``,
            ``confidence``, ``threshold``, ``min_object_size``, ``max_hole_size``, ``preview``,
            ``vectors`` (a path, or ``True`` for ``<out>.gpkg``), ``device``, ``progress``, ``cog``).

    Returns:
        One :class:`PredictionResult` for one scene, else a list.
    """
    from rsfm.inference.loading import load_model

    if spec is not None and callable(model) and not isinstance(model, (str, Path)):
        net = model
    else:
        net, base = load_model(model)
        spec = spec or base
    if spec.mean is None and spec.normalize is None and spec.value_scale == 1.0:
        log.warning("The model's spec has no normalisation statistics: raw pixel values are fed as is.")
    spec = spec.with_overrides(tile_size=tile_size, overlap=overlap)
    files = _expand_inputs(inputs)
    T = spec.num_frames
    if len(files) % T:
        raise ConfigError(
            f"The model takes {T} time steps per scene but {len(files)} files were given; give "
            f"the files of each scene in time order ({T} per scene)."
        )
    groups = [files[i : i + T] for i in range(0, len(files), T)]
    det = spec.task == "detection"
    suffix = detection_format if det else ".tif"
    single = len(groups) == 1 and out is not None and Path(out).suffix != ""
    results = []
    for group in groups:
        if single:
            target = Path(out)  # type: ignore[arg-type]
        else:
            folder = Path(out) if out is not None else group[-1].parent
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{group[-1].stem}_pred{suffix}"
        kw = dict(kwargs)
        if kw.get("vectors") is True:
            kw["vectors"] = target.with_suffix(".gpkg")
        if not single and kw.get("preview") is not None and len(groups) > 1:
            kw["preview"] = target.with_suffix(".png")
        results.append(predict_scene(net, group, target, spec, **kw))
    return results[0] if len(results) == 1 else results

