"""Every backbone family x head builds, runs forward + backward at 64 x 96 and gives documented shapes."""

from __future__ import annotations

import pytest
import torch

import rsfm
from rsfm.config import TASKS, ModelConfig, NeckConfig
from rsfm.errors import ConfigError
from rsfm.models.necks import SimpleFeaturePyramid

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}
FAMILIES = {
    "prithvi": {"backbone": "prithvi_eo_v2_300m", "backbone_kwargs": TINY, "channels": 6},
    "dofa": {"backbone": "dofa_base", "backbone_kwargs": TINY, "channels": 3, "bands": ("B04", "B03", "B02")},
    "resnet": {"backbone": "resnet18", "backbone_kwargs": {}, "channels": 3, "bands": ("B04", "B03", "B02")},
}
# Small proposal/detection budgets keep random-init detectors fast on CPU.
FAST_DET = {
    "faster_rcnn": {"rpn_pre_nms_top_n_train": 64, "rpn_post_nms_top_n_train": 32, "rpn_pre_nms_top_n_test": 64,
                        "rpn_post_nms_top_n_test": 32, "box_batch_size_per_image": 32, "box_detections_per_img": 10},
    "retinanet": {"topk_candidates": 64, "detections_per_img": 10},
    "fcos": {"topk_candidates": 64, "detections_per_img": 10},
}
FAST_DET["mask_rcnn"] = FAST_DET["faster_rcnn"]
# Narrow segmentation heads (the layouts are the same as the defaults).
NARROW = {"deeplabv3": {"aspp_channels": 32}, "deeplabv3plus": {"aspp_channels": 32, "low_level_channels": 16},
          "unet": {"decoder_channels": (32, 32, 16, 16, 8)}}
H, W, K = 64, 96, 3


def make(family: str, task: str, head: str, **kw):
    spec = dict(FAMILIES[family])
    channels = spec.pop("channels")
    torch.manual_seed(0)
    head_kwargs = dict(FAST_DET.get(head, NARROW.get(head, {})))
    head_kwargs.update(kw.pop("head_kwargs", {}))
    cfg = ModelConfig(task=task, head=head, num_classes=K, neck=kw.pop("neck", NeckConfig(out_channels=32)),
                      head_kwargs=head_kwargs, **spec, **kw)
    return rsfm.create_model(cfg), channels


def det_targets(n: int, masks: bool):
    targets = []
    for i in range(n):
        t = {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0], [50.0, 10.0, 90.0, 60.0]]),
             "labels": torch.tensor([1, K - i % K])}
        if masks:
            m = torch.zeros(2, H, W, dtype=torch.uint8)
            m[0, 6:40, 4:30] = 1
            m[1, 10:60, 50:90] = 1
            t["masks"] = m
        targets.append(t)
    return targets


def backbone_grad(model) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())


COMBOS = [(f, t, h) for f in FAMILIES for t, heads in TASKS.items() for h in heads]


