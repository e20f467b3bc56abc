"""Prithvi-EO encoder (ViT-MAE with 3-D patch embedding), exact to the official Hub code.

Facts that decide exact outputs (see the cards and the official ``prithvi_mae.py``):

* tubelet patch embedding ``Conv3d(C, D, (1, p, p))``; tokens ordered (t, h, w);
* fixed 3-D sin-cos positional table for ``(num_frames, img_size/p, img_size/p)`` computed in
  float64; for another number of frames the table is recomputed, for another spatial size it is
  bicubically interpolated (``align_corners=True``) from the ``img_size`` table, as the official
  ``_interpolate_pos_encoding`` does;
* ``-TL`` variants add ``scale * sincos(year | day-of-year)`` per frame and
  ``scale * sincos(lat | lon)`` to every patch token (never to cls);
* LayerNorm eps 1e-5 and a final ``norm`` on the last block.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rsfm.models.backbones.vit import ViTBackbone
from rsfm.models.layers import (
    Grid,
    WindowMode,
    check_divisible,
    mae_init,
    sincos_1d,
    sincos_3d_grid,
)

__all__ = ["PrithviViT"]


class PatchEmbed3D(nn.Module):
    """Tubelet patch embedding. Keeps the official ``proj`` Conv3d weight ``(D, C, t, p, p)``.

    With tubelet 1 the convolution runs as a Conv2d over frames: identical numbers, and it avoids
    a oneDNN Conv3d backward that stalls under bf16 autocast on large tiles.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, tubelet_size: int = 1) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: Tensor) -> tuple[Tensor, Grid]:
        """``(B, C, T, H, W)`` -> tokens ``(B, T'*h*w, D)`` and grid ``(T', h, w)``."""
        B, C, T, H, W = x.shape
        if self.tubelet_size == 1:
            frames = x.transpose(1, 2).reshape(B * T, C, H, W)
            y = F.conv2d(frames, self.proj.weight[:, :, 0], self.proj.bias, stride=self.patch_size)
            _, D, h, w = y.shape
            tokens = y.view(B, T, D, h * w).permute(0, 1, 3, 2).reshape(B, T * h * w, D)
            return tokens, (T, h, w)
        y = self.proj(x)  # (B, D, T', h, w)
        grid = (y.shape[2], y.shape[3], y.shape[4])
        return y.flatten(2).transpose(1, 2), grid


class CoordEncoder(nn.Module):
    """``scale * concat(sincos(c0, D/2), sincos(c1, D/2))`` for (year, doy) or (lat, lon)."""

    def __init__(self, embed_dim: int, learn_scale: bool) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        if learn_scale:
            self.scale = nn.Parameter(torch.full((1,), 0.1))
        else:
            self.register_buffer("scale", torch.ones(1))

    def forward(self, coords: Tensor) -> Tensor:
        """``(..., 2)`` float coordinates -> ``(..., D)``."""
        coords = coords.float()
        shape = coords.shape[:-1]
        half = self.embed_dim // 2
        first = sincos_1d(half, coords[..., 0]).reshape(*shape, -1)
        second = sincos_1d(self.embed_dim - half, coords[..., 1]).reshape(*shape, -1)
        return self.scale * torch.cat([first, second], dim=-1)


