"""The plain side of ``bench_quality.py``: ``segmentation_models_pytorch.Unet`` in a short
PyTorch loop, on the same tiles, normalisation, augmentation, optimiser, schedule and loss.

What a careful user writes without a framework: tiles held in memory, per-sample flips and
quarter turns, AdamW + per-step warmup/cosine, cross-entropy + smp's Dice, one validation pass per
epoch keeping the best weights in memory. No gradient clipping, weight decay on every parameter.

``model="rsfm"`` / ``loss="rsfm"`` swap in rsfm's model or loss (ablations that locate a gap).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _quality_data import IGNORE, BenchDataset, confusion, miou, test_miou, tiles
from _quality_rsfm import input_spec
from torch import nn


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup then cosine to 0 (per optimizer step)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


def augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: horizontal flip (p 0.5), vertical flip (p 0.5), k * 90 degrees (p 0.5, k 1-3)."""
    xs, ys = [], []
    for xi, yi in zip(x, y):
        r = torch.rand(3, generator=g)
        if r[0] < 0.5:
            xi, yi = xi.flip(-1), yi.flip(-1)
        if r[1] < 0.5:
            xi, yi = xi.flip(-2), yi.flip(-2)
        if r[2] < 0.5:
            k = int(torch.randint(1, 4, (), generator=g))
            xi, yi = torch.rot90(xi, k, (-2, -1)), torch.rot90(yi, k, (-2, -1))
        xs.append(xi)
        ys.append(yi)
    return torch.stack(xs), torch.stack(ys)


def build_model(ds: BenchDataset, kind: str, encoder: str) -> nn.Module:
    if kind == "smp":
        import segmentation_models_pytorch as smp

        return smp.Unet(encoder, encoder_weights=None, in_channels=len(ds.bands),
                        classes=ds.num_classes)
    if kind == "rsfm":
        import rsfm

        return rsfm.create_model("segmentation", encoder, head="unet", num_classes=ds.num_classes,
                                 bands=list(ds.bands))
    if ":" in kind:  # research ablations: "path/to/file.py:function" returning a model
        import importlib.util

        path, fn = kind.rsplit(":", 1)
        spec = importlib.util.spec_from_file_location("_quality_variant", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, fn)(ds, encoder)
    raise ValueError(f"plain model {kind!r}: choose 'smp', 'rsfm' or 'file.py:function'")


def build_loss(kind: str) -> Any:
    if kind == "smp":
        import segmentation_models_pytorch as smp

        ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
        dice = smp.losses.DiceLoss("multiclass", ignore_index=IGNORE)
        return lambda logits, y: ce(logits, y) + dice(logits, y)
    if kind == "rsfm":
        from rsfm.train.losses import build_loss as rsfm_loss

        return rsfm_loss("ce+dice", ignore_index=IGNORE)
    raise ValueError(f"plain loss {kind!r}: choose 'smp' or 'rsfm'")


@torch.no_grad()
def val_miou(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int, batch: int = 32) -> float:
    model.eval()
    cm = np.zeros((k, k), dtype=np.int64)
    for i in range(0, len(x), batch):
        pred = model(x[i:i + batch]).argmax(1)
        cm += confusion(pred.numpy(), y[i:i + batch].numpy(), k)
    model.train()
    return miou(cm)[0]


def run(ds: BenchDataset, mean: list[float], std: list[float], *, seed: int, max_steps: int,
        budget: float | None, workdir: Path, model_kind: str = "smp", loss_kind: str = "smp",
        encoder: str = "resnet18", batch_size: int = 16, lr: float = 3e-3,
        weight_decay: float = 0.01, warmup_epochs: float = 0.5) -> dict[str, Any]:
    """Train for ``max_steps`` (or until ``budget`` seconds) and score the best-on-val weights."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    torch.manual_seed(seed)
    np.random.seed(seed)
    g = torch.Generator().manual_seed(seed)
    xtr, ytr = (torch.from_numpy(a) for a in tiles(ds, "train", mean, std))
    xva, yva = (torch.from_numpy(a) for a in tiles(ds, "val", mean, std))
    model = build_model(ds, model_kind, encoder)
    criterion = build_loss(loss_kind)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(xtr)
    per_epoch = n // batch_size if n > batch_size else 1
    warmup = round(warmup_epochs * per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, max_steps, warmup))

    marks: list[tuple[float, float]] = []
    best, best_state, best_epoch, epoch, stopped = -1.0, None, 0, 0, False
    model.train()
    while len(marks) < max_steps and not stopped:
        perm = torch.randperm(n, generator=g)
        for i in range(per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x, y = augment(xtr[idx], ytr[idx], g)
            if not (y != IGNORE).any():
                continue  # nothing labelled in this batch
            loss = criterion(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            marks.append((time.perf_counter() - t0, time.process_time() - c0))
            if len(marks) >= max_steps:
                break
            if budget is not None and marks[-1][0] > budget:
                stopped = True
                break
        epoch += 1
        score = val_miou(model, xva, yva, ds.num_classes)
        if score > best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    scores = test_miou(model.eval(), input_spec(ds, mean, std), ds, workdir / "pred")
    return {
        "side": "plain", "steps": len(marks), "wall_seconds": wall, "cpu_seconds": cpu,
        "budget_stop": stopped, "step_marks": marks, "best_epoch": best_epoch,
        "best_val_miou": best, "epochs": epoch, **scores,
    }
