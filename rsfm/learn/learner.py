"""The notebook model: a :class:`Learner` holds a :class:`~rsfm.schema.Recipe` and its run folder.

Everything a learner does goes through the recipe machinery: ``fit`` is :func:`rsfm.train` on
the learner's recipe (the same accelerate loop as ``rsfm train recipe.yaml``), a second ``fit``
resumes the run folder, ``to_recipe`` writes the recipe out, and ``Learner.from_recipe`` /
``Learner.from_run`` bring a recipe or a run back into a notebook. The model classes
(:class:`UNet`, :class:`DeepLab`, :class:`FasterRCNN`...) only choose ``model.head``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from rsfm.config import TASKS, LoraSettings, NeckConfig
from rsfm.datasets import Datasets, build_datasets, build_split
from rsfm.errors import ConfigError
from rsfm.evaluation import EvaluationResult, run_recipe
from rsfm.evaluation import evaluate as _evaluate
from rsfm.hub import (
    ADAPTER_DIR,
    CONFIG_NAME,
    LAST_WEIGHTS_NAME,
    WEIGHTS_NAME,
    from_pretrained,
    model_card,
)
from rsfm.hub.push import push
from rsfm.inference.predict import PredictionResult, predict
from rsfm.inference.show import show_results as _show_results
from rsfm.io import atomic_write_text, check_output_path
from rsfm.learn.data import Data
from rsfm.learn.lr_find import LRFindResult, lr_range_test, plot_lr_find, suggest_lr
from rsfm.learn.picture import Picture
from rsfm.metrics import classification_metrics, segmentation_metrics
from rsfm.preflight import preflight
from rsfm.recipe import load_recipe, recipe_to_dict, recipe_to_yaml, validate_recipe
from rsfm.saved import read_saved_config
from rsfm.schema import DataSource, Recipe, TrainConfig, parse_duration
from rsfm.spec import InputSpec
from rsfm.train import checkpoint as ck
from rsfm.train.data import build_loaders
from rsfm.train.engine import Callback
from rsfm.train.loop import train
from rsfm.train.optim import build_optimizer
from rsfm.train.plots import plot_history
from rsfm.train.run_dir import RECIPE_HEADER
from rsfm.train.setup import build_model, make_trainable
from rsfm.train.state import TrainResult, TrainState
from rsfm.train.tasks import build_task
from rsfm.validation import dump, validate

__all__ = [
    "FCN",
    "FCOS",
    "Classifier",
    "DeepLab",
    "FasterRCNN",
    "Learner",
    "MaskRCNN",
    "RetinaNet",
    "UNet",
]

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = 10
MAX_EPOCHS = 1000  # the epoch cap of a fit limited by max_time only
# how the YAML files ``to_recipe`` writes start (an existing one may be replaced)
_TO_RECIPE_HEADER = "# Written by rsfm.learn ("


@contextlib.contextmanager
def _status_lines(verbose: bool) -> Iterator[None]:
    """Show rsfm's INFO status lines (epoch summaries...) while a call runs, unless logging is
    configured already (a notebook's root logger has no handler)."""
    logger = logging.getLogger("rsfm")
    if not verbose or logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def _holds_run(path: Path) -> bool:
    return any((path / n).exists() for n in ("checkpoints", "metrics.jsonl", WEIGHTS_NAME,
                                              CONFIG_NAME))


def _free_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : the first that holds no run."""
    candidate, n = base, 1
    while _holds_run(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _canonical(recipe: Recipe | Mapping[str, Any]) -> Recipe:
    """The recipe exactly as reading its YAML gives it (so ``to_recipe`` round-trips)."""
    data = recipe_to_dict(recipe) if isinstance(recipe, Recipe) else dict(recipe)
    return validate_recipe(data)


def _lora(lora: bool | LoraSettings | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``lora:`` section of ``lora=`` (None: no LoRA)."""
    if lora is None or lora is False:
        return None
    if lora is True:
        return {}
    return dump(lora) if isinstance(lora, LoraSettings) else dict(lora)



def _learning_rate(lr: Any) -> float | None:
    """``fit(lr=...)`` as a float (None: the ``lr_find`` suggestion).

    Raises:
        ConfigError: Not a positive finite number nor an :class:`LRFindResult` (names ``lr``).
    """
    if lr is None:
        return None
    if isinstance(lr, LRFindResult):
        return float(lr)
    value: float | None = None
    if not isinstance(lr, bool):
        try:
            value = float(lr)
        except (TypeError, ValueError):
            value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"fit: lr must be a positive number (the learning rate, e.g. 1e-3), "
                          f"an lr_find() result, or None to use the lr_find suggestion; got "
                          f"{lr!r}.", key="lr")
    return value

