"""Segmentation and classification losses: cross-entropy (``ignore_index``, class weights,
label smoothing), soft Dice, focal, and their sums. Detection models return torchvision's losses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DiceLoss", "FocalLoss", "build_loss"]


class DiceLoss(nn.Module):
    """Soft multi-class Dice over valid pixels (``1 - mean_k dice_k``), classes absent from both
    prediction and target count as perfect."""

    def __init__(self, ignore_index: int = -1, smooth: float = 1.0) -> None:
        super().__init__()
        self.ignore_index, self.smooth = ignore_index, smooth

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        k = logits.shape[1]
        valid = target != self.ignore_index
        probs = logits.float().softmax(1) * valid.unsqueeze(1)
        onehot = F.one_hot(torch.where(valid, target, 0), k).movedim(-1, 1).to(probs.dtype)
        onehot = onehot * valid.unsqueeze(1)
        dims = (0, *range(2, logits.ndim))
        inter = (probs * onehot).sum(dims)
        denom = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * inter + self.smooth) / (denom + self.smooth)
        return 1 - dice.mean()


class FocalLoss(nn.Module):
    """Multi-class focal loss ``(1 - p_t)^gamma * CE`` averaged over valid pixels."""

    def __init__(self, gamma: float = 2.0, weight: Tensor | None = None, ignore_index: int = -1):
        super().__init__()
        self.gamma, self.ignore_index = gamma, ignore_index
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        ce = F.cross_entropy(logits.float(), target, weight=self.weight,
                             ignore_index=self.ignore_index, reduction="none")
        valid = target != self.ignore_index
        pt = torch.exp(-F.cross_entropy(logits.float(), target, ignore_index=self.ignore_index,
                                        reduction="none"))
        loss = ((1 - pt) ** self.gamma * ce)[valid]
        return loss.mean() if loss.numel() else logits.sum() * 0


class _Sum(nn.Module):
    def __init__(self, first: nn.Module, second: nn.Module, weight: float) -> None:
        super().__init__()
        self.first, self.second, self.weight = first, second, weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.first(logits, target) + self.weight * self.second(logits, target)


class _CrossEntropy(nn.Module):
    def __init__(self, weight: Tensor | None, ignore_index: int, label_smoothing: float) -> None:
        super().__init__()
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.register_buffer("weight", weight, persistent=False)

    def sum_and_weight(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Summed loss and the summed weight of valid targets (the mean's denominator).

        Data-parallel training divides by the *global* denominator, so N processes compute
        exactly the gradient of one process on the whole batch.
        """
        per = F.cross_entropy(logits.float(), target, weight=self.weight,
                              ignore_index=self.ignore_index, reduction="none",
                              label_smoothing=self.label_smoothing)
        valid = target != self.ignore_index
        if self.weight is not None:
            w = self.weight[torch.where(valid, target, 0)] * valid
        else:
            w = valid.to(per.dtype)
        return per.sum(), w.sum().detach()

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if not (target != self.ignore_index).any():  # an all-nodata batch: zero, not NaN
            return logits.sum() * 0
        return F.cross_entropy(logits.float(), target, weight=self.weight,
                               ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)


def build_loss(name: str = "ce", *, ignore_index: int = -1,
               class_weights: Sequence[float] | None = None, dice_weight: float = 1.0,
               focal_gamma: float = 2.0, label_smoothing: float = 0.0) -> nn.Module:
    """A loss module ``loss(logits (B, K, ...), target (B, ...)) -> scalar``.

    Args:
        name: ``ce``, ``dice``, ``focal``, ``ce+dice`` or ``focal+dice``.
        ignore_index: Target value excluded from the loss.
        class_weights: Optional per-class weights (CE and focal).
        dice_weight: Weight of the Dice term in the sums.
        focal_gamma: Focusing parameter of the focal loss.
        label_smoothing: CE label smoothing.
    """
    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    ce = _CrossEntropy(weight, ignore_index, label_smoothing)
    focal = FocalLoss(focal_gamma, weight, ignore_index)
    dice = DiceLoss(ignore_index)
    table = {
        "ce": lambda: ce, "dice": lambda: dice, "focal": lambda: focal,
        "ce+dice": lambda: _Sum(ce, dice, dice_weight),
        "focal+dice": lambda: _Sum(focal, dice, dice_weight),
    }
    if name not in table:
        raise ValueError(f"Unknown loss {name!r}; choose one of {list(table)}.")
    return table[name]()
