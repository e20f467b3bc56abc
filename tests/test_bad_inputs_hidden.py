"""A second catalogue of bad inputs and faults (the "hidden" round), in the style of
``tests/test_bad_inputs.py`` and reusing its harness (fixtures, recipes, hashing).

Two kinds of cases:

- command-line cases (:func:`case`): ``rsfm ...`` through :func:`rsfm.cli.main` (a subprocess
  where a signal is part of the fault); exit code, the culprit named in the message, no traceback,
  no traceback file, no file changed or added;
- Python API cases (:func:`api_case`): ``rsfm.train``/``predict``/``evaluate``/``prepare_data``,
  ``create_backbone``/``create_model``/``from_pretrained`` and the ``Learner``: an
  :class:`rsfm.errors.RsfmError` (not a raw ``TypeError``/``KeyError``...) naming the culprit, no
  file changed.

Cases that rsfm does not handle yet are marked ``xfail(strict=True)`` with what goes wrong, so the
suite stays green until they are fixed (then the mark must go).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from test_bad_inputs import (  # noqa: F401 - trained/detector are fixtures used through Ctx
    ALL_NAN,
    DATA,
    DELETE,
    RESNET,
    S1,
    SCENE,
    TERRATORCH,
    TREES,
    Case,
    Ctx,
    changed,
    det_recipe,
    detector,
    run_case,
    run_cli,
    seg_recipe,
    snapshot,
    trained,
    voc,
    write_tif,
)

from rsfm.errors import RsfmError

SPACENET = DATA / "spacenet4" / "sample_geotiff.tif"
GHANA = S1 / "S1Hand" / "Ghana_53713_S1Hand.tif"
NOT_ROOT = pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")


def xfail(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=reason)


CASES: list[Any] = []


def case(id: str, *names: str, code: int = 2, marks: Any = (), new_files: bool = False,
         subprocess: bool = False, may_change: tuple[str, ...] = ()) -> Callable:
    def deco(fn: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        CASES.append(pytest.param(Case(id, fn, names, code, new_files=new_files or code == 0,
                                       subprocess=subprocess, may_change=may_change),
                                  id=id, marks=marks))
        return fn
    return deco


def _show(c_id: str, code: int, text: str) -> None:
    if os.environ.get("RSFM_SHOW_CATALOGUE"):
        sys.__stdout__.write(f"\n=== {c_id} (exit {code})\n{text}\n")


@pytest.mark.parametrize("c", CASES)
def test_hidden_bad_input(c: Case, tmp_path, request, capsys, caplog, monkeypatch):
    run_case(c, tmp_path, request, capsys, caplog, monkeypatch)


# -------------------------------------------------------------------------------- API cases
@dataclass(frozen=True)
class ApiCase:
    id: str
    build: Callable[[Ctx], Callable[[], Any]]
    names: tuple[str, ...] = ()


API_CASES: list[Any] = []


def api_case(id: str, *names: str, marks: Any = ()) -> Callable:
    """A Python API call (``build(ctx)`` returns it) that must raise an RsfmError naming
    ``names``, change no file and add none."""
    def deco(fn: Callable[[Ctx], Callable[[], Any]]) -> Callable[[Ctx], Callable[[], Any]]:
        API_CASES.append(pytest.param(ApiCase(id, fn, names), id=id, marks=marks))
        return fn
    return deco


@pytest.mark.parametrize("c", API_CASES)
def test_hidden_bad_api_call(c: ApiCase, tmp_path, request, monkeypatch):
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("RSFM_TRACEBACK_DIR", str(tmp_path / "tracebacks"))
    ctx = Ctx(work, request)
    call = c.build(ctx)
    watched = [work, DATA, *ctx.extra_watch]
    before = snapshot(watched)
    try:
        call()
    except RsfmError as err:
        msg = str(err)
    except Exception as err:  # noqa: BLE001 - the point of the test
        pytest.fail(f"raw {type(err).__name__} instead of an RsfmError: {err}")
    else:
        pytest.fail("no error was raised")
    _show(c.id, 2, msg)
    assert len(msg) < 3000, msg
    bare = msg.replace(str(tmp_path), "<tmp>")
    for name in c.names:
        if "{tmp}" in str(name):
            assert str(name).replace("{tmp}", str(work)) in msg, f"{name!r} not named in: {msg}"
        else:
            assert str(name) in bare, f"{name!r} not named in: {msg}"
    after = snapshot(watched)
    assert before == after, f"files changed/added: {sorted(set(after) ^ set(before))}"


# ------------------------------------------------------------------------------------ helpers
def s1_copy(ctx: Ctx, src: Path = SCENE, name: str = "scene.tif") -> Path:
    dst = ctx.tmp / name
    shutil.copy(src, dst)
    return dst


def rewrite(path: Path, fn: Callable[[np.ndarray, dict], tuple[np.ndarray, dict]],
            descriptions: tuple[str, ...] | None = None) -> Path:
    """Rewrite a raster through ``fn(data, profile) -> (data, profile)``."""
    with rasterio.open(path) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    data, profile = fn(data, dict(profile))
    profile["count"] = data.shape[0]
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        names = descriptions if descriptions is not None else names
        for i, d in enumerate(names[: data.shape[0]], start=1):
            if d:
                dst.set_band_description(i, d)
    return path


def class_folders(ctx: Ctx) -> Path:
    root = ctx.tmp / "classes"
    for cls, stems in (("dry", ("Spain_7370579", "Ghana_53713")), ("water", ("Bolivia_312675",))):
        (root / cls).mkdir(parents=True)
        for stem in stems:
            shutil.copy(S1 / "S1Hand" / f"{stem}_S1Hand.tif", root / cls / f"{stem}.tif")
    return root


def cls_recipe(ctx: Ctx, root: Path, out: Path) -> dict[str, Any]:
    return changed(seg_recipe(out), {
        "model.task": "classification", "model.head": "classification", "model.neck": DELETE,
        "data.kind": "class_folders", "data.train": {"images": str(root)},
        "data.image_suffix": DELETE, "data.label_suffix": DELETE, "data.val_fraction": 0.0,
        "data.label_ignore_values": DELETE})


# =============================================================================================
# Recipe files, includes and overrides
# =============================================================================================
@case("recipe-is-a-scalar", "{tmp}/recipe.yaml", "mapping")
def _(ctx):
    (ctx.tmp / "recipe.yaml").write_text("just a sentence\n")
    return ["check", ctx.tmp / "recipe.yaml"]


@case("recipe-only-comments", "{tmp}/recipe.yaml", "empty")
def _(ctx):
    (ctx.tmp / "recipe.yaml").write_text("# TODO: write the recipe\n\n")
    return ["check", ctx.tmp / "recipe.yaml"]


@case("recipe-is-a-geotiff", "{tmp}/scene.tif")
def _(ctx):  # the arguments swapped: `rsfm check scene.tif`
    return ["check", s1_copy(ctx)]


@case("recipe-section-is-a-list", "train")
def _(ctx):
    return ["check", ctx.recipe({"train": [{"epochs": 1}]})]


@case("recipe-section-is-null", "model")
def _(ctx):
    return ["check", ctx.recipe({"model": None})]


@case("include-is-a-list-of-numbers", "include")
def _(ctx):
    return ["check", ctx.recipe({"data.normalization.include": [1, 2]})]


@case("include-holds-a-list", "{tmp}/stats.yaml", "mapping")
def _(ctx):
    (ctx.tmp / "stats.yaml").write_text("- 1\n- 2\n")
    return ["check", ctx.recipe({"data.normalization": {"include": "stats.yaml"}})]


@case("include-bad-yaml", "{tmp}/stats.yaml")
def _(ctx):
    (ctx.tmp / "stats.yaml").write_text("mean: [1, 2\nstd: [1, 1]\n")
    return ["check", ctx.recipe({"data.normalization": {"include": "stats.yaml"}})]


@case("include-itself", "{tmp}/recipe.yaml", "includes itself")
def _(ctx):
    path = ctx.recipe()
    path.write_text("include: recipe.yaml\n" + path.read_text())
    return ["check", path]


@case("include-top-level-missing", "{tmp}/base.yaml")
def _(ctx):
    path = ctx.recipe()
    path.write_text("include: base.yaml\n" + path.read_text())
    return ["check", path]


@case("include-is-a-folder", "{tmp}/stats")
def _(ctx):
    (ctx.tmp / "stats").mkdir()
    return ["check", ctx.recipe({"data.normalization": {"include": "stats"}})]


@case("override-empty-key", "=x")
def _(ctx):
    return ["check", ctx.recipe(), "=x"]


@case("override-double-dot", "a..b=1")
def _(ctx):
    return ["check", ctx.recipe(), "a..b=1"]


@case("override-unknown-key", "model.backbon", "'backbone'")
def _(ctx):
    return ["check", ctx.recipe(), "model.backbon=resnet18"]


@case("override-unclosed-list", "model.bands")
def _(ctx):  # the YAML value `[VV, VH` does not parse; kept as the string '[VV, VH'
    return ["check", ctx.recipe(), "model.bands=[VV, VH"]


@case("override-section-with-a-scalar", "train", "3")
def _(ctx):
    return ["check", ctx.recipe(), "train=3"]


# =============================================================================================
# Keys with wrong types and values
# =============================================================================================
TYPES = [
    ("batch-size-string", {"data.batch_size": "eight"}, ["data.batch_size", "eight"]),
    ("batch-size-negative", {"data.batch_size": -4}, ["data.batch_size", "-4"]),
    ("tile-size-string", {"data.tile_size": "big"}, ["data.tile_size", "big"]),
    ("tile-size-negative", {"data.tile_size": -64}, ["data.tile_size", "-64"]),
    ("num-workers-negative", {"data.num_workers": -1}, ["data.num_workers", "-1"]),
    ("val-fraction-negative", {"data.val_fraction": -0.2}, ["data.val_fraction", "-0.2"]),
    ("stride-zero", {"data.stride": 0}, ["data.stride", "0"]),
    ("eval-batch-size-zero", {"data.eval_batch_size": 0}, ["data.eval_batch_size", "0"]),
    ("classes-empty", {"data.classes": []}, ["data.classes"]),
    ("classes-a-string", {"data.classes": "dry,water"}, ["data.classes", "dry,water"]),
    ("images-a-number", {"data.train.images": 123}, ["data.train.images", "123"]),
    ("train-split-null", {"data.train": None}, ["data.train"]),
    ("nodata-string", {"data.nodata": "none please"}, ["data.nodata", "none please"]),
    ("ignore-index-float", {"data.ignore_index": 1.5}, ["data.ignore_index", "1.5"]),
    ("seed-string", {"train.seed": "lucky"}, ["train.seed", "lucky"]),
    ("max-steps-negative", {"train.max_steps": -10}, ["train.max_steps", "-10"]),
    ("weight-decay-negative", {"train.optimizer.weight_decay": -0.01},
     ["train.optimizer.weight_decay", "-0.01"]),
    ("momentum-string", {"train.optimizer.name": "sgd", "train.optimizer.momentum": "high"},
     ["train.optimizer.momentum", "high"]),
    ("mean-strings", {"data.normalization.mean": ["a", "b"]}, ["data.normalization.mean"]),
    ("value-scale-zero", {"data.normalization.value_scale": 0}, ["value_scale", "0"]),
    ("label-map-string-keys", {"data.label_map": {"water": 1}}, ["data.label_map", "water"]),
    ("wavelengths-negative", {"model.wavelengths": [-5.4, 5.4]}, ["model.wavelengths", "-5.4"]),
    ("wavelengths-strings", {"model.wavelengths": ["C", "C"]}, ["model.wavelengths"]),
    ("band-declared-negative-wavelength", {"model.bands": ["VV", {"name": "X",
                                                                  "wavelength": -1.0}]},
     ["wavelength", "-1"]),
    ("band-names-differ-in-case", {"model.bands": ["VV", "vv"]}, ["model.bands", "VV"]),
    ("num-frames-zero", {"model.num_frames": 0}, ["model.num_frames", "0"]),
    ("window-size-negative", {"model.window_size": -2}, ["model.window_size", "-2"]),
    ("num-classes-string", {"model.num_classes": "two"}, ["model.num_classes", "two"]),
    ("output-plots-string", {"output.plots": "sometimes"}, ["output.plots", "sometimes"]),
    ("head-kwargs-not-a-mapping", {"model.head_kwargs": [1, 2]}, ["model.head_kwargs"]),
    ("head-kwargs-unknown", {"model.head_kwargs": {"decoder_chanels": 32}},
     ["model.head_kwargs", "decoder_chanels"]),
]
for _where, _change, _names, *_marks in TYPES:
    case(f"type-{_where}", *_names, marks=_marks)(
        lambda ctx, ch=_change: ["check", ctx.recipe(ch)])


@case("lr-written-as-1e-3", "recipe OK", code=0)
def _(ctx):  # YAML 1.1 reads `lr: 1e-3` (no dot) as the string '1e-3'
    path = ctx.recipe()
    path.write_text(path.read_text().replace("lr: 0.001", "lr: 1e-3"))
    assert "lr: 1e-3" in path.read_text()
    return ["check", path]


# =============================================================================================
# Data: rasters, bands, grids (rsfm check --data)
# =============================================================================================
@case("image-without-crs-label-with-crs", "{tmp}/images/Ghana_53713.tif", "CRS")
def _(ctx):
    im, lab = ctx.s1_pair()
    rewrite(im / "Ghana_53713.tif", lambda d, p: (d, {**p, "crs": None}))
    return ["check", ctx.chip_recipe(im, lab, {"data.align_labels": True}), "--data"]


@case("html-page-saved-as-label", "{tmp}/labels/Ghana_53713.tif")
def _(ctx):  # a download that returned the login page
    im, lab = ctx.s1_pair()
    (lab / "Ghana_53713.tif").write_text("<!DOCTYPE html><html><body>Sign in</body></html>\n")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("one-chip-with-one-band", "{tmp}/images/Ghana_53713.tif", "VH")
def _(ctx):  # mixed band counts across chips
    im, lab = ctx.s1_pair()
    rewrite(im / "Ghana_53713.tif", lambda d, p: (d[:1], p), ("VV",))
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("one-chip-without-band-names", "{tmp}/images/Ghana_53713.tif")
def _(ctx):  # the other chip's bands are named VV, VH; this one has 3 unnamed bands
    im, lab = ctx.s1_pair()
    rewrite(im / "Ghana_53713.tif", lambda d, p: (np.concatenate([d, d[:1]]), p), ("", "", ""))
    with rasterio.open(im / "Ghana_53713.tif", "r+") as ds:
        ds.descriptions = (None, None, None)
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("band-names-lower-case-in-files", "train", code=0)
def _(ctx):  # 'vv'/'vh' descriptions: the same bands as VV/VH
    im, lab = ctx.s1_pair()
    for f in im.iterdir():
        with rasterio.open(f, "r+") as ds:
            ds.descriptions = ("vv", "vh")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("file-with-a-band-name-twice", "{tmp}/images", "VV")
def _(ctx):
    im, lab = ctx.s1_pair()
    for f in im.iterdir():
        with rasterio.open(f, "r+") as ds:
            ds.descriptions = ("VV", "VV")
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("label-with-two-bands", "{tmp}/labels/Ghana_53713.tif", "2 bands")
def _(ctx):
    im, lab = ctx.s1_pair()
    rewrite(lab / "Ghana_53713.tif", lambda d, p: (np.concatenate([d, 1 - d]), p))
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("scene-smaller-than-one-patch", "{tmp}/images/tiny.tif", "10")
def _(ctx):  # a 10 x 10 scene for a ViT with 16-px patches
    im, lab = ctx.tmp / "images", ctx.tmp / "labels"
    im.mkdir()
    lab.mkdir()
    write_tif(im / "tiny.tif", np.full((2, 10, 10), -10, np.float32), descriptions=["VV", "VH"])
    write_tif(lab / "tiny.tif", np.zeros((1, 10, 10), np.int16))
    return ["train", ctx.recipe({"data.train": {"images": str(im), "labels": str(lab)},
                                 "data.image_suffix": DELETE, "data.label_suffix": DELETE,
                                 "data.val_fraction": 0.0})]


@case("val-images-lack-a-band", "{tmp}/val_images", "VH")
def _(ctx):
    im, lab = ctx.s1_pair()
    vim, vlab = ctx.s1_pair("val_images", "val_labels")
    for f in vim.iterdir():
        rewrite(f, lambda d, p: (d[:1], p), ("VV",))
    return ["check", ctx.chip_recipe(im, lab, {"data.val": {"images": str(vim),
                                                            "labels": str(vlab)}}), "--data"]


@case("images-folder-given-as-labels", "{tmp}/images/Ghana_53713.tif", "Labels outside the classes")
def _(ctx):  # the images folder given twice (images as labels): float dB values as classes
    im, _ = ctx.s1_pair()
    return ["check", ctx.chip_recipe(im, im), "--data"]


# ---------------------------------------------------------------------------- manifests, folders
@case("manifest-row-without-label-cell", "{tmp}/chips.csv")
def _(ctx):
    ctx.s1_pair()
    (ctx.tmp / "chips.csv").write_text("image,label\nimages/Spain_7370579.tif,labels/Spain_7370579.tif\n"
                                       "images/Ghana_53713.tif\n")
    return ["check", ctx.recipe({"data.kind": "chips", "data.train": {
        "manifest": str(ctx.tmp / "chips.csv")}, "data.image_suffix": DELETE,
        "data.label_suffix": DELETE, "data.val_fraction": 0.0}), "--data"]


@case("manifest-image-missing", "{tmp}/images/Nope.tif")
def _(ctx):
    ctx.s1_pair()
    (ctx.tmp / "chips.csv").write_text("image,label\nimages/Nope.tif,labels/Spain_7370579.tif\n")
    return ["check", ctx.recipe({"data.kind": "chips", "data.train": {
        "manifest": str(ctx.tmp / "chips.csv")}, "data.image_suffix": DELETE,
        "data.label_suffix": DELETE, "data.val_fraction": 0.0}), "--data"]


@case("manifest-latin1", "{tmp}/chips.csv")
def _(ctx):  # Excel's "CSV" on Windows
    ctx.s1_pair()
    (ctx.tmp / "chips.csv").write_bytes("image,label,note\nimages/Spain_7370579.tif,"
                                        "labels/Spain_7370579.tif,Espa\xf1a\n".encode("latin-1"))
    return ["check", ctx.recipe({"data.kind": "chips", "data.train": {
        "manifest": str(ctx.tmp / "chips.csv")}, "data.image_suffix": DELETE,
        "data.label_suffix": DELETE, "data.val_fraction": 0.0}), "--data"]


@case("manifest-split-cell-empty", "{tmp}/chips.csv")
def _(ctx):
    ctx.s1_pair()
    (ctx.tmp / "chips.csv").write_text(
        "image,label,split\nimages/Spain_7370579.tif,labels/Spain_7370579.tif,train\n"
        "images/Ghana_53713.tif,labels/Ghana_53713.tif\n")
    return ["check", ctx.recipe({"data.kind": "chips", "data.train": {
        "manifest": str(ctx.tmp / "chips.csv"), "split": "train"}, "data.image_suffix": DELETE,
        "data.label_suffix": DELETE, "data.val_fraction": 0.0}), "--data"]


@case("class-folders-one-class-empty", "water")
def _(ctx):
    root = class_folders(ctx)
    for f in (root / "water").iterdir():
        f.unlink()
    return ["check", ctx.write_yaml(cls_recipe(ctx, root, ctx.tmp / "run")), "--data"]


@case("class-folders-flat-folder", "{tmp}/classes")
def _(ctx):  # images directly in the root, no <class>/ folders
    root = ctx.tmp / "classes"
    root.mkdir()
    shutil.copy(SCENE, root / "a.tif")
    return ["check", ctx.write_yaml(cls_recipe(ctx, root, ctx.tmp / "run")), "--data"]


@case("class-folders-unknown-class-folder", "cloud")
def _(ctx):
    root = class_folders(ctx)
    (root / "cloud").mkdir()
    shutil.copy(SCENE, root / "cloud" / "c.tif")
    return ["check", ctx.write_yaml(cls_recipe(ctx, root, ctx.tmp / "run")), "--data"]


# ---------------------------------------------------------------------------- vector labels
def spacenet_recipe(ctx, labels: Path) -> Path:
    return ctx.recipe(RESNET, {
        "model.bands": [{"name": "PAN"}], "data.file_bands": ["PAN"], "data.kind": "scenes",
        "data.train": {"images": str(SPACENET), "labels": str(labels)},
        "data.classes": ["background", "building"], "data.normalization": {"mode": "per_tile"},
        "data.image_suffix": DELETE, "data.label_suffix": DELETE})


def features(path: Path, geoms: list) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g} for g in geoms]}))
    return path


@case("vector-only-null-geometries", "{tmp}/b.geojson")
def _(ctx):
    return ["check", spacenet_recipe(ctx, features(ctx.tmp / "b.geojson", [None, None])),
            "--data"]


LON, LAT = -84.479, 33.638  # inside the SpaceNet tile


@case("vector-points-for-segmentation", "{tmp}/b.geojson", "Point")
def _(ctx):  # points rasterise to nothing: every tile would be background
    return ["check", spacenet_recipe(ctx, features(ctx.tmp / "b.geojson", [
        {"type": "Point", "coordinates": [LON, LAT]},
        {"type": "Point", "coordinates": [LON + 0.001, LAT]}])), "--data"]


@case("vector-gpkg-that-is-text", "{tmp}/b.gpkg")
def _(ctx):
    (ctx.tmp / "b.gpkg").write_text("not a geopackage")
    return ["check", spacenet_recipe(ctx, ctx.tmp / "b.gpkg"), "--data"]


@case("vector-geojson-truncated", "{tmp}/b.geojson")
def _(ctx):
    (ctx.tmp / "b.geojson").write_text('{"type": "FeatureCollection", "features": [{"type": "Fe')
    return ["check", spacenet_recipe(ctx, ctx.tmp / "b.geojson"), "--data"]


# ---------------------------------------------------------------------------- detection labels
def coco_doc(**over) -> dict:
    doc = {"images": [{"id": 1, "file_name": "OSBS_029.tif", "width": 400, "height": 400}],
           "categories": [{"id": 1, "name": "Tree"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40]}]}
    return {**doc, **over}


def coco_recipe(ctx, doc: dict) -> Path:
    im = ctx.chips([TREES / "images" / "OSBS_029.tif"], "trees")
    (ctx.tmp / "ann.json").write_text(json.dumps(doc))
    return ctx.write_yaml(changed(det_recipe(ctx.tmp / "run", im, ctx.tmp / "ann.json"),
                                  {"data.label_format": "coco"}))


@case("coco-missing-images", "{tmp}/ann.json", "images")
def _(ctx):
    doc = coco_doc()
    del doc["images"]
    return ["check", coco_recipe(ctx, doc), "--data"]


@case("coco-annotation-without-bbox", "{tmp}/ann.json", "bbox")
def _(ctx):
    return ["check", coco_recipe(ctx, coco_doc(annotations=[
        {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 5, 1, 5]]}])),
        "--data"]


@case("coco-unknown-category-id", "{tmp}/ann.json", "category")
def _(ctx):
    return ["check", coco_recipe(ctx, coco_doc(annotations=[
        {"id": 7, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5]}])), "--data"]


@case("coco-bbox-of-three-numbers", "{tmp}/ann.json", "bbox")
def _(ctx):
    return ["check", coco_recipe(ctx, coco_doc(annotations=[
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5]}])), "--data"]


@case("coco-images-not-in-folder", "{tmp}/ann.json", "OSBS_029.tif")
def _(ctx):
    doc = coco_doc()
    doc["images"][0]["file_name"] = "elsewhere.tif"
    return ["check", coco_recipe(ctx, doc), "--data"]


@case("voc-coordinate-not-a-number", "{tmp}/ann/OSBS_029.xml", "xmin")
def _(ctx):
    im, ann = ctx.tree_chips()
    voc(ann / "OSBS_029.xml", [("ten", 10, 50, 50)])
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann)), "--data"]


def yolo_recipe(ctx, text: str) -> Path:
    im = ctx.chips([TREES / "images" / "OSBS_029.tif"], "trees")
    (ctx.tmp / "yolo").mkdir()
    (ctx.tmp / "yolo" / "OSBS_029.txt").write_text(text)
    return ctx.write_yaml(changed(det_recipe(ctx.tmp / "run", im, ctx.tmp / "yolo"),
                                  {"data.label_format": "yolo"}))


@case("yolo-coordinates-out-of-range", "{tmp}/yolo", "outside")
def _(ctx):  # pixel coordinates written where YOLO wants 0..1
    return ["check", yolo_recipe(ctx, "0 200 200 40 40\n0 120 50 30 30\n"), "--data"]


@case("yolo-line-with-three-numbers", "{tmp}/yolo/OSBS_029.txt", "line 2")
def _(ctx):
    return ["check", yolo_recipe(ctx, "0 0.5 0.5 0.1 0.1\n0 0.5 0.5\n"), "--data"]


@case("yolo-class-id-beyond-classes", "{tmp}/yolo/OSBS_029.txt", "3")
def _(ctx):
    return ["check", yolo_recipe(ctx, "3 0.5 0.5 0.1 0.1\n"), "--data"]


@case("yolo-format-given-voc-files", "{tmp}/ann", "yolo")
def _(ctx):
    im, ann = ctx.tree_chips()
    return ["check", ctx.write_yaml(changed(det_recipe(ctx.tmp / "run", im, ann),
                                            {"data.label_format": "yolo"})), "--data"]


# =============================================================================================
# rsfm predict
# =============================================================================================
def predict(ctx, *args: Any, scene: Path = SCENE) -> list[Any]:
    return ["predict", ctx.trained, scene, "-o", ctx.tmp / "o.tif", "--quiet", *args]


PREDICT_OPTIONS = [
    # (the messages use the Python argument names: batch_size for --batch-size)
    ("batch-size-zero", ["--batch-size", "0"], ["batch_size", "0"]),
    ("batch-size-negative", ["--batch-size", "-2"], ["batch_size", "-2"]),
    ("tile-size-zero", ["--tile-size", "0"], ["tile_size", "0"]),
    ("tile-size-negative", ["--tile-size", "-64"], ["tile_size", "-64"]),
    ("overlap-negative", ["--overlap", "-8"], ["overlap", "-8"]),
    ("min-object-size-negative", ["--min-object-size", "-3"], ["min_object_size", "-3"]),
    ("fill-holes-negative", ["--fill-holes", "-1"], ["fill-holes", "-1"]),
    ("threshold-negative", ["--threshold", "-0.5"], ["threshold", "-0.5"]),
    ("score-threshold-above-one", ["--score-threshold", "1.5"], ["score_threshold", "1.5"]),
    ("file-bands-only-commas", ["--file-bands", ","], ["file_bands"]),
    ("file-bands-twice", ["--file-bands", "VV,VV"], ["VH", "['VV', 'VV']"]),
    ("device-cuda-index-without-gpu", ["--device", "cuda:3"], ["--device", "cuda:3"]),
]
for _where, _args, _names, *_marks in PREDICT_OPTIONS:
    case(f"predict-{_where}", *_names, marks=_marks)(lambda ctx, a=_args: predict(ctx, *a))


@case("predict-precision-fp16-on-cpu", "fp16", code=0)
def _(ctx):  # README: unsupported autocast warns and uses fp32
    return predict(ctx, "--precision", "fp16", "--device", "cpu")


@case("predict-onto-a-users-geotiff", "{tmp}/dem.tif")
def _(ctx):  # an existing raster that is not an rsfm prediction (and not an input)
    write_tif(ctx.tmp / "dem.tif", np.arange(64 * 64, dtype=np.float32).reshape(64, 64))
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "dem.tif", "--quiet"]


@case("predict-output-in-read-only-file-system", "'/proc'", "cannot be written")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", "/proc/o.tif", "--quiet"]


@case("predict-output-folder-read-only", "{tmp}/locked", marks=NOT_ROOT)
def _(ctx):
    (ctx.tmp / "locked").mkdir()
    (ctx.tmp / "locked").chmod(0o555)
    ctx.request.addfinalizer(lambda: (ctx.tmp / "locked").chmod(0o755))
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "locked" / "o.tif", "--quiet"]


@case("predict-folder-with-no-rasters", "{tmp}/scenes")
def _(ctx):
    (ctx.tmp / "scenes").mkdir()
    (ctx.tmp / "scenes" / "README.txt").write_text("scenes go here\n")
    (ctx.tmp / "scenes" / "index.json").write_text("{}\n")
    return ["predict", ctx.trained, ctx.tmp / "scenes", "-o", ctx.tmp / "out", "--quiet"]


@case("predict-folder-with-a-junk-tif", "{tmp}/scenes/zz_junk.tif")
def _(ctx):  # the junk is checked before the good scene runs: nothing written
    (ctx.tmp / "scenes").mkdir()
    shutil.copy(SCENE, ctx.tmp / "scenes" / "a.tif")
    (ctx.tmp / "scenes" / "zz_junk.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    return ["predict", ctx.trained, ctx.tmp / "scenes", "-o", ctx.tmp / "out", "--quiet"]


@case("predict-scene-without-crs", "o.tif", code=0)
def _(ctx):  # an un-georeferenced scene still predicts (a pixel-grid output)
    path = s1_copy(ctx)
    rewrite(path, lambda d, p: (d, {**p, "crs": None}))
    return ["predict", ctx.trained, path, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-model-is-a-text-file-named-pt2", "{tmp}/model.pt2")
def _(ctx):
    (ctx.tmp / "model.pt2").write_text("not a program")
    return ["predict", ctx.tmp / "model.pt2", SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-model-is-a-text-file-named-onnx", "{tmp}/model.onnx")
def _(ctx):
    (ctx.tmp / "model.onnx").write_text("not a model")
    return ["predict", ctx.tmp / "model.onnx", SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("predict-model-is-a-geotiff", "{tmp}/scene.tif")
def _(ctx):  # model and scene swapped
    s1_copy(ctx)
    return ["predict", ctx.tmp / "scene.tif", ctx.trained, "-o", ctx.tmp / "o.tif", "--quiet"]


def edit_config(run: Path, fn: Callable[[dict], None]) -> Path:
    doc = json.loads((run / "config.json").read_text())
    fn(doc)
    (run / "config.json").write_text(json.dumps(doc))
    return run


@case("config-json-missing-input", "{tmp}/run/config.json", "input")
def _(ctx):
    run = edit_config(ctx.run_copy(), lambda d: d.pop("input"))
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("config-json-future-format", "{tmp}/run/config.json", "format")
def _(ctx):
    run = edit_config(ctx.run_copy(), lambda d: d.update(format=99))
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("config-json-unknown-head", "{tmp}/run/config.json", "fcnn", "'fcn'")
def _(ctx):
    run = edit_config(ctx.run_copy(), lambda d: d["model"].update(head="fcnn"))
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("config-json-unknown-backbone", "{tmp}/run/config.json", "dofa_bse", "dofa_base")
def _(ctx):
    run = edit_config(ctx.run_copy(), lambda d: d["model"].update(backbone="dofa_bse"))
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("config-json-num-classes-vs-weights", "{tmp}/run/model.safetensors")
def _(ctx):  # hand-edited to 3 classes: the head's weights have 2 rows
    def edit(d):
        d["model"]["num_classes"] = 3
        d["input"]["classes"].append({**d["input"]["classes"][0], "name": "cloud"})
    run = edit_config(ctx.run_copy(), edit)
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("config-json-is-a-list", "{tmp}/run/config.json")
def _(ctx):
    run = ctx.run_copy()
    (run / "config.json").write_text("[]")
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("run-without-model-safetensors", "{tmp}/run", "model.safetensors")
def _(ctx):
    run = ctx.run_copy()
    (run / "model.safetensors").unlink()
    (run / "last_model.safetensors").unlink()
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("weights-of-another-model", "{tmp}/run/model.safetensors")
def _(ctx):  # model.safetensors replaced by a ResNet's weights
    import torch
    from safetensors.torch import save_file

    run = ctx.run_copy()
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, run / "model.safetensors")
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


# =============================================================================================
# rsfm evaluate
# =============================================================================================
@case("evaluate-recipe-classes-disagree", "recipe", "'cloud'", "['dry', 'water']")
def _(ctx):
    im, lab = ctx.s1_pair()
    recipe = ctx.chip_recipe(im, lab, {"data.test": {"images": str(im), "labels": str(lab)},
                                       "model.num_classes": 3,
                                       "data.classes": ["dry", "water", "cloud"]})
    return ["evaluate", ctx.trained, recipe, "--split", "test", "-o", ctx.tmp / "ev", "--quiet"]


@case("evaluate-recipe-bands-order-differs", "miou", code=0, may_change=("ev",))
def _(ctx):
    im, lab = ctx.s1_pair()
    recipe = ctx.chip_recipe(im, lab, {"data.test": {"images": str(im), "labels": str(lab)},
                                       "model.bands": ["VH", "VV"]})
    return ["evaluate", ctx.trained, recipe, "--split", "test", "-o", ctx.tmp / "ev", "--quiet"]


@case("evaluate-label-size-differs", "{tmp}/labels/Ghana_53713.tif", "size")
def _(ctx):
    im, lab = ctx.s1_pair()
    write_tif(lab / "Ghana_53713.tif", np.zeros((1, 100, 128), np.int16))
    return ["evaluate", ctx.trained, "--images", im, "--labels", lab, "-o", ctx.tmp / "ev",
            "--quiet"]


@case("evaluate-set-without-equals", "data.test")
def _(ctx):
    return ["evaluate", ctx.trained, "--set", "data.test", "-o", ctx.tmp / "ev", "--quiet"]


@case("evaluate-set-unknown-key", "data.tset", "'test'")
def _(ctx):
    return ["evaluate", ctx.trained, "--set", "data.tset.images=x", "-o", ctx.tmp / "ev",
            "--quiet"]


@case("evaluate-batch-size-zero", "batch_size", "0")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["evaluate", ctx.trained, "--images", im, "--labels", lab, "--batch-size", "0",
            "-o", ctx.tmp / "ev", "--quiet"]


@case("evaluate-images-folder-empty", "{tmp}/images")
def _(ctx):
    (ctx.tmp / "images").mkdir()
    (ctx.tmp / "labels").mkdir()
    return ["evaluate", ctx.trained, "--images", ctx.tmp / "images", "--labels",
            ctx.tmp / "labels", "-o", ctx.tmp / "ev", "--quiet"]


@case("evaluate-detector-with-raster-labels", "{tmp}/labels", "detection")
def _(ctx):  # a segmentation mask folder given as a detector's labels
    im = ctx.chips([TREES / "images" / "OSBS_029.tif"], "images")
    lab = ctx.tmp / "labels"
    lab.mkdir()
    write_tif(lab / "OSBS_029.tif", np.zeros((1, 400, 400), np.uint8))
    return ["evaluate", ctx.detector, "--images", im, "--labels", lab, "-o", ctx.tmp / "ev",
            "--quiet"]


@case("evaluate-out-is-a-file", "{tmp}/ev")
def _(ctx):
    im, lab = ctx.s1_pair()
    (ctx.tmp / "ev").write_text("mine")
    return ["evaluate", ctx.trained, "--images", im, "--labels", lab, "-o", ctx.tmp / "ev",
            "--quiet"]


# =============================================================================================
# rsfm export
# =============================================================================================
@case("export-unknown-suffix", "{tmp}/model.xyz", "format")
def _(ctx):
    return ["export", ctx.trained, "-o", ctx.tmp / "model.xyz"]


@case("export-size-zero", "size", "0")
def _(ctx):
    return ["export", ctx.trained, "-o", ctx.tmp / "m.pt2", "--size", "0"]


@case("export-size-negative", "size -64")
def _(ctx):
    return ["export", ctx.trained, "-o", ctx.tmp / "m.pt2", "--size", "-64"]


@case("export-multiple-zero", "multiple", "0")
def _(ctx):
    return ["export", ctx.trained, "-o", ctx.tmp / "m.pt2", "--multiple", "0"]


@case("export-atol-negative", "atol", "-1")
def _(ctx):
    return ["export", ctx.trained, "-o", ctx.tmp / "m.pt2", "--atol", "-1"]


@case("export-format-disagrees-with-suffix", "{tmp}/m.pt2", "onnx")
def _(ctx):
    return ["export", ctx.trained, "--format", "onnx", "-o", ctx.tmp / "m.pt2"]


@case("export-run-without-weights", "{tmp}/run", "model.safetensors")
def _(ctx):
    run = ctx.run_copy()
    (run / "model.safetensors").unlink()
    (run / "last_model.safetensors").unlink()
    return ["export", run, "-o", ctx.tmp / "m.pt2"]


# =============================================================================================
# rsfm stats
# =============================================================================================
@case("stats-all-nodata-file", str(ALL_NAN), "nodata")
def _(ctx):
    return ["stats", ALL_NAN, "-o", ctx.tmp / "stats.yaml"]


@case("stats-files-with-different-band-counts", str(DATA / "landsat7" / "RGB.byte.crop.tif"))
def _(ctx):
    return ["stats", SCENE, DATA / "landsat7" / "RGB.byte.crop.tif", "-o", ctx.tmp / "s.yaml"]


@case("stats-band-twice", "VV", "twice")
def _(ctx):
    return ["stats", SCENE, "--bands", "VV", "VV", "-o", ctx.tmp / "s.yaml"]


@case("stats-band-index-zero", "0")
def _(ctx):  # 1-based indexes
    return ["stats", SCENE, "--bands", "0", "-o", ctx.tmp / "s.yaml"]


@case("stats-text-file-named-tif", "{tmp}/scene.tif")
def _(ctx):
    (ctx.tmp / "scene.tif").write_text("hello")
    return ["stats", ctx.tmp / "scene.tif", "-o", ctx.tmp / "s.yaml"]


@case("stats-output-on-read-only-file-system", "/proc/s.yaml")
def _(ctx):
    return ["stats", SCENE, "-o", "/proc/s.yaml"]


@case("stats-nodata-not-a-number", "--nodata", "none")
def _(ctx):
    return ["stats", SCENE, "--nodata", "none", "-o", ctx.tmp / "s.yaml"]


@case("stats-file-bands-count-wrong", "file_bands", "3")
def _(ctx):
    path = s1_copy(ctx)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = (None, None)
    return ["stats", path, "--file-bands", "VV", "VH", "HH", "-o", ctx.tmp / "s.yaml"]


# =============================================================================================
# rsfm convert
# =============================================================================================
@case("convert-a-geotiff", "{tmp}/scene.tif")
def _(ctx):
    return ["convert", "terratorch", s1_copy(ctx)]


@case("convert-an-rsfm-recipe", "{tmp}/recipe.yaml", "model.class_path")
def _(ctx):  # already a recipe: convert has nothing to do
    return ["convert", "terratorch", ctx.recipe()]


@case("convert-top-level-list", "{tmp}/tt.yaml")
def _(ctx):
    (ctx.tmp / "tt.yaml").write_text("- model\n- data\n")
    return ["convert", "terratorch", ctx.tmp / "tt.yaml"]


@case("convert-unknown-backbone", "prithvi_eo_v9_300", "backbone")
def _(ctx):
    text = (TERRATORCH / "sen1floods11_generic_fcn.yaml").read_text()
    import re

    name = re.search(r"backbone:\s*(\S+)", text).group(1)
    (ctx.tmp / "tt.yaml").write_text(text.replace(name, "prithvi_eo_v9_300"))
    return ["convert", "terratorch", ctx.tmp / "tt.yaml"]


@case("convert-output-is-a-folder", "{tmp}/out")
def _(ctx):
    (ctx.tmp / "out").mkdir()
    return ["convert", "terratorch", TERRATORCH / "sen1floods11_generic_fcn.yaml", "-o",
            ctx.tmp / "out"]


# =============================================================================================
# rsfm push
# =============================================================================================
@case("push-repo-id-with-spaces", "my model")
def _(ctx):
    return ["push", ctx.trained, "--repo-id", "me/my model"]


@case("push-run-without-weights", "{tmp}/run", "model.safetensors")
def _(ctx):
    run = ctx.run_copy()
    (run / "model.safetensors").unlink()
    (run / "last_model.safetensors").unlink()
    return ["push", run, "--repo-id", "me/model"]


@case("push-lora-only-without-lora", "no LoRA adapter")
def _(ctx):
    return ["push", ctx.trained, "--repo-id", "me/model", "--lora-only"]


# =============================================================================================
# rsfm train
# =============================================================================================
@case("resume-run-of-another-task", "{tmp}/run", "task")
def _(ctx):  # a classification recipe pointed at a segmentation run
    run = ctx.run_copy()
    root = class_folders(ctx)
    return ["train", ctx.write_yaml(cls_recipe(ctx, root, run)), "--resume"]


@case("train-fp16-on-cpu", "fp16", new_files=True, code=0)
def _(ctx):
    return ["train", ctx.recipe({"train.mixed_precision": "fp16"})]


@case("train-weights-file-of-another-architecture", "{tmp}/w.safetensors")
def _(ctx):
    import torch
    from safetensors.torch import save_file

    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, ctx.tmp / "w.safetensors")
    return ["train", ctx.recipe({"model.weights": str(ctx.tmp / "w.safetensors"),
                                 "model.backbone_kwargs": {}})]


# =============================================================================================
# Python API: create_backbone, create_model, from_pretrained
# =============================================================================================
TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def _cb(*args, **kw):
    import rsfm

    return lambda: rsfm.create_backbone(*args, **kw)


def _cm(*args, **kw):
    import rsfm

    return lambda: rsfm.create_model(*args, **kw)


API_BUILD = [
    ("create-backbone-close-match", _cb("prithvi_eo_v2_30m"),
     ["prithvi_eo_v2_30m", "prithvi_eo_v2_300m"]),
    ("create-backbone-alias-typo", _cb("dofa_base_patch16_22"), ["dofa_base_patch16_22", "dofa"]),
    ("create-backbone-band-twice", _cb("resnet18", bands=["RED", "RED", "GREEN"]),
     ["RED", "twice"]),
    ("create-backbone-band-twice-other-case", _cb("resnet18", bands=["RED", "red", "GREEN"]),
     ["RED", "twice"]),
    ("create-backbone-band-typo", _cb("resnet18", bands=["RED", "GREN", "BLUE"]),
     ["GREN", "GREEN"]),
    ("create-backbone-bands-a-string", _cb("resnet18", bands="RGB"), ["bands", "RGB"]),
    ("create-backbone-empty-bands", _cb("resnet18", bands=[]), ["bands"]),
    ("create-backbone-negative-wavelength", _cb("dofa_base", wavelengths=[-0.5, 0.6], **TINY),
     ["wavelength", "-0.5"]),
    ("create-backbone-nan-wavelength", _cb("dofa_base", wavelengths=[float("nan"), 0.6], **TINY),
     ["wavelength", "nan"]),
    ("create-backbone-wavelength-string", _cb("dofa_base", wavelengths=["blue", 0.6], **TINY),
     ["wavelength", "blue"]),
    ("create-backbone-wavelengths-count", _cb("dofa_base", bands=["B02", "B03", "B04"],
                                              wavelengths=[0.5], **TINY),
     ["1 wavelengths", "3 bands"]),
    ("create-backbone-unknown-override", _cb("resnet18", dept=2), ["dept", "depth"]),
    ("create-backbone-num-frames-zero", _cb("prithvi_eo_v1_100m", num_frames=0, **TINY),
     ["num_frames", "0"]),
    ("create-backbone-window-size-negative", _cb("dofa_base", window_size=-3, **TINY),
     ["window_size", "-3"]),
    ("create-backbone-out-indices-beyond-depth", _cb("dofa_base", out_indices=[7], **TINY),
     ["out_indices", "7"]),
    ("create-backbone-weights-missing", _cb("resnet18", weights="/no/such/file.pt"),
     ["/no/such/file.pt"]),
    ("create-model-task-typo", _cm("segmentaton", "resnet18", head="unet", num_classes=2),
     ["segmentaton", "'segmentation'"]),
    ("create-model-zero-classes", _cm("segmentation", "resnet18", head="unet", num_classes=0),
     ["num_classes", "0"]),
    ("create-model-head-typo", _cm("segmentation", "resnet18", head="unt", num_classes=2),
     ["unt", "'unet'"]),
    ("create-model-head-option-typo", _cm("segmentation", "resnet18", head="unet", num_classes=2,
                                          decoder_chanels=[64]),
     ["decoder_chanels", "decoder_channels"]),
    ("create-model-classes-vs-num-classes", _cm("segmentation", "resnet18", head="unet",
                                                num_classes=2, classes=["a", "b", "c"]),
     ["classes", "num_classes"]),
    ("create-model-empty-bands", _cm("segmentation", "resnet18", head="unet", num_classes=2,
                                     bands=[]), ["bands", "empty"]),
    ("create-model-dict-key-typo", _cm({"task": "segmentation", "backbone": "resnet18",
                                        "head": "unet", "num_clases": 2}),
     ["num_clases", "'num_classes'"]),
    ("create-model-unknown-backbone", _cm("segmentation", "resnet5O", head="unet", num_classes=2),
     ["resnet5O", "resnet50"]),
]
for _where, _fn, _names, *_marks in API_BUILD:
    api_case(_where, *_names, marks=_marks)(lambda ctx, f=_fn: f)


@api_case("from-pretrained-missing-folder", "{tmp}/nope")
def _(ctx):
    import rsfm

    return lambda: rsfm.from_pretrained(ctx.tmp / "nope")


@api_case("from-pretrained-a-recipe-file", "{tmp}/recipe.yaml", "recipe")
def _(ctx):
    import rsfm

    recipe = ctx.recipe()
    return lambda: rsfm.from_pretrained(recipe)


@api_case("from-pretrained-weights-typo", "bets", "'best'")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.from_pretrained(run, weights="bets")


@api_case("from-pretrained-device-typo", "device", "gpu")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.from_pretrained(run, device="gpu")


@api_case("from-pretrained-run-with-truncated-config", "{tmp}/run/config.json")
def _(ctx):
    import rsfm

    run = ctx.run_copy()
    (run / "config.json").write_text('{"model": {"task": "segm')
    return lambda: rsfm.from_pretrained(run)


# =============================================================================================
# Python API: rsfm.train, rsfm.predict, rsfm.evaluate
# =============================================================================================
@api_case("train-recipe-missing", "{tmp}/nope.yaml")
def _(ctx):
    import rsfm

    return lambda: rsfm.train(ctx.tmp / "nope.yaml")


@api_case("train-dict-with-typo", "trian", "'train'")
def _(ctx):
    import rsfm

    recipe = changed(seg_recipe(ctx.tmp / "run"), {"trian": {"epochs": 1}})
    return lambda: rsfm.train(recipe)


@api_case("train-bad-value-before-any-file", "train.epochs", "0")
def _(ctx):
    import rsfm

    recipe = changed(seg_recipe(ctx.tmp / "run"), {"train.epochs": 0})
    return lambda: rsfm.train(recipe)


@api_case("predict-scene-missing", "{tmp}/nope.tif")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.predict(run, ctx.tmp / "nope.tif", ctx.tmp / "o.tif")


@api_case("predict-numpy-array", "ndarray")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.predict(run, np.zeros((2, 64, 64), np.float32), ctx.tmp / "o.tif")


@api_case("predict-file-bands-as-a-string", "file_bands", "VV,VH")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.predict(run, SCENE, ctx.tmp / "o.tif", file_bands="VV,VH")


@api_case("predict-option-typo", "tile_sise", "tile_size")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.predict(run, SCENE, ctx.tmp / "o.tif", tile_sise=64)


@api_case("evaluate-split-typo", "tset", "'test'")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.evaluate(run, split="tset", write=False)


@api_case("evaluate-overrides-as-a-string", "data.val_fraction=0.5")
def _(ctx):
    import rsfm

    run = ctx.trained
    return lambda: rsfm.evaluate(run, split="val", write=False,
                                 overrides="data.val_fraction=0.5")


# =============================================================================================
# Python API: rsfm.learn (prepare_data, Learner)
# =============================================================================================
@pytest.fixture(scope="module")
def s1_data():
    from rsfm.learn import prepare_data

    return prepare_data(S1, images="S1Hand", labels="LabelHand", classes=["dry", "water"],
                        chip_size=64, batch_size=2, label_ignore_values=[-1])


def _learner(ctx):
    from rsfm.learn import UNet

    data = ctx.request.getfixturevalue("s1_data")
    return UNet(data, backbone="resnet18", pretrained=False, out=ctx.tmp / "run")


def _prepare(**kw):
    def build(ctx):
        from rsfm.learn import prepare_data

        return lambda: prepare_data(S1, images="S1Hand", labels="LabelHand", chip_size=64, **kw)
    return build


LEARN_PREPARE = [
    ("prepare-data-val-split-above-one", {"val_split": 1.5}, ["val_split", "1.5"]),
    ("prepare-data-batch-size-zero", {"batch_size": 0}, ["batch_size", "0"]),
    ("prepare-data-augment-a-string", {"augment": "yes"}, ["augment", "yes"]),
    ("prepare-data-normalization-typo", {"normalization": "stat"}, ["normalization", "stat"]),
    ("prepare-data-unknown-keyword", {"tile_sise": 64}, ["tile_sise", "'tile_size'"]),
    ("prepare-data-task-typo", {"task": "segmentaton"}, ["segmentaton", "segmentation"]),
    ("prepare-data-unknown-band", {"bands": ["VV", "XX"]}, ["XX"]),
]
for _where, _kw, _names, *_marks in LEARN_PREPARE:
    api_case(_where, *_names, marks=_marks)(_prepare(**_kw))


@api_case("prepare-data-images-folder-typo", "S1Hnd", "S1Hand")
def _(ctx):
    from rsfm.learn import prepare_data

    return lambda: prepare_data(S1, images="S1Hnd", labels="LabelHand", chip_size=64)


@api_case("prepare-data-path-missing", "{tmp}/nope")
def _(ctx):
    from rsfm.learn import prepare_data

    return lambda: prepare_data(ctx.tmp / "nope")


@api_case("learner-predict-before-fit", "fit()")
def _(ctx):
    model = _learner(ctx)
    return lambda: model.predict(SCENE, out=ctx.tmp / "o.tif")


@api_case("learner-metrics-before-fit", "fit()")
def _(ctx):
    return _learner(ctx).metrics


@api_case("learner-save-before-fit", "fit()")
def _(ctx):
    model = _learner(ctx)
    return lambda: model.save(ctx.tmp / "saved")


@api_case("learner-evaluate-before-fit", "fit()")
def _(ctx):
    model = _learner(ctx)
    return lambda: model.evaluate("val")


@api_case("learner-fit-zero-epochs", "epochs", "0")
def _(ctx):
    model = _learner(ctx)
    return lambda: model.fit(0, lr=1e-3, verbose=False)


@api_case("learner-fit-lr-a-word", "lr", "fast")
def _(ctx):
    model = _learner(ctx)
    return lambda: model.fit(1, lr="fast", verbose=False)


@api_case("learner-fit-max-time-words", "max_time", "soon")
def _(ctx):
    model = _learner(ctx)
    return lambda: model.fit(lr=1e-3, max_time="soon", verbose=False)


@api_case("learner-backbone-typo", "resnt18", "resnet18")
def _(ctx):
    from rsfm.learn import UNet

    data = ctx.request.getfixturevalue("s1_data")
    return lambda: UNet(data, backbone="resnt18", pretrained=False, out=ctx.tmp / "run")


@api_case("learner-classifier-on-segmentation-data", "Classifier", "UNet")
def _(ctx):
    from rsfm.learn import Classifier

    data = ctx.request.getfixturevalue("s1_data")
    return lambda: Classifier(data, pretrained=False, out=ctx.tmp / "run")


@api_case("learner-from-run-missing", "{tmp}/nope")
def _(ctx):
    from rsfm.learn import Learner

    return lambda: Learner.from_run(ctx.tmp / "nope")


@api_case("learner-out-holds-another-run", "{tmp}/run", "already holds a run")
def _(ctx):
    from rsfm.learn import UNet

    run = ctx.run_copy()
    data = ctx.request.getfixturevalue("s1_data")
    return lambda: UNet(data, backbone="resnet18", pretrained=False, out=run)


# =============================================================================================
# Faults: a full disk (RLIMIT_FSIZE: writes fail with EFBIG, as ENOSPC would) and Ctrl-C
# =============================================================================================
def _limited(nbytes: int) -> Callable[[], None]:
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit


DISK_FULL = [
    # (id, argv builder, byte limit, culprits, new files allowed, marks)
    ("predict", lambda ctx: ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"],
     1000, ["o.tif"], False),
    ("stats", lambda ctx: ["stats", SCENE, "-o", ctx.tmp / "s.yaml"], 50, ["s.yaml"], False),
    ("train", lambda ctx: ["train", ctx.recipe()], 1_000_000, ["{tmp}/run"], True),
    ("export", lambda ctx: ["export", ctx.trained, "-o", ctx.tmp / "m.pt2"], 100_000, ["m.pt2"],
     False),
]


@pytest.mark.parametrize(("builder", "limit", "names", "new_files"), [
    pytest.param(b, n, names, new, id=f"disk-full-{i}", marks=m)
    for i, b, n, names, new, *m in DISK_FULL])
def test_disk_full(builder, limit, names, new_files, tmp_path, request, monkeypatch):
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    ctx = Ctx(work, request)
    argv = [str(a) for a in builder(ctx)]
    tracebacks = tmp_path / "tracebacks"
    watched = [work, DATA, *ctx.extra_watch]
    before = snapshot(watched)
    proc = subprocess.run([sys.executable, "-m", "rsfm", *argv], capture_output=True, text=True,
                          timeout=300, preexec_fn=_limited(limit), check=False,
                          env={**os.environ, "RSFM_TRACEBACK_DIR": str(tracebacks)})
    after = snapshot(watched)
    shown = f"rsfm {' '.join(argv)} (exit {proc.returncode})\n{proc.stderr[-3000:]}"
    _show(request.node.name, proc.returncode, proc.stderr[-2000:])
    assert proc.returncode == 2, shown
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr, shown
    for name in names:
        assert name.replace("{tmp}", str(work)) in proc.stderr, f"{name!r} not named\n{shown}"
    assert not [p for p in before if after.get(p) != before[p]], shown
    if not new_files:
        assert not set(after) - set(before), shown


def test_ctrl_c_during_predict_keeps_the_earlier_output(request, tmp_path):
    """SIGINT in the middle of a prediction: exit 130 and 'interrupted', no traceback, the earlier
    prediction under the final name untouched and no temporary leftovers."""
    run = request.getfixturevalue("trained")
    rng = np.random.default_rng(0)
    big = write_tif(tmp_path / "big.tif", rng.normal(-12, 4, (2, 2048, 2048)).astype(np.float32),
                    descriptions=["VV", "VH"])
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "RSFM_TRACEBACK_DIR": str(tmp_path / "tb")}
    first = subprocess.run([sys.executable, "-m", "rsfm", "predict", str(run), str(SCENE),
                            "-o", str(out / "o.tif"), "--quiet"], capture_output=True, text=True,
                           env=env, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    before = snapshot([out])
    proc = subprocess.Popen([sys.executable, "-m", "rsfm", "predict", str(run), str(big),
                             "-o", str(out / "o.tif"), "--quiet", "--tile-size", "32",
                             "--batch-size", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while (not [p for p in out.iterdir() if p.name.startswith(".")] and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.1)
    time.sleep(1.0)  # tiles are being written into the temporary folder
    assert proc.poll() is None, "the prediction ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "tb").exists()
    assert snapshot([out]) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in before)


def test_hidden_catalogue_size():
    assert len(CASES) + len(API_CASES) >= 100
    ids = [p.id for p in (*CASES, *API_CASES)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# =============================================================================================
# More recipe keys and data (round 2)
# =============================================================================================
MORE = [
    ("sensor-typo", {"data.sensor": "sentinel3"}, ["data.sensor", "sentinel3"]),
    ("file-bands-unknown-name", {"data.file_bands": ["VV", "VX"]}, ["'VH'", "['VV', 'VX']"]),
    ("index-without-its-bands", RESNET | {"data.indices": ["NDVI"]}, ["NDVI", "NIR_NARROW"]),
    ("weights-is-a-folder", {"model.weights": str(S1), "model.backbone_kwargs": {}},
     [str(S1), "folder"]),
    ("score-threshold-above-one", {"eval.score_threshold": 1.5}, ["eval.score_threshold", "1.5"]),
    ("name-with-dot-dot", {"name": "../../elsewhere", "output.dir": "runs/{name}"},
     ["name", "../../elsewhere"]),
]
for _where, _change, _names, *_marks in MORE:
    case(f"more-{_where}", *_names, marks=_marks)(
        lambda ctx, ch=_change: ["check", ctx.recipe(ch), "--data"])


@case("predict-output-jpg-for-segmentation", "'o.jpg'", "{tmp}/o.tif")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.jpg", "--quiet"]


@case("predict-path-with-spaces-and-accents", "o.tif", code=0)
def _(ctx):
    (ctx.tmp / "my scènes").mkdir()
    shutil.copy(SCENE, ctx.tmp / "my scènes" / "España 1.tif")
    return ["predict", ctx.trained, ctx.tmp / "my scènes" / "España 1.tif", "-o",
            ctx.tmp / "out put" / "o.tif", "--quiet"]


@case("evaluate-label-values-outside-classes", "{tmp}/labels", "255")
def _(ctx):  # 0/255 masks: rsfm check --data refuses them; evaluate scored them as ignored?
    im, lab = ctx.s1_pair()
    for f in lab.iterdir():
        rewrite(f, lambda d, p: (np.where(d > 0, 255, 0).astype(np.int16), p))
    return ["evaluate", ctx.trained, "--images", im, "--labels", lab, "-o", ctx.tmp / "ev",
            "--quiet"]


@case("label-nodata-is-a-class-value", "recipe OK", code=0)
def _(ctx):  # the label files declare nodata=0, which is class 0 ('dry'): still read as class 0
    im, lab = ctx.s1_pair()
    for f in lab.iterdir():
        rewrite(f, lambda d, p: (d, {**p, "nodata": 0}))
    return ["check", ctx.chip_recipe(im, lab), "--data"]
