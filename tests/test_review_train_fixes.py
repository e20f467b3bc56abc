"""The run-folder lock and forked children, the one unfreeze-spec grammar, the one home of the
LoRA default targets, the resume checks read through TrainState, and HEAD_OPTIONS kept equal to
the head classes' signatures."""

from __future__ import annotations

import inspect
import json
import os
import signal
import time
from pathlib import Path

import pytest

from rsfm.cards import get_card
from rsfm.config import HEAD_OPTIONS, LoraSettings
from rsfm.errors import ConfigError
from rsfm.modelcheck import (
    UnfreezeSpec,
    backbone_module_names,
    lora_targets,
    parse_unfreeze_spec,
    unfreeze_spec_problem,
)

fcntl = pytest.importorskip("fcntl")


# ------------------------------------------------------------------ the run-folder lock
def _free(path: Path) -> bool:
    """Whether another open file of ``path`` can take the lock (nobody else holds it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_keep_the_run_folder_locked(tmp_path):
    from rsfm.train.run_dir import RunDir

    run = RunDir(tmp_path)
    run.lock()
    assert not _free(tmp_path)
    ready, tell = os.pipe()
    pid = os.fork()
    if pid == 0:  # a DataLoader worker that outlives the training (the fork hooks have run)
        os.write(tell, b"1")
        time.sleep(5)
        os._exit(0)
    try:
        assert os.read(ready, 1) == b"1"
        run.unlock()
        assert _free(tmp_path)  # the child closed its copy of the lock at fork
        again = RunDir(tmp_path)
        again.lock()  # while the child is alive
        again.unlock()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(tell)


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs /proc/locks")
def test_a_lock_held_by_this_process_does_not_refuse_it(tmp_path):
    from rsfm.train.run_dir import RunDir

    fd = os.open(tmp_path, os.O_RDONLY)  # e.g. a lock an earlier training left behind
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run = RunDir(tmp_path)
        run.lock()
        run.unlock()
    finally:
        os.close(fd)


# ------------------------------------------------------------------ unfreeze specs
@pytest.mark.parametrize(("spec", "parsed"), [
    ("all", UnfreezeSpec("all")),
    (" last_blocks:2 ", UnfreezeSpec("last", count=2)),
    ("last_stages:0", UnfreezeSpec("last", count=0)),
    ("blocks.1-3", UnfreezeSpec("modules", paths=("blocks.1", "blocks.2", "blocks.3"))),
    ("backbone.blocks.2-2", UnfreezeSpec("modules", paths=("backbone.blocks.2",))),
    ("layer4", UnfreezeSpec("modules", paths=("layer4",))),
])
def test_unfreeze_specs_parse(spec, parsed):
    assert parse_unfreeze_spec(spec) == parsed


@pytest.mark.parametrize(("spec", "match"), [
    ("blocks.3-1", "reversed"),
    ("blocks.1-x", "not a range"),
    ("blocks-3", "not a range"),
    ("last_blocks:x", "not a count"),
])
def test_malformed_unfreeze_specs_are_refused_by_check_and_train(spec, match):
    import torch

    from rsfm.train.unfreeze import UnfreezeScheduler, resolve_modules

    with pytest.raises(ConfigError, match=match):
        parse_unfreeze_spec(spec)
    card = get_card("dofa_base")
    names = backbone_module_names(card, {**card.arch, "depth": 4, "embed_dim": 64, "num_heads": 2})
    assert match in unfreeze_spec_problem(spec, names)
    model = torch.nn.Module()
    model.backbone = torch.nn.Module()
    model.backbone.blocks = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(4))
    with pytest.raises(ConfigError, match=match):
        resolve_modules(model, spec)
    from rsfm.schema import UnfreezeStep

    with pytest.raises(ConfigError, match=r"train\.freeze\.unfreeze\[0\]"):
        UnfreezeScheduler.check(model, [UnfreezeStep(epoch=1, modules=(spec,))])


# ------------------------------------------------------------------ LoRA targets
def test_lora_targets_default_to_the_card():
    card = get_card("dofa_base")
    assert lora_targets(None, card) == tuple(card.lora_targets)
    assert lora_targets((), card) == tuple(card.lora_targets)
    assert lora_targets(["attn.qkv"], card) == ("attn.qkv",)


def test_lora_comparison_resolves_default_targets_and_ignores_dropout():
    from rsfm.train.run_dir import _lora_comparable

    card = get_card("dofa_base")
    default = _lora_comparable(LoraSettings(dropout=0.1), "dofa_base")
    explicit = _lora_comparable(LoraSettings(target_modules=card.lora_targets[::-1]), "dofa_base")
    assert default == explicit
    assert _lora_comparable(LoraSettings(r=4), "dofa_base") != default
    # an unknown backbone is reported as model.backbone, not raised here
    assert _lora_comparable(LoraSettings(), "no_such_backbone").target_modules is None


# ------------------------------------------------------------------ resume of a stopped run
def _run_with_state(tmp_path: Path, **state) -> Path:
    ckpt = tmp_path / "run" / "checkpoints" / "epoch-0002"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    return ckpt


def test_resume_of_an_early_stopped_run_says_to_start_a_new_one(tmp_path):
    from types import SimpleNamespace

    from rsfm.train.run_dir import RunDir

    ckpt = _run_with_state(tmp_path, epoch=1, global_step=4, elapsed=1.0, stopped_early=True,
                           future_key=1)
    recipe = SimpleNamespace(train=SimpleNamespace(epochs=10, max_steps=None, max_time=None),
                             max_seconds=None)
    with pytest.raises(ConfigError, match="early stopping") as err:
        RunDir(tmp_path / "run")._check_unfinished(ckpt, recipe)
    assert "output.overwrite" in str(err.value) and "raise" not in str(err.value)
    unstopped = _run_with_state(tmp_path / "b", epoch=1, global_step=4, elapsed=1.0)
    RunDir(tmp_path / "b" / "run")._check_unfinished(unstopped, recipe)  # 2 of 10 epochs


# ------------------------------------------------------------------ head options
def test_head_options_are_the_head_classes_keyword_arguments():
    """``rsfm.config.HEAD_OPTIONS`` (torch-free, read by ``rsfm check``) lists the keyword
    arguments of each segmentation and classification head, less those the builder sets."""
    from rsfm.models.heads.classification import ClassificationHead
    from rsfm.models.heads.segmentation import SEGMENTATION_HEADS

    heads = [(kind, cls, {"in_channels", "in_strides", "num_classes"})
             for kind, cls in SEGMENTATION_HEADS.items()]
    heads.append(("classification", ClassificationHead, {"in_channels", "num_classes"}))
    for kind, cls, built in heads:
        params = set(inspect.signature(cls.__init__).parameters) - {"self", *built}
        assert params == set(HEAD_OPTIONS[kind]), kind
