"""Vector outputs: class rasters to polygons, and detection boxes to map-coordinate polygons.

Polygons are traced by GDAL (``rasterio.features.shapes``) strip by strip; polygons cut by a strip
border are merged back with shapely at the end, so memory holds one strip plus the cut polygons.
Areas are in square metres: planar for projected CRSs in metres, geodesic (WGS84 ellipsoid) for
geographic CRSs, and in squared CRS units otherwise (the summary says which).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.features import shapes
from rasterio.windows import Window
from shapely.affinity import affine_transform
from shapely.geometry import Polygon, mapping, shape
from shapely.ops import unary_union

from rsfm.errors import ConfigError

__all__ = ["merge_tile_boxes", "vectorize_raster", "write_boxes", "write_features"]

log = logging.getLogger(__name__)

_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".fgb": "FlatGeobuf",
            ".shp": "ESRI Shapefile"}


def _driver(path: Path) -> str:
    try:
        return _DRIVERS[path.suffix.lower()]
    except KeyError:
        raise ConfigError(
            f"Unknown vector format for '{path}': use one of {sorted(_DRIVERS)}."
        ) from None


class _AreaMeter:
    """Area of map-coordinate polygons in m2 (or CRS units2 when the unit is unknown)."""

    def __init__(self, crs: Any) -> None:
        self.geod = None
        self.unit = "px2" if crs is None else "m2"
        self.factor = 1.0
        if crs is not None and crs.is_geographic:
            from pyproj import Geod

            self.geod = Geod(ellps="WGS84")
        elif crs is not None:
            factor = crs.linear_units_factor[1] if crs.linear_units_factor else None
            if factor:
                self.factor = float(factor) ** 2
            else:
                self.unit = f"{crs.linear_units}2"

    def __call__(self, geom: Any) -> float:
        if self.geod is not None:
            return abs(self.geod.geometry_area_perimeter(geom)[0])
        return geom.area * self.factor


def write_features(
    path: str | Path, records: Sequence[dict[str, Any]], crs: Any, properties: dict[str, str],
) -> Path:
    """Write ``{"geometry": shapely, "properties": {...}}`` records with fiona (overwrites)."""
    import fiona

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    schema = {"geometry": "Polygon", "properties": properties}
    crs_wkt = crs.to_wkt() if crs is not None else None
    geom_types = {r["geometry"].geom_type for r in records}
    if "MultiPolygon" in geom_types:
        schema["geometry"] = "MultiPolygon"
    with fiona.open(path, "w", driver=_driver(path), schema=schema, crs_wkt=crs_wkt) as f:
        for r in records:
            g = r["geometry"]
            if schema["geometry"] == "MultiPolygon" and g.geom_type == "Polygon":
                from shapely.geometry import MultiPolygon

                g = MultiPolygon([g])
            f.write({"geometry": mapping(g), "properties": r["properties"]})
    return path


def vectorize_raster(
    raster: str | Path,
    out: str | Path,
    *,
    background: int | None = 0,
    connectivity: int = 4,
    min_pixels: int = 0,
    strip_rows: int = 2048,
) -> dict[str, Any]:
    """Trace the class regions of a class raster into polygons with class, area and pixel count.

    Args:
        raster: Class GeoTIFF (band 1; class names from its ``CLASSES`` tag when present).
        out: ``.geojson``, ``.gpkg``, ``.fgb`` or ``.shp`` output.
        background: Class id not vectorised (``None``: vectorise every class).
        connectivity: 4 or 8.
        min_pixels: Drop polygons with fewer pixels.
        strip_rows: Rows read per step.

    Returns:
        Summary: ``{"objects": n, "area_unit": "m2", "classes": {name: {"count", "area"}}}``;
        also written next to ``out`` as ``<out>.summary.json``.
    """
    out = Path(out)
    _driver(out)
    records: list[dict[str, Any]] = []
    cut: dict[int, list[Any]] = defaultdict(list)  # pixel-coordinate parts touching a strip border
    with rasterio.open(raster) as ds:
        names = json.loads(ds.tags().get("CLASSES", "null")) or []
        transform, crs, H, W = ds.transform, ds.crs, ds.height, ds.width
        nodata = ds.nodata
        for r in range(0, H, strip_rows):
            n = min(strip_rows, H - r)
            arr = ds.read(1, window=Window(0, r, W, n))
            mask = np.ones(arr.shape, dtype=bool)
            if nodata is not None:
                mask &= arr != nodata
            if background is not None:
                mask &= arr != background
            if not mask.any():
                continue
            # pixel coordinates of the scene (x = col, y = row)
            px = rasterio.Affine(1, 0, 0, 0, 1, r)
            for geom, value in shapes(arr, mask=mask, connectivity=connectivity, transform=px):
                poly = shape(geom)
                _, miny, _, maxy = poly.bounds
                if (r > 0 and miny <= r) or (r + n < H and maxy >= r + n):
                    cut[int(value)].append(poly)
                else:
                    records.append({"px": poly, "value": int(value)})
    for value, parts in cut.items():
        merged = unary_union(parts)
        for poly in getattr(merged, "geoms", [merged]):
            records.append({"px": poly, "value": value})
    meter = _AreaMeter(crs)
    coeffs = [transform.a, transform.b, transform.d, transform.e, transform.xoff, transform.yoff]
    feats: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"objects": 0, "area_unit": meter.unit, "classes": {}}
    for rec in records:
        pixels = round(rec["px"].area)
        if pixels < min_pixels:
            continue
        geom = affine_transform(rec["px"], coeffs)
        v = rec["value"]
        name = names[v] if v < len(names) else f"class_{v}"
        area = float(meter(geom))
        feats.append({"geometry": geom, "properties": {
            "class_id": v, "class": name, "area": round(area, 3), "pixels": pixels}})
        s = summary["classes"].setdefault(name, {"count": 0, "area": 0.0})
        s["count"] += 1
        s["area"] += area
    summary["objects"] = len(feats)
    write_features(out, feats, crs, {"class_id": "int", "class": "str", "area": "float", "pixels": "int"})
    out.with_name(out.name + ".summary.json").write_text(json.dumps(summary, indent=2))
    log.info("%s: %d polygons (%s)", out, len(feats),
             ", ".join(f"{k}: {v['count']}" for k, v in summary["classes"].items()))
    return summary


# ----------------------------------------------------------------------------- detection
def _suppress_contained(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                        ratio: float, chunk: int = 2048) -> torch.Tensor:
    """Keep-mask dropping boxes mostly inside a higher-scoring box of the same class.

    A box cut by a tile border overlaps the full box of the same object with a low IoU (NMS
    keeps it) but lies almost entirely inside it.
    """
    from torchvision.ops import box_area

    n = len(boxes)
    keep = torch.ones(n, dtype=torch.bool)
    area = box_area(boxes)
    for s in range(0, n, chunk):
        b = boxes[s : s + chunk]
        lt = torch.maximum(b[:, None, :2], boxes[None, :, :2])
        rb = torch.minimum(b[:, None, 2:], boxes[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        frac = inter / area[s : s + chunk, None].clamp(min=1e-6)  # fraction of the row box inside
        sc, ar = scores[s : s + chunk, None], area[s : s + chunk, None]
        # "better": higher score, or the same score and larger (the uncut view of the object)
        better = (scores[None, :] > sc) | ((scores[None, :] == sc) & (area[None, :] > ar))
        better &= labels[None, :] == labels[s : s + chunk, None]
        keep[s : s + chunk] = ~((frac >= ratio) & better).any(1)
    return keep


def merge_tile_boxes(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, size: tuple[int, int],
    iou_threshold: float = 0.5, contained_ratio: float = 0.8, max_contained_check: int = 50_000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge detections of overlapping tiles (scene pixel xyxy boxes).

    Boxes are clipped to the scene, then class-wise NMS (``torchvision.ops.batched_nms``) removes
    duplicates from overlapping tiles, and boxes lying ``contained_ratio`` inside a better box of
    the same class (objects cut by a tile border) are dropped (skipped above
    ``max_contained_check`` boxes, where the pairwise test would be slow).
    """
    from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

    if len(boxes) == 0:
        return boxes, scores, labels
    boxes = clip_boxes_to_image(boxes, size)
    ok = remove_small_boxes(boxes, 1.0)
    boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
    keep = batched_nms(boxes, scores, labels, iou_threshold)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if 0 < len(boxes) <= max_contained_check and contained_ratio < 1:
        k = _suppress_contained(boxes, scores, labels, contained_ratio)
        boxes, scores, labels = boxes[k], scores[k], labels[k]
    elif len(boxes) > max_contained_check:
        log.info("%d boxes: skipping the contained-box check (NMS only).", len(boxes))
    return boxes, scores, labels


def write_boxes(
    out: str | Path, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
    transform: Any, crs: Any, names: Sequence[str],
) -> dict[str, Any]:
    """Write scene-pixel xyxy boxes as map-coordinate polygons with class and score.

    Returns:
        ``{"objects": n, "classes": {name: count}}``.
    """
    feats = []
    counts: dict[str, int] = defaultdict(int)
    for (x0, y0, x1, y1), s, lab in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
        corners = [transform @ (x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        name = names[lab] if 0 <= lab < len(names) else f"class_{lab}"
        counts[name] += 1
        feats.append({"geometry": Polygon(corners), "properties": {
            "class_id": int(lab), "class": name, "score": round(float(s), 4)}})
    write_features(out, feats, crs, {"class_id": "int", "class": "str", "score": "float"})
    return {"objects": len(feats), "classes": dict(counts)}
