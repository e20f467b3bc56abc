"""A training process killed with SIGKILL at an arbitrary moment after its first checkpoint
resumes (``rsfm train --resume``) to the weights of an uninterrupted run (equal to 1e-6; bit-equal
in practice with the same number of CPU threads: float reductions depend on the thread count)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_train import tiny_recipe


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    from rsfm.cli import main
    from rsfm.errors import ConfigError
    from rsfm.train.loop import train

    recipe = tiny_recipe(tmp_path / "killed", train={"epochs": 3})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    proc = subprocess.Popen([sys.executable, "-m", "rsfm", "train", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ))
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert latest.exists()
    assert main(["train", str(path), "--resume"]) == 0
    full = train(tiny_recipe(tmp_path / "full", train={"epochs": 3}))
    assert full["global_step"] == 6
    a = load_file(str(tmp_path / "full" / "last_model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "last_model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    leftovers = [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()
                 if p.name.startswith(".tmp")]
    assert leftovers == []  # half-written checkpoints of the killed process are cleaned up
    # resuming a finished run is a no-op; --resume without a checkpoint is an error
    again = train(tiny_recipe(tmp_path / "killed", train={"epochs": 3}), resume="auto")
    assert again["global_step"] == 6 and len(again["history"]) == 3
    with pytest.raises(ConfigError, match="no complete checkpoint"):
        train(tiny_recipe(tmp_path / "none"), resume=True)
