"""A third catalogue of bad inputs and faults (the "hidden" round 2): training-time faults and the
run folder, multi-frame Prithvi inputs, detection and classification data, the Hub, the notebook
API and exported models. Same harness as ``tests/test_bad_inputs_hidden.py`` (imported, not
copied): command-line cases through :func:`case` and Python API cases through :func:`api_case`.

Cases that rsfm does not handle yet are marked ``xfail(strict=True)`` with what goes wrong, so the
suite stays green until they are fixed (then the mark must go).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_bad_inputs_hidden as hidden
from rasterio.transform import from_origin
from test_bad_inputs import (  # noqa: F401 - trained/detector are fixtures used through Ctx
    DATA,
    DELETE,
    RESNET,
    SCENE,
    TREES,
    Ctx,
    changed,
    det_recipe,
    detector,
    seg_recipe,
    trained,
    voc,
    write_tif,
)
from test_bad_inputs_hidden import (  # noqa: F401 - s1_data is a fixture used by _learner
    Case,
    class_folders,
    cls_recipe,
    coco_doc,
    coco_recipe,
    s1_data,
    xfail,
)

S1 = DATA / "sen1floods11"
GHANA = S1 / "S1Hand" / "Ghana_53713_S1Hand.tif"
# what a training into an existing run folder may rewrite (everything rsfm owns in it)
RUN_FILES = ("run/checkpoints/", "run/model.safetensors", "run/last_model.safetensors",
             "run/config.json", "run/metrics.jsonl", "run/metrics.csv", "run/recipe",
             "run/plots/", "run/README.md")

CASES: list[Any] = []


def case(id: str, *names: str, code: int = 2, marks: Any = (), new_files: bool = False,
         subprocess: bool = False, may_change: tuple[str, ...] = ()) -> Callable:
    def deco(fn: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        CASES.append(pytest.param(Case(id=id, build=fn, names=names, code=code,
                                       new_files=new_files or code == 0, subprocess=subprocess,
                                       may_change=may_change), id=id, marks=marks))
        return fn
    return deco


@pytest.mark.parametrize("c", CASES)
def test_hidden2_bad_input(c, tmp_path, request, capsys, caplog, monkeypatch):
    hidden.test_hidden_bad_input(c, tmp_path, request, capsys, caplog, monkeypatch)


API_CASES: list[Any] = []


def api_case(id: str, *names: str, marks: Any = ()) -> Callable:
    def deco(fn: Callable[[Ctx], Callable[[], Any]]) -> Callable[[Ctx], Callable[[], Any]]:
        API_CASES.append(pytest.param(hidden.ApiCase(id, fn, names), id=id, marks=marks))
        return fn
    return deco


@pytest.mark.parametrize("c", API_CASES)
def test_hidden2_bad_api_call(c, tmp_path, request, monkeypatch):
    hidden.test_hidden_bad_api_call(c, tmp_path, request, monkeypatch)


# ------------------------------------------------------------------------------------ fixtures
TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:
    """A finished one-step run of the tiny DOFA with a rank-2 LoRA."""
    from rsfm.train.loop import train

    run = tmp_path_factory.mktemp("lora") / "run"
    train(changed(seg_recipe(run), {"lora": {"r": 2, "alpha": 4}}))
    assert (run / "config.json").is_file()
    return run


@pytest.fixture(scope="module")
def prithvi2(tmp_path_factory) -> Path:
    """A saved (untrained) 2-frame tiny Prithvi segmentation model on VV/VH."""
    import torch

    from rsfm.factory import create_model
    from rsfm.hub import save_pretrained

    torch.manual_seed(0)
    model = create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=2,
                         bands=["VV", "VH"], num_frames=2, backbone_kwargs=TINY,
                         neck={"out_channels": 32}, classes=["dry", "water"])
    folder = tmp_path_factory.mktemp("prithvi2") / "p2"
    save_pretrained(model, folder)
    return folder


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory, request) -> Path:
    """The trained tiny DOFA exported to ONNX (64-px tiles)."""
    from rsfm.cli import main

    run = request.getfixturevalue("trained")
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    assert main(["export", str(run), "-o", str(out), "--size", "64"]) == 0
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A rsfm.learn UNet (ResNet-18) fitted for one step."""
    from rsfm.learn import UNet, prepare_data

    data = prepare_data(S1, images="S1Hand", labels="LabelHand", classes=["dry", "water"],
                        chip_size=64, batch_size=2, label_ignore_values=[-1])
    model = UNet(data, backbone="resnet18", pretrained=False,
                 out=tmp_path_factory.mktemp("fitted") / "run")
    model.fit(1, max_steps=1, verbose=False)
    return model


