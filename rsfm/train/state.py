"""What the training loop knows (:class:`TrainState`, saved with every checkpoint) and what it
returns (:class:`TrainResult`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsfm.errors import RsfmError

__all__ = ["NonFiniteLossError", "TrainResult", "TrainState", "improved"]


class NonFiniteLossError(RsfmError, FloatingPointError):
    """The loss became NaN or infinite: training stops instead of learning garbage."""


@dataclasses.dataclass
class TrainState:
    """The loop's counters; saved with every checkpoint (``trainer_state.json``).

    Attributes:
        epoch: Last completed epoch (0-based; -1 before the first).
        global_step: Optimizer steps done.
        best_metric: Best finite validation score so far (None: none yet).
        best_epoch: Its epoch (1-based).
        bad_evals: Evaluations without improvement (early stopping).
        stopped_early: Early stopping ended the run.
        stop_reason: Why the run ended before its last epoch (``max_steps``, ``max_time``,
            ``early_stopping``), or None.
        elapsed: Training wall time in seconds (time budgets continue from it on resume).
        warmup_end: ``[step, elapsed]`` where the warm-up ended (None: not yet).
        history: One row per epoch (what ``metrics.jsonl`` holds).
        test_metrics: The best checkpoint's metrics on ``data.test`` (``test_*`` keys).
        last_loss: Training loss of the last optimizer step (this process).
        model: The unwrapped model, for callbacks (not saved).
    """

    epoch: int = -1
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    stop_reason: str | None = None
    elapsed: float = 0.0
    warmup_end: list[float] | None = None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    test_metrics: dict[str, Any] | None = None
    run_dir: str = ""
    last_loss: float | None = None
    model: Any = dataclasses.field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The saved fields (everything but ``model``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "model"}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainState:
        """Read :meth:`to_json` output (unknown keys, e.g. from newer files, are skipped)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"model"}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`rsfm.train` returns.

    Attributes:
        run_dir: The run directory.
        metric: Name of the validation metric that picks the best checkpoint (``miou``...).
        best_metric: Its best value (None when no finite value was seen).
        best_epoch: Epoch (1-based) of the best checkpoint.
        history: One row per epoch (``train_loss``, ``val_*``, ``lr``, ...).
        global_step: Optimizer steps done.
        time: Wall time of this call in seconds.
        num_processes: Data-parallel processes.
        test_metrics: ``test_*`` metrics of the best checkpoint when ``data.test`` is set.
        stop_reason: ``max_steps``, ``max_time``, ``early_stopping`` or None (all epochs ran).
    """

    run_dir: Path
    metric: str
    best_metric: float | None
    best_epoch: int | None
    history: list[dict[str, Any]]
    global_step: int
    time: float
    num_processes: int
    test_metrics: dict[str, Any] | None = None
    stop_reason: str | None = None


def improved(value: float | None, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best``; a missing or non-finite value never does."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta
