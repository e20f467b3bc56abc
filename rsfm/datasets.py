"""A recipe's ``data:`` section as :mod:`rsfm.data` datasets: what training and evaluation read.

Every dataset reads with one :class:`~rsfm.spec.InputSpec` (bands, normalisation, classes,
nodata, tile size): the recipe's when training, the trained model's when evaluating. Label
values and colour masks go through the same :class:`~rsfm.data.labels.LabelRules` for every
source (chips, scenes, ArcGIS exports).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from rsfm.data.arcgis_datasets import arcgis_dataset
from rsfm.data.base import LabelSample
from rsfm.data.chips import ChipDataset
from rsfm.data.class_folders import ClassFolderDataset
from rsfm.data.labels import LabelRules
from rsfm.data.rasters import list_images
from rsfm.data.scenes import SceneDataset
from rsfm.data.splits import block_split, random_split
from rsfm.data.transforms import build_transforms
from rsfm.errors import ConfigError, DataError
from rsfm.schema import DataConfig, DataSource, Recipe
from rsfm.spec import InputSpec

__all__ = [
    "SPLITS",
    "Datasets",
    "base_dataset",
    "build_datasets",
    "build_split",
    "check_datasets",
    "check_split",
    "describe_datasets",
    "label_rules",
]

SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Datasets:
    """The splits of a recipe (validation and test without augmentation)."""

    train: Dataset
    val: Dataset | None = None
    test: Dataset | None = None


def label_rules(data: DataConfig) -> LabelRules:
    """The recipe's label value map, ignored values and colour table."""
    return LabelRules(value_map=data.label_map, ignore_values=data.label_ignore_values,
                      color_map=data.color_map)


def _key(path: Path, suffix: str) -> str:
    stem = path.stem
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


