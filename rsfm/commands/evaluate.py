"""``rsfm evaluate RUN_OR_REPO [RECIPE]``: metrics of a trained model, with predict's tiling."""

from __future__ import annotations

import argparse

from rsfm.devices import check_device
from rsfm.errors import ConfigError
from rsfm.evaluation import evaluate
from rsfm.inference.precision import PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm evaluate``."""
    parser.add_argument("model", metavar="RUN_OR_REPO", help="run directory, saved model folder, "
                        "Hub repo id, or an exported .pt2 / .onnx file")
    parser.add_argument("recipe", nargs="?", metavar="RECIPE", help="recipe whose data split to "
                        "evaluate on (default: the run's recipe.yaml)")
    parser.add_argument("--split", choices=["test", "val", "train"],
                        help="recipe split (default: test)")
    parser.add_argument("--images", metavar="DIR", help="evaluate on this image folder instead "
                        "of a recipe split (classification: the root of the class folders)")
    parser.add_argument("--labels", metavar="DIR", help="the labels of --images, paired by file "
                        "name (or a COCO .json)")
    parser.add_argument("--image-suffix", help="--images: stem ending removed before pairing")
    parser.add_argument("--label-suffix", help="--labels: stem ending removed before pairing")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="output folder (default: <run>/evaluation/<split>; the run "
                        "folder itself means the same; an earlier evaluation is replaced, "
                        "other files never)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                        help="override a recipe key (repeatable), e.g. --set data.test.images=x")
    parser.add_argument("--tile-size", type=int, help="tile size (default: the model's)")
    parser.add_argument("--overlap", type=int, help="tile overlap in pixels (default: tile/4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32, or bf16/fp16 autocast (default as rsfm predict)")
    parser.add_argument("--score-threshold", type=float,
                        help="detection: minimum score of kept boxes (default: the recipe's "
                        "eval.score_threshold, else 0.05)")
    parser.add_argument("--max-detections", type=int, default=100,
                        help="detection: highest-scoring boxes counted per image (COCO: 100)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the summary line and where the results went."""
    if args.split is not None and (args.images or args.labels):
        raise ConfigError("--split picks a split of the recipe; --images/--labels evaluate "
                          "folders instead. Give one or the other.")
    check_device(args.device)  # named as the command line spells it
    result = evaluate(
        args.model, args.recipe, split=args.split or "test", images=args.images,
        labels=args.labels, out=args.out, overrides=args.overrides, tile_size=args.tile_size,
        overlap=args.overlap, batch_size=args.batch_size, precision=args.precision,
        device=args.device, score_threshold=args.score_threshold,
        max_detections=args.max_detections, image_suffix=args.image_suffix,
        label_suffix=args.label_suffix, progress=not args.quiet,
    )
    print(result.summary())
    print(f"results in {result.out_dir} ({', '.join(p.name for p in result.files)})")
    return 0
