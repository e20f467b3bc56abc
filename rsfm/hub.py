"""Save, load and share trained models: ``config.json`` + safetensors weights (or a LoRA adapter),
a model card, and ``huggingface_hub`` uploads.

Folder layout (a run directory, a ``save_pretrained`` folder and a Hub repo all use it)::

    config.json              everything needed to rebuild the model and feed it (see below)
    model.safetensors        full weights (LoRA runs: adapter merged in)
    adapter/                 LoRA only: adapter_config.json, adapter_model.safetensors (peft) and
                             head.safetensors (neck + head), loadable onto the base backbone
    recipe.yaml, metrics.jsonl, metrics.csv, plots/*.png, README.md (model card)

``config.json``: ``rsfm_version``, ``task``, ``model`` (ModelConfig), ``card`` (backbone card
name, family, sensor, licence, weights repo/filename/revision), ``data`` (``bands`` names,
``wavelengths``, ``mean``, ``std``, ``normalize``, ``value_scale``, ``divide_by``, ``nodata``,
``ignore_index``, ``classes``, ``tile_size``, ``stride``), ``weights`` (file and format) and
``lora`` (adapter settings, or null), ``metrics`` (of the saved epoch).

Tokens are passed to ``huggingface_hub`` only; they are never printed or written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from rsfm.errors import ConfigError, WeightsError

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "from_pretrained",
    "load_config",
    "model_card",
    "push",
    "resolve_folder",
    "save_pretrained",
]

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "adapter"
_RUN_FILES = ("recipe.yaml", "metrics.jsonl", "metrics.csv")


def _card_info(backbone: str) -> dict[str, Any]:
    from rsfm.registry import backbone_card

    card = backbone_card(backbone)
    w = card.weights
    return {
        "name": card.name, "family": card.family, "sensor": card.sensor, "license": card.license,
        "weights": None if w is None else {"repo_id": w.repo_id, "filename": w.filename,
                                           "revision": w.revision},
        "bands": [{"name": b.name, "wavelength_um": b.wavelength_um} for b in card.bands],
    }


def _default_data(model: nn.Module) -> dict[str, Any]:
    cfg = model.config
    from rsfm.registry import backbone_card

    card = backbone_card(cfg.backbone)
    bands = list(cfg.bands) if cfg.bands else card.band_names
    n = card.normalization
    same = bands == card.band_names
    return {
        "bands": bands, "wavelengths": list(cfg.wavelengths) if cfg.wavelengths else None,
        "mean": list(n.mean) if same else None, "std": list(n.std) if same else None,
        "normalize": "stats" if same else "none", "value_scale": 1.0 / n.divide_by,
        "divide_by": n.divide_by, "nodata": None, "ignore_index": -1,
        "classes": list(cfg.classes) if cfg.classes else
        [f"class_{i}" for i in range(cfg.num_classes)],
        "tile_size": None, "stride": None,
    }


def build_config(model: nn.Module, data: Mapping[str, Any] | None = None,
                 metrics: Mapping[str, Any] | None = None,
                 lora: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` dict of a model (see the module docstring)."""
    from rsfm import __version__

    cfg = model.config
    data = dict(data) if data is not None else _default_data(model)
    return {
        "rsfm_version": __version__,
        "task": cfg.task,
        "model": cfg.to_dict(),
        "card": _card_info(cfg.backbone),
        "data": data,
        "classes": list(data.get("classes") or []),
        "weights": {"file": WEIGHTS_NAME, "format": "safetensors", "merged_lora": bool(lora)},
        "lora": dict(lora) if lora else None,
        "metrics": {k: v for k, v in (metrics or {}).items()
                    if isinstance(v, (int, float, str)) or v is None},
    }


