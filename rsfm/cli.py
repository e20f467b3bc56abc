"""The ``rsfm`` command line. Each subcommand lives next to the code it drives.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when its subcommand runs, so ``rsfm --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rsfm import __version__
from rsfm.errors import RsfmError

# subcommand -> (module, one-line help). Add a line here to add a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("rsfm.commands.demo", "train the bundled Sen1Floods11 flood demo and predict a held-out chip"),
    "backbones": ("rsfm.commands.backbones", "list registered backbones (name, family, params, bands...)"),
    "stats": ("rsfm.data.stats", "exact per-band mean/std of rasters or chip folders (nodata excluded) -> YAML"),
    "train": ("rsfm.commands.train", "train a YAML recipe (same as accelerate launch -m rsfm.train)"),
    "check": ("rsfm.commands.check", "validate a recipe and print it resolved, without training"),
    "schema": ("rsfm.commands.schema", "print the JSON schema of recipes (editor completion)"),
    "push": ("rsfm.commands.push", "upload a trained run to the Hugging Face Hub"),
    "predict": ("rsfm.commands.predict", "predict GeoTIFF scenes -> class COG, probabilities, vectors, preview"),
    "export": ("rsfm.commands.export", "export a model to ONNX / TorchScript with a parity check"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command (modules load lazily)."""
    parser = argparse.ArgumentParser(prog="rsfm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rsfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rsfm`` console script and ``python -m rsfm``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    # rsfm's own messages at INFO; other libraries (accelerate, GDAL...) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rsfm").setLevel(logging.DEBUG if top.verbose else logging.INFO)
    if top.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[top.command][0])
    cmd_parser = argparse.ArgumentParser(prog=f"rsfm {top.command}", description=COMMANDS[top.command][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except RsfmError as err:  # user errors: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `rsfm backbones | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
