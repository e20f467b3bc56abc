"""The ``rsfm`` command line. Each subcommand lives next to the code it drives.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when its subcommand runs, so ``rsfm --help`` stays fast.

No raw traceback reaches a user: :func:`run_guarded` turns an :class:`~rsfm.errors.RsfmError`
(or an OS error about a named file, or a full disk) into one line on stderr and exit code 2,
and any other exception into a short message plus the path of a saved traceback file
(``--debug`` prints the traceback inline instead).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from rsfm import __version__
from rsfm.errors import RsfmError
from rsfm.io import disk_full_message, disk_full_reason

__all__ = ["COMMANDS", "build_parser", "main", "run_guarded", "setup_logging"]

# subcommand -> (module, one-line help). Add a line here to add a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("rsfm.commands.demo", "train the bundled Sen1Floods11 flood demo and predict a held-out chip"),
    "backbones": ("rsfm.commands.backbones", "list registered backbones (name, family, params, bands...)"),
    "stats": ("rsfm.commands.stats", "exact per-band mean/std of rasters or chip folders (nodata excluded) -> YAML"),
    "train": ("rsfm.commands.train", "train a YAML recipe (same as accelerate launch -m rsfm.train)"),
    "check": ("rsfm.commands.check", "validate a recipe (and its data with --data) without training"),
    "schema": ("rsfm.commands.schema", "print the JSON schema of recipes (editor completion)"),
    "push": ("rsfm.commands.push", "upload a trained run or saved model to the Hugging Face Hub"),
    "predict": ("rsfm.commands.predict", "predict GeoTIFF scenes -> class COG, probabilities, vectors, preview"),
    "evaluate": ("rsfm.commands.evaluate", "metrics of a trained model on a labelled split (test/val) or folders, with predict's tiling"),
    "export": ("rsfm.commands.export", "export a model to ONNX / torch.export with a parity check"),
    "convert": ("rsfm.commands.convert", "convert other tools' configs (TerraTorch) into an rsfm recipe"),
}


def traceback_dir() -> Path:
    """Where unexpected errors' tracebacks are saved: ``$RSFM_TRACEBACK_DIR``, else
    ``$XDG_CACHE_HOME/rsfm/tracebacks`` (``~/.cache/rsfm/tracebacks``), else the temp folder."""
    env = os.environ.get("RSFM_TRACEBACK_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "rsfm" / "tracebacks"


def _save_traceback(command: str, text: str) -> Path | None:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for folder in (traceback_dir(), Path(tempfile.gettempdir()) / "rsfm-tracebacks"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{stamp}-{command}-{os.getpid()}.txt"
            path.write_text(f"rsfm {__version__}: {' '.join(sys.argv)}\n\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def run_guarded(command: str, fn: Callable[[], int | None],
                debug: bool | Callable[[], bool] = False) -> int:
    """Run ``fn`` and turn every exception into a message and an exit code.

    Returns:
        ``fn``'s code; 2 for user errors (``RsfmError``, an OS error naming a file, a full disk
        or file size limit); 130 on
        Ctrl-C; 1 for anything else (its traceback is saved, or printed with ``debug``, which may
        be a callable read when the error happens).
    """
    def debugging() -> bool:
        return debug() if callable(debug) else bool(debug)

    try:
        return int(fn() or 0)
    except RsfmError as err:
        if debugging():
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `rsfm backbones | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the point: no raw traceback for users
        full = disk_full_reason(err)
        if full is not None and not debugging():  # a full disk no rsfm writer has named
            where = f"'{err.filename}'" if getattr(err, "filename", None) else "a file"
            print(f"error: {disk_full_message(where, full)}", file=sys.stderr)
            return 2
        if not isinstance(err, OSError) or err.filename is None or debugging():
            return _unexpected(command, err, debugging())
        print(f"error: {err.strerror or err} ({err.filename})", file=sys.stderr)
        return 2


def _unexpected(command: str, err: BaseException, debug: bool) -> int:
    text = traceback.format_exc()
    if debug:
        print(text, file=sys.stderr, end="")
        return 1
    saved = _save_traceback(command, text)
    where = f" The traceback is in {saved}." if saved else ""
    print(f"error: {type(err).__name__}: {err}\nThis is a bug in rsfm or an unexpected input."
          f"{where} Run again with --debug to see it here, and include it if you report it.",
          file=sys.stderr)
    return 1


def setup_logging(verbose: bool = False) -> None:
    """rsfm's own messages at INFO (DEBUG with ``verbose``); other libraries only when they warn."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rsfm").setLevel(logging.DEBUG if verbose else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command (modules load lazily)."""
    parser = argparse.ArgumentParser(prog="rsfm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rsfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="print tracebacks of unexpected errors instead of saving them")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rsfm`` console script and ``python -m rsfm``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    if top.command is None:
        setup_logging(top.verbose)
        parser.print_help()
        return 0
    # -v / --debug work before and after the subcommand (`rsfm train r.yaml --debug`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=top.verbose,
                        help="debug logging (and fp32/bf16 parity reports where relevant)")
    common.add_argument("--debug", action="store_true", default=top.debug,
                        help="print tracebacks of unexpected errors instead of saving them")
    module_name, help_text = COMMANDS[top.command]
    state = {"debug": top.debug}

    def run() -> int:
        module = importlib.import_module(module_name)
        cmd_parser = argparse.ArgumentParser(prog=f"rsfm {top.command}", description=help_text,
                                             parents=[common])
        module.add_arguments(cmd_parser)
        # intermixed: `rsfm check r.yaml --data k=v` and `rsfm train r.yaml --resume k=v` work
        args = cmd_parser.parse_intermixed_args(rest)
        state["debug"] = args.debug
        setup_logging(args.verbose)
        return int(module.run(args) or 0)

    return run_guarded(top.command, run, lambda: state["debug"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
