"""Fetching, reading, re-keying, band-adapting and strictly loading pretrained checkpoints.

:func:`load_pretrained` is the whole sequence (the registry calls it after building a backbone);
its :class:`LoadReport` carries the :class:`BandReport` of the first layer's band mapping.

Every download goes through :func:`fetch`, i.e. ``huggingface_hub.hf_hub_download`` with the
card's pinned revision (so ``HF_HOME``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` apply). Files are read
with safetensors or ``torch.load(weights_only=True)``; nothing executes code from a checkpoint.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from rsfm.bands import Band, match_bands
from rsfm.cards import AdapterCard, KeyMap
from rsfm.errors import WeightsError

__all__ = [
    "BandReport",
    "LoadReport",
    "adapt_input_channels",
    "fetch",
    "load_into",
    "load_pretrained",
    "map_bands",
    "read_state_dict",
    "remap_keys",
    "resolve_weights",
]

log = logging.getLogger(__name__)


class ChecksumWarning(UserWarning):
    """A weights file does not have the sha256 its adapter card records."""


def fetch(repo_id: str, filename: str, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """Download (or find in the Hub cache) one file; wraps Hub errors with the fix.

    Args:
        repo_id: ``org/name`` on the Hugging Face Hub.
        filename: File inside the repo.
        revision: Commit, tag or branch; ``None`` is ``"main"``.
        cache_dir: Overrides the Hub cache (default: ``$HF_HOME/hub``).

    Raises:
        WeightsError: not cached while offline, missing repo/file, network failure.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}/{filename}@{revision or 'main'}"
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    except LocalEntryNotFoundError as err:
        cache = cache_dir or os.environ.get("HF_HUB_CACHE") or os.path.join(
            os.environ.get("HF_HOME", "~/.cache/huggingface"), "hub"
        )
        raise WeightsError(
            f"{where} is not in the Hugging Face cache ({cache}) and the Hub cannot be reached "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}). Download it where you have "
            f"network (`hf download {repo_id} {filename} --revision {revision or 'main'}`) and copy "
            f"the cache, or pass weights='/path/to/{filename}'."
        ) from err
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as err:
        raise WeightsError(f"{where} does not exist on the Hub (or needs a token): {err}") from err
    except OSError as err:
        raise WeightsError(f"Could not download {where}: {err}") from err


def resolve_weights(card: AdapterCard, weights: str | os.PathLike[str] | None, cache_dir: str | None = None) -> Path:
    """Turn ``weights`` (None = the card's Hub file, a local path, or ``hf://org/repo/file[@rev]``) into a file."""
    if weights is None:
        if card.weights is None:
            raise WeightsError(f"Backbone {card.name!r} has no pretrained weights; pass weights=PATH.")
        w = card.weights
        return fetch(w.repo_id, w.filename, w.revision, cache_dir)
    text = str(weights)
    if text.startswith("hf://"):
        spec, _, revision = text[len("hf://"):].partition("@")
        parts = spec.split("/")
        if len(parts) < 3:
            raise WeightsError(f"weights={text!r}: expected hf://ORG/REPO/PATH/IN/REPO[@REVISION].")
        return fetch("/".join(parts[:2]), "/".join(parts[2:]), revision or None, cache_dir)
    path = Path(text).expanduser()
    if not path.is_file():
        raise WeightsError(f"Weights file {str(path)!r} does not exist.")
    return path


