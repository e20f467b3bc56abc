"""Looking at results: per-sample image / ground truth / prediction panels and scene quicklooks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape

from rsfm.colors import class_colors
from rsfm.data.rasters import bands_of_file, inspect_raster
from rsfm.display import Composite, class_rgb, composite_image, rgb_composite
from rsfm.errors import RsfmError
from rsfm.inference.gis import class_ids, class_legend
from rsfm.inference.loading import load_model, saved_config_of
from rsfm.inference.outputs import as_logits
from rsfm.inference.vectorize import read_features
from rsfm.io import save_figure
from rsfm.spec import InputSpec

__all__ = ["preview_scene", "show_results"]

log = logging.getLogger(__name__)

_BACKGROUND_NAMES = {"background", "bg", "none", "nodata", "no_data", "unlabeled", "unlabelled", "other"}


def _legend(ax: Any, names: Sequence[str], colors: Sequence[tuple[int, int, int]],
            shares: Sequence[float] | None = None) -> None:
    from matplotlib.patches import Patch

    labels = [n if shares is None else f"{n} ({s:.1%})" for n, s in zip(names, shares or [0] * len(names), strict=True)]
    handles = [Patch(facecolor=np.array(c) / 255, edgecolor="black", label=lab) for c, lab in zip(colors, labels, strict=True)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(len(handles), 5),
              frameon=False, fontsize=9)


def _overlay(rgb: np.ndarray, classes: np.ndarray, colors: Sequence[Sequence[int]], skip: set[int],
             nodata: int | None, alpha: float = 0.5) -> np.ndarray:
    """Class colours over the picture (``skip`` classes left clear); nodata/ignored pixels are
    striped (:func:`rsfm.display.class_rgb`)."""
    over = class_rgb(classes, colors, nodata)
    tint = ~np.isin(classes, list(skip))
    out = rgb.copy()
    out[tint] = (1 - alpha) * out[tint] + alpha * over[tint]
    return out


def preview_scene(
    image: str | Path, prediction: str | Path | None, path: str | Path, *,
    spec: InputSpec | None = None, max_size: int = 1024, alpha: float = 0.5,
) -> Path:
    """Quicklook PNG: the scene (percentile-stretched RGB) next to it with the prediction overlaid.

    Reads decimated (overviews when present), so memory is ``max_size**2`` whatever the scene.

    Args:
        image: The input scene.
        prediction: Class raster (segmentation) or vector file of boxes or instance outlines (detection).
        path: PNG to write.
        spec: The model's input spec (its bands find red/green/blue in unnamed files).
        max_size: Longest side of the quicklook in pixels.
        alpha: Opacity of the class colours.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = inspect_raster(image)
    scale = max(info.width, info.height) / max_size
    h, w = (info.height, info.width) if scale <= 1 else (max(1, round(info.height / scale)), max(1, round(info.width / scale)))
    try:
        file_bands = bands_of_file(info, spec.file_bands if spec else None,
                                   spec.sensor if spec else None)
    except RsfmError:
        file_bands = ()
    if spec is not None and len(spec.bands) == info.count and not any(
            b.common_name for b in file_bands):  # unnamed bands: the model's, when counts agree
        file_bands = tuple(spec.bands)
    composite = rgb_composite(file_bands, info.count)
    with rasterio.open(image) as ds:
        raw = ds.read([i + 1 for i in composite.indexes], out_shape=(len(composite.indexes), h, w))
        valid = ds.read_masks(1, out_shape=(h, w)) > 0
    rgb = composite_image(raw, Composite(tuple(range(len(composite.indexes))), composite.label),
                          valid)
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.6 * h / max(w, 1) + 0.9), squeeze=False)
    axes[0, 0].imshow(rgb)
    axes[0, 0].set_title(f"{Path(image).name}  ({info.width} x {info.height} px)\n{composite.label}",
                         fontsize=9)
    over = rgb
    title = "prediction"
    pred = Path(prediction) if prediction is not None else None
    if pred is not None and pred.suffix.lower() in (".tif", ".tiff"):
        with rasterio.open(pred) as ds:
            pixels = ds.read(1, out_shape=(h, w))
            cnames, values = class_legend(ds.tags())
            if not cnames:
                values = list(range(int(pixels.max()) + 1))
                cnames = [f"class_{i}" for i in values]
            try:
                cmap = ds.colormap(1)
                cols = [cmap.get(v, (0, 0, 0, 255))[:3] for v in values]
            except ValueError:
                cols = class_colors(len(cnames), spec.class_colors if spec else None)
            nodata = -1  # class ids of the pixels; -1 for nodata and values no class has
            cls = class_ids(pixels, values, None if ds.nodata is None else int(ds.nodata), fill=nodata)
        skip = {0} if cnames and cnames[0].lower() in _BACKGROUND_NAMES else set()
        over = _overlay(rgb, cls, cols, skip, nodata, alpha)
        valid_cls = cls[cls != nodata] if nodata is not None else cls.ravel()
        shares = [float((valid_cls == k).mean()) if valid_cls.size else 0.0 for k in range(len(cnames))]
        _legend(axes[0, 1], cnames, cols, shares)
        title = "prediction (legend: share of valid pixels)"
        axes[0, 1].imshow(over)
    elif pred is not None:
        axes[0, 1].imshow(rgb)
        inv = ~info.transform
        crs, feats = read_features(pred)
        n = 0
        for feat in feats:
            geom = feat["geometry"]
            if crs is not None and info.crs is not None and crs != info.crs:
                geom = shape(transform_geom(crs, info.crs, mapping(geom)))
            for part in getattr(geom, "geoms", [geom]):
                pts = [inv @ tuple(p[:2]) for p in part.exterior.coords]
                xs = np.array([p[0] for p in pts]) * w / info.width
                ys = np.array([p[1] for p in pts]) * h / info.height
                axes[0, 1].plot(xs, ys, color="#ff3b30", linewidth=1.0)
            n += 1
        title = f"detections: {n} objects"
    else:
        axes[0, 1].imshow(over)
    axes[0, 1].set_title(title)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _model_output(model: Any, image: torch.Tensor, task: str) -> Any:
    with torch.inference_mode():
        out = model(image[None])
    if task == "detection":
        return out[0]
    logits = as_logits(out)
    if logits.shape[-2:] != image.shape[-2:]:
        logits = torch.nn.functional.interpolate(logits.float(), size=image.shape[-2:], mode="bilinear")
    if logits.shape[1] == 1:
        return (logits[0, 0] > 0).long()
    return logits[0].argmax(0)


