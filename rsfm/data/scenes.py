"""Large scenes cut into tiles on the fly, with raster or vector labels.

Tiles are ``tile_size`` windows every ``stride`` pixels (overlapping when ``stride < tile_size``;
the last row/column is moved back to end at the scene edge so no tile is partial). Pixels are read
lazily per tile through one rasterio handle per file and process; the whole scene is never
loaded. With ``sampling="random"`` each item is instead a random window (a random-window sampler
for large scenes, reproducible for a seed and epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from rsfm.data.base import GeoDataset, window_meta
from rsfm.data.labels import (
    BoxCount,
    LabelRules,
    VectorLabels,
    check_areas,
    is_vector_file,
    read_vector,
)
from rsfm.data.rasters import inspect_raster, invalid_mask, outside_mask, read_window
from rsfm.errors import ConfigError, DataError
from rsfm.spec import InputSpec

__all__ = ["SceneDataset", "grid_offsets"]

PathLike = str | Path


def grid_offsets(size: int, tile: int, stride: int) -> list[int]:
    """Tile start offsets along one axis: every ``stride``, plus one flush with the end."""
    if size <= tile:
        return [0]
    offs = list(range(0, size - tile + 1, stride))
    if offs[-1] != size - tile:
        offs.append(size - tile)
    return offs


class SceneDataset(GeoDataset):
    """Tiles of one or more large scenes (GeoTIFF/COG), with optional labels.

    Examples::

        SceneDataset("scene.tif", "labels.tif", spec, tile_size=256, stride=128)
        SceneDataset("scene.tif", "mask_rgb.tif", spec,
                     label_rules=LabelRules(color_map={"#3C1098": 0, "#8429F6": 1}))
        SceneDataset("scene.tif", "buildings.geojson", spec)  # classes: background, building
        SceneDataset("scene.tif", "buildings.gpkg", spec, task="detection", class_attribute="type")
        SceneDataset(["a.tif", "b.tif"], None, spec, sampling="random", samples_per_epoch=1000,
                     task="none")

    Args:
        images: One scene path, a list of scene paths, or a list of lists (time series per scene,
            co-registered files in time order: images are ``(C, T, H, W)``).
        labels: ``None``; a label raster per scene (same grid as its scene; values, or colours
            with ``label_rules.color_map``); or one vector file (GeoJSON/GeoPackage/Shapefile)
            for all scenes, reprojected to each scene's CRS.
        spec: Bands, normalisation, nodata, classes, ignore index and the default tile size
            (see :class:`~rsfm.data.base.GeoDataset`).
        task: ``"segmentation"``, ``"detection"`` (vector labels -> boxes) or ``"none"``.
        tile_size: Tile height and width in pixels (default: ``spec.tile_size``, else 256).
        stride: Step between tiles (default ``tile_size``; smaller overlaps).
        class_attribute: Vector attribute holding the class (see
            :func:`~rsfm.data.labels.read_vector`). Segmentation without it burns features as
            class 1 on background 0.
        class_map: Attribute value -> class id (see :func:`~rsfm.data.labels.read_vector`).
        all_touched: Rasterise every pixel a polygon touches (not only pixel centres inside).
        min_visible: Detection: drop boxes with less than this fraction of the object inside.
        sampling: ``"grid"`` (all tiles) or ``"random"`` (``samples_per_epoch`` random windows).
        samples_per_epoch: Length of the dataset in random mode.
        seed: Seed of the random windows (see :meth:`set_epoch`).
        skip_nodata: Drop tiles that are entirely nodata (found with a decimated scan of the
            scene, which uses overviews when the file has them).
        label_rules: See :class:`~rsfm.data.base.GeoDataset`.
        on_invalid_label: See :class:`~rsfm.data.base.GeoDataset`.
        align_labels: See :class:`~rsfm.data.base.GeoDataset`.
        transforms: See :class:`~rsfm.data.base.GeoDataset`.

    Raises:
        DataError: Missing/corrupt files, grid mismatch, empty vector file, all-nodata scenes.
        ConfigError: Bad tiling arguments.
    """

    def __init__(
        self,
        images: PathLike | Sequence[PathLike] | Sequence[Sequence[PathLike]],
        labels: PathLike | Sequence[PathLike] | None,
        spec: InputSpec,
        *,
        task: str = "segmentation",
        tile_size: int | None = None,
        stride: int | None = None,
        class_attribute: str | None = None,
        class_map: Mapping[Any, int] | None = None,
        all_touched: bool = False,
        min_visible: float = 0.25,
        sampling: str = "grid",
        samples_per_epoch: int = 1000,
        seed: int = 0,
        skip_nodata: bool = True,
        label_rules: LabelRules | None = None,
        on_invalid_label: str = "warn",
        align_labels: bool = False,
        transforms: Callable[[dict], dict] | None = None,
        instance_masks: bool = False,
    ) -> None:
        super().__init__(spec, task=task, label_rules=label_rules,
                         on_invalid_label=on_invalid_label, align_labels=align_labels,
                         transforms=transforms, instance_masks=instance_masks)
        tile_size = tile_size or spec.tile_size or 256
        stride = tile_size if stride is None else stride
        if tile_size < 1 or stride < 1:
            raise ConfigError(f"tile_size and stride must be >= 1, got {tile_size} and {stride}.")
        if sampling not in ("grid", "random"):
            raise ConfigError(f"sampling {sampling!r} is not one of ['grid', 'random'].")
        self.tile_size, self.stride = int(tile_size), int(stride)
        self.sampling, self.samples_per_epoch, self.seed = sampling, int(samples_per_epoch), seed
        self.epoch = 0
        self.all_touched, self.min_visible = all_touched, min_visible
        if isinstance(images, (str, Path)):
            images = [images]
        self.scenes: list[list[Path]] = [
            [Path(x)] if isinstance(x, (str, Path)) else [Path(y) for y in x] for x in images
        ]
        if not self.scenes:
            raise DataError("SceneDataset needs at least one scene.")
        odd = (next((p for p in self.scenes if len(p) != spec.num_frames), None)
               if spec.num_frames > 1 else None)
        if odd is not None:
            raise DataError(
                f"The model takes {spec.num_frames} time step(s) per scene (model.num_frames) "
                f"but scene '{odd[0]}' has {len(odd)} file(s): give each scene as a list of its "
                "files in time order, or use chips with a manifest (';'-separated time steps).")
        self.label_rasters: list[Path | None] = [None] * len(self.scenes)
        self.vectors: VectorLabels | None = None
        self._setup_labels(labels, class_attribute, class_map)
        self._valid_grids: list[tuple[np.ndarray, int] | None] = []
        self._build_tiles(skip_nodata)
        self._check_vectors_overlap()

    # ------------------------------------------------------------------ construction
    def _setup_labels(self, labels, class_attribute, class_map) -> None:
        if labels is None:
            if self.task != "none":
                raise ConfigError(f"task {self.task!r} needs labels=...; use task='none' for "
                                  "images only.")
            return
        if self.task == "none":
            return
        single = isinstance(labels, (str, Path))
        if single and is_vector_file(labels):
            if self.label_rules.color_map:
                raise ConfigError(f"color_map is for colour-mask rasters, but the labels "
                                  f"'{labels}' are a vector file (classes come from "
                                  "class_attribute/class_map).")
            if self.classes is None:
                raise ConfigError("Vector labels need classes=[...] (index = class id).")
            if self.task == "segmentation" and len(self.classes) < 2:
                # pixels outside polygons are class 0, so segmentation needs a background class
                raise ConfigError(
                    f"Segmentation from polygons ({labels}) burns them over a background of class 0: "
                    f"give the background too, e.g. classes=['background', {self.classes[0]!r}]."
                    if self.classes else "Vector labels need classes=[...]."
                )
            default = 1 if self.task == "segmentation" else 0
            self.vectors = read_vector(labels, class_attribute, self.classes, class_map, default)
            check_areas(self.vectors, self.task)
            return
        if self.task == "detection":
            raise ConfigError(f"Scene detection needs vector labels (polygons -> boxes), not "
                              f"'{labels}'.")
        rasters = [Path(labels)] if single else [Path(p) for p in labels]
        missing = [str(r) for r in rasters if not r.exists()]
        if missing:
            raise DataError(f"Labels not found: {missing[:3]}" + (" (give a label raster per "
                            "scene, a folder of them paired with the scenes by name, or a "
                            "vector file)." if single else "."))
        if len(rasters) != len(self.scenes):
            raise ConfigError(f"{len(self.scenes)} scenes (e.g. '{self.scenes[0][0]}') but "
                              f"{len(rasters)} label raster(s) ({[str(r) for r in rasters[:3]]}): "
                              "give one label raster per scene, in the same order, or a folder "
                              "paired with the scenes by name.")
        self.label_rasters = list(rasters)

    def _build_tiles(self, skip_nodata: bool) -> None:
        t = self.tile_size
        infos = [self.reader.plan(paths[0]).info for paths in self.scenes]
        largest = max(max(i.height, i.width) for i in infos)
        if t > 2 * largest:
            # every sample would be mostly padding, and a huge tile exhausts memory on first read
            big = max(infos, key=lambda i: max(i.height, i.width))
            raise DataError(
                f"data.tile_size {t} is more than twice the largest scene ('{big.path}', "
                f"{big.height} x {big.width} pixels): each sample would be mostly padding. Use a "
                f"tile size of at most {largest} (a multiple of the model's patch size for ViTs).")
        for s, paths in enumerate(self.scenes):
            for p in paths:
                self.reader.plan(p)
            if len(paths) > 1:
                self.reader.check_stack(paths)
            info = self.reader.plan(paths[0]).info
            if self.label_rasters[s] is not None:
                self._check_label_raster(info, inspect_raster(self.label_rasters[s]))
            valid = self._scan(paths) if skip_nodata else None
            self._valid_grids.append(valid)
            if self.sampling == "random":
                continue
            for row in grid_offsets(info.height, t, self.stride):
                for col in grid_offsets(info.width, t, self.stride):
                    if valid is not None and not self._tile_has_data(valid, row, col):
                        self.report.skipped_nodata += 1
                        self.report.skipped_items.append(f"{paths[0]}@col={col},row={row}")
                        continue
                    self.items.append((s, col, row))
        if self.sampling == "random":
            if all(v is not None and not v[0].any() for v in self._valid_grids):
                raise DataError(f"Every scene is entirely nodata (e.g. '{self.scenes[0][0]}').")
            self.items = list(range(self.samples_per_epoch))
        elif not self.items:
            raise DataError(
                f"All tiles of {[str(p[0]) for p in self.scenes]} are entirely nodata "
                f"({self.report.skipped_nodata} skipped); check the nodata value and the bands."
            )

    def _check_vectors_overlap(self) -> None:
        """Vector labels must touch at least one scene (a CRS mix-up otherwise trains on an
        all-background map, or on no box at all)."""
        vec = self.vectors
        if vec is None or not vec.geometries:
            return
        infos = [self.reader.plan(p[0]).info for p in self.scenes]
        if not all(i.georeferenced for i in infos) or any(
                len(vec.to_crs(i.crs).query(i.bounds)) for i in infos):
            return
        first = infos[0]
        raise DataError(
            f"No polygon of '{vec.path}' ({len(vec.geometries)} features, CRS "
            f"{vec.crs.to_string() if vec.crs is not None else 'unknown'}) overlaps the scene(s) "
            f"(e.g. '{self.scenes[0][0]}', CRS {first.crs.to_string()}, bounds "
            f"{tuple(round(v, 2) for v in first.bounds)}). Check that the labels belong to these "
            "scenes and that the vector file's CRS is right (GeoJSON without a 'crs' member is "
            "longitude/latitude, EPSG:4326)."
        )

    def _scan(self, paths: list[Path]) -> tuple[np.ndarray, int]:
        """Validity of the scene at 1/f resolution (``f`` ~ tile_size / 16)."""
        info = self.reader.plan(paths[0]).info
        f = max(1, self.tile_size // 16)
        shape = (max(1, math.ceil(info.height / f)), max(1, math.ceil(info.width / f)))
        valid = np.zeros(shape, dtype=bool)
        for p in paths:
            plan = self.reader.plan(p)
            raw = read_window(p, None, plan.selection.indexes, out_shape=shape)
            valid |= ~invalid_mask(raw, plan.nodata)[1]
        return valid, f

    def _tile_has_data(self, valid: tuple[np.ndarray, int], row: int, col: int) -> bool:
        grid, f = valid
        t = self.tile_size
        return bool(grid[row // f: max(row // f + 1, math.ceil((row + t) / f)),
                         col // f: max(col // f + 1, math.ceil((col + t) / f))].any())

    # ------------------------------------------------------------------ sampling
    def set_epoch(self, epoch: int) -> None:
        """Random mode: draw a new set of windows (call at the start of each epoch).

        DataLoader workers copy the dataset when they start, so with ``persistent_workers=True``
        the new epoch does not reach them; keep workers non-persistent in random mode.
        """
        self.epoch = int(epoch)

    def _window_of(self, index: int) -> tuple[int, int, int]:
        if self.sampling == "grid":
            return self.items[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sizes = np.array([self.reader.plan(p[0]).info.width * self.reader.plan(p[0]).info.height
                          for p in self.scenes], dtype=float)
        for _ in range(20):  # retry windows that land in nodata
            s = int(rng.choice(len(self.scenes), p=sizes / sizes.sum()))
            info = self.reader.plan(self.scenes[s][0]).info
            row = int(rng.integers(0, max(1, info.height - self.tile_size + 1)))
            col = int(rng.integers(0, max(1, info.width - self.tile_size + 1)))
            valid = self._valid_grids[s]
            if valid is None or self._tile_has_data(valid, row, col):
                return s, col, row
        return s, col, row

    # ------------------------------------------------------------------ reading
    def _target(self, s: int, col: int, row: int, bad: np.ndarray | None) -> dict[str, np.ndarray]:
        """Target of the tile at (col, row) of scene ``s``; ``bad`` pixels (nodata in the image)
        become ``ignore_index``, and so do pixels past the scene edge."""
        t = self.tile_size
        info = self.reader.plan(self.scenes[s][0]).info
        window = Window(col, row, t, t)
        if self.task == "none":
            return {}
        if bad is None:
            bad = outside_mask(window, info.width, info.height)
        if self.vectors is not None:
            vec = self.vectors.to_crs(info.crs)
            wt = window_transform(window, info.transform)
            if self.task == "detection":
                boxes, labels, masks = vec.instances(wt, (t, t), min_visible=self.min_visible,
                                                     masks=self.instance_masks)
                self.report.boxes.add(BoxCount(total=len(boxes), kept=len(boxes)))
                if not len(boxes):
                    self.report.box_examples.setdefault(
                        "no box", f"'{self.vectors.path}' has none in the tile at col={col}, "
                        f"row={row} of '{self.scenes[s][0]}'")
                target = {"boxes": boxes, "labels": labels}
                if masks is not None:
                    target["masks"] = masks
                return target
            raw = vec.rasterize(wt, (t, t), background=0, all_touched=self.all_touched)
            return {"mask": self._label_mask(raw, bad, self.vectors.path,
                                             f"@col={col},row={row}")}
        label = self.label_rasters[s]
        raw = self._read_label(label, info, window)
        return {"mask": self._label_mask(raw, bad, str(label), f"@col={col},row={row}")}

    def read_target(self, index: int) -> dict[str, np.ndarray]:
        s, col, row = self._window_of(index)
        return self._target(s, col, row, None)

    def _load(self, index: int, out: np.ndarray | None = None):
        s, col, row = self._window_of(index)
        t = self.tile_size
        window = Window(col, row, t, t)
        paths = self.scenes[s]
        if len(paths) == 1:
            image, bad = self.reader.read(paths[0], window, out=out)
        else:
            image, bad = self.reader.read_stack(paths, window)
        target = self._target(s, col, row, bad)
        info = self.reader.plan(paths[0]).info
        return image, bad, target, window_meta(str(paths[0]), col, row, t, t, info)

    def footprint(self, index: int) -> tuple[float, float, float, float]:
        s, col, row = self._window_of(index)
        info = self.reader.plan(self.scenes[s][0]).info
        t = window_transform(Window(col, row, self.tile_size, self.tile_size), info.transform)
        xs = (t.c, t.c + t.a * self.tile_size)
        ys = (t.f, t.f + t.e * self.tile_size)
        return min(xs), min(ys), max(xs), max(ys)

    def crs_of(self, index: int) -> Any:
        s, _, _ = self._window_of(index)
        return self.reader.plan(self.scenes[s][0]).info.crs
