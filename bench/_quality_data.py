"""Datasets, fixed splits, statistics and the test metric of ``bench_quality.py``.

Both sides of the benchmark (rsfm's recipe and the plain loop) take their files, statistics,
tiles and test metric from here, so they differ only in what is being compared.

Data: the samples in ``$RSFM_BENCH_DATA`` (default ``../shared/data`` next to the repository),
documented in each folder's ``PROVENANCE.md``:

- ``sen1floods11_samples``: Sen1Floods11 hand-labelled chips (Bonafilia et al. 2020, CVPR-W;
  research data, attribution required). 14 Sentinel-1 chips, 512 x 512, VV/VH dB float32 with
  NaN nodata; labels -1 no data, 0 dry, 1 water.
- ``dubai_aerial_rgb_seg``: "Semantic segmentation of aerial imagery" (Dubai, Humans in the Loop;
  CC0 per the publisher). Tiles 1-6, 9 RGB JPEG images each, colour-coded PNG masks.

Splits are fixed by file (see :data:`SPLITS`):

- Sen1Floods11, by event: test = Nigeria, USA, Bolivia (the demo's held-out events); val =
  Spain_7370579; train = the other 10 chips, including the all-NaN Paraguay chip and the
  all-ignore Ghana_83483 chip (real quirks; both sides drop all-nodata tiles the same way).
- Dubai, by tile (each tile is a separate area): train = tiles 1, 2, 4, 5; val = tile 6;
  test = tile 3 (the only tile where every class covers >= 2.6 % of the pixels).

Dubai colour masks are converted once into single-band index PNGs (0-5 = building, land, road,
vegetation, water, unlabeled; 255 = black border / unknown colour, ignored) in a cache folder
(``$RSFM_BENCH_CACHE``, default ``~/.cache/rsfm-bench``); rsfm's ``scenes`` data kind reads
index rasters only (``data.color_map`` is honoured by ``kind: chips`` alone), and the chips of
this dataset have different sizes, so ``kind: chips`` cannot batch them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsfm.data.scenes import grid_offsets  # the scene grid rsfm tiles with, shared by both sides

REPO = Path(__file__).resolve().parents[1]
TILE = 128  # training tile side (px) and prediction tile side
IGNORE = -1  # ignore_index of the targets on both sides


def data_root() -> Path:
    """``$RSFM_BENCH_DATA`` or ``../shared/data`` next to the repository."""
    return Path(os.environ.get("RSFM_BENCH_DATA", REPO.parent / "shared" / "data")).resolve()


def cache_root() -> Path:
    """``$RSFM_BENCH_CACHE`` or ``~/.cache/rsfm-bench``."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rsfm-bench"
    return Path(os.environ.get("RSFM_BENCH_CACHE", default)).resolve()


_S1 = "sen1floods11_samples"
_DUBAI = "dubai_aerial_rgb_seg"

SPLITS: dict[str, dict[str, list[str]]] = {
    "sen1floods11": {
        "train": ["India_900498", "Pakistan_849790", "Sri-Lanka_534068", "Mekong_333434",
                  "Somalia_699062", "Ghana_53713", "Ghana_83483", "Ghana_97059", "Spain_6860600",
                  "Paraguay_34417"],
        "val": ["Spain_7370579"],
        "test": ["Nigeria_812045", "USA_905409", "Bolivia_312675"],
    },
    "dubai": {
        "train": [f"Tile_{t}/image_part_00{k}" for t in (1, 2, 4, 5) for k in range(1, 10)],
        "val": [f"Tile_6/image_part_00{k}" for k in range(1, 10)],
        "test": [f"Tile_3/image_part_00{k}" for k in range(1, 10)],
    },
}

# Dubai mask colours (PROVENANCE.md: the masks use #6EC1E4 for roads, not classes.json's #1BB3F5)
DUBAI_COLORS = {(60, 16, 152): 0, (132, 41, 246): 1, (110, 193, 228): 2, (254, 221, 58): 3,
                (226, 169, 41): 4, (155, 155, 155): 5}


