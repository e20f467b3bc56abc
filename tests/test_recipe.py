"""Recipes: schema validation with YAML paths and close matches, includes, overrides, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rsfm.errors import ConfigError
from rsfm.recipe import apply_overrides, load_recipe, recipe_schema, recipe_to_dict

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))

BASE = {
    "name": "t",
    "model": {"task": "segmentation", "backbone": "dofa_base", "head": "fcn", "num_classes": 2,
              "bands": ["VV", "VH"]},
    "data": {"train": {"images": "imgs", "labels": "labs"}, "classes": ["dry", "water"]},
}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def error_of(data: dict, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_recipe(data, overrides)
    return str(info.value)


def test_valid_recipe_defaults_and_relative_paths(tmp_path):
    r = load_recipe(write(tmp_path / "r.yaml", BASE))
    assert r.train.optimizer.name == "adamw" and r.metric == "miou" and r.metric_mode == "max"
    assert r.data.train.images == str(tmp_path / "imgs")  # relative to the recipe file
    assert r.data.classes == ("dry", "water")
    assert r.source == str(tmp_path / "r.yaml")


def test_unknown_key_names_path_and_close_match():
    bad = {**BASE, "train": {"optimizer": {"lr": 1e-3, "wieght_decay": 0.1}}}
    msg = error_of(bad)
    assert "train.optimizer.wieght_decay" in msg and "'weight_decay'" in msg
    msg = error_of({**BASE, "trian": {}})
    assert "trian" in msg and "'train'" in msg


def test_wrong_type_and_bad_value_show_path_and_value():
    msg = error_of(BASE, ["train.epochs=many"])
    assert "train.epochs" in msg and "'many'" in msg
    msg = error_of(BASE, ["train.optimizer.lr=-0.1"])
    assert "train.optimizer.lr" in msg and "-0.1" in msg
    msg = error_of(BASE, ["train.loss.name=dcie"])
    assert "train.loss.name" in msg and "'dice'" in msg


def test_unknown_backbone_and_head_mismatch():
    msg = error_of(BASE, ["model.backbone=dofa_bsae"])
    assert "model.backbone" in msg and "dofa_base" in msg
    msg = error_of(BASE, ["model.head=faster_rcnn"])
    assert "model.head" in msg
    msg = error_of(BASE, ["data.classes=[a, b, c]"])
    assert "data.classes" in msg and "num_classes" in msg


def test_unknown_augmentation_close_match():
    msg = error_of(BASE, ["data.augment={hfilp: 0.5}"])
    assert "data.augment.hfilp" in msg and "'hflip'" in msg


def test_overrides_parse_yaml_values():
    out = apply_overrides({"a": {"b": 1}}, ["a.b=3", "a.c=[1, 2]", "x.y.z=null", "s=abc"])
    assert out == {"a": {"b": 3, "c": [1, 2]}, "x": {"y": {"z": None}}, "s": "abc"}
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        apply_overrides({}, ["novalue"])
    r = load_recipe(BASE, ["train.epochs=3", "model.backbone=resnet18", "model.head=unet"])
    assert r.train.epochs == 3 and r.model.backbone == "resnet18"


def test_include_nested_and_top_level(tmp_path):
    write(tmp_path / "stats.yaml", {"bands": ["VV", "VH"], "mean": [-10.0, -17.0],
                                    "std": [4.0, 5.0], "count": 10, "min": [-40, -40],
                                    "max": [5, 5], "files": 2, "value_scale": 1.0})
    write(tmp_path / "common.yaml", {"train": {"epochs": 7, "seed": 3}})
    data = {**BASE, "include": "common.yaml", "train": {"seed": 5},
            "data": {**BASE["data"], "normalization": {"mode": "stats", "include": "stats.yaml"}}}
    r = load_recipe(write(tmp_path / "r.yaml", data))
    assert r.train.epochs == 7 and r.train.seed == 5  # keys next to include win
    assert r.data.normalization.mean == (-10.0, -17.0)
    write(tmp_path / "loop.yaml", {"include": "loop.yaml"})
    with pytest.raises(ConfigError, match="includes itself"):
        load_recipe(write(tmp_path / "r2.yaml", {**BASE, "include": "loop.yaml"}))
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(write(tmp_path / "r3.yaml", {**BASE, "include": "missing.yaml"}))


def test_round_trip_and_schema(tmp_path):
    r = load_recipe(BASE)
    again = load_recipe(write(tmp_path / "resolved.yaml", recipe_to_dict(r)))
    assert again == r.__class__(**{**r.__dict__, "source": again.source})
    schema = recipe_schema()
    assert {"model", "data", "train", "lora", "eval", "output"} <= set(schema["properties"])
    json.dumps(schema)


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_validate(path):
    r = load_recipe(path)
    assert r.name


def test_cli_check_and_schema(tmp_path, capsys):
    from rsfm.cli import main

    path = write(tmp_path / "r.yaml", BASE)
    assert main(["check", str(path), "train.epochs=2", "data.normalization.mode=none"]) == 0
    out = capsys.readouterr().out
    assert "epochs: 2" in out
    assert main(["check", str(path), "train.epochs=x"]) == 2
    assert "train.epochs" in capsys.readouterr().err
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"]


def test_check_runs_the_pre_training_checks(capsys):
    from pathlib import Path

    from rsfm.cli import main

    demo = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
    assert main(["check", str(demo)]) == 0
    assert main(["check", str(demo), "model.bands=[VV, HH]"]) == 2
    assert "statistics are for bands ['VV', 'VH']" in capsys.readouterr().err


def test_check_rejects_two_disagreeing_band_lists(capsys):
    """Issue 9: `rsfm check ... data.bands=[...]` printed "recipe OK" while model.bands had 5 bands."""
    from rsfm.cli import main

    recipe = str(ROOT / "recipes" / "dofa_s2_band_subset.yaml")
    assert main(["check", recipe, "data.bands=[B2, B3, B4, B8]"]) == 2
    err = capsys.readouterr().err
    assert "model.bands" in err and "data.bands" in err and "recipe OK" not in err
    assert main(["check", recipe, "data.bands=[B2, B3, B4, B8, B11]", "--quiet"]) == 0  # agree


def test_only_data_bands_reach_the_model():
    """Issue 9: with only data.bands set, the model silently got the card's band order."""
    from rsfm.preflight import preflight

    data = {**BASE, "model": {k: v for k, v in BASE["model"].items() if k != "bands"},
            "data": {**BASE["data"], "bands": ["VH", "VV"],
                     "normalization": {"mode": "stats", "mean": [0.0, 0.0], "std": [1.0, 1.0]}}}
    assert preflight(load_recipe(data)).band_names == ["VH", "VV"]


