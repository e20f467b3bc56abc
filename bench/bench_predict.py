"""Benchmark ``rsfm.predict``: end-to-end vs the model's pure forward, and peak memory.

    python bench/bench_predict.py                       # 4096x4096 6-band scene, tiny Prithvi
    python bench/bench_predict.py --size 10000 --rss    # peak RSS on a 10k x 10k scene

The end-to-end run includes reading, normalising, padding, blending, writing the tiled GeoTIFF
and the COG copy; the pure forward runs the same model on the same number of random tiles with
the same batch size, in the same process. Overhead = end-to-end / forward - 1.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window

BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def make_scene(path: Path, size: int) -> Path:
    """A tiled 6-band uint16 scene written block row by block row (never whole in memory)."""
    if path.exists():
        return path
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=6, dtype="uint16",
                       crs="EPSG:32616", transform=from_origin(500000, 4000000, 10, 10), nodata=0,
                       tiled=True, blockxsize=512, blockysize=512, compress="deflate") as ds:
        for i, b in enumerate(["B2", "B3", "B4", "B8A", "B11", "B12"]):
            ds.set_band_description(i + 1, b)
        x = np.arange(size, dtype=np.float32)
        for r in range(0, size, 512):
            n = min(512, size - r)
            y = np.arange(r, r + n, dtype=np.float32)[:, None]
            base = 1500 + 700 * np.sin(x / 97.0)[None] * np.cos(y / 131.0)
            data = np.stack([base * (0.6 + 0.1 * k) for k in range(6)]).astype(np.uint16)
            ds.write(data, window=Window(0, r, size, n))
    return path


def make_model(kind: str) -> torch.nn.Module:
    if kind == "conv":
        return torch.nn.Sequential(torch.nn.Conv2d(6, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 2, 1))
    from rsfm.models.factory import create_model

    return create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=2,
                        backbone_kwargs={"depth": 4, "embed_dim": 192, "num_heads": 3}).eval()


def forward_time(model: torch.nn.Module, x: torch.Tensor, n_tiles: int, batch: int) -> float:
    """Seconds of the model's forward (+ softmax) over ``n_tiles`` tiles in batches."""
    with torch.inference_mode():
        model(x[:1])  # warm-up, as predict_scene's first batch is
        t0 = time.perf_counter()
        done = 0
        while done < n_tiles:
            b = min(batch, n_tiles - done)
            torch.softmax(model(x[:b]), 1)
            done += b
    return time.perf_counter() - t0


def main() -> None:
    from rsfm.inference.predict import predict_scene, tile_offsets
    from rsfm.inference.spec import PredictionSpec

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--tile", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--model", choices=["vit", "conv"], default="vit")
    ap.add_argument("--rss", action="store_true", help="only run predict and report peak RSS")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    args = ap.parse_args()
    torch.manual_seed(0)
    scene = make_scene(Path(args.workdir) / f"rsfm_bench_{args.size}.tif", args.size)
    model = make_model(args.model)
    spec = PredictionSpec(bands=tuple(BANDS), mean=(1000.0,) * 6, std=(500.0,) * 6,
                          classes=("background", "target"), tile_size=args.tile)
    n_tiles = len(tile_offsets(args.size, args.tile, spec.tile_overlap)) ** 2
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = Path(args.workdir) / "rsfm_bench_pred.tif"
    if not args.rss:  # forward timed before and after the end-to-end run: the CPU may be shared
        fwd_before = forward_time(model, torch.randn(args.batch, 6, args.tile, args.tile), n_tiles, args.batch)
    t0 = time.perf_counter()
    predict_scene(model, scene, out, spec, batch_size=args.batch, progress=False)
    e2e = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mpix = args.size**2 / 1e6
    print(f"scene {args.size}x{args.size}x6 uint16, tile {args.tile}, overlap {spec.tile_overlap}, "
          f"{n_tiles} tiles, batch {args.batch}, model {args.model}, {torch.get_num_threads()} threads")
    print(f"end-to-end predict: {e2e:.1f} s = {mpix / e2e:.2f} MPix/s")
    print(f"peak RSS: {rss:.0f} MiB (before predict: {rss0:.0f} MiB)")
    if args.rss:
        return
    x = torch.randn(args.batch, 6, args.tile, args.tile)
    fwd = (fwd_before + forward_time(model, x, n_tiles, args.batch)) / 2  # bracket the e2e run
    print(f"pure forward ({n_tiles} tiles): {fwd:.1f} s = {mpix / fwd:.2f} MPix/s")
    print(f"overhead (I/O, normalise, blend, write, COG): {100 * (e2e / fwd - 1):.1f} %")


if __name__ == "__main__":
    main()