@pytest.mark.parametrize(("family", "task", "head"), COMBOS, ids=[f"{f}-{h}" for f, _, h in COMBOS])
def test_family_x_head_forward_backward(family, task, head):
    model, C = make(family, task, head)
    assert {n for n, _ in model.named_children()} == {"backbone", "neck", "head"}
    x = torch.randn(2, C, H, W)
    model.train()
    if task == "detection":
        losses = model(x, det_targets(2, head == "mask_rcnn"))
        assert isinstance(losses, dict) and losses
        assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
        if head == "mask_rcnn":
            assert "loss_mask" in losses
        sum(losses.values()).backward()
        assert backbone_grad(model)
        model.eval()
        with torch.no_grad():
            preds = model(x)
        assert isinstance(preds, list) and len(preds) == 2
        for p in preds:
            n = p["boxes"].shape[0]
            assert p["boxes"].shape == (n, 4) and p["labels"].shape == (n,) and p["scores"].shape == (n,)
            assert n <= 10
            if n:
                assert p["labels"].min() >= 1 and p["labels"].max() <= K
                assert p["boxes"][:, 2].max() <= W and p["boxes"][:, 3].max() <= H
            if head == "mask_rcnn":
                assert p["masks"].shape == (n, 1, H, W)
        return
    out = model(x)
    expected = (2, K, H, W) if task == "segmentation" else (2, K)
    assert isinstance(out, torch.Tensor) and out.shape == expected
    out.square().mean().backward()
    assert backbone_grad(model)
    assert all(p.grad is not None for p in model.head.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_aux_head_contract(family):
    model, C = make(family, "segmentation", "deeplabv3plus", head_kwargs={"aux_head": True})
    assert model.has_aux
    x = torch.randn(2, C, H, W)
    out = model(x, return_aux=True)
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, K, H, W)
    (out["out"].mean() + 0.4 * out["aux"].mean()).backward()
    assert model(x).shape == (2, K, H, W)  # plain call: always a tensor
    plain, _ = make(family, "segmentation", "unet")
    assert not plain.has_aux and plain(x, return_aux=True)["aux"] is None


def test_segmentation_batch_of_one_trains():
    model, C = make("dofa", "segmentation", "deeplabv3")  # ASPP image pooling with batch 1
    model.train()
    model(torch.randn(1, C, H, W)).mean().backward()


def test_sfp_levels_and_windowed_model():
    model, C = make("prithvi", "segmentation", "unet", window_size=2, global_blocks=(1,))
    assert model.backbone.blocks[0].window_size == 2 and model.backbone.blocks[1].window_size == 0
    assert isinstance(model.neck, SimpleFeaturePyramid)
    assert model.neck.out_strides == [4, 8, 16, 32] and model.neck.out_channels == [32] * 4
    feats = model.forward_features(torch.randn(1, C, H, W))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert model(torch.randn(2, C, 80, 112)).shape == (2, K, 80, 112)  # odd token grid 5 x 7


def test_stride14_vit_pyramid_is_at_quarter_to_1_32():
    torch.manual_seed(0)
    model = rsfm.create_model("segmentation", "prithvi_eo_v2_600m", head="deeplabv3plus", num_classes=K,
                              backbone_kwargs=TINY, neck={"out_channels": 32})
    assert model.backbone.patch_size == 14
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 6, 224, 224))
        assert [f.shape[-1] for f in feats] == [56, 28, 14, 7]
        assert model(torch.randn(1, 6, 112, 168)).shape == (1, K, 112, 168)


@pytest.mark.parametrize("reduction", ["mean", "concat"])
def test_prithvi_multitemporal(reduction):
    model, C = make("prithvi", "segmentation", "fcn", num_frames=3, temporal_reduction=reduction)
    x = torch.randn(2, C, 3, H, W)
    tc = torch.tensor([[2020.0, d] for d in (10, 50, 90)]).expand(2, 3, 2)
    out = model(x, temporal_coords=tc)
    assert out.shape == (2, K, H, W)
    out.mean().backward()
    two = torch.randn(1, C, 2, H, W)
    if reduction == "mean":  # parameter-free: any number of frames
        assert model(two).shape == (1, K, H, W)
    else:
        assert model.neck.temporal.proj.in_channels == 3 * 64
        with pytest.raises(ValueError, match="built for 3 frames"):
            model(two)


def test_dofa_wavelengths_pass_through_detection():
    model, _ = make("dofa", "detection", "fcos")
    model.eval()
    with torch.no_grad():
        preds = model(torch.randn(1, 4, H, W), wavelengths=[0.49, 0.56, 0.665, 0.842])
    assert len(preds) == 1 and model.head.backbone.kwargs == {}
    with pytest.raises(TypeError, match="wavelengths"):
        make("resnet", "segmentation", "fcn")[0](torch.randn(1, 3, H, W), wavelengths=[0.5, 0.6, 0.7])


