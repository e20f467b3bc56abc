"""rsfm: remote-sensing foundation models as segmentation and detection models.

``import rsfm`` is light: heavy modules (torch, peft...) load on first use of the
attribute that needs them.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> module that defines it (resolved lazily by __getattr__)
_EXPORTS: dict[str, str] = {
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
    "evaluate": "rsfm.evaluation",
    "show_batch": "rsfm.data.show",
    "show_results": "rsfm.inference.show",
    "prepare_data": "rsfm.learn",
    "Learner": "rsfm.learn",
}

__all__ = [
    "AdapterCard",
    "Learner",
    "Model",
    "__version__",
    "add_adapter_dir",
    "backbone_card",
    "create_backbone",
    "create_model",
    "evaluate",
    "from_pretrained",
    "get_band",
    "list_backbones",
    "load_recipe",
    "predict",
    "prepare_data",
    "resolve_bands",
    "show_batch",
    "show_results",
    "train",
]

# Type checkers see the real objects (tests/test_imports.py checks that these imports, _EXPORTS
# and __all__ name the same things); at run time __getattr__ imports them on first use.
if TYPE_CHECKING:  # pragma: no cover
    from rsfm.bands import get_band as get_band
    from rsfm.bands import resolve_bands as resolve_bands
    from rsfm.cards import AdapterCard as AdapterCard
    from rsfm.cards import add_adapter_dir as add_adapter_dir
    from rsfm.data.show import show_batch as show_batch
    from rsfm.evaluation import evaluate as evaluate
    from rsfm.hub import Model as Model
    from rsfm.hub import create_model as create_model
    from rsfm.hub import from_pretrained as from_pretrained
    from rsfm.inference.predict import predict as predict
    from rsfm.inference.show import show_results as show_results
    from rsfm.learn import Learner as Learner
    from rsfm.learn import prepare_data as prepare_data
    from rsfm.recipe import load_recipe as load_recipe
    from rsfm.registry import backbone_card as backbone_card
    from rsfm.registry import create_backbone as create_backbone
    from rsfm.registry import list_backbones as list_backbones
    from rsfm.train.loop import train as train


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsfm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    bound = globals().get(name)
    if isinstance(bound, types.ModuleType) and callable(bound):
        # the import bound a callable subpackage of the same name (rsfm.train): keep it, so
        # rsfm.train(...) and rsfm.train.loop both keep working
        return bound
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
