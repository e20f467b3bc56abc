"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's ``lr_find``).

A copy of the model trains for a few dozen steps while the learning rate grows exponentially from
``start_lr`` to ``end_lr``. The loss is smoothed (exponential moving average with bias
correction); the test stops early when the smoothed loss exceeds ``diverge`` times its minimum
or becomes non-finite. The suggestion is the learning rate where the smoothed loss falls
fastest (steepest descent in log-lr) before its minimum, capped at a tenth of the learning rate
at the minimum (the "minimum / 10" rule, also the answer when the curve is too short for a
slope): a steep drop right at the minimum is already too fast to train with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsfm.errors import ConfigError
from rsfm.io import save_figure
from rsfm.train.engine import to_device
from rsfm.train.tasks import Task

__all__ = ["LRFindResult", "lr_range_test", "plot_lr_find", "suggest_lr"]


@dataclass(frozen=True)
class LRFindResult:
    """What the range test found (``float(result)`` is the suggestion).

    Attributes:
        suggestion: The suggested learning rate.
        steepest: Learning rate of the steepest descent of the smoothed loss (None: too few
            points before the minimum).
        min_loss_lr: Learning rate at the smoothed loss's minimum.
        lrs: Learning rate of each step.
        losses: Raw loss of each step.
        smoothed: Smoothed loss of each step.
        stop: Why the test ended: ``end_lr``, ``diverged`` or ``non_finite``.
        plot: The PNG (loss against learning rate, suggestion marked), or None.
    """

    suggestion: float
    steepest: float | None
    min_loss_lr: float
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    stop: str
    plot: Path | None = None

    def __float__(self) -> float:
        return self.suggestion

    def _repr_png_(self) -> bytes | None:
        return self.plot.read_bytes() if self.plot is not None and self.plot.is_file() else None

    def __repr__(self) -> str:
        steep = "none" if self.steepest is None else f"{self.steepest:.2e}"
        return (f"LRFindResult(suggestion={self.suggestion:.2e}, steepest={steep}, "
                f"min_loss_lr={self.min_loss_lr:.2e}, steps={len(self.lrs)}, stop={self.stop!r}, "
                f"plot={str(self.plot) if self.plot else None!r})")


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ConfigError("lr_find: the training data yielded no batch.")


def lr_range_test(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    task: Task,
    optimizer: torch.optim.Optimizer,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 50,
    beta: float = 0.9,
    diverge: float = 4.0,
    clip_grad_norm: float | None = None,
    device: torch.device | str = "cpu",
) -> tuple[list[float], list[float], list[float], str]:
    """Train ``model`` (changed in place: pass a copy) with exponentially growing learning rates.

    Args:
        model: The model (moved to ``device``, left in train mode).
        loader: Training batches (cycled when shorter than ``num_steps``).
        task: Gives the loss of a batch.
        optimizer: Its parameter groups' ``lr_scale`` (default 1) multiply the learning rate.
        start_lr: First learning rate.
        end_lr: Last learning rate.
        num_steps: Steps from ``start_lr`` to ``end_lr``.
        beta: Smoothing of the loss (exponential moving average).
        diverge: Stop when the smoothed loss exceeds this many times its minimum.
        clip_grad_norm: Gradient clipping as in training (None: none).
        device: Where to run.

    Returns:
        ``(lrs, losses, smoothed losses, stop reason)``.

    Raises:
        ConfigError: Bad arguments, or no batch.
    """
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"lr_find: need 0 < start_lr < end_lr (got {start_lr}, {end_lr}).")
    if num_steps < 5:
        raise ConfigError(f"lr_find: num_steps must be >= 5 (got {num_steps}).")
    if not 0 <= beta < 1:
        raise ConfigError(f"lr_find: beta must be in [0, 1) (got {beta}).")
    model.to(device).train()
    if hasattr(task, "criterion"):
        task.criterion = task.criterion.to(device)  # type: ignore[attr-defined]
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    ratio = end_lr / start_lr
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, stop = 0.0, math.inf, "end_lr"
    batches = _cycle(loader)
    for i in range(num_steps):
        lr = start_lr * ratio ** (i / (num_steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        loss = task.loss(model, to_device(next(batches), device))
        value = float(loss.detach())
        if not math.isfinite(value):
            stop = "non_finite"
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        optimizer.step()
        avg = beta * avg + (1 - beta) * value
        smooth = avg / (1 - beta ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        best = min(best, smooth)
        if i > 2 and smooth > diverge * best:
            stop = "diverged"
            break
    optimizer.zero_grad(set_to_none=True)
    if len(lrs) < 2:
        raise ConfigError(f"lr_find: the loss was not finite from the first step (lr {start_lr:.1e}"
                          "); check the inputs' normalisation and nodata, or lower start_lr.")
    return lrs, losses, smoothed, stop


def suggest_lr(lrs: list[float], smoothed: list[float]) -> tuple[float, float | None, float]:
    """``(suggestion, steepest, min_loss_lr)`` of a range test (see the module docstring).

    The steepest descent is searched after the first tenth of the curve (the moving average is
    still settling there) and before the minimum.
    """
    loss = np.asarray(smoothed, dtype=np.float64)
    log_lr = np.log10(np.asarray(lrs, dtype=np.float64))
    i_min = int(np.argmin(loss))
    min_lr = float(lrs[i_min])
    start = max(1, len(loss) // 10)
    steepest = None
    if i_min - start >= 2:
        grad = np.gradient(loss[: i_min + 1], log_lr[: i_min + 1])
        j = start + int(np.argmin(grad[start:i_min]))
        if grad[j] < 0:
            steepest = float(lrs[j])
    suggestion = min_lr / 10 if steepest is None else min(steepest, min_lr / 10)
    return suggestion, steepest, min_lr


def plot_lr_find(result: LRFindResult, path: str | Path) -> Path:
    """Loss against learning rate (log scale), the suggestion marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed loss")
    ax.axvline(result.suggestion, color="C3", ls="--",
               label=f"suggestion {result.suggestion:.1e}")
    if result.steepest is None or result.steepest != result.suggestion:
        ax.axvline(result.min_loss_lr, color="0.4", ls=":",
                   label=f"minimum at {result.min_loss_lr:.1e}")
    ax.set_xscale("log")
    top = max(result.smoothed[0], min(result.smoothed)) * 1.5
    bottom = min(min(result.losses), min(result.smoothed))
    if math.isfinite(top) and top > bottom:
        ax.set_ylim(bottom - 0.05 * (top - bottom), top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"learning-rate range test ({len(result.lrs)} steps, stop: {result.stop})")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100, bbox_inches="tight")
    return path
