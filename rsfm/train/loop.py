"""The training loop: one code path for ``accelerate launch -m rsfm.train RECIPE``,
``rsfm train RECIPE`` and ``rsfm.train(recipe)``.

:func:`train` reads top to bottom: check everything that needs no compute (the InputSpec is
resolved once here and every later step reads it), prepare the run directory, build data and
model, then epochs of :func:`~rsfm.train.engine.train_one_epoch` and
:func:`~rsfm.train.engine.evaluate`, saving through :class:`~rsfm.train.run_dir.RunDir`, and
finally the best checkpoint on the test split, scored by :func:`rsfm.evaluate` (predict's tiling).

Shape of accelerate's examples: the ``Accelerator`` is created inside :func:`train`, the seed is
set before anything is built, everything is prepared once, ``gather_for_metrics`` collects
evaluation results, tqdm runs on the main process only, and ``end_training`` closes the run.
``data.batch_size`` is the *global* batch (``split_batches=True``): the same recipe gives the
same optimisation with 1 or N processes. The shuffle depends only on ``(seed, epoch)`` and every
epoch re-seeds the RNGs with ``seed + epoch``, so resuming from an end-of-epoch checkpoint
reproduces the uninterrupted run. Status lines go to the ``rsfm.train.loop`` logger (the CLI
shows them).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsfm.datasets import Datasets, build_datasets, check_datasets
from rsfm.evaluation import evaluate as evaluate_saved
from rsfm.hub import WEIGHTS_NAME, push
from rsfm.lora import count_parameters
from rsfm.preflight import preflight
from rsfm.recipe import load_recipe
from rsfm.schema import Recipe
from rsfm.spec import InputSpec
from rsfm.train import checkpoint as ck
from rsfm.train.budget import Budget, format_duration
from rsfm.train.data import Loaders, build_loaders
from rsfm.train.engine import Callback, EpochStats, Fit, evaluate, train_one_epoch
from rsfm.train.optim import build_optimizer, build_scheduler
from rsfm.train.plots import plot_confusion, plot_history, plot_validation_predictions
from rsfm.train.run_dir import RunDir
from rsfm.train.setup import (
    build_model,
    make_accelerator,
    make_trainable,
    prepare,
    start_trackers,
)
from rsfm.train.state import NonFiniteLossError, TrainResult, TrainState, improved
from rsfm.train.tasks import Task, build_task
from rsfm.train.unfreeze import UnfreezeScheduler

__all__ = ["NonFiniteLossError", "TrainResult", "TrainState", "build_model", "train"]

log = logging.getLogger(__name__)


def train(
    recipe: str | os.PathLike[str] | Mapping[str, Any] | Recipe,
    overrides: Sequence[str] = (),
    *,
    resume: bool | str | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train a recipe.

    Args:
        recipe: A recipe file, mapping or :class:`~rsfm.schema.Recipe`.
        overrides: ``key.path=value`` overrides.
        resume: ``True`` (must resume), ``"auto"`` (resume when a checkpoint exists), ``False``;
            ``None`` = the recipe's ``train.resume``.
        callbacks: ``fn(event, state)`` called on ``"step"`` (after each optimizer step) and
            ``"epoch"`` (after each epoch's evaluation and checkpoint). Exceptions propagate.

    Raises:
        ConfigError: Invalid recipe, impossible model options, an output folder that cannot be
            written or that another training is writing, a run in the way, a resume that does
            not match the run or of a run that is finished (all before any compute).
        NonFiniteLossError: The loss became NaN/inf (names the step and the last checkpoint).
    """
    t_call = time.perf_counter()
    recipe = load_recipe(recipe, overrides)
    spec = preflight(recipe)  # the InputSpec, resolved once; nothing is built or read yet
    run = RunDir(recipe.output_dir())
    try:
        return _train(recipe, spec, run, resume, callbacks, t_call)
    finally:
        run.unlock()  # the run folder's lock (taken by the main process): free for a resume


