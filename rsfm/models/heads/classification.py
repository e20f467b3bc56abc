"""Scene classification head: global average pool of the deepest level + linear (timm's ``ClassifierHead`` layout)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from rsfm.models.blocks import ClassifierHead

__all__ = ["ClassificationHead"]


class ClassificationHead(nn.Module):
    """Pool the last level ``(B, C, h, w)`` and classify -> logits ``(B, K)``.

    Args:
        in_channels: Channels of each level (the last one is used).
        num_classes: ``K``.
        pool: ``avg`` or ``max`` (``avgmax``/``catavgmax`` work too).
        dropout: Dropout before the linear layer.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, *, pool: str = "avg",
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.classifier = ClassifierHead(in_channels[-1], num_classes, pool_type=pool, drop_rate=dropout)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Levels -> logits ``(B, K)``."""
        return self.classifier(features[-1])
