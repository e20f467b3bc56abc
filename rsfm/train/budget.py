"""How long a run is, and the learning-rate schedule defined over it.

A run ends at ``train.epochs``, ``train.max_steps`` or ``train.max_time`` (wall clock), whichever
comes first. The schedule (linear warm-up, then cosine/linear decay or constant) is defined over
that budget: its decay progress is the larger of the step progress and, with a time budget, the
time progress, so the learning rate reaches its final value exactly when the run stops, whichever
limit stops it. Without ``max_time`` the schedule is a pure function of the step (bit-exact
resume).

The warm-up is clamped to half of the run with a warning: a warm-up given in epochs is counted in
the epoch the run actually has (a ``max_steps`` run shorter than one epoch does not warm up over
a whole epoch), and with a time budget the warm-up also ends when half of the time has passed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from rsfm.schema import Recipe, SchedulerConfig

__all__ = ["Budget", "format_duration", "shape"]

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"``, ``90`` -> ``"1m30s"``, ``2.54`` -> ``"2.5s"``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)


def shape(progress: float, name: str = "cosine", min_ratio: float = 0.0) -> float:
    """LR multiplier after the warm-up at decay progress ``progress`` in [0, 1]."""
    progress = min(1.0, max(0.0, progress))
    if name == "constant":
        return 1.0
    if name == "linear":
        return min_ratio + (1 - min_ratio) * (1 - progress)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Budget:
    """The run's length and its schedule.

    Attributes:
        epochs: ``train.epochs``.
        steps_per_epoch: Optimizer steps per epoch.
        max_steps: ``train.max_steps`` (None: epochs only).
        max_time: ``train.max_time`` in seconds (None: no time budget).
        warmup: Warm-up steps (after clamping).
        schedule: ``cosine``, ``linear`` or ``constant``.
        min_ratio: Final LR as a fraction of the peak.
        elapsed: Training wall time so far (set by the loop; the same on every process).
        warmup_end: ``[step, elapsed]`` where the warm-up ended (kept in the train state).
    """

    epochs: int
    steps_per_epoch: int
    max_steps: int | None = None
    max_time: float | None = None
    warmup: int = 0
    schedule: str = "cosine"
    min_ratio: float = 0.0
    elapsed: float = 0.0
    warmup_end: list[float] | None = None

    @classmethod
    def from_recipe(cls, recipe: Recipe, steps_per_epoch: int) -> Budget:
        """The budget of a recipe's ``train:`` section (warns when it clamps the warm-up)."""
        tc = recipe.train
        budget = cls(tc.epochs, max(1, steps_per_epoch), tc.max_steps, recipe.max_seconds,
                     schedule=tc.scheduler.name, min_ratio=tc.scheduler.min_lr_ratio)
        budget.warmup = budget._clamped_warmup(tc.scheduler)
        return budget

    @property
    def total_steps(self) -> int:
        """Optimizer steps the run has when no time limit stops it first."""
        steps = self.epochs * self.steps_per_epoch
        return min(steps, self.max_steps) if self.max_steps is not None else steps

    def _clamped_warmup(self, cfg: SchedulerConfig) -> int:
        if cfg.warmup_steps is not None:
            asked, unit = cfg.warmup_steps, f"{cfg.warmup_steps} steps"
        else:
            epoch = min(self.steps_per_epoch, self.total_steps)  # the epoch this run really has
            asked = round(cfg.warmup_epochs * epoch)
            unit = f"{cfg.warmup_epochs:g} epoch(s) = {asked} steps"
        limit = self.total_steps // 2
        if asked > limit:
            log.warning("train.scheduler warm-up (%s) is longer than half of this run (%d steps); "
                        "clamped to %d steps so the schedule can decay.", unit,
                        self.total_steps, limit)
            return limit
        return asked

    def lr_factor(self, step: int) -> float:
        """LR multiplier for optimizer step ``step`` (0-based), at the current ``elapsed``."""
        if self.warmup_end is None:
            time_up = self.max_time is not None and self.elapsed >= self.max_time / 2
            if step < self.warmup and not time_up:
                return (step + 1) / self.warmup
            if step < self.warmup:
                log.warning("Warm-up ended at step %d of %d: half of train.max_time (%s) has "
                            "passed.", step, self.warmup, format_duration(self.max_time or 0))
            self.warmup_end = [step, self.elapsed]
        return shape(self.progress(step), self.schedule, self.min_ratio)

    def progress(self, step: int) -> float:
        """Decay progress in [0, 1]: steps, or time when it runs out first."""
        start = self.warmup if self.warmup_end is None else min(self.warmup, self.warmup_end[0])
        by_steps = (step - start) / max(1, self.total_steps - start)
        by_time = 0.0
        if self.max_time is not None:
            t0 = self.warmup_end[1] if self.warmup_end is not None else 0.0
            by_time = (self.elapsed - t0) / max(1e-9, self.max_time - t0)
        return min(1.0, max(by_steps, by_time, 0.0))

    def exhausted(self, step: int) -> str | None:
        """``max_steps`` / ``max_time`` when that limit is reached, else None."""
        if self.max_steps is not None and step >= self.max_steps:
            return "max_steps"
        if self.max_time is not None and self.elapsed >= self.max_time:
            return "max_time"
        return None

    def describe(self) -> str:
        """One line for the log: the limits and what the schedule decays over."""
        limits = [f"{self.epochs} epochs of {self.steps_per_epoch} steps"]
        if self.max_steps is not None:
            limits.append(f"max_steps {self.max_steps}")
        if self.max_time is not None:
            limits.append(f"max_time {format_duration(self.max_time)}")
        over = f"{self.total_steps} steps"
        if self.max_time is not None:
            over = f"{format_duration(self.max_time)} of wall time or {over}, whichever ends first"
        decay = ("constant" if self.schedule == "constant" else
                 f"{self.schedule} decay to {self.min_ratio:g} x lr over {over}")
        first = " (whichever comes first)" if len(limits) > 1 else ""
        return (f"budget: {', '.join(limits)}{first}; schedule: warm-up {self.warmup} steps, "
                f"then {decay}")
