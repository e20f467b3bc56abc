"""Model cards: metadata the Hub parses (read back with ``ModelCard.load``), tags from the data
(not from the backbone's pretraining), base model and relation, splits, metrics, citation,
input/classes/ignore-index sections, and usage lines that run against the staged folder."""

from __future__ import annotations

import shlex
import shutil
from dataclasses import replace

import pytest
from hub_utils import SCENE, saved_run
from huggingface_hub import ModelCard

from rsfm import __version__
from rsfm.cards import get_card
from rsfm.config import LoraSettings, ModelConfig
from rsfm.saved import SavedConfig, architecture, card_ref
from rsfm.schema import DataConfig, DataSource, NormalizationConfig
from rsfm.spec import resolve_input_spec


def saved(backbone="dofa_base", bands=("VV", "VH"), *, pretrained=False, sensor=None,
          normalization=None, metrics=None, datasets=(), lora=None, ignore_index=-1,
          classes=("dry", "water"), **model) -> SavedConfig:
    cfg = ModelConfig(task="segmentation", backbone=backbone, head="fcn",
                      num_classes=len(classes), pretrained=pretrained, **model)
    data = DataConfig(train=DataSource(images="images"), bands=bands, sensor=sensor, classes=classes, ignore_index=ignore_index,
                      tile_size=64, normalization=normalization or NormalizationConfig(
                          mode="stats", mean=[-10.0, -17.0], std=[4.0, 5.0]))
    card = get_card(backbone)
    return SavedConfig(rsfm_version=__version__, model=architecture(cfg),
                       input=resolve_input_spec(cfg, card, data), card=card_ref(card),
                       lora=lora, metrics=metrics or {}, datasets=tuple(datasets))


def card_of(config, repo_id="org/model", tmp_path=None, **kw):
    from rsfm.hub import model_card

    card = model_card(config, repo_id, **kw)
    assert isinstance(card, ModelCard)
    if tmp_path is not None:  # what the Hub reads back
        card.save(tmp_path / "README.md")
        card = ModelCard.load(tmp_path / "README.md")
    return card


# ------------------------------------------------------------------------------------ tags
def test_sar_model_is_tagged_from_its_data_not_the_backbone(tmp_path):
    meta = card_of(saved(), tmp_path=tmp_path).data
    assert {"rsfm", "remote-sensing", "segmentation", "dofa", "sentinel-1", "sar"} <= set(meta.tags)
    assert not {"sentinel2", "sentinel-2", "rgb", "multispectral"} & set(meta.tags)
    assert meta.pipeline_tag == "image-segmentation" and meta.library_name == "rsfm"


def test_rgb_and_multispectral_tags():
    rgb = card_of(saved("resnet18", ("RED", "GREEN", "BLUE"),
                        normalization=NormalizationConfig(mode="per_tile"))).data
    assert "rgb" in rgb.tags and "multispectral" not in rgb.tags and "sar" not in rgb.tags
    s2 = card_of(saved("dofa_base", ("B2", "B3", "B4", "B8"), sensor="sentinel2",
                       normalization=NormalizationConfig(mode="per_tile"))).data
    assert {"sentinel-2", "multispectral"} <= set(s2.tags) and "rgb" not in s2.tags
    hls = card_of(saved("prithvi_eo_v2_300m", ("BLUE", "GREEN", "RED", "NIR_NARROW"),
                        normalization=NormalizationConfig(mode="none"))).data
    assert "multispectral" in hls.tags  # several sensors have these bands: none is claimed
    assert not {"sentinel-2", "landsat-8", "hls"} & set(hls.tags)


# ------------------------------------------------------------------------------ base model
def test_from_scratch_card_has_no_base_model_and_shows_the_real_normalisation(tmp_path):
    config = saved("resnet18", ("RED", "GREEN", "BLUE"),
                   normalization=NormalizationConfig(mode="per_tile", value_scale=0.0001))
    card = card_of(config, tmp_path=tmp_path)
    assert card.data.base_model is None and card.data.get("base_model_relation") is None
    text = card.text
    assert "Trained from scratch" in text and "ImageNet" not in text
    assert "`per_tile`" in text and "x 0.0001" in text
    assert "| mean | std |" not in text  # no empty statistics table


def test_finetuned_card_names_base_model_and_checkpoint(tmp_path):
    card = card_of(saved(pretrained=True), tmp_path=tmp_path)
    assert card.data.base_model == "earthflow/DOFA"
    assert card.data.base_model_relation == "finetune"
    assert "earthflow/DOFA" in card.text and get_card("dofa_base").weights.revision in card.text
    assert "sentinel-2" not in card.data.tags  # DOFA's pretraining sensor is not the data's


def test_adapter_card(tmp_path):
    config = saved(pretrained=True, lora=LoraSettings(r=4, alpha=8))
    card = card_of(config, tmp_path=tmp_path, lora_only=True)
    assert card.data.base_model_relation == "adapter" and {"lora", "peft"} <= set(card.data.tags)
    assert "adapter" in card.text and "r=4" in card.text


def test_base_model_repo():
    from rsfm.hub import base_model_repo

    assert base_model_repo(saved()) is None
    assert base_model_repo(saved(pretrained=True)) == "earthflow/DOFA"
    assert base_model_repo(saved(weights="hf://a/b/c/d.pt@main")) == "a/b"
    assert base_model_repo(saved(weights="/local/file.pt")) is None


