"""``prepare_data``: a folder as it is -> the recipe's ``data:`` section and what was found in it.

The notebook API's first step (``arcgis.learn.prepare_data`` shape). The folder layout is
recognised, classes, bands and statistics are read from the files, and the result is a
:class:`Data`: a typed :class:`~rsfm.schema.DataConfig` (exactly the ``data:`` section a recipe
would hold, so a model built from it can be written out as a recipe) plus the resolved facts
(task, class and band names, what was inferred).

Layouts (a ``train/`` folder with ``val/`` and/or ``test/`` next to it holds any of them per
split)::

    chips          <folder>/images/*.tif + <folder>/labels/*.tif (or masks/): a class value per
                   pixel (or colour masks with classes=[{name, color}]), paired by file name
                   (a common suffix such as _S1Hand / _LabelHand is found); VOC .xml or YOLO
                   .txt labels, or one COCO .json, give boxes (detection)
    scenes         the same with images larger than chip_size (tiled into chip_size tiles), or
                   one vector label file (labels/buildings.gpkg, .geojson, .shp: polygons burnt
                   as class 1 on background 0), or prepare_data("scene.tif", labels="x.gpkg")
    arcgis         an ArcGIS "Export Training Data For Deep Learning" folder (detected by its
                   esri_model_definition.emd): classes, colours, bands and statistics from it
    class_folders  <folder>/<class name>/*.tif: scene classification
"""

from __future__ import annotations

import logging
import numbers
import os
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Subset

from rsfm.cards import get_card
from rsfm.config import TASKS, ClassDecl, ModelConfig
from rsfm.data import arcgis
from rsfm.data.chips import guess_suffixes
from rsfm.data.labels import is_vector_file
from rsfm.data.rasters import IMAGE_SUFFIXES, bands_of_file, inspect_raster
from rsfm.data.show import show_batch as _show_batch
from rsfm.data.stats import compute_stats
from rsfm.datasets import Datasets, build_datasets
from rsfm.errors import ConfigError, DataError
from rsfm.learn.picture import Picture
from rsfm.recipe import deep_merge
from rsfm.schema import DataConfig, NormalizationConfig, Recipe, TrainConfig
from rsfm.spec import InputSpec, resolve_input_spec
from rsfm.validation import dump, validate

__all__ = ["EXPECTED_LAYOUTS", "Data", "prepare_data"]

log = logging.getLogger(__name__)

IMAGE_DIRS = ("images", "image", "imgs", "img")
LABEL_DIRS = ("labels", "label", "masks", "mask", "annotations", "gt")
SPLIT_DIRS = {"train": ("train", "training"), "val": ("val", "valid", "validation"),
              "test": ("test",)}
DEFAULT_AUGMENT = {"hflip": 0.5, "vflip": 0.5, "rot90": 0.5}
EXPECTED_LAYOUTS = (
    "  - chips: <folder>/images/ + <folder>/labels/ (or masks/), paired by file name: label "
    "rasters (segmentation), VOC .xml / YOLO .txt / one COCO .json (detection)\n"
    "  - scenes: the same with images larger than chip_size (tiled), or one vector label file "
    "(labels/*.gpkg|.geojson|.shp); or prepare_data('scene.tif', labels='labels.gpkg')\n"
    "  - an ArcGIS 'Export Training Data For Deep Learning' folder (esri_model_definition.emd, "
    "images/, labels/)\n"
    "  - class folders: <folder>/<class name>/*.tif (classification)\n"
    "  - any of these in <folder>/train/ (+ val/, test/)\n"
    "Other folder names: prepare_data(path, images='S1Hand', labels='LabelHand')."
)
_MAX_LABEL_SCAN = 16  # label files read to infer class values
_MAX_SCAN_PIXELS = 16_000_000  # larger label rasters are read decimated


# ------------------------------------------------------------------------------------- Data


