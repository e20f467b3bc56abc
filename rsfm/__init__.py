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
    "create_model": "rsfm.models.factory",
    "from_pretrained": "rsfm.hub",
    "load_recipe": "rsfm.recipe",
    "train": "rsfm.train.loop",
    "predict": "rsfm.inference.predict",
    "show_batch": "rsfm.data.show",
    "show_results": "rsfm.inference.show",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover
    from rsfm.bands import get_band, resolve_bands
    from rsfm.cards import AdapterCard, add_adapter_dir
    from rsfm.registry import backbone_card, create_backbone, list_backbones


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsfm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