def _train(recipe: Recipe, spec: InputSpec, run: RunDir, resume: bool | str | None,
           callbacks: Sequence[Callback], t_call: float) -> TrainResult:
    """:func:`train` once the recipe is read and checked (``run`` is unlocked afterwards)."""
    from accelerate.utils import set_seed

    tc = recipe.train
    accelerator = make_accelerator(recipe, run.path)
    main = run.main = accelerator.is_main_process
    set_seed(tc.seed, deterministic=tc.deterministic)
    ckpt = run.prepare(recipe, tc.resume if resume is None else resume, spec)

    with accelerator.main_process_first():
        datasets = build_datasets(recipe, spec)
        data_lines = check_datasets(datasets)  # labels that do not fit the classes: stop now
    loaders = build_loaders(datasets, recipe.data, tc.seed, accelerator.num_processes)
    model = make_trainable(build_model(recipe, spec), recipe)  # checks the unfreeze modules too
    # Only now, with data and model built, is the run folder written (or cleared on
    # output.overwrite): a failure above leaves the user's previous run untouched.
    accelerator.wait_for_everyone()
    run.start(recipe, resumed=ckpt is not None)
    accelerator.wait_for_everyone()
    start_trackers(accelerator, recipe)
    task = build_task(recipe.model.task, spec, loss=tc.loss, accelerator=accelerator,
                      score_threshold=recipe.eval.score_threshold)
    if main:
        log.info(_header(recipe, model, accelerator))
        for line in data_lines:
            log.info("data %s", line)
    optimizer = build_optimizer(model, tc.optimizer)
    model, optimizer, loaders = prepare(accelerator, model, optimizer, loaders, datasets, task,
                                        recipe)
    budget = Budget.from_recipe(recipe, math.ceil(len(loaders.train) / tc.grad_accum_steps))
    scheduler = build_scheduler(optimizer.optimizer, budget)
    accelerator.register_for_checkpointing(scheduler)
    raw = accelerator.unwrap_model(model)
    unfreezer = UnfreezeScheduler(tc.freeze.unfreeze, lora=recipe.lora is not None)
    state = TrainState(run_dir=str(run.path))
    if ckpt is not None:
        state = _resume(accelerator, ckpt, raw, scheduler, budget)
        _apply_resumed_lr(scheduler, tc.optimizer.lr)
        unfreezer.apply(raw, state.epoch, upto=True)
    state.run_dir, state.model = str(run.path), raw
    if main:
        log.info(budget.describe())
    fit = Fit(accelerator, model, optimizer, scheduler, task, budget, tc.clip_grad_norm,
              tc.progress, max(1, tc.log_every), callbacks, run.latest_checkpoint,
              clock_start=time.perf_counter() - state.elapsed)

    model.train()
    for epoch in range(state.epoch + 1, tc.epochs):
        if state.stopped_early or budget.exhausted(state.global_step):
            break
        _begin_epoch(epoch, tc.seed, tc.deterministic, loaders, datasets, unfreezer, raw, main)
        stats = train_one_epoch(fit, loaders.train, state, epoch)
        last = epoch == tc.epochs - 1 or stats.stop is not None
        due = loaders.val is not None and ((epoch + 1) % recipe.eval.every == 0 or last)
        val = evaluate(model, loaders.val, task, accelerator) if due else None
        row = _row(epoch, state, stats, scheduler.get_last_lr()[0], val)
        better = _update_best(state, recipe, row, val is not None, loaders.val is None)
        state.epoch, state.warmup_end = epoch, budget.warmup_end
        state.history.append(row)
        state.stop_reason = stats.stop or ("early_stopping" if state.stopped_early else None)
        final = last or state.stopped_early
        _save_epoch(run, accelerator, model, state, recipe, row, better,
                    final or (epoch + 1) % tc.checkpoint_every == 0, final)
        if main:
            log.info(_summary_line(epoch, tc.epochs, row, recipe.metric, task))
            if state.stopped_early:
                log.info("early stopping: %s did not improve for %d evaluation(s); best %.4f at "
                         "epoch %s", recipe.metric, tc.early_stopping.patience,
                         state.best_metric, state.best_epoch)
        for cb in callbacks:
            cb("epoch", state)
        if stats.stop is not None and main:
            log.info("stopped at step %d: %s reached (%s of training)", state.global_step,
                     stats.stop, format_duration(state.elapsed))

    accelerator.wait_for_everyone()
    if recipe.data.test is not None:
        state.test_metrics = _test(run, recipe, task, accelerator, raw, state)
    if main:
        _finish(run, recipe, raw, datasets, state, accelerator.device, time.perf_counter() - t_call)
    accelerator.end_training()
    metric, best = _best(recipe, state, validated=loaders.val is not None)
    return TrainResult(run.path, metric, best, state.best_epoch,
                       state.history, state.global_step, time.perf_counter() - t_call,
                       accelerator.num_processes, state.test_metrics, state.stop_reason)


