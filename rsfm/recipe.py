"""Training recipes: one YAML file with ``model``, ``data``, ``train``, ``lora``, ``eval``, ``output``.

The sections are frozen stdlib dataclasses (``model`` is :class:`rsfm.config.ModelConfig`);
pydantic validates them only here, at the YAML boundary. Every error names the YAML path of the key
(``train.optimizer.lr``), the bad value, and close matches for misspelt keys and names.

Extras on top of plain YAML:

- ``include: file.yaml`` (or a list) in any mapping merges that file into the mapping (paths are
  relative to the including file; keys written next to ``include`` win), e.g.
  ``normalization: {mode: stats, include: stats/sen1floods11_s1.yaml}``.
- Command-line overrides ``a.b.c=value`` (value parsed as YAML): ``train.epochs=3``.
- Relative data paths are resolved against the recipe file's directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from rsfm.config import ModelConfig
from rsfm.errors import ConfigError, RsfmError

__all__ = [
    "DataConfig",
    "DataSource",
    "EarlyStoppingConfig",
    "EvalConfig",
    "FreezeConfig",
    "LoraConfig",
    "LossConfig",
    "NormalizationConfig",
    "OptimizerConfig",
    "OutputConfig",
    "Recipe",
    "SchedulerConfig",
    "TrainConfig",
    "UnfreezeStep",
    "apply_overrides",
    "load_recipe",
    "recipe_schema",
    "recipe_to_dict",
    "recipe_to_yaml",
    "schema_json",
    "validate_recipe",
]

_FORBID: dict[str, Any] = {"extra": "forbid"}
METRICS = ("miou", "macro_f1", "accuracy", "loss", "map", "map50")


@dataclass(frozen=True)
class DataSource:
    """Where one split's files are: folders, a manifest CSV, or both plus a split filter."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    images: str | tuple[str, ...] | None = None
    labels: str | tuple[str, ...] | None = None
    manifest: str | None = None
    split: str | None = None
    split_file: str | None = None


@dataclass(frozen=True)
class NormalizationConfig:
    """How raw pixels become model input.

    ``card``: the backbone's pretraining statistics (mean/std picked by band name);
    ``stats``: ``mean``/``std`` given here (typically ``include:``-d from ``rsfm stats`` output);
    ``per_tile``: per tile and band standardisation; ``minmax``: per tile to [0, 1]; ``none``.
    ``value_scale`` multiplies raw values first (``card`` uses the card's ``1 / divide_by``).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    mode: Literal["card", "stats", "per_tile", "minmax", "none"] = "card"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    value_scale: float | None = None
    bands: tuple[str, ...] | None = None  # the bands mean/std belong to (stats files say it)
    # informative keys written by ``rsfm stats`` (accepted so its YAML can be included as is)
    count: int | None = None
    min: tuple[float, ...] | None = None
    max: tuple[float, ...] | None = None
    files: int | None = None


@dataclass(frozen=True)
class DataConfig:
    """The ``data:`` section. ``bands``/``classes`` default to the ``model:`` section's."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    train: DataSource
    val: DataSource | None = None
    test: DataSource | None = None
    kind: Literal["chips", "scenes", "class_folders"] = "chips"  # class_folders: images/<class>/
    val_fraction: float = 0.0  # hold out this share of train (seeded) when val is absent
    val_block_size: float | None = None  # ... as spatial blocks of this size (map units)
    classes: tuple[str, ...] | None = None
    bands: tuple[str, ...] | None = None
    file_bands: tuple[str, ...] | None = None
    sensor: str | None = None
    nodata: float | None = None
    ignore_index: int = -1
    label_map: dict[int, int] | None = None
    label_ignore_values: tuple[int, ...] = ()
    image_suffix: str = ""
    label_suffix: str = ""
    color_map: dict[str, int] | None = None  # colour masks: "#RRGGBB" -> class id
    label_format: Literal["raster", "voc", "yolo", "coco"] | None = None
    tile_size: int | None = None  # scenes: tile side; chips: informative (inference tiling)
    stride: int | None = None
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    augment: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    eval_batch_size: int | None = None
    num_workers: int = 0
    skip_nodata: bool = True
    missing_labels: Literal["error", "skip"] = "error"  # chips: images without a label file


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW or SGD; ``layer_decay`` < 1 gives ViT blocks layer-wise learning-rate decay."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    layer_decay: float | None = None
    backbone_lr_mult: float = 1.0


