"""Building what a run trains: the accelerator, the model (frozen parts, LoRA) and the
distributed wrapping (DDP looks for unused parameters only when the model has some)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsfm.cards import get_card
from rsfm.datasets import Datasets
from rsfm.errors import ConfigError
from rsfm.hub import create_model  # builds rsfm.Model (with the Hub methods)
from rsfm.lora import apply_lora
from rsfm.recipe import recipe_to_dict
from rsfm.schema import Recipe
from rsfm.spec import InputSpec, resolve_input_spec
from rsfm.train.data import Loaders, collate
from rsfm.train.engine import to_device
from rsfm.train.tasks import Task
from rsfm.train.unfreeze import UnfreezeScheduler

__all__ = [
    "build_model",
    "make_accelerator",
    "make_trainable",
    "prepare",
    "start_trackers",
    "unused_parameters",
]

log = logging.getLogger(__name__)

def make_accelerator(recipe: Recipe, run_dir: Path) -> Any:
    """The run's ``Accelerator``: global batch split over processes, scheduler stepped by the
    loop, DDP settings decided later by :func:`prepare`, experiment trackers
    (``output.trackers``) writing local logs under ``run_dir/tensorboard``.

    Raises:
        ConfigError: An unknown tracker name.
    """
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
    from accelerate.utils import ProjectConfiguration

    tc, trackers = recipe.train, list(recipe.output.trackers)  # checked by preflight
    kwargs: dict[str, Any] = {}
    if tc.mixed_precision is not None:
        kwargs["mixed_precision"] = tc.mixed_precision
    # torchrun (or `accelerate launch --multi_gpu`) on a machine without GPUs: DDP on CPU/gloo
    if int(os.environ.get("LOCAL_RANK", "-1")) != -1 and not torch.cuda.is_available():
        kwargs["cpu"] = True
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # accelerate keeps one process-wide state and refuses a second Accelerator with another
        # mixed precision: a notebook training fp32 then bf16 (or a failed run before) would
        # fail. A single process owns no process group, so starting afresh is safe.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    try:
        return Accelerator(
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
            gradient_accumulation_steps=tc.grad_accum_steps,
            dataloader_config=DataLoaderConfiguration(split_batches=True),
            step_scheduler_with_optimizer=False,
            log_with=trackers or None,
            project_config=ProjectConfiguration(project_dir=str(run_dir),
                                                logging_dir=str(run_dir / "tensorboard")),
            **kwargs,
        )
    except ValueError as err:
        if "logging capability" not in str(err):
            raise
        raise ConfigError(f"output.trackers: {err}") from None


def start_trackers(accelerator: Any, recipe: Recipe) -> None:
    """Open the recipe's trackers with its settings as hyper-parameters (scalars, dotted keys)."""
    if not recipe.output.trackers:
        return
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(node, (bool, int, float, str)):
            flat[prefix[:-1]] = node
        elif node is not None:
            flat[prefix[:-1]] = str(node)

    walk(recipe_to_dict(recipe), "")
    accelerator.init_trackers(recipe.name, config=flat)


def build_model(recipe: Recipe, spec: InputSpec | None = None) -> nn.Module:
    """The recipe's model, built for ``spec`` (default: the recipe's InputSpec)."""
    if spec is None:
        spec = resolve_input_spec(recipe.model, get_card(recipe.model.backbone), recipe.data)
    return create_model(recipe.model, input_spec=spec)


def make_trainable(model: nn.Module, recipe: Recipe) -> nn.Module:
    """Freeze the backbone and wrap it with LoRA as the recipe's ``train.freeze``/``lora`` say.

    Raises:
        ConfigError: LoRA targets or ``train.freeze.unfreeze`` modules that name no module of
            the model (found here, before the first epoch, not at the unfreeze epoch).
    """
    if recipe.train.freeze.backbone:
        model.freeze_backbone()
    if recipe.lora is not None:
        lc = recipe.lora
        apply_lora(model, lc.r, lc.alpha, lc.dropout, lc.target_modules, lc.bias)
    UnfreezeScheduler.check(model, recipe.train.freeze.unfreeze)
    return model


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    py, npy = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py)
    np.random.set_state(npy)


def unused_parameters(model: nn.Module, task: Task, batch: Mapping[str, Any]) -> list[str]:
    """Names of trainable parameters that get no gradient from one training loss on ``batch``.

    The model's random state and buffers (BatchNorm statistics) are left as they were.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    was_training = model.training
    try:
        with _rng_kept():
            model.train()
            loss = task.loss(model, batch)
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        with torch.no_grad():
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
        model.train(was_training)
    return [n for (n, _), g in zip(named, grads) if g is None]


def _needs_unused_detection(model: nn.Module, task: Task, datasets: Datasets,
                            device: Any) -> bool:
    if task.name == "detection":
        log.info("DDP: find_unused_parameters=True (torchvision detectors skip branches per batch)")
        return True
    n = min(2, len(datasets.train))  # type: ignore[arg-type]
    try:
        with _rng_kept():
            batch = to_device(collate([datasets.train[i] for i in range(n)]), device)
        unused = unused_parameters(model, task, batch)
    except Exception as err:  # noqa: BLE001  the probe must never stop a run: be safe instead
        log.info("DDP: find_unused_parameters=True (probe failed: %s)", err)
        return True
    if unused:
        log.info("DDP: find_unused_parameters=True: %d parameter tensors get no gradient (%s%s)",
                 len(unused), ", ".join(unused[:3]), ", ..." if len(unused) > 3 else "")
    else:
        log.info("DDP: find_unused_parameters=False (every trainable parameter gets a gradient)")
    return bool(unused)


def prepare(accelerator: Any, model: nn.Module, optimizer: torch.optim.Optimizer,
            loaders: Loaders, datasets: Datasets, task: Task,
            recipe: Recipe) -> tuple[nn.Module, Any, Loaders]:
    """``accelerator.prepare`` the model, optimizer and loaders.

    With several processes, DDP is told to look for unused parameters only when needed: a
    progressive unfreeze (parameters frozen at wrap time must still be registered with DDP, so
    they are wrapped as trainable and frozen again right after) or parameters that one probe
    training step leaves without gradient (e.g. pyramid levels a head does not read).
    """
    refreeze: list[torch.nn.Parameter] = []
    if accelerator.num_processes > 1:
        model.to(accelerator.device)
        find_unused = _needs_unused_detection(model, task, datasets, accelerator.device)
        if recipe.train.freeze.unfreeze:
            refreeze = [p for n, p in model.named_parameters()
                        if not p.requires_grad and "base_layer" not in n]  # LoRA bases stay frozen
            find_unused = True
        accelerator.ddp_handler.find_unused_parameters = find_unused
    for p in refreeze:
        p.requires_grad_(True)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, loaders.train)
    for p in refreeze:
        p.requires_grad_(False)
    val = accelerator.prepare(loaders.val) if loaders.val is not None else None
    return model, optimizer, Loaders(train_loader, loaders.sampler, val)
