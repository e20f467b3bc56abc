"""Four small layers rsfm used to import from timm: ``DropPath``, ``Mlp``, ``LayerNorm2d``, ``ClassifierHead``.

Why vendored: ``import timm`` costs 2.3 s or more (it registers ~1,400 models) and rsfm needed
only these four layers, so every ``rsfm`` command that builds a model paid for timm's whole model
zoo. Each layer here keeps the parameter and submodule names of timm 1.0 (``mlp.fc1``,
``classifier.fc``, a LayerNorm's ``weight``/``bias``), so checkpoints and LoRA targets are
unchanged, and computes the same numbers (``tests/test_models_blocks.py`` compares them with
timm's on random inputs and weights). Only the options rsfm uses are kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rsfm.errors import ConfigError

__all__ = ["POOL_TYPES", "ClassifierHead", "DropPath", "LayerNorm2d", "Mlp", "drop_path"]


def drop_path(x: Tensor, drop_prob: float = 0.0, training: bool = False,
              scale_by_keep: bool = True) -> Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``drop_prob``.

    Args:
        x: ``(B, ...)``; one keep/drop draw per sample.
        drop_prob: Probability of dropping a sample's branch.
        training: Identity unless True.
        scale_by_keep: Divide kept samples by ``1 - drop_prob`` (unbiased expectation).
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # (B, 1, ..., 1): broadcast over the sample
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    """:func:`drop_path` as a module (timm ``DropPath``)."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        """Same shape as ``x``."""
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class Mlp(nn.Module):
    """The ViT MLP: ``fc1 -> act -> dropout -> fc2 -> dropout`` on ``(..., in_features)`` (timm ``Mlp``)."""

    def __init__(self, in_features: int, hidden_features: int | None = None,
                 out_features: int | None = None, act_layer: type[nn.Module] = nn.GELU,
                 drop: float = 0.0) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (timm ``LayerNorm2d``; eps 1e-6)."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C): normalise the last dim
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


POOL_TYPES = ("avg", "max", "avgmax", "catavgmax")


class ClassifierHead(nn.Module):
    """Global pooling, dropout and a linear layer: ``(B, C, H, W)`` -> ``(B, K)`` (timm ``ClassifierHead``).

    Args:
        in_features: ``C``.
        num_classes: ``K``.
        pool_type: ``avg``, ``max``, ``avgmax`` (their mean) or ``catavgmax`` (both, ``2C`` features).
        drop_rate: Dropout before the linear layer.

    Raises:
        ConfigError: An unknown ``pool_type``.
    """

    def __init__(self, in_features: int, num_classes: int, pool_type: str = "avg",
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise ConfigError(f"classification head pool {pool_type!r}; allowed: {list(POOL_TYPES)} "
                              "(model.head_kwargs.pool).")
        self.pool_type = pool_type
        self.in_features = in_features
        self.num_features = in_features * (2 if pool_type == "catavgmax" else 1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)

    def pool(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C)`` (``(B, 2C)`` for ``catavgmax``)."""
        if self.pool_type == "avg":
            return F.adaptive_avg_pool2d(x, 1).flatten(1)
        if self.pool_type == "max":
            return F.adaptive_max_pool2d(x, 1).flatten(1)
        avg, top = F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)
        pooled = torch.cat((avg, top), 1) if self.pool_type == "catavgmax" else 0.5 * (avg + top)
        return pooled.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> logits ``(B, K)``."""
        return self.fc(self.drop(self.pool(x)))
