"""Rebuild the demo data in ``recipes/demo_data/sen1floods11/`` from the Sen1Floods11 samples.

Real Sentinel-1 chips (VV/VH backscatter in dB, NaN nodata) with hand-drawn water labels
(-1 no data, 0 dry, 1 water), cropped to 256 x 256 windows (georeferencing, nodata and band
descriptions kept; values byte-identical). For each chip the quadrant with the most balanced
dry/water mix is kept. Deterministic.

    .venv/bin/python recipes/demo_data/make_demo_data.py [/work/shared/data/sen1floods11_samples]
"""

from __future__ import annotations

import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent / "sen1floods11"
SRC = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data/sen1floods11_samples")
TRAIN = ["India_900498", "Pakistan_849790", "Spain_7370579", "Sri-Lanka_534068", "Mekong_333434",
         "Somalia_699062", "Ghana_53713"]
VAL = ["Nigeria_812045", "USA_905409", "Bolivia_312675"]
SIZE = 256


def crop(src: Path, dst: Path, window: Window) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(src) as ds:
        profile = ds.profile.copy()
        profile.update(driver="GTiff", width=SIZE, height=SIZE, compress="deflate",
                       predictor=1, tiled=False, transform=ds.window_transform(window))
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        with rasterio.open(dst, "w", **profile) as out:
            out.write(ds.read(window=window))
            for i, desc in enumerate(ds.descriptions, start=1):
                if desc:
                    out.set_band_description(i, desc)


def best_window(label: Path) -> Window:
    with rasterio.open(label) as ds:
        lab = ds.read(1)
    best, score = None, -1.0
    for row in (0, SIZE):
        for col in (0, SIZE):
            part = lab[row:row + SIZE, col:col + SIZE]
            valid = part >= 0
            water = (part == 1).sum() / max(valid.sum(), 1)
            s = min(water, 1 - water) * valid.mean()
            if s > score:
                best, score = Window(col, row, SIZE, SIZE), s
    return best


def main() -> None:
    for split, stems in (("train", TRAIN), ("val", VAL)):
        for stem in stems:
            label = SRC / "LabelHand" / f"{stem}_LabelHand.tif"
            win = best_window(label)
            crop(SRC / "S1Hand" / f"{stem}_S1Hand.tif", HERE / split / "S1Hand" / f"{stem}_S1Hand.tif", win)
            crop(label, HERE / split / "LabelHand" / f"{stem}_LabelHand.tif", win)
            with rasterio.open(HERE / split / "LabelHand" / f"{stem}_LabelHand.tif") as ds:
                lab = ds.read(1)
            shares = {v: round(float((lab == v).mean()), 3) for v in (-1, 0, 1)}
            sys.stdout.write(f"{split} {stem} {(win.col_off, win.row_off)} {shares}\n")


if __name__ == "__main__":
    main()
