"""What a model returns, made uniform: segmentation logits, class probabilities, classes.

Shared by prediction, export and the result plots (so none of them imports another).
"""

from __future__ import annotations

from typing import Any

import torch

from rsfm.errors import DataError

__all__ = ["argmax0", "as_logits", "probabilities"]


def as_logits(out: Any) -> torch.Tensor:
    """The segmentation logits of a model output (a tensor, ``{"out": ...}`` or a list).

    Raises:
        DataError: A dict without ``out`` / ``logits`` / ``masks``.
    """
    if isinstance(out, dict):
        for key in ("out", "logits", "masks"):
            if key in out:
                return out[key]
        raise DataError(f"Segmentation model returned a dict without 'out'/'logits': {list(out)}")
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


def probabilities(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits ``(B, K, h, w)`` -> float32 probabilities ``(B, K', H, W)`` (K=1: sigmoid, K'=2)."""
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = torch.nn.functional.interpolate(logits, size=size, mode="bilinear",
                                                 align_corners=False)
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def argmax0(p: torch.Tensor) -> torch.Tensor:
    """``p.argmax(0)`` for ``(K, H, W)`` as a running max over the K planes (torch's strided
    argmax over the first dimension is several times slower on CPU)."""
    if p.shape[0] > 32:
        return p.movedim(0, -1).contiguous().argmax(-1)
    best, idx = p[0].clone(), torch.zeros(p.shape[1:], dtype=torch.long)
    for k in range(1, p.shape[0]):
        better = p[k] > best
        best = torch.where(better, p[k], best)
        idx.masked_fill_(better, k)
    return idx
