"""The part Prithvi and DOFA share: blocks, window attention, selected outputs as feature maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from rsfm.errors import ConfigError
from rsfm.models.layers import Block, Grid, WindowMode, check_window_mode, default_global_blocks

__all__ = ["ViTBackbone"]


def _check_window_size(window_size: int) -> None:
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 0:
        raise ConfigError(f"window_size={window_size!r}: must be an integer >= 0 tokens per window "
                          "side (0 or None: global attention).", key="window_size")


class ViTBackbone(nn.Module):
    """A stack of :class:`~rsfm.models.layers.Block` over embedded tokens.

    Subclasses implement :meth:`embed` (pixels -> ``(B, 1 + T*h*w, D)`` tokens and the grid).
    :meth:`forward` returns the outputs of the blocks in ``out_indices`` as feature maps
    ``(B, T*D, h, w)`` (frames concatenated on channels, in (t, d) order; ``T = 1`` for single
    images), without the cls token. When a subclass has a final ``norm`` (Prithvi), it is applied to
    the last block's output, as in the official ``forward_features``.

    Window attention (:meth:`set_window_attention`, ViTDet): blocks outside ``global_blocks``
    attend within ``window_size`` x ``window_size`` token windows; ``window_mode`` says whether
    the windows also see the cls token (``"cls"``, the default) or not (``"vitdet"``), see
    :mod:`rsfm.models.layers`. In training, blocks recompute cheap activations in backward
    (``Block.recompute``); :meth:`set_grad_checkpointing` recomputes whole blocks instead.

    Attributes:
        out_channels: Channels of each returned map (``D * num_frames``).
        out_strides: Stride of each returned map (the patch size).
    """

    num_prefix_tokens = 1

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        patch_size: int,
        *,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        num_frames: int = 1,
        out_indices: Sequence[int] | None = None,
        window_size: int | None = None,
        global_blocks: Sequence[int] | None = None,
        window_mode: WindowMode = "cls",
    ) -> None:
        super().__init__()
        check_window_mode(window_mode)
        self.embed_dim = embed_dim
        self.depth = depth
        self.patch_size = patch_size
        self.num_frames = num_frames
        self.out_indices = self._check_out_indices(out_indices)  # before building any block
        _check_window_size(window_size or 0)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # stochastic depth
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_eps=norm_eps, drop_path=rates[i])
            for i in range(depth)
        )
        self.out_channels = [embed_dim * num_frames] * len(self.out_indices)
        self.out_strides = [patch_size] * len(self.out_indices)
        self.grad_checkpointing = False
        self.window_size = 0
        self.window_mode: WindowMode = window_mode
        self.global_blocks: tuple[int, ...] = tuple(range(depth))
        if window_size:
            self.set_window_attention(window_size, global_blocks, window_mode=window_mode)

    def _check_out_indices(self, out_indices: Sequence[int] | None) -> tuple[int, ...]:
        if out_indices is None:
            return (self.depth - 1,)
        values = list(out_indices)
        bad = [i for i in values if not -self.depth <= i < self.depth]
        if bad or not values:
            what = f"{bad} outside" if bad else "names no block of"
            raise ConfigError(f"out_indices={values}: {what} the blocks 0..{self.depth - 1} "
                              f"(or -1..-{self.depth}) of this {self.depth}-block ViT.",
                              key="out_indices")
        return tuple(sorted({i + self.depth if i < 0 else i for i in values}))

    def set_window_attention(self, window_size: int, global_blocks: Sequence[int] | None = None, *,
                             window_mode: WindowMode | None = None) -> None:
        """Switch to ViTDet attention: windows of ``window_size`` tokens except in ``global_blocks``.

        ``window_size=0`` restores global attention everywhere. ``global_blocks`` defaults to the
        last block of each quarter of the depth. ``window_mode`` (``"cls"`` or ``"vitdet"``; None
        keeps the current one) says whether windows also hold the cls token. No parameters change.
        """
        if window_mode is not None:
            check_window_mode(window_mode)
            self.window_mode = window_mode
        _check_window_size(window_size)
        glob = default_global_blocks(self.depth) if global_blocks is None else tuple(global_blocks)
        bad = [i for i in glob if not 0 <= i < self.depth]
        if bad:
            raise ConfigError(f"global_blocks={list(glob)}: {bad} outside the blocks "
                              f"0..{self.depth - 1}.", key="global_blocks")
        self.window_size = window_size
        self.global_blocks = glob if window_size else tuple(range(self.depth))
        for i, blk in enumerate(self.blocks):
            blk.window_size = 0 if (i in self.global_blocks or not window_size) else window_size
            blk.window_mode = self.window_mode

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute whole blocks in backward (keeps only each block's input; saves memory on large tiles).

        It replaces the blocks' own partial recomputation (``Block.recompute``).
        """
        self.grad_checkpointing = enable
        for blk in self.blocks:
            blk.recompute = not enable

    def embed(self, x: Tensor, **kwargs: Tensor | None) -> tuple[Tensor, Grid]:  # pragma: no cover
        """Pixels -> tokens ``(B, 1 + T*h*w, D)`` with positional information, and the grid."""
        raise NotImplementedError

    def forward_tokens(self, x: Tensor, **kwargs: Tensor | None) -> tuple[list[Tensor], Grid]:
        """Token outputs ``(B, 1 + T*h*w, D)`` of the ``out_indices`` blocks, and the grid."""
        tokens, grid = self.embed(x, **kwargs)
        outs = []
        last = self.out_indices[-1]
        for i, blk in enumerate(self.blocks[: last + 1]):
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                tokens = checkpoint(blk, tokens, grid, self.num_prefix_tokens, use_reentrant=False)
            else:
                tokens = blk(tokens, grid, self.num_prefix_tokens)
            if i in self.out_indices:
                out = tokens
                final_norm = getattr(self, "norm", None)  # a submodule only in some families
                if i == self.depth - 1 and final_norm is not None:
                    out = final_norm(out)
                outs.append(out)
        return outs, grid

    def tokens_to_map(self, tokens: Tensor, grid: Grid) -> Tensor:
        """``(B, P + T*h*w, D)`` -> ``(B, T*D, h, w)`` (frames stacked on channels, (t, d) order)."""
        T, h, w = grid
        B, _, D = tokens.shape
        x = tokens[:, self.num_prefix_tokens:].reshape(B, T, h, w, D)
        return x.permute(0, 1, 4, 2, 3).reshape(B, T * D, h, w)

    def forward(self, x: Tensor, **kwargs: Tensor | None) -> list[Tensor]:
        """Feature maps ``(B, T*D, H/p, W/p)`` of the ``out_indices`` blocks."""
        outs, grid = self.forward_tokens(x, **kwargs)
        return [self.tokens_to_map(t, grid) for t in outs]
