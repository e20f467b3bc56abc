"""Shared helpers for the data-layer tests (real fixtures in tests/data/, tiny synthetic rasters)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from rsfm.bands import Band, declared_band
from rsfm.colors import class_colors
from rsfm.data.labels import LabelRules
from rsfm.data.rasters import bands_of_file
from rsfm.spec import ClassInfo, InputSpec, Normalization

DATA = Path(__file__).parent / "data"
S1 = DATA / "sen1floods11" / "S1Hand"
S1_LABELS = DATA / "sen1floods11" / "LabelHand"
S2_CHIP = DATA / "sen1floods11" / "S2Hand" / "Spain_7370579_S2Hand.tif"
SPACENET = DATA / "spacenet4" / "sample_geotiff.tif"
SPACENET_VEC = DATA / "spacenet4" / "geotiff_labels.geojson"
SPACENET_YOLO = DATA / "spacenet4" / "sample_geotiff_yolo_boxes.txt"
TREES = DATA / "deepforest"
DUBAI = DATA / "dubai"
LANDSAT7 = DATA / "landsat7" / "RGB.byte.crop.tif"
RGBN = DATA / "rgbn" / "rgbn.crop.tif"



def make_spec(bands: Sequence[str | Band] | str | Path, classes: Sequence[str] = (), *,
              mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
              mode: str | None = None, value_scale: float = 1.0, file_bands=None,
              sensor: str | None = None, **kw) -> InputSpec:
    """An InputSpec for tests: band names (catalog or declared, ``band3`` by position) or a file
    (all its bands), class names (palette colours), normalisation as keywords."""
    if isinstance(bands, (str, Path)):
        found = bands_of_file(bands, file_bands, sensor)
    else:
        found = tuple(b if isinstance(b, Band) else declared_band(b, sensor=sensor) for b in bands)
    norm = Normalization(mode or ("stats" if mean is not None else "none"),
                         None if mean is None else tuple(mean),
                         None if std is None else tuple(std), value_scale)
    infos = tuple(ClassInfo(n, c) for n, c in zip(classes, class_colors(len(classes))))
    return InputSpec(bands=found, normalization=norm, classes=infos, sensor=sensor,
                     file_bands=None if file_bands is None else tuple(file_bands), **kw)


S1_SPEC = make_spec(["VV", "VH"], ["dry", "water"])
S1_KW = {"image_suffix": "_S1Hand", "label_suffix": "_LabelHand",
         "label_rules": LabelRules(ignore_values=(-1,))}
# Dubai colour table from PROVENANCE.md: the masks use #6EC1E4 for roads (classes.json says
# #1BB3F5); black border pixels are ignored on purpose.
DUBAI_CLASSES = ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"]
DUBAI_COLORS = {"#3C1098": 0, "#8429F6": 1, "#6EC1E4": 2, "#FEDD3A": 3, "#E2A929": 4,
                "#9B9B9B": 5, "#000000": -1}
DUBAI_SPEC = make_spec(["RED", "GREEN", "BLUE"], DUBAI_CLASSES, mode="minmax")
DUBAI_RULES = LabelRules(color_map=DUBAI_COLORS)


def write_tif(path: Path, data: np.ndarray, *, crs: str | None = "EPSG:32633",
              transform=None, nodata=None, descriptions=None, **extra) -> Path:
    """Write ``data`` (C, H, W) as a GeoTIFF."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "dtype": data.dtype.name, "nodata": nodata,
               "transform": transform or from_origin(500000, 5000000, 10, 10), **extra}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
    return path