@dataclass(frozen=True)
class SchedulerConfig:
    """Per-step schedule: linear warmup then ``cosine`` / ``linear`` decay, or ``constant``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    name: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    """Segmentation/classification loss (detection models return torchvision's own losses)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    name: Literal["ce", "dice", "focal", "ce+dice", "focal+dice"] = "ce"
    class_weights: tuple[float, ...] | None = None
    dice_weight: float = 1.0
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class UnfreezeStep:
    """At the start of ``epoch`` (0-based), make ``modules`` trainable.

    Entries: ``backbone`` (all of it), ``layer3``/``layer4`` (ResNet stages), ``blocks.8-11``
    (ViT blocks, inclusive range), ``last_blocks:4`` / ``last_stages:2``, or any module path.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    epoch: int
    modules: tuple[str, ...] = ("backbone",)
    lr_mult: float = 1.0


@dataclass(frozen=True)
class FreezeConfig:
    """Backbone freezing (``model.freeze_backbone`` also starts frozen) and progressive unfreezing."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    backbone: bool = False
    unfreeze: tuple[UnfreezeStep, ...] = ()


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when ``eval.metric`` has not improved by ``min_delta`` for ``patience`` evaluations."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    patience: int = 5
    min_delta: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """The ``train:`` section."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps in total
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    grad_accum_steps: int = 1
    clip_grad_norm: float | None = 1.0
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None  # None: accelerate config
    seed: int = 42
    deterministic: bool = False
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    early_stopping: EarlyStoppingConfig | None = None
    resume: bool | Literal["auto"] = False
    checkpoint_every: int = 1  # epochs between resumable checkpoints
    keep_checkpoints: int = 1
    log_every: int = 10
    progress: bool = True


@dataclass(frozen=True)
class LoraConfig:
    """LoRA through peft. ``target_modules`` None = the backbone card's ``lora_targets``."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    bias: Literal["none", "all", "lora_only"] = "none"


@dataclass(frozen=True)
class EvalConfig:
    """Validation: which metric picks the best checkpoint (``mode`` inferred from the metric)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    metric: Literal["miou", "macro_f1", "accuracy", "loss", "map", "map50"] | None = None
    mode: Literal["max", "min"] | None = None
    every: int = 1
    score_threshold: float = 0.05  # detection


@dataclass(frozen=True)
class OutputConfig:
    """Where the run goes. ``dir`` may use ``{name}``; relative to the working directory."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    dir: str = "runs/{name}"
    overwrite: bool = False
    plots: bool = True
    tensorboard: bool = True
    push_to_hub: str | None = None
    hub_private: bool = True
    hub_datasets: tuple[str, ...] = ()  # Hub dataset ids for the model card metadata


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    model: ModelConfig
    data: DataConfig
    name: str = "run"
    description: str = ""
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: str | None = None  # the file the recipe came from (set by load_recipe)

    @property
    def metric(self) -> str:
        """The validation metric that selects the best checkpoint."""
        if self.eval.metric:
            return self.eval.metric
        return "map" if self.model.task == "detection" else (
            "accuracy" if self.model.task == "classification" else "miou")

    @property
    def metric_mode(self) -> str:
        """``max`` or ``min``."""
        return self.eval.mode or ("min" if self.metric == "loss" else "max")

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names (data section, else model section, else ``class_0..``)."""
        names = self.data.classes or self.model.classes
        return tuple(names) if names else tuple(f"class_{i}" for i in range(self.model.num_classes))

    def output_dir(self) -> Path:
        """The run directory with ``{name}`` filled in."""
        return Path(self.output.dir.replace("{name}", self.name))


# ---------------------------------------------------------------------------------- YAML loading
def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Recipe file not found: '{path}'.") from None
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"Cannot read YAML '{path}': {err}") from None


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, recursively for nested mappings (lists are replaced)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_includes(node: Any, base_dir: Path, where: str, seen: tuple[Path, ...]) -> Any:
    if isinstance(node, list):
        return [_resolve_includes(v, base_dir, f"{where}[{i}]", seen) for i, v in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    node = dict(node)
    merged: dict[str, Any] = {}
    if "include" in node:
        incs = node.pop("include")
        incs = [incs] if isinstance(incs, str) else incs
        if not isinstance(incs, list) or not all(isinstance(i, str) for i in incs):
            raise ConfigError(f"{where or '<root>'}.include: expected a file name or a list of "
                              f"file names, got {incs!r}.")
        for inc in incs:
            path = (base_dir / inc).resolve()
            if path in seen:
                raise ConfigError(f"{where or '<root>'}.include: '{inc}' includes itself "
                                  f"({' -> '.join(str(p) for p in (*seen, path))}).")
            data = _read_yaml(path)
            if data is None:
                data = {}
            if not isinstance(data, Mapping):
                raise ConfigError(f"Included file '{path}' must be a YAML mapping, got "
                                  f"{type(data).__name__}.")
            data = _resolve_includes(data, path.parent, where, (*seen, path))
            merged = deep_merge(merged, data)
    rest = {k: _resolve_includes(v, base_dir, f"{where}.{k}" if where else str(k), seen)
            for k, v in node.items()}
    return deep_merge(merged, rest)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML: ``3``, ``[1, 2]``, ``null``)."""
    import yaml

    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override {item!r} must look like key.path=value "
                              "(e.g. train.epochs=3).")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"Override {item!r} has an empty key.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"Override {item!r}: '{'.'.join(parts[: i + 1])}' is "
                                  f"{nxt!r}, not a section.")
            node = nxt
        node[parts[-1]] = value
    return data


