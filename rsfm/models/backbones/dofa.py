"""DOFA encoder: a ViT whose patch embedding is generated from the bands' wavelengths.

Facts that decide exact outputs (official ``models_dwv.py`` / ``wave_dynamic_layer.py`` with the
2024 fix, TorchGeo ``dofa.py``):

* wavelengths in micrometres are embedded as 1-D sin-cos of ``wavelength * 1000`` (128 dims),
  passed through a residual MLP, then a one-layer post-norm transformer over
  [128 weight tokens, C wave tokens, 1 bias token] generates the kernel ``(C, k, k, D)`` (permuted
  to ``(D, C, k, k)``: the fixed reshape the re-uploaded weights need) and the bias, both x 0.01;
* the convolution has stride 16 and **padding 1**;
* the positional table comes from the checkpoint (bicubically resized for other grids);
* LayerNorm eps 1e-6; no final norm (feature maps are raw block outputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rsfm.models.backbones.vit import ViTBackbone
from rsfm.models.layers import Grid, WindowMode, check_divisible, mae_init, sincos_1d

__all__ = ["DOFAViT"]


class TransformerWeightGenerator(nn.Module):
    """Generates conv weights/bias from wavelength embeddings (official parameter names)."""

    def __init__(self, input_dim: int, output_dim: int, embed_dim: int, num_heads: int = 4) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=input_dim, nhead=num_heads, activation="gelu", norm_first=False,
            batch_first=False, dropout=0.0,
        )
        self.transformer_encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.fc_weight = nn.Linear(input_dim, output_dim)
        self.fc_bias = nn.Linear(input_dim, embed_dim)
        self.num_weight_tokens = 128
        self.weight_tokens = nn.Parameter(torch.empty(self.num_weight_tokens, input_dim))
        self.bias_token = nn.Parameter(torch.empty(1, input_dim))
        nn.init.normal_(self.weight_tokens, std=0.02)
        nn.init.normal_(self.bias_token, std=0.02)

    def forward(self, waves: Tensor) -> tuple[Tensor, Tensor]:
        """``(C, input_dim)`` -> weights ``(C, output_dim)`` and bias ``(embed_dim,)``."""
        seq = torch.cat([self.weight_tokens, waves, self.bias_token], dim=0)
        out = self.transformer_encoder(seq[:, None])[:, 0]  # (128 + C + 1, input_dim)
        weights = self.fc_weight(out[self.num_weight_tokens : -1] + waves)
        bias = self.fc_bias(out[-1])
        return weights, bias


class FCResLayer(nn.Module):
    """``x + relu(w2(relu(w1(x))))``."""

    def __init__(self, size: int = 128) -> None:
        super().__init__()
        self.w1 = nn.Linear(size, size)
        self.w2 = nn.Linear(size, size)

    def forward(self, x: Tensor) -> Tensor:
        """Residual MLP."""
        return x + F.relu(self.w2(F.relu(self.w1(x))))


class DynamicPatchEmbed(nn.Module):
    """Wavelength-conditioned patch embedding (``Dynamic_MLP_OFA``)."""

    scaler = 0.01

    def __init__(self, embed_dim: int, kernel_size: int = 16, wv_planes: int = 128, padding: int = 1) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.kernel_size = kernel_size
        self.wv_planes = wv_planes
        self.padding = padding
        self.weight_generator = TransformerWeightGenerator(wv_planes, kernel_size * kernel_size * embed_dim, embed_dim)
        self.fclayer = FCResLayer(wv_planes)
        for module in (self.weight_generator, self.fclayer):
            for m in module.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.constant_(m.bias, 0.01)

    def kernel(self, wavelengths: Tensor) -> tuple[Tensor, Tensor]:
        """Wavelengths ``(C,)`` in micrometres -> conv weight ``(D, C, k, k)`` and bias ``(D,)``."""
        waves = self.fclayer(sincos_1d(self.wv_planes, wavelengths.float() * 1000))
        weight, bias = self.weight_generator(waves)
        k, C = self.kernel_size, wavelengths.shape[0]
        weight = weight.view(C, k, k, self.embed_dim).permute(3, 0, 1, 2)  # the fixed reshape
        return weight * self.scaler, bias * self.scaler

    def forward(self, x: Tensor, wavelengths: Tensor) -> tuple[Tensor, Grid]:
        """``(B, C, H, W)`` -> tokens ``(B, h*w, D)`` and grid ``(1, h, w)``."""
        weight, bias = self.kernel(wavelengths)
        y = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), stride=self.kernel_size, padding=self.padding)
        return y.flatten(2).transpose(1, 2), (1, y.shape[2], y.shape[3])


class DOFAViT(ViTBackbone):
    """DOFA encoder returning feature maps (see :class:`ViTBackbone`).

    ``forward(x, wavelengths=None)``: ``x`` is ``(B, C, H, W)``; ``wavelengths`` (``C`` floats in
    micrometres) override, for this call, the wavelengths of the bands the model was built with.
    """

    def __init__(
        self,
        wavelengths: Sequence[float],
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        patch_size: int = 16,
        img_size: int = 224,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-6,
        wv_planes: int = 128,
        patch_padding: int = 1,
        drop_path_rate: float = 0.0,
        out_indices: Sequence[int] | None = None,
        window_size: int | None = None,
        global_blocks: Sequence[int] | None = None,
        window_mode: WindowMode = "cls",
    ) -> None:
        super().__init__(
            embed_dim, depth, num_heads, patch_size, mlp_ratio=mlp_ratio, norm_eps=norm_eps,
            drop_path_rate=drop_path_rate, out_indices=out_indices, window_size=window_size,
            global_blocks=global_blocks, window_mode=window_mode,
        )
        self.img_size = img_size
        self.patch_embed = DynamicPatchEmbed(embed_dim, patch_size, wv_planes, patch_padding)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        grid = img_size // patch_size
        self.base_grid = (grid, grid)
        # Fixed (non-trained) but stored in the checkpoint: a buffer, so optimisers never see it.
        self.register_buffer("pos_embed", _sincos_2d(embed_dim, grid)[None])
        self.register_buffer("wavelengths", torch.tensor(list(wavelengths), dtype=torch.float32), persistent=False)
        nn.init.normal_(self.cls_token, std=0.02)
        self.blocks.apply(mae_init)

    @property
    def in_chans(self) -> int:
        """Number of bands the model was built with."""
        return int(self.wavelengths.numel())

    def positional_embedding(self, h: int, w: int) -> Tensor:
        """``(1, h*w, D)`` patch positions, resized bicubically from the checkpoint's grid."""
        table = self.pos_embed[:, 1:]
        if (h, w) == self.base_grid:
            return table
        gh, gw = self.base_grid
        table = table.reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)
        return table.permute(0, 2, 3, 1).reshape(1, h * w, -1)

    def embed(self, x: Tensor, wavelengths: Tensor | Sequence[float] | None = None) -> tuple[Tensor, Grid]:
        """Pixels -> ``(B, 1 + h*w, D)`` tokens."""
        if x.ndim != 4:
            raise ValueError(f"DOFA expects (B, C, H, W), got shape {tuple(x.shape)}")
        waves = self.wavelengths if wavelengths is None else torch.as_tensor(wavelengths, dtype=torch.float32, device=x.device)
        if waves.ndim != 1 or waves.numel() != x.shape[1]:
            raise ValueError(
                f"DOFA needs one wavelength per input channel: the input has {x.shape[1]} channels "
                f"but {waves.numel()} wavelengths were given ({waves.tolist()})."
            )
        check_divisible(x.shape[2], x.shape[3], self.patch_size, type(self).__name__)
        tokens, grid = self.patch_embed(x, waves)
        tokens = tokens + self.positional_embedding(grid[1], grid[2]).to(tokens.dtype)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1).to(tokens.dtype)
        return torch.cat([cls, tokens], dim=1), grid

    def forward(self, x: Tensor, wavelengths: Tensor | Sequence[float] | None = None) -> list[Tensor]:
        """Feature maps ``(B, D, H/16, W/16)`` of the ``out_indices`` blocks."""
        return super().forward(x, wavelengths=wavelengths)


def _sincos_2d(embed_dim: int, grid: int) -> Tensor:
    """MAE 2-D sin-cos table with a zero cls slot ``(1 + g*g, D)`` (what the checkpoint stores)."""
    coords = torch.arange(grid, dtype=torch.float64)
    gw, gh = torch.meshgrid(coords, coords, indexing="xy")  # MAE: w first
    emb_h = sincos_1d(embed_dim // 2, gw.reshape(-1))
    emb_w = sincos_1d(embed_dim // 2, gh.reshape(-1))
    table = torch.cat([emb_h, emb_w], dim=1)
    return torch.cat([torch.zeros(1, embed_dim, dtype=torch.float64), table]).float()
