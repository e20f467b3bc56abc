"""How rsfm draws images and class maps: one composite rule and one class-map rule for every
picture (``show_batch``, training plots, ``show_results``, prediction previews).

Composites are chosen from the bands' catalog common names, in this order:

1. **true colour** ``RED, GREEN, BLUE``;
2. **colour infrared** ``NIR, RED, GREEN`` (vegetation red) when blue is missing;
3. **SWIR false colour** ``SWIR_2 (or SWIR_1), NIR, RED`` when green is missing too;
4. **SAR** ``VV, VH, VV - VH`` (the polarisation difference, i.e. the ratio for dB data), or
   ``HH, HV, HH - HV``;
5. otherwise the first band in grey.

Each channel is stretched to its 2-98 % percentiles over valid pixels. In class maps, ignored
pixels (``ignore_index``, nodata) are drawn as black-and-white diagonal stripes: a pattern no
solid class colour can be mistaken for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rsfm.bands import Band
from rsfm.errors import ConfigError

__all__ = ["Composite", "class_rgb", "composite_image", "rgb_composite", "stretch"]

_NIR = ("NIR_NARROW", "NIR_BROAD")


@dataclass(frozen=True)
class Composite:
    """Which channels make a picture: 3 indexes (RGB), 1 (grey), or 2 (SAR: the third channel
    is their difference). ``label`` says what the picture shows (``"true colour: B4, B3, B2"``)."""

    indexes: tuple[int, ...]
    label: str


def _roles(bands: Sequence[Band | None]) -> dict[str, int]:
    roles: dict[str, int] = {}
    for i, band in enumerate(bands):
        if band is not None and band.common_name is not None:
            roles.setdefault(band.common_name, i)
    return roles


def rgb_composite(bands: Sequence[Band | None], n_channels: int | None = None,
                  rgb: Sequence[str | int] | None = None) -> Composite:
    """The composite of an image with ``bands`` (see the module docstring for the rule).

    Args:
        bands: The image's channels in order (``None`` for unknown ones).
        n_channels: Channel count when ``bands`` is empty (unknown band names).
        rgb: User choice: 3 band names / 0-based indexes (RGB), or 1 (grey).

    Raises:
        ConfigError: An ``rgb`` entry that is not a channel of the image.
    """
    names = [b.name if b is not None else f"band{i + 1}" for i, b in enumerate(bands)]
    count = len(bands) or (n_channels or 1)
    if rgb is not None:
        idx = []
        for r in rgb:
            if isinstance(r, int) and 0 <= r < count:
                idx.append(r)
            elif isinstance(r, str) and r in names:
                idx.append(names.index(r))
            else:
                raise ConfigError(f"rgb: {r!r} is not one of the image's channels {names or count}.")
        if len(idx) not in (1, 3):
            raise ConfigError(f"rgb needs 1 (grey) or 3 channels, got {list(rgb)}.")
        return Composite(tuple(idx), ("RGB = " if len(idx) == 3 else "grey = ")
                         + ", ".join(names[i] if names else str(i + 1) for i in idx))
    roles = _roles(bands)
    nir = next((roles[n] for n in _NIR if n in roles), None)
    swir = roles.get("SWIR_2", roles.get("SWIR_1"))
    red, green, blue = roles.get("RED"), roles.get("GREEN"), roles.get("BLUE")
    choices = [
        ("true colour", (red, green, blue)),
        ("colour infrared", (nir, red, green)),
        ("SWIR false colour", (swir, nir, red)),
        ("SAR VV, VH, VV-VH", (roles.get("VV"), roles.get("VH"))),
        ("SAR HH, HV, HH-HV", (roles.get("HH"), roles.get("HV"))),
    ]
    for label, idx in choices:
        if all(i is not None for i in idx):
            chosen = tuple(int(i) for i in idx)  # type: ignore[arg-type]
            return Composite(chosen, f"{label}: " + ", ".join(names[i] for i in chosen))
    return Composite((0,), f"grey = {names[0]}" if names else "grey = band 1")


def stretch(img: np.ndarray, valid: np.ndarray | None = None,
            percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """Per-channel percentile stretch of ``(k, H, W)`` to an ``(H, W, 3)`` float image in [0, 1]
    (one channel is repeated as grey; invalid and non-finite pixels are 0)."""
    img = np.asarray(img, dtype=np.float32)
    ok = np.isfinite(img).all(0)
    if valid is not None:
        ok &= valid
    out = np.zeros(img.shape, dtype=np.float32)
    for c, band in enumerate(img):
        values = band[ok]
        if values.size == 0:
            continue
        lo, hi = np.percentile(values, percentiles)
        out[c] = np.clip((band - lo) / max(float(hi - lo), 1e-6), 0, 1)
    out[:, ~ok] = 0
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    return np.nan_to_num(out[:3]).transpose(1, 2, 0)


def composite_image(img: np.ndarray, composite: Composite, valid: np.ndarray | None = None,
                    percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """``(C, H, W)`` image -> ``(H, W, 3)`` picture in [0, 1] following ``composite``."""
    img = np.asarray(img, dtype=np.float32)
    chans = img[list(composite.indexes)]
    if len(composite.indexes) == 2:  # SAR: the polarisation difference as third channel
        chans = np.concatenate([chans, chans[:1] - chans[1:2]], axis=0)
    return stretch(chans, valid, percentiles)


def class_rgb(mask: np.ndarray, colors: Sequence[Sequence[int]], ignore_index: int | None = None,
              period: int = 4) -> np.ndarray:
    """Class ids ``(H, W)`` -> ``(H, W, 3)`` float picture in the class colours; ignored pixels
    (``ignore_index`` and ids outside the classes) as black/white diagonal stripes."""
    mask = np.asarray(mask).astype(np.int64)
    table = np.asarray(colors, dtype=np.float32).reshape(-1, 3) / 255.0
    k = len(table)
    out = np.zeros((*mask.shape, 3), dtype=np.float32)
    known = (mask >= 0) & (mask < k)
    if ignore_index is not None:
        known &= mask != ignore_index
    out[known] = table[mask[known]]
    rows, cols = np.indices(mask.shape)
    stripes = ((rows + cols) // max(period // 2, 1)) % 2 == 0
    out[~known] = np.where(stripes[~known, None], 1.0, 0.0)
    return out
