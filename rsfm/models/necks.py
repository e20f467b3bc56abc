"""Necks: turn backbone outputs into the multi-scale pyramid the heads consume.

Every neck maps ``list[Tensor]`` (the backbone's maps) to ``list[Tensor]`` (pyramid levels, finest
first) and exposes ``out_channels`` and ``out_strides`` (nominal, relative to the input).

* :class:`SimpleFeaturePyramid` (ViTDet): from a ViT's last map build strides 4, 8, 16, 32
  (optionally 64). Stride-14 ViTs (Prithvi-600M) are bilinearly resized by 14/16 first, so the
  levels are at 1/4 ... 1/32 of the input (exactly when the input is a multiple of 224).
* :class:`StagePyramid`: a ResNet's stages as they are (UNet and DeepLab want the raw stages).
* :class:`StageFPN`: torchvision's ``FeaturePyramidNetwork`` over the stages (detection).
* :class:`IdentityNeck`: the backbone maps unchanged (classification, light baselines).

Every neck starts with a :class:`TemporalReduction` (identity for single-frame backbones), which
merges Prithvi multi-frame maps ``(B, T*D, h, w)`` into ``(B, D, h, w)``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from rsfm.errors import ConfigError
from rsfm.modelcheck import resolve_neck_kind
from rsfm.models.blocks import LayerNorm2d

__all__ = [
    "IdentityNeck",
    "LayerNorm2d",
    "SimpleFeaturePyramid",
    "StageFPN",
    "StagePyramid",
    "TemporalReduction",
]

log = logging.getLogger(__name__)

TEMPORAL_REDUCTIONS = ("mean", "concat")


class TemporalReduction(nn.Module):
    """Merge the frames of a multi-temporal ViT map.

    The backbone stacks frames on channels in (t, d) order: ``(B, T*D, h, w)``.

    * ``mean``: reshape to ``(B, T, D, h, w)`` and average over ``T`` (no parameters; any ``T``
      works at inference).
    * ``concat``: keep the ``T*D`` channels and project them to ``D`` with a 1x1 convolution
      (learns how to weigh the frames; ``T`` is fixed by the model).

    With ``num_frames == 1`` it is the identity (no parameters).

    Args:
        embed_dim: ``D``, channels per frame.
        num_frames: ``T``, frames the backbone was built for.
        mode: ``mean`` or ``concat``.
    """

    def __init__(self, embed_dim: int, num_frames: int = 1, mode: str = "concat") -> None:
        super().__init__()
        if mode not in TEMPORAL_REDUCTIONS:
            raise ConfigError(f"temporal_reduction={mode!r}; allowed: {list(TEMPORAL_REDUCTIONS)}.")
        self.embed_dim = embed_dim
        self.num_frames = num_frames
        self.mode = mode
        self.proj = nn.Conv2d(embed_dim * num_frames, embed_dim, 1) if (mode == "concat" and num_frames > 1) else None

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T*D, h, w)`` -> ``(B, D, h, w)``."""
        if self.num_frames == 1 and x.shape[1] == self.embed_dim:
            return x
        B, TD, h, w = x.shape
        if TD % self.embed_dim:
            raise ValueError(f"Feature map has {TD} channels, not a multiple of embed_dim={self.embed_dim}.")
        T = TD // self.embed_dim
        if self.mode == "mean":
            return x.view(B, T, self.embed_dim, h, w).mean(dim=1)
        if self.num_frames != T:
            raise ValueError(
                f"temporal_reduction='concat' was built for {self.num_frames} frames but the input has {T}. "
                f"Feed (B, C, {self.num_frames}, H, W) or build the model with temporal_reduction='mean'."
            )
        assert self.proj is not None
        return self.proj(x)


def _conv_ln(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    # ViTDet: bias-free conv followed by LayerNorm over channels (no BatchNorm: small batches).
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), LayerNorm2d(out_ch))


