"""Two processes (``accelerate launch --multi_gpu --num_processes 2`` on a GPU-less machine:
torchrun + DDP on CPU with gloo) vs one process.

With accelerate 1.15, ``--cpu --num_processes 2`` starts a single process unless mpirun is set up
(``--mpirun_hostfile``), so the torchrun launcher is used; ``rsfm.train`` detects the GPU-less
torchrun environment and runs DDP on CPU.

Both ranks train on halves of each global batch (``split_batches``; the CE loss is divided by the
global number of valid pixels), validation results are gathered over the full validation set
exactly once (3 tiles in batches of 2: the distributed sampler pads the last batch,
``gather_for_metrics`` drops the duplicate), and the metrics match a single-process run within
the stated tolerance. Not bit-equal: BatchNorm statistics are per rank (2 tiles instead of 4) and
dropout draws from per-rank RNG streams.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from test_train import tiny_recipe

TOL_MIOU = 0.05  # absolute
TOL_LOSS = 0.03  # relative, train and validation loss


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def launch(args: list[str], cwd: Path, mode: str = "--multi_gpu") -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [str(accelerate), "launch", mode, "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(free_port()), *args],
        check=False, capture_output=True, text=True, timeout=240, env=env, cwd=cwd,
    )


SYNC_SCRIPT = """
import os, sys, torch
from rsfm.commands.train import show_status_lines
from rsfm.train.loop import train
show_status_lines()
rank = int(os.environ["RANK"])
def dump(event, state):
    if event == "epoch" and state.epoch == 2:
        torch.save(state.model.state_dict(), f"rank{rank}.pt")
train(sys.argv[1], ["train.epochs=3", "output.dir=unfreeze",
      "train.freeze={backbone: true, unfreeze: [{epoch: 1, modules: [blocks.1]},"
      " {epoch: 2, modules: [backbone]}]}"], callbacks=[dump])
"""


def test_progressive_unfreeze_keeps_ranks_in_sync(tmp_path):
    """Parameters unfrozen after DDP wrapped the model are all-reduced like the others."""
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(tiny_recipe(tmp_path / "x")))
    (tmp_path / "sync.py").write_text(SYNC_SCRIPT)
    proc = launch(["sync.py", "recipe.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "unfroze backbone" in proc.stdout
    import torch

    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_two_processes_match_one(tmp_path):
    recipe = tiny_recipe(tmp_path / "ddp", train={"epochs": 2},
                         data={"eval_batch_size": 2})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    proc = launch(["-m", "rsfm.train", str(path)], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    assert proc.stdout.count("epoch 2/2 |") == 1  # summary printed by the main process only
    assert "[rank1]" not in proc.stderr  # both ranks ran to the end

    from rsfm.train.loop import train

    single = train(tiny_recipe(tmp_path / "single", train={"epochs": 2},
                               data={"eval_batch_size": 2}))
    ddp_rows = rows(tmp_path / "ddp")
    assert [r["step"] for r in ddp_rows] == [r["step"] for r in single.history] == [2, 4]
    for a, b in zip(ddp_rows, single.history):
        assert a["val_samples"] == b["val_samples"] == 3  # no duplicated padding samples
        assert sum(map(sum, a["val_confusion_matrix"])) == sum(map(sum, b["val_confusion_matrix"]))
        assert abs(a["val_miou"] - b["val_miou"]) <= TOL_MIOU, (a["val_miou"], b["val_miou"])
        assert abs(a["train_loss"] - b["train_loss"]) <= TOL_LOSS * b["train_loss"]
        assert abs(a["val_loss"] - b["val_loss"]) <= TOL_LOSS * b["val_loss"]


def test_cpu_launch_starts_the_requested_processes(tmp_path):
    """``accelerate launch --cpu --num_processes 2`` starts one process (its --cpu multi-process
    mode needs MPI); rsfm notices and runs the 2 processes through torchrun. ``data.test`` is
    scored once, by the main process, at the end."""
    path = tmp_path / "recipe.yaml"
    s1 = Path(tiny_recipe(tmp_path)["data"]["train"]["images"]).parent
    test = {"images": str(s1 / "S1Hand"), "labels": str(s1 / "LabelHand")}
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "cpu", train={"epochs": 1},
                                               data={"test": test},
                                               output={"dir": str(tmp_path / "cpu"),
                                                       "plots": False})))
    proc = launch(["-m", "rsfm.train", str(path)], tmp_path, mode="--cpu")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "starting 2 processes with torch.distributed.run" in proc.stdout
    assert "2 process(es)" in proc.stdout and proc.stdout.count("epoch 1/1 |") == 1
    assert proc.stdout.count("test (best weights, epoch 1, 3 images)") == 1
    last = rows(tmp_path / "cpu")[-1]
    assert last["split"] == "test" and last["test_images"] == 3


def test_unused_parameter_probe():
    """DDP looks for unused parameters only when a head leaves some without gradient."""
    import torch

    from rsfm.config import ModelConfig, NeckConfig
    from rsfm.factory import create_model
    from rsfm.train.setup import unused_parameters
    from rsfm.train.tasks import build_task

    def model(head):
        return create_model(ModelConfig(
            task="segmentation", backbone="dofa_base", head=head, num_classes=2,
            bands=("VV", "VH"), backbone_kwargs={"depth": 2, "embed_dim": 64, "num_heads": 2},
            neck=NeckConfig(out_channels=32)))

    torch.manual_seed(0)
    fcn, unet = model("fcn"), model("unet")
    task = build_task("segmentation", fcn.input_spec)
    batch = {"image": torch.randn(2, 2, 64, 64), "mask": torch.randint(0, 2, (2, 64, 64))}
    buffers = {k: v.clone() for k, v in unet.named_buffers()}
    rng = torch.get_rng_state()
    unused = unused_parameters(fcn, task, batch)
    assert unused and all(n.startswith("neck.") for n in unused)  # FCN reads one level
    assert unused_parameters(unet, task, batch) == []
    assert torch.equal(torch.get_rng_state(), rng)  # the probe leaves the random state alone
    assert all(torch.equal(v, buffers[k]) for k, v in unet.named_buffers())
    assert not any(p.grad is not None for p in unet.parameters())
