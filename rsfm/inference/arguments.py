"""Checks of :func:`rsfm.predict`'s Python arguments, before any model is loaded.

The command line hands ``predict`` paths and lists; Python callers can hand it anything. These
checks turn the common slips (an array where a file is expected, one string where a list of
band names is expected) into messages that name the argument, instead of a raw ``TypeError``
deep in :mod:`pathlib` or a string split into characters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rsfm.errors import ConfigError

__all__ = ["check_file_bands", "check_inputs", "check_predict_arguments"]


def _is_array(value: Any) -> bool:
    """A numpy array, torch tensor or the like (no import of either needed to tell)."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(
        value, (str, os.PathLike))


def _kind(value: Any) -> str:
    shape = getattr(value, "shape", None)
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def check_inputs(inputs: Any, what: str = "predict") -> None:
    """Raises ConfigError unless ``inputs`` is a path or a list of paths.

    Args:
        inputs: ``predict``'s ``inputs``.
        what: The function named in messages.

    Raises:
        ConfigError: An array or tensor (says how to predict one), or anything else that is
            not a ``str`` / ``os.PathLike`` or a list of them (names ``inputs`` and the value).
    """
    if isinstance(inputs, (str, os.PathLike)):
        return
    if isinstance(inputs, Sequence) and not _is_array(inputs):
        items = list(inputs)
    elif isinstance(inputs, Iterable) and not _is_array(inputs) and not isinstance(
            inputs, (Mapping, bytes)):
        return  # a generator: reading it here would consume it; predict checks each path
    else:
        items = [inputs]
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            continue
        where = "inputs" if item is inputs else "an item of inputs"
        if _is_array(item):
            raise ConfigError(
                f"{what}: {where} is {_kind(item)}, but inputs must be GeoTIFF paths (a file, a "
                "folder or a list of paths): predict reads the bands, georeference and nodata "
                "from the files. To predict an array in memory, normalise it as "
                "model.input_spec says and call the model on a tensor, "
                "model(torch.from_numpy(x)[None]); "
                "rsfm.inference.predict_array returns the prediction as arrays (from files).",
                key="inputs")
        raise ConfigError(f"{what}: {where} is {_kind(item)} ({item!r:.80}), but inputs must "
                          "be GeoTIFF paths (str or pathlib.Path), a folder, or a list of "
                          "them.", key="inputs")


def check_file_bands(file_bands: Any, what: str = "predict") -> None:
    """Raises ConfigError unless ``file_bands`` is None or a list of band names.

    Raises:
        ConfigError: A single string (``'VV,VH'`` would be read as five one-letter bands), or
            items that are not names (names ``file_bands`` and the value).
    """
    if file_bands is None:
        return
    if isinstance(file_bands, str):
        names = [b.strip() for b in file_bands.replace(";", ",").split(",") if b.strip()]
        example = names if len(names) > 1 else ["VV", "VH"]
        raise ConfigError(f"{what}: file_bands must be a list of band names, one per band of "
                          f"the file in file order (e.g. {example}), not the string "
                          f"{file_bands!r}.", key="file_bands")
    if not isinstance(file_bands, Sequence) or _is_array(file_bands):
        raise ConfigError(f"{what}: file_bands must be a list of band names, one per band of "
                          f"the file in file order, got {_kind(file_bands)}.", key="file_bands")
    wrong = [b for b in file_bands if not isinstance(b, str) or not b.strip()]
    if wrong:
        raise ConfigError(f"{what}: file_bands lists {wrong[0]!r}, which is not a band name; "
                          f"give names such as ['VV', 'VH'] (got {list(file_bands)!r}).",
                          key="file_bands")


def check_predict_arguments(inputs: Any, file_bands: Any = None, what: str = "predict") -> None:
    """:func:`check_inputs` and :func:`check_file_bands`: the first lines of
    :func:`rsfm.predict` (and :func:`~rsfm.inference.predict.predict_array`)."""
    check_inputs(inputs, what)
    check_file_bands(file_bands, what)
