"""Backbone families. ``FAMILIES`` maps a card's ``family`` to the function that builds it.

A builder takes the card, the (possibly overridden) architecture, the input channels as
``tuple[Band, ...]`` and the common options, and returns an ``nn.Module`` with
``forward(x) -> list[Tensor]``, ``out_channels`` and ``out_strides``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from rsfm.bands import SPECTRAL_INDICES, Band
from rsfm.cards import AdapterCard
from rsfm.errors import ConfigError
from rsfm.models.backbones.dofa import DOFAViT
from rsfm.models.backbones.prithvi import PrithviViT
from rsfm.models.backbones.resnet import ResNetBackbone
from rsfm.models.backbones.vit import ViTBackbone

__all__ = [
    "EXTRA_ARGS",
    "FAMILIES",
    "MULTI_FRAME",
    "SHAPE_SAFE",
    "VIT_FAMILIES",
    "DOFAViT",
    "PrithviViT",
    "ResNetBackbone",
    "ViTBackbone",
    "dofa_wavelengths",
]

# Families that are ViTs (patch size, window attention, global blocks); the others are CNNs.
VIT_FAMILIES = ("prithvi", "dofa")
# Families that take several frames per sample ((B, C, T, H, W) input).
MULTI_FRAME = ("prithvi",)

# Overrides that do not change parameter shapes, so they combine with pretrained weights.
SHAPE_SAFE = {"drop_path_rate", "output_stride", "img_size", "norm_eps", "coords_scale_learn"}
# Extra keyword arguments each family accepts on top of its card's arch keys.
EXTRA_ARGS = {
    "resnet": {"output_stride"},
    "prithvi": {"drop_path_rate"},
    "dofa": {"drop_path_rate"},
}


def _build_resnet(card: AdapterCard, arch: dict[str, Any], bands: tuple[Band, ...], *, num_frames: int,
                  img_size: int | None, window_size: int | None, global_blocks: Sequence[int] | None,
                  out_indices: Sequence[int] | None, wavelengths: Sequence[float] | None) -> nn.Module:
    for arg, value in (("window_size", window_size), ("global_blocks", global_blocks), ("img_size", img_size)):
        if value is not None:
            raise ConfigError(f"{arg} applies to ViT backbones; {card.name!r} is a ResNet.")
    if num_frames != 1:
        raise ConfigError(f"num_frames={num_frames}: {card.name!r} is a ResNet and takes single images.")
    return ResNetBackbone(arch["depth"], in_chans=len(bands), output_stride=arch.get("output_stride", 32),
                          out_indices=out_indices)


def _build_prithvi(card: AdapterCard, arch: dict[str, Any], bands: tuple[Band, ...], *, num_frames: int,
                   img_size: int | None, window_size: int | None, global_blocks: Sequence[int] | None,
                   out_indices: Sequence[int] | None, wavelengths: Sequence[float] | None) -> nn.Module:
    kwargs = {k: v for k, v in arch.items() if k != "pretrain_num_frames"}
    if img_size is not None:
        kwargs["img_size"] = img_size
    return PrithviViT(in_chans=len(bands), num_frames=num_frames, out_indices=out_indices,
                      window_size=window_size, global_blocks=global_blocks, **kwargs)


def _build_dofa(card: AdapterCard, arch: dict[str, Any], bands: tuple[Band, ...], *, num_frames: int,
                img_size: int | None, window_size: int | None, global_blocks: Sequence[int] | None,
                out_indices: Sequence[int] | None, wavelengths: Sequence[float] | None) -> nn.Module:
    if num_frames != 1:
        raise ConfigError(f"num_frames={num_frames}: DOFA takes single images.")
    kwargs = dict(arch)
    if img_size is not None:
        kwargs["img_size"] = img_size
    waves = list(wavelengths) if wavelengths is not None else dofa_wavelengths(bands)
    return DOFAViT(waves, out_indices=out_indices, window_size=window_size, global_blocks=global_blocks, **kwargs)


def dofa_wavelengths(bands: Sequence[Band]) -> list[float]:
    """The wavelengths (micrometres) DOFA generates its patch embedding from, one per channel.

    Raises:
        ConfigError: A channel without a wavelength (a declared ``DEM``, a spectral index),
            naming it and the fix.
    """
    for band in bands:
        if band.wavelength_um is not None:
            continue
        if band.sensor == "custom" and band.name in SPECTRAL_INDICES:
            raise ConfigError(
                f"DOFA needs a wavelength for every input channel, and the spectral index channel "
                f"{band.name!r} has none; remove it from data.indices (DOFA takes bands only)."
            )
        raise ConfigError(
            f"DOFA needs a wavelength for band {band.name!r}; declare "
            f"{{name: {band.name}, wavelength: <µm>}} or set model.wavelengths."
        )
    return [float(b.wavelength_um) for b in bands]  # type: ignore[arg-type]


FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "resnet": _build_resnet,
    "prithvi": _build_prithvi,
    "dofa": _build_dofa,
}
