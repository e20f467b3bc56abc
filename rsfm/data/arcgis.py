"""ArcGIS "Export Training Data For Deep Learning" folders, read as they are (no conversion).

An export folder (ArcGIS Pro / Image Server / ``arcgis.learn.export_training_data``) holds::

    <export>/
      images/                      000000000.tif, 000000001.tif ... (or .png/.jpg/.mrf chips;
                                   sidecars such as .jgw/.aux.xml/.ovr are ignored)
      labels/                      per metadata format (below)
      esri_model_definition.emd    JSON: Classes [{Value, Name, Color}], chip size, band names
      esri_accumulated_stats.json  JSON: MetaDataMode, tile size, per-band statistics
      map.txt                      "images\\000000000.tif  labels\\000000000.tif" per chip
      stats.txt                    human-readable summary (not read)

Metadata formats and what rsfm trains from them:

======================== ======================================= ===============================
MetaDataMode             labels/                                 rsfm task
======================== ======================================= ===============================
Classified_Tiles         ``<stem>.tif``: pixel = class value     segmentation (value map below)
PASCAL_VOC_rectangles    ``<stem>.xml``: ``<object><name>``      detection (boxes)
KITTI_rectangles         ``<stem>.txt``: class, -, -, -, l t r b detection (boxes)
RCNN_Masks               ``<class>/<stem>.tif``: instance ids    detection (boxes of instances)
Labeled_Tiles            ``<stem>.xml``: first object's class    classification
Imagenet                 none; chips in ``images/<class>/``      classification
MultiLabeled_Tiles, Export_Tiles, CycleGAN, Panoptic_Segmentation: read, not trainable (clear error)
======================== ======================================= ===============================

Also refused by name: Classified Tiles or Export Tiles with ``images2/`` (change detection,
Pix2Pix) and CycleGAN exports written as ``A/`` + ``B/`` (one export per domain). The folder
given may be the export or a folder/file inside it (``images/``, ``labels/``, the ``.emd``,
``map.txt``); the parent of export folders is an error naming them (:func:`exports_in`).

Decisions (following ``arcgis.learn``, Esri's own reader, unless said otherwise):

* **Pairs** come from globbing ``images/`` and taking ``labels/<stem>.<ext>`` by file name;
  ``map.txt`` only gives the label extension and is cross-checked (Windows ``\\`` paths, any
  whitespace, CRLF). Its paths may hold spaces (``C:\\Users\\Jane Doe\\...``, class folders
  such as ``Damaged building``): the image path ends at the first chip extension followed by
  whitespace, the rest of the line is the label path. Chips without a label are dropped with a
  warning (``arcgis.learn`` drops them silently); ``data.missing_labels: error`` makes that an
  error.
* **Format** comes from ``esri_accumulated_stats.json["MetaDataMode"]`` (old ``.emd`` files lack
  it), else from the ``.emd``.
* **Classes**: ``.emd["Classes"]`` is the one required key (``ClassValue``/``ClassName`` spellings
  and the stats file's list are accepted; colours ``[r, g, b]``, ``"#RRGGBB"`` or none; numbers
  may be strings). Export Tiles and CycleGAN exports need none; an Imagenet export without them
  takes its ``images/<class>/`` folders (values 1, 2, ... as ``arcgis.learn`` numbers them).
  Class ids follow ascending class value. Value 0 is NoData/background in Classified Tiles,
  RCNN Masks and Panoptic exports (label rasters), so it is no class there (its name and
  colour name the NoData class); in the box and tile formats it is a class like any other, as
  in ``arcgis.learn``.
* **Pixel value 0 (NoData) in Classified Tiles is class 0, "NoData"**, trained like any class,
  exactly what ``arcgis.learn`` users get (its class list is ``["NoData"] + names``; a model
  predicts NoData where no training feature was). Values ``1, 5, 20`` become ids ``1, 2, 3``.
  Write ``data.label_ignore_values: [0]`` to leave those pixels out of training instead (the
  classes are then the export's only). Label values between the class values that are no class
  (2, 3, 4 for ``1, 5, 20``) map to the ignore index; they and other unknown values are
  reported (count and file).
* **VOC/KITTI class tokens** may be the class value (what Pro writes: ``<name>1</name>``) or the
  class name; values win when a name looks like another class's value. Objects of a class the
  ``.emd`` does not list are skipped and reported, as ``arcgis.learn`` skips them.
* **RCNN Masks** become one box per instance (rsfm's detection data carries boxes, not masks).
* **Band names** (``InputRastersProps.BandNames``, may be empty strings) map onto rsfm's band
  catalog (``NearInfrared`` -> ``NIR_NARROW``...); 3 unnamed 8-bit bands are read as RGB, like
  ``arcgis.learn``. Esri's repeated ``VRE`` (Sentinel-2) become ``RED_EDGE_1..3``, and ``NIR``
  next to ``NarrowNIR`` is the broad NIR (B8 vs B8A). A chip with one band more than the
  export describes, alpha last (RGBA PNG), gets an ``Alpha`` band that is not read; any other
  count wins over the files (names and statistics dropped, noted).
  ``InputRastersProps.SensorName`` (``Landsat-8``, ``Sentinel 2``...) becomes ``data.sensor``,
  so sensor band names resolve on that sensor (Landsat 8's ``B5`` is NIR, not Sentinel-2's red
  edge). Wavelengths (micrometres) come from an ``.emd``'s
  ``ModelParameters.wavelengths`` when present (saved-model ``.emd``), else from the catalog.
* **Chip size**: the ``.emd``/stats size, checked against the first chip; the chip wins when they
  disagree. ``CropTileMode: Variable_Size`` exports (Labeled Tiles) have chips of many sizes:
  each chip is resized (bilinear) to the tile size, as ``arcgis.learn`` does. Classified Tiles
  and box chips of different sizes are padded to the largest (nodata, ignored in the loss).
* **Statistics**: ``BandStatsState`` mean ``M1`` and std ``sqrt(M2 / Num)`` (its ``Mean``/``StdDev``
  fields are written as 0), else the ``.emd``'s ``AllTilesStats`` (keys in any casing).
* **Text files**: UTF-8 with or without BOM, or UTF-16 (BOM); CRLF and blank lines in ``map.txt``.
* **Leniency**: every ``.emd`` key except ``Classes`` is optional and type-checked; values of
  the wrong type (the old template's ``"ImageHeight": "e.g. 256"``) are ignored. Missing folders,
  unreadable JSON and unknown formats are :class:`~rsfm.errors.DataError` naming the file and
  the expected layout.

:func:`recipe_defaults` turns an export into the recipe keys the user did not write (classes,
value map, bands, sensor, statistics, tile size); :mod:`rsfm.recipe` merges them under the
user's keys, so ``rsfm check`` shows the resolved values. The datasets are in
:mod:`rsfm.data.arcgis_datasets`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rsfm.bands import Band, declared_band, get_band, list_sensors, match_bands
from rsfm.cards import AdapterCard
from rsfm.errors import BandError, ConfigError, DataError
from rsfm.io import read_text
from rsfm.spec import resolve_bands_stated

__all__ = [
    "EMD_NAME",
    "FORMATS",
    "ArcGISChip",
    "ArcGISClass",
    "ArcGISExport",
    "BandStats",
    "catalog_sensor",
    "detect",
    "exports_in",
    "read_arcgis_export",
    "recipe_defaults",
]

log = logging.getLogger(__name__)

EMD_NAME = "esri_model_definition.emd"
STATS_NAME = "esri_accumulated_stats.json"
MAP_NAME = "map.txt"
CHIP_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".mrf")
_RASTER_LABELS = CHIP_SUFFIXES

# MetaDataMode -> rsfm task (None: read, but rsfm has no task for it)
FORMATS: dict[str, str | None] = {
    "Classified_Tiles": "segmentation",
    "PASCAL_VOC_rectangles": "detection",
    "KITTI_rectangles": "detection",
    "RCNN_Masks": "detection",
    "Labeled_Tiles": "classification",
    "Imagenet": "classification",
    "MultiLabeled_Tiles": None,
    "Export_Tiles": None,
    "CycleGAN": None,
    "Panoptic_Segmentation": None,
}
_FORMAT_KEYS = {re.sub(r"[^a-z0-9]", "", f.lower()): f for f in FORMATS}
_FORMAT_KEYS.update({"pascalvoc": "PASCAL_VOC_rectangles", "kitti": "KITTI_rectangles",
                     "panoptic": "Panoptic_Segmentation"})
# label files per format: suffixes accepted when map.txt does not say
_LABEL_SUFFIXES: dict[str, tuple[str, ...]] = {
    "Classified_Tiles": _RASTER_LABELS,
    "PASCAL_VOC_rectangles": (".xml",),
    "KITTI_rectangles": (".txt",),
    "RCNN_Masks": _RASTER_LABELS,
    "Labeled_Tiles": (".xml",),
    "MultiLabeled_Tiles": (".xml",),
    "Panoptic_Segmentation": _RASTER_LABELS,
}
_LAYOUT = {
    "Classified_Tiles": "labels/<chip name>.tif (class value per pixel, 0 = NoData)",
    "PASCAL_VOC_rectangles": "labels/<chip name>.xml (PASCAL VOC)",
    "KITTI_rectangles": "labels/<chip name>.txt (KITTI, 15 columns)",
    "RCNN_Masks": "labels/<class name>/<chip name>.tif (instance ids, 0 = background)",
    "Labeled_Tiles": "labels/<chip name>.xml (one <object> with the class)",
    "MultiLabeled_Tiles": "labels/<chip name>.xml",
    "Panoptic_Segmentation": "labels/<chip name>.tif + labels2/<class name>/<chip name>.tif",
    "Imagenet": "images/<class name>/<chip name>.tif (no labels/)",
}
EXPECTED_LAYOUT = (
    "an ArcGIS 'Export Training Data For Deep Learning' folder: images/, labels/, "
    f"{EMD_NAME}, {STATS_NAME}, {MAP_NAME}"
)

# Esri band names (lower case, letters and digits only) -> rsfm catalog band. The wavelengths of
# these catalog bands equal arcgis.learn's table (models/_wavelengths.py) within 0.01 um, except
# unnumbered SWIR (arcgis.learn 1.375, here SWIR_1 1.61) and Thermal (11.45, here 10.895).
_ESRI_BANDS: dict[str, str] = {
    "red": "RED", "r": "RED", "green": "GREEN", "g": "GREEN", "blue": "BLUE", "b": "BLUE",
    "coastalaerosol": "COASTAL_AEROSOL", "coastal": "COASTAL_AEROSOL",
    "coastalblue": "COASTAL_AEROSOL",
    "nearinfrared": "NIR_NARROW", "infrared": "NIR_NARROW", "nir": "NIR_NARROW",
    "narrownir": "NIR_NARROW", "nearinfrared2": "NIR_NARROW", "nir2": "NIR_NARROW",
    "nearinfrared1": "NIR_BROAD", "nir1": "NIR_BROAD",
    "rededge": "RED_EDGE_1", "rededge1": "RED_EDGE_1", "rededge2": "RED_EDGE_2",
    "rededge3": "RED_EDGE_3", "vegetationrededge1": "RED_EDGE_1",
    "vegetationrededge2": "RED_EDGE_2", "vegetationrededge3": "RED_EDGE_3",
    "shortwaveinfrared": "SWIR_1", "swir": "SWIR_1", "shortwaveinfrared1": "SWIR_1",
    "swir1": "SWIR_1", "midinfrared": "SWIR_1", "midinfrared1": "SWIR_1",
    "shortwaveinfrared2": "SWIR_2", "swir2": "SWIR_2", "midinfrared2": "SWIR_2",
    "cirrus": "CIRRUS", "watervapor": "WATER_VAPOR", "watervapour": "WATER_VAPOR",
    "panchromatic": "PANCHROMATIC", "pan": "PANCHROMATIC",
    "thermal": "THERMAL_INFRARED_1", "thermalinfrared": "THERMAL_INFRARED_1",
    "thermal1": "THERMAL_INFRARED_1", "thermal2": "THERMAL_INFRARED_2",
    "thermalinfrared1": "THERMAL_INFRARED_1", "thermalinfrared2": "THERMAL_INFRARED_2",
    "tir1": "THERMAL_INFRARED_1", "tir2": "THERMAL_INFRARED_2",
}
# unnumbered names an export repeats in wavelength order (Esri's Sentinel-2 "VRE", "VRE", "VRE")
_ESRI_SERIES = {"vre": "RED_EDGE", "rededge": "RED_EDGE", "vegetationrededge": "RED_EDGE"}
# with a narrow NIR band next to it, an unnumbered NIR is the broad one (Sentinel-2 B8 vs B8A)
_NARROW_NIR = ("narrownir", "nirnarrow", "nir08")
_PLAIN_NIR = ("nir", "nearinfrared", "infrared")
# arcgis.learn wavelengths for names rsfm's catalog lacks
_ESRI_EXTRA_WAVELENGTHS = {"yellow": 0.585}
# formats without labels (and often without Classes in the .emd)
_UNLABELED = ("Export_Tiles", "CycleGAN")
# what the formats rsfm cannot train hold (for the refusal)
_UNTRAINABLE = {
    "MultiLabeled_Tiles": "several classes per chip (multi-label classification)",
    "Export_Tiles": "image chips without labels (Pix2Pix, super-resolution)",
    "CycleGAN": "two unlabelled image domains (image translation)",
    "Panoptic_Segmentation": "semantic + instance labels (panoptic segmentation)",
}
_TRAINABLE = ("Classified_Tiles (segmentation), PASCAL_VOC_rectangles, KITTI_rectangles and "
              "RCNN_Masks (detection), Labeled_Tiles and Imagenet (classification)")
# files and folders inside an export: a path to one of them names the export
_INSIDE = ("images", "labels", "images2", "labels2", EMD_NAME, STATS_NAME, MAP_NAME, "stats.txt")
# formats whose labels are rasters with 0 = NoData: arcgis.learn deletes class value 0 for these
# only (VOC/KITTI/Labeled Tiles/Imagenet keep a value-0 class as a class)
_ZERO_IS_NODATA = ("Classified_Tiles", "RCNN_Masks", "Panoptic_Segmentation")
# ArcGIS SensorName (lower case, letters and digits only) -> rsfm sensor: a name starting with a
# key is that sensor ("landsat8olitirs", "sentinel2a")
_ESRI_SENSORS: dict[str, str] = {
    "landsat8": "landsat8", "landsat08": "landsat8", "l8": "landsat8",
    "landsat9": "landsat9", "landsat09": "landsat9", "l9": "landsat9",
    "sentinel2": "sentinel2", "sentinel02": "sentinel2", "s2": "sentinel2",
    "sentinel1": "sentinel1", "sentinel01": "sentinel1", "s1": "sentinel1",
    "harmonizedlandsatsentinel": "hls", "hls": "hls", "naip": "naip",
}
# map.txt: the image path ends at the first chip extension followed by whitespace
_MAP_ROW = re.compile(r"^(.*?\.(?:tiff|tif|png|jpeg|jpg|mrf))\s+(\S.*)$", re.IGNORECASE)


# ------------------------------------------------------------------------------- the export


@dataclass(frozen=True)
class ArcGISClass:
    """One class of the export.

    Attributes:
        value: The class value (label raster pixel value; VOC/KITTI class token).
        name: The class name (equal to ``str(value)`` when the samples had no name field).
        color: RGB 0-255, or ``None`` when the export gives none (``[-1, -1, -1]``).
    """

    value: int
    name: str
    color: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class BandStats:
    """Statistics of one band over all chips (raw pixel units).

    Attributes:
        name: The export's band name (``""`` when unnamed).
        mean: Mean (``BandStatsState.M1``, or ``AllTilesStats.Mean``).
        std: Standard deviation (``sqrt(M2 / Num)``, or ``AllTilesStats.StdDev``).
        minimum: Smallest value (``None`` when not given).
        maximum: Largest value (``None`` when not given).
    """

    name: str
    mean: float
    std: float
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class ArcGISChip:
    """One image chip and its label(s).

    Attributes:
        image: ``images/<stem>.<ext>``.
        label: ``labels/<stem>.<ext>`` (None for Imagenet and unlabelled formats).
        masks: RCNN Masks: ``(class value, labels/<class folder>/<stem>.<ext>)`` per class present.
        class_value: Imagenet: the class of the ``images/<class>/`` folder.
    """

    image: Path
    label: Path | None = None
    masks: tuple[tuple[int, Path], ...] = ()
    class_value: int | None = None


@dataclass(frozen=True)
class ArcGISExport:
    """What an export folder says (see the module docstring for the rules).

    Attributes:
        root: The export folder.
        metadata_format: The ``MetaDataMode`` (canonical spelling, e.g. ``"Classified_Tiles"``).
        classes: Classes in ascending value (value 0 excluded for Classified Tiles, RCNN Masks
            and Panoptic exports, where it is NoData / background).
        chip_size: ``(height, width)`` in pixels, or None when no file says.
        band_names: The export's band names in file order (may be empty strings, or empty).
        band_stats: Per-band statistics in file order (empty when the export has none).
        num_bands: Band count (``NumBands``, else the names/statistics/wavelengths; None: unknown).
        chips: Image/label pairs, sorted by image name (chips without a label excluded).
        wavelengths: Band wavelengths in micrometres from the ``.emd`` (None: none given).
        label_suffix: Extension of the label files found (``map.txt`` gives the first guess).
        image_space: ``MAP_SPACE`` / ``PIXEL_SPACE`` (None when not given).
        sensor_name: ``InputRastersProps.SensorName`` (None when not given or "Undefined").
        nodata_class_name: Classified Tiles / RCNN Masks: name of value 0 when the ``.emd``
            lists it (else None: "NoData").
        nodata_class_color: Its colour (None: none given).
        variable_size: ``CropTileMode: Variable_Size`` (Labeled Tiles chips of many sizes).
        unlabeled: Images without a label file (excluded from ``chips``).
        change_detection: The export has ``images2/`` (bi-temporal change detection).
        notes: What the reader noticed and worked around (also logged as warnings).
    """

    root: Path
    metadata_format: str
    classes: tuple[ArcGISClass, ...]
    chip_size: tuple[int, int] | None
    band_names: tuple[str, ...]
    band_stats: tuple[BandStats, ...]
    chips: tuple[ArcGISChip, ...]
    num_bands: int | None = None
    wavelengths: tuple[float, ...] | None = None
    label_suffix: str | None = None
    image_space: str | None = None
    sensor_name: str | None = None
    nodata_class_name: str | None = None
    nodata_class_color: tuple[int, int, int] | None = None
    variable_size: bool = False
    unlabeled: tuple[Path, ...] = ()
    change_detection: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def task(self) -> str | None:
        """rsfm task of the format (None: rsfm cannot train on it)."""
        return FORMATS[self.metadata_format]

    @property
    def tile_size(self) -> int | None:
        """The chip side (the longer one for rectangular chips)."""
        return None if self.chip_size is None else max(self.chip_size)

    @property
    def sensor(self) -> str | None:
        """rsfm's sensor for ``sensor_name`` (``"Landsat-8"`` -> ``"landsat8"``); None when
        rsfm's band catalog has no such sensor."""
        return catalog_sensor(self.sensor_name)

    def class_ids(self) -> dict[str, int]:
        """Class token (value as text, name, lower-case name) -> class id (ascending value,
        0-based, no NoData class): what VOC/KITTI files and class folders are matched with.
        Values win over names that look like another class's value."""
        out: dict[str, int] = {}
        for i, c in enumerate(self.classes):
            out[c.name] = i
            out[c.name.strip().lower()] = i
        for i, c in enumerate(self.classes):
            out[str(c.value)] = i
        return out

    def describe(self) -> str:
        """One line for logs: format, classes, bands, chips."""
        size = "x".join(str(s) for s in self.chip_size) if self.chip_size else "?"
        names = [n or "?" for n in self.band_names]
        return (f"ArcGIS export '{self.root}': {self.metadata_format}, {len(self.chips)} chips "
                f"of {size} px, classes {[f'{c.value}={c.name}' for c in self.classes]}, "
                f"bands {names or 'unnamed'}")


