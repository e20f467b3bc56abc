"""The metrics of every task, shared by validation during training and by :func:`rsfm.evaluate`.

Segmentation and classification are computed from a confusion matrix (rows = truth, columns =
prediction) that is accumulated exactly in ``int64``: the metrics of a dataset do not depend on
how it was cut into batches, strips or processes.

- segmentation: ``miou``, ``iou_<class>``, ``macro_f1``, ``f1_<class>``, ``accuracy`` (pixels),
  ``pixels`` and ``majority_miou`` (the mIoU of always predicting the most frequent class);
- classification: ``accuracy``, ``macro_f1``, ``precision_<class>``, ``recall_<class>``,
  ``f1_<class>``;
- detection: torchmetrics' ``MeanAveragePrecision`` with the faster-coco-eval backend
  (``pip install 'rsfm[detection]'``), else pycocotools; names as in torchmetrics: ``map``
  (mAP@[.5:.95]), ``map_50``, ``map_75``, ``map_small``/``medium``/``large``, ``mar_1``,
  ``mar_10``, ``mar_100``, ``mar_small``/...; per class ``ap_<class>`` and ``ar_100_<class>``;
  with instance masks (Mask R-CNN) also ``segm_map``, ``segm_map_50``... When neither backend is
  installed, a small exact implementation gives ``map``, ``map_50``, ``map_75`` and
  ``ap_<class>`` (COCO matching and 101-point interpolation, no area ranges, crowd or
  detection cap).

A metric that is undefined (a class absent from both truth and prediction, no ground truth for
detection) is ``None``, never 0 or -1; means are over the defined values. Results are flat
``{name: value}`` dicts (plus ``confusion_matrix`` as a nested list).

Distributed evaluation: nothing here communicates. The caller gathers per-sample results
first (``accelerator.gather_for_metrics`` on :func:`per_sample_confusion` outputs, or on
detection predictions/targets as objects: it drops the padding duplicates of the distributed
sampler), then every process adds what it gathered; the torchmetrics metric is built with
``sync_on_compute=False`` so it does not gather a second time.

torch is imported when a function needs it, torchmetrics only for detection mAP.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsfm.errors import ConfigError
from rsfm.io import atomic_write

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAP_BACKENDS",
    "ConfusionMatrix",
    "DetectionMetrics",
    "classification_metrics",
    "coco_box_map",
    "confusion_matrix",
    "detection_backend",
    "per_sample_confusion",
    "plot_confusion",
    "segmentation_metrics",
]

log = logging.getLogger(__name__)

MAP_BACKENDS = ("faster_coco_eval", "pycocotools", "rsfm")
Array = Any  # np.ndarray or torch.Tensor


# ----------------------------------------------------------------------------- confusion matrices
def _numpy(x: Array) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def confusion_matrix(pred: Array, target: Array, num_classes: int,
                     ignore_index: int = -1, valid: Array | None = None) -> np.ndarray:
    """The ``(K, K)`` int64 confusion matrix of class ids (rows = target, columns = prediction).

    Pixels whose target is ``ignore_index`` or outside ``0 .. K-1`` are left out, and so are
    pixels where ``valid`` is False (input nodata).

    Args:
        pred: Predicted class ids, any shape (numpy or torch).
        target: Target class ids, same shape.
        num_classes: K.
        ignore_index: Target value of pixels without a label.
        valid: Optional boolean mask, same shape: only these pixels count.

    Raises:
        ConfigError: The shapes differ, or a counted prediction lies outside ``0 .. K-1``.
    """
    p, t = _numpy(pred), _numpy(target)
    if p.shape != t.shape:
        raise ConfigError(f"prediction shape {p.shape} differs from target shape {t.shape}.")
    k = int(num_classes)
    keep = (t != ignore_index) & (t >= 0) & (t < k)
    if valid is not None:
        keep &= _numpy(valid).astype(bool)
    p, t = p[keep].astype(np.int64), t[keep].astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= k):
        raise ConfigError(f"predicted class ids {sorted(set(np.unique(p).tolist()) - set(range(k)))}"
                          f" are outside the {k} classes.")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def per_sample_confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                         ignore_index: int = -1) -> torch.Tensor:
    """``(B, K, K)`` confusion matrices (rows = target, columns = prediction), one per sample,
    on the tensors' device: what validation gathers across processes before summing.

    Args:
        pred: ``(B, ...)`` predicted class ids.
        target: ``(B, ...)`` target class ids; ``ignore_index`` and out-of-range ids are left out.
        num_classes: K.
        ignore_index: Target value of pixels without a label.
    """
    import torch

    b, k = pred.shape[0], int(num_classes)
    pred = pred.reshape(b, -1).long()
    target = target.reshape(b, -1).long()
    valid = (target != ignore_index) & (target >= 0) & (target < k)
    idx = torch.arange(b, device=pred.device).unsqueeze(1).expand_as(pred)
    flat = (idx * k * k + target.clamp(0, k - 1) * k + pred.clamp(0, k - 1))[valid]
    return torch.bincount(flat, minlength=b * k * k).reshape(b, k, k)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    return tp, cm.sum(0) - tp, cm.sum(1) - tp  # tp, fp, fn


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def _mean(values: np.ndarray) -> float | None:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else None


def _names(classes: Sequence[str] | None, k: int) -> list[str]:
    return list(classes) if classes else [str(i) for i in range(k)]


def _per_name(prefix: str, names: Sequence[str], values: np.ndarray) -> dict[str, float | None]:
    return {f"{prefix}_{n}": (None if math.isnan(v) else float(v))
            for n, v in zip(names, values.tolist())}


def segmentation_metrics(cm: Array, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Segmentation metrics of a pixel confusion matrix (rows = truth).

    Returns:
        ``miou``, ``macro_f1``, ``accuracy``, ``iou_<class>``, ``f1_<class>``, ``pixels``,
        ``majority_miou``. A class absent from both truth and prediction has ``None`` IoU/F1 and
        is left out of the means; with no labelled pixel at all the means are ``None``.
    """
    cm = _numpy(cm).astype(np.int64)
    tp, fp, fn = _per_class(cm)
    iou = _ratio(tp, tp + fp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    total = float(cm.sum())
    truth = cm.sum(1).astype(np.float64)
    n_true = int((truth > 0).sum())
    names = _names(classes, cm.shape[0])
    return {
        "miou": _mean(iou), "macro_f1": _mean(f1),
        "accuracy": float(tp.sum() / total) if total > 0 else None,
        **_per_name("iou", names, iou), **_per_name("f1", names, f1),
        "pixels": int(total),
        "majority_miou": float(truth.max() / total / n_true) if total > 0 else None,
    }


def classification_metrics(cm: Array, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Classification metrics of a sample confusion matrix (rows = truth).

    Returns:
        ``accuracy``, ``macro_f1`` and per class ``precision_<class>``, ``recall_<class>``,
        ``f1_<class>`` (``None`` where undefined).
    """
    cm = _numpy(cm).astype(np.int64)
    tp, fp, fn = _per_class(cm)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    total = float(cm.sum())
    names = _names(classes, cm.shape[0])
    return {
        "accuracy": float(tp.sum() / total) if total > 0 else None,
        "macro_f1": _mean(f1),
        **_per_name("precision", names, _ratio(tp, tp + fp)),
        **_per_name("recall", names, _ratio(tp, tp + fn)),
        **_per_name("f1", names, f1),
    }


class ConfusionMatrix:
    """An exact running confusion matrix (int64) and its metrics.

    Args:
        num_classes: K.
        classes: Class names (index = class id), for per-class metric names.
        task: ``segmentation`` (:func:`segmentation_metrics`) or ``classification``
            (:func:`classification_metrics`).
        ignore_index: Target value left out by :meth:`update`.
    """

    def __init__(self, num_classes: int, classes: Sequence[str] | None = None,
                 task: str = "segmentation", ignore_index: int = -1) -> None:
        if task not in ("segmentation", "classification"):
            raise ConfigError(f"task {task!r} is not 'segmentation' or 'classification'.")
        self.num_classes, self.task, self.ignore_index = int(num_classes), task, ignore_index
        self.classes = _names(classes, self.num_classes)
        self._cpu = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._device: Any = None  # torch matrices are summed where they are (no sync per batch)
        self.samples = 0

    def add(self, cm: Array) -> None:
        """Add a ``(K, K)`` matrix, or ``(B, K, K)`` per-sample matrices (numpy or torch)."""
        if cm.ndim == 3:
            self.samples += int(cm.shape[0])
            cm = cm.sum(0)
        else:
            self.samples += 1
        if isinstance(cm, np.ndarray):
            self._cpu += cm.astype(np.int64)
        else:
            cm = cm.long()
            self._device = cm if self._device is None else self._device + cm.to(
                self._device.device)

    def update(self, pred: Array, target: Array, valid: Array | None = None) -> None:
        """Add one sample's class ids (any shape; see :func:`confusion_matrix`)."""
        self.add(confusion_matrix(pred, target, self.num_classes, self.ignore_index, valid))

    @property
    def confusion(self) -> np.ndarray:
        """The accumulated ``(K, K)`` int64 matrix (rows = truth)."""
        if self._device is None:
            return self._cpu.copy()
        return self._cpu + _numpy(self._device).astype(np.int64)

    def compute(self) -> dict[str, Any]:
        """The task's metrics, ``samples`` and ``confusion_matrix`` (nested list)."""
        cm = self.confusion
        summarize = (classification_metrics if self.task == "classification"
                     else segmentation_metrics)
        return {**summarize(cm, self.classes), "samples": self.samples,
                "confusion_matrix": cm.tolist()}


# ----------------------------------------------------------------------------- detection
def detection_backend() -> str:
    """The mAP backend this environment has: ``faster_coco_eval`` (``rsfm[detection]``),
    ``pycocotools``, or ``rsfm`` (the built-in fallback)."""
    if importlib.util.find_spec("torchmetrics") is not None:
        for name in ("faster_coco_eval", "pycocotools"):
            if importlib.util.find_spec(name) is not None:
                return name
    return "rsfm"


def _cpu(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.detach().cpu() if hasattr(v, "detach") else v) for k, v in d.items()}


class DetectionMetrics:
    """COCO box (and mask) mAP/mAR over per-image predictions and targets.

    Args:
        classes: Class names (index = class id), or the number of classes.
        max_detections: Highest-scoring detections counted per image (COCO: 100); the recall
            metrics are ``mar_1``, ``mar_10`` and ``mar_<max_detections>``.
        backend: ``faster_coco_eval``, ``pycocotools`` or ``rsfm``; default: the best installed
            (:func:`detection_backend`).
        masks: Also compute mask mAP (``segm_*``); default: when the first predictions and
            targets both carry ``masks``.

    Raises:
        ConfigError: An unknown backend, or one that is not installed.
    """

    def __init__(self, classes: Sequence[str] | int, *, max_detections: int = 100,
                 backend: str | None = None, masks: bool | None = None) -> None:
        self.classes = (_names(None, classes) if isinstance(classes, int) else list(classes))
        self.max_detections = int(max_detections)
        if self.max_detections <= 10:
            raise ConfigError(f"max_detections must be > 10 (the recall metrics count the best 1, "
                              f"10 and max_detections boxes), got {max_detections}.")
        found = detection_backend()
        self.backend = backend or found
        if self.backend not in MAP_BACKENDS:
            raise ConfigError(f"mAP backend {self.backend!r} is not one of {list(MAP_BACKENDS)}.")
        if self.backend != "rsfm" and importlib.util.find_spec(self.backend) is None:
            raise ConfigError(f"mAP backend {self.backend!r} is not installed: "
                              "pip install 'rsfm[detection]'.")
        self.masks = masks
        self.preds: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []

    def update(self, preds: Sequence[Mapping[str, Any]],
               targets: Sequence[Mapping[str, Any]]) -> None:
        """Add images: ``preds`` with ``boxes`` (xyxy pixels), ``scores``, ``labels`` (0-based),
        optional ``masks`` ``(N, H, W)``; ``targets`` with ``boxes``, ``labels``, optional
        ``masks`` and ``iscrowd``. Tensors or arrays; kept on the CPU."""
        import torch

        if len(preds) != len(targets):
            raise ConfigError(f"{len(preds)} predictions but {len(targets)} targets.")
        for p, t in zip(preds, targets):
            p, t = _cpu(p), _cpu(t)
            p = {k: torch.as_tensor(v) for k, v in p.items()}
            t = {k: torch.as_tensor(v) for k, v in t.items()}
            if self.masks is None:
                self.masks = "masks" in p and "masks" in t
            self.preds.append(p)
            self.targets.append(t)

    def drop_masks(self) -> None:
        """Box metrics only from here on (masks already added are dropped too)."""
        self.masks = False
        for d in (*self.preds, *self.targets):
            d.pop("masks", None)

    def compute(self) -> dict[str, Any]:
        """The metrics (see the module docstring) and ``images``."""
        if self.backend == "rsfm":
            out = coco_box_map(self.preds, self.targets, self.classes)
        else:
            out = self._torchmetrics()
        return {**out, "images": len(self.preds)}

    def _torchmetrics(self) -> dict[str, Any]:
        import torch
        from torchmetrics.detection import MeanAveragePrecision

        iou_types: tuple[str, ...] = ("bbox", "segm") if self.masks else ("bbox",)
        metric = MeanAveragePrecision(
            box_format="xyxy", iou_type=iou_types if len(iou_types) > 1 else "bbox",
            max_detection_thresholds=[1, 10, self.max_detections], class_metrics=True,
            backend=self.backend, sync_on_compute=False,
        )
        metric.warn_on_many_detections = False  # said once below, not per image
        crowded = sum(len(p["scores"]) > self.max_detections for p in self.preds)
        if crowded:
            log.info("%d image(s) have more than %d detections: COCO counts the %d best of each "
                     "(max_detections).", crowded, self.max_detections, self.max_detections)

        def prepared(d: Mapping[str, Any], pred: bool) -> dict[str, Any]:
            out = {"boxes": d["boxes"].float().reshape(-1, 4), "labels": d["labels"].long()}
            if pred:
                out["scores"] = d["scores"].float()
            if self.masks:
                out["masks"] = d["masks"].bool()
            if not pred and "iscrowd" in d:
                out["iscrowd"] = d["iscrowd"].long()
            return out

        if self.preds:
            metric.update([prepared(p, True) for p in self.preds],
                          [prepared(t, False) for t in self.targets])
            raw = metric.compute()
        else:
            raw = {}
        out: dict[str, Any] = {}
        for iou in iou_types:
            prefix = "" if iou == "bbox" else "segm_"
            key = (lambda name, iou=iou: f"{iou}_{name}") if len(iou_types) > 1 else (
                lambda name: name)
            for name in ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
                         "mar_1", "mar_10", f"mar_{self.max_detections}", "mar_small",
                         "mar_medium", "mar_large"):
                value = raw.get(key(name))
                out[prefix + name] = _defined(float(value)) if value is not None else None
            per_ap = raw.get(key("map_per_class"), torch.zeros(0)).reshape(-1).tolist()
            per_ar = raw.get(key(f"mar_{self.max_detections}_per_class"),
                             torch.zeros(0)).reshape(-1).tolist()
            ids = raw.get("classes", torch.zeros(0)).reshape(-1).tolist()
            found = {int(c): (a, r) for c, a, r in zip(ids, per_ap, per_ar)}
            for c, name in enumerate(self.classes):
                a, r = found.get(c, (-1.0, -1.0))
                out[f"{prefix}ap_{name}"] = _defined(a)
                out[f"{prefix}ar_{self.max_detections}_{name}"] = _defined(r)
        return out


