"""What a model needs from a scene: bands, normalisation, classes, tile size (:class:`PredictionSpec`).

The spec travels with the model: it is built from a run's / Hub repo's ``config.json`` and stored
as metadata in exported ONNX / TorchScript files, so ``predict`` applies exactly the band selection
and normalisation used in training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from rsfm.colors import CLASS_COLORS, class_colors
from rsfm.errors import ConfigError

__all__ = ["DEFAULT_COLORS", "PredictionSpec", "class_colors"]

DEFAULT_COLORS = CLASS_COLORS  # one palette for every output (rsfm.colors)


def _tuple(v: Any) -> tuple | None:
    return None if v is None else tuple(v)


@dataclass(frozen=True)
class PredictionSpec:
    """How to turn a scene into model input and the output into a labelled raster.

    Attributes:
        task: ``segmentation`` or ``detection``.
        bands: Band names (or 1-based indexes) to read, in model order; ``None`` = all file bands.
        file_bands: The scene's band order when its bands carry no descriptions.
        sensor: Sensor of the scenes (resolves bare names such as ``B5``).
        mean: Per-band means (``stats`` normalisation), in ``value_scale`` units.
        std: Per-band standard deviations.
        value_scale: Factor applied to raw values first (``1 / divide_by``).
        normalize: ``stats``, ``minmax``, ``standardize`` or ``none`` (default: ``stats`` when
            mean/std are given).
        indices: Spectral indices appended as channels (``["NDVI"]``).
        nodata: Override of the scene's nodata value.
        classes: Class names (index = class id).
        colors: RGB colour per class (default palette otherwise).
        tile_size: Tile side in pixels (the training tile size).
        overlap: Overlap between neighbouring tiles (default ``tile_size // 4``).
        num_frames: Time steps per input (Prithvi multi-temporal).
        wavelengths: Band wavelengths in micrometres (DOFA), informative.
        score_threshold: Detection: minimum score of kept boxes.
    """

    task: str = "segmentation"
    bands: tuple[str | int, ...] | None = None
    file_bands: tuple[str, ...] | None = None
    sensor: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    value_scale: float = 1.0
    normalize: str | None = None
    indices: tuple[str, ...] = ()
    nodata: float | None = None
    classes: tuple[str, ...] | None = None
    colors: tuple[tuple[int, int, int], ...] | None = None
    tile_size: int = 256
    overlap: int | None = None
    num_frames: int = 1
    wavelengths: tuple[float, ...] | None = None
    score_threshold: float = 0.05
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.task not in ("segmentation", "detection"):
            raise ConfigError(f"PredictionSpec.task {self.task!r} is not 'segmentation' or 'detection'.")
        if self.tile_size < 8:
            raise ConfigError(f"tile_size must be >= 8 pixels, got {self.tile_size}.")
        if self.overlap is not None and not 0 <= self.overlap < self.tile_size:
            raise ConfigError(f"overlap must be in [0, tile_size={self.tile_size}), got {self.overlap}.")
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}.")

    @property
    def tile_overlap(self) -> int:
        """The overlap in pixels (default a quarter tile, even so the margin splits evenly)."""
        ov = self.tile_size // 4 if self.overlap is None else self.overlap
        return ov - ov % 2

    def class_names(self, num_classes: int) -> list[str]:
        """Class names for ``num_classes`` outputs (``class_<i>`` when unnamed)."""
        names = list(self.classes or ())
        return [names[i] if i < len(names) else f"class_{i}" for i in range(num_classes)]

    def with_overrides(self, **kwargs: Any) -> PredictionSpec:
        """A copy with the non-``None`` keyword arguments replaced."""
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})

    # -- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        """The spec as one JSON string (stored in exported files)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PredictionSpec:
        """Inverse of :meth:`to_dict` (unknown keys are kept in ``extra``)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("bands", "file_bands", "mean", "std", "indices", "classes", "wavelengths"):
            if key in kw:
                kw[key] = _tuple(kw[key]) if kw[key] is not None or key != "indices" else ()
        if kw.get("colors") is not None:
            kw["colors"] = tuple(tuple(int(x) for x in c) for c in kw["colors"])
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

    @classmethod
    def from_json(cls, text: str) -> PredictionSpec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PredictionSpec:
        """Build the spec from a run / Hub ``config.json`` (keys ``model`` and ``data``).

        ``data`` may hold ``bands``, ``file_bands``, ``sensor``, ``mean``, ``std``, ``divide_by`` or
        ``value_scale``, ``normalize``, ``indices``, ``nodata``, ``classes``, ``colors``,
        ``tile_size``, ``overlap``, ``wavelengths``; ``model`` gives ``task``, ``num_frames`` and
        the ``bands``/``classes`` fallbacks.
        """
        model = dict(config.get("model") or {})
        data = dict(config.get("data") or {})
        if "divide_by" in data and data.get("value_scale") is None:
            div = float(data["divide_by"] or 1.0)
            if div <= 0:
                raise ConfigError(f"config data.divide_by must be > 0, got {div}.")
            data["value_scale"] = 1.0 / div
        task = model.get("task", data.get("task", "segmentation"))
        if task not in ("segmentation", "detection"):
            raise ConfigError(f"Cannot predict with a {task!r} model (segmentation or detection only).")
        merged = {
            **data,
            "task": task,
            "bands": data.get("bands") or model.get("bands"),
            "classes": data.get("classes") or model.get("classes"),
            "num_frames": int(model.get("num_frames", data.get("num_frames", 1)) or 1),
            "wavelengths": data.get("wavelengths") or model.get("wavelengths"),
        }
        if merged.get("tile_size") is None:
            merged.pop("tile_size", None)
        return cls.from_dict(merged)

    def make_reader(self) -> Any:
        """The data layer's :class:`~rsfm.data.reader.ImageReader` for this spec."""
        from rsfm.data.normalize import Normalizer
        from rsfm.data.reader import ImageReader

        return ImageReader(
            bands=self.bands, file_bands=self.file_bands, sensor=self.sensor, nodata=self.nodata,
            normalizer=Normalizer(self.normalize, self.mean, self.std, self.value_scale),
            indices=self.indices,
        )