_PATH_KEYS = ("images", "labels", "manifest", "split_file")


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    """Make the data sources' relative paths absolute (relative to the recipe's directory)."""
    section = data.get("data")
    if not isinstance(section, dict):
        return

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value) and "://" not in value:
            return str((base_dir / value).resolve())
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    for split in ("train", "val", "test"):
        src = section.get(split)
        if isinstance(src, dict):
            for key in _PATH_KEYS:
                if key in src:
                    src[key] = fix(src[key])
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("weights"), str):
        w = model["weights"]
        if not w.startswith("hf://") and not os.path.isabs(w) and (base_dir / w).exists():
            model["weights"] = str((base_dir / w).resolve())


# ---------------------------------------------------------------------------------- validation
def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001  # pragma: no cover - forward refs that cannot resolve
        return {}


def _dataclasses_in(tp: Any) -> list[Any]:
    if dataclasses.is_dataclass(tp):
        return [tp]
    out = []
    for arg in typing.get_args(tp):
        out.extend(_dataclasses_in(arg))
    return out


def _fields_at(loc: Sequence[Any]) -> list[str]:
    """Field names of the dataclass that holds the key at ``loc`` (for close matches)."""
    classes: list[Any] = [Recipe]
    for part in loc[:-1]:
        nxt: list[Any] = []
        for cls in classes:
            hint = _hints(cls).get(str(part)) if isinstance(part, str) else None
            if hint is None and not isinstance(part, str):
                nxt.append(cls)  # list index: stay on the element type
                continue
            if hint is not None:
                nxt.extend(_dataclasses_in(hint))
                for arg in typing.get_args(hint):  # tuple[UnfreezeStep, ...]
                    nxt.extend(_dataclasses_in(arg))
        classes = nxt or classes
        if not nxt:
            return []
    names: list[str] = []
    for cls in classes:
        names += [f.name for f in dataclasses.fields(cls) if f.name not in names]
    return names


def _fmt_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean_loc(loc: Sequence[Any]) -> list[Any]:
    # pydantic inserts union member tags ("DataSource", "tuple[...]", "function-after[...]")
    keep = []
    for part in loc:
        if isinstance(part, str) and (part[:1].isupper() or "[" in part or part in (
                "str", "int", "float", "bool", "none", "literal['auto']", "dict")):
            continue
        keep.append(part)
    return keep


