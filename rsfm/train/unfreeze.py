"""Backbone freezing and progressive unfreezing by epoch and by stage/block.

Module specs (relative to the model; parsed by :func:`rsfm.modelcheck.parse_unfreeze_spec`):
``backbone``, ``neck``, ``head``, ``all``, a module path (``backbone.layer4``; ``layer4`` and
``blocks.3`` are looked up in the backbone too), a block range ``blocks.8-11``, or
``last_blocks:N`` / ``last_stages:N`` (ViT blocks / ResNet ``layer1..4``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from rsfm.errors import ConfigError
from rsfm.modelcheck import parse_unfreeze_spec, unknown_module_message
from rsfm.schema import UnfreezeStep

__all__ = ["UnfreezeScheduler", "freeze_backbone", "resolve_modules", "set_trainable"]


def _backbone(model: nn.Module) -> nn.Module:
    bb = getattr(model, "backbone", None)
    if bb is None:
        raise ConfigError("The model has no .backbone to freeze.")
    return bb


def _get(root: nn.Module, path: str) -> nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def _units(backbone: nn.Module) -> tuple[list[nn.Module], str]:
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    blocks = getattr(base, "blocks", None)
    if blocks is not None:
        return list(blocks), "blocks"
    stages = [getattr(base, f"layer{i}") for i in range(1, 5) if hasattr(base, f"layer{i}")]
    return stages, "stages"


def resolve_modules(model: nn.Module, spec: str) -> list[nn.Module]:
    """The modules one spec names (the grammar: :func:`rsfm.modelcheck.parse_unfreeze_spec`).

    Raises:
        ConfigError: A malformed spec, or a module path the model does not have (with close
            matches).
    """
    parsed = parse_unfreeze_spec(spec)
    if parsed.kind == "all":
        return [model]
    if parsed.kind == "last":
        units, _kind = _units(_backbone(model))
        return units[-parsed.count:] if parsed.count > 0 else []
    return [_lookup(model, path) for path in parsed.paths]


def _lookup(model: nn.Module, path: str) -> nn.Module:
    """The module at ``path`` in the model, else in its backbone (``blocks.3``, ``layer4``)."""
    found = _get(model, path)
    if found is None:
        bb = _backbone(model)
        found = _get(bb.get_base_model() if hasattr(bb, "get_base_model") else bb, path)
    if found is None:
        raise ConfigError(unknown_module_message(path, (n for n, _ in model.named_modules())))
    return found


def set_trainable(modules: Iterable[nn.Module], trainable: bool,
                  skip: Sequence[str] = ()) -> int:
    """Set ``requires_grad`` on every parameter of ``modules``; returns how many changed.

    ``skip``: substrings of parameter names left untouched (e.g. ``lora_`` when freezing).
    """
    changed = 0
    for module in modules:
        for name, p in module.named_parameters():
            if any(s in name for s in skip):
                continue
            if p.requires_grad != trainable:
                p.requires_grad_(trainable)
                changed += p.numel()
    return changed


def freeze_backbone(model: nn.Module) -> int:
    """Freeze every backbone parameter; returns the number of frozen parameters."""
    return set_trainable([_backbone(model)], False)


class UnfreezeScheduler:
    """Applies a recipe's ``train.freeze.unfreeze`` steps at epoch starts.

    ``lora``: when LoRA is on, unfreezing a module only trains its non-LoRA-base weights if
    asked for explicitly; the frozen base weights of LoRA-wrapped layers stay frozen.
    """

    def __init__(self, steps: Sequence[UnfreezeStep], lora: bool = False) -> None:
        self.steps = sorted(steps, key=lambda s: s.epoch)
        self.lora = lora

    @staticmethod
    def check(model: nn.Module, steps: Sequence[UnfreezeStep]) -> None:
        """Resolve every step's module names now, before the first epoch is trained.

        Raises:
            ConfigError: A malformed spec or a name that matches no module (names
                ``train.freeze.unfreeze[i].modules``, the name and close matches).
        """
        for i, step in enumerate(steps):
            for spec in step.modules:
                try:
                    resolve_modules(model, spec)
                except ConfigError as err:
                    raise ConfigError(f"train.freeze.unfreeze[{i}].modules (epoch: "
                                      f"{step.epoch}): {err}",
                                      key="train.freeze.unfreeze") from None

    def apply(self, model: nn.Module, epoch: int, upto: bool = False) -> list[str]:
        """Unfreeze the steps of ``epoch`` (or of every epoch <= ``epoch`` when ``upto``)."""
        done = []
        for step in self.steps:
            if step.epoch == epoch or (upto and step.epoch <= epoch):
                for spec in step.modules:
                    mods = resolve_modules(model, spec)
                    skip = ("base_layer",) if self.lora else ()
                    n = set_trainable(mods, True, skip=skip)
                    done.append(f"{spec} (+{n:,} params)")
        return done
