"""Vector outputs: class rasters to polygons, detection boxes and instance outlines (Mask R-CNN)
to map-coordinate polygons.

Polygons are traced by GDAL (``rasterio.features.shapes``) strip by strip; polygons cut by a strip
border are merged back with shapely at the end, so memory holds one strip plus the cut polygons.
Areas are in square metres: planar for projected CRSs in metres, geodesic (WGS84 ellipsoid) for
geographic CRSs, and in squared CRS units otherwise (the summary says which).

Detections of overlapping tiles are merged on their boxes (:func:`merge_tile_detections`); a
kept detection keeps the instance mask of the tile it came from, and only the kept masks are
traced (:func:`write_instances`).

Files are written with pyogrio when it is installed, else fiona. ``.geojson`` follows RFC 7946:
WGS84 longitude/latitude, no ``crs`` member, exterior rings counter-clockwise and holes clockwise,
geometries split at the antimeridian, 7 decimals (about 1 cm); GDAL's ``RFC7946=YES`` layer
option does this, and without pyogrio or fiona rsfm writes the same with rasterio's reprojection.
GeoPackage, FlatGeobuf and Shapefile keep the raster's CRS.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
import torch
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely.affinity import affine_transform
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

from rsfm.errors import ConfigError
from rsfm.inference.gis import class_legend
from rsfm.inference.postprocess import InstanceMask
from rsfm.io import atomic_write_json, atomic_write_named, atomic_write_text
from rsfm.spec import ClassInfo, class_values

__all__ = [
    "VECTOR_SUFFIXES",
    "Detections",
    "instance_polygon",
    "merge_tile_boxes",
    "merge_tile_detections",
    "read_features",
    "vector_backend",
    "vector_driver",
    "vectorize_raster",
    "write_boxes",
    "write_features",
    "write_instances",
]

log = logging.getLogger(__name__)

_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".fgb": "FlatGeobuf",
            ".shp": "ESRI Shapefile"}
VECTOR_SUFFIXES: tuple[str, ...] = tuple(_DRIVERS)
GEOJSON_DECIMALS = 7  # RFC 7946 section 11.2: about 1 cm, GDAL's RFC 7946 default
_SHP_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix")


def vector_driver(path: str | Path) -> str:
    """The OGR driver of a vector output path.

    Raises:
        ConfigError: An unknown suffix (names the supported ones).
    """
    try:
        return _DRIVERS[Path(path).suffix.lower()]
    except KeyError:
        raise ConfigError(
            f"Unknown vector format for '{path}': use one of {sorted(_DRIVERS)}."
        ) from None


def vector_backend() -> str:
    """``pyogrio``, ``fiona`` or ``json`` (GeoJSON only): the library that writes vectors."""
    for name in ("pyogrio", "fiona"):
        if importlib.util.find_spec(name) is not None:
            return name
    return "json"


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


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.suffix.lower() == ".shp":
        for ext in _SHP_SIDECARS:
            path.with_suffix(ext).unlink(missing_ok=True)


def _round(coords: Any, decimals: int) -> Any:
    if isinstance(coords, (list, tuple)) and coords and isinstance(coords[0], (int, float)):
        return [round(float(c), decimals) for c in coords]
    return [_round(c, decimals) for c in coords]


def _rfc7946_geometry(geom: Any, crs: Any) -> dict[str, Any]:
    """A shapely polygon in ``crs`` -> an RFC 7946 geometry dict (lon/lat, right-hand rule)."""
    g = mapping(geom)
    if crs is not None:
        g = transform_geom(crs, "EPSG:4326", g, antimeridian_cutting=True)
    out = shape(g)
    parts = getattr(out, "geoms", [out])
    wound = [orient(p, sign=1.0) for p in parts]  # exterior counter-clockwise, holes clockwise
    out = wound[0] if len(wound) == 1 and out.geom_type == "Polygon" else MultiPolygon(wound)
    m = mapping(out)
    return {"type": m["type"], "coordinates": _round(m["coordinates"], GEOJSON_DECIMALS)}


def _write_geojson(path: Path, records: Sequence[dict[str, Any]], crs: Any) -> None:
    feats = [{"type": "Feature", "properties": r["properties"],
              "geometry": _rfc7946_geometry(r["geometry"], crs)} for r in records]
    text = json.dumps({"type": "FeatureCollection", "features": feats}, separators=(",", ":"))
    atomic_write_text(path, text + "\n")


def _field_arrays(records: Sequence[dict[str, Any]], properties: dict[str, str]) -> list[Any]:
    kinds = {"int": np.int64, "float": np.float64, "str": object}
    return [np.array([r["properties"][k] for r in records], dtype=kinds[v])
            for k, v in properties.items()]


def write_features(
    path: str | Path, records: Sequence[dict[str, Any]], crs: Any, properties: dict[str, str],
    backend: str | None = None,
) -> Path:
    """Write polygon records ``{"geometry": shapely, "properties": {...}}``; an existing file
    is replaced by renaming (atomic, never written through a hard link).

    Args:
        path: ``.geojson`` (RFC 7946, see the module docstring), ``.gpkg``, ``.fgb`` or ``.shp``.
        records: Polygons in ``crs`` coordinates, with their properties.
        crs: The polygons' CRS (a rasterio ``CRS``), or None for pixel coordinates.
        properties: Property name -> ``int`` / ``float`` / ``str``.
        backend: ``pyogrio``, ``fiona`` or ``json`` (default: :func:`vector_backend`).

    Raises:
        ConfigError: An unknown format, or a non-GeoJSON format without pyogrio or fiona.
    """
    path = Path(path)
    driver = vector_driver(path)
    backend = backend or vector_backend()
    geojson = driver == "GeoJSON"
    if geojson and crs is None:
        log.warning("'%s': the raster has no CRS, so the GeoJSON holds pixel coordinates, not "
                    "RFC 7946 longitude/latitude.", path)
    if backend == "json" and not geojson:
        raise ConfigError(f"Writing '{path}' ({driver}) needs pyogrio or fiona: pip install "
                          "'rsfm[vector]', or write a .geojson.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".shp":  # several files: stale sidecars of an older .shp go first
        _remove(path)
    multi = any(r["geometry"].geom_type == "MultiPolygon" for r in records)
    geoms = [MultiPolygon([r["geometry"]]) if multi and r["geometry"].geom_type == "Polygon"
             else r["geometry"] for r in records]
    records = [{**r, "geometry": g} for r, g in zip(records, geoms)]
    gtype = "MultiPolygon" if multi else "Polygon"
    crs_wkt = CRS.from_user_input(crs).to_wkt() if crs is not None else None
    options = {"RFC7946": "YES"} if geojson and crs is not None else {}
    if backend == "json":
        _write_geojson(path, records, crs)
        return path

    def write(tmp: Path) -> None:  # a fresh file in a temporary folder, renamed into place
        if backend == "pyogrio":
            from pyogrio.raw import write

            wkb = shapely.to_wkb(np.array(geoms, dtype=object)) if geoms else np.array([], object)
            write(str(tmp), wkb, _field_arrays(records, properties), list(properties),
                  driver=driver, geometry_type=gtype, crs=crs_wkt, layer_options=options or None)
            return
        import fiona

        schema = {"geometry": gtype, "properties": properties}
        with fiona.open(tmp, "w", driver=driver, schema=schema, crs_wkt=crs_wkt,
                        **options) as f:
            for r in records:
                f.write({"geometry": mapping(r["geometry"]), "properties": r["properties"]})

    return atomic_write_named(path, write)


def read_features(path: str | Path) -> tuple[CRS | None, list[dict[str, Any]]]:
    """Read a vector file written by :func:`write_features`.

    Returns:
        ``(crs, features)``: the file's CRS (``EPSG:4326`` for RFC 7946 GeoJSON) and
        ``{"geometry": shapely, "properties": {...}}`` records.
    """
    path = Path(path)
    backend = vector_backend()
    if backend == "pyogrio":
        from pyogrio.raw import read

        meta, _, wkb, fields = read(str(path))
        crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
        geoms = shapely.from_wkb(wkb) if wkb is not None else []
        names = list(meta["fields"])
        return crs, [{"geometry": g, "properties": {n: f[i] for n, f in zip(names, fields)}}
                     for i, g in enumerate(geoms)]
    if backend == "fiona":
        import fiona

        with fiona.open(path) as src:
            crs = CRS.from_wkt(src.crs_wkt) if src.crs_wkt else None
            return crs, [{"geometry": shape(f["geometry"]), "properties": dict(f["properties"])}
                         for f in src]
    data = json.loads(path.read_text(encoding="utf-8"))
    return CRS.from_epsg(4326), [{"geometry": shape(f["geometry"]),
                                  "properties": f.get("properties") or {}}
                                 for f in data.get("features", [])]


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
        raster: Class GeoTIFF (band 1; class names and values from its ``CLASSES`` and
            ``CLASS_VALUES`` tags when present, see :mod:`rsfm.inference.gis`).
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
    vector_driver(out)
    records: list[dict[str, Any]] = []
    cut: dict[int, list[Any]] = defaultdict(list)  # pixel-coordinate parts touching a strip border
    with rasterio.open(raster) as ds:
        names, values = class_legend(ds.tags())
        id_of = {v: i for i, v in enumerate(values)}
        if background is not None and background < len(values):
            background = values[background]  # the pixel value of the background class
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
        cid = id_of.get(v, v)
        name = names[cid] if v in id_of and cid < len(names) else f"class_{v}"
        area = float(meter(geom))
        feats.append({"geometry": geom, "properties": {
            "class_id": cid, "class": name, "class_value": v, "area": round(area, 3), "pixels": pixels}})
        s = summary["classes"].setdefault(name, {"count": 0, "area": 0.0})
        s["count"] += 1
        s["area"] += area
    summary["objects"] = len(feats)
    write_features(out, feats, crs, {"class_id": "int", "class": "str", "class_value": "int", "area": "float",
                                     "pixels": "int"})
    atomic_write_json(out.with_name(out.name + ".summary.json"), summary)
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


@dataclass(frozen=True, eq=False)  # tensors have no single truth value
class Detections:
    """Detections of one scene, in scene pixels.

    Attributes:
        boxes: ``(N, 4)`` float32 xyxy boxes.
        scores: ``(N,)`` float32.
        labels: ``(N,)`` int64, 0-based class ids.
        masks: One :class:`~rsfm.inference.postprocess.InstanceMask` per detection (Mask
            R-CNN), else ``None`` (box detectors).
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    masks: tuple[InstanceMask, ...] | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, index: torch.Tensor) -> Detections:
        """The detections at ``index`` (int indices or a bool mask), masks included."""
        if index.dtype == torch.bool:
            index = torch.nonzero(index).flatten()
        masks = None if self.masks is None else tuple(self.masks[i] for i in index.tolist())
        return Detections(self.boxes[index], self.scores[index], self.labels[index], masks)


