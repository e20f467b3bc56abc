"""Checks that run before any compute: by ``rsfm check`` and at the start of train/evaluate.

Everything here reads the recipe, the adapter card and the file system only (no model is built,
no image is read), so a bad recipe fails in a second with a message naming the key at fault,
not after minutes of loading (STYLE.md: check before you spend). Nothing here imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from rsfm.errors import ConfigError
from rsfm.modelcheck import check_model_config, model_card
from rsfm.schema import Recipe
from rsfm.spec import InputSpec, resolve_input_spec

__all__ = ["check_writable_dir", "preflight"]


def check_writable_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Fail unless ``path`` is (or can be created as) a writable folder; creates nothing.

    Raises:
        ConfigError: A parent is a file, or the nearest existing parent is not writable.
    """
    path = Path(path).expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{what} '{path}' cannot be created: '{probe}' is a file, not a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} '{path}' cannot be written: no write permission in '{probe}' "
                          "(read-only file system or folder). Choose another location.")
    return path


def preflight(recipe: Recipe) -> InputSpec:
    """Resolve the recipe's :class:`~rsfm.spec.InputSpec` and run every check that needs no data.

    Returns:
        The InputSpec (resolved once here; callers pass it on).

    Raises:
        ConfigError: Bands/classes stated twice and differently, statistics that do not fit,
            impossible model options, a tile size the backbone cannot take, an output folder
            that cannot be written.
    """
    spec = resolve_input_spec(recipe.model, model_card(recipe.model.backbone), recipe.data)
    check_model_config(recipe.model, spec)
    check_writable_dir(recipe.output_dir(), "output.dir")
    return spec