@dataclass(frozen=True)
class Data:
    """What :func:`prepare_data` found: the recipe's ``data:`` section and the resolved facts.

    Attributes:
        config: The recipe's ``data:`` section (paths absolute).
        task: ``segmentation``, ``detection`` or ``classification``.
        path: The folder (or scene) given to :func:`prepare_data`.
        layout: How it was read: ``chips``, ``scenes``, ``arcgis`` or ``class_folders``.
        class_names: The classes (index = class id).
        band_names: The bands read, in channel order.
        notes: What was inferred from the files (shown by ``repr``).
        model_classes: Classes stated in a recipe's ``model:`` section instead of ``data:``
            (kept for recipes loaded with ``Learner.from_recipe``).
        seed: Seed of the data-only views' validation hold-out (a model's ``seed`` decides
            its own, as ``train.seed`` does in a recipe).
    """

    config: DataConfig
    task: str
    path: Path
    layout: str
    class_names: tuple[str, ...]
    band_names: tuple[str, ...]
    notes: tuple[str, ...] = ()
    model_classes: tuple[Any, ...] | None = None
    seed: int = 42
    _cache: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    # -- facts
    @property
    def classes(self) -> list[str]:
        """Class names (index = class id)."""
        return list(self.class_names)

    @property
    def num_classes(self) -> int:
        """Number of classes (detection: without background)."""
        return len(self.class_names)

    @property
    def bands(self) -> list[str]:
        """Bands read from the files, in channel order."""
        return list(self.band_names)

    @property
    def batch_size(self) -> int:
        """Training batch size (``data.batch_size``)."""
        return self.config.batch_size

    @property
    def chip_size(self) -> int | None:
        """Tile side in pixels (``data.tile_size``)."""
        return self.config.tile_size

    # -- datasets (read with a data-only InputSpec: no model needed)
    def spec(self) -> InputSpec:
        """The InputSpec the data is read with before a model exists (normalisation ``card``
        becomes ``per_tile`` here: the backbone is not known yet)."""
        if "spec" not in self._cache:
            config = self.config
            if config.normalization.mode == "card" and config.normalization.mean is None:
                config = replace(config, normalization=NormalizationConfig(mode="per_tile"))
            stub = _stub_model(self)
            self._cache["spec"] = resolve_input_spec(stub, get_card(stub.backbone), config)
            self._cache["config"] = config
        return self._cache["spec"]

    def datasets(self) -> Datasets:
        """Train/validation/test datasets (validation held out with ``data.val_fraction``)."""
        if "datasets" not in self._cache:
            spec = self.spec()
            recipe = Recipe(model=_stub_model(self), data=self._cache["config"],
                            train=TrainConfig(seed=self.seed))
            self._cache["datasets"] = build_datasets(recipe, spec)
        return self._cache["datasets"]

    def __len__(self) -> int:
        return len(self.datasets().train)  # type: ignore[arg-type]

    def show_batch(self, n: int = 8, split: str = "train",
                   path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Picture:
        """Draw ``n`` samples of a split (RGB or grey composite, class overlay or boxes).

        Args:
            n: Number of samples.
            split: ``train``, ``val`` or ``test``.
            path: Output PNG (default: a file in the temporary folder).
            **kwargs: :func:`rsfm.data.show_batch` options (``rgb``, ``ncols``, ``alpha``...).

        Returns:
            The PNG (shown inline in Jupyter).
        """
        datasets = self.datasets()
        ds = getattr(datasets, split, None)
        if ds is None:
            have = [s for s in ("train", "val", "test") if getattr(datasets, s) is not None]
            raise ConfigError(f"show_batch: this data has no {split!r} split (splits: {have}).")
        size = len(ds)  # type: ignore[arg-type]
        if size > n:  # samples spread over the split
            pick = np.random.default_rng(self.seed).choice(size, n, replace=False)
            ds = Subset(ds, sorted(int(i) for i in pick))
        if path is None:
            folder = Path(tempfile.gettempdir()) / "rsfm-learn"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.path.stem}-{split}-batch.png"
        return Picture(_show_batch(ds, n=n, path=path, **kwargs))

    def describe(self) -> str:
        """A few lines: layout, task, classes, bands, splits, normalisation, notes."""
        c = self.config
        splits = ", ".join(s for s in ("train", "val", "test") if getattr(c, s) is not None)
        norm = c.normalization
        lines = [f"Data '{self.path}': {self.layout}, {self.task}",
                 f"  classes ({self.num_classes}): {self.classes}",
                 f"  bands: {self.bands}",
                 f"  splits: {splits}" + (f" (val_fraction {c.val_fraction:g} of train)"
                                          if c.val is None and c.val_fraction else ""),
                 f"  batch_size {c.batch_size}, tile_size {c.tile_size}, normalization {norm.mode}"]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.describe()

    # -- from a recipe
    @classmethod
    def from_recipe(cls, recipe: Recipe, spec: InputSpec) -> Data:
        """The :class:`Data` view of a recipe's ``data:`` section (``spec``: its InputSpec)."""
        src = recipe.data.train.images or recipe.data.train.manifest
        path = Path(src[0] if isinstance(src, (tuple, list)) else str(src))
        return cls(config=recipe.data, task=recipe.model.task, path=path, layout=recipe.data.kind,
                   class_names=tuple(spec.class_names), band_names=tuple(spec.band_names),
                   model_classes=recipe.model.classes, seed=recipe.train.seed)