def _plain_state(model: nn.Module) -> dict[str, Any]:
    """State dict of the model without peft wrappers (LoRA merged into a copy)."""
    from rsfm.lora import is_lora

    if not is_lora(model):
        return model.state_dict()
    # Add each adapter's delta to its base weight on the side: no copy of the whole model (which
    # would double device memory at every checkpoint) and the live base weights stay untouched.
    from peft.tuners.lora import LoraLayer

    deltas = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            adapters = [a for a in module.active_adapters if a in module.lora_A]
            if adapters:
                deltas[f"{name}.base_layer.weight"] = sum(module.get_delta_weight(a) for a in adapters)
    state = {}
    for key, value in model.state_dict().items():
        if "lora_" in key:
            continue
        value = value.detach()
        if key in deltas:
            value = value + deltas[key].to(value.dtype)
        key = key.replace("backbone.base_model.model.", "backbone.").replace(".base_layer.", ".")
        state[key] = value
    return state


def save_pretrained(
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    data: Mapping[str, Any] | None = None,
    recipe: Any = None,
    metrics: Mapping[str, Any] | None = None,
    weights_name: str = WEIGHTS_NAME,
    write_config: bool = True,
    save_adapter: bool = True,
    state_dict: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and safetensors weights (plus the LoRA adapter) to ``directory``.

    Args:
        model: An ``RsfmModel`` (optionally with a LoRA backbone).
        directory: Target folder (created). Files are replaced atomically.
        data: The data/normalisation metadata (``rsfm.train.data.DataMeta.as_dict()``); default
            derived from the model's config and backbone card.
        recipe: The training recipe (written as ``recipe.yaml`` when not already there).
        metrics: Metrics to record in ``config.json``.
        weights_name: File name of the full weights.
        write_config: Write ``config.json`` (False: weights only, e.g. ``last_model``).
        save_adapter: For LoRA models, also write ``adapter/`` in peft format.
        state_dict: The full weights when the caller gathered them (FSDP); default the model's.
    """
    from rsfm.lora import is_lora
    from rsfm.lora import save_adapter as _save_adapter
    from rsfm.io import atomic_write_json, atomic_write_text, save_safetensors

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lora = getattr(model, "lora_config", None) if is_lora(model) else None
    state = dict(state_dict) if state_dict is not None else _plain_state(model)
    save_safetensors(state, directory / weights_name,
                     metadata={"format": "pt", "rsfm_task": model.config.task})
    if lora is not None and save_adapter:
        _save_adapter(model, directory / ADAPTER_DIR)
    if write_config:
        lora_info = None
        if lora is not None:
            lora_info = {**lora, "adapter": ADAPTER_DIR,
                         "base_model": _card_info(model.config.backbone)["weights"]}
        atomic_write_json(directory / CONFIG_NAME, build_config(model, data, metrics, lora_info))
        if recipe is not None and not (directory / "recipe.yaml").exists():
            from rsfm.recipe import recipe_to_yaml

            atomic_write_text(directory / "recipe.yaml", recipe_to_yaml(recipe))
    return directory


def resolve_folder(path_or_repo_id: str | os.PathLike[str], revision: str | None = None,
                   cache_dir: str | None = None, token: str | bool | None = None) -> Path:
    """A local folder holding the model: the path itself, or a Hub snapshot (cache first).

    Raises:
        WeightsError: Neither a folder nor a downloadable/cached Hub repo.
    """
    p = Path(path_or_repo_id).expanduser()
    if p.is_dir():
        return p
    repo_id = str(path_or_repo_id)
    if repo_id.count("/") != 1 or p.exists():
        raise WeightsError(f"'{repo_id}' is neither a model folder nor a Hub repo id (ORG/NAME).")
    from huggingface_hub import snapshot_download

    patterns = [CONFIG_NAME, "*.safetensors", f"{ADAPTER_DIR}/*", "adapter_config.json",
                "recipe.yaml", "README.md"]
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                      allow_patterns=patterns, token=token))
    except Exception as first:  # noqa: BLE001  offline or unreachable Hub: fall back to the local cache
        try:
            return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                          allow_patterns=patterns, local_files_only=True))
        except Exception:  # noqa: BLE001
            raise WeightsError(f"Cannot load '{repo_id}' (revision {revision or 'main'}): "
                               f"{type(first).__name__}: {first}. Not in the local Hub cache "
                               "either.") from None


def load_config(path_or_repo_id: str | os.PathLike[str], revision: str | None = None,
                cache_dir: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of a run directory, saved folder or Hub repo."""
    folder = resolve_folder(path_or_repo_id, revision, cache_dir)
    path = folder / CONFIG_NAME
    if not path.exists():
        raise WeightsError(f"No {CONFIG_NAME} in '{folder}': not an rsfm model folder (train "
                           "with rsfm, or save with rsfm.hub.save_pretrained).")
    return json.loads(path.read_text())


def from_pretrained(
    path_or_repo_id: str | os.PathLike[str],
    revision: str | None = None,
    *,
    cache_dir: str | None = None,
    weights: str = "best",
    device: str | None = None,
    merge: bool = True,
    token: str | bool | None = None,
) -> nn.Module:
    """Rebuild a trained model (eval mode) from a run directory, a saved folder or a Hub repo.

    Args:
        path_or_repo_id: Local folder or ``ORG/NAME`` (the offline cache is used when the Hub
            cannot be reached).
        revision: Hub revision (branch, tag or commit).
        cache_dir: Hub cache override.
        weights: ``best`` (``model.safetensors``) or ``last`` (``last_model.safetensors``, run
            directories only).
        device: Move the model there.
        merge: LoRA-only folders: merge the adapter into the backbone (plain model).
        token: Hub token for private repos (never printed).

    Returns:
        The model with ``model.rsfm_metadata`` (the ``config.json`` dict).
    """
    from safetensors.torch import load_file

    from rsfm.models.factory import config_from_dict, create_model

    folder = resolve_folder(path_or_repo_id, revision, cache_dir, token)
    config = load_config(folder)
    cfg = config_from_dict(config["model"])
    name = {"best": WEIGHTS_NAME, "last": "last_model.safetensors"}.get(weights, weights)
    full = folder / name
    if full.exists():
        import dataclasses

        model = create_model(dataclasses.replace(cfg, pretrained=False, weights=None))
        state = load_file(str(full))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(f"{full}: weights do not fit the model rebuilt from config.json "
                               f"(missing {missing[:5]}, unexpected {unexpected[:5]}).")
    else:
        adapter = _adapter_folder(folder, config)
        if adapter is None:
            raise WeightsError(f"No {name} and no LoRA adapter in '{folder}'.")
        from rsfm.lora import load_adapter, merge_lora

        # the base backbone comes from its original checkpoint (config.card.weights)
        model = create_model(cfg)
        load_adapter(model, adapter)
        if merge:
            merge_lora(model)
    model.rsfm_metadata = config
    model.eval()
    if device is not None:
        model.to(device)
    return model


def _adapter_folder(folder: Path, config: Mapping[str, Any]) -> Path | None:
    for cand in (folder / ADAPTER_DIR, folder):
        if (cand / "adapter_config.json").exists():
            return cand
    return None


# ------------------------------------------------------------------------------------ model card
_PIPELINE = {"segmentation": "image-segmentation", "detection": "object-detection",
             "classification": "image-classification"}
_METRIC_NAMES = {"miou": "mean_iou", "macro_f1": "f1", "accuracy": "accuracy", "map": "map",
                 "map50": "map50"}


def model_card(config: Mapping[str, Any], repo_id: str, *, lora_only: bool = False,
               datasets: Sequence[str] = (), description: str = "") -> str:
    """README.md with YAML metadata (library, tags, base model, datasets, metrics) and usage."""
    import yaml

    card = config.get("card") or {}
    model = config["model"]
    data = config.get("data") or {}
    metrics = config.get("metrics") or {}
    task = config.get("task", model.get("task"))
    tags = ["rsfm", "remote-sensing", "earth-observation", task, card.get("family", "")]
    if card.get("sensor"):
        tags.append(str(card["sensor"]))
    if config.get("lora"):
        tags += ["lora", "peft"]
    meta: dict[str, Any] = {
        "library_name": "rsfm",
        "license": card.get("license") or "other",
        "pipeline_tag": _PIPELINE.get(task, "image-segmentation"),
        "tags": [t for t in dict.fromkeys(tags) if t],
    }
    weights = card.get("weights") or {}
    if weights.get("repo_id") and (model.get("pretrained") or model.get("weights")):
        meta["base_model"] = weights["repo_id"]
    if datasets:
        meta["datasets"] = list(datasets)
    found = [k for k in _METRIC_NAMES if f"val_{k}" in metrics]
    if found:
        meta["metrics"] = [_METRIC_NAMES[k] for k in found]
        meta["model-index"] = [{
            "name": repo_id.split("/")[-1],
            "results": [{
                "task": {"type": _PIPELINE.get(task, task)},
                "dataset": {"name": datasets[0] if datasets else "validation split",
                            "type": datasets[0] if datasets else "custom"},
                "metrics": [{"type": _METRIC_NAMES[k], "value": round(float(metrics[f"val_{k}"]), 4)}
                            for k in found],
            }],
        }]
    front = yaml.safe_dump(meta, sort_keys=False)
    bands = data.get("bands") or []
    waves = data.get("wavelengths") or [None] * len(bands)
    mean, std = data.get("mean") or [], data.get("std") or []

    def _num(seq: Sequence[Any], i: int) -> str:
        return f"{seq[i]:.4g}" if i < len(seq) and seq[i] is not None else ""

    rows = "\n".join(f"| {b} | {_num(waves, i)} | {_num(mean, i)} | {_num(std, i)} |"
                     for i, b in enumerate(bands))
    metric_rows = "\n".join(f"| {k.removeprefix('val_')} | {v:.4f} |" for k, v in metrics.items()
                            if k.startswith("val_") and isinstance(v, float))
    lora_note = ""
    if config.get("lora"):
        lo = config["lora"]
        lora_note = (f"\nFine-tuned with LoRA (r={lo.get('r')}, alpha={lo.get('alpha')}, targets "
                     f"{lo.get('target_modules')}); "
                     + ("this repo holds the adapter (peft format) and the neck/head weights; "
                        f"the base backbone loads from `{weights.get('repo_id')}` at revision "
                        f"`{weights.get('revision')}`.\n" if lora_only else
                        "the weights here have the adapter merged in.\n"))
    classes = ", ".join(f"`{c}`" for c in data.get("classes") or config.get("classes") or [])
    return f"""---
{front}---

# {repo_id.split('/')[-1]}

{description or f"A {task} model: {model['backbone']} backbone + {model['head']} head, trained with rsfm."}
{lora_note}
- Backbone: `{model['backbone']}` ({card.get('family', '')}), card weights
  `{weights.get('repo_id', 'none')}`{f" @ `{weights['revision']}`" if weights.get('revision') else ''}
- Head: `{model['head']}`, {model['num_classes']} classes: {classes}
- Input: {len(bands)} bands, normalisation `{data.get('normalize')}`
  (raw values x {data.get('value_scale')} then (x - mean) / std), nodata `{data.get('nodata')}`,
  tile size {data.get('tile_size')}

| band | wavelength (um) | mean | std |
|---|---|---|---|
{rows}

## Validation metrics

| metric | value |
|---|---|
{metric_rows}

## Usage

```python
import rsfm

model = rsfm.from_pretrained("{repo_id}")   # eval mode; model.rsfm_metadata = config.json
meta = model.rsfm_metadata["data"]           # bands, mean/std, classes, nodata, tile size
```

or from the command line: `rsfm predict --model {repo_id} scene.tif` (see the rsfm README).
"""


# ------------------------------------------------------------------------------------------ push
def _stage(run_dir: Path, out: Path, repo_id: str, lora_only: bool | None,
           datasets: Sequence[str]) -> tuple[dict[str, Any], bool]:
    config = load_config(run_dir)
    lora = config.get("lora")
    model = config["model"]
    base_pretrained = bool(model.get("pretrained") or model.get("weights"))
    if lora_only is None:
        lora_only = bool(lora) and base_pretrained and (run_dir / ADAPTER_DIR).is_dir()
    if lora_only and not lora:
        raise ConfigError(f"'{run_dir}' is not a LoRA run: nothing to push as an adapter.")
    if lora_only and not base_pretrained:
        raise ConfigError("lora_only: the backbone was not loaded from a pretrained checkpoint, "
                          "so the adapter alone cannot be rebuilt; push the full weights.")
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(config)
    if lora_only:
        shutil.copytree(run_dir / ADAPTER_DIR, out / ADAPTER_DIR)
        cfg["weights"] = {"file": None, "format": "lora_adapter", "adapter": ADAPTER_DIR,
                          "base_model": (config.get("card") or {}).get("weights")}
    else:
        if not (run_dir / WEIGHTS_NAME).exists():
            raise WeightsError(f"No {WEIGHTS_NAME} in '{run_dir}'.")
        shutil.copy2(run_dir / WEIGHTS_NAME, out / WEIGHTS_NAME)
    (out / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
    for name in _RUN_FILES:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, out / name)
    if (run_dir / "plots").is_dir():
        shutil.copytree(run_dir / "plots", out / "plots")
    description = ""
    if (run_dir / "recipe.yaml").exists():
        import yaml

        description = (yaml.safe_load((run_dir / "recipe.yaml").read_text()) or {}).get(
            "description", "")
    (out / "README.md").write_text(model_card(cfg, repo_id, lora_only=lora_only,
                                              datasets=datasets, description=description))
    return cfg, lora_only


def push(
    run_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = True,
    revision: str | None = None,
    commit_message: str | None = None,
    lora_only: bool | None = None,
    datasets: Sequence[str] = (),
    api: Any = None,
) -> Any:
    """Upload a run (or saved folder) to the Hub in one commit.

    Files: ``config.json``, ``model.safetensors`` (or ``adapter/`` with the LoRA adapter, the
    neck/head weights and a reference to the base checkpoint when ``lora_only``), ``recipe.yaml``,
    ``metrics.jsonl``/``metrics.csv``, ``plots/*.png`` and a generated ``README.md``.

    Args:
        run_dir: The run directory.
        repo_id: ``ORG/NAME``.
        token: Hub token (else the huggingface_hub login / ``HF_TOKEN``); never printed.
        private: Create the repo private if it does not exist.
        revision: Branch to commit to.
        lora_only: Push only the adapter (None: when the run used LoRA on a pretrained backbone).
        datasets: Hub dataset ids for the card metadata.
        api: A ``huggingface_hub.HfApi`` (tests pass a recorder).

    Returns:
        huggingface_hub's ``CommitInfo``.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    if repo_id.count("/") != 1:
        raise ConfigError(f"repo_id must look like ORG/NAME, got {repo_id!r}.")
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="rsfm-push-") as tmp:
        stage = Path(tmp)
        _, lora_only = _stage(Path(run_dir), stage, repo_id, lora_only, datasets)
        ops = [CommitOperationAdd(path_in_repo=p.relative_to(stage).as_posix(),
                                  path_or_fileobj=str(p))
               for p in sorted(stage.rglob("*")) if p.is_file()]
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(
            repo_id, operations=ops, revision=revision,
            commit_message=commit_message or f"Upload rsfm model ({len(ops)} files)",
        )
    log.info("Pushed %d files to https://huggingface.co/%s", len(ops), repo_id)
    return info