def use(ctx: Ctx, name: str) -> Path:
    """A module fixture's folder, watched (it must not change)."""
    path = ctx.request.getfixturevalue(name)
    ctx.watch(path if path.is_dir() else path.parent)
    return path


def copy_of(ctx: Ctx, name: str, dst: str = "run") -> Path:
    return Path(shutil.copytree(ctx.request.getfixturevalue(name), ctx.tmp / dst))


def s1(ctx: Ctx, name: str, *, size: int = 64, crs: str = "EPSG:32633", x0: float = 500000,
       bands: int = 2) -> Path:
    rng = np.random.default_rng(len(name))
    return write_tif(ctx.tmp / name, rng.normal(-12, 4, (bands, size, size)).astype(np.float32),
                     crs=crs, transform=from_origin(x0, 5000000, 10, 10),
                     descriptions=["VV", "VH", "X"][:bands])


def relabel(labels: Path, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    import rasterio

    for f in sorted(labels.glob("*.tif")):
        with rasterio.open(f) as src:
            data, profile = src.read(), src.profile
        f.unlink()
        with rasterio.open(f, "w", **profile) as dst:
            dst.write(fn(data).astype(data.dtype))


# =============================================================================================
# --resume: a recipe changed since the run, a run that is finished, damaged or not a run
# =============================================================================================
@case("resume-changed-classes", "input.classes", "wet", "{tmp}/run")
def _(ctx):
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run), "--resume", "data.classes=[dry, wet]"]


@case("resume-changed-normalization", "input.normalization", "{tmp}/run")
def _(ctx):
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run, {"train.epochs": 3}), "--resume",
            "data.normalization.mean=[0.0, 0.0]"]


@case("resume-changed-bands-through-data-bands", "input.bands", "{tmp}/run")
def _(ctx):  # the run used model.bands; the recipe now lists data.bands in another order
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run, {"model.bands": DELETE, "data.bands": ["VH", "VV"],
                                          "train.epochs": 3}), "--resume"]


@case("resume-changed-tile-size", "done", code=0, may_change=RUN_FILES)
def _(ctx):  # 64 -> 32: another input size than the one the run was trained and saved with
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run, {"train.epochs": 3}), "--resume", "data.tile_size=32"]


@case("resume-adds-lora", "lora", "{tmp}/run")
def _(ctx):  # the run has no LoRA: the checkpoint's keys cannot hold the adapter
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run, {"train.epochs": 3, "lora": {"r": 4}}), "--resume"]


@case("resume-changed-lora-rank", "lora", "{tmp}/run")
def _(ctx):  # rank 2 -> 8: the adapter's shapes differ
    run = copy_of(ctx, "lora_run")
    return ["train", ctx.run_recipe(run, {"train.epochs": 2, "train.max_steps": 2}), "--resume",
            "lora.r=8"]


@case("resume-changed-lora-targets", "lora", "{tmp}/run")
def _(ctx):
    run = copy_of(ctx, "lora_run")
    return ["train", ctx.run_recipe(run, {"train.epochs": 2, "train.max_steps": 2}), "--resume",
            "lora.target_modules=[attn.qkv]"]


@case("resume-a-finished-run", "{tmp}/run", "finished")
def _(ctx):  # 2 of 2 epochs done: nothing to resume; must say so (train.epochs) and write nothing
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run), "--resume"]


@case("resume-checkpoints-folder-missing", "{tmp}/run/checkpoints")
def _(ctx):
    run = ctx.run_copy()
    shutil.rmtree(run / "checkpoints")
    return ["train", ctx.run_recipe(run), "--resume"]


@case("resume-checkpoints-folder-empty", "{tmp}/run/checkpoints")
def _(ctx):
    run = ctx.run_copy()
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").mkdir()
    return ["train", ctx.run_recipe(run), "--resume"]


@case("resume-a-folder-that-is-not-a-run", "{tmp}/photos")
def _(ctx):
    photos = ctx.tmp / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 100)
    return ["train", ctx.recipe({"output.dir": str(photos)}), "--resume"]


