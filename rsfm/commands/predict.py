"""``rsfm predict MODEL INPUT... -o OUT``: georeferenced prediction on large scenes."""


from __future__ import annotations

import argparse
import json

from rsfm.devices import check_device
from rsfm.inference.precision import PRECISIONS
from rsfm.inference.predict import PredictOptions, predict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm predict``."""
    parser.add_argument("model", help="run directory, saved model folder, Hub repo id, or an "
                        "exported .pt2 / .onnx / TorchScript .pt file")
    parser.add_argument("inputs", nargs="+", help="GeoTIFF/COG scenes or folders; a T-frame model "
                        "takes each scene as T files in time order")
    parser.add_argument("-o", "--out", help="output file for one scene (segmentation: .tif; "
                        "detection: .geojson/.gpkg/.fgb/.shp) or folder (default: next to inputs)")
    parser.add_argument("--tile-size", type=int, help="tile size (default: the model's)")
    parser.add_argument("--overlap", type=int, help="tile overlap in pixels (default: tile/4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32, or bf16/fp16 autocast where the device supports it (default: "
                        "fp32, or bf16 for models trained in bf16); --verbose reports the "
                        "agreement with fp32 on the first batch")
    parser.add_argument("--probabilities", choices=["uint8", "float32"],
                        help="also write per-class probabilities to <out>_probs.tif")
    parser.add_argument("--confidence", action="store_true", help="also write <out>_conf.tif")
    parser.add_argument("--threshold", type=float, help="two-class models: class 1 where p >= T")
    parser.add_argument("--score-threshold", type=float, default=0.05,
                        help="detection: minimum score of kept boxes")
    parser.add_argument("--min-object-size", type=int, default=0, help="remove objects < N pixels")
    parser.add_argument("--fill-holes", type=int, default=0, metavar="N", help="fill holes < N pixels")
    parser.add_argument("--vectors", nargs="?", const=True, default=None, metavar="PATH",
                        help="segmentation: also write polygons (.gpkg next to the raster, or "
                        "PATH .geojson/.gpkg/.fgb/.shp)")
    parser.add_argument("--preview", help="quicklook PNG with the prediction overlaid")
    parser.add_argument("--file-bands", help="comma-separated band order of the input files "
                        "(when their bands carry no or other names)")
    parser.add_argument("--no-cog", action="store_true", help="tiled GeoTIFF without overviews")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Predict every scene and print where the results went."""
    check_device(args.device)
    options = PredictOptions(
        tile_size=args.tile_size, overlap=args.overlap, batch_size=args.batch_size,
        device=args.device, precision=args.precision, parity_check=bool(args.verbose),
        score_threshold=args.score_threshold, threshold=args.threshold,
        probabilities=args.probabilities, confidence=args.confidence,
        min_object_size=args.min_object_size, max_hole_size=args.fill_holes,
        cog=not args.no_cog, progress=not args.quiet,
    )
    file_bands = ([b.strip() for b in args.file_bands.split(",") if b.strip()]
                  if args.file_bands else None)
    results = predict(args.model, args.inputs, args.out, file_bands=file_bands,
                      vectors=args.vectors, preview=args.preview, options=options)
    for r in results if isinstance(results, list) else [results]:
        files = [p for p in (r.classes, r.probabilities, r.confidence, r.vectors, r.preview) if p]
        print(f"{', '.join(str(p) for p in files)}  ({r.tiles} tiles, {r.seconds:.1f} s, "
              f"{r.megapixels_per_second:.2f} MPix/s, {r.precision})")
        if r.parity is not None:
            print(f"  {r.parity}")
        if r.summary:
            print(json.dumps(r.summary, indent=2))
    return 0
