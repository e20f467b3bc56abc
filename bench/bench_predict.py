"""Benchmark ``rsfm.predict``: bf16 vs fp32 on real scenes, and end-to-end overhead on a big one.

Default: the 10 Sentinel-1 VV/VH scenes of ``recipes/demo_data`` (256 x 256 px each), predicted
end to end (read, normalise, tile 224 px with a quarter-tile overlap, blend, write a class COG)
by two small ViTs, in fp32 and with ``precision="bf16"``:

* ``vit_s``: Prithvi layout at ViT-S/16 size (width 384, 12 blocks, 6 heads, 22 M parameters),
  random init (seed 0), FCN head;
* ``tiny``: the trained tiny Prithvi ViT of ``tests/data/legacy_v0_1_0`` (width 32, 2 blocks);
* ``vit_b`` (on request): the Prithvi-100M layout (ViT-B/16, width 768), random init.

Each configuration runs in a fresh subprocess, the configurations interleaved ``--reps`` times
(so a busy machine slows all of them alike). Reported per configuration: the median process CPU
seconds (user + system) and wall seconds of the ``predict`` call, throughput in megapixels per
CPU second, the bf16 speed-up against the named fp32 baseline, and the class agreement of the
bf16 maps with the fp32 maps (valid pixels of all scenes). A last bf16 run per model prints the
first-batch parity report (class agreement, max probability difference).

    .venv/bin/python bench/bench_predict.py [--reps 3] [--threads 1] [--models vit_s tiny vit_b]
    .venv/bin/python bench/bench_predict.py --synthetic 4096   # end-to-end vs pure forward, RSS

bf16 runs natively only on CPUs with AVX512-BF16 / AMX (``rsfm`` falls back to fp32 elsewhere,
and says so); the script prints which CPU flags it found.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENES = sorted((ROOT / "recipes" / "demo_data" / "sen1floods11").glob("*/S1Hand/*.tif"))
LEGACY = ROOT / "tests" / "data" / "legacy_v0_1_0"
TILE = 224
MODELS = {
    "vit_s": "Prithvi layout, ViT-S/16 size (384 wide, 12 blocks), random init",
    "vit_b": "Prithvi-100M layout, ViT-B/16 size (768 wide, 12 blocks), random init",
    "tiny": "trained tiny Prithvi ViT (tests/data/legacy_v0_1_0, 32 wide, 2 blocks)",
}
_SIZES = {"vit_s": (384, 6), "vit_b": (768, 12)}


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _model(name: str):
    import torch

    from rsfm.factory import create_model
    from rsfm.inference.loading import load_model

    trained, config = load_model(LEGACY)
    if name == "tiny":
        return trained
    width, heads = _SIZES[name]
    torch.manual_seed(0)
    return create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=2,
                        input_spec=config.input,
                        backbone_kwargs={"depth": 12, "embed_dim": width, "num_heads": heads}).eval()


def worker(name: str, precision: str, out: Path, threads: int, parity: bool) -> dict:
    """One ``predict`` of all scenes in a fresh process; CPU and wall seconds of that call."""
    import torch

    from rsfm.inference.predict import predict

    torch.set_num_threads(threads)
    model = _model(name)
    kw = {"tile_size": TILE, "precision": precision, "progress": False, "device": "cpu"}
    predict(model, SCENES[:1], out / "warmup", **kw)  # first-call costs (allocator, oneDNN)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    results = predict(model, SCENES, out, parity_check=parity, **kw)
    cpu, wall = _cpu_seconds() - cpu0, time.perf_counter() - wall0
    results = results if isinstance(results, list) else [results]
    parity_report = next((str(r.parity) for r in results if r.parity is not None), None)
    return {"cpu_s": cpu, "wall_s": wall, "precision": results[0].precision,
            "tiles": sum(r.tiles for r in results), "parity": parity_report}


def _agreement(a_dir: Path, b_dir: Path) -> float:
    import rasterio

    same = total = 0
    for scene in SCENES:
        name = f"{scene.stem}_pred.tif"
        with rasterio.open(a_dir / name) as a, rasterio.open(b_dir / name) as b:
            x, y = a.read(1), b.read(1)
            valid = x != a.nodata
            same += int((x[valid] == y[valid]).sum())
            total += int(valid.sum())
    return same / max(total, 1)


def _run(args: argparse.Namespace, name: str, precision: str, out: Path,
         parity: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--_worker", name, precision, str(out),
           "--threads", str(args.threads)] + (["--_parity"] if parity else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"worker {name} {precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_precisions(args: argparse.Namespace) -> None:
    import rasterio

    from rsfm.inference.precision import cpu_flags

    mpix = 0.0
    for scene in SCENES:
        with rasterio.open(scene) as ds:
            mpix += ds.width * ds.height / 1e6
    flags = sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f) or ["none"]
    print(f"{len(SCENES)} Sentinel-1 scenes ({mpix:.2f} MPix), tile {TILE}, {args.threads} "
          f"thread(s), {args.reps} interleaved reps; CPU bf16 flags: {', '.join(flags)}")
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="rsfm-bench-predict-") as tmp:
        outs = {(m, p): Path(tmp) / f"{m}-{p}" for m in args.models for p in ("fp32", "bf16")}
        for _ in range(args.reps):
            for key, out in outs.items():
                runs.setdefault(key, []).append(_run(args, *key, out))
        agreement = {m: _agreement(outs[(m, "fp32")], outs[(m, "bf16")]) for m in args.models}
        parity = {m: _run(args, m, "bf16", Path(tmp) / f"{m}-parity", parity=True)["parity"]
                  for m in args.models}
    print("\n| model | precision | CPU s (median) | wall s | MPix / CPU s | speed-up vs fp32 "
          "(CPU s) | class agreement vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for m in args.models:
        base = statistics.median(r["cpu_s"] for r in runs[(m, "fp32")])
        for p in ("fp32", "bf16"):
            rs = runs[(m, p)]
            cpu = statistics.median(r["cpu_s"] for r in rs)
            wall = statistics.median(r["wall_s"] for r in rs)
            ran = rs[0]["precision"]
            ratio = "baseline" if p == "fp32" else f"{base / cpu:.2f}x"
            agree = "" if p == "fp32" else f"{agreement[m]:.4%}"
            label = p if ran == p else f"{p} (ran {ran})"
            print(f"| {m} | {label} | {cpu:.2f} | {wall:.2f} | {mpix / cpu:.3f} | {ratio} | "
                  f"{agree} |")
    print()
    for m in args.models:
        print(f"{m}: {MODELS[m]}")
        print(f"  first-batch parity: {parity[m]}")
        for p in ("fp32", "bf16"):
            secs = ", ".join(f"{r['cpu_s']:.2f}" for r in runs[(m, p)])
            print(f"  {p} CPU s of every rep: {secs}")


# ----------------------------------------------------------------------------- synthetic scene
BANDS6 = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def make_scene(path: Path, size: int) -> Path:
    """A tiled 6-band uint16 scene written block row by block row (never whole in memory)."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    if path.exists():
        return path
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=6, dtype="uint16",
                       crs="EPSG:32616", transform=Affine(10, 0, 500000, 0, -10, 4000000),
                       nodata=0, tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate") as ds:
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


