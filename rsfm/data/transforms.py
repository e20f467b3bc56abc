"""Augmentation of samples (``image`` + ``mask`` / ``boxes``), configurable from a recipe.

Geometric transforms come from ``torchvision.transforms.v2`` and run jointly on the image
(``tv_tensors.Image``, any band count, also ``(C, T, H, W)``), the mask (``tv_tensors.Mask``,
nearest interpolation) and the boxes (``tv_tensors.BoundingBoxes``). What v2 lacks is written
here: exact 90-degree rotations, per-band gain/offset jitter, noise, and haze/cloud simulation.
Spectral transforms act on the *normalised* image (units of band standard deviations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from rsfm.errors import ConfigError
from rsfm.schema import check_augmentation

__all__ = [
    "BandJitter",
    "CloudHaze",
    "GaussianNoise",
    "RandomRot90",
    "SampleTransform",
    "build_transforms",
]


class RandomRot90(v2.Transform):
    """Rotate by a random multiple of 90 degrees (exact: no interpolation), with probability p."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        self.p = p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if torch.rand(()) >= self.p:
            return {"k": 0}
        return {"k": int(torch.randint(1, 4, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        k = params["k"]
        if k == 0:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            h, w = inpt.canvas_size
            b = v2.functional.convert_bounding_box_format(
                inpt, new_format=tv_tensors.BoundingBoxFormat.XYXY).as_subclass(torch.Tensor)
            for _ in range(k):  # one counter-clockwise quarter turn, as torch.rot90
                b = torch.stack([b[:, 1], w - b[:, 2], b[:, 3], w - b[:, 0]], dim=1)
                h, w = w, h
            out = tv_tensors.BoundingBoxes(b, format="XYXY", canvas_size=(h, w))
            return v2.functional.convert_bounding_box_format(out, new_format=inpt.format)
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask, tv_tensors.Video)):
            return tv_tensors.wrap(torch.rot90(inpt.as_subclass(torch.Tensor), k, dims=(-2, -1)),
                                   like=inpt)
        return inpt


class BandJitter(torch.nn.Module):
    """Per-band random gain ``U(1-gain, 1+gain)`` and offset ``U(-offset, offset)``."""

    def __init__(self, gain: float = 0.1, offset: float = 0.1, p: float = 0.5) -> None:
        super().__init__()
        self.gain, self.offset, self.p = gain, offset, p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        shape = (image.shape[0],) + (1,) * (image.ndim - 1)
        g = 1 + (torch.rand(shape) * 2 - 1) * self.gain
        o = (torch.rand(shape) * 2 - 1) * self.offset
        return image * g + o


class GaussianNoise(torch.nn.Module):
    """Additive Gaussian noise with standard deviation ``std`` (normalised units)."""

    def __init__(self, std: float = 0.05, p: float = 0.5) -> None:
        super().__init__()
        self.std, self.p = std, p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        return image + torch.randn_like(image) * self.std


class CloudHaze(torch.nn.Module):
    """Blend the image towards a bright, flat "cloud" signal with a smooth random opacity field.

    The opacity is uniform haze (``U(0, max_haze)``) plus cloud blobs: low-resolution noise,
    upsampled bilinearly and thresholded so roughly ``coverage`` of the tile is cloudy, up to
    ``max_cloud`` opacity. ``brightness`` is the cloud value per band in normalised units
    (clouds are bright in every optical band: about +2 std).
    """

    def __init__(self, p: float = 0.2, max_haze: float = 0.4, max_cloud: float = 0.9,
                 coverage: float = 0.3, brightness: float = 2.0, scale: int = 8) -> None:
        super().__init__()
        self.p, self.max_haze, self.max_cloud = p, max_haze, max_cloud
        self.coverage, self.brightness, self.scale = coverage, brightness, scale

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        h, w = image.shape[-2:]
        low = torch.rand(1, 1, self.scale, self.scale)
        field = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)[0, 0]
        thr = torch.quantile(field.flatten(), 1 - self.coverage)
        cloud = ((field - thr) / (field.max() - thr + 1e-6)).clamp(0, 1) * self.max_cloud
        alpha = (torch.rand(()) * self.max_haze + cloud).clamp(0, 1)
        return image * (1 - alpha) + self.brightness * alpha


