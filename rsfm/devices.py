"""The one check of a ``device`` argument (``from_pretrained(device=...)``, ``rsfm predict
--device``, ``rsfm.evaluate(device=...)``), made before any model is read or any tile runs.

Its home is a low layer because ``rsfm.hub``, ``rsfm.inference`` and ``rsfm.evaluation``
all check devices; :mod:`rsfm.inference.precision` re-exports it.
"""

from __future__ import annotations

import torch

from rsfm.errors import ConfigError

__all__ = ["check_device"]


def check_device(device: str | torch.device | None,
                 option: str = "--device") -> torch.device | None:
    """The torch device named by ``device`` (None: the default), checked before any compute.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` (or a ``torch.device``), or None.
        option: How the caller names the argument in messages (``--device``, ``device=``).

    Raises:
        ConfigError: Not a device name, or a device this machine does not have (names the
            option, the value and what is available).
    """
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{option} {device!r} is not a device; use cpu, cuda, cuda:N or "
                          "mps.") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"{option} {device!r}: this machine has no CUDA GPU that torch can "
                              f"use (torch {torch.__version__}, CUDA build "
                              f"{torch.version.cuda or 'none'}); use {option} cpu.")
        if dev.index is not None and dev.index >= n:
            raise ConfigError(f"{option} {device!r}: this machine has {n} CUDA GPU(s) "
                              f"(cuda:0..cuda:{n - 1}).")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                    and torch.backends.mps.is_available()):
        raise ConfigError(f"{option} {device!r}: Apple MPS is not available here; use "
                          f"{option} cpu.")
    return dev
