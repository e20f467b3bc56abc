"""What differs between tasks, behind one interface: the training loss, the evaluation step, the
metrics and the targets. The loop and :func:`~rsfm.train.engine.evaluate` only talk to a
:class:`Task`.

- segmentation: cross-entropy/Dice/focal over valid pixels (auxiliary head weighted 0.4; with
  several processes the mean is over the valid pixels of the *global* batch), per-sample pixel
  confusion matrices -> mIoU, per-class IoU and F1, macro-F1, pixel accuracy.
- classification: the same losses on one label per image, per-sample confusion matrices ->
  accuracy, macro-F1, per-class precision/recall/F1 (no pixel metrics).
- detection: torchvision's summed losses (class ids shifted by one: 0 is the background),
  predictions above ``eval.score_threshold`` -> COCO mAP/mAR (``map``, ``map_50``, ``map_75``,
  ``mar_100``...; faster-coco-eval through torchmetrics).

The metrics are those of :mod:`rsfm.metrics`, shared with :func:`rsfm.evaluate`; the evaluation
loop gathers the per-sample results across processes before they are added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rsfm.metrics import ConfusionMatrix, DetectionMetrics, per_sample_confusion
from rsfm.schema import LossConfig
from rsfm.spec import InputSpec
from rsfm.train.losses import build_loss

__all__ = [
    "ClassificationTask",
    "DetectionTask",
    "SegmentationTask",
    "Task",
    "build_task",
    "fit_logits",
]


def fit_logits(logits: Tensor, size: Sequence[int]) -> Tensor:
    """Resize ``(B, K, h, w)`` logits bilinearly to ``size`` when they differ."""
    if logits.shape[-2:] != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits


def _unwrap(model: nn.Module) -> nn.Module:
    while hasattr(model, "module"):  # DDP / compiled wrappers
        model = model.module
    return model


class Task:
    """One task's training and evaluation pieces.

    Attributes:
        name: The task (``model.task``).
        summary: Metrics shown in the epoch summary line, most important first.
        gather_objects: Evaluation outputs are Python objects (gathered with pickling).
    """

    name: ClassVar[str]
    summary: ClassVar[tuple[str, ...]]
    gather_objects: ClassVar[bool] = False

    def __init__(self, spec: InputSpec, accelerator: Any = None) -> None:
        self.spec = spec
        self.accelerator = accelerator
        self.num_processes = accelerator.num_processes if accelerator is not None else 1

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        """The training loss of one batch (``model`` in train mode)."""
        raise NotImplementedError

    def eval_step(self, model: nn.Module, batch: Mapping[str, Any]) -> Any:
        """Per-sample evaluation outputs of one batch (gathered across processes)."""
        raise NotImplementedError

    def metrics(self) -> Any:
        """A fresh accumulator: ``update(gathered eval_step output)``, ``compute() -> dict``."""
        raise NotImplementedError

    @staticmethod
    def batch_size(batch: Mapping[str, Any]) -> int:
        """Samples in a batch (images may be a tensor or a list)."""
        return len(batch["image"])


class _ConfusionAccumulator:
    def __init__(self, spec: InputSpec, kind: str) -> None:
        self.confusion = ConfusionMatrix(spec.num_classes, spec.class_names, kind,
                                         spec.ignore_index)
        self.losses: list[Tensor] = []

    def update(self, outputs: tuple[Tensor, Tensor]) -> None:
        cm, per_sample_loss = outputs
        self.confusion.add(cm)  # per-sample matrices gathered across processes: exact sum
        self.losses.append(per_sample_loss.float().cpu())

    def compute(self) -> dict[str, Any]:
        out = self.confusion.compute()
        # per-sample losses (exact under gather_for_metrics); a sample without valid pixels is NaN
        out["loss"] = float(torch.cat(self.losses).nanmean()) if self.losses else None
        return out


class _LossTask(Task):
    """Segmentation and classification: a loss module on logits, confusion-matrix metrics."""

    target_key: ClassVar[str]

    def __init__(self, spec: InputSpec, loss: LossConfig | None = None,
                 accelerator: Any = None) -> None:
        super().__init__(spec, accelerator)
        lo = loss or LossConfig()
        criterion = build_loss(lo.name, ignore_index=spec.ignore_index,
                               class_weights=lo.class_weights, dice_weight=lo.dice_weight,
                               focal_gamma=lo.focal_gamma, label_smoothing=lo.label_smoothing)
        self.criterion = criterion.to(accelerator.device) if accelerator is not None else criterion

    def metrics(self) -> _ConfusionAccumulator:
        return _ConfusionAccumulator(self.spec, self.name)

    def _logits(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        return model(batch["image"])

    def eval_step(self, model: nn.Module, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        target = batch[self.target_key]
        logits = self._logits(model, batch)
        criterion = self.criterion.to(logits.device)
        per_sample = torch.stack([criterion(logits[i:i + 1].float(), target[i:i + 1])
                                  for i in range(logits.shape[0])])
        cm = per_sample_confusion(logits.argmax(1), target, self.spec.num_classes,
                                  self.spec.ignore_index)
        return cm, per_sample


class SegmentationTask(_LossTask):
    """Per-pixel classification (see the module docstring)."""

    name = "segmentation"
    summary = ("miou", "macro_f1", "accuracy")
    target_key = "mask"
    aux_weight = 0.4

    def _logits(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        return fit_logits(model(batch["image"]), batch["mask"].shape[-2:])

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        mask = batch["mask"]
        out = model(batch["image"], return_aux=bool(getattr(_unwrap(model), "has_aux", False)))
        logits, aux = (out["out"], out.get("aux")) if isinstance(out, Mapping) else (out, None)
        logits = fit_logits(logits, mask.shape[-2:])
        if self.num_processes > 1 and aux is None and hasattr(self.criterion, "sum_and_weight"):
            # mean over the valid pixels of the whole global batch, not per process
            total, weight = self.criterion.sum_and_weight(logits, mask)
            weight = self.accelerator.reduce(weight, reduction="sum")
            return total * self.num_processes / weight.clamp(min=1e-12)
        loss = self.criterion(logits, mask)
        if aux is not None:
            loss = loss + self.aux_weight * self.criterion(fit_logits(aux, mask.shape[-2:]), mask)
        return loss


class ClassificationTask(_LossTask):
    """One class per image (see the module docstring)."""

    name = "classification"
    summary = ("accuracy", "macro_f1")
    target_key = "label"

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        return self.criterion(model(batch["image"]), batch["label"])


class _DetectionAccumulator:
    def __init__(self, spec: InputSpec) -> None:
        self.map = DetectionMetrics(spec.class_names)

    def update(self, outputs: list[tuple[dict[str, Tensor], dict[str, Tensor]]]) -> None:
        if outputs:
            preds, truth = zip(*outputs)
            self.map.update(list(preds), list(truth))

    def compute(self) -> dict[str, Any]:
        return self.map.compute()


class DetectionTask(Task):
    """Boxes (see the module docstring)."""

    name = "detection"
    summary = ("map_50", "map")
    gather_objects = True

    def __init__(self, spec: InputSpec, score_threshold: float = 0.05,
                 accelerator: Any = None) -> None:
        super().__init__(spec, accelerator)
        self.score_threshold = score_threshold

    @staticmethod
    def targets(batch: Mapping[str, Any]) -> list[dict[str, Tensor]]:
        """torchvision targets: rsfm's 0-based class ids + 1 (0 is the background); instance
        ``masks`` (Mask R-CNN) when the data has them."""
        out = [{"boxes": b.float(), "labels": lab.long() + 1}
               for b, lab in zip(batch["boxes"], batch["labels"])]
        for target, masks in zip(out, batch.get("masks") or ()):
            target["masks"] = masks.to(torch.uint8)
        return out

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        losses = model(list(batch["image"]), self.targets(batch))
        return sum(losses.values())

    def eval_step(self, model: nn.Module, batch: Mapping[str, Any]) -> list[tuple[dict, dict]]:
        # One (prediction, truth) pair per sample: gather_for_metrics cuts the gathered list to
        # the real samples of the last batch, which must not cut a (preds, truths) pair instead.
        preds = []
        for o in model(list(batch["image"])):
            keep = o["scores"] >= self.score_threshold
            pred = {"boxes": o["boxes"][keep], "scores": o["scores"][keep],
                    "labels": o["labels"][keep] - 1}
            if "masks" in o:  # Mask R-CNN: (N, 1, H, W) probabilities -> binary instance masks
                pred["masks"] = o["masks"][keep, 0] > 0.5
            preds.append(pred)
        truth = [{"boxes": b, "labels": lab} for b, lab in zip(batch["boxes"], batch["labels"])]
        for target, masks in zip(truth, batch.get("masks") or ()):
            target["masks"] = masks.bool()
        return list(zip(preds, truth))

    def metrics(self) -> _DetectionAccumulator:
        return _DetectionAccumulator(self.spec)


def build_task(task: str, spec: InputSpec, *, loss: LossConfig | None = None,
               score_threshold: float = 0.05, accelerator: Any = None) -> Task:
    """The :class:`Task` of ``model.task``.

    Args:
        task: ``segmentation``, ``classification`` or ``detection``.
        spec: The model's input spec (classes, ignore index).
        loss: The recipe's ``train.loss`` (segmentation/classification).
        score_threshold: Detection: predictions below it are not scored.
        accelerator: The run's ``Accelerator`` (device, process count); None for a plain
            single-process evaluation.
    """
    if task == "detection":
        return DetectionTask(spec, score_threshold, accelerator)
    if task == "classification":
        return ClassificationTask(spec, loss, accelerator)
    return SegmentationTask(spec, loss, accelerator)
