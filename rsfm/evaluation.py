"""Metrics of a trained model on labelled data, computed the way the model is deployed.

Every image of the split (a chip, a whole scene, a classification image) goes through the
prediction engine of :func:`rsfm.predict` (:class:`~rsfm.inference.predict.ScenePredictor`):
the same tile size, overlap, blending, thresholds and box merging, so the numbers are those of
the maps users get, not of the training tiles. The predictions are compared with the full-extent
targets the training data reads (chips: the dataset's targets; scenes: the label raster or the
rasterised vectors through the recipe's :class:`~rsfm.data.labels.LabelRules`); pixels whose
input is nodata, and labels equal to the ignore index, are left out. Scenes are scored strip by
strip, so memory stays bounded on large scenes.

::

    rsfm.evaluate("runs/flood")                          # the run's recipe.yaml, data.test
    rsfm.evaluate("runs/flood", split="val")             # data.val (or the held-out share)
    rsfm.evaluate("org/flood-model", "recipe.yaml")      # a Hub model on a recipe's test split
    rsfm.evaluate("runs/flood", images="chips/", labels="masks/")   # any folders

Results go to ``<run>/evaluation/<split>/`` (or ``out``; ``out`` naming the run folder itself
means ``<run>/evaluation/<split>/`` too, so the run's own ``metrics.csv`` is kept):
``metrics.json`` (everything), ``metrics.csv`` (one metric per row), ``per_class.csv``,
``per_image.csv`` and, for segmentation and classification, ``confusion_matrix.png``. The
metrics are those of :mod:`rsfm.metrics` (the ones validation reports during training).

Everything that can fail without compute is checked first: the split exists in the recipe
(the message names the key to set), the folders exist and pair, the output can be written and
holds no file evaluate did not write (an earlier evaluation is replaced, nothing else), no
result overwrites an input, every image has the model's bands. Chips whose label has no
labelled pixel are not predicted (they cannot count); when no pixel at all is labelled, folders
fail (naming ``--labels``), and a recipe split is reported with a warning and a note in
``metrics.json``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from rsfm import __version__
from rsfm.data.chips import ChipDataset, guess_suffixes, strip_suffix
from rsfm.data.class_folders import ClassFolderDataset
from rsfm.data.labels import LabelRules, apply_label_rules
from rsfm.data.rasters import IMAGE_SUFFIXES, inspect_raster, read_aligned, read_window
from rsfm.data.reader import ImageReader
from rsfm.data.scenes import SceneDataset
from rsfm.datasets import base_dataset, build_split, check_split, label_rules
from rsfm.devices import check_device
from rsfm.errors import ConfigError, DataError, RsfmError
from rsfm.inference.postprocess import InstanceMask
from rsfm.inference.predict import PredictOptions, ScenePredictor
from rsfm.io import (
    FileSet,
    atomic_write_json,
    atomic_write_text,
    check_output_path,
    same_file,
)
from rsfm.metrics import (
    ConfusionMatrix,
    DetectionMetrics,
    confusion_matrix,
    plot_confusion,
    segmentation_metrics,
)
from rsfm.preflight import check_writable_dir
from rsfm.recipe import load_recipe
from rsfm.schema import Recipe
from rsfm.spec import InputSpec

__all__ = ["SUMMARY_METRICS", "EvaluationResult", "evaluate", "run_recipe"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
# metrics in the one-line summary, most important first
SUMMARY_METRICS = {"segmentation": ("miou", "macro_f1", "accuracy"),
                   "classification": ("accuracy", "macro_f1"),
                   "detection": ("map_50", "map", "mar_100")}
_LABEL_SUFFIXES = (*IMAGE_SUFFIXES, ".xml", ".txt")
# what evaluate writes into its output folder
RESULT_FILES = ("metrics.json", "metrics.csv", "per_class.csv", "per_image.csv",
                "confusion_matrix.png")


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` computed and wrote.

    Attributes:
        task: ``segmentation``, ``classification`` or ``detection``.
        split: ``test``, ``val``, ``train`` or ``folders``.
        metrics: Flat metrics (see :mod:`rsfm.metrics`), ``images`` and, for segmentation and
            classification, ``confusion_matrix``.
        per_image: One row per image (``image``, counts, per-image scores).
        out_dir: Where the files went (None when nothing was written).
        files: The files written.
        seconds: Wall time.
    """

    task: str
    split: str
    metrics: dict[str, Any]
    per_image: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    files: tuple[Path, ...] = ()
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: split, images and the task's main metrics."""
        parts = [f"{self.split}: {self.metrics.get('images', len(self.per_image))} images"]
        for key in SUMMARY_METRICS[self.task]:
            value = self.metrics.get(key)
            if value is not None:
                parts.append(f"{key} {value:.4f}")
        if self.task == "segmentation" and self.metrics.get("pixels") == 0:
            parts.append("no labelled pixel: nothing scored")
        return " | ".join(parts)


