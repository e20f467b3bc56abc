"""Task heads. Segmentation and classification heads are ``nn.Module`` s over pyramid levels;
detection heads are torchvision detectors whose ``backbone`` is the model's backbone + neck.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from rsfm.config import HEAD_OPTIONS
from rsfm.modelcheck import check_head_kwargs

__all__ = ["check_kwargs"]


def check_kwargs(cls: type, head: str, kwargs: Mapping[str, Any], skip: Iterable[str] = ()) -> None:
    """Raise a ConfigError naming unknown head options and the allowed ones.

    The options are :data:`rsfm.config.HEAD_OPTIONS` (torch-free, so ``rsfm check`` reads the
    same table); ``cls`` is the head class, whose keyword arguments the table must list.
    """
    params = set(inspect.signature(cls.__init__).parameters) - {"self", *skip}
    if params != set(HEAD_OPTIONS[head]):
        raise RuntimeError(f"rsfm.config.HEAD_OPTIONS[{head!r}] {list(HEAD_OPTIONS[head])} is out "
                           f"of date: {cls.__name__} takes {sorted(params)}.")
    check_head_kwargs(head, kwargs)
