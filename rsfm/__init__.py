"""rsfm: remote-sensing foundation models as segmentation and detection models.

``import rsfm`` is light: heavy modules (torch, timm, peft...) load on first use of the
attribute that needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (resolved lazily by __getattr__)
_EXPORTS = {
    "list_backbones": "rsfm.registry",
    "backbone_card": "rsfm.registry",
    "create_backbone": "rsfm.registry",
    "add_adapter_dir": "rsfm.cards",
    "AdapterCard": "rsfm.cards",
    "get_band": "rsfm.bands",
    "resolve_bands": "rsfm.bands",
    "create_model": "rsfm.hub",
    "Model": "rsfm.hub",
    "from_pretrained": "rsfm.hub",
    "load_recipe": "rsfm.recipe",
    "train": "rsfm.train.loop",
    "predict": "rsfm.inference.predict",
    "show_batch": "rsfm.data.show",
    "show_results": "rsfm.inference.show",
}

__all__ = [
    "AdapterCard",
    "__version__",
    "add_adapter_dir",
    "backbone_card",
    "create_backbone",
    "create_model",
    "from_pretrained",
    "get_band",
    "list_backbones",
    "load_recipe",
    "predict",
    "resolve_bands",
    "show_batch",
    "show_results",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover
    from rsfm.bands import get_band as get_band
    from rsfm.bands import resolve_bands as resolve_bands
    from rsfm.cards import AdapterCard as AdapterCard
    from rsfm.cards import add_adapter_dir as add_adapter_dir
    from rsfm.registry import backbone_card as backbone_card
    from rsfm.registry import create_backbone as create_backbone
    from rsfm.registry import list_backbones as list_backbones


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsfm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
