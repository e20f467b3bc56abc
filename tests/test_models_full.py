"""Full-size models (random init) build and run one forward pass at 224 px."""

from __future__ import annotations

import torch

import rsfm


def test_prithvi_300m_deeplabv3plus_224():
    torch.manual_seed(0)
    model = rsfm.create_model("segmentation", "prithvi_eo_v2_300m", head="deeplabv3plus", num_classes=2,
                              window_size=14).eval()
    assert model.backbone.depth == 24 and model.backbone.embed_dim == 1024
    assert model.backbone.global_blocks == (5, 11, 17, 23)
    assert sum(p.numel() for p in model.backbone.parameters()) > 300e6
    with torch.no_grad():
        out = model(torch.randn(1, 6, 224, 224))
    assert out.shape == (1, 2, 224, 224) and torch.isfinite(out).all()


def test_dofa_base_faster_rcnn_224():
    torch.manual_seed(0)
    model = rsfm.create_model("detection", "dofa_base", head="faster_rcnn", num_classes=3,
                              bands=["B04", "B03", "B02", "B08"], rpn_post_nms_top_n_test=100).eval()
    assert model.backbone.depth == 12 and model.backbone.embed_dim == 768
    assert model.neck.out_strides == [4, 8, 16, 32, 64]
    with torch.no_grad():
        preds = model(torch.randn(1, 4, 224, 224))
    assert len(preds) == 1 and set(preds[0]) == {"boxes", "labels", "scores"}
    n = preds[0]["boxes"].shape[0]
    assert preds[0]["boxes"].shape == (n, 4) and n <= 300
