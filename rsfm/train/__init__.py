"""Training: recipes run by ``rsfm train RECIPE`` or ``accelerate launch -m rsfm.train RECIPE
[key=value ...] [--resume]``.

``rsfm.train(recipe)`` (the package attribute) is :func:`rsfm.train.loop.train`; it returns a
:class:`~rsfm.train.state.TrainResult`.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rsfm.train.state import TrainResult

__all__ = ["train"]


def train(*args: Any, **kwargs: Any) -> TrainResult:
    """Train a recipe (see :func:`rsfm.train.loop.train`)."""
    from rsfm.train.loop import train as _train

    return _train(*args, **kwargs)


class _CallableModule(types.ModuleType):
    """``rsfm.train`` is both this package and the function: importing ``rsfm.train.loop`` binds
    the package to ``rsfm.train``, so the package itself must be callable."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
