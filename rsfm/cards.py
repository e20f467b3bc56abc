"""Adapter cards: one declarative YAML file per pretrained checkpoint.

A card says where the weights live (Hub repo, file, pinned revision, sha256), which architecture
they fit, which bands (with wavelengths) and normalisation they were pretrained with, and how the
official checkpoint keys map onto our modules. Cards are data: the registry joins them with the
family builders in :mod:`rsfm.models.backbones`.

Cards are found, in order, in the directories of ``RSFM_ADAPTER_PATH`` (``os.pathsep``-separated),
in directories added with :func:`add_adapter_dir`, and in the cards shipped with rsfm (the
``adapters/`` folder of a source checkout, or ``rsfm/_adapters`` inside an installed wheel).
A user card with the same name as a shipped one overrides it.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar, Literal

from rsfm.bands import Band, custom_band, get_band
from rsfm.config import FORBID
from rsfm.errors import BandError, CardError, ConfigError, UnknownNameError
from rsfm.validation import validate

__all__ = [
    "EXTRA_ARGS",
    "FAMILIES",
    "MULTI_FRAME",
    "SHAPE_SAFE",
    "VIT_FAMILIES",
    "AdapterCard",
    "BandSpec",
    "CardNormalization",
    "KeyMap",
    "WeightsSource",
    "adapter_dirs",
    "add_adapter_dir",
    "all_cards",
    "get_card",
    "load_card",
    "match_names",
]

CARD_SCHEMA = 1

# Facts about the backbone families that checks need without building a model (and without
# importing torch); the builders live in rsfm.models.backbones.
FAMILIES = ("resnet", "prithvi", "dofa")
# Families that are ViTs (patch size, window attention, global blocks); the others are CNNs.
VIT_FAMILIES = ("prithvi", "dofa")
# Families that take several frames per sample ((B, C, T, H, W) input).
MULTI_FRAME = ("prithvi",)
# Architecture overrides that do not change parameter shapes, so they combine with pretrained weights.
# (A ResNet's ``stem`` only also returns the stride-2 stem map: no parameters.)
SHAPE_SAFE = frozenset({"drop_path_rate", "output_stride", "img_size", "norm_eps", "coords_scale_learn",
                        "window_mode", "stem"})
# Keyword arguments each family accepts on top of its card's ``arch`` keys.
EXTRA_ARGS: dict[str, frozenset[str]] = {
    "resnet": frozenset({"output_stride", "stem"}),
    "prithvi": frozenset({"drop_path_rate", "window_mode"}),
    "dofa": frozenset({"drop_path_rate", "window_mode"}),
}


@dataclass(frozen=True)
class WeightsSource:
    """Where the pretrained file lives on the Hugging Face Hub."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    repo_id: str
    filename: str
    revision: str | None = None  # a 40-hex commit; None means the branch "main" (unpinned)
    sha256: str | None = None
    format: Literal["torch", "safetensors"] = "torch"
    size_bytes: int | None = None


@dataclass(frozen=True)
class BandSpec:
    """A pretraining band: its name (a catalog name) and central wavelength in micrometres."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: str
    wavelength_um: float


@dataclass(frozen=True)
class CardNormalization:
    """Per-band statistics the pretrained model expects: ``(x - mean) / std`` on raw values.

    ``value_scale`` says what raw values are (e.g. "HLS surface reflectance x 10000").
    Mean/std are in those units. ``divide_by`` is applied before mean/std (e.g. 255 or 10000).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    mean: tuple[float, ...]
    std: tuple[float, ...]
    value_scale: str
    divide_by: float = 1.0


