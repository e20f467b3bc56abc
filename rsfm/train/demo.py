"""The demo end to end: train ``recipes/demo.yaml`` (Sen1Floods11 Sentinel-1 flood chips bundled
with rsfm), then predict a validation chip and write a prediction PNG.

    python -m rsfm.train.demo [--out runs/demo] [key.path=value ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEMO_CHIP", "run_demo"]

DEMO_CHIP = "demo_data/sen1floods11/val/S1Hand/USA_905409_S1Hand.tif"  # relative to the recipe


def run_demo(out_dir: str | Path | None = None, overrides: Sequence[str] = (),
             progress: bool = True) -> dict[str, Any]:
    """Train the demo recipe from scratch and predict one validation chip.

    Returns:
        ``{"run_dir", "miou", "majority_miou", "prediction", "preview", "train"}``.
    """
    from rsfm.errors import ConfigError
    from rsfm.recipe import _shipped_recipe
    from rsfm.train.loop import train

    recipe = _shipped_recipe("demo")
    if recipe is None:
        raise ConfigError("The demo recipe (recipes/demo.yaml) is not installed.")
    extra = ["output.overwrite=true", f"train.progress={str(progress).lower()}"]
    if out_dir is not None:
        extra.append(f"output.dir={Path(out_dir).resolve()}")
    result = train(recipe, [*extra, *overrides])
    run_dir = Path(result["run_dir"])
    best = next(h for h in result["history"] if h["epoch"] == result["best_epoch"])
    out: dict[str, Any] = {"run_dir": str(run_dir), "miou": best.get("val_miou"),
                           "majority_miou": best.get("val_majority_miou"), "train": result}
    from rsfm.inference.predict import predict

    chip = recipe.parent / DEMO_CHIP
    predict(str(run_dir), chip, run_dir / "prediction.tif", preview=run_dir / "prediction.png",
            progress=False)
    out["prediction"] = str(run_dir / "prediction.tif")
    out["preview"] = str(run_dir / "prediction.png")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rsfm.train.demo", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="key.path=value")
    parser.add_argument("--out", help="run directory (default runs/demo)")
    args = parser.parse_args(argv)
    res = run_demo(args.out, args.overrides)
    sys.stdout.write(
        f"[rsfm] demo: validation mIoU {res['miou']:.3f} (majority-class baseline "
        f"{res['majority_miou']:.3f}); prediction {res['prediction']}, preview {res['preview']}; "
        f"run directory {res['run_dir']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