def _format_errors(err: Any) -> str:
    lines = []
    seen = set()
    for e in err.errors():
        loc = _clean_loc(e["loc"])
        path = _fmt_loc(loc)
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            key = str(loc[-1]) if loc else "?"
            close = difflib.get_close_matches(key, _fields_at(loc), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            allowed = _fields_at(loc)
            line = (f"{path}: unknown key (value {e.get('input')!r}).{hint} "
                    f"Allowed keys here: {allowed}.")
        elif e["type"] == "literal_error":
            expected = e.get("ctx", {}).get("expected", "")
            options = [s.strip().strip("'") for s in str(expected).replace(" or ", ", ").split(",")]
            close = difflib.get_close_matches(str(e.get("input")), options, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            line = f"{path}: {e['input']!r} is not allowed; expected {expected}.{hint}"
        else:
            shown = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
            line = f"{path}: {e['msg']}{shown}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return "Invalid recipe:\n  " + "\n  ".join(lines)


def _adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(Recipe)


def _check_semantics(recipe: Recipe) -> None:
    """Checks pydantic cannot express: names that must exist, consistent sizes."""
    from rsfm.config import TASKS

    m = recipe.model
    try:
        from rsfm.registry import backbone_card

        backbone_card(m.backbone)
    except RsfmError as err:
        raise ConfigError(f"model.backbone: {err}") from None
    if m.head not in TASKS[m.task]:
        raise ConfigError(f"model.head: {m.head!r} is not a {m.task} head; choose one of "
                          f"{list(TASKS[m.task])}.")
    if m.num_classes < 1:
        raise ConfigError(f"model.num_classes: must be >= 1 (got {m.num_classes}).")
    classes = recipe.data.classes or m.classes
    if classes is not None and len(classes) != m.num_classes:
        raise ConfigError(f"data.classes: {len(classes)} names {list(classes)} but "
                          f"model.num_classes is {m.num_classes}.")
    t = recipe.train
    checks = [
        (t.epochs >= 1, "train.epochs", t.epochs, "must be >= 1"),
        (t.optimizer.lr > 0, "train.optimizer.lr", t.optimizer.lr, "must be > 0"),
        (t.optimizer.weight_decay >= 0, "train.optimizer.weight_decay", t.optimizer.weight_decay,
         "must be >= 0"),
        (t.optimizer.layer_decay is None or 0 < t.optimizer.layer_decay <= 1,
         "train.optimizer.layer_decay", t.optimizer.layer_decay, "must be in (0, 1]"),
        (t.grad_accum_steps >= 1, "train.grad_accum_steps", t.grad_accum_steps, "must be >= 1"),
        (t.clip_grad_norm is None or t.clip_grad_norm > 0, "train.clip_grad_norm",
         t.clip_grad_norm, "must be > 0 or null"),
        (t.max_steps is None or t.max_steps >= 1, "train.max_steps", t.max_steps, "must be >= 1"),
        (0 <= t.scheduler.min_lr_ratio <= 1, "train.scheduler.min_lr_ratio",
         t.scheduler.min_lr_ratio, "must be in [0, 1]"),
        (t.scheduler.warmup_epochs >= 0, "train.scheduler.warmup_epochs",
         t.scheduler.warmup_epochs, "must be >= 0"),
        (t.checkpoint_every >= 1, "train.checkpoint_every", t.checkpoint_every, "must be >= 1"),
        (t.keep_checkpoints >= 1, "train.keep_checkpoints", t.keep_checkpoints, "must be >= 1"),
        (recipe.data.batch_size >= 1, "data.batch_size", recipe.data.batch_size, "must be >= 1"),
        (0 <= recipe.data.val_fraction < 1, "data.val_fraction", recipe.data.val_fraction,
         "must be in [0, 1)"),
        (recipe.eval.every >= 1, "eval.every", recipe.eval.every, "must be >= 1"),
    ]
    if t.loss.class_weights is not None:
        checks.append((len(t.loss.class_weights) == m.num_classes, "train.loss.class_weights",
                       list(t.loss.class_weights), f"needs {m.num_classes} values (one per class)"))
    if recipe.lora is not None:
        checks += [(recipe.lora.r >= 1, "lora.r", recipe.lora.r, "must be >= 1"),
                   (0 <= recipe.lora.dropout < 1, "lora.dropout", recipe.lora.dropout,
                    "must be in [0, 1)")]
    for step in t.freeze.unfreeze:
        checks.append((0 <= step.epoch < t.epochs, "train.freeze.unfreeze[].epoch", step.epoch,
                       f"must be in [0, {t.epochs})"))
    metric = recipe.metric
    task_metrics = {"segmentation": ("miou", "macro_f1", "accuracy", "loss"),
                    "classification": ("miou", "macro_f1", "accuracy", "loss"),
                    "detection": ("map", "map50", "loss")}[m.task]
    checks.append((metric in task_metrics, "eval.metric", metric,
                   f"is not a {m.task} metric; choose one of {list(task_metrics)}"))
    norm = recipe.data.normalization
    if norm.mode == "stats":
        checks.append((norm.mean is not None and norm.std is not None,
                       "data.normalization", norm.mode,
                       "mode 'stats' needs mean and std (e.g. include: a stats YAML)"))
    if (norm.mean is None) != (norm.std is None):
        checks.append((False, "data.normalization", "mean/std", "give both mean and std"))
    if norm.mean is not None and norm.std is not None:
        checks.append((len(norm.mean) == len(norm.std), "data.normalization.std",
                       list(norm.std), f"needs {len(norm.mean)} values like mean"))
    for ok, path, value, msg in checks:
        if not ok:
            raise ConfigError(f"Invalid recipe:\n  {path}: {msg} (got {value!r}).")
    if recipe.data.augment:
        from rsfm.data.transforms import _KEYS

        for key in recipe.data.augment:
            if key not in _KEYS:
                close = difflib.get_close_matches(key, _KEYS, n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise ConfigError(f"Invalid recipe:\n  data.augment.{key}: unknown augmentation."
                                  f"{hint} Allowed: {list(_KEYS)}.")


def validate_recipe(data: Mapping[str, Any]) -> Recipe:
    """Validate a recipe mapping (already include-resolved) into a :class:`Recipe`.

    Raises:
        ConfigError: Every problem with its YAML path, the value, and close matches.
    """
    from pydantic import ValidationError

    if not isinstance(data, Mapping):
        raise ConfigError(f"A recipe must be a YAML mapping, got {type(data).__name__}.")
    try:
        recipe = _adapter().validate_python(dict(data))
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None
    _check_semantics(recipe)
    return recipe


def load_recipe(
    source: str | os.PathLike[str] | Mapping[str, Any] | Recipe,
    overrides: Sequence[str] = (),
) -> Recipe:
    """Read, include-resolve, override and validate a recipe.

    Args:
        source: A YAML file, a mapping (paths relative to the working directory), or a Recipe
            (returned as is when there are no overrides).
        overrides: ``key.path=value`` strings applied after includes.

    Raises:
        ConfigError: Missing file, bad YAML, or an invalid recipe (names the key path).
    """
    if isinstance(source, Recipe):
        if not overrides:
            return source
        source = recipe_to_dict(source)
    if isinstance(source, Mapping):
        base_dir = Path.cwd()
        data: Any = dict(source)
        where = None
    else:
        path = Path(source)
        if not path.exists() and not path.suffix:
            shipped = _shipped_recipe(str(source))
            if shipped is not None:
                path = shipped
        data = _read_yaml(path)
        if not isinstance(data, Mapping):
            raise ConfigError(f"Recipe '{path}' must be a YAML mapping, got {type(data).__name__}.")
        base_dir = path.resolve().parent
        where = str(path.resolve())
    data = _resolve_includes(data, base_dir, "", ())
    data = apply_overrides(data, overrides)
    _resolve_paths(data, base_dir)
    if where is not None and "source" not in data:
        data["source"] = where
    return validate_recipe(data)


def _shipped_recipe(name: str) -> Path | None:
    """``demo`` -> ``recipes/demo.yaml`` of a source checkout or the installed package."""
    root = Path(__file__).resolve().parents[1]
    for folder in (root / "recipes", Path(__file__).resolve().parent / "_recipes"):
        candidate = folder / f"{name}.yaml"
        if candidate.exists():
            return candidate
    return None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe as plain YAML/JSON-ready data (re-loadable by load_recipe)."""
    return _jsonable(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML text."""
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, allow_unicode=True)


def recipe_schema() -> dict[str, Any]:
    """JSON schema of a recipe (for editors: yaml-language-server ``$schema``)."""
    schema = _adapter().json_schema()
    schema.setdefault("title", "rsfm recipe")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    include = {"description": "YAML file(s) merged into this mapping (relative paths)",
               "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    for node in [schema, *schema.get("$defs", {}).values()]:
        if isinstance(node, dict) and "properties" in node:
            node["properties"]["include"] = include
    return schema


def schema_json() -> str:
    """:func:`recipe_schema` as indented JSON text."""
    return json.dumps(recipe_schema(), indent=2)