def synthetic_worker(kind: str, size: int, precision: str, workdir: Path, threads: int) -> dict:
    """``predict`` of the synthetic scene, or the model's pure forward on as many tiles."""
    import torch

    from rsfm.factory import create_model
    from rsfm.inference.precision import autocast
    from rsfm.inference.predict import PredictOptions, predict_scene, tile_offsets

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=2,
                         backbone_kwargs={"depth": 4, "embed_dim": 192, "num_heads": 3}).eval()
    spec = model.input_spec
    tile, overlap = PredictOptions(tile_size=TILE).tiling(spec)
    n_tiles = len(tile_offsets(size, tile, overlap)) ** 2
    scene = make_scene(workdir / f"rsfm_bench_{size}.tif", size)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    if kind == "predict":
        predict_scene(model, scene, workdir / f"pred-{precision}.tif", spec, tile_size=tile,
                      precision=precision, progress=False, device="cpu")
    else:
        x = torch.randn(8, 6, tile, tile)
        with torch.inference_mode(), autocast(torch.device("cpu"), precision):
            done = 0
            while done < n_tiles:
                b = min(8, n_tiles - done)
                torch.softmax(model(x[:b]).float(), 1)
                done += b
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cpu_s": _cpu_seconds() - cpu0, "wall_s": time.perf_counter() - wall0,
            "tiles": n_tiles, "peak_rss_mib": peak}


def synthetic(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    make_scene(workdir / f"rsfm_bench_{args.synthetic}.tif", args.synthetic)
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.reps):
        for kind in ("forward", "predict"):
            for p in ("fp32", "bf16"):
                cmd = [sys.executable, __file__, "--_synthetic_worker", kind, str(args.synthetic),
                       p, str(workdir), "--threads", str(args.threads)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode:
                    sys.exit(done.stderr[-3000:])
                runs.setdefault((kind, p), []).append(json.loads(done.stdout.splitlines()[-1]))
    mpix = args.synthetic**2 / 1e6
    print(f"synthetic {args.synthetic}^2 x 6 uint16 scene, tile {TILE}, ViT (192 wide, 4 blocks), "
          f"{args.threads} thread(s), {args.reps} reps")
    print("| run | precision | CPU s | wall s | MPix / CPU s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for (kind, p), rs in runs.items():
        cpu = statistics.median(r["cpu_s"] for r in rs)
        wall = statistics.median(r["wall_s"] for r in rs)
        rss = max(r["peak_rss_mib"] for r in rs)
        print(f"| {kind} | {p} | {cpu:.1f} | {wall:.1f} | {mpix / cpu:.3f} | {rss:.0f} |")
    for p in ("fp32", "bf16"):
        e2e = statistics.median(r["cpu_s"] for r in runs[("predict", p)])
        fwd = statistics.median(r["cpu_s"] for r in runs[("forward", p)])
        print(f"{p}: overhead of predict over the pure forward (I/O, normalise, blend, write, "
              f"COG): {100 * (e2e / fwd - 1):.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["vit_s", "tiny"])
    ap.add_argument("--synthetic", type=int, metavar="SIZE",
                    help="a synthetic SIZE x SIZE 6-band scene: predict vs pure forward, RSS")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--_worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_parity", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_synthetic_worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._worker:
        name, precision, out = args._worker
        print(json.dumps(worker(name, precision, Path(out), args.threads, args._parity)))
    elif args._synthetic_worker:
        kind, size, precision, workdir = args._synthetic_worker
        print(json.dumps(synthetic_worker(kind, int(size), precision, Path(workdir),
                                          args.threads)))
    elif args.synthetic:
        synthetic(args)
    else:
        compare_precisions(args)


if __name__ == "__main__":
    main()
