"""``rsfm export MODEL [-o FILE] [--format pt2|onnx|torchscript]``: a deployable file, parity-checked.

The output and the options are checked before the model is loaded: the output replaces only an
earlier rsfm export, never a file of the model folder (weights, config, recipe, checkpoints) or
any other file, and its suffix must be the format's. A failed parity check exits with an error
(code 2) that says the file was kept.
"""


from __future__ import annotations

import argparse
import math
from pathlib import Path

from rsfm.errors import ConfigError
from rsfm.inference.export import FORMATS, export_model, format_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm export``."""
    parser.add_argument("model", help="run directory, saved model folder or Hub repo id")
    parser.add_argument("--format", choices=sorted(FORMATS),
                        help="pt2 (torch.export), onnx, or torchscript (legacy); default: from "
                        "the -o suffix, else onnx")
    parser.add_argument("-o", "--out", help="output file (default: <model>/model.<format "
                        "suffix>); an existing file must be an earlier rsfm export")
    parser.add_argument("--size", type=int, help="example tile size (default: the model's)")
    parser.add_argument("--multiple", type=int,
                        help="H and W are multiples of this (default: the patch size)")
    parser.add_argument("--atol", type=float, help="parity tolerance (default 1e-3 ONNX, 1e-4 "
                        "pt2/TorchScript)")


def run(args: argparse.Namespace) -> int:
    """Export and print the parity check.

    Raises:
        ConfigError: The parity check failed (the file is kept: a traced TorchScript file, for
            one, still works at the example size; the message says so).
    """
    fmt = args.format or (format_of(args.out) if args.out else "onnx")
    out = args.out
    if out is None:
        base = Path(args.model) if Path(args.model).is_dir() else Path(".")
        out = base / f"model{FORMATS[fmt]}"
    kw = {"size": args.size, "multiple": args.multiple}
    if args.atol is not None:
        kw["atol"] = args.atol
    res = export_model(args.model, out, fmt, **kw)
    print(f"wrote {res.path} ({res.format}, {'dynamic' if res.dynamic else 'static'} shape)")
    for shape, diff in res.max_abs_diff.items():
        print(f"  parity {shape}: max abs diff {diff:.3g}")
    for note in res.notes:
        print(f"  note: {note}")
    if not res.passed:
        worst = max(res.max_abs_diff.values(), default=math.inf)
        tol = res.atol if res.atol is not None else math.nan
        raise ConfigError(
            f"parity check FAILED: '{res.path}' differs from PyTorch by up to {worst:.3g}, more "
            f"than the tolerance {tol:g} (--atol; the differences per shape and the notes "
            f"are above). The file was kept as '{res.path}': use it only at the shapes that "
            "pass, or export to another format, or raise --atol if the differences are fine.",
            key="atol")
    print("parity check passed")
    return 0
