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
    "window_partition",
    "window_unpartition",
]

Grid = tuple[int, int, int]  # (T, H, W) in tokens


def window_partition(x: Tensor, window_size: int) -> tuple[Tensor, tuple[int, int]]:
    """Split a token grid into non-overlapping spatial windows spanning all frames.

    Args:
        x: ``(B, T, H, W, C)`` tokens.
        window_size: Window side in tokens.

    Returns:
        ``(B * nW, T * ws * ws, C)`` windows and the padded size ``(Hp, Wp)``; padding is zeros.
    """
    B, T, H, W, C = x.shape
    ws = window_size
    pad_h, pad_w = (ws - H % ws) % ws, (ws - W % ws) % ws
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, T, Hp // ws, ws, Wp // ws, ws, C)
    x = x.permute(0, 2, 4, 1, 3, 5, 6)  # B, nH, nW, T, ws, ws, C
    return x.reshape(-1, T * ws * ws, C), (Hp, Wp)


def window_unpartition(windows: Tensor, window_size: int, grid: Grid, padded: tuple[int, int]) -> Tensor:
    """Inverse of :func:`window_partition`, cropping the padding.

    Args:
        windows: ``(B * nW, T * ws * ws, C)``.
        window_size: Window side in tokens.
        grid: Unpadded ``(T, H, W)``.
        padded: Padded ``(Hp, Wp)`` returned by :func:`window_partition`.

    Returns:
        ``(B, T, H, W, C)`` tokens.
    """
    T, H, W = grid
    Hp, Wp = padded
    ws = window_size
    C = windows.shape[-1]
    B = windows.shape[0] // ((Hp // ws) * (Wp // ws))
    x = windows.view(B, Hp // ws, Wp // ws, T, ws, ws, C)
    x = x.permute(0, 3, 1, 4, 2, 5, 6).reshape(B, T, Hp, Wp, C)
    return x[:, :, :H, :W].contiguous()


def _window_key_mask(grid: Grid, window_size: int, num_prefix: int, device: torch.device) -> Tensor | None:
    """Boolean key mask ``(nW, 1, 1, P + T*ws*ws)`` that hides padded tokens, or None if no padding."""
    T, H, W = grid
    ws = window_size
    if H % ws == 0 and W % ws == 0:
        return None
    valid = torch.ones(1, T, H, W, 1, device=device)
    windows, _ = window_partition(valid, ws)  # (nW, T*ws*ws, 1), zeros where padded
    keys = windows[..., 0] > 0
    prefix = torch.ones(keys.shape[0], num_prefix, dtype=torch.bool, device=device)
    return torch.cat([prefix, keys], dim=1)[:, None, None, :]


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
        T, H, W = grid

        def to_windows(t: Tensor) -> tuple[Tensor, tuple[int, int]]:
            # (B, heads, T*H*W, hd) -> (B*nW, heads, T*ws*ws, hd)
            t = t[:, :, P:].reshape(B, heads, T, H, W, hd).permute(0, 2, 3, 4, 1, 5)
            w, padded = window_partition(t.reshape(B, T, H, W, heads * hd), ws)
            return w.view(w.shape[0], -1, heads, hd).transpose(1, 2), padded

        qw, padded = to_windows(q)
        kw, _ = to_windows(k)
        vw, _ = to_windows(v)
        n_win = qw.shape[0] // B
        if P:  # every window also sees the prefix (cls) tokens
            kp = k[:, :, :P].repeat_interleave(n_win, dim=0)
            vp = v[:, :, :P].repeat_interleave(n_win, dim=0)
            kw, vw = torch.cat([kp, kw], dim=2), torch.cat([vp, vw], dim=2)
        mask = _window_key_mask(grid, ws, P, q.device)
        if mask is not None:
            mask = mask.repeat(B, 1, 1, 1)
        out_w = F.scaled_dot_product_attention(qw, kw, vw, attn_mask=mask, dropout_p=drop)
        # (B*nW, heads, T*ws*ws, hd) -> (B, heads, T*H*W, hd)
        out_w = out_w.transpose(1, 2).reshape(out_w.shape[0], -1, heads * hd)
        out_p = window_unpartition(out_w, ws, grid, padded).view(B, T * H * W, heads, hd).transpose(1, 2)
        if not P:
            return out_p
        out_prefix = F.scaled_dot_product_attention(q[:, :, :P], k, v, dropout_p=drop)
        return torch.cat([out_prefix, out_p], dim=2)


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


def trunc_normal_init(module: nn.Module) -> None:
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