@case("resume-key-in-recipe-without-a-run", "{tmp}/run", "resume")
def _(ctx):  # train.resume: true in the recipe, first training
    return ["train", ctx.recipe({"train.resume": True})]


@case("auto-resume-on-a-folder-that-is-not-a-run", "{tmp}/photos", code=0)
def _(ctx):  # --auto-resume starts fresh next to the user's files, and keeps them
    photos = ctx.tmp / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 100)
    return ["train", ctx.recipe({"output.dir": str(photos)}), "--auto-resume"]


# =============================================================================================
# output.dir and output.overwrite
# =============================================================================================
@case("overwrite-keeps-the-users-notes", "done", code=0, may_change=RUN_FILES)
def _(ctx):  # a notes.txt the user put into the run folder survives output.overwrite
    run = ctx.run_copy()
    (run / "notes.txt").write_text("lr 1e-3 was too high\n")
    return ["train", ctx.run_recipe(run, {"output.overwrite": True, "train.epochs": 1,
                                          "train.max_steps": 1})]


@case("overwrite-into-the-training-images-folder", "{tmp}/images")
def _(ctx):  # output.dir = the folder of the training chips
    im, lab = ctx.s1_pair()
    return ["train", ctx.chip_recipe(im, lab, {"output.dir": str(im), "output.overwrite": True})]


@case("output-dir-inside-the-labels-folder", "{tmp}/labels")
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["train", ctx.chip_recipe(im, lab, {"output.dir": str(lab)})]


@case("overwrite-with-resume", "done", code=0, may_change=RUN_FILES)
def _(ctx):  # --resume wins: the run is continued, not wiped
    run = ctx.run_copy()
    return ["train", ctx.run_recipe(run, {"output.overwrite": True, "train.epochs": 3}),
            "--resume"]


