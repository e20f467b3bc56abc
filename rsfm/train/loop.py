"""The training loop: one code path for ``accelerate launch -m rsfm.train RECIPE``,
``rsfm train RECIPE`` and ``rsfm.train(recipe)``.

Shape of accelerate's examples: the ``Accelerator`` is created inside :func:`train`, the seed is
set before anything is built, everything is prepared once, ``accelerator.accumulate`` +
``accelerator.backward`` drive the steps, ``gather_for_metrics`` collects validation results
(no duplicated samples from the distributed sampler padding), tqdm runs on the main process only,
and ``end_training`` closes the run.

``data.batch_size`` is the *global* batch (``split_batches=True``): the same recipe gives the
same optimisation with 1 or N processes. The shuffle depends only on ``(seed, epoch)`` and every
epoch re-seeds the RNGs with ``seed + epoch``, so resuming from an end-of-epoch checkpoint
reproduces the uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rsfm.errors import ConfigError, RsfmError
from rsfm.io import atomic_write_text
from rsfm.recipe import Recipe, load_recipe, recipe_to_yaml

__all__ = ["NonFiniteLossError", "TrainState", "build_model", "train"]

log = logging.getLogger(__name__)

Callback = Callable[[str, "TrainState"], None]


class NonFiniteLossError(RsfmError, FloatingPointError):
    """The loss became NaN or infinite: training stops instead of learning garbage."""


@dataclasses.dataclass
class TrainState:
    """What the loop knows; saved with every checkpoint (``trainer_state.json``)."""

    epoch: int = -1  # last completed epoch
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    run_dir: str = ""
    last_loss: float | None = None
    model: Any = dataclasses.field(default=None, repr=False, compare=False)  # for callbacks

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "model"}


def build_model(recipe: Recipe) -> nn.Module:
    """The model of a recipe (``rsfm.create_model``), with class names attached."""
    from rsfm.models.factory import create_model

    cfg = recipe.model
    if cfg.classes is None and recipe.data.classes is not None:
        cfg = dataclasses.replace(cfg, classes=tuple(recipe.data.classes))
    return create_model(cfg)


def _collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from rsfm.data.collate import collate_fn

    return collate_fn([{k: v for k, v in s.items() if k != "meta"} for s in batch])


def _det_targets(batch: Mapping[str, Any]) -> list[dict[str, torch.Tensor]]:
    # rsfm data labels are 0-based class ids; torchvision detectors reserve 0 for background
    return [{"boxes": b.float(), "labels": lab.long() + 1}
            for b, lab in zip(batch["boxes"], batch["labels"])]


def _seg_logits(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(out, Mapping):
        return out["out"], out.get("aux")
    return out, None


def _fit(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if logits.shape[-2:] != tuple(size):
        logits = torch.nn.functional.interpolate(logits, size=tuple(size), mode="bilinear",
                                                 align_corners=False)
    return logits


def _summary_line(epoch: int, epochs: int, row: Mapping[str, Any], metric: str) -> str:
    parts = [f"epoch {epoch + 1}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if row.get("val_loss") is not None:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    for k in ("val_miou", "val_macro_f1", "val_accuracy", "val_map50", "val_map"):
        if k in row:
            star = "*" if k == f"val_{metric}" else ""
            parts.append(f"{k.removeprefix('val_')}{star} {row[k]:.4f}")
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{row['images_per_sec']:.1f} img/s")
    parts.append(f"{row['epoch_time']:.1f}s")
    return " | ".join(parts)


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    import csv
    import io


    flat = [{k: v for k, v in h.items() if not isinstance(v, (dict, list))} for h in history]
    atomic_write_text(run_dir / "metrics.jsonl",
                      "".join(json.dumps(h, default=float) + "\n" for h in history))
    keys: list[str] = []
    for h in flat:
        keys += [k for k in h if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())


def _improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _prepare_run_dir(recipe: Recipe, run_dir: Path, resume: bool | str) -> Path | None:
    """Decide fresh start vs resume; returns the checkpoint to resume from (or None)."""
    from rsfm.train.checkpoint import find_latest_checkpoint

    ckpt = find_latest_checkpoint(run_dir)
    if resume is True and ckpt is None:
        raise ConfigError(f"--resume: no complete checkpoint in '{run_dir / 'checkpoints'}'.")
    if resume and ckpt is not None:
        return ckpt
    leftovers = [p for p in ("checkpoints", "metrics.jsonl", "model.safetensors")
                 if (run_dir / p).exists()]
    if leftovers and not recipe.output.overwrite:
        raise ConfigError(
            f"Output directory '{run_dir}' already holds a run ({', '.join(leftovers)}). "
            "Resume it with --resume (train.resume=auto), choose another output.dir, or set "
            "output.overwrite=true."
        )
    return None


def _clear_run_dir(run_dir: Path) -> None:
    for name in ("checkpoints", "adapter", "plots", "tensorboard"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in ("metrics.jsonl", "metrics.csv", "model.safetensors", "last_model.safetensors",
                 "config.json"):
        (run_dir / name).unlink(missing_ok=True)


def train(
    recipe: str | os.PathLike[str] | Mapping[str, Any] | Recipe,
    overrides: Sequence[str] = (),
    *,
    resume: bool | str | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train a recipe. Returns ``{"run_dir", "best_metric", "best_epoch", "metric", "history"}``.

    Args:
        recipe: A recipe file, mapping or :class:`~rsfm.recipe.Recipe`.
        overrides: ``key.path=value`` overrides.
        resume: ``True`` (must resume), ``"auto"`` (resume when a checkpoint exists), ``False``;
            ``None`` = the recipe's ``train.resume``.
        callbacks: ``fn(event, state)`` called on ``"step"`` (after each optimizer step) and
            ``"epoch"`` (after each epoch's evaluation and checkpoint). Exceptions propagate.

    Raises:
        ConfigError: invalid recipe or output directory conflict.
        NonFiniteLossError: the loss became NaN/inf (names the step, the learning rate).
    """
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from rsfm.train import checkpoint as ck
    from rsfm.train.data import EpochSampler, build_datasets
    from rsfm.train.losses import build_loss
    from rsfm.train.metrics import ConfusionMetrics, DetectionMAP, per_sample_confusion
    from rsfm.train.optim import build_optimizer, build_scheduler
    from rsfm.train.unfreeze import UnfreezeScheduler, freeze_backbone

    recipe = load_recipe(recipe, overrides)
    tc = recipe.train
    resume = tc.resume if resume is None else resume
    kwargs: dict[str, Any] = {}
    if tc.mixed_precision is not None:
        kwargs["mixed_precision"] = tc.mixed_precision
    # `accelerate launch --multi_gpu` (torchrun) on a machine without GPUs: run DDP on CPU/gloo
    # (`--cpu --num_processes N` only starts several processes through mpirun).
    if int(os.environ.get("LOCAL_RANK", "-1")) != -1 and not torch.cuda.is_available():
        kwargs["cpu"] = True
    # Heads may not use every neck level (FCN takes one), so DDP must tolerate unused parameters.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(
        kwargs_handlers=[ddp],
        gradient_accumulation_steps=tc.grad_accum_steps,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        step_scheduler_with_optimizer=False,
        **kwargs,
    )
    set_seed(tc.seed, deterministic=tc.deterministic)
    main = accelerator.is_main_process
    run_dir = recipe.output_dir().resolve()
    ckpt = _prepare_run_dir(recipe, run_dir, resume)
    accelerator.wait_for_everyone()
    if main:
        if ckpt is None and recipe.output.overwrite:
            _clear_run_dir(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "recipe.yaml", recipe_to_yaml(recipe))
    accelerator.wait_for_everyone()

    # ---- data
    with accelerator.main_process_first():
        train_ds, val_ds, meta = build_datasets(recipe)
    task = recipe.model.task
    classes = list(recipe.classes)
    k = recipe.model.num_classes
    d = recipe.data
    if d.batch_size % accelerator.num_processes:
        raise ConfigError(f"data.batch_size ({d.batch_size}) is the global batch and must be "
                          f"divisible by the number of processes ({accelerator.num_processes}).")
    sampler = EpochSampler(len(train_ds), tc.seed)
    train_loader = torch.utils.data.DataLoader(
        train_ds, batch_size=d.batch_size, sampler=sampler, num_workers=d.num_workers,
        collate_fn=_collate, drop_last=len(train_ds) > d.batch_size,
        persistent_workers=d.num_workers > 0,
    )
    val_loader = None
    if val_ds is not None and len(val_ds):
        ebs = d.eval_batch_size or d.batch_size
        ebs = max(accelerator.num_processes, ebs - ebs % accelerator.num_processes)
        val_loader = torch.utils.data.DataLoader(val_ds, batch_size=ebs, shuffle=False,
                                                 num_workers=d.num_workers, collate_fn=_collate)

    # ---- model
    model = build_model(recipe)
    if tc.freeze.backbone:
        model.freeze_backbone() if hasattr(model, "freeze_backbone") else freeze_backbone(model)
    if recipe.lora is not None:
        from rsfm.lora import apply_lora

        lc = recipe.lora
        apply_lora(model, lc.r, lc.alpha, lc.dropout, lc.target_modules, lc.bias)
    from rsfm.lora import count_parameters

    trainable, total = count_parameters(model)
    accelerator.print(f"[rsfm] {recipe.name}: {task} {recipe.model.backbone} + {recipe.model.head}"
                      f", {len(train_ds)} train / {len(val_ds) if val_ds is not None else 0} val "
                      f"samples, trainable parameters {trainable:,} / {total:,} "
                      f"({100 * trainable / max(total, 1):.2f}%), {accelerator.num_processes} "
                      f"process(es) on {accelerator.device}, mixed precision "
                      f"{accelerator.mixed_precision}")
    unfreezer = UnfreezeScheduler(tc.freeze.unfreeze, lora=recipe.lora is not None)
    criterion = None
    if task != "detection":
        lo = tc.loss
        criterion = build_loss(lo.name, ignore_index=d.ignore_index,
                               class_weights=lo.class_weights, dice_weight=lo.dice_weight,
                               focal_gamma=lo.focal_gamma, label_smoothing=lo.label_smoothing)
        criterion = criterion.to(accelerator.device)
    optimizer = build_optimizer(model, tc.optimizer)
    # DDP registers only parameters that require grad when it wraps the model; one frozen then
    # would never be all-reduced after a progressive unfreeze (ranks would drift apart). So every
    # parameter that may be unfrozen is wrapped as trainable and frozen again right after; with
    # find_unused_parameters=True, DDP treats it as unused while it is frozen.
    refreeze: list[torch.nn.Parameter] = []
    if accelerator.num_processes > 1 and tc.freeze.unfreeze:
        refreeze = [p for n, p in model.named_parameters()
                    if not p.requires_grad and "base_layer" not in n]  # LoRA bases stay frozen
        for p in refreeze:
            p.requires_grad_(True)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    for p in refreeze:
        p.requires_grad_(False)
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    steps_per_epoch = max(1, math.ceil(len(train_loader) / tc.grad_accum_steps))
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    scheduler = build_scheduler(optimizer.optimizer, tc.scheduler, total_steps, steps_per_epoch)
    accelerator.register_for_checkpointing(scheduler)
    raw_model = accelerator.unwrap_model(model)

    state = TrainState(run_dir=str(run_dir))
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        saved = ck.read_state(ckpt)
        state = TrainState(**{f.name: saved[f.name] for f in dataclasses.fields(TrainState)
                              if f.name in saved and f.name != "model"})
        state.run_dir = str(run_dir)
        unfreezer.apply(raw_model, state.epoch, upto=True)
        accelerator.print(f"[rsfm] resumed from {ckpt} (epoch {state.epoch + 1} done, step "
                          f"{state.global_step})")

    state.model = raw_model
    tb = None
    if main and recipe.output.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:  # tensorboard not installed
            tb = None

    metric_name, mode = recipe.metric, recipe.metric_mode
    es = tc.early_stopping

    def fire(event: str) -> None:
        for cb in callbacks:
            cb(event, state)

    global_mean = (accelerator.num_processes > 1 and task == "segmentation"
                   and hasattr(criterion, "sum_and_weight"))

    def compute_loss(batch: Mapping[str, Any]) -> torch.Tensor:
        if task == "detection":
            losses = model(list(batch["image"]), _det_targets(batch))
            return sum(losses.values())
        if task == "classification":
            return criterion(model(batch["image"]), batch["label"])
        out = model(batch["image"], return_aux=bool(getattr(raw_model, "has_aux", False)))
        logits, aux = _seg_logits(out)
        if global_mean and aux is None:
            # mean over the valid pixels of the whole global batch, not per process
            total, weight = criterion.sum_and_weight(_fit(logits, batch["mask"].shape[-2:]),
                                                     batch["mask"])
            weight = accelerator.reduce(weight, reduction="sum")
            return total * accelerator.num_processes / weight.clamp(min=1e-12)
        loss = criterion(_fit(logits, batch["mask"].shape[-2:]), batch["mask"])
        if aux is not None:
            loss = loss + 0.4 * criterion(_fit(aux, batch["mask"].shape[-2:]), batch["mask"])
        return loss

    def evaluate() -> dict[str, Any]:
        model.eval()
        losses: list[torch.Tensor] = []
        seg = ConfusionMetrics(k, classes) if task != "detection" else None
        det = DetectionMAP(k, classes) if task == "detection" else None
        with torch.no_grad():
            for batch in val_loader:
                if task == "detection":
                    outs = model(list(batch["image"]))
                    preds = [{"boxes": o["boxes"], "scores": o["scores"],
                              "labels": o["labels"] - 1} for o in outs]
                    preds = [{kk: v[p["scores"] >= recipe.eval.score_threshold]
                              for kk, v in p.items()} for p in preds]
                    tg = [{"boxes": b, "labels": lab}
                          for b, lab in zip(batch["boxes"], batch["labels"])]
                    preds = accelerator.gather_for_metrics(preds, use_gather_object=True)
                    tg = accelerator.gather_for_metrics(tg, use_gather_object=True)
                    det.update(preds, tg)
                    continue
                target = batch["label"] if task == "classification" else batch["mask"]
                logits, _ = _seg_logits(model(batch["image"]))
                if task == "segmentation":
                    logits = _fit(logits, target.shape[-2:])
                per = torch.stack([criterion(logits[i:i + 1].float(), target[i:i + 1])
                                   for i in range(logits.shape[0])])
                cm = per_sample_confusion(logits.argmax(1), target, k, d.ignore_index)
                cm, per = accelerator.gather_for_metrics((cm, per))
                seg.update(cm)
                losses.append(per.float().cpu())
        model.train()
        if det is not None:
            return det.compute()
        out = seg.compute()
        # per-sample losses (exact under gather_for_metrics); a sample with no valid pixel is NaN
        out["loss"] = float(torch.cat(losses).nanmean()) if losses else None
        return out

    from accelerate.utils import DistributedType

    sharded = accelerator.distributed_type == DistributedType.FSDP

    def save_weights(path_name: str, with_config: bool, epoch_metrics: dict[str, Any],
                     full_state: dict[str, Any] | None) -> None:
        from rsfm.hub import save_pretrained

        save_pretrained(raw_model, run_dir, data=meta.as_dict(), recipe=recipe,
                        metrics=epoch_metrics, weights_name=path_name, write_config=with_config,
                        save_adapter=with_config and not sharded, state_dict=full_state)

    # ---- loop
    model.train()
    t_start = time.time()
    for epoch in range(state.epoch + 1, tc.epochs):
        if state.stopped_early or (tc.max_steps is not None and state.global_step >= tc.max_steps):
            break
        set_seed(tc.seed + epoch, deterministic=tc.deterministic)
        sampler.use_epoch(epoch)
        base_ds = getattr(train_ds, "dataset", train_ds)  # a Subset's dataset
        if hasattr(base_ds, "set_epoch"):
            base_ds.set_epoch(epoch)  # random-window scene sampling: new windows per epoch
        for msg in unfreezer.apply(raw_model, epoch):
            accelerator.print(f"[rsfm] epoch {epoch + 1}: unfroze {msg}")
        if hasattr(raw_model, "backbone_frozen") and raw_model.backbone_frozen and any(
                p.requires_grad for p in raw_model.backbone.parameters()):
            raw_model.backbone_frozen = False  # partly unfrozen: let BatchNorm/drop-path train
            raw_model.train()
        t0 = time.time()
        seen = 0
        loss_sum = torch.zeros((), device=accelerator.device)
        n_loss = 0
        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch + 1}/{tc.epochs}",
                   disable=not (accelerator.is_local_main_process and tc.progress),
                   leave=False, dynamic_ncols=True)
        for batch in train_loader:
            with accelerator.accumulate(model):
                loss = compute_loss(batch)
                bad = torch.tensor(0.0 if torch.isfinite(loss.detach()) else 1.0,
                                   device=accelerator.device)
                if accelerator.num_processes > 1:
                    bad = accelerator.reduce(bad, reduction="sum")
                if bad.item() > 0:
                    lr_now = scheduler.get_last_lr()[0]
                    raise NonFiniteLossError(
                        f"Non-finite loss ({loss.item()}) at epoch {epoch + 1}, optimizer step "
                        f"{state.global_step}, learning rate {lr_now:.3g}. Training stopped; the "
                        "last checkpoint is intact. Check the inputs: NaN/inf pixels that are not "
                        "declared nodata (set data.nodata), normalisation statistics that do not "
                        "fit the data (data.normalization mean/std, value_scale), or lower "
                        "train.optimizer.lr / enable train.clip_grad_norm."
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and tc.clip_grad_norm:
                    params = [p for p in model.parameters() if p.grad is not None]
                    accelerator.clip_grad_norm_(params, tc.clip_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            n_loss += 1
            seen += batch["image"].shape[0] if torch.is_tensor(batch["image"]) else len(
                batch["image"])
            bar.update(1)
            if accelerator.sync_gradients:
                if not accelerator.optimizer_step_was_skipped:
                    scheduler.step()
                state.global_step += 1
                state.last_loss = float(loss.detach())
                if state.global_step % max(1, tc.log_every) == 0 or bar.n == 1:
                    bar.set_postfix(loss=f"{state.last_loss:.4f}",
                                    lr=f"{scheduler.get_last_lr()[0]:.2e}",
                                    ips=f"{seen * accelerator.num_processes / (time.time() - t0):.1f}")
                fire("step")
                if tc.max_steps is not None and state.global_step >= tc.max_steps:
                    break
        bar.close()
        train_loss = accelerator.reduce(loss_sum / max(n_loss, 1), reduction="mean")
        elapsed = time.time() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1, "step": state.global_step, "train_loss": float(train_loss),
            "lr": float(scheduler.get_last_lr()[0]),
            "images_per_sec": seen * accelerator.num_processes / max(elapsed, 1e-9),
            "epoch_time": elapsed,
        }
        last_epoch = (epoch == tc.epochs - 1 or (tc.max_steps is not None
                                                 and state.global_step >= tc.max_steps))
        evaluated = val_loader is not None and ((epoch + 1) % recipe.eval.every == 0 or last_epoch)
        val: dict[str, Any] = {}
        if evaluated:
            val = evaluate()
            for key, value in val.items():
                if isinstance(value, (int, float)) or value is None:
                    row[f"val_{key}"] = value
            for name, v in (val.get("iou") or val.get("ap50") or {}).items():
                row[f"val_{'iou' if 'iou' in val else 'ap50'}_{name}"] = v
            if "confusion_matrix" in val:
                row["val_confusion_matrix"] = val["confusion_matrix"]
        state.epoch = epoch
        state.history.append(row)
        score = row.get(f"val_{metric_name}") if evaluated else None
        if not evaluated and val_loader is None:
            score = -row["train_loss"] if mode == "max" else row["train_loss"]
        improved = score is not None and _improved(score, state.best_metric, mode,
                                                   es.min_delta if es else 0.0)
        if improved:
            state.best_metric, state.best_epoch, state.bad_evals = score, epoch + 1, 0
        elif evaluated:
            state.bad_evals += 1
        accelerator.wait_for_everyone()
        # FSDP: every rank takes part in gathering the full weights
        full_state = accelerator.get_state_dict(model) if sharded else None
        if main:
            if improved:
                save_weights("model.safetensors", True, {**row, "best_epoch": epoch + 1},
                             full_state)
                if recipe.output.plots and "confusion_matrix" in val:
                    from rsfm.train.plots import plot_confusion

                    plot_confusion(val["confusion_matrix"], classes,
                                   run_dir / "plots" / "confusion_matrix.png")
            save_weights("last_model.safetensors", False, row, full_state)
            _write_metrics(run_dir, state.history)
            if recipe.output.plots:
                from rsfm.train.plots import plot_history

                plot_history(state.history, run_dir / "plots")
            if tb is not None:
                for key, value in row.items():
                    if isinstance(value, (int, float)) and value is not None:
                        tb.add_scalar(key, value, epoch + 1)
            accelerator.print(_summary_line(epoch, tc.epochs, row, metric_name))
        if es is not None and evaluated and state.bad_evals >= es.patience:
            state.stopped_early = True
            accelerator.print(f"[rsfm] early stopping: {metric_name} did not improve for "
                              f"{es.patience} evaluation(s); best {state.best_metric:.4f} at "
                              f"epoch {state.best_epoch}")
        if (epoch + 1) % tc.checkpoint_every == 0 or last_epoch or state.stopped_early:
            _save_checkpoint(accelerator, run_dir, epoch, state, tc.keep_checkpoints)
        fire("epoch")
    accelerator.wait_for_everyone()
    if (main and recipe.output.plots and task == "segmentation" and val_ds is not None
            and len(val_ds) and state.history):
        _plot_predictions(raw_model, val_ds, classes, d.ignore_index, meta.bands,
                          run_dir / "plots" / "predictions.png", accelerator.device)
    result = {"run_dir": str(run_dir), "metric": metric_name, "best_metric": state.best_metric,
              "best_epoch": state.best_epoch, "history": state.history,
              "global_step": state.global_step, "time": time.time() - t_start,
              "num_processes": accelerator.num_processes}
    if main and recipe.output.push_to_hub:
        from rsfm.hub import push

        push(run_dir, recipe.output.push_to_hub, private=recipe.output.hub_private,
             datasets=recipe.output.hub_datasets)
    if tb is not None:
        tb.close()
    accelerator.end_training()
    return result


def _plot_predictions(model: nn.Module, dataset: Any, classes: list[str], ignore_index: int,
                      bands: list[str], path: Path, device: Any, n: int = 4) -> None:
    """``plots/predictions.png``: input, truth and prediction of the validation samples with the
    most labelled pixels of the minority classes (the final model)."""
    from rsfm.train.plots import plot_predictions

    samples = [dataset[i] for i in range(min(len(dataset), 64))]
    def interest(s: Mapping[str, Any]) -> float:
        m = s["mask"]
        valid = m != ignore_index
        return float(((m > 0) & valid).sum()) * float(((m == 0) & valid).sum())

    samples = sorted(samples, key=interest, reverse=True)[:n]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = torch.stack([s["image"] for s in samples]).to(device)
        logits, _ = _seg_logits(model(x))
        preds = _fit(logits, x.shape[-2:]).argmax(1).cpu()
    model.train(was_training)
    plot_predictions([s["image"].numpy() for s in samples], [s["mask"].numpy() for s in samples],
                     preds.numpy(), classes, path, ignore_index, bands)


def _save_checkpoint(accelerator: Any, run_dir: Path, epoch: int, state: TrainState,
                     keep: int) -> None:
    from rsfm.train import checkpoint as ck

    final = ck.checkpoint_dir(run_dir, epoch + 1)
    tmp = final.with_name(f".tmp-{final.name}")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        ck.publish_checkpoint(tmp, final, state.to_json())
        ck.prune_checkpoints(run_dir, keep)
    accelerator.wait_for_everyone()
