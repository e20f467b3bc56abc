"""Class rasters that GIS software shows with class names and colours, and their COG copies.

A class raster written by ``predict`` carries its legend three ways:

- a colour table in the GeoTIFF (every GIS reads it);
- GDAL category names and a thematic raster attribute table (``Value``, ``Count``,
  ``Class_Name``, ``Red``, ``Green``, ``Blue``) in the GDAL PAM sidecar ``<name>.tif.aux.xml``,
  which is where GDAL itself stores them for GeoTIFFs, and where ArcGIS reads and writes raster
  attribute tables; GDAL-based tools (QGIS, ``gdalinfo``, rasterio through GDAL) read them;
- a QGIS style ``<name>.qml`` (paletted renderer with class labels), which QGIS applies when the
  layer is added.

Pixels hold the classes' values (:attr:`rsfm.spec.InputSpec.class_values`: the class ids, or the
label values ``data.label_map`` maps to them, e.g. an ArcGIS export's 1, 5, 20); the ``CLASSES``
and ``CLASS_VALUES`` tags list the names and values in class-id order, and
:func:`class_ids` turns pixels back into ids.

COG copies keep the deflate predictor and use MODE overviews for classes (a zoomed-out class map
shows the most frequent class, not the class of one sampled pixel).
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from rasterio.shutil import copy as rio_copy

from rsfm.io import atomic_write, atomic_write_text
from rsfm.spec import ClassInfo, class_values

__all__ = [
    "class_ids",
    "class_legend",
    "class_nodata",
    "read_category_names",
    "read_raster_attribute_table",
    "style_paths",
    "to_cog",
    "write_class_style",
]

# GDAL RAT field types and usages (gdal.h: GDALRATFieldType, GDALRATFieldUsage)
_INT, _STR = 0, 2
_MINMAX, _COUNT, _NAME, _RED, _GREEN, _BLUE = 5, 1, 2, 6, 7, 8
_MAX_CATEGORY = 4095
_RAT_FIELDS = (("Value", _INT, _MINMAX), ("Count", _INT, _COUNT), ("Class_Name", _STR, _NAME),
               ("Red", _INT, _RED), ("Green", _INT, _GREEN), ("Blue", _INT, _BLUE))


def class_nodata(values: int | Sequence[int], ignore_index: int) -> tuple[str, int]:
    """The class raster's dtype and nodata value for class ``values`` (an int ``K``: ids ``0..K-1``).

    The dtype is the smallest unsigned one that holds every value and a free nodata value. The
    nodata value is the model's ``ignore_index`` when the dtype can hold it and no class has it
    (``255`` in many datasets), else the dtype's largest value (``255`` / ``65535``...).
    """
    taken = set(range(values) if isinstance(values, int) else values)
    largest = max(taken, default=0)
    dtype, top = next((d, t) for d, t in (("uint8", 255), ("uint16", 65535), ("uint32", 2**32 - 1))
                      if largest < t)
    if 0 <= ignore_index <= top and ignore_index not in taken:
        return dtype, int(ignore_index)
    return dtype, top


def class_legend(tags: dict[str, str]) -> tuple[list[str], list[int]]:
    """Class names and pixel values (index = class id) from a class raster's dataset tags.

    Rasters without ``CLASS_VALUES`` (rsfm 0.2 and earlier) hold the ids themselves.
    """
    names = [str(n) for n in json.loads(tags.get("CLASSES", "null")) or []]
    values = [int(v) for v in json.loads(tags.get("CLASS_VALUES", "null")) or range(len(names))]
    return names, values


def class_ids(pixels: np.ndarray, values: Sequence[int], nodata: int | None = None,
              fill: int = -1) -> np.ndarray:
    """Class ids of class-raster ``pixels`` holding ``values``; ``fill`` for other pixels (nodata)."""
    values = list(values)
    if values == list(range(len(values))):
        out = pixels.astype(np.int64)
        out[(out >= len(values)) | (out < 0)] = fill
    else:
        lut = np.full(max(max(values, default=0), int(pixels.max(initial=0))) + 1, fill, dtype=np.int64)
        lut[values] = np.arange(len(values))
        out = lut[pixels.astype(np.int64)]
    if nodata is not None:
        out[pixels == nodata] = fill
    return out


def style_paths(raster: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(<raster>.aux.xml, <raster stem>.qml)``: the GDAL PAM and QGIS style sidecars."""
    raster = Path(raster)
    return raster.with_name(raster.name + ".aux.xml"), raster.with_suffix(".qml")


