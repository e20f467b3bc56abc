"""Checks that run before any compute: by ``rsfm check`` and at the start of train/evaluate.

Everything here reads the recipe, the adapter card and the file system only (no model is built,
no image is read), so a bad recipe fails in a second with a message naming the key at fault,
not after minutes of loading (STYLE.md: check before you spend). Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.util
import itertools
import os
import tempfile
from pathlib import Path

from rsfm.errors import ConfigError
from rsfm.modelcheck import check_model_config, model_card
from rsfm.schema import Recipe
from rsfm.spec import InputSpec, resolve_input_spec

__all__ = ["TRACKERS", "check_output_dir", "check_trackers", "check_writable_dir", "preflight"]

_GLOB = set("*?[")
# accelerate's trackers: name -> (modules any of which makes it available, how to install it)
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install 'rsfm[trackers]'"),
    "wandb": (("wandb",), "pip install 'rsfm[wandb]'"),
    "mlflow": (("mlflow",), "pip install 'rsfm[mlflow]'"),
    "comet_ml": (("comet_ml",), "pip install comet_ml"),
    "aim": (("aim",), "pip install aim"),
    "clearml": (("clearml",), "pip install clearml"),
    "dvclive": (("dvclive",), "pip install dvclive"),
    "swanlab": (("swanlab",), "pip install swanlab"),
    "trackio": (("trackio",), "pip install trackio"),
}


def check_trackers(names: tuple[str, ...]) -> None:
    """Fail unless every tracker in ``output.trackers`` is known to accelerate and installed.

    Raises:
        ConfigError: An unknown tracker (with close matches) or one that is not installed (with
            the extra or package to install).
    """
    for name in names:
        if name not in TRACKERS:
            close = difflib.get_close_matches(name, list(TRACKERS), n=2)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"output.trackers: unknown tracker {name!r}.{hint} Trackers "
                              f"(through accelerate): {sorted(TRACKERS)}.")
        modules, install = TRACKERS[name]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            raise ConfigError(f"output.trackers: {name!r} is not installed; {install} (or remove "
                              "it: metrics.jsonl and metrics.csv are always written).")


def check_writable_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Fail unless ``path`` is (or can be created as) a writable folder; leaves nothing behind (it
    creates and removes an empty temporary folder to be sure).

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
    # os.access alone says yes to root, and on read-only mounts, NFS root_squash, FUSE or /proc
    # where creating a folder still fails: try it (an empty temporary folder, removed at once).
    try:
        if not os.access(probe, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission in '{probe}'")
        os.rmdir(tempfile.mkdtemp(prefix=".rsfm-probe-", dir=probe))
    except OSError as err:
        raise ConfigError(f"{what} '{path}' cannot be written: {err} (read-only file system or "
                          "folder). Choose another location.") from None
    return path


def _data_folders(recipe: Recipe) -> list[tuple[str, Path, bool]]:
    """``(key, folder or pattern, is_pattern)`` of every ``data.<split>.images`` / ``labels``
    entry that is a folder or a wildcard pattern (a single file is neither)."""
    out = []
    for split, source in recipe.data.sources():
        for what, entry in source.paths(("images", "labels")):
            path = Path(entry).expanduser()
            if any(_GLOB.intersection(q) for q in path.parts):
                out.append((f"data.{split}.{what}", path.absolute(), True))
            elif path.is_dir():
                out.append((f"data.{split}.{what}", path, False))
    return out


def _inside_pattern(path: Path, pattern: Path) -> Path | None:
    """The folder among ``path`` and its parents that ``pattern`` matches (part by part, so
    ``*`` never crosses a ``/``); a ``**`` pattern counts from its fixed leading folders."""
    if "**" in pattern.parts:
        fixed = Path(*itertools.takewhile(lambda q: not _GLOB.intersection(q), pattern.parts))
        return fixed if fixed == path or fixed in path.parents else None
    for folder in (path, *path.parents):
        if len(folder.parts) == len(pattern.parts) and all(
                fnmatch.fnmatchcase(a, b) for a, b in zip(folder.parts, pattern.parts)):
            return folder
    return None


def check_output_dir(recipe: Recipe) -> None:
    """Fail on an empty ``output.dir`` (it would train into the working folder, next to and over
    whatever is there), and on one that is, or lies inside, a ``data.*.images`` / ``labels``
    folder (the run would write among the files it reads).

    Raises:
        ConfigError: ``output.dir`` is empty or blank, or is (inside) a data folder.
    """
    if not str(recipe.output.dir).strip():
        raise ConfigError(f"output.dir is empty, which would write the run into the working "
                          f"folder '{Path.cwd()}'. Give the run its own folder, e.g. "
                          "output.dir=runs/{name} (the default).", key="output.dir")
    out = recipe.output_dir().expanduser().absolute()
    real = out.resolve()
    for key, folder, is_pattern in _data_folders(recipe):
        data = _inside_pattern(real, folder) if is_pattern else folder.resolve()
        if data is not None and (real == data or data in real.parents):
            where = "is" if real == data else "lies inside"
            folder = data
            raise ConfigError(
                f"output.dir '{out}' {where} the {key} folder '{folder}': the run would write "
                "its checkpoints, weights and recipe among the files it reads. Give the run a "
                "folder outside the data, e.g. output.dir=runs/{name} (the default).",
                key="output.dir")


def preflight(recipe: Recipe) -> InputSpec:
    """Resolve the recipe's :class:`~rsfm.spec.InputSpec` and run every check that needs no data.

    Returns:
        The InputSpec (resolved once here; callers pass it on).

    Raises:
        ConfigError: Bands/classes stated twice and differently, statistics that do not fit,
            impossible model options, a tile size the backbone cannot take, an empty
            ``output.dir``, one inside a data folder or one that cannot be written, a tracker
            that is not installed.
    """
    spec = resolve_input_spec(recipe.model, model_card(recipe.model.backbone), recipe.data)
    check_model_config(recipe.model, spec)
    check_output_dir(recipe)
    check_writable_dir(recipe.output_dir(), "output.dir")
    check_trackers(recipe.output.trackers)
    return spec
