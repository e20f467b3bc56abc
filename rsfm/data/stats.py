"""``rsfm stats``: exact per-band mean/std over a set of rasters, streamed block by block.

Nodata/NaN values are excluded. Partial results are merged with Chan et al.'s parallel variance
formula in float64, so the result equals a single pass over all valid pixels (no sampling, no
whole-file reads). The YAML it writes can be included by a recipe::

    bands: [VV, VH]
    mean: [-10.4, -17.2]
    std: [4.1, 4.6]
    count: 1234567
    value_scale: 1.0
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsfm.bands import Band, declared_band
from rsfm.data.rasters import (
    bands_of_file,
    get_handle,
    inspect_raster,
    invalid_mask,
    list_images,
    read_window,
)
from rsfm.data.reader import ImageReader
from rsfm.errors import ConfigError, DataError
from rsfm.io import atomic_write_text, check_output_path
from rsfm.spec import InputSpec

__all__ = ["RunningStats", "add_arguments", "check_stats_output", "compute_stats", "run"]

log = logging.getLogger(__name__)


class RunningStats:
    """Per-band count, mean and sum of squared deviations, mergeable chunk by chunk."""

    def __init__(self, n_bands: int) -> None:
        self.n = np.zeros(n_bands, dtype=np.float64)
        self.mean = np.zeros(n_bands, dtype=np.float64)
        self.m2 = np.zeros(n_bands, dtype=np.float64)
        self.min = np.full(n_bands, np.inf)
        self.max = np.full(n_bands, -np.inf)

    def update(self, band: int, values: np.ndarray) -> None:
        """Add valid ``values`` (1-D) of ``band``."""
        if values.size == 0:
            return
        v = values.astype(np.float64)
        nb = float(v.size)
        mb = float(v.mean())
        m2b = float(((v - mb) ** 2).sum())
        na = self.n[band]
        delta = mb - self.mean[band]
        tot = na + nb
        self.mean[band] += delta * nb / tot
        self.m2[band] += m2b + delta * delta * na * nb / tot
        self.n[band] = tot
        self.min[band] = min(self.min[band], float(v.min()))
        self.max[band] = max(self.max[band], float(v.max()))

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per band."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.m2 / self.n)


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(list_images(p) if p.is_dir() else [p])
    if not files:
        raise DataError("rsfm stats: no input rasters.")
    return files


def compute_stats(
    paths: Sequence[str | Path],
    bands: Sequence[str | int] | None = None,
    file_bands: Sequence[str] | None = None,
    sensor: str | None = None,
    nodata: float | None = None,
    value_scale: float = 1.0,
) -> dict[str, Any]:
    """Exact per-band mean/std of valid pixels over rasters (files or folders of chips).

    Args:
        paths: Raster files and/or folders of rasters.
        bands: Bands to summarise (names or 1-based indexes; default all).
        file_bands: Band order of files without band descriptions.
        sensor: Sensor of the files.
        nodata: Nodata override.
        value_scale: Raw values are multiplied by this first (as in normalisation).

    Returns:
        ``{bands, mean, std, count, value_scale, min, max, files}`` with plain Python values.

    Raises:
        ConfigError: ``value_scale`` is not a finite number > 0.
        DataError: Unreadable files, band mismatches, or no valid pixel at all.
    """
    if not (math.isfinite(value_scale) and value_scale > 0):
        raise ConfigError(f"--value-scale must be a finite number > 0 (got {value_scale}); "
                          "it multiplies the raw values, e.g. 0.0001 for reflectance x 10000.",
                          key="value_scale")
    files = _expand(paths)
    wanted = _stats_bands(files[0], bands, file_bands, sensor)
    reader = ImageReader(InputSpec(bands=wanted, nodata=nodata, sensor=sensor,
                                   file_bands=tuple(file_bands) if file_bands else None))
    acc: RunningStats | None = None
    for path in files:
        plan = reader.plan(path)
        idx = plan.selection.indexes
        acc = acc or RunningStats(len(idx))
        ds = get_handle(path)
        for _, window in ds.block_windows(1):  # the file's own blocks: each is decoded once
            raw = read_window(path, window, idx)
            bad_values, _ = invalid_mask(raw, plan.nodata)
            for b in range(len(idx)):
                acc.update(b, raw[b][~bad_values[b]] * value_scale)
    if acc is None or not acc.n.any():
        raise DataError(f"rsfm stats: every pixel of {len(files)} file(s) is nodata "
                        f"(e.g. '{files[0]}'); check nodata and bands.")
    return {
        "bands": reader.band_names,
        "mean": [float(x) for x in acc.mean],
        "std": [float(x) for x in acc.std],
        "count": int(acc.n.min()),
        "value_scale": float(value_scale),
        "min": [float(x) for x in acc.min],
        "max": [float(x) for x in acc.max],
        "files": len(files),
    }


def _stats_bands(first: Path, bands: Sequence[str | int] | None,
                 file_bands: Sequence[str] | None, sensor: str | None) -> tuple[Band, ...]:
    """The bands to summarise: every band of the first file, or the named/numbered ones."""
    in_file = bands_of_file(inspect_raster(first), file_bands, sensor)
    if bands is None:
        return in_file
    out = []
    for b in bands:
        if isinstance(b, int) or str(b).isdigit():  # a 1-based index: that band of the file
            i = int(b)
            out.append(in_file[i - 1] if 1 <= i <= len(in_file) else declared_band(f"band{i}"))
        else:
            out.append(declared_band(str(b), sensor=sensor))
    return tuple(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm stats``."""
    parser.add_argument("paths", nargs="+", help="raster files or folders of chips")
    parser.add_argument("--bands", nargs="+", help="band names or 1-based indexes (default: all)")
    parser.add_argument("--file-bands", nargs="+", help="band order of files without descriptions")
    parser.add_argument("--sensor", help="sensor of the files (band order, band names)")
    parser.add_argument("--nodata", type=float, help="nodata value (overrides the files')")
    parser.add_argument("--value-scale", type=float, default=1.0,
                        help="multiply raw values by this first (e.g. 0.0001)")
    parser.add_argument("-o", "--out", default="stats.yaml", help="output YAML (default stats.yaml)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")


def check_stats_output(out: str | os.PathLike[str], files: Sequence[Path], force: bool) -> Path:
    """Fail before any pixel is read when ``out`` cannot take the statistics.

    Raises:
        ConfigError: ``out`` is a folder or one of the input rasters (even with ``force``), or
            an existing file without ``force``.
    """
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"-o '{out}' is a folder; give a YAML file name such as "
                          f"'{out / 'stats.yaml'}'.")
    check_output_path(out, inputs=files, what="-o",
                      hint="write the statistics to a new .yaml file")
    if os.path.lexists(out) and not force:
        raise ConfigError(f"'{out}' exists; pass --force to overwrite it, or choose another -o.")
    return out


def run(args: argparse.Namespace) -> int:
    """Check the output, compute the statistics and write the YAML (atomically)."""
    import yaml

    bands = None
    if args.bands:
        bands = [int(b) if b.isdigit() else b for b in args.bands]
    files = _expand(args.paths)
    check_stats_output(args.out, files, args.force)  # before any pixel is read
    stats = compute_stats(files, bands, args.file_bands, args.sensor, args.nodata,
                          args.value_scale)
    atomic_write_text(args.out, yaml.safe_dump(stats, sort_keys=False))
    log.info("wrote %s: %d bands, %d valid pixels per band, %d files", args.out,
             len(stats["bands"]), stats["count"], stats["files"])
    return 0
