"""Validation metrics that stay exact across processes.

Segmentation/classification: every sample contributes its own ``K x K`` confusion matrix; the loop
gathers these per-sample matrices with ``accelerator.gather_for_metrics`` (which drops the
duplicates the distributed sampler pads the last batch with) and accumulates them in a torchmetrics
``Metric`` (sum-reduced state). mIoU, per-class IoU, macro-F1 and overall accuracy derive from it.

Detection: per-image predictions and targets are gathered the same way, then mAP@0.5 and
mAP@0.5:0.95 (COCO 101-point interpolation) are computed; torchmetrics' ``MeanAveragePrecision``
needs pycocotools/faster-coco-eval, so a small exact implementation is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["ConfusionMetrics", "DetectionMAP", "per_sample_confusion", "summarize_confusion"]


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


def summarize_confusion(cm: Tensor, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """mIoU, per-class IoU, macro-F1 and accuracy of a confusion matrix.

    Classes absent from both targets and predictions are left out of the means (NaN per class).
    """
    cm = cm.double()
    tp = cm.diag()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    denom = tp + fp + fn
    iou = torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))
    f1_den = 2 * tp + fp + fn
    f1 = torch.where(f1_den > 0, 2 * tp / f1_den.clamp(min=1), torch.full_like(tp, float("nan")))
    present = denom > 0
    total = cm.sum()
    names = list(classes) if classes else [str(i) for i in range(cm.shape[0])]
    # the best constant prediction (the most frequent true class): the baseline to beat
    truth = cm.sum(1)
    n_true = int((truth > 0).sum())
    baseline = float(truth.max() / total / n_true) if total > 0 and n_true else 0.0
    return {
        "miou": float(iou[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        "iou": {n: (None if math.isnan(v) else float(v)) for n, v in zip(names, iou.tolist())},
        "pixels": int(total),
        "majority_miou": baseline,
    }


class ConfusionMetrics(Metric):
    """Accumulates (already gathered) per-sample confusion matrices."""

    full_state_update = False

    def __init__(self, num_classes: int, classes: Sequence[str] | None = None) -> None:
        # The loop feeds identical gathered data on every rank: no extra sync is needed.
        super().__init__(sync_on_compute=False)
        self.num_classes = num_classes
        self.classes = list(classes) if classes else None
        self.add_state("confmat", default=torch.zeros(num_classes, num_classes,
                                                      dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("samples", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, per_sample: Tensor) -> None:  # type: ignore[override]
        self.confmat += per_sample.sum(0).to(self.confmat)
        self.samples += per_sample.shape[0]

    def compute(self) -> dict[str, Any]:  # type: ignore[override]
        out = summarize_confusion(self.confmat, self.classes)
        out["samples"] = int(self.samples)
        out["confusion_matrix"] = self.confmat.tolist()
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
        return {"map": mall, "map50": m50, "images": len(self.preds),
                "ap50": {n: (None if math.isnan(v) else float(v))
                         for n, v in zip(self.classes, aps[0].tolist())}}