class PrithviViT(ViTBackbone):
    """Prithvi-EO encoder returning feature maps (see :class:`ViTBackbone`).

    ``forward(x, temporal_coords=None, location_coords=None)``: ``x`` is ``(B, C, H, W)`` or
    ``(B, C, T, H, W)``; ``temporal_coords`` ``(B, T, 2)`` = (year, day of year);
    ``location_coords`` ``(B, 2)`` = (latitude, longitude) in degrees (index 0 feeds the
    encoder's "lat" half, as in the official code). Coordinates are ignored by non-TL variants.
    """

    def __init__(
        self,
        in_chans: int = 6,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        patch_size: int = 16,
        tubelet_size: int = 1,
        img_size: int | Sequence[int] = 224,
        num_frames: int = 1,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-5,
        coords_encoding: Sequence[str] = (),
        coords_scale_learn: bool = False,
        drop_path_rate: float = 0.0,
        out_indices: Sequence[int] | None = None,
        window_size: int | None = None,
        global_blocks: Sequence[int] | None = None,
        window_mode: WindowMode = "cls",
    ) -> None:
        super().__init__(
            embed_dim, depth, num_heads, patch_size, mlp_ratio=mlp_ratio, norm_eps=norm_eps,
            drop_path_rate=drop_path_rate, num_frames=num_frames // tubelet_size,
            out_indices=out_indices, window_size=window_size, global_blocks=global_blocks,
            window_mode=window_mode,
        )
        img = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        check_divisible(img[0], img[1], patch_size, "img_size")
        self.in_chans = in_chans
        self.img_size = img
        self.tubelet_size = tubelet_size
        self.base_grid: Grid = (num_frames // tubelet_size, img[0] // patch_size, img[1] // patch_size)
        self.patch_embed = PatchEmbed3D(in_chans, embed_dim, patch_size, tubelet_size)
        unknown = set(coords_encoding) - {"time", "location"}
        if unknown:
            raise ValueError(f"coords_encoding may contain 'time' and 'location', got {sorted(unknown)}")
        if "time" in coords_encoding:
            self.temporal_embed_enc = CoordEncoder(embed_dim, coords_scale_learn)
        if "location" in coords_encoding:
            self.location_embed_enc = CoordEncoder(embed_dim, coords_scale_learn)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # Fixed table: not a checkpoint key we read (the card drops the file's copy).
        self.register_buffer("pos_embed", sincos_3d_grid(embed_dim, self.base_grid).float()[None], persistent=False)
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self._init_weights()

    def _init_weights(self) -> None:
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        self.blocks.apply(mae_init)

    def positional_embedding(self, grid: Grid) -> Tensor:
        """``(1, T*h*w, D)`` table for a token grid, following the official interpolation."""
        T, h, w = grid
        if grid == self.base_grid:
            return self.pos_embed
        base_t, base_h, base_w = self.base_grid
        if base_t == T:
            table = self.pos_embed[0]
        else:
            table = sincos_3d_grid(self.embed_dim, (T, base_h, base_w)).to(self.pos_embed)
        if (h, w) != (base_h, base_w):
            table = table.reshape(T, base_h, base_w, -1).permute(0, 3, 1, 2)
            table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=True)
            table = table.permute(0, 2, 3, 1).reshape(T * h * w, -1)
        return table[None]

    def embed(
        self,
        x: Tensor,
        temporal_coords: Tensor | None = None,
        location_coords: Tensor | None = None,
    ) -> tuple[Tensor, Grid]:
        """Pixels -> ``(B, 1 + T*h*w, D)`` tokens (patch + positions + coordinates, cls first)."""
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.ndim != 5:
            raise ValueError(f"Prithvi expects (B, C, H, W) or (B, C, T, H, W), got shape {tuple(x.shape)}")
        B, C, _, H, W = x.shape
        if self.in_chans != C:
            raise ValueError(f"Prithvi was built for {self.in_chans} bands but the input has {C} channels.")
        check_divisible(H, W, self.patch_size, type(self).__name__)
        tokens, grid = self.patch_embed(x)
        tokens = tokens + self.positional_embedding(grid).to(tokens.dtype)
        tokens_per_frame = grid[1] * grid[2]
        if temporal_coords is not None and hasattr(self, "temporal_embed_enc"):
            if temporal_coords.shape[:2] != (B, grid[0]) or temporal_coords.shape[-1] != 2:
                raise ValueError(
                    f"temporal_coords must be (B, T, 2) = {(B, grid[0], 2)} [year, day of year], "
                    f"got {tuple(temporal_coords.shape)}"
                )
            enc = self.temporal_embed_enc(temporal_coords)  # (B, T, D)
            tokens = tokens + torch.repeat_interleave(enc, tokens_per_frame, dim=1).to(tokens.dtype)
        if location_coords is not None and hasattr(self, "location_embed_enc"):
            if tuple(location_coords.shape) != (B, 2):
                raise ValueError(f"location_coords must be (B, 2) = [lat, lon], got {tuple(location_coords.shape)}")
            tokens = tokens + self.location_embed_enc(location_coords)[:, None].to(tokens.dtype)
        cls = self.cls_token.expand(B, -1, -1).to(tokens.dtype)  # the table's cls slot is zeros
        return torch.cat([cls, tokens], dim=1), grid

    def forward(
        self,
        x: Tensor,
        temporal_coords: Tensor | None = None,
        location_coords: Tensor | None = None,
    ) -> list[Tensor]:
        """Feature maps ``(B, T*D, H/p, W/p)`` (see the class docstring for the inputs)."""
        return super().forward(x, temporal_coords=temporal_coords, location_coords=location_coords)
