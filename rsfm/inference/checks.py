"""Checks that run before prediction spends any compute (STYLE.md: check before you spend).

- outputs: the format fits the task (detection writes vectors, segmentation a GeoTIFF), options
  fit the task, no output overwrites an input or a file of the model folder being read (its
  weights, config, recipe, metrics, checkpoints; an earlier rsfm prediction there may be
  replaced), an existing GeoTIFF is replaced only when rsfm predict wrote it (a user's raster
  never is), an existing ``.json`` is replaced only when it is GeoJSON, every output folder can
  be created and written;
- inputs: each scene has the bands the model needs (the message names the file, the model's
  bands and the file's bands), time steps are co-registered;
- values: a scene without any valid pixel is reported; the first window of a scene is compared
  with the model's normalisation statistics, and a warning says when they are far apart (a
  uint8 RGB file read as dB SAR through forced ``--file-bands``, reflectance without its value
  scale...).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window

from rsfm.data.rasters import file_band_names, inspect_raster, invalid_mask, read_window
from rsfm.data.reader import ImageReader
from rsfm.errors import BandError, ConfigError, DataError
from rsfm.inference.vectorize import VECTOR_SUFFIXES, vector_backend, vector_driver
from rsfm.io import FileSet, check_output_path
from rsfm.preflight import check_writable_dir
from rsfm.spec import InputSpec

__all__ = [
    "PREVIEW_SUFFIXES",
    "RASTER_SUFFIXES",
    "check_outputs",
    "check_value_range",
    "fit_unnamed_bands",
    "is_rsfm_prediction",
    "output_targets",
    "scene_reader",
]

log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff")
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
FAR_SIGMAS = 6.0  # a band whose median lies further from the training mean (in std) is "far"


def is_rsfm_prediction(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a GeoTIFF written by ``rsfm predict`` (it carries an ``RSFM_TASK``
    tag), or the ``_probs`` / ``_conf`` companion of one."""
    path = Path(path)
    if path.suffix.lower() not in RASTER_SUFFIXES or not path.is_file():
        return False
    try:
        with rasterio.open(path) as ds:
            if "RSFM_TASK" in ds.tags():
                return True
    except (rasterio.errors.RasterioError, OSError):
        return False
    for companion in ("_probs", "_conf"):
        if path.stem.endswith(companion) and len(path.stem) > len(companion):
            main = path.with_name(path.stem[: -len(companion)] + path.suffix)
            return main != path and is_rsfm_prediction(main)
    return False


