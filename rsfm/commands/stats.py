"""``rsfm stats PATH... -o stats.yaml``: exact per-band mean/std (the statistics themselves are
:mod:`rsfm.data.stats`).

The output is checked before any pixel is read: not a folder, not an input, not an existing
file without ``--force``, and its folder can be created and written (the probe ``rsfm predict``
and ``rsfm export`` use), so a read-only location fails at once, naming ``-o``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rsfm.data import stats
from rsfm.preflight import check_writable_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm stats``."""
    stats.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Check that ``-o`` can be written, then compute and write the statistics."""
    out = Path(args.out)
    check_writable_dir(out.parent, f"-o '{out}': its folder")
    return stats.run(args)
