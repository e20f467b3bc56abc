"""``config.json``: the typed record of a saved model (:class:`SavedConfig`), one writer, one reader.

A run directory, a ``save_pretrained`` folder and a Hub repo all hold one. It says how to rebuild
the model (:class:`~rsfm.config.ModelConfig`, with the input facts removed), what the model eats
(:class:`~rsfm.spec.InputSpec`, the only place those facts live), which checkpoint the backbone
came from (:class:`CardRef`), the LoRA settings, and the metrics of the saved weights.

Round trip law (tested): reading a ``config.json`` and writing it again gives the same file.
Files written by rsfm 0.1 (``data:`` instead of ``input:``) are read too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from rsfm.bands import declared_band, resolve_band
from rsfm.cards import AdapterCard, get_card
from rsfm.colors import class_colors
from rsfm.config import FORBID, LoraSettings, ModelConfig
from rsfm.errors import BandError, ConfigError, UnknownNameError
from rsfm.io import atomic_write_json
from rsfm.spec import ClassInfo, InputSpec, Normalization
from rsfm.validation import dump, validate

__all__ = [
    "CONFIG_NAME",
    "SAVED_FORMAT",
    "CardRef",
    "SavedConfig",
    "architecture",
    "card_ref",
    "read_saved_config",
    "write_saved_config",
]

CONFIG_NAME = "config.json"
SAVED_FORMAT = 2  # bump on a breaking change of the file; readers convert older formats


@dataclass(frozen=True)
class CardRef:
    """The backbone checkpoint a model started from (traceability, model cards, LoRA bases)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: str
    family: str = ""
    license: str = ""
    repo_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    citation: str = ""