def _stub_model(data: Data) -> ModelConfig:
    """A model section for reading the data without a model (the head does not matter)."""
    classes = None if data.config.classes is not None else (data.model_classes or data.class_names)
    head = TASKS[data.task][0]
    return ModelConfig(task=data.task, backbone="resnet18", head=head,  # type: ignore[arg-type]
                       num_classes=data.num_classes, classes=classes)


# ------------------------------------------------------------------------------ prepare_data


def prepare_data(
    path: str | os.PathLike[str],
    *,
    batch_size: int = 8,
    chip_size: int | None = None,
    bands: Sequence[str | Mapping[str, Any]] | None = None,
    val_split: float = 0.1,
    classes: Sequence[str | Mapping[str, Any]] | None = None,
    task: str | None = None,
    images: str | None = None,
    labels: str | os.PathLike[str] | None = None,
    normalization: str | Mapping[str, Any] | NormalizationConfig = "auto",
    augment: bool | Mapping[str, Any] = True,
    seed: int = 42,
    stats_files: int = 256,
    **data_keys: Any,
) -> Data:
    """Read a folder of training data as it is (see the module docstring for the layouts).

    Examples::

        data = prepare_data("exports/buildings")                  # ArcGIS export, auto-detected
        data = prepare_data("sen1floods11", images="S1Hand", labels="LabelHand", chip_size=64)
        data = prepare_data("scene.tif", labels="buildings.gpkg", chip_size=256)
        data = prepare_data("eurosat", batch_size=32)             # <class name>/*.tif folders

    Args:
        path: The folder (or, for one scene, the GeoTIFF).
        batch_size: Training batch size.
        chip_size: Tile side in pixels: images larger than this are tiled (scenes); for chips
            and exports it is the prediction tile (default: the chips' size).
        bands: Bands to read, by name (default: every band of the files, named from their band
            descriptions, else ``band1``, ``band2``...). For files that do not name their bands,
            a list as long as the files' band count names them in file order.
        val_split: Share of the training samples held out for validation when there is no
            ``val/`` folder (0: none).
        classes: Class names, or ``{name, color}`` mappings (colour masks need the colours).
            Default: from the export / class folders / VOC names, or ``class_<value>`` for the
            label values found (raster labels).
        task: ``segmentation``, ``detection`` or ``classification`` (default: from the layout;
            ``detection`` turns vector polygons into boxes).
        images: Name of the image sub-folder when it is not ``images/``.
        labels: Name of the label sub-folder when it is not ``labels/``/``masks/``, or a label
            file (vector file for scenes, COCO JSON for chips).
        normalization: ``auto`` (statistics of the training images, or the ArcGIS export's),
            ``card`` (the backbone's pretraining statistics), ``per_tile``, ``minmax``,
            ``none``, or a ``data.normalization`` mapping.
        augment: True: flips and 90-degree rotations; False: none; or a ``data.augment``
            mapping.
        seed: Seed of the statistics' file sample and of ``show_batch``/``len`` (a model's
            ``seed`` decides the validation hold-out it trains with).
        stats_files: At most this many training files are read for ``auto`` statistics.
        **data_keys: Any other ``data:`` key of a recipe (``label_ignore_values``, ``nodata``,
            ``image_suffix``, ``num_workers``, ``indices``...).

    Returns:
        The :class:`Data` (``repr`` shows what was found).

    Raises:
        DataError: A folder that matches no layout (names it and lists the expected layouts),
            missing or unreadable files.
        ConfigError: Arguments that do not fit the data (e.g. a task the labels cannot give),
            or bad values (``val_split`` outside [0, 1), ``augment`` not a bool or mapping),
            named as the argument, before any file is read.
    """
    if chip_size is not None and (not isinstance(chip_size, int) or isinstance(chip_size, bool)
                                  or chip_size < 8):
        raise ConfigError(f"prepare_data: chip_size must be an integer >= 8 pixels (the tile "
                          f"side), got {chip_size!r}.")
    _check_val_split(val_split)
    _check_augment(augment)
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"prepare_data: '{root}' does not exist. Expected a folder in one of "
                        f"these layouts:\n{EXPECTED_LAYOUTS}")
    root = root.resolve()
    if task is not None and task not in TASKS:
        raise ConfigError(f"prepare_data: task {task!r} is not one of {list(TASKS)}.")
    user: dict[str, Any] = dict(data_keys)
    for key in ("train", "val", "test", "kind"):
        if key in user:
            raise ConfigError(f"prepare_data: {key}= is found from the folder; give the folder "
                              "as path (write a recipe to state data sources by hand).")
    user["batch_size"] = batch_size
    if chip_size is not None:
        user["tile_size"] = chip_size
    if bands is not None:
        user["bands"] = list(bands)
    if classes is not None:
        user["classes"] = list(classes)
    if augment is True:
        user.setdefault("augment", dict(DEFAULT_AUGMENT))
    elif augment:
        user["augment"] = dict(augment)
    if not isinstance(normalization, str):
        user["normalization"] = (dump(normalization)
                                 if isinstance(normalization, NormalizationConfig)
                                 else dict(normalization))
    elif normalization != "auto":
        user["normalization"] = {"mode": normalization}

    found = _find_layout(root, images, labels, chip_size, task)
    if found.kind == "arcgis":
        mapping, found_task = _arcgis_section(found, user, task, stats_files, seed)
    else:
        mapping, found_task = _files_section(found, user, task)
        if normalization == "auto":
            mapping["normalization"] = _auto_stats(found, mapping, stats_files, seed)
    if found.sources.get("val") is None:
        mapping.setdefault("val_fraction", val_split)
    config = validate(DataConfig, mapping, "data")
    names = _class_names(config)
    band_names = _band_names(config)
    data = Data(config=config, task=found_task, path=root, layout=found.kind,
                class_names=tuple(names), band_names=tuple(band_names), notes=tuple(found.notes),
                seed=seed)
    for note in found.notes:
        log.info("prepare_data: %s", note)
    return data