def _best(recipe: Recipe, state: TrainState, validated: bool) -> tuple[str, float | None]:
    """The metric that picked the best checkpoint and its value, as reported: without validation
    data the lowest training loss did (``state.best_metric`` holds its negative when the recipe's
    metric is maximised), so it is reported as ``train_loss``, not as the recipe's metric."""
    if validated:
        return recipe.metric, state.best_metric
    row = next((h for h in state.history if h["epoch"] == state.best_epoch), None)
    return "train_loss", None if row is None else row["train_loss"]


def _header(recipe: Recipe, model: Any, accelerator: Any) -> str:
    trainable, total = count_parameters(model)
    m = recipe.model
    return (f"{recipe.name}: {m.task} {m.backbone} + {m.head}, trainable parameters "
            f"{trainable:,} / {total:,} ({100 * trainable / max(total, 1):.2f}%), "
            f"{accelerator.num_processes} process(es) on {accelerator.device}, mixed precision "
            f"{accelerator.mixed_precision}")


def _apply_resumed_lr(scheduler: Any, lr: float) -> None:
    """Give a resumed run the recipe's ``train.optimizer.lr`` (a checkpoint restores the
    optimizer's and the schedule's base rates, which would silently keep the old one)."""
    groups = scheduler.optimizer.param_groups
    scale = [g.get("lr_scale", 1.0) for g in groups]
    before = scheduler.base_lrs[0] / scale[0]
    if math.isclose(before, lr, rel_tol=1e-9):
        return
    scheduler.base_lrs = [lr * s for s in scale]
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for g, base in zip(groups, scheduler.base_lrs):
        g["initial_lr"], g["lr"] = base, base * factor
    log.warning("train.optimizer.lr: the checkpoint was trained with %g, the resumed recipe "
                "says %g; the schedule continues from step %d with %g.", before, lr,
                scheduler.last_epoch, lr)


def _resume(accelerator: Any, ckpt: Path, raw: Any, scheduler: Any, budget: Budget) -> TrainState:
    """Load a checkpoint: the full training state, or (an older checkpoint that keeps only its
    weights) the weights with a fresh optimizer and the schedule moved to the saved step."""
    state = TrainState.from_json(ck.read_state(ckpt))
    budget.elapsed, budget.warmup_end = state.elapsed, state.warmup_end
    if ck.has_training_state(ckpt):
        accelerator.load_state(str(ckpt))
    else:
        from safetensors.torch import load_file

        raw.load_state_dict(load_file(str(ckpt / WEIGHTS_NAME)))
        scheduler.last_epoch = state.global_step - 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
            scheduler.step()
        log.warning("Checkpoint '%s' keeps only its weights: the optimizer state (moments) "
                    "starts afresh; epochs, steps and the schedule continue.", ckpt)
    if accelerator.is_main_process:
        log.info("resumed from %s (epoch %d done, step %d)", ckpt, state.epoch + 1,
                 state.global_step)
    return state