@dataclass(frozen=True)
class SavedConfig:
    """The content of ``config.json``.

    Attributes:
        format: File format version (:data:`SAVED_FORMAT`).
        rsfm_version: The rsfm that wrote the file.
        model: How to rebuild the model; its ``bands``, ``wavelengths`` and ``classes`` are
            always ``None`` here because ``input`` holds them.
        input: What the model eats and emits.
        card: The backbone's checkpoint.
        lora: LoRA settings when the model was trained with an adapter.
        lora_adapter: Folder (relative) of the peft adapter files, when saved.
        metrics: Metrics of the saved weights (``val_*``, ``test_*``, ``epoch``...).
        datasets: Hub dataset ids the model was trained on (model card metadata).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    rsfm_version: str
    model: ModelConfig
    input: InputSpec
    card: CardRef
    format: int = SAVED_FORMAT
    lora: LoraSettings | None = None
    lora_adapter: str | None = None
    metrics: dict[str, float | int | str | None] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.model.bands is not None or self.model.wavelengths is not None or (
                self.model.classes is not None):
            raise ConfigError("model: bands, wavelengths and classes belong in input (the "
                              "InputSpec), not in model.", key="model")
        if len(self.input.classes) != self.model.num_classes:
            raise ConfigError(f"input.classes: {len(self.input.classes)} classes but "
                              f"model.num_classes is {self.model.num_classes}.", key="input")
        if self.input.num_frames != self.model.num_frames:
            raise ConfigError(f"input.num_frames {self.input.num_frames} but model.num_frames "
                              f"{self.model.num_frames}.", key="input")


def architecture(model: ModelConfig) -> ModelConfig:
    """``model`` without the input facts (they live in the :class:`InputSpec`)."""
    return replace(model, bands=None, wavelengths=None, classes=None)


def card_ref(card: AdapterCard) -> CardRef:
    """The :class:`CardRef` of an adapter card."""
    w = card.weights
    return CardRef(name=card.name, family=card.family, license=card.license,
                   repo_id=w.repo_id if w else None, filename=w.filename if w else None,
                   revision=w.revision if w else None, citation=card.citation)


def write_saved_config(path: str | os.PathLike[str], config: SavedConfig) -> Path:
    """Write ``config`` to ``path`` atomically (``path`` may be a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    return atomic_write_json(path, dump(config))


def read_saved_config(path: str | os.PathLike[str]) -> SavedConfig:
    """Read a ``config.json`` (``path`` may be its folder); rsfm 0.1 files are converted.

    Raises:
        ConfigError: No such file, not JSON, or invalid content (names the key path).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        folder = path.parent
        if (folder / "recipe.yaml").is_file() and not (folder / "model.safetensors").exists():
            raise ConfigError(
                f"No {CONFIG_NAME} in '{folder}': this run has not saved a model yet (it writes "
                f"{CONFIG_NAME} and model.safetensors after its first epoch). If it was stopped, "
                "resume it (`rsfm train <recipe> --resume`, when checkpoints/ holds one) or "
                "train it again."
            ) from None
        raise ConfigError(f"No {CONFIG_NAME} in '{folder}': not an rsfm model folder "
                          "(train with rsfm, or save with model.save_pretrained).") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"Cannot read '{path}': {err}") from None
    _check_format(data, path)
    if isinstance(data, dict) and "input" not in data and "data" in data:
        data = _from_v1(data, path)
    return validate(SavedConfig, data, f"'{path}'")


def _check_format(data: Any, path: Path) -> None:
    """Refuse a ``config.json`` of a newer format than this rsfm reads (a wrong reading of a
    newer file would predict nonsense without a word).

    Raises:
        ConfigError: ``format`` above :data:`SAVED_FORMAT` (names the file and both versions).
    """
    if not isinstance(data, dict):
        return  # validate() names what is wrong
    fmt = data.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > SAVED_FORMAT:
        from rsfm import __version__

        written = data.get("rsfm_version")
        raise ConfigError(
            f"'{path}': format {fmt} was written by a newer rsfm"
            + (f" ({written})" if isinstance(written, str) and written not in ("", __version__)
               else "")
            + f"; this rsfm ({__version__}) reads config.json formats up to {SAVED_FORMAT}. "
            "Upgrade rsfm (pip install -U rsfm) to load this model.", key="format")


def _from_v1(old: dict[str, Any], path: Path) -> dict[str, Any]:
    """Convert the ``config.json`` of rsfm 0.1 (``data:`` dict, bands restated in ``model``)."""
    model = dict(old.get("model") or {})
    data = dict(old.get("data") or {})
    card = dict(old.get("card") or {})
    sensor = data.get("sensor")
    names = data.get("bands") or model.get("bands") or [b["name"] for b in card.get("bands", [])]
    waves = data.get("wavelengths") or model.get("wavelengths") or [None] * len(names)
    bands = []
    for name, wave in zip(names, waves):
        try:
            band = resolve_band(name, sensor)
            bands.append(replace(band, wavelength_um=wave) if wave is not None else band)
        except BandError:
            bands.append(declared_band(name, wave))
    mode = {"standardize": "per_tile"}.get(data.get("normalize") or "none",
                                           data.get("normalize") or "none")
    scale = data.get("value_scale")
    if scale is None:
        scale = 1.0 / float(data.get("divide_by") or 1.0)
    norm = Normalization(mode, data.get("mean"), data.get("std"), float(scale))
    class_names = data.get("classes") or old.get("classes") or model.get("classes") or [
        f"class_{i}" for i in range(int(model.get("num_classes", 1)))]
    colors = data.get("colors") or class_colors(len(class_names))
    spec = InputSpec(
        bands=tuple(bands), normalization=norm,
        classes=tuple(ClassInfo(str(n), tuple(c)) for n, c in zip(class_names, colors)),
        ignore_index=int(data.get("ignore_index", -1)), nodata=data.get("nodata"),
        tile_size=data.get("tile_size"), num_frames=int(model.get("num_frames", 1) or 1),
        indices=tuple(data.get("indices") or ()), file_bands=data.get("file_bands"),
        sensor=sensor,
    )
    weights = card.get("weights") or {}
    lora = old.get("lora")
    for key in ("bands", "wavelengths", "classes"):
        model[key] = None
    _keep_v1_layers(model, card.get("family"))
    return {
        "format": SAVED_FORMAT,
        "rsfm_version": str(old.get("rsfm_version", "0.1.0")),
        "model": model,
        "input": dump(spec),
        "card": {"name": card.get("name") or model.get("backbone", ""),
                 "family": card.get("family", ""), "license": card.get("license") or "",
                 "repo_id": weights.get("repo_id"), "filename": weights.get("filename"),
                 "revision": weights.get("revision")},
        "lora": {k: v for k, v in lora.items() if k in ("r", "alpha", "dropout",
                                                          "target_modules", "bias")}
        if lora else None,
        "lora_adapter": (lora or {}).get("adapter"),
        "metrics": {k: v for k, v in (old.get("metrics") or {}).items()
                    if isinstance(v, (int, float, str)) or v is None},
    }


def _keep_v1_layers(model: dict[str, Any], family: str | None) -> None:
    """Pin the 0.1 layout where a later default changed it, so 0.1 weights load strictly:
    a ResNet UNet had no stem level, a DeepLabv3+ head was full-width (not separable)."""
    if family is None:  # 0.1 always wrote the card's family; a hand-made file may not
        try:
            family = get_card(str(model.get("backbone", ""))).family
        except UnknownNameError:
            family = ""
    if family == "resnet" and model.get("head") == "unet":
        model["backbone_kwargs"] = {"stem": False, **(model.get("backbone_kwargs") or {})}
    if model.get("head") == "deeplabv3plus":
        model["head_kwargs"] = {"separable": False, **(model.get("head_kwargs") or {})}
