"""TerraTorch (LightningCLI) fine-tuning configs -> rsfm recipes.

A TerraTorch config has the top-level blocks ``seed_everything``, ``trainer``, ``data``, ``model``,
``optimizer`` and ``lr_scheduler``; ``data`` and ``model`` are ``{class_path, init_args}`` (plus an
optional ``dict_kwargs``, merged here). :func:`convert_terratorch` maps what has an rsfm equivalent
into a recipe mapping, says in ``notes`` where the equivalent is only close (UperNet has no rsfm
head, so DeepLabv3+ stands in), and lists in ``unmapped`` the dotted key of every value it could
not map. Nothing is dropped silently: a key is either written into the recipe, explained in a
note, listed as unmapped, or a proven no-op (a ``null`` value, a LightningCLI/TerraTorch default
such as ``trainer.fast_dev_run: false``, ``ToTensorV2``, a progress bar).

What maps how (TerraTorch -> rsfm):

- task class: ``SemanticSegmentationTask`` -> ``segmentation``; ``ClassificationTask`` ->
  ``classification`` (``data.kind: class_folders``); ``ObjectDetectionTask`` -> ``detection``
  (``num_classes`` and ``class_names`` without the background; names are padded ``class_<i>``
  or the count raised to fit). Regression tasks raise :class:`ConfigError`.
- ``backbone`` -> ``model.backbone`` through the adapter cards' names and ``aliases`` (a leading
  ``terratorch_``/``timm_`` is dropped; ``prithvi_vit_100`` is TerraTorch's old name of
  ``prithvi_eo_v1_100``). An unknown name raises :class:`UnknownNameError` with close matches.
- bands: ``dataset_bands`` -> ``data.file_bands`` (the files' band order), ``output_bands``
  (or a dataset module's ``bands``) -> ``data.bands``; the backbone's ``backbone_bands`` /
  ``backbone_model_bands`` / ``bands`` -> ``model.bands`` only when the data names none. Integers
  name ``dataset_bands`` entries by value (TerraTorch's rule), else by position. Data bands that
  are all numbers take the names of the backbone's bands when those are names of the same count;
  other unnamed bands become declared bands ``BAND_<n>`` without wavelength (new, randomly
  initialised filters, as in TerraTorch; a note says so).
- ``means``/``stds`` (lists, or strings holding one) and ``constant_scale`` ->
  ``data.normalization {mode: stats, mean, std, value_scale}`` (both compute
  ``(x * scale - mean) / std``); the three dataset modules' built-in per-band statistics when the
  config gives none.
- necks: ``SelectIndices`` (and ``backbone_out_indices``) -> ``model.out_indices``;
  ``ReshapeTokensToImage`` + a ``*ToPyramidal`` neck (or ``decoder_scale_modules``) ->
  ``neck.kind: simple_feature_pyramid``; ``ReshapeTokensToImage`` alone under an FCN -> ``none``.
- decoders: ``UperNetDecoder`` -> ``deeplabv3plus``, ``UNetDecoder``/``smp_Unet`` -> ``unet``,
  ``FCNDecoder`` -> ``fcn``, ``IdentityDecoder`` -> ``classification``, ``framework`` ->
  the torchvision detector of the same name.
- ``peft_config`` (LoRA) -> ``lora``; ``loss``/``class_weights``/``ignore_index`` ->
  ``train.loss``/``data.ignore_index``; ``no_label_replace``/``reduce_zero_label`` ->
  ``data.label_ignore_values``/``data.label_map``; ``no_data_replace`` -> a note only (rsfm masks
  nodata and NaN itself; ``data.nodata`` would mark valid pixels).
- ``optimizer``/``lr_scheduler`` (or the task's ``optimizer``/``lr``/``scheduler``) ->
  ``train.optimizer``/``train.scheduler`` (schedules without an rsfm equivalent become cosine,
  with a note); ``trainer`` -> ``train`` (epochs, accumulation, clipping, precision (unset: fp32,
  TerraTorch's default), seed, early stopping), ``eval`` (metric from the checkpoint/early-stopping
  monitor) and ``output.trackers`` (loggers).
- generic datamodules: ``*_data_root``/``*_label_data_root``/``*_split`` -> ``data.<split>``,
  ``img_grep``/``label_grep`` of the form ``*<suffix>.<ext>`` -> ``image_suffix``/
  ``label_suffix``; three dataset modules (Sen1Floods11, HLS burn scars, multi-temporal crop)
  have their standard folder layout written out; others get a placeholder and a note.
- the ``tiled_inference_parameters`` crop (else a ``RandomCrop`` size) -> ``data.tile_size``,
  rounded to the nearest multiple of a ViT's patch size (``rsfm check`` requires one).

Paths: data paths are kept as written. ``$VAR``/``${VAR}`` are expanded when the variable is set
at conversion (rsfm recipes do not expand variables; an unset one is kept and noted). A relative
path is taken as relative to the config file's folder (TerraTorch itself resolves it against the
working directory, which is usually that folder) and re-expressed relative to ``recipe_dir``, the
folder the recipe will be written to, because rsfm resolves a recipe's data paths against the
recipe's folder; with ``absolute_paths`` (a recipe on stdout) it is written absolute. One note
lists every rewritten path.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsfm import __version__
from rsfm.bands import get_band, match_bands, resolve_band
from rsfm.cards import VIT_FAMILIES, all_cards, get_card
from rsfm.errors import ConfigError, RsfmError, UnknownNameError
from rsfm.recipe import read_text_file, validate_recipe
from rsfm.schema import TASK_METRICS

__all__ = ["ConversionResult", "convert_terratorch", "terratorch_backbone"]


# ------------------------------------------------------------------------------------ the result
@dataclass
class ConversionResult:
    """What :func:`convert_terratorch` returns.

    Attributes:
        recipe: A recipe mapping that :func:`rsfm.recipe.validate_recipe` accepts.
        notes: One line per approximation or assumption (what TerraTorch did, what rsfm does).
        unmapped: Dotted keys of the source config whose values have no rsfm equivalent.
        source: The config file (``None`` for a mapping).
    """

    recipe: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    source: str | None = None

    def to_yaml(self) -> str:
        """The recipe as YAML, headed by comments with the source, the notes and the unmapped
        keys (so they travel with the file)."""
        import yaml


        lines = [(f"# Converted by `rsfm convert terratorch` (rsfm {__version__}) from "
                  f"{self.source or 'a TerraTorch config mapping'}.")]
        if self.notes:
            lines.append("# Notes (approximations and assumptions):")
            lines += [f"#   - {n}" for n in self.notes]
        if self.unmapped:
            lines.append("# Not mapped (no rsfm equivalent; check these):")
            lines += [f"#   - {k}" for k in self.unmapped]
        body = yaml.safe_dump(self.recipe, sort_keys=False, default_flow_style=None, width=100,
                              allow_unicode=True)
        return "\n".join(lines) + "\n" + body


# ------------------------------------------------------------------------------ key bookkeeping
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parts(path: str) -> list[str | int]:
    return [int(i) if i else k for k, i in _TOKEN.findall(path)]


def _leaves(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every leaf of a parsed YAML tree as ``(dotted.path[i], value)``; ``null`` values are
    absent (LightningCLI writes unset arguments as null). Lists of scalars are one leaf."""
    if isinstance(node, Mapping):
        if not node:
            yield path, node
        for key, value in node.items():
            if value is not None:
                yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list) and any(isinstance(v, Mapping) for v in node):
        for i, value in enumerate(node):
            if value is not None:
                yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, node


def _ancestors(path: str) -> Iterator[str]:
    yield path
    end = len(path)
    while True:
        cut = max(path.rfind(".", 0, end), path.rfind("[", 0, end))
        if cut <= 0:
            return
        yield path[:cut]
        end = cut


# Values that change nothing: TerraTorch / Lightning / torch defaults written out (dumped
# configs write every default). Keys use "[]" for list indices and init_args for dict_kwargs.
_NO_OP: dict[str, tuple[Any, ...]] = {
    "trainer.accelerator": ("auto",), "trainer.strategy": ("auto",), "trainer.devices": ("auto",),
    "trainer.num_nodes": (1,), "trainer.fast_dev_run": (False,), "trainer.max_steps": (-1,),
    "trainer.overfit_batches": (0,), "trainer.inference_mode": (True,),
    "trainer.use_distributed_sampler": (True,), "trainer.detect_anomaly": (False,),
    "trainer.barebones": (False,), "trainer.sync_batchnorm": (False,),
    "trainer.reload_dataloaders_every_n_epochs": (0,), "trainer.enable_checkpointing": (True,),
    "trainer.enable_model_summary": (True,), "trainer.gradient_clip_algorithm": ("norm",),
    "trainer.limit_train_batches": (1.0,), "trainer.limit_val_batches": (1.0,),
    "trainer.limit_test_batches": (1.0,), "trainer.limit_predict_batches": (1.0,),
    "trainer.val_check_interval": (1.0,), "trainer.deterministic": (False,),
    "trainer.enable_progress_bar": (True,), "trainer.logger": (True,),
    "data.init_args.pin_memory": (False,), "data.init_args.check_stackability": (True,),
    "data.init_args.ignore_split_file_extensions": (True,),
    "data.init_args.allow_substring_split_file": (False,),
    "data.init_args.expand_temporal_dimension": (False,),
    "data.init_args.reduce_zero_label": (False,), "data.init_args.use_metadata": (False,),
    "data.init_args.download": (False,),
    "model.init_args.freeze_decoder": (False,), "model.init_args.freeze_head": (False,),
    "model.init_args.model_args.rescale": (True,), "model.init_args.boxes_field": ("boxes",),
    "model.init_args.labels_field": ("labels",), "model.init_args.masks_field": ("masks",),
    "model.init_args.tiled_inference_on_testing": (False,),
    "model.init_args.model_args.backbone_coords_encoding": ([],),
    "optimizer.init_args.amsgrad": (False,), "optimizer.init_args.eps": (1e-8,),
    "optimizer.init_args.maximize": (False,), "optimizer.init_args.foreach": (False,),
    "optimizer.init_args.capturable": (False,), "optimizer.init_args.differentiable": (False,),
    "optimizer.init_args.nesterov": (False,), "optimizer.init_args.dampening": (0,),
    "lr_scheduler.init_args.last_epoch": (-1,),
    "lr_scheduler.init_args.verbose": (False, "deprecated"),
    "trainer.callbacks[].init_args.verbose": (False,),
    "trainer.callbacks[].init_args.strict": (True,),
    "trainer.callbacks[].init_args.check_finite": (True,),
    "trainer.callbacks[].init_args.log_rank_zero_only": (False,),
    "ModelCheckpoint.verbose": (False,), "StateDictModelCheckpoint.verbose": (False,),
}


def _no_op(path: str, value: Any) -> bool:
    key = re.sub(r"\[\d+\]", "[]", path).replace(".dict_kwargs.", ".init_args.")
    # booleans only equal booleans (False == 0 in Python); numbers compare across int/float
    return any(value is d if isinstance(value, bool) or isinstance(d, bool) else value == d
               for d in _NO_OP.get(key, ()))


class _Config:
    """The parsed config, with a record of which keys were used."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.leaves = list(_leaves(raw, ""))
        self.used: set[str] = set()
        self.last = ""  # the key read last: named when a value of an odd type stops the conversion

    def get(self, path: str, default: Any = None) -> Any:
        self.last = path
        node: Any = self.raw
        for part in _parts(path):
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return default
                node = node[part]
            else:
                if not isinstance(node, Mapping) or part not in node:
                    return default
                node = node[part]
        return default if node is None else node

    def take(self, path: str, default: Any = None) -> Any:
        """The value at ``path``, marking it (and everything under it) as used."""
        self.used.add(path)
        return self.get(path, default)

    def use(self, *paths: str) -> None:
        self.used.update(paths)

    def unmapped(self) -> list[str]:
        return [path for path, value in self.leaves
                if not any(a in self.used for a in _ancestors(path)) and not _no_op(path, value)]


def _short(class_path: Any) -> str:
    """``terratorch.tasks.SemanticSegmentationTask`` -> ``SemanticSegmentationTask``."""
    return str(class_path).rsplit(".", 1)[-1] if class_path else ""


class _Lookup:
    """Keys read from a section that may spell them in more than one place (``where``)."""

    cfg: _Config

    def where(self, key: str) -> str | None:
        raise NotImplementedError

    def get(self, key: str, default: Any = None) -> Any:
        where = self.where(key)
        return default if where is None else self.cfg.get(where)


class _Block(_Lookup):
    """A ``{class_path, init_args, dict_kwargs}`` node (``dict_kwargs`` merged in)."""

    def __init__(self, cfg: _Config, path: str) -> None:
        self.cfg, self.path = cfg, path
        node = cfg.get(path)
        if isinstance(node, str):  # `optimizer: AdamW`
            self.class_path: str = node
            cfg.use(path)
        else:
            self.class_path = str(cfg.take(f"{path}.class_path", "")) if isinstance(node, Mapping) else ""
        self.name = _short(self.class_path)

    def where(self, key: str) -> str | None:
        for section in ("init_args", "dict_kwargs"):
            if self.cfg.get(f"{self.path}.{section}.{key}") is not None:
                return f"{self.path}.{section}.{key}"
        return None

    def take(self, key: str, default: Any = None) -> Any:
        where = self.where(key)
        if where is None:
            return default
        for section in ("init_args", "dict_kwargs"):  # a key given in both places: both used
            self.cfg.use(f"{self.path}.{section}.{key}")
        return self.cfg.get(where)


class _ModelArgs(_Lookup):
    """``model.init_args.model_args``: ``backbone_x`` may also be ``backbone_kwargs.x`` (and
    ``decoder_``/``head_`` likewise), as TerraTorch's newest factory accepts."""

    _PREFIXES = ("backbone_", "decoder_", "head_")

    def __init__(self, cfg: _Config, path: str) -> None:
        self.cfg, self.path = cfg, path

    def where(self, key: str) -> str | None:
        if self.cfg.get(f"{self.path}.{key}") is not None:
            return f"{self.path}.{key}"
        for prefix in self._PREFIXES:
            if key.startswith(prefix):
                nested = f"{self.path}.{prefix}kwargs.{key[len(prefix):]}"
                if self.cfg.get(nested) is not None:
                    return nested
        return None

    def take(self, key: str, default: Any = None) -> Any:
        where = self.where(key)
        if where is None:
            return default
        self.cfg.use(where)
        return self.cfg.get(where)