def _merge_index(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, size: tuple[int, int],
    iou_threshold: float, contained_ratio: float, max_contained_check: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(boxes clipped to the scene, indices of the kept detections)``: see
    :func:`merge_tile_boxes`."""
    from torchvision.ops import batched_nms, clip_boxes_to_image, remove_small_boxes

    boxes = clip_boxes_to_image(boxes, size)
    idx = remove_small_boxes(boxes, 1.0)
    idx = idx[batched_nms(boxes[idx], scores[idx], labels[idx], iou_threshold)]
    if 0 < len(idx) <= max_contained_check and contained_ratio < 1:
        idx = idx[_suppress_contained(boxes[idx], scores[idx], labels[idx], contained_ratio)]
    elif len(idx) > max_contained_check:
        log.info("%d boxes: skipping the contained-box check (NMS only).", len(idx))
    return boxes, idx


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
    if len(boxes) == 0:
        return boxes, scores, labels
    boxes, idx = _merge_index(boxes, scores, labels, size, iou_threshold, contained_ratio,
                              max_contained_check)
    return boxes[idx], scores[idx], labels[idx]


def merge_tile_detections(
    detections: Detections, size: tuple[int, int], iou_threshold: float = 0.5,
    contained_ratio: float = 0.8, max_contained_check: int = 50_000,
) -> Detections:
    """:func:`merge_tile_boxes` for :class:`Detections`: the kept detections keep their masks
    (each from the tile that saw the kept box)."""
    if len(detections) == 0:
        return detections
    boxes, idx = _merge_index(detections.boxes, detections.scores, detections.labels, size,
                              iou_threshold, contained_ratio, max_contained_check)
    return replace(detections, boxes=boxes).select(idx)


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


def instance_polygon(mask: InstanceMask) -> Polygon | None:
    """The outline of an instance mask in scene pixel coordinates (x = column, y = row, pixel
    corners): its largest 4-connected part with its holes (an instance is one object; stray
    pixels of a soft mask are not), or ``None`` for an empty mask."""
    if mask.empty:
        return None
    arr = mask.array()
    px = rasterio.Affine(1, 0, mask.col, 0, 1, mask.row)
    parts = [shape(g) for g, _ in shapes(arr.astype(np.uint8), mask=arr, connectivity=4,
                                         transform=px)]
    return max(parts, key=lambda p: p.area)


def write_instances(
    out: str | Path, detections: Detections, transform: Any, crs: Any,
    classes: Sequence[ClassInfo],
) -> dict[str, Any]:
    """Write instance outlines (Mask R-CNN) as map-coordinate polygons, one per detection.

    Each feature has ``class_id``, ``class``, ``class_value`` (the class's label value, see
    :class:`~rsfm.spec.ClassInfo`), ``score``, ``area`` (see the module docstring) and
    ``pixels`` (mask pixels inside the outline). A detection whose mask has no pixel at the
    threshold keeps its box as geometry, with ``pixels`` 0.

    Args:
        out: ``.geojson`` (RFC 7946), ``.gpkg``, ``.fgb`` or ``.shp``.
        detections: Scene-pixel detections with ``masks``.
        transform: The scene's affine transform (pixel -> map coordinates).
        crs: The scene's CRS.
        classes: The model's output classes (index = class id).

    Returns:
        ``{"objects": n, "area_unit": "m2", "classes": {name: count}}``.

    Raises:
        ConfigError: ``detections`` has no masks, or a format that cannot be written.
    """
    if detections.masks is None:
        raise ConfigError("write_instances needs detections with instance masks; use "
                          "write_boxes for box detectors.")
    names, values = [c.name for c in classes], class_values(classes)
    meter = _AreaMeter(crs)
    coeffs = [transform.a, transform.b, transform.d, transform.e, transform.xoff, transform.yoff]
    feats = []
    counts: dict[str, int] = defaultdict(int)
    rows = zip(detections.boxes.tolist(), detections.scores.tolist(),
               detections.labels.tolist(), detections.masks, strict=True)
    for (x0, y0, x1, y1), s, lab, mask in rows:
        outline = instance_polygon(mask)
        pixels = 0 if outline is None else round(outline.area)
        if outline is None:  # nothing passed the threshold: the box is all there is
            outline = Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        geom = affine_transform(outline, coeffs)
        known = 0 <= lab < len(names)
        name = names[lab] if known else f"class_{lab}"
        counts[name] += 1
        feats.append({"geometry": geom, "properties": {
            "class_id": int(lab), "class": name, "class_value": int(values[lab] if known else lab),
            "score": round(float(s), 4), "area": round(float(meter(geom)), 3), "pixels": pixels}})
    write_features(out, feats, crs, {"class_id": "int", "class": "str", "class_value": "int",
                                     "score": "float", "area": "float", "pixels": "int"})
    return {"objects": len(feats), "area_unit": meter.unit, "classes": dict(counts)}
