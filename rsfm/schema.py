"""The recipe schema: one frozen dataclass per YAML section (``model`` is :class:`ModelConfig`).

Reading YAML, ``include:``, overrides and error formatting live in :mod:`rsfm.recipe`; this module
holds only the types. Each class checks its own values in ``__post_init__`` (the one validator of
that section, also run by pydantic when a recipe is read), and :class:`Recipe` checks what spans
sections (class counts against ``num_classes``, the metric against the task).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from rsfm.config import (
    AUGMENTATIONS,
    FORBID,
    BandDecl,
    ClassDecl,
    LoraSettings,
    ModelConfig,
    check,
    freeze_sequences,
)

__all__ = [
    "AUGMENTATIONS",
    "AUGMENT_OPTIONS",
    "TASK_METRICS",
    "DataConfig",
    "DataSource",
    "EarlyStoppingConfig",
    "EvalConfig",
    "FreezeConfig",
    "LossConfig",
    "NormalizationConfig",
    "OptimizerConfig",
    "OutputConfig",
    "Recipe",
    "SchedulerConfig",
    "TrainConfig",
    "UnfreezeStep",
]

Metric = Literal["miou", "macro_f1", "accuracy", "loss", "map", "map_50", "map50"]  # map50: 0.1 name
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "segmentation": ("miou", "macro_f1", "accuracy", "loss"),
    "classification": ("accuracy", "macro_f1", "loss"),
    "detection": ("map", "map_50", "loss"),
}
DEFAULT_METRIC = {"segmentation": "miou", "classification": "accuracy", "detection": "map"}


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# The options of each data.augment entry (the keyword arguments of the transform that
# rsfm.data.transforms builds, plus ``p``; a test keeps them equal).
AUGMENT_OPTIONS: dict[str, tuple[str, ...]] = {
    "resized_crop": ("size", "scale", "ratio", "interpolation", "antialias", "p"),
    "hflip": ("p",),
    "vflip": ("p",),
    "rot90": ("p",),
    "band_jitter": ("gain", "offset", "p"),
    "noise": ("std", "p"),
    "haze": ("p", "max_haze", "max_cloud", "coverage", "brightness", "scale"),
}
MIN_TILE = 8  # pixels a side: data.tile_size and data.augment.resized_crop.size


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite(values: Sequence[float] | None) -> bool:
    return values is None or all(_number(v) for v in values)


def _pair(value: Any, key: str, what: str) -> None:
    """``value`` is two finite numbers ``0 < low <= high`` (a ``scale`` or ``ratio`` range)."""
    ok = (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
          and all(_number(v) and v > 0 for v in value) and value[0] <= value[1])
    check(ok, key, f"must be two numbers [min, max] with 0 < min <= max ({what}; got {value!r})")


def check_augmentation(name: str, value: Any) -> None:
    """Check one ``data.augment`` entry: ``true``/``false``, a probability, or a mapping of the
    transform's options (``p`` a probability; ``resized_crop``: ``size`` in pixels, ``scale`` and
    ``ratio`` ranges).

    Raises:
        ConfigError: Names ``augment.<name>[.<option>]`` and the value.
    """
    key = f"augment.{name}"
    if value is None or value is False:
        return
    if name == "resized_crop" and not isinstance(value, Mapping):
        check(False, key, f"needs a mapping with size (output pixels), e.g. {{size: 224, scale: "
                          f"[0.5, 1.0]}} (got {value!r})")
    if value is True:
        return
    if isinstance(value, (int, float)):
        check(_number(value) and 0 <= value <= 1, key,
              f"must be a probability in [0, 1] (got {value!r})")
        return
    check(isinstance(value, Mapping), key,
          f"must be true/false, a probability in [0, 1], or a mapping of options "
          f"{list(AUGMENT_OPTIONS[name])} (got {value!r})")
    options = AUGMENT_OPTIONS[name]
    for option in value:
        close = difflib.get_close_matches(str(option), options, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        check(option in options, f"{key}.{option}",
              f"unknown option.{hint} Options of {name}: {list(options)}")
    if "p" in value:
        p = value["p"]
        check(_number(p) and 0 <= p <= 1, f"{key}.p", f"must be a probability in [0, 1] (got {p!r})")
    if name == "resized_crop":
        check("size" in value, key, "needs size: the output tile side in pixels (e.g. size: 224)")
        size = value["size"]
        sides = list(size) if isinstance(size, Sequence) and not isinstance(size, str) else [size]
        ok = len(sides) in (1, 2) and all(isinstance(v, int) and not isinstance(v, bool)
                                           and v >= MIN_TILE for v in sides)
        check(ok, f"{key}.size", f"must be an integer >= {MIN_TILE} (pixels), or two of them "
                                 f"[height, width] (got {size!r})")
        if "scale" in value:
            _pair(value["scale"], f"{key}.scale", "the share of the tile's area to crop")
        if "ratio" in value:
            _pair(value["ratio"], f"{key}.ratio", "the crop's aspect ratio range")


def parse_duration(value: str | float, key: str = "max_time") -> float:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"1h30m"`` or a number of seconds -> seconds (> 0).

    Raises:
        ConfigError: Not a duration (names ``key``).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text, seconds, number = str(value).strip().lower().replace(" ", ""), 0.0, ""
        ok = bool(text)
        for ch in text:
            if ch.isdigit() or ch == ".":
                number += ch
            elif ch in _UNITS and number:
                seconds += float(number) * _UNITS[ch]
                number = ""
            else:
                ok = False
                break
        if number:  # trailing bare number: seconds
            seconds += float(number)
        check(ok, key, f"{value!r} is not a duration; write e.g. 90s, 10m, 2h or 1h30m")
    check(seconds > 0, key, f"must be > 0 (got {value!r})")
    return seconds


@dataclass(frozen=True)
class DataSource:
    """Where one split's files are: folders, a manifest CSV, or both plus a split filter."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    images: str | tuple[str, ...] | None = None
    labels: str | tuple[str, ...] | None = None
    manifest: str | None = None
    split: str | None = None
    split_file: str | None = None
    # the keys that name files or folders (what a command reads, and relative paths resolve)
    PATH_KEYS: ClassVar[tuple[str, ...]] = ("images", "labels", "manifest", "split_file")

    def paths(self, keys: Sequence[str] = PATH_KEYS) -> list[tuple[str, str]]:
        """``(key, path)`` of every file, folder or pattern this split names under ``keys``."""
        out = []
        for key in keys:
            value = getattr(self, key)
            for entry in (value,) if isinstance(value, str) else value or ():
                out.append((key, entry))
        return out

    def __post_init__(self) -> None:
        freeze_sequences(self, "images", "labels")
        check(self.images is not None or self.manifest is not None, "images",
              "give the image folder/files (images:) or a manifest CSV (manifest:)")