def catalog_sensor(sensor_name: str | None) -> str | None:
    """rsfm's sensor key for an ArcGIS ``SensorName`` (``"Landsat 8"``, ``"Landsat-8 OLI"``,
    ``"Sentinel2"``, ``"Sentinel-2A"`` ...); None for a name rsfm's band catalog lacks."""
    key = re.sub(r"[^a-z0-9]", "", (sensor_name or "").lower())
    if not key:
        return None
    if key in _ESRI_SENSORS:
        return _ESRI_SENSORS[key]
    # a longer spelling of a known sensor ("landsat8olitirs"); short keys ("s2") only exactly
    return next((v for k, v in _ESRI_SENSORS.items() if len(k) > 3 and key.startswith(k)), None)


def detect(folder: str | os.PathLike[str], *, inside: bool = False) -> bool:
    """True when ``folder`` is an ArcGIS export (it has ``esri_model_definition.emd`` and one of
    ``images/``, ``map.txt``, ``esri_accumulated_stats.json``) or a CycleGAN export (``A/`` and
    ``B/``, each an export), which :func:`read_arcgis_export` refuses by name.

    Args:
        folder: The folder.
        inside: Also True for a folder or file inside an export (``images/``, ``labels/``, the
            ``.emd``...), which :func:`read_arcgis_export` reads as the export. Off by default:
            ``images: <export>/images`` with ``labels: <export>/labels`` is a chip folder pair.
    """
    root = Path(folder)
    return (_is_export(root) or _cyclegan_sides(root) is not None
            or (inside and _export_of(root) is not None))


