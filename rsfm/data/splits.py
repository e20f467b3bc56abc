"""Train/val/test splits: spatial blocks, random, or from files; class balance per split.

Spatial block splits put every tile into the square block (``block_size`` map units, e.g. 5000 m)
that holds its centre, shuffle the blocks with the seed, and hand whole blocks to the splits so
their tile counts follow the requested fractions. Tiles whose footprint reaches into a block of
another split are dropped (by default), so no two tiles of different splits overlap or touch
across a block edge: neighbouring (autocorrelated) pixels never straddle splits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsfm.errors import ConfigError, DataError

__all__ = [
    "SplitResult",
    "block_split",
    "class_balance",
    "file_split",
    "format_balance",
    "random_split",
    "split_dataset",
    "spread_indices",
]

log = logging.getLogger(__name__)

DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@dataclass
class SplitResult:
    """Indexes of the samples in each split.

    Attributes:
        indices: split name -> sorted sample indexes.
        dropped: Samples in no split (straddling a block edge).
        blocks: Block split only: block key ``(crs, col, row)`` -> split name.
    """

    indices: dict[str, list[int]]
    dropped: list[int] = field(default_factory=list)
    blocks: dict[tuple, str] = field(default_factory=dict)

    def __getitem__(self, split: str) -> list[int]:
        if split not in self.indices:
            raise ConfigError(f"No split {split!r}; splits are {list(self.indices)}.")
        return self.indices[split]

    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {k: len(v) for k, v in self.indices.items()}


def spread_indices(total: int, n: int) -> list[int]:
    """Up to ``n`` indexes evenly spaced over ``range(total)``, first and last included: a check
    that reads a sample sees every part of a dataset whose tiles or files come in order (a scene
    labelled only in its lower half, one class folder after another)."""
    if total <= n:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, n).round()})


def _check_fractions(fractions: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    if not isinstance(fractions, Mapping):  # (0.7, 0.15, 0.15) -> train/val/test
        values = list(fractions)
        if len(values) > 3:
            raise ConfigError(f"fractions as a sequence name train/val/test (at most 3), got {values}.")
        fractions = dict(zip(("train", "val", "test"), values))
    fr = {k: float(v) for k, v in fractions.items()}
    if not fr or any(v < 0 for v in fr.values()) or not math.isclose(sum(fr.values()), 1.0,
                                                                       abs_tol=1e-6):
        raise ConfigError(f"Split fractions must be >= 0 and sum to 1, got {dict(fractions)}.")
    return fr


def _assign_groups(group_sizes: Sequence[int], fractions: dict[str, float],
                   rng: np.random.Generator) -> list[str]:
    """Shuffle groups, then give each to the split furthest below its target share."""
    order = rng.permutation(len(group_sizes))
    total = float(sum(group_sizes)) or 1.0
    counts = dict.fromkeys(fractions, 0)
    out = [""] * len(group_sizes)
    for g in order:
        deficit = {k: fractions[k] - counts[k] / total for k in fractions if fractions[k] > 0}
        name = max(deficit, key=lambda k: (deficit[k], fractions[k]))
        out[g] = name
        counts[name] += group_sizes[g]
    return out


def block_split(
    dataset: Any,
    block_size: float,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    drop_straddling: bool = True,
) -> SplitResult:
    """Spatial block split of a dataset's tiles (deterministic for ``seed``).

    Args:
        dataset: An rsfm dataset (``footprint(i)``, ``crs_of(i)``) or a list of
            ``(left, bottom, right, top)`` footprints in one CRS.
        block_size: Block edge in map units of the data's CRS (metres for UTM).
        fractions: split name -> fraction of tiles (sums to 1).
        seed: Seed of the block shuffle.
        drop_straddling: Drop tiles that reach into a block of another split.

    Raises:
        ConfigError: Bad fractions or block size, or metres requested on a geographic CRS.
        DataError: Samples without georeferencing.
    """
    fr = _check_fractions(fractions)
    if block_size <= 0:
        raise ConfigError(f"block_size must be > 0 map units, got {block_size}.")
    if isinstance(dataset, Sequence) and not hasattr(dataset, "footprint"):
        feet = [tuple(map(float, b)) for b in dataset]
        crss = [""] * len(feet)
    else:
        feet, crss = [], []
        for i in range(len(dataset)):
            fp = dataset.footprint(i)
            if fp is None:
                raise DataError(f"Sample {i} is not georeferenced; use random_split or file_split.")
            crs = dataset.crs_of(i)
            if crs is not None and crs.is_geographic and block_size > 1:
                raise ConfigError(
                    f"The data CRS {crs.to_string()} is geographic (degrees): block_size="
                    f"{block_size} would be one block. Give block_size in degrees (0.05 ~ 5.5 km)."
                )
            feet.append(fp)
            crss.append(crs.to_string() if crs is not None else "")
    keys = []
    for (left, bottom, right, top), crs in zip(feet, crss):
        cx, cy = (left + right) / 2, (bottom + top) / 2
        keys.append((crs, math.floor(cx / block_size), math.floor(cy / block_size)))
    uniq = sorted(set(keys))
    sizes = [0] * len(uniq)
    pos = {k: i for i, k in enumerate(uniq)}
    for k in keys:
        sizes[pos[k]] += 1
    names = _assign_groups(sizes, fr, np.random.default_rng(seed))
    blocks = {k: names[pos[k]] for k in uniq}
    out: dict[str, list[int]] = {k: [] for k in fr}
    dropped = []
    eps = block_size * 1e-9  # a tile ending exactly on a block edge does not enter the next block
    for i, ((left, bottom, right, top), key) in enumerate(zip(feet, keys)):
        split = blocks[key]
        if drop_straddling:
            crs = key[0]
            touched = {blocks.get((crs, bx, by), split)
                       for bx in range(math.floor(left / block_size),
                                       math.floor((right - eps) / block_size) + 1)
                       for by in range(math.floor(bottom / block_size),
                                       math.floor((top - eps) / block_size) + 1)}
            if touched != {split}:
                dropped.append(i)
                continue
        out[split].append(i)
    if dropped:
        log.info("block split: %d of %d tiles straddle blocks of different splits and were "
                 "dropped", len(dropped), len(feet))
    empty = [k for k, v in out.items() if not v and fr[k] > 0]
    if empty:
        log.warning("block split: split(s) %s got no tiles: %d block(s) of %s map units are too few "
                    "for fractions %s; use a smaller block_size.", empty, len(uniq), block_size, fr)
    return SplitResult(out, dropped, blocks)


def random_split(
    dataset: Any, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> SplitResult:
    """Random split of ``len(dataset)`` samples (or of ``range(dataset)`` for an int)."""
    fr = _check_fractions(fractions)
    n = dataset if isinstance(dataset, int) else len(dataset)
    perm = np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    bounds = np.round(np.cumsum(list(fr.values())) * n).astype(int)
    for name, end in zip(fr, bounds):
        out[name] = sorted(int(i) for i in perm[start:end])
        start = end
    return SplitResult(out)


def file_split(dataset: Any, files: Mapping[str, str | Path]) -> SplitResult:
    """Split a chip dataset by name lists (one file name or stem per line per split).

    Raises:
        DataError: A split file is missing, or a name is listed in two splits.
    """
    names = dataset.names()
    out: dict[str, list[int]] = {}
    seen: dict[int, str] = {}
    for split, path in files.items():
        path = Path(path)
        if not path.exists():
            raise DataError(f"Split file for {split!r} not found: '{path}'.")
        listed = {Path(line.strip()).stem for line in path.read_text().splitlines()
                  if line.strip() and not line.startswith("#")}
        idx = [i for i, n in enumerate(names) if Path(n).stem in listed]
        for i in idx:
            if i in seen:
                raise DataError(f"'{names[i]}' is listed in both {seen[i]!r} and {split!r}.")
            seen[i] = split
        out[split] = idx
    dropped = [i for i in range(len(names)) if i not in seen]
    return SplitResult(out, dropped)


def split_dataset(dataset: Any, split: SplitResult) -> dict[str, Any]:
    """``{split name: torch Subset}``."""
    from torch.utils.data import Subset

    return {k: Subset(dataset, v) for k, v in split.indices.items()}


def class_balance(dataset: Any, split: SplitResult | None = None) -> dict[str, dict[str, int]]:
    """Pixels (segmentation) or boxes (detection) per class in each split.

    Reads only the targets. ``ignore`` counts ignored pixels.
    """
    classes = dataset.classes or []
    groups = split.indices if split is not None else {"all": list(range(len(dataset)))}
    out = {}
    for name, idx in groups.items():
        counts = np.zeros(len(classes) + 1, dtype=np.int64)
        for i in idx:
            t = dataset.read_target(i)
            values = t["mask"].ravel() if "mask" in t else t.get("labels", np.zeros(0, int))
            ok = (values >= 0) & (values < len(classes))
            counts[: len(classes)] += np.bincount(values[ok], minlength=len(classes))
            counts[-1] += int((~ok).sum())
        out[name] = {c: int(n) for c, n in zip([*classes, "ignore"], counts)}
    return out


def format_balance(balance: Mapping[str, Mapping[str, int]]) -> str:
    """A text table of :func:`class_balance` with percentages of the labelled total."""
    classes = list(next(iter(balance.values())))
    lines = ["split".ljust(8) + "".join(c[:14].rjust(16) for c in classes)]
    for split, counts in balance.items():
        total = sum(v for k, v in counts.items() if k != "ignore") or 1
        cells = [f"{counts[c]} ({100 * counts[c] / total:.0f}%)" if c != "ignore"
                 else str(counts[c]) for c in classes]
        lines.append(split.ljust(8) + "".join(x.rjust(16) for x in cells))
    return "\n".join(lines)
