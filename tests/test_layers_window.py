"""ViTDet window attention on the real ViT blocks (tiny configs): both window modes against naive
references, partition/unpartition, no leaks, padding, and the training-time recomputation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rsfm
from rsfm.models.layers import (
    Attention,
    Block,
    default_global_blocks,
    window_partition,
    window_unpartition,
)

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def _prithvi(**kw):
    torch.manual_seed(0)
    return rsfm.create_backbone("prithvi_eo_v2_300m", **TINY, **kw).eval()


def _dofa(**kw):
    torch.manual_seed(0)
    return rsfm.create_backbone("dofa_base", bands=["B04", "B03", "B02"], **TINY, **kw).eval()


def reference_window_attention(attn: Attention, x: torch.Tensor, grid, ws: int, prefix: int = 1,
                               mode: str = "cls") -> torch.Tensor:
    """Brute force: full attention with a boolean mask of who may attend to whom.

    ``cls``: patch queries see same-spatial-window keys (any frame) + the prefix; prefix queries
    see everything. ``vitdet``: patch queries see their window only; prefix queries see the
    prefix only. Padding never appears here, so this is the ground truth the padded/partitioned
    implementation must match.
    """
    B, N, C = x.shape
    heads, hd = attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(x).view(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
    T, H, W = grid
    _, hh, ww = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")
    win = ((hh // ws) * 10_000 + ww // ws).flatten()
    mask = torch.ones(N, N, dtype=torch.bool)
    mask[prefix:, prefix:] = win[:, None] == win[None, :]
    if mode == "vitdet":
        mask[:prefix, prefix:] = False
        mask[prefix:, :prefix] = False
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


@pytest.mark.parametrize(("grid", "ws"), [((1, 5, 7), 3), ((2, 3, 5), 2), ((1, 4, 6), 2), ((3, 2, 2), 5)])
def test_partition_unpartition_is_the_identity(grid, ws):
    x = torch.randn(2, grid[0] * grid[1] * grid[2], 5)
    windows = window_partition(x, grid, ws)
    nh, nw = -(-grid[1] // ws), -(-grid[2] // ws)
    assert windows.shape == (2 * nh * nw, grid[0] * ws * ws, 5)
    assert torch.equal(window_unpartition(windows, grid, ws), x)
    # window 0 of sample 1 holds that sample's top-left tokens, every frame, (t, h, w) order
    T, H, W = grid
    first = x[1].view(T, H, W, 5)[:, : min(ws, H), : min(ws, W)].reshape(-1, 5)
    assert torch.equal(windows[nh * nw].view(T, ws, ws, 5)[:, : min(ws, H), : min(ws, W)].reshape(-1, 5), first)


@pytest.mark.parametrize(("grid", "ws"), [((1, 5, 7), 3), ((1, 6, 6), 3), ((2, 3, 5), 2)],
                         ids=["padded", "divides", "multitemporal"])
@pytest.mark.parametrize("prefix", [1, 0])
def test_vitdet_mode_matches_reference(grid, ws, prefix):
    attn = _dofa().blocks[0].attn
    x = torch.randn(2, prefix + grid[0] * grid[1] * grid[2], 64)
    with torch.no_grad():
        out = attn(x, grid, ws, prefix, window_mode="vitdet")
        ref = reference_window_attention(attn, x, grid, ws, prefix=prefix, mode="vitdet")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    if prefix:  # one cls token in a window of its own: its attention output is its value
        v = attn.qkv(x[:, :1]).chunk(3, dim=-1)[2]
        torch.testing.assert_close(out[:, :1], attn.proj(v), atol=1e-6, rtol=1e-6)


def test_vitdet_window_covering_grid_is_global_over_patches():
    attn = _dofa().blocks[0].attn
    x = torch.randn(1, 4 * 6, 64)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, (1, 4, 6), 8, 0, window_mode="vitdet"), attn(x, (1, 4, 6), 0, 0),
                                   atol=1e-5, rtol=1e-5)


def test_window_mode_switch_and_errors():
    model = _prithvi(window_size=2, global_blocks=(1,))
    assert model.window_mode == "cls" and model.blocks[0].window_mode == "cls"
    x = torch.randn(1, 6, 64, 96)
    with torch.no_grad():
        cls_out = model(x)[0]
        model.set_window_attention(2, global_blocks=(1,), window_mode="vitdet")
        assert [b.window_mode for b in model.blocks] == ["vitdet", "vitdet"]
        vitdet_out = model(x)[0]
    assert not torch.allclose(cls_out, vitdet_out)  # the cls token is a key in "cls" mode only
    with pytest.raises(ValueError, match="window_mode"):
        model.set_window_attention(2, window_mode="swin")
    with pytest.raises(ValueError, match="window_mode"):
        Block(64, 2, window_size=2, window_mode="global")


@pytest.mark.parametrize(("window", "mode"), [(0, "cls"), (3, "cls"), (3, "vitdet")])
def test_training_recomputation_gives_the_same_gradients(window, mode):
    """Block.recompute only changes what is kept for backward, never the numbers."""
    torch.manual_seed(0)
    blk = Block(64, 2, window_size=window, window_mode=mode, drop_path=0.1).train()
    x = torch.randn(2, 1 + 5 * 7, 64)
    grads = []
    for recompute in (False, True):
        blk.recompute = recompute
        blk.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        torch.manual_seed(1)  # the same drop-path draws
        out = blk(xi, (1, 5, 7), 1)
        out.square().mean().backward()
        grads.append([out.detach(), xi.grad, *(p.grad for p in blk.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_recomputation_does_not_rerun_the_expensive_products():
    """In backward a block recomputes LayerNorms, GELU and window attention, not fc1/fc2/proj."""
    blk = Block(64, 2, window_size=3).train()
    calls = {"fc1": 0, "fc2": 0, "proj": 0, "qkv": 0}
    for name in calls:
        module = blk.mlp if name.startswith("fc") else blk.attn
        getattr(module, name).register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
    blk(torch.randn(1, 1 + 5 * 7, 64, requires_grad=True), (1, 5, 7), 1).sum().backward()
    assert calls == {"fc1": 1, "fc2": 1, "proj": 1, "qkv": 2}  # windowed: qkv is recomputed
    blk.window_size = 0
    calls.update(dict.fromkeys(calls, 0))
    blk(torch.randn(1, 1 + 5 * 7, 64, requires_grad=True), (1, 5, 7), 1).sum().backward()
    assert calls == {"fc1": 1, "fc2": 1, "proj": 1, "qkv": 1}


def test_full_block_checkpointing_turns_block_recomputation_off():
    model = _dofa(window_size=3, global_blocks=(1,)).train()
    assert all(b.recompute for b in model.blocks)
    model.set_grad_checkpointing(True)
    assert not any(b.recompute for b in model.blocks)
    model(torch.randn(1, 3, 80, 112))[0].mean().backward()
    assert model.blocks[0].attn.qkv.weight.grad is not None


def test_global_attention_explicit_bf16_inference_path_matches_sdpa():
    """bf16 inference on CPU takes the explicit softmax(q k^T) v form (faster than the fused
    kernel there); its numbers stay within bf16 rounding of fp32 SDPA, and every other case
    (gradients, fp32, long sequences) is SDPA itself."""
    from rsfm.models.layers import EXPLICIT_ATTENTION_MAX_TOKENS, global_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16, generator=g) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v)
    with torch.no_grad():
        fast = global_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
        assert torch.equal(global_attention(q, k, v), ref)  # fp32: the fused kernel
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), ref, atol=3e-2, rtol=0)
    qb = q.bfloat16().requires_grad_()
    assert torch.equal(global_attention(qb, k.bfloat16(), v.bfloat16()),
                       F.scaled_dot_product_attention(qb, k.bfloat16(), v.bfloat16()))
    n = EXPLICIT_ATTENTION_MAX_TOKENS + 1
    long = torch.randn(1, 1, n, 8, generator=g).bfloat16()
    with torch.no_grad():
        assert torch.equal(global_attention(long, long, long),
                           F.scaled_dot_product_attention(long, long, long))