# =============================================================================================
# A run killed mid-epoch, then used
# =============================================================================================
@case("predict-run-killed-between-checkpoint-and-weights", "{tmp}/run", "--resume")
def _(ctx):  # checkpoints/ is there, the top-level weights and config.json are not
    run = ctx.run_copy()
    for name in ("model.safetensors", "last_model.safetensors", "config.json"):
        (run / name).unlink(missing_ok=True)
    return ["predict", run, SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("evaluate-run-killed-between-checkpoint-and-weights", "{tmp}/run")
def _(ctx):
    run = ctx.run_copy()
    for name in ("model.safetensors", "last_model.safetensors", "config.json"):
        (run / name).unlink(missing_ok=True)
    return ["evaluate", run, "--split", "val"]


@case("export-run-killed-mid-epoch-leaves-tmp-weights", "o.onnx", code=0)
def _(ctx):  # a half-written model.safetensors.tmp next to the good weights is ignored
    run = ctx.run_copy()
    (run / "model.safetensors.tmp").write_bytes(b"\0" * 100)
    return ["export", run, "-o", ctx.tmp / "o.onnx", "--size", "64"]


# =============================================================================================
# Training budget: max_time, epochs, max_steps, warm-up
# =============================================================================================
TRAIN_VALUES = [
    ("max-time-unit-x", {"train.max_time": "10x"}, ["train.max_time", "10x"]),
    ("max-time-negative-minutes", {"train.max_time": "-5m"}, ["train.max_time", "-5m"]),
    ("max-time-number-zero", {"train.max_time": 0}, ["train.max_time", "0"]),
    ("max-time-mixed-sign", {"train.max_time": "1h-30m"}, ["train.max_time", "1h-30m"]),
    ("epochs-and-max-steps-both-zero", {"train.epochs": 0, "train.max_steps": 0},
     ["train.epochs", "0"]),
    ("warmup-steps-negative", {"train.scheduler.warmup_steps": -1},
     ["train.scheduler.warmup_steps", "-1"]),
    ("freeze-unfreeze-module-typo-at-check", {"train.epochs": 2, "train.freeze": {
        "backbone": True, "unfreeze": [{"epoch": 1, "modules": ["bakbone"]}]}},
     ["bakbone", "backbone"]),
    ("lora-target-typo-at-check", {"lora": {"r": 4, "target_modules": ["attn.qkvv"]}},
     ["attn.qkvv", "attn.qkv"]),
    ("freeze-unfreeze-epoch-negative", {"train.epochs": 2, "train.freeze": {
        "backbone": True, "unfreeze": [{"epoch": -1}]}}, ["epoch", "-1"]),
    ("lora-alpha-negative", {"lora": {"r": 4, "alpha": -1}}, ["lora.alpha", "-1"]),
    ("num-frames-two-on-dofa", {"model.num_frames": 2}, ["model.num_frames", "dofa"]),
    ("prithvi-coords-encoding-typo", {"model.backbone": "prithvi_eo_v2_300m",
                                      "model.backbone_kwargs": {**TINY, "coords_encoding": ["tme"]}},
     ["coords_encoding", "tme"]),
    ("prithvi-coords-encoding-a-string", {"model.backbone": "prithvi_eo_v2_300m",
                                          "model.backbone_kwargs": {**TINY,
                                                                    "coords_encoding": "time"}},
     ["coords_encoding", "time"]),
    ("prithvi-temporal-coords-in-recipe", {"model.backbone": "prithvi_eo_v2_300m",
                                           "model.backbone_kwargs": {
                                               **TINY, "temporal_coords": [[2020, 100]]}},
     ["temporal_coords"]),
]


def _values(changes: dict[str, Any]) -> Callable[[Ctx], Any]:
    return lambda ctx: ["check", ctx.recipe(changes)]


for _id, _changes, _names, *_marks in TRAIN_VALUES:
    case(_id, *_names, marks=_marks)(_values(_changes))


TRAIN_TIME = [
    ("freeze-unfreeze-module-typo", {"train.epochs": 2, "train.max_steps": DELETE,
                                     "train.freeze": {"backbone": True, "unfreeze": [
                                         {"epoch": 1, "modules": ["bakbone"]}]}},
     ["bakbone", "backbone"], 2),
    ("lora-on-resnet-default-targets", {**RESNET, "lora": {"r": 4}}, ["conv1", "conv2"], 0),
    ("lora-target-typo-on-vit", {"lora": {"r": 4, "target_modules": ["attn.qkvv"]}},
     ["attn.qkvv", "attn.qkv"], 2),
    ("prithvi-coords-encoding-typo-at-train", {
        "model.backbone": "prithvi_eo_v2_300m",
        "model.backbone_kwargs": {**TINY, "coords_encoding": ["tme"]}}, ["coords_encoding", "tme"], 2),
    ("val-fraction-leaves-no-training-chip-at-train", {"data.val_fraction": 0.9},
     ["val_fraction"], 2),
]


def _train(changes: dict[str, Any]) -> Callable[[Ctx], Any]:
    def build(ctx):
        if "data.val_fraction" in changes:
            im, lab = ctx.s1_pair()
            return ["train", ctx.chip_recipe(im, lab, changes)]
        return ["train", ctx.recipe(changes)]
    return build


for _id, _changes, _names, _code, *_marks in TRAIN_TIME:
    case(_id, *_names, code=_code, marks=_marks)(_train(_changes))


@case("warmup-steps-longer-than-the-run", "warm-up", "clamped", code=0)
def _(ctx):
    return ["train", ctx.recipe({"train.scheduler.warmup_steps": 1000})]


@case("warmup-epochs-longer-than-the-run", "warm-up", "clamped", code=0)
def _(ctx):
    return ["train", ctx.recipe({"train.scheduler.warmup_epochs": 5, "train.epochs": 1})]


@case("max-time-shorter-than-one-step-still-saves", "max_time", code=0)
def _(ctx):  # the budget ends after the first step: a model is still saved
    return ["train", ctx.recipe({"train.max_time": "0.001s", "train.max_steps": DELETE,
                                 "train.epochs": 50})]


# =============================================================================================
# Training data: classes without pixels, batches, workers
# =============================================================================================
@case("train-class-with-zero-pixels", "water", code=0)
def _(ctx):  # every label is 'dry' (or ignored): warned, naming the class
    im, lab = ctx.s1_pair()
    relabel(lab, lambda a: np.where(a == 1, 0, a))
    return ["train", ctx.chip_recipe(im, lab)]


@case("train-every-label-is-the-ignore-index", "{tmp}/labels")
def _(ctx):
    im, lab = ctx.s1_pair()
    relabel(lab, lambda a: np.full_like(a, -1))
    return ["train", ctx.chip_recipe(im, lab)]


@case("train-every-label-is-ignore-index-at-check", "{tmp}/labels")
def _(ctx):
    im, lab = ctx.s1_pair()
    relabel(lab, lambda a: np.full_like(a, -1))
    return ["check", ctx.chip_recipe(im, lab), "--data"]


@case("batch-size-larger-than-the-dataset", "done", code=0)
def _(ctx):  # 2 chips, batch 16: one partial batch (not zero steps)
    im, lab = ctx.s1_pair()
    return ["train", ctx.chip_recipe(im, lab, {"data.batch_size": 16, "train.max_steps": DELETE})]


@case("num-workers-more-than-cores", "num_workers", code=0)
def _(ctx):
    im, lab = ctx.s1_pair()
    return ["train", ctx.chip_recipe(im, lab, {"data.num_workers": 8})]


@case("val-fraction-leaves-no-training-chip", "val_fraction")
def _(ctx):  # 2 chips, val_fraction 0.9: both would go to validation
    im, lab = ctx.s1_pair()
    return ["check", ctx.chip_recipe(im, lab, {"data.val_fraction": 0.9}), "--data"]


# =============================================================================================
# Multi-frame Prithvi at predict: frames per scene, sizes, CRS, grids
# =============================================================================================
def _p2(ctx, *files: Path) -> list[Any]:
    return ["predict", use(ctx, "prithvi2"), *files, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("frames-three-files-for-a-two-frame-model", "2", "3")
def _(ctx):
    return _p2(ctx, s1(ctx, "t1.tif"), s1(ctx, "t2.tif"), s1(ctx, "t3.tif"))


@case("frames-one-file-for-a-two-frame-model", "2 time steps", "1 files")
def _(ctx):
    return _p2(ctx, s1(ctx, "t1.tif"))


@case("frames-of-different-sizes", "{tmp}/t2.tif")
def _(ctx):
    return _p2(ctx, s1(ctx, "t1.tif"), s1(ctx, "t2.tif", size=96))


@case("frames-in-different-crs", "{tmp}/t2.tif", "CRS")
def _(ctx):
    return _p2(ctx, s1(ctx, "t1.tif"), s1(ctx, "t2.tif", crs="EPSG:32634"))


@case("frames-on-shifted-grids", "{tmp}/t2.tif")
def _(ctx):  # same size and CRS, 10 km apart
    return _p2(ctx, s1(ctx, "t1.tif"), s1(ctx, "t2.tif", x0=510000))


@case("frames-with-different-band-counts", "o.tif", code=0)
def _(ctx):  # VV/VH read by name from the 3-band frame
    return _p2(ctx, s1(ctx, "t1.tif"), s1(ctx, "t2.tif", bands=3))


@case("frames-two-good-frames", "o.tif", code=0)
def _(ctx):
    return _p2(ctx, s1(ctx, "t1.tif"), s1(ctx, "t2.tif"))


# =============================================================================================
# Detection data
# =============================================================================================
def _trees(ctx, boxes) -> tuple[Path, Path]:
    return ctx.tree_chips(boxes)


@case("detection-every-annotation-file-empty", "{tmp}/ann")
def _(ctx):  # no <object> in any file: nothing to learn
    im, ann = ctx.tree_chips([])
    return ["train", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann))]


