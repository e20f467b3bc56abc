"""Tile-reading throughput: rsfm SceneDataset vs plain rasterio windowed reads (same run).

Builds an 8192 x 8192, 6-band uint16 tiled COG (512-px blocks, DEFLATE, overviews) in a temp dir,
then reads every 256 x 256 tile (6 bands) in one shuffled order with:

- plain rasterio: ``ds.read(window=w)`` in a loop (the baseline);
- rsfm ``SceneDataset`` (+ mean/std normalisation to float32) through a DataLoader with
  ``num_workers`` 0 and 2 (batch 16);
- optionally TorchGeo ``RasterDataset`` + ``GridGeoSampler`` when ``torchgeo`` imports
  (``--torchgeo``; run it from a throwaway venv, it is not an rsfm dependency).

    .venv/bin/python bench/bench_data.py [--size 8192] [--tiles 1024] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from rsfm.data.rasters import bands_of_file
from rsfm.spec import InputSpec, Normalization

TILE = 256
BANDS = 6


def build_cog(path: Path, size: int, seed: int = 0) -> None:
    """Write a smooth-plus-noise 6-band uint16 image as a tiled COG (streamed in strips)."""
    tmp = path.with_suffix(".src.tif")
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": BANDS,
               "dtype": "uint16", "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate", "crs": "EPSG:32633",
               "transform": rasterio.transform.from_origin(500000, 5000000, 10, 10)}
    x = np.linspace(0, 8 * np.pi, size, dtype=np.float32)
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, size, 512):
            y = np.linspace(row, row + 512, 512, endpoint=False, dtype=np.float32)[:, None]
            base = 3000 + 1500 * np.sin(x[None, :] / 3 + y / 700) * np.cos(y / 400)
            strip = np.empty((BANDS, 512, size), dtype=np.uint16)
            for b in range(BANDS):
                noise = rng.integers(0, 200, size=(512, size), dtype=np.uint16)
                strip[b] = (base * (1 + 0.1 * b)).astype(np.uint16) + noise
            dst.write(strip, window=Window(0, row, size, 512))
    rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=512,
                         overviews="AUTO", BIGTIFF="IF_SAFER")
    tmp.unlink()


def _spec(path: Path) -> InputSpec:
    """Every band of the COG (band1..band6), mean/std normalisation to float32."""
    return InputSpec(bands_of_file(path),
                     Normalization("stats", (3000.0,) * BANDS, (1000.0,) * BANDS))


def windows(size: int, n: int, seed: int = 0) -> list[Window]:
    grid = [Window(c, r, TILE, TILE) for r in range(0, size, TILE) for c in range(0, size, TILE)]
    order = np.random.default_rng(seed).permutation(len(grid))[:n]
    return [grid[i] for i in order]


def bench_rasterio(path: Path, wins: list[Window]) -> float:
    t = time.perf_counter()
    with rasterio.open(path) as ds:
        for w in wins:
            ds.read(window=w)
    return len(wins) / (time.perf_counter() - t)


class _PlainTiles:
    """Plain rasterio windowed reads wrapped as a map-style dataset (the 2-worker baseline)."""

    def __init__(self, path: Path, wins: list[Window]) -> None:
        self.path, self.wins, self.ds = path, wins, None

    def __len__(self) -> int:
        return len(self.wins)

    def __getitem__(self, i: int):
        import torch

        if self.ds is None:  # opened in the worker, after the fork
            self.ds = rasterio.open(self.path)
        return torch.from_numpy(self.ds.read(window=self.wins[i]))


def _steady_rate(loader) -> float:
    """Tiles/s after the first batch: worker start-up (fork, imports) is not tile reading."""
    it = iter(loader)
    first = next(it)
    t = time.perf_counter()
    n = 0
    for batch in it:
        n += len(batch["image"] if isinstance(batch, dict) else batch)
    del first
    return n / (time.perf_counter() - t)


def bench_plain_loader(path: Path, wins: list[Window], workers: int) -> float:
    from torch.utils.data import DataLoader

    return _steady_rate(DataLoader(_PlainTiles(path, wins), batch_size=16, num_workers=workers))


def bench_rsfm(path: Path, wins: list[Window], workers: int) -> tuple[float, float]:
    from torch.utils.data import DataLoader, Subset

    from rsfm.data import SceneDataset, collate_fn
    from rsfm.data import rasters as _r

    _r._handles.clear()  # a fresh handle: no decoded blocks left from an earlier run
    t0 = time.perf_counter()
    ds = SceneDataset(path, None, _spec(path), task="none", tile_size=TILE)
    build = time.perf_counter() - t0
    pos = {(c, r): i for i, (_, c, r) in enumerate(ds.items)}
    order = [pos[(int(w.col_off), int(w.row_off))] for w in wins]
    loader = DataLoader(Subset(ds, order), batch_size=16, num_workers=workers,
                        collate_fn=collate_fn)
    return _steady_rate(loader), build


def bench_paired(path: Path, wins: list[Window], chunk: int = 64) -> tuple[float, float]:
    """Plain rasterio and rsfm (num_workers=0) timed chunk by chunk, alternating which goes
    first, so load from other processes on the machine falls on both alike."""
    from torch.utils.data import DataLoader, Subset

    from rsfm.data import SceneDataset, collate_fn
    from rsfm.data import rasters as _r

    _r._handles.clear()
    ds = SceneDataset(path, None, _spec(path), task="none", tile_size=TILE)
    pos = {(c, r): i for i, (_, c, r) in enumerate(ds.items)}
    t_plain = t_rsfm = 0.0
    with rasterio.open(path) as src:
        for k in range(0, len(wins), chunk):
            part = wins[k:k + chunk]
            order = [pos[(int(w.col_off), int(w.row_off))] for w in part]
            loader = DataLoader(Subset(ds, order), batch_size=16, collate_fn=collate_fn)

            def plain(part=part):
                for w in part:
                    src.read(window=w)

            def ours(loader=loader):
                for _ in loader:
                    pass

            steps = [plain, ours] if (k // chunk) % 2 == 0 else [ours, plain]
            for fn in steps:
                t = time.perf_counter()
                fn()
                dt = time.perf_counter() - t
                if fn is plain:
                    t_plain += dt
                else:
                    t_rsfm += dt
    return len(wins) / t_plain, len(wins) / t_rsfm


def bench_torchgeo(path: Path, n: int) -> float:
    from torch.utils.data import DataLoader
    from torchgeo.datasets import RasterDataset, stack_samples
    from torchgeo.samplers import GridGeoSampler

    class Cog(RasterDataset):
        filename_glob = path.name
        is_image = True

    ds = Cog(paths=str(path.parent))
    sampler = GridGeoSampler(ds, size=TILE, stride=TILE)
    loader = DataLoader(ds, sampler=sampler, batch_size=16, collate_fn=stack_samples)
    t = time.perf_counter()
    k = 0
    for batch in loader:
        k += len(batch["image"])
        if k >= n:
            break
    return k / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--tiles", type=int, default=1024, help="tiles read per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs per reader")
    ap.add_argument("--keep", help="directory for the COG (reused if present)")
    ap.add_argument("--torchgeo", action="store_true", help="also time TorchGeo (if installed)")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rsfm_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    cog = work / "bench_cog.tif"
    if not cog.exists():
        t = time.perf_counter()
        build_cog(cog, args.size)
        print(f"built {cog} ({cog.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
    wins = windows(args.size, args.tiles)
    bench_rasterio(cog, wins[:64])  # warm the OS page cache for every reader alike

    # Interleaved rounds, best of each: other load on the machine hits every reader alike.
    best: dict[tuple[str, int], float] = {}
    setup = 0.0
    for _ in range(args.repeats):
        runs = [
            (("plain rasterio windowed read", 0), lambda: bench_rasterio(cog, wins)),
            (("plain rasterio in DataLoader", 2), lambda: bench_plain_loader(cog, wins, 2)),
            (("rsfm SceneDataset + normalise", 0), lambda: bench_rsfm(cog, wins, 0)[0]),
            (("rsfm SceneDataset + normalise", 2), lambda: bench_rsfm(cog, wins, 2)[0]),
        ]
        for key, fn in runs:
            best[key] = max(best.get(key, 0.0), fn())
        setup = max(setup, bench_rsfm(cog, wins[:16], 0)[1])
    rows = [(name, w, rate, setup if name.startswith("rsfm") else None)
            for (name, w), rate in best.items()]
    paired = [bench_paired(cog, wins) for _ in range(args.repeats)]
    plain_p, rsfm_p = max(p[0] for p in paired), max(p[1] for p in paired)
    if args.torchgeo:
        try:
            rows.append(("torchgeo RasterDataset+GridGeoSampler", 0,
                         bench_torchgeo(cog, args.tiles), None))
        except ImportError as err:
            print(f"torchgeo not available: {err}")

    base = rows[0][2]
    print(f"\n{args.tiles} tiles of {TILE}x{TILE}x{BANDS} uint16 from a {args.size}^2 COG, "
          f"{os.cpu_count()} CPUs")
    print(f"{'reader':40s} {'workers':>7s} {'tiles/s':>9s} {'vs rasterio':>12s} {'setup s':>8s}")
    print("(vs rasterio = ratio to the single-process plain rasterio loop; setup = building the"
          " tile index incl. the nodata scan)")
    for name, w, rate, build in rows:
        setup = f"{build:.2f}" if build is not None else ""
        print(f"{name:40s} {w:7d} {rate:9.1f} {rate / base:11.0%} {setup:>8s}")
    print(f"\npaired, chunk-interleaved (num_workers=0): plain rasterio {plain_p:.1f} tiles/s, "
          f"rsfm {rsfm_p:.1f} tiles/s -> rsfm at {rsfm_p / plain_p:.0%} of plain rasterio")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
