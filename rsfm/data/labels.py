"""Labels: vector polygons (rasterised or boxed per window), COCO JSON, PASCAL VOC XML, YOLO txt,
colour-coded masks, and the mapping of raw label values to class ids.

Vector files are read with fiona when it is installed (GeoPackage, Shapefile, GeoJSON...); plain
GeoJSON also works without it. Geometries are reprojected once to the raster's CRS with
``rasterio.warp.transform_geom`` and indexed with a shapely STRtree so each window only touches
the polygons that intersect it.
"""

from __future__ import annotations

import json
import logging
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsfm.errors import ConfigError, DataError
from rsfm.spec import parse_color

__all__ = [
    "BoxCount",
    "LabelCount",
    "LabelRules",
    "VectorLabels",
    "apply_label_rules",
    "check_areas",
    "count_boxes",
    "is_vector_file",
    "read_coco",
    "read_kitti",
    "read_vector",
    "read_voc",
    "read_yolo",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- class values


@dataclass(frozen=True)
class LabelRules:
    """How raw label pixels become class ids, the same for every source (chips, scenes, ...).

    ``value_map``/``ignore_values`` apply to label values (single-band rasters, rasterised
    polygons), ``color_map`` to colour masks; a label is one or the other.

    Attributes:
        value_map: Raw label value -> class id (e.g. ``{255: 1}``); unmapped values are kept.
        ignore_values: Raw values meaning "no label" (e.g. Sen1Floods11's -1): they become
            ``ignore_index`` silently.
        color_map: Colour (``"#RRGGBB"`` or an RGB triple) -> class id, for colour-coded masks
            (3-band label rasters or PNGs). A colour mapped to a value that is not a class id
            (e.g. -1) is ignored on purpose; other colours are counted as unknown.
    """

    value_map: Mapping[int, int] | None = None
    ignore_values: tuple[int, ...] = ()
    color_map: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignore_values", tuple(int(v) for v in self.ignore_values))
        if self.value_map is not None:
            object.__setattr__(self, "value_map",
                               {int(k): int(v) for k, v in self.value_map.items()} or None)
        if self.color_map is not None:
            colors = {}
            for color, cls in self.color_map.items():
                colors["#{:02X}{:02X}{:02X}".format(*parse_color(color))] = int(cls)
            object.__setattr__(self, "color_map", colors or None)

    @property
    def label_bands(self) -> list[int]:
        """1-based bands of a label raster to read: R, G, B for colour masks, else band 1."""
        return [1, 2, 3] if self.color_map else [1]


@dataclass
class LabelCount:
    """What :func:`apply_label_rules` found in one label.

    Attributes:
        labelled: Pixels that got a class id.
        invalid: Pixels outside the classes (values, or colours missing from ``color_map``).
        values: Up to 10 of the offending raw values (ints) or colours (``"#RRGGBB"``).
        nan: Pixels of a float label that are NaN: "no label", set to ``ignore_index`` (not
            counted as invalid).
    """

    labelled: int = 0
    invalid: int = 0
    values: list[Any] = field(default_factory=list)
    nan: int = 0


def _color_ids(rgb: np.ndarray, color_map: Mapping[str, int],
               ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """``(3, H, W)`` colours -> (ids with ``ignore_index`` for unknown colours, known mask)."""
    code = (rgb[0].astype(np.int64) << 16) | (rgb[1].astype(np.int64) << 8) | rgb[2]
    out = np.full(code.shape, ignore_index, dtype=np.int64)
    known = np.zeros(code.shape, dtype=bool)
    for color, cls in color_map.items():
        r, g, b = parse_color(color)
        hit = code == ((r << 16) | (g << 8) | b)
        out[hit] = cls
        known |= hit
    return out, known


def apply_label_rules(
    raw: np.ndarray,
    rules: LabelRules,
    num_classes: int,
    ignore_index: int = -1,
    on_invalid: str = "warn",
    source: str = "label",
    ignore: np.ndarray | None = None,
) -> tuple[np.ndarray, LabelCount]:
    """Raw label pixels -> class ids, for every label source (the one place this happens).

    Values (single-band rasters, rasterised polygons) go through ``rules.value_map``; colour
    masks (``(3, H, W)``) through ``rules.color_map``. Pixels in ``rules.ignore_values``, equal
    to ``ignore_index``, or of a colour mapped to a non-class id become ``ignore_index``
    silently; any other pixel outside ``0 .. num_classes - 1`` (or of an unknown colour) becomes
    ``ignore_index`` and is counted as invalid.

    Args:
        raw: ``(H, W)`` raw values, or ``(3, H, W)`` colours when ``rules.color_map`` is set.
        rules: The dataset's :class:`LabelRules`.
        num_classes: Valid ids are ``0 .. num_classes - 1``.
        ignore_index: Value written for pixels without a class.
        on_invalid: ``"warn"`` (log a count), ``"error"`` (raise) or ``"ignore"`` for invalid
            pixels.
        source: File (and window) for messages.
        ignore: ``(H, W)`` pixels that become ``ignore_index`` whatever their label (nodata in
            the image, outside the scene); they are not counted.

    Returns:
        ``(mask int64 (H, W), LabelCount)``.

    Raises:
        DataError: A colour mask with fewer than 3 bands, or invalid pixels with
            ``on_invalid="error"``.
    """
    n_nan = 0
    if rules.color_map:
        if raw.ndim != 3 or raw.shape[0] < 3:
            bands = raw.shape[0] if raw.ndim == 3 else 1
            raise DataError(f"{source}: color_map is set but the label has {bands} band(s); "
                            "colour masks need R, G, B.")
        out, known = _color_ids(raw, rules.color_map, ignore_index)
        silent = known & ((out < 0) | (out >= num_classes))  # colours ignored on purpose
        if ignore is not None:
            silent |= ignore
        bad = ~known & ~silent
        values = ["#{:02X}{:02X}{:02X}".format(*c) for c in
                  np.unique(raw[:3, bad].T, axis=0)[:10].tolist()] if bad.any() else []
        what = "colours not in color_map"
    else:
        if raw.ndim == 3:
            raw = raw[0]
        finite = np.isfinite(raw) if raw.dtype.kind == "f" else None
        nan = None
        if finite is not None and not finite.all():  # NaN/inf cannot be cast to a class id
            out = np.where(finite, raw, ignore_index).astype(np.int64)
            nan = np.isnan(raw)  # "no label" (a float label's nodata): ignored, counted apart
        else:
            out = raw.astype(np.int64, copy=True)
        if rules.value_map:
            for value, cls in rules.value_map.items():
                out[raw == value] = cls
        silent = out == ignore_index
        if finite is not None and nan is not None:
            silent &= finite  # NaN is counted below, +-inf is an invalid value
        if rules.ignore_values:
            silent |= np.isin(raw, rules.ignore_values)
        if ignore is not None:
            silent |= ignore
        bad = ((out < 0) | (out >= num_classes)) & ~silent
        if finite is not None:  # 0.5 would become class 0: fractions are no class ids
            bad |= (raw != np.floor(raw)) & finite & ~silent
        if nan is not None:
            bad |= ~finite & ~nan & ~silent
            bad &= ~nan
            nan &= ~silent
            n_nan = int(np.count_nonzero(nan))
            silent |= nan
        values = np.unique(raw[bad])[:10].tolist() if bad.any() else []
        what = f"values outside the {num_classes} declared classes (ids 0..{num_classes - 1})"
    n_bad = int(bad.sum())
    out[bad | silent] = ignore_index
    count = LabelCount(labelled=int(out.size - n_bad - int(np.count_nonzero(silent))),
                       invalid=n_bad, values=values, nan=n_nan)
    if n_bad and on_invalid != "ignore":
        msg = (f"{source}: {n_bad} pixels have {what}: {values}; they are set to "
               f"ignore_index={ignore_index}.")
        if on_invalid == "error":
            raise DataError(msg + " Declare these classes, map them with label_map (or "
                            "color_map), list them in label_ignore_values, or set "
                            "on_invalid_label='warn'.")
        log.warning(msg)
    return out, count


# --------------------------------------------------------------------------- vectors

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".kml", ".gml")


def is_vector_file(path: str | Path) -> bool:
    """True for a vector label file (GeoJSON, GeoPackage, Shapefile...), by its suffix."""
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


@dataclass
class VectorLabels:
    """Polygons with class ids, in one CRS, spatially indexed.

    Attributes:
        path: Source file.
        geometries: shapely geometries.
        class_ids: Class id per geometry.
        crs: CRS of the geometries (rasterio ``CRS``).
    """

    path: str
    geometries: list[Any]
    class_ids: np.ndarray
    crs: Any
    _tree: Any = field(default=None, repr=False)
    _reprojected: dict[str, VectorLabels] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from shapely import STRtree

        self._tree = STRtree(self.geometries)

    def to_crs(self, crs: Any) -> VectorLabels:
        """These labels in ``crs`` (cached). Reprojection is exact per vertex (transform_geom)."""
        from rasterio.crs import CRS
        from rasterio.warp import transform_geom
        from shapely.geometry import mapping, shape

        if crs is None or self.crs is None or CRS.from_user_input(crs) == self.crs:
            return self
        key = CRS.from_user_input(crs).to_string()
        if key not in self._reprojected:
            try:
                geoms = [shape(transform_geom(self.crs, crs, mapping(g))) for g in self.geometries]
            except Exception as err:  # noqa: BLE001  CPLE_*: GDAL's error classes
                raise DataError(
                    f"The polygons of '{self.path}' (CRS {self.crs.to_string()}) cannot be "
                    f"reprojected to the images' CRS {key}: {err}. They lie far outside the "
                    "area that CRS covers: check the vector file's CRS (GeoJSON without a 'crs' "
                    "member is longitude/latitude, EPSG:4326) and that the labels belong to "
                    "these images.") from None
            self._reprojected[key] = VectorLabels(self.path, geoms, self.class_ids,
                                                  CRS.from_user_input(crs))
        return self._reprojected[key]

    def query(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """Indexes of geometries intersecting ``(left, bottom, right, top)``."""
        from shapely.geometry import box

        return np.sort(self._tree.query(box(*bounds), predicate="intersects"))

    def rasterize(self, transform: Any, shape: tuple[int, int], background: int = 0,
                  all_touched: bool = False) -> np.ndarray:
        """Burn class ids into an ``(H, W)`` int64 grid (later features overwrite earlier ones)."""
        from rasterio.features import rasterize
        from rasterio.transform import array_bounds

        h, w = shape
        bottom, left, top, right = _bounds_btlr(array_bounds(h, w, transform))
        hits = self.query((left, bottom, right, top))
        if len(hits) == 0:
            return np.full(shape, background, dtype=np.int64)
        shapes = [(self.geometries[i], int(self.class_ids[i])) for i in hits]
        out = rasterize(shapes, out_shape=shape, transform=transform, fill=background,
                        all_touched=all_touched, dtype="int32")
        return out.astype(np.int64)

    def boxes(self, transform: Any, shape: tuple[int, int], min_size: float = 2.0,
              min_visible: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """Pixel boxes (xyxy) of the polygons clipped to the window.

        A polygon cut by the window edge keeps the box of its visible part; it is dropped when
        less than ``min_visible`` of its area is inside or its clipped box is under ``min_size``
        pixels wide or high.
        """
        boxes, labels, _ = self.instances(transform, shape, min_size, min_visible)
        return boxes, labels

    def instances(self, transform: Any, shape: tuple[int, int], min_size: float = 2.0,
                  min_visible: float = 0.25, masks: bool = False,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`boxes`, and with ``masks`` each polygon's visible part burnt into its own
        ``(H, W)`` uint8 mask (``(N, H, W)``; Mask R-CNN targets), else None."""
        from rasterio.features import rasterize
        from rasterio.transform import array_bounds
        from shapely.geometry import box

        h, w = shape
        bottom, left, top, right = _bounds_btlr(array_bounds(h, w, transform))
        win = box(left, bottom, right, top)
        inv = ~transform
        out_boxes, out_labels, out_masks = [], [], []
        for i in self.query((left, bottom, right, top)):
            geom = self.geometries[i]
            part = geom.intersection(win)
            if part.is_empty or (geom.area > 0 and part.area / geom.area < min_visible):
                continue
            x0, y0, x1, y1 = part.bounds
            cols, rows = zip(*(_apply(inv, x, y) for x, y in ((x0, y0), (x1, y1))))
            bx = [max(0.0, min(cols)), max(0.0, min(rows)), min(w, max(cols)), min(h, max(rows))]
            if bx[2] - bx[0] < min_size or bx[3] - bx[1] < min_size:
                continue
            if masks:
                mask = rasterize([(part, 1)], out_shape=shape, transform=transform, fill=0,
                                 dtype="uint8")
                if not mask.any():  # a sliver thinner than a pixel: no outline to learn
                    continue
                out_masks.append(mask)
            out_boxes.append(bx)
            out_labels.append(int(self.class_ids[i]))
        stacked = (np.stack(out_masks) if out_masks else np.zeros((0, h, w), dtype=np.uint8)
                   ) if masks else None
        return (np.asarray(out_boxes, dtype=np.float32).reshape(-1, 4),
                np.asarray(out_labels, dtype=np.int64), stacked)


def _apply(t: Any, x: float, y: float) -> tuple[float, float]:
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def _bounds_btlr(west_south_east_north: tuple[float, ...]) -> tuple[float, float, float, float]:
    west, south, east, north = west_south_east_north
    return south, west, north, east


GEOJSON_SUFFIXES = (".geojson", ".json")
_GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                   "MultiPolygon", "GeometryCollection")


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"'{path}' is not UTF-8 text ({err.reason} at byte {err.start}); "
                        "GeoJSON is UTF-8.") from None
    if not text.strip():
        raise DataError(f"'{path}' is empty; vector labels are a GeoJSON FeatureCollection of "
                        "polygons.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"'{path}' is not valid GeoJSON: {err}") from None


def _geojson_crs(doc: Mapping[str, Any], path: Path) -> Any:
    """The CRS of a GeoJSON document: its (2008 spec) ``crs`` member, else EPSG:4326.

    GDAL falls back to EPSG:4326 for a ``crs`` it does not know, which later shows as polygons
    that cannot be reprojected; here an unknown CRS is an error naming it.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    member = doc.get("crs")
    if member is None:
        return CRS.from_epsg(4326)  # RFC 7946: longitude/latitude
    props = member.get("properties") if isinstance(member, Mapping) else None
    kind = member.get("type") if isinstance(member, Mapping) else None
    if isinstance(props, Mapping) and kind == "name" and props.get("name"):
        text = str(props["name"])
    elif isinstance(props, Mapping) and kind == "EPSG" and props.get("code") is not None:
        text = f"EPSG:{props['code']}"
    else:
        raise DataError(
            f"'{path}': its 'crs' member {_short(member)} is not "
            "{\"type\": \"name\", \"properties\": {\"name\": \"EPSG:32616\"}}. Write the CRS that "
            "way, or remove the member if the coordinates are longitude/latitude (EPSG:4326).")
    try:
        with rasterio.Env():  # PROJ's complaint goes to the exception, not to stderr
            return CRS.from_user_input(text)
    except CRSError as err:
        raise DataError(
            f"'{path}': the CRS {text!r} of its 'crs' member is unknown ({err}). Write a CRS "
            "PROJ knows (e.g. 'EPSG:32616' or 'urn:ogc:def:crs:EPSG::32616'), or remove the "
            "member if the coordinates are longitude/latitude (EPSG:4326).") from None


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...]"


def _geojson_features(doc: Any, path: Path) -> tuple[list[dict], Any] | None:
    """(features, CRS) of a GeoJSON FeatureCollection, Feature or bare geometry; None for a JSON
    object of another kind (Esri JSON, TopoJSON: GDAL may read it)."""
    kind = doc.get("type") if isinstance(doc, Mapping) else None
    if kind == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise DataError(f"'{path}': the FeatureCollection's 'features' is "
                            f"{type(feats).__name__}, not a list of features.")
    elif kind == "Feature":
        feats = [doc]
    elif kind in _GEOMETRY_TYPES:
        feats = [{"type": "Feature", "properties": {}, "geometry": doc}]
    else:
        return None
    feats = [dict(f) if isinstance(f, Mapping) else {} for f in feats]
    return feats, _geojson_crs(doc, path)


def _read_features(path: Path) -> tuple[list[dict], Any, bool]:
    """(features as GeoJSON-like dicts, CRS or None, whether the CRS is GeoJSON's default
    EPSG:4326 for a file without a ``crs`` member)."""
    from rasterio.crs import CRS

    try:
        import fiona
    except ImportError:
        fiona = None
    if path.suffix.lower() in GEOJSON_SUFFIXES:
        doc = _load_json(path)
        found = _geojson_features(doc, path)
        if found is not None:
            return (*found, doc.get("crs") is None)
        if fiona is None or not isinstance(doc, Mapping):
            what = f"an object of type {doc.get('type')!r}" if isinstance(doc, Mapping) else (
                f"a JSON {type(doc).__name__}")
            raise DataError(f"'{path}' is not a GeoJSON FeatureCollection, Feature or geometry "
                            f"(it is {what}).")
    elif fiona is None:
        raise DataError(
            f"Reading '{path}' needs fiona (install rsfm[vector]); without it only GeoJSON "
            "vector labels can be read."
        )
    try:
        with fiona.open(path) as src:
            feats = [{"geometry": f["geometry"] and dict(f["geometry"]),
                      "properties": dict(f["properties"] or {})} for f in src]
            crs = CRS.from_wkt(src.crs_wkt) if src.crs_wkt else None
    except fiona.errors.FionaError as err:  # DriverError, etc.
        raise DataError(f"Cannot read '{path}' as a vector file: {err}") from None
    return feats, crs, False


def _geometry(geometry: Any) -> Any:
    """A valid shapely geometry from a GeoJSON-like mapping (self-intersections repaired).

    Raises:
        ValueError: Why it cannot be a label (too few coordinates, NaN, nothing left...).
    """
    import shapely
    from shapely.errors import ShapelyError
    from shapely.geometry import shape

    try:
        with warnings.catch_warnings():  # NaN coordinates: reported below, not as a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            geom = shape(geometry)
    except KeyError as err:
        raise ValueError(f"missing {err}") from None
    except (ValueError, TypeError, AttributeError, IndexError, ShapelyError) as err:
        raise ValueError(str(err).rstrip(".") or type(err).__name__) from None
    if geom.is_empty:
        raise ValueError("empty geometry")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise ValueError("a coordinate is NaN or infinite")
    if not geom.is_valid:  # self-intersections from digitising: repair, keep the area
        polygonal = geom.geom_type in ("Polygon", "MultiPolygon")
        geom = shapely.make_valid(geom)
        if polygonal and geom.geom_type == "GeometryCollection":
            parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
            geom = shapely.union_all(parts) if parts else shapely.Polygon()
        if geom.is_empty or (polygonal and geom.area == 0):
            raise ValueError("an invalid polygon with no area left once repaired")
    return geom


def read_vector(
    path: str | Path,
    class_attribute: str | None = None,
    classes: Sequence[str] | None = None,
    class_map: Mapping[Any, int] | None = None,
    default_class: int = 1,
) -> VectorLabels:
    """Read polygon labels with a class id per feature.

    The class of a feature comes from ``class_map[value]`` of its ``class_attribute``, else from
    the value's position in ``classes``, else from the value itself when it is an integer. Without
    ``class_attribute`` every feature gets ``default_class`` (binary masks: 0 background,
    1 object).

    Args:
        path: GeoJSON, GeoPackage, Shapefile... (non-GeoJSON needs fiona).
        class_attribute: Feature property holding the class.
        classes: Class names, index = class id.
        class_map: Attribute value -> class id.
        default_class: Class of every feature when ``class_attribute`` is None.

    Raises:
        DataError: Missing/unreadable file, a GeoJSON ``crs`` PROJ does not know, no feature
            with a usable geometry, missing attribute, unmapped values. Features whose geometry
            cannot be built (a ring of fewer than 4 coordinates, NaN coordinates) are skipped with
            a warning that counts them; self-intersecting polygons are repaired
            (``shapely.make_valid``).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"Vector label file not found: '{path}'.")
    feats, crs, assumed = _read_features(path)
    indexed = [(i, f) for i, f in enumerate(feats) if f.get("geometry")]
    if not indexed:
        raise DataError(f"Vector label file '{path}' has no features with a geometry.")
    geoms, kept, skipped = [], [], []
    for i, f in indexed:
        try:
            geoms.append(_geometry(f["geometry"]))
            kept.append(f)
        except ValueError as err:
            skipped.append(f"feature {i}: {err}")
    if skipped:
        shown = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        fix = ("Fix them in a GIS (QGIS: Vector > Geometry Tools > Check Validity, "
               "Fix Geometries).")
        if not kept:
            what = ("its only feature is" if len(indexed) == 1 else
                    f"all {len(indexed)} features are")
            raise DataError(f"Vector label file '{path}' has no usable geometry: {what} invalid "
                            f"({shown}). {fix}")
        log.warning("'%s': %d of %d features skipped, their geometry is invalid (%s). %s",
                    path, len(skipped), len(indexed), shown, fix)
    feats = kept
    if assumed:
        import shapely

        west, south, east, north = shapely.total_bounds(geoms)
        if min(west, south) < -360 or max(east, north) > 360:
            raise DataError(
                f"'{path}' has no 'crs' member, so its coordinates are longitude/latitude "
                f"(EPSG:4326, the GeoJSON standard), but they reach ({west:.7g}, {south:.7g}, "
                f"{east:.7g}, {north:.7g}): projected coordinates (metres)? Add the member, e.g. "
                '"crs": {"type": "name", "properties": {"name": "EPSG:32616"}} with your CRS, '
                "or export the file as longitude/latitude.")
    ids = []
    if class_attribute is None:
        ids = [default_class] * len(feats)
    else:
        props = feats[0].get("properties") or {}
        if class_attribute not in props:
            raise DataError(
                f"Vector label file '{path}' has no attribute {class_attribute!r}; its attributes "
                f"are {sorted(props)[:30]}. Set class_attribute to the field holding the class."
            )
        names = {str(c): i for i, c in enumerate(classes or [])}
        for f in feats:
            value = (f.get("properties") or {}).get(class_attribute)
            if class_map is not None and value in class_map:
                ids.append(int(class_map[value]))
            elif str(value) in names:
                ids.append(names[str(value)])
            elif isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
                ids.append(int(value))
            else:
                raise DataError(
                    f"'{path}': feature value {value!r} of {class_attribute!r} is not a class "
                    f"name {list(names)} nor an integer; pass class_map={{value: id}}."
                )
    return VectorLabels(str(path), geoms, np.asarray(ids, dtype=np.int64), crs)


def check_areas(vectors: VectorLabels, task: str) -> None:
    """Refuse points and lines as segmentation or detection labels: they have no area, so they
    burn into single pixels or 1-pixel lines (segmentation) and give no box (detection).

    Raises:
        DataError: No feature has an area (names the file and the geometry types found). When
            some do, a warning counts the others.
    """
    if task not in ("segmentation", "detection"):
        return
    flat: dict[str, int] = {}
    for g in vectors.geometries:
        if g.geom_type not in ("Polygon", "MultiPolygon") and g.area == 0:
            flat[g.geom_type] = flat.get(g.geom_type, 0) + 1
    if not flat:
        return
    n = sum(flat.values())
    kinds = ", ".join(f"{k} ({v})" for k, v in sorted(flat.items()))
    effect = ("burn into single pixels or 1-pixel lines, so the masks would be (almost) all "
              "background" if task == "segmentation" else "give no box to learn")
    if n == len(vectors.geometries):
        raise DataError(
            f"Vector label file '{vectors.path}' holds no polygon, only {kinds} features: "
            f"{task} labels need areas (Polygon, MultiPolygon); points and lines {effect}. Draw "
            "the objects as polygons, or buffer the points/lines to the objects' size in a GIS "
            "(QGIS: Vector > Geoprocessing Tools > Buffer).")
    log.warning("'%s': %d of %d features are not polygons (%s); as %s labels they %s. Buffer "
                "them to polygons in a GIS, or remove them.", vectors.path, n,
                len(vectors.geometries), kinds, task, effect)


# --------------------------------------------------------------------------- detection files


def _class_id(name: str, classes: Sequence[str] | None, path: Path,
              class_ids: Mapping[str, int] | None = None) -> int:
    if class_ids is not None:  # other spellings first: ArcGIS writes class values ("1")
        for key in (name, name.strip().lower()):
            if key in class_ids:
                return int(class_ids[key])
        if classes is None:
            raise DataError(f"'{path}': class {name!r} is none of {sorted(class_ids)}.")
    if classes is None:
        raise ConfigError(f"Detection labels in '{path}' use class names; pass classes=[...].")
    lookup = {str(c).lower(): i for i, c in enumerate(classes)}
    if str(name).lower() not in lookup:
        raise DataError(f"'{path}': class {name!r} is not in classes {list(classes)}.")
    return lookup[str(name).lower()]


def read_voc(path: str | Path, classes: Sequence[str] | None,
             class_ids: Mapping[str, int] | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    """Read one PASCAL VOC XML file (ArcGIS "Export Training Data" detection format).

    Args:
        path: The XML file.
        classes: Class names (index = class id), matched case-insensitively to ``<name>``.
        class_ids: Other spellings of ``<name>`` -> class id, tried first (exact, then lower
            case); ArcGIS exports write the class *value* (``<name>1</name>``).

    Returns:
        ``(image file name, boxes (N, 4) xyxy float32, labels (N,) int64)``. VOC coordinates are
        1-based pixel indexes in the original spec but most tools (ArcGIS, DeepForest) write
        0-based edges; they are used as given.

    Raises:
        DataError: Missing or malformed file, unknown class.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"VOC annotation file not found: '{path}'.")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise DataError(f"'{path}' is not valid PASCAL VOC XML: {err}") from None
    boxes, labels = [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        name = obj.findtext("name")
        if bb is None or name is None:
            raise DataError(f"'{path}': an <object> lacks <name> or <bndbox>.")
        try:
            boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
        except (TypeError, ValueError):
            raise DataError(f"'{path}': a <bndbox> lacks xmin/ymin/xmax/ymax numbers.") from None
        labels.append(_class_id(name.strip(), classes, path, class_ids))
    return (root.findtext("filename") or "", np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int64))


def read_coco(
    path: str | Path, classes: Sequence[str] | None = None
) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Read a COCO detection JSON.

    Args:
        path: The annotation file.
        classes: Class names; ``None`` takes the file's categories in id order.

    Returns:
        ``(class names, {image file_name: (boxes xyxy, labels)})`` (images without annotations
        map to empty arrays).

    Raises:
        DataError: Missing file, invalid JSON, missing keys; an annotation without a bbox of 4
            numbers, or with an unknown image or category id (names the annotation id).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"COCO annotation file not found: '{path}'.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"'{path}' is not valid JSON: {err}") from None
    except OSError as err:
        raise DataError(f"Cannot read COCO file '{path}': {err.strerror or err}.") from None
    if not isinstance(doc, Mapping):
        raise DataError(f"'{path}' is not COCO detection JSON: it is a JSON "
                        f"{type(doc).__name__}, not an object with 'images', 'categories' and "
                        "'annotations'.")
    try:
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        images = {im["id"]: im["file_name"] for im in doc["images"]}
        anns = doc.get("annotations") or []
        names = list(classes) if classes is not None else [c["name"] for c in cats]
        cat_to_cls = {c["id"]: _class_id(c["name"], names, path) for c in cats}
    except (KeyError, TypeError) as err:
        raise DataError(f"'{path}' is not COCO detection JSON (missing {err}).") from None
    if not isinstance(anns, list):
        raise DataError(f"'{path}': 'annotations' is a {type(anns).__name__}, not a list.")
    per: dict[str, tuple[list, list]] = {fn: ([], []) for fn in images.values()}
    for i, a in enumerate(anns):
        box, fn, cls = _coco_annotation(a, i, images, cat_to_cls, path)
        per[fn][0].append(box)
        per[fn][1].append(cls)
    out = {fn: (np.asarray(b, np.float32).reshape(-1, 4), np.asarray(lab, np.int64))
           for fn, (b, lab) in per.items()}
    return names, out


def _coco_annotation(a: Any, index: int, images: Mapping[Any, str], cat_to_cls: Mapping[Any, int],
                     path: Path) -> tuple[list[float], str, int]:
    """(xyxy box, image file name, class id) of one COCO annotation.

    Raises:
        DataError: Names the file and the annotation id (its position when it has none).
    """
    if not isinstance(a, Mapping):
        raise DataError(f"'{path}': annotation #{index + 1} is a {type(a).__name__}, not an "
                        "object with 'image_id', 'category_id' and 'bbox'.")
    which = (f"annotation {a['id']!r}" if a.get("id") is not None
             else f"annotation #{index + 1} (it has no 'id')")
    if "bbox" not in a:
        has = " (it has a 'segmentation' only)" if "segmentation" in a else ""
        raise DataError(f"'{path}': {which} has no 'bbox'{has}; rsfm reads COCO boxes "
                        "[x, y, width, height] in pixels. Add a bbox to every annotation.")
    bbox = a["bbox"]
    numbers = (isinstance(bbox, (list, tuple)) and len(bbox) == 4
               and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and np.isfinite(v) for v in bbox))
    if not numbers:
        raise DataError(f"'{path}': {which} has bbox {_short(bbox)}; a COCO bbox is 4 numbers "
                        "[x, y, width, height] in pixels.")
    for key in ("image_id", "category_id"):
        if key not in a:
            raise DataError(f"'{path}': {which} has no {key!r}.")
    fn = images.get(a["image_id"])
    if fn is None:
        raise DataError(f"'{path}': {which} refers to unknown image {a['image_id']!r} (image ids "
                        f"in 'images': {_short(sorted(images, key=str)[:20])}).")
    cat = a["category_id"]
    if cat not in cat_to_cls:
        raise DataError(f"'{path}': {which} has category_id {cat!r}, which is not in "
                        f"'categories' (ids {_short(sorted(cat_to_cls, key=str)[:20])}).")
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h], fn, cat_to_cls[cat]