@dataclass(frozen=True)
class _Item:
    """One image to predict and score.

    ``index``: the sample in a chip / class-folder dataset; ``scene`` and ``windows``: a
    :class:`SceneDataset` scene and its tiles (col, row) that belong to the split.
    """

    name: str
    paths: tuple[Path, ...]
    index: int = -1
    scene: int = -1
    windows: tuple[tuple[int, int], ...] = ()


# ----------------------------------------------------------------------------- inputs
def run_recipe(run_dir: PathLike) -> Path | None:
    """The recipe a run directory last started with (``recipe.resumed-N.yaml`` of the latest
    resume, else ``recipe.yaml``), or None."""
    run = Path(run_dir)
    resumed = sorted(run.glob("recipe.resumed-*.yaml"),
                     key=lambda p: int(p.stem.rsplit("-", 1)[-1]) if p.stem.rsplit(
                         "-", 1)[-1].isdigit() else -1)
    if resumed:
        return resumed[-1]
    return run / "recipe.yaml" if (run / "recipe.yaml").is_file() else None


def _local_dir(model: Any) -> Path | None:
    if isinstance(model, (str, os.PathLike)) and Path(model).is_dir():
        return Path(model)
    return None


def _files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def pair_folders(images: PathLike, labels: PathLike, image_suffix: str = "",
                 label_suffix: str = "") -> tuple[list[Path], list[Path]]:
    """Pair the images of a folder with the labels of another by file name.

    Names pair after removing ``image_suffix`` / ``label_suffix`` from the stems; when these are
    not given and plain stems do not pair, each folder's common stem ending is removed
    (``Bolivia_1_S1Hand.tif`` pairs ``Bolivia_1_LabelHand.tif``).

    Returns:
        ``(images, labels)`` in the same order.

    Raises:
        DataError: A folder is missing or empty, or files do not pair (names the folder and the
            first unmatched files).
    """
    folders = {"--images": Path(images), "--labels": Path(labels)}
    for flag, folder in folders.items():
        if folder.is_file():
            raise DataError(f"{flag} '{folder}' is a file, not a folder: give the folder that "
                            f"holds it ({flag} {folder.parent}).")
        if not folder.is_dir():
            raise DataError(f"{flag} folder '{folder}' does not exist.")
    ims = _files(Path(images), IMAGE_SUFFIXES)
    labs = _files(Path(labels), _LABEL_SUFFIXES)
    if not ims:
        raise DataError(f"--images folder '{images}' holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    if not labs:
        raise DataError(f"--labels folder '{labels}' holds no label files (rasters, VOC .xml, "
                        "YOLO .txt).")

    def attempt(isuf: str, lsuf: str) -> tuple[dict[str, Path], dict[str, Path]]:
        return ({strip_suffix(p.stem, isuf): p for p in ims},
                {strip_suffix(p.stem, lsuf): p for p in labs})

    tries = [(image_suffix, label_suffix)]
    if not image_suffix and not label_suffix:
        tries.append(guess_suffixes(ims, labs))
    for isuf, lsuf in tries:
        by_image, by_label = attempt(isuf, lsuf)
        if set(by_image) <= set(by_label):
            keys = sorted(by_image)
            return [by_image[k] for k in keys], [by_label[k] for k in keys]
    isuf, lsuf = tries[0]  # report the pairing as configured
    by_image, by_label = attempt(isuf, lsuf)
    lonely = [by_image[k].name for k in sorted(set(by_image) - set(by_label))]
    extra = [by_label[k].name for k in sorted(set(by_label) - set(by_image))]
    hint = (f" (names compared after removing '{isuf}' / '{lsuf}')" if isuf or lsuf else "")
    raise DataError(
        f"{len(lonely)} of {len(by_image)} images in '{images}' have no label in '{labels}'"
        f"{hint}: first {lonely[:3]}"
        + (f"; labels without an image: first {extra[:3]}" if extra else "")
        + ". Labels pair with images by file name; set data.image_suffix / data.label_suffix "
        "(--image-suffix / --label-suffix) when the names differ by an ending."
    )


def _items(base: Any, indices: Sequence[int]) -> list[_Item]:
    """The images to predict: chips, class-folder images, or scenes with their split's tiles."""
    if isinstance(base, SceneDataset):
        if base.sampling != "grid":
            raise ConfigError("Evaluation needs grid tiles of the scenes, not random windows.")
        tiles: dict[int, list[tuple[int, int]]] = {}
        for i in indices:
            s, col, row = base.items[i]
            tiles.setdefault(s, []).append((col, row))
        return [_Item(base.scenes[s][0].name, tuple(base.scenes[s]), scene=s,
                      windows=tuple(w)) for s, w in sorted(tiles.items())]
    if isinstance(base, ChipDataset):
        return [_Item(base.items[i][0][0].name, tuple(base.items[i][0]), index=i)
                for i in indices]
    if isinstance(base, ClassFolderDataset):
        return [_Item(f"{Path(base.items[i][0]).parent.name}/{Path(base.items[i][0]).name}",
                      (Path(base.items[i][0]),), index=i) for i in indices]
    raise ConfigError(f"Cannot evaluate a {type(base).__name__}: rsfm evaluates chip, scene and "
                      "class-folder datasets.")


# ----------------------------------------------------------------------------- scene targets
class _SceneTargets:
    """Targets of one scene of a :class:`SceneDataset`, read strip by strip with the dataset's
    label source (raster or vectors) and :class:`LabelRules`."""

    def __init__(self, ds: SceneDataset, item: _Item, reader: ImageReader) -> None:
        self.ds, self.item = ds, item
        self.info = reader.plan(item.paths[0]).info
        self.label = ds.label_rasters[item.scene]
        self.vectors = ds.vectors.to_crs(self.info.crs) if ds.vectors is not None else None
        self.invalid = 0
        self.aligned = False
        if self.label is not None:
            linfo = inspect_raster(self.label)
            self.aligned = ds.align_labels and (linfo.width, linfo.height, linfo.crs,
                                                linfo.transform) != (
                self.info.width, self.info.height, self.info.crs, self.info.transform)

    def rows(self, row: int, n: int, ignore: np.ndarray) -> np.ndarray:
        """Class ids of scene rows ``[row, row + n)`` (``ignore`` pixels get the ignore index)."""
        ds, info = self.ds, self.info
        window = Window(0, row, info.width, n)
        if self.vectors is not None:
            raw = self.vectors.rasterize(window_transform(window, info.transform),
                                         (n, info.width), background=0,
                                         all_touched=ds.all_touched)
            source = str(self.vectors.path)
        else:
            bands = ds.label_rules.label_bands
            raw = (read_aligned(self.label, info, window, bands) if self.aligned
                   else read_window(self.label, window, bands))
            raw = raw if len(bands) > 1 else raw[0]
            source = str(self.label)
        mask, count = apply_label_rules(raw, ds.label_rules, ds.spec.num_classes,
                                        ds.spec.ignore_index, "ignore", source, ignore)
        self.invalid += count.invalid
        return mask

    def instances(self, masks: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Detection boxes of the whole scene (pixel xyxy), their class ids and, with
        ``masks``, one ``(H, W)`` mask per box (Mask R-CNN)."""
        if self.vectors is None:
            raise ConfigError("Scene detection needs vector labels.")
        return self.vectors.instances(self.info.transform, (self.info.height, self.info.width),
                                      min_visible=self.ds.min_visible, masks=masks)


def _region(windows: Sequence[tuple[int, int]], tile: int, row: int, n: int,
            width: int) -> np.ndarray:
    """``(n, width)``: pixels of rows ``[row, row + n)`` covered by the split's tiles."""
    mask = np.zeros((n, width), dtype=bool)
    for col, r in windows:
        a, b = max(r, row), min(r + tile, row + n)
        if b > a:
            mask[a - row : b - row, max(col, 0) : max(col + tile, 0)] = True
    return mask


def _in_region(boxes: np.ndarray, windows: Sequence[tuple[int, int]], tile: int) -> np.ndarray:
    """Boxes whose centre lies in one of the split's tiles."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    keep = np.zeros(len(boxes), dtype=bool)
    for col, row in windows:
        keep |= (cx >= col) & (cx < col + tile) & (cy >= row) & (cy < row + tile)
    return keep


# ----------------------------------------------------------------------------- scoring
def _segmentation(predictor: ScenePredictor, base: Any, items: Sequence[_Item],
                  readers: Sequence[ImageReader], bar: Any) -> tuple[dict[str, Any], list]:
    spec = predictor.spec
    k, ignore = spec.num_classes, spec.ignore_index
    total = ConfusionMatrix(k, spec.class_names, "segmentation", ignore)
    rows = []
    for item, reader in zip(items, readers):
        cm = np.zeros((k, k), dtype=np.int64)
        scene = _SceneTargets(base, item, reader) if item.scene >= 0 else None
        target = base.read_target(item.index)["mask"] if scene is None else None
        if target is not None and not (np.asarray(target) != ignore).any():
            # no labelled pixel: nothing of this chip can count, so it is not predicted
            rows.append({"image": item.name, "pixels": 0, "accuracy": None, "miou": None,
                         "macro_f1": None})
            bar.update(1)
            continue
        for block in predictor.rows(item.paths, reader=reader):
            n, width = block.classes.shape
            valid = block.valid
            if scene is not None:
                valid = valid & _region(item.windows, base.tile_size, block.row, n, width)
                truth = scene.rows(block.row, n, ~valid)
            else:
                truth = target[block.row : block.row + n]
            cm += confusion_matrix(block.classes, truth, k, ignore, valid)
        if scene is not None and scene.invalid:
            log.warning("%s: %d label pixels outside the classes were left out.", item.name,
                        scene.invalid)
        total.add(cm)
        m = segmentation_metrics(cm, spec.class_names)
        rows.append({"image": item.name, "pixels": m["pixels"], "accuracy": m["accuracy"],
                     "miou": m["miou"], "macro_f1": m["macro_f1"]})
        bar.update(1)
    return total.compute(), rows


def _classification(predictor: ScenePredictor, base: Any, items: Sequence[_Item],
                    readers: Sequence[ImageReader], bar: Any) -> tuple[dict[str, Any], list]:
    spec = predictor.spec
    names = spec.class_names
    total = ConfusionMatrix(spec.num_classes, names, "classification")
    rows = []
    for item, reader in zip(items, readers):
        pred = predictor.predict(item.paths, reader=reader)
        truth = int(base.items[item.index][1])
        guess = int(pred.classes)  # type: ignore[arg-type]
        total.update(np.array([guess]), np.array([truth]))
        rows.append({"image": item.name, "label": names[truth],
                     "predicted": names[guess] if guess < len(names) else str(guess),
                     "confidence": float(pred.probabilities.max()),  # type: ignore[union-attr]
                     "correct": guess == truth})
        bar.update(1)
    return total.compute(), rows


_MASK_BYTES = 1 << 30  # full-image instance masks held at once for one image's mask mAP


def _full_masks(masks: Sequence[InstanceMask], shape: tuple[int, int]) -> np.ndarray:
    """``(N, H, W)`` bool masks of one image from the predictor's cropped instance masks."""
    out = np.zeros((len(masks), *shape), dtype=bool)
    for i, m in enumerate(masks):
        if not m.empty:
            out[i, m.row : m.row + m.height, m.col : m.col + m.width] = m.array()
    return out


def _detection(predictor: ScenePredictor, base: Any, items: Sequence[_Item],
               readers: Sequence[ImageReader], bar: Any,
               max_detections: int) -> tuple[dict[str, Any], list]:
    # mask mAP (segm_*) when the model predicts masks (Mask R-CNN) and the labels have outlines
    with_masks = bool(getattr(base, "instance_masks", False))
    metric = DetectionMetrics(predictor.spec.class_names, max_detections=max_detections,
                              masks=with_masks or None)
    rows = []
    for item, reader in zip(items, readers):
        pred = predictor.predict(item.paths, reader=reader)
        boxes, scores, labels = pred.boxes, pred.scores, pred.labels
        p_masks = pred.masks
        t_masks: np.ndarray | None = None
        if item.scene >= 0:
            t_boxes, t_labels, t_masks = _SceneTargets(base, item, reader).instances(with_masks)
            keep = _in_region(t_boxes, item.windows, base.tile_size)
            t_boxes, t_labels = t_boxes[keep], t_labels[keep]
            t_masks = None if t_masks is None else t_masks[keep]
            keep = _in_region(boxes, item.windows, base.tile_size)  # type: ignore[arg-type]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]  # type: ignore[index]
            p_masks = None if p_masks is None else [m for m, k in zip(p_masks, keep) if k]
        else:
            target = base.read_target(item.index)
            t_boxes, t_labels, t_masks = target["boxes"], target["labels"], target.get("masks")
        pred_dict: dict[str, Any] = {"boxes": boxes, "scores": scores, "labels": labels}
        target_dict: dict[str, Any] = {"boxes": t_boxes, "labels": t_labels}
        if metric.masks:
            info = reader.plan(item.paths[0]).info
            shape = (info.height, info.width)
            n = len(boxes) + len(t_boxes)  # type: ignore[arg-type]
            if p_masks is None or t_masks is None or n * shape[0] * shape[1] > _MASK_BYTES:
                why = ("the model predicts no masks" if p_masks is None else
                       "the labels have no outlines" if t_masks is None else
                       f"'{item.name}' needs {n} full-size masks of {shape[0]}x{shape[1]}")
                log.warning("Mask mAP is not computed (%s); box mAP only.", why)
                metric.drop_masks()
            else:
                pred_dict["masks"] = _full_masks(p_masks, shape)
                target_dict["masks"] = np.asarray(t_masks, dtype=bool)
        metric.update([pred_dict], [target_dict])
        rows.append({"image": item.name, "targets": len(t_boxes),
                     "predictions": len(boxes)})  # type: ignore[arg-type]
        bar.update(1)
    return metric.compute(), rows


# ----------------------------------------------------------------------------- outputs
def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items()
            if v is None or isinstance(v, (bool, int, float, str))}


def _csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _per_class(task: str, metrics: Mapping[str, Any], classes: Sequence[str],
               max_detections: int) -> tuple[list[dict[str, Any]], list[str]]:
    if task == "detection":
        cols = ["class", "ap", f"ar_{max_detections}"]
        return [{"class": c, "ap": metrics.get(f"ap_{c}"),
                 f"ar_{max_detections}": metrics.get(f"ar_{max_detections}_{c}")}
                for c in classes], cols
    cm = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    keys = ("iou", "f1") if task == "segmentation" else ("precision", "recall", "f1")
    rows = [{"class": c, **{key: metrics.get(f"{key}_{c}") for key in keys},
             "support": int(cm[i].sum()), "predicted": int(cm[:, i].sum())}
            for i, c in enumerate(classes)]
    return rows, ["class", *keys, "support", "predicted"]


def _write(out: Path, result: EvaluationResult, header: Mapping[str, Any],
           classes: Sequence[str], max_detections: int) -> tuple[Path, ...]:
    out.mkdir(parents=True, exist_ok=True)
    files = [atomic_write_json(out / "metrics.json", {**header, "metrics": result.metrics,
                                                       "per_image": result.per_image})]
    scalars = _scalars(result.metrics)
    files.append(atomic_write_text(out / "metrics.csv", _csv(
        [{"metric": k, "value": "" if v is None else v} for k, v in scalars.items()],
        ["metric", "value"])))
    rows, cols = _per_class(result.task, result.metrics, classes, max_detections)
    files.append(atomic_write_text(out / "per_class.csv", _csv(rows, cols)))
    image_cols = list(dict.fromkeys(k for r in result.per_image for k in r))
    files.append(atomic_write_text(out / "per_image.csv", _csv(result.per_image, image_cols)))
    if "confusion_matrix" in result.metrics:
        files.append(plot_confusion(result.metrics["confusion_matrix"], classes,
                                    out / "confusion_matrix.png",
                                    title=f"{result.split} ({len(result.per_image)} images)"))
    return tuple(files)


# ----------------------------------------------------------------------------- entry point
def _load_recipe(recipe: Any, model: Any, overrides: Sequence[str],
                 needed: bool) -> tuple[Recipe | None, str | None]:
    if recipe is None:
        run = _local_dir(model)
        found = run_recipe(run) if run is not None else None
        if found is None:
            if needed:
                where = f"'{model}' is not a run directory with a recipe.yaml" if isinstance(
                    model, (str, os.PathLike)) else "the model carries no recipe"
                raise ConfigError(f"Nothing to evaluate on: {where}. Give the RECIPE whose data "
                                  "split to use (rsfm evaluate MODEL RECIPE), or --images DIR "
                                  "--labels DIR.")
            return None, None
        if not needed:  # folders: the run's recipe only lends its label rules
            try:
                return load_recipe(found, overrides), str(found)
            except RsfmError as err:
                log.warning("The run's recipe '%s' cannot be read (%s): labels are read as "
                            "class ids.", found, err)
                return None, None
        recipe = found
    loaded = load_recipe(recipe, overrides)
    source = str(recipe) if isinstance(recipe, (str, os.PathLike)) else loaded.source
    return loaded, source


def _check_overrides(overrides: Any) -> list[str]:
    """``overrides`` as a list of ``key.path=value`` strings.

    Raises:
        ConfigError: A single string (it would be read character by character), or items that
            are not strings (names the argument and the value).
    """
    if isinstance(overrides, str):
        raise ConfigError(f"evaluate: overrides must be a list of 'key.path=value' strings, got "
                          f"the string {overrides!r}; pass [{overrides!r}].", key="overrides")
    if isinstance(overrides, Mapping) or not isinstance(overrides, Iterable):
        raise ConfigError(f"evaluate: overrides must be a list of 'key.path=value' strings, got "
                          f"{overrides!r}.", key="overrides")
    items = list(overrides)
    wrong = [o for o in items if not isinstance(o, str)]
    if wrong:
        raise ConfigError(f"evaluate: overrides must be 'key.path=value' strings; {wrong[0]!r} "
                          f"is a {type(wrong[0]).__name__}.", key="overrides")
    return items


def _check_classes(recipe: Recipe | None, spec: InputSpec) -> None:
    stated = recipe.data.classes if recipe is not None else None
    if not stated:
        return
    names = [c if isinstance(c, str) else c.name for c in stated]
    if len(names) != spec.num_classes:
        raise ConfigError(f"The recipe declares {len(names)} classes {names}, the model "
                          f"{spec.num_classes} {spec.class_names}: evaluate with the recipe the "
                          "model was trained with.", key="data.classes")
    if names != spec.class_names:
        log.warning("The recipe names the classes %s, the model %s; class ids are compared.",
                    names, spec.class_names)


def evaluate(
    model: Any,
    recipe: PathLike | Mapping[str, Any] | Recipe | None = None,
    *,
    split: str = "test",
    images: PathLike | None = None,
    labels: PathLike | None = None,
    out: PathLike | None = None,
    write: bool = True,
    overrides: Sequence[str] = (),
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    precision: str | None = None,
    device: str | None = None,
    score_threshold: float | None = None,
    max_detections: int = 100,
    image_suffix: str | None = None,
    label_suffix: str | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Metrics of a trained model on a labelled split or folders, with :func:`rsfm.predict`'s
    tiling and blending.

    Args:
        model: A run directory, saved model folder, Hub repo id, exported file, or an
            ``RsfmModel``.
        recipe: The recipe whose ``data`` split to use (a file, mapping or Recipe); default:
            the run directory's ``recipe.yaml``. With ``images``/``labels`` only its label
            rules (value map, ignored values, colour table) and suffixes are used.
        split: ``test`` (``data.test``) or ``val`` (``data.val``, else the share
            ``data.val_fraction`` holds out); ``train`` also works.
        images: A folder of images to evaluate on instead of a recipe split (classification:
            the root of the class sub-folders).
        labels: The folder of their labels, paired by file name (or a COCO ``.json``).
        out: Output folder (default: ``<run>/evaluation/<split>``, else
            ``./evaluation/<split>``; the run folder itself means ``<run>/evaluation/<split>``).
        write: Write the files (JSON, CSV, confusion matrix PNG).
        overrides: ``key=value`` overrides of the recipe.
        tile_size: Prediction tile (default: the model's training tile).
        overlap: Tile overlap in pixels (default: a quarter tile).
        batch_size: Tiles per forward pass.
        precision: ``fp32``, ``bf16`` or ``fp16`` (default as :func:`rsfm.predict`).
        device: Torch device (default: CUDA when available).
        score_threshold: Detection: minimum score of kept boxes (default: the recipe's
            ``eval.score_threshold``, else 0.05).
        max_detections: Detection: highest-scoring boxes counted per image (COCO: 100).
        image_suffix: Folder pairing: stem ending of images removed before matching (default:
            the recipe's, else detected).
        label_suffix: The same for labels.
        progress: Show a progress bar over the images.

    Returns:
        An :class:`EvaluationResult` (``result.metrics["miou"]``...).

    Raises:
        ConfigError: A device this machine does not have, ``overrides`` given as one string
            instead of a list, a split the recipe does not define
            (names the key to set), no recipe and no folders, contradicting arguments, an output
            folder that cannot be written or holds result files evaluate did not write, a
            result that would overwrite an input.
        DataError: Folders missing, given as files or not pairing (names the folder and the
            first unmatched files), unreadable images or labels, folders without any labelled
            pixel, segmentation labels mostly outside the classes (0/255 masks: the rule of
            ``rsfm check --data``, with the label_map to set), all before predicting.
        BandError: An image lacks a band the model needs.
    """
    t0 = time.perf_counter()
    check_device(device, "device=")  # before the model and the data are loaded
    overrides = _check_overrides(overrides)
    folders = images is not None or labels is not None
    if labels is not None and images is None:
        raise ConfigError("--labels needs --images (the folder of the images they label).")
    rec, recipe_file = _load_recipe(recipe, model, overrides, needed=not folders)
    if rec is not None and not folders:
        check_split(rec, split)
    name = split if not folders else "folders"
    run = _local_dir(model)
    out_dir = Path(out) if out is not None else (
        (run if run is not None else Path.cwd()) / "evaluation" / name)
    if out is not None and run is not None and same_file(out_dir, run):
        out_dir = run / "evaluation" / name  # the run's own metrics.csv etc. stay as they are
        log.info("--out '%s' is the model's run folder: the results go to '%s'.", out, out_dir)
    if write:
        check_writable_dir(out_dir, "--out" if out is not None else "Output folder")
        _check_results_folder(out_dir, run)
    if score_threshold is None:
        score_threshold = rec.eval.score_threshold if rec is not None else 0.05
    options = PredictOptions(tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                             device=device, precision=precision, score_threshold=score_threshold,
                             progress=False)
    pairs = None
    if folders and labels is not None and Path(labels).suffix.lower() != ".json":
        d = rec.data if rec is not None else None
        pairs = pair_folders(images, labels,  # type: ignore[arg-type]
                             image_suffix if image_suffix is not None else (
                                 d.image_suffix if d else ""),
                             label_suffix if label_suffix is not None else (
                                 d.label_suffix if d else ""))

    predictor = ScenePredictor(model, options=options)
    spec, task = predictor.spec, predictor.task
    _check_classes(rec, spec)
    if folders:
        dataset = _folder_dataset(task, spec, images, labels, pairs, rec)  # type: ignore[arg-type]
    else:
        dataset = build_split(rec, spec, split)  # type: ignore[arg-type]
    base, indices = base_dataset(dataset)
    items = _items(base, indices)
    if not items:
        raise DataError(f"The {name} split has no images to evaluate.")
    readers = [predictor.check(item.paths) for item in items]  # bands etc., before compute
    if task == "segmentation" and hasattr(base, "check_labels_sample"):
        base.check_labels_sample()  # the rule of `rsfm check --data`: 0/255 masks, 1/2 labels...
    if write:  # no result may overwrite an image, a label or the recipe
        read = FileSet([p for item in items for p in item.paths]
                       + (list(pairs[1]) if pairs else [])
                       + ([Path(recipe_file)] if recipe_file else []))
        for f in RESULT_FILES:
            check_output_path(out_dir / f, inputs=read, what="Result",
                              hint="choose another --out")

    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), unit="image", desc=f"evaluate {name}", disable=not progress,
               dynamic_ncols=True)
    try:
        if task == "segmentation":
            metrics, per_image = _segmentation(predictor, base, items, readers, bar)
        elif task == "classification":
            metrics, per_image = _classification(predictor, base, items, readers, bar)
        else:
            metrics, per_image = _detection(predictor, base, items, readers, bar, max_detections)
    finally:
        bar.close()
    metrics = {**metrics, "images": len(items)}
    notes = _label_notes(task, metrics, per_image, name, labels if folders else None,
                         _split_labels(rec, split) if not folders else None)
    result = EvaluationResult(task, name, metrics, per_image, None, (),
                              time.perf_counter() - t0)
    if write:
        header = {
            "rsfm_version": __version__, "task": task, "split": name,
            "model": str(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__,
            "recipe": recipe_file, "images_folder": str(images) if images is not None else None,
            "labels_folder": str(labels) if labels is not None else None,
            "classes": spec.class_names, "ignore_index": spec.ignore_index,
            "tile_size": predictor.tile, "overlap": predictor.overlap,
            "batch_size": batch_size, "precision": predictor.precision,
            **({"score_threshold": score_threshold, "max_detections": max_detections}
               if task == "detection" else {}),
            "seconds": round(result.seconds, 3),
            **({"notes": notes} if notes else {}),
        }
        files = _write(out_dir, result, header, spec.class_names, max_detections)
        result = EvaluationResult(task, name, metrics, per_image, out_dir, files,
                                  time.perf_counter() - t0)
    log.debug("%s (%.1f s)%s", result.summary(), result.seconds,
              f"; results in {out_dir}" if write else "")
    return result


def _is_evaluation(path: Path) -> bool:
    """Whether ``path`` is a ``metrics.json`` written by :func:`evaluate`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"rsfm_version", "split", "metrics"} <= set(data)


def _check_results_folder(out_dir: Path, run: Path | None) -> None:
    """Fail unless ``out_dir`` holds none of :data:`RESULT_FILES`, or holds an earlier
    evaluation (which is replaced); a file of the model folder is never replaced.

    Raises:
        ConfigError: A result file exists and was not written by evaluate (names it).
    """
    own = _is_evaluation(out_dir / "metrics.json")
    for name in RESULT_FILES:
        target = out_dir / name
        if target.is_dir():
            raise ConfigError(f"--out '{out_dir}' holds a folder '{name}' where evaluate writes "
                              "a file; choose another --out.")
        check_output_path(target, model_dir=run, what="Result", replaceable=lambda _p: own,
                          hint="choose another --out (default: <run>/evaluation/<split>)")
        if os.path.lexists(target) and not own:
            raise ConfigError(
                f"--out '{out_dir}' already holds '{name}', which rsfm evaluate did not write "
                "(there is no evaluation metrics.json next to it); evaluate replaces only its "
                "own earlier results: choose another --out, or move the file.")


def _split_labels(recipe: Recipe | None, split: str) -> Any:
    """The labels of a recipe split (``data.<split>.labels``; held-out shares: data.train's)."""
    if recipe is None:
        return None
    source = getattr(recipe.data, split, None) or recipe.data.train
    return getattr(source, "labels", None)


def _label_notes(task: str, metrics: Mapping[str, Any], per_image: Sequence[Mapping[str, Any]],
                 split: str, labels: PathLike | None, split_labels: Any = None) -> list[str]:
    """Warnings about images without any labelled pixel (segmentation), also returned for
    ``metrics.json``.

    Raises:
        DataError: Folders (``labels``) in which no pixel at all is labelled.
    """
    if task != "segmentation":
        return []
    where = f"--labels '{labels}'" if labels is not None else (
        f"the {split} split's labels" + (f" ({split_labels})" if split_labels else ""))
    if metrics.get("pixels") == 0:
        message = (f"No labelled pixel in {where}: every label pixel is the ignore index or "
                   "outside the classes (or its image pixel is nodata), so no metric can be "
                   "computed. Check the label folder, the classes and the recipe's label_map / "
                   "label_ignore_values.")
        if labels is not None:
            raise DataError(message)
        log.warning(message)
        return [message]
    empty = [r["image"] for r in per_image if r.get("pixels") == 0]
    if not empty:
        return []
    message = (f"{len(empty)} of {len(per_image)} images have no labelled pixel in {where} "
               f"and do not count: first {empty[:3]}.")
    log.warning(message)
    return [message]


def _folder_dataset(task: str, spec: InputSpec, images: PathLike, labels: PathLike | None,
                    pairs: tuple[list[Path], list[Path]] | None,
                    recipe: Recipe | None) -> Any:
    rules = label_rules(recipe.data) if recipe is not None else LabelRules()
    if task == "classification":
        if labels is not None:
            raise ConfigError("A classification model is evaluated on --images ROOT holding one "
                              "sub-folder per class name; drop --labels.")
        return ClassFolderDataset(images, spec)
    if labels is None:
        raise ConfigError(f"A {task} model needs --labels DIR next to --images DIR.")
    kind = "detection" if task == "detection" else "segmentation"
    if pairs is None:  # a COCO json
        return ChipDataset(images, labels, spec, task=kind, label_rules=rules,
                           skip_nodata=False)
    return ChipDataset([[p] for p in pairs[0]], [str(p) for p in pairs[1]], spec, task=kind,
                       label_rules=rules, skip_nodata=False,
                       align_labels=bool(recipe.data.align_labels) if recipe else False)
