"""ViT building blocks shared by Prithvi and DOFA: SDPA attention with optional windows.

Tokens enter a block as ``(B, P + T*H*W, C)``: ``P`` prefix tokens (the cls token) followed by
the patch tokens of a ``(T, H, W)`` grid in (t, h, w) order. Parameter names match timm's
``Block`` (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``), so
official MAE checkpoints load unchanged, and windowing adds no parameters (ViTDet).

Windowed attention (``window_size > 0``): patch tokens attend within non-overlapping
``T x ws x ws`` windows (all frames of a spatial window). What the prefix (cls) tokens do is the
``window_mode``:

* ``"cls"`` (the default, rsfm 0.1 semantics): every window also holds the prefix tokens as
  keys, and the prefix tokens attend globally, in every block. A window covering the whole grid
  is exactly global attention.
* ``"vitdet"``: ViTDet's windowed block exactly (ViTDet has no cls token): each window holds its
  patch tokens only, and the prefix tokens form a window of their own (they attend to each
  other; with one cls token its attention output is its value). No prefix keys are concatenated
  into the windows and, when the grid is a multiple of the window, no mask is built. The prefix
  tokens still meet the patch tokens in the global blocks.

Grids that are not a multiple of the window are padded inside the block (:func:`window_partition`)
and padded positions are masked out as keys.

Memory in training (``Block.recompute``, on by default): a block keeps for backward only what is
expensive to recompute. LayerNorm outputs are recomputed from their input and the GELU output
from the fc1 output (elementwise work), and in windowed blocks the whole attention branch
(LayerNorm, qkv projection, window attention) is recomputed from the block input, because
window attention is cheap; global attention keeps q, k, v and its output, since recomputing it
would cost as much as the attention itself. Results are the same kernels on the same inputs.
At 1024 px (ViT-B/16, fp32) this keeps 10 of 16 token-sized tensors per global block and 6 per
windowed block (see ``bench/bench_attention.py``).
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from rsfm.errors import ConfigError
from rsfm.models.blocks import DropPath, Mlp

__all__ = [
    "EXPLICIT_ATTENTION_MAX_TOKENS",
    "WINDOW_MODES",
    "Attention",
    "Block",
    "WindowMode",
    "check_window_mode",
    "default_global_blocks",
    "global_attention",
    "sincos_1d",
    "sincos_3d_grid",
    "window_partition",
    "window_unpartition",
]

Grid = tuple[int, int, int]  # (T, H, W) in tokens
WindowMode = Literal["cls", "vitdet"]
WINDOW_MODES: tuple[str, ...] = get_args(WindowMode)


def check_window_mode(mode: str) -> None:
    """Raise a ConfigError naming the modes when ``mode`` is not one."""
    if mode not in WINDOW_MODES:
        raise ConfigError(f"window_mode={mode!r}: must be one of {list(WINDOW_MODES)}.",
                          key="window_mode")


def window_partition(x: Tensor, grid: Grid, ws: int) -> Tensor:
    """Patch tokens ``(B, T*H*W, D)`` -> windows ``(B*nW, T*ws*ws, D)``, zero-padded.

    Windows are ``T x ws x ws`` (every frame of a spatial window), numbered row-major over the
    padded ``ceil(H/ws) x ceil(W/ws)`` window grid, sample-major; tokens inside a window are in
    (t, h, w) order. The grid is padded at the bottom and right to a multiple of ``ws``.
    """
    B, _, D = x.shape
    T, H, W = grid
    x = x.view(B, T, H, W, D)
    pad_h, pad_w = (ws - H % ws) % ws, (ws - W % ws) % ws
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    nh, nw = (H + pad_h) // ws, (W + pad_w) // ws
    x = x.view(B, T, nh, ws, nw, ws, D).permute(0, 2, 4, 1, 3, 5, 6)  # (B, nh, nw, T, ws, ws, D)
    return x.reshape(B * nh * nw, T * ws * ws, D)


def window_unpartition(windows: Tensor, grid: Grid, ws: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B*nW, T*ws*ws, D)`` -> ``(B, T*H*W, D)`` (padding dropped)."""
    _, _, D = windows.shape
    T, H, W = grid
    nh, nw = -(-H // ws), -(-W // ws)
    x = windows.view(-1, nh, nw, T, ws, ws, D).permute(0, 3, 1, 4, 2, 5, 6)  # (B, T, nh, ws, nw, ws, D)
    x = x.reshape(-1, T, nh * ws, nw * ws, D)[:, :, :H, :W]
    return x.reshape(-1, T * H * W, D)


def _window_key_mask(grid: Grid, ws: int, batch: int, dtype: torch.dtype, device: torch.device) -> Tensor | None:
    """Additive key mask ``(B*nW, 1, 1, T*ws*ws)``: 0 for real tokens, -inf for padding (None without padding).

    A float mask keeps SDPA on the fused CPU kernel; the head and query dims broadcast.
    """
    T, H, W = grid
    if H % ws == 0 and W % ws == 0:
        return None
    ones = torch.ones(1, T * H * W, 1, device=device)
    valid = window_partition(ones, grid, ws)[:, :, 0] > 0  # (nW, L)
    mask = torch.zeros(valid.shape, dtype=dtype, device=device).masked_fill_(~valid, float("-inf"))
    return mask.repeat(batch, 1)[:, None, None, :]


# Up to this many tokens (a 512 px tile at patch 16, plus prefix tokens) the explicit form below
# may hold the (B, heads, N, N) scores.
EXPLICIT_ATTENTION_MAX_TOKENS = 1040


def global_attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v`` for ``(B, h, N, d)`` tensors.

    ``F.scaled_dot_product_attention``, except for inference on CPU in bf16/fp16 at up to
    :data:`EXPLICIT_ATTENTION_MAX_TOKENS` tokens: there torch's fused CPU kernel runs no faster
    than in fp32 (12.1 vs 12.5 ms per ViT-B block at 197 tokens), while two matrix products and a
    softmax run in 6.4 ms, which makes bf16 prediction ~3.7x fp32 instead of ~2.9x. Training,
    fp32 and CUDA keep the fused kernel.
    """
    if (q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16) and not dropout_p
            and not torch.is_grad_enabled() and k.shape[-2] <= EXPLICIT_ATTENTION_MAX_TOKENS):
        return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


class Attention(nn.Module):
    """Multi-head self-attention with PyTorch's fused scaled-dot-product kernels."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embed_dim={dim} must be divisible by num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop

    def forward(self, x: Tensor, grid: Grid, window_size: int = 0, num_prefix: int = 1,
                window_mode: WindowMode = "cls") -> Tensor:
        """Attend over ``x`` of shape ``(B, P + T*H*W, C)``; ``window_size=0`` is global."""
        return self.proj(self.attend(self.qkv(x), grid, window_size, num_prefix, window_mode))

    def _heads(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B', L, 3C)`` -> q, k, v ``(B', heads, L, hd)`` (views)."""
        Bq, L, _ = qkv.shape
        return qkv.view(Bq, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def attend(self, qkv: Tensor, grid: Grid, window_size: int = 0, num_prefix: int = 1,
               window_mode: WindowMode = "cls") -> Tensor:
        """The attention part without the output projection: qkv ``(B, N, 3C)`` -> ``(B, N, C)``."""
        B, N, C3 = qkv.shape
        C, P, ws = C3 // 3, num_prefix, window_size
        drop = self.attn_drop if self.training else 0.0
        _, H, W = grid
        covers = ws >= H and ws >= W
        if ws <= 0 or (covers and (P == 0 or window_mode == "cls")):  # global attention
            q, k, v = self._heads(qkv)
            out = global_attention(q, k, v, drop)  # (B, h, N, hd)
            return out.transpose(1, 2).reshape(B, N, C)
        if window_mode == "vitdet":
            return self._windowed_vitdet(qkv, grid, ws, P, drop)
        check_window_mode(window_mode)
        return self._windowed_cls(qkv, grid, ws, P, drop)

    def _windowed_vitdet(self, qkv: Tensor, grid: Grid, ws: int, P: int, drop: float) -> Tensor:
        B, _, C3 = qkv.shape
        C = C3 // 3
        windows = window_partition(qkv[:, P:], grid, ws)  # (B*nW, L, 3C): one copy
        nwin, L, _ = windows.shape
        q, k, v = self._heads(windows)  # (B*nW, h, L, hd) views
        mask = _window_key_mask(grid, ws, B, q.dtype, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        patches = window_unpartition(out.transpose(1, 2).reshape(nwin, L, C), grid, ws)  # (B, T*H*W, C)
        if not P:
            return patches
        qp, kp, vp = self._heads(qkv[:, :P])  # the prefix tokens: a window of their own
        prefix = F.scaled_dot_product_attention(qp, kp, vp, dropout_p=drop).transpose(1, 2).reshape(B, P, C)
        return torch.cat([prefix, patches], dim=1)

    def _windowed_cls(self, qkv: Tensor, grid: Grid, ws: int, P: int, drop: float) -> Tensor:
        B, _, C3 = qkv.shape
        C = C3 // 3
        windows = window_partition(qkv[:, P:], grid, ws)  # (B*nW, L, 3C)
        nwin, L, _ = windows.shape
        n_per = nwin // B
        mask = _window_key_mask(grid, ws, B, qkv.dtype, qkv.device)
        if P:  # every window's keys are [prefix, window]
            prefix = qkv[:, :P].repeat_interleave(n_per, dim=0)  # (B*nW, P, 3C)
            windows = torch.cat([prefix, windows], dim=1)
            if mask is not None:
                mask = F.pad(mask, (P, 0))  # prefix keys are always valid
        q, k, v = self._heads(windows)  # (B*nW, h, P+L, hd)
        out = F.scaled_dot_product_attention(q[:, :, P:], k, v, attn_mask=mask, dropout_p=drop)
        patches = window_unpartition(out.transpose(1, 2).reshape(nwin, L, C), grid, ws)
        if not P:
            return patches
        # the prefix tokens attend globally: over all keys, in grid order (no padding, no mask)
        q, k, v = self._heads(qkv)
        prefix = F.scaled_dot_product_attention(q[:, :, :P], k, v, dropout_p=drop)
        return torch.cat([prefix.transpose(1, 2).reshape(B, P, C), patches], dim=1)


class Block(nn.Module):
    """Pre-norm transformer block (timm layout); ``window_size`` switches windowed attention.

    Attributes:
        window_size: Window side in tokens (0: global attention).
        window_mode: ``"cls"`` or ``"vitdet"`` (see the module docstring).
        recompute: In training, recompute cheap activations in backward instead of keeping them
            (module docstring); False keeps everything (as a plain timm block does).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path: float = 0.0,
        window_size: int = 0,
        window_mode: WindowMode = "cls",
    ) -> None:
        super().__init__()
        check_window_mode(window_mode)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.window_size = window_size
        self.window_mode: WindowMode = window_mode
        self.recompute = True

    def forward(self, x: Tensor, grid: Grid, num_prefix: int = 1) -> Tensor:
        """``x``: ``(B, P + T*H*W, C)`` -> same shape."""
        if self.recompute and self.training and torch.is_grad_enabled():
            return self._forward_recompute(x, grid, num_prefix)
        x = x + self.drop_path(self.attn(self.norm1(x), grid, self.window_size, num_prefix, self.window_mode))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    # The checkpointed pieces. Non-reentrant checkpoints stop recomputing as soon as every tensor
    # backward needs is back, i.e. before the last Linear's matrix product runs again.
    def _attention_branch(self, x: Tensor, grid: Grid, num_prefix: int) -> Tensor:
        return self.attn(self.norm1(x), grid, self.window_size, num_prefix, self.window_mode)

    @staticmethod
    def _norm_linear(x: Tensor, norm: nn.Module, linear: nn.Module) -> Tensor:
        return linear(norm(x))

    def _mlp_tail(self, hidden: Tensor) -> Tensor:
        mlp = self.mlp
        return mlp.drop2(mlp.fc2(mlp.drop1(mlp.act(hidden))))

    def _forward_recompute(self, x: Tensor, grid: Grid, num_prefix: int) -> Tensor:
        if self.window_size > 0:  # window attention is cheap: keep only the block input
            a = checkpoint(self._attention_branch, x, grid, num_prefix, use_reentrant=False)
        else:  # keep q, k, v and the attention output; recompute the LayerNorm
            qkv = checkpoint(self._norm_linear, x, self.norm1, self.attn.qkv, use_reentrant=False)
            a = self.attn.proj(self.attn.attend(qkv, grid, 0, num_prefix, self.window_mode))
        x = x + self.drop_path(a)
        hidden = checkpoint(self._norm_linear, x, self.norm2, self.mlp.fc1, use_reentrant=False)
        return x + self.drop_path(checkpoint(self._mlp_tail, hidden, use_reentrant=False))


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
        raise ConfigError(f"embed_dim={embed_dim}: the 3-D sin-cos embedding needs a multiple of 16.")
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
