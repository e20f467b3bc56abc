"""``show_batch``: a PNG grid of samples (RGB or grey composite, mask overlay, labelled boxes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsfm.colors import class_colors_hex
from rsfm.display import class_rgb, composite_image, rgb_composite
from rsfm.errors import ConfigError
from rsfm.io import save_figure
from rsfm.spec import InputSpec

__all__ = ["show_batch"]

# The class palette shared with training plots, rasters and previews (datasets without a spec).
_PALETTE = class_colors_hex(20)


_BACKGROUND = {"background", "bg", "none", "other", "nodata", "no data", "unlabeled"}


def _unwrap(data: Any) -> Any:
    """The underlying rsfm dataset of a DataLoader / Subset (for its spec)."""
    obj = getattr(data, "dataset", data)
    while hasattr(obj, "dataset") and not hasattr(obj, "spec"):
        obj = obj.dataset
    return obj


def _samples(data: Any, n: int) -> list[dict[str, Any]]:
    from torch.utils.data import DataLoader, Dataset

    out: list[dict[str, Any]] = []
    if isinstance(data, Dataset) and not isinstance(data, DataLoader) and hasattr(data, "__len__"):
        for i in range(min(n, len(data))):
            out.append(data[i])
        return out
    for batch in data:  # DataLoader or any iterable of collated batches
        size = len(batch["image"])
        for b in range(size):
            s = {"image": batch["image"][b]}
            for key in ("mask", "boxes", "labels"):
                if key in batch:
                    s[key] = batch[key][b]
            meta = batch.get("meta")
            if isinstance(meta, dict):
                s["meta"] = {k: (v[b] if hasattr(v, "__getitem__") else v) for k, v in meta.items()}
            out.append(s)
            if len(out) >= n:
                return out
    return out


def show_batch(
    data: Any,
    n: int = 8,
    path: str | Path = "batch.png",
    rgb: Sequence[str | int] | None = None,
    classes: Sequence[str] | None = None,
    colors: Sequence[str | Sequence[float]] | None = None,
    ncols: int = 4,
    percentiles: tuple[float, float] = (2.0, 98.0),
    alpha: float = 0.45,
    ignore_index: int | None = None,
    hide_classes: Sequence[str] | None = None,
) -> Path:
    """Draw ``n`` samples of a dataset or DataLoader to a PNG.

    Images are shown as the composite :mod:`rsfm.display` picks from the spec's bands (true
    colour, colour infrared, SWIR false colour, SAR, else grey) or the ``rgb`` bands, with a 2-98
    percentile stretch over valid pixels. Masks are overlaid in the spec's class colours with a
    legend; ignored pixels are striped black and white; boxes carry their class names.

    Args:
        data: An rsfm dataset, a ``Subset`` of one, or a DataLoader (batches from ``collate_fn``).
        n: Number of samples.
        path: Output PNG.
        rgb: 3 band names/0-based channel indexes for the composite, or 1 for grey.
        classes: Class names (default: the spec's).
        colors: One colour per class, any matplotlib colour (default: the spec's class colours,
            else a colour-blind-friendly palette).
        ncols: Panels per row.
        percentiles: Stretch percentiles.
        alpha: Mask opacity.
        ignore_index: Mask value left clear (default: the spec's).
        hide_classes: Classes not tinted in the overlay (default: a class named background/bg/
            none/other, so the image stays visible under the objects).

    Returns:
        The PNG path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    base = _unwrap(data)
    spec: InputSpec | None = getattr(base, "spec", None)
    channels = list(spec.channels) if spec is not None else []
    if classes is None:
        classes = spec.class_names if spec is not None else []
    classes = list(classes)
    if ignore_index is None:
        ignore_index = spec.ignore_index if spec is not None else -1
    samples = _samples(data, n)
    if not samples:
        raise ConfigError("show_batch: the dataset/loader yielded no samples.")
    n_cls = max(len(classes), 1)
    if colors is None and spec is not None and spec.num_classes >= len(classes) > 0:
        colors = ["#{:02x}{:02x}{:02x}".format(*c) for c in spec.class_colors]
    palette = list(colors) if colors else [_PALETTE[i % len(_PALETTE)] for i in range(n_cls)]
    if len(palette) < n_cls:
        raise ConfigError(f"show_batch: {len(palette)} colours for {n_cls} classes.")
    if hide_classes is None:
        hide_classes = [c for c in classes if c.strip().lower() in _BACKGROUND]
    hidden = [i for i, c in enumerate(classes) if c in set(hide_classes)]
    rgb_palette = [tuple(round(255 * v) for v in to_rgba(c)[:3]) for c in palette[:n_cls]]

    ncols = max(1, min(ncols, len(samples)))
    nrows = int(np.ceil(len(samples) / ncols))
    fig = Figure(figsize=(3.2 * ncols, 3.4 * nrows + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    present: set[int] = set()
    for k, s in enumerate(samples):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        img = np.asarray(s["image"], dtype=np.float32)
        if img.ndim == 4:  # (C, T, H, W): show the last time step
            img = img[:, -1]
        mask = np.asarray(s["mask"]) if "mask" in s else None
        valid = (mask != ignore_index) if mask is not None else np.any(img != 0, axis=0)
        composite = rgb_composite(channels, img.shape[0], rgb)
        picture = composite_image(img, composite, valid, percentiles)
        if mask is not None:
            tinted = ~np.isin(mask, hidden)  # background classes stay clear
            over = class_rgb(mask, rgb_palette, ignore_index)
            picture[tinted] = (1 - alpha) * picture[tinted] + alpha * over[tinted]
            present.update(int(v) for v in np.unique(mask) if 0 <= v < n_cls and v not in hidden)
        ax.imshow(picture, interpolation="nearest")
        if "boxes" in s:
            boxes = np.asarray(s["boxes"]).reshape(-1, 4)
            labels = np.asarray(s.get("labels", np.zeros(len(boxes), int)))
            # text on every box hides the image when boxes are many and of one class: the colour
            # legend says it all then
            write_names = len(set(labels.tolist())) > 1 and len(boxes) <= 30
            for (x0, y0, x1, y1), lab in zip(boxes, labels):
                color = palette[int(lab) % len(palette)]
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.2, ec=color))
                if write_names:
                    name = classes[int(lab)] if 0 <= int(lab) < len(classes) else str(int(lab))
                    ax.text(x0, y0, name, fontsize=6, color="black", va="bottom",
                            bbox={"fc": color, "ec": "none", "pad": 0.5, "alpha": 0.8})
                present.add(int(lab))
        meta = s.get("meta") or {}
        title = Path(str(meta.get("path", f"sample {k}"))).name
        win = meta.get("window")
        if win is not None and img.shape[-1] != 0:
            c, r = (int(v) for v in np.asarray(win)[:2])
            if c or r:
                title += f"\n@ col {c}, row {r}"
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    band_text = composite.label + ("; striped: ignored" if ignore_index is not None else "")
    handles = [Patch(fc=palette[c], ec="none", label=classes[c] if c < len(classes) else str(c))
               for c in sorted(present)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8,
                   frameon=False, title=band_text or None, title_fontsize=7)
    elif band_text:
        fig.text(0.5, 0.01, band_text, ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.06 if handles else 0.02, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path