@case("detection-every-annotation-file-empty-at-check", "{tmp}/ann")
def _(ctx):
    im, ann = ctx.tree_chips([])
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann)), "--data"]


@case("detection-box-with-x1-left-of-x0", "{tmp}/ann/OSBS_029.xml", "[300.0, 10.0, 100.0, 50.0]",
      code=0)
def _(ctx):
    im, ann = ctx.tree_chips([(10, 10, 50, 50), (300, 10, 100, 50)])
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann)), "--data"]


@case("detection-box-with-x1-left-of-x0-at-train", "{tmp}/ann/OSBS_029.xml", "zero-size",
      code=0)
def _(ctx):
    im, ann = ctx.tree_chips([(10, 10, 50, 50), (300, 10, 100, 50)])
    return ["train", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ann))]


@case("detection-class-name-case-differs", "recipe OK", code=0)
def _(ctx):  # <name>tree</name> for the class Tree: the same class
    im = ctx.chips([TREES / "images" / "OSBS_029.tif"], "trees")
    voc(ctx.tmp / "ann" / "OSBS_029.xml", [(10, 10, 50, 50)], name="tree")
    return ["check", ctx.write_yaml(det_recipe(ctx.tmp / "run", im, ctx.tmp / "ann")), "--data"]


@case("coco-category-name-not-in-classes", "Palm", "Tree")
def _(ctx):
    doc = coco_doc(categories=[{"id": 1, "name": "Palm"}])
    return ["check", coco_recipe(ctx, doc), "--data"]


