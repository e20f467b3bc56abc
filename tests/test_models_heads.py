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