def _check_val_split(val_split: Any) -> None:
    """Raises ConfigError unless ``val_split`` is a share in [0, 1) (named as the argument,
    not as the recipe's ``data.val_fraction`` it becomes)."""
    number = isinstance(val_split, numbers.Real) and not isinstance(val_split, bool)
    if not number or not 0 <= val_split < 1:
        raise ConfigError(f"prepare_data: val_split must be a number in [0, 1) (the share of "
                          f"the training samples held out for validation, e.g. 0.2; 0: none), "
                          f"got {val_split!r}.", key="val_split")


def _check_augment(augment: Any) -> None:
    """Raises ConfigError unless ``augment`` is True, False, None or a mapping."""
    if augment is None or isinstance(augment, (bool, Mapping)):
        return
    raise ConfigError(f"prepare_data: augment must be True (flips and 90-degree rotations), "
                      f"False (none) or a data.augment mapping such as {DEFAULT_AUGMENT}, got "
                      f"{augment!r}.", key="augment")


# ------------------------------------------------------------------------------ the layouts


@dataclass
class _Layout:
    """A recognised layout: kind, natural task, the splits' sources and what was seen."""

    kind: str
    task: str
    root: Path
    sources: dict[str, dict[str, Any]]
    label_format: str | None = None
    image_suffix: str = ""
    label_suffix: str = ""
    images: list[Path] = field(default_factory=list)  # training images (statistics, bands)
    labels: list[Path] = field(default_factory=list)  # training label files (class scan)
    classes: list[str] | None = None  # found in the files (class folders, VOC, COCO)
    notes: list[str] = field(default_factory=list)


def _child(folder: Path, names: Sequence[str]) -> Path | None:
    by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    for name in names:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None


def _rasters(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _unrecognised(folder: Path, why: str) -> DataError:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
                     if not p.name.startswith("."))
    shown = ", ".join(entries[:12]) + (", ..." if len(entries) > 12 else "")
    if below := arcgis.exports_in(folder):
        why += (f"; it holds the ArcGIS export(s) {[p.name for p in below]}: "
                "prepare_data('<that folder>')")
    return DataError(f"prepare_data: '{folder}' is not a training data folder rsfm recognises "
                     f"({why}; it holds: {shown or 'nothing'}). Expected one of:\n"
                     f"{EXPECTED_LAYOUTS}")


def _find_layout(root: Path, images: str | None, labels: str | os.PathLike[str] | None,
                 chip_size: int | None, task: str | None) -> _Layout:
    if root.is_file():
        return _scene_file(root, labels, task)
    if arcgis.detect(root) or (labels is None and arcgis.detect(root, inside=True)):
        return _Layout("arcgis", "", root, {"train": {"images": str(root)}})
    split_dirs = {s: _child(root, names) for s, names in SPLIT_DIRS.items()}
    if split_dirs["train"] is not None:
        parts = {s: _find_single(d, images, labels, chip_size, task)
                 for s, d in split_dirs.items() if d is not None}
        train = parts["train"]
        for split, part in parts.items():
            if (part.kind, part.task) != (train.kind, train.task):
                raise DataError(f"prepare_data: '{split_dirs[split]}' is read as {part.kind} "
                                f"({part.task}) but '{split_dirs['train']}' as {train.kind} "
                                f"({train.task}); every split needs the same layout.")
            train.sources[split] = part.sources["train"]
        train.notes.insert(0, f"splits from the folders {sorted(parts)}")
        return train
    return _find_single(root, images, labels, chip_size, task)


