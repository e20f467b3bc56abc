"""DDP on 2 CPU processes: ``find_unused_parameters`` on (rsfm 0.1's hard-wired setting) vs off
(what rsfm's probe step picks when every trainable parameter gets a gradient).

    .venv/bin/python bench/bench_ddp.py [--backbone resnet18] [--head unet] [--size 256]
        [--batch 4] [--reps 2]

Each configuration runs in a fresh subprocess (``bench/_harness.py``) that is rank 0 of a 2-process
gloo group; it starts rank 1 itself, which runs the same steps in lockstep (DDP's all-reduce keeps
them together) until rank 0 leaves. The model is built by ``rsfm.create_model`` and wrapped in
``torch.nn.parallel.DistributedDataParallel`` exactly as accelerate does; the only difference
between the rows is ``find_unused_parameters``. With it on, DDP walks the autograd graph after
every forward pass to find parameters that will get no gradient, and cannot start all-reducing
buckets before that walk is done. Times are rank 0's, per step (batch ``--batch`` per process);
one torch thread per process, so the two ranks use the two cores.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from _harness import Config, add_arguments, machine_header, measure, serve, table, write_section


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(rank: int, p: dict[str, Any]) -> Any:
    """Join the group and return one training step of this rank's DDP model."""
    import torch
    import torch.distributed as dist

    from rsfm.factory import create_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = create_model("segmentation", p["backbone"], head=p["head"], num_classes=2,
                         bands=["RED", "GREEN", "BLUE"])
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, find_unused_parameters=p["find_unused"])
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(p["batch"], 3, p["size"], p["size"], generator=g)
    y = torch.randint(0, 2, (p["batch"], p["size"], p["size"]), generator=g)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    ddp.train()

    def step() -> None:
        loss_fn(ddp(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def _rank1(p: dict[str, Any]) -> None:
    step = _setup(1, p)
    try:
        while True:  # lockstep with rank 0 through the all-reduce; ends when rank 0 exits
            step()
    except Exception:  # noqa: BLE001 - rank 0 left: the gloo connection closed
        os._exit(0)


def build(p: dict[str, Any]) -> Any:
    """Start rank 1, join as rank 0, and return rank 0's step (the harness times it)."""
    import multiprocessing as mp

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    other = mp.get_context("spawn").Process(target=_rank1, args=(p,), daemon=True)
    other.start()
    step = _setup(0, p)
    return step, {"processes": 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--head", default="unet")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    add_arguments(ap, reps=2, warmup=2, steps=5, timeout=600)
    args = ap.parse_args()
    header = machine_header(1, 2)
    print(header)
    base = {"backbone": args.backbone, "head": args.head, "size": args.size, "batch": args.batch}
    cfgs = [Config("find-unused-on", {**base, "find_unused": True},
                   note="rsfm 0.1: always on"),
            Config("find-unused-off", {**base, "find_unused": False},
                   note="rsfm's probe result for this model (every parameter gets a gradient)")]
    # one configuration at a time: each already uses both cores (two ranks)
    res = measure(__file__, cfgs, reps=args.reps, warmup=args.warmup, steps=args.steps,
                  threads=1, jobs=1, timeout=args.timeout)
    md = table(res, time_baseline="find-unused-on", info_keys=["processes"])
    print(md)
    title = (f"{args.backbone} + {args.head}, 2 CPU processes (gloo), batch {args.batch} per "
             f"process, {args.size} px, train step (AdamW); rank 0's times")
    write_section(args.markdown, "DDP (`bench_ddp.py`)", f"{header}\n\n### {title}\n\n{md}")


if __name__ == "__main__":
    if not serve(build):
        main()