def test_detection_anchors_configurable_and_list_input():
    model, C = make("resnet", "detection", "faster_rcnn",
                    head_kwargs={"anchor_sizes": [[8, 12]] * 5, "aspect_ratios": [1.0]})
    gen = model.head.rpn.anchor_generator
    assert gen.sizes == ((8.0, 12.0),) * 5 and gen.num_anchors_per_location() == [2] * 5
    model.eval()
    with torch.no_grad():
        preds = model([torch.randn(C, 64, 96), torch.randn(C, 50, 70)])  # list of tiles, padded inside
    assert len(preds) == 2
    assert "no resize" in repr(model.head.transform)
    with pytest.raises(ConfigError, match="anchor_sizes"):
        make("resnet", "detection", "retinanet", head_kwargs={"anchor_sizes": [[16]] * 3})


def test_default_detector_pyramid_has_stride64():
    model, _ = make("dofa", "detection", "retinanet")
    assert model.neck.out_strides == [4, 8, 16, 32, 64]
    assert model.head.anchor_generator.sizes[0][0] == 16.0 and model.head.anchor_generator.sizes[-1][0] == 256.0
    resnet, _ = make("resnet", "detection", "mask_rcnn")
    assert resnet.neck.out_strides == [4, 8, 16, 32, 64]
    assert resnet.head.roi_heads.box_roi_pool.featmap_names == ["0", "1", "2", "3"]


def test_deeplab_rates_follow_output_stride():
    sfp, _ = make("dofa", "segmentation", "deeplabv3")
    assert sfp.head.atrous_rates == (6, 12, 18) and sfp.neck.out_strides[sfp.head.index] == 16
    with torch.device("meta"):
        os8 = rsfm.create_model("segmentation", "resnet50", head="deeplabv3plus", num_classes=2, output_stride=8)
        os16 = rsfm.create_model("segmentation", "resnet50", head="deeplabv3", num_classes=2)
    assert os8.backbone.out_strides == [4, 8, 8, 8] and os8.head.atrous_rates == (12, 24, 36)
    assert os16.backbone.out_strides == [4, 8, 16, 16] and os16.head.atrous_rates == (6, 12, 18)
    assert os8.head.index == 3 and os8.head.low_index == 0


def test_create_model_forms_agree():
    kw = {"head": "fcn", "num_classes": K, "bands": ["B04", "B03", "B02"], "backbone_kwargs": TINY}
    a = rsfm.create_model("segmentation", "dofa_base", **kw)
    b = rsfm.create_model(a.config, input_spec=a.input_spec)
    c = rsfm.create_model(a.config.to_dict(), input_spec=a.input_spec)
    assert a.config == b.config == c.config and a.input_spec == b.input_spec == c.input_spec
    assert a.state_dict().keys() == c.state_dict().keys()
    d = rsfm.create_model({"task": "classification", "backbone": "resnet18", "head": "classification",
                           "num_classes": 5, "neck": "none", "head_kwargs": {"dropout": 0.1}})
    assert d(torch.randn(2, d.backbone.in_chans, 64, 64)).shape == (2, 5)  # default bands: the card's


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "segmentation", "head": "faster_rcnn"}, r"segmentation heads: \['deeplabv3'"),
        ({"task": "segmentation", "head": "unet", "aspp_rates": (1, 2, 3)}, r"unknown option.*aspp_rates.*decoder_channels"),
        ({"task": "detection", "head": "fcos", "bogus": 1}, r"unknown option.*bogus"),
        ({"task": "segmentation", "head": "unet", "neck": "fpn"}, "multi-stage backbone"),
        ({"task": "segmentation", "head": "unet", "neck": "wrong"}, r"neck.kind: 'wrong' is not allowed; expected 'auto'"),
        ({"task": "segmentation", "head": "fcn", "output_stride": 16}, "ResNet backbones"),
        ({"task": "segmentation", "head": "fcn", "temporal_reduction": "max"}, "mean"),
        ({"task": "nope", "head": "fcn"}, r"task: 'nope' is not allowed"),
    ],
)
def test_create_model_errors(kwargs, match):
    task = kwargs.pop("task")
    head = kwargs.pop("head")
    with pytest.raises(ConfigError, match=match):
        rsfm.create_model(task, "dofa_base", head=head, num_classes=2, backbone_kwargs=TINY, **kwargs)


