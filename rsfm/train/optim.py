"""Optimizers and schedules: parameter groups (no weight decay on norms/biases/embeddings),
layer-wise learning-rate decay for ViT backbones, warmup + cosine/linear per-step schedules."""

from __future__ import annotations

import logging
import re
from typing import Any

import torch
from torch import nn

from rsfm.train.budget import Budget, shape

__all__ = ["build_optimizer", "build_scheduler", "layer_id", "lr_lambda", "param_groups"]

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_EMBED = ("patch_embed", "pos_embed", "cls_token", "mask_token", "temporal_embed", "location_embed",
          "wv_", "weight_generator", "fclayer", "time_embed")
_NO_DECAY = ("pos_embed", "cls_token", "mask_token", "temporal_embed", "location_embed",
             "relative_position")

log = logging.getLogger(__name__)


def _num_blocks(model: nn.Module) -> int:
    ids = [int(m.group(1)) for n, _ in model.named_parameters()
           if n.startswith("backbone") or ".backbone." in n
           for m in [_BLOCK.search(n)] if m]
    return max(ids) + 1 if ids else 0


def layer_id(name: str, num_blocks: int) -> int:
    """Depth of a parameter for layer-wise decay: embeddings 0, block ``i`` -> ``i + 1``,
    everything after the blocks (final norm, neck, head) ``num_blocks + 1``."""
    in_backbone = name.startswith("backbone") or ".backbone." in name
    if not in_backbone:
        return num_blocks + 1
    m = _BLOCK.search(name)
    if m:
        return int(m.group(1)) + 1
    if any(k in name for k in _EMBED):
        return 0
    return num_blocks + 1 if "norm" in name.split(".")[-2:][0] else 0


def param_groups(model: nn.Module, lr: float, weight_decay: float,
                 layer_decay: float | None = None, backbone_lr_mult: float = 1.0) -> list[dict]:
    """Parameter groups for ``torch.optim``: one per (lr scale, decay?) pair.

    Every parameter is included (also frozen ones: they get no gradient, so the optimizer skips
    them until a progressive-unfreeze step makes them trainable).
    """
    n_blocks = _num_blocks(model)
    if layer_decay is not None and layer_decay < 1 and not n_blocks:
        log.warning("train.optimizer.layer_decay applies to ViT blocks; this backbone has none, so it "
                    "is ignored (use backbone_lr_mult for CNNs).")
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        no_decay = (p.ndim <= 1 or name.endswith(".bias") or any(k in name for k in _NO_DECAY))
        in_backbone = name.startswith("backbone") or ".backbone." in name
        scale = backbone_lr_mult if in_backbone else 1.0
        if layer_decay is not None and layer_decay < 1 and n_blocks:
            scale *= layer_decay ** (n_blocks + 1 - layer_id(name, n_blocks))
        key = (round(scale, 12), no_decay)
        g = groups.setdefault(key, {"params": [], "names": [], "lr_scale": scale,
                                    "weight_decay": 0.0 if no_decay else weight_decay,
                                    "lr": lr * scale})
        g["params"].append(p)
        g["names"].append(name)
    return [groups[k] for k in sorted(groups, key=lambda k: (-k[0], k[1]))]


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """AdamW or SGD over :func:`param_groups` (``cfg`` is a recipe ``OptimizerConfig``)."""
    groups = param_groups(model, cfg.lr, cfg.weight_decay, cfg.layer_decay, cfg.backbone_lr_mult)
    for g in groups:
        g.pop("names")
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas),
                             weight_decay=cfg.weight_decay)


def lr_lambda(step: int, total: int, warmup: int, name: str = "cosine",
              min_ratio: float = 0.0) -> float:
    """LR multiplier at optimizer step ``step`` (0-based) of a ``total``-step run (no time budget;
    :class:`~rsfm.train.budget.Budget` is the general form)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return shape((step - warmup) / max(1, total - warmup), name, min_ratio)


def build_scheduler(optimizer: torch.optim.Optimizer,
                    budget: Budget) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-optimizer-step LambdaLR following ``budget`` (warm-up, then decay over the steps or
    the wall time the run has)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: budget.lr_factor(step))