def _scene_file(path: Path, labels: str | os.PathLike[str] | None, task: str | None) -> _Layout:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"prepare_data: '{path}' is not an image file ({', '.join(IMAGE_SUFFIXES)})"
                        f" nor a folder. Expected a scene GeoTIFF with labels=..., or a folder:\n"
                        f"{EXPECTED_LAYOUTS}")
    if labels is None:
        raise ConfigError(f"prepare_data: a single scene ('{path.name}') needs labels=<vector "
                          "file or label raster>.")
    label = Path(labels).expanduser().resolve()
    if not label.is_file():
        raise DataError(f"prepare_data: label file '{label}' not found.")
    vector = is_vector_file(label)
    layout = _Layout("scenes", "segmentation", path.parent,
                     {"train": {"images": str(path), "labels": str(label)}},
                     images=[path], labels=[] if vector else [label])
    if vector:
        layout.classes = ["background", label.stem]
        if task == "detection":
            layout.task = "detection"
    return layout


def _find_single(folder: Path, images: str | None, labels: str | os.PathLike[str] | None,
                 chip_size: int | None, task: str | None) -> _Layout:
    if arcgis.detect(folder):
        return _Layout("arcgis", "", folder, {"train": {"images": str(folder)}})
    image_dir = (folder / images) if images is not None else _child(folder, IMAGE_DIRS)
    if images is not None and not image_dir.is_dir():  # type: ignore[union-attr]
        raise _unrecognised(folder, f"no image folder '{images}'")
    label_path: Path | None = None
    if labels is not None:
        label_path = Path(labels).expanduser()
        if not label_path.is_absolute() and (folder / label_path).exists():
            label_path = folder / label_path  # a sub-folder (or file) name
        label_path = label_path.resolve()
        if not label_path.exists():
            raise _unrecognised(folder, f"no label folder or file '{labels}'")
    elif image_dir is not None:
        label_path = _child(folder, LABEL_DIRS)
    if image_dir is None and images is None:
        image_dir, label_path = _named_like_labels(folder, label_path)
    if image_dir is not None:
        if label_path is None:
            raise _unrecognised(folder, f"'{image_dir.name}/' has no label folder next to it "
                                        f"({'/, '.join(LABEL_DIRS)}/)")
        return _paired(folder, image_dir, label_path, chip_size, task)
    return _class_folders(folder)


def _looks_like_labels(name: str) -> bool:
    low = name.lower()
    return any(k in low for k in ("label", "mask", "annotation")) or low in ("gt", "ground_truth")


def _named_like_labels(folder: Path, label_path: Path | None) -> tuple[Path | None, Path | None]:
    """Image and label sub-folders with other names (``S1Hand/`` + ``LabelHand/``): one folder
    whose name says labels (or ``labels=``) and exactly one other folder of rasters.

    Raises:
        DataError: Several folders could be the images (names them and the arguments to pass).
    """
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if label_path is None:
        named = [d for d in subdirs if _looks_like_labels(d.name)]
        if len(named) != 1:
            return None, None
        label_path = named[0]
    candidates = [d for d in subdirs if d != label_path and _rasters(d)]
    if len(candidates) == 1:
        return candidates[0], label_path
    if not candidates:
        return None, None
    raise _unrecognised(folder, f"'{label_path.name}' holds labels, and several folders could be "
                                f"their images ({', '.join(d.name for d in candidates)}); pass "
                                f"images='{candidates[0].name}', labels='{label_path.name}'")


