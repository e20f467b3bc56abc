"""ViTDet window attention on the real ViT blocks (tiny configs): exactness, no leaks, padding, time."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rsfm
from rsfm.models.layers import Attention, default_global_blocks

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def _prithvi(**kw):
    torch.manual_seed(0)
    return rsfm.create_backbone("prithvi_eo_v2_300m", **TINY, **kw).eval()


def _dofa(**kw):
    torch.manual_seed(0)
    return rsfm.create_backbone("dofa_base", bands=["B04", "B03", "B02"], **TINY, **kw).eval()


def reference_window_attention(attn: Attention, x: torch.Tensor, grid, ws: int, prefix: int = 1) -> torch.Tensor:
    """Brute force: full attention with a mask allowing same-spatial-window keys (any frame) + prefix.

    Prefix (cls) queries see everything. Padding never appears here, so this is the ground truth
    the padded/partitioned implementation must match.
    """
    B, N, C = x.shape
    heads, hd = attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(x).view(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
    T, H, W = grid
    _, hh, ww = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")
    win = ((hh // ws) * 10_000 + ww // ws).flatten()
    mask = torch.ones(N, N, dtype=torch.bool)
    mask[prefix:, prefix:] = win[:, None] == win[None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return attn.proj(out.transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize("make", [_prithvi, _dofa], ids=["prithvi", "dofa"])
@pytest.mark.parametrize("window", [6, 8], ids=["exact-cover", "padded-cover"])
def test_window_covering_grid_equals_global(make, window):
    model = make()
    x = torch.randn(2, model.in_chans, 64, 96)  # 4 x 6 tokens
    with torch.no_grad():
        ref = model(x)[0]
        model.set_window_attention(window, global_blocks=())  # every block windowed
        assert all(b.window_size == window for b in model.blocks)
        out = model(x)[0]
    assert out.shape == ref.shape == (2, 64, 4, 6)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_windows_do_not_leak():
    model = _prithvi(window_size=2, global_blocks=(1,))
    blk = model.blocks[0]
    assert blk.window_size == 2 and model.blocks[1].window_size == 0
    x = torch.randn(1, 6, 64, 96)
    with torch.no_grad():
        tokens, grid = model.embed(x)  # grid (1, 4, 6), 2x3 windows of 2x2 tokens
        base = blk(tokens, grid, 1)
        bumped = tokens.clone()
        bumped[:, 1 + 0 * 6 + 1] += 3 * torch.randn(64)  # token (h=0, w=1): window (0, 0); not a constant (LayerNorm)
        out = blk(bumped, grid, 1)
    diff = (out - base).abs().amax(-1)[0, 1:].view(4, 6)  # patch tokens only
    inside = torch.zeros(4, 6, dtype=torch.bool)
    inside[:2, :2] = True
    assert (diff[inside] > 1e-4).all()
    assert diff[~inside].max() < 1e-6
    assert (out[:, 0] - base[:, 0]).abs().max() > 1e-4  # the cls token attends globally


@pytest.mark.parametrize("ws", [2, 3])
def test_padding_odd_grid_matches_reference(ws):
    model = _dofa()
    attn = model.blocks[0].attn
    x = torch.randn(2, 3, 80, 112)  # 5 x 7 tokens: not a multiple of 2 or 3
    with torch.no_grad():
        tokens, grid = model.embed(x)
        assert grid == (1, 5, 7)
        out = attn(tokens, grid, ws, 1)
        ref = reference_window_attention(attn, tokens, grid, ws)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        model.set_window_attention(ws, global_blocks=(1,))
        feats = model(x)[0]
    assert feats.shape == (2, 64, 5, 7) and torch.isfinite(feats).all()


def test_windows_without_prefix_tokens_match_reference():
    attn = _dofa().blocks[0].attn
    x = torch.randn(1, 5 * 7, 64)
    with torch.no_grad():
        out = attn(x, (1, 5, 7), 3, 0)
        ref = reference_window_attention(attn, x, (1, 5, 7), 3, prefix=0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_multitemporal_windows_span_all_frames():
    """Prithvi (T, h, w): a window holds ws x ws tokens of every frame (T*ws*ws tokens)."""
    model = _prithvi(num_frames=2)
    attn = model.blocks[0].attn
    x = torch.randn(1, 6, 2, 48, 80)  # grid (2, 3, 5): odd, padded
    with torch.no_grad():
        tokens, grid = model.embed(x)
        assert grid == (2, 3, 5)
        out = attn(tokens, grid, 2, 1)
        ref = reference_window_attention(attn, tokens, grid, 2)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        # A token of frame 0 changes frame 1 in the same spatial window, nothing elsewhere.
        bumped = tokens.clone()
        bumped[:, 1 + 0] += 3 * torch.randn(64)  # t=0, h=0, w=0
        diff = (attn(bumped, grid, 2, 1) - out).abs().amax(-1)[0, 1:].view(2, 3, 5)
    inside = torch.zeros(2, 3, 5, dtype=torch.bool)
    inside[:, :2, :2] = True
    assert (diff[inside] > 1e-5).all()
    assert diff[~inside].max() < 1e-6
    model.set_window_attention(2, global_blocks=(1,))
    with torch.no_grad():
        assert model(x)[0].shape == (1, 2 * 64, 3, 5)


def test_default_global_blocks_and_no_new_parameters():
    assert default_global_blocks(12) == (2, 5, 8, 11)
    assert default_global_blocks(24) == (5, 11, 17, 23)
    model = _prithvi()
    keys = {k: v.shape for k, v in model.state_dict().items()}
    model.set_window_attention(14)
    assert {k: v.shape for k, v in model.state_dict().items()} == keys
    model.set_window_attention(0)
    assert all(b.window_size == 0 for b in model.blocks)


def test_window_attention_backward():
    model = _dofa(window_size=3, global_blocks=(1,)).train()
    x = torch.randn(1, 3, 80, 112)
    model(x)[0].square().mean().backward()
    assert model.blocks[0].attn.qkv.weight.grad is not None
    assert torch.isfinite(model.blocks[0].attn.qkv.weight.grad).all()
