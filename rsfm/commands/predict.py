"""``rsfm predict MODEL INPUT... -o OUT``: georeferenced prediction on large scenes."""


from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm predict``."""
    parser.add_argument("model", help="run directory, Hub repo id, or exported .onnx / TorchScript .pt")
    parser.add_argument("inputs", nargs="+", help="GeoTIFF/COG scenes or folders; a T-frame model "
                        "takes each scene as T files in time order")
    parser.add_argument("-o", "--out", help="output .tif (one scene) or folder (default: next to inputs)")
    parser.add_argument("--tile-size", type=int, help="tile size (default: the model's)")
    parser.add_argument("--overlap", type=int, help="tile overlap in pixels (default: tile/4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--probabilities", choices=["uint8", "float32"],
                        help="also write per-class probabilities to <out>_probs.tif")
    parser.add_argument("--confidence", action="store_true", help="also write <out>_conf.tif")
    parser.add_argument("--threshold", type=float, help="two-class models: class 1 where p >= T")
    parser.add_argument("--min-object-size", type=int, default=0, help="remove objects < N pixels")
    parser.add_argument("--fill-holes", type=int, default=0, metavar="N", help="fill holes < N pixels")
    parser.add_argument("--vectors", nargs="?", const=True, default=None, metavar="PATH",
                        help="also write polygons (.gpkg next to the raster, or PATH .geojson/.gpkg)")
    parser.add_argument("--preview", help="quicklook PNG with the prediction overlaid")
    parser.add_argument("--file-bands", help="comma-separated band order of files without descriptions")
    parser.add_argument("--no-cog", action="store_true", help="tiled GeoTIFF without overviews")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Predict every scene and print where the results went."""
    from rsfm.inference.loading import load_model
    from rsfm.inference.predict import predict

    model, spec = load_model(args.model)
    if args.file_bands:
        spec = spec.with_overrides(file_bands=tuple(b.strip() for b in args.file_bands.split(",")))
    results = predict(
        model, args.inputs, args.out, spec=spec, tile_size=args.tile_size, overlap=args.overlap,
        batch_size=args.batch_size, device=args.device, probabilities=args.probabilities,
        confidence=args.confidence, threshold=args.threshold, min_object_size=args.min_object_size,
        max_hole_size=args.fill_holes, vectors=args.vectors, preview=args.preview,
        cog=not args.no_cog, progress=not args.quiet,
    )
    for r in results if isinstance(results, list) else [results]:
        files = [p for p in (r.classes, r.probabilities, r.confidence, r.vectors, r.preview) if p]
        print(f"{', '.join(str(p) for p in files)}  ({r.tiles} tiles, {r.seconds:.1f} s, "
              f"{r.megapixels_per_second:.2f} MPix/s)")
        if r.summary:
            print(json.dumps(r.summary, indent=2))
    return 0