@case("coco-every-image-without-annotations", "{tmp}/ann.json")
def _(ctx):
    return ["train", coco_recipe(ctx, coco_doc(annotations=[]))]


@case("coco-negative-width", "{tmp}/ann.json", "zero-size")
def _(ctx):
    doc = coco_doc(annotations=[{"id": 1, "image_id": 1, "category_id": 1,
                                 "bbox": [100, 10, -40, 40]}])
    return ["check", coco_recipe(ctx, doc), "--data"]


@case("evaluate-detector-score-threshold-above-one", "score", "1.5")
def _(ctx):
    im, ann = ctx.tree_chips()
    return ["evaluate", ctx.detector, "--images", im, "--labels", ann, "--score-threshold", "1.5"]


@case("evaluate-detector-score-threshold-negative", "score", "-0.1")
def _(ctx):
    im, ann = ctx.tree_chips()
    return ["evaluate", ctx.detector, "--images", im, "--labels", ann, "--score-threshold=-0.1"]


@case("evaluate-detector-max-detections-zero", "max", "0")
def _(ctx):
    im, ann = ctx.tree_chips()
    return ["evaluate", ctx.detector, "--images", im, "--labels", ann, "--max-detections", "0"]


# =============================================================================================
# Classification data
# =============================================================================================
@case("class-folders-a-single-class", "classes", "dry")
def _(ctx):
    root = class_folders(ctx)
    shutil.rmtree(root / "water")
    recipe = changed(cls_recipe(ctx, root, ctx.tmp / "run"),
                     {"model.num_classes": 1, "data.classes": ["dry"]})
    return ["check", ctx.write_yaml(recipe), "--data"]


@case("class-folders-recipe-two-classes-one-folder", "water")
def _(ctx):  # classes [dry, water], only dry/ on disk
    root = class_folders(ctx)
    shutil.rmtree(root / "water")
    return ["check", ctx.write_yaml(cls_recipe(ctx, root, ctx.tmp / "run")), "--data"]


@case("class-folders-images-of-different-sizes", "different sizes", "batch_size", new_files=True)
def _(ctx):  # one 96-px chip among 512-px ones: refused at the first batch
    root = class_folders(ctx)
    s1(ctx, "small.tif", size=96).rename(root / "water" / "small.tif")
    return ["train", ctx.write_yaml(cls_recipe(ctx, root, ctx.tmp / "run"))]


@case("class-folders-image-smaller-than-the-tile", "{tmp}/classes/water/small.tif", "32")
def _(ctx):
    root = class_folders(ctx)
    s1(ctx, "small.tif", size=32).rename(root / "water" / "small.tif")
    return ["check", ctx.write_yaml(cls_recipe(ctx, root, ctx.tmp / "run")), "--data"]


# =============================================================================================
# Hub
# =============================================================================================
@case("push-repo-id-three-parts", "a/b/c", "ORG/NAME")
def _(ctx):
    return ["push", ctx.trained, "--repo-id", "a/b/c"]


@case("push-repo-id-without-org", "mymodel", "ORG/NAME")
def _(ctx):
    return ["push", ctx.trained, "--repo-id", "mymodel"]


@case("push-repo-id-a-url", "https://huggingface.co/me/model", "ORG/NAME")
def _(ctx):
    return ["push", ctx.trained, "--repo-id", "https://huggingface.co/me/model"]


@case("push-folder-that-is-not-a-model", "{tmp}/photos", "config.json")
def _(ctx):
    (ctx.tmp / "photos").mkdir()
    (ctx.tmp / "photos" / "a.jpg").write_bytes(b"x")
    return ["push", ctx.tmp / "photos", "--repo-id", "me/model"]