def read_kitti(path: str | Path, class_ids: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI label file: one object per line, space separated; column 1 is the class,
    columns 5-8 the box ``left top right bottom`` in pixels, the other columns are not used
    (ArcGIS "Export Training Data" writes 15 columns with the class *value* in column 1).

    Args:
        path: The ``.txt`` file.
        class_ids: Class token (value or name; also tried in lower case) -> class id.

    Returns:
        ``(boxes (N, 4) xyxy float32, labels (N,) int64)``; an empty file gives no objects.

    Raises:
        DataError: Missing file, a line with fewer than 8 columns or non-numeric box columns
            (the message gives its number), an unknown class.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"KITTI label file not found: '{path}'.")
    boxes, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < 8:
                raise ValueError
            boxes.append([float(v) for v in parts[4:8]])
        except ValueError:
            raise DataError(f"'{path}' line {n} is not KITTI 'class truncated occluded alpha "
                            f"left top right bottom ...': {line!r}") from None
        labels.append(_class_id(parts[0], None, path, class_ids))
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def read_yolo(path: str | Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a YOLO txt file (``class cx cy w h`` normalised) as pixel xyxy boxes.

    Raises:
        DataError: Missing file or a malformed line (the message gives its number).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"YOLO label file not found: '{path}'.")
    boxes, labels = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            c, cx, cy, w, h = int(parts[0]), *map(float, parts[1:5])
        except (ValueError, TypeError):
            raise DataError(f"'{path}' line {n} is not 'class cx cy w h': {line!r}") from None
        boxes.append([(cx - w / 2) * width, (cy - h / 2) * height,
                      (cx + w / 2) * width, (cy + h / 2) * height])
        labels.append(c)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


