"""`rsfm convert terratorch` on the shapes of real public TerraTorch configs (one fixture each in
tests/data/terratorch/, whose header names the upstream file), and on values of odd types.

Each test pins one defect found by converting those configs: what TerraTorch does with the value,
and what the recipe must say so that rsfm does the same (or a note says why it cannot).
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest
import yaml

from rsfm.convert import convert_terratorch
from rsfm.errors import ConfigError, RsfmError
from rsfm.recipe import validate_recipe

DATA = Path(__file__).parent / "data" / "terratorch"
HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def convert(name: str):
    return convert_terratorch(DATA / name)


def notes(result) -> str:
    return " | ".join(result.notes)


def test_digit_string_bands_are_said_to_get_new_filters():
    """dataset_bands ['0'..'5'] name no band: every filter is new, which must be said."""
    result = convert("timm_resnet50_string_bands_unet.yaml")
    d = result.recipe["data"]
    assert d["file_bands"] == ["0", "1", "2", "3", "4", "5"]
    assert [b["name"] for b in d["bands"]] == ["0", "1", "2", "3", "4", "5"]
    assert "no pretrained filter" in notes(result)
    # allow_substring_split_file changes nothing without split files
    assert "data.init_args.allow_substring_split_file" not in result.unmapped
    assert result.recipe["model"]["out_indices"] == [0, 1, 2]
    assert result.recipe["train"]["optimizer"]["lr"] == 6e-05


def test_declared_layers_are_listed_in_a_note():
    config = yaml.safe_load((DATA / "smp_unet_burnscars_constant_scale.yaml").read_text())
    bands = [*HLS, "DEM"]
    config["data"]["init_args"].update(dataset_bands=bands, output_bands=bands,
                                       means=[0.0] * 7, stds=[1.0] * 7)
    result = convert_terratorch(config)
    assert result.recipe["data"]["bands"][-1] == {"name": "DEM", "wavelength": None}
    assert "'DEM'" in notes(result) and "new" in notes(result)


def test_smp_unet_keeps_constant_scale_with_pretraining_statistics():
    result = convert("smp_unet_burnscars_constant_scale.yaml")
    m, d = result.recipe["model"], result.recipe["data"]
    assert (m["backbone"], m["head"], m["pretrained"]) == ("resnet50", "unet", True)
    assert d["normalization"]["value_scale"] == 10000
    assert d["normalization"]["mean"][0] == 775.229
    assert d["bands"] == HLS and d["classes"] == ["Not burned", "Burned"]
    assert result.recipe["train"]["loss"] == {"name": "dice", "class_weights": [0.1, 0.9]}


def test_mask_rcnn_on_a_datamodule_without_outlines_falls_back_to_boxes():
    result = convert("detection_substation_mask_rcnn.yaml")
    m = result.recipe["model"]
    assert m["head"] == "faster_rcnn"
    assert "mask-rcnn" in notes(result) and "mask_rcnn" in notes(result)
    assert m["head_kwargs"] == {"min_size": 224, "max_size": 224}
    # integer S2 indices named by the backbone's bands (same count)
    assert result.recipe["data"]["bands"] == HLS
    validate_recipe(result.recipe)


def test_multimodal_datamodule_stacks_modalities():
    result = convert("multimodal_s2_s1_prithvi_fcn.yaml")
    d, text = result.recipe["data"], notes(result)
    norm = d["normalization"]
    assert norm["mode"] == "stats" and len(norm["mean"]) == len(norm["std"]) == 14
    assert norm["mean"][:2] == [1793.243, 1924.863] and norm["mean"][-2:] == [-12.577, -20.265]
    assert d["train"]["labels"] == "/data/sen1floods11/HandLabeled/LabelHand"
    assert "S2L2A" in text and "S1" in text and "one raster" in text
    for split in ("train", "val"):
        assert f"data.init_args.{split}_data_root.S1" in result.unmapped
    assert "data.init_args.image_grep.S1" in result.unmapped
    assert len(result.recipe["model"]["bands"] if "bands" in result.recipe["model"]
               else d["bands"]) == 14
    validate_recipe(result.recipe)


def test_data_section_in_another_file_is_followed():
    result = convert("data_file_reference.yaml")
    d = result.recipe["data"]
    assert d["bands"] == HLS and len(d["file_bands"]) == 13
    assert d["train"]["images"] == "../chips/S2Hand"
    # means/stds given as text files are read as TerraTorch does (np.genfromtxt)
    assert d["normalization"]["mean"] == [0.1412956, 0.13795798, 0.12353792, 0.30902815,
                                          0.2044958, 0.11912015]
    assert d["normalization"]["std"][3] == 0.11798815
    assert d["normalization"]["value_scale"] == 0.0001
    assert "datamodules/sen1floods11_s2_hls6.yaml" in notes(result)
    assert not [k for k in result.unmapped if k.startswith("data")]


def test_data_file_that_does_not_exist_is_still_said_clearly(tmp_path):
    src = tmp_path / "c.yaml"
    config = yaml.safe_load((DATA / "data_file_reference.yaml").read_text())
    config["data"] = "missing/dm.yaml"
    src.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"data refers to the file 'missing/dm.yaml'.*not found"):
        convert_terratorch(src)


def test_landslide4sense_files_hold_14_bands():
    result = convert("landslide4sense_prithvi600_focal.yaml")
    d = result.recipe["data"]
    assert d["bands"] == ["BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2"]
    assert d["file_bands"][:2] == ["COASTAL_AEROSOL", "BLUE"] and d["file_bands"][-2:] == \
        ["SLOPE", "DEM"]
    assert d["normalization"] == {"mode": "stats",
                                  "mean": [-0.3074, -0.1277, -0.0625, 0.0802, 0.0823, 0.0516],
                                  "std": [0.8775, 0.8860, 0.8869, 0.8491, 0.8848, 0.9232]}
    assert result.recipe["train"]["loss"]["name"] == "focal"


@pytest.mark.parametrize("name", ["detection_vhr10_tl_no_lr.yaml",
                                  "burn_intensity_tl_3_frames_steplr.yaml",
                                  "sen1floods11_module_resize_scale_modules.yaml",
                                  "classification_timm_factory_scaled_rgb.yaml"])
def test_other_real_shapes_convert(name):
    result = convert(name)
    validate_recipe(result.recipe)


# ------------------------------------------------------------------ values of odd types
BASE = "burn_scars_prithvi_v2_upernet.yaml"
ODD = [None, {}, [], "x", 0, -1, 1.5, True, [1, 2], {"a": 1}, "${X}", [None], "<p>"]
KEYS = [("trainer", "max_epochs"), ("trainer", "max_steps"),
        ("model", "init_args", "model_args", "necks", 0, "indices"),
        ("model", "init_args", "model_args", "necks", 1, "effective_time_dim"),
        ("model", "init_args", "class_names"), ("model", "init_args", "aux_loss"),
        ("model", "init_args", "model_args", "backbone_coords_encoding"),
        ("model", "init_args", "model_args", "backbone_out_indices"),
        ("data", "init_args", "train_transform", 0, "init_args"),
        ("lr_scheduler", "init_args", "T_max"), ("model", "init_args", "lr")]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: ".".join(map(str, k)))
def test_values_of_odd_types_never_escape_as_tracebacks(key):
    base = yaml.safe_load((DATA / BASE).read_text())
    base["model"]["init_args"]["model_args"]["peft_config"] = {
        "method": "LORA", "peft_config_kwargs": {"target_modules": ["qkv"]}}
    base["lr_scheduler"] = {"class_path": "CosineAnnealingLR", "init_args": {"T_max": 10,
                                                                              "eta_min": 1e-6}}
    base["model"]["init_args"]["model_args"]["necks"][1]["effective_time_dim"] = 1
    for value in ODD:
        config = copy.deepcopy(base)
        node = config
        for k in key[:-1]:
            node = node[k]
        node[key[-1]] = value
        with contextlib.suppress(RsfmError):
            convert_terratorch(config)


def test_lora_targets_of_odd_types_and_empty_unet_channels():
    base = yaml.safe_load((DATA / BASE).read_text())
    args = base["model"]["init_args"]["model_args"]
    args["peft_config"] = {"method": "LORA", "peft_config_kwargs": {"target_modules": 3}}
    with pytest.raises(ConfigError, match="target_modules"):
        convert_terratorch(base)
    args.pop("peft_config")
    args.update(decoder="UNetDecoder", decoder_channels=[])
    validate_recipe(convert_terratorch(base).recipe)