def _scene_files(src: DataSource, image_suffix: str, label_suffix: str) -> tuple[Any, Any]:
    """Folders of scenes become file lists; a label folder is paired with them by name."""
    images: Any = src.images
    listed = [images] if isinstance(images, str) else list(images or ())
    missing = [str(p) for p in listed if not Path(p).exists()]
    if missing:  # checked before pairing, so a typo is not reported as a missing label
        raise ConfigError(f"data: images not found: {', '.join(repr(m) for m in missing[:5])}"
                          + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if isinstance(images, str) and Path(images).is_dir():
        images = [str(p) for p in list_images(images)]
    labels: Any = src.labels
    if isinstance(labels, str) and Path(labels).is_dir():
        table = {_key(p, label_suffix): p for p in list_images(labels)}
        paired = []
        for im in images if isinstance(images, (list, tuple)) else [images]:
            key = _key(Path(im), image_suffix)
            if key not in table:
                raise ConfigError(f"data: no label in '{labels}' for scene '{im}' (looked for "
                                  f"'{key}{label_suffix}.*'); set data.image_suffix/label_suffix.")
            paired.append(str(table[key]))
        labels = paired
    return images, labels


def _dataset(recipe: Recipe, spec: InputSpec, src: DataSource, augment: bool) -> Dataset:
    d = recipe.data
    transforms = build_transforms(d.augment) if augment and d.augment else None
    if d.kind == "arcgis":  # an ArcGIS "Export Training Data For Deep Learning" folder
        return arcgis_dataset(src.images, spec, task=recipe.model.task,  # type: ignore[arg-type]
                              label_rules=label_rules(d), split_file=src.split_file,
                              skip_nodata=d.skip_nodata, missing_labels=d.missing_labels,
                              transforms=transforms,
                              instance_masks=recipe.model.head == "mask_rcnn")
    if recipe.model.task == "classification":
        if d.kind != "class_folders" or not isinstance(src.images, str):
            raise ConfigError("data: classification recipes use kind: class_folders with "
                              "images: <folder> holding one sub-folder per class name.")
        return ClassFolderDataset(src.images, spec, transforms=transforms,
                                  every_class=src is d.train)
    if d.kind == "class_folders":
        raise ConfigError(f"data.kind: class_folders is for classification, not "
                          f"{recipe.model.task}; use kind: chips or scenes.")
    task = "detection" if recipe.model.task == "detection" else "segmentation"
    common: dict[str, Any] = {"task": task, "label_rules": label_rules(d),
                              "align_labels": d.align_labels, "transforms": transforms,
                              "instance_masks": recipe.model.head == "mask_rcnn"}
    if d.kind == "scenes":
        if src.images is None:
            raise ConfigError("data: kind 'scenes' needs images: (scene files or a folder).")
        images, labels = _scene_files(src, d.image_suffix, d.label_suffix)
        return SceneDataset(images, labels, spec, stride=d.stride, skip_nodata=d.skip_nodata,
                            seed=recipe.train.seed, **common)
    return ChipDataset(src.images, src.labels, spec, manifest=src.manifest, split=src.split,
                       split_file=src.split_file, image_suffix=d.image_suffix,
                       label_suffix=d.label_suffix, label_format=d.label_format,
                       skip_nodata=d.skip_nodata, missing_labels=d.missing_labels, **common)


def _held_out(recipe: Recipe, train: Dataset) -> tuple[list[int], list[int]]:
    """``(train indices, val indices)`` of ``data.val_fraction`` (seeded; spatial blocks with
    ``data.val_block_size``). Depends only on the files, not on augmentation."""
    d = recipe.data
    fractions = {"train": 1.0 - d.val_fraction, "val": d.val_fraction}
    if d.val_block_size:
        split = block_split(train, d.val_block_size, fractions, seed=recipe.train.seed)
    else:
        split = random_split(train, fractions, seed=recipe.train.seed)
    return split["train"], split["val"]


def build_datasets(recipe: Recipe, spec: InputSpec) -> Datasets:
    """Train, validation and test datasets of a recipe, all reading with ``spec``.

    Without ``data.val``, ``data.val_fraction`` holds out a seeded share of the training files
    (as spatial blocks with ``data.val_block_size``), read without augmentation.
    """
    d = recipe.data
    train = _dataset(recipe, spec, d.train, augment=True)
    test = _dataset(recipe, spec, d.test, augment=False) if d.test is not None else None
    if d.val is not None:
        return Datasets(train, _dataset(recipe, spec, d.val, augment=False), test)
    if d.val_fraction <= 0:
        return Datasets(train, None, test)
    keep, held = _held_out(recipe, train)
    if not keep:
        blocks = f" in blocks of data.val_block_size {d.val_block_size}" if d.val_block_size else ""
        raise ConfigError(
            f"data.val_fraction {d.val_fraction} holds out {len(held)} of the {len(train)} "  # type: ignore[arg-type]
            f"training samples{blocks} for validation and leaves 0 to train on. Use a smaller "
            "data.val_fraction (or 0), give more training files, or set data.val to its own "
            "files.", key="data.val_fraction")
    if not held:
        log.warning("data.val_fraction %s holds out none of the %d training samples: there is "
                    "no validation. Use a larger data.val_fraction, or set data.val.",
                    d.val_fraction, len(keep))
    val = _dataset(recipe, spec, d.train, augment=False)  # same files, no augmentation
    return Datasets(Subset(train, keep), Subset(val, held), test)


def check_split(recipe: Recipe, split: str) -> None:
    """Fail unless ``recipe`` defines ``split`` (reads no file).

    Raises:
        ConfigError: An unknown split, or one the recipe does not define (names the key to set).
    """
    d = recipe.data
    if split not in SPLITS:
        raise ConfigError(f"split {split!r} is not one of {list(SPLITS)}.", key="split")
    if split == "test" and d.test is None:
        raise ConfigError(
            "The recipe has no test split: set data.test (e.g. data.test: {images: <folder>, "
            "labels: <folder>}), evaluate --split val, or give --images DIR --labels DIR.",
            key="data.test")
    if split == "val" and d.val is None and d.val_fraction <= 0:
        raise ConfigError(
            "The recipe has no validation split: set data.val (e.g. data.val: {images: "
            "<folder>, labels: <folder>}) or data.val_fraction (a held-out share of "
            "data.train), or evaluate --split test.", key="data.val")


def build_split(recipe: Recipe, spec: InputSpec, split: str) -> Dataset:
    """One split of a recipe without augmentation (what :func:`rsfm.evaluate` scores).

    ``val`` is ``data.val``, else the share of the training files ``data.val_fraction`` holds
    out (the same samples training validated on).

    Raises:
        ConfigError: An unknown split, or one the recipe does not define (names the key to set).
    """
    check_split(recipe, split)
    d = recipe.data
    if split == "test":
        return _dataset(recipe, spec, d.test, augment=False)  # type: ignore[arg-type]
    if split == "train":
        return _dataset(recipe, spec, d.train, augment=False)
    if d.val is not None:
        return _dataset(recipe, spec, d.val, augment=False)
    train = _dataset(recipe, spec, d.train, augment=False)
    return Subset(train, _held_out(recipe, train)[1])


def base_dataset(ds: Dataset) -> tuple[Any, list[int]]:
    """``(the dataset under any Subset, the indices of ``ds``'s samples in it)``."""
    indices = list(range(len(ds)))  # type: ignore[arg-type]
    while isinstance(ds, Subset):
        indices = [ds.indices[i] for i in indices]
        ds = ds.dataset
    return ds, indices


def _splits(datasets: Datasets) -> list[tuple[str, Dataset]]:
    return [(name, ds) for name, ds in (("train", datasets.train), ("val", datasets.val),
                                        ("test", datasets.test)) if ds is not None]


def _label_folder(files: tuple[str, ...]) -> str:
    """The folder holding ``files`` (label files; their common folder when there are several)."""
    try:
        return os.path.commonpath([str(Path(f).parent) for f in files])
    except ValueError:  # different drives
        return str(Path(files[0]).parent)


def _check_labelled(base: Any, split: str, sample: LabelSample) -> None:
    """Fail when no label pixel of the whole dataset has a class; warn when none of a sample of
    it has one (labels may cover a part of the scenes that the sample missed), and (training
    split) for each class without a pixel in the sample."""
    folder = _label_folder(sample.files)
    where = (f"all {sample.targets} {split} samples" if sample.complete
             else f"{sample.targets} of the {len(base)} {split} samples (spread evenly)")
    if not sample.labelled:
        rules = base.label_rules
        ignored = [base.spec.ignore_index, *(v for v in rules.ignore_values
                                             if v != base.spec.ignore_index)]
        text = (f"No label pixel of {where} has a class: every pixel of the "
                f"labels in '{folder}' (e.g. '{sample.files[0]}') is 'no label' (values "
                f"{ignored}: ignore_index and data.label_ignore_values, NaN or nodata)")
        fix = "Check the label files, data.label_ignore_values and data.label_map."
        if sample.complete:
            raise DataError(f"{text}, so there is nothing to learn from. {fix}")
        log.warning("%s. Training learns only from labelled pixels elsewhere, if any. %s",
                    text, fix)
        return
    if split != "train":
        return
    names = base.spec.class_names
    missing = [n for i, n in enumerate(names) if i not in sample.classes_seen]
    if missing:
        log.warning("Class(es) %s have no pixel in the labels of %s "
                    "('%s'): the model sees no example of them there. Check "
                    "data.classes and data.label_map, or add labelled samples.",
                    ", ".join(repr(m) for m in missing), where, folder)


def check_datasets(datasets: Datasets, n_tiles: int = 8) -> list[str]:
    """Read the labels of ``n_tiles`` samples spread over every split (8 times more when they
    have no labelled pixel) and fail when most of a label file's pixels fall outside the classes;
    returns one line per split (what was read, all-nodata tiles skipped).

    Raises:
        DataError: Labels that do not fit the classes (names the files, values and the fix), or
            no labelled pixel in a split read whole.
    """
    lines = []
    held_out = isinstance(datasets.train, Subset) and isinstance(datasets.val, Subset)
    for name, ds in _splits(datasets):
        base = base_dataset(ds)[0]
        text = f"{name}: {len(ds)} samples"  # type: ignore[arg-type]
        if name == "val" and held_out:
            lines.append(text + " (held out from the training files)")
            continue
        if hasattr(base, "check_labels_sample"):
            sample = base.check_labels_sample(n_tiles)
            if sample.targets and not sample.labelled and len(base) > n_tiles:
                sample = base.check_labels_sample(min(len(base), 8 * n_tiles))  # look further
            if sample.targets:
                _check_labelled(base, name, sample)
                text += (f"; labels of {sample.targets} target(s): {sample.labelled:,} pixels "
                         f"with a class, {sample.invalid:,} outside the classes")
        if hasattr(base, "check_sizes"):
            base.check_sizes(base.spec.tile_size)
        skipped = getattr(getattr(base, "report", None), "skipped_nodata", 0)
        if skipped:
            text += f"; {skipped} all-nodata tile(s) skipped"
        lines.append(text)
    return lines


def describe_datasets(datasets: Datasets) -> str:
    """``# data: ...`` lines for ``rsfm check --data`` (runs :func:`check_datasets`)."""
    return "".join(f"# data {line}\n" for line in check_datasets(datasets))
