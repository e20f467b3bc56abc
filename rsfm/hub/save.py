"""The model folder: ``config.json`` (a :class:`~rsfm.saved.SavedConfig`) + safetensors weights.

A run directory, a :func:`save_pretrained` folder and a Hub repo share this layout::

    config.json              SavedConfig: ModelConfig, InputSpec, backbone card reference, LoRA, metrics
    model.safetensors        full weights (LoRA runs: the adapter merged in)
    last_model.safetensors   run directories: the weights of the last epoch
    adapter/                 LoRA only: adapter_config.json + adapter_model.safetensors (peft) and
                             head.safetensors (neck + head), loadable onto the base backbone
    recipe.yaml, metrics.jsonl, metrics.csv, plots/*.png, README.md (model card)

The writer never re-derives what a model eats: ``config.json`` holds ``model.config`` and
``model.input_spec`` as they are, so ``save_pretrained(from_pretrained(d), e)`` writes the
``config.json`` of ``d`` again (tested).

Tokens are passed to ``huggingface_hub`` only; they are never printed or written.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from rsfm import __version__
from rsfm.cards import get_card
from rsfm.config import LoraSettings, ModelConfig
from rsfm.devices import check_device
from rsfm.errors import ConfigError, UnknownNameError, WeightsError
from rsfm.factory import create_model
from rsfm.io import atomic_write_text, save_safetensors
from rsfm.lora import is_lora, load_adapter, merge_lora
from rsfm.lora import save_adapter as save_lora_adapter
from rsfm.modelcheck import model_card
from rsfm.models.model import RsfmModel
from rsfm.recipe import recipe_to_yaml
from rsfm.saved import (
    CONFIG_NAME,
    SavedConfig,
    architecture,
    card_ref,
    read_saved_config,
    write_saved_config,
)
from rsfm.schema import Recipe
from rsfm.spec import InputSpec

__all__ = [
    "ADAPTER_DIR",
    "CONFIG_NAME",
    "LAST_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "adapter_folder",
    "base_model_repo",
    "from_pretrained",
    "load_config",
    "resolve_folder",
    "save_pretrained",
    "saved_config_of",
]

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
LAST_WEIGHTS_NAME = "last_model.safetensors"
ADAPTER_DIR = "adapter"
ADAPTER_CONFIG = "adapter_config.json"
_SNAPSHOT_PATTERNS = (CONFIG_NAME, "*.safetensors", f"{ADAPTER_DIR}/*", ADAPTER_CONFIG,
                      "recipe.yaml", "README.md")
_LORA_KEYS = ("r", "alpha", "dropout", "target_modules", "bias")


# ------------------------------------------------------------------------------------- writing
def base_model_repo(config: SavedConfig) -> str | None:
    """The Hub repo the backbone's starting weights came from, or None (trained from scratch).

    ``model.pretrained`` means the card's checkpoint (``config.card.repo_id``); ``model.weights``
    counts only as an ``hf://ORG/NAME/...`` URL (a local file is not a Hub model).
    """
    model = config.model
    if model.weights is not None:
        text = str(model.weights)
        if text.startswith("hf://"):
            parts = text[len("hf://"):].split("@")[0].split("/")
            return "/".join(parts[:2]) if len(parts) >= 3 else None
        return None
    return config.card.repo_id if model.pretrained else None


def _is_lora(model: nn.Module) -> bool:
    # peft cannot wrap anything before it is imported: do not import it (and transformers) to
    # find out that a plain model is plain.
    return "peft" in sys.modules and is_lora(model)


def _lora_of(model: nn.Module, previous: SavedConfig | None) -> LoraSettings | None:
    """LoRA settings of a model (peft-wrapped now, or trained with LoRA and merged since)."""
    stated = getattr(model, "lora_config", None)
    if isinstance(stated, LoraSettings):
        return stated
    if isinstance(stated, Mapping):  # rsfm.lora.apply_lora records its arguments
        return LoraSettings(**{k: stated[k] for k in _LORA_KEYS if k in stated})
    if previous is not None and previous.lora is not None:
        return previous.lora
    if _is_lora(model):  # wrapped by hand with peft: read peft's own record
        peft = next(iter(model.backbone.peft_config.values()))
        return LoraSettings(r=peft.r, alpha=peft.lora_alpha, dropout=peft.lora_dropout,
                            target_modules=tuple(sorted(peft.target_modules)), bias=peft.bias)
    return None


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float | int | str | None]:
    out: dict[str, float | int | str | None] = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
            value = value.item()
        if value is None or isinstance(value, (int, float, str)):
            out[str(key)] = value
    return out


def saved_config_of(
    model: nn.Module,
    *,
    metrics: Mapping[str, Any] | None = None,
    datasets: Sequence[str] | None = None,
    lora_adapter: str | None = None,
) -> SavedConfig:
    """The :class:`SavedConfig` of a model, from what the model carries (nothing re-derived).

    Args:
        model: An ``RsfmModel`` (``model.config``, ``model.input_spec``); one loaded with
            :func:`from_pretrained` also carries ``model.saved_config``, whose card reference,
            LoRA record, metrics and datasets are kept unless given here.
        metrics: Metrics of these weights (non-scalar values are left out); None keeps the
            loaded model's.
        datasets: Hub dataset ids the model was trained on; None keeps the loaded model's.
        lora_adapter: Folder (relative) where the peft adapter is saved, if it is.

    Raises:
        ConfigError: The model carries no ``InputSpec`` (not built by rsfm).
    """
    spec = getattr(model, "input_spec", None)
    config = getattr(model, "config", None)
    if not isinstance(spec, InputSpec) or not isinstance(config, ModelConfig):
        raise ConfigError(
            f"{type(model).__name__} carries no model.config / model.input_spec, so rsfm cannot "
            "record what it eats. Build it with rsfm.create_model(...) or rsfm.from_pretrained(...)."
        )
    previous = getattr(model, "saved_config", None)
    if not isinstance(previous, SavedConfig) or previous.model.backbone != config.backbone:
        previous = None
    return SavedConfig(
        rsfm_version=__version__,
        model=architecture(config),
        input=spec,
        card=previous.card if previous is not None else card_ref(get_card(config.backbone)),
        lora=_lora_of(model, previous),
        lora_adapter=lora_adapter,
        metrics=_scalars(metrics if metrics is not None
                         else previous.metrics if previous is not None else {}),
        datasets=tuple(datasets) if datasets is not None
        else previous.datasets if previous is not None else (),
    )


def _plain_state(model: nn.Module) -> dict[str, Tensor]:
    """State dict of the model without peft wrappers (LoRA merged into a copy)."""
    if not _is_lora(model):
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
    recipe: Recipe | None = None,
    metrics: Mapping[str, Any] | None = None,
    weights_name: str = WEIGHTS_NAME,
    write_config: bool = True,
    save_adapter: bool = True,
    state_dict: Mapping[str, Tensor] | None = None,
    datasets: Sequence[str] | None = None,
) -> Path:
    """Write ``config.json`` and safetensors weights (plus the LoRA adapter) to ``directory``.

    Args:
        model: An ``RsfmModel`` (optionally with a LoRA backbone).
        directory: Target folder (created). Files are replaced atomically.
        recipe: The training recipe (written as ``recipe.yaml`` unless one is there).
        metrics: Metrics of these weights for ``config.json``; None keeps those of a model loaded
            with :func:`from_pretrained`.
        weights_name: File name of the full weights.
        write_config: Write ``config.json`` (False: weights only, e.g. ``last_model``).
        save_adapter: For LoRA models, also write ``adapter/`` in peft format.
        state_dict: The full weights when the caller gathered them (FSDP); default the model's.
        datasets: Hub dataset ids for the model card; None keeps the loaded model's.

    Returns:
        ``directory``.

    Raises:
        ConfigError: The model carries no ``InputSpec`` (nothing is written then).
    """
    directory = Path(directory)
    lora = _is_lora(model)
    config = saved_config_of(model, metrics=metrics, datasets=datasets,
                             lora_adapter=ADAPTER_DIR if lora and save_adapter else None)
    directory.mkdir(parents=True, exist_ok=True)
    state = dict(state_dict) if state_dict is not None else _plain_state(model)
    save_safetensors(state, directory / weights_name,
                     metadata={"format": "pt", "rsfm_task": config.model.task})
    if lora and save_adapter:
        save_lora_adapter(model, directory / ADAPTER_DIR, base_model=base_model_repo(config))
    if write_config:
        write_saved_config(directory / CONFIG_NAME, config)
        if recipe is not None and not (directory / "recipe.yaml").exists():
            atomic_write_text(directory / "recipe.yaml", recipe_to_yaml(recipe))
    return directory


# ------------------------------------------------------------------------------------- reading
def resolve_folder(path_or_repo_id: str | os.PathLike[str], revision: str | None = None,
                   cache_dir: str | None = None, token: str | bool | None = None, *,
                   force_download: bool = False, local_files_only: bool = False) -> Path:
    """A local folder holding the model: the path itself, or a Hub snapshot (cache first).

    Args:
        path_or_repo_id: A folder, or ``ORG/NAME`` on the Hub.
        revision: Hub revision (branch, tag or commit).
        cache_dir: Hub cache override.
        token: Hub token for private repos (never printed).
        force_download: Download again even when cached.
        local_files_only: Use the local Hub cache only.

    Raises:
        WeightsError: Neither a folder nor a downloadable/cached Hub repo.
    """
    p = Path(path_or_repo_id).expanduser()
    if p.is_dir():
        return p
    repo_id = str(path_or_repo_id)
    if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
        raise WeightsError(f"'{repo_id}' is a recipe; give the run folder it trained (its "
                           "output.dir, e.g. runs/<name>), a saved model folder or a Hub repo id.")
    if p.is_file() and p.suffix.lower() == ".safetensors":
        raise WeightsError(f"'{repo_id}' is a weights file; give the folder holding it with its "
                           "config.json (a run folder or a saved model folder).")
    if repo_id.count("/") != 1 or p.exists():
        raise WeightsError(f"'{repo_id}' is neither a model folder nor a Hub repo id (ORG/NAME).")
    from huggingface_hub import snapshot_download

    where: dict[str, Any] = {"revision": revision, "cache_dir": cache_dir,
                             "allow_patterns": list(_SNAPSHOT_PATTERNS)}
    first: Exception | None = None
    if not local_files_only:
        try:
            return Path(snapshot_download(repo_id, token=token, force_download=force_download,
                                          **where))
        except Exception as err:  # noqa: BLE001  offline or unreachable Hub: try the local cache
            first = err
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, **where))
    except Exception as err:  # noqa: BLE001
        cause = first or err
        raise WeightsError(f"Cannot load '{repo_id}' (revision {revision or 'main'}): "
                           f"{type(cause).__name__}: {cause}. Not in the local Hub cache "
                           "either.") from None


def load_config(path_or_repo_id: str | os.PathLike[str], revision: str | None = None,
                cache_dir: str | None = None, token: str | bool | None = None) -> SavedConfig:
    """The :class:`SavedConfig` of a run directory, saved folder or Hub repo (rsfm 0.1 too)."""
    return read_saved_config(resolve_folder(path_or_repo_id, revision, cache_dir, token))


def adapter_folder(folder: Path, config: SavedConfig) -> Path | None:
    """The folder holding the peft adapter files of a model folder, or None."""
    for name in (config.lora_adapter, ADAPTER_DIR, "."):
        if name is not None and (folder / name / ADAPTER_CONFIG).is_file():
            return folder / name
    return None


def _base_config(config: SavedConfig) -> ModelConfig:
    """The model config that rebuilds the base backbone of an adapter-only folder, pinned to the
    checkpoint recorded at training (the card may have moved to another revision since)."""
    model, card = config.model, config.card
    if not model.pretrained or card.repo_id is None or card.filename is None:
        return model  # weights: hf://... (pinned by its own @revision) or nothing to pin
    current = get_card(model.backbone).weights
    if current is not None and (current.repo_id, current.filename, current.revision) == (
            card.repo_id, card.filename, card.revision):
        return model
    url = f"hf://{card.repo_id}/{card.filename}" + (f"@{card.revision}" if card.revision else "")
    log.info("Base backbone from %s (the checkpoint recorded in config.json)", url)
    return replace(model, pretrained=False, weights=url)


def _no_weights(folder: Path, weights: str, name: str) -> str:
    """The message for ``weights`` naming no file of ``folder``: what exists, what is allowed."""
    found = sorted(p.name for p in folder.glob("*.safetensors"))
    if weights in ("best", "last"):
        what = f"No {name}" + (" and no LoRA adapter" if weights == "best" else "")
        return (f"{what} in '{folder}' (weights={weights!r}); the folder holds "
                f"{found or 'no .safetensors file'}.")
    close = difflib.get_close_matches(weights, ["best", "last", *found], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"from_pretrained: weights={weights!r} is not 'best' ({WEIGHTS_NAME}), 'last' "
            f"({LAST_WEIGHTS_NAME}) or a file in '{folder}' (it holds "
            f"{found or 'no .safetensors file'}).{hint}")


def from_pretrained(
    path_or_repo_id: str | os.PathLike[str],
    revision: str | None = None,
    *,
    cache_dir: str | None = None,
    weights: str = "best",
    device: str | None = None,
    merge: bool = True,
    token: str | bool | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    model_class: type[RsfmModel] = RsfmModel,
) -> RsfmModel:
    """Rebuild a trained model (eval mode) from a run directory, a saved folder or a Hub repo.

    The model is ``create_model(config.model, input_spec=config.input)`` with the saved weights;
    a LoRA folder without full weights rebuilds the base backbone from its checkpoint and puts
    the adapter on it.

    Args:
        path_or_repo_id: Local folder or ``ORG/NAME`` (the offline cache is used when the Hub
            cannot be reached).
        revision: Hub revision (branch, tag or commit).
        cache_dir: Hub cache override.
        weights: ``best`` (``model.safetensors``), ``last`` (``last_model.safetensors``, run
            directories only) or a file name in the folder.
        device: Move the model there (checked first: ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        merge: LoRA-only folders: merge the adapter into the backbone (plain model).
        token: Hub token for private repos (never printed).
        force_download: Download the repo again even when cached.
        local_files_only: Use the local Hub cache only.
        model_class: The class built (``rsfm.from_pretrained`` builds ``rsfm.Model``).

    Returns:
        The model, with ``model.saved_config`` (the :class:`SavedConfig` read).

    Raises:
        WeightsError: No such folder/repo, no such weights file (lists the allowed values), or
            weights that do not fit the saved config.
        ConfigError: A device this machine does not have, an invalid ``config.json`` (names
            the file; an unknown backbone with close matches).
    """
    from safetensors.torch import load_file

    check_device(device, "from_pretrained: device")  # before anything is read or downloaded
    if not isinstance(weights, str) or not weights.strip():
        raise ConfigError(f"from_pretrained: weights {weights!r} must be 'best', 'last' or the "
                          "name of a weights file in the folder.", key="weights")
    folder = resolve_folder(path_or_repo_id, revision, cache_dir, token,
                            force_download=force_download, local_files_only=local_files_only)
    config = read_saved_config(folder)
    try:
        model_card(config.model.backbone)  # a hand-edited or newer config.json: name the file
    except UnknownNameError as err:
        raise ConfigError(f"Invalid '{folder / CONFIG_NAME}':\n  {err}",
                          key="model.backbone") from None
    name = {"best": WEIGHTS_NAME, "last": LAST_WEIGHTS_NAME}.get(weights, weights)
    full = folder / name
    adapter = adapter_folder(folder, config) if weights == "best" else None
    if full.is_file():
        # the weights file holds the whole model: no pretrained backbone to fetch first
        model = create_model(replace(config.model, pretrained=False, weights=None),
                             input_spec=config.input, model_class=model_class)
        try:
            state = load_file(str(full))
        except Exception as err:  # noqa: BLE001  SafetensorError, OSError: truncated/not one
            raise WeightsError(f"Cannot read weights file '{full}' ({type(err).__name__}: {err}); "
                               "it is truncated or not a safetensors file. Restore it (a run "
                               "folder also keeps last_model.safetensors and "
                               "checkpoints/*/model.safetensors).") from None
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # size mismatch: the weights are of another model
            raise WeightsError(f"{full}: weights do not fit the model rebuilt from {CONFIG_NAME}: "
                               f"{str(err).strip()[:500]}") from None
        if missing or unexpected:
            raise WeightsError(f"{full}: weights do not fit the model rebuilt from {CONFIG_NAME} "
                               f"(missing {missing[:5]}, unexpected {unexpected[:5]}).")
    elif adapter is not None:
        model = create_model(_base_config(config), input_spec=config.input,
                             model_class=model_class)
        load_adapter(model, adapter)
        if merge:
            merge_lora(model)
    else:
        raise WeightsError(_no_weights(folder, weights, name))
    model.config = config.model  # the recipe as saved (e.g. pretrained: true), not the rebuild's
    model.saved_config = config
    model.eval()
    if device is not None:
        model.to(device)
    return model