# ------------------------------------------------------------------------------------ coercion
def _num(value: Any, key: str) -> float:
    """A number, also from strings such as '6e-05' (PyYAML reads YAML 1.1, where ``6e-05`` is
    a string; jsonargparse coerces it, so TerraTorch accepts it)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected a number, got {value!r}.")


def _int(value: Any, key: str) -> int:
    number = _num(value, key)
    if not number.is_integer():
        raise ConfigError(f"{key}: expected an integer, got {value!r}.")
    return int(number)


def _nums(values: Any, key: str) -> list[float]:
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{key}: expected a list of numbers, got {values!r}.")
    return [_num(v, f"{key}[{i}]") for i, v in enumerate(values)]


def _ints(values: Any, key: str) -> list[int]:
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{key}: expected a list of integers, got {values!r}.")
    return [_int(v, f"{key}[{i}]") for i, v in enumerate(values)]


def _strs(values: Any, key: str) -> list[str]:
    """A list of names (a single name is a list of one)."""
    if isinstance(values, str):
        return [values]
    if not isinstance(values, (list, tuple)) or any(isinstance(v, (Mapping, list)) for v in values):
        raise ConfigError(f"{key}: expected a list of names, got {values!r}.")
    return [str(v) for v in values]


def _listed(value: Any) -> Any:
    """A string holding a YAML list (``means: "[0.1, 0.2]"``) as that list; else ``value``."""
    if isinstance(value, str):
        import yaml

        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, list):
            return parsed
    return value


def _lightning_duration(value: Any) -> float | None:
    """Lightning's ``max_time`` (``"DD:HH:MM:SS"`` or ``{days, hours, minutes, seconds}``) in
    seconds, or None."""
    units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    if isinstance(value, Mapping) and set(value) <= set(units):
        seconds = sum(float(v) * units[k] for k, v in value.items())
    elif isinstance(value, str) and re.fullmatch(r"\d+:\d+:\d+:\d+", value.strip()):
        d, h, m, sec = (int(x) for x in value.strip().split(":"))
        seconds = float(d * 86400 + h * 3600 + m * 60 + sec)
    else:
        return None
    return seconds if seconds > 0 else None


def _clean(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


# --------------------------------------------------------------------------------- backbones
# TerraTorch registry names that are not (yet) card aliases.
_BACKBONE_NAMES = {
    "prithvi_vit_100": "prithvi_eo_v1_100m",  # TerraTorch < 1.0 name of prithvi_eo_v1_100
    "dofav1_base_patch16_224": "dofa_base",  # IBM registration of the earthflow/DOFA e100 file
    "dofav1_large_patch16_224": "dofa_large",
}
_REGISTRY_PREFIXES = ("terratorch_", "timm_", "smp_", "torchgeo_")


def terratorch_backbone(name: str) -> tuple[str, list[str]]:
    """The rsfm card for a TerraTorch backbone name, and notes about the translation.

    Raises:
        UnknownNameError: No card; the message lists close card names and aliases.
    """

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"model_args.backbone must be a backbone name, got {name!r}.")
    raw = name.strip()
    if re.search(r"<[^<>]*>", raw):  # example configs ship `backbone: <prithvi_model>`
        raise ConfigError(f"model_args.backbone is a placeholder ({raw!r}): fill in a backbone "
                          f"name, e.g. one of the rsfm cards {sorted(all_cards())}.")
    candidates = [raw]
    for prefix in _REGISTRY_PREFIXES:
        if raw.startswith(prefix):
            candidates.append(raw[len(prefix):])
    for cand in candidates:
        if cand in _BACKBONE_NAMES:
            card = _BACKBONE_NAMES[cand]
            note = (f"backbone {raw!r} is TerraTorch's legacy name; using rsfm card {card!r}"
                    if cand == "prithvi_vit_100" else
                    f"backbone {raw!r} -> rsfm card {card!r} (the same earthflow/DOFA weights)")
            return card, [note]
        try:
            return get_card(cand).name, []
        except RsfmError:
            continue
    cards = all_cards()
    known = sorted({*cards, *(a for c in cards.values() for a in c.aliases), *_BACKBONE_NAMES})
    close = difflib.get_close_matches(candidates[-1], known, n=4, cutoff=0.5)
    hint = f" Close matches: {', '.join(repr(c) for c in close)}." if close else ""
    raise UnknownNameError(
        f"TerraTorch backbone {raw!r} has no rsfm adapter card.{hint} rsfm backbones: "
        f"{sorted(cards)} (see `rsfm backbones`). Pick one with model.backbone, or add a card "
        "(adapters/*.yaml, RSFM_ADAPTER_PATH) for this checkpoint."
    )


# ------------------------------------------------------------------------------------- bands
_BAND_FIXES = {"THEMRAL_INFRARED_1": "THERMAL_INFRARED_1", "THEMRAL_INFRARED_2": "THERMAL_INFRARED_2",
               "COASTAL AEROSOL": "COASTAL_AEROSOL"}  # Landslide4Sense's spelling


def _band_tokens(values: Any, key: str) -> list[int | str]:
    """TerraTorch band entries -> tokens: names (``HLSBands.RED`` -> ``RED``), ints, and
    inclusive ``[start, end]`` intervals expanded to ints."""
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{key}: expected a list of bands, got {values!r}.")
    out: list[int | str] = []
    for i, v in enumerate(values):
        if isinstance(v, bool):
            raise ConfigError(f"{key}[{i}]: expected a band name or index, got {v!r}.")
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, str) and v.strip():
            name = v.strip().rsplit(".", 1)[-1] if v.strip().startswith(("HLSBands.", "SARBands.",
                                                                       "OpticalBands.")) else v.strip()
            out.append(_BAND_FIXES.get(name.upper(), name))
        elif (isinstance(v, (list, tuple)) and len(v) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) for x in v) and v[0] <= v[1]):
            out.extend(range(v[0], v[1] + 1))
        else:
            raise ConfigError(f"{key}[{i}]: expected a band name, an index or an [start, end] "
                              f"interval, got {v!r}.")
    return out


def _catalog_name(token: int | str) -> str | None:
    """The token's name when rsfm's band catalog knows it."""

    if isinstance(token, int):
        return None
    try:
        get_band(token)
    except RsfmError:
        return None
    return token


def _band_name(token: int | str) -> str:
    return f"BAND_{token}" if isinstance(token, int) else str(token)


def _band_entry(token: int | str) -> str | dict[str, Any]:
    """A ``data.bands`` / ``model.bands`` entry: a catalog name, or a declared band."""
    name = _catalog_name(token)
    return name if name is not None else {"name": _band_name(token), "wavelength": None}


# -------------------------------------------------------------------- dataset-specific modules
@dataclass(frozen=True)
class _Layout:
    """Where a TerraTorch dataset-specific datamodule finds its files under ``data_root``."""

    images: Mapping[str, str]
    labels: Mapping[str, str] | None
    split_files: Mapping[str, str]
    image_suffix: str
    label_suffix: str
    file_bands: tuple[str, ...]
    defaults: Mapping[str, Any]
    num_frames: int = 1
    # the datamodule's built-in normalisation: band -> (mean, std) after constant_scale, and the
    # TerraTorch module that defines them (MEANS/STDS), named in the note
    stats: Mapping[str, tuple[float, float]] | None = None
    stats_module: str = ""


_HLS6 = ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")
_S2_13 = ("COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "RED_EDGE_1", "RED_EDGE_2", "RED_EDGE_3",
          "NIR_BROAD", "NIR_NARROW", "WATER_VAPOR", "CIRRUS", "SWIR_1", "SWIR_2")
_S1F = "v1.1/data/flood_events/HandLabeled"
# MEANS/STDS of terratorch/datamodules/sen1floods11.py (reflectance: DN x constant_scale)
_S1F_STATS = {
    "COASTAL_AEROSOL": (0.16450718, 0.06977374), "BLUE": (0.1412956, 0.07406382),
    "GREEN": (0.13795798, 0.07370365), "RED": (0.12353792, 0.08692279),
    "RED_EDGE_1": (0.1481099, 0.07778555), "RED_EDGE_2": (0.23991728, 0.09105416),
    "RED_EDGE_3": (0.28587557, 0.10690993), "NIR_BROAD": (0.26345379, 0.10096586),
    "NIR_NARROW": (0.30902815, 0.11798815), "WATER_VAPOR": (0.04911151, 0.03380113),
    "CIRRUS": (0.00652506, 0.01463465), "SWIR_1": (0.2044958, 0.09772074),
    "SWIR_2": (0.11912015, 0.07659938),
}
# MEANS/STDS of terratorch/datamodules/fire_scars.py (the files hold reflectance)
_FIRE_STATS = {
    "BLUE": (0.033349706741586264, 0.02269135568823774),
    "GREEN": (0.05701185520536176, 0.026807560223070237),
    "RED": (0.05889748132001316, 0.04004109844362779),
    "NIR_NARROW": (0.2323245113436119, 0.07791732423672691),
    "SWIR_1": (0.1972854853760658, 0.08708738838140137),
    "SWIR_2": (0.11944914225186566, 0.07241979477437814),
}
# MEANS/STDS of terratorch/datamodules/multi_temporal_crop_classification.py (raw DN, per band
# of one frame)
_CROP_STATS = {
    "BLUE": (494.905781, 284.925432), "GREEN": (815.239594, 357.84876),
    "RED": (924.335066, 575.566823), "NIR_NARROW": (2968.881459, 896.601013),
    "SWIR_1": (2634.621962, 951.900334), "SWIR_2": (1739.579917, 921.407808),
}
_LAYOUTS: dict[str, _Layout] = {
    # Sen1Floods11 v1.1 hand-labelled S2 chips (13 L1C bands, DN) and their split lists.
    "Sen1Floods11NonGeoDataModule": _Layout(
        images=dict.fromkeys(("train", "val", "test"), f"{_S1F}/S2Hand"),
        labels=dict.fromkeys(("train", "val", "test"), f"{_S1F}/LabelHand"),
        split_files={s: f"v1.1/splits/flood_handlabeled/flood_{n}_data.txt"
                     for s, n in (("train", "train"), ("val", "valid"), ("test", "test"))},
        image_suffix="_S2Hand", label_suffix="_LabelHand", file_bands=_S2_13,
        defaults={"constant_scale": 0.0001, "no_data_replace": 0, "no_label_replace": -1},
        stats=_S1F_STATS, stats_module="sen1floods11.py"),
    # HLS Burn Scars: training/ and validation/ hold *_merged.tif images and *.mask.tif labels.
    "FireScarsNonGeoDataModule": _Layout(
        images={"train": "training", "val": "validation", "test": "validation"},
        labels={"train": "training", "val": "validation", "test": "validation"},
        split_files={}, image_suffix="_merged", label_suffix=".mask", file_bands=_HLS6,
        defaults={"no_data_replace": 0, "no_label_replace": -1},
        stats=_FIRE_STATS, stats_module="fire_scars.py"),
    # HLS multi-temporal crop classification: 3 frames x 6 bands per file, labels 1..13.
    "MultiTemporalCropClassificationDataModule": _Layout(
        images={"train": "training_chips", "val": "validation_chips", "test": "validation_chips"},
        labels={"train": "training_chips", "val": "validation_chips", "test": "validation_chips"},
        split_files={"train": "training_chips/training_data.txt",
                     "val": "validation_chips/validation_data.txt",
                     "test": "validation_chips/validation_data.txt"},
        image_suffix="_merged", label_suffix=".mask", file_bands=_HLS6,
        defaults={"expand_temporal_dimension": True, "reduce_zero_label": True,
                  "no_data_replace": 0, "no_label_replace": -1}, num_frames=3,
        stats=_CROP_STATS, stats_module="multi_temporal_crop_classification.py"),
}
# Dataset modules rsfm has no folder layout for (their files are HDF5, or are downloaded by the
# module), whose files' band order and built-in statistics are still known: data.file_bands and
# data.normalization stay right for when the files are exported as GeoTIFFs.
# Landslide4Sense: MEANS/STDS of terratorch/datamodules/landslide4sense.py (the files' units).
_LANDSLIDE_STATS = {
    "COASTAL_AEROSOL": (-0.4914, 0.9325), "BLUE": (-0.3074, 0.8775), "GREEN": (-0.1277, 0.8860),
    "RED": (-0.0625, 0.8869), "RED_EDGE_1": (0.0439, 0.8857), "RED_EDGE_2": (0.0803, 0.8418),
    "RED_EDGE_3": (0.0644, 0.8354), "NIR_BROAD": (0.0802, 0.8491),
    "WATER_VAPOR": (0.3000, 0.9061), "CIRRUS": (0.4082, 1.6072), "SWIR_1": (0.0823, 0.8848),
    "SWIR_2": (0.0516, 0.9232), "SLOPE": (0.3338, 0.9018), "DEM": (0.7819, 1.2913),
}
_MODULE_FILES: dict[str, tuple[tuple[str, ...], Mapping[str, tuple[float, float]], str]] = {
    "Landslide4SenseNonGeoDataModule": (tuple(_LANDSLIDE_STATS), _LANDSLIDE_STATS,
                                        "landslide4sense.py"),
}
_GENERIC_SEG = {"GenericNonGeoSegmentationDataModule", "GenericNonGeoPixelwiseRegressionDataModule"}
_GENERIC_CLS = {"GenericNonGeoClassificationDataModule"}
_GENERIC_OD = {"GenericNonGeoObjectDetectionDataModule"}

# ---------------------------------------------------------------------------- heads / decoders
_DECODERS: dict[str, tuple[str, str | None]] = {
    # lower-cased decoder name (smp_ prefix removed) -> (rsfm head, note or None when exact)
    "upernetdecoder": ("deeplabv3plus", ("UperNetDecoder has no exact rsfm equivalent; using "
                                         "deeplabv3plus (ASPP on the stride-16 level + stride-4 "
                                         "decoder)")),
    "upernet": ("deeplabv3plus", "UPerNet has no exact rsfm equivalent; using deeplabv3plus"),
    "fcndecoder": ("fcn", None),
    "fcn": ("fcn", None),
    "unetdecoder": ("unet", ("UNetDecoder -> rsfm's unet head (same skip-connection decoder; "
                             "its last blocks upsample to the input size instead of "
                             "TerraTorch's head_channel_list convs)")),
    "unet": ("unet", None),
    "unetplusplus": ("unet", "UnetPlusPlus has no rsfm equivalent; using the plain unet head"),
    "deeplabv3plus": ("deeplabv3plus", None),
    "deeplabv3": ("deeplabv3", None),
    "asppsegmentationhead": ("deeplabv3", ("ASPPSegmentationHead -> rsfm's deeplabv3 head "
                                           "(torchvision ASPP)")),
    "identitydecoder": ("classification", None),
    "lineardecoder": ("fcn", "LinearDecoder has no rsfm equivalent; using the fcn head"),
    "mlpdecoder": ("fcn", "MLPDecoder has no rsfm equivalent; using the fcn head"),
}
_DETECTORS = {"faster-rcnn": "faster_rcnn", "faster_rcnn": "faster_rcnn", "fasterrcnn": "faster_rcnn",
              "retinanet": "retinanet", "fcos": "fcos", "mask-rcnn": "mask_rcnn",
              "mask_rcnn": "mask_rcnn", "maskrcnn": "mask_rcnn"}
_TASKS = {"SemanticSegmentationTask": "segmentation", "ClassificationTask": "classification",
          "ObjectDetectionTask": "detection"}
_REGRESSION = {"PixelwiseRegressionTask", "ScalarRegressionTask", "RegressionTask"}
_PYRAMID_NECKS = {"LearnedInterpolateToPyramidal", "InterpolateToPyramidal", "MaxpoolToPyramidal"}

# --------------------------------------------------------------------------- losses / metrics
_LOSSES: dict[str, tuple[str, str | None]] = {
    "ce": ("ce", None), "cross_entropy": ("ce", None),
    "dice": ("dice", None), "focal": ("focal", None),
    "jaccard": ("dice", "loss 'jaccard' (soft IoU) has no rsfm equivalent; using its nearest, dice"),
    "lovasz": ("dice", "loss 'lovasz' has no rsfm equivalent; using dice"),
    "bce": ("ce", "loss 'bce' (multi-label) -> ce (rsfm classification is single-label)"),
}
_METRICS = {
    "loss": "loss", "multiclass_jaccard_index": "miou", "jaccard_index": "miou", "miou": "miou",
    "mean_iou": "miou", "iou": "miou", "multiclass_accuracy": "accuracy",
    "overall_accuracy": "accuracy", "accuracy": "accuracy", "acc": "accuracy",
    "multiclass_f1_score": "macro_f1", "f1_score": "macro_f1", "f1": "macro_f1",
    "map": "map", "map_50": "map_50", "segm_map": "map",
}
_PRECISION = {"16-mixed": "fp16", "16": "fp16", "bf16-mixed": "bf16", "bf16": "bf16",
              "bf16-true": "bf16", "16-true": "fp16", "32-true": "no", "32": "no",
              "64-true": "no", "64": "no"}
_TRACKERS = {"TensorBoardLogger": "tensorboard", "WandbLogger": "wandb", "MLFlowLogger": "mlflow",
             "CometLogger": "comet_ml", "NeptuneLogger": "neptune"}  # accelerate tracker names
_TORCH_WD = {"adamw": 0.01, "adam": 0.0, "sgd": 0.0}  # torch's defaults when weight_decay is absent


_MODEL_ORDER = ("task", "backbone", "head", "num_classes", "bands", "wavelengths", "pretrained",
                "weights", "num_frames", "temporal_reduction", "out_indices", "freeze_backbone",
                "neck", "head_kwargs", "backbone_kwargs")
_DATA_ORDER = ("kind", "train", "val", "test", "image_suffix", "label_suffix", "classes", "bands",
               "file_bands", "ignore_index", "label_map", "label_ignore_values", "missing_labels",
               "tile_size",
               "normalization", "augment", "batch_size", "num_workers")
_TRAIN_ORDER = ("epochs", "max_steps", "max_time", "optimizer", "scheduler", "loss",
                "grad_accum_steps", "clip_grad_norm", "mixed_precision", "seed", "deterministic",
                "early_stopping", "log_every", "progress")


_ENV_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


def _ordered(section: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(order)}
    return dict(sorted(section.items(), key=lambda kv: rank.get(kv[0], len(rank))))


# --------------------------------------------------------------------------------- converter
class _Converter:
    """One conversion: reads the config through :class:`_Config` (which records the keys used)
    and fills the recipe sections; each ``convert_*`` step handles one concern."""

    def __init__(self, raw: Mapping[str, Any], config_dir: Path | None, recipe_dir: Path | None,
                 name: str, absolute_paths: bool = False) -> None:
        self.cfg = _Config(raw)
        self.notes: list[str] = []
        self.config_dir, self.recipe_dir = config_dir, recipe_dir
        self.absolute_paths = absolute_paths
        self.name = name
        # paths changed on the way, reported in one note each (key -> (as written, as written out))
        self.rewritten: dict[str, tuple[str, str]] = {}
        self.expanded: dict[str, list[str]] = {}  # environment variable -> keys
        self.unset: dict[str, list[str]] = {}
        # recipe sections being built
        self.model: dict[str, Any] = {}
        self.data: dict[str, Any] = {}
        self.train: dict[str, Any] = {}
        self.eval: dict[str, Any] = {}
        self.output: dict[str, Any] = {}
        self.lora: dict[str, Any] | None = None
        self.head_kwargs: dict[str, Any] = {}
        # facts found on the way, read by later steps
        self.task = ""
        self.factory = ""
        self.card: Any = None
        self.family = ""
        self.layout: _Layout | None = None
        self.num_classes = 0
        self.band_count = 0
        self.band_names: list[str] = []  # data.bands by name (the built-in statistics' keys)
        self.multi_temporal = False
        self.out_indices: list[int] | None = None
        self.in_chans: tuple[int, str] | None = None
        self.lr = 0.0

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # ---------------------------------------------------------------------------------- paths
    def path(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key}: expected a path, got {value!r}.")
        value = value.strip()
        if re.search(r"<[^<>]+>", value):
            self.note(f"{key} is a placeholder ({value!r}); replace it with the real path")
            return value
        if "$" in value:
            value = self._expand(value, key)
            if "$" in value:
                return value
        if value.startswith("~"):
            return os.path.expanduser(value)
        if os.path.isabs(value) or "://" in value or self.config_dir is None:
            return value
        target = (self.config_dir / value).resolve()
        base = (self.recipe_dir or self.config_dir).resolve()
        if self.absolute_paths or os.path.commonpath([target, base]) == os.path.abspath(os.sep):
            new = target.as_posix()  # no recipe folder, or only the root in common
        else:
            new = Path(os.path.relpath(target, base)).as_posix()
        if new != value:
            self.rewritten[key] = (value, new)
        return new

    def _expand(self, value: str, key: str) -> str:
        """``$VAR``/``${VAR}`` expanded when every variable is set now (rsfm recipes do not
        expand variables); else the path as written (reported with the unset variables)."""
        names = [a or b for a, b in _ENV_VAR.findall(value)]
        unset = [n for n in names if n not in os.environ]
        for n in unset or names:
            keys = (self.unset if unset else self.expanded).setdefault(n, [])
            if key not in keys:
                keys.append(key)
        return value if unset else os.path.expandvars(value)

    def path_notes(self) -> None:
        """One note per kind of path change (expanded, left unexpanded, rebased)."""
        if self.expanded:
            used = "; ".join(f"${n} = {os.environ.get(n, '')!r} ({', '.join(keys)})"
                             for n, keys in self.expanded.items())
            self.note(f"environment variables expanded at conversion (rsfm recipes do not expand "
                      f"variables): {used}")
        for n, keys in self.unset.items():
            self.note(f"{', '.join(keys)}: the environment variable {n} is not set, so the path "
                      f"stays as written with ${n}; rsfm recipes do not expand variables: set {n} "
                      "and convert again, or write the real path")
        if self.rewritten:
            moves = "; ".join(f"{k}: {old} -> {new}" for k, (old, new) in self.rewritten.items())
            how = ("made absolute (the recipe goes to stdout, so its folder is unknown)"
                   if self.absolute_paths else
                   f"re-expressed relative to the recipe's folder {self.recipe_dir}, as rsfm "
                   "resolves them")
            self.note(f"relative paths (taken as relative to the config's folder {self.config_dir}) "
                      f"{how}: {moves}")

    # ---------------------------------------------------------------------------------- task
    def run(self) -> ConversionResult:
        cfg = self.cfg
        if not isinstance(cfg.get("model"), Mapping) or not cfg.get("model.class_path"):
            raise ConfigError("Not a TerraTorch (LightningCLI) config: no model.class_path. A "
                              "config has model: {class_path: terratorch.tasks.<Task>, init_args: "
                              "{model_factory, model_args, ...}}.")
        self._check_sections()
        self.task_block = _Block(cfg, "model")
        task_name = self.task_block.name
        if task_name in _REGRESSION:
            raise ConfigError(
                f"not supported: regression (model.class_path {self.task_block.class_path!r}). "
                "rsfm trains segmentation, classification and detection models; it has no "
                "regression head or loss, so this config cannot be converted."
            )
        if task_name == "MultiLabelClassificationTask":
            raise ConfigError("not supported: multi-label classification (model.class_path "
                              f"{self.task_block.class_path!r}); rsfm classification is single-label.")
        if task_name not in _TASKS:
            raise ConfigError(f"model.class_path {self.task_block.class_path!r} is not a task rsfm "
                              f"can convert; supported: {sorted(_TASKS)}.")
        self.task = _TASKS[task_name]
        self.model["task"] = self.task
        self.args = _ModelArgs(cfg, "model.init_args.model_args")
        factory = self.task_block.take("model_factory", "EncoderDecoderFactory")
        self.factory = _short(factory)
        if self.factory not in ("EncoderDecoderFactory", "PrithviModelFactory",
                                "ObjectDetectionModelFactory", "SMPModelFactory",
                                "TimmModelFactory"):
            self.note(f"model_factory {self.factory!r} is converted like EncoderDecoderFactory "
                      "(backbone, decoder, num_classes); check the model section")
        self.data_block = _Block(cfg, "data")

        self.convert_backbone()
        self.convert_classes()
        self.convert_bands()
        self.convert_head_and_neck()
        self.convert_lora()
        self.convert_data()
        self.convert_train()
        self.convert_trainer()
        self.convert_extras()

        recipe: dict[str, Any] = {
            "name": self.name,
            "description": f"Converted from a TerraTorch {task_name} config ({self.factory}).",
            "model": _ordered(self.model, _MODEL_ORDER), "data": _ordered(self.data, _DATA_ORDER),
        }
        if self.lora is not None:
            recipe["lora"] = self.lora
        recipe["train"] = _ordered(self.train, _TRAIN_ORDER)
        if self.eval:
            recipe["eval"] = self.eval
        if self.output:
            recipe["output"] = self.output
        return ConversionResult(recipe=recipe, notes=list(self.notes), unmapped=cfg.unmapped())

    def _check_sections(self) -> None:
        """Refuse a config whose sections the converter would misread: arguments written beside
        ``class_path`` (not under ``init_args``), and ``data`` missing or given as a reference."""
        loose = []
        for section in ("model", "data", "optimizer", "lr_scheduler"):
            node = self.cfg.get(section)
            if isinstance(node, Mapping) and "init_args" not in node:
                keys = sorted(str(k) for k in node if k not in ("class_path", "dict_kwargs"))
                if keys:
                    loose.append(f"{section}.init_args is missing: the keys {keys} sit directly "
                                 f"under {section}:")
        if loose:
            raise ConfigError("; ".join(loose) + ". LightningCLI reads a class's arguments from "
                              "init_args; move them under init_args.")
        data = self.cfg.get("data")
        if data is None:
            raise ConfigError("the config has no data section: rsfm needs the datamodule (data: "
                              "{class_path, init_args: {train_data_root or data_root, ...}}) to "
                              "know where the images are.")
        if isinstance(data, str) and (data.endswith((".yaml", ".yml", ".json")) or "/" in data):
            raise ConfigError(f"data refers to another file {data!r} (not followed): copy its "
                              "class_path and init_args under data: and convert again.")

    # ------------------------------------------------------------------------------ backbone
    def convert_backbone(self) -> None:

        args = self.args
        name = args.take("backbone")
        if name is None:
            raise ConfigError("model.init_args.model_args.backbone is missing: the backbone "
                              "name is needed to pick an rsfm card.")
        card_name, notes = terratorch_backbone(name)
        for n in notes:
            self.note(n)
        self.card = get_card(card_name)
        self.family = self.card.family
        self.model["backbone"] = card_name
        if self.factory == "SMPModelFactory":
            self.note(f"SMPModelFactory: the smp encoder {name!r} -> rsfm card {card_name!r} "
                      "(with the card's pretrained weights) and the decoder -> an rsfm head")
        if self.factory == "TimmModelFactory":
            self.note("TimmModelFactory: the timm model becomes an rsfm backbone + head; "
                      "check the head")
        pretrained = args.take("backbone_pretrained")
        legacy = args.where("pretrained")
        if pretrained is None and legacy is not None:
            pretrained = args.take("pretrained")
            if self.factory == "EncoderDecoderFactory":
                self.note("model_args.pretrained is not read by EncoderDecoderFactory (it wants "
                          "backbone_pretrained); mapped to model.pretrained anyway")
        if pretrained is None and self.factory in ("PrithviModelFactory", "SMPModelFactory"):
            pretrained = True  # those factories default to pretrained weights
        given = [(k, args.take(k)) for k in ("backbone_ckpt_path", "backbone_checkpoint_path")]
        ckpt_key, weights = next(((k, v) for k, v in given if v), (None, None))
        if weights:
            self.model["weights"] = self.path(weights, f"model_args.{ckpt_key}")
            if pretrained:
                self.note(f"{ckpt_key} given: model.weights loads it (instead of the card's "
                          "pretrained checkpoint)")
            pretrained = False
        if pretrained is not None:
            self.model["pretrained"] = bool(pretrained)
        frames = args.take("backbone_num_frames")
        if frames is None:
            frames = args.take("num_frames")
        if frames is not None and _int(frames, "model_args.backbone_num_frames") != 1:
            self.model["num_frames"] = _int(frames, "model_args.backbone_num_frames")
        taps = args.take("backbone_out_indices")
        self.out_indices = _ints(taps, "model_args.backbone_out_indices") if taps else None
        kwargs: dict[str, Any] = {}
        for key in ("backbone_drop_path", "backbone_drop_path_rate"):
            drop = args.get(key)
            if drop is not None and self.family in ("prithvi", "dofa"):
                kwargs["drop_path_rate"] = _num(args.take(key), f"model_args.{key}")
            elif drop is not None:
                self.note(f"{key}: rsfm's ResNet has no stochastic depth; not mapped")
        img = args.get("backbone_img_size")
        if img is not None and self.family in ("prithvi", "dofa"):
            args.take("backbone_img_size")
            size = _int(img, "model_args.backbone_img_size")
            if size != int(self.card.arch.get("img_size", 224)):
                kwargs["img_size"] = size
        if kwargs:
            self.model["backbone_kwargs"] = kwargs
        for key in ("backbone_in_chans", "in_channels"):
            if args.get(key) is not None:
                self.in_chans = (_int(args.take(key), f"model_args.{key}"), key)
        coords = args.get("backbone_coords_encoding")
        if coords:
            self.note(f"backbone_coords_encoding {coords!r}: rsfm's -TL backbones take "
                      "temporal/location coordinates per call (not from the data); not mapped")

    # ------------------------------------------------------------------------------- classes
    def convert_classes(self) -> None:
        args, task = self.args, self.task_block
        n = args.take("num_classes")
        data_n = self.data_block.take("num_classes")
        if n is None:
            n = data_n
        names = task.take("class_names")
        data_names = self.data_block.take("class_names")
        if names is None:
            names = data_names
        elif data_names is not None and list(data_names) != list(names):
            self.note(f"the datamodule's class_names {list(data_names)} differ from the task's "
                      f"{list(names)}; using the task's")
        if n is None and names is not None:
            n = len(names)
        if n is None:
            raise ConfigError("num_classes is missing (model_args.num_classes): rsfm needs the "
                              "number of classes.")
        n = _int(n, "model_args.num_classes")
        if data_n is not None and _int(data_n, "data.num_classes") != n:
            self.note(f"data num_classes {data_n} differs from model_args.num_classes {n}; "
                      f"using {n}")
        if self.task == "detection":
            n, names = self._detection_classes(n, names)
        self.model["num_classes"] = n
        self.num_classes = n
        if names is None and self.task == "classification":
            self.note("no class_names: rsfm names the classes class_0..; set data.classes to the "
                      "class folder names (the sub-folders of the image folder)")
        elif self.task == "classification":
            self.note("class_names: TerraTorch shows them as display names (its classes are the "
                      "sorted sub-folders); rsfm's data.classes must equal the sub-folder names, "
                      "so check them against the folders")
        if names is not None:
            names = _strs(names, "model.class_names")
            if len(names) == n:
                self.data["classes"] = names
            else:
                self.note(f"class_names has {len(names)} names for {n} classes; not mapped")
                self.cfg.used.discard(task.where("class_names") or "")

    def _detection_classes(self, n: int, names: Any) -> tuple[int, list[str] | None]:
        """TerraTorch counts (and may name) the background; rsfm's detection classes are the
        object classes only. The count and the names are reconciled, with a note."""
        n -= 1
        self.note(f"detection: TerraTorch's num_classes counts the background; rsfm's does not "
                  f"(model.num_classes: {n})")
        if names is not None:
            names = _strs(names, "model.class_names")
            if names and names[0].lower().strip("_ ") in ("background", "bg"):
                self.note(f"detection class_names: {names[0]!r} dropped (rsfm's detection classes "
                          "exclude the background)")
                names = names[1:]
            if len(names) < n:
                missing = [f"class_{i}" for i in range(len(names), n)]
                self.note(f"detection: {len(names)} class names for model.num_classes {n} "
                          f"(num_classes {n + 1} minus the background); the missing ones are "
                          f"named {missing}: set data.classes to the annotations' class names")
                names += missing
            elif len(names) > n:
                self.note(f"detection: {len(names)} class names but num_classes {n + 1} leaves "
                          f"{n} object classes; using model.num_classes {len(names)} (one per "
                          "name)")
                n = len(names)
        if n < 1:
            raise ConfigError("detection num_classes must count at least one object class "
                              "besides the background.")
        return n, names

    # --------------------------------------------------------------------------------- bands
    def convert_bands(self) -> None:
        """Decide data.file_bands, data.bands and model.bands (stated once)."""
        d, args = self.data_block, self.args
        self.layout = _LAYOUTS.get(d.name)
        dataset = d.take("dataset_bands")
        output = d.take("output_bands")
        if output is None:
            output = d.take("bands")  # dataset-specific modules and TorchGeo dict_kwargs
        dataset, output = self._modal_lists(dataset, "dataset_bands"), \
            self._modal_lists(output, "output_bands")
        db = _band_tokens(dataset, "data.dataset_bands") if dataset is not None else None
        if db is None and self.layout is not None:
            db = list(self.layout.file_bands)
        elif db is None and d.name in _MODULE_FILES:
            db = list(_MODULE_FILES[d.name][0])
        ob = _band_tokens(output, "data.output_bands") if output is not None else None
        self.multi_temporal = bool(d.take("expand_temporal_dimension",
                                         (self.layout.defaults if self.layout else {}).get(
                                             "expand_temporal_dimension", False)))

        def resolve(tokens: list[int | str], key: str) -> list[int | str]:
            if db is None:
                return tokens
            out: list[int | str] = []
            for t in tokens:
                if t in db:  # TerraTorch's rule: entries compare by value ('10' is not 10)
                    out.append(t)
                elif isinstance(t, int) and 0 <= t < len(db):
                    out.append(db[t])
                    self.note(f"{key}: index {t} is not a dataset_bands entry; read as position "
                              f"{t} of dataset_bands ({_band_name(db[t])})")
                elif isinstance(t, str) and t.upper() in [str(x).upper() for x in db]:
                    out.append(next(x for x in db if str(x).upper() == t.upper()))
                else:
                    raise ConfigError(f"{key}: band {t!r} is not in dataset_bands "
                                      f"{[_band_name(x) for x in db]}.")
            return out

        data_tokens = resolve(ob, "data.output_bands") if ob is not None else db
        model_src = None
        for key in ("backbone_bands", "backbone_model_bands", "bands"):
            if args.get(key) is not None:
                model_src = (key, _band_tokens(args.take(key), f"model_args.{key}"))
                break
        model_tokens = None
        if model_src is not None:
            key, tokens = model_src
            try:
                model_tokens = resolve(tokens, f"model_args.{key}")
            except ConfigError:
                model_tokens = tokens  # names the data does not have: compared below

        if data_tokens and all(isinstance(t, int) or str(t).isdigit() for t in data_tokens):
            data_tokens, db = self._name_numbered_bands(data_tokens, db, model_src)
        else:
            tokens = data_tokens if data_tokens is not None else model_tokens
            declared = [str(t) for t in tokens or () if _catalog_name(t) is None]
            if declared:
                self.note(f"bands {declared} are not in rsfm's band catalog: declared bands "
                          "without wavelength, each with a new, randomly initialised filter "
                          "(no pretrained filter matches them by name); name catalog bands "
                          "(e.g. B04 or RED) where they are ones")
        if data_tokens is not None:
            self.band_names = [_band_name(t) for t in data_tokens]
            self.data["bands"] = [_band_entry(t) for t in data_tokens]
            if db is not None and not self.multi_temporal:
                self.data["file_bands"] = [_band_name(t) for t in db]
            if model_tokens is not None:
                self._compare_bands(model_src[0], model_tokens, data_tokens)
        elif model_tokens is not None:
            self.model["bands"] = [_band_entry(t) for t in model_tokens]
        self.band_count = len(data_tokens if data_tokens is not None else model_tokens
                              if model_tokens is not None else self.card.bands)
        if self.in_chans is not None and self.in_chans[0] != self.band_count:
            self.note(f"model_args.{self.in_chans[1]} is {self.in_chans[0]} but the bands give "
                      f"{self.band_count} channels; rsfm sizes the input layer from the bands")
        if self.multi_temporal:
            frames = self.model.get("num_frames") or (self.layout.num_frames if self.layout else 1)
            self.model["num_frames"] = frames
            self.note(f"expand_temporal_dimension: each TerraTorch file stacks {frames} frames x "
                      f"{self.band_count} bands; rsfm reads a time series as one file per frame "
                      "(a manifest CSV whose image column lists the frames separated by ';'), so "
                      "split the files per frame or write a manifest; data.bands are the bands of "
                      "one frame")
        if self.family == "dofa":
            self.note("DOFA wavelengths come from rsfm's band catalog by band name; TerraTorch's "
                      "own table differs by up to 0.01 um for a few bands (e.g. NIR_BROAD, "
                      "SWIR_2); set model.wavelengths to pin them")

    def _modalities(self) -> list[str]:
        """GenericMultiModalDataModule's modality order (the order concat_bands stacks them)."""
        mods = self.data_block.get("modalities")
        return _strs(mods, "data.modalities") if mods else []

    def _modal_lists(self, value: Any, key: str) -> Any:
        """A per-modality mapping (GenericMultiModalDataModule) as one list, concatenated in
        ``modalities`` order (TerraTorch's concat_bands); other values unchanged."""
        if not isinstance(value, Mapping):
            return value
        where = self.data_block.where(key) or f"data.{key}"
        order = [m for m in self._modalities() if m in value] or [str(m) for m in value]
        out: list[Any] = []
        for m in order:
            part = _listed(value[m])
            if not isinstance(part, list):
                raise ConfigError(f"{where}.{m}: expected a list, got {value[m]!r}.")
            out += part
        missing = [m for m in self._modalities() if m not in value]
        if missing:
            self.note(f"data.{key} gives no values for modalities {missing}; the list is the "
                      f"other modalities' {order} stacked")
        return out

    def _name_numbered_bands(
        self, data_tokens: list[int | str], db: list[int | str] | None,
        model_src: tuple[str, list[int | str]] | None,
    ) -> tuple[list[int | str], list[int | str] | None]:
        """Data bands given only as numbers carry no name, so no pretrained filter matches them:
        name them with the backbone's bands when those are names of the same count."""
        numbers = [_band_name(t) for t in data_tokens]
        if model_src is None:
            why = "no backbone_bands name them"
        else:
            key, tokens = model_src
            others = {str(t) for t in db or () if t not in data_tokens}  # names must stay unique
            if (len(tokens) == len(data_tokens) and all(isinstance(t, str) for t in tokens)
                    and len(set(data_tokens)) == len(data_tokens) and not others & set(tokens)):
                names: dict[int | str, int | str] = dict(zip(data_tokens, tokens))
                self.note(f"data bands {numbers} are numbers without names: named by "
                          f"model_args.{key} {[str(t) for t in tokens]} (same count, in that "
                          "order), so the pretrained filters match them by name; check the order")
                return tokens, None if db is None else [names.get(t, t) for t in db]
            why = (f"model_args.{key} lists {len(tokens)} bands for {len(data_tokens)}"
                   if len(tokens) != len(data_tokens) else
                   f"model_args.{key} {[str(t) for t in tokens]} cannot name them one to one")
        self.note(f"data bands {numbers} are numbers without names ({why}): no pretrained filter "
                  "will match those bands (each gets a new, randomly initialised filter); name "
                  "them in data.bands and data.file_bands to use the pretrained ones")
        return data_tokens, db

    def _compare_bands(self, key: str, model_tokens: list[int | str],
                       data_tokens: list[int | str]) -> None:

        if [str(t) for t in model_tokens] == [str(t) for t in data_tokens]:
            return
        if len(model_tokens) != len(data_tokens):
            self.note(f"model_args.{key} lists {len(model_tokens)} bands but the data gives "
                      f"{len(data_tokens)}; rsfm builds the input layer from data.bands")
            return
        try:
            mb = [resolve_band(_band_name(t)) for t in model_tokens]
            dbands = [resolve_band(_band_name(t)) for t in data_tokens]
            same = match_bands(dbands, mb) == list(range(len(mb)))
        except RsfmError:
            same = False
        if same:
            self.note(f"model_args.{key} {[_band_name(t) for t in model_tokens]} and the data "
                      f"bands {[_band_name(t) for t in data_tokens]} are the same bands by common "
                      "name; rsfm states them once (data.bands)")
        else:
            self.note(f"model_args.{key} {[_band_name(t) for t in model_tokens]} differ from the "
                      f"data bands {[_band_name(t) for t in data_tokens]}; rsfm matches pretrained "
                      "filters to the data bands (data.bands)")

    # ------------------------------------------------------------------------ head and neck
    def convert_head_and_neck(self) -> None:
        args = self.args
        if self.task == "detection":
            framework = args.take("framework") or args.take("model")
            head = _DETECTORS.get(str(framework).lower()) if framework else None
            if head is None:
                head = "faster_rcnn"
                self.note(f"detector framework {framework!r} is not an rsfm head; using "
                          "faster_rcnn")
            elif head == "mask_rcnn":
                # rsfm's mask_rcnn needs instance outlines, which chip labels (what TerraTorch's
                # datamodules become) do not carry: the recipe would not validate
                head = "faster_rcnn"
                self.note(f"framework {framework!r}: rsfm's mask_rcnn learns outlines from "
                          "polygon labels over scenes (data.kind: scenes) or an ArcGIS "
                          "RCNN_Masks export, which a TerraTorch datamodule does not give; using "
                          "faster_rcnn (the same detector without the mask branch). Set "
                          "model.head: mask_rcnn once the labels have outlines")
            self.model["head"] = head
            head_kwargs: dict[str, Any] = {}
            for tt, ours in (("framework_min_size", "min_size"), ("framework_max_size", "max_size")):
                value = args.take(tt)
                if value is not None:
                    head_kwargs[ours] = _int(value, f"model_args.{tt}")
            if head_kwargs:
                self.model["head_kwargs"] = head_kwargs
            score = self.task_block.get("score_threshold")
            if score is not None and 0 <= _num(score, "model.score_threshold") < 1:
                self.eval["score_threshold"] = _num(self.task_block.take("score_threshold"),
                                                    "model.score_threshold")
            self.convert_necks(head)
            return
        decoder = args.take("decoder")
        if decoder is None and self.factory == "SMPModelFactory":
            decoder = args.take("model")
        head, note = self._head_for(decoder)
        self.model["head"] = head
        if note:
            self.note(note)
        self.convert_necks(head)
        self._decoder_options(head, decoder)
        aux = self.task_block.get("aux_heads")
        if aux and head != "classification":
            self.task_block.take("aux_heads")
            self.head_kwargs["aux_head"] = True
            weights = self.task_block.take("aux_loss")
            self.note(f"aux_heads -> head_kwargs.aux_head: an FCN head on the level before the "
                      f"deep level, weighted 0.4 in the loss (TerraTorch aux_loss: "
                      f"{weights if weights else 'unset'}; decoder choices of the aux heads "
                      "are not mapped)")
        if self.head_kwargs:
            self.model["head_kwargs"] = self.head_kwargs

    def _head_for(self, decoder: Any) -> tuple[str, str | None]:
        if self.task == "classification":
            if decoder is not None and "identity" not in str(decoder).lower():
                return "classification", (f"decoder {decoder!r} on a classification task: rsfm's "
                                          "classification head pools the last level + linear")
            return "classification", None
        if decoder is None:
            return "deeplabv3plus", "no decoder given; using deeplabv3plus"
        key = str(decoder).lower()
        key = key.removeprefix("smp_")
        if key in _DECODERS:
            head, note = _DECODERS[key]
            if head == "classification":
                return "fcn", (f"decoder {decoder!r} on a segmentation task: using the fcn head")
            if note is None and str(decoder).lower().startswith("smp_"):
                note = f"smp decoder {decoder!r} -> rsfm's {head} head"
            return head, note
        return "deeplabv3plus", (f"decoder {decoder!r} has no rsfm equivalent; using "
                                 "deeplabv3plus")

    def convert_necks(self, head: str) -> None:
        args, vit = self.args, self.family in ("prithvi", "dofa")
        necks = args.get("necks")
        names: list[str] = []
        where = args.where("necks")
        if necks:
            if not isinstance(necks, list):
                raise ConfigError(f"model_args.necks: expected a list of {{name: ...}}, got {necks!r}.")
            for i, neck in enumerate(necks):
                path = f"{where}[{i}]"
                name = str(self.cfg.take(f"{path}.name", "")) if isinstance(neck, Mapping) else str(neck)
                if not isinstance(neck, Mapping):
                    self.cfg.use(path)
                names.append(name)
                if name == "SelectIndices":
                    idx = self.cfg.take(f"{path}.indices")
                    if idx is not None:
                        self.out_indices = _ints(idx, f"{path}.indices")
                elif name == "ReshapeTokensToImage":
                    self.cfg.take(f"{path}.remove_cls_token")
                    etd = self.cfg.take(f"{path}.effective_time_dim")
                    frames = self.model.get("num_frames", 1)
                    if etd is not None and _int(etd, f"{path}.effective_time_dim") != frames:
                        self.note(f"ReshapeTokensToImage effective_time_dim {etd} differs from "
                                  f"backbone_num_frames {frames}; rsfm merges all {frames} frames "
                                  "(model.temporal_reduction: concat)")
                elif name in _PYRAMID_NECKS:
                    self.cfg.use(path)
                elif name == "FeaturePyramidNetworkNeck":
                    out = self.cfg.take(f"{path}.out_channel") or self.cfg.take(f"{path}.out_channels")
                    if out is not None:  # the width of every level, FPN's and the SFP's alike
                        self.model.setdefault("neck", {})["out_channels"] = _int(out, path)
                else:
                    self.cfg.used.discard(f"{path}.name")
                    self.note(f"neck {name!r} has no rsfm equivalent; not mapped")
        scale_modules = bool(args.take("decoder_scale_modules"))
        pyramid = scale_modules or any(n in _PYRAMID_NECKS for n in names)
        if self.task == "detection":
            if vit:
                self.model["neck"] = {**self.model.get("neck", {}), "kind": "simple_feature_pyramid"}
                if "FeaturePyramidNetworkNeck" in names or pyramid:
                    self.note("detection necks (ReshapeTokensToImage/LearnedInterpolateToPyramidal/"
                              "FeaturePyramidNetworkNeck) -> rsfm's ViTDet simple feature pyramid "
                              "(strides 4-64)")
            elif "FeaturePyramidNetworkNeck" in names:
                self.model["neck"] = {**self.model.get("neck", {}), "kind": "fpn"}
        elif vit and head != "classification":
            if head == "fcn" and not pyramid:
                self.model["neck"] = {"kind": "none"}
            else:
                self.model["neck"] = {"kind": "simple_feature_pyramid"}
                if pyramid:
                    taps = self.out_indices
                    if taps and len(taps) > 1:
                        what = ("decoder_scale_modules" if scale_modules else
                                next(n for n in names if n in _PYRAMID_NECKS))
                        self.note(f"{what} builds one pyramid level per tapped block {taps}; "
                                  "rsfm's simple_feature_pyramid (ViTDet) builds every level from "
                                  f"the last one ({taps[-1]})")
                    else:
                        self.note("the TerraTorch pyramid neck -> rsfm's simple_feature_pyramid "
                                  "(ViTDet: levels at strides 4, 8, 16, 32 from one map)")
                else:
                    self.note(f"{head} needs a feature pyramid; TerraTorch fed same-stride token "
                              "maps, rsfm uses its simple_feature_pyramid neck")
        if self.out_indices is not None:
            self.model["out_indices"] = self._map_indices(self.out_indices)

    def _map_indices(self, indices: list[int]) -> list[int]:
        if self.family != "resnet":
            return indices
        # timm features_only: 0 = stem (stride 2), 1..4 = layer1..4; rsfm stages 0..3 = layer1..4
        mapped, dropped = [], []
        for i in indices:
            j = i + 5 if i < 0 else i
            if 1 <= j <= 4:
                mapped.append(j - 1)
            else:
                dropped.append(i)
        if dropped:
            self.note(f"ResNet feature index {dropped} (the stride-2 stem) has no rsfm stage; "
                      "dropped from model.out_indices")
        if mapped != indices:
            self.note(f"ResNet SelectIndices {indices} (timm feature indices, 1 = layer1) -> "
                      f"model.out_indices {mapped} (rsfm stages, 0 = layer1)")
        return mapped or [0, 1, 2, 3]

    def _decoder_options(self, head: str, decoder: Any) -> None:
        args = self.args
        channels = args.get("decoder_channels")
        if channels is None:
            channels = args.get("decoder_decoder_channels")  # smp decoders through the registry
        key = "decoder_channels" if args.where("decoder_channels") else "decoder_decoder_channels"
        if channels is not None:
            if head in ("deeplabv3plus", "deeplabv3") and not isinstance(channels, list):
                args.take(key)
                self.head_kwargs["aspp_channels"] = _int(channels, f"model_args.{key}")
            elif head == "unet" and isinstance(channels, list) and channels:
                args.take(key)
                widths = [_int(c, f"model_args.{key}") for c in channels]
                need = self._unet_blocks()
                fitted = (widths + [max(16, widths[-1] // 2 ** (i + 1))
                                    for i in range(need - len(widths))])[:need]
                self.head_kwargs["decoder_channels"] = fitted
                if fitted != widths:
                    self.note(f"{key} {widths} -> head_kwargs.decoder_channels {fitted}: rsfm's "
                              f"unet has {need} blocks on this pyramid (skips, then upsampling to "
                              "the input size)")
            else:
                self.note(f"{key} {channels}: rsfm's {head} head has no width option; not mapped")
        dropout = args.get("head_dropout")
        if dropout is not None:
            if head == "classification":
                args.take("head_dropout")
                self.head_kwargs["dropout"] = _num(dropout, "model_args.head_dropout")
            else:
                self.note(f"head_dropout {dropout}: rsfm's {head} head has no dropout option; "
                          "not mapped")
        if args.get("head_dim_list") is not None or args.get("head_channel_list") is not None:
            self.note("head_dim_list/head_channel_list (extra conv/MLP layers before the "
                      "classifier) have no rsfm equivalent; not mapped")

    def _unet_blocks(self) -> int:
        if self.family in ("prithvi", "dofa"):
            return 5  # simple feature pyramid at strides 4..32: 3 skips + 2 upsamplings
        indices = self.model.get("out_indices") or [0, 1, 2, 3]
        if self.model.get("backbone_kwargs", {}).get("stem", True):
            # a ResNet UNet also taps the stride-2 stem map (rsfm.factory's default)
            return len(indices) + 1
        first = [4, 8, 16, 32][min(indices)]
        return len(indices) - 1 + max(0, math.ceil(math.log2(first)))

    # ---------------------------------------------------------------------------------- LoRA
    def convert_lora(self) -> None:
        args = self.args
        peft = args.get("peft_config")
        if not peft:
            return
        where = args.where("peft_config")
        cfg = self.cfg
        method = str(cfg.take(f"{where}.method", "LORA")).upper()
        if method != "LORA":
            cfg.used.discard(f"{where}.method")
            self.note(f"peft_config method {method!r}: rsfm supports LoRA only; not mapped")
            return
        kw = f"{where}.peft_config_kwargs"
        lora: dict[str, Any] = {}
        r = cfg.take(f"{kw}.r")
        if r is not None:
            lora["r"] = _int(r, f"{kw}.r")
        alpha = cfg.take(f"{kw}.lora_alpha")
        if alpha is not None:
            lora["alpha"] = _clean(_num(alpha, f"{kw}.lora_alpha"))
        dropout = cfg.take(f"{kw}.lora_dropout")
        if dropout is not None:
            lora["dropout"] = _num(dropout, f"{kw}.lora_dropout")
        bias = cfg.take(f"{kw}.bias")
        if bias is not None:
            lora["bias"] = str(bias)
        targets = cfg.take(f"{kw}.target_modules")
        replace_qkv = cfg.take(f"{where}.replace_qkv")
        if targets:
            targets = _strs(targets, f"{kw}.target_modules")
            mapped: list[str] = []
            split_qkv = []
            for t in targets:
                leaf = str(t).split(".")[-1]
                if leaf in ("q_linear", "k_linear", "v_linear") or str(t) in ("qkv", "attn.qkv"):
                    ours = "attn.qkv"
                    if leaf != "qkv":
                        split_qkv.append(str(t))
                elif str(t) in ("proj", "attn.proj"):
                    ours = "attn.proj"
                    if str(t) == "proj":
                        self.note("LoRA target 'proj' -> attn.proj (in TerraTorch it also matched "
                                  "the patch embedding's proj)")
                elif str(t) in ("fc1", "mlp.fc1", "fc2", "mlp.fc2"):
                    ours = f"mlp.{leaf}"
                else:
                    ours = str(t)
                    self.note(f"LoRA target {t!r} is kept as written (peft matches module-name "
                              "suffixes); rsfm fails early if it matches no backbone module")
                if ours not in mapped:
                    mapped.append(ours)
            lora["target_modules"] = mapped
            if split_qkv:
                self.note(f"LoRA targets {split_qkv} (replace_qkv splits the fused qkv layer): rsfm "
                          "keeps qkv fused and adapts attn.qkv as one layer (LoRA on Q, K and V "
                          "together)")
        elif replace_qkv:
            self.note("peft_config.replace_qkv without target_modules: rsfm uses the card's "
                      "LoRA targets")
        self.lora = lora
        if not self.model.get("pretrained"):
            self.note("LoRA on a backbone without pretrained weights (backbone_pretrained is not "
                      "true)")

    # ---------------------------------------------------------------------------------- data
    def convert_data(self) -> None:
        d = self.data_block
        name = d.name
        layout = self.layout
        if self.task == "classification":
            self.data["kind"] = "class_folders"
        if layout is not None:
            self._layout_sources(layout)
        elif name in _GENERIC_SEG | _GENERIC_CLS | _GENERIC_OD or d.get("train_data_root"):
            if name not in _GENERIC_SEG | _GENERIC_CLS | _GENERIC_OD:
                self.note(f"datamodule {name!r} read like the generic datamodules "
                          "(train_data_root, ...)")
            self._generic_sources()
        else:
            self._placeholder_sources()
        for key in ("batch_size", "num_workers"):
            value = d.take(key)
            if value is not None:
                self.data[key] = _int(value, f"data.{key}")
        self._normalization()
        self._labels()
        self._transforms()
        no_data = d.take("no_data_replace",
                         layout.defaults.get("no_data_replace") if layout else None)
        if no_data is not None:
            self.note(f"no_data_replace {no_data}: TerraTorch fills NaN/nodata image pixels with "
                      f"{no_data}; rsfm masks nodata itself (the files' nodata value and NaN "
                      "become 0 in the normalised input and ignore_index in the target), so "
                      "data.nodata stays unset (setting it to "
                      f"{no_data} would declare every {no_data} pixel nodata)")
        if d.name == "TorchNonGeoDataModule" or d.get("cls"):
            cls = d.get("cls")
            if cls:
                self.cfg.used.discard(d.where("cls") or "")
            self.note(f"TorchGeo datamodule {cls or name!r}: rsfm reads folders of GeoTIFFs; "
                      "point data.train/val at the dataset's image (and label) folders")

    def _src(self, images: Any, labels: Any, split_file: Any, split: str) -> dict[str, Any]:
        """One ``data.<split>`` source of a generic datamodule (paths re-expressed for the
        recipe's folder); ``labels`` is None when the config names no label folder."""
        src: dict[str, Any] = {"images": self.path(images, f"data.{split}_data_root")}
        if self.task != "classification":
            src["labels"] = (src["images"] if labels is None else
                             self.path(labels, f"data.{split}_label_data_root"))
        if split_file is not None:
            src["split_file"] = self.path(split_file, f"data.{split}_split")
        return src

    def _layout_sources(self, layout: _Layout) -> None:
        d = self.data_block
        key = "data.data_root" if d.where("data_root") else "data.root"
        root = d.take("data_root") or d.take("root")
        if root is None:
            raise ConfigError(f"data: {d.name} needs data_root (the dataset folder).")
        root = self.path(root, key).rstrip("/")  # once: the layout's folders sit under it
        for split in ("train", "val", "test"):
            if split not in layout.images:
                continue
            src = {"images": f"{root}/{layout.images[split]}"}
            if layout.labels:
                src["labels"] = f"{root}/{layout.labels[split]}"
            if split in layout.split_files:
                src["split_file"] = f"{root}/{layout.split_files[split]}"
            self.data[split] = src
        self.data["image_suffix"] = layout.image_suffix
        self.data["label_suffix"] = layout.label_suffix
        if layout.labels == layout.images:
            self.data["missing_labels"] = "skip"
            self.note("images and labels share one folder: rsfm lists every raster there as an "
                      "image, so data.missing_labels: skip leaves out the label files (and any "
                      "image without a label, with a warning); separate folders avoid that")
        self.note(f"{d.name}: the dataset's standard layout under data_root is written out as "
                  "folders, suffixes and split files")

    def _generic_sources(self) -> None:
        d = self.data_block
        sources: dict[str, dict[str, Any]] = {}
        stacked: list[str] = []  # modalities TerraTorch stacks per sample, when it does
        for split in ("train", "val", "test"):
            images = d.get(f"{split}_data_root")
            if images is None:
                continue
            if isinstance(images, Mapping):  # GenericMultiModalDataModule: a folder per modality
                images, stacked = self._first_modality(f"{split}_data_root", images)
            else:
                images = d.take(f"{split}_data_root")
            labels = d.take(f"{split}_label_data_root")
            split_file = d.take(f"{split}_split")
            if split_file is not None and self.task == "classification":
                self.cfg.used.discard(d.where(f"{split}_split") or "")
                self.note(f"{split}_split: rsfm's class folders take no split file (one folder "
                          f"per split with <class>/ sub-folders); {split_file} not applied")
                split_file = None
            sources[split] = self._src(images, labels, split_file, split)
        if "train" not in sources:
            raise ConfigError("data: train_data_root is missing; rsfm needs the training images.")
        if self.task == "classification":
            train_images = sources["train"]["images"]
            for split in ("val", "test"):
                if split in sources and sources[split]["images"] == train_images:
                    del sources[split]
                    self.note(f"{split}_data_root is the training folder and rsfm's class folders "
                              f"take no split file; data.{split} left out (set it, or "
                              "data.val_fraction)")
        self.data.update(sources)
        if stacked:
            concat = d.take("concat_bands")
            d.take("modalities")
            self.note(f"{d.name}: TerraTorch reads one file per modality {stacked} for each "
                      f"sample{' and stacks their bands (concat_bands)' if concat else ''}; rsfm "
                      f"reads one raster per sample: write files holding the bands of "
                      f"{' then '.join(stacked)} in that order and point data.train/val at them. "
                      f"The recipe points at the {stacked[0]} folders for now; the other "
                      "modalities' folders and patterns are listed as not mapped")
            if not concat:
                self.note("concat_bands is not true: TerraTorch feeds the modalities to a "
                          "multi-modal backbone separately; rsfm's backbones take one stack")
        splits = any("split_file" in s for s in sources.values())
        for key in ("allow_substring_split_file", "allow_substring_file_names"):
            if d.get(key) is not None and not splits:
                d.take(key)  # no split file: nothing to match
        if d.get("allow_substring_split_file", True) and splits:
            d.take("allow_substring_split_file")
            d.take("allow_substring_file_names")
            self.note("split files: rsfm keeps the images whose file name, stem, or stem without "
                      "image_suffix is a line of the file; TerraTorch also matched substrings")
        d.take("ignore_split_file_extensions")
        for key, ours in (("img_grep", "image_suffix"), ("image_grep", "image_suffix"),
                          ("label_grep", "label_suffix")):
            grep = d.get(key)
            if grep is None:
                continue
            if isinstance(grep, Mapping):  # per modality: the one data.train reads
                mod = stacked[0] if stacked and stacked[0] in grep else None
                if mod is None:
                    self.note(f"{key} {dict(grep)} is per modality; not mapped (set "
                              f"data.{ours} by hand)")
                    continue
                self.cfg.use(f"{d.where(key)}.{mod}")
                grep = grep[mod]
                suffix = self._grep_suffix(str(grep))
                if suffix:
                    self.data[ours] = suffix
                continue
            suffix = self._grep_suffix(str(grep))
            if suffix is None:
                self.note(f"{key} {grep!r} is not a simple '*<suffix>.<ext>' pattern; not mapped "
                          f"(set data.{ours} by hand)")
                continue
            d.take(key)
            if suffix:
                self.data[ours] = suffix
            if key == "label_grep" and str(grep).lower().endswith(".json"):
                self.note(f"label_grep {grep!r}: per-image JSON boxes are not an rsfm label "
                          "format (rsfm reads VOC XML, YOLO txt or one COCO JSON)")
        if self.task != "classification" and any(
                s.get("labels") == s["images"] for s in sources.values()):
            self.data["missing_labels"] = "skip"
            self.note("images and labels share one folder: rsfm lists every raster there as an "
                      "image, so data.missing_labels: skip leaves out the label files (and any "
                      "image without a label, with a warning); separate folders avoid that")

    def _first_modality(self, key: str, roots: Mapping[Any, Any]) -> tuple[Any, list[str]]:
        """The folder of the first modality (in ``modalities`` order) of a per-modality
        ``<split>_data_root`` (only that entry is marked used), and the modality order."""
        order = [m for m in self._modalities() if m in roots] or [str(m) for m in roots]
        where = self.data_block.where(key)
        if not order:
            raise ConfigError(f"{where}: expected a path (or one per modality), got {{}}.")
        self.cfg.use(f"{where}.{order[0]}")
        return roots[order[0]], order

    @staticmethod
    def _grep_suffix(grep: str) -> str | None:
        """``*_merged.tif`` -> ``_merged``; ``*.mask.tif`` -> ``.mask``; ``*.tif``/``*`` -> ``''``."""
        if grep in ("*", "*.*"):
            return ""
        m = re.fullmatch(r"\*([^*?\[\]/]*)\.([A-Za-z0-9]+)", grep)
        return None if m is None else m.group(1)

    def _placeholder_sources(self) -> None:
        d = self.data_block
        root = d.take("data_root") or d.take("root")
        if root is None:
            raise ConfigError(f"data: datamodule {d.class_path!r} has no data_root/root and no "
                              "train_data_root; rsfm cannot tell where the images are.")
        self.data["train"] = {"images": self.path(root, "data.data_root")}
        self.note(f"datamodule {d.name!r} has no rsfm reader: data.train.images points at its "
                  f"root ({root}); set data.train/val to the image and label folders before "
                  "training")

    def _normalization(self) -> None:
        d = self.data_block
        scale = d.take("constant_scale", self.layout.defaults.get("constant_scale")
                       if self.layout else None)
        scale = _num(scale, "data.constant_scale") if scale is not None else 1.0
        means, stds = self._stats_values("means"), self._stats_values("stds")
        norm: dict[str, Any] = {"mode": "per_tile"}
        if isinstance(means, list) and isinstance(stds, list):
            mean, std = _nums(means, "data.means"), _nums(stds, "data.stds")
            if len(mean) == len(std) == self.band_count:
                d.take("means")
                d.take("stds")
                norm = {"mode": "stats", "mean": mean, "std": std}
                if scale != 1.0:
                    norm["value_scale"] = scale
            else:
                self.note(f"means/stds have {len(mean)}/{len(std)} values for {self.band_count} "
                          "bands; not mapped (data.normalization is per_tile)")
        elif means is not None or stds is not None:
            self.note(f"means {means!r} / stds {stds!r} are not both lists of numbers (a string "
                      "is read when it holds a YAML list); not read (data.normalization is "
                      "per_tile)")
        elif (builtin := self._builtin_stats(scale)) is not None:
            norm = builtin
        else:
            self.note("no means/stds in the config (the datamodule's built-in statistics): "
                      "data.normalization is per_tile. Compute dataset statistics with `rsfm "
                      "stats` and use mode: stats (include the YAML), or mode: card when the "
                      "files are in the card's units")
        if norm["mode"] == "per_tile" and scale != 1.0:
            self.note(f"constant_scale {_clean(scale)} dropped: per-tile normalisation does not "
                      "depend on the scale")
        self.data["normalization"] = norm

    def _stats_values(self, key: str) -> Any:
        """``means``/``stds`` as a list when TerraTorch would read one: a list, a string holding
        a YAML list, a per-modality mapping (stacked in ``modalities`` order), or the path of a
        text file of numbers (``load_from_file_or_attribute``: ``np.genfromtxt``)."""
        value = self.data_block.get(key)
        if isinstance(value, Mapping):
            return self._modal_lists(value, key)
        value = _listed(value)
        if not isinstance(value, str) or (self.config_dir is None and not os.path.isabs(value)):
            return value
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else self.config_dir / path  # type: ignore[operator]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return value
        try:
            numbers = [float(x) for line in text.splitlines()
                       for x in line.split("#", 1)[0].replace(",", " ").split()]
        except ValueError:
            return value
        self.note(f"data.{key}: read from the file {value} ({len(numbers)} values), as TerraTorch "
                  "does")
        return numbers

    def _builtin_stats(self, scale: float) -> dict[str, Any] | None:
        """A dataset module's fixed per-band statistics (TerraTorch normalises with them when
        the config gives no means/stds), for the bands it reads, in their order."""
        layout, name = self.layout, self.data_block.name
        if layout is not None and layout.stats is not None:
            stats, module = layout.stats, layout.stats_module
        elif name in _MODULE_FILES:
            _, stats, module = _MODULE_FILES[name]
        else:
            return None
        missing = [b for b in self.band_names if b not in stats]
        if missing:
            self.note(f"{self.data_block.name}'s built-in statistics have no value for bands "
                      f"{missing}; not used")
        if missing or not self.band_names:
            return None
        norm: dict[str, Any] = {"mode": "stats",
                                "mean": [stats[b][0] for b in self.band_names],
                                "std": [stats[b][1] for b in self.band_names]}
        if scale != 1.0:
            norm["value_scale"] = scale
        self.note(f"{self.data_block.name} normalises with its built-in per-band statistics "
                  f"(MEANS/STDS in terratorch/datamodules/{module}) -> "
                  f"data.normalization mode: stats for {self.band_names}"
                  + (f" after value_scale {_clean(scale)} (constant_scale)" if scale != 1.0 else ""))
        return norm

    def _labels(self) -> None:
        d, task = self.data_block, self.task_block
        if self.task == "detection":
            if task.get("ignore_index") == -1:
                task.take("ignore_index")  # ObjectDetectionTask's default; boxes have no pixels
            return
        if self.task == "classification":
            return  # scene labels come from the class folders
        defaults = self.layout.defaults if self.layout else {}
        ii = task.take("ignore_index")
        ii = _int(ii, "model.ignore_index") if ii is not None else None
        nlr = d.take("no_label_replace", defaults.get("no_label_replace"))
        rz = bool(d.take("reduce_zero_label", defaults.get("reduce_zero_label", False)))
        k = self.num_classes
        ignore_values: list[int] = []
        if rz:
            self.data["label_map"] = {v: v - 1 for v in range(1, k + 1)}
            ignore_values.append(0)
            self.note(f"reduce_zero_label: file labels 1..{k} -> classes 0..{k - 1} "
                      "(data.label_map); label 0 is ignored")
        if ii is not None and not 0 <= ii < k:
            self.data["ignore_index"] = ii
            ignore_values.append(ii + 1 if rz else ii)  # a raw (file) value
        elif ii is not None:
            raw = ii + 1 if rz else ii
            ignore_values.append(raw)
            self.data["ignore_index"] = -1
            self.note(f"ignore_index {ii} is a class id: rsfm keeps class {ii} (num_classes "
                      f"{k}) but ignores its pixels (data.label_ignore_values) and uses -1 as the "
                      "ignore value")
        else:
            self.data["ignore_index"] = -1
        if ignore_values:
            self.data["label_ignore_values"] = sorted(set(ignore_values))
        if nlr is not None and (ii is None or _int(nlr, "data.no_label_replace") != ii):
            self.note(f"no_label_replace {nlr}: TerraTorch fills NaN/nodata label pixels with "
                      f"{nlr}; rsfm ignores them (ignore_index {self.data['ignore_index']})")

    def _transforms(self) -> None:
        d = self.data_block
        augment: dict[str, Any] = {}
        crop: int | None = None
        for split in ("train", "val", "test", "predict", ""):
            key = f"{split}_transform" if split else "transforms"
            where = d.where(key)
            if where is None:
                continue
            items = self.cfg.get(where)
            if not isinstance(items, list):
                continue
            for path, cls in self._transform_items(where, items):
                mapped = self._transform(path, cls, split or "train", augment)
                if isinstance(mapped, int):
                    crop = crop or mapped
        if augment:
            self.data["augment"] = augment
        tiles = self.task_block.get("tiled_inference_parameters")
        tile: tuple[int, str] | None = None
        if isinstance(tiles, Mapping):
            where = self.task_block.where("tiled_inference_parameters")
            size = tiles.get("h_crop", tiles.get("crop"))
            if size is not None:
                self.cfg.use(f"{where}.h_crop", f"{where}.w_crop", f"{where}.crop")
                self.cfg.use(f"{where}.average_patches")
                tile = (_int(size, f"{where}.crop"), "tiled_inference_parameters crop")
                self.note(f"tiled_inference_parameters crop {size} -> data.tile_size (the "
                          "prediction tile); rsfm predict blends overlapping tiles (--overlap "
                          "replaces the strides)")
                if crop and crop != tile[0]:
                    self.note(f"the tiled_inference_parameters crop {tile[0]} wins over the "
                              f"RandomCrop {crop} for data.tile_size: rsfm has one tile size, and "
                              "on chips it is the prediction tile")
        if tile is None and crop:
            tile = (crop, "RandomCrop")
            self.note(f"RandomCrop {crop} -> data.tile_size")
        if tile is not None:
            self.data["tile_size"] = self._fit_patch(*tile)

    def _fit_patch(self, size: int, source: str) -> int:
        """``size`` rounded to the nearest multiple of a ViT's patch size, which ``rsfm check``
        requires of data.tile_size (detection pads its batches, and ResNets take any size)."""
        if self.family not in VIT_FAMILIES or self.task == "detection":
            return size
        # the architecture the recipe builds, as rsfm.modelcheck.model_arch reads it
        patch = int({**self.card.arch, **self.model.get("backbone_kwargs", {})}["patch_size"])
        if size % patch == 0:
            return size
        fitted = max(patch, (size + patch // 2) // patch * patch)  # a tie rounds up
        self.note(f"{source} {size} is not a multiple of the patch size {patch} of "
                  f"{self.card.name}: data.tile_size is {fitted}, the nearest multiple (rsfm "
                  "check requires one)")
        return fitted

    def _transform_items(self, where: str, items: list[Any]) -> Iterator[tuple[str, str]]:
        for i, item in enumerate(items):
            path = f"{where}[{i}]"
            if isinstance(item, str):
                yield path, _short(item)
                continue
            if not isinstance(item, Mapping):
                continue
            cls = _short(item.get("class_path"))
            if cls == "Compose":
                self.cfg.use(f"{path}.class_path", f"{path}.init_args.bbox_params")
                inner = self.cfg.get(f"{path}.init_args.transforms")
                if isinstance(inner, list):
                    yield from self._transform_items(f"{path}.init_args.transforms", inner)
                continue
            yield path, cls

    def _transform(self, path: str, cls: str, split: str, augment: dict[str, Any]) -> int | None:
        cfg = self.cfg

        def arg(name: str, default: Any = None) -> Any:
            return cfg.take(f"{path}.init_args.{name}", default)

        if cls in ("ToTensorV2", "ToTensor", "FlattenTemporalIntoChannels",
                   "UnflattenTemporalFromChannels"):
            cfg.use(path)  # no-ops for rsfm (tensors, (C, T, H, W) handled by its transforms)
            return None
        if split != "train":
            self.note(f"{split}_transform {cls}: not mapped (rsfm evaluates on the chips as they "
                      "are)")
            return None
        if cls in ("HorizontalFlip", "VerticalFlip", "RandomRotate90"):
            cfg.use(f"{path}.class_path")
            key = {"HorizontalFlip": "hflip", "VerticalFlip": "vflip", "RandomRotate90": "rot90"}[cls]
            augment[key] = _num(arg("p", 0.5), f"{path}.init_args.p")
            if cls == "RandomRotate90":
                augment[key] = round(augment[key] * 0.75, 6)  # k=0..3 uniform: 3/4 of draws turn
            return None
        if cls == "D4":
            cfg.use(f"{path}.class_path")
            p = _num(arg("p", 1.0), f"{path}.init_args.p")
            augment.update(hflip=0.5 * p, rot90=0.75 * p)
            if p != 1.0:
                self.note(f"D4 with p={p} -> hflip {0.5 * p}, rot90 {0.75 * p} (approximate)")
            return None
        if cls == "Flip":
            cfg.use(f"{path}.class_path")
            p = _num(arg("p", 0.5), f"{path}.init_args.p")
            augment.update(hflip=p, vflip=p)
            self.note("albumentations Flip (one random flip) -> independent hflip and vflip")
            return None
        if cls == "RandomResizedCrop":
            cfg.use(f"{path}.class_path")
            size = arg("size")
            if size is None:
                size = [arg("height"), arg("width")]
            where = f"{path}.init_args.size"
            size = _ints(size, where) if isinstance(size, (list, tuple)) else _int(size, where)
            if isinstance(size, list) and len(set(size)) == 1:
                size = size[0]
            crop: dict[str, Any] = {"size": size}
            scale = arg("scale", (0.08, 1.0))  # albumentations' default (rsfm's is 0.5..1)
            crop["scale"] = _nums(scale, f"{path}.init_args.scale")
            ratio = arg("ratio")
            if ratio is not None:
                crop["ratio"] = [float(r) for r in ratio]
            p = arg("p")
            if p is not None:
                crop["p"] = _num(p, f"{path}.init_args.p")
            augment["resized_crop"] = crop
            return None
        if cls == "RandomCrop":
            h, w = cfg.get(f"{path}.init_args.height"), cfg.get(f"{path}.init_args.width")
            if h is not None and h == w:
                cfg.use(f"{path}.class_path", f"{path}.init_args.height", f"{path}.init_args.width")
                self.note(f"RandomCrop {h}: rsfm trains on whole chips (use kind: scenes with "
                          "data.tile_size to train on tiles)")
                return int(h)
        self.note(f"transform {cls!r} has no rsfm augmentation; not mapped")
        return None

    # --------------------------------------------------------------------------------- train
    def convert_train(self) -> None:
        task = self.task_block
        loss = task.get("loss")
        loss_cfg: dict[str, Any] = {}
        if loss is not None and self.task != "detection":
            task.take("loss")
            fallback = ("ce", f"loss {loss!r} has no rsfm equivalent; using ce")
            name, note = _LOSSES.get(str(loss).lower(), fallback)
            loss_cfg["name"] = name
            if note:
                self.note(note)
        elif loss is not None:
            self.note("loss on an ObjectDetectionTask: TerraTorch ignores it (torchvision "
                      "detectors have their own losses); not mapped")
        weights = task.get("class_weights")
        if weights is not None and self.task != "detection":
            values = _nums(weights, "model.class_weights")
            if len(values) == self.num_classes:
                task.take("class_weights")
                loss_cfg["class_weights"] = values
            else:
                self.note(f"class_weights has {len(values)} values for {self.num_classes} "
                          "classes; not mapped")
        if loss_cfg:
            self.train["loss"] = loss_cfg
        if task.take("freeze_backbone"):
            self.model["freeze_backbone"] = True
        for key in ("freeze_decoder", "freeze_head"):
            if task.get(key):
                self.note(f"{key}: rsfm always trains the neck and head; not mapped")
        self.convert_optimizer()
        self.convert_scheduler()

    def _optimizer_source(self) -> tuple[str, Callable[[str], Any], str]:
        """(class name, getter that marks the key used, where) of the optimizer settings."""
        if self.cfg.get("optimizer") is not None:
            block = _Block(self.cfg, "optimizer")
            for key in ("lr", "optimizer", "optimizer_hparams"):
                self.task_block.take(key)  # overridden by the LightningCLI optimizer block
            return block.name, block.take, "optimizer.init_args"
        name = self.task_block.take("optimizer") or "Adam"
        hparams = "model.init_args.optimizer_hparams"

        def get(key: str) -> Any:
            if key == "lr":
                return self.task_block.take("lr", 0.001)
            return self.cfg.take(f"{hparams}.{key}")

        if self.cfg.get("model.init_args.optimizer") is None:
            self.note("no optimizer block: TerraTorch's task default is Adam with lr "
                      f"{self.task_block.get('lr', 0.001)}")
        return _short(name), get, hparams

    def convert_optimizer(self) -> None:
        name, get, where = self._optimizer_source()
        key = name.lower()
        opt: dict[str, Any] = {}
        if key in ("adamw", "adam"):
            opt["name"] = "adamw"
        elif key == "sgd":
            opt["name"] = "sgd"
        else:
            opt["name"] = "adamw"
            self.note(f"optimizer {name!r} is not an rsfm optimizer; using AdamW with its lr "
                      "and weight_decay")
        lr = get("lr")
        if lr is None:
            lr = 0.001
            self.note("optimizer without lr: torch's default 0.001 written out")
        opt["lr"] = _num(lr, f"{where}.lr")
        wd = get("weight_decay")
        opt["weight_decay"] = _num(wd, f"{where}.weight_decay") if wd is not None else \
            _TORCH_WD.get(key, 0.0)
        if key == "adam" and opt["weight_decay"] > 0:
            self.note("Adam -> AdamW: Adam's L2 weight decay becomes AdamW's decoupled decay "
                      f"({opt['weight_decay']})")
        betas = get("betas")
        if betas is not None:
            pair = _nums(betas, f"{where}.betas")
            if pair != [0.9, 0.999]:
                opt["betas"] = pair
        momentum = get("momentum")
        if momentum is not None and opt["name"] == "sgd":
            opt["momentum"] = _num(momentum, f"{where}.momentum")
        elif opt["name"] == "sgd":
            opt["momentum"] = 0.0  # torch's SGD default (rsfm's is 0.9)
        self.lr = opt["lr"]
        self.train["optimizer"] = opt

    def convert_scheduler(self) -> None:
        cfg = self.cfg
        if cfg.get("lr_scheduler") is not None:
            block = _Block(cfg, "lr_scheduler")
            name, get, where = block.name, block.take, "lr_scheduler.init_args"
            for key in ("scheduler", "scheduler_hparams"):
                self.task_block.take(key)
        elif self.task_block.get("scheduler") is not None:
            name = _short(self.task_block.take("scheduler"))
            hp = "model.init_args.scheduler_hparams"
            where = hp

            def get(key: str) -> Any:
                return cfg.take(f"{hp}.{key}")
        else:
            self.train["scheduler"] = {"name": "constant"}  # Lightning without a scheduler
            return
        sched: dict[str, Any] = {}
        epochs = cfg.get("trainer.max_epochs")
        if name == "CosineAnnealingLR":
            sched["name"] = "cosine"
            t_max = get("T_max")
            if t_max is not None and epochs is not None and \
                    _num(t_max, f"{where}.T_max") != _num(epochs, "trainer.max_epochs"):
                self.note(f"CosineAnnealingLR T_max {t_max} != max_epochs {epochs}: rsfm's cosine "
                          "decays once over the whole run (train.epochs)")
            self._eta_min(get, where, sched)
        elif name == "LinearWarmupCosineAnnealingLR":
            sched["name"] = "cosine"
            warm = get("warmup_epochs")
            if warm is not None:
                sched["warmup_epochs"] = _num(warm, f"{where}.warmup_epochs")
            cycle = get("max_epochs")
            if cycle is not None and (epochs is None or
                                      _int(cycle, f"{where}.max_epochs") != int(epochs)):
                self.note(f"LinearWarmupCosineAnnealingLR max_epochs {cycle} != trainer.max_epochs "
                          f"{epochs}: rsfm's cosine decays once over the whole run (train.epochs)")
            self._eta_min(get, where, sched)
            start = get("warmup_start_lr")
            if start:
                self.note(f"warmup_start_lr {start}: rsfm warms up from 0")
        elif name == "ConstantLR" or name == "LinearLR":
            sched["name"] = "constant"
            start = get("start_factor") if name == "LinearLR" else get("factor")
            iters = get("total_iters")
            end = get("end_factor") if name == "LinearLR" else None
            if start is not None and _num(start, f"{where}.start_factor") < 1 and (
                    end is None or _num(end, f"{where}.end_factor") == 1.0):
                sched["warmup_epochs"] = _num(iters if iters is not None else 5, f"{where}.total_iters")
                self.note(f"{name} -> linear warmup over {sched['warmup_epochs']} epochs (rsfm "
                          "warms up from 0, not from start_factor x lr), then a constant lr")
        elif name == "PolynomialLR":
            sched["name"] = "linear"
            self.note("PolynomialLR -> linear decay over the whole run (power and total_iters "
                      "not mapped)")
            self._unmap_block(where)
        else:
            sched["name"] = "cosine"
            what = {"ReduceLROnPlateau": "lowers the lr when the monitored metric stalls",
                    "StepLR": "drops the lr in steps", "MultiStepLR": "drops the lr at milestones",
                    "ExponentialLR": "decays the lr exponentially",
                    "CosineAnnealingWarmRestarts": "restarts cosine cycles"}.get(
                name, "has no rsfm equivalent")
            self.note(f"lr_scheduler {name} ({what}) has no rsfm equivalent (rsfm schedules per "
                      "step); using cosine decay over train.epochs. Set train.scheduler.name: "
                      "constant to keep the lr fixed")
            self._unmap_block(where)
        self.train["scheduler"] = sched

    def _unmap_block(self, where: str) -> None:
        for prefix in (where, where.replace("init_args", "dict_kwargs")):
            for path, _ in self.cfg.leaves:
                if path.startswith(prefix + "."):
                    self.cfg.used.discard(path)

    def _eta_min(self, get: Callable[[str], Any], where: str, sched: dict[str, Any]) -> None:
        eta = get("eta_min")
        if eta is not None:
            ratio = _num(eta, f"{where}.eta_min") / self.lr if self.lr > 0 else 0.0
            if ratio:
                sched["min_lr_ratio"] = min(1.0, float(f"{ratio:.12g}"))

    # ------------------------------------------------------------------------------- trainer
    def convert_trainer(self) -> None:
        cfg, train = self.cfg, self.train
        seed = cfg.take("seed_everything")
        if isinstance(seed, bool):
            if seed:
                self.note("seed_everything: true (a random seed): rsfm seeds with train.seed "
                          "(default 42)")
            else:
                self.note("seed_everything: false: rsfm always seeds (train.seed)")
        elif seed is not None:
            train["seed"] = _int(seed, "seed_everything")
        epochs = cfg.take("trainer.max_epochs")
        if epochs is not None and _int(epochs, "trainer.max_epochs") > 0:
            train["epochs"] = _int(epochs, "trainer.max_epochs")
        elif epochs is None:
            self.note("trainer.max_epochs is not set (Lightning then stops after 1000 epochs); "
                      "rsfm's default train.epochs applies")
        else:
            self.note(f"trainer.max_epochs {epochs} (no epoch limit): rsfm's default train.epochs "
                      "applies; use train.max_steps or train.max_time to bound the run")
        steps = cfg.get("trainer.max_steps")
        if steps is not None and _int(steps, "trainer.max_steps") > 0:
            train["max_steps"] = _int(cfg.take("trainer.max_steps"), "trainer.max_steps")
        max_time = cfg.get("trainer.max_time")
        if max_time is not None:
            seconds = _lightning_duration(max_time)
            if seconds is None:
                self.note(f"trainer.max_time {max_time!r} is not a duration rsfm can read; not mapped")
            else:
                cfg.use("trainer.max_time")
                train["max_time"] = _clean(seconds)
        accum = cfg.take("trainer.accumulate_grad_batches")
        if accum is not None:
            train["grad_accum_steps"] = _int(accum, "trainer.accumulate_grad_batches")
        clip = cfg.take("trainer.gradient_clip_val")
        train["clip_grad_norm"] = _num(clip, "trainer.gradient_clip_val") if clip else None
        if cfg.get("trainer.gradient_clip_algorithm") == "value" and clip:
            self.note("gradient_clip_algorithm 'value' -> rsfm clips the gradient norm")
            cfg.use("trainer.gradient_clip_algorithm")
        precision = cfg.get("trainer.precision")
        if precision is not None:
            mp = _PRECISION.get(str(precision).lower())
            if mp is not None:
                cfg.use("trainer.precision")
                train["mixed_precision"] = mp
                if str(precision).endswith("-true") and mp != "no":
                    self.note(f"precision {precision} (pure half precision) -> mixed precision "
                              f"{mp} (fp32 weights)")
            else:
                self.note(f"trainer.precision {precision!r} has no rsfm equivalent; not mapped")
        else:  # Lightning's default; rsfm's (null) would defer to `accelerate config`
            train["mixed_precision"] = "no"
            self.note("trainer.precision is not set: TerraTorch trains in fp32 "
                      "(train.mixed_precision: 'no')")
        det = cfg.take("trainer.deterministic")
        if det:
            train["deterministic"] = True
        if cfg.get("trainer.enable_progress_bar") is False:
            cfg.use("trainer.enable_progress_bar")
            train["progress"] = False
        every = cfg.take("trainer.log_every_n_steps")
        if every is not None:
            train["log_every"] = _int(every, "trainer.log_every_n_steps")
        val_every = cfg.take("trainer.check_val_every_n_epoch")
        if val_every is not None and _int(val_every, "trainer.check_val_every_n_epoch") != 1:
            self.eval["every"] = _int(val_every, "trainer.check_val_every_n_epoch")
        for key in ("accelerator", "strategy", "devices", "num_nodes"):
            if not _no_op(f"trainer.{key}", cfg.get(f"trainer.{key}")) and cfg.get(f"trainer.{key}") is not None:
                self.note("trainer accelerator/strategy/devices/num_nodes: rsfm takes devices "
                          "from accelerate (`accelerate config`, `accelerate launch`)")
        self._logger()
        self._callbacks()

    def _logger(self) -> None:
        cfg = self.cfg
        logger = cfg.get("trainer.logger")
        if logger is None:
            return
        if logger is False:
            cfg.use("trainer.logger")
            return
        if logger is True:  # Lightning's default logger: TensorBoard
            cfg.use("trainer.logger")
            self.output["trackers"] = ["tensorboard"]
            return
        loggers = logger if isinstance(logger, list) else [logger]
        trackers: list[str] = []
        for i, item in enumerate(loggers):
            path = f"trainer.logger[{i}]" if isinstance(logger, list) else "trainer.logger"
            name = _short(item.get("class_path") if isinstance(item, Mapping) else item)
            tracker = _TRACKERS.get(name)
            if tracker is None and name != "CSVLogger":
                self.note(f"logger {name!r} has no rsfm tracker; not mapped")
                continue
            cfg.use(f"{path}.class_path" if isinstance(item, Mapping) else path)
            if tracker is not None:
                trackers.append(tracker)
            else:
                self.note("CSVLogger: rsfm always writes metrics.csv and metrics.jsonl in the run "
                          "folder")
            if isinstance(item, Mapping) and item.get("init_args"):
                self.note("logger settings (save_dir, name, ...): rsfm logs into the run folder "
                          "(output.dir); not mapped")
        if trackers:
            self.output["trackers"] = trackers

    def _callbacks(self) -> None:
        cfg = self.cfg
        callbacks = cfg.get("trainer.callbacks")
        if isinstance(callbacks, Mapping):
            callbacks = [callbacks]
            paths = ["trainer.callbacks"]
        elif isinstance(callbacks, list):
            paths = [f"trainer.callbacks[{i}]" for i in range(len(callbacks))]
        else:
            callbacks, paths = [], []
        checkpoint_monitor: tuple[Any, Any, str] | None = None
        stop_monitor: tuple[Any, Any, str] | None = None
        for path, cb in zip(paths, callbacks):
            if not isinstance(cb, Mapping):
                continue
            name = _short(cb.get("class_path"))
            if name in ("RichProgressBar", "TQDMProgressBar", "ProgressBar"):
                cfg.use(path)
            elif name == "LearningRateMonitor":
                cfg.use(path)
                self.note("LearningRateMonitor: rsfm logs the lr with every metrics row")
            elif name == "EarlyStopping":
                cfg.use(f"{path}.class_path")
                patience = cfg.take(f"{path}.init_args.patience", 3)
                stop: dict[str, Any] = {"patience": max(1, _int(patience, f"{path}.patience"))}
                delta = cfg.take(f"{path}.init_args.min_delta")
                if delta:
                    stop["min_delta"] = abs(_num(delta, f"{path}.min_delta"))
                self.train["early_stopping"] = stop
                stop_monitor = (cfg.take(f"{path}.init_args.monitor"),
                                cfg.take(f"{path}.init_args.mode"), path)
            elif name in ("ModelCheckpoint", "StateDictAwareModelCheckpoint"):
                cfg.use(f"{path}.class_path")
                checkpoint_monitor = (cfg.take(f"{path}.init_args.monitor"),
                                      cfg.take(f"{path}.init_args.mode"), path)
                self.note(f"{name}: rsfm keeps the best and the last weights in the run folder "
                          "(dirpath, filename, save_top_k... not mapped)")
        blocks = [b for b in ("ModelCheckpoint", "StateDictModelCheckpoint")
                  if isinstance(cfg.get(b), Mapping)]  # TerraTorch's CLI-added checkpointing
        for block in blocks:
            monitor = cfg.get(f"{block}.monitor")
            if checkpoint_monitor is None and monitor is not None:
                checkpoint_monitor = (monitor, cfg.get(f"{block}.mode"), block)
            if checkpoint_monitor is not None and monitor == checkpoint_monitor[0]:
                cfg.use(f"{block}.monitor", f"{block}.mode")
        if blocks:
            self.note(f"{' and '.join(blocks)}: rsfm keeps the best and the last weights in the run "
                      "folder (filename, save_top_k... not mapped)")
        self._eval_metric(checkpoint_monitor, stop_monitor)

    def _eval_metric(self, checkpoint: tuple[Any, Any, str] | None,
                     stop: tuple[Any, Any, str] | None) -> None:

        chosen = checkpoint if checkpoint and checkpoint[0] else stop
        if not chosen or not chosen[0]:
            return
        monitor, mode, where = chosen
        metric = self._metric(str(monitor))
        if metric is None or metric not in TASK_METRICS[self.task]:
            self.note(f"monitor {monitor!r} ({where}) is not an rsfm {self.task} metric "
                      f"{list(TASK_METRICS[self.task])}; eval.metric keeps its default")
            self.cfg.used.discard(f"{where}.init_args.monitor" if where.startswith("trainer")
                                  else f"{where}.monitor")
            return
        self.eval["metric"] = metric
        inferred = "min" if metric == "loss" else "max"
        if mode and str(mode) != inferred:
            self.eval["mode"] = str(mode)
        if stop and checkpoint and stop[0] and checkpoint[0] and \
                self._metric(str(stop[0])) != metric:
            self.note(f"EarlyStopping monitored {stop[0]!r} but checkpoints {checkpoint[0]!r}: "
                      f"rsfm uses one eval.metric ({metric}) for both")

    @staticmethod
    def _metric(monitor: str) -> str | None:
        key = monitor.strip()
        for prefix in ("val/", "val_", "validation/", "val-"):
            if key.lower().startswith(prefix):
                key = key[len(prefix):]
                break
        return _METRICS.get(key.lower())

    # -------------------------------------------------------------------------------- extras
    def convert_extras(self) -> None:
        self.path_notes()
        root = self.cfg.get("trainer.default_root_dir")
        if root is not None:
            self.note(f"trainer.default_root_dir {root!r}: rsfm writes the run to output.dir "
                      "(runs/{name}, relative to the working directory); set output.dir to keep "
                      "runs there")
        model = self.model
        if "neck" in model and model["neck"] == {}:
            del model["neck"]
        if self.data.get("classes") is None:
            self.data.pop("classes", None)


# ------------------------------------------------------------------------------------ public
_SECTIONS = ("data", "model", "trainer", "optimizer", "lr_scheduler")


def _follow_section_files(raw: Mapping[str, Any], config_dir: Path) -> tuple[dict[str, Any],
                                                                           list[str]]:
    """Sections given as the path of another YAML file (``data: ../datamodules/x.yaml``, which
    LightningCLI loads as that section) replaced by the file's mapping, with one note each."""
    import yaml

    out, notes = dict(raw), []
    for section in _SECTIONS:
        value = raw.get(section)
        if not (isinstance(value, str) and value.strip().endswith((".yaml", ".yml", ".json"))):
            continue
        path = Path(os.path.expanduser(value.strip()))
        path = path if path.is_absolute() else config_dir / path
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{section} refers to the file {value!r}, which was not found (looked "
                              f"for '{path}'); LightningCLI reads that file as the {section} "
                              "section: put it there, or copy its class_path and init_args under "
                              f"{section}:.") from None
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{section}: cannot read the file {value!r}: {err}") from None
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{section}: the file {value!r} does not hold a mapping "
                              "({class_path, init_args}).")
        out[section] = loaded
        notes.append(f"{section}: read from the file {value} (LightningCLI loads it as the "
                     f"{section} section); its relative paths are taken as relative to the "
                     "config's folder too (TerraTorch reads them from the working directory)")
    return out, notes


def convert_terratorch(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    recipe_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    absolute_paths: bool = False,
) -> ConversionResult:
    """Convert a TerraTorch (LightningCLI) fine-tuning config into an rsfm recipe mapping.

    Args:
        source: The config YAML file, or its parsed mapping.
        recipe_dir: Folder the recipe will be written to: relative data paths (relative to the
            config file's folder) are rewritten relative to it. Default: the config's folder
            (paths unchanged); for a mapping, relative paths are kept as they are.
        name: Recipe name (default: the config file's stem, or ``terratorch``).
        absolute_paths: Write relative data paths as absolute paths (resolved against the
            config's folder) instead, for a recipe whose folder is unknown (stdout).

    Returns:
        A :class:`ConversionResult`; its ``recipe`` passes :func:`rsfm.recipe.validate_recipe`.

    Raises:
        ConfigError: Unreadable YAML, not a TerraTorch config, a task rsfm does not train
            (``not supported: regression``), a missing required value, or a value of the wrong
            type (the message names the key).
        UnknownNameError: A backbone without an rsfm card (the message lists close matches).
    """
    import yaml


    config_dir: Path | None = None
    where: str | None = None
    if isinstance(source, Mapping):
        raw: Any = source
    else:
        path = Path(source)
        text = read_text_file(path, "TerraTorch config")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"Cannot read TerraTorch config '{path}': {err}") from None
        config_dir = path.resolve().parent
        where = str(path)
        name = name or path.stem
    if not isinstance(raw, Mapping):
        raise ConfigError(f"A TerraTorch config must be a YAML mapping, got {type(raw).__name__}"
                          + (f" ('{where}')." if where else "."))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "terratorch").strip("_") or "terratorch"
    followed: list[str] = []
    try:
        if config_dir is not None:
            raw, followed = _follow_section_files(raw, config_dir)
    except ConfigError as err:
        raise ConfigError(f"TerraTorch config '{where}': {err}") from None
    converter = _Converter(raw, config_dir,
                           Path(recipe_dir).resolve() if recipe_dir is not None else None, name,
                           absolute_paths)
    converter.notes.extend(followed)
    try:
        try:
            result = converter.run()
        except RsfmError:
            raise
        except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as err:
            # a value of a type no TerraTorch class accepts there (a mapping for a number, ...)
            last = converter.cfg.last
            raise ConfigError(f"a value has a type the converter cannot read (last key read: "
                              f"{last!r} = {converter.cfg.get(last)!r}; {type(err).__name__}: "
                              f"{err}). Check that key against the TerraTorch class it "
                              "configures.") from None
    except ConfigError as err:  # name the file: the key paths inside are the config's
        if where is None:
            raise
        raise ConfigError(f"TerraTorch config '{where}': {err}", key=err.key) from None
    result.source = where
    try:
        validate_recipe(result.recipe)
    except ConfigError as err:
        raise ConfigError(f"The recipe converted from {where or 'the TerraTorch config'} does not "
                          f"validate (please report this with the config):\n{err}") from None
    return result