def test_config_dict_errors():
    with pytest.raises(ConfigError, match=r"hed: unknown key.*Did you mean 'head'"):
        rsfm.create_model({"task": "segmentation", "backbone": "resnet18", "hed": "unet", "num_classes": 2})
    with pytest.raises(ConfigError, match=r"neck.channels: unknown key"):
        rsfm.create_model({"task": "segmentation", "backbone": "resnet18", "head": "unet", "num_classes": 2,
                           "neck": {"channels": 3}})
    with pytest.raises(ConfigError, match="no other arguments"):
        rsfm.create_model(ModelConfig(task="segmentation", backbone="resnet18", head="unet", num_classes=2),
                          aux_head=True)
    with pytest.raises(ConfigError, match="BasicBlocks"):
        rsfm.create_model("segmentation", "resnet18", head="deeplabv3", num_classes=2, output_stride=16)
    with pytest.raises(ConfigError, match="num_classes"):
        rsfm.create_model("segmentation", "resnet18", head="unet", num_classes=0)


def test_freeze_backbone():
    model, C = make("resnet", "segmentation", "unet", freeze_backbone=True)
    assert model.backbone_frozen and not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training and model.head.training  # BatchNorm stats stay put
    model(torch.randn(2, C, H, W)).mean().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    model.unfreeze_backbone()
    assert model.backbone.training and all(p.requires_grad for p in model.backbone.parameters())


def test_detection_parameters_registered_once_and_deepcopy():
    import copy

    model, C = make("dofa", "detection", "faster_rcnn")
    keys = list(model.state_dict())
    assert not any(k.startswith("head.backbone") for k in keys)
    assert any(k.startswith("backbone.blocks.0.attn.qkv") for k in keys)
    clone = copy.deepcopy(model)
    assert clone.head.backbone.owner is clone and model.head.backbone.owner is model
    clone.eval()
    model.eval()
    x = torch.randn(1, C, H, W)
    with torch.no_grad():
        a, b = model(x)[0], clone(x)[0]
    torch.testing.assert_close(a["scores"], b["scores"])


# ---------------------------------------------------------------- ResNet stem level, UNet = smp's Unet
def resnet_unet(num_classes: int = K, in_chans: int = 2, stem: bool = True):
    from rsfm.models.backbones.resnet import ResNetBackbone
    from rsfm.models.heads.segmentation import UNetHead

    torch.manual_seed(0)
    backbone = ResNetBackbone(18, in_chans=in_chans, stem=stem)
    return backbone, UNetHead(backbone.out_channels, backbone.out_strides, num_classes)


