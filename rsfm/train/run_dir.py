"""The run directory: everything a run writes, and the checks made before it writes anything.

Layout::

    recipe.yaml                  the recipe the run started with (never rewritten by a resume)
    recipe.resumed-N.yaml        the recipe of the N-th resume (append-only history)
    config.json                  SavedConfig of the best weights (metrics incl. ``test_*``)
    model.safetensors            best weights (weights only)
    last_model.safetensors       weights of the last epoch
                                 (both are hard links to a checkpoint's weights file when they
                                 hold the same tensors: one copy on disk)
    metrics.jsonl, metrics.csv   one row per epoch (+ one ``split: test`` row in metrics.jsonl)
    plots/*.png, tensorboard/    plots; trackers' local logs (``output.trackers``)
    evaluation/test/             ``data.test`` scored by rsfm.evaluate (metrics.json, CSV, PNG)
    checkpoints/epoch-NNNN/      resumable state (weights, optimizer, scheduler, RNG,
                                 trainer_state.json, config.json); the newest
                                 ``output.keep_checkpoints`` are kept

Before anything is written, :meth:`RunDir.prepare` decides between a fresh start and a resume:
a resume is only accepted when the recipe's model architecture, bands, classes and
normalisation equal the checkpoint's (else a :class:`~rsfm.errors.ConfigError` lists the keys
that differ), and a damaged latest checkpoint falls back to the newest intact one. A fresh start
never replaces a ``recipe.yaml`` rsfm did not write: not the recipe being trained (``output.dir``
is the recipe's own folder) and not any other hand-written one. The ``recipe*.yaml`` files rsfm
writes start with :data:`RECIPE_HEADER`. An explicit resume of a run that already reached its
``train.epochs`` / ``max_steps`` / ``max_time`` (or that early stopping ended) is an error, not a
silent no-op.

While a run trains, its main process holds an exclusive ``flock`` on the run folder itself (no
lock file is written; released when the training ends or its process dies, so a crash leaves
nothing stale): a second training into the same ``output.dir`` is refused, naming the folder
and, where ``/proc/locks`` tells it, the process that holds it. Forked children (DataLoader
workers) close their copy of the lock, so a worker that outlives the training does not keep the
folder locked, and a lock that ``/proc/locks`` gives to this very process never refuses it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from rsfm.cards import get_card
from rsfm.config import LoraSettings
from rsfm.errors import ConfigError, UnknownNameError
from rsfm.hub.save import LAST_WEIGHTS_NAME, WEIGHTS_NAME, save_pretrained, saved_config_of
from rsfm.io import atomic_write_text, same_file
from rsfm.lora import is_lora
from rsfm.modelcheck import lora_targets
from rsfm.preflight import check_output_dir, check_writable_dir
from rsfm.recipe import recipe_to_yaml
from rsfm.saved import CONFIG_NAME, SavedConfig, architecture, read_saved_config, write_saved_config
from rsfm.schema import Recipe
from rsfm.spec import InputSpec
from rsfm.train import checkpoint as ck
from rsfm.train.state import TrainState
from rsfm.validation import dump

try:  # POSIX; elsewhere the run folder is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RECIPE_HEADER", "RunDir", "resume_differences"]

log = logging.getLogger(__name__)

_RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", WEIGHTS_NAME, CONFIG_NAME)
# model keys that do not change the weights' shapes or meaning (a resume may change them)
_FREE_MODEL_KEYS = ("pretrained", "weights", "freeze_backbone")
# first line of the recipe*.yaml files a run writes (how a fresh start tells them from the user's)
RECIPE_HEADER = "# rsfm run recipe: the resolved recipe of this run, written by rsfm (edit a copy)\n"
# the top-level keys of a resolved recipe (runs written before RECIPE_HEADER existed)
_RESOLVED_KEYS = {"name", "description", "model", "data", "train", "lora", "eval", "output",
                  "source"}


def _written_by_rsfm(path: Path) -> bool:
    """Whether ``path`` is a recipe a run wrote (:data:`RECIPE_HEADER`, or the full resolved
    mapping that older runs wrote without it)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        if text.startswith(RECIPE_HEADER):
            return True
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and set(data) >= _RESOLVED_KEYS


