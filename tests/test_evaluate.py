"""rsfm.evaluate on real fixtures: metrics equal to ones computed by hand (numpy) from the files
`rsfm.predict` writes and the label files; held-out scene tiles; colour masks; detection and
classification wiring; the in-memory prediction engine; CLI errors before any compute."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from data_fixtures import DUBAI, DUBAI_CLASSES, DUBAI_COLORS, TREES
from test_train import S1, tiny_recipe

import rsfm
from rsfm.errors import ConfigError, DataError

S1_TEST = {"images": str(S1 / "S1Hand"), "labels": str(S1 / "LabelHand")}


def save_tiny(out: Path, seed: int, sample: list[Path], **sections) -> Path:
    """The training tests' tiny DOFA recipe, built with seeded random weights and saved (with
    its recipe.yaml) like a run directory."""
    from rsfm.cards import get_card
    from rsfm.factory import create_model
    from rsfm.hub.save import save_pretrained
    from rsfm.recipe import validate_recipe
    from rsfm.spec import resolve_input_spec

    recipe = validate_recipe(tiny_recipe(out, **sections))
    torch.manual_seed(seed)
    spec = resolve_input_spec(recipe.model, get_card(recipe.model.backbone), recipe.data)
    model = create_model(recipe.model, input_spec=spec).eval()
    balance_head(model, spec, sample)
    return save_pretrained(model, out, recipe=recipe)


def balance_head(model, spec, images) -> None:
    """A random head predicts one class everywhere: shift each class's bias by the median of
    its logits on real images, so that every class is predicted somewhere."""
    from rsfm.data.reader import ImageReader

    reader = ImageReader(spec)
    batch = [torch.from_numpy(np.nan_to_num(reader.read(p)[0][..., :64, :64])) for p in images]
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)
            and m.out_channels == spec.num_classes and m.bias is not None][-1]
    with torch.no_grad():
        logits = model(torch.stack(batch))
        logits = logits["out"] if isinstance(logits, dict) else logits
        last.bias -= logits.transpose(0, 1).reshape(spec.num_classes, -1).median(1).values


@pytest.fixture(scope="module")
def s1_model(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("s1") / "model", seed=3,
                     sample=sorted((S1 / "S1Hand").glob("[BGS]*.tif")))


@pytest.fixture(scope="module")
def dubai_model(tmp_path_factory) -> Path:
    return save_tiny(
        tmp_path_factory.mktemp("dubai") / "model", seed=5,
        sample=sorted((DUBAI / "images").glob("*.jpg")),
        model={"bands": ["RED", "GREEN", "BLUE"], "num_classes": 6},
        data={"kind": "chips", "train": {"images": str(DUBAI / "images"),
                                         "labels": str(DUBAI / "masks")},
              "image_suffix": "", "label_suffix": "", "classes": DUBAI_CLASSES,
              "label_ignore_values": [], "color_map": DUBAI_COLORS, "tile_size": 128,
              "normalization": {"mode": "minmax"}, "val_fraction": 0.0})


def confusion_by_hand(pred: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    keep = (truth >= 0) & (truth < k) & (pred < k)  # predict writes nodata (>= k) on bad input
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (truth[keep].astype(int), pred[keep].astype(int)), 1)
    return cm


def metrics_by_hand(cm: np.ndarray, names: list[str]) -> dict:
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    out = {"accuracy": tp.sum() / cm.sum(), "pixels": int(cm.sum())}
    ious, f1s = [], []
    for i, n in enumerate(names):
        if tp[i] + fp[i] + fn[i] == 0:
            out[f"iou_{n}"] = None
            continue
        out[f"iou_{n}"] = tp[i] / (tp[i] + fp[i] + fn[i])
        ious.append(out[f"iou_{n}"])
        f1s.append(2 * tp[i] / (2 * tp[i] + fp[i] + fn[i]))
    out["miou"], out["macro_f1"] = float(np.mean(ious)), float(np.mean(f1s))
    return out


def assert_metrics(result, cm: np.ndarray, names: list[str]) -> None:
    assert result.metrics["confusion_matrix"] == cm.tolist()
    for key, value in metrics_by_hand(cm, names).items():
        if value is None:
            assert result.metrics[key] is None, key
        else:
            assert result.metrics[key] == pytest.approx(value, rel=1e-12), key


def read_classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


# ------------------------------------------------------------------------------ segmentation
def test_chips_test_split_matches_metrics_from_predict_outputs(s1_model, tmp_path):
    recipe = tiny_recipe(tmp_path / "unused", data={"kind": "chips", "test": S1_TEST})
    result = rsfm.evaluate(s1_model, recipe, out=tmp_path / "ev", progress=False)
    assert result.task == "segmentation" and result.split == "test"

    cm = np.zeros((2, 2), dtype=np.int64)
    for chip in ("Bolivia_312675", "Ghana_53713", "Spain_7370579"):  # Paraguay is all NaN
        pred = read_classes(rsfm.predict(s1_model, S1 / "S1Hand" / f"{chip}_S1Hand.tif",
                                         tmp_path / f"{chip}.tif", progress=False).classes)
        truth = read_classes(S1 / "LabelHand" / f"{chip}_LabelHand.tif")  # -1: no label
        cm += confusion_by_hand(pred, truth, 2)
    assert cm.sum() > 30000 and (cm > 0).sum() >= 3  # a real, mixed comparison
    assert_metrics(result, cm, ["dry", "water"])
    assert result.metrics["images"] == 3 and len(result.per_image) == 3

    out = tmp_path / "ev"
    assert [p.name for p in result.files] == ["metrics.json", "metrics.csv", "per_class.csv",
                                              "per_image.csv", "confusion_matrix.png"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["miou"] == result.metrics["miou"] and saved["split"] == "test"
    assert saved["tile_size"] == 64 and saved["overlap"] == 16 and saved["task"] == "segmentation"
    rows = list(csv.DictReader((out / "per_class.csv").open()))
    assert [r["class"] for r in rows] == ["dry", "water"]
    assert int(rows[1]["support"]) == int(cm[1].sum())
    assert int(rows[1]["predicted"]) == int(cm[:, 1].sum())
    images = list(csv.DictReader((out / "per_image.csv").open()))
    assert sum(int(r["pixels"]) for r in images) == cm.sum()
    assert (out / "confusion_matrix.png").stat().st_size > 1000


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_colour_masks_in_folders_match_metrics_from_predict_outputs(dubai_model, tmp_path):
    tiling = {"tile_size": 256, "overlap": 64}
    result = rsfm.evaluate(dubai_model, images=DUBAI / "images", labels=DUBAI / "masks",
                           out=tmp_path / "ev", progress=False, **tiling)  # colours: run recipe
    assert result.split == "folders" and result.metrics["images"] == 2

    colors = {tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)): c for h, c in DUBAI_COLORS.items()}
    cm = np.zeros((6, 6), dtype=np.int64)
    for name in ("image_part_001", "image_part_002"):
        pred = read_classes(rsfm.predict(dubai_model, DUBAI / "images" / f"{name}.jpg",
                                         tmp_path / f"{name}.tif", progress=False,
                                         **tiling).classes)
        with rasterio.open(DUBAI / "masks" / f"{name}.png") as ds:
            rgb = ds.read()
        truth = np.full(rgb.shape[1:], -1, dtype=np.int64)
        for color, cls in colors.items():
            truth[(rgb[0] == color[0]) & (rgb[1] == color[1]) & (rgb[2] == color[2])] = cls
        cm += confusion_by_hand(pred, truth, 6)
    assert cm.sum() > 400_000
    assert_metrics(result, cm, DUBAI_CLASSES)


def test_held_out_scene_tiles_are_scored_within_their_windows(s1_model, tmp_path):
    from rsfm.datasets import base_dataset, build_split
    from rsfm.hub import load_config
    from rsfm.recipe import load_recipe

    result = rsfm.evaluate(s1_model, split="val", write=False, progress=False)  # recipe.yaml
    assert result.out_dir is None and result.files == ()

    recipe = load_recipe(s1_model / "recipe.yaml")
    spec = load_config(s1_model).input
    base, indices = base_dataset(build_split(recipe, spec, "val"))
    assert 0 < len(indices) < len(base)  # a held-out share of the scene tiles
    cm = np.zeros((2, 2), dtype=np.int64)
    for s, paths in enumerate(base.scenes):
        windows = [base.items[i][1:] for i in indices if base.items[i][0] == s]
        if not windows:
            continue
        pred = read_classes(rsfm.predict(s1_model, paths[0], tmp_path / f"{s}.tif",
                                         progress=False).classes)
        truth = read_classes(base.label_rasters[s]).astype(np.int64)
        region = np.zeros(truth.shape, dtype=bool)
        for col, row in windows:
            region[row : row + base.tile_size, col : col + base.tile_size] = True
        truth[~region] = -1
        cm += confusion_by_hand(pred, truth, 2)
    assert cm.sum() > 0
    assert_metrics(result, cm, ["dry", "water"])
    assert result.metrics["images"] == len({base.items[i][0] for i in indices})


# ------------------------------------------------------------------------------ other tasks
class Boxes(torch.nn.Module):
    """A detector stand-in: one box in the middle of every tile, carrying an rsfm config."""

    def __init__(self, saved) -> None:
        super().__init__()
        self.saved_config = saved
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, images):
        out = []
        for x in images:
            h, w = x.shape[-2:]
            s = 0.5 + 0.4 * torch.sigmoid(x.mean())
            out.append({"boxes": torch.tensor([[w * 0.3, h * 0.3, w * 0.45, h * 0.5]]),
                        "labels": torch.tensor([1]), "scores": s.reshape(1)})
        return out


class MeanClassifier(torch.nn.Module):
    """A classifier stand-in: logits are the mean of each band (carries an rsfm config)."""

    def __init__(self, saved) -> None:
        super().__init__()
        self.saved_config = saved
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return torch.nan_to_num(x).mean((2, 3)) * self.scale


def stand_in_config(task: str, bands, classes, **spec_kw):
    from rsfm.bands import resolve_band
    from rsfm.colors import class_colors
    from rsfm.config import ModelConfig
    from rsfm.saved import CardRef, SavedConfig
    from rsfm.spec import ClassInfo, InputSpec

    spec = InputSpec(bands=tuple(resolve_band(b) for b in bands),
                     classes=tuple(ClassInfo(n, c) for n, c in
                                   zip(classes, class_colors(len(classes)))), **spec_kw)
    head = {"detection": "faster_rcnn", "classification": "classification"}[task]
    model = ModelConfig(task=task, backbone="unknown", head=head, num_classes=len(classes))
    return SavedConfig(rsfm_version="test", model=model, input=spec, card=CardRef(name="unknown"))


def test_detection_evaluates_engine_boxes_against_voc_targets(tmp_path):
    from rsfm.data.labels import read_voc
    from rsfm.inference.predict import ScenePredictor
    from rsfm.metrics import DetectionMetrics
    from rsfm.spec import Normalization

    saved = stand_in_config("detection", ["RED", "GREEN", "BLUE"], ["Tree"], tile_size=128,
                            normalization=Normalization("none", value_scale=1 / 255))
    model = Boxes(saved)
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(TREES / "images" / "OSBS_029.tif", images)
    result = rsfm.evaluate(model, images=images, labels=TREES / "annotations",
                           out=tmp_path / "ev", progress=False)
    assert result.task == "detection" and result.metrics["images"] == 1

    pred = ScenePredictor(model, progress=False).predict(images / "OSBS_029.tif")
    assert len(pred.boxes) > 4  # one box per tile, merged across the overlaps
    _, boxes, labels = read_voc(TREES / "annotations" / "OSBS_029.xml", ["Tree"])
    expected = DetectionMetrics(["Tree"])
    expected.update([{"boxes": pred.boxes, "scores": pred.scores, "labels": pred.labels}],
                    [{"boxes": boxes, "labels": labels}])
    want = expected.compute()
    for key in ("map", "map_50", "map_75", "mar_100", "ap_Tree"):
        assert result.metrics[key] == want[key], key
    assert result.per_image == [{"image": "OSBS_029.tif", "targets": 61,
                                 "predictions": len(pred.boxes)}]
    rows = list(csv.DictReader((tmp_path / "ev" / "per_class.csv").open()))
    assert rows[0]["class"] == "Tree" and "confusion_matrix.png" not in {p.name for p in result.files}


def test_classification_evaluates_one_prediction_per_image(tmp_path):
    saved = stand_in_config("classification", ["VV", "VH"], ["vv", "vh"])
    root = tmp_path / "classes"
    for cls, chips in {"vv": ["Bolivia_312675", "Ghana_53713"], "vh": ["Spain_7370579"]}.items():
        (root / cls).mkdir(parents=True)
        for chip in chips:
            shutil.copy(S1 / "S1Hand" / f"{chip}_S1Hand.tif", root / cls)
    result = rsfm.evaluate(MeanClassifier(saved), images=root, out=tmp_path / "ev",
                           progress=False)
    # dB values: VV (about -10) is always larger than VH (about -17): everything is "vv"
    assert [r["predicted"] for r in result.per_image] == ["vv", "vv", "vv"]
    assert [r["label"] for r in result.per_image] == ["vh", "vv", "vv"]
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)
    assert result.metrics["confusion_matrix"] == [[2, 0], [1, 0]]
    assert result.metrics["recall_vv"] == 1.0 and result.metrics["precision_vh"] is None


# ------------------------------------------------------------------------------ the engine
@pytest.mark.parametrize("options", [
    {}, {"probabilities": "float32"}, {"threshold": 0.3}, {"overlap": 0, "batch_size": 3},
    {"min_object_size": 6, "max_hole_size": 6}])
def test_in_memory_prediction_equals_the_written_files(s1_model, tmp_path, options):
    from rsfm.inference.predict import ScenePredictor, predict_array

    scene = S1 / "S1Hand" / "Bolivia_312675_S1Hand.tif"  # NaN pixels: nodata in both
    written = rsfm.predict(s1_model, scene, tmp_path / "p.tif", progress=False, **options)
    arrays = predict_array(s1_model, scene, progress=False, **options)
    assert np.array_equal(arrays.classes, read_classes(written.classes))
    assert (~arrays.valid).sum() > 0 and np.all(arrays.classes[~arrays.valid] == arrays.nodata)
    if "probabilities" in options:
        with rasterio.open(written.probabilities) as ds:
            assert np.array_equal(arrays.probabilities, ds.read(), equal_nan=True)
    if "min_object_size" not in options:
        rows = list(ScenePredictor(s1_model, progress=False, **options).rows(scene))
        assert np.array_equal(np.concatenate([r.classes for r in rows]), arrays.classes)
        assert [r.row for r in rows] == sorted(r.row for r in rows) and rows[0].row == 0


def test_evaluate_is_the_public_function():
    from rsfm.evaluation import EvaluationResult, evaluate

    assert rsfm.evaluate is evaluate and EvaluationResult.__name__ == "EvaluationResult"
    assert "evaluate" in rsfm.__all__


# ------------------------------------------------------------------------------ errors first
@pytest.fixture
def no_compute(monkeypatch):
    """Fails the test if evaluation gets as far as loading the model."""
    import importlib

    module = importlib.import_module("rsfm.evaluation")

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the error")

    monkeypatch.setattr(module, "ScenePredictor", refuse)


def cli(args, capsys) -> tuple[int, str]:
    from rsfm.cli import main

    code = main(["evaluate", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.usefixtures("no_compute")
def test_split_not_in_recipe_names_the_key(s1_model, tmp_path, capsys):
    code, err = cli([s1_model, "--quiet"], capsys)  # the run's recipe has no data.test
    assert code == 2 and "data.test" in err and "--split val" in err
    code, err = cli([s1_model, "--split", "val", "--set", "data.val_fraction=0.0"], capsys)
    assert code == 2 and "data.val" in err and "data.val_fraction" in err
    with pytest.raises(ConfigError, match=r"not a run directory with a recipe\.yaml"):
        rsfm.evaluate(tmp_path)  # neither a run nor folders


@pytest.mark.usefixtures("no_compute")
def test_folders_missing_or_not_pairing_name_folder_and_files(s1_model, tmp_path, capsys):
    code, err = cli([s1_model, "--images", tmp_path / "nope", "--labels", tmp_path], capsys)
    assert code == 2 and f"--images folder '{tmp_path / 'nope'}' does not exist" in err
    images, labels = tmp_path / "im", tmp_path / "lab"
    images.mkdir()
    labels.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(S1 / "S1Hand" / "Ghana_53713_S1Hand.tif", images / f"{name}.tif")
    for name in ("a", "x"):
        shutil.copy(S1 / "LabelHand" / "Ghana_53713_LabelHand.tif", labels / f"{name}.tif")
    code, err = cli([s1_model, "--images", images, "--labels", labels], capsys)
    assert code == 2 and "2 of 3 images" in err and str(images) in err and str(labels) in err
    assert "['b.tif', 'c.tif']" in err and "['x.tif']" in err
    with pytest.raises(DataError, match="have no label"):
        rsfm.evaluate(s1_model, images=images, labels=labels)
    code, err = cli([s1_model, "--images", images, "--labels", labels, "--split", "val"], capsys)
    assert code == 2 and "one or the other" in err
    code, err = cli([s1_model, "--labels", labels], capsys)
    assert code == 2 and "--labels needs --images" in err


@pytest.mark.usefixtures("no_compute")
def test_unwritable_output_fails_before_compute(s1_model, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    recipe = tmp_path / "r.yaml"
    from rsfm.recipe import recipe_to_yaml, validate_recipe

    recipe.write_text(recipe_to_yaml(validate_recipe(
        tiny_recipe(tmp_path / "o", data={"kind": "chips", "test": S1_TEST}))))
    code, err = cli([s1_model, recipe, "--out", blocker / "ev"], capsys)
    assert code == 2 and "--out" in err and "is a file" in err


def test_a_band_missing_from_an_image_fails_before_compute(s1_model, tmp_path):
    from rsfm.errors import BandError

    images, labels = tmp_path / "im", tmp_path / "lab"
    images.mkdir()
    labels.mkdir()
    shutil.copy(S1 / "S2Hand" / "Spain_7370579_S2Hand.tif", images / "a.tif")  # no VV/VH
    shutil.copy(S1 / "LabelHand" / "Spain_7370579_LabelHand.tif", labels / "a.tif")
    with pytest.raises(BandError, match=r"a\.tif"):
        rsfm.evaluate(s1_model, images=images, labels=labels, write=False, progress=False)
