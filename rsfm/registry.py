"""Backbone registry: adapter cards (data) joined with family builders (code).

>>> rsfm.list_backbones("prithvi*")
['prithvi_eo_v1_100m', 'prithvi_eo_v2_300m', ...]
>>> backbone = rsfm.create_backbone("prithvi_eo_v2_300m", pretrained=True, bands=["B02", "B03", "B04"])
>>> features = backbone(x)  # list of (B, C, H/s, W/s)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rsfm.bands import Band, resolve_bands
from rsfm.cards import AdapterCard, get_card, match_names
from rsfm.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["backbone_card", "count_parameters", "create_backbone", "list_backbones"]

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


def _check_overrides(card: AdapterCard, overrides: dict[str, Any], loading: bool) -> None:
    from rsfm.models.backbones import EXTRA_ARGS, SHAPE_SAFE

    allowed = set(card.arch) | EXTRA_ARGS[card.family]
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(
            f"create_backbone({card.name!r}) got unexpected argument(s) {unknown}. Architecture "
            f"overrides allowed for the {card.family} family: {sorted(allowed)}."
        )
    if loading:
        unsafe = sorted(k for k, v in overrides.items() if k not in SHAPE_SAFE and v != card.arch.get(k))
        if unsafe:
            raise ConfigError(
                f"Overrides {unsafe} change the architecture of {card.name!r}, so its pretrained "
                f"weights cannot load. Use pretrained=False for a randomly initialised variant."
            )


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
        bands: The input bands by name (``["B02", "B03", "B04", "B8A"]``); default: the card's.
            Pretrained filters are picked by band (see ``backbone.band_report``); DOFA uses the
            bands' wavelengths instead.
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
        ``bands`` and ``band_report``.

    Raises:
        UnknownNameError: unknown name (with close matches).
        ConfigError: an argument that does not fit the family, or unknown overrides.
        BandError: unknown band names.
        WeightsError: weights missing, corrupt, or of the wrong layout.
    """
    from rsfm.models.backbones import FAMILIES
    from rsfm.models.weights import (
        adapt_input_channels,
        load_into,
        read_state_dict,
        remap_keys,
        resolve_weights,
    )

    card = get_card(name)
    loading = pretrained or weights is not None
    _check_overrides(card, overrides, loading)
    if num_frames < 1:
        raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
    if wavelengths is not None and card.family != "dofa":
        raise ConfigError(f"wavelengths= is for DOFA backbones; {card.name!r} maps bands by name (bands=...).")
    if isinstance(bands, str):
        raise ConfigError(f"bands must be a list of band names, e.g. [{bands!r}], got the string {bands!r}.")
    pretrained_bands = card.catalog_bands()
    target = pretrained_bands if bands is None else resolve_bands(bands)
    if wavelengths is not None and len(wavelengths) != len(target):
        if bands is not None:
            raise ConfigError(f"Got {len(wavelengths)} wavelengths for {len(target)} bands.")
        from rsfm.bands import custom_band

        target = [custom_band(f"band_{i}", w) for i, w in enumerate(wavelengths)]
    arch = {**card.arch, **overrides}
    model = FAMILIES[card.family](
        card, arch, target, num_frames=num_frames, img_size=img_size, window_size=window_size,
        global_blocks=global_blocks, out_indices=out_indices, wavelengths=wavelengths,
    )
    model.card_name = card.name
    model.bands = [b.name for b in target]
    model.band_report = None
    if card.state_dict.first_conv and [b.name for b in target] != [b.name for b in pretrained_bands]:
        # the mapping a pretrained load applies (also shown without weights, to preview it)
        import torch

        _, model.band_report = adapt_input_channels(torch.zeros(1, len(pretrained_bands)), pretrained_bands, target)
    if loading:
        path = resolve_weights(card, weights, cache_dir)
        from_card = weights is None and card.weights is not None
        state = read_state_dict(path, card.state_dict.nested_key, card.weights.sha256 if from_card else None)
        state = remap_keys(state, card.state_dict)
        first = f"{card.state_dict.first_conv}.weight" if card.state_dict.first_conv else ""
        if first and first in state and [b.name for b in target] != [b.name for b in pretrained_bands]:
            if state[first].shape[1] != len(pretrained_bands):
                raise ConfigError(
                    f"{path}: {first} has {state[first].shape[1]} input channels but the card "
                    f"{card.name!r} lists {len(pretrained_bands)} bands."
                )
            state[first], report = adapt_input_channels(state[first], pretrained_bands, target)
            model.band_report = report
            log.info("%s bands: %s", card.name, report)
        load_into(model, state, card.state_dict, source=str(path))
        log.info("Loaded %s weights from %s", card.name, path)
    return model


def count_parameters(name: str, **overrides: Any) -> int:
    """Parameter count of a backbone, built on the meta device (no memory, no download)."""
    import torch

    with torch.device("meta"):
        model = create_backbone(name, **overrides)
    return sum(p.numel() for p in model.parameters())
