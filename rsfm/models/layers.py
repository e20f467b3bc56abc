"""ViT building blocks shared by Prithvi and DOFA: SDPA attention with optional windows.

Tokens enter a block as ``(B, P + T*H*W, C)``: ``P`` prefix tokens (the cls token) followed by
the patch tokens of a ``(T, H, W)`` grid in (t, h, w) order. Parameter names match timm's
``Block`` (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``), so
official MAE checkpoints load unchanged, and windowing adds no parameters (ViTDet).

Windowed attention (``window_size > 0``): patch tokens attend within non-overlapping
``T x ws x ws`` windows (all frames of a spatial window) plus the prefix tokens; prefix tokens
attend globally. Grids that are not a multiple of the window are padded inside the block, and
padded positions are masked out as keys, so a window covering the whole grid is exactly global
attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import Tensor, nn

__all__ = [
    "Attention",
    "Block",
    "default_global_blocks",
    "sincos_1d",
    "sincos_3d_grid",
]

Grid = tuple[int, int, int]  # (T, H, W) in tokens


def _to_windows(t: Tensor, grid: Grid, ws: int) -> Tensor:
    """Patch tokens ``(B, h, T*H*W, d)`` -> windows ``(B, h, nW, T*ws*ws, d)`` (zero-padded).

    Windows sit after the heads so that all windows of a sample are one contiguous run of keys:
    the prefix tokens' global attention reads them through a free view.
    """
    B, heads, _, d = t.shape
    T, H, W = grid
    t = t.reshape(B, heads, T, H, W, d)
    pad_h, pad_w = (ws - H % ws) % ws, (ws - W % ws) % ws
    if pad_h or pad_w:
        t = F.pad(t, (0, 0, 0, pad_w, 0, pad_h))
    nh, nw = (H + pad_h) // ws, (W + pad_w) // ws
    t = t.view(B, heads, T, nh, ws, nw, ws, d).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return t.reshape(B, heads, nh * nw, T * ws * ws, d)


def _from_windows(w: Tensor, grid: Grid, ws: int) -> Tensor:
    """Inverse of :func:`_to_windows`: ``(B, h, nW, T*ws*ws, d)`` -> ``(B, h, T*H*W, d)``."""
    B, heads, _, _, d = w.shape
    T, H, W = grid
    nh, nw = -(-H // ws), -(-W // ws)
    w = w.view(B, heads, nh, nw, T, ws, ws, d).permute(0, 1, 4, 2, 5, 3, 6, 7)
    w = w.reshape(B, heads, T, nh * ws, nw * ws, d)[:, :, :, :H, :W]
    return w.reshape(B, heads, T * H * W, d)


def _window_valid(grid: Grid, ws: int, device: torch.device) -> Tensor | None:
    """``(nW, T*ws*ws)`` True where a window slot holds a real token; None without padding."""
    T, H, W = grid
    if H % ws == 0 and W % ws == 0:
        return None
    ones = torch.ones(1, 1, T * H * W, 1, device=device)
    return _to_windows(ones, grid, ws)[0, 0, :, :, 0] > 0


class Attention(nn.Module):
    """Multi-head self-attention with PyTorch's fused scaled-dot-product kernels."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop

    def forward(self, x: Tensor, grid: Grid, window_size: int = 0, num_prefix: int = 1) -> Tensor:
        """Attend over ``x`` of shape ``(B, P + T*H*W, C)``; ``window_size=0`` is global."""
        B, N, C = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, hd)
        drop = self.attn_drop if self.training else 0.0
        _, H, W = grid
        if window_size <= 0 or (window_size >= H and window_size >= W and num_prefix == 0):
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:
            out = self._windowed(q, k, v, grid, window_size, num_prefix, drop)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def _windowed(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid, ws: int, P: int, drop: float) -> Tensor:
        B, heads, _, hd = q.shape
        qw = _to_windows(q[:, :, P:], grid, ws)  # (B, h, nW, L, hd)
        kw = _to_windows(k[:, :, P:], grid, ws)
        vw = _to_windows(v[:, :, P:], grid, ws)
        n_win = qw.shape[2]
        valid = _window_valid(grid, ws, q.device)  # (nW, L) or None
        if P:  # every window also sees the prefix (cls) tokens: keys [prefix, window]
            kw = torch.cat([k[:, :, None, :P].expand(-1, -1, n_win, -1, -1), kw], dim=3)
            vw = torch.cat([v[:, :, None, :P].expand(-1, -1, n_win, -1, -1), vw], dim=3)
        L, S = qw.shape[3], kw.shape[3]
        mask = None
        if valid is not None:  # padded slots are never keys
            keys = torch.cat([valid.new_ones(n_win, P), valid], dim=1) if P else valid
            # additive float mask: unlike a boolean one it keeps SDPA on the fused CPU kernel
            mask = torch.zeros(keys.shape, dtype=qw.dtype, device=qw.device).masked_fill_(~keys, float("-inf"))
            mask = mask[None, :, None, :].repeat(1, heads, 1, 1)  # (1, h*nW, 1, S)
        # 4-D (B, h*nW, ., hd) views: the fused CPU/GPU kernels take 4-D inputs
        out = F.scaled_dot_product_attention(
            qw.view(B, heads * n_win, L, hd), kw.view(B, heads * n_win, S, hd),
            vw.view(B, heads * n_win, S, hd), attn_mask=mask, dropout_p=drop,
        )
        out = _from_windows(out.view(B, heads, n_win, L, hd), grid, ws)
        if not P:
            return out
        # Prefix tokens attend globally: over the windowed keys viewed flat (no copy), counting the
        # prefix keys once (window 0) and skipping padding. The query is cloned so backward does
        # not keep the whole qkv projection alive.
        keep = torch.ones(n_win, S, dtype=torch.bool, device=q.device)
        keep[1:, :P] = False
        if valid is not None:
            keep[:, P:] = valid
        out_prefix = F.scaled_dot_product_attention(
            q[:, :, :P].clone(), kw.view(B, heads, n_win * S, hd), vw.view(B, heads, n_win * S, hd),
            attn_mask=keep.view(1, 1, 1, n_win * S), dropout_p=drop,
        )
        return torch.cat([out_prefix, out], dim=2)


