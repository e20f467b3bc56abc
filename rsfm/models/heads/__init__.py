"""Task heads. Segmentation and classification heads are ``nn.Module`` s over pyramid levels;
detection heads are torchvision detectors whose ``backbone`` is the model's backbone + neck.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from rsfm.errors import ConfigError

__all__ = ["check_kwargs"]


def check_kwargs(cls: type, head: str, kwargs: Mapping[str, Any], skip: Iterable[str] = ()) -> None:
    """Raise a ConfigError naming unknown head options and the allowed ones."""
    params = inspect.signature(cls.__init__).parameters
    allowed = sorted(set(params) - {"self", *skip})
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"head={head!r} got unknown option(s) {unknown}; allowed head options: {allowed}.")
