"""Map a recipe's ``data:`` section onto :mod:`rsfm.data` datasets and loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rsfm.errors import ConfigError, RsfmError
from rsfm.recipe import DataSource, Recipe

__all__ = ["DataMeta", "EpochSampler", "build_datasets", "data_meta"]


@dataclass
class DataMeta:
    """What inference needs to feed the model like training did (goes into ``config.json``)."""

    bands: list[str]
    wavelengths: list[float | None]
    mean: list[float] | None
    std: list[float] | None
    normalize: str
    value_scale: float
    divide_by: float
    nodata: float | None
    ignore_index: int
    classes: list[str]
    tile_size: int | None
    stride: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "bands": self.bands, "wavelengths": self.wavelengths, "mean": self.mean,
            "std": self.std, "normalize": self.normalize, "value_scale": self.value_scale,
            "divide_by": self.divide_by, "nodata": self.nodata, "ignore_index": self.ignore_index,
            "classes": self.classes, "tile_size": self.tile_size, "stride": self.stride, **self.extra,
        }


def _bands(recipe: Recipe) -> list[str]:
    if recipe.data.bands:
        return list(recipe.data.bands)
    if recipe.model.bands:
        return list(recipe.model.bands)
    from rsfm.registry import backbone_card

    return backbone_card(recipe.model.backbone).band_names


def _wavelengths(recipe: Recipe, bands: list[str]) -> list[float | None]:
    if recipe.model.wavelengths:
        return [float(w) for w in recipe.model.wavelengths]
    from rsfm.bands import get_band
    from rsfm.registry import backbone_card

    card = backbone_card(recipe.model.backbone)
    by_name = {b.name: b.wavelength_um for b in card.bands}
    out: list[float | None] = []
    for name in bands:
        if name in by_name:
            out.append(float(by_name[name]))
            continue
        try:
            out.append(float(get_band(name, recipe.data.sensor or card.sensor).wavelength_um))
        except RsfmError:
            out.append(None)
    return out


def _normalization(recipe: Recipe, bands: list[str]) -> tuple[str, Any, Any, float, float]:
    """(mode for rsfm.data, mean, std, value_scale, divide_by)."""
    norm = recipe.data.normalization
    if norm.mode == "card" and norm.mean is None:
        from rsfm.bands import get_band
        from rsfm.registry import backbone_card

        card = backbone_card(recipe.model.backbone)

        def key(name: str) -> str:
            try:
                return get_band(name, recipe.data.sensor or card.sensor).name
            except RsfmError:
                return name

        table = {key(b.name): i for i, b in enumerate(card.bands)}
        idx = [table.get(key(b)) for b in bands]
        missing = [b for b, i in zip(bands, idx) if i is None]
        if missing:
            raise ConfigError(
                f"data.normalization: mode 'card' but the card of {card.name!r} has no statistics "
                f"for band(s) {missing} (it has {card.band_names}). Compute them with "
                "`rsfm stats` and use mode: stats with include: <stats.yaml>."
            )
        n = card.normalization
        mean = [float(n.mean[i]) for i in idx]
        std = [float(n.std[i]) for i in idx]
        scale = 1.0 / float(n.divide_by)
        return "stats", mean, std, scale, float(n.divide_by)
    if norm.mode in ("stats", "card"):
        if norm.bands is not None and list(norm.bands) != bands:
            raise ConfigError(f"data.normalization: statistics are for bands {list(norm.bands)} "
                              f"but the recipe reads {bands}.")
        if norm.mean is not None and len(norm.mean) != len(bands):
            raise ConfigError(f"data.normalization: {len(norm.mean)} mean values for "
                              f"{len(bands)} bands {bands}.")
        scale = 1.0 if norm.value_scale is None else float(norm.value_scale)
        return "stats", list(norm.mean or ()), list(norm.std or ()), scale, 1.0 / scale
    mode = {"per_tile": "standardize", "minmax": "minmax", "none": "none"}[norm.mode]
    scale = 1.0 if norm.value_scale is None else float(norm.value_scale)
    return mode, None, None, scale, 1.0 / scale


def data_meta(recipe: Recipe) -> DataMeta:
    """The normalisation/bands/classes a model trained with ``recipe`` expects."""
    bands = _bands(recipe)
    mode, mean, std, scale, divide_by = _normalization(recipe, bands)
    return DataMeta(
        bands=bands, wavelengths=_wavelengths(recipe, bands), mean=mean, std=std, normalize=mode,
        value_scale=scale, divide_by=divide_by, nodata=recipe.data.nodata,
        ignore_index=recipe.data.ignore_index, classes=list(recipe.classes),
        tile_size=recipe.data.tile_size, stride=recipe.data.stride,
    )


def _dataset(recipe: Recipe, src: DataSource, meta: DataMeta, train: bool) -> Any:
    d = recipe.data
    task = "detection" if recipe.model.task == "detection" else "segmentation"
    transforms = None
    if train and d.augment:
        from rsfm.data.transforms import build_transforms

        transforms = build_transforms(d.augment)
    common: dict[str, Any] = {
        "task": task, "classes": meta.classes, "bands": meta.bands, "file_bands": d.file_bands,
        "sensor": d.sensor, "nodata": d.nodata, "mean": meta.mean, "std": meta.std,
        "value_scale": meta.value_scale, "normalize": meta.normalize, "ignore_index": d.ignore_index,
        "label_map": d.label_map, "label_ignore_values": d.label_ignore_values, "transforms": transforms,
    }
    if recipe.model.task == "classification" or d.kind == "class_folders":
        if d.kind != "class_folders" or src.images is None or not isinstance(src.images, str):
            raise ConfigError("data: classification recipes use kind: class_folders with "
                              "images: <folder> holding one sub-folder per class name.")
        return ClassFolderDataset(src.images, meta.classes, bands=meta.bands,
                                  file_bands=d.file_bands, sensor=d.sensor, nodata=d.nodata,
                                  mean=meta.mean, std=meta.std, value_scale=meta.value_scale,
                                  normalize=meta.normalize, transforms=transforms)
    if d.kind == "scenes":
        from rsfm.data.scenes import SceneDataset

        if src.images is None:
            raise ConfigError("data: kind 'scenes' needs images: (scene files).")
        images, labels = _scene_files(src, d.image_suffix, d.label_suffix)
        return SceneDataset(images, labels, tile_size=d.tile_size or 256, stride=d.stride,
                            skip_nodata=d.skip_nodata, seed=recipe.train.seed, **common)
    from rsfm.data.chips import ChipDataset

    return ChipDataset(src.images, src.labels, manifest=src.manifest, split=src.split,
                       split_file=src.split_file, image_suffix=d.image_suffix,
                       label_suffix=d.label_suffix, skip_nodata=d.skip_nodata,
                       missing_labels=d.missing_labels, color_map=d.color_map, label_format=d.label_format, **common)


def _scene_files(src: DataSource, image_suffix: str, label_suffix: str) -> tuple[Any, Any]:
    """Folders of scenes become file lists; a label folder is paired with them by name."""
    from pathlib import Path

    from rsfm.data.chips import _key, list_images

    images: Any = src.images
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


def build_datasets(recipe: Recipe) -> tuple[Any, Any | None, DataMeta]:
    """Train and validation datasets of a recipe (validation without augmentation)."""
    meta = data_meta(recipe)
    d = recipe.data
    train_ds = _dataset(recipe, d.train, meta, train=True)
    if d.val is not None:
        return train_ds, _dataset(recipe, d.val, meta, train=False), meta
    if d.val_fraction <= 0:
        return train_ds, None, meta
    from torch.utils.data import Subset

    from rsfm.data.splits import block_split, random_split

    fractions = {"train": 1.0 - d.val_fraction, "val": d.val_fraction}
    if d.val_block_size:
        split = block_split(train_ds, d.val_block_size, fractions, seed=recipe.train.seed)
    else:
        split = random_split(train_ds, fractions, seed=recipe.train.seed)
    val_ds = _dataset(recipe, d.train, meta, train=False)  # same files, no augmentation
    return Subset(train_ds, split["train"]), Subset(val_ds, split["val"]), meta


class ClassFolderDataset(torch.utils.data.Dataset):
    """Scene classification from ``root/<class name>/*.tif`` (torchvision ImageFolder layout).

    Samples are ``{"image": (C, H, W) float32 normalised, "label": int64}``; images are read with
    the same band selection, nodata handling and normalisation as the other rsfm datasets.
    """

    def __init__(self, root: str, classes: list[str], *, transforms: Any = None,
                 **reader_kwargs: Any) -> None:
        from pathlib import Path

        from rsfm.data.chips import list_images
        from rsfm.data.normalize import Normalizer
        from rsfm.data.reader import ImageReader

        root_path = Path(root)
        if not root_path.is_dir():
            raise ConfigError(f"data: class folder root '{root}' does not exist.")
        found = sorted(p.name for p in root_path.iterdir() if p.is_dir())
        unknown = [f for f in found if f not in classes]
        if unknown:
            raise ConfigError(f"data: sub-folders {unknown} of '{root}' are not in data.classes "
                              f"{classes}.")
        self.items = [(p, classes.index(c)) for c in found for p in list_images(root_path / c)]
        if not self.items:
            raise ConfigError(f"data: no images under '{root}/<class>/'.")
        norm = Normalizer(reader_kwargs.pop("normalize"), reader_kwargs.pop("mean"),
                          reader_kwargs.pop("std"), reader_kwargs.pop("value_scale"))
        self.reader = ImageReader(normalizer=norm, **reader_kwargs)
        self.classes, self.transforms = classes, transforms

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.items[index]
        image, _bad = self.reader.read(path)
        sample = {"image": torch.from_numpy(image.copy()),
                  "label": torch.tensor(label, dtype=torch.int64)}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample


class EpochSampler(torch.utils.data.Sampler[int]):
    """A shuffle that depends only on ``(seed, epoch)``: a resumed run sees the same order.

    Deliberately no ``set_epoch``: accelerate calls ``sampler.set_epoch(<iterations of this
    process>)``, which restarts at 0 in a resumed process. The loop calls :meth:`use_epoch`.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def use_epoch(self, epoch: int) -> None:
        """Shuffle for this (0-based) epoch."""
        self.epoch = epoch

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