def _is_export(root: Path) -> bool:
    if not (root / EMD_NAME).is_file():
        return False
    return any((root / n).exists() for n in ("images", MAP_NAME, STATS_NAME))


def _export_of(path: Path) -> Path | None:
    """The export a path inside it belongs to (``<export>/images``, ``<export>/map.txt``...)."""
    if path.name in _INSIDE and path.exists() and _is_export(path.parent):
        return path.parent
    return None


def _cyclegan_sides(root: Path) -> tuple[Path, Path] | None:
    """``(A/, B/)`` when ``root`` is a CycleGAN export (one export per image domain)."""
    sides = (root / "A", root / "B")
    if not (root / EMD_NAME).is_file() and all(_is_export(p) for p in sides):
        return sides
    return None


def exports_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The export folders directly inside ``folder`` (a user who named their parent), sorted;
    :func:`read_arcgis_export` of the parent raises a :class:`~rsfm.errors.DataError` naming
    them."""
    try:
        return sorted(p for p in Path(folder).iterdir() if p.is_dir() and _is_export(p))
    except OSError:
        return []


def read_arcgis_export(folder: str | os.PathLike[str]) -> ArcGISExport:
    """Read an ArcGIS "Export Training Data For Deep Learning" folder.

    ``folder`` may also be a folder or file inside the export (``images/``, ``labels/``, the
    ``.emd``, ``map.txt``). Reading lists files and parses the JSON/text files; of the chips,
    only the first one's header is read (its size is checked against the stated chip size;
    three unnamed bands might be RGB). Results are cached until a file or folder changes.

    Raises:
        DataError: Missing ``.emd`` or ``images/``/``labels/`` folder, unreadable JSON, no
            classes, an unknown metadata format, no chip with a label (the message names the file
            and the expected layout); a CycleGAN export (``A/`` + ``B/``), which rsfm cannot
            train; the parent of export folders (the message names them).
    """
    root = Path(folder).expanduser()
    root = _export_of(root) or root  # the export's images/, labels/, .emd... was given
    if not root.is_dir():
        raise DataError(f"ArcGIS export folder not found: '{root}'. Expected {EXPECTED_LAYOUT}.")
    if (sides := _cyclegan_sides(root)) is not None:
        raise DataError(f"'{root}' is a CycleGAN export ({sides[0].name}/ and {sides[1].name}/, "
                        f"one export per domain), which holds {_UNTRAINABLE['CycleGAN']}; rsfm "
                        f"trains {_TRAINABLE}. Export again with one of those.")
    if not (root / EMD_NAME).is_file():
        below = exports_in(root)
        if below:
            names = ", ".join(f"'{p.name}'" for p in below[:6])
            raise DataError(f"'{root}' is not an ArcGIS export but holds ArcGIS exports in "
                            f"{names}: point data.train.images (and val/test) at one export "
                            f"folder, the one holding {EMD_NAME}.")
        raise DataError(f"'{root / EMD_NAME}' not found: '{root}' is not {EXPECTED_LAYOUT} "
                        "(written by ArcGIS Pro's Export Training Data For Deep Learning tool).")
    root = root.resolve()
    export = _read_cached(root, _signature(root))
    return export


def _signature(root: Path) -> tuple:
    """Modification times that change when the export's files change (cache key)."""
    sig = []
    for name in (EMD_NAME, STATS_NAME, MAP_NAME, "images", "labels"):
        p = root / name
        sig.append(p.stat().st_mtime_ns if p.exists() else None)
        if p.is_dir():
            sig.extend(q.stat().st_mtime_ns for q in sorted(p.iterdir()) if q.is_dir())
    return tuple(sig)