def test_resnet_stem_level_adds_a_stride2_map_and_no_parameters():
    from rsfm.models.backbones.resnet import ResNetBackbone

    torch.manual_seed(0)
    plain = ResNetBackbone(18, in_chans=2).eval()
    stem = ResNetBackbone(18, in_chans=2, stem=True).eval()
    assert stem.out_strides == [2, 4, 8, 16, 32] and stem.out_channels == [64, 64, 128, 256, 512]
    assert plain.out_strides == [4, 8, 16, 32] and plain.out_channels == [64, 128, 256, 512]
    assert stem.state_dict().keys() == plain.state_dict().keys()  # checkpoints load unchanged
    stem.load_state_dict(plain.state_dict())
    x = torch.randn(1, 2, 66, 98)  # odd sizes: maps are ceil(H / s)
    with torch.no_grad():
        a, b = plain(x), stem(x)
    assert [tuple(f.shape[1:]) for f in b] == [(c, -(-66 // s), -(-98 // s))
                                               for c, s in zip(stem.out_channels, stem.out_strides)]
    for f, g in zip(a, b[1:]):  # the stages are untouched by the extra output
        torch.testing.assert_close(f, g)
    with torch.no_grad():
        ref = plain.relu(plain.bn1(plain.conv1(x)))
    torch.testing.assert_close(b[0], ref)


def test_unet_decoder_layout_with_and_without_stem():
    _, with_stem = resnet_unet(stem=True)
    _, stages = resnet_unet(stem=False)
    for head in (with_stem, stages):
        assert head.decoder_channels == [256, 128, 64, 32, 16]
    # (block input, skip) channels: the stem joins the 4th block, as in smp's Unet
    assert [b.conv1[0].in_channels for b in with_stem.blocks] == [512 + 256, 256 + 128, 128 + 64, 64 + 64, 32]
    assert [b.conv1[0].in_channels for b in stages.blocks] == [512 + 256, 256 + 128, 128 + 64, 64, 32]


@pytest.mark.parametrize("stem", [True, False])
def test_unet_output_size_and_gradients(stem):
    backbone, head = resnet_unet(stem=stem)
    x = torch.randn(2, 2, 70, 90)
    out = head(backbone(x), (70, 90))
    assert out.shape == (2, K, 70, 90)
    out.square().mean().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_unet_init_is_smp_init():
    """Kaiming-uniform (fan-in, ReLU) convolutions, unit/zero BatchNorm, Xavier classifier, zero
    biases: the scale smp's decoder starts from, 2.4x PyTorch's default conv init."""
    import math

    _, head = resnet_unet(num_classes=2)
    for m in head.blocks.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            bound = math.sqrt(6 / fan_in)
            assert m.weight.abs().max() <= bound
            assert float(m.weight.detach().std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any()
    cls = head.classifier
    fan_in, fan_out = cls.in_channels * 9, cls.out_channels * 9
    assert cls.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out)) and not cls.bias.any()


def test_unet_with_stem_is_smp_unet_layer_for_layer():
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(1)
    ref = smp.Unet("resnet18", encoder_weights=None, in_channels=2, classes=K).eval()
    backbone, head = resnet_unet(stem=True)
    model = torch.nn.ModuleDict({"backbone": backbone, "head": head}).eval()
    renames = (("encoder.", "backbone."), ("decoder.blocks.", "head.blocks."),
               ("segmentation_head.0.", "head.classifier."))
    state = {}
    for key, value in ref.state_dict().items():
        for old, new in renames:
            key = key.replace(old, new, 1) if key.startswith(old) else key
        state[key] = value
    model.load_state_dict(state, strict=True)  # same modules, same shapes
    x = torch.randn(2, 2, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(head(backbone(x), (64, 96)), ref(x))


def test_deeplabv3plus_low_level_skips_the_stem():
    from rsfm.models.heads.segmentation import DeepLabV3PlusHead, low_level_index

    assert low_level_index([2, 4, 8, 16, 32]) == 1 and low_level_index([4, 8, 16, 32]) == 0
    assert low_level_index([16]) == 0
    head = DeepLabV3PlusHead([64, 64, 128, 256, 512], [2, 4, 8, 16, 32], K, aspp_channels=32)
    assert head.low_index == 1 and head.index == 3


def test_resnet_unet_gets_the_stem_level_by_default():
    torch.manual_seed(0)
    model = rsfm.create_model("segmentation", "resnet18", head="unet", num_classes=K, bands=["VV", "VH"])
    assert model.backbone.stem and model.neck.out_strides == [2, 4, 8, 16, 32]  # the neck passes it on
    head = model.head
    assert (len(head.blocks), head.n_extra) == (5, 1)  # 4 skip blocks + 1 upsampling block, as smp
    assert [b.conv1[0].in_channels for b in head.blocks] == [512 + 256, 256 + 128, 128 + 64, 64 + 64, 32]
    assert "stem" not in model.config.backbone_kwargs  # a default, not written into config.json
    assert model(torch.randn(1, 2, 64, 96)).shape == (1, K, 64, 96)
    old = rsfm.create_model("segmentation", "resnet18", head="unet", num_classes=K, bands=["VV", "VH"],
                            backbone_kwargs={"stem": False})  # the rsfm 0.1 layout stays available
    assert not old.backbone.stem and old.neck.out_strides == [4, 8, 16, 32]
    assert [b.conv1[0].in_channels for b in old.head.blocks] == [512 + 256, 256 + 128, 128 + 64, 64, 32]


OTHER_HEADS = [("segmentation", "fcn"), ("segmentation", "deeplabv3"), ("segmentation", "deeplabv3plus"),
               ("classification", "classification"), ("detection", "retinanet")]


@pytest.mark.parametrize(("task", "head"), OTHER_HEADS, ids=[h for _, h in OTHER_HEADS])
def test_other_heads_never_get_the_stem_level(task, head):
    model, _ = make("resnet", task, head)
    assert not model.backbone.stem and min(model.backbone.out_strides) == 4
    with pytest.raises(ConfigError, match=r"backbone_kwargs.stem .*head '" + head):
        rsfm.create_model({"task": task, "backbone": "resnet18", "head": head, "num_classes": K,
                           "backbone_kwargs": {"stem": True}})


def test_stem_is_a_resnet_override_that_keeps_weights_loadable():
    from rsfm.cards import get_card
    from rsfm.modelcheck import check_overrides

    check_overrides(get_card("resnet50"), {"stem": True}, loading=True)  # no parameters added
    with pytest.raises(ConfigError, match="unexpected argument"):
        check_overrides(get_card("dofa_base"), {"stem": True}, loading=False)


# ---------------------------------------------------------------- DeepLabv3+: separable (smp's) or full (0.1)
RESNET50_OS16 = ([256, 512, 1024, 2048], [4, 8, 16, 16])
SFP = ([256] * 4, [4, 8, 16, 32])  # a ViT's simple feature pyramid


def test_deeplabv3plus_default_variant_follows_the_aspp_width():
    from rsfm.models.heads.segmentation import DeepLabV3PlusHead, SeparableASPP

    head = DeepLabV3PlusHead(*RESNET50_OS16, K)
    assert head.separable and isinstance(head.aspp, SeparableASPP)
    assert not DeepLabV3PlusHead(*SFP, K).separable
    assert DeepLabV3PlusHead(*SFP, K, separable=True).separable
    assert not DeepLabV3PlusHead(*RESNET50_OS16, K, separable=False).separable


def test_deeplabv3plus_full_variant_keeps_the_rsfm_0_1_parameters():
    from rsfm.models.heads.segmentation import DeepLabV3PlusHead

    head = DeepLabV3PlusHead(*RESNET50_OS16, K, separable=False)
    keys = set(head.state_dict())
    assert {"aspp.convs.1.0.weight", "decoder.0.0.weight", "decoder.1.0.weight", "classifier.weight"} <= keys
    assert not any(k.startswith("aspp_conv.") for k in keys)
    assert head.aspp.convs[1][0].weight.shape == (256, 2048, 3, 3)


def test_deeplabv3plus_separable_is_smp_sized_and_trains_with_batch_1():
    torch.manual_seed(0)
    model = rsfm.create_model("segmentation", "resnet50", head="deeplabv3plus", num_classes=2,
                              bands=["RED", "GREEN", "BLUE"]).train()
    assert model.head.separable and "separable" not in model.config.head_kwargs
    assert 3.0e6 < sum(p.numel() for p in model.head.parameters()) < 3.3e6  # smp: 3.17 M
    out = model(torch.randn(1, 3, 96, 96))  # ASPP image pooling with batch 1
    assert out.shape == (1, 2, 96, 96)
    out.mean().backward()
    assert model.head.aspp.convs[1][0][0].weight.grad is not None  # the depthwise atrous conv
    full = rsfm.create_model("segmentation", "resnet50", head="deeplabv3plus", num_classes=2,
                             bands=["RED", "GREEN", "BLUE"], separable=False)
    assert not full.head.separable and sum(p.numel() for p in full.head.parameters()) > 16e6


def test_deeplabv3plus_separable_head_has_smp_parameter_count():
    smp = pytest.importorskip("segmentation_models_pytorch")
    ref = smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, in_channels=3, classes=2)
    ref_head = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("encoder."))
    with torch.device("meta"):
        model = rsfm.create_model("segmentation", "resnet50", head="deeplabv3plus", num_classes=2,
                                  bands=["RED", "GREEN", "BLUE"])
    ours = sum(p.numel() for p in model.head.parameters())
    assert abs(ours - ref_head) / ref_head < 0.01


