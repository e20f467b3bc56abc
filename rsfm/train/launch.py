"""Multi-process launches that accelerate starts as a single process.

``accelerate launch --cpu --num_processes 2 -m rsfm.train r.yaml`` (accelerate 1.x) runs its
"simple" launcher: one process, whose environment asks for a rendezvous (``MASTER_ADDR``) but
has no ``WORLD_SIZE``; the ``--cpu`` multi-process mode needs an MPI hostfile. rsfm detects this
and starts the requested number of processes with ``torch.distributed.run`` (torchrun) instead,
which runs DDP on CPU with gloo (or on the GPUs when there are some).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from rsfm.errors import ConfigError

__all__ = ["relaunch_if_single", "requested_processes"]

log = logging.getLogger(__name__)

_HOW = ("Start the processes with `accelerate launch --multi_gpu --num_processes N -m rsfm.train "
        "RECIPE` (rsfm runs DDP on CPU when there is no GPU) or `torchrun --nproc_per_node N -m "
        "rsfm.train RECIPE`.")


def _parent_launch_args() -> list[str] | None:
    """The ``accelerate launch`` arguments of the parent process (Linux), else None."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if "launch" not in argv:
        return None
    return argv[argv.index("launch") + 1:]


def requested_processes() -> int | None:
    """How many processes an accelerate launch that started only this one asked for.

    Returns:
        None when this process is not such a launch (no accelerate launcher, a real
        multi-process launch, or one process asked for).

    Raises:
        ConfigError: Several processes were asked for but the number cannot be read (names the
            commands that work).
    """
    env = os.environ
    launched = "ACCELERATE_MIXED_PRECISION" in env and "MASTER_ADDR" in env
    if not launched or "WORLD_SIZE" in env or "LOCAL_RANK" in env:
        return None
    args = _parent_launch_args()
    n = None
    if args is not None:
        from accelerate.commands.launch import launch_command_parser

        parsed, _rest = launch_command_parser().parse_known_args(args)
        n = parsed.num_processes
        if n is None:
            from accelerate.commands.config.config_args import (
                default_config_file,
                load_config_from_file,
            )

            if os.path.isfile(parsed.config_file or default_config_file):
                n = load_config_from_file(parsed.config_file).num_processes
    if n is None:
        raise ConfigError("accelerate started one process although several were asked for "
                          f"(MASTER_ADDR is set, WORLD_SIZE is not). {_HOW}")
    return int(n) if int(n) > 1 else None


def relaunch_if_single() -> None:
    """Replace this process by torchrun with the requested processes (see the module docstring).

    Returns only when nothing needs to be done.
    """
    n = requested_processes()
    if n is None:
        return
    orig = list(sys.orig_argv)
    target = orig[orig.index("-m"):] if "-m" in orig else list(sys.argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n),
           "--master_addr", os.environ["MASTER_ADDR"],
           "--master_port", os.environ.get("MASTER_PORT", "29500"), *target]
    log.info("accelerate started 1 process for --num_processes %d (its --cpu mode needs MPI); "
             "starting %d processes with torch.distributed.run instead.", n, n)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)
