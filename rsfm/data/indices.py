"""Spectral indices appended as extra input channels, by name.

Indices are computed from *raw* values (before normalisation) of bands found by catalog common
name, so ``NDVI`` works for Sentinel-2 (``B8``/``B4``), Landsat 8 (``B5``/``B4``) or a 4-band
RGBN file whose order was given with ``file_bands``. All indices here are normalised differences,
which do not depend on the value scale; results lie in [-1, 1] and are not normalised further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsfm.bands import SPECTRAL_INDICES as INDICES
from rsfm.bands import Band
from rsfm.errors import BandError

__all__ = ["INDICES", "IndexPlan", "compute_index", "plan_indices"]

@dataclass(frozen=True)
class IndexPlan:
    """One index to compute: its name and the 1-based file band indexes of its two inputs."""

    name: str
    a: int
    b: int


def _find(roles: tuple[str, ...], file_bands: Sequence[Band | None]) -> int | None:
    for role in roles:  # roles are in preference order (NIR_BROAD before NIR_NARROW)
        for i, band in enumerate(file_bands):
            if band is not None and band.common_name == role:
                return i + 1
    return None


def plan_indices(
    names: Sequence[str], file_bands: Sequence[Band | None], path: str = "the file"
) -> list[IndexPlan]:
    """Find, for each index name, the file bands it needs.

    Args:
        names: Index names (case-insensitive), e.g. ``["NDVI", "NBR"]``.
        file_bands: Catalog bands of *all* bands of the file, in file order (``None`` = unknown).
        path: File name for error messages.

    Raises:
        BandError: Unknown index, or the file lacks a band the index needs.
    """
    plans = []
    for raw in names:
        name = raw.upper()
        if name not in INDICES:
            raise BandError(f"Unknown spectral index {raw!r}. Known indices: {sorted(INDICES)}.")
        roles_a, roles_b, _ = INDICES[name]
        a, b = _find(roles_a, file_bands), _find(roles_b, file_bands)
        if a is None or b is None:
            missing = roles_a if a is None else roles_b
            known = [bd.name if bd else "?" for bd in file_bands]
            raise BandError(
                f"Index {name} needs a {' or '.join(missing)} band, which {path} does not have "
                f"(its bands: {known}). State the band order with file_bands=[...] if it is missing."
            )
        plans.append(IndexPlan(name, a, b))
    return plans


def compute_index(a: np.ndarray, b: np.ndarray, bad: np.ndarray | None = None) -> np.ndarray:
    """``(a - b) / (a + b)`` as float32; 0 where invalid or where ``a + b == 0``."""
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    den = a + b
    with np.errstate(all="ignore"):
        out = np.where(den != 0, (a - b) / den, 0.0).astype(np.float32)
    if bad is not None:
        out[bad] = 0.0
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out
