"""Benchmark ``rsfm.predict`` end to end: bf16 vs fp32, Prithvi-100M + FCN head, tile 224.

The scene is real: the Sentinel-2 chip ``Spain_7370579_S2Hand.tif`` of Sen1Floods11 (13 bands,
int16; the 512 x 512 chip of ``/work/shared/data/sen1floods11_samples`` when present, else the
128 x 128 crop in ``tests/data``), mirrored into a ``--size`` x ``--size`` mosaic (default
1024, 49 tiles) so that tiles, not per-scene costs, dominate as they do on real scenes. The
model is Prithvi-EO-1.0-100M's layout (ViT-B/16, its card's six HLS bands and statistics;
random init, seed 0, no download) with the ViTDet neck and an FCN head, two classes.

Configurations (``bench/_harness.py``: each in a fresh subprocess, interleaved, CPU seconds
next to wall seconds, one torch thread unless ``--threads``):

* ``rsfm-fp32``: ``predict(..., precision="fp32")``, read, normalise, tile with a quarter-tile
  overlap, blend, classes, COG (the baseline of every ratio);
* ``rsfm-bf16``: the same with ``precision="bf16"`` (bf16 autocast);
* ``forward-fp32`` / ``forward-bf16`` (with ``--forward``): the model alone, as ``predict`` runs
  it (``torch.inference_mode`` and autocast), on as many tiles in the same batches, so
  ``rsfm-*`` minus ``forward-*`` is everything that is not the model: reading, normalising,
  padding, blending, softmax, classes, writing the COG.

Each subprocess builds the model, runs one forward per batch shape and one small ``predict``,
then ``--warmup`` untimed (default 1: the first ``predict`` of a process also pays the memory
allocator's first page touches, which vary from run to run) and ``--steps`` timed ``predict``
calls of the scene. Reported: the harness table
(CPU s and wall s per step, peak RSS, ratios vs ``rsfm-fp32``) and a throughput table: scene
megapixels per wall second and per CPU second, speed-up vs ``rsfm-fp32``, and the class
agreement of each bf16 map with the fp32 map (all valid pixels).

    .venv/bin/python bench/bench_predict.py [--size 1024] [--reps 2] [--warmup 1] [--forward]

bf16 runs natively only on CPUs with AVX512-BF16 / AMX (``rsfm`` falls back to fp32 elsewhere,
and the ``precision`` column says what ran).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from _harness import (
    Config,
    Summary,
    add_arguments,
    machine_header,
    measure,
    serve,
    table,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
CHIP_NAME = "Spain_7370579_S2Hand.tif"
CHIPS = (Path("/work/shared/data/sen1floods11_samples/S2Hand") / CHIP_NAME,
         ROOT / "tests" / "data" / "sen1floods11" / "S2Hand" / CHIP_NAME)
TILE = 224
BASELINE = "rsfm-fp32"


def make_scene(chip: Path, size: int, path: Path) -> Path:
    """``chip`` mirrored (flipped copies, no seams) into a ``size`` x ``size`` tiled GeoTIFF."""
    import numpy as np
    import rasterio

    with rasterio.open(chip) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    h, w = data.shape[1:]
    rows = [data if (i // h) % 2 == 0 else data[:, ::-1] for i in range(0, size, h)]
    tall = np.concatenate(rows, axis=1)[:, :size]
    cols = [tall if (j // w) % 2 == 0 else tall[:, :, ::-1] for j in range(0, size, w)]
    mosaic = np.ascontiguousarray(np.concatenate(cols, axis=2)[:, :, :size])
    profile.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mosaic)
        for i, name in enumerate(names):
            dst.set_band_description(i + 1, name)
    return path


def _batches(size: int, batch: int, spec: Any) -> list[int]:
    """Batch sizes ``predict`` runs on a ``size``-pixel square scene (tiles go row by row)."""
    from rsfm.inference.predict import PredictOptions, tile_offsets

    tile, overlap = PredictOptions(tile_size=TILE).tiling(spec)
    n = len(tile_offsets(size, tile, overlap))
    per_row = [min(batch, n - i) for i in range(0, n, batch)]
    return per_row * n


def build(p: dict[str, Any]) -> Any:
    """One configuration: ``step`` predicts the scene (or runs the model on as many tiles)."""
    import importlib
    import os

    import torch

    from rsfm.factory import create_model
    from rsfm.inference.precision import autocast

    rp = importlib.import_module("rsfm.inference.predict")  # the package maps .predict lazily

    torch.manual_seed(0)
    model = create_model("segmentation", "prithvi_eo_v1_100m", head="fcn", num_classes=2).eval()
    cpu = torch.device("cpu")
    channels = len(model.input_spec.channel_names)
    batches = _batches(p["size"], p["batch"], model.input_spec)

    def runner(x: torch.Tensor) -> None:  # as rsfm.inference.predict runs the model
        with torch.inference_mode(), autocast(cpu, p["precision"]):
            model(x)

    for b in sorted(set(batches)):  # oneDNN primitives of every batch shape
        runner(torch.zeros(b, channels, TILE, TILE))
    info: dict[str, Any] = {"tiles": sum(batches), "precision": p["precision"]}

    if p["kind"] == "forward":
        x = torch.randn(max(batches), channels, TILE, TILE)

        def forward() -> None:
            for b in batches:
                runner(x[:b])

        return forward, info

    out = Path(p["out"])
    kw = {"tile_size": TILE, "batch_size": p["batch"], "precision": p["precision"],
          "progress": False, "device": "cpu", "cog": True}
    tag = f"{p['name']}-{os.getpid()}"  # two runs of a configuration may overlap (--jobs 2)
    rp.predict(model, p["warm_scene"], out / f"warm-{tag}.tif", **kw)  # files, GDAL

    def step() -> None:  # the harness reports ``info`` after the steps
        res = rp.predict(model, p["scene"], out / f"{tag}.tif", **kw)
        info.update(precision=res.precision, tiles=res.tiles)

    return step, info


def agreement(a: Path, b: Path) -> float:
    """Class agreement of map ``b`` with map ``a`` on ``a``'s valid pixels."""
    import numpy as np
    import rasterio

    with rasterio.open(a) as da, rasterio.open(b) as db:
        x, y = da.read(1), db.read(1)
        valid = x != da.nodata if da.nodata is not None else np.ones(x.shape, bool)
    return float((x[valid] == y[valid]).mean())


