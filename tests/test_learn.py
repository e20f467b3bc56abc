"""The notebook API (rsfm.learn): prepare_data on every layout, the model classes, lr_find, fit
(the same weights as the equivalent recipe), to_recipe round trip, continuing a run, results,
predict/evaluate/save, and the walkthrough example end to end.

Training uses a ResNet-18 UNet from scratch on 64 px tiles of the real Sen1Floods11 crops, a
couple of optimizer steps at a time; one trained learner is shared by the tests of its results.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rsfm
from rsfm.errors import ConfigError, DataError
from rsfm.learn import (
    FCN,
    Classifier,
    Data,
    DeepLab,
    FasterRCNN,
    Learner,
    LRFindResult,
    MaskRCNN,
    UNet,
    prepare_data,
)
from rsfm.learn.lr_find import suggest_lr
from rsfm.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
S1 = DATA / "sen1floods11"
ARCGIS = DATA / "arcgis"
QUIET = {"progress": False}
NO_PLOTS = {"plots": False}


def s1_data(**kwargs) -> Data:
    return prepare_data(S1, images="S1Hand", labels="LabelHand", chip_size=64, batch_size=4,
                        classes=["dry", "water"], val_split=0.25, **kwargs)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


# --------------------------------------------------------------------------- prepare_data


def test_prepare_data_reads_scene_folders_with_other_names():
    data = prepare_data(S1, images="S1Hand", labels="LabelHand", chip_size=64, batch_size=4)
    c = data.config
    assert data.layout == "scenes" and data.task == "segmentation"  # 128 px files > chip_size
    assert (c.image_suffix, c.label_suffix) == ("_S1Hand", "_LabelHand")  # found from the names
    assert data.bands == ["VV", "VH"] and data.classes == ["class_0", "class_1"]  # label values
    assert c.label_ignore_values == (-1,)  # Sen1Floods11's "no data" label
    assert c.normalization.mode == "stats" and len(c.normalization.mean) == 2
    assert all(math.isfinite(v) for v in c.normalization.mean)
    assert c.tile_size == 64 and c.batch_size == 4 and c.val_fraction == 0.1
    assert c.augment == {"hflip": 0.5, "vflip": 0.5, "rot90": 0.5}
    assert len(data) > 0 and "class_0" in repr(data) and "note:" in repr(data)
    picture = data.show_batch(n=2)
    assert picture.path.is_file() and picture._repr_png_()[:4] == b"\x89PNG"


def test_prepare_data_finds_image_and_label_folders_by_their_names(tmp_path):
    """A folder named like labels (LabelHand/) and one folder of images (S1Hand/) pair without
    arguments; with two candidate image folders the error names them and what to pass (it read
    the sub-folders as classes before and failed on their band counts)."""
    for sub in ("S1Hand", "LabelHand"):
        shutil.copytree(S1 / sub, tmp_path / sub)
    data = prepare_data(tmp_path, chip_size=64)
    assert data.layout == "scenes" and data.config.label_suffix == "_LabelHand"
    with pytest.raises(DataError, match="images='S1Hand', labels='LabelHand'") as err:
        prepare_data(S1)
    assert "S2Hand" in str(err.value)


def test_prepare_data_train_and_val_folders():
    data = prepare_data(ROOT / "recipes" / "demo_data" / "sen1floods11", images="S1Hand",
                        labels="LabelHand", classes=["dry", "water"], chip_size=64)
    assert data.config.val is not None and data.config.val_fraction == 0.0
    assert data.classes == ["dry", "water"] and data.config.label_ignore_values == (-1,)


def test_prepare_data_chips_with_colour_masks():
    classes = json.loads((DATA / "dubai" / "classes.json").read_text())["classes"]
    stated = [{"name": c["title"], "color": c["color"]} for c in classes]
    data = prepare_data(DATA / "dubai", classes=stated, normalization="per_tile")
    assert data.layout == "chips" and data.task == "segmentation"  # images/ + masks/
    assert data.bands == ["RED", "GREEN", "BLUE"]  # JPEG colour interpretation
    assert data.config.color_map == {c["color"]: i for i, c in enumerate(classes)}
    assert data.config.normalization.mode == "per_tile"
    with pytest.raises(ConfigError, match="colour masks"):
        prepare_data(DATA / "dubai")  # no classes with colours


def test_prepare_data_voc_boxes_and_a_scene_with_vector_labels():
    trees = prepare_data(DATA / "deepforest", normalization="none")
    assert (trees.layout, trees.task, trees.config.label_format) == ("chips", "detection", "voc")
    assert trees.classes == ["Alive", "Dead", "Tree"]  # the names in the VOC files
    scene = DATA / "spacenet4" / "sample_geotiff.tif"
    labels = DATA / "spacenet4" / "geotiff_labels.geojson"
    data = prepare_data(scene, labels=labels, chip_size=128, normalization="per_tile")
    assert data.layout == "scenes" and data.classes == ["background", "geotiff_labels"]
    assert data.config.train.images == str(scene) and len(data) > 0
    boxes = prepare_data(scene, labels=labels, chip_size=128, task="detection",
                         normalization="none")
    assert boxes.task == "detection"


def test_prepare_data_arcgis_exports_are_detected():
    data = prepare_data(ARCGIS / "classified_tiles")
    assert (data.layout, data.task) == ("arcgis", "segmentation")
    assert data.classes == ["NoData", "Water", "Forest", "Built-up area"]
    assert data.bands == ["RED", "GREEN", "BLUE", "NIR_NARROW"] and data.chip_size == 32
    assert data.config.normalization.mode == "stats"  # the export's band statistics
    assert data.config.label_map[20] == 3 and len(data) == 4
    model = UNet(data, pretrained=False, out=None)  # builds and checks the recipe
    assert model.recipe.data.kind == "arcgis" and model.recipe.model.num_classes == 4
    boxes = prepare_data(ARCGIS / "pascal_voc")
    assert boxes.task == "detection" and boxes.classes == ["Car", "Truck"]
    assert FasterRCNN(boxes, pretrained=False).recipe.model.head == "faster_rcnn"
    with pytest.raises(ConfigError, match=r"UNet is a segmentation model.*FasterRCNN"):
        UNet(boxes, pretrained=False)
    with pytest.raises(ConfigError, match="instance masks"):
        MaskRCNN(boxes)
    tiles = prepare_data(ARCGIS / "labeled_tiles")
    assert tiles.task == "classification"
    assert Classifier(tiles, pretrained=False).recipe.model.head == "classification"


def test_prepare_data_class_folders(tmp_path):
    for name, files in (("flooded", ["Bolivia_312675", "Ghana_53713"]),
                        ("dry", ["Spain_7370579"])):
        (tmp_path / name).mkdir()
        for f in files:
            shutil.copy(S1 / "S1Hand" / f"{f}_S1Hand.tif", tmp_path / name)
    data = prepare_data(tmp_path, val_split=0.0)
    assert (data.layout, data.task) == ("class_folders", "classification")
    assert data.classes == ["dry", "flooded"] and len(data) == 3
    with pytest.raises(ConfigError, match="lack the class folders"):
        prepare_data(tmp_path, classes=["dry"])


def test_prepare_data_errors_name_the_folder_and_the_layouts(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        prepare_data(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "notes.txt" in msg and "images/" in msg
    assert "ArcGIS" in msg and "<class name>" in msg
    with pytest.raises(DataError, match="does not exist"):
        prepare_data(tmp_path / "missing")
    with pytest.raises(DataError, match="no image folder 'S1'"):
        prepare_data(S1, images="S1", labels="LabelHand")
    with pytest.raises(ConfigError, match="needs labels="):
        prepare_data(DATA / "spacenet4" / "sample_geotiff.tif")


# ---------------------------------------------------------------------------- lr_find


def test_suggest_lr_steepest_descent_and_minimum_rule():
    lrs = list(np.logspace(-6, 0, 40))
    loss = [1.0 / (1 + math.exp(3 * (math.log10(lr) + 3))) + (0.5 if lr > 0.1 else 0.0)
            for lr in lrs]  # falls fastest at 1e-3, lowest before 1e-1
    suggestion, steepest, min_lr = suggest_lr(lrs, loss)
    assert 3e-4 < steepest < 3e-3 and suggestion == steepest and 1e-2 < min_lr <= 0.1
    flat = [1.0, 0.9, 2.0, 5.0, 9.0]  # minimum at the second point: no room for a slope
    suggestion, steepest, min_lr = suggest_lr(lrs[:5], flat)
    assert steepest is None and suggestion == pytest.approx(lrs[1] / 10)


def test_lr_find_gives_a_finite_suggestion_and_a_plot(tmp_path):
    model = UNet(s1_data(), pretrained=False, seed=1, out=tmp_path / "run",
                 train=QUIET, output=NO_PLOTS)
    found = model.lr_find(num_steps=5, end_lr=1.0)
    assert math.isfinite(found.suggestion) and 1e-7 <= found.suggestion <= 1.0
    assert float(found) == found.suggestion and len(found.lrs) == len(found.losses) <= 5
    assert found.plot == tmp_path / "run" / "plots" / "lr_find.png" and found.plot.is_file()
    assert not model.trained and model.lr_found is found  # the model itself did not train
    assert "suggestion=" in repr(found)


# ----------------------------------------------------------------- fit == the recipe run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("learn")
    model = UNet(s1_data(), pretrained=False, seed=1, out=out / "run", train=QUIET,
                 output=NO_PLOTS)
    # fit(lr=None) takes the lr_find suggestion (here a stand-in, to save the test's time)
    model.lr_found = LRFindResult(1e-3, 1e-3, 1e-2, (), (), (), "end_lr")
    result = model.fit(1, max_steps=2)
    assert result.global_step == 2 and result.run_dir == out / "run"
    assert model.recipe.train.optimizer.lr == 1e-3
    return model


def test_fit_gives_the_same_weights_as_the_written_recipe(trained, tmp_path):
    path = tmp_path / "recipes" / "my.yaml"
    trained.to_recipe(path)
    text = path.read_text()
    assert text.startswith("# Written by rsfm.learn") and "rsfm train my.yaml" in text
    loaded = load_recipe(path)
    assert dataclasses.replace(loaded, source=None) == trained.recipe  # round trip
    assert loaded.train.optimizer.lr == 1e-3 and loaded.train.max_steps == 2
    result = rsfm.train(path, [f"output.dir={tmp_path / 'cli'}"])  # what `rsfm train` runs
    assert result.global_step == 2
    ours = weights(trained.run_dir / "last_model.safetensors")
    theirs = weights(tmp_path / "cli" / "last_model.safetensors")
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key


def test_to_recipe_writes_relative_data_paths(trained, tmp_path):
    inside = tmp_path / "recipe.yaml"
    trained.to_recipe(inside)  # the data is far from tmp_path: absolute paths stay
    assert load_recipe(inside).data.train.images == str(S1 / "S1Hand")
    # next to tests/data, not in it: the bad-input catalogues hash tests/data while this runs
    near = ROOT / "tests" / f".learn-{os.getpid()}.yaml"
    try:
        trained.to_recipe(near)
        assert "images: data/sen1floods11/S1Hand" in near.read_text()
        assert load_recipe(near).data.train.images == str(S1 / "S1Hand")
    finally:
        near.unlink(missing_ok=True)


def test_results_metrics_and_pictures(trained):
    metrics = trained.metrics()
    assert {"miou", "accuracy", "loss", "epoch"} <= set(metrics) and metrics["epoch"] == 1
    per_class = trained.per_class_metrics()
    assert set(per_class) == {"dry", "water"}
    assert {"precision", "recall", "f1", "iou", "support"} == set(per_class["dry"])
    assert per_class["dry"]["iou"] == pytest.approx(metrics["iou_dry"])
    assert trained.plot_losses().path.is_file()
    assert trained.show_results(n=2).path == trained.run_dir / "plots" / "results.png"
    assert "1 epoch(s), 2 steps" in repr(trained)


def test_predict_evaluate_save_and_from_pretrained(trained, tmp_path):
    scene = S1 / "S1Hand" / "Ghana_53713_S1Hand.tif"
    pred = trained.predict(scene, out=tmp_path / "water.tif", overlap=0)
    assert pred.classes == tmp_path / "water.tif" and pred.classes.is_file()
    result = trained.evaluate(overlap=0, out=tmp_path / "eval")  # no test split: val
    assert result.split == "val" and 0 <= result.metrics["miou"] <= 1
    assert (tmp_path / "eval" / "metrics.json").is_file()
    saved = trained.save(tmp_path / "saved")
    for name in ("config.json", "model.safetensors", "recipe.yaml", "README.md",
                 "metrics.jsonl"):
        assert (saved / name).is_file(), name
    assert not (saved / "checkpoints").exists()
    model = rsfm.from_pretrained(saved)
    assert model.saved_config.input.class_names == ["dry", "water"]
    best = weights(trained.run_dir / "model.safetensors")
    for key, value in model.state_dict().items():
        assert torch.equal(value, best[key]), key
    with pytest.raises(ConfigError, match="already holds a model"):
        trained.save(saved)


def test_push_to_hub_uploads_the_run(trained):
    from hub_utils import RecordingApi

    api = RecordingApi()
    trained.push_to_hub("org/flood", api=api)
    assert api.repos[0]["repo_id"] == "org/flood" and api.repos[0]["private"]
    files = api.commits[0]["files"]
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)


def test_a_learner_comes_back_from_its_recipe_or_run_and_continues(trained, tmp_path):
    again = Learner.from_run(trained.run_dir)
    assert type(again) is UNet and again.trained and again.recipe.train.max_steps == 2
    with pytest.raises(ConfigError, match="head is 'unet'"):
        DeepLab.from_recipe(trained.run_dir / "recipe.yaml")
    with pytest.warns(UserWarning, match="resume from the checkpoint"):
        result = again.fit(1, lr=5e-4, max_steps=1)  # one more step, from the checkpoint
    assert result.global_step == 3 and [r["epoch"] for r in again.history] == [1, 2]
    assert (trained.run_dir / "recipe.resumed-1.yaml").is_file()
    assert again.recipe.train.epochs == 2 and again.recipe.train.max_steps == 3
    assert again.recipe.train.optimizer.lr == 1e-3  # the run's (the warning said so)
    with pytest.raises(ConfigError, match="already holds a run"):
        UNet(trained.data, pretrained=False, out=trained.run_dir)


def test_model_classes_write_their_options_into_the_recipe(tmp_path):
    data = s1_data(normalization="per_tile")
    deeplab = DeepLab(data, plus=False, backbone="resnet50", output_stride=16, pretrained=False,
                      lora=True, freeze_backbone=True, loss="focal", out=tmp_path / "d")
    m = deeplab.recipe.model
    assert (m.head, m.backbone, m.output_stride, m.freeze_backbone) == (
        "deeplabv3", "resnet50", 16, True)
    assert deeplab.recipe.lora is not None and deeplab.recipe.train.loss.name == "focal"
    fcn = FCN(data, backbone="dofa_base", pretrained=False, wavelengths=[5.405, 5.405],
              window_size=4, backbone_kwargs={"depth": 2, "embed_dim": 64, "num_heads": 2})
    assert fcn.recipe.model.wavelengths == (5.405, 5.405) and fcn.recipe.model.window_size == 4
    assert fcn.run_dir.name == "sen1floods11-fcn-dofa_base"
    with pytest.raises(ConfigError, match="window_size"):
        UNet(data, backbone="resnet18", pretrained=False, window_size=4)  # checked up front


# ------------------------------------------------------------------------ the walkthrough


def test_notebook_walkthrough_runs_end_to_end(tmp_path):
    env = {**os.environ, "RSFM_WALKTHROUGH_TINY": "1", "RSFM_WALKTHROUGH_OUT": str(tmp_path),
           "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "notebook_walkthrough.py")],
                         check=False,
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("batch.png", "run/plots/lr_find.png", "run/model.safetensors",
                 "run/plots/results.png", "bolivia_water.tif", "flood_model/config.json",
                 "walkthrough.yaml"):
        assert (tmp_path / name).exists(), name
    recipe = load_recipe(tmp_path / "walkthrough.yaml")
    assert recipe.model.head == "unet" and recipe.data.classes == ("dry", "water")
