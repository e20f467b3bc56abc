"""Resumable checkpoints (files are written with :mod:`rsfm.io`'s atomic writes).

A checkpoint directory is assembled under ``checkpoints/.tmp-*`` and renamed to
``checkpoints/epoch-NNNN`` once complete (``trainer_state.json`` is its last file); the
``checkpoints/latest`` pointer is then replaced atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsfm.io import atomic_write_json, atomic_write_text

__all__ = ["find_latest_checkpoint", "prune_checkpoints"]

STATE_FILE = "trainer_state.json"


def checkpoint_dir(run_dir: Path, epoch: int) -> Path:
    """``run_dir/checkpoints/epoch-NNNN``."""
    return Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}"


def find_latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint of a run (``None`` if there is none).

    The ``latest`` pointer is tried first; otherwise the highest complete ``epoch-*`` folder.
    """
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    pointer = root / "latest"
    if pointer.exists():
        cand = root / pointer.read_text().strip()
        if (cand / STATE_FILE).exists():
            return cand
    done = sorted(p for p in root.glob("epoch-*") if (p / STATE_FILE).exists())
    return done[-1] if done else None


def publish_checkpoint(tmp_dir: Path, final_dir: Path, state: Mapping[str, Any]) -> None:
    """Finish a checkpoint assembled in ``tmp_dir``: state file, rename, update ``latest``."""
    atomic_write_json(tmp_dir / STATE_FILE, state)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)
    atomic_write_text(final_dir.parent / "latest", final_dir.name + "\n")


def prune_checkpoints(run_dir: str | os.PathLike[str], keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints and stale temporary folders."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    done = sorted(p for p in root.glob("epoch-*") if (p / STATE_FILE).exists())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def read_state(ckpt: Path) -> dict[str, Any]:
    """The trainer state stored with a checkpoint."""
    return json.loads((Path(ckpt) / STATE_FILE).read_text())
