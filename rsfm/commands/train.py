"""``rsfm train RECIPE [key.path=value ...] [--resume]``: train a recipe.

The same entry point runs under ``accelerate launch -m rsfm.train`` (multi-process, multi-GPU,
mixed precision from ``accelerate config``), under ``torchrun -m rsfm.train`` and as a plain
process. The training loop logs its status lines; this command shows them (main process only).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rsfm.errors import ConfigError, RsfmError
from rsfm.io import disk_full_message, disk_full_reason
from rsfm.recipe import load_recipe
from rsfm.train.launch import relaunch_if_single
from rsfm.train.loop import train

__all__ = ["add_arguments", "run", "show_status_lines"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm train``."""
    parser.add_argument("recipe", help="recipe YAML file (or the name of a shipped recipe: demo)")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value",
                        help="recipe overrides, e.g. train.epochs=3 train.max_time=10m")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last intact checkpoint of the output directory")
    parser.add_argument("--auto-resume", action="store_true",
                        help="resume when a checkpoint exists, else start fresh")


class _StatusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "[rsfm] " if record.levelno <= logging.INFO else (
            f"[rsfm] {record.levelname.lower()}: ")
        return prefix + record.getMessage()


def show_status_lines() -> None:
    """Training status lines (``rsfm.train`` INFO) to stdout on the main process; the other
    processes show errors only."""
    main = int(os.environ.get("RANK", "0")) == 0
    logger = logging.getLogger("rsfm.train")
    if any(getattr(h, "_rsfm_status", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_StatusFormatter())
    handler._rsfm_status = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if main else logging.ERROR)
    logger.propagate = False


def run(args: argparse.Namespace) -> int:
    """Train (see :func:`rsfm.train.loop.train`) and print the outcome."""
    show_status_lines()
    relaunch_if_single()
    resume = True if args.resume else ("auto" if args.auto_resume else None)
    try:
        result = train(args.recipe, args.overrides, resume=resume)
    except Exception as err:
        full = None if isinstance(err, RsfmError) else disk_full_reason(err)
        if full is None:  # an RsfmError already names its file
            raise
        # the writers (accelerate, safetensors) do not name the file: name the run directory
        run_dir = load_recipe(args.recipe, args.overrides).output_dir().absolute()
        raise ConfigError(disk_full_message(
            f"the run directory '{run_dir}'", full,
            fix="set output.dir on another disk; --resume continues from the last saved "
                "checkpoint, if any")) from None
    best = "n/a" if result.best_metric is None else f"{result.best_metric:.4f}"
    test = ""
    if result.test_metrics:
        # without validation the best checkpoint is the lowest train loss: show the test split's
        # headline metric instead (the first one its evaluation reports)
        key = f"test_{result.metric}"
        if key not in result.test_metrics:
            key = next((k for k, v in result.test_metrics.items()
                        if isinstance(v, float) and k != "test_loss"), key)
        value = result.test_metrics.get(key)
        test = f"; {key.replace('_', ' ', 1)} = {'n/a' if value is None else f'{value:.4f}'}"
    if int(os.environ.get("RANK", "0")) == 0:
        sys.stdout.write(f"[rsfm] done: best {result.metric} = {best} at epoch "
                         f"{result.best_epoch}{test}; run directory {result.run_dir}\n")
    return 0