# ------------------------------------------------------------------------ metrics, datasets
def test_model_index_has_test_and_validation_splits(tmp_path):
    config = saved(metrics={"epoch": 3, "val_miou": 0.61234, "val_accuracy": 0.9,
                            "test_miou": 0.58, "train_loss": 0.2},
                   datasets=["cloudtostreet/sen1floods11"])
    card = card_of(config, "org/flood", tmp_path=tmp_path)
    meta = card.data
    assert meta.datasets == ["cloudtostreet/sen1floods11"]
    got = {(r.dataset_split, r.metric_type, r.metric_value, r.dataset_name)
           for r in meta.eval_results}
    assert got == {("test", "mean_iou", 0.58, "cloudtostreet/sen1floods11"),
                   ("validation", "mean_iou", 0.6123, "cloudtostreet/sen1floods11"),
                   ("validation", "accuracy", 0.9, "cloudtostreet/sen1floods11")}
    assert meta.model_name == "flood" and set(meta.metrics) == {"mean_iou", "accuracy"}
    assert "| test | miou | 0.5800 |" in card.text and "(epoch 3)" in card.text
    assert "train_loss" not in card.text


def test_no_metrics_no_model_index(tmp_path):
    meta = card_of(saved(), tmp_path=tmp_path).data
    assert meta.eval_results is None and meta.to_dict().get("model-index") is None


# ------------------------------------------------------------------------------- body
def test_card_sections(tmp_path):
    config = saved(ignore_index=255, datasets=["org/floods"])
    text = card_of(config).text
    # input: bands with wavelengths and statistics
    assert "| 1 | `VV` | VV | 5.40489 | -10 | 4 |" in text
    assert "| 2 | `VH` | VH | 5.40489 | -17 | 5 |" in text
    # classes with colours, and the ignore index
    colors = config.input.class_colors
    assert f"| 1 | water | `#{colors[1][0]:02x}{colors[1][1]:02x}{colors[1][2]:02x}` |" in text
    assert "Ignore index: `255`" in text
    assert "## Limitations" in text and "`org/floods`" in text
    assert "## Citation" in text and "```bibtex" in text and "@" in text


def test_card_lists_label_values_when_they_differ_from_ids(tmp_path):
    config = saved(ignore_index=255)
    config = replace(config, input=replace(config.input, classes=tuple(
        replace(c, value=v) for c, v in zip(config.input.classes, (1, 5)))))
    text = card_of(config).text
    assert "| id | class | colour | label value |" in text
    assert "| 1 | water |" in text and text.split("| 1 | water |")[1].split("\n")[0].endswith(" 5 |")
    assert "label value" not in card_of(saved(ignore_index=255)).text
    from rsfm.saved import read_saved_config, write_saved_config  # the values survive config.json

    assert read_saved_config(write_saved_config(tmp_path / "config.json", config)).input.class_values == (1, 5)


def test_legacy_config_card_finds_the_citation():
    from hub_utils import LEGACY

    from rsfm.hub import load_config

    text = card_of(load_config(LEGACY)).text
    assert "szwarcman2024prithvi" in text  # from the card: 0.1 configs did not record it


def test_usage_lines_parse():
    import argparse

    from rsfm.commands import predict as predict_command
    from rsfm.hub.card import usage_snippets

    python, cli = usage_snippets("org/flood")
    assert 'rsfm.from_pretrained("org/flood")' in python
    compile(python, "<card>", "exec")
    argv = shlex.split(cli)
    assert argv[:2] == ["rsfm", "predict"]
    parser = argparse.ArgumentParser()
    predict_command.add_arguments(parser)
    args = parser.parse_intermixed_args(argv[2:])  # as rsfm.cli parses it
    assert args.model == "org/flood" and args.inputs == ["scene.tif"]
    assert args.out == "prediction.tif"
    text = card_of(saved(), "org/flood").text
    assert python in text and cli in text


def test_usage_lines_run_against_the_staged_folder(tmp_path, monkeypatch, capsys):
    """The card's Python snippet and command line, with the repo id replaced by the staged
    folder, run as written (needs the inference owner's migrated rsfm.predict)."""
    from rsfm.cli import main
    from rsfm.hub import stage
    from rsfm.hub.card import usage_snippets

    folder = saved_run(tmp_path / "run", ignore_index=-1, nodata=None)
    staged = stage(folder, tmp_path / "repo", "org/flood")
    text = (staged.folder / "README.md").read_text()
    python, cli = usage_snippets("org/flood")
    assert python in text and cli in text
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SCENE, work / "scene.tif")
    monkeypatch.chdir(work)
    exec(compile(python.replace("org/flood", str(staged.folder)), "<card>", "exec"), {})  # noqa: S102
    assert "['VV', 'VH'] ['dry', 'water']" in capsys.readouterr().out
    assert (work / "prediction.tif").is_file()
    (work / "prediction.tif").unlink()
    argv = shlex.split(cli.replace("org/flood", str(staged.folder)))
    assert argv[0] == "rsfm" and main(argv[1:]) == 0  # the console script's entry point
    assert (work / "prediction.tif").is_file()


@pytest.mark.parametrize("task", ["detection", "classification"])
def test_other_tasks_pipeline_tags(task):
    head = {"detection": "faster_rcnn", "classification": "classification"}[task]
    base = saved("resnet18", ("RED", "GREEN", "BLUE"),
                 normalization=NormalizationConfig(mode="per_tile"))
    config = replace(base, model=replace(base.model, task=task, head=head))
    card = card_of(config)
    assert card.data.pipeline_tag == {"detection": "object-detection",
                                      "classification": "image-classification"}[task]
    if task == "detection":
        assert "0 is the background" in card.text
