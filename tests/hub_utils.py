"""Write files into a Hugging Face Hub cache layout, as ``hf_hub_download`` would leave them."""

from __future__ import annotations

import shutil
from pathlib import Path


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / f"models--{repo_id.replace('/', '--')}"


def place_in_hub_cache(cache: Path, repo_id: str, filename: str, source: Path, revision: str | None = None) -> Path:
    """Copy ``source`` to ``snapshots/<commit>/<filename>`` and point ``refs/main`` at the commit.

    ``revision=None`` (an unpinned card) uses a fake commit reachable through ``refs/main``.
    """
    commit = revision or "0123456789abcdef0123456789abcdef01234567"
    repo = repo_folder(cache, repo_id)
    target = repo / "snapshots" / commit / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return target


def remove_repo(cache: Path, repo_id: str) -> None:
    shutil.rmtree(repo_folder(cache, repo_id), ignore_errors=True)