def _pam_xml(classes: Sequence[ClassInfo], counts: Sequence[int] | None) -> str:
    counts = list(counts) if counts is not None else [0] * len(classes)
    # GDAL category names are indexed by pixel value: values no class has get an empty name
    # (left out for values beyond _MAX_CATEGORY: the attribute table still names every class)
    by_value = dict(zip(class_values(classes), classes))
    top = max(by_value, default=-1)
    cats = "".join(f"      <Category>{escape(by_value[v].name) if v in by_value else ''}</Category>\n"
                   for v in range(top + 1)) if top <= _MAX_CATEGORY else ""
    defs = "".join(
        f'      <FieldDefn index="{i}">\n        <Name>{name}</Name>\n        <Type>{kind}</Type>\n'
        f"        <Usage>{usage}</Usage>\n      </FieldDefn>\n"
        for i, (name, kind, usage) in enumerate(_RAT_FIELDS))
    rows = ""
    for i, (c, value) in enumerate(zip(classes, class_values(classes))):
        values = (value, int(counts[i]), escape(c.name), *c.color)
        cells = "".join(f"        <F>{v}</F>\n" for v in values)
        rows += f'      <Row index="{i}">\n{cells}      </Row>\n'
    categories = f"    <CategoryNames>\n{cats}    </CategoryNames>\n" if cats else ""
    return ('<PAMDataset>\n  <PAMRasterBand band="1">\n' + categories
            + '    <GDALRasterAttributeTable tableType="thematic">\n' + defs + rows
            + "    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n")


def _qml(classes: Sequence[ClassInfo]) -> str:
    entries = "".join(
        f'        <paletteEntry value="{v}" label={quoteattr(c.name)} alpha="255" '
        f'color="#{c.color[0]:02x}{c.color[1]:02x}{c.color[2]:02x}"/>\n'
        for v, c in zip(class_values(classes), classes))
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <colorPalette>\n" + entries + "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        '    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeRed="255" '
        'colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>\n'
        '    <rasterresampler maxOversampling="2"/>\n'
        "  </pipe>\n"
        "  <blendMode>0</blendMode>\n"
        "</qgis>\n"
    )


def write_class_style(raster: str | os.PathLike[str], classes: Sequence[ClassInfo],
                      counts: Sequence[int] | None = None) -> tuple[Path, Path]:
    """Write the category names + attribute table sidecar and the QGIS style of a class raster.

    Args:
        raster: The class GeoTIFF (band 1 holds the class values).
        classes: Names, colours and values, index = class id.
        counts: Pixels per class (the attribute table's ``Count``), when known.

    Returns:
        The ``.aux.xml`` and ``.qml`` paths.
    """
    pam, qml = style_paths(raster)
    atomic_write_text(pam, _pam_xml(classes, counts))
    atomic_write_text(qml, _qml(classes))
    return pam, qml


def _vrt_band(raster: str | os.PathLike[str]) -> ET.Element:
    """Band 1 of the raster as GDAL describes it (serialised through a VRT copy)."""
    with tempfile.TemporaryDirectory(prefix="rsfm-vrt-") as tmp:
        vrt = Path(tmp) / "band.vrt"
        rio_copy(str(Path(raster).absolute()), str(vrt), driver="VRT")
        root = ET.fromstring(vrt.read_text(encoding="utf-8"))
    band = root.find("VRTRasterBand")
    return band if band is not None else ET.Element("VRTRasterBand")


def read_category_names(raster: str | os.PathLike[str]) -> list[str]:
    """The GDAL category names of band 1 (``[]`` when there are none), as GDAL reads them."""
    return [c.text or "" for c in _vrt_band(raster).iterfind("CategoryNames/Category")]


def read_raster_attribute_table(raster: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The GDAL raster attribute table of band 1 as rows of ``{field: value}`` (``[]``: none)."""
    rat = _vrt_band(raster).find("GDALRasterAttributeTable")
    if rat is None:
        return []
    names = [f.findtext("Name", "") for f in rat.iterfind("FieldDefn")]
    return [dict(zip(names, (f.text or "" for f in row.iterfind("F")), strict=False))
            for row in rat.iterfind("Row")]


def to_cog(src: str | os.PathLike[str], dst: str | os.PathLike[str], resampling: str) -> Path:
    """Copy a tiled GeoTIFF into a Cloud-Optimised GeoTIFF (overviews, deflate + predictor).

    GDAL streams the copy. It is written next to ``dst`` and renamed over it, so an existing
    ``dst`` is replaced only by a complete file; a stale PAM sidecar of ``dst`` is removed.

    Args:
        src: The GeoTIFF.
        dst: The COG to write.
        resampling: Overview resampling (``MODE`` for classes, ``AVERAGE`` for probabilities).
    """
    def write(tmp: str) -> None:
        rio_copy(str(src), tmp, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES",
                 BLOCKSIZE=512, OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER",
                 NUM_THREADS="ALL_CPUS")
        Path(tmp + ".aux.xml").unlink(missing_ok=True)

    dst = atomic_write(dst, write)
    style_paths(dst)[0].unlink(missing_ok=True)
    return dst