def _paired(folder: Path, image_dir: Path, label_path: Path, chip_size: int | None,
            task: str | None) -> _Layout:
    """images/ + labels/: chips, tiled scenes, vector-labelled scenes, or boxes."""
    image_files = _rasters(image_dir)
    if not image_files:
        raise _unrecognised(folder, f"no image files ({', '.join(IMAGE_SUFFIXES)}) in "
                                    f"'{image_dir.name}/'")
    if label_path.is_file():
        label_files = [label_path]
    else:
        label_files = sorted(p for p in label_path.iterdir() if p.is_file()
                             and not p.name.startswith(".") and not p.name.endswith(".aux.xml"))
    vectors = [p for p in label_files if is_vector_file(p) and p.suffix.lower() != ".json"]
    if len(label_files) == 1 and label_files[0].suffix.lower() == ".json":
        coco = label_files[0]
        layout = _Layout("chips", "detection", folder,
                         {"train": {"images": str(image_dir), "labels": str(coco)}},
                         label_format="coco", images=image_files)
        layout.classes = _coco_classes(coco)
        return layout
    if vectors:
        if len(vectors) > 1:
            raise DataError(f"prepare_data: '{label_path}' holds {len(vectors)} vector files "
                            f"({', '.join(p.name for p in vectors[:4])}); scenes take one vector "
                            "file for all scenes. Merge them, or pass labels=<the file>.")
        layout = _Layout("scenes", "detection" if task == "detection" else "segmentation", folder,
                         {"train": {"images": str(image_dir), "labels": str(vectors[0])}},
                         images=image_files)
        layout.classes = ["background", vectors[0].stem]
        return layout
    suffixes = {p.suffix.lower() for p in label_files}
    if suffixes & {".xml", ".txt"}:
        fmt = "voc" if ".xml" in suffixes else "yolo"
        layout = _Layout("chips", "detection", folder,
                         {"train": {"images": str(image_dir), "labels": str(label_path)}},
                         label_format=fmt, images=image_files, labels=label_files)
        if fmt == "voc":
            layout.classes = _voc_classes(p for p in label_files if p.suffix.lower() == ".xml")
        layout.image_suffix, layout.label_suffix = guess_suffixes(image_files, label_files)
        return layout
    label_rasters = [p for p in label_files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not label_rasters:
        raise _unrecognised(folder, f"'{label_path.name}/' holds no label rasters, VOC/YOLO "
                                    "files, COCO JSON or vector file")
    info = inspect_raster(image_files[0])
    kind = "chips"
    if chip_size is not None and (info.width > chip_size or info.height > chip_size):
        kind = "scenes"
    layout = _Layout(kind, "segmentation", folder,
                     {"train": {"images": str(image_dir), "labels": str(label_path)}},
                     label_format="raster" if kind == "chips" else None, images=image_files,
                     labels=label_rasters)
    layout.image_suffix, layout.label_suffix = guess_suffixes(image_files, label_rasters)
    if kind == "scenes":
        layout.notes.append(f"images of {info.width} x {info.height} px are tiled into "
                            f"{chip_size} x {chip_size} tiles (kind: scenes)")
    return layout


def _class_folders(folder: Path) -> _Layout:
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    with_images = [d for d in subdirs if _rasters(d)]
    if not subdirs or len(with_images) < 2 or len(with_images) != len(subdirs):
        why = ("no images/ + labels/ folders" if not subdirs else
               "sub-folders are neither images/ + labels/ nor class folders holding images")
        raise _unrecognised(folder, why)
    files = [f for d in with_images for f in _rasters(d)]
    layout = _Layout("class_folders", "classification", folder,
                     {"train": {"images": str(folder)}}, images=files)
    layout.classes = [d.name for d in with_images]
    return layout


def _voc_classes(files: Any) -> list[str]:
    names: set[str] = set()
    for f in list(files)[:2000]:
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as err:
            raise DataError(f"'{f}' is not valid VOC XML: {err}") from None
        names.update((o.findtext("name") or "").strip() for o in root.iter("object"))
    names.discard("")
    return sorted(names)


def _coco_classes(path: Path) -> list[str]:
    import json

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"'{path}' is not COCO detection JSON ({err}).") from None


# ------------------------------------------------------------------------- the data section


def _task_of(found: _Layout, task: str | None) -> str:
    natural = found.task
    if task is None or task == natural:
        return natural
    raise ConfigError(f"prepare_data: task={task!r}, but '{found.root}' ({found.kind}) holds "
                      f"{natural} labels. Leave task out, or give {task} labels.")


