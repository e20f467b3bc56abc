"""One epoch of training and one evaluation pass.

:func:`evaluate` is the evaluation used for validation, for the test split at the end of
training, and by anything else that scores a model on a loader: it runs ``task.eval_step`` on
every batch, gathers the per-sample results across processes exactly once
(``gather_for_metrics`` drops the distributed sampler's padding) and returns the task's metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rsfm.train.budget import Budget
from rsfm.train.state import NonFiniteLossError, TrainState
from rsfm.train.tasks import Task

__all__ = ["EpochStats", "Fit", "evaluate", "to_device", "train_one_epoch"]

Callback = Callable[[str, TrainState], None]


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Tensors of a (nested) batch moved to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def evaluate(model: nn.Module, loader: Iterable[Mapping[str, Any]], task: Task,
             accelerator: Any = None) -> dict[str, Any]:
    """Metrics of ``model`` on every batch of ``loader`` (model left in its previous mode).

    Args:
        model: The model (possibly wrapped by ``accelerator.prepare``).
        loader: Batches as :func:`rsfm.data.collate.collate_fn` makes them; an
            accelerate-prepared loader when ``accelerator`` is given (already on the device).
        task: What to compute (:func:`rsfm.train.tasks.build_task`).
        accelerator: Gathers the results of every process; None for a single process (batches
            are then moved to the model's device here).

    Returns:
        The task's metrics (``miou``, ``iou_<class>``, ``loss``, ``confusion_matrix``, ...).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    acc = task.metrics()
    with torch.no_grad():
        for batch in loader:
            if accelerator is None:
                batch = to_device(batch, device)
            out = task.eval_step(model, batch)
            if accelerator is not None:
                out = accelerator.gather_for_metrics(out, use_gather_object=task.gather_objects)
            acc.update(out)
    model.train(was_training)
    return acc.compute()


@dataclass
class Fit:
    """What one training epoch works with (prepared by accelerate)."""

    accelerator: Any
    model: nn.Module
    optimizer: Any
    scheduler: Any
    task: Task
    budget: Budget
    clip_grad_norm: float | None = None
    progress: bool = True
    log_every: int = 10
    callbacks: Sequence[Callback] = ()
    last_checkpoint: Callable[[], str] = field(default=lambda: "none yet")
    clock_start: float = 0.0  # perf_counter() at the run's (virtual) start: elapsed = now - it


@dataclass
class EpochStats:
    """Summary of one training epoch (``train_loss`` averaged over processes)."""

    train_loss: float
    images: int
    seconds: float
    stop: str | None = None  # max_steps / max_time when the budget ended the epoch


def _check_step(fit: Fit, loss: torch.Tensor, state: TrainState, epoch: int) -> None:
    """One host sync per step, after the update: was the loss finite on every process, and the
    run's elapsed time (averaged over processes, so every process takes the same schedule and
    stop decisions). A non-finite step stops the run; the model in memory is then discarded and
    the last checkpoint on disk is intact."""
    acc = fit.accelerator
    flags = torch.stack([(~torch.isfinite(loss.detach())).float(),
                         torch.tensor(time.perf_counter() - fit.clock_start, device=loss.device),
                         loss.detach().float()])
    if acc.num_processes > 1:
        flags = acc.reduce(flags, reduction="mean")
    bad, elapsed, value = flags.tolist()
    fit.budget.elapsed = state.elapsed = elapsed
    if bad > 0:
        lr = fit.scheduler.get_last_lr()[0]
        raise NonFiniteLossError(
            f"Non-finite loss ({value}) at epoch {epoch + 1}, optimizer step {state.global_step + 1}"
            f", learning rate {lr:.3g}. Training stopped; the last good checkpoint is "
            f"{fit.last_checkpoint()}. Check the inputs: NaN/inf pixels that are not declared "
            "nodata (set data.nodata), normalisation statistics that do not fit the data "
            "(data.normalization mean/std, value_scale), or lower train.optimizer.lr / enable "
            "train.clip_grad_norm."
        )
    state.last_loss = value


def train_one_epoch(fit: Fit, loader: Iterable[Mapping[str, Any]], state: TrainState,
                    epoch: int) -> EpochStats:
    """Train one epoch (or until the budget runs out); callbacks get ``"step"`` events.

    Raises:
        NonFiniteLossError: The loss became NaN/inf (names the step and the last checkpoint).
    """
    from tqdm.auto import tqdm

    acc, model, optimizer, budget = fit.accelerator, fit.model, fit.optimizer, fit.budget
    t0 = time.perf_counter()
    seen, n_loss, stop = 0, 0, None
    loss_sum = torch.zeros((), device=acc.device)
    bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{budget.epochs}",  # type: ignore[arg-type]
               disable=not (acc.is_local_main_process and fit.progress), leave=False,
               dynamic_ncols=True)
    for batch in loader:
        with acc.accumulate(model):
            loss = fit.task.loss(model, batch)
            acc.backward(loss)
            if acc.sync_gradients and fit.clip_grad_norm:
                acc.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                    fit.clip_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        _check_step(fit, loss, state, epoch)
        loss_sum += loss.detach()
        n_loss += 1
        seen += fit.task.batch_size(batch)
        bar.update(1)
        if not acc.sync_gradients:
            continue
        if not acc.optimizer_step_was_skipped:
            fit.scheduler.step()
        state.global_step += 1
        if state.global_step % fit.log_every == 0 or bar.n == 1:
            rate = seen * acc.num_processes / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{state.last_loss:.4f}", lr=f"{fit.scheduler.get_last_lr()[0]:.2e}",
                            ips=f"{rate:.1f}")
        for cb in fit.callbacks:
            cb("step", state)
        stop = budget.exhausted(state.global_step)
        if stop:
            break
    bar.close()
    train_loss = acc.reduce(loss_sum / max(n_loss, 1), reduction="mean")
    return EpochStats(float(train_loss), seen * acc.num_processes, time.perf_counter() - t0, stop)
