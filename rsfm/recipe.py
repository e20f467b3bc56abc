"""Reading training recipes: YAML, ``include:``, overrides, paths, then one validation.

The sections are the frozen dataclasses of :mod:`rsfm.schema` (``model`` is
:class:`rsfm.config.ModelConfig`), validated by :func:`rsfm.validation.validate`: every error names
the YAML path of the key (``train.optimizer.lr``), the bad value, and close matches for misspelt
keys and names.

Extras on top of plain YAML:

- ``include: file.yaml`` (or a list) in any mapping merges that file into the mapping (paths are
  relative to the including file; keys written next to ``include`` win), e.g.
  ``normalization: {mode: stats, include: stats/sen1floods11_s1.yaml}``.
- Command-line overrides ``a.b.c=value`` (value parsed as YAML): ``train.epochs=3``.
- Relative data paths are resolved against the recipe file's directory.
- ``data.kind: arcgis`` (or a ``kind: chips`` image folder holding ``esri_model_definition.emd``):
  the ArcGIS export fills the data keys the recipe does not write (classes, label values, bands,
  statistics, tile size; see :func:`rsfm.data.arcgis.recipe_defaults`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsfm.cards import get_card
from rsfm.data import arcgis
from rsfm.errors import ConfigError, RsfmError
from rsfm.io import read_text
from rsfm.modelcheck import check_training_tiles
from rsfm.schema import Recipe
from rsfm.validation import dump, validate

log = logging.getLogger(__name__)

__all__ = [
    "apply_overrides",
    "deep_merge",
    "load_recipe",
    "read_text_file",
    "recipe_schema",
    "recipe_to_dict",
    "recipe_to_yaml",
    "schema_json",
    "training_tile",
    "validate_recipe",
]

# ---------------------------------------------------------------------------------- YAML loading
def _check_unique_keys(node: Any) -> None:
    """Reject a key written twice in one mapping of a composed YAML node tree (plain YAML keeps
    the last silently: a second ``train:`` section would replace the first).

    Raises:
        yaml.MarkedYAMLError: Names the key and where it is written the second time.
    """
    import yaml

    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_unique_keys(item)
    elif isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise yaml.MarkedYAMLError(
                        "while reading a mapping", node.start_mark,
                        f"found the key {key.value!r} twice; YAML would keep only the last one, "
                        "so merge the two into one", key.start_mark)
                seen.add(key.value)
            _check_unique_keys(value)


def read_text_file(path: Path, what: str = "Recipe file") -> str:
    """The text of a YAML file (:func:`rsfm.io.read_text`), or a ConfigError naming the file and
    what is wrong."""
    if path.is_dir():
        hint = (f" (a run folder: its recipe is '{path / 'recipe.yaml'}')"
                if (path / "recipe.yaml").is_file() else "")
        raise ConfigError(f"'{path}' is a folder, not a YAML file{hint}.")
    if not path.exists():
        raise ConfigError(f"{what} not found: '{path}'.")
    return read_text(path, what)


def _read_yaml(path: Path, what: str = "Recipe file") -> Any:
    import yaml

    text = read_text_file(path, what)
    try:
        _check_unique_keys(yaml.compose(text, Loader=yaml.SafeLoader))  # nodes only, no objects
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
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
            data = _read_yaml(path, f"{where or '<root>'}.include: file")
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
# Keys of rsfm 0.1 recipes that moved: read, converted, and reported once.
def _migrate_keys(data: dict[str, Any]) -> dict[str, Any]:
    train, output = data.get("train"), data.get("output")
    if isinstance(train, dict) and "keep_checkpoints" in train:
        log.warning("train.keep_checkpoints is now output.keep_checkpoints; please rename it.")
        data = {**data, "train": {k: v for k, v in train.items() if k != "keep_checkpoints"},
                "output": {**(output or {}), "keep_checkpoints": train["keep_checkpoints"]}}
        output = data["output"]
    if isinstance(output, dict) and "tensorboard" in output:
        log.warning("output.tensorboard is now output.trackers: [tensorboard]; please rename it.")
        trackers = list(output.get("trackers") or [])
        if output["tensorboard"] and "tensorboard" not in trackers:
            trackers.append("tensorboard")
        data = {**data, "output": {**{k: v for k, v in output.items() if k != "tensorboard"},
                                   "trackers": trackers}}
    return data


def _arcgis_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Merge an ArcGIS export's facts under the user's keys (``data.kind: arcgis``, or an image
    folder of ``kind: chips`` that is an export)."""
    section = data.get("data")
    if not isinstance(section, Mapping) or not isinstance(section.get("train"), Mapping):
        return data
    kind, images = section.get("kind", "chips"), section["train"].get("images")
    labels = section["train"].get("labels")
    # the export itself, a folder inside it (images/) or a parent of exports (the reader names them)
    if kind == "chips" and isinstance(images, str) and (
            arcgis.detect(images) or (labels is None and (arcgis.detect(images, inside=True)
                                                          or arcgis.exports_in(images)))):
        log.info("data.train.images '%s' holds %s: reading it as an ArcGIS export "
                 "(data.kind: arcgis).", images, arcgis.EMD_NAME)
        kind = "arcgis"
    if kind != "arcgis":
        return data
    if not isinstance(images, str):
        raise ConfigError("data.train.images: kind arcgis needs the export folder (the one "
                          f"holding {arcgis.EMD_NAME}), got {images!r}.")
    exports = {split: arcgis.read_arcgis_export(src["images"]) for split in ("val", "test")
               if isinstance(src := section.get(split), Mapping)
               and isinstance(src.get("images"), str)}
    model = data.get("model") if isinstance(data.get("model"), Mapping) else {}
    try:
        card = get_card(model["backbone"])
    except (KeyError, TypeError, RsfmError):
        card = None  # validation names the backbone
    defaults = arcgis.recipe_defaults(arcgis.read_arcgis_export(images), section, model, card,
                                      others=exports)
    merged = deep_merge(defaults, data)
    merged["data"]["kind"] = "arcgis"
    return merged