@dataclass(frozen=True)
class BenchDataset:
    """One dataset of the benchmark: files per split and how to read them."""

    name: str
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    file_bands: tuple[str, ...] | None
    label_ignore_values: tuple[int, ...]
    splits: dict[str, list[tuple[Path, Path]]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _dubai_index_mask(src: Path, dst: Path) -> None:
    from PIL import Image

    rgb = np.asarray(Image.open(src).convert("RGB"))
    out = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    for colour, k in DUBAI_COLORS.items():
        out[(rgb == np.array(colour, dtype=np.uint8)).all(-1)] = k
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.png")
    Image.fromarray(out).save(tmp)
    tmp.replace(dst)


def load_dataset(name: str) -> BenchDataset:
    """The files of dataset ``name`` (``sen1floods11`` or ``dubai``) per split.

    Raises:
        FileNotFoundError: The data folder is missing (set ``RSFM_BENCH_DATA``).
    """
    root = data_root()
    if name == "sen1floods11":
        base = root / _S1
        if not base.is_dir():
            raise FileNotFoundError(f"No '{base}'; set RSFM_BENCH_DATA to the shared data folder.")
        splits = {s: [(base / "S1Hand" / f"{k}_S1Hand.tif", base / "LabelHand" / f"{k}_LabelHand.tif")
                      for k in keys] for s, keys in SPLITS[name].items()}
        return BenchDataset(name, ("dry", "water"), ("VV", "VH"), None, (-1,), splits)
    if name == "dubai":
        base = root / _DUBAI
        if not base.is_dir():
            raise FileNotFoundError(f"No '{base}'; set RSFM_BENCH_DATA to the shared data folder.")
        cache = cache_root() / "dubai_index_masks"
        splits: dict[str, list[tuple[Path, Path]]] = {}
        for s, keys in SPLITS[name].items():
            pairs = []
            for k in keys:
                tile, part = k.split("/")
                src = base / tile / "masks" / f"{part}.png"
                digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
                dst = cache / tile / f"{part}-{digest}.png"  # content-addressed: never stale
                if not dst.exists():
                    _dubai_index_mask(src, dst)
                pairs.append((base / tile / "images" / f"{part}.jpg", dst))
            splits[s] = pairs
        classes = ("building", "land", "road", "vegetation", "water", "unlabeled")
        return BenchDataset(name, classes, ("RED", "GREEN", "BLUE"), ("RED", "GREEN", "BLUE"),
                            (255,), splits)
    raise ValueError(f"Unknown bench dataset {name!r}; choose 'sen1floods11' or 'dubai'.")


# ----------------------------------------------------------------------------- raw arrays
def read_image(path: Path) -> np.ndarray:
    """Raw pixels ``(C, H, W)`` float32 (NaN stays NaN)."""
    import rasterio

    with rasterio.open(path) as src:
        return src.read().astype(np.float32)


def read_target(ds: BenchDataset, label: Path, image: np.ndarray | None = None) -> np.ndarray:
    """Class ids ``(H, W)`` int64; ignored values and (given the image) invalid pixels -> -1."""
    import rasterio

    with rasterio.open(label) as src:
        raw = src.read(1).astype(np.int64)
    out = raw.copy()
    for v in ds.label_ignore_values:
        out[raw == v] = IGNORE
    out[(out < 0) | (out >= ds.num_classes)] = IGNORE
    if image is not None:
        out[~np.isfinite(image).all(0)] = IGNORE
    return out


def band_stats(ds: BenchDataset) -> tuple[list[float], list[float]]:
    """Per-band mean and std over the valid pixels of the training images (float64 sums)."""
    n = 0
    s = np.zeros(len(ds.bands))
    ss = np.zeros(len(ds.bands))
    for image_path, _ in ds.splits["train"]:
        x = read_image(image_path).reshape(len(ds.bands), -1).astype(np.float64)
        ok = np.isfinite(x).all(0)
        x = x[:, ok]
        n += x.shape[1]
        s += x.sum(1)
        ss += (x * x).sum(1)
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean * mean, 0))
    return [float(v) for v in mean], [float(v) for v in std]


