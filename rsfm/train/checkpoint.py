"""Resumable checkpoints (files are written with :mod:`rsfm.io`'s atomic writes).

A checkpoint directory is assembled under ``checkpoints/.tmp-*`` and renamed to
``checkpoints/epoch-NNNN`` once complete (``trainer_state.json`` is its last file); the
``checkpoints/latest`` pointer is then replaced atomically. :func:`find_resumable` also checks the
files themselves, so a checkpoint damaged after it was written (a truncated ``model.safetensors``
or ``optimizer.bin``) is skipped for the newest intact one.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsfm.io import atomic_write_json, atomic_write_text

__all__ = [
    "STATE_FILE",
    "checkpoint_dir",
    "checkpoint_problem",
    "complete_checkpoints",
    "find_latest_checkpoint",
    "find_resumable",
    "has_training_state",
    "prune_checkpoints",
    "publish_checkpoint",
    "read_state",
]

STATE_FILE = "trainer_state.json"


def checkpoint_dir(run_dir: str | os.PathLike[str], epoch: int) -> Path:
    """``run_dir/checkpoints/epoch-NNNN``."""
    return Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}"


def complete_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Published checkpoints (they have a state file), oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("epoch-*") if (p / STATE_FILE).exists())


def find_latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest published checkpoint of a run (``None`` if there is none).

    The ``latest`` pointer is tried first; otherwise the highest complete ``epoch-*`` folder.
    Files are not checked (see :func:`find_resumable`).
    """
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        cand = root / pointer.read_text().strip()
        if (cand / STATE_FILE).exists():
            return cand
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "shorter than its header"
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            return "truncated header"
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            return "unreadable header"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if size < 8 + n + end:
        return f"truncated ({size:,} of {8 + n + end:,} bytes)"
    return None


def _file_problem(path: Path) -> str | None:
    try:
        if path.suffix == ".safetensors":
            return _safetensors_problem(path)
        if path.suffix == ".json" or path.name == "latest":
            if path.suffix == ".json":
                json.loads(path.read_text())
            return None
        # accelerate writes everything else with torch.save: a zip archive (CRC-checked here)
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
        return None if bad is None else f"damaged member {bad!r}"
    except (OSError, ValueError, zipfile.BadZipFile, struct.error, KeyError, TypeError) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    return None


def checkpoint_problem(ckpt: str | os.PathLike[str]) -> str | None:
    """Why a published checkpoint cannot be resumed (``"optimizer.bin: truncated ..."``), or
    None when every file reads."""
    ckpt = Path(ckpt)
    if not (ckpt / STATE_FILE).is_file():
        return f"no {STATE_FILE}"
    for path in sorted(ckpt.rglob("*")):
        if path.is_file():
            problem = _file_problem(path)
            if problem:
                return f"{path.relative_to(ckpt)}: {problem}"
    return None


def find_resumable(run_dir: str | os.PathLike[str]) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest intact checkpoint, and the newer ones skipped with their problem."""
    skipped: list[tuple[Path, str]] = []
    for ckpt in reversed(complete_checkpoints(run_dir)):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt, skipped
        skipped.append((ckpt, problem))
    return None, skipped


def publish_checkpoint(tmp_dir: Path, final_dir: Path, state: Mapping[str, Any]) -> None:
    """Finish a checkpoint assembled in ``tmp_dir``: state file, rename, update ``latest``."""
    atomic_write_json(tmp_dir / STATE_FILE, state)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)
    atomic_write_text(final_dir.parent / "latest", final_dir.name + "\n")


def _weights_files(ckpt: Path) -> set[Path]:
    return {p for p in ckpt.glob("model*.safetensors")} | {ckpt / STATE_FILE,
                                                         ckpt / "config.json"}


def has_training_state(ckpt: str | os.PathLike[str]) -> bool:
    """Whether a checkpoint still holds the optimizer state (only the newest one does)."""
    return (Path(ckpt) / "optimizer.bin").is_file()


def prune_checkpoints(run_dir: str | os.PathLike[str], keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints, only the newest with its optimizer,
    scheduler and RNG state (the older ones keep their weights and trainer state); delete the
    rest and stale temporary folders."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    done = complete_checkpoints(run_dir)
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for older in done[-keep:-1]:
        weights = _weights_files(older)
        for f in sorted(older.rglob("*"), reverse=True):
            if f.is_file() and f not in weights:
                f.unlink()
            elif f.is_dir() and not any(f.iterdir()):
                f.rmdir()


def read_state(ckpt: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainer state stored with a checkpoint."""
    return json.loads((Path(ckpt) / STATE_FILE).read_text())