def _begin_epoch(epoch: int, seed: int, deterministic: bool, loaders: Loaders,
                 datasets: Datasets, unfreezer: UnfreezeScheduler, raw: Any, main: bool) -> None:
    """Per-epoch seeding (resume-exact), shuffle, scene windows, progressive unfreezing."""
    from accelerate.utils import set_seed

    set_seed(seed + epoch, deterministic=deterministic)
    loaders.sampler.use_epoch(epoch)
    base = getattr(datasets.train, "dataset", datasets.train)  # a Subset's dataset
    if hasattr(base, "set_epoch"):
        base.set_epoch(epoch)  # random-window scene sampling: new windows per epoch
    for msg in unfreezer.apply(raw, epoch):
        if main:
            log.info("epoch %d: unfroze %s", epoch + 1, msg)
    if getattr(raw, "backbone_frozen", False) and any(
            p.requires_grad for p in raw.backbone.parameters()):
        raw.backbone_frozen = False  # partly unfrozen: let BatchNorm/drop-path train
        raw.train()


def _row(epoch: int, state: TrainState, stats: EpochStats, lr: float,
         val: Mapping[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch + 1, "step": state.global_step,
                           "train_loss": stats.train_loss, "lr": float(lr),
                           "images_per_sec": stats.images / max(stats.seconds, 1e-9),
                           "epoch_time": stats.seconds}
    row.update({f"val_{k}": v for k, v in (val or {}).items()})
    return row


def _update_best(state: TrainState, recipe: Recipe, row: Mapping[str, Any], evaluated: bool,
                 no_val: bool) -> bool:
    """Track the best score (finite values only) and early stopping; True when improved."""
    mode, es = recipe.metric_mode, recipe.train.early_stopping
    score = row.get(f"val_{recipe.metric}") if evaluated else None
    if no_val:  # no validation data: the training loss decides
        score = -row["train_loss"] if mode == "max" else row["train_loss"]
    better = improved(score, state.best_metric, mode, es.min_delta if es else 0.0)
    if better:
        state.best_metric, state.best_epoch, state.bad_evals = score, row["epoch"], 0
    elif evaluated:
        state.bad_evals += 1
    if es is not None and evaluated and state.bad_evals >= es.patience:
        state.stopped_early = True
    return better


def _save_epoch(run: RunDir, accelerator: Any, model: Any, state: TrainState, recipe: Recipe,
                row: Mapping[str, Any], better: bool, checkpoint: bool, final: bool) -> None:
    """Best weights (weights only), the resumable checkpoint, last weights, metrics, plots
    (redrawn at most every 5 minutes, and at the end: one drawing costs about a second)."""
    from accelerate.utils import DistributedType

    raw = accelerator.unwrap_model(model)
    sharded = accelerator.distributed_type == DistributedType.FSDP
    accelerator.wait_for_everyone()
    full_state = accelerator.get_state_dict(model) if sharded else None  # every rank gathers
    ckpt = None
    if checkpoint:
        ckpt = run.save_checkpoint(accelerator, state.epoch, state.to_json(), raw,
                                   recipe.output.keep_checkpoints)
    if run.main:
        if better:
            run.save_best(raw, {**row, "best_epoch": row["epoch"]}, recipe, ckpt, full_state,
                          not sharded)
        run.save_last(raw, ckpt, full_state)
        run.write_metrics(state.history)
        if recipe.output.plots and run.plots_due(final):
            plot_history(state.history, run.path / "plots")
            best = next((h for h in state.history if h["epoch"] == state.best_epoch), {})
            if "val_confusion_matrix" in best:
                plot_confusion(best["val_confusion_matrix"], raw.input_spec.class_names,
                               run.path / "plots" / "confusion_matrix.png")
    accelerator.log({k: v for k, v in row.items() if isinstance(v, (int, float))},
                    step=row["epoch"])


def _summary_line(epoch: int, epochs: int, row: Mapping[str, Any], metric: str,
                  task: Task) -> str:
    parts = [f"epoch {epoch + 1}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if row.get("val_loss") is not None:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    for key in task.summary:
        if row.get(f"val_{key}") is not None:
            parts.append(f"{key}{'*' if key == metric else ''} {row[f'val_{key}']:.4f}")
    parts += [f"lr {row['lr']:.2e}", f"{row['images_per_sec']:.1f} img/s",
              f"{row['epoch_time']:.1f}s"]
    return " | ".join(parts)


def _test(run: RunDir, recipe: Recipe, task: Task, accelerator: Any, raw: Any,
          state: TrainState) -> dict[str, Any] | None:
    """The best checkpoint (as saved) on ``data.test``, scored by :func:`rsfm.evaluate` with the
    tiling and blending of ``rsfm predict`` (the numbers of the maps users get; validation scores
    the training tiles). Runs on the main process and records ``test_*`` metrics in
    ``metrics.jsonl`` (a ``split: test`` row), ``config.json`` (so the Hub card shows them) and
    ``evaluation/test/``; every process returns them."""
    out: dict[str, Any] | None = None
    error: Exception | None = None
    try:
        if run.main:
            out = _score_test(run, recipe, task, accelerator, raw, state)
    except Exception as err:  # noqa: BLE001 - re-raised below, after the other ranks heard of it
        error = err
    if accelerator.num_processes > 1:  # the other ranks wait here for the result (or the error)
        from accelerate.utils import broadcast_object_list

        box = [out, f"{type(error).__name__}: {error}" if error is not None else None]
        broadcast_object_list(box, from_process=0)
        out = box[0]
        if box[1] is not None and error is None:
            raise RuntimeError(f"The test evaluation failed on the main process: {box[1]}")
    if error is not None:
        raise error
    return out


def _score_test(run: RunDir, recipe: Recipe, task: Task, accelerator: Any, raw: Any,
                state: TrainState) -> dict[str, Any]:
    """Main process: evaluate the saved best weights (else the last ones), record, log."""
    best = (run.path / WEIGHTS_NAME).is_file()
    if not best:
        log.warning("No best checkpoint (no finite validation score): the test split is "
                    "evaluated with the last weights.")
    result = evaluate_saved(run.path if best else raw, recipe, split="test",
                            out=run.path / "evaluation" / "test",
                            device=str(accelerator.device), progress=recipe.train.progress)
    which = "best" if best else "last"
    out = {"split": "test", "weights": which,
           "epoch": state.best_epoch if best else state.epoch + 1,
           **{f"test_{k}": v for k, v in result.metrics.items()}}
    run.write_metrics(state.history, out)
    if best:
        run.record_test_metrics({k: v for k, v in out.items() if k.startswith("test_")})
    shown = [f"{k} {result.metrics[k]:.4f}" for k in task.summary
             if result.metrics.get(k) is not None]
    log.info("test (%s weights, epoch %s, %d images): %s; details in %s", which,
             out["epoch"], result.metrics["images"], " | ".join(shown), result.out_dir)
    return out


def _finish(run: RunDir, recipe: Recipe, raw: Any, datasets: Datasets, state: TrainState,
            device: Any, seconds: float) -> None:
    """Prediction plot, Hub upload, and the run directory's size."""
    if (recipe.output.plots and recipe.model.task == "segmentation" and datasets.val is not None
            and len(datasets.val) and state.history):  # type: ignore[arg-type]
        plot_validation_predictions(raw, datasets.val, run.path / "plots" / "predictions.png",
                                    device)
    if recipe.output.push_to_hub:
        push(run.path, recipe.output.push_to_hub, private=recipe.output.hub_private,
             datasets=recipe.output.hub_datasets)
    size = run.size()
    checkpoints = sum(f.stat().st_size for c in ck.complete_checkpoints(run.path)
                      for f in c.rglob("*") if f.is_file())
    log.info("run directory %s: %.1f MB (checkpoints %.1f MB), %s", run.path, size / 1e6,
             checkpoints / 1e6, format_duration(seconds))