def _defined(value: float) -> float | None:
    """torchmetrics/COCO write -1 for "no ground truth": None here."""
    return None if value < 0 or math.isnan(value) else value


def _ap(scores: np.ndarray, matched: np.ndarray, n_gt: int) -> float:
    """COCO's 101-point interpolated AP of detections sorted by score (stable, as COCO)."""
    if n_gt == 0:
        return float("nan")
    if scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(matched[order]).astype(np.float64)
    fp = np.cumsum(~matched[order]).astype(np.float64)
    recall = tp / n_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone envelope
    idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.where(idx < precision.size, precision[np.minimum(idx, precision.size - 1)],
                          0.0).mean())


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def coco_box_map(preds: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]],
                 classes: Sequence[str] | int) -> dict[str, Any]:
    """Box mAP@[.5:.95], mAP@0.5 and mAP@0.75 without torchmetrics (the fallback backend).

    COCO's rules for these numbers: per class, detections of each image sorted by score are
    greedily matched to the unmatched ground truth of highest IoU at each threshold
    (0.50:0.05:0.95), precision is made monotone and read at 101 recall points. Not covered:
    area ranges, crowd regions, the per-image detection cap, recall metrics.

    Returns:
        ``map``, ``map_50``, ``map_75`` (``None`` without ground truth) and ``ap_<class>``.
    """
    names = _names(None, classes) if isinstance(classes, int) else list(classes)
    thresholds = np.linspace(0.5, 0.95, 10)
    aps = np.full((len(thresholds), len(names)), np.nan)
    items = [({k: _numpy(v) for k, v in p.items()}, {k: _numpy(v) for k, v in t.items()})
             for p, t in zip(preds, targets)]
    for c in range(len(names)):
        n_gt = 0
        scores: list[np.ndarray] = []
        matches: list[list[np.ndarray]] = [[] for _ in thresholds]
        for p, t in items:
            gt = t["boxes"].reshape(-1, 4)[t["labels"] == c].astype(np.float64)
            mine = p["labels"] == c
            s = p["scores"][mine].astype(np.float64)
            order = np.argsort(-s, kind="mergesort")
            boxes = p["boxes"].reshape(-1, 4)[mine][order].astype(np.float64)
            s = s[order]
            n_gt += len(gt)
            scores.append(s)
            iou = _box_iou(boxes, gt) if len(gt) and len(boxes) else np.zeros((len(boxes), 0))
            for ti, thr in enumerate(thresholds):
                taken = np.zeros(len(gt), dtype=bool)
                matched = np.zeros(len(boxes), dtype=bool)
                for i in range(len(boxes)):
                    if not len(gt):
                        break
                    cand = np.where(taken, -1.0, iou[i])
                    j = int(cand.argmax())
                    if cand[j] >= thr:
                        taken[j] = matched[i] = True
                matches[ti].append(matched)
        all_scores = np.concatenate(scores) if scores else np.zeros(0)
        for ti in range(len(thresholds)):
            m = np.concatenate(matches[ti]) if matches[ti] else np.zeros(0, dtype=bool)
            aps[ti, c] = _ap(all_scores, m, n_gt)
    defined = ~np.isnan(aps[0])

    def mean(rows: np.ndarray) -> float | None:
        return float(rows[..., defined].mean()) if defined.any() else None

    per_class = np.where(defined, aps.mean(0), np.nan)  # a class without ground truth: NaN
    return {"map": mean(aps), "map_50": mean(aps[0]), "map_75": mean(aps[5]),
            **_per_name("ap", names, per_class)}


# ----------------------------------------------------------------------------- plots
def plot_confusion(cm: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[str],
                   path: str | Path, title: str | None = None) -> Path:
    """Save a row-normalised confusion matrix (rows = truth) with the counts in the cells.

    Args:
        cm: ``(K, K)`` counts.
        classes: Class names (index = class id).
        path: The image file (``.png``...); its folder is created.
        title: Optional title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    arr = np.asarray(cm, dtype=np.float64)
    norm = arr / np.maximum(arr.sum(1, keepdims=True), 1)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.2 * k + 2))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(arr[i, j])})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, bbox_inches="tight",
                                               format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path