@case("push-without-token", "HF_TOKEN")
def _(ctx):  # online, logged out: say how to log in (before uploading anything)
    import huggingface_hub.constants as hc

    mp = ctx.request.getfixturevalue("monkeypatch")
    mp.setattr(hc, "HF_HUB_OFFLINE", False)
    mp.setenv("HF_HUB_OFFLINE", "0")
    mp.delenv("HF_TOKEN", raising=False)
    mp.setenv("HF_TOKEN_PATH", str(ctx.tmp.parent / "no-token"))
    mp.setattr(hc, "HF_TOKEN_PATH", str(ctx.tmp.parent / "no-token"))
    mp.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no real network use
    mp.setattr(hc, "ENDPOINT", "http://127.0.0.1:9")
    return ["push", ctx.trained, "--repo-id", "me/model"]


@case("push-lora-only-of-a-lora-run-offline", "lora_only", "full")
def _(ctx):
    return ["push", use(ctx, "lora_run"), "--repo-id", "me/model", "--lora-only"]


@case("predict-hub-id-offline-gives-the-download-command", "nobody/no-such-model", "download")
def _(ctx):
    return ["predict", "nobody/no-such-model", SCENE, "-o", ctx.tmp / "o.tif"]


@api_case("from-pretrained-hub-id-offline-not-in-cache", "nobody/no-such-model", "download")
def _(ctx):
    import rsfm

    return lambda: rsfm.from_pretrained("nobody/no-such-model")


@api_case("from-pretrained-hub-id-malformed", "a/b/c")
def _(ctx):
    import rsfm

    return lambda: rsfm.from_pretrained("a/b/c")


# =============================================================================================
# rsfm.learn
# =============================================================================================
@api_case("prepare-data-single-file-without-labels", SCENE.name, "labels")
def _(ctx):
    from rsfm.learn import prepare_data

    return lambda: prepare_data(SCENE, chip_size=64)


@api_case("prepare-data-single-file-labels-missing", "{tmp}/nope.gpkg")
def _(ctx):
    from rsfm.learn import prepare_data

    return lambda: prepare_data(SCENE, labels=ctx.tmp / "nope.gpkg", chip_size=64)


@api_case("learner-fit-max-time-10x", "max_time", "10x")
def _(ctx):
    model = hidden._learner(ctx)
    return lambda: model.fit(1, max_time="10x")


@api_case("learner-fit-max-steps-zero", "max_steps", "0")
def _(ctx):
    model = hidden._learner(ctx)
    return lambda: model.fit(1, max_steps=0)


@api_case("learner-to-recipe-onto-an-existing-file", "{tmp}/mine.yaml")
def _(ctx):  # the user's own recipe (comments) would be replaced
    model = hidden._learner(ctx)
    (ctx.tmp / "mine.yaml").write_text("# my notes\nname: mine\n")
    return lambda: model.to_recipe(ctx.tmp / "mine.yaml")


@api_case("learner-to-recipe-onto-a-folder", "{tmp}/folder")
def _(ctx):
    model = hidden._learner(ctx)
    (ctx.tmp / "folder").mkdir()
    return lambda: model.to_recipe(ctx.tmp / "folder")


@api_case("learner-from-recipe-bad-yaml", "{tmp}/bad.yaml", "line")
def _(ctx):
    from rsfm.learn import Learner

    (ctx.tmp / "bad.yaml").write_text("model:\n  task: segmentation\n  bands: [VV, VH\n")
    return lambda: Learner.from_recipe(ctx.tmp / "bad.yaml")


@api_case("learner-from-recipe-a-list", "{tmp}/list.yaml", "mapping")
def _(ctx):
    from rsfm.learn import Learner

    (ctx.tmp / "list.yaml").write_text("- a\n- b\n")
    return lambda: Learner.from_recipe(ctx.tmp / "list.yaml")


@api_case("learner-save-into-a-non-rsfm-folder", "{tmp}/docs")
def _(ctx):  # the folder holds the user's README.md and recipe.yaml: save would replace them
    model = ctx.request.getfixturevalue("fitted")
    docs = ctx.tmp / "docs"
    docs.mkdir()
    (docs / "README.md").write_text("# my project\n")
    (docs / "recipe.yaml").write_text("# my recipe\nname: mine\n")
    return lambda: model.save(docs)


@api_case("learner-save-onto-a-file", "{tmp}/model.bin")
def _(ctx):
    model = ctx.request.getfixturevalue("fitted")
    (ctx.tmp / "model.bin").write_bytes(b"x")
    return lambda: model.save(ctx.tmp / "model.bin")


