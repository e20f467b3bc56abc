"""Backbone registry: adapter cards (data) joined with family builders (code).

>>> rsfm.list_backbones("prithvi*")
['prithvi_eo_v1_100m', 'prithvi_eo_v2_300m', ...]
>>> backbone = rsfm.create_backbone("prithvi_eo_v2_300m", pretrained=True, bands=["B02", "B03", "B04"])
>>> features = backbone(x)  # list of (B, C, H/s, W/s)
>>> backbone.load_report.bands  # which pretrained filter each band got
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rsfm.bands import Band, custom_band, resolve_bands
from rsfm.cards import AdapterCard, get_card, match_names
from rsfm.config import wavelength_problem
from rsfm.errors import ConfigError
from rsfm.modelcheck import check_overrides
from rsfm.models.backbones import FAMILIES
from rsfm.models.weights import load_pretrained, map_bands

__all__ = [
    "backbone_card",
    "check_overrides",
    "count_parameters",
    "create_backbone",
    "get_card",
    "list_backbones",
]

log = logging.getLogger(__name__)


def list_backbones(pattern: str = "*", *, pretrained: bool | None = None) -> list[str]:
    """Registered backbone names matching an fnmatch ``pattern`` (natural sort).

    Args:
        pattern: e.g. ``"prithvi*"``, ``"*resnet50*"``.
        pretrained: True: only cards with Hub weights; False: only without; None: all.
    """
    names = match_names(pattern)
    if pretrained is not None:
        names = [n for n in names if (get_card(n).weights is not None) == pretrained]
    return names


def backbone_card(name: str) -> AdapterCard:
    """The adapter card of a backbone name or alias (raises with close matches if unknown)."""
    return get_card(name)


def create_backbone(
    name: str,
    *,
    pretrained: bool = False,
    weights: str | os.PathLike[str] | None = None,
    bands: Sequence[str | Band] | None = None,
    wavelengths: Sequence[float] | None = None,
    num_frames: int = 1,
    img_size: int | None = None,
    window_size: int | None = None,
    global_blocks: Sequence[int] | None = None,
    out_indices: Sequence[int] | None = None,
    cache_dir: str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered backbone, optionally with its official pretrained weights.

    Args:
        name: Card name or alias (``rsfm.list_backbones()``; TerraTorch names work too).
        pretrained: Load the card's Hub checkpoint (``hf_hub_download`` at the pinned revision).
        weights: A local file or ``hf://org/repo/file[@rev]`` instead of the card's file
            (implies loading). Key layout must be the official one.
        bands: The input bands by name (``["B02", "B03", "B04", "B8A"]``) or as
            :class:`~rsfm.bands.Band` objects (declared layers such as a DEM); default: the
            card's. Pretrained filters are picked by band (see ``backbone.band_report``); DOFA
            uses the bands' wavelengths instead.
        wavelengths: DOFA only: wavelengths in micrometres (one per input channel), for bands
            the catalog does not know.
        num_frames: Prithvi: frames per sample (``(B, C, T, H, W)`` input).
        img_size: ViTs: the pretraining-grid size the positional table is defined on.
        window_size: ViTs: window attention with this many tokens per side (0/None: global).
        global_blocks: ViTs: blocks that keep global attention (default: last of each quarter).
        out_indices: Blocks (ViT) or stages (ResNet, 0-3) whose outputs are returned.
        cache_dir: Hub cache directory override.
        **overrides: Architecture overrides (e.g. ``depth=2, embed_dim=64`` for a tiny model).

    Returns:
        An ``nn.Module`` with ``forward(x) -> list[Tensor]``, ``out_channels``, ``out_strides``,
        ``bands``, ``band_report`` (the band mapping, also previewed without weights) and
        ``load_report`` (:class:`~rsfm.models.weights.LoadReport` of a pretrained load, or None).

    Raises:
        UnknownNameError: unknown name (with close matches).
        ConfigError: an argument that does not fit the family, or unknown overrides.
        BandError: unknown band names.
        WeightsError: weights missing, corrupt, or of the wrong layout.
    """
    card = get_card(name)
    loading = pretrained or weights is not None
    check_overrides(card, overrides, loading)
    if num_frames < 1:
        raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
    if wavelengths is not None and card.family != "dofa":
        raise ConfigError(f"wavelengths= is for DOFA backbones; {card.name!r} maps bands by name (bands=...).")
    if wavelengths is not None and (problem := wavelength_problem(wavelengths)):
        raise ConfigError(f"create_backbone(wavelengths=...): {problem}.")
    if isinstance(bands, str):
        raise ConfigError(f"bands must be a list of band names, e.g. [{bands!r}], got the string {bands!r}.")
    if bands is not None and len(bands) == 0:
        raise ConfigError(f"bands=[] is empty: list the input bands, or leave bands out for the "
                          f"pretraining bands of {card.name!r} {card.band_names}.")
    pretrained_bands = tuple(card.catalog_bands())
    target = pretrained_bands if bands is None else tuple(resolve_bands(bands))
    if wavelengths is not None and len(wavelengths) != len(target):
        if bands is not None:
            raise ConfigError(f"Got {len(wavelengths)} wavelengths for {len(target)} bands.")
        target = tuple(custom_band(f"band_{i}", w) for i, w in enumerate(wavelengths))
    arch = {**card.arch, **overrides}
    model = FAMILIES[card.family](
        card, arch, target, num_frames=num_frames, img_size=img_size, window_size=window_size,
        global_blocks=global_blocks, out_indices=out_indices, wavelengths=wavelengths,
    )
    model.card_name = card.name
    model.bands = [b.name for b in target]
    model.band_report = None
    model.load_report = None
    if card.state_dict.first_conv and [b.name for b in target] != [b.name for b in pretrained_bands]:
        # the mapping a pretrained load applies (also shown without weights, to preview it)
        model.band_report = map_bands(pretrained_bands, target)[1]
    if loading:
        model.load_report = load_pretrained(model, card, target, weights, cache_dir)
        if model.load_report.bands is not None:
            model.band_report = model.load_report.bands
    return model


def count_parameters(name: str, **overrides: Any) -> int:
    """Parameter count of a backbone, built on the meta device (no memory, no download)."""
    with torch.device("meta"):
        model = create_backbone(name, **overrides)
    return sum(p.numel() for p in model.parameters())