def _files_section(found: _Layout, user: dict[str, Any],
                   task: str | None) -> tuple[dict[str, Any], str]:
    """The data section of a chips / scenes / class-folder layout."""
    the_task = _task_of(found, task)
    mapping: dict[str, Any] = {"kind": found.kind, **found.sources}
    if found.label_format is not None:
        mapping["label_format"] = found.label_format
    stated_suffix = "image_suffix" in user or "label_suffix" in user
    if (found.image_suffix or found.label_suffix) and not stated_suffix:
        mapping["image_suffix"], mapping["label_suffix"] = found.image_suffix, found.label_suffix
        found.notes.append(f"images and labels paired by name without the suffixes "
                           f"{found.image_suffix!r} / {found.label_suffix!r}")
    mapping.update(user)
    _fill_bands(found, mapping)
    if "classes" not in user:
        mapping.update(_class_defaults(found, mapping))
    elif found.task == "segmentation" and found.labels and "label_ignore_values" not in user:
        _ignore_negative(found, mapping)
    if "classes" in user and found.classes is not None and found.kind == "class_folders":
        stated = [c if isinstance(c, str) else c["name"] for c in user["classes"]]
        missing = sorted(set(found.classes) - set(stated))
        if missing:
            raise ConfigError(f"prepare_data: classes={stated} lack the class folders {missing} "
                              f"of '{found.root}'.")
    _fill_color_map(found, mapping)
    return mapping, the_task


def _fill_bands(found: _Layout, mapping: dict[str, Any]) -> None:
    """Every band of the files by default; names for files that do not name their bands."""
    first = found.images[0]
    file_bands = bands_of_file(first, mapping.get("file_bands"), mapping.get("sensor"))
    unnamed = all(b.name == f"band{i}" for i, b in enumerate(file_bands, start=1))
    stated = mapping.get("bands")
    if stated is None:
        mapping["bands"] = [b.name for b in file_bands]
        found.notes.append(f"bands {mapping['bands']} (all bands of '{first.name}'"
                           + (", unnamed: pass bands=[...] to name them)" if unnamed else ")"))
    elif unnamed and "file_bands" not in mapping and len(stated) == len(file_bands):
        names = [b if isinstance(b, str) else b["name"] for b in stated]
        mapping["file_bands"] = names
        found.notes.append(f"'{first.name}' does not name its bands: bands={names} name them "
                           "in file order (file_bands)")


def _open_label(path: Path) -> Any:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # PNG masks
        return rasterio.open(path)


def _label_values(files: Sequence[Path]) -> tuple[set[int], int]:
    """Values in (a sample of) single-band label rasters, and their band count."""
    values: set[int] = set()
    count = 1
    for f in files[:_MAX_LABEL_SCAN]:
        with _open_label(f) as ds:
            count = ds.count
            if count != 1:
                return values, count
            scale = max(1.0, (ds.width * ds.height / _MAX_SCAN_PIXELS) ** 0.5)
            shape = (max(1, int(ds.height / scale)), max(1, int(ds.width / scale)))
            arr = ds.read(1, out_shape=shape, masked=True)
        vals = np.unique(arr.compressed() if np.ma.isMaskedArray(arr) else arr)
        vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
        values.update(int(v) for v in vals)
    return values, count


def _ignore_negative(found: _Layout, mapping: dict[str, Any]) -> None:
    """Negative label values (Sen1Floods11's -1...) are no class: ``label_ignore_values``."""
    values, count = _label_values(found.labels)
    negative = sorted(v for v in values if v < 0)
    if count == 1 and negative:
        mapping["label_ignore_values"] = negative
        found.notes.append(f"label values {negative} are not classes (label_ignore_values)")


def _class_defaults(found: _Layout, mapping: dict[str, Any]) -> dict[str, Any]:
    """``classes`` (and value map / ignored values) found in the files."""
    if found.classes is not None:
        if not found.classes:
            raise ConfigError(f"prepare_data: no class names in the labels of '{found.root}'; "
                              "pass classes=[...].")
        found.notes.append(f"classes {found.classes} from the "
                           + {"class_folders": "class folders", "chips": "label files",
                              "scenes": "vector file (burnt as class 1 on background 0)"}
                           .get(found.kind, "files"))
        return {"classes": list(found.classes)}
    if found.label_format == "yolo":
        raise ConfigError(f"prepare_data: YOLO labels in '{found.root}' hold class ids only; "
                          "pass classes=[...] (in id order).")
    values, count = _label_values(found.labels)
    if count != 1:
        raise ConfigError(f"prepare_data: the label rasters of '{found.root}' have {count} bands "
                          "(colour masks); pass classes=[{'name': ..., 'color': '#RRGGBB'}, ...] "
                          "with each class's mask colour.")
    ignored = set(mapping.get("label_ignore_values") or ())
    ignore_index = mapping.get("ignore_index", -1)
    negative = sorted(v for v in values if v < 0 and v not in ignored)
    values = {v for v in values if v >= 0 and v not in ignored and v != ignore_index}
    out: dict[str, Any] = {}
    if negative:
        out["label_ignore_values"] = sorted(ignored | set(negative))
        found.notes.append(f"label values {negative} are not classes (label_ignore_values)")
    if not values:
        raise DataError(f"prepare_data: no class values in the label rasters of "
                        f"'{found.root}' (e.g. '{found.labels[0]}'); pass classes=[...].")
    ordered = sorted(values)
    if ordered == list(range(len(ordered))) or ordered == list(range(ordered[-1] + 1)):
        names = [f"class_{v}" for v in range(ordered[-1] + 1)]
    else:
        names = [f"class_{v}" for v in ordered]
        out["label_map"] = {v: i for i, v in enumerate(ordered)}
    out["classes"] = names
    found.notes.append(f"classes {names} from the label values {ordered} of "
                       f"{min(len(found.labels), _MAX_LABEL_SCAN)} label file(s); pass "
                       "classes=[...] to name them")
    return out


