"""Test-wide setup: an offline, throwaway Hugging Face cache (set before huggingface_hub loads)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# huggingface_hub reads these at import time, so they must be set before anything imports it.
_HF_HOME = tempfile.mkdtemp(prefix="rsfm-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)  # each xdist worker removes its own
os.environ["HF_HOME"] = _HF_HOME
os.environ.pop("HF_HUB_CACHE", None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest
import torch

# one thread per pytest-xdist worker (they share the cores), else up to two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def hub_cache() -> Path:
    """The offline Hub cache directory (``$HF_HOME/hub``) used by every test."""
    path = Path(_HF_HOME) / "hub"
    path.mkdir(parents=True, exist_ok=True)
    return path
