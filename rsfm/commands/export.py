"""``rsfm export MODEL --format onnx|torchscript``: a deployable file with a parity check."""


from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm export``."""
    parser.add_argument("model", help="run directory or Hub repo id")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    parser.add_argument("-o", "--out", help="output file (default: <model>/model.onnx or model.pt)")
    parser.add_argument("--size", type=int, help="example tile size (default: the model's)")
    parser.add_argument("--multiple", type=int, default=16, help="H and W are multiples of this (patch size)")
    parser.add_argument("--atol", type=float, help="parity tolerance (default 1e-3 ONNX, 1e-4 TorchScript)")


def run(args: argparse.Namespace) -> int:
    """Export, print the parity check, return 1 when it fails."""
    from rsfm.inference.export import export_model

    out = args.out
    if out is None:
        base = Path(args.model) if Path(args.model).is_dir() else Path(".")
        out = base / ("model.onnx" if args.format == "onnx" else "model.pt")
    kw = {"size": args.size, "multiple": args.multiple}
    if args.atol is not None:
        kw["atol"] = args.atol
    res = export_model(args.model, out, args.format, **kw)
    print(f"wrote {res.path} ({res.format})")
    for shape, diff in res.max_abs_diff.items():
        print(f"  parity {shape}: max abs diff {diff:.3g}")
    for note in res.notes:
        print(f"  note: {note}")
    print("parity check " + ("passed" if res.passed else "FAILED"))
    return 0 if res.passed else 1
