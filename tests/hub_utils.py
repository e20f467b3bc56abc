"""Helpers for the Hub tests: a Hugging Face cache layout, a recording ``HfApi`` stand-in, and
small model folders written through ``rsfm.hub.save_pretrained``."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
S1 = ROOT / "tests" / "data" / "sen1floods11"
SCENE = S1 / "S1Hand" / "Bolivia_312675_S1Hand.tif"
LEGACY = ROOT / "tests" / "data" / "legacy_v0_1_0"
SECRET = "hf_NotARealTokenButCheckItNeverLeaks123"


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


def publish(cache: Path, repo_id: str, files: dict[str, bytes], stage: Path) -> None:
    """Put the files of a recorded commit into the offline Hub cache as ``repo_id``."""
    for name, blob in files.items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_bytes(blob)
        place_in_hub_cache(cache, repo_id, name, stage / name)


class RecordingApi:
    """Stands in for ``huggingface_hub.HfApi``: records what would be uploaded."""

    def __init__(self):
        self.repos, self.commits, self.branches = [], [], []

    def create_repo(self, repo_id, private=True, exist_ok=False, **kw):
        self.repos.append({"repo_id": repo_id, "private": private, "exist_ok": exist_ok})

    def create_branch(self, repo_id, branch, exist_ok=False, **kw):
        self.branches.append((repo_id, branch))

    def create_commit(self, repo_id, operations, commit_message="", revision=None, **kw):
        files = {}
        for op in operations:
            src = op.path_or_fileobj
            files[op.path_in_repo] = Path(src).read_bytes() if isinstance(src, str) else src
        self.commits.append({"repo_id": repo_id, "files": files, "message": commit_message,
                             "revision": revision})
        return "commit-info"


def tiny_recipe_obj(out: Path, **sections):
    """The training tests' tiny DOFA VV/VH recipe, validated (a ``Recipe``)."""
    from test_train import tiny_recipe

    from rsfm.recipe import validate_recipe

    return validate_recipe(tiny_recipe(out, **sections))


def tiny_model(recipe, seed: int = 0):
    """The recipe's model, built for its resolved ``InputSpec`` (seeded random weights)."""
    import torch

    from rsfm.cards import get_card
    from rsfm.factory import create_model
    from rsfm.spec import resolve_input_spec

    torch.manual_seed(seed)
    spec = resolve_input_spec(recipe.model, get_card(recipe.model.backbone), recipe.data)
    return create_model(recipe.model, input_spec=spec).eval()


def saved_run(out: Path, *, metrics: dict | None = None, datasets=None, **data) -> Path:
    """A folder shaped like a run directory: the tiny recipe's model saved with its recipe,
    an InputSpec with every input fact set (stats normalisation with a value scale, nodata,
    ignore index, tile size) and validation/test metrics."""
    from rsfm.hub import save_pretrained

    data = {"ignore_index": 255, "nodata": -9999.0, "tile_size": 64,
            "normalization": {"mode": "stats", "mean": [-10.0, -17.0], "std": [4.0, 5.0],
                              "value_scale": 0.5}, **data}
    recipe = tiny_recipe_obj(out, data=data)
    model = tiny_model(recipe)
    metrics = {"epoch": 2, "val_miou": 0.61, "val_macro_f1": 0.7, "val_accuracy": 0.9,
               "test_miou": 0.58, "val_confusion_matrix": [[1, 2], [3, 4]]} if metrics is None else metrics
    return save_pretrained(model, out, recipe=recipe, metrics=metrics, datasets=datasets)
