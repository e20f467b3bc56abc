"""The demo end to end: train ``recipes/demo.yaml`` (Sen1Floods11 Sentinel-1 flood chips bundled
with rsfm), then predict a validation chip and write a prediction PNG (``rsfm demo``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rsfm.errors import ConfigError
from rsfm.inference.predict import predict
from rsfm.recipe import _shipped_recipe
from rsfm.train.loop import train
from rsfm.train.state import TrainResult

__all__ = ["DEMO_CHIP", "DemoResult", "run_demo"]

DEMO_CHIP = "demo_data/sen1floods11/val/S1Hand/USA_905409_S1Hand.tif"  # relative to the recipe


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` made.

    Attributes:
        run_dir: The run directory.
        miou: Validation mIoU of the best epoch.
        majority_miou: mIoU of always predicting the most frequent class (the baseline).
        prediction: The predicted class GeoTIFF of the held-out chip.
        preview: Its PNG preview.
        train: The training result.
    """

    run_dir: Path
    miou: float | None
    majority_miou: float | None
    prediction: Path
    preview: Path
    train: TrainResult


def run_demo(out_dir: str | Path | None = None, overrides: Sequence[str] = (),
             progress: bool = True) -> DemoResult:
    """Train the demo recipe from scratch and predict one validation chip.

    Raises:
        ConfigError: The demo recipe is not installed.
    """
    recipe = _shipped_recipe("demo")
    if recipe is None:
        raise ConfigError("The demo recipe (recipes/demo.yaml) is not installed.")
    extra = ["output.overwrite=true", f"train.progress={str(progress).lower()}"]
    if out_dir is not None:
        extra.append(f"output.dir={Path(out_dir).resolve()}")
    result = train(recipe, [*extra, *overrides])
    best = next((h for h in result.history if h["epoch"] == result.best_epoch), {})
    run_dir = result.run_dir
    predict(str(run_dir), recipe.parent / DEMO_CHIP, run_dir / "prediction.tif",
            preview=run_dir / "prediction.png", progress=False)
    return DemoResult(run_dir, best.get("val_miou"), best.get("val_majority_miou"),
                      run_dir / "prediction.tif", run_dir / "prediction.png", result)