def _fill_color_map(found: _Layout, mapping: dict[str, Any]) -> None:
    """Colour masks: the classes' colours are the mask colours unless ``color_map`` is given."""
    if found.task != "segmentation" or not found.labels or "color_map" in mapping:
        return
    with _open_label(found.labels[0]) as ds:
        if ds.count < 3:
            return
    classes = mapping.get("classes") or []
    colors = [c.get("color") if isinstance(c, Mapping) else getattr(c, "color", None)
              for c in classes]
    if not classes or any(c is None for c in colors):
        raise ConfigError(f"prepare_data: the labels of '{found.root}' are colour masks; pass "
                          "classes=[{'name': ..., 'color': '#RRGGBB'}, ...] (each class's mask "
                          "colour) or color_map={'#RRGGBB': class id, ...}.")
    mapping["color_map"] = {(c if isinstance(c, str) else "#{:02X}{:02X}{:02X}".format(*c)): i
                            for i, c in enumerate(colors)}
    found.notes.append("colour masks: mask colours are the classes' colours (color_map)")


def _auto_stats(found: _Layout, mapping: dict[str, Any], max_files: int,
                seed: int) -> dict[str, Any]:
    """``normalization`` from the training images' exact per-band mean/std (a seeded sample of
    at most ``max_files`` files)."""
    files = list(found.images)
    if len(files) > max_files:
        pick = np.random.default_rng(seed).choice(len(files), max_files, replace=False)
        files = [files[i] for i in sorted(pick)]
    names = [b if isinstance(b, str) else b["name"] for b in mapping["bands"]]
    file_bands = mapping.get("file_bands")
    stats = compute_stats(files, bands=names, file_bands=file_bands, sensor=mapping.get("sensor"),
                          nodata=mapping.get("nodata"))
    found.notes.append(f"normalization: mean/std of {stats['files']} training file(s) "
                       "(normalization='card' uses the backbone's pretraining statistics)")
    return {"mode": "stats", "mean": stats["mean"],
            "std": [s if s > 0 else 1.0 for s in stats["std"]]}


def _arcgis_section(found: _Layout, user: dict[str, Any], task: str | None, max_files: int,
                    seed: int) -> tuple[dict[str, Any], str]:
    """The data section of an ArcGIS export: the export's facts under the user's keys."""
    export = arcgis.read_arcgis_export(found.root)
    if export.task is None:
        raise ConfigError(f"prepare_data: '{found.root}' is a {export.metadata_format} export; "
                          "rsfm trains Classified_Tiles, PASCAL_VOC_rectangles, "
                          "KITTI_rectangles, RCNN_Masks, Labeled_Tiles and Imagenet exports.")
    others = {s: arcgis.read_arcgis_export(src["images"])
              for s, src in found.sources.items() if s != "train"}
    mapping: dict[str, Any] = {**found.sources, **user}
    auto = "normalization" not in user
    if auto and export.band_stats:
        mapping["normalization"] = {"mode": "stats"}  # the export's statistics
    defaults = arcgis.recipe_defaults(export, mapping, {} if task is None else {"task": task},
                                      None, others=others)
    mapping = deep_merge(defaults["data"], mapping)
    found.notes.append(export.describe())
    if auto and not export.band_stats:
        found.images = [c.image for c in export.chips]
        mapping["normalization"] = _auto_stats(found, mapping, max_files, seed)
    elif auto:
        found.notes.append("normalization: the export's band statistics")
    return mapping, defaults.get("model", {}).get("task", task or export.task)


def _class_names(config: DataConfig) -> list[str]:
    classes = config.classes or ()
    return [c.name if isinstance(c, ClassDecl) else str(c) for c in classes]


def _band_names(config: DataConfig) -> list[str]:
    return [b if isinstance(b, str) else b.name for b in config.bands or ()]
