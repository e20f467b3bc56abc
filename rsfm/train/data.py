"""Training loaders of a recipe's datasets (the datasets themselves: :mod:`rsfm.datasets`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from rsfm.data.collate import collate_fn
from rsfm.data.samplers import EpochSampler
from rsfm.datasets import Datasets
from rsfm.errors import ConfigError
from rsfm.schema import DataConfig

__all__ = ["Loaders", "build_loaders", "collate", "worker_count"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaders:
    """Loaders of :class:`~rsfm.datasets.Datasets`; ``sampler`` orders the training set per
    epoch. The test split is not loaded here: it is scored with :func:`rsfm.evaluate` at the
    end of training."""

    train: DataLoader
    sampler: EpochSampler
    val: DataLoader | None = None


def collate(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """:func:`rsfm.data.collate.collate_fn` without the per-sample ``meta``."""
    return collate_fn([{k: v for k, v in s.items() if k != "meta"} for s in batch])


def _cores() -> int:
    """CPU cores this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def worker_count(num_workers: int, num_processes: int = 1) -> int:
    """``data.num_workers``, limited to the cores each process has (with a warning): more
    loader processes than cores only adds memory and switching."""
    limit = max(1, _cores() // max(1, num_processes))
    if num_workers <= limit:
        return num_workers
    per = f" per process ({num_processes} processes)" if num_processes > 1 else ""
    log.warning("data.num_workers=%d is more than the %d CPU core(s) available%s; using %d "
                "loader workers.", num_workers, limit, per, limit)
    return limit


def build_loaders(datasets: Datasets, data: DataConfig, seed: int,
                  num_processes: int = 1) -> Loaders:
    """Loaders for the global batch ``data.batch_size`` (split over ``num_processes``), with
    ``data.num_workers`` limited to the available cores (:func:`worker_count`).

    Raises:
        ConfigError: The batch does not divide over the processes.
    """
    if data.batch_size % num_processes:
        raise ConfigError(f"data.batch_size ({data.batch_size}) is the global batch and must be "
                          f"divisible by the number of processes ({num_processes}).")
    n = len(datasets.train)  # type: ignore[arg-type]
    sampler = EpochSampler(n, seed)
    workers = worker_count(data.num_workers, num_processes)
    train = DataLoader(datasets.train, batch_size=data.batch_size, sampler=sampler,
                       num_workers=workers, collate_fn=collate,
                       drop_last=n > data.batch_size, persistent_workers=workers > 0)
    ebs = data.eval_batch_size or data.batch_size
    ebs = max(num_processes, ebs - ebs % num_processes)

    def evaluation(ds: Dataset | None) -> DataLoader | None:
        if ds is None or not len(ds):  # type: ignore[arg-type]
            return None
        return DataLoader(ds, batch_size=ebs, shuffle=False, num_workers=workers,
                          collate_fn=collate)

    return Loaders(train, sampler, evaluation(datasets.val))