def test_declared_ancillary_band_and_unknown_band_hint():
    from rsfm.preflight import preflight

    data = {**BASE, "model": {**BASE["model"], "backbone": "resnet18", "head": "unet",
                              "bands": ["RED", {"name": "DEM", "wavelength": None,
                                                "description": "SRTM, m"}]},
            "data": {**BASE["data"], "normalization": {"mode": "per_tile"}}}
    spec = preflight(load_recipe(data))
    assert spec.band_names == ["RED", "DEM"] and spec.bands[1].wavelength_um is None
    data["model"]["bands"] = ["RED", "DEM"]  # loads; the band is resolved (and rejected) at preflight
    with pytest.raises(ConfigError, match=r"declare it: \{name: DEM, wavelength: null\}"):
        preflight(load_recipe(data))


def test_max_time_and_renamed_keys():
    r = load_recipe(BASE, ["train.max_time=1h30m", "train.keep_checkpoints=3",
                           "output.tensorboard=true"])
    assert r.max_seconds == 5400 and r.output.keep_checkpoints == 3
    assert r.output.trackers == ("tensorboard",)
    assert "train.max_time" in error_of(BASE, ["train.max_time=soon"])


def test_metric_names_follow_torchmetrics():
    det = {**BASE, "model": {"task": "detection", "backbone": "resnet50", "head": "faster_rcnn",
                             "num_classes": 1}, "data": {**BASE["data"], "classes": ["tree"]}}
    assert load_recipe(det, ["eval.metric=map50"]).metric == "map_50"  # the 0.1 spelling still reads
    assert "is not a classification metric" in error_of(
        {**BASE, "model": {**BASE["model"], "task": "classification", "head": "classification"},
         "data": {**BASE["data"], "kind": "class_folders"}}, ["eval.metric=miou"])


def test_trackers_are_checked_before_training(monkeypatch, capsys):
    """output.tensorboard used to default to true and swallow a missing tensorboard silently."""
    import importlib.util

    from rsfm.cli import main

    recipe = str(ROOT / "recipes" / "demo.yaml")
    assert main(["check", recipe, "--quiet", "output.trackers=[tensorbord]"]) == 2
    assert "Did you mean 'tensorboard'" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    assert main(["check", recipe, "--quiet", "output.trackers=[wandb]"]) == 2
    assert "pip install 'rsfm[wandb]'" in capsys.readouterr().err
    assert main(["check", recipe, "--quiet", "output.trackers=[tensorboard]"]) == 0


def test_run_names_and_output_folders_next_to_data_stay_allowed(tmp_path):
    """Regression: the checks on ``name`` and on an ``output.dir`` inside the data refused
    ordinary recipes (a dotted version name, a run folder beside the folders a glob matches)."""
    from rsfm.preflight import check_output_dir

    demo = Path(__file__).parents[1] / "recipes" / "demo.yaml"
    for name in ("v1..2", "buildings / s2"):
        assert load_recipe(demo, [f"name={name}", "output.dir=runs/x"]).name == name
    assert load_recipe(demo, ["name=v1..2", "output.dir=runs/{name}"]).name == "v1..2"
    with pytest.raises(ConfigError, match="name"):
        load_recipe(demo, ["name=a/b", "output.dir=runs/{name}"])
    for sub in ("a/S1Hand", "b/S1Hand", "proj"):
        (tmp_path / sub).mkdir(parents=True)
    beside = {f"data.train.images={tmp_path}/*/S1Hand": f"{tmp_path}/runs/x",
              f"data.train.images={tmp_path}/proj/*.tif": f"{tmp_path}/proj/runs/a"}
    for images, out in beside.items():
        check_output_dir(load_recipe(demo, [images, f"output.dir={out}"]))
    inside = load_recipe(demo, [f"data.train.images={tmp_path}/*/S1Hand",
                                f"output.dir={tmp_path}/a/S1Hand/run"])
    with pytest.raises(ConfigError, match=r"lies inside the data\.train\.images folder"):
        check_output_dir(inside)