@lru_cache(maxsize=16)
def _read_cached(root: Path, signature: tuple) -> ArcGISExport:
    notes: list[str] = []
    emd = _read_json(root / EMD_NAME)
    stats_path = root / STATS_NAME
    stats = _read_json(stats_path) if stats_path.is_file() else {}
    if not stats_path.is_file():
        notes.append(f"'{stats_path}' is missing: format, tile size and band statistics come "
                     f"from the .emd only.")
    fmt = _metadata_format(root, emd, stats, notes)
    classes, nodata = _classes(root, emd, stats, fmt, notes)
    map_entries = _read_map(root / MAP_NAME, notes)
    label_suffix = _map_label_suffix(map_entries)
    band_names, sensor = _band_names(emd, stats)
    band_stats = _band_stats(emd, stats, notes)
    wavelengths = _wavelengths(root, emd)
    num_bands = _int(stats.get("NumBands"))
    num_bands = num_bands if num_bands is not None and num_bands > 0 else None
    if num_bands is not None and band_names and num_bands != len(band_names):
        notes.append(f"{STATS_NAME} says NumBands {num_bands} but the band names are "
                     f"{list(band_names)}; the names are not used (bands read by position).")
        band_names = ()
    count = num_bands or len(band_names)
    if band_stats and count and len(band_stats) != count:
        notes.append(f"{count} bands but statistics for {len(band_stats)}; the statistics are "
                     "not used.")
        band_stats = ()
    count = count or len(band_stats)
    if wavelengths is not None and count and len(wavelengths) != count:
        raise DataError(f"'{root / EMD_NAME}': {len(wavelengths)} wavelengths for {count} bands "
                        f"{list(band_names)}; give one wavelength (micrometres) per band.")
    num_bands = count or (len(wavelengths) if wavelengths else None)
    chips, unlabeled, found_suffix = _pair(root, fmt, classes, label_suffix, notes)
    _cross_check_map(root, map_entries, chips, unlabeled, notes)
    variable = emd.get("CropTileMode") == "Variable_Size"
    chip_size = _chip_size(emd, stats, chips or unlabeled, variable, notes)
    if num_bands is not None and wavelengths is None:
        num_bands, band_names, band_stats = _check_chip_bands(
            chips or unlabeled, num_bands, band_names, band_stats, notes)
    space = emd.get("ImageSpaceUsed")
    export = ArcGISExport(
        root=root, metadata_format=fmt, classes=classes, chip_size=chip_size,
        band_names=band_names, band_stats=band_stats, chips=chips, num_bands=num_bands,
        wavelengths=wavelengths,
        label_suffix=found_suffix or label_suffix,
        image_space=space if isinstance(space, str) else None,
        sensor_name=sensor, nodata_class_name=nodata.name if nodata else None,
        nodata_class_color=nodata.color if nodata else None, variable_size=variable,
        unlabeled=unlabeled,
        change_detection=(root / "images2").is_dir(), notes=tuple(notes),
    )
    log.info("%s", export.describe())
    for note in notes:
        log.warning("ArcGIS export '%s': %s", root, note)
    return export


# ------------------------------------------------------------------------------- JSON files


def _read_json(path: Path) -> dict[str, Any]:
    text = read_text(path, "ArcGIS export file", error=DataError)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"'{path}' is not valid JSON ({err.msg} at line {err.lineno}, column "
                        f"{err.colno}); ArcGIS writes it as JSON. Re-export the training data "
                        "or repair the file.") from None
    if not isinstance(doc, dict):
        raise DataError(f"'{path}' must hold a JSON object, got {type(doc).__name__}.")
    return doc


def _int(value: Any) -> int | None:
    """An int from JSON (``256`` or ``"256"``); None for placeholders like ``"e.g. 256"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _float(value: Any) -> float | None:
    """A finite float from JSON (``12.5`` or ``"12.5"``); None otherwise."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _key(entry: Mapping[str, Any], name: str) -> Any:
    """``entry[name]`` in any casing (``StdDev``, ``stddev``, ``STDDEV``); None when absent."""
    if name in entry:
        return entry[name]
    lower = name.lower()
    return next((v for k, v in entry.items() if isinstance(k, str) and k.lower() == lower), None)


def _canonical_format(value: str) -> str | None:
    return _FORMAT_KEYS.get(re.sub(r"[^a-z0-9]", "", value.lower()))


def _metadata_format(root: Path, emd: Mapping, stats: Mapping, notes: list[str]) -> str:
    """The stats file's MetaDataMode (what arcgis.learn reads), else the .emd's."""
    found: dict[str, str | None] = {}
    for name, doc in ((STATS_NAME, stats), (EMD_NAME, emd)):
        raw = doc.get("MetaDataMode")
        if raw is not None:
            found[name] = _canonical_format(raw) if isinstance(raw, str) else None
            if found[name] is None and not found.get(STATS_NAME):
                raise DataError(f"'{root / name}': MetaDataMode {raw!r} is not a known ArcGIS "
                                f"metadata format; known: {list(FORMATS)}.")
    if not found:
        if (root / "images").is_dir() and not (root / "labels").exists() and any(
                p.is_dir() for p in (root / "images").iterdir()):
            notes.append("no MetaDataMode in the .emd or the stats file: images/<class>/ folders "
                         "read as Imagenet.")
            return "Imagenet"
        raise DataError(f"Neither '{root / STATS_NAME}' nor '{root / EMD_NAME}' gives the "
                        "metadata format (MetaDataMode, e.g. \"Classified_Tiles\"). Expected "
                        f"{EXPECTED_LAYOUT}.")
    fmt = found.get(STATS_NAME) or found[EMD_NAME]
    if found.get(EMD_NAME, fmt) != fmt:
        notes.append(f"MetaDataMode differs: {STATS_NAME} says {fmt!r}, the .emd "
                     f"{emd.get('MetaDataMode')!r}; using {STATS_NAME}'s (as arcgis.learn does).")
    return fmt  # type: ignore[return-value]


def _color(value: Any) -> tuple[int, int, int] | None:
    """``[r, g, b]`` (numbers or numeric strings), ``"#RRGGBB"`` or ``"r,g,b"``; None for
    ``[-1, -1, -1]`` (no colour) and anything else."""
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"#?[0-9a-fA-F]{6}", text):
            text = text.lstrip("#")
            return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
        value = [v for v in re.split(r"[,;\s]+", text) if v]
    if isinstance(value, (list, tuple)) and len(value) >= 3:
        rgb = [_int(v) for v in value[:3]]
        if all(v is not None and 0 <= v <= 255 for v in rgb):
            return rgb[0], rgb[1], rgb[2]  # type: ignore[return-value]
    return None  # [-1, -1, -1] = no colour


def _classes(root: Path, emd: Mapping, stats: Mapping, fmt: str,
             notes: list[str]) -> tuple[tuple[ArcGISClass, ...], ArcGISClass | None]:
    """The classes in ascending value, and the value-0 entry of a format where 0 is NoData."""
    source, entries = EMD_NAME, emd.get("Classes")
    if not entries and isinstance(stats.get("Classes"), list) and stats["Classes"]:
        source, entries = STATS_NAME, stats["Classes"]
        notes.append(f"the .emd lists no Classes; using the {STATS_NAME} list.")
    if (not isinstance(entries, list) or not entries) and fmt in _UNLABELED:
        return (), None  # chips without labels: Export_Tiles, CycleGAN write no classes
    folders = sorted(p.name for p in (root / "images").iterdir() if p.is_dir()) \
        if fmt == "Imagenet" and (root / "images").is_dir() else []
    if (not isinstance(entries, list) or not entries) and folders:
        # arcgis.learn names Imagenet classes by their folders (values 1, 2, ... in name order)
        notes.append(f"the .emd lists no Classes; the classes are the folders of images/ "
                     f"{folders[:10]}.")
        return tuple(ArcGISClass(i, n) for i, n in enumerate(folders, start=1)), None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"'{root / EMD_NAME}' has no \"Classes\" list "
                        "([{\"Value\": 1, \"Name\": \"...\", \"Color\": [r, g, b]}, ...]); the "
                        "classes of the export cannot be known.")
    out: dict[int, ArcGISClass] = {}
    nodata = None
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise DataError(f"'{root / source}': Classes[{i}] is {entry!r}, not an object "
                            "with Value and Name.")
        value = _int(entry.get("Value", entry.get("ClassValue")))
        if value is None:
            raise DataError(f"'{root / source}': Classes[{i}] has no integer Value "
                            f"(got {entry!r}).")
        raw_name = entry.get("Name", entry.get("ClassName"))
        name = str(raw_name).strip() if raw_name not in (None, "") else str(value)
        previous = nodata if value == 0 and nodata is not None else out.get(value)
        if previous is not None:
            raise DataError(f"'{root / source}': class value {value} is listed twice "
                            f"({previous.name!r} and {name!r}).")
        if value == 0 and fmt in _ZERO_IS_NODATA:  # label rasters: 0 is NoData / background
            nodata = ArcGISClass(0, name, _color(entry.get("Color")))
            continue
        out[value] = ArcGISClass(value, name, _color(entry.get("Color")))
    if not out:
        raise DataError(f"'{root / source}': Classes lists no class other than value 0 (NoData).")
    names = [c.name.lower() for c in out.values()]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        notes.append(f"class names {sorted(dupes)} are used by several values; they are named "
                     "'<name> (<value>)' here.")
        out = {v: ArcGISClass(v, f"{c.name} ({v})", c.color) if c.name.lower() in dupes else c
               for v, c in out.items()}
    return tuple(out[v] for v in sorted(out)), nodata


