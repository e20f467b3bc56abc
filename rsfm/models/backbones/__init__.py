"""Backbone families. ``FAMILIES`` maps a card's ``family`` to the function that builds it.

The facts about families that need no torch (which are ViTs, which take frames, which overrides
keep weights loadable) live in :mod:`rsfm.cards`, re-exported here.

A builder takes the card, the (possibly overridden) architecture, the input channels as
``tuple[Band, ...]`` and the common options, and returns an ``nn.Module`` with
``forward(x) -> list[Tensor]``, ``out_channels`` and ``out_strides``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from rsfm.bands import Band
from rsfm.cards import EXTRA_ARGS, MULTI_FRAME, SHAPE_SAFE, VIT_FAMILIES, AdapterCard
from rsfm.errors import ConfigError
from rsfm.modelcheck import dofa_wavelengths
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

def _build_resnet(card: AdapterCard, arch: dict[str, Any], bands: tuple[Band, ...], *, num_frames: int,
                  img_size: int | None, window_size: int | None, global_blocks: Sequence[int] | None,
                  out_indices: Sequence[int] | None, wavelengths: Sequence[float] | None) -> nn.Module:
    for arg, value in (("window_size", window_size), ("global_blocks", global_blocks), ("img_size", img_size)):
        if value is not None:
            raise ConfigError(f"{arg} applies to ViT backbones; {card.name!r} is a ResNet.")
    if num_frames != 1:
        raise ConfigError(f"num_frames={num_frames}: {card.name!r} is a ResNet and takes single images.")
    return ResNetBackbone(arch["depth"], in_chans=len(bands), output_stride=arch.get("output_stride", 32),
                          out_indices=out_indices, stem=bool(arch.get("stem", False)))


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


FAMILIES: dict[str, Callable[..., nn.Module]] = {
    "resnet": _build_resnet,
    "prithvi": _build_prithvi,
    "dofa": _build_dofa,
}
