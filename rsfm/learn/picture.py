"""A PNG written by the notebook API that shows itself in Jupyter."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Picture"]


@dataclass(frozen=True)
class Picture(os.PathLike):
    """A PNG file: displayed inline by Jupyter (``_repr_png_``), a path everywhere else.

    Attributes:
        path: The PNG file.
    """

    path: Path

    def _repr_png_(self) -> bytes:
        return self.path.read_bytes()

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)
