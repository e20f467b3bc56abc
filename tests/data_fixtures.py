"""Shared helpers for the data-layer tests (real fixtures in tests/data/, tiny synthetic rasters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

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

S1_KW = {"image_suffix": "_S1Hand", "label_suffix": "_LabelHand", "classes": ["dry", "water"],
         "bands": ["VV", "VH"], "label_ignore_values": [-1]}
# Dubai colour table from PROVENANCE.md: the masks use #6EC1E4 for roads (classes.json says
# #1BB3F5); black border pixels are ignored on purpose.
DUBAI_CLASSES = ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"]
DUBAI_COLORS = {"#3C1098": 0, "#8429F6": 1, "#6EC1E4": 2, "#FEDD3A": 3, "#E2A929": 4,
                "#9B9B9B": 5, "#000000": -1}


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
