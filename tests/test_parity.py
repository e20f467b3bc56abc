"""Port parity: our backbones vs the reference implementations, on the same random weights.

* ResNet vs timm (a dependency): always runs.
* Prithvi vs TerraTorch's ``PrithviMAE`` (a verified copy of the Hub ``prithvi_mae.py``) and DOFA vs
  TorchGeo's ``DOFA`` (identical to the original ``models_dwv.py`` with the 2024 fix): these run
  when those packages are installed (they are not rsfm dependencies), e.g. in a throwaway venv:
  ``pip install torchgeo terratorch && PYTHONPATH=. pytest tests/test_parity.py``.

The weights go through the official file layout and our card key map, so this also checks the
key mapping. Tolerance: max |ours - ref| / max |ref| <= 1e-4 in float32.
"""

from __future__ import annotations

import pytest
import torch

import rsfm

TOL = 1e-4


def rel_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    diff = float((ours - ref).abs().max() / ref.abs().max())
    print(f"max |ours - ref| / max |ref| = {diff:.2e}")  # shown with pytest -s
    return diff


@pytest.fixture(autouse=True)
def _full_precision():
    # terratorch sets "medium" at import (bf16 matmuls on some CPUs); compare at full precision.
    torch.set_float32_matmul_precision("highest")
    yield


@pytest.mark.parametrize("name", ["resnet18", "resnet50_ssl4eo_s2_moco"])
def test_resnet_matches_timm(name, tmp_path):
    import timm

    card = rsfm.backbone_card(name)
    ref = timm.create_model(f"resnet{card.arch['depth']}", in_chans=len(card.bands), features_only=True).eval()
    state = {k.replace("stem_", ""): v for k, v in ref.state_dict().items()}
    path = tmp_path / "w.pt"
    torch.save(state, path)
    ours = rsfm.create_backbone(name, weights=path).eval()
    x = torch.randn(2, len(card.bands), 96, 128)
    with torch.no_grad():
        ref_maps, our_maps = ref(x)[1:], ours(x)
    for a, b in zip(our_maps, ref_maps):
        assert a.shape == b.shape
        assert rel_diff(a, b) <= TOL


PRITHVI = {
    # name: (embed_dim, depth, heads, patch, tl) -- full-size configs, checked in the throwaway venv
    "prithvi_eo_v1_100m": (768, 12, 12, 16, False),
    "prithvi_eo_v2_300m": (1024, 24, 16, 16, False),
    "prithvi_eo_v2_300m_tl": (1024, 24, 16, 16, True),
    "prithvi_eo_v2_600m": (1280, 32, 16, 14, False),
    "prithvi_eo_v2_600m_tl": (1280, 32, 16, 14, True),
}


@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("name", list(PRITHVI))
def test_prithvi_matches_official(name, frames, tmp_path):
    mae_mod = pytest.importorskip("terratorch.models.backbones.prithvi_mae")
    torch.set_float32_matmul_precision("highest")
    dim, depth, heads, patch, tl = PRITHVI[name]
    torch.manual_seed(0)
    ref = mae_mod.PrithviMAE(
        img_size=224, patch_size=(1, patch, patch), num_frames=frames, in_chans=6, embed_dim=dim,
        depth=depth, num_heads=heads, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
        mlp_ratio=4.0, coords_encoding=["time", "location"] if tl else None, coords_scale_learn=tl,
    ).eval()
    state = ref.state_dict()
    for key in [k for k in state if k.endswith(".scale")]:
        state[key] = torch.tensor([0.37])  # non-default scales, to see them used
    ref.load_state_dict(state)
    path = tmp_path / "official.pt"
    torch.save(state, path)
    ours = rsfm.create_backbone(name, weights=path, num_frames=frames).eval()
    x = torch.randn(2, 6, frames, 224, 224)
    kwargs = {}
    if tl:
        kwargs = {
            "temporal_coords": torch.tensor([[[2020.0 + t, 30.0 * t + 5] for t in range(frames)]] * 2),
            "location_coords": torch.tensor([[34.2, -118.1], [-3.5, 25.0]]),
        }
    with torch.no_grad():
        ref_tokens = ref.encoder.forward_features(x if frames > 1 else x[:, :, 0], **kwargs)[-1]
        ours_map = ours(x if frames > 1 else x[:, :, 0], **kwargs)[-1]
    g = 224 // patch
    ref_map = ref_tokens[:, 1:].reshape(2, frames, g, g, dim).permute(0, 1, 4, 2, 3).reshape(2, frames * dim, g, g)
    assert ours_map.shape == ref_map.shape
    assert rel_diff(ours_map, ref_map) <= TOL


@pytest.mark.parametrize("name", ["dofa_base", "dofa_large", "dofa_base_torchgeo", "dofa_large_torchgeo"])
def test_dofa_matches_official(name, tmp_path):
    dofa_mod = pytest.importorskip("torchgeo.models.dofa")
    torch.manual_seed(0)
    build = dofa_mod.dofa_base_patch16_224 if "base" in name else dofa_mod.dofa_large_patch16_224
    ref = build().eval()
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith(("fc_norm", "head"))}
    state["pos_embed"] = state["pos_embed"] + 0.01 * torch.randn_like(state["pos_embed"])  # file values are used
    if not name.endswith("torchgeo"):  # the original files carry MAE leftovers
        dim = state["cls_token"].shape[-1]
        state.update({"mask_token": torch.zeros(1, 1, 512), "norm.weight": torch.ones(dim),
                      "norm.bias": torch.zeros(dim), "projector.weight": torch.zeros(dim, dim),
                      "projector.bias": torch.zeros(dim)})
    ref.load_state_dict(state, strict=False)
    path = tmp_path / "official.pth"
    torch.save(state, path)
    bands = ["B04", "B03", "B02", "B8A", "B11"]
    ours = rsfm.create_backbone(name, weights=path, bands=bands).eval()
    waves = [b.wavelength_um for b in rsfm.resolve_bands(bands)]
    x = torch.randn(2, len(bands), 224, 224)
    captured = {}
    ref.blocks[-1].register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    with torch.no_grad():
        ref.forward_features(x, waves)
        ours_map = ours(x)[-1]
        per_call = ours(x, wavelengths=waves)[-1]
    dim = ours_map.shape[1]
    ref_map = captured["out"][:, 1:].reshape(2, 14, 14, dim).permute(0, 3, 1, 2)
    assert rel_diff(ours_map, ref_map) <= TOL
    torch.testing.assert_close(per_call, ours_map)
