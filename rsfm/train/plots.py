"""Training plots as PNG: loss and metric curves, confusion matrix (written atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rsfm.display import class_rgb, composite_image, rgb_composite
from rsfm.io import atomic_write
from rsfm.metrics import plot_confusion  # re-exported: the run's plots/ use it
from rsfm.spec import InputSpec
from rsfm.train.tasks import fit_logits

__all__ = ["plot_confusion", "plot_history", "plot_predictions", "plot_validation_predictions"]


def _fig():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png"))


def plot_history(history: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """``loss.png`` (train/val loss per epoch) and ``metrics.png`` (validation metrics)."""
    plt = _fig()
    out_dir = Path(out_dir)
    epochs = [h["epoch"] for h in history]
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            ax.plot(epochs, [float("nan") if v is None else v for v in vals], marker="o",
                    label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    _save(fig, out_dir / "loss.png")
    plt.close(fig)
    written.append(out_dir / "loss.png")
    keys = [k for k in ("val_miou", "val_macro_f1", "val_accuracy", "val_map", "val_map_50")
            if any(h.get(k) is not None for h in history)]
    if keys:
        fig, ax = plt.subplots(figsize=(6, 4))
        for k in keys:
            ax.plot(epochs, [float("nan") if h.get(k) is None else h[k] for h in history],
                    marker="o", label=k.removeprefix("val_"))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation metric")
        ax.set_ylim(0, 1)
        ax.legend()
        ax.grid(alpha=0.3)
        _save(fig, out_dir / "metrics.png")
        plt.close(fig)
        written.append(out_dir / "metrics.png")
    return written


def plot_predictions(images: Sequence[Any], masks: Sequence[Any], preds: Sequence[Any],
                     spec: InputSpec, path: str | Path) -> Path:
    """One row per sample: the input as the composite :mod:`rsfm.display` picks from the spec's
    bands (true colour, colour infrared, SWIR, SAR, else grey), the truth and the prediction in
    the spec's class colours (ignored pixels striped)."""
    import numpy as np

    plt = _fig()
    n = len(images)
    colors = spec.class_colors
    composite = rgb_composite(spec.channels)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n + 0.4), squeeze=False)
    for i in range(n):
        img = np.asarray(images[i], dtype=np.float32)
        if img.ndim == 4:  # (C, T, H, W): the last frame
            img = img[:, -1]
        axes[i, 0].imshow(composite_image(img, composite), interpolation="nearest")
        axes[i, 1].imshow(class_rgb(masks[i], colors, spec.ignore_index), interpolation="nearest")
        axes[i, 2].imshow(class_rgb(preds[i], colors), interpolation="nearest")
        for ax, title in zip(axes[i], (composite.label, "truth (striped: ignored)", "prediction")):
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=np.array(c) / 255) for c in colors]
    fig.legend(handles, spec.class_names, loc="lower center", ncol=min(len(colors), 6),
               fontsize=8)
    path = Path(path)
    _save(fig, path)
    plt.close(fig)
    return path


def plot_validation_predictions(model: Any, dataset: Any, path: str | Path, device: Any = "cpu",
                                n: int = 4) -> Path:
    """``plots/predictions.png``: input, truth and prediction of the validation samples (of the
    first 64) with the most labelled pixels of both the minority and majority classes."""
    spec = model.input_spec
    samples = [dataset[i] for i in range(min(len(dataset), 64))]

    def interest(s: dict[str, Any]) -> float:
        m = s["mask"]
        valid = m != spec.ignore_index
        return float(((m > 0) & valid).sum()) * float(((m == 0) & valid).sum())

    samples = sorted(samples, key=interest, reverse=True)[:n]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = torch.stack([s["image"] for s in samples]).to(device)
        preds = fit_logits(model(x), x.shape[-2:]).argmax(1).cpu()
    model.train(was_training)
    return plot_predictions([s["image"].numpy() for s in samples],
                            [s["mask"].numpy() for s in samples], preds.numpy(), spec, path)
