"""What a model eats and emits: :class:`InputSpec`, resolved once and read by every consumer.

The facts a model needs about its input (bands with wavelengths, normalisation, nodata, classes
with colours, ignore index, tile size, frames, spectral-index channels, how files order their
bands) are resolved by exactly one function, :func:`resolve_input_spec`, from what the user
stated (a recipe's ``model``/``data`` sections, or a ``ModelConfig``) and the backbone's adapter
card. The result is frozen and travels with the model: datasets read with it, the factory sizes
the input layer from it, training writes it into the run directory, ``config.json`` stores it,
``predict``/``evaluate``/``export`` and the Hub card read it back. Nothing re-derives it.

>>> spec = resolve_input_spec(recipe.model, get_card(recipe.model.backbone), recipe.data)
>>> spec.band_names, spec.normalization.mean, spec.class_names
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rsfm.bands import (
    SPECTRAL_INDICES,
    Band,
    declared_band,
    match_bands,
    resolve_band,
    sensor_bands,
)
from rsfm.colors import class_colors
from rsfm.config import FORBID, BandDecl, ClassDecl, ModelConfig, check, freeze_sequences
from rsfm.errors import BandError, ConfigError

if TYPE_CHECKING:
    from rsfm.cards import AdapterCard
    from rsfm.schema import DataConfig

__all__ = [
    "ClassInfo",
    "InputSpec",
    "Normalization",
    "class_values",
    "parse_color",
    "resolve_bands_stated",
    "resolve_input_spec",
]


def parse_color(color: str | Sequence[int]) -> tuple[int, int, int]:
    """``"#3C1098"`` or ``(60, 16, 152)`` -> ``(60, 16, 152)``.

    Raises:
        ConfigError: Not a hex colour or an RGB triple.
    """
    if isinstance(color, str):
        h = color.strip().lstrip("#")
        if len(h) == 6:
            try:
                return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
            except ValueError:
                pass
        raise ConfigError(f"Colour {color!r} is not '#RRGGBB'.")
    rgb = tuple(int(c) for c in color)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ConfigError(f"Colour {color!r} is not an (R, G, B) triple of 0..255.")
    return rgb  # type: ignore[return-value]


@dataclass(frozen=True)
class Normalization:
    """How raw pixels become model input: ``(raw * value_scale - mean) / std`` for ``stats``.

    Attributes:
        mode: ``stats`` (per-band mean/std, from the card or ``rsfm stats``), ``per_tile``
            (per tile and band standardisation), ``minmax`` (per tile to [0, 1]) or ``none``.
        mean: Per-band means (``stats``), in ``value_scale`` units; bands only, not indices.
        std: Per-band standard deviations.
        value_scale: Factor applied to raw values first (e.g. ``1e-4`` for reflectance x 10000).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    mode: Literal["stats", "per_tile", "minmax", "none"] = "none"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    value_scale: float = 1.0

    def __post_init__(self) -> None:
        freeze_sequences(self, "mean", "std")
        check((self.mode == "stats") == (self.mean is not None and self.std is not None), "mode",
              "'stats' goes with mean and std, and only 'stats' does")
        if self.mean is not None and self.std is not None:
            check(len(self.mean) == len(self.std), "std", f"{len(self.std)} values for "
                                                          f"{len(self.mean)} means")
            check(all(s > 0 for s in self.std), "std", f"must be > 0 (got {list(self.std)})")
        check(self.value_scale > 0, "value_scale", f"must be > 0 (got {self.value_scale})")


