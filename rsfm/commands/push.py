"""``rsfm push FOLDER --repo-id ORG/NAME``: upload a run directory or a saved model folder to the
Hugging Face Hub (config.json, weights or LoRA adapter, run records, a generated model card)."""

from __future__ import annotations

import argparse
import sys

from rsfm.errors import RsfmError
from rsfm.hub import push


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm push``."""
    parser.add_argument("folder", help="run directory or saved model folder (holds config.json)")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--public", action="store_true", help="create the repo public")
    parser.add_argument("--revision", help="branch to commit to")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--dataset", action="append", default=[],
                        help="Hub dataset id for the model card (repeatable; default: the ids "
                        "recorded in config.json)")
    lora = parser.add_mutually_exclusive_group()
    lora.add_argument("--lora-only", dest="lora_only", action="store_true", default=None,
                      help="push only the LoRA adapter + head (base weights referenced)")
    lora.add_argument("--full", dest="lora_only", action="store_false",
                      help="push the full (merged) weights")


def run(args: argparse.Namespace) -> int:
    """Stage and upload the folder; one clear line on failure."""
    # The token comes from `huggingface-cli login` or HF_TOKEN; it is never printed.
    from huggingface_hub.errors import OfflineModeIsEnabled

    try:
        push(args.folder, args.repo_id, private=not args.public, revision=args.revision,
             commit_message=args.message, lora_only=args.lora_only, datasets=args.dataset or None)
    except OfflineModeIsEnabled as err:
        raise RsfmError("HF_HUB_OFFLINE is set, so nothing was pushed; unset it to upload.") from err
    except RsfmError:
        raise
    except Exception as err:  # network/HTTP/auth failures from huggingface_hub: one clear line
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise RsfmError(
            f"Push to {args.repo_id!r} failed ({type(err).__name__}: {first}). Check the network "
            f"and your login (`hf auth login` or HF_TOKEN); the folder is unchanged."
        ) from err
    sys.stdout.write(f"pushed to https://huggingface.co/{args.repo_id}\n")
    return 0
