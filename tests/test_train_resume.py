"""Resume safety (issue 11 item 2). A training process killed with SIGKILL at an arbitrary moment
after its first checkpoint resumes (``rsfm train --resume``) to the weights of an uninterrupted
run (equal to 1e-6; bit-equal in practice with the same number of CPU threads: float reductions
depend on the thread count). A resume writes nothing before the recipe is known to match the
run; a damaged latest checkpoint falls back to the newest intact one; the recipe history is
append-only; an output folder that cannot be created fails before any compute."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_train import tiny_recipe, train_log  # noqa: F401  (fixture)


def snapshot(folder):
    """{relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    from rsfm.cli import main
    from rsfm.errors import ConfigError
    from rsfm.train.loop import train

    recipe = tiny_recipe(tmp_path / "killed", train={"epochs": 3})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    proc = subprocess.Popen([sys.executable, "-m", "rsfm", "train", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            # the same thread count as this process: float sums depend on it
                            env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert latest.exists()
    first_recipe = (tmp_path / "killed" / "recipe.yaml").read_bytes()
    assert main(["train", str(path), "--resume"]) == 0
    assert (tmp_path / "killed" / "recipe.yaml").read_bytes() == first_recipe  # append-only
    assert (tmp_path / "killed" / "recipe.resumed-1.yaml").is_file()
    full = train(tiny_recipe(tmp_path / "full", train={"epochs": 3}))
    assert full.global_step == 6
    a = load_file(str(tmp_path / "full" / "last_model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last_model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    leftovers = [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()
                 if p.name.startswith(".tmp")]
    assert leftovers == []  # half-written checkpoints of the killed process are cleaned up
    # resuming a finished run is a no-op; --resume without a checkpoint is an error
    again = train(tiny_recipe(tmp_path / "killed", train={"epochs": 3}), resume="auto")
    assert again.global_step == 6 and len(again.history) == 3
    assert (tmp_path / "killed" / "recipe.resumed-2.yaml").is_file()
    with pytest.raises(ConfigError, match="no complete checkpoint"):
        train(tiny_recipe(tmp_path / "none"), resume=True)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-epoch run keeping 2 checkpoints (epoch-0001 weights only, epoch-0002 full)."""
    from rsfm.train.loop import train

    run = tmp_path_factory.mktemp("done") / "run"
    train(tiny_recipe(run, output={"dir": str(run), "plots": False, "keep_checkpoints": 2}))
    return run


def copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(("change", "keys"), [
    ({"model": {"head": "unet"}}, ["model.head"]),
    ({"model": {"num_classes": 3}, "data": {"classes": ["dry", "water", "cloud"]}},
     ["input.classes", "model.num_classes"]),
    ({"model": {"bands": ["VH", "VV"]},
      "data": {"normalization": {"mode": "stats", "mean": [-17.0, -10.0], "std": [5.0, 4.0]}}},
     ["input.bands", "input.normalization"]),
])
def test_incompatible_resume_lists_the_keys_and_writes_nothing(finished_run, tmp_path, change,
                                                               keys):
    from rsfm.errors import ConfigError
    from rsfm.train.loop import train

    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    recipe = tiny_recipe(run, output={"dir": str(run), "plots": False, "keep_checkpoints": 2},
                         train={"epochs": 3})
    for section, values in change.items():
        recipe[section] = {**recipe[section], **values}
    with pytest.raises(ConfigError, match="does not match the run") as info:
        train(recipe, resume=True)
    for key in keys:
        assert key in str(info.value), key
    assert "nothing was written" in str(info.value)
    assert snapshot(run) == before


def test_incompatible_resume_from_the_cli(finished_run, tmp_path, capsys):
    from rsfm.cli import main

    run = copy_run(finished_run, tmp_path / "run")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(run, output={"dir": str(run), "plots": False,
                                                            "keep_checkpoints": 2})))
    before = snapshot(run)
    assert main(["train", str(path), "--resume", "model.head=unet"]) == 2
    err = capsys.readouterr().err
    assert "model.head: run \"fcn\", recipe \"unet\"" in err
    assert snapshot(run) == before


@pytest.mark.parametrize("damaged", ["optimizer.bin", "model.safetensors"])
@pytest.mark.usefixtures("train_log")
def test_damaged_latest_checkpoint_falls_back_to_the_newest_intact(finished_run, tmp_path,
                                                                    caplog, damaged):
    from rsfm.train.checkpoint import checkpoint_problem
    from rsfm.train.loop import train

    run = copy_run(finished_run, tmp_path / "run")
    target = run / "checkpoints" / "epoch-0002" / damaged
    data = target.read_bytes()
    target.unlink()  # (a hard link: do not truncate the other name's file)
    target.write_bytes(data[: len(data) // 2])
    assert damaged in checkpoint_problem(target.parent)
    result = train(tiny_recipe(run, output={"dir": str(run), "plots": False,
                                            "keep_checkpoints": 2}, train={"epochs": 3}),
                   resume=True)
    text = caplog.text
    assert "epoch-0002' is damaged" in text and "resuming from" in text and "epoch-0001" in text
    assert "optimizer state (moments) starts afresh" in text
    assert result.global_step == 6 and [h["epoch"] for h in result.history] == [1, 2, 3]
    assert checkpoint_problem(run / "checkpoints" / "epoch-0003") is None


def test_no_intact_checkpoint_is_an_error(finished_run, tmp_path):
    from rsfm.errors import ConfigError
    from rsfm.train.loop import train

    run = copy_run(finished_run, tmp_path / "run")
    for ckpt in (run / "checkpoints").glob("epoch-*"):
        (ckpt / "model.safetensors").unlink()
        (ckpt / "model.safetensors").write_bytes(b"\x00" * 10)
    before = snapshot(run)
    with pytest.raises(ConfigError, match="no intact checkpoint") as info:
        train(tiny_recipe(run, output={"dir": str(run), "keep_checkpoints": 2}), resume=True)
    assert "epoch-0002 (model.safetensors" in str(info.value)
    assert snapshot(run) == before


def test_output_dir_that_cannot_be_created_fails_before_compute(tmp_path, monkeypatch):
    from rsfm.errors import ConfigError
    from rsfm.train import loop

    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")

    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the output folder was checked")

    monkeypatch.setattr(loop, "build_datasets", no_data)
    with pytest.raises(ConfigError, match="cannot be created") as info:
        loop.train(tiny_recipe(blocker / "run"))
    assert str(blocker) in str(info.value)


def test_resume_applies_a_changed_learning_rate(finished_run, tmp_path, caplog):
    """``--resume train.optimizer.lr=...`` is applied from the resumed step on (the checkpoint's
    restored optimizer would otherwise keep the old rate silently), with a warning."""
    import json

    from rsfm.train.loop import train

    run = copy_run(finished_run, tmp_path / "run")
    constant = {"epochs": 3, "scheduler": {"name": "constant"}}
    recipe = tiny_recipe(run, output={"dir": str(run), "plots": False, "keep_checkpoints": 2},
                         train=constant)
    old_lr = recipe["train"]["optimizer"]["lr"]
    recipe["train"]["optimizer"] = {**recipe["train"]["optimizer"], "lr": old_lr * 10}
    with caplog.at_level("WARNING", logger="rsfm"):
        train(recipe, resume=True)
    assert "train.optimizer.lr" in caplog.text
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epoch_lr = {r["epoch"]: r["lr"] for r in rows if "lr" in r}
    # the resumed epoch runs at ten times the rate the same resume without the change gives
    reference = tmp_path / "same"
    copy_run(finished_run, reference)
    same = tiny_recipe(reference, output={"dir": str(reference), "plots": False,
                                          "keep_checkpoints": 2}, train=constant)
    train(same, resume=True)
    ref = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    ref_lr = {r["epoch"]: r["lr"] for r in ref if "lr" in r}
    last = max(epoch_lr)
    assert ref_lr[last] == pytest.approx(old_lr)
    assert epoch_lr[last] == pytest.approx(10 * old_lr, rel=1e-6)