def _band_names(emd: Mapping, stats: Mapping) -> tuple[tuple[str, ...], str | None]:
    sensor = None
    names: tuple[str, ...] = ()
    for doc in (emd, stats):
        props = doc.get("InputRastersProps")
        if isinstance(props, Mapping):
            raw = props.get("BandNames")
            if not names and isinstance(raw, list) and all(isinstance(n, str) for n in raw):
                names = tuple(n.strip() for n in raw)
            s = props.get("SensorName")
            if sensor is None and isinstance(s, str) and s.strip() and s != "Undefined":
                sensor = s.strip()
    params = emd.get("ModelParameters")  # an .emd saved by arcgis.learn
    for raw in (params.get("band_names") if isinstance(params, Mapping) else None,
                emd.get("Bands")):
        if not names and isinstance(raw, list) and all(isinstance(n, str) for n in raw):
            names = tuple(n.strip() for n in raw)
    if not names and isinstance(emd.get("AllTilesStats"), list):
        raw = [s.get("BandName") for s in emd["AllTilesStats"] if isinstance(s, Mapping)]
        if raw and all(isinstance(n, str) for n in raw):
            names = tuple(n.strip() for n in raw)
    return names, sensor


def _band_stats(emd: Mapping, stats: Mapping, notes: list[str]) -> tuple[BandStats, ...]:
    """``BandStatsState`` (mean ``M1``, std ``sqrt(M2 / Num)``), else the .emd's ``AllTilesStats``
    (``Mean``/``StdDev``); keys in any casing, numbers or numeric strings."""
    out = []
    state = _key(stats, "BandStatsState")
    if isinstance(state, list) and state:
        for i, s in enumerate(state):
            if not isinstance(s, Mapping):
                return ()
            m1, m2, num = (_float(_key(s, k)) for k in ("M1", "M2", "Num"))
            if m1 is not None and m2 is not None and num and num > 0 and m2 >= 0:
                mean, std = m1, math.sqrt(m2 / num)
            else:
                mean, std = _float(_key(s, "Mean")), _float(_key(s, "StdDev"))
                if mean is None or std is None or (mean == 0 and std == 0):
                    notes.append(f"BandStatsState[{i}] has no usable M1/M2/Num; band statistics "
                                 "are not used.")
                    out = []
                    break
            out.append(BandStats(str(_key(s, "BandName") or ""), mean, std,
                                 _float(_key(s, "Min")), _float(_key(s, "Max"))))
        if out:
            return tuple(out)
    tiles = _key(emd, "AllTilesStats")
    if isinstance(tiles, list) and tiles:
        for s in tiles:
            if not isinstance(s, Mapping):
                return ()
            mean, std = _float(_key(s, "Mean")), _float(_key(s, "StdDev"))
            if mean is None or std is None:
                return ()
            out.append(BandStats(str(_key(s, "BandName") or ""), mean, std,
                                 _float(_key(s, "Min")), _float(_key(s, "Max"))))
    return tuple(out)


def _wavelengths(root: Path, emd: Mapping) -> tuple[float, ...] | None:
    params = emd.get("ModelParameters")
    raw = params.get("wavelengths") if isinstance(params, Mapping) else None
    if raw is None:
        return None
    values = [_float(v) for v in raw] if isinstance(raw, list) else [None]
    if not values or any(v is None or v <= 0 for v in values):
        raise DataError(f"'{root / EMD_NAME}': ModelParameters.wavelengths must be a list of "
                        f"positive numbers (micrometres, e.g. [0.665, 0.56, 0.49]); got {raw!r}.")
    return tuple(values)  # type: ignore[arg-type]


def _chip_size(emd: Mapping, stats: Mapping, chips: Sequence[ArcGISChip] | Sequence[Path],
               variable: bool, notes: list[str]) -> tuple[int, int] | None:
    """The chip size the files state, checked against the first chip, which wins when they
    disagree (the chips are what is read). A Variable_Size export keeps its stated size: its
    chips differ by design and are resized to it."""
    emd_size = (_int(emd.get("ImageHeight")), _int(emd.get("ImageWidth")))
    json_size = (_int(stats.get("TileSizeY")), _int(stats.get("TileSizeX")))
    named = [(n, s) for n, s in ((".emd", emd_size), (STATS_NAME, json_size))
             if s[0] and s[1] and s[0] > 0 and s[1] > 0]
    if len(named) == 2 and named[0][1] != named[1][1]:
        notes.append(f"chip size differs: the .emd says {named[0][1]}, {STATS_NAME} "
                     f"{named[1][1]} (height, width); using the .emd's.")
    source, stated = named[0] if named else ("", None)
    if variable and stated is not None:
        return stated  # type: ignore[return-value]
    try:
        header = _first_chip_header(chips)
    except DataError:
        if stated is None:
            raise
        return stated  # type: ignore[return-value]  # the dataset names the unreadable chip
    found = None if header is None else (header.height, header.width)
    if stated is not None and header is not None and found != stated:
        notes.append(f"the {source} says chips of {stated[0]}x{stated[1]} px but they are "
                     f"{header.height}x{header.width} (e.g. '{header.path.name}'); using "
                     f"{header.height}x{header.width} (height x width).")
    return found or stated  # type: ignore[return-value]


def _check_chip_bands(chips: Sequence[ArcGISChip] | Sequence[Path], count: int,
                      names: tuple[str, ...], stats: tuple[BandStats, ...], notes: list[str],
                      ) -> tuple[int, tuple[str, ...], tuple[BandStats, ...]]:
    """The band count, names and statistics checked against the first chip's header. A chip
    with one band more whose last band is alpha (RGBA PNG) gets an ``Alpha`` band (dropped from
    the bands read); any other difference: the chip's count wins, names and statistics are not
    used (bands read by position)."""
    try:
        header = _first_chip_header(chips)
    except DataError:
        return count, names, stats  # the dataset names the unreadable chip
    if header is None:
        return count, names, stats
    path, found = header.path, header.count
    if found == count:
        return count, names, stats
    if found == count + 1 and header.colorinterp[-1] == "alpha":
        notes.append(f"chip '{path.name}' has an alpha band after the export's {count} bands; "
                     "it is not read.")
        return found, (*names, "Alpha") if names else (*[""] * count, "Alpha"), stats
    notes.append(f"the export's files describe {count} bands {list(names) or ''} but chip "
                 f"'{path.name}' has {found}; its {found} bands are read by position (band "
                 "names and statistics are not used).")
    return found, (), ()


@dataclass(frozen=True)
class _ChipHeader:
    """What the first chip's header says (it stands for all chips of an export)."""

    path: Path
    count: int
    colorinterp: tuple[str, ...]  # rasterio ColorInterp names: "red", "alpha"...
    height: int
    width: int
    dtype: str


def _first_chip_header(chips: Sequence[ArcGISChip] | Sequence[Path]) -> _ChipHeader | None:
    """The first chip's header (None without chips).

    Raises:
        DataError: The chip cannot be opened (names it).
    """
    if not chips:
        return None
    import rasterio  # one header

    first = chips[0]
    path = first.image if isinstance(first, ArcGISChip) else first
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PNG/JPEG chips without georeferencing
            with rasterio.open(path) as ds:
                return _ChipHeader(path, int(ds.count), tuple(c.name for c in ds.colorinterp),
                                   int(ds.height), int(ds.width), str(ds.dtypes[0]))
    except rasterio.errors.RasterioIOError as err:
        raise DataError(f"Cannot read chip '{path}': {err}") from None


