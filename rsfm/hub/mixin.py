"""``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` methods in the shape of
``huggingface_hub.ModelHubMixin``, delegating to the rsfm folder format (:mod:`rsfm.hub.save`)
and push (:mod:`rsfm.hub.push`), and :class:`Model`: the model class users get.

:class:`~rsfm.models.model.RsfmModel` (the network) lives below the factory and the Hub code, so
it cannot carry these methods itself without importing upwards. :class:`Model` adds them, and the
public constructors (:func:`create_model`, :func:`from_pretrained`, training) build ``Model``
through the factory's ``model_class`` argument.

>>> model = rsfm.Model.from_pretrained("org/flood-model")       # a Hub repo or a folder
>>> model.save_pretrained("out/")                               # config.json, weights, README.md
>>> model.push_to_hub("org/flood-model-v2", datasets=["org/floods"])
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelHubMixin

from rsfm import factory
from rsfm.hub import save
from rsfm.hub.card import model_card
from rsfm.hub.push import push
from rsfm.hub.save import save_pretrained, saved_config_of
from rsfm.models.model import RsfmModel
from rsfm.schema import Recipe

__all__ = ["Model", "RsfmHubMixin", "create_model", "from_pretrained"]


class RsfmHubMixin(
    ModelHubMixin,
    library_name="rsfm",
    repo_url="https://github.com/rsfm-dev/rsfm",
    tags=["rsfm", "remote-sensing", "earth-observation"],
):
    """Hub methods for rsfm models (see the module docstring).

    The class method :meth:`from_pretrained` returns the model rsfm rebuilds from the folder's
    ``config.json``; ``save_pretrained`` writes the rsfm folder (never huggingface_hub's generic
    ``config.json``) and a model card.
    """

    # ------------------------------------------------------------------------------- saving
    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | os.PathLike[str],
        *,
        recipe: Recipe | None = None,
        metrics: Mapping[str, Any] | None = None,
        datasets: Sequence[str] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        **push_to_hub_kwargs: Any,
    ) -> Any:
        """Write the model folder (``config.json``, weights, LoRA adapter, ``README.md``).

        Args:
            save_directory: Target folder.
            recipe: Training recipe (``recipe.yaml``).
            metrics: Metrics of these weights (None: those the model was loaded with).
            datasets: Hub dataset ids for the card (None: those the model was loaded with).
            repo_id: Repo the card's usage lines name, and the push target.
            push_to_hub: Also upload the folder to ``repo_id``.
            **push_to_hub_kwargs: ``token``, ``private``, ``branch``, ``commit_message``,
                ``lora_only``, ``api`` for the upload.

        Returns:
            The ``CommitInfo`` when pushed, else None.
        """
        folder = save_pretrained(self, save_directory, recipe=recipe, metrics=metrics,  # type: ignore[arg-type]
                                 datasets=datasets)
        self.generate_model_card(repo_id or str(folder)).save(folder / "README.md")
        if not push_to_hub:
            return None
        kwargs = dict(push_to_hub_kwargs)
        if "branch" in kwargs:
            kwargs["revision"] = kwargs.pop("branch")
        return push(folder, repo_id or folder.name, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        save_pretrained(self, save_directory)  # type: ignore[arg-type]

    def generate_model_card(self, repo_id: str = "MODEL", *args: Any, lora_only: bool = False,
                            description: str = "", **kwargs: Any) -> ModelCard:
        """The model card of this model (see :func:`rsfm.hub.model_card`)."""
        return model_card(saved_config_of(self), repo_id, lora_only=lora_only,  # type: ignore[arg-type]
                          description=description)

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> Any:
        """Rebuild a model from a Hub repo or a folder (see :func:`rsfm.hub.from_pretrained`).

        Args:
            pretrained_model_name_or_path: ``ORG/NAME`` or a local folder.
            force_download: Download again even when cached.
            token: Hub token for private repos (never printed).
            cache_dir: Hub cache override.
            local_files_only: Use the local Hub cache only.
            revision: Hub revision.
            **model_kwargs: ``weights`` (``best``/``last``), ``device``, ``merge``.
        """
        return cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path), revision=revision, cache_dir=cache_dir,
            force_download=force_download, local_files_only=local_files_only, token=token,
            **model_kwargs,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | os.PathLike[str] | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        weights: str = "best",
        device: str | None = None,
        merge: bool = True,
        **model_kwargs: Any,
    ) -> Any:
        if model_kwargs:
            raise TypeError(f"from_pretrained() got unexpected keyword arguments "
                            f"{sorted(model_kwargs)}; rsfm models rebuild from config.json "
                            "(weights=, device=, merge= are accepted).")
        return save.from_pretrained(
            model_id, revision, cache_dir=None if cache_dir is None else str(cache_dir),
            weights=weights, device=device, merge=merge, token=token,
            force_download=force_download, local_files_only=local_files_only,
            model_class=cls if issubclass(cls, RsfmModel) else RsfmModel)

    # ------------------------------------------------------------------------------ pushing
    def push_to_hub(  # type: ignore[override]
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool = True,
        token: str | None = None,
        branch: str | None = None,
        lora_only: bool | None = None,
        recipe: Recipe | None = None,
        metrics: Mapping[str, Any] | None = None,
        datasets: Sequence[str] | None = None,
        api: Any = None,
    ) -> Any:
        """Save the model to a temporary folder and upload it in one commit (see
        :func:`rsfm.hub.push`); ``private`` defaults to True as in ``rsfm push``.

        Returns:
            huggingface_hub's ``CommitInfo`` (a ``str``: the commit URL).
        """
        with tempfile.TemporaryDirectory(prefix="rsfm-save-") as tmp:
            folder = save_pretrained(self, Path(tmp) / "model", recipe=recipe,  # type: ignore[arg-type]
                                     metrics=metrics, datasets=datasets)
            return push(folder, repo_id, token=token, private=private, revision=branch,
                        commit_message=commit_message, lora_only=lora_only, api=api)


class Model(RsfmModel, RsfmHubMixin):
    """An rsfm model with the Hub methods: ``Model.from_pretrained``, ``model.save_pretrained``,
    ``model.push_to_hub`` (what :func:`create_model`, :func:`from_pretrained` and training build).
    """


@functools.wraps(factory.create_model, assigned=("__doc__",))
def create_model(*args: Any, **kwargs: Any) -> Model:
    """:func:`rsfm.factory.create_model` building a :class:`Model`."""
    return factory.create_model(*args, model_class=Model, **kwargs)  # type: ignore[return-value]


@functools.wraps(save.from_pretrained, assigned=("__doc__",))
def from_pretrained(*args: Any, **kwargs: Any) -> Model:
    """:func:`rsfm.hub.save.from_pretrained` building a :class:`Model`."""
    return save.from_pretrained(*args, model_class=Model, **kwargs)  # type: ignore[return-value]