def _looks_like_geojson(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b'"FeatureCollection"' in head or b'"Feature"' in head


def output_targets(task: str, out: str | os.PathLike[str], *,
                   vectors: str | os.PathLike[str] | None = None,
                   preview: str | os.PathLike[str] | None = None,
                   probabilities: str | None = None, confidence: bool = False) -> list[Path]:
    """Every file a scene's prediction writes: the main output, the segmentation companions
    (``<out>_probs.tif``, ``<out>_conf.tif``, the vectors and their ``.summary.json``), the
    preview."""
    out = Path(out)
    targets = [out]
    if task == "segmentation":
        wanted = {"_probs.tif": probabilities is not None, "_conf.tif": confidence}
        targets += [out.with_name(out.stem + s) for s, on in wanted.items() if on]
        if vectors is not None:
            targets += [Path(vectors), Path(vectors).with_name(Path(vectors).name + ".summary.json")]
    elif vectors is not None:
        targets.append(Path(vectors))
    if preview is not None:
        targets.append(Path(preview))
    return targets


def check_outputs(
    task: str, out: str | os.PathLike[str], *,
    inputs: Sequence[str | os.PathLike[str]] | FileSet = (),
    vectors: str | os.PathLike[str] | None = None, preview: str | os.PathLike[str] | None = None,
    num_classes: int | None = None, probabilities: str | None = None, confidence: bool = False,
    threshold: float | None = None, min_object_size: int = 0, max_hole_size: int = 0,
    model_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Fail before any compute when the outputs cannot be written as asked.

    Args:
        task: ``segmentation`` or ``detection``.
        out: The main output (class GeoTIFF, or the detection vector file).
        inputs: Every file the prediction reads (all scenes, an exported model file), or a
            :class:`~rsfm.io.FileSet` of them: never overwritten.
        vectors: Segmentation polygons file.
        preview: Quicklook image.
        num_classes: The model's classes (for ``threshold``).
        probabilities: Segmentation option, checked against the task.
        confidence: Segmentation option.
        threshold: Segmentation option (two-class models).
        min_object_size: Segmentation option.
        max_hole_size: Segmentation option.
        model_dir: The run directory or saved model folder the model is read from: none of
            its files is overwritten (an earlier rsfm prediction raster there may be).

    Raises:
        ConfigError: Names the output and the format or option at fault, or the input / model
            file an output would overwrite, or an existing GeoTIFF rsfm predict did not write.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if task == "detection":
        if suffix not in VECTOR_SUFFIXES:
            raise ConfigError(
                f"A detection model writes its boxes as vectors ({', '.join(VECTOR_SUFFIXES)}), "
                f"not '{out.name}': give an output such as -o {out.with_suffix('.geojson')}"
                + (" and drop --vectors (it is for segmentation maps)." if vectors else ".")
            )
        seg_only = {"--vectors": vectors is not None, "--probabilities": probabilities is not None,
                    "--confidence": confidence, "--threshold": threshold is not None,
                    "--min-object-size": min_object_size > 0, "--fill-holes": max_hole_size > 0}
        bad = [k for k, used in seg_only.items() if used]
        if bad:
            raise ConfigError(f"{', '.join(bad)} only apply to segmentation; a detection model "
                              f"writes boxes to '{out}'. Drop {', '.join(bad)}.")
    elif task == "segmentation":
        if suffix not in RASTER_SUFFIXES:
            raise ConfigError(
                f"A segmentation model writes a class GeoTIFF, not '{out.name}': give an output "
                f"such as -o {out.with_suffix('.tif')}"
                + (f" and --vectors {out}." if suffix in VECTOR_SUFFIXES else ".")
            )
        if vectors is not None:
            vector_driver(vectors)
            if vector_backend() == "json" and Path(vectors).suffix.lower() not in (
                    ".geojson", ".json"):
                raise ConfigError(f"Writing '{vectors}' needs pyogrio or fiona: pip install "
                                  "'rsfm[vector]', or write a .geojson.")
        if probabilities not in (None, "uint8", "float32"):
            raise ConfigError(f"probabilities must be 'uint8' or 'float32', got {probabilities!r}.")
        if threshold is not None and num_classes is not None and num_classes > 2:
            raise ConfigError(f"--threshold applies to two-class models; this model has "
                              f"{num_classes} classes (argmax decides). Drop --threshold.")
    else:
        raise ConfigError(f"predict writes maps of segmentation and detection models; this is a "
                          f"{task} model. Use the model directly for image-level classes.")
    if preview is not None and Path(preview).suffix.lower() not in PREVIEW_SUFFIXES:
        raise ConfigError(f"Preview '{preview}' must be one of {', '.join(PREVIEW_SUFFIXES)}.")
    targets = output_targets(task, out, vectors=vectors, preview=preview,
                             probabilities=probabilities, confidence=confidence)
    inputs = inputs if isinstance(inputs, FileSet) else FileSet(inputs)
    for target in targets:
        if target.is_dir():
            raise ConfigError(f"Output '{target}' is a folder; give a file name.")
        check_output_path(target, inputs=inputs, model_dir=model_dir, what="Output",
                          replaceable=is_rsfm_prediction, hint="choose another output name")
        if (target.suffix.lower() in RASTER_SUFFIXES and os.path.lexists(target)
                and not is_rsfm_prediction(target)):
            raise ConfigError(f"Output '{target}' exists and is not a prediction written by rsfm "
                              "(it carries no RSFM_TASK tag); predict only replaces its own "
                              "earlier rasters: choose another output name, or delete the file "
                              "first.")
        if (vectors is not None and target == Path(vectors) and target.suffix.lower() == ".json"
                and target.is_file() and not _looks_like_geojson(target)):
            raise ConfigError(f"Output '{target}' exists and is not GeoJSON; vectors never "
                              "replace other JSON files: name them .geojson, or choose another "
                              "name.")
        check_writable_dir(target.parent, "Output folder")


def _file_bands_text(path: Path, spec: InputSpec) -> str:
    try:
        info = inspect_raster(path)
        names = file_band_names(info, spec.file_bands, spec.sensor)
    except (DataError, BandError):
        return "bands that cannot be read"
    if names is None:
        return f"{info.count} bands without names"
    return f"{info.count} bands {list(names)}"


def _needs(spec: InputSpec) -> str:
    text = f"{len(spec.bands)} bands {spec.band_names}"
    if spec.indices:
        text += f" (plus spectral indices {list(spec.indices)} computed from them)"
    return text


def fit_unnamed_bands(spec: InputSpec, path: str | os.PathLike[str]) -> InputSpec:
    """``spec``, or a copy reading an unnamed file's bands in the model's order.

    A file whose bands carry no names (no descriptions, no ``file_bands``, no sensor) but has
    exactly as many bands as the model needs is read as holding them in the model's order, with
    a warning.

    Raises:
        BandError: The file's unnamed bands are not as many as the model needs.
    """
    if spec.file_bands is not None or spec.sensor is not None:
        return spec
    info = inspect_raster(path)
    if file_band_names(info) is not None:
        return spec
    if info.count != len(spec.bands):
        raise BandError(
            f"'{path}' has {info.count} bands without names but the model needs "
            f"{_needs(spec)}. Give the file's band order with --file-bands (Python: "
            "file_bands=[...]) or write band descriptions into the file."
        )
    log.warning("'%s' has no band names; reading its %d bands as the model's %s in that order.",
                path, info.count, spec.band_names)
    return replace(spec, file_bands=tuple(spec.band_names))


def scene_reader(spec: InputSpec, paths: Sequence[str | os.PathLike[str]]) -> ImageReader:
    """A reader for one scene (or time stack), with its band selection checked for every file.

    Raises:
        BandError: A file lacks a band the model needs (names the file, the model's bands and
            the file's bands).
        DataError: Unreadable files, or time steps not co-registered.
    """
    spec = fit_unnamed_bands(spec, paths[0])
    reader = ImageReader(spec)
    for p in paths:
        try:
            reader.plan(p)
        except BandError as err:
            raise BandError(f"{str(err).rstrip('.')}. The model needs {_needs(spec)}; '{p}' has "
                            f"{_file_bands_text(Path(p), spec)}. Name the file's bands in order "
                            "with --file-bands (Python: file_bands=[...]) if they are unnamed "
                            "or named differently.") from None
    if len(paths) > 1:
        reader.check_stack(paths)
    return reader


def _no_valid_pixel(reader: ImageReader, path: str | os.PathLike[str],
                    size: int = 256) -> str | None:
    """A warning when a decimated read of the whole scene finds no valid pixel (every one is
    nodata, NaN or inf): the prediction will be nodata everywhere."""
    plan = reader.plan(path)
    info = plan.info
    shape = (max(1, min(size, info.height)), max(1, min(size, info.width)))
    raw = read_window(path, None, plan.selection.indexes, out_shape=shape)
    if not invalid_mask(raw, plan.nodata)[1].all():
        return None
    nodata = "NaN/inf" if plan.nodata is None else f"nodata ({plan.nodata:g}), NaN or inf"
    message = (f"'{path}' holds no valid pixel (every pixel read is {nodata}): the prediction "
               "will be nodata everywhere. Check the file and its nodata value.")
    log.warning(message)
    return message


def check_value_range(reader: ImageReader, path: str | os.PathLike[str],
                      size: int = 512) -> str | None:
    """Warn when a scene holds no valid pixel, or its values are far from the model's
    normalisation statistics.

    The first reads the whole scene decimated; the second reads one window (the scene's centre,
    at most ``size`` pixels square) and compares each band's median with the training mean in units of the training standard deviation; only
    ``stats`` normalisation has statistics to compare with.

    Returns:
        The warning (also logged), or None.
    """
    spec = reader.spec
    empty = _no_valid_pixel(reader, path)
    if empty is not None:
        return empty
    norm = spec.normalization
    if norm.mode != "stats" or norm.mean is None or norm.std is None:
        return None
    info = reader.plan(path).info
    h, w = min(size, info.height), min(size, info.width)
    window = Window((info.width - w) // 2, (info.height - h) // 2, w, h)
    image, bad = reader.read(path, window)
    valid = ~bad
    if valid.sum() < 16:
        return None
    far = []
    for i, band in enumerate(spec.bands):
        z = image[i][valid]  # (raw * value_scale - mean) / std
        median = float(np.median(z))
        if abs(median) > FAR_SIGMAS:
            scale = norm.value_scale
            raw = (median * norm.std[i] + norm.mean[i]) / scale
            far.append(f"{band.name}: median {raw:.4g}, training mean {norm.mean[i] / scale:.4g}"
                       f" ± {norm.std[i] / scale:.4g} ({median:+.0f} std)")
    if not far:
        return None
    message = (
        f"'{path}' does not look like the model's training data: {'; '.join(far)} (file units). "
        "Predictions will probably be wrong. Check that the file holds the bands the model "
        f"needs ({spec.band_names}) in this order (--file-bands), in the units the model was "
        f"trained on (value scale {norm.value_scale:g})."
    )
    log.warning(message)
    return message