def test_dilated_stage_pointwise_convs_carry_the_dilation_and_change_nothing():
    from rsfm.models.backbones.resnet import ResNetBackbone

    torch.manual_seed(0)
    model = ResNetBackbone(50, output_stride=16).eval()
    dil = {n: m.dilation for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert dil["layer4.0.conv1"] == dil["layer4.0.downsample.0"] == dil["layer4.2.conv3"] == (2, 2)
    assert dil["layer4.0.conv2"] == (1, 1) and dil["layer4.1.conv2"] == (2, 2)  # torchvision's 3x3s
    assert dil["layer3.0.conv1"] == (1, 1)  # undilated stages untouched
    plain = ResNetBackbone(50, output_stride=16).eval()
    for m in plain.modules():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1):
            m.dilation = (1, 1)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(model(x), plain(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("head", "aux"), [("fcn", False), ("deeplabv3", True),
                                           ("deeplabv3plus", False), ("unet", False)])
def test_the_feature_pyramid_computes_only_the_levels_the_head_reads(head, aux):
    """FCN and DeepLabv3 read one level of the ViT pyramid (DeepLabv3+ two, plus the auxiliary
    head's): the neck skips the others, and the logits are those of the full pyramid."""
    import rsfm

    torch.manual_seed(0)
    model = rsfm.create_model("segmentation", "dofa_base", head=head, num_classes=3,
                              bands=["B2", "B3", "B4"], aux_head=aux, neck={"out_channels": 32},
                              backbone_kwargs={"depth": 2, "embed_dim": 64, "num_heads": 2}).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fast = model(x, return_aux=aux)
        full = model.neck(model.backbone(x))
        levels = model.head.levels(with_aux=aux)
        skipped = model.forward_features(x, levels=levels)
    reference = model.head(full, (64, 64))
    assert torch.equal(fast["out"] if aux else fast, reference)
    if aux:
        assert torch.equal(fast["aux"], model.head.forward_aux(full, (64, 64)))
    if head == "unet":
        assert levels is None
    else:
        assert {i for i, f in enumerate(skipped) if f is not None} == set(levels)
        assert len(levels) < len(full)


def test_detection_head_options_follow_torchvision():
    """``rsfm.config.HEAD_OPTIONS`` (torch-free, read by ``rsfm check``) lists every keyword of
    torchvision's detectors that a recipe can give, and nothing else but rsfm's own."""
    import inspect

    from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet

    from rsfm.config import HEAD_OPTIONS

    built_by_rsfm = {"self", "kwargs", "backbone", "num_classes", "image_mean", "image_std",
                     "rpn_anchor_generator", "anchor_generator", "box_roi_pool", "mask_roi_pool"}
    own = {"anchor_sizes", "aspect_ratios", "size_divisible"}  # rsfm's, or the transform's
    for head, cls in [("faster_rcnn", FasterRCNN), ("mask_rcnn", MaskRCNN),
                      ("retinanet", RetinaNet), ("fcos", FCOS)]:
        params = set(inspect.signature(cls.__init__).parameters) - built_by_rsfm
        assert set(HEAD_OPTIONS[head]) - own == params, head