# ------------------------------------------------------------------------------- map.txt


def _read_map(path: Path, notes: list[str]) -> list[tuple[str, str | None]]:
    """map.txt rows as ``(image path, label path or None)`` with ``/`` separators (Windows ``\\``,
    any whitespace, CRLF). Paths may hold spaces (``C:\\Users\\Jane Doe\\...``, class folders
    such as ``Damaged building``), so a row is not split on every blank: the image path ends at
    the first chip extension followed by whitespace, the label path is the rest. Imagenet rows
    hold the image path only."""
    if not path.is_file():
        notes.append(f"'{path}' is missing: chips are paired by file name only.")
        return []
    text = read_text(path, "ArcGIS map file", error=DataError, errors="replace")
    rows: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        line = line.replace("\\", "/").strip()
        if not line:
            continue
        if (match := _MAP_ROW.match(line)) is not None:
            rows.append((match[1], match[2].strip()))
        elif line.lower().endswith(CHIP_SUFFIXES):
            rows.append((line, None))  # Imagenet: the image path only
        else:  # no chip extension: Pro's two-space separator, else the first blank
            parts = re.split(r"\s{2,}", line, maxsplit=1)
            parts = parts if len(parts) == 2 else line.split(None, 1)
            rows.append((parts[0], parts[1].strip() if len(parts) == 2 else None))
    return rows


def _map_label_suffix(entries: list[tuple[str, str | None]]) -> str | None:
    for _, label in entries:
        if label:
            return Path(label).suffix.lower() or None
    return None


def _cross_check_map(root: Path, entries: list[tuple[str, str | None]],
                     chips: Sequence[ArcGISChip], unlabeled: Sequence[Path],
                     notes: list[str]) -> None:
    if not entries:
        return
    listed = {Path(image).name for image, _ in entries}
    found = {c.image.name for c in chips}
    missing = sorted(listed - found - {p.name for p in unlabeled})
    extra = sorted(found - listed)
    if missing:
        notes.append(f"{MAP_NAME} lists {len(missing)} chip(s) that are not in images/ "
                     f"(e.g. '{missing[0]}'); they are not used.")
    if extra:
        notes.append(f"{len(extra)} chip(s) in images/ are not in {MAP_NAME} (e.g. "
                     f"'{extra[0]}'); they are used (chips pair by file name, as in arcgis.learn).")


# ------------------------------------------------------------------------------- pairing


def _chip_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in CHIP_SUFFIXES)


