"""Class rasters that GIS software shows with class names and colours, and their COG copies.

A class raster written by ``predict`` carries its legend three ways:

- a colour table in the GeoTIFF (every GIS reads it);
- GDAL category names and a thematic raster attribute table (``Value``, ``Count``,
  ``Class_Name``, ``Red``, ``Green``, ``Blue``) in the GDAL PAM sidecar ``<name>.tif.aux.xml``,
  which is where GDAL itself stores them for GeoTIFFs, and where ArcGIS reads and writes raster
  attribute tables; GDAL-based tools (QGIS, ``gdalinfo``, rasterio through GDAL) read them;
- a QGIS style ``<name>.qml`` (paletted renderer with class labels), which QGIS applies when the
  layer is added.

COG copies keep the deflate predictor and use MODE overviews for classes (a zoomed-out class map
shows the most frequent class, not the class of one sampled pixel).
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from rasterio.shutil import copy as rio_copy

from rsfm.io import atomic_write, atomic_write_text
from rsfm.spec import ClassInfo

__all__ = [
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
_RAT_FIELDS = (("Value", _INT, _MINMAX), ("Count", _INT, _COUNT), ("Class_Name", _STR, _NAME),
               ("Red", _INT, _RED), ("Green", _INT, _GREEN), ("Blue", _INT, _BLUE))


def class_nodata(num_classes: int, ignore_index: int) -> tuple[str, int]:
    """The class raster's dtype and nodata value.

    The nodata value is the model's ``ignore_index`` when the dtype can hold it (``255`` in many
    datasets), else the dtype's largest value (``255`` / ``65535``).
    """
    dtype, top = ("uint8", 255) if num_classes < 255 else ("uint16", 65535)
    ok = num_classes <= ignore_index <= top
    return dtype, int(ignore_index) if ok else top


def style_paths(raster: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(<raster>.aux.xml, <raster stem>.qml)``: the GDAL PAM and QGIS style sidecars."""
    raster = Path(raster)
    return raster.with_name(raster.name + ".aux.xml"), raster.with_suffix(".qml")


def _pam_xml(classes: Sequence[ClassInfo], counts: Sequence[int] | None) -> str:
    counts = list(counts) if counts is not None else [0] * len(classes)
    cats = "".join(f"      <Category>{escape(c.name)}</Category>\n" for c in classes)
    defs = "".join(
        f'      <FieldDefn index="{i}">\n        <Name>{name}</Name>\n        <Type>{kind}</Type>\n'
        f"        <Usage>{usage}</Usage>\n      </FieldDefn>\n"
        for i, (name, kind, usage) in enumerate(_RAT_FIELDS))
    rows = ""
    for i, c in enumerate(classes):
        values = (i, int(counts[i]), escape(c.name), *c.color)
        cells = "".join(f"        <F>{v}</F>\n" for v in values)
        rows += f'      <Row index="{i}">\n{cells}      </Row>\n'
    return ('<PAMDataset>\n  <PAMRasterBand band="1">\n    <CategoryNames>\n' + cats
            + "    </CategoryNames>\n"
            + '    <GDALRasterAttributeTable tableType="thematic">\n' + defs + rows
            + "    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n")


def _qml(classes: Sequence[ClassInfo]) -> str:
    entries = "".join(
        f'        <paletteEntry value="{i}" label={quoteattr(c.name)} alpha="255" '
        f'color="#{c.color[0]:02x}{c.color[1]:02x}{c.color[2]:02x}"/>\n'
        for i, c in enumerate(classes))
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
        raster: The class GeoTIFF (band 1 holds class ids ``0..K-1``).
        classes: Names and colours, index = class id.
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