def throughput(res: list[Summary], mpix: float, agree: dict[str, float]) -> str:
    """Markdown: MPix per wall / CPU second, speed-up vs the baseline, class agreement."""
    base = next(s for s in res if s.config.name == BASELINE)
    rows = [(f"| configuration | precision | MPix/s (wall) | MPix/CPU s | speed-up vs {BASELINE} "
             f"(CPU s) | speed-up (wall) | class agreement vs {BASELINE} |"),
            "|---|---|---|---|---|---|---|"]
    for s in res:
        if not s.ok:
            rows.append(f"| `{s.config.name}` | — | — | — | — | — | {s.status} |")
            continue
        ran = next(m.info.get("precision", "") for m in s.runs if m.ok)
        a = agree.get(s.config.name)
        cell = "" if a is None else f"{a:.4%}"
        speed = (f"{base.cpu_s / s.cpu_s:.2f}x", f"{base.wall_s / s.wall_s:.2f}x") if base.ok \
            else ("—", "—")
        rows.append(f"| `{s.config.name}` | {ran} | {mpix / s.wall_s:.3f} | {mpix / s.cpu_s:.3f} "
                    f"| {speed[0]} | {speed[1]} | {cell} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="scene side in pixels (mosaic)")
    ap.add_argument("--batch", type=int, default=8, help="tiles per forward pass")
    ap.add_argument("--forward", action="store_true",
                    help="also time the model alone on the same tiles (about 1.5 min more)")
    add_arguments(ap, reps=2, warmup=1, steps=1, timeout=600)
    args = ap.parse_args()
    from rsfm.inference.precision import cpu_flags

    chip = next((c for c in CHIPS if c.exists()), None)
    if chip is None:
        raise SystemExit(f"no {CHIP_NAME} in {[str(c.parent) for c in CHIPS]}")
    header = machine_header(args.threads, args.jobs)
    flags = sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f) or ["none"]
    print(header, flush=True)
    with tempfile.TemporaryDirectory(prefix="rsfm-bench-predict-") as tmp:
        work = Path(tmp)
        scene = make_scene(chip, args.size, work / f"scene_{args.size}.tif")
        warm = make_scene(chip, TILE, work / "warm.tif")
        base = {"size": args.size, "batch": args.batch, "scene": str(scene),
                "warm_scene": str(warm), "out": str(work), "kind": "predict"}
        cfgs = [
            Config(BASELINE, {**base, "name": BASELINE, "precision": "fp32"},
                   note="baseline"),
            Config("rsfm-bf16", {**base, "name": "rsfm-bf16", "precision": "bf16"},
                   note="bf16 autocast"),
        ]
        if args.forward:
            cfgs += [Config(f"forward-{p}", {**base, "name": f"forward-{p}", "precision": p,
                                             "kind": "forward"},
                            note="the model alone, same tiles and batches")
                     for p in ("fp32", "bf16")]
        res = measure(__file__, cfgs, reps=args.reps, warmup=args.warmup, steps=args.steps,
                      threads=args.threads, jobs=args.jobs, timeout=args.timeout)
        maps = {c.name: next(iter(sorted(work.glob(f"{c.name}-[0-9]*.tif"))), None)
                for c in cfgs if c.params["kind"] == "predict"}
        fp32_map = maps.pop(BASELINE, None)
        agree = {name: agreement(fp32_map, path) for name, path in maps.items()
                 if path is not None and fp32_map is not None}
    md = table(res, time_baseline=BASELINE, info_keys=["tiles"])
    mpix = args.size**2 / 1e6
    tp = throughput(res, mpix, agree)
    print(md)
    print()
    print(tp)
    title = (f"Prithvi-100M layout (ViT-B/16, random init) + FCN, real S2 chip {chip.name} "
             f"mirrored to {args.size}^2 ({mpix:.2f} MPix), tile {TILE}, batch {args.batch}; "
             f"CPU bf16 flags: {', '.join(flags)}")
    write_section(args.markdown, "Prediction (`bench_predict.py`)",
                  f"{header}\n\n### {title}\n\n{md}\n\n{tp}")


if __name__ == "__main__":
    if not serve(build):
        main()
