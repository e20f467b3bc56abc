"""The rsfm side of ``bench_quality.py``: a recipe, ``rsfm.train``, then the best checkpoint
through ``rsfm.from_pretrained`` on the test images.

Everything goes through rsfm's public path. The only hook is a ``callbacks=`` function that
records the time of every optimizer step and, with a budget, stops the run by raising once the
budget is spent (``rsfm.train`` lets callback exceptions propagate; the best checkpoint of the
epochs before stays on disk).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from _quality_data import IGNORE, TILE, BenchDataset, test_miou


class BudgetExceeded(Exception):
    """Raised from the step callback when the wall-clock budget is spent."""


def recipe(ds: BenchDataset, mean: list[float], std: list[float], *, seed: int, max_steps: int,
           run_dir: Path, backbone: str = "resnet18") -> dict[str, Any]:
    """The benchmark recipe (what a user writes for this data; defaults left alone)."""
    split = ds.splits
    data: dict[str, Any] = {
        "kind": "scenes",  # 128-px grid tiles of the chips / tiles, like the plain loop
        "train": {"images": [str(i) for i, _ in split["train"]],
                  "labels": [str(lab) for _, lab in split["train"]]},
        "val": {"images": [str(i) for i, _ in split["val"]],
                "labels": [str(lab) for _, lab in split["val"]]},
        "classes": list(ds.classes),
        "label_ignore_values": list(ds.label_ignore_values),
        "ignore_index": IGNORE,
        "tile_size": TILE,
        "normalization": {"mode": "stats", "mean": mean, "std": std},
        "augment": {"hflip": 0.5, "vflip": 0.5, "rot90": 0.5},
        "batch_size": 16,
    }
    if ds.file_bands:
        data["file_bands"] = list(ds.file_bands)  # JPEGs carry no band names
    return {
        "name": f"bench_quality_{ds.name}",
        "model": {"task": "segmentation", "backbone": backbone, "head": "unet",
                  "num_classes": ds.num_classes, "bands": list(ds.bands), "pretrained": False},
        "data": data,
        "train": {
            "epochs": 1000,  # max_steps ends the run
            "max_steps": max_steps,
            "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.01},
            "scheduler": {"name": "cosine", "warmup_epochs": 0.5},
            "loss": {"name": "ce+dice"},
            "seed": seed,
        },
        "eval": {"metric": "miou"},
        "output": {"dir": str(run_dir), "overwrite": True},
    }


def input_spec(ds: BenchDataset, mean: list[float], std: list[float]) -> Any:
    """The :class:`~rsfm.spec.InputSpec` rsfm resolves for the benchmark recipe (bands, files'
    band order, statistics, classes, tile size). The plain side predicts with it too, so both
    sides are tiled, blended and normalised alike at test time."""
    import rsfm
    from rsfm.modelcheck import model_card
    from rsfm.spec import resolve_input_spec

    r = rsfm.load_recipe(recipe(ds, mean, std, seed=0, max_steps=1, run_dir=Path("unused")))
    return resolve_input_spec(r.model, model_card(r.model.backbone), r.data)


def run(ds: BenchDataset, mean: list[float], std: list[float], *, seed: int, max_steps: int,
        budget: float | None, workdir: Path, overrides: list[str], backbone: str) -> dict[str, Any]:
    """Train with ``rsfm.train`` and score the best checkpoint on the test split."""
    import rsfm

    run_dir = workdir / "run"
    marks: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    c0 = time.process_time()

    def clock(event: str, state: Any) -> None:
        if event == "step":
            marks.append((time.perf_counter() - t0, time.process_time() - c0))
            if budget is not None and marks[-1][0] > budget:
                raise BudgetExceeded

    result = None
    with contextlib.suppress(BudgetExceeded):
        result = rsfm.train(recipe(ds, mean, std, seed=seed, max_steps=max_steps, run_dir=run_dir,
                                   backbone=backbone), overrides, callbacks=[clock])
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0

    model = rsfm.from_pretrained(run_dir).eval()
    expected = input_spec(ds, mean, std)
    if model.input_spec != expected:  # config.json must record what the plain side uses too
        raise RuntimeError(f"rsfm's saved input spec {model.input_spec} differs from the "
                           f"benchmark's {expected}")
    scores = test_miou(model, model.input_spec, ds, workdir / "pred")
    return {
        "side": "rsfm", "steps": len(marks), "wall_seconds": wall, "cpu_seconds": cpu,
        "budget_stop": result is None, "step_marks": marks,
        "best_epoch": result.best_epoch if result else None,
        "best_val_miou": result.best_metric if result else None,
        "epochs": len(result.history) if result else None,
        "stop_reason": result.stop_reason if result else "budget",
        "backbone_stem": bool(getattr(model.backbone, "stem", False)), **scores,
    }