def _fmt(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _comparable(model: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    out = {f"model.{k}": v for k, v in model.items() if k not in _FREE_MODEL_KEYS}
    out["input.bands"] = [{k: b.get(k) for k in ("name", "wavelength_um")} for b in spec["bands"]]
    out["input.classes"] = [c["name"] for c in spec["classes"]]
    for key in ("normalization", "indices", "num_frames"):
        out[f"input.{key}"] = spec.get(key)
    return out


def _lora_comparable(lora: LoraSettings | None, backbone: str) -> LoraSettings | None:
    """``lora`` as a resume compares it: the settings that shape the adapter's weights or their
    meaning (``dropout`` does not: set to 0), ``target_modules`` resolved and sorted."""
    if lora is None:
        return None
    try:
        targets = lora_targets(lora.target_modules, get_card(backbone))
    except UnknownNameError:  # an unknown backbone is reported as model.backbone
        targets = lora.target_modules or ()
    return replace(lora, dropout=0.0, target_modules=tuple(sorted(targets)) or None)


def _lora_differences(saved: SavedConfig, lora: LoraSettings | None, backbone: str) -> list[str]:
    run = _lora_comparable(saved.lora, saved.model.backbone)
    new = _lora_comparable(lora, backbone)
    if run is None and new is None:
        return []
    if run is None or new is None:
        was, now = (f"with LoRA r={x.r}" if x else "without LoRA" for x in (run, new))
        return [f"lora: run {was}, recipe {now}"]
    pairs = ((f.name, getattr(run, f.name), getattr(new, f.name)) for f in fields(LoraSettings))
    return [f"lora.{k}: run {_fmt(a)}, recipe {_fmt(b)}" for k, a, b in pairs if a != b]


def resume_differences(saved: SavedConfig, model: Any, spec: InputSpec,
                       lora: LoraSettings | None = None, *, check_lora: bool = True) -> list[str]:
    """``"model.head: run 'fcn', recipe 'upernet'"`` lines for every key a resume may not change
    (architecture, bands, classes, normalisation, indices, frames, and the LoRA adapter: its
    presence, ``r``, ``alpha``, ``target_modules`` and ``bias``).

    ``lora``: the recipe's ``lora:`` section (None: no LoRA); ``check_lora=False`` leaves the
    LoRA settings out.
    """
    run = _comparable(dump(saved.model), dump(saved.input))
    new = _comparable(dump(architecture(model)), dump(spec))
    lines = [f"{k}: run {_fmt(run.get(k))}, recipe {_fmt(new.get(k))}"
             for k in sorted(set(run) | set(new)) if run.get(k) != new.get(k)]
    if check_lora:
        lines += _lora_differences(saved, lora, architecture(model).backbone)
    return lines


# The run-folder locks this process holds. A forked child (a DataLoader worker) shares the
# locked open file with its copy of the fd, and a flock lasts until every copy is closed: a
# worker that outlives the training would keep the folder locked, so children close theirs.
_LOCK_FDS: set[int] = set()


def _close_lock_fds() -> None:
    for fd in _LOCK_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _LOCK_FDS.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_close_lock_fds)


def _lock_holder(path: Path) -> int | None:
    """The process holding a ``flock`` on ``path``, from ``/proc/locks`` (Linux), else None."""
    try:
        st = path.stat()
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF" (a waiting lock has "->" after "1:")
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == where:
            try:
                return int(parts[4])
            except ValueError:
                return None
    return None


class RunDir:
    """One run's folder (see the module docstring). Only the main process writes.

    Args:
        path: The folder (``recipe.output_dir()``).
        main: Whether this process writes (accelerate's main process).
    """

    def __init__(self, path: str | os.PathLike[str], *, main: bool = True) -> None:
        self.path = Path(path).absolute()
        self.main = main
        self._plotted: float | None = None
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ one training at a time
    def lock(self) -> None:
        """Hold an exclusive lock on the run folder (main process only; nothing is written): a
        lock held by a process that has ended is gone with it, so a crashed run resumes.

        Raises:
            ConfigError: Another training holds the folder (names it and the process).
        """
        if not self.main or self._lock_fd is not None or fcntl is None or not self.path.is_dir():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _lock_holder(self.path)
            if pid == os.getpid():  # an earlier training of this process (e.g. a notebook's)
                log.debug("Run folder '%s' is locked by this process: not locked again.",
                          self.path)
                return
            by = f" (process {pid})" if pid else ""
            raise ConfigError(
                f"output.dir '{self.path}' is in use by another training{by}: two trainings "
                "cannot write into one run folder. Wait for it to end (or stop it), or choose "
                "another output.dir; nothing was written.", key="output.dir") from None
        except OSError as err:  # a file system without flock: train unlocked
            os.close(fd)
            log.debug("Run folder '%s' not locked: %s", self.path, err)
            return
        self._lock_fd = fd
        _LOCK_FDS.add(fd)

    def unlock(self) -> None:
        """Release :meth:`lock` (the end of the training)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd in _LOCK_FDS:  # (a forked child closed its copy already)
            _LOCK_FDS.discard(fd)
            os.close(fd)

    # ------------------------------------------------------------------ before any write
    def prepare(self, recipe: Recipe, resume: bool | str, spec: InputSpec) -> Path | None:
        """Decide between a fresh start and a resume; writes nothing.

        Args:
            recipe: The run's recipe.
            resume: ``True`` (must resume), ``"auto"`` (resume when a checkpoint exists) or
                ``False``.
            spec: The recipe's InputSpec (compared with the checkpoint's on resume).

        Returns:
            The checkpoint to resume from, or None for a fresh start.

        Raises:
            ConfigError: ``--resume`` without an intact checkpoint, a recipe that does not match
                the checkpoint (lists the keys), a fresh start over an existing run without
                ``output.overwrite``, a fresh start that would replace the recipe being trained
                or another ``recipe.yaml`` rsfm did not write, an empty ``output.dir``, an output
                folder that cannot be created or written, ``--resume`` of a run that is
                finished, a run folder another training is writing.
        """
        check_output_dir(recipe)
        check_writable_dir(self.path, "output.dir")
        self.lock()
        ckpt = self._resumable() if resume else None
        if resume is True and ckpt is None:
            raise ConfigError(f"--resume: no complete checkpoint in '{self.path / 'checkpoints'}'.")
        if ckpt is not None:
            self._check_compatible(ckpt, recipe, spec)
            if resume is True:
                self._check_unfinished(ckpt, recipe)
            return ckpt
        leftovers = [p for p in _RUN_OUTPUTS if (self.path / p).exists()]
        if leftovers and not recipe.output.overwrite:
            raise ConfigError(
                f"Output directory '{self.path}' already holds a run ({', '.join(leftovers)}). "
                "Resume it with --resume (train.resume=auto), choose another output.dir, or set "
                "output.overwrite=true."
            )
        self._check_recipe_file(recipe, holds_run=bool(leftovers))
        return None

    def _check_recipe_file(self, recipe: Recipe, holds_run: bool) -> None:
        """A fresh start writes ``recipe.yaml``: fail when that would replace the recipe being
        trained, or a ``recipe.yaml`` that is not a run's (output.overwrite included)."""
        target = self.path / "recipe.yaml"
        if not os.path.lexists(target):
            return
        other = f"choose another output.dir (e.g. output.dir=runs/{recipe.name}); nothing was written"
        if recipe.source and same_file(target, recipe.source):
            raise ConfigError(
                f"output.dir '{self.path}' is the folder of the recipe being trained: the run "
                f"writes its resolved recipe to '{target}', which would replace yours (and its "
                f"comments). Keep run folders apart from recipes: {other}."
            )
        if holds_run or _written_by_rsfm(target):
            return
        raise ConfigError(
            f"output.dir '{self.path}' holds a recipe.yaml that rsfm did not write: the run "
            f"would replace it with its resolved recipe. Move it, or {other}."
        )

    def _resumable(self) -> Path | None:
        ckpt, skipped = ck.find_resumable(self.path)
        if skipped and ckpt is None:
            damaged = "; ".join(f"{p.name} ({why})" for p, why in skipped)
            raise ConfigError(f"--resume: no intact checkpoint in '{self.path / 'checkpoints'}': "
                              f"{damaged}. Start again with output.overwrite=true, or restore "
                              "the files.")
        for bad, why in skipped:
            log.warning("Checkpoint '%s' is damaged (%s); resuming from '%s', the newest intact "
                        "checkpoint.", bad, why, ckpt)
        return ckpt

    def _check_compatible(self, ckpt: Path, recipe: Recipe, spec: InputSpec) -> None:
        source = ckpt / CONFIG_NAME if (ckpt / CONFIG_NAME).is_file() else self.path / CONFIG_NAME
        if not source.is_file():
            log.warning("No %s with checkpoint '%s' or in the run: the recipe's compatibility "
                        "with the checkpoint is not checked.", CONFIG_NAME, ckpt)
            return
        diffs = resume_differences(read_saved_config(source), recipe.model, spec, recipe.lora)
        if diffs:
            raise ConfigError(
                f"--resume: the recipe does not match the run in '{self.path}' (checkpoint "
                f"{ckpt.name}); nothing was written. Keys that differ:\n  " + "\n  ".join(diffs)
                + f"\nResume with the run's recipe ('{self.path / 'recipe.yaml'}' and its "
                "overrides), or start a new run in another output.dir."
            )

    def _check_unfinished(self, ckpt: Path, recipe: Recipe) -> None:
        """``--resume`` of a run that already reached its budget, or that early stopping
        ended, would train nothing: say so, and what to do instead."""
        try:
            state = TrainState.from_json(ck.read_state(ckpt))
            epochs, steps = int(state.epoch) + 1, int(state.global_step)
            elapsed = float(state.elapsed)
        except (OSError, ValueError, TypeError, AttributeError):
            return  # a damaged trainer state is reported when it is loaded
        if state.stopped_early:  # no limit to raise: the run decided to stop
            raise ConfigError(
                f"--resume: early stopping (train.early_stopping) ended the run in "
                f"'{self.path}' after epoch {epochs} ({ckpt.name}); a run that stopped early "
                "does not continue, and nothing was written. Start a new run in another "
                "output.dir, or set output.overwrite=true to train this one again from the "
                "start.", key="train.early_stopping")
        tc = recipe.train
        done = []
        if epochs >= tc.epochs:
            done.append(f"{epochs}/{tc.epochs} epochs (raise train.epochs, e.g. "
                        f"train.epochs={epochs + max(1, tc.epochs)})")
        if tc.max_steps is not None and steps >= tc.max_steps:
            done.append(f"{steps}/{tc.max_steps} steps (raise train.max_steps)")
        if recipe.max_seconds is not None and elapsed >= recipe.max_seconds:
            done.append(f"{elapsed:.0f}s of train.max_time {tc.max_time} (raise train.max_time)")
        if done:
            raise ConfigError(
                f"--resume: the run in '{self.path}' is finished ({ckpt.name}): "
                + "; ".join(done) + ". Nothing to train, and nothing was written: raise the "
                "limit to continue it, or start a new run in another output.dir.")

    # ------------------------------------------------------------------ writing
    def start(self, recipe: Recipe, resumed: bool) -> None:
        """Create the folder (cleared first on ``output.overwrite``), lock it (:meth:`lock`)
        and record the recipe: ``recipe.yaml`` on a fresh start, ``recipe.resumed-N.yaml`` on
        the N-th resume.

        Raises:
            ConfigError: Another training took the folder meanwhile (nothing is written).
        """
        if not self.main:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        if not resumed and recipe.output.overwrite:
            self.clear()
        name = "recipe.yaml"
        if resumed:
            n = 1
            while (self.path / f"recipe.resumed-{n}.yaml").exists():
                n += 1
            name = f"recipe.resumed-{n}.yaml"
        atomic_write_text(self.path / name, RECIPE_HEADER + recipe_to_yaml(recipe))

    def clear(self) -> None:
        """Remove a previous run's outputs (``output.overwrite``)."""
        for name in ("checkpoints", "adapter", "plots", "tensorboard", "evaluation"):
            shutil.rmtree(self.path / name, ignore_errors=True)
        for name in ("metrics.jsonl", "metrics.csv", WEIGHTS_NAME, LAST_WEIGHTS_NAME, CONFIG_NAME):
            (self.path / name).unlink(missing_ok=True)
        for old in self.path.glob("recipe.resumed-*.yaml"):
            old.unlink()

    def save_best(self, model: Any, metrics: Mapping[str, Any], recipe: Recipe,
                  ckpt: Path | None = None, state_dict: Mapping[str, Any] | None = None,
                  adapter: bool = True) -> None:
        """``model.safetensors`` + ``config.json`` (+ LoRA ``adapter/``): the best weights; a hard
        link to ``ckpt``'s weights when they are the model's plain weights."""
        if state_dict is None and self._link_weights(ckpt, WEIGHTS_NAME, model):
            write_saved_config(self.path / CONFIG_NAME, saved_config_of(
                model, metrics=metrics, datasets=recipe.output.hub_datasets or None))
            return
        save_pretrained(model, self.path, recipe=recipe, metrics=metrics, weights_name=WEIGHTS_NAME,
                        save_adapter=adapter, state_dict=state_dict,
                        datasets=recipe.output.hub_datasets or None)

    def save_last(self, model: Any, ckpt: Path | None,
                  state_dict: Mapping[str, Any] | None = None) -> None:
        """``last_model.safetensors``: a hard link to ``ckpt``'s weights when they are the
        model's plain weights (no second copy on disk), else written."""
        if state_dict is None and self._link_weights(ckpt, LAST_WEIGHTS_NAME, model):
            return
        save_pretrained(model, self.path, weights_name=LAST_WEIGHTS_NAME, write_config=False,
                        save_adapter=False, state_dict=state_dict)

    def _link_weights(self, ckpt: Path | None, name: str, model: Any) -> bool:
        """Publish ``ckpt/model.safetensors`` as ``name`` by a hard link (same tensors, same
        keys as the plain model: not for LoRA); False when that is not possible."""
        source = ckpt / WEIGHTS_NAME if ckpt is not None else None
        if source is None or not source.is_file() or not _same_keys(source, model):
            return False
        target = self.path / name
        tmp = target.with_name(f".{target.name}.link")
        tmp.unlink(missing_ok=True)
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(source, 0o666 & ~umask)  # accelerate writes 0600
            os.link(source, tmp)
            os.replace(tmp, target)
        except OSError:  # no hard links on this file system
            tmp.unlink(missing_ok=True)
            return False
        return True

    def save_checkpoint(self, accelerator: Any, epoch: int, state: Mapping[str, Any],
                        model: Any, keep: int) -> Path:
        """A resumable checkpoint of the state after ``epoch`` (0-based); all processes call it.

        Assembled in ``checkpoints/.tmp-*``, published by renaming, older ones pruned to the
        newest ``keep``. Holds the SavedConfig of the model, for resume checks.
        """
        final = ck.checkpoint_dir(self.path, epoch + 1)
        tmp = final.with_name(f".tmp-{final.name}")
        if self.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if self.main:
            write_saved_config(tmp / CONFIG_NAME, saved_config_of(model))
            ck.publish_checkpoint(tmp, final, state)
            ck.prune_checkpoints(self.path, keep)
        accelerator.wait_for_everyone()
        return final

    def plots_due(self, final: bool, every: float = 300.0) -> bool:
        """Whether to redraw the plots now: at the end, else at most every ``every`` seconds."""
        now = time.monotonic()
        if final or self._plotted is None or now - self._plotted >= every:
            self._plotted = now
            return True
        return False

    def latest_checkpoint(self) -> str:
        """The newest checkpoint, for messages."""
        latest = ck.find_latest_checkpoint(self.path)
        return f"'{latest}'" if latest is not None else "none yet (no epoch had finished)"

    def write_metrics(self, history: Sequence[Mapping[str, Any]],
                      test: Mapping[str, Any] | None = None) -> None:
        """``metrics.jsonl`` (every key; the test row last) and ``metrics.csv`` (scalars per
        epoch)."""
        rows = [*history, *([test] if test else [])]
        atomic_write_text(self.path / "metrics.jsonl",
                          "".join(json.dumps(h, default=float) + "\n" for h in rows))
        flat = [{k: v for k, v in h.items() if not isinstance(v, (dict, list))} for h in history]
        keys: list[str] = []
        for h in flat:
            keys += [k for k in h if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(flat)
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    def record_test_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Add ``test_*`` metrics to the best model's ``config.json``."""
        path = self.path / CONFIG_NAME
        if path.is_file():
            saved = read_saved_config(path)
            scalars = {k: v for k, v in metrics.items()
                       if v is None or isinstance(v, (int, float, str))}
            write_saved_config(path, replace(saved, metrics={**saved.metrics, **scalars}))

    def size(self) -> int:
        """Bytes on disk (hard-linked files counted once)."""
        seen, total = set(), 0
        for p in self.path.rglob("*"):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
        return total


def _same_keys(path: Path, model: Any) -> bool:
    from safetensors import safe_open

    if "peft" in sys.modules and is_lora(model):  # (a plain model needs no peft import)
        return False
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys()) == set(model.state_dict())