# =============================================================================================
# predict / export / evaluate with exported and LoRA models
# =============================================================================================
@case("predict-tile-smaller-than-a-patch", "tile", "8")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--tile-size", "8"]


@case("predict-overlap-larger-than-tile", "overlap", "100")
def _(ctx):
    return ["predict", ctx.trained, SCENE, "-o", ctx.tmp / "o.tif", "--tile-size", "64",
            "--overlap", "100"]


@case("predict-several-files-for-a-single-frame-model", "o.tif")
def _(ctx):  # two scenes and -o one file
    return ["predict", ctx.trained, SCENE, GHANA, "-o", ctx.tmp / "o.tif"]


@case("onnx-predict-3-band-scene", "{tmp}/rgb.tif", "3")
def _(ctx):
    write_tif(ctx.tmp / "rgb.tif", np.ones((3, 96, 96), np.float32))
    return ["predict", use(ctx, "onnx_model"), ctx.tmp / "rgb.tif", "-o", ctx.tmp / "o.tif",
            "--quiet"]


@case("onnx-predict-1-band-scene", "{tmp}/vv.tif", "VH")
def _(ctx):
    write_tif(ctx.tmp / "vv.tif", np.ones((1, 96, 96), np.float32), descriptions=["VV"])
    return ["predict", use(ctx, "onnx_model"), ctx.tmp / "vv.tif", "-o", ctx.tmp / "o.tif",
            "--quiet"]


@case("onnx-predict-good-scene", "o.tif", code=0)
def _(ctx):
    return ["predict", use(ctx, "onnx_model"), SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("onnx-predict-tile-not-patch-multiple", "tile", "100")
def _(ctx):
    return ["predict", use(ctx, "onnx_model"), SCENE, "-o", ctx.tmp / "o.tif", "--quiet",
            "--tile-size", "100"]


@case("onnx-evaluate-split-without-recipe", "--images")
def _(ctx):  # an exported file has no recipe: a split cannot be read
    return ["evaluate", use(ctx, "onnx_model"), "--split", "test"]


@case("export-lora-run", "o.onnx", code=0)
def _(ctx):
    return ["export", use(ctx, "lora_run"), "-o", ctx.tmp / "o.onnx", "--size", "64"]


@case("export-lora-run-pt2", "o.pt2", code=0)
def _(ctx):
    return ["export", use(ctx, "lora_run"), "-o", ctx.tmp / "o.pt2", "--size", "64"]


@case("predict-lora-run", "o.tif", code=0)
def _(ctx):
    return ["predict", use(ctx, "lora_run"), SCENE, "-o", ctx.tmp / "o.tif", "--quiet"]


@case("evaluate-split-test-not-set-with-recipe", "data.test", "--split val")
def _(ctx):  # a recipe given explicitly, without data.test
    return ["evaluate", ctx.trained, ctx.recipe(), "--split", "test"]


@case("evaluate-split-val-without-val-data", "val")
def _(ctx):  # val_fraction 0 and no data.val
    return ["evaluate", ctx.trained, ctx.recipe({"data.val_fraction": 0.0}), "--split", "val"]


# =============================================================================================
# Two trainings into the same output.dir at once
# =============================================================================================
def test_two_trainings_into_the_same_output_dir(tmp_path, request, capsys, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RSFM_TRACEBACK_DIR", str(tmp_path / "tb"))
    ctx = Ctx(tmp_path, request)
    first = ctx.recipe({"train.epochs": 1000, "train.max_steps": DELETE, "train.max_time": "60s"},
                       name="first.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "rsfm", "train", str(first)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RSFM_TRACEBACK_DIR": str(tmp_path / "tb")})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "run" / "recipe.yaml").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the first training ended before the second started"
        second = ctx.recipe(name="second.yaml")
        outcome = hidden.run_cli(["train", str(second)], capsys, caplog)
        assert outcome.code == 2, outcome.text
        assert str(tmp_path / "run") in outcome.err, outcome.err
    finally:
        proc.kill()
        proc.wait()


def test_hidden2_catalogue_size():
    assert len(CASES) + len(API_CASES) >= 90
    assert len({c.id for c in CASES} | {c.id for c in API_CASES}) == len(CASES) + len(API_CASES)