def _table(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """stem -> file for files in ``folder`` with one of ``suffixes`` (first by name wins)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes:
            out.setdefault(p.stem, p)
    return out


def _class_of_folder(name: str, classes: Sequence[ArcGISClass]) -> int | None:
    """A class folder named by class name (as arcgis.learn expects) or by class value."""
    for c in classes:
        if name == c.name:
            return c.value
    for c in classes:
        if name.strip().lower() == c.name.strip().lower() or name.strip() == str(c.value):
            return c.value
    return None


def _pair(root: Path, fmt: str, classes: Sequence[ArcGISClass], label_suffix: str | None,
          notes: list[str]) -> tuple[tuple[ArcGISChip, ...], tuple[Path, ...], str | None]:
    images = root / "images"
    layout = _LAYOUT.get(fmt, "")
    if not images.is_dir():
        raise DataError(f"'{images}' not found: an ArcGIS export keeps its chips in images/ "
                        f"({layout}). Expected {EXPECTED_LAYOUT}.")
    if fmt == "Imagenet":
        return _pair_imagenet(images, classes, notes), (), None
    files = _chip_files(images)
    if not files:
        sub = [p.name for p in images.iterdir() if p.is_dir()]
        hint = f" (it has sub-folders {sub[:5]}: is this an Imagenet export?)" if sub else ""
        raise DataError(f"No image chips ({', '.join(CHIP_SUFFIXES)}) in '{images}'{hint}.")
    if fmt not in _LABEL_SUFFIXES:  # Export_Tiles, CycleGAN: no labels
        return tuple(ArcGISChip(p) for p in files), (), None
    labels = root / "labels"
    if not labels.is_dir():
        raise DataError(f"'{labels}' not found: a {fmt} export keeps its labels as {layout}.")

    def pair_with(suffixes: Sequence[str], found: list[str]) -> tuple[tuple[ArcGISChip, ...],
                                                                     tuple[Path, ...]]:
        if fmt == "RCNN_Masks":
            return _pair_rcnn(labels, files, classes, suffixes, found)
        table = _table(labels, suffixes)
        return (tuple(ArcGISChip(p, table[p.stem]) for p in files if p.stem in table),
                tuple(p for p in files if p.stem not in table))

    seen: list[str] = []
    chips, unlabeled = pair_with((label_suffix,) if label_suffix else _LABEL_SUFFIXES[fmt], seen)
    if not chips and label_suffix:  # map.txt's extension is not what labels/ holds
        seen = []
        chips, unlabeled = pair_with(_LABEL_SUFFIXES[fmt], seen)
        if chips:
            seen.append(f"{MAP_NAME} names label files '*{label_suffix}' but labels/ holds "
                        f"'*{(chips[0].label or chips[0].masks[0][1]).suffix}'; paired by name.")
    notes.extend(seen)
    if not chips:
        ext = "" if label_suffix is None else f", extension {label_suffix} from {MAP_NAME}"
        raise DataError(f"None of the {len(files)} chips in '{images}' has a label in "
                        f"'{labels}' (looked for {layout.replace('<chip name>', files[0].stem)}"
                        f"{ext}).")
    if unlabeled:
        notes.append(f"{len(unlabeled)} of {len(files)} chips have no label file (e.g. "
                     f"'{unlabeled[0].name}'); they are left out, as arcgis.learn does.")
    found = (chips[0].label or chips[0].masks[0][1]).suffix.lower()
    return chips, unlabeled, found


def _pair_rcnn(labels: Path, files: Sequence[Path], classes: Sequence[ArcGISClass],
               suffixes: Sequence[str],
               notes: list[str]) -> tuple[tuple[ArcGISChip, ...], tuple[Path, ...]]:
    folders: list[tuple[int, dict[str, Path]]] = []
    for sub in sorted(p for p in labels.iterdir() if p.is_dir()):
        value = _class_of_folder(sub.name, classes)
        if value is None:
            notes.append(f"labels/{sub.name}/ is not a class of the .emd "
                         f"({[c.name for c in classes]}); it is not used.")
            continue
        folders.append((value, _table(sub, suffixes)))
    if not folders:
        raise DataError(f"'{labels}' has no class folder: RCNN_Masks exports keep instance masks "
                        f"as {_LAYOUT['RCNN_Masks']}, one folder per class name "
                        f"({[c.name for c in classes]}).")
    chips, unlabeled = [], []
    for p in files:
        masks = tuple((value, table[p.stem]) for value, table in folders if p.stem in table)
        if masks:
            chips.append(ArcGISChip(p, masks=masks))
        else:
            unlabeled.append(p)
    return tuple(chips), tuple(unlabeled)


def _pair_imagenet(images: Path, classes: Sequence[ArcGISClass],
                   notes: list[str]) -> tuple[ArcGISChip, ...]:
    chips = []
    for sub in sorted(p for p in images.iterdir() if p.is_dir()):
        value = _class_of_folder(sub.name, classes)
        if value is None:
            notes.append(f"images/{sub.name}/ is not a class of the .emd; it is not used.")
            continue
        chips.extend(ArcGISChip(p, class_value=value) for p in _chip_files(sub))
    if not chips:
        raise DataError(f"No chips in class folders under '{images}': an Imagenet export keeps "
                        f"them as {_LAYOUT['Imagenet']} ({[c.name for c in classes]}).")
    return tuple(chips)


# ------------------------------------------------------------------------------- recipe defaults


@dataclass(frozen=True)
class _ExportBand:
    name: str  # rsfm name: catalog name, or the export's own name, or bandN
    wavelength: float | None  # from the .emd (None: the catalog's, or none)
    catalog: bool  # rsfm's catalog knows the band (and its wavelength)
    esri: str  # the export's name
    alpha: bool = False


def _export_bands(export: ArcGISExport, rgb_hint: bool,
                  sensor: str | None = None) -> tuple[list[_ExportBand], bool, list[str]]:
    """The export's bands as rsfm names, whether the file band order is known, and the export
    names that only a sensor tells apart (``B5``) but were resolved without one.

    Args:
        export: The export.
        rgb_hint: Three unnamed bands are RGB.
        sensor: rsfm sensor of the bands (``data.sensor``): sensor band names resolve on it.
    """
    n = export.num_bands or (3 if rgb_hint else 0)
    waves = list(export.wavelengths) if export.wavelengths else [None] * n
    names = list(export.band_names) if export.band_names else [""] * n
    if rgb_hint and names in ([""] * 3, ["", "", "", "Alpha"]):
        names[:3] = ["Red", "Green", "Blue"]  # arcgis.learn: three 8-bit bands are RGB
    named = any(names)
    out: list[_ExportBand] = []
    used: set[str] = set()
    guessed: list[str] = []
    keys = [re.sub(r"[^a-z0-9]", "", n.lower()) for n in names]
    narrow = any(k in _NARROW_NIR for k in keys)
    series: dict[str, int] = {}
    for i, (esri, wave, key) in enumerate(zip(names, waves, keys), start=1):
        if not esri:
            out.append(_ExportBand(f"band{i}", wave, False, esri))
            continue
        if key == "alpha":
            out.append(_ExportBand("ALPHA", None, False, esri, alpha=True))
            continue
        name, catalog = _ESRI_BANDS.get(key), True
        if key in _ESRI_SERIES and 1 < keys.count(key) <= 3:  # the n-th "VRE" is RED_EDGE_n
            series[key] = series.get(key, 0) + 1
            name = f"{_ESRI_SERIES[key]}_{series[key]}"
        elif key in _PLAIN_NIR and narrow:
            name = "NIR_BROAD"
        if name is None:
            try:
                band = get_band(esri, sensor)
                name = band.name
                if sensor is None and band.sensor != "generic":
                    guessed.append(esri)  # e.g. "B5": the catalog's first sensor (Sentinel-2)
            except BandError:
                name, catalog = esri, False
        if name.upper() in used:  # two export bands on one catalog band: keep the export's name
            name, catalog = esri, False
            if name.upper() in used:  # the same export name twice: number it
                name = f"{esri}_{i}"
        used.add(name.upper())
        if wave is None and not catalog:
            wave = _ESRI_EXTRA_WAVELENGTHS.get(key)
        out.append(_ExportBand(name, wave, catalog, esri))
    return out, named, guessed


def _rgb_hint(export: ArcGISExport) -> bool:
    """Three unnamed 8-bit bands (the first chip's data type, as arcgis.learn checks it; the
    statistics' range when the chip cannot be opened)."""
    names = export.band_names
    rgba = names == ("", "", "", "Alpha")  # an unnamed RGB export with an alpha band
    if not export.chips or (not rgba and (export.num_bands not in (None, 3) or any(names))):
        return False
    try:
        header = _first_chip_header(export.chips)
        return header is not None and header.count == (4 if rgba else 3) and (
            header.dtype == "uint8")
    except DataError:
        stats = export.band_stats
        return bool(stats) and all(s.minimum is not None and s.minimum >= 0 and
                                   s.maximum is not None and s.maximum <= 255 for s in stats)


def _band_entry(b: _ExportBand) -> str | dict[str, Any]:
    if b.catalog and b.wavelength is None:
        return b.name
    entry: dict[str, Any] = {"name": b.name, "wavelength": b.wavelength}
    if not b.catalog:
        entry["description"] = (f"ArcGIS band {b.esri!r}" if b.esri else
                                f"band {b.name[4:]} of the ArcGIS export (unnamed)")
    return entry


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _stated(section: Mapping[str, Any] | None, key: str) -> bool:
    return isinstance(section, Mapping) and section.get(key) is not None


def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*color)


def _check_same(export: ArcGISExport, other: ArcGISExport, split: str) -> None:
    problems = []
    if other.task != export.task:
        problems.append(f"format {other.metadata_format} vs {export.metadata_format}")
    if [c.value for c in other.classes] != [c.value for c in export.classes]:
        problems.append(f"class values {[c.value for c in other.classes]} vs "
                        f"{[c.value for c in export.classes]}")
    if other.band_names and export.band_names and other.band_names != export.band_names:
        problems.append(f"bands {list(other.band_names)} vs {list(export.band_names)}")
    if problems:
        raise ConfigError(f"data.{split}.images: the ArcGIS export '{other.root}' does not match "
                          f"the training export '{export.root}' ({'; '.join(problems)}); "
                          "validation/test exports need the same format, classes and bands.")


def recipe_defaults(
    export: ArcGISExport,
    data: Mapping[str, Any],
    model: Mapping[str, Any],
    card: AdapterCard | None = None,
    *,
    others: Mapping[str, ArcGISExport] | None = None,
) -> dict[str, Any]:
    """The recipe keys an export states that the user did not write.

    Returns ``{"data": {...}, "model": {...}}`` to merge *under* the user's recipe mapping:
    ``kind: arcgis``; ``classes`` (names and colours; a ``NoData`` class 0 for Classified Tiles,
    named and coloured as the ``.emd``'s value 0 when it lists one, unless
    ``label_ignore_values`` holds 0); ``label_map`` (class value -> id); ``label_format``;
    ``missing_labels: skip``; ``sensor`` (from ``SensorName``, when rsfm knows the sensor);
    ``file_bands`` and ``bands`` (resolved on that sensor, with the ``.emd``'s wavelengths);
    ``normalization`` with the export's statistics when the user asked for ``mode: stats``
    without values, or left the default and the backbone card has no statistics for the bands;
    ``tile_size`` (the chip size); ``model.task`` and ``model.num_classes``.

    Args:
        export: The training export.
        data: The user's ``data:`` mapping (as written, includes resolved).
        model: The user's ``model:`` mapping.
        card: The backbone's adapter card (None: unknown backbone; the card check is skipped).
        others: ``{"val": export, "test": export}`` checked against ``export``.

    Raises:
        ConfigError: A format rsfm cannot train, a task or head that does not fit the format,
            a class count that disagrees, ``mode: stats`` without statistics in the export, or
            another export that does not match.
    """
    fmt, root = export.metadata_format, export.root
    task = export.task
    out: dict[str, Any] = {"kind": "arcgis"}
    filled: list[str] = []
    model_out: dict[str, Any] = {}
    if task is None:
        what = _UNTRAINABLE.get(fmt, "labels rsfm does not read")
        raise ConfigError(
            f"data.train.images: '{root}' is {_article(fmt)} {fmt} export, which holds {what}; "
            f"rsfm trains {_TRAINABLE}. Export again with one of those.")
    if export.change_detection:
        raise ConfigError(f"data.train.images: '{root}' has images2/ (a bi-temporal change "
                          "detection export); rsfm reads single-date chips only. Export the "
                          "classified tiles without the additional input raster.")
    for split, other in (others or {}).items():
        _check_same(export, other, split)
    stated_task = model.get("task")
    if stated_task is None:
        model_out["task"] = task
        filled.append("model.task")
    elif stated_task != task:
        raise ConfigError(f"model.task is {stated_task!r} but '{root}' is a {fmt} export "
                          f"({task}); set model.task: {task} (and a {task} head).")
    if task == "detection" and model.get("head") == "mask_rcnn" and fmt != "RCNN_Masks":
        raise ConfigError(f"model.head: mask_rcnn needs instance masks, but a {fmt} export has "
                          "boxes only; export with the RCNN_Masks metadata format, or use "
                          "faster_rcnn, retinanet or fcos.")
    for split in ("train", "val", "test"):
        src = data.get(split)
        if isinstance(src, Mapping):
            for key in ("labels", "manifest"):
                if src.get(key) is not None:
                    raise ConfigError(f"data.{split}.{key}: kind arcgis reads the export folder "
                                      f"(images: <export>); remove {key}.")

    # ---- classes and label values
    ignore_index = _int(data.get("ignore_index", -1))
    ignore_index = -1 if ignore_index is None else ignore_index
    ignore_values = data.get("label_ignore_values") or ()
    ignore_values = ignore_values if isinstance(ignore_values, (list, tuple)) else [ignore_values]
    with_nodata = task == "segmentation" and 0 not in [_int(v) for v in ignore_values]
    classes: list[dict[str, Any]] = []
    if with_nodata:  # the .emd's name and colour of value 0 when it lists it
        color = export.nodata_class_color
        classes.append({"name": export.nodata_class_name or "NoData",
                        **({"color": _hex(color)} if color else {})})
    for c in export.classes:
        classes.append({"name": c.name, **({"color": _hex(c.color)} if c.color else {})})
    user_classes = data.get("classes") if _stated(data, "classes") else model.get("classes")
    if user_classes is None:
        out["classes"] = classes
        filled.append("classes")
        stated_k = _int(model.get("num_classes"))
        if stated_k is not None and stated_k != len(classes):
            hint = (" (class 0 'NoData' = pixels outside every training feature, as in "
                    "arcgis.learn; data.label_ignore_values: [0] leaves them out instead)"
                    if with_nodata else "")
            raise ConfigError(f"model.num_classes is {stated_k} but the ArcGIS export '{root}' "
                              f"has {len(classes)} classes {[c['name'] for c in classes]}{hint}.")
    if model.get("num_classes") is None:
        model_out["num_classes"] = len(user_classes) if user_classes is not None else len(classes)
        filled.append("model.num_classes")
    if task == "segmentation" and not _stated(data, "label_map"):
        offset = 1 if with_nodata else 0
        label_map = {0: 0} if with_nodata else {}
        label_map.update({c.value: i + offset for i, c in enumerate(export.classes)})
        k = len(export.classes) + offset
        # a value between the class values that is no class would pass as that class id
        label_map.update({v: ignore_index for v in range(1, k) if v not in label_map})
        out["label_map"] = dict(sorted(label_map.items()))
        filled.append("label_map")
    fmt_label = {"Classified_Tiles": "raster", "PASCAL_VOC_rectangles": "voc"}.get(fmt)
    stated_format = data.get("label_format")
    if stated_format is not None and stated_format != fmt_label:
        raise ConfigError(f"data.label_format {stated_format!r} does not fit the {fmt} export "
                          f"'{root}' ({fmt_label or 'set by the export'}); remove label_format.")
    if fmt_label is not None and stated_format is None:
        out["label_format"] = fmt_label
    if not _stated(data, "missing_labels"):
        out["missing_labels"] = "skip"

    # ---- sensor and bands
    sensor = data.get("sensor") if _stated(data, "sensor") else export.sensor
    if sensor is not None and not _stated(data, "sensor"):
        out["sensor"] = sensor
        filled.append(f"sensor ({export.sensor_name!r})")
    bands, named, guessed = _export_bands(export, _rgb_hint(export), sensor)
    if sensor is None and export.sensor_name is not None:
        log.info("ArcGIS export '%s': SensorName %r is none of rsfm's sensors %s; data.sensor is "
                 "not set.", root, export.sensor_name, list_sensors())
    if guessed:
        log.warning("ArcGIS export '%s': band names %s are sensor band names and the export "
                    "names no sensor rsfm knows (SensorName %r): they are read as %s. If they "
                    "are another sensor's, set data.sensor (one of %s).", root, guessed,
                    export.sensor_name, [get_band(g).qualified_name for g in guessed],
                    list_sensors())
    read = [b for b in bands if not b.alpha]
    if named and not _stated(data, "file_bands"):
        out["file_bands"] = [b.name for b in bands]
        filled.append("file_bands")
    user_bands = data.get("bands") if _stated(data, "bands") else model.get("bands")
    if user_bands is None and read:
        if card is not None and card.family == "dofa":
            # as arcgis.learn does for DOFA: a quality band has no wavelength to embed
            qa = [b for b in read if b.wavelength is None and not b.catalog and _is_qa(b.esri)]
            if qa:
                log.warning("ArcGIS export '%s': quality band(s) %s left out of the model's "
                            "bands (DOFA embeds bands by wavelength, as arcgis.learn does); "
                            "set data.bands to choose them.", root, [b.esri for b in qa])
                read = [b for b in read if b not in qa]
        out["bands"] = [_band_entry(b) for b in read]
        filled.append("bands")
    if not _stated(data, "tile_size") and export.tile_size is not None:
        out["tile_size"] = export.tile_size
        filled.append("tile_size")

    # ---- normalisation
    norm, reason = _normalization(export, data, card, bands, user_bands, sensor)
    if norm is not None:
        out["normalization"] = norm
        filled.append(f"normalization ({reason})")
    log.info("ArcGIS export '%s' (%s -> %s): filled %s.", root, fmt, task, ", ".join(filled))
    result: dict[str, Any] = {"data": out}
    if model_out:
        result["model"] = model_out
    return result


def _is_qa(name: str) -> bool:
    """A quality-assessment band by its export name (``QA``, ``PixelQA``, ``QA_PIXEL``, ``BQA``,
    ``QA60``)."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return bool(re.fullmatch(r"(pixel|radsat|b)?qa(pixel|radsat|\d*)?", key))


def _normalization(export: ArcGISExport, data: Mapping[str, Any], card: AdapterCard | None,
                   bands: Sequence[_ExportBand], user_bands: Any,
                   sensor: str | None) -> tuple[dict[str, Any] | None, str]:
    """The ``normalization`` default (or None) and why (``sensor``: the run's data.sensor)."""
    stated = data.get("normalization")
    stated = stated if isinstance(stated, Mapping) else {}
    if stated.get("mean") is not None:
        return None, ""
    mode = stated.get("mode")
    if mode not in (None, "stats"):
        return None, ""
    available = [declared_band(b.name, b.wavelength, sensor=sensor) for b in bands]
    if user_bands is not None:
        key = "data.bands" if _stated(data, "bands") else "model.bands"
        wanted = list(resolve_bands_stated(user_bands, sensor, key))
        idx = match_bands(wanted, available)
        # the user's spellings ("RED"), not the sensor's band names they resolve to ("B4")
        names = [u if isinstance(u, str) else w.name for u, w in zip(user_bands, wanted)]
    else:
        wanted = [a for a, b in zip(available, bands) if not b.alpha]
        idx = [i for i, b in enumerate(bands) if not b.alpha]
        names = [b.name for b in bands if not b.alpha]
    stats = export.band_stats
    have = [None if i is None or i >= len(stats) else stats[i] for i in idx]
    if mode == "stats":
        if not stats or any(s is None for s in have):
            missing = [w.name for w, s in zip(wanted, have) if s is None]
            raise ConfigError(
                f"data.normalization: mode 'stats' without mean/std, and the ArcGIS export "
                f"'{export.root}' has no statistics for {missing or 'its bands'} "
                f"({STATS_NAME} BandStatsState / .emd AllTilesStats). Give mean and std "
                "(rsfm stats writes them).")
        return _stats_mapping(names, have, sensor), "the export's statistics, as asked"
    if card is None:
        return None, ""
    norm = card.normalization
    covered = norm is not None and all(i is not None for i in
                                       match_bands(wanted, card.catalog_bands()))
    if covered:
        _warn_scale(export, card, wanted, have)
        return None, ""
    if not stats or any(s is None for s in have):
        return None, ""  # resolve_input_spec names the bands the card cannot cover
    missing = [n for n, i in zip(names, match_bands(wanted, card.catalog_bands()))
               if i is None or norm is None]
    return _stats_mapping(names, have, sensor), (f"the export's statistics: the card of "
                                          f"{card.name!r} has none for {missing}")


def _stats_mapping(names: Sequence[str], have: Sequence[BandStats | None],
                   sensor: str | None) -> dict[str, Any]:
    """``normalization`` keys from per-band statistics (every entry of ``have`` is set) of the
    bands ``names`` (resolved on ``sensor``)."""
    found = [s for s in have if s is not None]
    out: dict[str, Any] = {"mode": "stats", "mean": [s.mean for s in found],
                           # a constant band (std 0) is centred, not scaled
                           "std": [s.std if s.std > 0 else 1.0 for s in found]}
    try:  # normalization.bands takes catalog names only (declared bands have no entry)
        resolve_bands_stated(names, sensor)
    except ConfigError:
        return out
    return {**out, "bands": list(names)}


def _warn_scale(export: ArcGISExport, card: AdapterCard, wanted: Sequence[Band],
                have: Sequence[BandStats | None]) -> None:
    """Warn when the export's values are far from what the card's statistics expect."""
    norm = card.normalization
    if norm is None or any(s is None for s in have):
        return
    idx = match_bands(wanted, card.catalog_bands())
    for band, stat, i in zip(wanted, have, idx):
        if stat is None or i is None:
            continue
        mean, std = norm.mean[i] * norm.divide_by, norm.std[i] * norm.divide_by
        if abs(stat.mean - mean) > 3 * std:
            log.warning(
                "ArcGIS export '%s': band %s averages %.4g but the card of %r expects about "
                "%.4g (+- %.4g); if the export is not in the card's units, write "
                "data.normalization: {mode: stats} to use the export's statistics.",
                export.root, band.name, stat.mean, card.name, mean, std)
            return