class SampleTransform:
    """Apply geometric transforms jointly to image/mask/boxes, then spectral ones to the image.

    Args:
        geometric: v2 transforms (flips, :class:`RandomRot90`, ``RandomResizedCrop``...).
        spectral: Modules taking and returning the image tensor.
    """

    def __init__(self, geometric: list[Any] = (), spectral: list[Any] = ()) -> None:
        self.geometric = v2.Compose(list(geometric)) if geometric else None
        self.spectral = list(spectral)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        out = dict(sample)
        if self.geometric is not None:
            image = sample["image"]
            h, w = image.shape[-2:]
            wrapped: dict[str, Any] = {"image": tv_tensors.Image(image)}
            if "mask" in sample:
                wrapped["mask"] = tv_tensors.Mask(sample["mask"])
            if "boxes" in sample:
                wrapped["boxes"] = tv_tensors.BoundingBoxes(
                    sample["boxes"], format="XYXY", canvas_size=(h, w))
                wrapped["labels"] = sample["labels"]
                if "masks" in sample:  # instance masks: moved with the image, dropped with their box
                    wrapped["masks"] = tv_tensors.Mask(sample["masks"])
            result = self.geometric(wrapped)
            if "boxes" in result:  # crops can cut boxes to nothing: drop them with their labels
                result = v2.SanitizeBoundingBoxes(min_size=1.0)(result)
            for key, value in result.items():
                out[key] = value.as_subclass(torch.Tensor) if isinstance(value, torch.Tensor) else value
            if "mask" in out:
                out["mask"] = out["mask"].long()
        if self.spectral:
            # nodata pixels are exactly 0 in every band: keep them so (the contract of the data
            # layer), rather than letting haze or noise invent values there
            image = out["image"]
            empty = (image == 0).all(dim=0)
            for t in self.spectral:
                image = t(image)
            if empty.any():
                image = image.masked_fill(empty.unsqueeze(0), 0.0)
            out["image"] = image
        return out

    def __repr__(self) -> str:
        return f"SampleTransform(geometric={self.geometric}, spectral={self.spectral})"


def _resized_crop(o: dict[str, Any]) -> Any:
    p = o.pop("p", 1.0)
    crop = v2.RandomResizedCrop(size=o.pop("size"), scale=tuple(o.pop("scale", (0.5, 1.0))),
                                ratio=tuple(o.pop("ratio", (3 / 4, 4 / 3))), **o)
    return v2.RandomApply([crop], p=p) if p < 1 else crop


# name -> (geometric?, default probability, builder from options), in the order they are applied.
# rsfm.config.AUGMENTATIONS lists the same names for recipe validation (a test keeps them equal).
_AUGMENTATIONS: dict[str, tuple[bool, float, Callable[[dict[str, Any]], Any]]] = {
    "resized_crop": (True, 1.0, _resized_crop),
    "hflip": (True, 0.5, lambda o: v2.RandomHorizontalFlip(**o)),
    "vflip": (True, 0.5, lambda o: v2.RandomVerticalFlip(**o)),
    "rot90": (True, 0.5, lambda o: RandomRot90(**o)),
    "band_jitter": (False, 0.5, lambda o: BandJitter(**o)),
    "noise": (False, 0.5, lambda o: GaussianNoise(**o)),
    "haze": (False, 0.2, lambda o: CloudHaze(**o)),
}


def build_transforms(config: Mapping[str, Any] | None) -> SampleTransform | None:
    """Build the augmentation of a recipe's ``augment:`` section.

    Example::

        {"hflip": 0.5, "vflip": 0.5, "rot90": 0.5,
         "resized_crop": {"size": 224, "scale": [0.5, 1.0]},
         "band_jitter": {"gain": 0.1, "offset": 0.1, "p": 0.5},
         "noise": {"std": 0.05, "p": 0.5}, "haze": {"p": 0.2, "max_haze": 0.4}}

    Probabilities may be given as a bare number; ``None``/``{}`` means no augmentation.

    Raises:
        ConfigError: Unknown key or bad value (the message names it; the recipe schema makes
            the same checks, :func:`rsfm.schema.check_augmentation`).
    """
    if not config:
        return None
    unknown = sorted(set(config) - set(_AUGMENTATIONS))
    if unknown:
        raise ConfigError(f"Unknown augmentation(s) {unknown}; allowed: {list(_AUGMENTATIONS)}.")
    geometric: list[Any] = []
    spectral: list[Any] = []
    for key, (is_geometric, default_p, build) in _AUGMENTATIONS.items():
        value = config.get(key)
        try:
            check_augmentation(key, value)
        except ConfigError as err:
            what = "Bad augmentation option " if str(err.key).count(".") > 1 else ""
            raise ConfigError(f"{what}data.{err}", key=f"data.{err.key}") from None
        if value is None or value is False:
            continue
        if value is True:
            opts: dict[str, Any] = {"p": default_p}
        elif isinstance(value, (int, float)):
            opts = {"p": float(value)}
        elif isinstance(value, Mapping):
            opts = dict(value)
        else:
            raise ConfigError(f"data.augment.{key} must be a probability or a mapping, got "
                              f"{value!r}.")
        p = opts.get("p", default_p)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ConfigError(f"data.augment.{key}: the probability must be in [0, 1], got {p!r}.")
        try:
            (geometric if is_geometric else spectral).append(build(opts))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"Bad augmentation option data.augment.{key}: {err}") from None
    return SampleTransform(geometric, spectral)