def tiles(ds: BenchDataset, split: str, mean: list[float], std: list[float],
          tile: int = TILE) -> tuple[np.ndarray, np.ndarray]:
    """All grid tiles of a split: normalised images ``(N, C, t, t)`` float32 with invalid
    values set to 0, and targets ``(N, t, t)`` int64. Tiles whose pixels are all invalid are
    dropped (rsfm's ``skip_nodata``)."""
    xs, ys = [], []
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    sd = np.asarray(std, dtype=np.float32)[:, None, None]
    for image_path, label_path in ds.splits[split]:
        raw = read_image(image_path)
        target = read_target(ds, label_path, raw)
        valid = np.isfinite(raw).all(0)
        x = np.where(valid[None], (raw - m) / sd, 0).astype(np.float32)
        h, w = target.shape
        for r in grid_offsets(h, tile, tile):
            for c in grid_offsets(w, tile, tile):
                if not valid[r:r + tile, c:c + tile].any():
                    continue
                xs.append(x[:, r:r + tile, c:c + tile])
                ys.append(target[r:r + tile, c:c + tile])
    return np.stack(xs), np.stack(ys)


# ----------------------------------------------------------------------------- test metric
def confusion(pred: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """``(K, K)`` confusion (rows = truth) over pixels whose target is a class."""
    ok = (target >= 0) & (target < k)
    p = np.clip(pred[ok].astype(np.int64), 0, k)  # an out-of-range prediction counts as wrong
    p = np.where(p >= k, (target[ok] + 1) % k, p)
    return np.bincount(target[ok] * k + p, minlength=k * k).reshape(k, k)


def miou(cm: np.ndarray) -> tuple[float, list[float | None]]:
    """Mean IoU over classes present in truth or prediction, and the per-class IoU."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1) - tp
    iou = [float(t / d) if d > 0 else None for t, d in zip(tp, denom)]
    present = [v for v in iou if v is not None]
    return (float(np.mean(present)) if present else 0.0), iou


def test_miou(model: Any, spec: Any, ds: BenchDataset, workdir: Path) -> dict[str, Any]:
    """Predict every test image with ``rsfm.predict`` (the same sliding-window tiling, blending
    and normalisation for both sides: the spec's) and score the class rasters.

    Args:
        model: A model callable ``(B, C, H, W) -> (B, K, H, W)`` in eval mode.
        spec: The :class:`~rsfm.spec.InputSpec` (bands, files' band order, statistics, tile
            size) of the benchmark recipe (``_quality_rsfm.input_spec``).
        ds: The dataset.
        workdir: Where the class rasters are written.
    """
    import time

    import rasterio
    import torch

    from rsfm.inference.predict import predict

    workdir.mkdir(parents=True, exist_ok=True)
    k = ds.num_classes
    cm = np.zeros((k, k), dtype=np.int64)
    t0 = time.perf_counter()
    for image_path, label_path in ds.splits["test"]:
        out = workdir / f"{image_path.parent.parent.name}_{image_path.stem}_pred.tif"
        with torch.inference_mode():
            predict(model, image_path, out, spec=spec, task="segmentation", progress=False,
                    cog=False)
        with rasterio.open(out) as src:
            pred = src.read(1)
        target = read_target(ds, label_path, read_image(image_path))
        cm += confusion(pred, target, k)
    value, per_class = miou(cm)
    return {"test_miou": value, "test_iou": dict(zip(ds.classes, per_class)),
            "test_pixels": int(cm.sum()), "eval_seconds": time.perf_counter() - t0}
