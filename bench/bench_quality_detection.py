"""Detection quality against a plain loop: rsfm's Faster R-CNN recipe vs torchvision in a plain loop.

Data: the NEON tree-crown images that ship with DeepForest (``deepforest_neon_trees`` in the shared
data folder; MIT-licensed repository, NEON open data imagery; see its ``PROVENANCE.md``): 4 RGB
images (three 400 x 400, one 1249 x 1035), ~380 hand-drawn tree-crown boxes. Four images are too
few to split by image, so each is cut into non-overlapping 200 x 200 chips (the right/bottom
remainder of the large image is dropped) and the chips are split by a hash of their name (md5 of
``<image>_r<row>_c<col>``: 1 in 5 to test, the rest to train; fixed, seed-free). A box crossing a
chip border is clipped to the chip and kept when at least half of its area and 4 px a side remain.
All labels become one class ``Tree`` (SOAP's Alive/Dead included). The chips are written once as
GeoTIFF + PASCAL VOC XML to ``<results-dir>/data`` and both sides read those files.

Both sides: ResNet-18 from random init (no ImageNet weights offline) + torchvision FPN + Faster
R-CNN, no resizing (chips keep 200 px) and no ImageNet normalisation, per-band mean/std from the
train chips, horizontal flips (p 0.5), AdamW (lr 3e-4, weight decay 0.01), 10 warm-up steps then a
constant rate (so a time budget needs no schedule that depends on it), batch 4 (last partial
batch dropped), and ``--budget-seconds`` of training wall clock. rsfm trains through its public
path (a recipe, ``rsfm.train`` with ``train.max_time``, ``rsfm.from_pretrained``) with its other
defaults left alone (e.g. gradient clipping 1.0, no weight decay on norms and biases, anchors
16-256 px, 300 detections per image). The plain side is what a careful user writes with
torchvision alone: ``FasterRCNN(resnet_fpn_backbone("resnet18", weights=None,
norm_layer=BatchNorm2d, trainable_layers=5), 2, min_size=200, max_size=200, image_mean=0,
image_std=1)`` (torchvision's defaults otherwise: anchors 32-512 px, 100 detections per image).

Metric: COCO mAP@0.5 (and mAP) on the test chips with ``rsfm.metrics.DetectionMetrics`` (torchmetrics
/ faster-coco-eval semantics), identical code for both sides: the last weights, eval mode, whole
chips, scores >= 0.05.

Protocol: fresh subprocess per run, 1 torch thread, sides alternate (order flips every seed); by
default (``--jobs 2``) the rsfm and plain runs of a seed train at the same time, one per core, so a
wall-clock budget meets the same machine load on both sides. Both use 128 sampled RoIs per image
(``BOX_BATCH``; torchvision's 512 halves the steps on a CPU).

    .venv/bin/python bench/bench_quality_detection.py [--budget-seconds 150] [--seeds 2] [--quick]
        [--set train.clip_grad_norm=null ...] [--plain-anchors rsfm] [--sides rsfm,plain]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from _harness import run_logged

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHIP = 200
BATCH = 4
LR = 3e-4
WD = 0.01
WARMUP = 10
SCORE_THRESH = 0.05
BANDS = ["RED", "GREEN", "BLUE"]
# RoIs sampled per image for the box head (torchvision: 512). 512 makes the box head's 12544 x 1024
# layer the largest cost of a CPU step (~6 s/step at 1 thread); 128 gives ~2x the steps in the
# budget. Both sides use the same value.
BOX_BATCH = 128


def data_root() -> Path:
    return Path(os.environ.get("RSFM_BENCH_DATA", HERE.parent.parent / "shared" / "data")) / "deepforest_neon_trees"


# ----------------------------------------------------------------------------- data
def _voc_boxes(path: Path) -> list[list[float]]:
    root = ET.parse(path).getroot()
    out = []
    for o in root.iter("object"):
        b = o.find("bndbox")
        out.append([float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
    return out


def _sources(root: Path) -> list[tuple[str, Path, list[list[float]]]]:
    import csv

    src = []
    for stem, img in [("OSBS_029", "OSBS_029.tif"), ("SOAP_061", "SOAP_061.png"),
                      ("2019_YELL_2_541000_4977000_image_crop", "2019_YELL_2_541000_4977000_image_crop.png")]:
        src.append((stem, root / "images" / img, _voc_boxes(root / "annotations" / f"{stem}.xml")))
    sjer = "2018_SJER_3_252000_4107000_image_477"
    with (root / "annotations" / f"{sjer}_truth.csv").open() as fh:  # columns xmin,xmax,ymin,ymax
        boxes = [[float(r["xmin"]), float(r["ymin"]), float(r["xmax"]), float(r["ymax"])]
                 for r in csv.DictReader(fh)]
    src.append((sjer, root / "images" / f"{sjer}.tif", boxes))
    return src


def _write_voc(path: Path, name: str, boxes: list[list[float]]) -> None:
    objs = "".join(
        f"<object><name>Tree</name><difficult>0</difficult><bndbox><xmin>{b[0]:g}</xmin>"
        f"<ymin>{b[1]:g}</ymin><xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax></bndbox></object>"
        for b in boxes)
    path.write_text(f"<annotation><filename>{name}.tif</filename><size><width>{CHIP}</width>"
                    f"<height>{CHIP}</height><depth>3</depth></size>{objs}</annotation>\n")


def prepare_data(out: Path) -> dict[str, Any]:
    """Cut the images into chips, split by name hash, write GeoTIFF + VOC; returns a summary."""
    import numpy as np
    import rasterio

    summary_file = out / "summary.json"
    if summary_file.exists():
        return json.loads(summary_file.read_text())
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    for split in ("train", "test"):
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
    counts = {"train": [0, 0], "test": [0, 0]}
    pix: list[np.ndarray] = []
    for stem, img_path, boxes in _sources(data_root()):
        with rasterio.open(img_path) as src:
            arr = src.read([1, 2, 3])
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        h, w = arr.shape[1:]
        for r in range(h // CHIP):
            for c in range(w // CHIP):
                name = f"{stem}_r{r}_c{c}"
                split = "test" if int(hashlib.md5(name.encode()).hexdigest(), 16) % 5 == 0 else "train"
                x0, y0 = c * CHIP, r * CHIP
                cb = b.copy()
                cb[:, [0, 2]] = np.clip(cb[:, [0, 2]] - x0, 0, CHIP)
                cb[:, [1, 3]] = np.clip(cb[:, [1, 3]] - y0, 0, CHIP)
                cw, ch = cb[:, 2] - cb[:, 0], cb[:, 3] - cb[:, 1]
                keep = (cw >= 4) & (ch >= 4) & (cw * ch >= 0.5 * area)
                chip = arr[:, y0:y0 + CHIP, x0:x0 + CHIP]
                with rasterio.open(out / split / "images" / f"{name}.tif", "w", driver="GTiff",
                                   width=CHIP, height=CHIP, count=3, dtype="uint8") as dst:
                    dst.write(chip)
                    for i, band in enumerate(BANDS, 1):
                        dst.set_band_description(i, band)
                _write_voc(out / split / "labels" / f"{name}.xml", name, cb[keep].tolist())
                counts[split][0] += 1
                counts[split][1] += int(keep.sum())
                if split == "train":
                    pix.append(chip.reshape(3, -1).astype(np.float64))
    allpix = np.concatenate(pix, axis=1)
    summary = {"chips_train": counts["train"][0], "boxes_train": counts["train"][1],
               "chips_test": counts["test"][0], "boxes_test": counts["test"][1],
               "mean": allpix.mean(1).round(3).tolist(), "std": allpix.std(1).round(3).tolist()}
    summary_file.write_text(json.dumps(summary, indent=1))
    return summary


def load_split(data: Path, split: str, mean: list[float], std: list[float]) -> list[tuple[Any, Any]]:
    """(normalised (3, H, W) float tensor, (N, 4) boxes) per chip, sorted by name."""
    import numpy as np
    import rasterio
    import torch

    items = []
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    for img in sorted((data / split / "images").glob("*.tif")):
        with rasterio.open(img) as src:
            x = torch.from_numpy(src.read().astype(np.float32))
        boxes = torch.tensor(_voc_boxes(data / split / "labels" / f"{img.stem}.xml"),
                             dtype=torch.float32).reshape(-1, 4)
        items.append(((x - m) / s, boxes))
    return items


def test_map(model: Any, test: list[tuple[Any, Any]]) -> dict[str, float]:
    """COCO mAP of ``model`` (torchvision detection contract, labels 1..K) on the test chips."""
    import torch

    from rsfm.metrics import DetectionMetrics

    metric = DetectionMetrics(["Tree"])
    model.eval()
    with torch.no_grad():
        for i in range(0, len(test), 4):
            chunk = test[i:i + 4]
            outs = model([x for x, _ in chunk])
            preds, truth = [], []
            for o, (_, boxes) in zip(outs, chunk):
                k = o["scores"] >= SCORE_THRESH
                preds.append({"boxes": o["boxes"][k], "scores": o["scores"][k],
                              "labels": o["labels"][k] - 1})
                truth.append({"boxes": boxes, "labels": torch.zeros(len(boxes), dtype=torch.long)})
            metric.update(preds, truth)
    res = metric.compute()
    return {"test_map_50": float(res["map_50"]), "test_map": float(res["map"]),
            "mean_dets": float(sum(len(p["boxes"]) for p in metric.preds) / len(metric.preds))}


# ----------------------------------------------------------------------------- sides
def run_rsfm(data: Path, summary: dict[str, Any], *, seed: int, budget: float, workdir: Path,
             overrides: list[str]) -> dict[str, Any]:
    import rsfm

    run_dir = workdir / "run"
    recipe = {
        "name": "bench_quality_detection",
        "model": {"task": "detection", "backbone": "resnet18", "head": "faster_rcnn",
                  "num_classes": 1, "bands": BANDS, "pretrained": False,
                  "head_kwargs": {"box_batch_size_per_image": BOX_BATCH}},
        "data": {
            "kind": "chips",
            "train": {"images": str(data / "train" / "images"), "labels": str(data / "train" / "labels")},
            "label_format": "voc",
            "classes": ["Tree"],
            "file_bands": BANDS,
            "tile_size": CHIP,
            "normalization": {"mode": "stats", "mean": summary["mean"], "std": summary["std"]},
            "augment": {"hflip": 0.5},
            "batch_size": BATCH,
        },
        "train": {
            "epochs": 100000, "max_time": float(budget),
            "optimizer": {"name": "adamw", "lr": LR, "weight_decay": WD},
            "scheduler": {"name": "constant", "warmup_steps": WARMUP},
            "seed": seed, "progress": False,
        },
        "eval": {"metric": "map_50"},
        "output": {"dir": str(run_dir), "overwrite": True, "plots": False},
    }
    marks: list[tuple[float, float]] = []
    t0, c0 = time.perf_counter(), time.process_time()

    def clock(event: str, state: Any) -> None:
        if event == "step":
            marks.append((time.perf_counter() - t0, time.process_time() - c0))

    result = rsfm.train(recipe, overrides, callbacks=[clock])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    weights = "last_model.safetensors" if (run_dir / "last_model.safetensors").exists() else None
    model = rsfm.from_pretrained(run_dir) if weights is None else _load_last(run_dir)
    spec = model.input_spec
    out = test_map(model, load_split(data, "test", summary["mean"], summary["std"]))
    return {"side": "rsfm", "steps": len(marks), "wall_seconds": wall, "cpu_seconds": cpu,
            "step_marks": marks, "stop_reason": getattr(result, "stop_reason", None),
            "weights": weights or "model.safetensors", "spec": repr(spec)[:300], **out}


def _load_last(run_dir: Path) -> Any:
    """The run's model with its last weights (a constant-rate run has no 'best' without val)."""
    from safetensors.torch import load_file

    import rsfm

    model = rsfm.from_pretrained(run_dir)
    state = load_file(str(run_dir / "last_model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "num_batches" not in k]:
        raise RuntimeError(f"last_model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


def build_plain(anchors: str) -> Any:
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5)
    kw: dict[str, Any] = {}
    if anchors == "rsfm":  # rsfm's default anchor sizes (4 x stride: 16..256 px)
        kw["rpn_anchor_generator"] = AnchorGenerator(((16.0,), (32.0,), (64.0,), (128.0,), (256.0,)),
                                                     ((0.5, 1.0, 2.0),) * 5)
    return FasterRCNN(backbone, num_classes=2, min_size=CHIP, max_size=CHIP,
                      image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                      box_batch_size_per_image=BOX_BATCH, **kw)


def run_plain(data: Path, summary: dict[str, Any], *, seed: int, budget: float,
              anchors: str, clip: float | None) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)
    train = load_split(data, "train", summary["mean"], summary["std"])
    test = load_split(data, "test", summary["mean"], summary["std"])
    model = build_plain(anchors)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    g = torch.Generator().manual_seed(seed)
    marks: list[tuple[float, float]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    step = 0
    model.train()
    while time.perf_counter() - t0 < budget:
        order = torch.randperm(len(train), generator=g).tolist()
        for i in range(0, len(order) - BATCH + 1, BATCH):  # drop the last partial batch
            images, targets = [], []
            for j in order[i:i + BATCH]:
                x, boxes = train[j]
                if torch.rand((), generator=g) < 0.5:
                    x = x.flip(-1)
                    boxes = boxes.clone()
                    boxes[:, [0, 2]] = x.shape[-1] - boxes[:, [2, 0]]
                images.append(x)
                targets.append({"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.long)})
            for grp in opt.param_groups:
                grp["lr"] = LR * min(1.0, (step + 1) / WARMUP)
            loss = sum(model(images, targets).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            step += 1
            marks.append((time.perf_counter() - t0, time.process_time() - c0))
            if time.perf_counter() - t0 >= budget:
                break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = test_map(model, test)
    return {"side": "plain", "steps": step, "wall_seconds": wall, "cpu_seconds": cpu,
            "step_marks": marks, **out}


# ----------------------------------------------------------------------------- worker / driver
def worker(args: argparse.Namespace) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*not georeferenced.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="rasterio")
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    summary = json.loads((data / "summary.json").read_text())
    load0 = os.getloadavg()[0]
    if args.side == "rsfm":
        out = run_rsfm(data, summary, seed=args.seed, budget=args.budget, workdir=Path(args.workdir),
                       overrides=args.set)
    else:
        out = run_plain(data, summary, seed=args.seed, budget=args.budget, anchors=args.plain_anchors,
                        clip=args.plain_clip)
    out.update(seed=args.seed, budget=args.budget, torch_threads=torch.get_num_threads(),
               load_before=load0, load_after=os.getloadavg()[0], overrides=list(args.set),
               plain_anchors=args.plain_anchors, plain_clip=args.plain_clip)
    Path(args.out).write_text(json.dumps(out, indent=1))


def _launch(args: argparse.Namespace, side: str, seed: int, tag: str) -> dict[str, Any]:
    results = Path(args.results_dir)
    out = results / f"{tag}.json"
    if args.reuse and out.exists():
        res = json.loads(out.read_text())
        print(f"  {tag} (reused): test mAP@0.5 {res['test_map_50']:.3f}, {res['steps']} steps", flush=True)
        return res
    work = Path(tempfile.mkdtemp(prefix=f"rsfm_bqd_{tag}_"))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", "--side", side,
           "--seed", str(seed), "--budget", str(args.budget_seconds), "--workdir", str(work),
           "--out", str(out), "--data", str(results / "data"), "--threads", str(args.threads),
           "--plain-anchors", args.plain_anchors]
    if args.plain_clip:
        cmd += ["--plain-clip", str(args.plain_clip)]
    for s in args.set:
        cmd += ["--set", s]
    log = results / f"{tag}.log"
    res = run_logged(cmd, tag=tag, log=log, out=out, cwd=work)
    print(f"  {tag}: test mAP@0.5 {res['test_map_50']:.3f} (mAP {res['test_map']:.3f}), "
          f"{res['steps']} steps, {res['wall_seconds']:.0f} s wall, {_step_wall(res):.2f} s/step, "
          f"{res['mean_dets']:.0f} dets/chip", flush=True)
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return res


def _step_wall(res: dict[str, Any]) -> float:
    """Median wall seconds between consecutive optimizer steps (epoch-end work excluded)."""
    t = [w for w, _ in res["step_marks"]]
    d = sorted(b - a for a, b in itertools.pairwise(t))
    return d[len(d) // 2] if d else float("nan")


def _fmt(v: list[float]) -> str:
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}" if v else "-"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-seconds", type=float, default=150.0)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="30 s budget, 1 seed (a smoke test)")
    ap.add_argument("--sides", default="rsfm,plain")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2,
                    help="runs at a time (default 2: the rsfm and plain runs of one seed train at the "
                         "same time, so both see the same machine load)")
    ap.add_argument("--set", action="append", default=[], help="rsfm recipe override key=value")
    ap.add_argument("--plain-anchors", default="torchvision", choices=["torchvision", "rsfm"])
    ap.add_argument("--plain-clip", type=float, default=None, help="plain: clip_grad_norm")
    ap.add_argument("--results-dir", default=str(Path(tempfile.gettempdir()) / "rsfm_bench_quality_detection"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        worker(args)
        return
    if args.quick:
        args.budget_seconds, args.seeds = 30.0, 1
    if args.jobs > 1 and len(args.sides.split(",")) != args.jobs:
        print(f"note: --jobs {args.jobs} with sides {args.sides}: runs are not paired", flush=True)
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    summary = prepare_data(results / "data")
    print(f"data: {summary['chips_train']} train chips ({summary['boxes_train']} boxes), "
          f"{summary['chips_test']} test chips ({summary['boxes_test']} boxes), {CHIP} px; "
          f"budget {args.budget_seconds:.0f} s, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}",
          flush=True)
    sides = args.sides.split(",")
    prefix = args.tag + "_" if args.tag else ""
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    jobs = []
    for i, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
        jobs += [(side, seed) for side in (sides if i % 2 == 0 else sides[::-1])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda j: (j[0], _launch(args, j[0], j[1], f"{prefix}{j[0]}_s{j[1]}")), jobs))
    for side, res in done:
        rows[side].append(res)
    print()
    print("| side | test mAP@0.5 | test mAP | steps | s/step (median wall) | wall s |")
    print("|---|---|---|---|---|---|")
    for side, rs in rows.items():
        print(f"| {side} | {_fmt([r['test_map_50'] for r in rs])} | {_fmt([r['test_map'] for r in rs])} "
              f"| {statistics.mean(r['steps'] for r in rs):.0f} "
              f"| {statistics.mean(_step_wall(r) for r in rs):.2f} "
              f"| {statistics.mean(r['wall_seconds'] for r in rs):.0f} |")


if __name__ == "__main__":
    main()