class Block(nn.Module):
    """Pre-norm transformer block (timm layout); ``window_size`` switches windowed attention."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path: float = 0.0,
        window_size: int = 0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.window_size = window_size

    def forward(self, x: Tensor, grid: Grid, num_prefix: int = 1) -> Tensor:
        """``x``: ``(B, P + T*H*W, C)`` -> same shape."""
        x = x + self.drop_path(self.attn(self.norm1(x), grid, self.window_size, num_prefix))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def default_global_blocks(depth: int) -> tuple[int, ...]:
    """The last block of each quarter of the depth (ViTDet): 2, 5, 8, 11 for depth 12."""
    step = max(depth // 4, 1)
    return tuple(sorted({min(depth - 1, step * (i + 1) - 1) for i in range(4)} | {depth - 1}))


def sincos_1d(embed_dim: int, pos: Tensor) -> Tensor:
    """MAE 1-D sin|cos embedding of positions ``pos`` (any shape, flattened) -> ``(M, D)``.

    Computed in ``pos.dtype`` (float64 for fixed grids, as the NumPy reference does).
    """
    if embed_dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=pos.dtype, device=pos.device)
    omega = 1.0 / 10000 ** (omega / (embed_dim / 2.0))
    out = pos.reshape(-1, 1) * omega[None]  # (M, D/2) outer product
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_3d_grid(embed_dim: int, grid: Grid) -> Tensor:
    """Prithvi's fixed 3-D sin-cos table ``(T*H*W, D)``, tokens in (t, h, w) order.

    Channels are concat(w: 6/16 D, h: 6/16 D, t: 4/16 D), computed in float64.
    """
    if embed_dim % 16:
        raise ValueError(f"3-D sin-cos embedding needs embed_dim divisible by 16, got {embed_dim}")
    T, H, W = grid
    d_wh, d_t = embed_dim // 16 * 6, embed_dim // 16 * 4
    f64 = torch.float64
    w_emb = sincos_1d(d_wh, torch.arange(W, dtype=f64))  # (W, d)
    h_emb = sincos_1d(d_wh, torch.arange(H, dtype=f64))
    t_emb = sincos_1d(d_t, torch.arange(T, dtype=f64))
    w_emb = w_emb[None, None].expand(T, H, W, d_wh)
    h_emb = h_emb[None, :, None].expand(T, H, W, d_wh)
    t_emb = t_emb[:, None, None].expand(T, H, W, d_t)
    return torch.cat([w_emb, h_emb, t_emb], dim=-1).reshape(T * H * W, embed_dim)


def mae_init(module: nn.Module) -> None:
    """MAE-style init: xavier-uniform Linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def check_divisible(h: int, w: int, patch: int, name: str) -> None:
    """Fail with a padding hint when the input is not a multiple of the patch size."""
    if h % patch or w % patch:
        new_h, new_w = math.ceil(h / patch) * patch, math.ceil(w / patch) * patch
        raise ValueError(
            f"{name}: input height={h}, width={w} must be divisible by the patch size {patch}. "
            f"Pad or crop your tiles, e.g. to ({new_h}, {new_w})."
        )