@dataclass(frozen=True)
class KeyMap:
    """How official checkpoint keys become our state-dict keys (applied in this order).

    1. ``nested_key``: take ``obj[nested_key]`` when the file wraps the state dict;
    2. ``strip_prefixes``: remove the first matching prefix (keys without it are kept as is, which
       also accepts legacy flat layouts);
    3. ``drop``: fnmatch patterns of keys the backbone does not use (MAE decoder, fixed buffers);
    4. ``allow_missing``: fnmatch patterns of model keys that may be absent from the file.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    nested_key: str | None = None
    strip_prefixes: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    allow_missing: tuple[str, ...] = ()
    first_conv: str = ""  # module whose weight has the input channels on axis 1


@dataclass(frozen=True)
class AdapterCard:
    """A pretrained checkpoint, described as data. See ``adapters/*.yaml``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    schema: int
    name: str
    family: Literal["resnet", "prithvi", "dofa"]
    description: str
    arch: dict[str, Any]
    bands: tuple[BandSpec, ...]
    normalization: CardNormalization
    state_dict: KeyMap
    license: str
    weights: WeightsSource | None = None
    aliases: tuple[str, ...] = ()
    sensor: str | None = None  # catalog sensor the band names belong to (resolves "B10" etc.)
    paper: str = ""
    citation: str = ""
    homepage: str = ""
    lora_targets: tuple[str, ...] = ("attn.qkv", "attn.proj")
    # Parameters of the backbone built from this card (its arch and bands, no head), so listings
    # need no model; shipped cards are checked against rsfm.registry.count_parameters(name).
    num_params: int | None = None
    notes: str = ""
    source: str = field(default="", compare=False)  # the YAML file this card came from

    @property
    def band_names(self) -> list[str]:
        """Pretraining band names in input order."""
        return [b.name for b in self.bands]

    def catalog_bands(self) -> list[Band]:
        """Pretraining bands as catalog bands (wavelengths from the card)."""
        out = []
        for spec in self.bands:
            try:
                band = get_band(spec.name, self.sensor)
            except BandError:
                band = custom_band(spec.name, spec.wavelength_um)
            out.append(replace(band, wavelength_um=spec.wavelength_um))
        return out

    @property
    def hub_url(self) -> str:
        """``https://huggingface.co/<repo>`` or an empty string."""
        return f"https://huggingface.co/{self.weights.repo_id}" if self.weights else ""


_extra_dirs: list[Path] = []


def add_adapter_dir(path: str | os.PathLike[str]) -> None:
    """Register a directory of user cards (searched before the shipped ones)."""
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise CardError(f"Adapter directory {str(p)!r} does not exist or is not a directory.")
    if p not in _extra_dirs:
        _extra_dirs.append(p)
    _load_all.cache_clear()


def adapter_dirs() -> list[Path]:
    """Directories searched for cards, highest priority first."""
    dirs = [Path(p) for p in os.environ.get("RSFM_ADAPTER_PATH", "").split(os.pathsep) if p]
    dirs += _extra_dirs
    packaged = files("rsfm") / "_adapters"
    root = Path(__file__).resolve().parents[1]
    # A source checkout (editable install) wins over a stale copy inside the package. The
    # pyproject guard avoids picking up an unrelated top-level "adapters" package.
    if (root / "pyproject.toml").is_file() and (root / "adapters").is_dir():
        dirs.append(root / "adapters")
    elif packaged.is_dir():
        dirs.append(Path(str(packaged)))
    return dirs


def load_card(path: str | os.PathLike[str]) -> AdapterCard:
    """Parse and validate one card file.

    Raises:
        CardError: unreadable YAML, unknown or missing keys, wrong types (names file and key).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise CardError(f"Cannot read adapter card {str(path)!r}: {err}") from err
    if not isinstance(data, dict):
        raise CardError(f"Adapter card {str(path)!r} must be a YAML mapping, got {type(data).__name__}.")
    data["source"] = str(path)
    try:
        card = validate(AdapterCard, data, f"adapter card {str(path)!r}")
    except ConfigError as err:
        raise CardError(str(err)) from None
    if card.schema != CARD_SCHEMA:
        raise CardError(f"{path}: schema {card.schema} is not supported (this rsfm reads {CARD_SCHEMA}).")
    if path.stem != card.name:
        raise CardError(f"{path}: the file name must be the card name ({card.name}.yaml).")
    if card.weights and card.weights.revision and not re.fullmatch(r"[0-9a-f]{40}", card.weights.revision):
        raise CardError(f"{path}: weights.revision must be a 40-hex commit, got {card.weights.revision!r}.")
    if len(card.normalization.mean) != len(card.bands) or len(card.normalization.std) != len(card.bands):
        raise CardError(f"{path}: normalization.mean/std need one value per band ({len(card.bands)}).")
    return card


@lru_cache(maxsize=1)
def _load_all(dirs: tuple[Path, ...]) -> tuple[dict[str, AdapterCard], dict[str, str]]:
    cards: dict[str, AdapterCard] = {}
    aliases: dict[str, str] = {}
    for directory in dirs:  # highest priority first: the first card of a name wins
        seen_here: set[str] = set()
        for path in sorted(directory.glob("*.yaml")):
            card = load_card(path)
            if card.name in seen_here:  # pragma: no cover - file stems are unique per directory
                raise CardError(f"Duplicate card name {card.name!r} in {directory}.")
            seen_here.add(card.name)
            cards.setdefault(card.name, card)
    for card in cards.values():
        for alias in card.aliases:
            owner = aliases.get(alias)
            if alias in cards or (owner and owner != card.name):
                raise CardError(f"Alias {alias!r} of card {card.name!r} is already taken by {owner or alias!r}.")
            aliases[alias] = card.name
    return cards, aliases


def all_cards() -> dict[str, AdapterCard]:
    """All cards by name."""
    return _load_all(tuple(adapter_dirs()))[0]


def get_card(name: str) -> AdapterCard:
    """Return the card called ``name`` (or one of its aliases).

    Raises:
        UnknownNameError: with the closest names (difflib) and a hint to list them.
    """
    cards, aliases = _load_all(tuple(adapter_dirs()))
    if name in cards:
        return cards[name]
    if name in aliases:
        return cards[aliases[name]]
    known = sorted(cards) + sorted(aliases)
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
    family = next((f for f in FAMILIES if name.lower().startswith(f[:3])), "")
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(
        f"Unknown backbone {name!r}.{hint} See rsfm.list_backbones({(family + '*')!r})."
    )


def match_names(pattern: str) -> list[str]:
    """Card names (not aliases) matching an fnmatch pattern, natural-sorted."""
    names = [n for n in all_cards() if fnmatch.fnmatchcase(n, pattern)]
    return sorted(names, key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)])