def validate_recipe(data: Mapping[str, Any]) -> Recipe:
    """Validate a recipe mapping (already include-resolved) into a :class:`Recipe`.

    ArcGIS exports fill the data keys the recipe leaves out first (see the module docstring).

    Raises:
        ConfigError: Every problem with its YAML path, the value, and close matches.
        DataError: An ArcGIS export folder that cannot be read (names the file).
    """
    if isinstance(data, Mapping):
        data = _arcgis_defaults(_migrate_keys(dict(data)))
    recipe = validate(Recipe, data, "recipe")
    try:
        card = get_card(recipe.model.backbone)
    except RsfmError as err:
        raise ConfigError(f"Invalid recipe:\n  model.backbone: {err}") from None
    tile, key = training_tile(recipe)
    freeze = recipe.train.freeze
    frozen = (recipe.model.freeze_backbone or freeze.backbone) and not freeze.unfreeze
    try:
        check_training_tiles(recipe.model, card, tile, recipe.data.batch_size, frozen=frozen,
                             key=key)
    except ConfigError as err:
        raise ConfigError(f"Invalid recipe:\n  {err}", key=err.key) from None
    return recipe


def training_tile(recipe: Recipe) -> tuple[int | None, str]:
    """The side of the training tiles and the key that sets it: ``data.augment.resized_crop``'s
    (smaller) size, else the scenes' ``data.tile_size`` (256 by default); ``None`` for chips (their
    own size, known with the data)."""
    d = recipe.data
    crop = d.augment.get("resized_crop")
    if isinstance(crop, Mapping) and crop.get("size") is not None:
        size = crop["size"]
        return (min(size) if isinstance(size, Sequence) else int(size),
                "data.augment.resized_crop.size")
    if d.kind == "scenes":
        return d.tile_size or 256, "data.tile_size"
    return None, "data.tile_size"


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
        if data is None:
            raise ConfigError(f"Recipe '{path}' is empty; a recipe is a YAML mapping with at "
                              "least model: and data: sections.")
        if not isinstance(data, Mapping):
            raise ConfigError(f"Recipe '{path}' must be a YAML mapping, got {type(data).__name__}.")
        base_dir = path.resolve().parent
        where = str(path.resolve())
    data = _resolve_includes(data, base_dir, "", ())
    data = apply_overrides(data, overrides)
    _resolve_paths(data, base_dir)
    if where is not None:  # the file read now (a run's recipe.yaml records its own origin)
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


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe as plain YAML/JSON-ready data (re-loadable by load_recipe)."""
    return dump(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML text."""
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, allow_unicode=True)


def recipe_schema() -> dict[str, Any]:
    """JSON schema of a recipe (for editors: yaml-language-server ``$schema``)."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(Recipe).json_schema()
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
