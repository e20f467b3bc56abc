"""Backbone freezing and progressive unfreezing by epoch and by stage/block.

Module specs (relative to the model): ``backbone``, ``neck``, ``head``, ``all``, a module path
(``backbone.layer4``; ``layer4`` and ``blocks.3`` are looked up in the backbone too), a block range
``blocks.8-11``, or ``last_blocks:N`` / ``last_stages:N`` (ViT blocks / ResNet ``layer1..4``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from rsfm.errors import ConfigError

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
    """The modules one spec names (see the module docstring)."""
    spec = spec.strip()
    if spec == "all":
        return [model]
    if spec.startswith(("last_blocks:", "last_stages:")):
        n = int(spec.split(":", 1)[1])
        units, _kind = _units(_backbone(model))
        return units[-n:] if n > 0 else []
    if "-" in spec.rsplit(".", 1)[-1]:
        prefix, rng = spec.rsplit(".", 1)
        lo, hi = (int(x) for x in rng.split("-"))
        return [m for i in range(lo, hi + 1) for m in resolve_modules(model, f"{prefix}.{i}")]
    found = _get(model, spec)
    if found is None:
        bb = _backbone(model)
        base = bb.get_base_model() if hasattr(bb, "get_base_model") else bb
        found = _get(base, spec)
    if found is None:
        import difflib

        names = [n for n, _ in model.named_modules() if n and n.count(".") <= 2]
        close = difflib.get_close_matches(spec, names, n=3)
        raise ConfigError(f"Unfreeze spec {spec!r} names no module of the model."
                          + (f" Did you mean {close}?" if close else ""))
    return [found]


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

    def __init__(self, steps: Sequence[object], lora: bool = False) -> None:
        self.steps = sorted(steps, key=lambda s: s.epoch)  # type: ignore[attr-defined]
        self.lora = lora

    @staticmethod
    def check(model: nn.Module, steps: Sequence[object]) -> None:
        """Resolve every step's module names now, before the first epoch is trained.

        Raises:
            ConfigError: A name matches no module (names ``train.freeze.unfreeze[i].modules``,
                the name and close matches).
        """
        for i, step in enumerate(steps):
            for spec in step.modules:  # type: ignore[attr-defined]
                try:
                    resolve_modules(model, spec)
                except ConfigError as err:
                    raise ConfigError(f"train.freeze.unfreeze[{i}].modules (epoch: "
                                      f"{step.epoch}): {err}",  # type: ignore[attr-defined]
                                      key="train.freeze.unfreeze") from None
                except ValueError:  # "blocks.8-x", "last_blocks:x"
                    raise ConfigError(f"train.freeze.unfreeze[{i}].modules: {spec!r} is not a "
                                      "module name, a block range (blocks.8-11) or "
                                      "last_blocks:N / last_stages:N.",
                                      key="train.freeze.unfreeze") from None

    def apply(self, model: nn.Module, epoch: int, upto: bool = False) -> list[str]:
        """Unfreeze the steps of ``epoch`` (or of every epoch <= ``epoch`` when ``upto``)."""
        done = []
        for step in self.steps:
            e = step.epoch  # type: ignore[attr-defined]
            if e == epoch or (upto and e <= epoch):
                for spec in step.modules:  # type: ignore[attr-defined]
                    mods = resolve_modules(model, spec)
                    skip = ("base_layer",) if self.lora else ()
                    n = set_trainable(mods, True, skip=skip)
                    done.append(f"{spec} (+{n:,} params)")
        return done
