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
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsfm.errors import ConfigError, DataError

__all__ = [
    "VectorLabels",
    "apply_color_map",
    "map_label_values",
    "parse_color",
    "read_coco",
    "read_vector",
    "read_voc",
    "read_yolo",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- class values


def map_label_values(
    mask: np.ndarray,
    num_classes: int,
    ignore_index: int = -1,
    value_map: Mapping[int, int] | None = None,
    source_ignore: Sequence[int] = (),
    on_invalid: str = "warn",
    source: str = "label",
) -> tuple[np.ndarray, int]:
    """Map raw label values to class ids; everything else becomes ``ignore_index``.

    Args:
        mask: Raw label values ``(H, W)``.
        num_classes: Valid ids are ``0 .. num_classes - 1``.
        ignore_index: Value written for invalid pixels.
        value_map: Raw value -> class id (e.g. ``{255: 1}``); unmapped values are kept as is.
        source_ignore: Raw values the dataset itself uses for "no label" (e.g. Sen1Floods11's
            -1): they become ``ignore_index`` silently.
        on_invalid: ``"warn"`` (log a count), ``"error"`` (raise) or ``"ignore"`` for values
            outside the classes.
        source: File name for messages.

    Returns:
        ``(mask int64, n_out_of_range)``.

    Raises:
        DataError: Out-of-range values and ``on_invalid="error"``.
    """
    out = mask.astype(np.int64, copy=True)
    if value_map:
        mapped = out.copy()
        for raw, cls in value_map.items():
            mapped[mask == raw] = cls
        out = mapped
    silent = np.isin(mask, list(source_ignore)) if source_ignore else np.zeros(mask.shape, bool)
    bad = ((out < 0) | (out >= num_classes)) & ~silent
    n_bad = int(bad.sum())
    if n_bad:
        values = np.unique(mask[bad])[:10].tolist()
        msg = (
            f"{source}: {n_bad} pixels have values {values} outside the {num_classes} declared "
            f"classes (ids 0..{num_classes - 1}); they are set to ignore_index={ignore_index}."
        )
        if on_invalid == "error":
            raise DataError(msg + " Declare these classes, map them with label_map, or set "
                            "on_invalid_label='warn'.")
        if on_invalid == "warn":
            log.warning(msg)
    out[bad | silent] = ignore_index
    return out, n_bad


def parse_color(color: str | Sequence[int]) -> tuple[int, int, int]:
    """``"#3C1098"`` or ``(60, 16, 152)`` -> ``(60, 16, 152)``.

    Raises:
        ConfigError: Not a hex colour or an RGB triple.
    """
    if isinstance(color, str):
        h = color.strip().lstrip("#")
        if len(h) == 6:
            try:
                return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
            except ValueError:
                pass
        raise ConfigError(f"Colour {color!r} is not '#RRGGBB'.")
    rgb = tuple(int(c) for c in color)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ConfigError(f"Colour {color!r} is not an (R, G, B) triple of 0..255.")
    return rgb  # type: ignore[return-value]


def apply_color_map(
    rgb: np.ndarray, color_map: Mapping[Any, int], ignore_index: int = -1
) -> tuple[np.ndarray, int]:
    """Convert a colour-coded mask ``(3, H, W)`` to class ids via ``colour -> class id``.

    Colours not in the table become ``ignore_index``; their pixel count is returned. Map a colour
    to ``ignore_index`` explicitly (e.g. a black border) to ignore it without counting it.
    """
    if rgb.shape[0] < 3:
        raise DataError(f"A colour mask needs 3 bands (R, G, B), got {rgb.shape[0]}.")
    code = (rgb[0].astype(np.int64) << 16) | (rgb[1].astype(np.int64) << 8) | rgb[2]
    out = np.full(code.shape, ignore_index, dtype=np.int64)
    matched = np.zeros(code.shape, dtype=bool)
    for color, cls in color_map.items():
        r, g, b = parse_color(color)
        hit = code == ((r << 16) | (g << 8) | b)
        out[hit] = cls
        matched |= hit
    n_unknown = int((~matched).sum())  # colours mapped to ignore_index on purpose are not counted
    return out, n_unknown


# --------------------------------------------------------------------------- vectors


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
            geoms = [shape(transform_geom(self.crs, crs, mapping(g))) for g in self.geometries]
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
        from rasterio.transform import array_bounds
        from shapely.geometry import box

        h, w = shape
        bottom, left, top, right = _bounds_btlr(array_bounds(h, w, transform))
        win = box(left, bottom, right, top)
        inv = ~transform
        out_boxes, out_labels = [], []
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
            out_boxes.append(bx)
            out_labels.append(int(self.class_ids[i]))
        return (np.asarray(out_boxes, dtype=np.float32).reshape(-1, 4),
                np.asarray(out_labels, dtype=np.int64))


def _apply(t: Any, x: float, y: float) -> tuple[float, float]:
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def _bounds_btlr(west_south_east_north: tuple[float, ...]) -> tuple[float, float, float, float]:
    west, south, east, north = west_south_east_north
    return south, west, north, east


def _read_features(path: Path) -> tuple[list[dict], Any]:
    """(features as GeoJSON-like dicts, CRS or None)."""
    from rasterio.crs import CRS

    try:
        import fiona
    except ImportError:
        fiona = None
    if fiona is None:
        if path.suffix.lower() not in (".geojson", ".json"):
            raise DataError(
                f"Reading '{path}' needs fiona (install rsfm[vector]); without it only GeoJSON "
                "vector labels can be read."
            )
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"'{path}' is not valid GeoJSON: {err}") from None
        feats = doc.get("features", []) if isinstance(doc, dict) else []
        name = (doc.get("crs") or {}).get("properties", {}).get("name") if isinstance(doc, dict) else None
        return feats, CRS.from_user_input(name) if name else CRS.from_epsg(4326)
    try:
        with fiona.open(path) as src:
            feats = [{"geometry": f["geometry"] and dict(f["geometry"]),
                      "properties": dict(f["properties"] or {})} for f in src]
            crs = CRS.from_wkt(src.crs_wkt) if src.crs_wkt else None
    except fiona.errors.FionaError as err:  # DriverError, etc.
        raise DataError(f"Cannot read '{path}' as a vector file: {err}") from None
    return feats, crs


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
        DataError: Missing/unreadable file, no features, missing attribute, unmapped values.
    """
    from shapely.geometry import shape

    path = Path(path)
    if not path.exists():
        raise DataError(f"Vector label file not found: '{path}'.")
    feats, crs = _read_features(path)
    feats = [f for f in feats if f.get("geometry")]
    if not feats:
        raise DataError(f"Vector label file '{path}' has no features with a geometry.")
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
    geoms = [shape(f["geometry"]) for f in feats]
    geoms = [g if g.is_valid else g.buffer(0) for g in geoms]  # self-intersections from digitising
    return VectorLabels(str(path), geoms, np.asarray(ids, dtype=np.int64), crs)


# --------------------------------------------------------------------------- detection files


def _class_id(name: str, classes: Sequence[str] | None, path: Path) -> int:
    if classes is None:
        raise ConfigError(f"Detection labels in '{path}' use class names; pass classes=[...].")
    lookup = {str(c).lower(): i for i, c in enumerate(classes)}
    if str(name).lower() not in lookup:
        raise DataError(f"'{path}': class {name!r} is not in classes {list(classes)}.")
    return lookup[str(name).lower()]


def read_voc(path: str | Path, classes: Sequence[str] | None) -> tuple[str, np.ndarray, np.ndarray]:
    """Read one PASCAL VOC XML file (ArcGIS "Export Training Data" detection format).

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
        labels.append(_class_id(name.strip(), classes, path))
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
        DataError: Missing file, invalid JSON, missing keys, unknown category.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"COCO annotation file not found: '{path}'.")
    try:
        doc = json.loads(path.read_text())
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        images = {im["id"]: im["file_name"] for im in doc["images"]}
        anns = doc.get("annotations", [])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"'{path}' is not valid JSON: {err}") from None
    except (KeyError, TypeError) as err:
        raise DataError(f"'{path}' is not COCO detection JSON (missing {err}).") from None
    names = list(classes) if classes is not None else [c["name"] for c in cats]
    cat_to_cls = {c["id"]: _class_id(c["name"], names, path) for c in cats}
    per: dict[str, tuple[list, list]] = {fn: ([], []) for fn in images.values()}
    for a in anns:
        x, y, w, h = a["bbox"]
        fn = images.get(a["image_id"])
        if fn is None:
            raise DataError(f"'{path}': annotation {a.get('id')} refers to unknown image "
                            f"{a['image_id']}.")
        per[fn][0].append([x, y, x + w, y + h])
        per[fn][1].append(cat_to_cls[a["category_id"]])
    out = {fn: (np.asarray(b, np.float32).reshape(-1, 4), np.asarray(lab, np.int64))
           for fn, (b, lab) in per.items()}
    return names, out


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


def clip_boxes(boxes: np.ndarray, labels: np.ndarray, col_off: float, row_off: float, width: int,
               height: int, min_size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Shift image-pixel boxes into a window and clip them to it; drop boxes left too small."""
    b = boxes.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]] - col_off, 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]] - row_off, 0, height)
    keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return b[keep], labels[keep]