@dataclass
class BoxCount:
    """What :func:`count_boxes` found in the boxes of one image (pixel xyxy, before clipping).

    Attributes:
        total: Boxes read.
        kept: Boxes used for training (inside, or clipped to the image, and not too small).
        clipped: Boxes partly outside the image, kept clipped to it.
        outside: Boxes entirely outside the image (dropped).
        zero_size: Boxes with zero or negative width or height (dropped).
        small: Boxes smaller than the minimum size once clipped (dropped).
    """

    total: int = 0
    kept: int = 0
    clipped: int = 0
    outside: int = 0
    zero_size: int = 0
    small: int = 0

    def add(self, other: BoxCount) -> None:
        """Accumulate ``other``'s counts."""
        for name in ("total", "kept", "clipped", "outside", "zero_size", "small"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def count_boxes(boxes: np.ndarray, width: int, height: int, min_size: float) -> BoxCount:
    """Sort image-pixel boxes (xyxy) of a ``width`` x ``height`` image into the categories of
    :class:`BoxCount` (what :func:`clip_boxes` keeps, clips and drops)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    zero = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    outside = ~zero & ((b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= width) | (b[:, 1] >= height))
    partly = ~zero & ~outside & ((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > width)
                                 | (b[:, 3] > height))
    c = b.copy()
    c[:, [0, 2]] = np.clip(c[:, [0, 2]], 0, width)
    c[:, [1, 3]] = np.clip(c[:, [1, 3]], 0, height)
    big = ((c[:, 2] - c[:, 0]) >= min_size) & ((c[:, 3] - c[:, 1]) >= min_size)
    kept = ~zero & ~outside & big
    return BoxCount(total=len(b), kept=int(kept.sum()), clipped=int((partly & big).sum()),
                    outside=int(outside.sum()), zero_size=int(zero.sum()),
                    small=int((~zero & ~outside & ~big).sum()))


def clip_boxes(boxes: np.ndarray, labels: np.ndarray, col_off: float, row_off: float, width: int,
               height: int, min_size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Shift image-pixel boxes into a window and clip them to it; drop boxes left too small."""
    b = boxes.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]] - col_off, 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]] - row_off, 0, height)
    keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return b[keep], labels[keep]
