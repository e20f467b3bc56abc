"""rsfm.factory: models built for an InputSpec, the round trip through (config, input_spec),
declared bands with pretrained weights, and the checks made before any compute."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import rsfm
from rsfm.bands import declared_band
from rsfm.cards import get_card
from rsfm.config import BandDecl, ModelConfig, NeckConfig
from rsfm.errors import ConfigError, UnknownNameError
from rsfm.factory import build_model, check_model_config, create_model
from rsfm.schema import DataConfig, DataSource
from rsfm.spec import resolve_input_spec

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}
S2_DEM = ["B02", "B03", "B04", {"name": "DEM", "wavelength": None, "description": "SRTM, m"}]


def config(**kw) -> ModelConfig:
    base = {"task": "segmentation", "backbone": "prithvi_eo_v2_300m", "head": "fcn", "num_classes": 2,
            "backbone_kwargs": TINY, "neck": NeckConfig(out_channels=16)}
    return ModelConfig(**{**base, **kw})


def spec_of(cfg: ModelConfig, **data):
    data_cfg = DataConfig(train=DataSource(images="x"), **data) if data else None
    return resolve_input_spec(cfg, get_card(cfg.backbone), data_cfg)


def shapes(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture
def tiny_prithvi(tmp_path, monkeypatch):
    """A user card ``tiny_prithvi_dem`` (Prithvi-300M's card, tiny arch) and a checkpoint in the
    official layout with distinct per-band filters."""
    source = rsfm.create_backbone("prithvi_eo_v2_300m", **TINY)
    path = tmp_path / "tiny.pt"
    torch.save({f"encoder.{k}": v for k, v in source.state_dict().items()}, path)
    cards = tmp_path / "cards"
    cards.mkdir()
    text = Path(get_card("prithvi_eo_v2_300m").source).read_text()
    text = text.replace("name: prithvi_eo_v2_300m", "name: tiny_prithvi_dem").replace(
        "aliases: [prithvi_eo_v2_300]", "aliases: []")
    text = text.replace("embed_dim: 1024", "embed_dim: 64").replace("depth: 24", "depth: 2").replace(
        "num_heads: 16", "num_heads: 2")
    (cards / "tiny_prithvi_dem.yaml").write_text(text)
    monkeypatch.setenv("RSFM_ADAPTER_PATH", str(cards))
    return path, source.patch_embed.proj.weight.detach()


def test_declared_dem_band_keeps_pretrained_filters_and_reports_the_new_channel(tiny_prithvi):
    path, w_src = tiny_prithvi
    model = create_model("segmentation", "tiny_prithvi_dem", head="fcn", num_classes=2, bands=S2_DEM,
                         weights=str(path), neck={"out_channels": 16})
    report = model.load_report
    assert report is not None and report.ok and report.source == str(path)
    assert report.bands.kept == ["B2<-BLUE", "B3<-GREEN", "B4<-RED"]
    assert report.bands.initialized == ["DEM"]
    assert report.bands.dropped == ["NIR_NARROW", "SWIR_1", "SWIR_2"]
    assert model.backbone.band_report is report.bands  # the backbone attribute still works
    scale = 6 / 4  # the band set changed: the layer keeps the summed response of 6 bands
    w_new = model.backbone.patch_embed.proj.weight
    torch.testing.assert_close(w_new[:, :3], w_src[:, :3] * scale)
    torch.testing.assert_close(w_new[:, 3], w_src.mean(dim=1) * scale)
    dem = model.input_spec.bands[3]
    assert (dem.name, dem.wavelength_um, dem.common_name, dem.description) == ("DEM", None, None, "SRTM, m")
    assert model.config.bands is None  # the architecture; the bands live in the input spec
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 4, 32, 32)).shape == (1, 2, 32, 32)


def test_round_trip_through_config_and_input_spec():
    cfg = config(bands=("B04", "B8A"), classes=("dry", "water"))
    spec = spec_of(cfg, indices=("NDVI",))
    model = create_model(cfg, input_spec=spec)
    assert spec.channel_names == ["B4", "B8A", "NDVI"]
    assert model.backbone.patch_embed.proj.weight.shape[1] == 3  # bands + index channels
    assert model.input_spec is spec and model.config == dataclasses.replace(cfg, bands=None, classes=None)
    again = create_model(model.config, input_spec=model.input_spec)
    assert shapes(again) == shapes(model)
    assert again.config == model.config and again.input_spec == model.input_spec
    assert shapes(build_model(model.config, model.input_spec)) == shapes(model)


def test_create_model_from_a_recipe_uses_the_data_bands():
    from rsfm.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "dofa_s2_band_subset.yaml", [
        "model.pretrained=false", "model.bands=null", "data.bands=[B2, B3, B4, B8]",
        "model.backbone_kwargs={depth: 2, embed_dim: 64, num_heads: 2}"])
    model = create_model(recipe)
    assert model.input_spec.band_names == ["B2", "B3", "B4", "B8"]  # not the card's 9 bands
    assert model.backbone.wavelengths.tolist() == pytest.approx([0.49, 0.56, 0.665, 0.842])
    assert model.input_spec.tile_size == 256 and model.input_spec.ignore_index == 255


def test_input_spec_disagreeing_with_the_config_names_both():
    cfg = config(bands=("B04", "B8A"))
    other = spec_of(config(bands=("B02", "B03")))
    with pytest.raises(ConfigError, match=r"model.bands \['B4', 'B8A'\] and input_spec.bands \['B2', 'B3'\]"):
        create_model(cfg, input_spec=other)
    with pytest.raises(ConfigError, match="num_classes is 3"):
        create_model(dataclasses.replace(cfg, bands=None, num_classes=3), input_spec=other)


@pytest.mark.parametrize("make", [
    lambda: create_model("segmentation", "dofa_base", head="fcn", num_classes=2, backbone_kwargs=TINY,
                         bands=["B04", {"name": "DEM", "wavelength": None}]),
    lambda: check_model_config(config(backbone="dofa_base", bands=("B04", BandDecl("DEM"))),
                               spec_of(config(backbone="dofa_base", bands=("B04", BandDecl("DEM"))))),
    lambda: rsfm.create_backbone("dofa_base", bands=["B04", declared_band("DEM")], **TINY),
])
def test_dofa_channel_without_wavelength_names_the_band(make):
    with pytest.raises(ConfigError, match=r"DOFA needs a wavelength for band 'DEM'; declare "
                                          r"\{name: DEM, wavelength: <µm>\} or set model.wavelengths"):
        make()


def test_dofa_takes_declared_wavelengths_and_rejects_index_channels():
    model = create_model("segmentation", "dofa_base", head="fcn", num_classes=2, backbone_kwargs=TINY,
                         bands=["B04", {"name": "THERMAL_X", "wavelength": 11.0}])
    assert model.backbone.wavelengths.tolist() == pytest.approx([0.665, 11.0])
    cfg = config(backbone="dofa_base", bands=("B04", "B08"))
    with pytest.raises(ConfigError, match=r"spectral index channel 'NDVI'.*data.indices"):
        check_model_config(cfg, spec_of(cfg, indices=("NDVI",)))


@pytest.mark.parametrize(("change", "data", "error", "match"), [
    ({"backbone": "prithvi_v2_300m"}, {}, UnknownNameError, r"model.backbone: Unknown backbone.*prithvi_eo_v2_300m"),
    ({}, {"tile_size": 250}, ConfigError,
     r"^data.tile_size 250 is not a multiple of the patch size 16 of prithvi_eo_v2_300m; use 240 or 256\.$"),
    ({"backbone": "prithvi_eo_v2_600m"}, {"tile_size": 230}, ConfigError, r"patch size 14 .* use 224 or 238"),
    ({"backbone": "resnet18", "output_stride": 8}, {}, ConfigError,
     r"model.output_stride 8: resnet18 uses BasicBlocks, which cannot be dilated; use output_stride 32"),
    ({"backbone": "resnet18_ssl4eo_s2_moco", "backbone_kwargs": {"output_stride": 16}}, {}, ConfigError,
     "model.output_stride 16: resnet18_ssl4eo_s2_moco uses BasicBlocks"),
    ({"backbone": "resnet18", "window_size": 14}, {}, ConfigError,
     r"model.window_size 14 applies to ViT backbones.*resnet18 is a ResNet"),
    ({"backbone": "resnet18", "global_blocks": (1,)}, {}, ConfigError, r"model.global_blocks \(1,\) applies to ViT"),
    ({"backbone": "dofa_base", "num_frames": 3}, {}, ConfigError, r"model.num_frames 3: dofa_base takes single images"),
    ({"output_stride": 16}, {}, ConfigError, r"model.output_stride 16 applies to ResNet backbones"),
    ({"out_indices": (5,)}, {}, ConfigError, r"model.out_indices \[5\]: \[5\] outside -2..1"),
    ({"window_size": 4, "global_blocks": (2,)}, {}, ConfigError, r"model.global_blocks \[2\]: \[2\] outside 0..1"),
    ({"backbone": "resnet18", "out_indices": (4,)}, {}, ConfigError, r"outside 0..3 \(ResNet stages\)"),
    ({"backbone_kwargs": {"dpeth": 2}}, {}, ConfigError, r"model.backbone_kwargs got unexpected.*\['dpeth'\]"),
    ({"pretrained": True}, {}, ConfigError, r"model.backbone_kwargs: overrides \['depth'.*change the architecture"),
    ({"neck": NeckConfig(kind="fpn")}, {}, ConfigError, r"model.neck.kind 'fpn' needs a multi-stage backbone"),
    ({"backbone": "resnet18", "neck": NeckConfig(kind="simple_feature_pyramid")}, {}, ConfigError,
     "is for ViT backbones"),
    ({"backbone": "resnet18", "weights": "/nonexistent/w.pt"}, {}, ConfigError, r"model.weights '/nonexistent/w.pt' does not exist"),
])
def test_check_model_config_rejects_before_building(change, data, error, match, monkeypatch):
    import rsfm.factory

    monkeypatch.setattr(rsfm.factory, "create_backbone", lambda *a, **k: pytest.fail("built a model"))
    cfg = config(**{"backbone_kwargs": {} if change.get("backbone", "").startswith("resnet") else TINY,
                    **change})
    spec_cfg = config(num_classes=cfg.num_classes, num_frames=cfg.num_frames)  # a spec that resolves
    with pytest.raises(error, match=match):
        check_model_config(cfg, spec_of(spec_cfg, **data))


@pytest.mark.parametrize(("change", "data"), [
    ({}, {"tile_size": 256}),
    ({"backbone": "prithvi_eo_v2_600m"}, {"tile_size": 224}),
    ({"backbone": "resnet18", "backbone_kwargs": {}}, {"tile_size": 250}),  # ResNets take any size
    ({"backbone": "resnet50", "backbone_kwargs": {}, "output_stride": 8}, {}),
    ({"task": "detection", "head": "fcos", "backbone": "dofa_base"}, {"tile_size": 250}),  # padded
    ({"window_size": 4, "global_blocks": (1,), "out_indices": (-1,)}, {}),
])
def test_check_model_config_accepts(change, data):
    cfg = config(**change)
    check_model_config(cfg, spec_of(cfg, **data))


def test_build_model_makes_the_same_checks():
    cfg = config(backbone="resnet18", backbone_kwargs={}, head="deeplabv3", output_stride=16)
    with pytest.raises(ConfigError, match="BasicBlocks"):
        build_model(cfg, spec_of(cfg))
    ok = config(backbone="resnet18", backbone_kwargs={}, head="deeplabv3")  # no dilation for BasicBlocks
    assert create_model(ok).backbone.out_strides == [4, 8, 16, 32]


def test_check_model_config_is_the_torch_free_one():
    import rsfm.factory
    import rsfm.modelcheck

    # rsfm check / preflight import it from rsfm.modelcheck (no torch); the factory re-exports it
    assert rsfm.factory.check_model_config is rsfm.modelcheck.check_model_config


def test_window_mode_is_a_model_option_kept_in_config_json(tmp_path):
    import rsfm

    model = rsfm.create_model("segmentation", "prithvi_eo_v2_300m", head="fcn", num_classes=2,
                              bands=["RED", "GREEN", "BLUE"], window_size=2, window_mode="vitdet",
                              backbone_kwargs={"depth": 4, "embed_dim": 32, "num_heads": 2})
    assert model.backbone.window_mode == "vitdet"
    model.save_pretrained(tmp_path / "m")
    assert rsfm.from_pretrained(tmp_path / "m").backbone.window_mode == "vitdet"
    with pytest.raises(ConfigError, match=r"model\.window_mode vitdet applies to ViT backbones"):
        rsfm.create_model("segmentation", "resnet18", head="fcn", num_classes=2,
                          window_mode="vitdet")


def test_create_model_takes_keywords_and_infers_the_task_from_the_head():
    """``create_model(backbone=..., head="unet", ...)``: the keyword form notebooks write."""
    by_keyword = rsfm.create_model(backbone="resnet18", head="unet", num_classes=2)
    by_task = rsfm.create_model(task="detection", backbone="resnet18", head="fcos", num_classes=2)
    assert by_keyword.config.task == "segmentation"
    assert by_task.config.task == "detection"
    with pytest.raises(ConfigError, match="Tasks"):
        rsfm.create_model(backbone="resnet18", num_classes=2)
