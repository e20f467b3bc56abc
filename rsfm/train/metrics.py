"""Validation metrics that stay exact across processes.

Segmentation/classification: every sample contributes its own ``K x K`` confusion matrix; the loop
gathers these per-sample matrices with ``accelerator.gather_for_metrics`` (which drops the
duplicates the distributed sampler pads the last batch with) and sums them. Segmentation reports
mIoU, per-class IoU, macro-F1 and pixel accuracy; classification accuracy, macro-F1 and per-class
precision/recall/F1. Results are flat ``{name: value}`` dicts (per-class values as
``iou_<class>``...), metric names as in torchmetrics (``map_50``).

Detection: per-image predictions and targets are gathered the same way, then mAP@0.5 and
mAP@0.5:0.95 (``map_50``, ``map``; COCO 101-point interpolation) are computed by a small exact
implementation (torchmetrics' ``MeanAveragePrecision`` needs pycocotools/faster-coco-eval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "ConfusionMetrics",
    "DetectionMAP",
    "per_sample_confusion",
    "summarize_classification",
    "summarize_confusion",
]


def per_sample_confusion(pred: Tensor, target: Tensor, num_classes: int,
                         ignore_index: int) -> Tensor:
    """``(B, K, K)`` confusion matrices (rows = target, columns = prediction), one per sample.

    ``pred``/``target`` are ``(B, ...)`` class ids; ignored pixels are left out.
    """
    b = pred.shape[0]
    k = num_classes
    pred = pred.reshape(b, -1).long()
    target = target.reshape(b, -1).long()
    valid = (target != ignore_index) & (target >= 0) & (target < k)
    idx = torch.arange(b, device=pred.device).unsqueeze(1).expand_as(pred)
    flat = (idx * k * k + target.clamp(0, k - 1) * k + pred.clamp(0, k - 1))[valid]
    return torch.bincount(flat, minlength=b * k * k).reshape(b, k, k)


def _per_class(cm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    cm = cm.double()
    tp = cm.diag()
    return tp, cm.sum(0) - tp, cm.sum(1) - tp  # tp, fp, fn


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(num, float("nan")))


def _mean(values: Tensor, present: Tensor) -> float:
    return float(values[present].mean()) if present.any() else 0.0


def _names(classes: Sequence[str] | None, k: int) -> list[str]:
    return list(classes) if classes else [str(i) for i in range(k)]


def _per_name(prefix: str, names: list[str], values: Tensor) -> dict[str, float | None]:
    return {f"{prefix}_{n}": (None if math.isnan(v) else float(v))
            for n, v in zip(names, values.tolist())}


def summarize_confusion(cm: Tensor, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Segmentation metrics of a pixel confusion matrix (rows = truth): ``miou``, ``macro_f1``,
    ``accuracy``, ``iou_<class>``, ``pixels`` and ``majority_miou`` (the mIoU of always
    predicting the most frequent class: the baseline to beat).

    Classes absent from both targets and predictions are left out of the means (None per class).
    """
    tp, fp, fn = _per_class(cm)
    iou = _ratio(tp, tp + fp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    present = (tp + fp + fn) > 0
    total = cm.sum().double()
    truth = cm.sum(1).double()
    n_true = int((truth > 0).sum())
    baseline = float(truth.max() / total / n_true) if total > 0 and n_true else 0.0
    return {
        "miou": _mean(iou, present), "macro_f1": _mean(f1, present),
        "accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        **_per_name("iou", _names(classes, cm.shape[0]), iou),
        "pixels": int(total), "majority_miou": baseline,
    }


def summarize_classification(cm: Tensor, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Classification metrics of a sample confusion matrix (rows = truth): ``accuracy``,
    ``macro_f1`` and per class ``precision_<class>``, ``recall_<class>``, ``f1_<class>``."""
    tp, fp, fn = _per_class(cm)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    total = cm.sum().double()
    names = _names(classes, cm.shape[0])
    return {
        "accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        "macro_f1": _mean(f1, (tp + fp + fn) > 0),
        **_per_name("precision", names, _ratio(tp, tp + fp)),
        **_per_name("recall", names, _ratio(tp, tp + fn)),
        **_per_name("f1", names, f1),
    }


class ConfusionMetrics:
    """Accumulates (already gathered) per-sample confusion matrices.

    ``kind``: ``segmentation`` (:func:`summarize_confusion`) or ``classification``
    (:func:`summarize_classification`). The evaluation loop gathers every process's samples
    first, so no further synchronisation happens here.
    """

    def __init__(self, num_classes: int, classes: Sequence[str] | None = None,
                 kind: str = "segmentation") -> None:
        self.num_classes, self.kind = num_classes, kind
        self.classes = list(classes) if classes else None
        self.confmat = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.samples = 0

    def update(self, per_sample: Tensor) -> None:
        """Add ``(B, K, K)`` per-sample matrices (on any device; summed where they are)."""
        if self.confmat.device != per_sample.device:
            self.confmat = self.confmat.to(per_sample.device)
        self.confmat += per_sample.sum(0).to(self.confmat.dtype)
        self.samples += per_sample.shape[0]

    def compute(self) -> dict[str, Any]:
        """The metrics (see ``kind``), ``samples`` and the ``confusion_matrix`` (nested list)."""
        summarize = summarize_classification if self.kind == "classification" else (
            summarize_confusion)
        cm = self.confmat.cpu()
        out = summarize(cm, self.classes)
        out["samples"] = self.samples
        out["confusion_matrix"] = cm.tolist()
        return out


def _ap(scores: Tensor, matched: Tensor, n_gt: int) -> float:
    if n_gt == 0:
        return float("nan")
    if scores.numel() == 0:
        return 0.0
    order = scores.argsort(descending=True)
    tp = matched[order].double().cumsum(0)
    fp = (~matched[order]).double().cumsum(0)
    recall = tp / n_gt
    precision = tp / (tp + fp)
    # monotone precision envelope, then COCO's 101 recall points
    precision = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    points = torch.linspace(0, 1, 101, dtype=torch.float64)
    idx = torch.searchsorted(recall, points, right=False)
    vals = torch.where(idx < len(precision), precision[idx.clamp(max=len(precision) - 1)],
                       torch.zeros_like(points))
    return float(vals.mean())


class DetectionMAP:
    """COCO-style box mAP (IoU 0.5:0.95) and mAP@0.5 over gathered per-image results."""

    def __init__(self, num_classes: int, classes: Sequence[str] | None = None) -> None:
        self.num_classes = num_classes
        self.classes = list(classes) if classes else [str(i) for i in range(num_classes)]
        self.preds: list[dict[str, Tensor]] = []
        self.targets: list[dict[str, Tensor]] = []

    def update(self, preds: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> None:
        self.preds += [{k: v.detach().cpu() for k, v in p.items()} for p in preds]
        self.targets += [{k: v.detach().cpu() for k, v in t.items()} for t in targets]

    def compute(self) -> dict[str, Any]:
        from torchvision.ops import box_iou

        thresholds = [0.5 + 0.05 * i for i in range(10)]
        aps = torch.full((len(thresholds), self.num_classes), float("nan"), dtype=torch.float64)
        for c in range(self.num_classes):
            n_gt = 0
            per_t_scores: list[list[Tensor]] = [[] for _ in thresholds]
            per_t_match: list[list[Tensor]] = [[] for _ in thresholds]
            for p, t in zip(self.preds, self.targets):
                gt = t["boxes"][t["labels"] == c]
                pm = p["labels"] == c
                boxes, scores = p["boxes"][pm], p["scores"][pm]
                n_gt += len(gt)
                order = scores.argsort(descending=True)
                boxes, scores = boxes[order], scores[order]
                iou = box_iou(boxes, gt) if len(gt) and len(boxes) else torch.zeros(len(boxes), 0)
                for ti, thr in enumerate(thresholds):
                    taken = torch.zeros(len(gt), dtype=torch.bool)
                    matched = torch.zeros(len(boxes), dtype=torch.bool)
                    for i in range(len(boxes)):
                        if iou.shape[1] == 0:
                            break
                        cand = iou[i].clone()
                        cand[taken] = -1
                        j = int(cand.argmax())
                        if cand[j] >= thr:
                            taken[j] = True
                            matched[i] = True
                    per_t_scores[ti].append(scores)
                    per_t_match[ti].append(matched)
            for ti in range(len(thresholds)):
                s = torch.cat(per_t_scores[ti]) if per_t_scores[ti] else torch.zeros(0)
                m = (torch.cat(per_t_match[ti]) if per_t_match[ti]
                     else torch.zeros(0, dtype=torch.bool))
                aps[ti, c] = _ap(s, m, n_gt)
        valid = ~torch.isnan(aps[0])
        m50 = float(aps[0][valid].mean()) if valid.any() else 0.0
        mall = float(aps[:, valid].mean()) if valid.any() else 0.0
        return {"map": mall, "map_50": m50, "images": len(self.preds),
                **_per_name("ap50", self.classes, aps[0])}