def _budget(epochs: Any, max_steps: Any,
            max_time: Any) -> tuple[int | None, int | None, str | float | None]:
    """``fit``'s ``epochs``, ``max_steps`` and ``max_time``, checked by the rule of the recipe's
    ``train.epochs``, ``train.max_steps`` and ``train.max_time`` (None: not given).

    Raises:
        ConfigError: A value the recipe would refuse (names the argument and the value).
    """
    section: dict[str, Any] = {"max_steps": max_steps, "max_time": max_time}
    if epochs is not None:
        section["epochs"] = epochs
    checked = validate(TrainConfig, section, "fit() arguments")
    return (None if epochs is None else checked.epochs), checked.max_steps, checked.max_time


class Learner:
    """A model built from :class:`~rsfm.learn.Data`, trained and used from a notebook.

    The learner holds the equivalent recipe (``learner.recipe``) and a run folder
    (``learner.run_dir``, default ``runs/<data>-<head>-<backbone>``). Use the model classes
    (:class:`UNet`, :class:`DeepLab`, :class:`Classifier`, :class:`FasterRCNN`...), or
    ``Learner(data, head=...)``.

    Args:
        data: What :func:`~rsfm.learn.prepare_data` returned.
        head: ``model.head`` (the model classes set it).
        backbone: A registered backbone (``rsfm.list_backbones()``).
        pretrained: Load the backbone's official weights (downloaded from the Hub at the
            card's pinned revision on the first ``fit`` / ``lr_find``).
        weights: Backbone weights from a local file or ``hf://`` URL instead.
        wavelengths: Band wavelengths in micrometres (DOFA), one per band.
        lora: True (the card's LoRA targets, r=8), a :class:`~rsfm.config.LoraSettings`, or a
            ``lora:`` mapping.
        window_size: ViT window attention (tokens per side).
        global_blocks: ViT blocks that keep global attention.
        freeze_backbone: Train the neck and head only.
        output_stride: ResNet dilation (DeepLab: 8 or 16).
        neck: Neck kind (``fpn``...) or a ``model.neck`` mapping.
        num_frames: Time steps per sample (Prithvi).
        head_kwargs: Head options (``aux_head``, ``anchor_sizes``...).
        backbone_kwargs: Architecture overrides (tiny test models).
        loss: ``train.loss.name`` (``ce``, ``dice``, ``focal``, ``ce+dice``, ``focal+dice``) or a
            ``train.loss`` mapping.
        seed: ``train.seed``.
        name: The recipe's name (default ``<data>-<head>-<backbone>``).
        out: The run folder (default ``runs/<name>``, or ``runs/<name>-2``... when taken).
        train: Other ``train:`` keys (``optimizer``, ``scheduler``, ``grad_accum_steps``...).
        eval: ``eval:`` keys (``metric``...).
        output: Other ``output:`` keys (``plots``, ``keep_checkpoints``, ``trackers``...).

    Raises:
        ConfigError: A model that does not fit the data, impossible options, a tile size the
            backbone cannot take, a run folder that holds another run (all before any compute).
    """

    heads: ClassVar[tuple[str, ...]] = ()  # the heads a model class builds (first: default)

    def __init__(
        self,
        data: Data,
        *,
        head: str | None = None,
        backbone: str = "resnet18",
        pretrained: bool = True,
        weights: str | None = None,
        wavelengths: Sequence[float] | None = None,
        lora: bool | LoraSettings | Mapping[str, Any] | None = None,
        window_size: int | None = None,
        global_blocks: Sequence[int] | None = None,
        freeze_backbone: bool = False,
        output_stride: int | None = None,
        neck: str | Mapping[str, Any] | NeckConfig | None = None,
        num_frames: int = 1,
        head_kwargs: Mapping[str, Any] | None = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        loss: str | Mapping[str, Any] | None = None,
        seed: int = 42,
        name: str | None = None,
        out: str | os.PathLike[str] | None = None,
        train: Mapping[str, Any] | None = None,
        eval: Mapping[str, Any] | None = None,
        output: Mapping[str, Any] | None = None,
    ) -> None:
        head = self._check_head(data, head)
        if weights is not None:
            pretrained = False
        model: dict[str, Any] = {"task": data.task, "backbone": backbone, "head": head,
                                 "num_classes": data.num_classes, "pretrained": pretrained,
                                 "weights": weights, "window_size": window_size,
                                 "freeze_backbone": freeze_backbone,
                                 "output_stride": output_stride, "num_frames": num_frames}
        if wavelengths is not None:
            model["wavelengths"] = [float(w) for w in wavelengths]
        if global_blocks is not None:
            model["global_blocks"] = list(global_blocks)
        if neck is not None:
            model["neck"] = ({"kind": neck} if isinstance(neck, str) else
                             dump(neck) if isinstance(neck, NeckConfig)
                             else dict(neck))
        if head_kwargs:
            model["head_kwargs"] = dict(head_kwargs)
        if backbone_kwargs:
            model["backbone_kwargs"] = dict(backbone_kwargs)
        if data.model_classes is not None and data.config.classes is None:
            model["classes"] = [c if isinstance(c, str) else dump(c) for c in data.model_classes]
        name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{data.path.stem}-{head}-{backbone}")
        train_section: dict[str, Any] = {"seed": seed, **dict(train or {})}
        if loss is not None:
            train_section["loss"] = {"name": loss} if isinstance(loss, str) else dict(loss)
        run = Path(out) if out is not None else _free_folder(Path("runs") / name)
        if out is not None and _holds_run(Path(out)):
            raise ConfigError(f"out='{out}' already holds a run. Continue it with "
                              f"Learner.from_run({str(out)!r}), or choose another out=.")
        recipe = {
            "name": name,
            "description": (f"rsfm.learn: {type(self).__name__}(data, backbone={backbone!r}) on "
                            f"'{data.path}' ({data.layout}, {data.task})."),
            "model": model,
            "data": dump(data.config),
            "train": train_section,
            "lora": _lora(lora),
            "eval": dict(eval or {}),
            "output": {**dict(output or {}), "dir": str(run.absolute())},
        }
        self._attach(_canonical(recipe), data)

    # ----------------------------------------------------------------------- construction
    @classmethod
    def _check_head(cls, data: Data, head: str | None) -> str:
        allowed = cls.heads or TASKS[data.task]
        if head is None:
            head = allowed[0]
        if head not in allowed:
            raise ConfigError(f"{cls.__name__}: head {head!r} is not one of {list(allowed)}.")
        task = next(t for t, heads in TASKS.items() if head in heads)
        if task != data.task:
            fitting = [c.__name__ for c in _MODEL_CLASSES if set(c.heads) & set(TASKS[data.task])]
            raise ConfigError(f"{cls.__name__} is a {task} model, but the data '{data.path}' "
                              f"holds {data.task} labels ({data.layout}); use "
                              f"{' or '.join(fitting)}.")
        return head

    def _attach(self, recipe: Recipe, data: Data, spec: InputSpec | None = None) -> None:
        self.recipe = recipe
        self.data = data
        self._spec = spec if spec is not None else preflight(recipe)  # check before spending
        self.result: TrainResult | None = None
        self.lr_found: LRFindResult | None = None
        self._datasets: Datasets | None = None
        self._model: Any = None
        self._model_stamp: Any = None
        log.info("%s: run folder '%s'", type(self).__name__, self.run_dir)

    @classmethod
    def from_recipe(cls, source: str | os.PathLike[str] | Mapping[str, Any] | Recipe,
                    overrides: Sequence[str] = ()) -> Learner:
        """A learner from a recipe (file, mapping or Recipe); ``key=value`` overrides apply.

        When the recipe's ``output.dir`` holds a run, the learner continues it: ``fit``
        resumes, ``show_results``/``predict`` use its weights. ``Learner.from_recipe`` returns
        the model class of the recipe's head (``UNet`` for ``head: unet``...).
        """
        recipe = load_recipe(source, overrides)
        klass = cls if cls.heads else _HEAD_CLASSES[recipe.model.head]
        if recipe.model.head not in klass.heads:
            raise ConfigError(f"{cls.__name__}.from_recipe: the recipe's model.head is "
                              f"{recipe.model.head!r}; use "
                              f"{_HEAD_CLASSES[recipe.model.head].__name__}.from_recipe or "
                              "Learner.from_recipe.")
        spec = preflight(recipe)
        learner = klass.__new__(klass)
        learner._attach(recipe, Data.from_recipe(recipe, spec), spec)
        return learner

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike[str]) -> Learner:
        """A learner continuing the run in ``run_dir`` (its latest recipe, output.dir = it)."""
        run = Path(run_dir)
        source = run_recipe(run) if run.is_dir() else None
        if source is None:
            raise ConfigError(f"'{run}' is not a run folder: no recipe.yaml in it.")
        return cls.from_recipe(source, [f"output.dir={run.absolute()}"])

    # ----------------------------------------------------------------------------- facts
    @property
    def run_dir(self) -> Path:
        """The run folder (``output.dir``)."""
        return self.recipe.output_dir().absolute()

    @property
    def spec(self) -> InputSpec:
        """The model's InputSpec (bands, normalisation, classes...)."""
        return self._spec

    def _state(self) -> TrainState | None:
        """The latest checkpoint's training state, or None before the first ``fit``."""
        latest = ck.find_latest_checkpoint(self.run_dir)
        return None if latest is None else TrainState.from_json(ck.read_state(latest))

    @property
    def trained(self) -> bool:
        """Whether the run folder holds trained weights."""
        return any((self.run_dir / n).is_file() for n in (WEIGHTS_NAME, LAST_WEIGHTS_NAME))

    def _require_trained(self, what: str) -> None:
        if not self.trained:
            raise ConfigError(f"{what}: the model is not trained yet (no weights in "
                              f"'{self.run_dir}'); call fit() first.")

    @property
    def model(self) -> Any:
        """The best weights of the run as an ``rsfm.Model`` (eval mode; reloaded when a later
        ``fit`` wrote new weights)."""
        self._require_trained("model")
        weights = self.run_dir / WEIGHTS_NAME
        which = "best" if weights.is_file() else "last"
        path = weights if which == "best" else self.run_dir / LAST_WEIGHTS_NAME
        stamp = (which, path.stat().st_mtime_ns, path.stat().st_ino)
        if self._model is None or self._model_stamp != stamp:
            self._model, self._model_stamp = from_pretrained(self.run_dir, weights=which), stamp
        return self._model

    def datasets(self) -> Datasets:
        """The recipe's train/validation/test datasets, read with the model's InputSpec."""
        if self._datasets is None:
            self._datasets = build_datasets(self.recipe, self._spec)
        return self._datasets

    @property
    def history(self) -> list[dict[str, Any]]:
        """One row per trained epoch (``metrics.jsonl``)."""
        path = self.run_dir / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if "epoch" in r and r.get("split") != "test"]

    def __repr__(self) -> str:
        m = self.recipe.model
        state = self._state()
        trained = ("not trained yet" if state is None else
                   f"{state.epoch + 1} epoch(s), {state.global_step} steps"
                   + (f", best {self.recipe.metric} {state.best_metric:.4f} (epoch "
                      f"{state.best_epoch})" if state.best_metric is not None else ""))
        return (f"{type(self).__name__}({m.backbone} + {m.head}, {m.task}, classes "
                f"{self.data.classes}, bands {self._spec.band_names}; run '{self.run_dir}': "
                f"{trained})")

    # ---------------------------------------------------------------------------- training
    def _steps_per_epoch(self) -> int:
        n = len(self.datasets().train)  # type: ignore[arg-type]
        batch = self.recipe.data.batch_size
        batches = n // batch if n > batch else 1
        return max(1, math.ceil(batches / self.recipe.train.grad_accum_steps))

    def _epochs(self, epochs: int | None, max_steps: int | None,
                max_time: str | float | None) -> int:
        """Epochs a ``fit`` call adds: ``epochs``, else enough for ``max_steps``, else the cap
        of a time budget, else the default."""
        if epochs is not None:
            return epochs
        if max_steps is not None and max_time is None:
            return math.ceil(max_steps / self._steps_per_epoch())
        return MAX_EPOCHS if max_time is not None else DEFAULT_EPOCHS

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 50, *,
                beta: float = 0.9, diverge: float = 4.0,
                plot: str | os.PathLike[str] | bool = True, verbose: bool = True) -> LRFindResult:
        """Learning-rate range test on a copy of the model (see :mod:`rsfm.learn.lr_find`).

        The copy starts from the run's latest weights when the model has been trained, else
        from a seeded initialisation; the learner's run is unchanged (the plot goes to
        ``<run>/plots/`` by default).

        Args:
            start_lr: First learning rate.
            end_lr: Last learning rate.
            num_steps: Steps (the test stops early when the loss diverges).
            beta: Loss smoothing.
            diverge: Stop when the smoothed loss exceeds this many times its minimum.
            plot: True: ``<run>/plots/lr_find.png``; a path; False: no plot.
            verbose: Log the suggestion.

        Returns:
            The result (``float(result)`` is the suggested learning rate; ``result.plot`` the
            PNG, shown inline in Jupyter).
        """
        from accelerate.utils import set_seed

        recipe, spec = self.recipe, self._spec
        set_seed(recipe.train.seed)
        model = make_trainable(build_model(recipe, spec), recipe)
        latest = ck.find_latest_checkpoint(self.run_dir)
        if latest is not None and (latest / WEIGHTS_NAME).is_file():
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(latest / WEIGHTS_NAME)))
        loaders = build_loaders(self.datasets(), recipe.data, recipe.train.seed)
        task = build_task(recipe.model.task, spec, loss=recipe.train.loss,
                          score_threshold=recipe.eval.score_threshold)
        optimizer = build_optimizer(model, recipe.train.optimizer)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        lrs, losses, smoothed, stop = lr_range_test(
            model, loaders.train, task, optimizer, start_lr=start_lr, end_lr=end_lr,
            num_steps=num_steps, beta=beta, diverge=diverge,
            clip_grad_norm=recipe.train.clip_grad_norm, device=device)
        suggestion, steepest, min_lr = suggest_lr(lrs, smoothed)
        result = LRFindResult(suggestion, steepest, min_lr, tuple(lrs), tuple(losses),
                              tuple(smoothed), stop)
        if plot:
            path = self.run_dir / "plots" / "lr_find.png" if plot is True else Path(plot)
            result = replace(result, plot=plot_lr_find(result, path))
        del model, optimizer
        self.lr_found = result
        with _status_lines(verbose):
            log.info("lr_find: suggested learning rate %.2e (%d steps, stop: %s)%s", suggestion,
                     len(lrs), stop, f"; plot {result.plot}" if result.plot else "")
        return result

    def fit(
        self,
        epochs: int | None = None,
        lr: float | LRFindResult | None = None,
        *,
        max_time: str | float | None = None,
        max_steps: int | None = None,
        callbacks: Sequence[Callback] = (),
        verbose: bool = True,
    ) -> TrainResult:
        """Train with :func:`rsfm.train` on the learner's recipe (progress bar in notebooks).

        The first call starts the run; later calls continue it from its latest checkpoint for
        ``epochs`` more epochs (or ``max_steps`` more steps, ``max_time`` more time).

        Args:
            epochs: Epochs to train (default 10, or as many as ``max_time``/``max_steps``
                allow).
            lr: Learning rate (``train.optimizer.lr``); None: the ``lr_find`` suggestion (the
                test runs first when it has not), or the recipe's on a continued run.
            max_time: Wall-time budget (``"90s"``, ``"10m"``, ``"2h"`` or seconds).
            max_steps: Optimizer-step budget.
            callbacks: ``fn(event, state)`` on ``"step"`` and ``"epoch"`` (see
                :func:`rsfm.train`).
            verbose: Show the per-epoch summary lines.

        Returns:
            The :class:`~rsfm.train.state.TrainResult`.

        Raises:
            ConfigError: ``lr`` is not a positive number, or ``epochs``, ``max_time`` or
                ``max_steps`` is not what ``train.epochs``, ``train.max_time`` or
                ``train.max_steps`` of a recipe may be (names the argument and the value),
                before any compute (the ``lr_find`` test included).
        """
        lr = _learning_rate(lr)  # before lr_find or any epoch runs
        epochs, max_steps, max_time = _budget(epochs, max_steps, max_time)
        state = self._state()
        tc = self.recipe.train
        if state is None:
            add = self._epochs(epochs, max_steps, max_time)
            train_cfg = replace(tc, epochs=add, max_steps=max_steps, max_time=max_time)
            # the whole recipe is checked before lr_find spends any compute
            _canonical(replace(self.recipe, train=train_cfg))
            if lr is None:
                found = self.lr_found or self.lr_find(verbose=verbose)
                lr = found.suggestion
            train_cfg = replace(train_cfg, optimizer=replace(tc.optimizer, lr=float(lr)))
        else:
            if lr is not None and not math.isclose(float(lr), tc.optimizer.lr):
                warnings.warn(
                    f"fit(lr={float(lr):.3g}) on a continued run: the run's optimizer and "
                    f"schedule resume from the checkpoint (lr {tc.optimizer.lr:.3g}); to train "
                    "with another learning rate, start a new learner (another out=).",
                    stacklevel=2)
            add = self._epochs(epochs, max_steps, max_time)
            budget_time = (None if max_time is None else
                           state.elapsed + parse_duration(max_time, "max_time"))
            steps = None if max_steps is None else state.global_step + max_steps
            train_cfg = replace(tc, epochs=state.epoch + 1 + add, max_steps=steps,
                                max_time=budget_time)
        recipe = _canonical(replace(self.recipe, train=train_cfg))
        with _status_lines(verbose):
            result = train(recipe, resume=state is not None, callbacks=callbacks)
        self.recipe, self.result = recipe, result
        return result

    # ---------------------------------------------------------------------------- results
    def _best_row(self) -> dict[str, Any]:
        self._require_trained("metrics")
        rows = self.history
        state = self._state()
        best = state.best_epoch if state is not None else None
        row = next((r for r in rows if r["epoch"] == best), rows[-1] if rows else {})
        return row

    def metrics(self) -> dict[str, float]:
        """Validation metrics of the best epoch (``miou``, ``accuracy``, ``map_50``...; the
        training loss when there is no validation data)."""
        row = self._best_row()
        out = {k[4:]: v for k, v in row.items() if k.startswith("val_")
               and isinstance(v, (int, float)) and not isinstance(v, bool)}
        out["epoch"] = row.get("epoch")
        out["train_loss"] = row.get("train_loss")
        return out

    def per_class_metrics(self) -> dict[str, dict[str, float | None]]:
        """Per-class validation metrics of the best epoch: ``{class: {precision, recall, f1,
        iou, support}}`` from the confusion matrix (segmentation: pixels; classification:
        samples), or ``{class: {ap50}}`` for detection. ``pandas.DataFrame(...).T`` makes a
        table of it."""
        row = self._best_row()
        names = self._spec.class_names
        cm = row.get("val_confusion_matrix")
        if cm is None:
            out = {n: {k.split("_", 2)[1]: row[k] for k in row
                        if k.startswith("val_") and k.endswith(f"_{n}") and k.count("_") >= 2}
                   for n in names}
            if not any(out.values()):
                raise ConfigError("per_class_metrics: the run has no validation metrics "
                                  "(no validation data).")
            return out
        seg, cls = segmentation_metrics(cm, names), classification_metrics(cm, names)
        return {n: {"precision": cls[f"precision_{n}"], "recall": cls[f"recall_{n}"],
                    "f1": cls[f"f1_{n}"], "iou": seg[f"iou_{n}"], "support": int(sum(cm[i]))}
                for i, n in enumerate(names)}

    def plot_losses(self, path: str | os.PathLike[str] | None = None) -> Picture:
        """Training and validation loss per epoch (``<run>/plots/loss.png``)."""
        self._require_trained("plot_losses")
        written = plot_history(self.history, self.run_dir / "plots")
        loss = next(p for p in map(Path, written) if p.name == "loss.png") if written else (
            self.run_dir / "plots" / "loss.png")
        if path is not None:
            shutil.copyfile(loss, path)
            loss = Path(path)
        return Picture(loss)

    def show_results(self, n: int = 4, split: str = "val",
                     path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Picture:
        """Image, ground truth and prediction side by side for ``n`` samples of a split.

        Args:
            n: Samples (spread over the split).
            split: ``val`` (the training split when there is no validation data), ``train``
                or ``test``.
            path: Output PNG (default ``<run>/plots/results.png``).
            **kwargs: :func:`rsfm.show_results` options (``score_threshold``, ``indices``...).
        """
        import matplotlib.pyplot as plt

        d = self.recipe.data
        if split == "val" and d.val is None and d.val_fraction <= 0:
            split = "train"  # no validation data: show the training samples
        ds = build_split(self.recipe, self._spec, split)
        path = Path(path) if path is not None else self.run_dir / "plots" / "results.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = _show_results(self.model, ds, n, path, **kwargs)
        plt.close(fig)
        return Picture(path)

    def evaluate(self, split: str | None = None, **kwargs: Any) -> EvaluationResult:
        """Metrics of the best weights on a split, computed the way the model is deployed
        (:func:`rsfm.evaluate`: whole chips/scenes through the prediction tiling; files in
        ``<run>/evaluation/<split>/``).

        Args:
            split: ``test``, ``val`` or ``train`` (default: ``test`` when the data has one,
                else ``val``).
            **kwargs: Other :func:`rsfm.evaluate` arguments (``out``, ``tile_size``,
                ``overlap``, ``images``/``labels`` folders...).
        """
        self._require_trained("evaluate")
        if split is None:
            split = "test" if self.recipe.data.test is not None else "val"
        return _evaluate(self.run_dir, self.recipe, split=split, **kwargs)

    def predict(self, scene: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                out: str | os.PathLike[str] | None = None,
                **kwargs: Any) -> PredictionResult | list[PredictionResult]:
        """Predict GeoTIFF scenes with the best weights (:func:`rsfm.predict`: georeferenced
        COG, optional ``vectors=``, ``preview=``, ``probabilities=``...)."""
        return predict(self.model, scene, out, **kwargs)

    # ---------------------------------------------------------------------------- sharing
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trained model as a run folder without checkpoints (``config.json``,
        weights, ``recipe.yaml``, metrics, plots, ``README.md`` model card), loadable with
        ``rsfm.from_pretrained(path)`` and ``rsfm predict path ...``."""
        self._require_trained("save")
        dest = Path(path)
        _check_save_folder(dest, self.run_dir)
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"save: cannot create the folder '{dest}' ({err.strerror or err}); "
                              "choose another path.") from None
        for name in (CONFIG_NAME, WEIGHTS_NAME, LAST_WEIGHTS_NAME, "metrics.jsonl", "metrics.csv"):
            if (self.run_dir / name).is_file():
                shutil.copyfile(self.run_dir / name, dest / name)
        for name in ("plots", ADAPTER_DIR):
            if (self.run_dir / name).is_dir():
                shutil.copytree(self.run_dir / name, dest / name, dirs_exist_ok=True)
        atomic_write_text(dest / "recipe.yaml", RECIPE_HEADER + recipe_to_yaml(self.recipe))
        config = read_saved_config(dest)
        model_card(config, str(dest), description=self.recipe.description).save(
            str(dest / "README.md"))
        log.info("saved '%s'", dest)
        return dest

    def push_to_hub(self, repo_id: str, *, private: bool = True, token: str | None = None,
                    **kwargs: Any) -> Any:
        """Upload the run (weights, config, recipe, metrics, plots, model card) to the Hub in
        one commit (:func:`rsfm.hub.push`; private by default)."""
        self._require_trained("push_to_hub")
        return push(self.run_dir, repo_id, private=private, token=token, **kwargs)

    def to_recipe(self, path: str | os.PathLike[str] | None = None, *,
                  overwrite: bool = False) -> Recipe:
        """The equivalent recipe; with ``path``, also written as YAML (data paths relative to
        the file when they are close to it), so ``rsfm train path`` reproduces the run.

        After several ``fit`` calls the recipe holds the total epochs; one ``rsfm train`` of it
        runs them under one learning-rate schedule.

        Args:
            path: The YAML file to write (None: only return the recipe).
            overwrite: Replace an existing file rsfm did not write (a recipe rsfm wrote, by an
                earlier ``to_recipe`` or a run, is replaced without it).

        Raises:
            ConfigError: ``path`` is a folder, a file the learner reads (its recipe, data
                files, a file of its run folder), or an existing file rsfm did not write
                without ``overwrite=True`` (names the path; nothing is written).
        """
        if path is None:
            return self.recipe
        target = Path(path)
        self._check_recipe_target(target, overwrite)
        data = recipe_to_dict(self.recipe)
        data.pop("source", None)
        _relative_paths(data, target.parent.absolute())
        header = (f"{_TO_RECIPE_HEADER}{type(self).__name__}.to_recipe). Reproduce the run "
                  f"with:\n#   rsfm train {target.name} output.dir=<new folder>\n# (output.dir "
                  "below holds the notebook's run: rsfm train never overwrites a run.)\n")
        import yaml

        text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, text)
        except OSError as err:
            raise ConfigError(f"to_recipe: cannot write '{target}' ({err.strerror or err}); "
                              "choose another path.") from None
        return self.recipe

    def _check_recipe_target(self, target: Path, overwrite: bool) -> None:
        """Fail unless ``to_recipe`` may write ``target`` (see :meth:`to_recipe`)."""
        if target.is_dir():
            raise ConfigError(f"to_recipe: '{target}' is a folder; give a YAML file name such as "
                              f"'{target / 'recipe.yaml'}'.")
        blocker = _file_in_the_way(target.parent)
        if blocker is not None:
            raise ConfigError(f"to_recipe: cannot write '{target}': '{blocker}' is a file, not a "
                              "folder; choose another path.")
        reads = [self.recipe.source] + [
            path for _, src in self.recipe.data.sources() for _, path in src.paths()]
        check_output_path(target, inputs=[p for p in reads if p], model_dir=self.run_dir,
                          what="to_recipe: path", hint="choose another path")
        if os.path.lexists(target) and not overwrite and not _recipe_by_rsfm(target):
            raise ConfigError(f"to_recipe: '{target}' exists and rsfm did not write it; pass "
                              "overwrite=True to replace it, or choose another path.")


def _recipe_by_rsfm(path: Path) -> bool:
    """Whether ``path`` is a recipe rsfm wrote (``to_recipe``'s header, or a run's
    :data:`~rsfm.train.run_dir.RECIPE_HEADER`)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(len(RECIPE_HEADER))
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith((_TO_RECIPE_HEADER, RECIPE_HEADER))


def _file_in_the_way(folder: Path) -> Path | None:
    """The existing file (not folder) among ``folder`` and its parents, if any: creating
    ``folder`` would fail on it."""
    for p in (folder, *folder.parents):
        if os.path.lexists(p):
            return None if p.is_dir() else p
    return None


def _check_save_folder(dest: Path, run_dir: Path) -> None:
    """Fail unless ``Learner.save`` may write into ``dest``: a new or empty folder, or an rsfm
    run folder that holds no model yet (its README.md, recipe.yaml... are rsfm's).

    Raises:
        ConfigError: ``dest`` is a file, the run folder, a folder holding a model, or a
            non-empty folder that is not an rsfm run (names the folder).
    """
    if os.path.lexists(dest) and not dest.is_dir():
        raise ConfigError(f"save: '{dest}' is a file, not a folder; give the path of a new "
                          "folder for the model.")
    blocker = _file_in_the_way(dest.parent)
    if blocker is not None:
        raise ConfigError(f"save: cannot create the folder '{dest}': '{blocker}' is a file; "
                          "choose another path.")
    if dest.resolve() == run_dir.resolve():
        raise ConfigError(f"save: '{dest}' is the run folder itself; choose another path.")
    if not dest.is_dir():
        return
    if (dest / CONFIG_NAME).exists():
        raise ConfigError(f"save: '{dest}' already holds a model; choose another path or "
                          "remove it.")
    try:
        held = sorted(p.name for p in dest.iterdir())
    except OSError as err:
        raise ConfigError(f"save: cannot read the folder '{dest}' ({err.strerror or err}); "
                          "choose another path.") from None
    recipe = dest / "recipe.yaml"
    if held and not (recipe.is_file() and _recipe_by_rsfm(recipe)):
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        raise ConfigError(f"save: '{dest}' is not empty ({shown}) and is not an rsfm model or "
                          "run folder; saving would replace its files. Choose a new or empty "
                          "folder.")


def _relative_paths(data: dict[str, Any], base: Path) -> None:
    """Data paths relative to ``base`` when they are inside its parent folder (else absolute)."""

    def rel(value: Any) -> Any:
        if isinstance(value, list):
            return [rel(v) for v in value]
        if not isinstance(value, str) or not os.path.isabs(value):
            return value
        try:
            text = os.path.relpath(value, base)
        except ValueError:  # another drive (Windows)
            return value
        return value if text.startswith(os.path.join("..", "..")) else text

    for split in ("train", "val", "test"):
        src = data["data"].get(split)
        if isinstance(src, dict):
            for key in DataSource.PATH_KEYS:
                if src.get(key) is not None:
                    src[key] = rel(src[key])


# --------------------------------------------------------------------------- model classes


class UNet(Learner):
    """Segmentation: UNet decoder on the backbone's stages or the ViT feature pyramid."""

    heads = ("unet",)


class DeepLab(Learner):
    """Segmentation: DeepLabv3+ (``plus=False``: DeepLabv3)."""

    heads = ("deeplabv3plus", "deeplabv3")

    def __init__(self, data: Data, *, plus: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("head", "deeplabv3plus" if plus else "deeplabv3")
        super().__init__(data, **kwargs)


class FCN(Learner):
    """Segmentation: a light fully-convolutional head."""

    heads = ("fcn",)


class Classifier(Learner):
    """Scene classification (one class per image)."""

    heads = ("classification",)


class FasterRCNN(Learner):
    """Object detection: torchvision Faster R-CNN on the backbone's pyramid."""

    heads = ("faster_rcnn",)


class RetinaNet(Learner):
    """Object detection: torchvision RetinaNet."""

    heads = ("retinanet",)


class FCOS(Learner):
    """Object detection: torchvision FCOS (anchor-free)."""

    heads = ("fcos",)


class MaskRCNN(Learner):
    """Instance segmentation: torchvision Mask R-CNN.

    It learns object outlines, so the data must have them: polygon labels over scenes (one
    instance mask per polygon). Box-only labels (PASCAL VOC, YOLO, COCO boxes, an ArcGIS export
    read as boxes) are refused before any compute; use :class:`FasterRCNN` for those.
    """

    heads = ("mask_rcnn",)


_MODEL_CLASSES: tuple[type[Learner], ...] = (UNet, DeepLab, FCN, Classifier, FasterRCNN,
                                            RetinaNet, FCOS, MaskRCNN)
_HEAD_CLASSES: dict[str, type[Learner]] = {h: c for c in _MODEL_CLASSES for h in c.heads}
