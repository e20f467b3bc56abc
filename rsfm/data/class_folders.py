"""Scene classification from ``root/<class name>/*.tif`` (torchvision ImageFolder layout)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from rsfm.data.rasters import list_images
from rsfm.data.reader import ImageReader
from rsfm.errors import ConfigError
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
                 transforms: Callable[[dict], dict] | None = None) -> None:
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
