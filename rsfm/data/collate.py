"""Batching of samples: images and masks stack; detection targets stay per-sample lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

__all__ = ["collate_fn"]

_LIST_KEYS = ("boxes", "labels")  # a different number of objects per image


def collate_fn(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate rsfm samples for any task (pass as ``DataLoader(collate_fn=collate_fn)``).

    ``image`` (and ``mask``) are stacked to ``(B, ...)``; ``boxes`` and ``labels`` become lists of
    per-image tensors (torchvision detection convention); ``meta`` collates key by key (strings
    to lists, tensors stacked).
    """
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [s[key] for s in batch]
        if key in _LIST_KEYS:
            out[key] = [torch.as_tensor(v) for v in values]
        else:
            out[key] = default_collate(values)
    return out
