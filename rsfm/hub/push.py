"""Upload a model folder (a run directory or a ``save_pretrained`` folder) to the Hugging Face Hub.

The folder is staged first (``config.json``, weights or the LoRA adapter, run records and a
generated model card), then sent in one commit. Tokens go to ``huggingface_hub`` only: they are
never printed, logged or written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from rsfm.errors import ConfigError, WeightsError
from rsfm.hub.card import model_card
from rsfm.hub.save import (
    ADAPTER_DIR,
    CONFIG_NAME,
    WEIGHTS_NAME,
    adapter_folder,
    base_model_repo,
)
from rsfm.saved import SavedConfig, read_saved_config, write_saved_config

__all__ = ["Staged", "push", "stage"]

log = logging.getLogger(__name__)

_RUN_FILES = ("recipe.yaml", "metrics.jsonl", "metrics.csv")
_PLOTS = "plots"


@dataclass(frozen=True)
class Staged:
    """A folder ready to upload.

    Attributes:
        folder: The staged folder.
        config: Its ``config.json``.
        lora_only: True when it holds the LoRA adapter + head instead of the full weights.
    """

    folder: Path
    config: SavedConfig
    lora_only: bool


def _description(source: Path) -> str:
    recipe = source / "recipe.yaml"
    if not recipe.is_file():
        return ""
    try:
        data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return str(data.get("description") or "") if isinstance(data, dict) else ""


def stage(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    repo_id: str,
    *,
    lora_only: bool | None = None,
    datasets: Sequence[str] | None = None,
) -> Staged:
    """Copy what a Hub repo needs from ``source`` to ``out`` and write its model card.

    Args:
        source: A run directory or a saved model folder (it holds ``config.json``).
        out: The staging folder (created).
        repo_id: The target repo (for the card's usage lines).
        lora_only: Stage the LoRA adapter + head instead of the full weights (None: when the
            model was trained with LoRA on a pretrained Hub backbone and its adapter is saved).
        datasets: Hub dataset ids for the card (None or empty: those in ``config.json``).

    Raises:
        ConfigError: ``lora_only`` for a model without an adapter, or whose base backbone is not a
            Hub checkpoint (the adapter alone could not be rebuilt).
        WeightsError: No full weights to push.
    """
    source, out = Path(source), Path(out)
    config = read_saved_config(source)
    if datasets:  # else keep the ids recorded in config.json
        config = replace(config, datasets=tuple(datasets))
    adapter = adapter_folder(source, config) if config.lora is not None else None
    base = base_model_repo(config)
    if lora_only is None:
        lora_only = adapter is not None and base is not None
    if lora_only and adapter is None:
        raise ConfigError(f"'{source}' holds no LoRA adapter (adapter/adapter_config.json): "
                          "nothing to push as an adapter; push the full weights.")
    if lora_only and base is None:
        raise ConfigError("lora_only: the backbone did not start from a Hub checkpoint "
                          "(model.pretrained or weights: hf://...), so the adapter alone cannot "
                          "be rebuilt; push the full weights.")
    out.mkdir(parents=True, exist_ok=True)
    if lora_only:
        shutil.copytree(adapter, out / ADAPTER_DIR)
        config = replace(config, lora_adapter=ADAPTER_DIR)
    else:
        if not (source / WEIGHTS_NAME).is_file():
            raise WeightsError(f"No {WEIGHTS_NAME} in '{source}' to push.")
        shutil.copy2(source / WEIGHTS_NAME, out / WEIGHTS_NAME)
        if adapter is not None:  # ship the adapter too, as config.json says
            shutil.copytree(adapter, out / ADAPTER_DIR)
        config = replace(config, lora_adapter=ADAPTER_DIR if adapter is not None else None)
    write_saved_config(out / CONFIG_NAME, config)
    for name in _RUN_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    if (source / _PLOTS).is_dir():
        shutil.copytree(source / _PLOTS, out / _PLOTS)
    card = model_card(config, repo_id, lora_only=lora_only, description=_description(source))
    card.save(out / "README.md")
    return Staged(out, config, lora_only)


def push(
    source: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = True,
    revision: str | None = None,
    commit_message: str | None = None,
    lora_only: bool | None = None,
    datasets: Sequence[str] | None = None,
    api: Any = None,
) -> Any:
    """Upload a run directory or saved model folder to the Hub in one commit.

    Files: ``config.json``, ``model.safetensors`` (or, when ``lora_only``, ``adapter/`` with the
    LoRA adapter and the neck/head weights; the base checkpoint is referenced), ``recipe.yaml``,
    ``metrics.jsonl``/``metrics.csv``, ``plots/*.png`` and a generated ``README.md``.

    Args:
        source: The run directory or saved folder.
        repo_id: ``ORG/NAME``.
        token: Hub token (else the huggingface_hub login / ``HF_TOKEN``); never printed.
        private: Create the repo private if it does not exist.
        revision: Branch to commit to (created if missing).
        commit_message: Commit message.
        lora_only: Push only the adapter (None: when the model used LoRA on a Hub backbone).
        datasets: Hub dataset ids for the card metadata (None or empty: those in
            ``config.json``).
        api: A ``huggingface_hub.HfApi`` (tests pass a recorder).

    Returns:
        huggingface_hub's ``CommitInfo``.

    Raises:
        ConfigError: ``repo_id`` is not ``ORG/NAME``; see :func:`stage`.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"repo_id must look like ORG/NAME, got {repo_id!r}.")
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="rsfm-push-") as tmp:
        staged = stage(source, Path(tmp) / "repo", repo_id, lora_only=lora_only, datasets=datasets)
        ops = [CommitOperationAdd(path_in_repo=p.relative_to(staged.folder).as_posix(),
                                  path_or_fileobj=str(p))
               for p in sorted(staged.folder.rglob("*")) if p.is_file()]
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(
            repo_id, operations=ops, revision=revision,
            commit_message=commit_message or f"Upload rsfm model ({len(ops)} files)",
        )
    log.info("Pushed %d files to https://huggingface.co/%s", len(ops), repo_id)
    return info