class SimpleFeaturePyramid(nn.Module):
    """ViTDet's simple feature pyramid from a single stride-16 map.

    Scale factor 4: deconv(D, D/2) + LN + GELU + deconv(D/2, D/4); 2: deconv(D, D/2); 1: identity;
    0.5: 2x2 max-pool. Each level then gets a 1x1 conv + LN and a 3x3 conv + LN to
    ``out_channels``. ``extra_stride64`` adds a max-pooled (k=1, s=2) copy of the coarsest level,
    as ViTDet's detectors do (``LastLevelMaxPool``).

    Args:
        in_channels: ``D`` of the map (after temporal reduction).
        in_stride: Stride of the ViT map (its patch size). If not 16 (Prithvi-600M: 14), the map is
            bilinearly resized by ``in_stride / 16`` so levels sit at strides 4, 8, 16, 32.
        out_channels: Channels of every level.
        scale_factors: Subset of (4, 2, 1, 0.5).
        extra_stride64: Add a level at stride 64 (needs 0.5 among the factors).
        temporal: Frame merging applied first (default identity).
    """

    def __init__(
        self,
        in_channels: int,
        in_stride: int = 16,
        out_channels: int = 256,
        scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
        extra_stride64: bool = False,
        temporal: TemporalReduction | None = None,
    ) -> None:
        super().__init__()
        allowed = (4.0, 2.0, 1.0, 0.5)
        factors = tuple(float(s) for s in scale_factors)
        if not factors or any(s not in allowed for s in factors) or len(set(factors)) != len(factors):
            raise ConfigError(f"neck.scale_factors={list(scale_factors)}; allowed: distinct values of {list(allowed)}.")
        factors = tuple(sorted(factors, reverse=True))  # finest level first
        if extra_stride64 and factors[-1] != 0.5:
            raise ConfigError("neck.extra_stride64=True needs 0.5 in neck.scale_factors (the stride-32 level).")
        self.temporal = temporal if temporal is not None else TemporalReduction(in_channels)
        self.in_stride = in_stride
        self.scale_factors = factors
        self.extra_stride64 = extra_stride64
        D = in_channels
        self.stages = nn.ModuleList()
        for s in factors:
            if s == 4.0:
                layers: list[nn.Module] = [
                    nn.ConvTranspose2d(D, D // 2, 2, stride=2), LayerNorm2d(D // 2), nn.GELU(),
                    nn.ConvTranspose2d(D // 2, D // 4, 2, stride=2),
                ]
                ch = D // 4
            elif s == 2.0:
                layers, ch = [nn.ConvTranspose2d(D, D // 2, 2, stride=2)], D // 2
            elif s == 1.0:
                layers, ch = [], D
            else:
                layers, ch = [nn.MaxPool2d(2, stride=2)], D
            layers += [_conv_ln(ch, out_channels, 1), _conv_ln(out_channels, out_channels, 3)]
            self.stages.append(nn.Sequential(*layers))
        self.out_channels = [out_channels] * (len(factors) + int(extra_stride64))
        self.out_strides = [int(16 / s) for s in factors] + ([64] if extra_stride64 else [])

    def forward(self, features: Sequence[Tensor],
                levels: Collection[int] | None = None) -> list[Tensor | None]:
        """Uses the last map ``(B, T*D, h, w)`` -> levels ``(B, out_channels, H/s, W/s)``.

        ``levels``: compute only these (the others are None). Each level is its own branch from
        the same map, so a head that reads one level (FCN, DeepLabv3) skips the rest: 6-9 % of
        a ViT-B forward in fp32, 13 % in bf16.
        """
        x = self.temporal(features[-1])
        if self.in_stride != 16:
            h, w = x.shape[-2:]
            size = (max(1, round(h * self.in_stride / 16)), max(1, round(w * self.in_stride / 16)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        last = len(self.stages) - 1
        wanted = None if levels is None else set(levels) | (
            {last} if self.extra_stride64 and last + 1 in levels else set())
        outs: list[Tensor | None] = [stage(x) if wanted is None or i in wanted else None
                                     for i, stage in enumerate(self.stages)]
        if self.extra_stride64:
            p5 = outs[-1]
            outs.append(None if p5 is None else F.max_pool2d(p5, kernel_size=1, stride=2))
        return outs


class StagePyramid(nn.Module):
    """A ResNet's stage outputs as pyramid levels, unchanged (no parameters).

    ``extra_stride64`` appends a max-pooled copy of the last stage.
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], extra_stride64: bool = False) -> None:
        super().__init__()
        self.extra_stride64 = extra_stride64
        self.out_channels = list(in_channels) + ([in_channels[-1]] if extra_stride64 else [])
        self.out_strides = list(in_strides) + ([in_strides[-1] * 2] if extra_stride64 else [])

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Stage maps -> the same list (plus the pooled level)."""
        outs = list(features)
        if self.extra_stride64:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs


class StageFPN(nn.Module):
    """torchvision's ``FeaturePyramidNetwork`` over ResNet stages (top-down + lateral, 3x3 out).

    Args:
        in_channels: Channels of each stage.
        in_strides: Strides of each stage.
        out_channels: Channels of every level.
        extra_stride64: Append torchvision's ``LastLevelMaxPool`` level (P6), as its detectors do.
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], out_channels: int = 256,
                 extra_stride64: bool = False) -> None:
        super().__init__()
        self.fpn = FeaturePyramidNetwork(list(in_channels), out_channels,
                                         extra_blocks=LastLevelMaxPool() if extra_stride64 else None)
        self.extra_stride64 = extra_stride64
        self.out_channels = [out_channels] * (len(in_channels) + int(extra_stride64))
        self.out_strides = list(in_strides) + ([in_strides[-1] * 2] if extra_stride64 else [])

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Stage maps -> FPN levels ``(B, out_channels, H/s, W/s)``."""
        named = OrderedDict((str(i), f) for i, f in enumerate(features))
        return list(self.fpn(named).values())


class IdentityNeck(nn.Module):
    """Backbone maps unchanged, after temporal reduction of ViT maps."""

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int],
                 temporal: TemporalReduction | None = None) -> None:
        super().__init__()
        self.temporal = temporal
        dim = temporal.embed_dim if temporal is not None else None
        self.out_channels = [dim if dim is not None else c for c in in_channels]
        self.out_strides = list(in_strides)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Maps -> maps (frames merged)."""
        if self.temporal is None:
            return list(features)
        return [self.temporal(f) for f in features]


def _is_vit(backbone: nn.Module) -> bool:
    return hasattr(backbone, "embed_dim") and hasattr(backbone, "blocks")


def build_neck(
    kind: str,
    backbone: nn.Module,
    *,
    task: str = "segmentation",
    out_channels: int = 256,
    scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
    extra_stride64: bool = False,
    temporal_reduction: str = "concat",
) -> nn.Module:
    """Build the neck for ``backbone`` (see the module docstring for the kinds).

    Returns:
        A module with ``forward(list[Tensor]) -> list[Tensor]``, ``out_channels``, ``out_strides``.
    """
    kind = resolve_neck_kind(kind, _is_vit(backbone), task)
    if _is_vit(backbone):
        temporal = TemporalReduction(backbone.embed_dim, getattr(backbone, "num_frames", 1), temporal_reduction)
        if kind == "simple_feature_pyramid":
            return SimpleFeaturePyramid(backbone.embed_dim, backbone.patch_size, out_channels, scale_factors,
                                        extra_stride64, temporal)
        return IdentityNeck(backbone.out_channels, backbone.out_strides, temporal)
    if kind == "stages":
        return StagePyramid(backbone.out_channels, backbone.out_strides, extra_stride64)
    if kind == "fpn":
        return StageFPN(backbone.out_channels, backbone.out_strides, out_channels, extra_stride64)
    return IdentityNeck(backbone.out_channels, backbone.out_strides)
