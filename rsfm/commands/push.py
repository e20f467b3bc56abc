"""``rsfm push RUN_DIR --repo-id ORG/NAME``: upload a trained run to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory (or a save_pretrained folder)")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--public", action="store_true", help="create the repo public")
    parser.add_argument("--revision", help="branch to commit to")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--dataset", action="append", default=[],
                        help="Hub dataset id for the model card (repeatable)")
    lora = parser.add_mutually_exclusive_group()
    lora.add_argument("--lora-only", dest="lora_only", action="store_true", default=None,
                      help="push only the LoRA adapter + head (base weights referenced)")
    lora.add_argument("--full", dest="lora_only", action="store_false",
                      help="push the full (merged) weights")


def run(args: argparse.Namespace) -> int:
    # The token comes from `huggingface-cli login` or HF_TOKEN; it is never printed.
    from huggingface_hub.errors import OfflineModeIsEnabled

    from rsfm.errors import RsfmError
    from rsfm.hub import push

    try:
        push(args.run_dir, args.repo_id, private=not args.public, revision=args.revision,
             commit_message=args.message, lora_only=args.lora_only, datasets=args.dataset)
    except OfflineModeIsEnabled as err:
        raise RsfmError("HF_HUB_OFFLINE is set, so nothing was pushed; unset it to upload.") from err
    except RsfmError:
        raise
    except Exception as err:  # network/HTTP/auth failures from huggingface_hub: one clear line
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise RsfmError(
            f"Push to {args.repo_id!r} failed ({type(err).__name__}: {first}). Check the network "
            f"and your login (`hf auth login` or HF_TOKEN); the run directory is unchanged."
        ) from err
    sys.stdout.write(f"pushed to https://huggingface.co/{args.repo_id}\n")
    return 0
