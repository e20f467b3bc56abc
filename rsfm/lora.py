"""LoRA for backbones through peft.

The backbone is wrapped in a ``peft.PeftModel`` (custom-model path); neck and head train fully;
everything else is frozen. The adapter is saved in peft's own format (``adapter_config.json`` +
``adapter_model.safetensors``), loadable with ``PeftModel.from_pretrained(base_backbone, dir)``;
:func:`merge_lora` folds it into plain weights for export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from rsfm.cards import get_card
from rsfm.errors import ConfigError
from rsfm.io import save_safetensors
from rsfm.modelcheck import lora_target_problem, lora_targets

__all__ = [
    "apply_lora",
    "count_parameters",
    "is_lora",
    "load_adapter",
    "merge_lora",
    "save_adapter",
]

log = logging.getLogger(__name__)
ADAPTER_NAME = "default"


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def is_lora(model: nn.Module) -> bool:
    """True when the model's backbone is a peft model."""
    from peft import PeftModel

    return isinstance(getattr(model, "backbone", None), PeftModel)


def _peft_config(r: int, alpha: float, dropout: float, targets: Sequence[str],
                 bias: str = "none") -> Any:
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias=bias,
                      target_modules=list(targets))


def apply_lora(model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.05,
               target_modules: Sequence[str] | None = None, bias: str = "none") -> nn.Module:
    """Wrap ``model.backbone`` with LoRA adapters; freeze the rest of the backbone.

    ``target_modules``: module-name suffixes (``attn.qkv``) or peft's forms; default: the card's
    ``lora_targets`` (attention qkv/proj for ViTs). Neck and head stay fully trainable.

    Raises:
        ConfigError: No module of the backbone matches the targets.
    """
    from peft import get_peft_model

    backbone = model.backbone
    name = getattr(model, "config", None)
    card = get_card(name.backbone if name is not None else backbone.card_name)
    targets = list(lora_targets(target_modules, card))
    problem = lora_target_problem([n for n, _ in backbone.named_modules()], targets)
    if problem:
        raise ConfigError(problem, key="lora.target_modules")
    cfg = _peft_config(r, alpha, dropout, targets, bias)
    model.backbone = get_peft_model(backbone, cfg)  # freezes the base weights
    for mod in (getattr(model, "neck", None), getattr(model, "head", None)):
        if mod is not None:
            for p in mod.parameters():
                p.requires_grad_(True)
    model.lora_config = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": targets,
                         "bias": bias}
    trainable, total = count_parameters(model)
    log.info("LoRA r=%d on %s: trainable %s / %s parameters (%.2f%%)", r, targets,
             f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1))
    return model


def _head_neck_state(model: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}


def save_adapter(model: nn.Module, directory: str | os.PathLike[str], *,
                 base_model: str | None = None) -> Path:
    """Save the LoRA adapter (peft format) and the neck/head weights (``head.safetensors``).

    Files: ``adapter_config.json``, ``adapter_model.safetensors``, ``head.safetensors`` (no
    README: peft's template card would sit next to the real model card). Written to a temporary
    folder and renamed, so an interrupted save leaves the previous one.

    Args:
        model: A model whose backbone is wrapped by :func:`apply_lora`.
        directory: The adapter folder.
        base_model: Hub repo of the base backbone's checkpoint, recorded as
            ``base_model_name_or_path`` in ``adapter_config.json`` (None: trained from scratch).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        # save_embedding_layers=False: backbones have no token embeddings, and peft's "auto"
        # would look up base_model_name_or_path's config.json on the Hub at every save
        model.backbone.save_pretrained(str(tmp), safe_serialization=True,
                                       save_embedding_layers=False)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's "[More Information Needed]" template
        config_path = tmp / "adapter_config.json"
        peft_config = json.loads(config_path.read_text(encoding="utf-8"))
        peft_config["base_model_name_or_path"] = base_model
        config_path.write_text(json.dumps(peft_config, indent=2, sort_keys=True) + "\n",
                               encoding="utf-8")
        save_safetensors(_head_neck_state(model), tmp / "head.safetensors",
                         metadata={"format": "pt", "content": "rsfm neck+head"})
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_adapter(model: nn.Module, directory: str | os.PathLike[str]) -> nn.Module:
    """Put a saved adapter (and neck/head weights) onto a freshly built base model."""
    from peft import PeftModel
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / "adapter_config.json").exists():
        raise ConfigError(f"No adapter_config.json in '{directory}'.")
    model.backbone = PeftModel.from_pretrained(model.backbone, str(directory))
    head = directory / "head.safetensors"
    if head.exists():
        missing, unexpected = model.load_state_dict(load_file(str(head)), strict=False)
        bad = [k for k in missing if not k.startswith("backbone.")] + list(unexpected)
        if bad:
            raise ConfigError(f"{head}: keys do not fit the model: {bad[:8]}")
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the adapter into the backbone weights (in place) and drop peft: a plain model."""
    if is_lora(model):
        model.backbone = model.backbone.merge_and_unload()
    return model
