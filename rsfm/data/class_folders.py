"""Scene classification from ``root/<class name>/*.tif`` (torchvision ImageFolder layout)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from rsfm.data.rasters import list_images
from rsfm.data.reader import ImageReader
from rsfm.data.splits import spread_indices
from rsfm.errors import ConfigError, DataError
from rsfm.spec import InputSpec

__all__ = ["ClassFolderDataset"]


class ClassFolderDataset(Dataset):
    """One image per sample, its class given by the sub-folder it is in.

    Samples are ``{"image": (C, H, W) float32 normalised, "label": int64}``; images are read by
    the same :class:`~rsfm.data.reader.ImageReader` (band selection, nodata handling,
    normalisation, spectral indices) as the other rsfm datasets.

    Args:
        root: Folder holding one sub-folder per class, named as the spec's classes.
        spec: Bands, normalisation and classes (index = class id).
        transforms: Callable on the sample dict.

    Raises:
        ConfigError: Missing root, sub-folders that are not classes, no images.
    """

    def __init__(self, root: str | Path, spec: InputSpec, *,
                 transforms: Callable[[dict], dict] | None = None,
                 every_class: bool = False) -> None:
        root_path = Path(root)
        if not root_path.is_dir():
            raise ConfigError(f"data: class folder root '{root}' does not exist.")
        classes = spec.class_names
        found = sorted(p.name for p in root_path.iterdir() if p.is_dir())
        unknown = [f for f in found if f not in classes]
        if unknown:
            raise ConfigError(f"data: sub-folders {unknown} of '{root}' are not in data.classes "
                              f"{classes}.")
        self.items = [(p, classes.index(c)) for c in found for p in list_images(root_path / c)]
        if not self.items:
            raise ConfigError(f"data: no images under '{root}/<class>/'.")
        if every_class:
            have = {label for _, label in self.items}
            empty = [c for i, c in enumerate(classes) if i not in have]
            if empty:
                raise ConfigError(
                    f"data: class(es) {empty} of data.classes {classes} have no images in "
                    f"'{root}': expected " + ", ".join(f"'{root_path / c}/'" for c in empty)
                    + ". Add a folder of images per class, or remove the class from "
                    "data.classes (and model.num_classes).")
        self.spec = spec
        self.reader = ImageReader(spec)
        self.transforms = transforms

    @property
    def classes(self) -> list[str]:
        """Class names (index = class id)."""
        return self.spec.class_names

    @property
    def bands(self) -> list[str]:
        """Names of the image channels (the spec's bands, then its spectral indices)."""
        return self.spec.channel_names

    def check_sizes(self, tile: int | None, per_class: int = 64) -> None:
        """Fail when an image is smaller than ``tile`` pixels a side (``data.tile_size``): reads
        the headers of up to ``per_class`` images spread over each class folder, not all of
        them, since this runs at the start of every training for every split and a header costs
        a file open (27,000 for EuroSAT). Class folders hold images of one size as a rule, so
        the sample catches a tile size that does not fit the data, not every odd file.

        Raises:
            DataError: Names the first such file, its size and the tile size.
        """
        if not tile:
            return
        by_class: dict[int, list[Path]] = {}
        for path, label in self.items:
            by_class.setdefault(label, []).append(path)
        sample = [paths[i] for paths in by_class.values()
                  for i in spread_indices(len(paths), per_class)]
        small = []
        for path in sample:
            info = self.reader.plan(path).info
            if min(info.width, info.height) < tile:
                small.append((path, info.width, info.height))
        if small:
            path, w, h = small[0]
            more = f" (and {len(small) - 1} other image(s))" if len(small) > 1 else ""
            raise DataError(
                f"Image '{path}' is {w}x{h} pixels{more}, smaller than data.tile_size {tile}. "
                "Every image of a class folder must be at least one tile; remove or replace "
                "it, or lower data.tile_size.")

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