@dataclass(frozen=True)
class ClassInfo:
    """One output class: its name, the RGB colour every map, plot and raster uses, and its value.

    ``value`` is the class's pixel value in the user's label rasters when that differs from the
    class id (``data.label_map``, e.g. an ArcGIS export's class values 1, 5, 20): class rasters
    written by ``predict`` carry these values, so they read with the labels' legend. ``None``:
    the value is the class id.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: str
    color: tuple[int, int, int]
    value: int | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "color")
        check(len(self.color) == 3 and all(0 <= c <= 255 for c in self.color), "color",
              f"must be (R, G, B) of 0..255 (got {list(self.color)})")
        check(self.value is None or self.value >= 0, "value", f"must be >= 0 (got {self.value})")


def class_values(classes: Sequence[ClassInfo]) -> tuple[int, ...]:
    """Pixel value of each class in class rasters: its ``value``, else its id (its position)."""
    return tuple(i if c.value is None else c.value for i, c in enumerate(classes))


@dataclass(frozen=True)
class InputSpec:
    """The resolved facts about a model's input and output (see the module docstring).

    Attributes:
        bands: Bands read from the files, in channel order (catalog or declared bands).
        normalization: How raw values are normalised.
        classes: Output classes with colours (index = class id); detection: without background.
        ignore_index: Target value of unlabelled pixels (never a class id).
        nodata: Override of the files' nodata value (None: the files' own).
        tile_size: Training tile side in pixels (prediction's default tile).
        num_frames: Time steps per sample (Prithvi multi-temporal).
        indices: Spectral indices appended after the bands as extra channels (``NDVI``...).
        file_bands: The files' band order when they carry no band descriptions.
        sensor: Sensor of the files (resolves bare names such as ``B5`` in the files).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    bands: tuple[Band, ...]
    normalization: Normalization = field(default_factory=Normalization)
    classes: tuple[ClassInfo, ...] = ()
    ignore_index: int = -1
    nodata: float | None = None
    tile_size: int | None = None
    num_frames: int = 1
    indices: tuple[str, ...] = ()
    file_bands: tuple[str, ...] | None = None
    sensor: str | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "bands", "classes", "indices", "file_bands")
        check(len(self.bands) >= 1, "bands", "at least one band is needed")
        names = [b.name for b in self.bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        check(not dupes, "bands", f"{dupes} listed twice")

        mean = self.normalization.mean
        check(mean is None or len(mean) == len(self.bands), "normalization",
              f"{len(mean or ())} mean/std values for {len(self.bands)} bands {names}")
        object.__setattr__(self, "indices", tuple(i.upper() for i in self.indices))
        unknown = [i for i in self.indices if i not in SPECTRAL_INDICES]
        check(not unknown, "indices",
              f"unknown spectral index {unknown}; known: {sorted(SPECTRAL_INDICES)}")
        values = self.class_values
        check(len(set(values)) == len(values), "classes",
              f"class values {values} must differ from class to class")
        if 0 <= self.ignore_index < len(self.classes):
            check(False, "ignore_index",
                  f"{self.ignore_index} is also the id of class "
                  f"{self.classes[self.ignore_index].name!r}; use a value outside "
                  f"0..{len(self.classes) - 1} such as -1 or 255")
        check(self.tile_size is None or self.tile_size >= 8, "tile_size",
              f"must be >= 8 pixels (got {self.tile_size})")
        check(self.num_frames >= 1, "num_frames", f"must be >= 1 (got {self.num_frames})")
        if self.file_bands is not None:
            check(len(self.file_bands) >= 1, "file_bands", "must name the files' bands")

    # -- derived views (never stored)
    @property
    def band_names(self) -> list[str]:
        """Names of the bands read from the files."""
        return [b.name for b in self.bands]

    @property
    def channels(self) -> tuple[Band, ...]:
        """The model's input channels: the bands, then one declared band per spectral index."""
        return self.bands + tuple(declared_band(i, None, SPECTRAL_INDICES[i][2])
                                  for i in self.indices)

    @property
    def channel_names(self) -> list[str]:
        """Names of the model's input channels (bands, then indices)."""
        return [b.name for b in self.channels]

    @property
    def class_names(self) -> list[str]:
        """Class names (index = class id)."""
        return [c.name for c in self.classes]

    @property
    def class_colors(self) -> list[tuple[int, int, int]]:
        """Class colours (index = class id)."""
        return [c.color for c in self.classes]

    @property
    def class_values(self) -> tuple[int, ...]:
        """Pixel value of each class in class rasters (index = class id; see :class:`ClassInfo`)."""
        return class_values(self.classes)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


def _stated_band(item: str | BandDecl | Band, sensor: str | None) -> Band:
    if isinstance(item, BandDecl):
        return declared_band(item.name, item.wavelength, item.description, sensor)
    return resolve_band(item, sensor)


def resolve_bands_stated(stated: Sequence[str | BandDecl | Band], sensor: str | None = None,
                         key: str = "bands") -> tuple[Band, ...]:
    """Bands as the user stated them (names or declarations) -> catalog/declared bands.

    Raises:
        ConfigError: An unknown band (with how to declare it), or a band listed twice; the
            message starts with ``key``.
    """
    if isinstance(stated, str):
        raise ConfigError(f"{key}: must be a list of band names, e.g. [{stated!r}].")
    try:
        bands = tuple(_stated_band(s, sensor) for s in stated)
    except BandError as err:
        raise ConfigError(f"{key}: {err}") from None
    seen = [b.name for b in bands]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise ConfigError(f"{key}: {dupes} listed twice.")
    return bands


def _classes(names: Sequence[str | ClassDecl], color_map: dict[str, int] | None,
             key: str, background_first: bool) -> tuple[ClassInfo, ...]:
    by_id: dict[int, tuple[int, int, int]] = {}
    for color, cls in (color_map or {}).items():
        by_id.setdefault(int(cls), parse_color(color))  # a colour mask's colours are the classes'
    # the palette's first colour is a background grey: detection classes are all objects
    palette = class_colors(len(names) + 1)[1:] if not background_first else class_colors(len(names))
    out = []
    for i, item in enumerate(names):
        name = item.name if isinstance(item, ClassDecl) else str(item)
        stated = item.color if isinstance(item, ClassDecl) else None
        try:
            color = parse_color(stated) if stated is not None else by_id.get(i, palette[i])
        except ConfigError as err:
            raise ConfigError(f"{key}[{i}].color: {err}") from None
        out.append(ClassInfo(name, color))
    return tuple(out)


def _with_label_values(classes: tuple[ClassInfo, ...],
                       label_map: dict[int, int] | None) -> tuple[ClassInfo, ...]:
    """Give each class the label value ``label_map`` maps to it (the smallest when several do).

    Classes no value maps to keep their id (unmapped label values are class ids). Nothing
    changes when the values would be the ids anyway, or would not tell the classes apart (two
    classes with one value), or do not fit an unsigned 32-bit class raster.
    """
    if not label_map:
        return classes
    first: dict[int, int] = {}
    for raw, cls in sorted(label_map.items()):
        first.setdefault(int(cls), int(raw))
    values = [first.get(i, i) for i in range(len(classes))]
    if (values == list(range(len(classes))) or len(set(values)) < len(values)
            or min(values) < 0 or max(values) >= 2**32 - 1):
        return classes
    return tuple(replace(c, value=v) for c, v in zip(classes, values))


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return [getattr(x, "name", x) for x in a] == [getattr(x, "name", x) for x in b]


def _card_normalization(bands: Sequence[Band], card: AdapterCard, key: str,
                        required: bool) -> Normalization | None:
    """The card's statistics picked band by band (by the one matcher), or None/error."""
    idx = match_bands(bands, card.catalog_bands())
    missing = [b.name for b, i in zip(bands, idx) if i is None]
    if missing:
        if not required:
            return None
        raise ConfigError(
            f"{key}: mode 'card' but the card of {card.name!r} has no statistics for band(s) "
            f"{missing} (it has {card.band_names}). Compute them with `rsfm stats` and use "
            "mode: stats with include: <stats.yaml>."
        )
    n = card.normalization
    return Normalization("stats", tuple(float(n.mean[i]) for i in idx),  # type: ignore[index]
                         tuple(float(n.std[i]) for i in idx), 1.0 / float(n.divide_by))


def resolve_input_spec(model: ModelConfig, card: AdapterCard,
                       data: DataConfig | None = None) -> InputSpec:
    """The one place an :class:`InputSpec` is built.

    Args:
        model: What the user stated about the model (bands, wavelengths, classes, frames).
        card: The backbone's adapter card (pretraining bands and statistics).
        data: A recipe's ``data:`` section (bands, normalisation, nodata, classes, tiling), or
            None for a model built without data (normalisation from the card when it covers every
            band, else none).

    Raises:
        ConfigError: Bands or classes stated twice and differently (names both keys), unknown
            bands, statistics that do not fit the bands, an ignore index that is a class id.
    """
    sensor = data.sensor if data is not None else None
    if sensor is not None:
        try:
            sensor_bands(sensor)
        except BandError as err:
            raise ConfigError(f"data.sensor: {err}", key="sensor") from None
    model_bands = (resolve_bands_stated(model.bands, sensor, "model.bands")
                   if model.bands is not None else None)
    data_bands = (resolve_bands_stated(data.bands, sensor, "data.bands")
                  if data is not None and data.bands is not None else None)
    if model_bands is not None and data_bands is not None and model_bands != data_bands:
        raise ConfigError(
            f"model.bands {[b.name for b in model_bands]} and data.bands "
            f"{[b.name for b in data_bands]} disagree. State the bands once (either key), or make "
            "both lists the same."
        )
    bands = data_bands or model_bands or tuple(card.catalog_bands())
    if model.wavelengths is not None:
        if len(model.wavelengths) != len(bands):
            raise ConfigError(f"model.wavelengths: {len(model.wavelengths)} values for "
                              f"{len(bands)} bands {[b.name for b in bands]}.")
        bands = tuple(replace(b, wavelength_um=float(w)) for b, w in zip(bands, model.wavelengths))

    if data is None:
        norm = _card_normalization(bands, card, "normalization", required=False) or Normalization()
    else:
        n = data.normalization
        if n.mode == "card" and n.mean is None:
            norm = _card_normalization(bands, card, "data.normalization", required=True)
        elif n.mode in ("card", "stats"):
            if n.bands is not None and not _same(
                    resolve_bands_stated(n.bands, sensor, "data.normalization.bands"), bands):
                raise ConfigError(f"data.normalization: statistics are for bands {list(n.bands)} "
                                  f"but the recipe reads {[b.name for b in bands]}.")
            if n.mean is not None and len(n.mean) != len(bands):
                raise ConfigError(f"data.normalization: {len(n.mean)} mean values for "
                                  f"{len(bands)} bands {[b.name for b in bands]}.")
            norm = Normalization("stats", n.mean, n.std, n.value_scale or 1.0)
        else:
            norm = Normalization(n.mode, None, None, n.value_scale or 1.0)

    model_classes, data_classes = model.classes, data.classes if data is not None else None
    if model_classes is not None and data_classes is not None and not _same(model_classes,
                                                                           data_classes):
        raise ConfigError(f"model.classes {[getattr(c, 'name', c) for c in model_classes]} and "
                          f"data.classes {[getattr(c, 'name', c) for c in data_classes]} disagree; "
                          "state the classes once.")
    stated = data_classes or model_classes
    key = "data.classes" if data_classes is not None else "model.classes"
    names = stated if stated is not None else [f"class_{i}" for i in range(model.num_classes)]
    if len(names) != model.num_classes:
        raise ConfigError(f"{key}: {len(names)} names but model.num_classes is {model.num_classes}.")
    plain = [getattr(c, "name", c) for c in names]
    twice = sorted({str(n) for n in plain if plain.count(n) > 1})
    if twice:
        raise ConfigError(f"{key}: {twice} listed twice in {plain}; class names must be unique "
                          "(the position is the class id).")
    classes = _classes(names, data.color_map if data is not None else None, key,
                       background_first=model.task != "detection")
    if data is not None and model.task == "segmentation" and not data.color_map:
        classes = _with_label_values(classes, data.label_map)

    try:
        return InputSpec(
            bands=bands, normalization=norm, classes=classes,
            ignore_index=data.ignore_index if data is not None else -1,
            nodata=data.nodata if data is not None else None,
            tile_size=data.tile_size if data is not None else None,
            num_frames=model.num_frames,
            indices=tuple(i.upper() for i in data.indices) if data is not None else (),
            file_bands=data.file_bands if data is not None else None,
            sensor=sensor,
        )
    except ConfigError as err:
        raise ConfigError(f"data.{err}" if err.key else str(err), key=err.key) from None