def show_results(
    model: Any, dataset: Any, n: int = 8, path: str | Path | None = None, *,
    spec: InputSpec | None = None, task: str | None = None,
    indices: Sequence[int] | None = None, score_threshold: float = 0.3,
    device: str | torch.device | None = None,
) -> Any:
    """Image, ground truth and prediction side by side for ``n`` samples of a dataset.

    Args:
        model: A model (or anything :func:`~rsfm.inference.loading.load_model` accepts).
        dataset: Samples ``{"image": (C, H, W), "mask": (H, W)}`` or with ``boxes``/``labels``.
        n: Number of samples (spread evenly over the dataset unless ``indices`` is given).
        path: Save the figure as this PNG.
        spec: Bands, class names/colours, ignore index (default: the model's, else the
            dataset's ``spec``).
        task: ``segmentation`` or ``detection`` (default: the model's, else the dataset's).
        indices: Which samples to show.
        score_threshold: Detection: minimum score of drawn predicted boxes.
        device: Torch device of the model.

    Returns:
        The matplotlib figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    saved = None
    if isinstance(model, (str, Path)):
        model, saved = load_model(model)
    else:
        saved = saved_config_of(model)
    spec = spec or (saved.input if saved is not None else getattr(dataset, "spec", None))
    task = task or (saved.model.task if saved is not None else
                    getattr(dataset, "task", "segmentation"))
    if isinstance(model, torch.nn.Module):
        dev = torch.device(device) if device else next(model.parameters(), torch.zeros(0)).device
        model = model.to(dev).eval()
    else:
        dev = torch.device(device or "cpu")
    total = len(dataset)
    if indices is None:
        indices = sorted({int(i) for i in np.linspace(0, total - 1, min(n, total))}) if total else []
    classes = spec.class_names if spec is not None else []
    colors = spec.class_colors if spec is not None else None
    ignore = spec.ignore_index if spec is not None else getattr(dataset, "ignore_index", -1)
    channels = tuple(spec.channels) if spec is not None else ()
    rows = len(indices)
    fig, axes = plt.subplots(rows, 3, figsize=(10.5, 3.5 * rows + 0.6), squeeze=False)
    used: set[int] = set()
    for r, i in enumerate(indices):
        sample = dataset[i]
        image = torch.as_tensor(sample["image"]).float()
        frame = image[:, -1] if image.ndim == 4 else image  # time series: show the last frame
        composite = rgb_composite(channels, frame.shape[0])
        rgb = composite_image(frame.numpy(), composite)
        pred = _model_output(model, image.to(dev), task)
        axes[r, 0].imshow(rgb)
        axes[r, 0].set_title(f"sample {i} ({composite.label})", fontsize=9)
        if task == "detection":
            for col, boxes, _labels, scores, color in (
                (1, sample.get("boxes"), sample.get("labels"), None, "#34c759"),
                (2, pred["boxes"], pred["labels"], pred["scores"], "#ff3b30"),
            ):
                axes[r, col].imshow(rgb)
                boxes = torch.as_tensor(boxes if boxes is not None else torch.zeros(0, 4)).cpu()
                keep = torch.ones(len(boxes), dtype=torch.bool) if scores is None else scores.cpu() >= score_threshold
                for (x0, y0, x1, y1) in boxes[keep].tolist():
                    axes[r, col].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=1.2))
                axes[r, col].set_title(("ground truth" if col == 1 else f"prediction (score >= {score_threshold})")
                                       + f": {int(keep.sum())}", fontsize=10)
            continue
        mask = torch.as_tensor(sample["mask"]).cpu().numpy() if "mask" in sample else None
        pred_np = pred.cpu().numpy()
        k = max(len(classes), int(pred_np.max()) + 1, int(mask[mask != ignore].max()) + 1 if mask is not None and (mask != ignore).any() else 0)
        cols = class_colors(k, colors)
        for col, lab, title in ((1, mask, "ground truth (striped: ignored)"),
                                (2, pred_np, "prediction")):
            if lab is None:
                axes[r, col].set_axis_off()
                continue
            axes[r, col].imshow(_overlay(rgb, lab, cols, set(), ignore, alpha=0.65))
            used.update(int(v) for v in np.unique(lab) if v != ignore)
            if col == 2 and mask is not None:
                ok = mask != ignore
                acc = float((pred_np[ok] == mask[ok]).mean()) if ok.any() else float("nan")
                title = f"prediction (pixel acc {acc:.1%})"
            axes[r, col].set_title(title, fontsize=10)
    for ax in axes.ravel():
        ax.set_axis_off()
    if task != "detection" and used:
        k = max(used) + 1
        names = [classes[j] if j < len(classes) else f"class_{j}" for j in range(k)]
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=np.array(c) / 255, edgecolor="black", label=nm)
                   for c, nm in zip(class_colors(k, colors), names, strict=True)]
        fig.legend(handles=handles, loc="lower center", ncol=min(k, 6), frameon=False)
    fig.tight_layout(rect=(0, 0.04 if task != "detection" else 0, 1, 1))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, dpi=100, bbox_inches="tight")
        plt.close(fig)
    return fig
