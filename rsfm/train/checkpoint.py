"""Atomic file writes and resumable checkpoints.

Every file is written to a temporary name in the same directory and renamed over the target
(``os.replace`` is atomic on POSIX), so a run killed at any moment leaves either the previous or
the new file. A checkpoint directory is assembled under ``checkpoints/.tmp-*`` and renamed to
``checkpoints/epoch-NNNN`` once complete (``trainer_state.json`` is its last file); the
``checkpoints/latest`` pointer is then replaced atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "find_latest_checkpoint",
    "prune_checkpoints",
    "save_safetensors",
]

STATE_FILE = "trainer_state.json"


def atomic_write(path: str | os.PathLike[str], writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` then rename the temporary file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; published files get normal modes
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write JSON atomically (indented, keys in insertion order)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=_default) + "\n")


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_safetensors(state: Mapping[str, Any], path: str | os.PathLike[str],
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Save a state dict as safetensors atomically (tensors made contiguous, shared storage
    cloned)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=dict(metadata or {})))


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