def sha256sum(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path, nested_key: str | None = None, sha256: str | None = None) -> dict[str, Tensor]:
    """Read a flat ``{key: tensor}`` dict from a safetensors or torch file (never unpickles code).

    Raises:
        WeightsError: checksum mismatch, truncated/corrupt file, or not a state dict.
    """
    if sha256:
        actual = sha256sum(path)
        if actual != sha256.lower():
            # A warning, not an error: the Hub already checks LFS hashes on download, so a mismatch
            # means a re-uploaded or hand-placed file; strict key/shape checks still follow.
            msg = (
                f"Checksum mismatch for {path}: sha256 {actual} but the card expects {sha256}. "
                f"The file is a different version than the card describes (or corrupt); if outputs "
                f"look wrong, delete it and download again."
            )
            warnings.warn(msg, ChecksumWarning, stacklevel=3)
            log.warning(msg)
        else:
            log.info("sha256 of %s verified", path.name)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch/safetensors raise many types for corrupt files
        raise WeightsError(
            f"Cannot read weights file {str(path)!r} ({type(err).__name__}: {str(err)[:200]}). "
            f"It may be truncated or not a PyTorch/safetensors checkpoint."
        ) from err
    if nested_key is not None:
        if not isinstance(obj, dict) or nested_key not in obj:
            raise WeightsError(f"{path}: expected the state dict under key {nested_key!r}.")
        obj = obj[nested_key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        kind = type(obj).__name__
        keys = list(obj)[:5] if isinstance(obj, dict) else []
        raise WeightsError(
            f"{path} does not hold a flat state dict of tensors (got {kind}, first keys {keys}). "
            f"If the weights are nested, set state_dict.nested_key in the adapter card."
        )
    return dict(obj)


def remap_keys(state: dict[str, Tensor], key_map: KeyMap) -> dict[str, Tensor]:
    """Apply a card's ``strip_prefixes`` and ``drop`` rules (see :class:`rsfm.cards.KeyMap`)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        for prefix in key_map.strip_prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        if any(fnmatch.fnmatchcase(key, pat) for pat in key_map.drop):
            continue
        out[key] = value
    return out


@dataclass
class BandReport:
    """How the user's bands were mapped onto the pretrained input layer."""

    kept: list[str] = field(default_factory=list)  # "user <- pretrained"
    dropped: list[str] = field(default_factory=list)  # pretrained bands the user does not have
    initialized: list[str] = field(default_factory=list)  # user bands with no pretrained filter
    scale: float = 1.0

    def __str__(self) -> str:
        return (
            f"kept {self.kept or 'none'}; dropped {self.dropped or 'none'}; "
            f"initialized from the mean filter {self.initialized or 'none'}"
            + (f"; layer rescaled by {self.scale:.3g}" if self.scale != 1.0 else "")
        )


@dataclass
class LoadReport:
    """What a strict load found, and how the input bands were mapped.

    Attributes:
        missing: Model keys absent from the file (only ``allow_missing`` ones get this far).
        unexpected: File keys the model does not have.
        mismatched: ``(key, file shape, model shape)`` of keys whose shapes differ.
        bands: The band mapping applied to the first layer (None: the pretraining bands, or a
            family without a first layer to adapt, such as DOFA).
        source: The weights file.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    bands: BandReport | None = None
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or mismatched."""
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 5) -> str:
        """Human-readable summary: first ``limit`` keys of each kind plus counts."""
        parts = []
        for label, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                parts.append(f"{len(items)} {label}: {items[:limit]}{more}")
        if self.mismatched:
            shown = [f"{k}: file {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched[:limit]]
            more = f" (+{len(self.mismatched) - limit} more)" if len(self.mismatched) > limit else ""
            parts.append(f"{len(self.mismatched)} shape mismatches: {shown}{more}")
        return "; ".join(parts)


def load_into(model: nn.Module, state: dict[str, Tensor], key_map: KeyMap, source: str) -> LoadReport:
    """Strictly load ``state`` (already re-keyed) into ``model``.

    Only model keys matching ``key_map.allow_missing`` may be absent. Raises before touching the
    model if anything else is off, listing the first keys of each kind and naming ``source``.

    Raises:
        WeightsError: Missing, unexpected or mismatched keys.
    """
    expected = model.state_dict()
    report = LoadReport(
        missing=[
            k for k in expected
            if k not in state and not any(fnmatch.fnmatchcase(k, p) for p in key_map.allow_missing)
        ],
        unexpected=[k for k in state if k not in expected],
        mismatched=[
            (k, tuple(v.shape), tuple(expected[k].shape))
            for k, v in state.items()
            if k in expected and tuple(v.shape) != tuple(expected[k].shape)
        ],
        source=source,
    )
    if not report.ok:
        raise WeightsError(f"Weights in {source} do not fit {type(model).__name__}: {report.describe()}.")
    model.load_state_dict(state, strict=False)  # strictness enforced above (allow_missing aside)
    return report


def map_bands(pretrained: Sequence[Band], target: Sequence[Band]) -> tuple[list[int | None], BandReport]:
    """Which pretrained filter each of the user's bands gets (by :func:`rsfm.bands.match_bands`).

    Returns:
        One index into ``pretrained`` (None: no pretrained filter) per target band, and the
        :class:`BandReport` (with the rescaling :func:`adapt_input_channels` applies).
    """
    index = match_bands(target, pretrained)
    report = BandReport()
    for band, i in zip(target, index):
        if i is None:
            report.initialized.append(band.name)
        else:
            name = pretrained[i].name
            report.kept.append(band.name if band.name == name else f"{band.name}<-{name}")
    used = {i for i in index if i is not None}
    report.dropped = [p.name for i, p in enumerate(pretrained) if i not in used]
    if (report.initialized or report.dropped) and len(pretrained) != len(target):
        report.scale = len(pretrained) / len(target)
    return index, report


def adapt_input_channels(weight: Tensor, pretrained: Sequence[Band],
                         target: Sequence[Band]) -> tuple[Tensor, BandReport]:
    """Map a first-layer weight from pretrained bands to the user's bands.

    Bands are matched by :func:`rsfm.bands.match_bands` (same band, then same common name:
    ``B8A`` gets ``NIR_NARROW``'s filter). Matched bands keep their pretrained filter, in the
    user's order; absent pretrained bands are dropped; new bands (a declared ``DEM``, a band the
    checkpoint lacks) get the mean of the pretrained filters. Whenever the band set changes (a
    band dropped or added), the whole layer is multiplied by ``len(pretrained) / len(target)`` so
    that, on standardised inputs, the summed response keeps the pretrained scale (as timm's
    ``adapt_input_conv`` does). A pure re-ordering keeps the filters unchanged.

    Args:
        weight: ``(out, C_pretrained, ...)`` (any kernel shape).
        pretrained: The card's bands, in weight order.
        target: The user's bands.

    Returns:
        ``(out, C_target, ...)`` weight and the :class:`BandReport`.
    """
    index, report = map_bands(pretrained, target)
    mean = weight.mean(dim=1)
    new = torch.stack([mean if i is None else weight[:, i] for i in index], dim=1)
    if report.scale != 1.0:
        new = new * report.scale
    return new.contiguous(), report


def load_pretrained(model: nn.Module, card: AdapterCard, bands: Sequence[Band],
                    weights: str | os.PathLike[str] | None = None,
                    cache_dir: str | None = None) -> LoadReport:
    """Load a checkpoint into a backbone built for ``bands``: the whole load sequence.

    1. resolve the file (``weights``: None = the card's Hub file, a local path, or
       ``hf://org/repo/file[@rev]``) and read it (sha256 checked against the card);
    2. re-key it with the card's key map;
    3. adapt the first layer (``card.state_dict.first_conv``) from the card's bands to ``bands``
       (:func:`adapt_input_channels`);
    4. load strictly (:func:`load_into`).

    Args:
        model: The backbone, built for ``bands``.
        card: Its adapter card.
        bands: The model's input channels, in order.
        weights: Another file than the card's (same key layout).
        cache_dir: Hub cache override.

    Returns:
        The :class:`LoadReport`, with the band mapping in ``report.bands``.

    Raises:
        WeightsError: The file is missing, corrupt, or does not fit the model.
    """
    pretrained = card.catalog_bands()
    path = resolve_weights(card, weights, cache_dir)
    from_card = weights is None and card.weights is not None
    state = read_state_dict(path, card.state_dict.nested_key,
                            card.weights.sha256 if from_card and card.weights else None)
    state = remap_keys(state, card.state_dict)
    band_report = None
    first = f"{card.state_dict.first_conv}.weight" if card.state_dict.first_conv else ""
    if first and first in state and [b.name for b in bands] != [b.name for b in pretrained]:
        if state[first].shape[1] != len(pretrained):
            raise WeightsError(
                f"{path}: {first} has {state[first].shape[1]} input channels but the card "
                f"{card.name!r} lists {len(pretrained)} bands."
            )
        state[first], band_report = adapt_input_channels(state[first], pretrained, bands)
        log.info("%s bands: %s", card.name, band_report)
    report = load_into(model, state, card.state_dict, source=str(path))
    report.bands = band_report
    log.info("Loaded %s weights from %s", card.name, path)
    return report