@dataclass(frozen=True)
class NormalizationConfig:
    """How raw pixels become model input.

    ``card``: the backbone's pretraining statistics (mean/std picked by band);
    ``stats``: ``mean``/``std`` given here (typically ``include:``-d from ``rsfm stats`` output);
    ``per_tile``: per tile and band standardisation; ``minmax``: per tile to [0, 1]; ``none``.
    ``value_scale`` multiplies raw values first (``card`` uses the card's ``1 / divide_by``).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    mode: Literal["card", "stats", "per_tile", "minmax", "none"] = "card"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    value_scale: float | None = None
    bands: tuple[str, ...] | None = None  # the bands mean/std belong to (stats files say it)
    # informative keys written by ``rsfm stats`` (accepted so its YAML can be included as is)
    count: int | None = None
    min: tuple[float, ...] | None = None
    max: tuple[float, ...] | None = None
    files: int | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "mean", "std", "bands", "min", "max")
        check((self.mean is None) == (self.std is None), "mean",
              "give both mean and std, or neither")
        if self.mean is not None and self.std is not None:
            check(len(self.mean) == len(self.std), "std",
                  f"needs {len(self.mean)} values like mean (got {list(self.std)})")
            check(_finite(self.mean), "mean", f"must be finite numbers (got {list(self.mean)})")
            check(_finite(self.std) and all(s > 0 for s in self.std), "std",
                  f"must be finite numbers > 0 (got {list(self.std)})")
        check(self.mode != "stats" or self.mean is not None, "mode",
              "'stats' needs mean and std (e.g. include: a YAML written by `rsfm stats`)")
        check(self.value_scale is None or (_number(self.value_scale) and self.value_scale > 0),
              "value_scale", f"must be a finite number > 0 (got {self.value_scale})")


@dataclass(frozen=True)
class DataConfig:
    """The ``data:`` section. ``bands``/``classes`` may instead be given in ``model:``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    train: DataSource
    val: DataSource | None = None
    test: DataSource | None = None
    # class_folders: images/<class>/; arcgis: an ArcGIS "Export Training Data" folder
    kind: Literal["chips", "scenes", "class_folders", "arcgis"] = "chips"
    val_fraction: float = 0.0  # hold out this share of train (seeded) when val is absent
    val_block_size: float | None = None  # ... as spatial blocks of this size (map units)
    classes: tuple[str | ClassDecl, ...] | None = None
    bands: tuple[str | BandDecl, ...] | None = None
    indices: tuple[str, ...] = ()  # spectral indices appended as channels (NDVI, NDWI, ...)
    file_bands: tuple[str, ...] | None = None
    sensor: str | None = None
    nodata: float | None = None
    ignore_index: int = -1
    label_map: dict[int, int] | None = None
    label_ignore_values: tuple[int, ...] = ()
    image_suffix: str = ""
    label_suffix: str = ""
    color_map: dict[str, int] | None = None  # colour masks: "#RRGGBB" -> class id
    label_format: Literal["raster", "voc", "yolo", "coco"] | None = None
    align_labels: bool = False  # resample label rasters on another grid/CRS onto the images
    tile_size: int | None = None  # scenes: tile side; chips: informative (inference tiling)
    stride: int | None = None
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    augment: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    eval_batch_size: int | None = None
    num_workers: int = 0
    skip_nodata: bool = True
    missing_labels: Literal["error", "skip"] = "error"  # chips: images without a label file

    def sources(self) -> list[tuple[str, DataSource]]:
        """``(split, source)`` of the splits the recipe states (train, then val and test)."""
        return [(name, src) for name, src in (("train", self.train), ("val", self.val),
                                              ("test", self.test)) if src is not None]

    def __post_init__(self) -> None:
        freeze_sequences(self, "classes", "bands", "indices", "file_bands", "label_ignore_values")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1 (got {self.batch_size})")
        check(self.eval_batch_size is None or self.eval_batch_size >= 1, "eval_batch_size",
              f"must be >= 1 (got {self.eval_batch_size})")
        check(0 <= self.val_fraction < 1, "val_fraction",
              f"must be in [0, 1) (got {self.val_fraction})")
        check(self.num_workers >= 0, "num_workers", f"must be >= 0 (got {self.num_workers})")
        check(self.tile_size is None or self.tile_size >= MIN_TILE, "tile_size",
              f"must be >= 8 pixels (got {self.tile_size})")
        check(self.stride is None or self.stride >= 1, "stride", f"must be >= 1 (got {self.stride})")
        check(self.val_block_size is None or self.val_fraction > 0, "val_block_size",
              "holds out spatial blocks of data.val_fraction, which is 0; set val_fraction too")
        check(self.bands is None or len(self.bands) > 0, "bands",
              "is an empty list: list the bands, or leave the key out")
        if isinstance(self.bands, str):
            check(False, "bands", f"must be a list of band names, e.g. [{self.bands!r}]")
        for key in self.augment:
            close = difflib.get_close_matches(str(key), AUGMENTATIONS, n=2, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            check(key in AUGMENTATIONS, f"augment.{key}",
                  f"unknown augmentation.{hint} Allowed: {list(AUGMENTATIONS)}")
            check_augmentation(key, self.augment[key])


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW or SGD; ``layer_decay`` < 1 gives ViT blocks layer-wise learning-rate decay."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    layer_decay: float | None = None
    backbone_lr_mult: float = 1.0

    def __post_init__(self) -> None:
        freeze_sequences(self, "betas")
        check(self.lr > 0 and math.isfinite(self.lr), "lr",
              f"must be a finite number > 0 (got {self.lr})")
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0 (got {self.weight_decay})")
        check(len(self.betas) == 2 and all(_number(b) and 0 <= b < 1 for b in self.betas),
              "betas", f"must be two numbers in [0, 1) (got {list(self.betas)}; AdamW's usual "
                       "values are [0.9, 0.999])")
        check(self.layer_decay is None or 0 < self.layer_decay <= 1, "layer_decay",
              f"must be in (0, 1] (got {self.layer_decay})")
        check(self.backbone_lr_mult >= 0, "backbone_lr_mult",
              f"must be >= 0 (got {self.backbone_lr_mult})")


@dataclass(frozen=True)
class SchedulerConfig:
    """Per-step schedule: linear warmup then ``cosine`` / ``linear`` decay, or ``constant``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        check(self.warmup_epochs >= 0, "warmup_epochs", f"must be >= 0 (got {self.warmup_epochs})")
        check(self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps",
              f"must be >= 0 (got {self.warmup_steps})")
        check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio",
              f"must be in [0, 1] (got {self.min_lr_ratio})")


@dataclass(frozen=True)
class LossConfig:
    """Segmentation/classification loss (detection models return torchvision's own losses)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: Literal["ce", "dice", "focal", "ce+dice", "focal+dice"] = "ce"
    class_weights: tuple[float, ...] | None = None
    dice_weight: float = 1.0
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        freeze_sequences(self, "class_weights")
        check(self.dice_weight >= 0, "dice_weight", f"must be >= 0 (got {self.dice_weight})")
        check(_number(self.focal_gamma) and self.focal_gamma >= 0, "focal_gamma",
              f"must be a finite number >= 0 (got {self.focal_gamma})")
        w = self.class_weights
        if w is not None:
            check(_finite(w) and all(v >= 0 for v in w), "class_weights",
                  f"must be finite numbers >= 0, one per class (got {list(w)})")
            check(any(v > 0 for v in w), "class_weights",
                  f"are all 0 (got {list(w)}): the loss would be 0/0; give the classes to learn "
                  "a weight > 0")
        check(0 <= self.label_smoothing < 1, "label_smoothing",
              f"must be in [0, 1) (got {self.label_smoothing})")


@dataclass(frozen=True)
class UnfreezeStep:
    """At the start of ``epoch`` (0-based), make ``modules`` trainable.

    Entries: ``backbone`` (all of it), ``layer3``/``layer4`` (ResNet stages), ``blocks.8-11``
    (ViT blocks, inclusive range), ``last_blocks:4`` / ``last_stages:2``, or any module path.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    epoch: int
    modules: tuple[str, ...] = ("backbone",)
    lr_mult: float = 1.0

    def __post_init__(self) -> None:
        freeze_sequences(self, "modules")
        check(self.epoch >= 0, "epoch", f"must be >= 0 (got {self.epoch})")


@dataclass(frozen=True)
class FreezeConfig:
    """Backbone freezing (``model.freeze_backbone`` also starts frozen) and progressive unfreezing."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    backbone: bool = False
    unfreeze: tuple[UnfreezeStep, ...] = ()

    def __post_init__(self) -> None:
        freeze_sequences(self, "unfreeze")


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when ``eval.metric`` has not improved by ``min_delta`` for ``patience`` evaluations."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    patience: int = 5
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        check(self.patience >= 1, "patience", f"must be >= 1 (got {self.patience})")


@dataclass(frozen=True)
class TrainConfig:
    """The ``train:`` section."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps in total
    max_time: str | float | None = None  # wall-time budget: "90s", "10m", "2h", "1h30m" or seconds
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    grad_accum_steps: int = 1
    clip_grad_norm: float | None = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None  # None: accelerate config
    seed: int = 42
    deterministic: bool = False
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    early_stopping: EarlyStoppingConfig | None = None
    resume: bool | Literal["auto"] = False
    checkpoint_every: int = 1  # epochs between resumable checkpoints
    log_every: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "epochs", f"must be >= 1 (got {self.epochs})")
        check(self.max_steps is None or self.max_steps >= 1, "max_steps",
              f"must be >= 1 (got {self.max_steps})")
        check(self.grad_accum_steps >= 1, "grad_accum_steps",
              f"must be >= 1 (got {self.grad_accum_steps})")
        check(self.clip_grad_norm is None or self.clip_grad_norm > 0, "clip_grad_norm",
              f"must be > 0 or null (got {self.clip_grad_norm})")
        check(self.checkpoint_every >= 1, "checkpoint_every",
              f"must be >= 1 (got {self.checkpoint_every})")
        if self.max_time is not None:
            parse_duration(self.max_time, "max_time")
        check(self.log_every >= 1, "log_every", f"must be >= 1 (got {self.log_every})")
        for step in self.freeze.unfreeze:
            check(step.epoch < self.epochs, "freeze.unfreeze",
                  f"epoch {step.epoch} is not before the last epoch (epochs: {self.epochs})")


@dataclass(frozen=True)
class EvalConfig:
    """Validation: which metric picks the best checkpoint (``mode`` inferred from the metric)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    metric: Metric | None = None
    mode: Literal["max", "min"] | None = None
    every: int = 1
    score_threshold: float = 0.05  # detection

    def __post_init__(self) -> None:
        check(self.every >= 1, "every", f"must be >= 1 (got {self.every})")
        check(0 <= self.score_threshold < 1, "score_threshold",
              f"must be in [0, 1) (got {self.score_threshold})")


@dataclass(frozen=True)
class OutputConfig:
    """Where the run goes. ``dir`` may use ``{name}``; relative to the working directory."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    dir: str = "runs/{name}"
    overwrite: bool = False
    plots: bool = True
    trackers: tuple[str, ...] = ()  # accelerate trackers: tensorboard, wandb, mlflow, comet_ml, ...
    keep_checkpoints: int = 1  # resumable checkpoints kept (only the newest keeps optimizer state)
    push_to_hub: str | None = None
    hub_private: bool = True
    hub_datasets: tuple[str, ...] = ()  # Hub dataset ids for the model card metadata

    def __post_init__(self) -> None:
        freeze_sequences(self, "hub_datasets", "trackers")
        check(self.keep_checkpoints >= 1, "keep_checkpoints",
              f"must be >= 1 (got {self.keep_checkpoints})")


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    model: ModelConfig
    data: DataConfig
    name: str = "run"
    description: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraSettings | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: str | None = None  # the file the recipe came from (set by load_recipe)

    def __post_init__(self) -> None:
        m, d = self.model, self.data
        name = self.name
        if "{name}" in str(self.output.dir):  # the name becomes a folder: one plain path part
            check(bool(name.strip()) and not any(c in name for c in "/\\")
                  and name.strip() not in (".", ".."), "name",
                  f"{name!r} names the run's folder (output.dir {self.output.dir!r}); use a "
                  "plain name without '/' or '\\' (put the folder in output.dir)")
        classes = d.classes if d.classes is not None else m.classes
        if classes is not None:
            where = "data.classes" if d.classes is not None else "model.classes"
            check(len(classes) == m.num_classes, where,
                  f"{len(classes)} names {[getattr(c, 'name', c) for c in classes]} but "
                  f"model.num_classes is {m.num_classes}")
        weights = self.train.loss.class_weights
        if weights is not None:
            check(len(weights) == m.num_classes, "train.loss.class_weights",
                  f"needs {m.num_classes} values, one per class (got {list(weights)})")
        check(self.metric in TASK_METRICS[m.task], "eval.metric",
              f"{self.metric!r} is not a {m.task} metric; choose one of {list(TASK_METRICS[m.task])}")
        check(m.task != "classification" or d.kind in ("class_folders", "arcgis"), "data.kind",
              "classification recipes read kind: class_folders (images/<class name>/*.tif)")
        check(m.head != "mask_rcnn" or d.kind != "chips", "data.kind",
              "model.head mask_rcnn learns object outlines, but chip labels (PASCAL VOC, YOLO, "
              "COCO) are read as boxes; use polygon labels over scenes (kind: scenes with a "
              "vector file) or an ArcGIS RCNN_Masks export, or a box head (faster_rcnn)")
        if self.eval.mode is not None:
            natural = "min" if self.metric == "loss" else "max"
            check(self.eval.mode == natural, "eval.mode",
                  f"{self.eval.mode!r} would keep the checkpoint with the "
                  f"{'highest' if self.eval.mode == 'max' else 'lowest'} {self.metric}, but "
                  f"{self.metric} is better when {'lower' if natural == 'min' else 'higher'}; "
                  f"use {natural!r} or leave eval.mode out")
        check(d.val is None or not d.val_fraction, "data.val_fraction",
              f"{d.val_fraction} holds out training files for validation, but data.val is given "
              "too (and would be used); keep one of them")
        hidden = set(d.label_ignore_values or ()) & set(range(m.num_classes))
        check(d.label_map or d.color_map or len(hidden) < m.num_classes, "data.label_ignore_values",
              f"{sorted(hidden)} are the ids of every class (0..{m.num_classes - 1}): no label "
              "pixel would be left to learn from; list only the 'no label' values")
        for key, table in (("data.label_map", d.label_map), ("data.color_map", d.color_map)):
            bad = {k: v for k, v in (table or {}).items()
                   if not (0 <= v < m.num_classes or v == d.ignore_index)}
            check(not bad, key, f"{bad} map to no class: targets are class ids 0.."
                                f"{m.num_classes - 1}, or data.ignore_index ({d.ignore_index}) "
                                "for 'no label'")

    @property
    def max_seconds(self) -> float | None:
        """``train.max_time`` in seconds (None: no time budget)."""
        return None if self.train.max_time is None else parse_duration(self.train.max_time,
                                                                         "train.max_time")

    @property
    def metric(self) -> str:
        """The validation metric that selects the best checkpoint."""
        metric = self.eval.metric or DEFAULT_METRIC[self.model.task]
        return "map_50" if metric == "map50" else metric  # torchmetrics' name since 0.2

    @property
    def metric_mode(self) -> str:
        """``max`` or ``min``."""
        return self.eval.mode or ("min" if self.metric == "loss" else "max")

    def output_dir(self) -> Path:
        """The run directory with ``{name}`` filled in."""
        return Path(self.output.dir.replace("{name}", self.name))
