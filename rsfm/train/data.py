"""Training loaders of a recipe's datasets (the datasets themselves: :mod:`rsfm.datasets`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from rsfm.data.collate import collate_fn
from rsfm.data.samplers import EpochSampler
from rsfm.datasets import Datasets
from rsfm.errors import ConfigError
from rsfm.schema import DataConfig

__all__ = ["Loaders", "build_loaders", "collate"]


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


def build_loaders(datasets: Datasets, data: DataConfig, seed: int,
                  num_processes: int = 1) -> Loaders:
    """Loaders for the global batch ``data.batch_size`` (split over ``num_processes``).

    Raises:
        ConfigError: The batch does not divide over the processes.
    """
    if data.batch_size % num_processes:
        raise ConfigError(f"data.batch_size ({data.batch_size}) is the global batch and must be "
                          f"divisible by the number of processes ({num_processes}).")
    n = len(datasets.train)  # type: ignore[arg-type]
    sampler = EpochSampler(n, seed)
    train = DataLoader(datasets.train, batch_size=data.batch_size, sampler=sampler,
                       num_workers=data.num_workers, collate_fn=collate,
                       drop_last=n > data.batch_size, persistent_workers=data.num_workers > 0)
    ebs = data.eval_batch_size or data.batch_size
    ebs = max(num_processes, ebs - ebs % num_processes)

    def evaluation(ds: Dataset | None) -> DataLoader | None:
        if ds is None or not len(ds):  # type: ignore[arg-type]
            return None
        return DataLoader(ds, batch_size=ebs, shuffle=False, num_workers=data.num_workers,
                          collate_fn=collate)

    return Loaders(train, sampler, evaluation(datasets.val))
