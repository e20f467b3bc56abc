"""Save, load and share trained models.

* :mod:`rsfm.hub.save`: the model folder (``config.json`` = :class:`~rsfm.saved.SavedConfig`,
  safetensors weights, LoRA adapter): :func:`save_pretrained`, :func:`from_pretrained`,
  :func:`load_config`, :func:`resolve_folder`.
* :mod:`rsfm.hub.card`: the model card (``README.md``) built from the ``SavedConfig``.
* :mod:`rsfm.hub.push`: upload a run directory or saved folder to the Hugging Face Hub.
* :mod:`rsfm.hub.mixin`: :class:`RsfmHubMixin`, the same in ``huggingface_hub.ModelHubMixin``'s
  method shape, and :class:`Model` (the model class :func:`create_model`,
  :func:`from_pretrained` and training build: ``Model.from_pretrained``,
  ``model.save_pretrained``, ``model.push_to_hub``).
"""

from __future__ import annotations

from rsfm.hub.card import model_card
from rsfm.hub.mixin import Model, RsfmHubMixin, create_model, from_pretrained
from rsfm.hub.push import push, stage
from rsfm.hub.save import (
    ADAPTER_DIR,
    CONFIG_NAME,
    LAST_WEIGHTS_NAME,
    WEIGHTS_NAME,
    base_model_repo,
    load_config,
    resolve_folder,
    save_pretrained,
    saved_config_of,
)

__all__ = [
    "ADAPTER_DIR",
    "CONFIG_NAME",
    "LAST_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "Model",
    "RsfmHubMixin",
    "base_model_repo",
    "create_model",
    "from_pretrained",
    "load_config",
    "model_card",
    "push",
    "resolve_folder",
    "save_pretrained",
    "saved_config_of",
    "stage",
]
